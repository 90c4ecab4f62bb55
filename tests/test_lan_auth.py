"""Issue 18 point 4 (protocol.md 8): LAN authorization per source address, the lockout per
source, and one host's slow connections never denying the interface to another."""

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import Capability, LanAuth
from cubegw.capabilities.lan_devices import AccessRight
from cubegw.capabilities.platform import CheckPassword
from cubegw.lan import LanFactory

from tests.helpers.dispatch import USERADMIN, Harness
from tests.helpers.lan import FakeDispatcher, lose

OWNER, GUEST = "192.168.1.10", "192.168.1.66"


class Toy(Capability):
    """A SET_* that changes something, a reboot, and a GET_WIFI_INFO carrying a password."""

    cmd_types = ("SET_TOY", "HG_COMMAND_REBOOT", "GET_WIFI_INFO")

    def __init__(self):
        self.calls = []

    def call(self, cmd_type, payload, context):
        self.calls.append(cmd_type)
        return {"List": [{"SSID": "x", "PWD": "secret99"}], "PWD": "secret99"}


class LanAuthTests(SynchronousTestCase):
    def setUp(self):
        self.toy = Toy()
        self.auth = LanAuth(Clock(), "password", session_ttl=600)
        self.h = Harness(self, providers=[self.toy, CheckPassword(), AccessRight()],
                         lan_auth=self.auth)
        self.auth.clock = self.h.clock          # the harness's Clock runs the sessions

    def call(self, cmd, source, side="local", **args):
        parameter = dict({"CmdType": cmd, "SequenceId": "0A1b2C3d"}, **args)
        return self.successResultOf(self.h.dispatcher.dispatch(side, parameter, source))

    def test_sensitive_calls_need_a_password(self):
        """SET_*, reboot and SET_ATTACH_DEVICE_RIGHT from an unproven host: Status 1
        NEED_AUTH, the provider not called; a blocked device cannot unblock itself."""
        for cmd in ("SET_TOY", "HG_COMMAND_REBOOT"):
            out = self.call(cmd, GUEST)
            self.assertEqual((out.payload["Status"], out.payload["FailReason"]),
                             ("1", "NEED_AUTH"))
        out = self.call("SET_ATTACH_DEVICE_RIGHT", GUEST, MAC="AABBCCDDEEFF",
                        InternetAccessRight="ON", StorageAccessRight="ON")
        self.assertEqual(out.payload["FailReason"], "NEED_AUTH")
        self.assertEqual(self.toy.calls, [])

    def test_password_in_the_call(self):
        """USER/PASSWORD in the call serves it and opens a session for that address only."""
        out = self.call("SET_TOY", OWNER, USER="useradmin", PASSWORD=USERADMIN)
        self.assertEqual(out.payload["Status"], "0")
        self.assertEqual(self.call("SET_TOY", OWNER).payload["Status"], "0")
        self.assertEqual(self.call("SET_TOY", GUEST).payload["FailReason"], "NEED_AUTH")

    def test_session_from_check_passwd_expires(self):
        """CHECK_PASSWD_PARAM proves the address for session_ttl seconds, then it ends."""
        self.call("CHECK_PASSWD_PARAM", OWNER, PassWD=USERADMIN)
        self.h.clock.advance(599)
        self.assertEqual(self.call("SET_TOY", OWNER).payload["Status"], "0")
        self.h.clock.advance(601)
        self.assertEqual(self.call("SET_TOY", OWNER).payload["FailReason"], "NEED_AUTH")

    def test_wifi_password_blanked_unless_proven(self):
        """GET_WIFI_INFO is served to anyone, its PWD blank unless the host proved a password."""
        out = self.call("GET_WIFI_INFO", GUEST)
        self.assertEqual((out.payload["PWD"], out.payload["List"][0]["PWD"]), ("", ""))
        out = self.call("GET_WIFI_INFO", OWNER, USER="useradmin", PASSWORD=USERADMIN)
        self.assertEqual(out.payload["PWD"], "secret99")
        self.assertEqual(self.call("GET_WIFI_INFO", GUEST, side="remote").payload["PWD"],
                         "secret99")

    def test_lockout_per_source(self):
        """Five wrong passwords lock out the guessing host; the owner still gets in."""
        for _ in range(5):
            self.call("SET_TOY", GUEST, USER="useradmin", PASSWORD="guess")
        out = self.call("SET_TOY", GUEST, USER="useradmin", PASSWORD=USERADMIN)
        self.assertIn("too many wrong passwords", out.payload["FailReason"])
        out = self.call("SET_TOY", OWNER, USER="useradmin", PASSWORD=USERADMIN)
        self.assertEqual(out.payload["Status"], "0")
        self.assertEqual(self.toy.calls, ["SET_TOY"])

    def test_open_mode(self):
        """lan.auth open: every local call served as the field gateway does."""
        self.h.dispatcher.lan_auth = LanAuth(self.h.clock, "open")
        self.assertEqual(self.call("SET_TOY", GUEST).payload["Status"], "0")
        self.assertEqual(self.call("GET_WIFI_INFO", GUEST).payload["PWD"], "secret99")

    def test_remote_side_unaffected(self):
        """A platform Post is not asked for a LAN password."""
        self.assertEqual(self.call("SET_TOY", None, side="remote").payload["Status"], "0")

    def test_sources_bounded(self):
        """Sessions and lockouts are kept for at most max_sources addresses."""
        auth = LanAuth(self.h.clock, max_sources=3)
        for n in range(10):
            auth.prove(f"10.0.0.{n}")
            auth.guesses(f"10.0.0.{n}").wrong()
        self.assertEqual((len(auth._sessions), len(auth._guesses)), (3, 3))
        self.assertTrue(auth.proven("10.0.0.9"))
        self.assertFalse(auth.proven("10.0.0.0"))


class SlotTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.factory = LanFactory(FakeDispatcher(), self.clock)

    def connect(self, host, port):
        addr = IPv4Address("TCP", host, port)
        proto = self.factory.buildProtocol(addr)
        if proto is not None:
            proto.makeConnection(StringTransport(peerAddress=addr))
        return proto

    def test_slow_host_cannot_deny_another(self):
        """Five idle connections from one host: a second host's connection takes the oldest
        one's slot; the slow host reconnecting at once gets none."""
        slow = []
        for n in range(5):
            slow.append(self.connect(GUEST, 40000 + n))
            self.clock.advance(0.1)
        aborted = []
        for p in slow:
            p.transport.abortConnection = lambda p=p: aborted.append(p)
        self.clock.advance(1)
        mine = self.connect(OWNER, 41000)
        self.assertIsNotNone(mine)
        self.assertEqual(aborted, [slow[0]])
        self.assertNotIn(slow[0], self.factory.active)
        self.assertIsNone(self.connect(GUEST, 40010))
        self.assertEqual(len(self.factory.active), 5)

    def test_five_prompt_connections_from_one_host(self):
        """Five connections from one host are all served; a sixth from it is refused."""
        protos = [self.connect(OWNER, 40000 + n) for n in range(5)]
        self.assertNotIn(None, protos)
        self.assertIsNone(self.connect(OWNER, 40005))

    def test_busy_slots_are_not_taken(self):
        """Connections whose requests are being served keep their slots: the newcomer waits."""
        protos = [self.connect(GUEST, 40000 + n) for n in range(5)]
        for p in protos:
            p._request_seen = True
        self.assertIsNone(self.connect(OWNER, 41000))
        for p in protos:
            lose(p)
        self.assertIsNotNone(self.connect(OWNER, 41000))
