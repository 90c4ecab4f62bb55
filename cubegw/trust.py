"""What a reverse trigger must pass before it is acted on (protocol.md 5); pure.

Which hosts a trigger may name (``trust`` in the config):

A pattern is a CIDR or an address (``192.0.2.0/24``, ``2001:db8::1``), a domain suffix
(``.example.net``: any name under it, not the name itself) or a host name (exact, case
folded).  An empty list trusts any host, as the field gateway does.
"""

import ipaddress
from collections import deque

from cubegw.identity import compare_digest

#: The heartbeat Interval a platform may set (s); outside it the value is ignored.
INTERVAL_RANGE = (1, 86400)


class TrustError(ValueError):
    """A pattern that is neither a CIDR, an address, a suffix nor a host name."""


def _is_network(pattern):
    return "/" in pattern or ":" in pattern or pattern.replace(".", "").isdigit()


def check_pattern(pattern):
    """``pattern`` normalised (lower case), or ``TrustError`` saying why not."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise TrustError("must be a non-empty string")
    p = pattern.strip().lower()
    if _is_network(p):
        try:
            ipaddress.ip_network(p, strict=False)
        except ValueError:
            raise TrustError(f"{pattern!r} is not an address or CIDR")
        return p
    name = p[1:] if p.startswith(".") else p
    labels = name.split(".")
    if not all(lab and len(lab) <= 63 and lab.replace("-", "").replace("_", "").isalnum()
               and lab.isascii() for lab in labels):
        raise TrustError(f"{pattern!r} is not a host name or .suffix")
    return p


def host_trusted(host, patterns):
    """Whether ``host`` (a name or an address literal) is one ``patterns`` allow."""
    if not patterns:
        return True
    host = host.strip().lower().rstrip(".").strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for p in patterns:
        if address is not None:
            if _is_network(p) and address in ipaddress.ip_network(p, strict=False):
                return True
        elif p.startswith("."):
            if host.endswith(p) and len(host) > len(p):
                return True
        elif host == p:
            return True
    return False


def interval(value):
    """A platform's ``Interval`` if within ``INTERVAL_RANGE``, else None (ignored)."""
    low, high = INTERVAL_RANGE
    return value if isinstance(value, int) and low <= value <= high else None


class TriggerGate:
    """The state of the trigger checks: the last accepted trigger and its answer, the
    times triggers were acted on (the rate budget), and the refusal log's rate limit.

    Resends and refused triggers never touch the budget; a refusal is worth a log line
    at most once per ``LOG_INTERVAL`` (the rest are counted in the next line).
    """

    #: A trigger equal to the last accepted one within this many seconds is the
    #: platform resending it (its answer was lost): the same answer again, not acted on.
    RESEND_WINDOW = 10.0
    LOG_INTERVAL = 1.0

    def __init__(self, limit, plugin_centers=(), distribution=()):
        self.limit = limit
        self.trusted = {"RequestPlug-in": tuple(plugin_centers),
                        "RequestDistri": tuple(distribution)}
        self._last = None            # (trigger, when, the DevRND its answer carried)
        self._times = deque()        # when recent triggers were acted on
        self._logged_at = None
        self.unlogged = 0

    def resent(self, trigger, now):
        """The DevRND answered to ``trigger`` if it is a resend of the last accepted one."""
        if self._last is not None:
            last, when, dev_rnd = self._last
            if last == trigger and 0 <= now - when < self.RESEND_WINDOW:
                return dev_rnd
        return None

    def refusal(self, trigger, now, expected_key):
        """Why ``trigger`` is refused, or None; ``expected_key()`` gives the current Key
        (None before any DevRND)."""
        if not host_trusted(trigger.ServerAddr, self.trusted[trigger.METHOD]):
            return f"{trigger.ServerAddr!r:.80} is not a trusted {trigger.METHOD} host"
        expected = expected_key()
        if expected is None:
            return "not registered: no DevRND for the Key"
        if not compare_digest(trigger.Key, expected):
            return "wrong Key"
        while self._times and now - self._times[0] >= 60:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return f"more than {self.limit} triggers a minute"
        return None

    def accepted(self, trigger, now, dev_rnd):
        """``trigger`` is acted on and answered with ``dev_rnd``."""
        self._times.append(now)
        self._last = (trigger, now, dev_rnd)

    def log_due(self, now):
        """Whether a refusal at ``now`` gets a log line (else it is counted in ``unlogged``)."""
        if self._logged_at is not None and 0 <= now - self._logged_at < self.LOG_INTERVAL:
            self.unlogged += 1
            return False
        self._logged_at = now
        return True
