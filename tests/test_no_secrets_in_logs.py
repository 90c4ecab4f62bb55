"""No secret reaches a log, and passwords are compared in constant time.

A log line may end up in syslog, a support bundle or a bug report, so every event
emitted across a full registration, reverse triggers (good, wrong Key, spoofed source),
CHECK_PASSWD_PARAM with the right and a wrong password, over the dispatcher and over the
LAN server, is captured on ``globalLogPublisher``, formatted, and searched, both in its
text and in every field it carries (a JSON or structured observer would write those), for
DevRND, the trigger Key, CheckSN, MD5(DevRND + SN) and the passwords.
"""

import hmac as real_hmac

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import eventAsText, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity, lan, wire
from cubegw.capabilities import base
from cubegw.config import Accounts
from cubegw.registration import Settings

from tests.helpers import CHALLENGE, IDENTITY, OPER, Gateway
from tests.helpers.dispatch import SEQ, TELECOMADMIN, USERADMIN, Harness
from tests.helpers.lan import frame, lose, unframe

WIFI_PASSWORD = "Wifi-Secret-7f3a"
UI_PASSWORD = "Useradmin-Secret-91c2"
BAD_PASSWORD = "Guessed-Secret-0d0d"
DEV_RNDS = ["5EC2E75EC2E75EC2E75EC2E75EC2E7%02X" % i for i in range(1, 10)]


def capture(testcase):
    """Every event, copied as emitted.

    The observer goes first: the legacy ``twisted.python.log`` bridge that trial and
    twistd install rewrites some keys (``message``) in place, which would hide a leak
    from an observer that runs after it, but not from a JSON log file that runs before.
    """
    events = []

    def observer(event):
        events.append(dict(event))

    observers = getattr(globalLogPublisher, "_observers", None)
    if isinstance(observers, list):
        observers.insert(0, observer)
    else:  # pragma: no cover - another Twisted layout
        globalLogPublisher.addObserver(observer)
    testcase.addCleanup(globalLogPublisher.removeObserver, observer)
    return events


def rendered(event):
    """The event as an operator or a structured log sink would see it."""
    text = eventAsText(event, includeTraceback=True, includeTimestamp=False)
    fields = {k: v for k, v in event.items() if k not in ("log_logger",)}
    return text + "\n" + repr(fields)


def leaks(events, secrets):
    """(secret name, rendered event) for every secret found, case-insensitively."""
    found = []
    for event in events:
        text = rendered(event).lower()
        for name, value in secrets.items():
            if value and value.lower() in text:
                found.append((name, rendered(event)))
    return found


class RegistrationLogTests(SynchronousTestCase):
    """The UDP session: Register carries DevRND and CheckSN, triggers carry the Key."""

    def test_no_secret_in_registration_and_trigger_logs(self):
        """Registration and every kind of trigger (good, replayed, wrong Key, spoofed, malformed)
        log neither DevRND, Key, CheckSN nor the passwords the Key is made from."""
        events = capture(self)
        gw = Gateway(settings=Settings(
            mgt_url="dist.test", mgt_port=12112, heartbeat=60, user_id="U1",
            wifi_ssid="ChinaNet-ABCD", wifi_password=WIFI_PASSWORD,
            useradmin_password=UI_PASSWORD))
        rnds = iter(DEV_RNDS)
        gw.machine._new_dev_rnd = lambda: next(rnds)
        gw.run_to_online(self)
        self.assertIn(gw.machine.dev_rnd, DEV_RNDS)
        key, registered_rnd = gw.key(), gw.machine.dev_rnd
        gw.reply(0, Interval=60)
        gw.trigger("RequestPlug-in", key=key)          # accepted: answered with a new DevRND
        gw.trigger("RequestPlug-in", key=key)          # resent within 10 s
        gw.trigger("RequestPlug-in", key="0" * 32)     # wrong Key
        gw.trigger("RequestPlug-in", frm=("198.51.100.7", OPER[1]))   # spoofed source
        gw.protocol.datagramReceived(b'{"RPCMethod": "RequestDistri", "Key": "%s"}'
                                     % key.encode(), OPER)            # missing fields
        self.assertEqual(gw.effects.plugin, [("127.0.0.5", 8080)])
        self.assertEqual(gw.machine.counters["triggers_spoofed"], 1)
        self.assertGreaterEqual(len(events), 8)
        secrets = {"DevRND": gw.machine.dev_rnd, "Register's DevRND": registered_rnd,
                   "Key": key,
                   "CheckSN": identity.check_sn(CHALLENGE, IDENTITY.sn),
                   "WiFi password": WIFI_PASSWORD, "useradmin password": UI_PASSWORD}
        self.assertEqual(leaks(events, secrets), [])
        # the Register that went out really did carry them (so the check means something)
        sent = b"".join(data for data, _ in gw.transport.written).decode()
        self.assertIn(gw.machine.dev_rnd, sent)
        self.assertIn(secrets["CheckSN"], sent)


class DispatcherLogTests(SynchronousTestCase):
    """CHECK_PASSWD_PARAM through the dispatcher and through the LAN server."""

    def secrets(self, h):
        return {"DevRND": h.dev_rnd, "useradmin password": USERADMIN,
                "telecomadmin password": TELECOMADMIN, "wrong password": BAD_PASSWORD,
                "MD5(DevRND+SN)": identity.encrypted_sn(h.dev_rnd, IDENTITY.sn)}

    def test_dispatcher(self):
        """CHECK_PASSWD_PARAM, right and wrong passwords, local and remote: no password logged."""
        events = capture(self)
        h = Harness(self, dev_rnd=DEV_RNDS[0])
        good = h.call(self, "CHECK_PASSWD_PARAM", PassWD=USERADMIN)
        self.assertEqual(good.payload["Status"], "0")
        good = h.call(self, "CHECK_PASSWD_PARAM", PASSWORD=TELECOMADMIN)
        self.assertEqual(good.payload["Status"], "0")
        bad = h.call(self, "CHECK_PASSWD_PARAM", PassWD=BAD_PASSWORD)
        self.assertEqual(bad.payload["Status"], "1")
        bad = h.call(self, "CHECK_PASSWD_PARAM", "remote", PassWD=BAD_PASSWORD)
        self.assertEqual(bad.payload["Status"], "1")
        h.call(self, "QUERY_WAN_REALRATE", USER="useradmin", PASSWORD=BAD_PASSWORD)
        self.assertTrue(events)
        self.assertEqual(leaks(events, self.secrets(h)), [])

    def test_lan_server(self):
        """Post1 calls through the LAN server, and a garbage frame quoting a password, log no
        password."""
        events = capture(self)
        h = Harness(self, dev_rnd=DEV_RNDS[1])
        factory = lan.LanFactory(h.dispatcher, h.clock)
        for n, password in enumerate([USERADMIN, BAD_PASSWORD, TELECOMADMIN], 1):
            addr = IPv4Address("TCP", "192.168.1.10", 40000 + n)
            proto = factory.buildProtocol(addr)
            transport = StringTransport(peerAddress=addr)
            proto.makeConnection(transport)
            proto.dataReceived(frame(wire.Post1(ID=n, Parameter={
                "CmdType": "CHECK_PASSWD_PARAM", "SequenceId": SEQ, "PassWD": password})
                .to_wire()))
            [reply] = unframe(transport.value())
            self.assertEqual(reply["return_Parameter"]["Status"],
                             "1" if password == BAD_PASSWORD else "0")
            lose(proto)
        # a garbage frame that quotes a password is not echoed into the log either
        proto = factory.buildProtocol(IPv4Address("TCP", "192.168.1.10", 40010))
        proto.makeConnection(StringTransport())
        proto.dataReceived(frame(b'{"RPCMethod": "Post1", "PassWD": "%s"'
                                 % BAD_PASSWORD.encode()))
        lose(proto)
        self.assertTrue(events)
        self.assertEqual(leaks(events, self.secrets(h)), [])


class ConstantTimeTests(SynchronousTestCase):
    """Passwords are compared with compare_digest (hmac's), against both accounts."""

    def setUp(self):
        self.calls = []
        calls = self.calls

        def spy_compare_digest(a, b):
            calls.append((a, b))
            return real_hmac.compare_digest(a, b)

        self.assertIs(base.compare_digest, identity.compare_digest)
        self.patch(base, "compare_digest", spy_compare_digest)

    def test_check_account_uses_compare_digest_for_both_accounts(self):
        """check_account compares with compare_digest, against both accounts without USER."""
        accounts = Accounts(USERADMIN, TELECOMADMIN)
        self.assertTrue(base.check_account(accounts, {"PassWD": USERADMIN}))
        # without USER both accounts are compared, so timing does not tell which matched
        self.assertEqual(len(self.calls), 2)
        self.assertFalse(base.check_account(accounts, {"PassWD": BAD_PASSWORD}))
        self.assertEqual(len(self.calls), 4)
        self.assertTrue(base.check_account(accounts, {"USER": "telecomadmin",
                                                       "PASSWORD": TELECOMADMIN}))
        self.assertEqual(len(self.calls), 5)
        self.assertEqual(self.calls[-1], (TELECOMADMIN.encode(), TELECOMADMIN.encode()))

    def test_dispatcher_goes_through_compare_digest(self):
        """A password checked through the dispatcher is compared with compare_digest."""
        h = Harness(self)
        h.call(self, "CHECK_PASSWD_PARAM", PassWD=BAD_PASSWORD)
        self.assertIn((BAD_PASSWORD.encode(), USERADMIN.encode()), self.calls)
        self.assertIn((BAD_PASSWORD.encode(), TELECOMADMIN.encode()), self.calls)

    def test_no_plain_equality_on_passwords(self):
        """No ``==``/``!=`` against a password in the account check, by source."""
        import inspect
        src = inspect.getsource(base.check_account) + inspect.getsource(base._same)
        self.assertNotRegex(src, r"(?i)(password|passwd|secret)\w*\s*[!=]=")
