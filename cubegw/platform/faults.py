"""Scripted fault injection for the reference platform; pure, no I/O.

A rule matches a device (``mac``, or ``*`` for every device), a message (its RPCMethod:
``BootFirst``, ``RegisterFirst``, ``Boot``, ``Register``, ``Hb``, ``Report``,
``RequestPlug-in``, ``RequestDistri``, ... or ``*``) and optionally the ``server`` that
handles it (``distribution``, ``operation``, ``message_server``, ``plugin_center``;
default ``*``), and says what the platform does instead of its normal behaviour:

``drop: N``
    the next N matching requests are lost before the platform sees them (no state change,
    no reply); afterwards the rule is spent and the platform behaves normally.
``no_reply: true``
    the platform handles the request (its state changes) but the reply is lost.
``result: N``
    the platform answers ``{"Result": N}`` only and does nothing else.
``delay: seconds``
    the platform handles the request and answers normally, that many seconds later; with
    ``result`` it answers ``{"Result": N}`` late.
``disconnect: true``
    the plugin center answers a ``Register`` normally, then sends ``Disconnect`` and
    closes the connection.
``distri_elsewhere: "host:port"``
    a ``RequestDistri`` the platform sends names this distribution platform instead.

``count: N`` makes any rule (but ``drop``, which counts itself) apply N times only; the
count is per rule, shared by every device the rule matches.  The first live rule in list
order that matches wins.  For the triggers the platform sends (``RequestPlug-in``,
``RequestDistri``) ``drop`` and ``no_reply`` both mean "not sent", ``delay`` sends late,
and ``result`` is refused.

A rule that could never fire is refused when it is parsed (at load, or with a 400 from
the API), naming where its action applies: the platform consults the rules for each
message only where ``WHERE`` says, and each kind of step carries out only some actions
(``disconnect`` on the plugin center's ``Register``, ``distri_elsewhere`` on
``RequestDistri``, nothing on ``Disconnect``, no ``no_reply`` on a ``Report``, which is
never answered).  A ``"*"`` message or server needs one place where the action fires.

What each action does is the table ``ACTION_TABLE`` at the end of this module, which the
UDP platforms and the plugin center carry out through ``on_request`` and ``on_send``.
"""

from cubegw import identity

REQUESTS = ("BootFirst", "RegisterFirst", "Boot", "Register", "Hb", "Report",
            "Heartbeat", "Post")
TRIGGERS = ("RequestPlug-in", "RequestDistri", "Disconnect")
MESSAGES = REQUESTS + TRIGGERS
ALIASES = {"RequestPlugin": "RequestPlug-in"}
SERVERS = ("distribution", "operation", "message_server", "plugin_center")


class FaultError(ValueError):
    """A fault rule that cannot be used; the message names the rule."""


class Fault:
    """What a matched rule asks for: ``action`` plus its ``result``/``delay``/``target``.

    ``action`` is one of ``EXCLUSIVE`` or ``"delay"`` (answer normally, late).
    """

    __slots__ = ("action", "result", "delay", "target", "rule")

    def __init__(self, action, result=None, delay=0.0, target=None, rule=""):
        self.action = action
        self.result = result
        self.delay = delay
        self.target = target
        self.rule = rule

    def __repr__(self):
        return f"<Fault {self.action} from {self.rule}>"


class Rule:
    """One validated rule and its remaining uses (``None`` = unlimited)."""

    __slots__ = ("index", "mac", "message", "server", "fault", "remaining", "spec", "only")

    def __init__(self, index, mac, message, server, fault, remaining, spec):
        self.index = index
        self.mac = mac
        self.message = message
        self.server = server
        self.fault = fault
        self.remaining = remaining
        self.spec = spec
        self.only = ACTION_TABLE[fault.action].messages   # None: any message

    def matches(self, mac, message, server):
        return ((self.remaining is None or self.remaining > 0)
                and self.mac in ("*", mac)
                and self.message in ("*", message)
                and self.server in ("*", server)
                and (self.only is None or message in self.only))

    def describe(self):
        return describe(self.index, self.spec)

    def as_dict(self):
        """The rule as given, plus how many uses are left (for a status API)."""
        out = dict(self.spec)
        out["remaining"] = self.remaining
        return out


def describe(index, spec):
    """``faults[2] (mac=*, message=Hb)``: how errors and logs name a rule."""
    if isinstance(spec, dict):
        return "faults[%d] (mac=%s, message=%s)" % (
            index, spec.get("mac", "?"), spec.get("message", "?"))
    return "faults[%d]" % index


def parse_rule(spec, index=0):
    """A rule mapping (from YAML or the API) -> ``Rule``; ``FaultError`` names it if bad."""
    name = describe(index, spec)

    def bad(why):
        return FaultError(f"{name}: {why}")

    if not isinstance(spec, dict):
        raise bad("a rule must be a mapping")
    unknown = sorted(str(k) for k in spec if k not in _KEYS)
    if unknown:
        raise bad(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")

    mac = spec.get("mac")
    if mac is None:
        raise bad("the key mac is required (a MAC or \"*\")")
    if mac != "*":
        try:
            mac = identity.normalize_mac(mac)
        except identity.IdentityError as e:
            raise bad(f"mac: {e}")

    message = spec.get("message")
    if not isinstance(message, str):
        raise bad("the key message is required (an RPCMethod or \"*\")")
    message = ALIASES.get(message, message)
    if message != "*" and message not in MESSAGES:
        raise bad(f"message: unknown message {message!r} (known: {', '.join(MESSAGES)})")

    server = spec.get("server", "*")
    if server != "*" and server not in SERVERS:
        raise bad(f"server: must be one of {', '.join(SERVERS)} or \"*\", got {server!r}")

    chosen = [a for a in EXCLUSIVE if a in spec]
    if len(chosen) > 1:
        raise bad(f"only one of {', '.join(EXCLUSIVE)} per rule, got {', '.join(chosen)}")
    if not chosen and "delay" not in spec:
        raise bad(f"no action: give one of {', '.join(ACTIONS)}")
    action = chosen[0] if chosen else "delay"
    value = ACTION_TABLE[action].check(spec[action], bad, action)

    delay = 0.0
    if "delay" in spec:
        delay = _number(spec["delay"], bad, "delay")
        if action not in ("delay", "result"):
            raise bad(f"delay combines only with result, not with {action}")
    result = value if action == "result" else None
    target = value if action == "distri_elsewhere" else None

    remaining = None
    if action == "drop":
        remaining = value
        if "count" in spec:
            raise bad("drop counts itself: leave out count")
    elif "count" in spec:
        remaining = _count(spec["count"], bad, "count")

    if message in TRIGGERS and not ACTION_TABLE[action].triggers:
        raise bad(f"{action} does not apply to {message}, which the platform sends")
    if not fires(message, server, action):
        raise bad(f"{action} never fires on message {message} at server {server}: "
                  f"{where_it_fires(action)}")

    fault = Fault(action, result, delay, target, name)
    return Rule(index, mac, message, server, fault, remaining, dict(spec))


def parse_rules(specs):
    """A list of rule mappings -> list of ``Rule``; all are checked before any is used."""
    if specs is None:
        return []
    if not isinstance(specs, (list, tuple)):
        raise FaultError("faults: must be a list of rules")
    return [spec if isinstance(spec, Rule) else parse_rule(spec, i)
            for i, spec in enumerate(specs)]


def _number(value, bad, key):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise bad(f"{key}: must be a non-negative number of seconds, got {value!r}")
    return float(value)


def _count(value, bad, key):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(f"{key}: must be a whole number >= 1, got {value!r}")
    return value


def _true(value, bad, key):
    if value is not True:
        raise bad(f"{key}: must be true")
    return value


def _integer(value, bad, key):
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{key}: must be an integer Result code, got {value!r}")
    return value


def _address(value, bad, key):
    host, sep, port = str(value).rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise bad(f"{key}: must be \"host:port\", got {value!r}")
    return (host, int(port))


# ------------------------------------------------------------- what each action does
#
# A server answering requests (the UDP platforms, the plugin center) provides:
#   answer(request, where)      run the handler (state changes): (reply, note), or None
#                               when there is nothing to send (the server logs why)
#   send_reply(request, where, reply, note)           send the handler's reply, logged
#   withhold_reply(request, where, reply, note, fault)  log it as not sent
#   send_result(request, where, fault)                send {"Result": N} only, logged
#   log_fault(request, fault, text)   log text ({rule}, {delay}) after the request's name
#   later(delay, f, *args)      f(*args) now, or that much later unless the server stops
#   close_after(request, where, fault)   Disconnect and close (plugin center only)
# ``where`` is where the request came from: an address, or a connection.
#
# A server sending messages that wait for an answer (triggers, Posts) provides:
#   send_now(pending, message)          send it
#   not_sent(pending, message, fault)   log that it is not sent (it then times out)
#   result_instead(pending, fault)      answer the caller {"Result": N}, sending nothing
#   later(delay, f, *args)
# and adds what ``on_send`` returns (seconds sent late) to the answer's timeout.


def _answer(fault, server, request, where):
    reply = server.answer(request, where)
    if reply is not None:
        server.send_reply(request, where, *reply)


def _drop(fault, server, request, where):
    server.log_fault(request, fault, " dropped ({rule}: drop)")


def _withhold(fault, server, request, where):
    reply = server.answer(request, where)
    if reply is not None:
        server.withhold_reply(request, where, *reply, fault)


def _result(fault, server, request, where):
    server.later(fault.delay, server.send_result, request, where, fault)


def _answer_late(fault, server, request, where):
    server.log_fault(request, fault, ": answering in {delay} s ({rule}: delay)")
    server.later(fault.delay, _answer, None, server, request, where)


def _answer_then_close(fault, server, request, where):
    reply = server.answer(request, where)
    if reply is not None:
        server.send_reply(request, where, *reply)
        if reply[0]["Result"] == 0:
            server.close_after(request, where, fault)


def _send(fault, sender, pending, message):
    sender.send_now(pending, message)
    return 0.0


def _not_sent(fault, sender, pending, message):
    sender.not_sent(pending, message, fault)
    return 0.0


def _result_instead(fault, sender, pending, message):
    sender.later(fault.delay, sender.result_instead, pending, fault)
    return 0.0


def _send_elsewhere(fault, sender, pending, message):
    host, port = fault.target
    sender.send_now(pending, message.replace(ServerAddr=host, ServerPort=port))
    return 0.0


def _send_late(fault, sender, pending, message):
    sender.later(fault.delay, sender.send_now, pending, message)
    return fault.delay


class Action:
    """What one action of a rule does, wherever the platform carries it out.

    ``check(value, bad, key)`` validates the rule's value.  ``request(fault, server,
    request, where)`` is what happens to a request the platform answers, ``send(fault,
    sender, pending, message)`` to a message it sends (returning the seconds it goes
    late); None where the action does not apply.  ``connection``: only where a request
    came on a connection that can be closed (the plugin center's Register).
    ``triggers``: also for the triggers the platform sends.  ``messages``: the only
    messages it applies to (None: any).
    """

    __slots__ = ("check", "request", "send", "connection", "triggers", "messages")

    def __init__(self, check, request=None, send=None, connection=False, triggers=True,
                 messages=None):
        self.check = check
        self.request = request
        self.send = send
        self.connection = connection
        self.triggers = triggers
        self.messages = messages


#: Every action, in the order errors list them: a new fault type is one entry here.
ACTION_TABLE = {
    "drop": Action(_count, _drop, _not_sent),
    "no_reply": Action(_true, _withhold, _not_sent),
    "result": Action(_integer, _result, _result_instead, triggers=False),
    "delay": Action(_number, _answer_late, _send_late),
    "disconnect": Action(_true, _answer_then_close, connection=True,
                         messages=frozenset({"Register"})),
    "distri_elsewhere": Action(_address, send=_send_elsewhere,
                               messages=frozenset({"RequestDistri"})),
}
ACTIONS = tuple(ACTION_TABLE)
_KEYS = {"mac", "message", "server", "count"} | set(ACTIONS)
#: One of these per rule; ``delay`` alone or with ``result``.
EXCLUSIVE = tuple(a for a in ACTIONS if a != "delay")

#: What the UDP platforms and the plugin center can do to a request (plugin Register:
#: also ``disconnect``), to a Post, and to a trigger.
REQUEST_ACTIONS = frozenset(a for a, x in ACTION_TABLE.items()
                            if x.request and not x.connection)
UDP_ACTIONS = REQUEST_ACTIONS
REGISTER_ACTIONS = frozenset(a for a, x in ACTION_TABLE.items() if x.request)
POST_ACTIONS = frozenset(a for a, x in ACTION_TABLE.items() if x.send and not x.messages)
TRIGGER_ACTIONS = frozenset(a for a, x in ACTION_TABLE.items() if x.send and x.triggers)

#: Where the platform consults the rules for each message: server -> the actions it
#: carries out there.  ``Disconnect`` is sent on demand or by a rule, never consulted.
WHERE = {
    "BootFirst": {"distribution": REQUEST_ACTIONS},
    "RegisterFirst": {"distribution": REQUEST_ACTIONS},
    "Boot": {"operation": REQUEST_ACTIONS, "plugin_center": REQUEST_ACTIONS},
    "Register": {"operation": REQUEST_ACTIONS, "plugin_center": REGISTER_ACTIONS},
    "Hb": {"operation": REQUEST_ACTIONS},
    "Report": {"operation": REQUEST_ACTIONS - {"no_reply"},
               "message_server": REQUEST_ACTIONS - {"no_reply"}},
    "Heartbeat": {"plugin_center": REQUEST_ACTIONS},
    "Post": {"plugin_center": POST_ACTIONS},
    "RequestPlug-in": {"operation": TRIGGER_ACTIONS - {"distri_elsewhere"}},
    "RequestDistri": {"operation": TRIGGER_ACTIONS},
    "Disconnect": {},
}


def fires(message, server, action):
    """Whether a rule for ``message`` at ``server`` (either may be "*") with ``action``
    can ever be carried out."""
    for name, servers in WHERE.items():
        if message not in ("*", name):
            continue
        for where, actions in servers.items():
            if server in ("*", where) and action in actions:
                return True
    return False


def where_it_fires(action):
    """``"it fires on Register at plugin_center"``: for the error of a rule that cannot."""
    places = [f"{name} at {where}" for name, servers in WHERE.items()
              for where, actions in servers.items() if action in actions]
    return "it fires on " + (", ".join(places) or "nothing")

def on_request(fault, server, request, where):
    """Answer ``request`` as ``fault`` (None: normally) says, through ``server``."""
    (_answer if fault is None else ACTION_TABLE[fault.action].request)(
        fault, server, request, where)


def on_send(fault, sender, pending, message):
    """Send ``message`` as ``fault`` (None: normally) says, through ``sender``; the seconds
    it goes late, which the wait for its answer adds."""
    return (_send if fault is None else ACTION_TABLE[fault.action].send)(
        fault, sender, pending, message)


class Delayed:
    """Calls put off by ``delay`` rules, cancelled together when their server stops."""

    def __init__(self, clock):
        self.clock = clock
        self._calls = set()

    def soon(self, delay, f, *args):
        """Call ``f(*args)`` now, or after ``delay`` seconds."""
        if delay <= 0:
            return f(*args)

        def run():
            self._calls.discard(call)
            f(*args)
        call = self.clock.callLater(delay, run)
        self._calls.add(call)

    def cancel_all(self):
        for call in list(self._calls):
            if call.active():
                call.cancel()
        self._calls.clear()


class FaultRules:
    """The live rule list: ``decide`` consults and consumes it; ``set_rules`` replaces it."""

    def __init__(self, specs=()):
        self._rules = parse_rules(specs)

    def set_rules(self, specs):
        """Replace every rule (counts start afresh); on a bad rule nothing changes."""
        self._rules = parse_rules(specs)

    def active(self):
        """True while some rule can still match (spent rules stay listed, but not active)."""
        return bool(self._rules) and any(rule.remaining is None or rule.remaining > 0 for rule in self._rules)

    @property
    def rules(self):
        """The current rules as mappings, each with its ``remaining`` uses."""
        return [rule.as_dict() for rule in self._rules]

    def decide(self, mac, message, server="*", supported=None):
        """The fault for this message, or ``None`` to behave normally.

        ``supported`` (a set of actions) restricts which rules can match, so a caller
        never consumes a rule it cannot carry out.  A match uses up one count.
        """
        for rule in self._rules:
            if supported is not None and rule.fault.action not in supported:
                continue
            if rule.matches(mac, message, server):
                if rule.remaining is not None:
                    rule.remaining -= 1
                return rule.fault
        return None
