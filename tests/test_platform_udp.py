"""The distribution and operation platforms on a Clock with fake transports, no sockets.

Also the platform's configuration and its twistd wiring (Options, makeService).
"""

import json
import os

from twisted.application.service import IService
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import Logger, formatEvent
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity, wire
from cubegw.platform import tap
from cubegw.platform.config import (
    ConfigError, DeviceConfig, Endpoint, PlatformConfig, load_config, parse_config)
from cubegw.platform.faults import FaultRules
from cubegw.platform.registry import MemoryStore, Registry
from cubegw.platform.udp import (
    DistributionProtocol, MessageServerProtocol, OperationProtocol, TriggerError,
    TriggerTimeout, new_challenge)

MAC = "64D95420214B"
SN = "64D954-D6AEE64D95420214B"
GW = ("127.0.0.9", 40000)
DEVICE = DeviceConfig(MAC, sn=SN, loid="0755123456", wifi_ssid="ChinaNet-ABCD",
                      wifi_password="wifipass", useradmin_password="admin1",
                      telecomadmin_password="tele1")
BOOT = dict(Vendor="TestVendor", Model="HG-1", MAC=MAC, SN=SN, FirmwareVer="1.2.3",
            HardwareVer="HW1", IPAddr="192.0.2.10", LOID="0755123456", Version="1.0")
DEV_RND = "0123456789ABCDEF0123456789ABCDEF"
SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "etc", "cubeplat.yaml")


class FakeDatagramTransport:
    """Records (data, address) pairs written by a DatagramProtocol."""

    def __init__(self):
        self.written = []

    def write(self, data, addr):
        self.written.append((data, addr))


class Platform:
    """Distribution and operation protocols over one in-memory registry on a Clock.

    ``urandom`` returns n copies of a counter byte, so challenges are predictable.
    """

    def __init__(self, faults=(), devices=(DEVICE,), **config):
        self.clock = Clock()
        config.setdefault("heartbeat_interval", 45)
        self.config = PlatformConfig(devices=devices, **config)
        self.store = MemoryStore()
        self.registry = Registry(self.store, self.clock, report_limit=2)
        self.registry.load()
        self.registry.preset(self.config.devices)
        self.faults = FaultRules(faults)
        self.events = []
        self.n = 0
        self.oper = OperationProtocol(self.registry, self.faults, self.config, self.clock,
                                      urandom=self._urandom)
        self.dist = DistributionProtocol(self.registry, self.faults, self.config,
                                         self.clock, urandom=self._urandom)
        for protocol in (self.oper, self.dist):
            protocol.log = Logger(observer=self.events.append)
            protocol.makeConnection(FakeDatagramTransport())

    def _urandom(self, n):
        self.n += 1
        return bytes([self.n]) * n

    def challenge(self, k):
        return ("%02X" % k) * 16

    def send(self, protocol, msg, addr=GW):
        """Deliver ``msg`` (dict or bytes) and return the replies written since, as dicts."""
        written = protocol.transport.written
        seen = len(written)
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        protocol.datagramReceived(data, addr)
        return self.replies(protocol, seen)

    def replies(self, protocol, since=0):
        return [(json.loads(data), addr) for data, addr in protocol.transport.written[since:]]

    def only(self, protocol, msg, addr=GW):
        """Deliver ``msg``; assert exactly one reply, to ``addr``, and return it."""
        replies = self.send(protocol, msg, addr)
        assert len(replies) == 1, replies
        assert replies[0][1] == addr, replies
        return replies[0][0]

    def boot_first(self):
        return self.only(self.dist, dict(BOOT, RPCMethod="BootFirst"))

    def register_first(self, challenge, sn=SN):
        return self.only(self.dist, {"RPCMethod": "RegisterFirst", "MAC": MAC, "SN": sn,
                                     "CheckSN": identity.check_sn(challenge, sn)})

    def boot(self):
        return self.only(self.oper, dict(BOOT, RPCMethod="Boot"))

    def register(self, challenge, user_id="", dev_rnd=DEV_RND, check_sn=None):
        return self.only(self.oper, {
            "RPCMethod": "Register", "MAC": MAC, "SN": SN, "DevRND": dev_rnd,
            "CheckSN": check_sn or identity.check_sn(challenge, SN), "UserID": user_id})

    def hb(self, flag="0", addr=GW):
        return self.only(self.oper, {"RPCMethod": "Hb", "MAC": MAC, "IPAddr": "192.0.2.10",
                                     "FLAG": flag}, addr)

    def online(self):
        """Boot, Register and a first Hb: the device is registered and heartbeating."""
        reply = self.boot()
        self.register(reply["ChallengeCode"])
        self.hb("1")

    def logged(self):
        return [formatEvent(e) for e in self.events]

    def settle(self, test):
        """Write the registry and check no timer is left behind."""
        test.successResultOf(self.registry.flush())
        test.assertEqual(self.clock.getDelayedCalls(), [])


class ChallengeTests(SynchronousTestCase):
    def test_fresh(self):
        """A challenge is 16 bytes of urandom as 32 upper-case hex."""
        self.assertEqual(new_challenge(lambda n: b"\xab" * n), "AB" * 16)
        self.assertNotEqual(new_challenge(), new_challenge())


class DistributionTests(SynchronousTestCase):
    def test_boot_first(self):
        """BootFirst -> Result 0 with a fresh challenge, remembered with the Boot fields."""
        p = Platform()
        self.assertEqual(p.boot_first(), {"Result": 0, "ChallengeCode": p.challenge(1)})
        self.assertEqual(p.boot_first(), {"Result": 0, "ChallengeCode": p.challenge(2)})
        r = p.registry.get(MAC)
        self.assertEqual((r.dist_challenge, r.vendor, r.firmware_version, r.wan_ip),
                         (p.challenge(2), "TestVendor", "1.2.3", "192.0.2.10"))
        self.assertIn(f"{MAC} BootFirst -> Result 0 (challenge {p.challenge(2)})",
                      p.logged())
        p.settle(self)

    def test_boot_first_unknown(self):
        """BootFirst from a MAC not in the registry -> -6, and nothing is added."""
        p = Platform(devices=())
        self.assertEqual(p.boot_first(), {"Result": -6})
        self.assertEqual(len(p.registry), 0)
        self.assertIn(f"{MAC} BootFirst -> Result -6 (unknown MAC)", p.logged())

    def test_accept_unknown(self):
        """With accept_unknown an unknown MAC is added with its SN and gets a challenge."""
        p = Platform(devices=(), accept_unknown=True)
        self.assertEqual(p.boot_first()["Result"], 0)
        self.assertEqual(p.registry.get(MAC).sn, SN)
        self.assertEqual(p.register_first(p.challenge(1))["Result"], 0)
        p.settle(self)

    def test_sn_learned_then_checked(self):
        """A device configured without SN learns it at BootFirst; another SN is then -6."""
        p = Platform(devices=(DeviceConfig(MAC),))
        p.boot_first()
        self.assertEqual(p.registry.get(MAC).sn, SN)
        other = dict(BOOT, RPCMethod="BootFirst", SN="64D954-XXXXXXXXXXXXXXXXX")
        self.assertEqual(p.only(p.dist, other), {"Result": -6})

    def test_register_first(self):
        """RegisterFirst with CheckSN = MD5(challenge+SN) -> operation address and Interval."""
        p = Platform()
        challenge = p.boot_first()["ChallengeCode"]
        self.assertEqual(p.register_first(challenge), {
            "Result": 0, "ServerAddr": "127.0.0.1", "ServerPort": 60001, "Interval": 45})
        # a retransmission is answered the same way: the challenge stays valid
        self.assertEqual(p.register_first(challenge)["Result"], 0)
        p.settle(self)

    def test_register_first_advertised(self):
        """ServerAddr is the operation platform's advertised host when set."""
        p = Platform(operation=Endpoint("0.0.0.0", 60001, "oper.example"))
        p.dist.operation_address = lambda: ("oper.example", 60001)
        challenge = p.boot_first()["ChallengeCode"]
        self.assertEqual(p.register_first(challenge)["ServerAddr"], "oper.example")

    def test_register_first_bad_checksn(self):
        """A CheckSN over a wrong challenge -> -1."""
        p = Platform()
        p.boot_first()
        self.assertEqual(p.register_first("F" * 32), {"Result": -1})
        self.assertIn(f"{MAC} RegisterFirst -> Result -1 (bad CheckSN)", p.logged())

    def test_register_first_without_boot_first(self):
        """RegisterFirst before any BootFirst -> -1 (no challenge to check against)."""
        p = Platform()
        self.assertEqual(p.register_first(p.challenge(1)), {"Result": -1})

    def test_register_first_unknown(self):
        """RegisterFirst from an unknown MAC -> -6."""
        p = Platform(devices=())
        self.assertEqual(p.register_first(p.challenge(1)), {"Result": -6})

    def test_register_first_wrong_sn(self):
        """RegisterFirst with an SN other than the registered one -> -6."""
        p = Platform()
        p.boot_first()
        sn = "64D954-XXXXXXXXXXXXXXXXX"
        self.assertEqual(p.register_first(p.challenge(1), sn=sn), {"Result": -6})


class OperationTests(SynchronousTestCase):
    def test_boot(self):
        """Boot -> challenge, Interval and flag "1"; the device is not registered until
        Register."""
        p = Platform()
        self.assertEqual(p.boot(), {"Result": 0, "ChallengeCode": p.challenge(1),
                                    "Interval": 45, "flag": "1"})
        r = p.registry.get(MAC)
        self.assertEqual((r.challenge, r.registered, r.loid), (p.challenge(1), False,
                                                               "0755123456"))

    def test_boot_unknown(self):
        """Boot from an unknown MAC -> -1 (accept_unknown adds it instead)."""
        self.assertEqual(Platform(devices=()).boot(), {"Result": -1})
        p = Platform(devices=(), accept_unknown=True)
        self.assertEqual(p.boot()["Result"], 0)
        self.assertIn(MAC, p.registry)

    def test_register(self):
        """Register with a good CheckSN -> 2, UPDATEServer, MessageServer; DevRND stored."""
        p = Platform()
        challenge = p.boot()["ChallengeCode"]
        self.assertEqual(p.register(challenge), {
            "Result": 2, "UPDATEServer": "127.0.0.1", "MessageServer": "127.0.0.1:60001"})
        r = p.registry.get(MAC)
        self.assertEqual((r.dev_rnd, r.registered), (DEV_RND, True))
        self.assertIn(f"{MAC} Register -> Result 2 (DevRND {DEV_RND})", p.logged())
        p.settle(self)

    def test_register_servers_configured(self):
        """UPDATEServer and MessageServer come from the configuration when set."""
        p = Platform(update_server="upd.example",
                     message_server=Endpoint("127.0.0.4", 9000))
        reply = p.register(p.boot()["ChallengeCode"])
        self.assertEqual((reply["UPDATEServer"], reply["MessageServer"]),
                         ("upd.example", "127.0.0.4:9000"))

    def test_register_bad_checksn(self):
        """A bad CheckSN -> -1 and no DevRND is stored."""
        p = Platform()
        p.boot()
        self.assertEqual(p.register("", check_sn="0" * 32), {"Result": -1})
        self.assertEqual(p.registry.get(MAC).dev_rnd, "")

    def test_register_before_boot(self):
        """Register with no Boot challenge -> -1."""
        p = Platform()
        self.assertEqual(p.register(p.challenge(1)), {"Result": -1})

    def test_register_checks_the_boot_challenge(self):
        """CheckSN must use the operation challenge, not the distribution one."""
        p = Platform()
        dist = p.boot_first()["ChallengeCode"]
        p.boot()
        self.assertEqual(p.register(dist), {"Result": -1})

    def test_register_user_mismatch(self):
        """Register carrying a UserID other than the bound one -> 3, nothing stored."""
        p = Platform()
        p.registry.bind(MAC, "U1")
        challenge = p.boot()["ChallengeCode"]
        self.assertEqual(p.register(challenge, user_id="U2"), {"Result": 3})
        self.assertEqual((p.registry.get(MAC).dev_rnd, p.registry.get(MAC).registered),
                         ("", False))
        # the gateway resets, clears its UserID and registers again with the same challenge
        self.assertEqual(p.register(challenge, user_id="")["Result"], 2)
        self.assertEqual(p.registry.get(MAC).user_id, "U1")

    def test_register_user_unknown(self):
        """A UserID when the platform has no bound user -> 3."""
        p = Platform()
        self.assertEqual(p.register(p.boot()["ChallengeCode"], user_id="U1"), {"Result": 3})

    def test_register_user_match(self):
        """The bound UserID, or an empty one, -> 2."""
        p = Platform()
        p.registry.bind(MAC, "U1")
        self.assertEqual(p.register(p.boot()["ChallengeCode"], user_id="U1")["Result"], 2)

    def test_hb(self):
        """Hb after Register -> 0 with Interval; online, time, source and WAN IP recorded."""
        p = Platform()
        challenge = p.boot()["ChallengeCode"]
        p.register(challenge)
        p.clock.advance(100)
        self.assertEqual(p.hb("1"), {"Result": 0, "Interval": 45})
        r = p.registry.get(MAC)
        self.assertEqual((r.online, r.last_hb, r.hb_addr, r.wan_ip),
                         (True, 100.0, GW, "192.0.2.10"))
        self.assertTrue(r.is_online(p.clock.seconds(), 135))
        self.assertIn(f"{MAC} Hb -> Result 0 (first after Register)", p.logged())
        p.hb("0", addr=("127.0.0.9", 40001))
        self.assertEqual(p.registry.get(MAC).hb_addr, ("127.0.0.9", 40001))
        self.assertIn(f"{MAC} Hb -> Result 0", p.logged())
        p.settle(self)

    def test_hb_not_registered(self):
        """Hb from an unknown or never-registered MAC -> -3."""
        self.assertEqual(Platform(devices=()).hb(), {"Result": -3})
        self.assertEqual(Platform().hb(), {"Result": -3})

    def test_hb_after_new_challenge(self):
        """After a new Boot challenge, Hb -> -3 until the device registers again."""
        p = Platform()
        p.online()
        p.boot()
        self.assertEqual(p.hb(), {"Result": -3})
        self.assertFalse(p.registry.get(MAC).online)
        p.register(p.challenge(2))
        self.assertEqual(p.hb()["Result"], 0)

    def test_report(self):
        """Report datagrams are stored per MAC, bounded, and never answered."""
        p = Platform()
        for i in range(3):
            msg = {"RPCMethod": "Report", "MAC": MAC,
                   "Parameter": wire.encode_parameter({"n": str(i)})}
            p.clock.advance(1)
            self.assertEqual(p.send(p.oper, msg), [])
        self.assertEqual(p.registry.reports(MAC), [(2.0, {"n": "1"}), (3.0, {"n": "2"})])

    def test_report_unknown(self):
        """A Report from an unknown MAC is dropped."""
        p = Platform(devices=())
        msg = {"RPCMethod": "Report", "MAC": MAC, "Parameter": {"n": "1"}}
        self.assertEqual(p.send(p.oper, msg), [])
        self.assertEqual(p.registry.reports(MAC), [])

    def test_message_server_socket(self):
        """A message server socket of its own takes Reports and nothing else."""
        p = Platform()
        ms = MessageServerProtocol(p.registry, p.faults, p.config, p.clock)
        ms.log = Logger(observer=p.events.append)
        ms.makeConnection(FakeDatagramTransport())
        p.send(ms, {"RPCMethod": "Report", "MAC": MAC, "Parameter": {"n": "1"}})
        self.assertEqual(p.registry.reports(MAC), [(0.0, {"n": "1"})])
        self.assertEqual(p.send(ms, dict(BOOT, RPCMethod="Boot")), [])
        self.assertEqual(ms.counters["dropped"], 1)

    def test_bound_port_advertised(self):
        """With port 0 the port actually bound is advertised."""
        p = Platform(operation=Endpoint(port=0))

        class Transport(FakeDatagramTransport):
            def getHost(self):
                return IPv4Address("UDP", "127.0.0.1", 54321)
        p.oper.transport = Transport()
        self.assertEqual(p.oper.message_server_address(), ("127.0.0.1", 54321))


class MalformedTests(SynchronousTestCase):
    def test_dropped(self):
        """Bad datagrams get no reply, are logged, and change nothing."""
        p = Platform()
        good_hb = {"RPCMethod": "Hb", "MAC": MAC, "IPAddr": "1.2.3.4", "FLAG": "0"}
        bad = [
            b"not json", b"\xff\xfe", b"[1,2]", b"{" * 5000, b"x" * 5000,
            json.dumps({"RPCMethod": "Nope", "MAC": MAC}).encode(),
            json.dumps({"RPCMethod": "Hb", "MAC": MAC}).encode(),
            json.dumps(dict(good_hb, MAC="nothex")).encode(),
            json.dumps(dict(good_hb, FLAG="7")).encode(),
            json.dumps({"RPCMethod": "Register", "MAC": MAC, "SN": SN, "CheckSN": "short",
                        "DevRND": DEV_RND}).encode(),
            json.dumps({"RPCMethod": 7}).encode(),
            json.dumps({"Result": 0}).encode(),
            json.dumps(dict(BOOT, RPCMethod="BootFirst")).encode(),  # wrong platform
            json.dumps({"RPCMethod": "Report", "MAC": MAC, "Parameter": "%%%"}).encode(),
        ]
        for data in bad:
            self.assertEqual(p.send(p.oper, data), [], data[:60])
        self.assertEqual(p.oper.counters["dropped"], len(bad))
        self.assertEqual(p.send(p.dist, dict(BOOT, RPCMethod="Boot")), [])
        self.assertEqual(p.send(p.dist, b'{"Result":0}'), [])
        self.assertEqual(p.dist.counters["dropped"], 2)
        self.assertEqual(p.registry.get(MAC).challenge, "")
        self.assertTrue(any("dropped a datagram" in line for line in p.logged()))
        # the port lives on
        self.assertEqual(p.boot()["Result"], 0)

    def test_before_load(self):
        """Datagrams arriving before the registry is loaded are dropped, not refused."""
        p = Platform()
        p.registry.loaded = False
        self.assertEqual(p.send(p.dist, dict(BOOT, RPCMethod="BootFirst")), [])
        self.assertIn("the device registry is still loading", p.logged()[-1])
        p.registry.loaded = True
        self.assertEqual(p.boot_first()["Result"], 0)

    def test_handler_error_logged(self):
        """An unexpected error in a handler is logged; the protocol keeps serving."""
        p = Platform()

        def broken(*args):
            raise RuntimeError("bug")
        p.oper.handle_Boot = broken
        self.assertEqual(p.send(p.oper, dict(BOOT, RPCMethod="Boot")), [])
        [failure] = [e["log_failure"] for e in p.events if "log_failure" in e]
        self.assertIsInstance(failure.value, RuntimeError)
        self.assertIn(f"{MAC} Boot: the handler failed", p.logged())
        p.register(p.challenge(1))  # still answering


class FaultTests(SynchronousTestCase):
    def test_drop(self):
        """drop: N loses N requests unseen (no state change), then behaves normally."""
        p = Platform(faults=[{"mac": "*", "message": "Boot", "drop": 2}])
        for _ in range(2):
            self.assertEqual(p.send(p.oper, dict(BOOT, RPCMethod="Boot")), [])
        self.assertEqual(p.registry.get(MAC).challenge, "")
        self.assertIn(f"{MAC} Boot dropped (faults[0] (mac=*, message=Boot): drop)",
                      p.logged())
        self.assertEqual(p.boot()["Result"], 0)

    def test_no_reply(self):
        """no_reply: the request is handled (state changes) but no reply is sent."""
        p = Platform(faults=[{"mac": MAC, "message": "Hb", "no_reply": True, "count": 1}])
        p.register(p.boot()["ChallengeCode"])
        self.assertEqual(p.send(p.oper, {"RPCMethod": "Hb", "MAC": MAC, "IPAddr": "1.2.3.4",
                                         "FLAG": "1"}), [])
        self.assertEqual(p.registry.get(MAC).hb_addr, GW)
        self.assertTrue(any("not sent" in line and "no_reply" in line
                            for line in p.logged()))
        self.assertEqual(p.hb()["Result"], 0)

    def test_result(self):
        """result: N answers {"Result": N} only, without handling the request."""
        p = Platform(faults=[{"mac": "*", "message": "BootFirst", "result": -2}])
        self.assertEqual(p.boot_first(), {"Result": -2})
        self.assertEqual(p.registry.get(MAC).dist_challenge, "")
        self.assertIn(f"{MAC} BootFirst -> Result -2 (faults[0] (mac=*, message=BootFirst)"
                      ": result)", p.logged())

    def test_result_each_code(self):
        """Each Result code the gateway reacts to can be forced, per message."""
        for message, code in [("BootFirst", -1), ("BootFirst", -6), ("RegisterFirst", -5),
                              ("Boot", -5), ("Register", 3), ("Hb", -3), ("Hb", -5)]:
            p = Platform(faults=[{"mac": "*", "message": message, "result": code}])
            msg = {"BootFirst": dict(BOOT, RPCMethod="BootFirst"),
                   "RegisterFirst": {"RPCMethod": "RegisterFirst", "MAC": MAC, "SN": SN,
                                     "CheckSN": "0" * 32},
                   "Boot": dict(BOOT, RPCMethod="Boot"),
                   "Register": {"RPCMethod": "Register", "MAC": MAC, "SN": SN,
                                "CheckSN": "0" * 32, "DevRND": DEV_RND},
                   "Hb": {"RPCMethod": "Hb", "MAC": MAC, "IPAddr": "", "FLAG": "0"}}[message]
            protocol = p.dist if message in ("BootFirst", "RegisterFirst") else p.oper
            self.assertEqual(p.only(protocol, msg), {"Result": code}, message)

    def test_delay(self):
        """delay: the normal reply goes out that many seconds later."""
        p = Platform(faults=[{"mac": "*", "message": "Boot", "delay": 2.5}])
        self.assertEqual(p.send(p.oper, dict(BOOT, RPCMethod="Boot")), [])
        p.clock.advance(2.4)
        self.assertEqual(p.replies(p.oper), [])
        p.clock.advance(0.1)
        [(reply, addr)] = p.replies(p.oper)
        self.assertEqual((reply["Result"], reply["ChallengeCode"], addr),
                         (0, p.challenge(1), GW))
        p.settle(self)

    def test_delay_with_result(self):
        """delay with result: {"Result": N} goes out late."""
        p = Platform(faults=[{"mac": "*", "message": "Register", "result": -1, "delay": 1}])
        self.assertEqual(p.send(p.oper, {"RPCMethod": "Register", "MAC": MAC, "SN": SN,
                                         "CheckSN": "0" * 32, "DevRND": DEV_RND}), [])
        p.clock.advance(1)
        self.assertEqual(p.replies(p.oper), [({"Result": -1}, GW)])

    def test_count(self):
        """count: N applies N times, then normal replies resume."""
        p = Platform(faults=[{"mac": "*", "message": "Hb", "result": -5, "count": 2}])
        p.register(p.boot()["ChallengeCode"])
        self.assertEqual([p.hb()["Result"] for _ in range(3)], [-5, -5, 0])

    def test_other_mac_unaffected(self):
        """A rule for another MAC leaves this device alone."""
        p = Platform(faults=[{"mac": "001122334455", "message": "*", "result": -2}])
        self.assertEqual(p.boot_first()["Result"], 0)

    def test_reserved_actions_ignored(self):
        """disconnect and distri_elsewhere rules do not touch UDP requests."""
        p = Platform(faults=[{"mac": "*", "message": "*", "disconnect": True},
                             {"mac": "*", "message": "*", "distri_elsewhere": "127.0.0.1:1"}])
        self.assertEqual(p.boot_first()["Result"], 0)

    def test_pending_delays_cancelled_on_stop(self):
        """Delayed replies are cancelled when the port stops: no timer leaks."""
        p = Platform(faults=[{"mac": "*", "message": "Boot", "delay": 5}])
        p.send(p.oper, dict(BOOT, RPCMethod="Boot"))
        p.oper.doStop()
        p.settle(self)

    def test_set_rules_at_run_time(self):
        """Rules replaced at run time apply to the next datagram."""
        p = Platform()
        self.assertEqual(p.boot_first()["Result"], 0)
        p.faults.set_rules([{"mac": "*", "message": "BootFirst", "result": -6}])
        self.assertEqual(p.boot_first(), {"Result": -6})


class TriggerTests(SynchronousTestCase):
    def key(self, p):
        return identity.trigger_key(DEV_RND, SN, "ChinaNet-ABCD", "wifipass", "admin1")

    def test_request_plugin(self):
        """RequestPlug-in goes to the heartbeat's source with the Key; fires with Result."""
        p = Platform()
        p.online()
        seen = len(p.oper.transport.written)
        d = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        [(msg, addr)] = p.replies(p.oper, seen)
        self.assertEqual(addr, GW)
        self.assertEqual(msg, {"RPCMethod": "RequestPlug-in", "Key": self.key(p),
                               "ServerAddr": "127.0.0.1", "ServerPort": 8443})
        self.assertEqual(msg["Key"], identity.md5_upper(
            DEV_RND, SN, "ABCD", "wifipass", "admin1"))
        self.assertNoResult(d)
        self.assertEqual(p.send(p.oper, {"Result": 0}), [])
        self.assertEqual(self.successResultOf(d), 0)
        self.assertIn(f"{MAC} RequestPlug-in answered: Result 0", p.logged())
        p.settle(self)

    def test_gateway_decodes_key(self):
        """The trigger decodes with the gateway's codec and its Key matches the gateway's."""
        p = Platform()
        p.online()
        p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        data, _ = p.oper.transport.written[-1]
        trigger = wire.decode_request(wire.decode_datagram(data), wire.TO_GATEWAY_UDP)
        self.assertEqual(trigger.Key, self.key(p))
        p.send(p.oper, {"Result": 0})

    def test_request_distri(self):
        """RequestDistri carries the distribution address and mode; fires with Result -1."""
        p = Platform()
        p.online()
        d = p.oper.send_request_distri(MAC, "127.0.0.1", 12113, "1")
        msg, addr = p.replies(p.oper)[-1]
        self.assertEqual(msg, {"RPCMethod": "RequestDistri", "Key": self.key(p),
                               "ServerAddr": "127.0.0.1", "ServerPort": 12113, "mode": "1"})
        p.send(p.oper, {"Result": -1})
        self.assertEqual(self.successResultOf(d), -1)
        p.oper.send_request_distri(MAC, "127.0.0.1", 12113)
        self.assertNotIn("mode", p.replies(p.oper)[-1][0])
        p.send(p.oper, {"Result": "0"})

    def test_timeout(self):
        """No answer within trigger_timeout -> TriggerTimeout; a late answer is dropped."""
        p = Platform(trigger_timeout=5)
        p.online()
        d = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        p.clock.advance(4.9)
        self.assertNoResult(d)
        p.clock.advance(0.1)
        self.failureResultOf(d, TriggerTimeout)
        p.send(p.oper, {"Result": 0})
        self.assertEqual(p.oper.counters["dropped"], 1)
        p.settle(self)

    def test_answer_from_elsewhere(self):
        """An answer from another address does not fire the trigger."""
        p = Platform()
        p.online()
        d = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        p.send(p.oper, {"Result": 0}, addr=("127.0.0.9", 40001))
        self.assertNoResult(d)
        p.send(p.oper, {"Result": 0})
        self.assertEqual(self.successResultOf(d), 0)

    def test_answers_in_order(self):
        """Two triggers to one gateway are answered first come, first served."""
        p = Platform()
        p.online()
        d1 = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        d2 = p.oper.send_request_distri(MAC, "127.0.0.1", 12113)
        p.send(p.oper, {"Result": 0})
        p.send(p.oper, {"Result": -1})
        self.assertEqual((self.successResultOf(d1), self.successResultOf(d2)), (0, -1))
        self.assertEqual(p.oper.pending_triggers(), 0)

    def test_bad_answer_dropped(self):
        """An answer without a usable Result is dropped; the trigger keeps waiting."""
        p = Platform()
        p.online()
        d = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        p.send(p.oper, {"Result": "x"})
        self.assertNoResult(d)
        p.send(p.oper, {"Result": 0})
        self.successResultOf(d)

    def test_cannot_send(self):
        """Unknown, unregistered or not yet heartbeating devices cannot be triggered."""
        p = Platform()
        self.failureResultOf(p.oper.send_request_plugin("001122334455", "h", 1),
                             TriggerError)
        self.failureResultOf(p.oper.send_request_plugin(MAC, "h", 1), TriggerError)
        p.register(p.boot()["ChallengeCode"])
        f = self.failureResultOf(p.oper.send_request_plugin(MAC, "h", 1), TriggerError)
        self.assertIn("no heartbeat", str(f.value))

    def test_cancel(self):
        """Cancelling a trigger forgets it and stops its timer."""
        p = Platform()
        p.online()
        d = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        d.cancel()
        self.failureResultOf(d)
        self.assertEqual(p.oper.pending_triggers(), 0)
        p.settle(self)

    def test_stop(self):
        """Triggers still waiting when the port stops fail with TriggerError."""
        p = Platform()
        p.online()
        d = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        p.oper.doStop()
        self.failureResultOf(d, TriggerError)
        p.settle(self)

    def test_fault_drop(self):
        """A drop rule on RequestPlug-in: nothing is sent and the trigger times out."""
        p = Platform(faults=[{"mac": "*", "message": "RequestPlug-in", "drop": 1}])
        p.online()
        seen = len(p.oper.transport.written)
        d = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        self.assertEqual(p.replies(p.oper, seen), [])
        p.clock.advance(5)
        self.failureResultOf(d, TriggerTimeout)
        d = p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        self.assertEqual(len(p.replies(p.oper, seen)), 1)
        p.send(p.oper, {"Result": 0})
        self.successResultOf(d)

    def test_fault_delay(self):
        """A delay rule sends the trigger late; the timeout counts from the send."""
        p = Platform(faults=[{"mac": "*", "message": "RequestDistri", "delay": 3}])
        p.online()
        seen = len(p.oper.transport.written)
        d = p.oper.send_request_distri(MAC, "127.0.0.1", 12113)
        p.clock.advance(2.9)
        self.assertEqual(p.replies(p.oper, seen), [])
        p.clock.advance(0.1)
        self.assertEqual(p.replies(p.oper, seen)[0][0]["RPCMethod"], "RequestDistri")
        p.clock.advance(4.9)
        p.send(p.oper, {"Result": 0})
        self.assertEqual(self.successResultOf(d), 0)
        p.settle(self)


class ConfigTests(SynchronousTestCase):
    def test_defaults(self):
        """An empty file gives the documented defaults."""
        c = parse_config("")
        self.assertEqual((c.distribution, c.operation.port, c.heartbeat_interval, c.db,
                          c.accept_unknown, c.devices, c.faults),
                         (Endpoint("127.0.0.1", 12112), 60001, 60, "cubeplat.db", False,
                          (), ()))
        self.assertFalse(c.separate_message_server())

    def test_log_level(self):
        """log_level is "info" (default) or "debug"; anything else is refused and named."""
        self.assertEqual(parse_config("").log_level, "info")
        self.assertEqual(parse_config("log_level: debug").log_level, "debug")
        with self.assertRaises(ConfigError) as caught:
            parse_config("log_level: trace")
        self.assertIn("log_level", str(caught.exception))

    def test_shipped_file(self):
        """etc/cubeplat.yaml loads, with its example device."""
        c = load_config(SHIPPED)
        self.assertEqual(c.devices[0].mac, MAC)
        self.assertEqual(c.devices[0].sn, SN)

    def test_full(self):
        """Every key is read and converted."""
        c = parse_config("""
distribution: {host: 127.0.0.1, port: 0}
operation: {host: 0.0.0.0, port: "60002", advertised_host: 127.0.0.1}
message_server: {host: 127.0.0.1, port: 9000}
update_server: upd
heartbeat_interval: 30
trigger_timeout: 2.5
report_limit: 5
db: /tmp/x.db
flush_delay: 0
accept_unknown: true
devices:
  - {mac: "64:d9:54:20:21:4b", sn: 64D954-D6AEE64D95420214B, wifi_password: 12345678}
faults:
  - {mac: "*", message: Hb, no_reply: true, count: 1}
""")
        self.assertEqual(c.operation, Endpoint("0.0.0.0", 60002, "127.0.0.1"))
        self.assertEqual((c.update_server, c.heartbeat_interval, c.trigger_timeout,
                          c.report_limit, c.db, c.flush_delay, c.accept_unknown),
                         ("upd", 30, 2.5, 5, "/tmp/x.db", 0.0, True))
        self.assertEqual(c.devices[0].mac, MAC)
        self.assertEqual(c.devices[0].wifi_password, "12345678")
        self.assertEqual(len(c.faults), 1)
        self.assertTrue(c.separate_message_server())

    def test_errors_name_the_key(self):
        """Bad values are refused with the key named."""
        cases = [
            ("colour: red", "colour"),
            ("- 1", "top level"),
            ("distribution: 5", "distribution"),
            ("operation: {port: 70000}", "operation.port"),
            ("operation: {bogus: 1}", "operation.bogus"),
            ("distribution: {advertised_host: x}", "distribution.advertised_host"),
            ("operation: {host: 0.0.0.0}", "operation.advertised_host"),
            ("heartbeat_interval: 0", "heartbeat_interval"),
            ("trigger_timeout: -1", "trigger_timeout"),
            ("accept_unknown: yes please", "accept_unknown"),
            ("db: ''", "db"),
            ("devices: {}", "devices"),
            ("devices: [{sn: x}]", "devices[0].mac"),
            ("devices: [{mac: zz}]", "devices[0].mac"),
            ("devices: [{mac: '64D95420214B', sn: bad}]", "devices[0].sn"),
            ("devices: [{mac: '64D95420214B', pin: 1}]", "devices[0].pin"),
            ("devices: [{mac: '64D95420214B'}, {mac: '64d95420214b'}]", "devices[1].mac"),
            ("faults: [{mac: '*', message: Hb}]", "faults[0] (mac=*, message=Hb)"),
            ("faults: [", "not valid YAML"),
        ]
        for text, key in cases:
            e = self.assertRaises(ConfigError, parse_config, text)
            self.assertIn(key, str(e), text)

    def test_missing_file(self):
        """An unreadable file is a ConfigError naming it."""
        e = self.assertRaises(ConfigError, load_config, "/nonexistent/cubeplat.yaml")
        self.assertIn("/nonexistent/cubeplat.yaml", str(e))

    def test_overrides(self):
        """Command-line overrides replace the db path and ports."""
        c = PlatformConfig().with_overrides(db="x.db", distribution_port="1",
                                            operation_port=2)
        self.assertEqual((c.db, c.distribution.port, c.operation.port), ("x.db", 1, 2))
        self.assertRaises(ConfigError, PlatformConfig().with_overrides,
                          operation_port="http")


class UDPMemoryReactor(MemoryReactorClock):
    """A MemoryReactorClock that also records listenUDP."""

    def __init__(self):
        super().__init__()
        self.udp = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udp.append((port, protocol, interface))
        transport = FakeDatagramTransport()
        protocol.makeConnection(transport)

        class Port:
            def stopListening(self):
                protocol.doStop()
        return Port()


class TapTests(SynchronousTestCase):
    def options(self, *args, check_database=False):
        options = tap.Options()
        options.check_database = check_database
        options.parseOptions(list(args))
        return options

    def test_options(self):
        """--config is loaded and --db and the ports override it."""
        o = self.options("--config", SHIPPED, "--db", "x.db",
                         "--distribution-port", "1", "--operation-port", "2")
        c = o["platform"]
        self.assertEqual((c.db, c.distribution.port, c.operation.port), ("x.db", 1, 2))
        self.assertEqual(self.options()["platform"], PlatformConfig())

    def test_bad_options(self):
        """A bad config file or port is a UsageError with one clear line."""
        self.assertRaises(usage.UsageError, self.options, "--config", "/nonexistent")
        e = self.assertRaises(usage.UsageError, self.options, "--operation-port", "x")
        self.assertIn("operation.port", str(e))

    def test_database_checked(self):
        """The database is created and checked while parsing; an unusable path is a
        UsageError naming it."""
        path = os.path.join(self.mktemp(), "db", "cubeplat.db")
        self.options("--db", path, check_database=True)
        self.assertTrue(os.path.exists(path))
        directory = os.path.dirname(path)
        e = self.assertRaises(usage.UsageError, self.options, "--db", directory,
                              check_database=True)
        self.assertIn(f"db: cannot use the database {directory}", str(e))

    def test_make_service(self):
        """makeService builds the registry, the faults, and one UDP server per socket."""
        reactor = UDPMemoryReactor()
        o = self.options("--config", SHIPPED, "--db", "x.db")
        top = tap.makeService(o, reactor)
        IService(top)
        self.assertEqual(sorted(s.name for s in top), ["distribution", "operation"])
        self.assertIsInstance(top.operation, OperationProtocol)
        self.assertIsInstance(top.distribution, DistributionProtocol)
        self.assertIsNone(top.message_server)

    def test_start_and_stop(self):
        """Children start once the registry is loaded and preset; stop flushes it."""
        reactor = UDPMemoryReactor()
        o = self.options("--config", SHIPPED, "--operation-port", "0")
        top = tap.makeService(o, reactor)
        store = top.registry.store = MemoryStore()
        top.startService()
        self.assertEqual([(port, interface) for port, _, interface in reactor.udp],
                         [(0, "127.0.0.1"), (12112, "127.0.0.1")])
        self.assertIn(MAC, top.registry)
        self.assertEqual(top.distribution.operation_address(), ("127.0.0.1", 0))
        self.successResultOf(top.stopService())
        self.assertIn(MAC, store.rows)

    def test_separate_message_server(self):
        """A message_server port of its own adds a third UDP server."""
        reactor = UDPMemoryReactor()
        options = {"platform": PlatformConfig(message_server=Endpoint("127.0.0.1", 9000))}
        top = tap.makeService(options, reactor)
        self.assertEqual(sorted(s.name for s in top),
                         ["distribution", "message_server", "operation"])
        self.assertIsInstance(top.message_server, MessageServerProtocol)
