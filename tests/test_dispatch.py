"""The capability dispatcher: Result codes, rights, accounts, replies, discovery."""

import json
import os
import sys
import textwrap

from twisted.internet import defer
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cubegw.capabilities.base import PENDING, fired
from cubegw.capabilities import (
    RIGHT_BOTH, RIGHT_LOCAL, RIGHT_NONE, RIGHT_REMOTE, Capability, CapabilityContext,
    CapabilityFailure, CapabilityUnavailable, DuplicateCmdType,
    IGatewayCapability, Outcome, discover_providers, dispatch,
)
from cubegw import wire
from cubegw.config import Accounts, GatewayConfig

from tests.helpers import IDENTITY
from tests.helpers.dispatch import SEQ, TELECOMADMIN, USERADMIN, Harness, Pending

BUILTIN = {
    "GET_SN_INFO", "QUERY_CPU_INFO", "QUERY_MEM_INFO", "GET_TIME_DURATION", "GET_VERSION",
    "QUERY_SYSTEM_INFO", "CHECK_PASSWD_PARAM", "GET_HG_LOID", "SET_BUSINESS_PLATFORM_PARAM",
    "SET_BUSSINESS_PLATFORM_PARAM", "SET_RIGHT", "HG_COMMAND_REBOOT", "HG_LOCAL_RECOVERY",
    # network, wifi, lan_devices
    "QUERY_WAN_NUM", "QUERY_WAN_INFO", "QUERY_WAN_REALRATE", "SET_NETWORK_DNS",
    "PPPOE_DIAG_REQ", "PPPOE_DIAL_REQUEST", "GET_WIFI_INFO", "SET_WIFI_INFO",
    "SET_WLAN_SSID_DISABLE", "GET_WLAN_INTF_INFO", "GET_WLAN_ATTACH_INFO",
    "SET_WIFI_RATE_PRIORITY_MODE", "SET_HG_WIFI_TIMER", "GET_LAN_NET_INFO", "GET_LAN_INFO2",
    "SET_ATTACH_DEVICE_RIGHT", "GET_ATTACH_DEVICE_RIGHT", "LAN_DEVICE_ACCESS", "DEVICE_SPEED",
    # diagnostics, upgrade, hardware, system extras
    "PING_DIAG_REQ", "GET_PING_RESULT", "TRACEROUTE_DIAG_REQ", "GET_TRACEROUTE_RESULT",
    "HTTP_DOWNLOAD_REQUEST", "SET_HTTP_CFG", "UPGRADE", "SET_WD_INFO", "GET_VOIP_INFO",
    "GET_VOIP_REG_STATUS", "GET_PONINFORM_REQ", "GET_PON_STATUS", "SYSTEST",
    "GET_DEVICE_INFO_ALL", "SET_HG_DATE_TIME_SYNC", "GET_SERVICE", "INFORM_DIAG_REQ",
    "REGISTER", "REGISTER_GETSTAT",
    # the rest of the field's table: redirect, tr069, field_extra, vendor
    "SET_REDIRECT_INFO", "GETPARAMETERVALUES", "SETPARAMETERVALUES", "ADDOBJECT",
    "DELETEOBJECT", "GET_HW_IP", "GET_NETWORK_DNS", "QUERY_REALRATE",
    "QUERY_ATTACH_DEVICE_REALRATE", "SET_ATTACH_DEVICE_NAME", "SET_HG_DEV_NAME",
    "GET_HG_DEV_NAME", "SET_WLAN_SSID_ENABLE", "SET_LED_STATUS", "SET_HG_LED_INDICATOR_TIMER",
    "WPS_ON", "WPS_OFF", "WPS_QY", "SET_HTTP_CFG1", "SET_OS_RIGHT", "SET_RIGHT1",
    "SET_HG_WIFI_TIMER_EX", "GET_HG_WIFI_TIMER_EX", "CREATE_WANL2TP_TUNNEL",
    "REMOVE_WANL2TP_TUNNEL", "ATTACH_WANL2TP_TUNNEL", "DETACH_WANL2TP_TUNNEL",
    "GET_WANL2TP_TUNNEL_STATUS", "ATTACH_WAN_DNS_TUNNEL", "DETACH_WAN_DNS_TUNNEL",
    "MULTICAST_DIAG_REQ", "GET_ATTACH_DEVICE_BANDWIDTH", "SET_ATTACH_DEVICE_BANDWIDTH",
    "GET_ATTACH_DEVICE_STORAGE_ACCESS_BLACKLIST", "SET_SLEEP_STATUS", "GET_SLEEP_STATUS",
}


class Echo(Capability):
    """Returns what it is asked to, in types a provider might use."""

    cmd_types = ("ECHO",)

    def call(self, cmd_type, payload, context):
        self.seen = (cmd_type, payload, context)
        return {"Int": 7, "Float": 2.5, "Bool": True, "None": None, "Text": "t",
                "List": [{"MAC": 1}, 2], "Status": "bogus", "CmdType": "bogus"}


class Coroutine(Capability):
    """An async provider that waits on ``gate``."""

    cmd_types = ("ASYNC",)

    def __init__(self):
        self.gate = defer.Deferred()

    async def _call(self):
        value = await self.gate
        return {"Value": value}

    def call(self, cmd_type, payload, context):
        return self._call()


class Broken(Capability):
    """Raises an unexpected exception whose text must not leak."""

    cmd_types = ("BROKEN",)

    def call(self, cmd_type, payload, context):
        raise RuntimeError("secret /etc/shadow detail")


class Refusing(Capability):
    """Fails the capability's own way, and one CmdType is not running."""

    cmd_types = ("REFUSE", "DOWN")

    def handle_REFUSE(self, payload, context):
        raise CapabilityFailure("not supported")

    def handle_DOWN(self, payload, context):
        raise CapabilityUnavailable("daemon stopped")


class Guarded(Capability):
    """Needs USER/PASSWORD."""

    cmd_types = ("GUARDED",)
    needs_account = True

    def call(self, cmd_type, payload, context):
        return {"Ok": "yes"}


class LocalOnly(Capability):
    cmd_types = ("LOCAL_ONLY",)
    default_right = RIGHT_LOCAL

    def call(self, cmd_type, payload, context):
        return {}


class RemoteOnly(Capability):
    cmd_types = ("REMOTE_ONLY",)
    default_right = RIGHT_REMOTE

    def call(self, cmd_type, payload, context):
        return {}


class Nobody(Capability):
    cmd_types = ("NOBODY",)
    default_right = RIGHT_NONE

    def call(self, cmd_type, payload, context):
        return {}


def fakes():
    return [Echo(), Pending(), Coroutine(), Broken(), Refusing(), Guarded(), LocalOnly(),
            RemoteOnly(), Nobody()]


def _all_strings(value):
    if isinstance(value, dict):
        return all(isinstance(k, str) and _all_strings(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_strings(v) for v in value)
    return isinstance(value, str)


class ResultCodeTests(SynchronousTestCase):
    """Each Result code of protocol.md section 8."""

    def setUp(self):
        self.h = Harness(self, fakes() + discover_providers(), max_concurrent=2, timeout=10.0)

    def test_success(self):
        """A served call is Result 0, Status "0", echoing CmdType and SequenceId."""
        outcome = self.h.call(self, "ECHO", Extra="x")
        self.assertEqual(outcome.result, 0)
        self.assertEqual(outcome.payload["CmdType"], "ECHO")
        self.assertEqual(outcome.payload["SequenceId"], SEQ)
        self.assertEqual(outcome.payload["Status"], "0")
        self.assertEqual(outcome.after, ())

    def test_values_are_strings(self):
        """Ints, floats, booleans, None and nested values all become strings."""
        payload = self.h.call(self, "ECHO").payload
        self.assertTrue(_all_strings(payload), payload)
        self.assertEqual(payload["Int"], "7")
        self.assertEqual(payload["Float"], "2.5")
        self.assertEqual(payload["Bool"], "1")
        self.assertEqual(payload["None"], "")
        self.assertEqual(payload["List"], [{"MAC": "1"}, "2"])

    def test_provider_cannot_override_header(self):
        """A provider's Status/CmdType fields do not replace the dispatcher's."""
        payload = self.h.call(self, "ECHO").payload
        self.assertEqual((payload["CmdType"], payload["Status"]), ("ECHO", "0"))

    def test_builtin_replies_are_strings(self):
        """Every built-in read-only capability replies with strings only."""
        for cmd in ("GET_SN_INFO", "QUERY_MEM_INFO", "GET_TIME_DURATION", "GET_VERSION",
                    "QUERY_SYSTEM_INFO", "GET_HG_LOID"):
            outcome = self.h.call(self, cmd)
            self.assertEqual(outcome.payload["Status"], "0", cmd)
            self.assertTrue(_all_strings(outcome.payload), outcome.payload)
        self.assertTrue(_all_strings(self.h.call(self, "QUERY_CPU_INFO", side="remote").payload))

    def test_unknown_cmdtype(self):
        """An unknown CmdType is answered as the field does: Result 0, Status 1,
        FailReason UNRECOGNIZE_REQUEST, from both sides."""
        for side in ("local", "remote"):
            self.assertEqual(self.h.call(self, "NO_SUCH_THING", side=side), Outcome(0, {
                "CmdType": "NO_SUCH_THING", "SequenceId": SEQ, "Status": "1",
                "FailReason": "UNRECOGNIZE_REQUEST"}))

    def test_missing_or_bad_cmdtype(self):
        """A missing or non-string CmdType is UNRECOGNIZE_REQUEST with CmdType "";
        a Parameter that is not an object is Result -12 (nothing to echo)."""
        for parameter in ({"SequenceId": SEQ}, {"CmdType": 5, "SequenceId": SEQ},
                          {"CmdType": ["ECHO"], "SequenceId": SEQ}):
            outcome = self.successResultOf(self.h.dispatcher.dispatch("local", parameter))
            self.assertEqual(outcome, Outcome(0, {
                "CmdType": "", "SequenceId": SEQ, "Status": "1",
                "FailReason": "UNRECOGNIZE_REQUEST"}), parameter)
        for parameter in (["ECHO"], "ECHO"):
            outcome = self.successResultOf(self.h.dispatcher.dispatch("local", parameter))
            self.assertEqual(outcome, Outcome(-12, None), parameter)

    def test_unknown_cmdtype_with_ability_closed(self):
        """With Ability 1 every Post1 is -12, an unknown CmdType too."""
        self.h.store.set("mgt", "Ability", 1)
        self.assertEqual(self.h.call(self, "NO_SUCH_THING"), Outcome(-12, None))

    def test_bad_side(self):
        """A side other than local/remote is a programming error."""
        self.assertRaises(ValueError, self.h.dispatcher.dispatch, "lan", {"CmdType": "ECHO"})

    def test_busy(self):
        """Beyond max_concurrent calls in flight, Result -5; capacity comes back."""
        first = self.h.dispatcher.dispatch("local", {"CmdType": "SLOW", "SequenceId": SEQ})
        second = self.h.dispatcher.dispatch("local", {"CmdType": "SLOW", "SequenceId": SEQ})
        self.assertNoResult(first)
        self.assertNoResult(second)
        self.assertEqual(self.h.call(self, "ECHO"), Outcome(-5, None))
        self.h.providers[1].pending[0].callback({})
        self.assertEqual(self.successResultOf(first).result, 0)
        self.assertEqual(self.h.call(self, "ECHO").result, 0)
        self.h.clock.advance(10)
        self.assertEqual(self.successResultOf(second).result, -100)
        self.assertEqual(self.h.dispatcher.in_flight, 0)

    def test_not_running(self):
        """CapabilityUnavailable is Result -16 with no payload."""
        self.assertEqual(self.h.call(self, "DOWN"), Outcome(-16, None))

    def test_timeout(self):
        """No answer within the timeout: Result -100, the provider's Deferred cancelled."""
        d = self.h.dispatcher.dispatch("local", {"CmdType": "SLOW", "SequenceId": SEQ})
        self.h.clock.advance(9.9)
        self.assertNoResult(d)
        self.h.clock.advance(0.1)
        self.assertEqual(self.successResultOf(d), Outcome(-100, None))
        self.assertEqual(self.h.providers[1].cancelled, 1)
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_coroutine(self):
        """A coroutine provider's result is the reply."""
        d = self.h.dispatcher.dispatch("local", {"CmdType": "ASYNC", "SequenceId": SEQ})
        self.assertNoResult(d)
        self.h.providers[2].gate.callback(42)
        self.assertEqual(self.successResultOf(d).payload["Value"], "42")
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_coroutine_timeout(self):
        """A coroutine that does not finish is cancelled at the timeout: -100."""
        gate = self.h.providers[2].gate
        d = self.h.dispatcher.dispatch("local", {"CmdType": "ASYNC", "SequenceId": SEQ})
        self.h.clock.advance(10)
        self.assertEqual(self.successResultOf(d).result, -100)
        self.assertTrue(gate.called)  # cancelled, and the coroutine gave up

    def test_sync_call_leaves_no_timer(self):
        """A call that answers at once leaves no timeout behind."""
        self.h.call(self, "ECHO")
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_sync_call_sets_no_timer(self):
        """A call that answers at once never asks the clock for a timeout at all."""
        timers = []
        self.patch(self.h.clock, "callLater", lambda *a, **kw: timers.append(a))
        self.h.call(self, "ECHO")
        self.assertEqual(timers, [])


class Fired(Capability):
    """Answers with a Deferred that has already fired: a value, or a failure."""

    cmd_types = ("FIRED", "FIRED_FAILING")

    def handle_FIRED(self, payload, context):
        return defer.succeed({"Value": 7})

    def handle_FIRED_FAILING(self, payload, context):
        return defer.fail(CapabilityFailure("refused at once"))


class FiredDeferredTests(SynchronousTestCase):
    """A Deferred that has fired is read (``fired``), not chained on: same Outcome."""

    def test_fired_reads_a_value(self):
        """``fired`` gives the value of a fired Deferred, PENDING otherwise."""
        self.assertEqual(fired(defer.succeed(3)), 3)
        self.assertIs(fired(defer.Deferred()), PENDING)
        inner = defer.Deferred()
        waiting = defer.succeed(1).addCallback(lambda _: inner)
        self.assertIs(fired(waiting), PENDING)            # paused on ``inner``
        inner.callback(5)
        self.assertEqual(fired(waiting), 5)

    def test_fired_leaves_a_failure_to_the_chain(self):
        """A failed Deferred is PENDING: its failure stays for the errback chain."""
        failed = defer.fail(ValueError("x"))
        self.assertIs(fired(failed), PENDING)
        self.failureResultOf(failed, ValueError)

    def test_same_outcome_as_a_value(self):
        """A provider's fired Deferred gives the Outcome its value gives, with no timer
        asked of the clock; a fired failure is still the provider's Status 1."""
        h = Harness(self, [Fired(), Echo()])
        timers = []
        self.patch(h.clock, "callLater", lambda *a, **kw: timers.append(a))
        outcome = h.call(self, "FIRED")
        self.assertEqual(outcome, Outcome(0, {"CmdType": "FIRED", "SequenceId": SEQ,
                                              "Value": "7", "Status": "0"}))
        payload = h.call(self, "FIRED_FAILING").payload
        self.assertEqual((payload["Status"], payload["FailReason"]), ("1", "refused at once"))
        self.assertEqual(timers, [])
        self.assertEqual(h.dispatcher.in_flight, 0)


class StatusTests(SynchronousTestCase):
    """Status "1" outcomes: SequenceId, provider failures, accounts."""

    def setUp(self):
        self.h = Harness(self, fakes())
        self.events = []
        self.patch(dispatch, "log", Logger(observer=self.events.append))

    def test_bad_sequence_id(self):
        """A SequenceId not of 8 hex characters: Result 0, Status 1, provider not called."""
        echo = self.h.providers[0]
        for seq in ("123", "GGGGGGGG", "0A1b2C3d0", 12345678, None, ""):
            parameter = {"CmdType": "ECHO", "SequenceId": seq}
            if seq is None:
                del parameter["SequenceId"]
            outcome = self.successResultOf(self.h.dispatcher.dispatch("local", parameter))
            self.assertEqual(outcome.result, 0)
            self.assertEqual(outcome.payload["Status"], "1")
            self.assertIn("SequenceId", outcome.payload["FailReason"])
            self.assertEqual(outcome.payload["CmdType"], "ECHO")
            self.assertTrue(_all_strings(outcome.payload))
        self.assertFalse(hasattr(echo, "seen"))

    def test_provider_exception(self):
        """An unexpected exception is Status 1 "internal error"; no traceback leaks."""
        outcome = self.h.call(self, "BROKEN")
        self.assertEqual(outcome.result, 0)
        self.assertEqual(outcome.payload["Status"], "1")
        self.assertEqual(outcome.payload["FailReason"], "internal error")
        text = repr(outcome.payload)
        self.assertNotIn("Traceback", text)
        self.assertNotIn("secret", text)
        self.assertNotIn("RuntimeError", text)
        failures = [e["log_failure"] for e in self.events if "log_failure" in e]
        self.assertEqual(len(failures), 1)
        self.assertTrue(failures[0].check(RuntimeError))  # the traceback goes to the log

    def test_capability_failure(self):
        """CapabilityFailure gives Status 1 with its reason."""
        payload = self.h.call(self, "REFUSE").payload
        self.assertEqual((payload["Status"], payload["FailReason"]), ("1", "not supported"))

    def test_account_both_users(self):
        """USER/PASSWORD of either account passes."""
        for user, password in (("useradmin", USERADMIN), ("telecomadmin", TELECOMADMIN)):
            payload = self.h.call(self, "GUARDED", USER=user, PASSWORD=password).payload
            self.assertEqual(payload["Status"], "0", user)
            self.assertEqual(payload["Ok"], "yes")

    def test_account_mismatch(self):
        """A wrong password, a password of the other user, an unknown user or none: Status 1."""
        for args in ({"USER": "useradmin", "PASSWORD": "nope"},
                     {"USER": "useradmin", "PASSWORD": TELECOMADMIN},
                     {"USER": "root", "PASSWORD": USERADMIN},
                     {"USER": "useradmin"}, {},
                     {"USER": "useradmin", "PASSWORD": 5}):
            payload = self.h.call(self, "GUARDED", **args).payload
            self.assertEqual(payload["Status"], "1", args)
            self.assertNotIn("Ok", payload)

    def test_account_checked_on_lan_only(self):
        """USER/PASSWORD is checked on LAN calls only: a platform Post is authenticated by
        the platform (protocol.md 9), so GUARDED from remote needs none."""
        payload = self.h.call(self, "GUARDED", side="remote").payload
        self.assertEqual((payload["Status"], payload["Ok"]), ("0", "yes"))
        self.assertEqual(self.h.call(self, "GUARDED", side="local").payload["Status"], "1")

    def test_password_guesses_limited(self):
        """5 wrong passwords within a minute lock every account-checked call for 60 s,
        the right password included; then it works again, and a right one clears the
        count."""
        wrong = {"USER": "useradmin", "PASSWORD": "guess"}
        right = {"USER": "useradmin", "PASSWORD": USERADMIN}
        for _ in range(4):
            self.assertEqual(self.h.call(self, "GUARDED", **wrong).payload["FailReason"],
                             "wrong user or password")
        self.assertEqual(self.h.call(self, "GUARDED", **right).payload["Status"], "0")
        for _ in range(5):                       # the right one cleared the count
            self.h.call(self, "GUARDED", **wrong)
        locked = self.h.call(self, "GUARDED", **right).payload
        self.assertEqual((locked["Status"], locked["FailReason"]),
                         ("1", "too many wrong passwords; try again in 60 s"))
        self.assertEqual(self.h.call(self, "ECHO").payload["Status"], "0")  # no account
        self.h.clock.advance(59.5)
        self.assertIn("try again in 1 s", self.h.call(self, "GUARDED", **right).payload[
            "FailReason"])
        self.h.clock.advance(0.5)
        self.assertEqual(self.h.call(self, "GUARDED", **right).payload["Status"], "0")

    def test_slow_guesses_not_locked(self):
        """Wrong passwords more than a minute apart never add up to a lockout."""
        for _ in range(10):
            self.h.call(self, "GUARDED", USER="useradmin", PASSWORD="guess")
            self.h.clock.advance(15)
        self.assertEqual(self.h.call(self, "GUARDED", USER="useradmin",
                                     PASSWORD=USERADMIN).payload["Status"], "0")

    def test_passwd_without_user(self):
        """PassWD alone passes if it is either account's password."""
        self.assertEqual(self.h.call(self, "GUARDED", PassWD=TELECOMADMIN).payload["Status"], "0")
        self.assertEqual(self.h.call(self, "GUARDED", PassWD=USERADMIN).payload["Status"], "0")
        self.assertEqual(self.h.call(self, "GUARDED", PassWD="x").payload["Status"], "1")

    def test_empty_account_never_matches(self):
        """An account with no configured password refuses the empty password."""
        h = Harness(self, fakes())
        h.dispatcher.context = CapabilityContext(
            h.store, GatewayConfig(accounts=Accounts("", "")), IDENTITY, h.backend, h.clock)
        payload = h.call(self, "GUARDED", USER="useradmin", PASSWORD="").payload
        self.assertEqual(payload["Status"], "1")

    def test_passwords_not_logged(self):
        """Neither a right nor a wrong password appears in any log event."""
        self.h.call(self, "GUARDED", USER="useradmin", PASSWORD=USERADMIN)
        self.h.call(self, "GUARDED", USER="useradmin", PASSWORD="wrong-secret")
        self.assertTrue(self.events)
        text = repr(self.events)
        self.assertNotIn(USERADMIN, text)
        self.assertNotIn("wrong-secret", text)


class RightsTests(SynchronousTestCase):
    """Rights per side, SET_RIGHT, and their persistence."""

    def setUp(self):
        self.h = Harness(self, fakes() + discover_providers())

    def status(self, cmd, side):
        """The Status of a call, or "refused" for NO_RIGHT_ACCESS."""
        payload = self.h.call(self, cmd, side=side).payload
        if payload.get("FailReason") == "NO_RIGHT_ACCESS":
            return "refused"
        return payload["Status"]

    def test_default_rights(self):
        """Each provider's default right decides which side may call it; a forbidden side
        gets Result 0, Status 1, FailReason NO_RIGHT_ACCESS."""
        for cmd, local, remote in (("ECHO", "0", "0"), ("LOCAL_ONLY", "0", "refused"),
                                   ("REMOTE_ONLY", "refused", "0"),
                                   ("NOBODY", "refused", "refused")):
            self.assertEqual(self.status(cmd, "local"), local, cmd)
            self.assertEqual(self.status(cmd, "remote"), remote, cmd)
        self.assertEqual(self.h.call(self, "NOBODY"), Outcome(0, {
            "CmdType": "NOBODY", "SequenceId": SEQ, "Status": "1",
            "FailReason": "NO_RIGHT_ACCESS"}))

    def test_field_defaults(self):
        """Every built-in CmdType is allowed from both sides, as in the field's table."""
        rights = self.h.dispatcher.rights
        for provider in discover_providers():
            for cmd in provider.cmd_types:
                self.assertEqual(rights.get(cmd), RIGHT_BOTH, cmd)

    def test_set_right_field_values(self):
        """SET_RIGHT takes the field's RIGHT: 0 local, 1 remote, 2 both, 3 none."""
        for right, local, remote in (("0", "0", "refused"), ("1", "refused", "0"),
                                     ("2", "0", "0"), ("3", "refused", "refused"),
                                     (1, "refused", "0"), (" 2 ", "0", "0")):
            payload = self.h.call(self, "SET_RIGHT", side="remote", API="ECHO",
                                  RIGHT=right).payload
            self.assertEqual(payload["Status"], "0", right)
            self.assertEqual(self.status("ECHO", "local"), local, right)
            self.assertEqual(self.status("ECHO", "remote"), remote, right)

    def test_set_right_stored_as_the_field_stores_it(self):
        """The stored right is (RIGHT + 1) & 3: a bit per side, as before the field's values,
        so an override stored earlier keeps its meaning."""
        for right, stored in (("0", RIGHT_LOCAL), ("1", RIGHT_REMOTE), ("2", RIGHT_BOTH),
                              ("3", 0)):
            self.h.call(self, "SET_RIGHT", side="remote", API="ECHO", RIGHT=right)
            self.assertEqual(self.h.dispatcher.rights.get("ECHO"), stored)
        self.h.store.update_section(dispatch.RIGHTS_TYPE.type, "ECHO", {"right": RIGHT_LOCAL})
        self.assertEqual(self.status("ECHO", "local"), "0")
        self.assertEqual(self.status("ECHO", "remote"), "refused")

    def test_set_right_from_both_sides(self):
        """SET_RIGHT is allowed from both sides, as in the field's table."""
        self.assertEqual(self.h.call(self, "SET_RIGHT", API="ECHO", RIGHT="0").payload["Status"],
                         "0")

    def test_set_right_bad_args(self):
        """Unknown API, RIGHT out of range, or SET_RIGHT itself: Status 1, nothing stored."""
        for args in ({"API": "NOPE", "RIGHT": "1"}, {"API": "ECHO", "RIGHT": "4"},
                     {"API": "ECHO", "RIGHT": "x"}, {"API": "ECHO"}, {"RIGHT": "1"},
                     {"API": "SET_RIGHT", "RIGHT": "0"}):
            payload = self.h.call(self, "SET_RIGHT", side="remote", **args).payload
            self.assertEqual(payload["Status"], "1", args)
        self.assertEqual(self.h.store.list_sections(dispatch.RIGHTS_TYPE.type), [])

    def test_set_right_persists(self):
        """A new Dispatcher on a new Store of the same file keeps SET_RIGHT's overrides."""
        self.h.call(self, "SET_RIGHT", side="remote", API="GET_SN_INFO", RIGHT="2")
        self.h.call(self, "SET_RIGHT", side="remote", API="GET_SN_INFO", RIGHT="1")
        self.h.call(self, "SET_RIGHT", side="remote", API="QUERY_MEM_INFO", RIGHT="0")
        again = Harness(self, fakes() + discover_providers(), store_path=self.h.store.path)
        self.assertEqual(again.call(self, "GET_SN_INFO", side="remote").payload["Status"], "0")
        self.assertEqual(again.call(self, "GET_SN_INFO", side="local").payload["FailReason"],
                         "NO_RIGHT_ACCESS")
        self.assertEqual(again.call(self, "QUERY_MEM_INFO", side="remote").payload["FailReason"],
                         "NO_RIGHT_ACCESS")
        self.assertEqual(len(again.store.list_sections(dispatch.RIGHTS_TYPE.type)), 2)

    def test_rights_survive_factory_resets(self):
        """Rights are the operator's: neither factory reset clears them."""
        self.h.call(self, "SET_RIGHT", side="remote", API="ECHO", RIGHT="0")
        self.h.store.factory_reset_app()
        self.h.store.factory_reset_itms()
        self.assertEqual(self.h.dispatcher.rights.get("ECHO"), RIGHT_LOCAL)

    def test_ability_closes_local(self):
        """X_CT-COM_Mgt.Ability = 1: every Post1 is -12; Post still served."""
        self.h.store.set("mgt", "Ability", 1)
        self.assertEqual(self.h.call(self, "ECHO", side="local").result, -12)
        self.assertEqual(self.h.call(self, "ECHO", side="remote").result, 0)


class AfterReplyTests(SynchronousTestCase):
    """Actions registered with context.after_reply."""

    def test_run_after(self):
        """Actions run in order on run_after; a failing one is logged, the rest run."""
        ran = []

        def boom():
            raise RuntimeError("boom")
        outcome = Outcome(0, {}, (lambda: ran.append(1), boom, lambda: ran.append(2)))
        outcome.run_after()
        self.assertEqual(ran, [1, 2])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_outcome_equal_by_value(self):
        """Outcomes are equal when result, payload and actions are; any one differing
        makes them differ; the repr names all three."""
        self.assertEqual(Outcome(0, {"A": "1"}), Outcome(0, {"A": "1"}, ()))
        for other in (Outcome(-5, {"A": "1"}), Outcome(0, {"A": "2"}), Outcome(0, None),
                      Outcome(0, {"A": "1"}, (print,))):
            self.assertNotEqual(Outcome(0, {"A": "1"}), other)
        self.assertNotEqual(Outcome(0, None), (0, None, ()))
        self.assertEqual(repr(Outcome(-12, None)), "Outcome(result=-12, payload=None, after=())")

    def test_after_dropped_on_failure(self):
        """Actions registered by a call that then fails are dropped."""
        class Half(Capability):
            cmd_types = ("HALF",)

            def call(self, cmd_type, payload, context):
                context.after_reply(lambda: None)
                raise CapabilityFailure("no")
        h = Harness(self, [Half()])
        self.assertEqual(h.call(self, "HALF").after, ())

    def test_after_is_per_call(self):
        """Each call's context has its own after-reply list."""
        class Twice(Capability):
            cmd_types = ("TWICE",)

            def call(self, cmd_type, payload, context):
                context.after_reply(lambda: None)
                return {}
        h = Harness(self, [Twice()])
        self.assertEqual(len(h.call(self, "TWICE").after), 1)
        self.assertEqual(len(h.call(self, "TWICE").after), 1)


class DiscoveryTests(SynchronousTestCase):
    """discover_providers and the CmdType index."""

    def test_verify_every_provider(self):
        """Every discovered provider provides IGatewayCapability."""
        providers = discover_providers()
        self.assertTrue(providers)
        for provider in providers:
            self.assertTrue(verifyObject(IGatewayCapability, provider))
            self.assertIn(provider.default_right, (0, 1, 2, 3))
            self.assertIsInstance(provider.cmd_types, tuple)

    def test_builtin_cmd_types(self):
        """The built-in modules serve exactly the documented CmdTypes."""
        served = {cmd for p in discover_providers() for cmd in p.cmd_types}
        self.assertEqual(served, BUILTIN)

    def test_duplicate_refused(self):
        """Two providers claiming one CmdType are refused at start."""
        self.assertRaises(DuplicateCmdType, Harness, self, [Echo(), Echo()])
        self.assertRaises(DuplicateCmdType, Harness, self, discover_providers() + [Status()])

    def test_vendor_plugin(self):
        """A module dropped into a cubegw/plugins directory on sys.path is discovered."""
        import cubegw.plugins
        base = os.path.abspath(self.mktemp())
        drop = os.path.join(base, "cubegw", "plugins")
        os.makedirs(drop)
        with open(os.path.join(drop, "vendor_cubegw_test.py"), "w") as f:
            f.write(textwrap.dedent("""\
                from cubegw.capabilities import Capability

                class VendorHello(Capability):
                    cmd_types = ("VENDOR_HELLO",)

                    def call(self, cmd_type, payload, context):
                        return {"Hello": "world"}

                hello = VendorHello()
                """))
        cubegw.plugins.__path__.append(drop)
        self.addCleanup(cubegw.plugins.__path__.remove, drop)
        self.addCleanup(sys.modules.pop, "cubegw.plugins.vendor_cubegw_test", None)
        providers = discover_providers()
        self.assertIn("VENDOR_HELLO", {cmd for p in providers for cmd in p.cmd_types})
        h = Harness(self, providers)
        self.assertEqual(h.call(self, "VENDOR_HELLO").payload["Hello"], "world")


class Status(Capability):
    """Claims a built-in CmdType, for the duplicate test."""

    cmd_types = ("GET_VERSION",)

    def call(self, cmd_type, payload, context):
        return {}


class DispatchNeverFailsTests(SynchronousTestCase):
    """The transports trust ``dispatch``: it always fires with an Outcome."""

    def test_failure_before_the_provider_is_minus_16(self):
        """A rule that raises (here the rights lookup) answers -16 and is logged."""
        h = Harness(self, providers=[Echo()])
        self.patch(h.dispatcher.rights, "get", lambda cmd: 1 / 0)
        self.assertEqual(h.call(self, "ECHO"), Outcome(-16, None))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_unencodable_reply_is_minus_16_without_actions(self):
        """A reply past the frame limit goes out as -16, and its after-reply actions
        are dropped (they run only after a real answer)."""
        ran = []
        outcome = Outcome(0, {"Data": "x" * (wire.MAX_FRAME + 1)}, (lambda: ran.append(1),))
        data, sent = dispatch.encode_reply(outcome, 7)
        self.assertEqual(json.loads(data), {"Result": -16, "ID": 7})
        sent.run_after()
        self.assertEqual(ran, [])

    def test_reply_is_the_typed_post_reply(self):
        """``encode_reply`` builds the frame without the typed message: its bytes are
        exactly those of ``PostReply`` for every kind of outcome."""
        for outcome, ident in [
                (Outcome(0, {"CmdType": "X", "SequenceId": "0000000A", "Status": "0"}), 7),
                (Outcome(0, {"Name": "r\u00e9seau \u4e2d", "List": [{"a": "1"}]}), 2**31),
                (Outcome(-5, None), 0), (Outcome(-12, {}), -1)]:
            data, sent = dispatch.encode_reply(outcome, ident)
            self.assertEqual(data, wire.encode_frame(wire.PostReply(
                Result=outcome.result, ID=ident, return_Parameter=outcome.payload)))
            self.assertIs(sent, outcome)
