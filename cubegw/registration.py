"""The registration and heartbeat state machine (protocol.md sections 4-6); pure.

Events go in as method calls (``start``, ``timer_fired``, ``reply_received``,
``trigger_received``, ``wan_ip_changed``); each returns the list of commands the
transport must carry out (send a datagram, arm the one timer, store the operation
platform, reset APP data, connect to the plugin center, answer a trigger).  Nothing here
does I/O or reads a clock, so every row of section 6 is a few microseconds of test.

The machine has at most one outstanding request and exactly one timer at any time while
running: the reply timeout, a retry wait, the heartbeat interval or the -2 silence.
"""

import random

from cubegw import identity, wire
from cubegw.commands import (  # noqa: F401  (re-exported: reg.Send, reg.SetTimer, ...)
    AnswerTrigger, ConnectPlugin, Note, ResetAppData, Send, SetTimer, StoreOperationPlatform,
)
from cubegw.record import MutableRecord
from cubegw.trust import TriggerGate, interval

# States, in the order of a first registration.
JITTER = "jitter"
BOOT_FIRST = "BootFirst"
REGISTER_FIRST = "RegisterFirst"
BOOT = "Boot"
REGISTER = "Register"
ONLINE = "online"
SILENT = "silent"
STOPPED = "stopped"

DISTRIBUTION = "distribution"
OPERATION = "operation"

#: How long after a trigger answer the platform's bare follow-up ({"Result":1} or -1) is
#: taken as one.
TRIGGER_FOLLOWUP_WINDOW = 10.0

#: The error Results in each request's own form (protocol.md 6); with its success codes
#: (``wire.REPLIES[cls].SUCCESS``) they are the only replies that count: anything else
#: from the platform is a stray (protocol.md 5).
ERROR_RESULTS = {
    wire.BootFirst: (-1, -2, -5, -6),
    wire.RegisterFirst: (-1, -2, -5),
    wire.Boot: (-1, -2, -5),
    wire.Register: (3, -1, -2, -5),
    wire.Hb: (-2, -3, -5),
}

#: Every Result that counts as a reply to each request class.
_ACCEPTED = {cls: frozenset(wire.REPLIES[cls].SUCCESS + errors)
             for cls, errors in ERROR_RESULTS.items()}


# -------------------------------------------------------------------- inputs

class Settings(MutableRecord):
    """What the machine reads from the store and the config at each step."""
    mgt_url: str = "189cube"
    mgt_port: int = 12112
    heartbeat: int = 60
    user_id: str = ""
    wifi_ssid: str = ""
    wifi_password: str = ""
    useradmin_password: str = ""


def tr069_backoff(n, initial, factor, cap, uniform):
    """The n-th retry wait (n >= 1): uniform in [m*k^(n-1), m*k^n], the upper end capped."""
    low = min(initial * factor ** (n - 1), cap)
    high = min(initial * factor ** n, cap)
    return uniform(low, high)


class RegistrationMachine:
    """BootFirst -> RegisterFirst -> Boot -> Register -> Hb, with every failure row.

    ``settings`` is a callable returning the current ``Settings``; ``uniform(a, b)`` draws
    the random waits (the OS CSPRNG by default); ``new_dev_rnd()`` makes a DevRND;
    ``trust`` is ``(plugin_centers, distribution)``, the hosts a trigger may name.
    """

    def __init__(self, ident, timing, settings, uniform=None, new_dev_rnd=identity.new_dev_rnd,
                 trust=None):
        self.identity = ident
        self.timing = timing
        self._settings = settings
        self._uniform = uniform or random.SystemRandom().uniform
        self._new_dev_rnd = new_dev_rnd
        self.state = STOPPED
        self.wan_ip = ""
        self.distribution = None          # (host, port) the last BootFirst went to
        self.distribution_override = None # set by RequestDistri, over X_CT-COM_Mgt
        self._fallback = None             # the operation platform before an unconfirmed one
        self.operation = None             # (host, port) of the operation platform
        self.message_server = None
        self.dev_rnd = None
        self.interval = None              # heartbeat interval given by the platform
        self.pending = None               # the outstanding request, or None
        #: The last event was routine: an Hb sent on time or answered 0 while online,
        #: which changes nothing but the heartbeat counters (no status news).
        self.routine = False
        self.retries = 0                  # TR-069 retry counter, reset on being online
        self.op_failures = 0              # failed tries at the operation platform
        self.resyncs = 0                  # operation -5 in a row
        self.hb_misses = 0
        self.hb_flag = "1"
        self._hb_message = None           # the last Hb (reused while its fields stay)
        self.register_resets = 0          # Register 3 in a row
        self.counters = {"sent": 0, "replies": 0, "timeouts": 0, "hb_ok": 0,
                         "triggers_ok": 0, "triggers_refused": 0, "triggers_spoofed": 0}
        self._next = None                 # what the armed wait leads to
        self._trigger_answered_at = None  # when an accepted trigger was last answered
        self._gate = TriggerGate(timing.trigger_limit, *(trust or ((), ())))
        self._challenge = None

    # ------------------------------------------------------------- events

    def start(self, wan_ip, stored_operation=None):
        """Daemon start: a random jitter, then Boot at the stored platform or BootFirst."""
        self.routine = False
        self.wan_ip = wan_ip
        if stored_operation:
            self.operation = tuple(stored_operation)
        self.state = JITTER
        self.pending = None
        delay = self._uniform(0, self.timing.boot_jitter) if self.timing.boot_jitter else 0.0
        self._next = self._boot if self.operation else self._boot_first
        return [SetTimer(delay)]

    def stop(self):
        self.state = STOPPED
        self.pending = None
        self._next = None
        return []

    def timer_fired(self):
        """The one timer ran out: a reply timeout when a request is pending, else a wait."""
        self.routine = False
        if self.state == STOPPED:
            return []
        if self.pending is not None:
            request, self.pending = self.pending, None
            self.counters["timeouts"] += 1
            return self._no_reply(request)
        heartbeat_due = self.state == ONLINE      # the wait between two heartbeats ran out
        step, self._next = self._next, None
        commands = step() if step else []
        self.routine = heartbeat_due and self.state == ONLINE
        return commands

    def reply_received(self, msg):
        """A reply from the platform the pending request went to (a decoded dict).

        Raises ``wire.WireError`` for a malformed reply, or one that is not in the pending
        request's own form (its success fields or one of its error codes): the caller
        drops it (or tries it as a trigger follow-up), and the timer still runs, so a bad
        reply counts as none.
        """
        self.routine = False
        if self.pending is None:
            raise wire.WireError("no request is waiting for a reply")
        cls = self.pending.kind
        reply = wire.decode_reply(cls, msg)
        if reply.Result not in _ACCEPTED[cls]:
            raise wire.WireError(f"Result {reply.Result} is no {cls.METHOD} reply")
        request, self.pending = self.pending, None
        self.counters["replies"] += 1
        commands = _HANDLERS[cls](self, request, reply)
        self.routine = cls is wire.Hb and reply.Result == 0 and self.state == ONLINE
        return commands

    def followup_received(self, msg, now):
        """A datagram from the operation platform that is no reply to the pending request:
        within TRIGGER_FOLLOWUP_WINDOW of a trigger answer, the platform's follow-up.

        ``{"Result":1}`` acknowledges the answer: ignored.  ``{"Result":-1}`` asks the
        gateway to register again: BootFirst, as the field gateway does.  Anything else
        raises ``wire.WireError`` (a stray, dropped by the caller).
        """
        self.routine = False
        answered = self._trigger_answered_at
        if answered is None or now - answered > TRIGGER_FOLLOWUP_WINDOW:
            raise wire.WireError("stray reply: no request is waiting for it")
        reply = wire.Result.from_wire(msg)
        if reply.Result == 1:
            return [Note("info", "the platform acknowledged the trigger answer")]
        if reply.Result != -1:
            raise wire.WireError(f"stray reply: Result {reply.Result} after a trigger answer")
        self._trigger_answered_at = None
        self.retries = 0
        return [Note("info", "the platform answered the trigger answer -1: registering "
                             "again from BootFirst")] + self._boot_first()

    def wan_ip_changed(self, wan_ip):
        """The WAN address changed: Boot at the stored operation platform (deck 6.1)."""
        self.routine = False
        self.wan_ip = wan_ip
        if self.state in (STOPPED, SILENT, JITTER):
            return []
        notes = [Note("info", "WAN address changed", {"ip": wan_ip})]
        self.op_failures = self.resyncs = 0
        return notes + (self._boot() if self.operation else self._boot_first())

    def trigger_received(self, msg, source, now, from_operation=True):
        """A reverse trigger (decoded dict) from ``source`` at time ``now``.

        Only the operation platform may trigger (``from_operation``, judged by the
        transport on the resolved address); anything else is dropped unanswered, so the
        gateway cannot be used to reflect datagrams at a third party.
        """
        self.routine = False
        if not from_operation:
            self.counters["triggers_spoofed"] += 1
            return [Note("warn", "trigger from an address that is not the operation "
                                 "platform dropped", {"source": source})]
        try:
            trigger = wire.decode_request(msg, wire.TO_GATEWAY_UDP)
        except wire.WireError as e:
            return self._refuse(source, e.reason, now)
        sent_rnd = self._gate.resent(trigger, now)
        if sent_rnd is not None:
            # the Key was checked against the DevRND before the one this answer carried
            self._trigger_answered_at = now
            self.routine = True
            return [AnswerTrigger(0, source, sent_rnd)] + (
                [Note("info", "trigger resent: the same answer, not acted on")]
                if self._gate.log_due(now) else [])
        reason = self._gate.refusal(trigger, now, self._trigger_key)
        if reason is not None:
            return self._refuse(source, reason, now)
        # a fresh DevRND with every accepted trigger: the Key works once (protocol.md 5)
        self.dev_rnd = self._new_dev_rnd()
        answer = AnswerTrigger(0, source, self.dev_rnd)
        self._gate.accepted(trigger, now, self.dev_rnd)
        self._trigger_answered_at = now
        self.counters["triggers_ok"] += 1
        if isinstance(trigger, wire.RequestPlugin):
            return [answer, ConnectPlugin(trigger.ServerAddr, trigger.ServerPort)]
        self.distribution_override = (trigger.ServerAddr, trigger.ServerPort)
        self.retries = 0
        return [answer, Note("info", "RequestDistri: registering again",
                             {"distribution": f"{trigger.ServerAddr}:{trigger.ServerPort}"})
                ] + self._boot_first()

    # ------------------------------------------------------- sending steps

    def _send(self, state, target, address, message, timeout=None):
        self.state = state
        self.pending = message
        self.counters["sent"] += 1
        wait = self.timing.reply_timeout if timeout is None else timeout
        return [Send(target, address[0], address[1], message), SetTimer(wait)]

    def _device_fields(self):
        i = self.identity
        return dict(Vendor=i.vendor, Model=i.model, MAC=i.mac, SN=i.sn,
                    FirmwareVer=i.firmware_version, HardwareVer=i.hardware_version,
                    IPAddr=self.wan_ip, LOID=i.loid)

    def _boot_first(self):
        s = self._settings()
        self.distribution = self.distribution_override or (s.mgt_url, s.mgt_port)
        self.op_failures = self.resyncs = 0
        return self._send(BOOT_FIRST, DISTRIBUTION, self.distribution,
                          wire.BootFirst(**self._device_fields()))

    def _register_first(self, challenge):
        return self._send(REGISTER_FIRST, DISTRIBUTION, self.distribution, wire.RegisterFirst(
            MAC=self.identity.mac, SN=self.identity.sn,
            CheckSN=identity.check_sn(challenge, self.identity.sn)))

    def _boot(self):
        return self._send(BOOT, OPERATION, self.operation, wire.Boot(**self._device_fields()))

    def _register(self, challenge, user_id=None):
        self.dev_rnd = self._new_dev_rnd()
        if user_id is None:
            user_id = self._settings().user_id
        return self._send(REGISTER, OPERATION, self.operation, wire.Register(
            MAC=self.identity.mac, SN=self.identity.sn,
            CheckSN=identity.check_sn(challenge, self.identity.sn),
            DevRND=self.dev_rnd, UserID=user_id))

    def _hb(self):
        """The next Hb: the same message object while the WAN address and FLAG stay, so
        the transport sends the bytes it encoded for the last one."""
        hb = self._hb_message
        if hb is None or hb.IPAddr != self.wan_ip or hb.FLAG != self.hb_flag:
            hb = self._hb_message = wire.Hb(
                MAC=self.identity.mac, IPAddr=self.wan_ip, FLAG=self.hb_flag)
        return self._send(ONLINE, OPERATION, self.operation, hb, timeout=self.timing.hb_timeout)

    # ------------------------------------------------------- waiting steps

    def _wait(self, delay, then):
        self._next = then
        return [SetTimer(delay)]

    def _retry(self, then, why):
        """Wait the next TR-069 backoff, then ``then``."""
        self.retries += 1
        t = self.timing
        delay = tr069_backoff(self.retries, t.retry_initial, t.retry_factor, t.retry_max,
                              self._uniform)
        return self._wait(delay, then)

    def _back_to_fallback(self, why):
        """The platform a RequestDistri led to failed its registration: forget it."""
        fallback, self._fallback = self._fallback, None
        self.distribution_override = None
        self.operation = fallback or None
        return [Note("warn", "the platform reached through RequestDistri did not register "
                             "us: not kept", {"why": why})] + self._retry(
            self._boot if self.operation else self._boot_first, why)

    def _silence(self, request):
        self.state = SILENT
        self.distribution_override = None
        if self._fallback is not None:
            self.operation, self._fallback = self._fallback or None, None
        return [Note("warn", "information rejected (-2): staying silent",
                     {"request": request.METHOD, "seconds": self.timing.silence})
                ] + self._wait(self.timing.silence, self._boot_first)

    def _operation_failed(self, why):
        """A failed or unanswered Boot/Register: retry Boot, or BootFirst once the budget is spent."""
        self.op_failures += 1
        if self.op_failures >= self.timing.boot_tries:
            self.op_failures = 0
            if self._fallback is not None:
                return self._back_to_fallback(why)
            return [Note("warn", "operation platform failed: back to distribution",
                         {"why": why})] + self._retry(self._boot_first, why)
        return self._retry(self._boot, why)

    def _resync(self, request):
        """-5 from the operation platform: Boot again; the third in a row goes to BootFirst."""
        self.resyncs += 1
        if self.resyncs >= self.timing.resync_limit:
            self.resyncs = 0
            return [Note("info", "-5 three times: back to distribution")] + self._boot_first()
        return self._boot()

    def _trigger_key(self):
        if self.dev_rnd is None:
            return None
        s = self._settings()
        return identity.trigger_key(self.dev_rnd, self.identity.sn, s.wifi_ssid,
                                    s.wifi_password, s.useradmin_password)

    def _refuse(self, source, reason, now):
        """Answer -1; log line and status-file write rate-limited (a flood is not amplified)."""
        self.counters["triggers_refused"] += 1
        self.routine = True
        if not self._gate.log_due(now):
            return [AnswerTrigger(-1, source)]
        more, self._gate.unlogged = self._gate.unlogged, 0
        fields = {"reason": reason, "source": source, **({"more": more} if more else {})}
        return [AnswerTrigger(-1, source), Note("warn", "trigger refused", fields)]

    # --------------------------------------------------------- no reply

    def _no_reply(self, request):
        why = f"no reply to {request.METHOD}"
        if isinstance(request, wire.Hb):
            self.hb_misses += 1
            if self.hb_misses >= self.timing.hb_misses:
                self.hb_misses = 0
                return [Note("warn", "heartbeat lost: registering again")] + self._boot()
            return self._hb()
        if isinstance(request, (wire.Boot, wire.Register)):
            return self._operation_failed(why)
        if isinstance(request, wire.RegisterFirst):
            return self._retry(lambda: self._send(
                REGISTER_FIRST, DISTRIBUTION, self.distribution, request), why)
        return self._retry(self._boot_first, why)

    # ---------------------------------------------------- reply handlers

    def _on_BootFirst(self, request, reply):
        if reply.Result == 0:
            return self._register_first(reply.ChallengeCode)
        if reply.Result == -2:
            return self._silence(request)
        notes = []
        if reply.Result == -6:
            notes.append(Note("error", "MAC not accepted by the distribution platform",
                              {"mac": self.identity.mac}))
        return notes + self._retry(self._boot_first, f"BootFirst Result {reply.Result}")

    def _on_RegisterFirst(self, request, reply):
        if reply.Result in (0, 2):
            if self.distribution_override and self._fallback is None:
                # reached through a RequestDistri: kept (stored) only once it answers a
                # full registration; until then the stored platform stays the fallback
                self._fallback = self.operation or ()
            self.operation = (reply.ServerAddr, reply.ServerPort)
            self.interval = interval(reply.Interval) or self.interval
            if self._fallback is not None:
                return self._boot()
            # Boot first, then the durable write (fsyncs of the store, its backup and
            # its folder) while the operation platform answers: nothing sent depends
            # on the address being on disk, and a power cut in between leaves the
            # store as it was, so the next start registers through distribution again.
            return self._boot() + [StoreOperationPlatform(*self.operation)]
        if reply.Result == -2:
            return self._silence(request)
        return self._retry(self._boot_first, f"RegisterFirst Result {reply.Result}")

    def _on_Boot(self, request, reply):
        if reply.Result == 0:
            self.interval = interval(reply.Interval) or self.interval
            self.register_resets = 0
            self._challenge = reply.ChallengeCode
            return self._register(reply.ChallengeCode)
        return self._operation_error(request, reply)

    def _on_Register(self, request, reply):
        if reply.Result in (0, 2):
            self.message_server = reply.MessageServer
            self.retries = self.op_failures = self.resyncs = self.hb_misses = 0
            self.register_resets = 0
            self.hb_flag = "1"
            keep = [] if self._fallback is None else [StoreOperationPlatform(*self.operation)]
            self._fallback = None
            return keep + [Note("info", "registered", {"operation": "%s:%s" % self.operation})
                           ] + self._hb()
        if reply.Result == 3:
            self.register_resets += 1
            if self.register_resets > 1:
                return self._operation_failed("Register 3 again after the APP reset")
            return [Note("warn", "Register 3: bound user differs, resetting APP data"),
                    ResetAppData()] + self._register(self._challenge, user_id="")
        return self._operation_error(request, reply)

    def _operation_error(self, request, reply):
        if reply.Result == -2:
            return self._silence(request)
        if reply.Result == -5:
            return self._resync(request)
        return self._operation_failed(f"{request.METHOD} Result {reply.Result}")

    def _on_Hb(self, request, reply):
        if reply.Result == 0:
            self.counters["hb_ok"] += 1
            self.hb_misses = 0
            self.retries = 0
            self.hb_flag = "0"
            self.interval = interval(reply.Interval) or self.interval
            delay = self.interval or self._settings().heartbeat
            return self._wait(delay, self._hb)
        if reply.Result == -3:
            return [Note("info", "Hb -3: registering again")] + self._boot()
        if reply.Result == -5:
            return [Note("info", "Hb -5: back to distribution")] + self._boot_first()
        return self._silence(request)           # -2: the last of Hb's own Results


#: The reply handler of each request class.
_HANDLERS = {cls: getattr(RegistrationMachine, "_on_" + cls.__name__) for cls in ERROR_RESULTS}
