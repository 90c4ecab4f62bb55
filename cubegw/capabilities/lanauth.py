"""LAN authorization (protocol.md 8): who on the LAN may change the gateway or read a
secret, and the wrong-password lockout, both per source address.

A call that changes the gateway or reveals a secret (``needs_proof``) is served on the
LAN only to a source address that proved the useradmin or telecomadmin password: in the
call itself (USER/PASSWORD or PassWD), or by a successful call with a password (such as
CHECK_PASSWD_PARAM) within ``session_ttl`` seconds.  GET_WIFI_INFO is served to anyone,
with its passwords blanked unless proven.  ``mode`` "open" serves everything to anyone
(the field's behaviour, for labs).  The dispatcher applies these rules; the transports
only pass the source address.
"""

from collections import OrderedDict

from cubegw.capabilities.base import PasswordGuesses

__all__ = ["AUTH_MODES", "FAIL_NEED_AUTH", "LanAuth", "needs_proof", "blank_secrets"]

AUTH_MODES = ("password", "open")
FAIL_NEED_AUTH = "NEED_AUTH"

#: Calls that change the gateway or reveal a secret, beyond every SET_* (protocol.md 8).
PROVEN_ONLY = frozenset({
    "HG_COMMAND_REBOOT", "HG_LOCAL_RECOVERY", "UPGRADE", "PPPOE_DIAL_REQUEST",
    "GET_HG_LOID", "GET_DEVICE_INFO_ALL"})
#: Calls served to anyone whose reply fields of these names are blanked unless proven.
SECRET_FIELDS = {"GET_WIFI_INFO": frozenset({"PWD"})}


def needs_proof(cmd_type):
    return cmd_type.startswith("SET_") or cmd_type in PROVEN_ONLY


def blank_secrets(cmd_type, value):
    """``value`` (a reply's fields, nested) with the secret fields of ``cmd_type`` blanked."""
    names = SECRET_FIELDS.get(cmd_type)
    if not names:
        return value
    if isinstance(value, dict):
        return {k: ("" if k in names else blank_secrets(cmd_type, v)) for k, v in value.items()}
    if isinstance(value, list):
        return [blank_secrets(cmd_type, v) for v in value]
    return value


class LanAuth:
    """Sessions and password lockouts by source address, at most ``max_sources`` of
    each (the oldest forgotten first, so a host cycling addresses cannot grow them)."""

    def __init__(self, clock, mode="password", session_ttl=600.0, max_sources=256):
        if mode not in AUTH_MODES:
            raise ValueError(f"lan.auth must be one of {', '.join(AUTH_MODES)}")
        self.clock = clock
        self.mode = mode
        self.session_ttl = session_ttl
        self.max_sources = max_sources
        self._sessions = OrderedDict()      # source -> session end
        self._guesses = OrderedDict()       # source -> PasswordGuesses

    @property
    def open(self):
        return self.mode == "open"

    def proven(self, source):
        """Whether ``source`` has a live session (always, when open)."""
        if self.open:
            return True
        end = self._sessions.get(source)
        if end is None:
            return False
        if self.clock.seconds() >= end:
            del self._sessions[source]
            return False
        return True

    def prove(self, source):
        """``source`` gave a right password: a session for ``session_ttl`` seconds."""
        if source is None:
            return
        self._sessions.pop(source, None)
        self._sessions[source] = self.clock.seconds() + self.session_ttl
        while len(self._sessions) > self.max_sources:
            self._sessions.popitem(last=False)

    def guesses(self, source):
        """The wrong-password count of ``source``: one host's guesses lock out that host
        only, never the owner's phone at another address."""
        guesses = self._guesses.pop(source, None) or PasswordGuesses(self.clock)
        self._guesses[source] = guesses
        while len(self._guesses) > self.max_sources:
            self._guesses.popitem(last=False)
        return guesses
