"""Test doubles shared by the unit tests: a datagram transport and a gateway harness."""

import json

from twisted.internet import defer
from twisted.internet.task import Clock

from cubegw import identity, wire
from cubegw.access import AccessProtocol
from cubegw.config import Timing
from cubegw.registration import RegistrationMachine, Settings

MAC = "64D95420214B"
SN = "64D954-D6AEE64D95420214B"
IDENTITY = identity.Identity(
    mac=MAC, sn=SN, loid="0755123456", vendor="TestVendor", model="HG-1",
    firmware_version="1.2.3", hardware_version="HW1")
CHALLENGE = "0123456789ABCDEF0123456789ABCDEF"
DIST = ("127.0.0.2", 12112)
OPER = ("127.0.0.3", 60001)
NAMES = {"dist.test": "127.0.0.2", "oper.test": "127.0.0.3"}


class FakeDatagramTransport:
    """Records what a DatagramProtocol writes: (data, address) pairs."""

    def __init__(self):
        self.written = []

    def write(self, data, addr):
        self.written.append((data, addr))

    def getHost(self):  # pragma: no cover - for logging only
        return None


class RecordingEffects:
    """The gateway's side effects, recorded."""

    def __init__(self):
        self.stored = []
        self.resets = 0
        self.plugin = []
        self.changes = 0
        self.routine = []            # the routine flag of each change

    def store_operation_platform(self, host, port):
        self.stored.append((host, port))

    def reset_app_data(self):
        self.resets += 1

    def connect_plugin(self, host, port):
        self.plugin.append((host, port))

    def changed(self, routine=False):
        self.changes += 1
        self.routine.append(routine)


class Gateway:
    """A registration machine and its UDP transport on a ``Clock``, with no sockets.

    Random draws take the upper end of their range and are recorded in ``draws``.
    """

    def __init__(self, timing=None, settings=None, trust=None):
        self.clock = Clock()
        self.timing = timing or Timing()
        self.settings = settings or Settings(
            mgt_url="dist.test", mgt_port=12112, heartbeat=60, user_id="U1",
            wifi_ssid="ChinaNet-ABCD", wifi_password="wifipass", useradmin_password="admin1")
        self.draws = []
        self.rnd = 0
        self.effects = RecordingEffects()
        self.machine = RegistrationMachine(
            IDENTITY, self.timing, lambda: self.settings, uniform=self._uniform,
            new_dev_rnd=self._dev_rnd, trust=trust)
        self.protocol = AccessProtocol(
            self.machine, self.clock, lambda host: defer.succeed(NAMES.get(host, host)),
            self.effects)
        self.transport = FakeDatagramTransport()
        self.protocol.makeConnection(self.transport)
        self._seen = 0

    def _uniform(self, low, high):
        self.draws.append((low, high))
        return high

    def _dev_rnd(self):
        self.rnd += 1
        return "%032X" % self.rnd

    def start(self, stored=None, wan_ip="192.0.2.10"):
        self.protocol.start(wan_ip, stored)

    def sent(self):
        """Datagrams written since the last call, as (time, address, dict)."""
        new = self.transport.written[self._seen:]
        self._seen = len(self.transport.written)
        return [(self.clock.seconds(), addr, json.loads(data)) for data, addr in new]

    def expect(self, testcase, method, addr, at, **fields):
        """Assert exactly one datagram went out, ``method`` to ``addr`` at time ``at``."""
        sent = self.sent()
        testcase.assertEqual(len(sent), 1, f"expected one {method}, got {sent}")
        when, to, msg = sent[0]
        testcase.assertEqual((msg.get("RPCMethod"), to, when), (method, addr, at))
        for name, value in fields.items():
            testcase.assertEqual(msg[name], value, name)
        return msg

    def advance_to(self, t):
        """Move the clock to ``t``, stopping at each due call so chained timers keep time."""
        while True:
            due = [c.getTime() for c in self.clock.getDelayedCalls() if c.getTime() <= t]
            if not due:
                break
            self.clock.advance(max(0, min(due) - self.clock.seconds()))
        self.clock.advance(t - self.clock.seconds())

    def reply(self, result, frm=None, **fields):
        """The platform the pending request went to answers with ``Result`` and fields."""
        msg = dict(fields, Result=result)
        self.protocol.datagramReceived(json.dumps(msg).encode(), frm or self.protocol._reply_from)

    def run_to_online(self, testcase):
        """BootFirst -> RegisterFirst -> Boot -> Register -> Hb; returns the Hb time."""
        self.start()
        self.advance_to(self.timing.boot_jitter)
        self.expect(testcase, "BootFirst", DIST, self.timing.boot_jitter)
        self.reply(0, ChallengeCode=CHALLENGE)
        self.expect(testcase, "RegisterFirst", DIST, self.clock.seconds())
        self.reply(0, ServerAddr="oper.test", ServerPort=OPER[1], Interval=60)
        self.expect(testcase, "Boot", OPER, self.clock.seconds())
        self.reply(0, ChallengeCode=CHALLENGE, Interval=60, flag="1")
        self.expect(testcase, "Register", OPER, self.clock.seconds())
        self.reply(2, UPDATEServer="upd.test", MessageServer="127.0.0.4:9000")
        self.expect(testcase, "Hb", OPER, self.clock.seconds(), FLAG="1")
        return self.clock.seconds()

    def key(self):
        s = self.settings
        return identity.trigger_key(self.machine.dev_rnd, IDENTITY.sn, s.wifi_ssid,
                                    s.wifi_password, s.useradmin_password)

    def trigger(self, method, key=None, frm=OPER, **fields):
        msg = dict({"RPCMethod": method, "Key": key or self.key(),
                    "ServerAddr": "127.0.0.5", "ServerPort": 8080}, **fields)
        self.protocol.datagramReceived(wire.encode_datagram(msg), frm)


def psutil_net_if_stats():
    """``psutil.net_if_stats()``, the oracle of the tests on this machine's interfaces;
    the test is skipped where psutil itself cannot read them (qemu-user has no
    SIOCETHTOOL: ENOSYS), as LinuxBackend then reads sysfs instead."""
    import psutil
    from twisted.trial.unittest import SkipTest
    try:
        return psutil.net_if_stats()
    except OSError as e:
        raise SkipTest(f"psutil.net_if_stats() fails here: {e}")
