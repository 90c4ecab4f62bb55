"""The capability plug-in interface, rights, and what a provider is given.

A provider is an object providing ``IGatewayCapability`` (and
``twisted.plugin.IPlugin``, so Twisted's plugin scan finds it) that serves one
or more CmdTypes.  It gets the decoded request payload and a per-call
``CapabilityContext``, and returns the reply fields; the dispatcher adds
CmdType, SequenceId and Status and turns every value into a string.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from twisted.plugin import IPlugin
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from cubegw.identity import compare_digest
from cubegw.record import Record, field
from cubegw.store import SectionType

__all__ = [
    "RIGHT_NONE", "RIGHT_LOCAL", "RIGHT_REMOTE", "RIGHT_BOTH", "LOCAL", "REMOTE",
    "SIDE_RIGHT", "IGatewayCapability", "ICapabilityLifecycle", "CapabilityFailure", "CapabilityUnavailable",
    "CapabilityContext", "Capability", "check_account", "allows", "field_right", "text_values",
    "PENDING", "fired",
]

#: SET_RIGHT's RIGHT values: a bit for each side.
RIGHT_NONE = 0
RIGHT_LOCAL = 1
RIGHT_REMOTE = 2
RIGHT_BOTH = 3

#: The two sides a call comes from: Post1 on the LAN, Post from the plugin center.
LOCAL = "local"
REMOTE = "remote"
SIDE_RIGHT = {LOCAL: RIGHT_LOCAL, REMOTE: RIGHT_REMOTE}


def allows(right: int, side: str) -> bool:
    """Whether ``right`` (0-3) lets a call in from ``side``."""
    return bool(right & SIDE_RIGHT.get(side, 0))


def field_right(value: Any) -> int:
    """SET_RIGHT's RIGHT as the field sends it (0 local, 1 remote, 2 both, 3 none;
    a number or a numeric string) -> the stored right (bits: 1 local, 2 remote).
    ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("RIGHT must be 0, 1, 2 or 3")
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    if text not in ("0", "1", "2", "3"):
        raise ValueError(f"RIGHT must be 0, 1, 2 or 3, got {value!r:.40}")
    return (int(text) + 1) & 3


class IGatewayCapability(Interface):
    """A provider of one or more capability CmdTypes."""

    cmd_types = Attribute("tuple of the CmdType names this provider serves")
    default_right = Attribute(
        "RIGHT_NONE/LOCAL/REMOTE/BOTH (0-3): who may call it until SET_RIGHT says otherwise")
    needs_account = Attribute(
        "bool: the dispatcher checks USER/PASSWORD (or PassWD) against the "
        "telecomadmin/useradmin accounts before calling")

    def call(cmd_type, payload, context):
        """Serve one call.

        ``payload`` is the decoded request (CmdType, SequenceId and the args, as
        sent); ``context`` a ``CapabilityContext``.  Return the reply fields
        (a dict, or a Deferred or coroutine of one).  Raise (or fail with)
        ``CapabilityFailure(reason)`` for Status "1" with that FailReason.
        """


class ICapabilityLifecycle(Interface):
    """What a provider with settings or background work adds to IGatewayCapability.

    The daemon registers every provider's schema when the dispatcher takes it, calls
    ``start`` once the service tree starts and ``stop`` when it stops, so a capability
    with a timer or a poller is one module, with no line in the daemon's wiring.
    """

    def ensure_schema(schema):
        """Register the UCI section types and parameters it keeps (idempotent)."""

    def start(context):
        """Begin its background work on ``context.clock``; may return a Deferred."""

    def stop():
        """End everything ``start`` and its calls began; may return a Deferred."""

    def after_app_reset(context):
        """The APP-side factory reset just put the APP-owned data back to defaults."""


class CapabilityFailure(Exception):
    """The capability's own failure: Status "1" and ``reason`` as FailReason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CapabilityUnavailable(Exception):
    """The capability exists but cannot run now: Result -16 (plugin not running)."""


class CapabilityContext(Record):
    """What a provider may use.  The wiring makes one; the dispatcher hands each
    call a copy (``for_call``) with ``side``, ``rights`` and its own after-reply list.

    ``dev_rnd()`` returns the current DevRND or None (``RegistrationMachine.dev_rnd``);
    ``registered()`` whether the gateway is registered with the operation platform;
    ``report(payload)`` pushes a Report (subscriptions such as DEVICE_SPEED);
    ``app_reset()`` performs the APP-side factory reset (HG_LOCAL_RECOVERY);
    ``store_changed(keys)`` reports the daemon's own store writes to its listeners.
    """

    store: Any
    config: Any                       # cubegw.config.GatewayConfig
    identity: Any                     # cubegw.identity.Identity
    backend: Any                      # cubegw.backend.ISystemBackend
    clock: Any                        # IReactorTime
    dev_rnd: Callable[[], Optional[str]] = lambda: None
    registered: Callable[[], bool] = lambda: False
    #: Push a Report (the payload dict, all values strings) to the platform:
    #: True if it was sent.  The daemon wires it to the plugin channel or UDP.
    report: Callable[[dict], bool] = lambda payload: False
    #: The APP-side factory reset with every provider's follow-up (the firewall):
    #: returns the store keys reset.  The daemon wires it to CapabilityRuntime.
    app_reset: Callable[[], Any] = lambda: set()
    #: Tell the daemon's store listeners (the LAN listener's LocatePort) which
    #: (section, name) keys a call wrote: a reload reports what others write, not this.
    store_changed: Callable[[Any], Any] = lambda keys: None
    side: str = ""
    rights: Any = None                # cubegw.capabilities.dispatch.Rights, per call
    _after: List[Callable[[], Any]] = field(default_factory=list, repr=False)

    def for_call(self, side: str, rights: Any) -> "CapabilityContext":
        # record.replace, without re-running __init__: every call makes one
        call = object.__new__(type(self))
        call.__dict__.update(self.__dict__, side=side, rights=rights, _after=[])
        return call

    def after_reply(self, action: Callable[[], Any]) -> None:
        """Run ``action()`` once the reply has been written (reboot, reset...).

        Dropped if the call ends in anything but a reply with Status "0".
        """
        self._after.append(action)

    @property
    def after(self) -> List[Callable[[], Any]]:
        return list(self._after)


#: ``fired(d)`` for a Deferred with no value to read yet: chain on it as usual.
PENDING = object()


def fired(d: Any) -> Any:
    """The value ``d`` has fired with, read as ``await`` reads it, or ``PENDING`` (not
    fired, waiting on another Deferred, or failed).  Most calls are done when they
    return: reading the value saves a callback and its chain machinery each time."""
    if d.called and not d.paused:
        result = d.result
        if not isinstance(result, Failure):
            return result
    return PENDING


def text_values(value: Any) -> Any:
    """Every leaf a string, as the wire wants a reply or a Report (lists and objects
    kept): True/False -> "1"/"0", None -> ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, dict):
        return {str(k): text_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [text_values(v) for v in value]
    return str(value)


def _same(given: Any, expected: str) -> bool:
    if not isinstance(given, str) or not expected:
        return False
    return compare_digest(given.encode("utf-8", "surrogatepass"),
                          expected.encode("utf-8", "surrogatepass"))


def check_account(accounts: Any, payload: dict) -> bool:
    """Whether the payload's USER/PASSWORD (or PassWD) name a configured account.

    With USER, the password must be that account's; without it, either
    account's.  An account with no password configured never matches.
    """
    password = payload.get("PASSWORD", payload.get("PassWD"))
    known = {"telecomadmin": accounts.telecomadmin, "useradmin": accounts.useradmin}
    user = payload.get("USER")
    if user is not None:
        return isinstance(user, str) and user in known and _same(password, known[user])
    # compare against both so the time taken does not tell which one matched
    results = [_same(password, secret) for secret in known.values()]
    return any(results)


class PasswordGuesses:
    """A limit on password guessing through the calls that carry USER/PASSWORD.

    After ``limit`` wrong passwords within ``window`` seconds, every such call is
    refused for ``lockout`` seconds, without the password being looked at; a right
    password clears the count.  One count for the whole gateway: a LAN host can lock
    the phone app out for ``lockout`` seconds, but cannot try more than ``limit``
    passwords a minute.
    """

    def __init__(self, clock, limit=5, window=60.0, lockout=60.0):
        self.clock = clock
        self.limit, self.window, self.lockout = limit, window, lockout
        self._wrong = []               # times of the recent wrong passwords
        self._until = None             # end of the current lockout

    def wait(self) -> float:
        """Seconds left of the lockout (0: calls may try a password)."""
        if self._until is None:
            return 0.0
        left = self._until - self.clock.seconds()
        if left <= 0:
            self._until = None
            return 0.0
        return left

    def wrong(self) -> None:
        now = self.clock.seconds()
        self._wrong = [t for t in self._wrong if now - t < self.window] + [now]
        if len(self._wrong) >= self.limit:
            self._until, self._wrong = now + self.lockout, []

    def right(self) -> None:
        self._wrong = []


@implementer(IPlugin, IGatewayCapability, ICapabilityLifecycle)
class Capability:
    """Convenience base: set the three attributes, write ``call``.

    Subclasses may instead define ``handle_<CMD_TYPE>(payload, context)`` methods
    and let this ``call`` route to them.  A capability that keeps settings lists
    them in ``store_schema``; one with background work overrides ``start``/``stop``.
    """

    cmd_types: tuple = ()
    default_right: int = RIGHT_BOTH
    #: The field's password flag: USER/PASSWORD checked on LAN calls (a platform Post is
    #: authenticated by the platform).
    needs_account: bool = False
    #: The call *is* a password check (CHECK_PASSWD_PARAM): checked from both sides.
    account_is_the_call: bool = False
    #: The SectionTypes and ParamSpecs it keeps in the store.
    store_schema: tuple = ()

    def ensure_schema(self, schema):
        for item in self.store_schema:
            if isinstance(item, SectionType):
                schema.ensure_type(item)
            else:
                schema.ensure(item)

    def start(self, context):
        return None

    def stop(self):
        return None

    def after_app_reset(self, context):
        return None

    def call(self, cmd_type, payload, context):
        return getattr(self, "handle_" + cmd_type)(payload, context)

    def __repr__(self):
        return f"<{type(self).__name__} {', '.join(self.cmd_types)}>"
