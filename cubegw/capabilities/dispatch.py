"""Check a capability call and route it to its provider (protocol.md 8-9).

The LAN server (Post1) and the plugin-center client (Post) decode the
``Parameter`` and call ``Dispatcher.dispatch(side, parameter)``; it fires with
an ``Outcome``: the Result code, the reply payload (or None: no
``return_Parameter``) and the actions to run once the reply is written.
"""

from __future__ import annotations

import inspect
import math
import re
from types import CoroutineType
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from twisted.internet import defer
from twisted.python import failure

from cubegw import wire
from cubegw.backend import BackendError
from cubegw.capabilities.base import (
    LOCAL, PENDING, RIGHT_BOTH, SIDE_RIGHT, CapabilityFailure, CapabilityUnavailable,
    IGatewayCapability, PasswordGuesses, allows, check_account, field_right, fired,
    text_values,
)
from cubegw.capabilities.catalogue import LazyProvider
from cubegw.capabilities.lanauth import (
    FAIL_NEED_AUTH, SECRET_FIELDS, LanAuth, blank_secrets, needs_proof,
)
from cubegw.logs import LineBudget, Logger
from cubegw.store import (
    MGT, MGT_SECTION, ParamSpec, SectionType, String, UnsignedInt,
)
from cubegw.store.uci import UciError

__all__ = [
    "RESULT_OK", "RESULT_BUSY", "RESULT_NOT_ALLOWED", "RESULT_NOT_RUNNING",
    "RESULT_TIMEOUT", "RIGHTS_TYPE", "FAIL_UNKNOWN", "FAIL_NO_RIGHT", "field_right",
    "Outcome", "Rights", "Dispatcher",
    "DuplicateCmdType", "discover_providers",
    "encode_reply", "request_id", "index_providers", "ensure_rights_schema",
]

log = Logger()  # a successful call is routine: debug

RESULT_OK = 0
RESULT_BUSY = -5
RESULT_NOT_ALLOWED = -12
RESULT_NOT_RUNNING = -16
RESULT_TIMEOUT = -100

#: The field gateway's FailReasons for a CmdType it does not serve, or one whose right
#: forbids the side (protocol.md 8): Result 0, Status "1".
FAIL_UNKNOWN = "UNRECOGNIZE_REQUEST"
FAIL_NO_RIGHT = "NO_RIGHT_ACCESS"

_SEQUENCE_ID = re.compile(r"[0-9A-Fa-f]{8}")
_ABILITY = (MGT_SECTION, "Ability")      # its key in Store.derived
_BUILTIN_SKIP = frozenset({"base", "catalogue", "dispatch", "runtime", "stored"})

#: SET_RIGHT's overrides, one UCI section per CmdType.  The operator's, so
#: owned like X_CT-COM_Mgt: kept across every factory reset.  The option keeps a bit
#: per side, which is what the field gateway stores for SET_RIGHT's RIGHT: (RIGHT+1) & 3
#: (``field_right``).  Overrides written before SET_RIGHT took the field's values were
#: stored in this same form, so they keep their meaning: nothing to migrate.
RIGHTS_TYPE = SectionType(
    "capability_right", "cmdtype", MGT,
    (ParamSpec("capability_right", "right", UnsignedInt(0, 3), RIGHT_BOTH, MGT,
               doc="who may call: 0 none, 1 local (Post1), 2 remote (Post), 3 both "
                   "(SET_RIGHT's RIGHT + 1, modulo 4)"),),
    key_kind=String(64, non_empty=True, no_whitespace=True))



def ensure_rights_schema(schema) -> None:
    """Register ``RIGHTS_TYPE`` in ``schema`` unless it is there already."""
    schema.ensure_type(RIGHTS_TYPE)


class DuplicateCmdType(ValueError):
    """Two providers claim one CmdType: refused at start."""


class Outcome:
    """What a call came to.

    ``result``: the Post/Post1 ``Result``; ``payload``: the reply payload (all
    values strings) to send as ``return_Parameter``, or None for none;
    ``after``: callables to run, in order, once the reply bytes are written.
    Equal by value.  (A ``NamedTuple`` class cost ~8 KiB of the daemon's memory.)
    """

    __slots__ = ("result", "payload", "after")

    def __init__(self, result: int, payload: Optional[Dict[str, Any]],
                 after: Tuple[Callable[[], Any], ...] = ()):
        self.result, self.payload, self.after = result, payload, after

    def __eq__(self, other):
        if type(other) is not Outcome:
            return NotImplemented
        return (self.result, self.payload, self.after) == \
            (other.result, other.payload, other.after)

    __hash__ = None                     # the payload is a dict

    def __repr__(self):
        return f"Outcome(result={self.result!r}, payload={self.payload!r}, after={self.after!r})"

    def run_after(self) -> None:
        """Run the after-reply actions; one that raises is logged, the rest run."""
        for action in self.after:
            try:
                result = action()
            except Exception:
                log.failure("after-reply action {action!r} failed", action=action)
                continue
            if isinstance(result, defer.Deferred):
                result.addErrback(lambda f, a=action: log.failure(
                    "after-reply action {action!r} failed", failure=f, action=a))


def request_id(msg: Any) -> Optional[int]:
    """The ID of a request that could not be decoded, if it has a usable one: a
    refusal then still names the request it answers."""
    try:
        return wire.as_int(msg.get("ID"), "ID") if isinstance(msg, dict) else None
    except wire.WireError:
        return None


def encode_reply(outcome: Outcome, ident: int) -> Tuple[bytes, Outcome]:
    """The Post/Post1 reply frame for ``outcome``, and the outcome it stands for.

    A reply that cannot be encoded (a value past the frame limit) goes out as
    Result -16 instead, with no after-reply actions: they run only after a real answer.
    """
    # PostReply(...).to_wire() spelt out (a test holds them equal): the typed message
    # was a third of encoding a reply
    message = {"Result": outcome.result, "ID": ident}
    try:
        if outcome.payload is not None:
            message["return_Parameter"] = wire.encode_parameter(outcome.payload)
        return wire.encode_frame(message), outcome
    except wire.WireError as e:
        log.error("reply to ID {id} not sendable: {reason}", id=ident, reason=e.reason)
        failed = Outcome(RESULT_NOT_RUNNING, None)
        return wire.encode_frame({"Result": failed.result, "ID": ident}), failed


class Rights:
    """Who may call each CmdType: the provider's default unless SET_RIGHT
    stored an override in the store."""

    def __init__(self, store, defaults: Dict[str, int]):
        ensure_rights_schema(store.schema)
        self.store = store
        self.defaults = dict(defaults)

    def get(self, cmd_type: str) -> int:
        """Asked on every call: kept until the store's contents change."""
        return self.store.derived((RIGHTS_TYPE.type, cmd_type), lambda: self._stored(cmd_type))

    def _stored(self, cmd_type: str) -> int:
        item = self.store.get_section(RIGHTS_TYPE.type, cmd_type)
        return self.defaults[cmd_type] if item is None else item["right"]

    def set(self, cmd_type: str, right: Any) -> int:
        """Store an override in the stored form (bits, StoreError if not 0-3; SET_RIGHT
        converts the field's RIGHT with ``field_right``); returns it."""
        if cmd_type not in self.defaults:
            raise KeyError(cmd_type)
        values = {"right": right}
        if self.store.get_section(RIGHTS_TYPE.type, cmd_type) is None:
            item = self.store.add_section(RIGHTS_TYPE.type, cmd_type, values)
        else:
            item = self.store.update_section(RIGHTS_TYPE.type, cmd_type, values)
        return item["right"]

    def table(self) -> Dict[str, int]:
        return {cmd: self.get(cmd) for cmd in sorted(self.defaults)}


def _providers_in(module) -> list:
    return [value for value in vars(module).values()
            if IGatewayCapability.providedBy(value) and not inspect.isclass(value)]


def discover_providers(plugin_package=None) -> list:
    """The built-in providers (module-level instances in the modules of
    ``cubegw.capabilities``) and the vendors' (``twisted.plugin.getPlugins``
    over ``plugin_package``, by default ``cubegw.plugins``), every module imported now.
    The daemon uses ``catalogue.lazy_providers`` instead: the same, imported on first call."""
    import importlib
    import pkgutil

    from twisted.plugin import getPlugins

    import cubegw.capabilities as builtin
    if plugin_package is None:
        import cubegw.plugins as plugin_package
    found = []
    for info in sorted(pkgutil.iter_modules(builtin.__path__), key=lambda i: i.name):
        if info.name not in _BUILTIN_SKIP and not info.name.startswith("_"):
            found.extend(_providers_in(
                importlib.import_module(f"{builtin.__name__}.{info.name}")))
    found.extend(getPlugins(IGatewayCapability, plugin_package))
    return found


def index_providers(providers: Iterable[Any]) -> Dict[str, Any]:
    """CmdType -> provider; DuplicateCmdType if two claim one name."""
    index: Dict[str, Any] = {}
    for provider in providers:
        for cmd_type in provider.cmd_types:
            if cmd_type in index and index[cmd_type] is not provider:
                raise DuplicateCmdType(
                    f"CmdType {cmd_type} is claimed by both {index[cmd_type]!r} "
                    f"and {provider!r}")
            index[cmd_type] = provider
    return index


class Dispatcher:
    """Routes calls to providers, enforcing rights, accounts, a timeout per
    call and a cap on calls in flight.

    ``context`` is the ``CapabilityContext`` each call gets a copy of;
    ``clock`` runs the timeouts.  ``store`` keeps the rights and says whether
    the local interface is closed (X_CT-COM_Mgt.Ability = 1).
    """

    def __init__(self, providers, store, context, clock, timeout=10.0, max_concurrent=16,
                 lan_auth=None):
        self.providers = index_providers(providers)
        self.store = store
        self.context = context
        self.clock = clock
        self.timeout = timeout
        self.max_concurrent = max_concurrent
        self.rights = Rights(store, {cmd: p.default_right for cmd, p in self.providers.items()})
        self.guesses = PasswordGuesses(clock)      # the remote side's (a platform's) count
        # the wiring passes the configured one (lan.auth, default "password"); a
        # dispatcher built bare (unit tests of the capabilities) serves the LAN open
        self.lan_auth = lan_auth or LanAuth(clock, mode="open")
        self.in_flight = 0
        #: the info lines of changes and secret reads: 20 a minute, then counted
        self.audit = LineBudget(clock, per_window=20)

    def dispatch(self, side: str, parameter: Any, source: Any = None) -> defer.Deferred:
        """Serve one decoded ``Parameter`` from ``side`` ("local" for Post1,
        "remote" for Post) sent by ``source`` (the LAN client's address: sessions and
        password lockouts are per source); a Deferred that fires with an ``Outcome``
        and never fails.

        This is the one place a call's rules are applied (Ability, rights, accounts,
        the time limit, the cap on calls in flight): the transports only frame.
        """
        if side not in SIDE_RIGHT:
            raise ValueError(f"side must be 'local' or 'remote', got {side!r}")
        try:
            return self._dispatch(side, parameter, source)
        except Exception:
            log.failure("capability call from {side} failed before its provider ran",
                        side=side)
            return defer.succeed(Outcome(RESULT_NOT_RUNNING, None))

    def _dispatch(self, side, parameter, source=None):
        if not isinstance(parameter, dict):
            return self._refuse(side, None, "Parameter is not an object")
        if side == LOCAL and self.store.derived(_ABILITY, self._ability) == 1:
            return self._refuse(side, parameter.get("CmdType"),
                                "local interface closed (Ability 1)")
        cmd_type = parameter.get("CmdType")
        raw_seq = parameter.get("SequenceId")
        seq = text_values(raw_seq) if isinstance(raw_seq, (str, int)) else ""
        provider = self.providers.get(cmd_type) if isinstance(cmd_type, str) else None
        if provider is None:
            # the field's answer: Result 0, Status 1, so the caller sees why (protocol.md 8)
            shown = cmd_type if isinstance(cmd_type, str) else ""
            log.info("capability {cmd!r:.60} from {side} refused: unknown CmdType",
                     cmd=cmd_type, side=side)
            return defer.succeed(self._reply(shown[:64], seq, None, FAIL_UNKNOWN))
        if not allows(self.rights.get(cmd_type), side):
            log.info("capability {cmd} from {side} refused: its right forbids this side",
                     cmd=cmd_type, side=side)
            return defer.succeed(self._reply(cmd_type, seq, None, FAIL_NO_RIGHT))
        if self.in_flight >= self.max_concurrent:
            log.warn("capability {cmd} refused: {n} calls in flight", cmd=cmd_type,
                     n=self.in_flight)
            return defer.succeed(Outcome(RESULT_BUSY, None))

        if not (isinstance(raw_seq, str) and _SEQUENCE_ID.fullmatch(raw_seq)):
            return defer.succeed(self._reply(
                cmd_type, seq, None, "SequenceId must be 8 hex characters"))
        if isinstance(provider, LazyProvider):
            try:
                provider = self._load(provider)
            except CapabilityFailure as e:
                return defer.succeed(self._reply(cmd_type, seq, None, e.reason))
        # USER/PASSWORD on LAN calls only: a platform Post is authenticated by the
        # platform (protocol.md 9); a password check as the call itself checks both sides
        local = side == LOCAL
        has_password = "PASSWORD" in parameter or "PassWD" in parameter
        proven = not local or self.lan_auth.proven(source)
        if (provider.needs_account and (local or getattr(provider, "account_is_the_call",
                                                         False))) or \
                (local and has_password and not proven and (needs_proof(cmd_type)
                                                     or cmd_type in SECRET_FIELDS)):
            guesses = self.lan_auth.guesses(source) if local else self.guesses
            wait = guesses.wait()
            if wait:
                log.warn("capability {cmd} from {source} refused: too many wrong passwords, "
                         "{s:.0f} s left", cmd=cmd_type, source=source, s=wait)
                return defer.succeed(self._reply(
                    cmd_type, seq, None,
                    f"too many wrong passwords; try again in {math.ceil(wait)} s"))
            if not check_account(self.context.config.accounts, parameter):
                guesses.wrong()
                log.info("capability {cmd} from {source} refused: wrong user or password",
                         cmd=cmd_type, source=source)
                return defer.succeed(self._reply(cmd_type, seq, None,
                                                 "wrong user or password"))
            guesses.right()
            if local:
                self.lan_auth.prove(source)
                proven = True
        if not proven and needs_proof(cmd_type):
            log.info("capability {cmd} from {source} refused: no password proven "
                     "(lan.auth)", cmd=cmd_type, source=source)
            return defer.succeed(self._reply(cmd_type, seq, None, FAIL_NEED_AUTH))

        context = self.context.for_call(side, self.rights)
        self.in_flight += 1
        try:
            result = provider.call(cmd_type, parameter, context)
        except Exception:
            result = failure.Failure()
        if isinstance(result, CoroutineType):       # inspect.iscoroutine, without the call
            result = defer.ensureDeferred(result)
        if isinstance(result, defer.Deferred):
            value = fired(result)       # done already (a write made at once): no chain
            if value is not PENDING:
                result = value
        if not proven:
            if isinstance(result, defer.Deferred):
                result.addCallback(lambda fields: blank_secrets(cmd_type, fields))
            elif not isinstance(result, failure.Failure):
                result = blank_secrets(cmd_type, result)
        if not isinstance(result, defer.Deferred):
            # answered at once, as most capabilities are: no Deferred chain, no timer
            return defer.succeed(self._finish(result, cmd_type, seq, side, context, source))
        if not result.called or result.paused:
            result.addTimeout(self.timeout, self.clock)
        return result.addBoth(self._finish, cmd_type, seq, side, context, source)

    def _ability(self):
        return self.store.get(MGT_SECTION, "Ability")

    def _load(self, lazy):
        """A built-in provider's first call: import it; it serves its CmdTypes from now."""
        provider = lazy.load()
        for cmd_type in lazy.cmd_types:
            if self.providers.get(cmd_type) is lazy:
                self.providers[cmd_type] = provider
        return provider

    def _finish(self, result, cmd_type, seq, side, context, source=None):
        """The provider's result (fields or a Failure) -> the call's ``Outcome``."""
        self.in_flight -= 1
        try:
            if isinstance(result, failure.Failure):
                return self._failed(result, cmd_type, seq, side)
            if not isinstance(result, dict):
                log.error("capability {cmd}: provider returned {type}, not a dict",
                          cmd=cmd_type, type=type(result).__name__)
                return self._reply(cmd_type, seq, None, "internal error")
            logged, held = self.audit.take() if needs_proof(cmd_type) else (False, 0)
            if logged:                  # a change or a secret read: worth a line, and who
                log.info("capability {cmd} {seq} from {side} {source}: done{more}",
                         cmd=cmd_type, seq=seq, side=side, source=source,
                         more=f" (and {held} such calls not logged)" if held else "")
            else:
                log.debug("capability {cmd} {seq} from {side}: ok", cmd=cmd_type, seq=seq,
                          side=side)
            return self._reply(cmd_type, seq, result, None, context.after)
        except Exception:
            log.failure("capability {cmd}: reply not built", cmd=cmd_type)
            return Outcome(RESULT_OK, {"CmdType": cmd_type, "SequenceId": seq,
                                       "Status": "1", "FailReason": "internal error"})

    def _failed(self, reason, cmd_type, seq, side):
        if reason.check(defer.TimeoutError):
            log.warn("capability {cmd} {seq} timed out after {t} s", cmd=cmd_type,
                     seq=seq, t=self.timeout)
            return Outcome(RESULT_TIMEOUT, None)
        if reason.check(CapabilityFailure, BackendError, UciError):
            # UciError: a value with a control character for a UCI file (backend.write_uci)
            why = getattr(reason.value, "reason", None) or str(reason.value)
            log.info("capability {cmd} {seq} from {side}: {reason}", cmd=cmd_type,
                     seq=seq, side=side, reason=why)
            return self._reply(cmd_type, seq, None, why)
        if reason.check(CapabilityUnavailable):
            log.warn("capability {cmd} not running: {why}", cmd=cmd_type,
                     why=str(reason.value))
            return Outcome(RESULT_NOT_RUNNING, None)
        log.failure("capability {cmd} {seq} failed", failure=reason, cmd=cmd_type, seq=seq)
        return self._reply(cmd_type, seq, None, "internal error")

    def _refuse(self, side, cmd_type, why):
        log.info("capability {cmd!r} from {side} refused: {why}", cmd=cmd_type, side=side,
                 why=why)
        return defer.succeed(Outcome(RESULT_NOT_ALLOWED, None))

    def _reply(self, cmd_type, seq, fields, fail_reason, after=()):
        payload = {"CmdType": cmd_type, "SequenceId": seq}
        if fields:                      # most SETs answer {}: nothing to add
            payload.update((k, v) for k, v in text_values(dict(fields)).items()
                           if k not in ("CmdType", "SequenceId", "Status", "FailReason"))
        if fail_reason is None:
            payload["Status"] = "0"
        else:
            payload["Status"] = "1"
            payload["FailReason"] = fail_reason
            after = ()
        return Outcome(RESULT_OK, payload, tuple(after))
