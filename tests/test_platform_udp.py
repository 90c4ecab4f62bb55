"""The distribution and operation platforms on a Clock with fake transports, no sockets.

Also the platform's configuration and its twistd wiring (Options, makeService).
"""

import dataclasses
import errno
import json
import os
import socket

from twisted.application.service import IService
from twisted.internet import udp
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.logger import LogLevel, formatEvent
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity, logs, wire
from cubegw.logs import Logger
from cubegw.platform import tap
from cubegw.platform.config import (
    ConfigError, DeviceConfig, Endpoint, PlatformConfig, load_config, parse_config)
from cubegw.platform.distribution import DistributionProtocol
from cubegw.platform.faults import FaultRules
from cubegw.platform.messagelog import MessageLog
from cubegw.platform.operation import OperationProtocol, TriggerError, TriggerTimeout
from cubegw.platform.registry import MemoryStore, Registry
from cubegw.platform.udp import (
    RECEIVE_BUFFER, ROUTINE_INFO_LIMIT, ROUTINE_WINDOW, MessageServerProtocol)

from tests.helpers import MAC, SN
from tests.helpers.platform import BOOT, DEV_RND, DEVICE, GW, FakeDatagramTransport

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "etc", "cubeplat.yaml")


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
        self.wirelog = MessageLog(self.clock)
        self.oper = OperationProtocol(self.registry, self.faults, self.config, self.clock,
                                      urandom=self._urandom, wirelog=self.wirelog)
        self.dist = DistributionProtocol(self.registry, self.faults, self.config,
                                         self.clock, urandom=self._urandom,
                                         wirelog=self.wirelog)
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
        """Write the registry and check no timer is left behind (but the heartbeat
        summary's, which runs as long as the port)."""
        test.successResultOf(self.registry.flush())
        test.assertEqual([call for call in self.clock.getDelayedCalls()
                          if call is not summary_call(self.oper)], [])


def summary_call(protocol):
    """The pending call of the operation platform's heartbeat summary, or None."""
    summary = protocol._summary
    return summary.call if summary is not None else None


def log_level(test, level):
    """Set cubegw.logs' level for this test."""
    test.addCleanup(logs.set_level, logs.level())
    logs.set_level(level)


class ChallengeTests(SynchronousTestCase):
    def test_fresh(self):
        """A challenge is 16 bytes of urandom as 32 upper-case hex."""
        self.assertEqual(identity.new_challenge(lambda n: b"\xab" * n), "AB" * 16)
        self.assertNotEqual(identity.new_challenge(), identity.new_challenge())


class DistributionTests(SynchronousTestCase):
    def test_boot_first(self):
        """BootFirst -> Result 0 with a fresh challenge, remembered with the Boot fields."""
        p = Platform()
        self.assertEqual(p.boot_first(), {"Result": 0, "ChallengeCode": p.challenge(1)})
        self.assertEqual(p.boot_first(), {"Result": 0, "ChallengeCode": p.challenge(2)})
        r = p.registry.get(MAC)
        self.assertEqual((r.dist_challenge, r.vendor, r.firmware_version, r.wan_ip),
                         (p.challenge(2), "TestVendor", "1.2.3", "192.0.2.10"))
        self.assertIn(f"{MAC} BootFirst -> Result 0", p.logged())
        self.assertNotIn(p.challenge(2), " ".join(p.logged()))
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
        self.assertEqual(r.hb_addr, GW)
        self.assertIn(f"{MAC} Register -> Result 2 (from {GW[0]}:{GW[1]})", p.logged())
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
        log_level(self, "debug")
        p.hb("0")
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
        p.online()
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
        p.online()
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

    def test_next_key_uses_the_answers_dev_rnd(self):
        """The trigger answer's DevRND replaces the Register's: the next Key is made with
        it; an answer without one (an older gateway) or with a bad one changes nothing."""
        p = Platform()
        p.online()
        fresh = "0123456789ABCDEF0123456789ABCDEF"
        p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        p.send(p.oper, {"Result": 0, "DevRND": fresh.lower()})
        p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        msg, _ = p.replies(p.oper)[-1]
        self.assertEqual(msg["Key"], identity.trigger_key(
            fresh, SN, "ChinaNet-ABCD", "wifipass", "admin1"))
        p.send(p.oper, {"Result": 0})
        p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        self.assertEqual(p.replies(p.oper)[-1][0]["Key"], msg["Key"])
        p.send(p.oper, {"Result": 0, "DevRND": "nothex"})
        self.assertEqual(p.oper.counters["dropped"], 1)
        p.send(p.oper, {"Result": 0})
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


OTHER = "64D95420214C"        # a second device
UNKNOWN = "001122334455"


def hb_msg(mac=MAC, **fields):
    return dict({"RPCMethod": "Hb", "MAC": mac, "IPAddr": "192.0.2.10", "FLAG": "0"},
                **fields)


def hb_data(mac=MAC, **fields):
    return json.dumps(hb_msg(mac, **fields)).encode()


class HeartbeatLogTests(SynchronousTestCase):
    """Routine heartbeats are logged at debug; a summary at info counts them each minute."""

    def setUp(self):
        log_level(self, "info")

    def lines(self, p, since=0):
        return [(e["log_level"], formatEvent(e)) for e in p.events[since:]]

    def assertRoutineHbAtDebug(self, p):
        """An Hb answered Result 0 with no note logs nothing at info, one line at debug."""
        p.online()
        seen = len(p.events)
        self.assertEqual(p.hb(), {"Result": 0, "Interval": 45})
        self.assertEqual(self.lines(p, seen), [])
        logs.set_level("debug")
        p.hb()
        self.assertEqual(self.lines(p, seen), [(LogLevel.debug, f"{MAC} Hb -> Result 0")])
        [event] = p.events[seen:]
        self.assertEqual((event["reply"], event["addr"]), ({"Result": 0, "Interval": 45}, GW))

    def test_routine_hb_at_debug(self):
        """An Hb answered Result 0 with no note logs nothing at info, one line at debug."""
        self.assertRoutineHbAtDebug(Platform())

    def test_routine_hb_at_debug_general_path(self):
        """The same when the Hb takes the general path (a fault rule is set)."""
        self.assertRoutineHbAtDebug(
            Platform(faults=[{"mac": UNKNOWN, "message": "Boot", "result": -2}]))

    def test_others_at_info(self):
        """Registration, the first Hb after Register, Hb refused or forced, and faults
        stay at info."""
        p = Platform(faults=[{"mac": "*", "message": "Hb", "result": -5, "count": 1}])
        p.register_first(p.boot_first()["ChallengeCode"])
        self.assertEqual(p.hb(), {"Result": -5})
        self.assertEqual(p.hb(), {"Result": -3})
        p.register(p.boot()["ChallengeCode"])
        p.hb("1")
        p.hb()
        lines = self.lines(p)
        self.assertEqual({level for level, _ in lines}, {LogLevel.info})
        logged = [line for _, line in lines if line.startswith(MAC)]
        self.assertEqual([line.split(" (")[0] for line in logged], [
            f"{MAC} BootFirst -> Result 0", f"{MAC} RegisterFirst -> Result 0",
            f"{MAC} Hb -> Result -5", f"{MAC} Hb -> Result -3", f"{MAC} Boot -> Result 0",
            f"{MAC} Register -> Result 2", f"{MAC} Hb -> Result 0"])
        self.assertEqual(logged[-1], f"{MAC} Hb -> Result 0 (first after Register)")

    def summaries(self, p, since=0):
        return [line for level, line in self.lines(p, since) if line.startswith("heartbeats")]

    def test_summary(self):
        """Once a minute: how many Hb were answered Result 0, from how many gateways;
        nothing when none was."""
        p = Platform()
        p.online()                                        # FLAG "1": counted
        p.registry.add(OTHER, registered=True, hb_addr=GW)
        for _ in range(3):
            p.hb()
        p.only(p.oper, hb_msg(OTHER))
        self.assertEqual(p.only(p.oper, hb_msg(UNKNOWN)), {"Result": -3})  # not counted
        p.clock.advance(59)
        self.assertEqual(self.summaries(p), [])
        seen = len(p.events)
        p.clock.advance(1)
        self.assertEqual(self.lines(p, seen), [
            (LogLevel.info, "heartbeats: 5 answered in the last 60 s, 2 gateways")])
        p.clock.advance(60)
        self.assertEqual(len(self.summaries(p)), 1)
        p.hb()
        p.clock.advance(60)
        self.assertEqual(self.summaries(p)[1:],
                         ["heartbeats: 1 answered in the last 60 s, 1 gateways"])
        p.settle(self)

    def test_summary_not_for_faults(self):
        """Hb whose answer a fault rule lost or forced are not counted."""
        p = Platform(faults=[{"mac": "*", "message": "Hb", "no_reply": True, "count": 1},
                             {"mac": "*", "message": "Hb", "result": 0, "count": 1}])
        p.register(p.boot()["ChallengeCode"])
        self.assertEqual(p.send(p.oper, hb_msg()), [])
        self.assertEqual(p.hb(), {"Result": 0})
        p.clock.advance(60)
        self.assertEqual(self.summaries(p), [])

    def test_routine_registration_lines_capped(self):
        """Accepted registration steps go out at info up to ROUTINE_INFO_LIMIT a minute
        per socket, then at debug; one info line counts those when the minute is over,
        and refusals stay at info whatever the count."""
        p = Platform()
        logs.set_level("debug")
        for _ in range(ROUTINE_INFO_LIMIT + 5):
            p.boot_first()
        p.register_first("00" * 16)                     # a refusal: bad CheckSN
        lines = self.lines(p)
        accepted = [(level, line) for level, line in lines if "BootFirst -> Result 0" in line]
        self.assertEqual([level for level, _ in accepted],
                         [LogLevel.info] * ROUTINE_INFO_LIMIT + [LogLevel.debug] * 5)
        self.assertIn((LogLevel.info, f"{MAC} RegisterFirst -> Result -1 (bad CheckSN)"),
                      lines)
        seen = len(p.events)
        p.clock.advance(ROUTINE_WINDOW)
        p.boot_first()
        self.assertEqual([e for e in self.lines(p, seen) if e[0] == LogLevel.info], [
            (LogLevel.info, "distribution: 5 more routine registration lines (accepted "
                            "steps, devices added) at debug only, over "
                            f"{ROUTINE_INFO_LIMIT} a minute"),
            (LogLevel.info, f"{MAC} BootFirst -> Result 0")])

    def test_quiet_lines_reported_at_stop_and_summary(self):
        """The count of quiet lines is not lost: the heartbeat summary and stopping the
        port report it too."""
        p = Platform()
        for _ in range(ROUTINE_INFO_LIMIT + 2):
            p.boot()
        p.boot_first()
        p.clock.advance(p.oper.summary_interval)
        quiet = [line for _, line in self.lines(p) if "more routine" in line]
        self.assertEqual(quiet, ["operation: 2 more routine registration lines (accepted "
                                 "steps, devices added) at debug only, over "
                                 f"{ROUTINE_INFO_LIMIT} a minute"])
        for _ in range(ROUTINE_INFO_LIMIT + 2):
            p.boot_first()
        p.dist.doStop()
        self.assertIn("distribution: 2 more routine", " ".join(
            line for _, line in self.lines(p)))

    def test_summary_runs_with_the_port(self):
        """The summary starts with the port and stops with it."""
        p = Platform()
        self.assertIn(summary_call(p.oper), p.clock.getDelayedCalls())
        p.online()
        p.oper.doStop()
        self.assertIsNone(summary_call(p.oper))
        p.clock.advance(60)
        self.assertEqual(self.summaries(p), [])
        p.settle(self)
        self.assertEqual(p.clock.getDelayedCalls(), [])


class RoutineHbTests(SynchronousTestCase):
    """The short cut for routine heartbeats answers, records and logs as the general path
    does, and leaves everything else to it."""

    def setUp(self):
        log_level(self, "debug")

    def platforms(self):
        """``fast`` with no fault rule; ``slow`` with one that never matches, so every
        datagram takes the general path.  The device is registered and has sent its
        first Hb; OTHER is known but not registered."""
        fast = Platform()
        slow = Platform(faults=[{"mac": UNKNOWN, "message": "Boot", "result": -2}])
        for p in (fast, slow):
            p.online()
            p.registry.add(OTHER, sn=SN)
        taken = []
        routine_hb = fast.oper.routine_hb

        def spy(data, addr):
            taken.append(routine_hb(data, addr))
            return taken[-1]
        fast.oper.routine_hb = spy
        return fast, slow, taken

    def same(self, cases):
        """Send each datagram to both platforms; the short cut was taken for the ones
        marked True, and replies (byte for byte), records, stored rows, counters and
        log lines are the same."""
        fast, slow, taken = self.platforms()
        expected = []
        for data, routine in cases:
            seen = [len(p.events) for p in (fast, slow)]
            written = [len(p.oper.transport.written) for p in (fast, slow)]
            for p in (fast, slow):
                p.clock.advance(1)
                p.oper.datagramReceived(data, GW)
            expected.append(routine)
            self.assertEqual(taken, expected, data)
            self.assertEqual(fast.oper.transport.written[written[0]:],
                             slow.oper.transport.written[written[1]:], data)
            self.assertEqual(*[[(e["log_level"], formatEvent(e), e.get("reply"),
                                 e.get("addr")) for e in p.events[n:]]
                               for p, n in zip((fast, slow), seen)])
            for mac in (MAC, OTHER):
                self.assertEqual(fast.registry.get(mac).as_dict(),
                                 slow.registry.get(mac).as_dict(), data)
                self.assertEqual(fast.oper.wirelog.messages(mac),
                                 slow.oper.wirelog.messages(mac), data)
        self.assertEqual(fast.oper.counters, slow.oper.counters)
        for p in (fast, slow):
            p.clock.advance(60)
            p.settle(self)
        self.assertEqual(fast.store.rows, slow.store.rows)
        self.assertEqual(*[[line for line in p.logged() if line.startswith("heartbeats")]
                           for p in (fast, slow)])
        return fast, slow

    def test_routine(self):
        """Routine heartbeats: the reply, the record and the debug line are the same."""
        fast, slow = self.same([
            (hb_data(), True),
            (hb_data(IPAddr=""), True),                   # WAN IP kept
            (hb_data(IPAddr="198.51.100.7"), True),
            (hb_data(Version="1.0", Extra=[1]), True),    # other fields ignored
            (json.dumps(hb_msg(IPAddr="\ud800")).encode(), True),
        ])
        self.assertEqual(fast.oper.transport.written[-1],
                         (b'{"Result":0,"Interval":45}', GW))
        self.assertEqual(fast.registry.get(MAC).wan_ip, "\ud800")

    def test_unusual(self):
        """Heartbeats the short cut leaves to the general path are answered as before."""
        self.same([
            (hb_data(MAC.lower()), False),               # accepted, upper-cased
            (hb_data(FLAG="1"), False),                  # the note at info
            (hb_data(FLAG=0), False),                    # numbers taken as strings
            (hb_data(IPAddr=19216801), False),
            (hb_data(OTHER), False),                     # not registered: -3
            (hb_data(UNKNOWN), False),                   # unknown: -3
            (b" " + hb_data() + b"\n", False),          # white space around it
            (hb_data().replace(b'"Hb"', b'"\\u0048b"'), False),  # no "Hb" bytes: parsed once
            (hb_data(), True),
        ])

    def test_malformed(self):
        """Bad datagrams fall back to the general path: dropped and logged as before."""
        good = hb_data()
        self.same([
            (b"not json", False),
            (b"\xff\xfe", False),
            (good.decode().encode("utf-16"), False),
            (b"\xef\xbb\xbf" + good, False),
            (good[:-1], False),
            (good + b"x", False),
            (good + good, False),
            (b"[1,2]", False),
            (b"[" * 5000, False),
            (b"[" * 4000 + b"]" * 4000, False),
            (good[:-1] + b', "pad": "' + b"x" * 4096 + b'"}', False),
            (json.dumps({"RPCMethod": "Hb"}).encode(), False),
            (json.dumps({"RPCMethod": "hb", "MAC": MAC, "IPAddr": "", "FLAG": "0"}).encode(),
             False),
            (json.dumps({"Result": 0}).encode(), False),
            (hb_data("nothex"), False),
            (hb_data("64D95420214BX"), False),
            (hb_data(None), False),
            (hb_data(123456789012), False),
            (hb_data(IPAddr=None), False),
            (hb_data(IPAddr="x" * 257), False),
            (hb_data(IPAddr=["1.2.3.4"]), False),
            (hb_data(FLAG="7"), False),
            (hb_data(FLAG=None), False),
            (good, True),                                # and the next one is routine
            (json.dumps(dict(BOOT, RPCMethod="Boot", FLAG="0")).encode(), False),
        ])

    def test_gateway_spelling(self):
        """Heartbeats spelt as cubegw's gateway spells them (compact JSON, the protocol's
        key order) are read without the JSON parser and answered as any spelling is;
        near misses (escapes, control characters, long or non-ASCII IPAddr, another
        MAC, FLAG or spacing) are read as JSON, routine or not as JSON says."""
        from cubegw.platform import operation
        parsed = []
        scan = operation.scan_json

        def counting(text, at):
            if text.startswith('{"RPCMethod":"Hb"'):       # not the setup's spaced Hb
                parsed.append(text)
            return scan(text, at)
        self.patch(operation, "scan_json", counting)

        def spelt(mac=MAC, **fields):
            return json.dumps(hb_msg(mac, **fields), separators=(",", ":"),
                              ensure_ascii=False).encode()
        self.same([
            (spelt(), True),
            (spelt(IPAddr=""), True),
            (spelt(IPAddr="2001:db8::1"), True),
            (spelt(IPAddr="x" * 256), True),
        ])
        self.assertEqual(parsed, [])
        fast, _ = self.same([
            (spelt(IPAddr="x" * 257), False),
            (spelt(IPAddr='a"b'), True),                 # an escape: JSON reads it
            (spelt(IPAddr="a\\b"), True),
            (spelt(IPAddr="198.51.100.١"), True),   # not ASCII
            (spelt(IPAddr="a\x01b").replace(b"\\u0001", b"\x01"), False),  # raw control
            (spelt(MAC.lower()), False),
            (spelt(OTHER), False),
            (spelt(FLAG="1"), False),
            (spelt() + b" ", False),
            (spelt(Extra=1), True),
            (spelt(), True),
        ])
        self.assertEqual(len(parsed), 9)                 # all but OTHER's and the last
        self.assertEqual(fast.registry.get(MAC).wan_ip, "192.0.2.10")

    def test_odd_registry_key(self):
        """A registry key that is not a MAC as the wire gives it (say, a hand-edited
        database) does not make a heartbeat routine: it is looked up as the wire reads it."""
        p = Platform()
        p.registry.add(OTHER.lower(), registered=True)
        self.assertFalse(p.oper.routine_hb(hb_data(OTHER.lower()), GW))
        self.assertEqual(p.send(p.oper, hb_data(OTHER.lower())), [({"Result": -3}, GW)])

    def test_fault_rules_fall_back(self):
        """With a live fault rule the short cut stands aside, so the rules apply; it is
        back once the rule is spent or the rules are cleared."""
        p = Platform()
        p.online()
        p.faults.set_rules([{"mac": "*", "message": "Hb", "result": -5, "count": 1}])
        self.assertFalse(p.oper.routine_hb(hb_data(), GW))
        self.assertEqual(p.hb(), {"Result": -5})
        self.assertTrue(p.oper.routine_hb(hb_data(), GW))     # spent: no rule can match
        p.faults.set_rules([{"mac": "*", "message": "Boot", "result": -1}])
        self.assertFalse(p.oper.routine_hb(hb_data(), GW))    # any live rule: general path
        p.faults.set_rules([])
        self.assertTrue(p.oper.routine_hb(hb_data(), GW))

    def test_not_loaded(self):
        """Before the registry is loaded heartbeats are dropped as any datagram."""
        p = Platform()
        p.online()
        p.registry.loaded = False
        self.assertFalse(p.oper.routine_hb(hb_data(), GW))
        self.assertEqual(p.send(p.oper, hb_data()), [])
        self.assertIn("the device registry is still loading", p.logged()[-1])

    def test_after_new_challenge(self):
        """After a new Boot challenge the device is not registered: -3, then 0 again
        after Register."""
        p = Platform()
        p.online()
        p.boot()
        self.assertFalse(p.oper.routine_hb(hb_data(), GW))
        self.assertEqual(p.hb(), {"Result": -3})
        p.register(p.challenge(2))
        self.assertEqual(p.hb(), {"Result": 0, "Interval": 45})

    def test_reply_follows_interval(self):
        """The reply encoded once follows a new heartbeat_interval."""
        p = Platform()
        p.online()
        self.assertEqual(p.hb(), {"Result": 0, "Interval": 45})
        p.oper.config = dataclasses.replace(p.config, heartbeat_interval=30)
        self.assertEqual(p.hb(), {"Result": 0, "Interval": 30})
        self.assertEqual(p.oper.transport.written[-1][0], b'{"Result":0,"Interval":30}')


class FakeSocket:
    """What a Twisted UDP port's socket is asked for: options, and sendto."""

    def __init__(self):
        self.sent = []
        self.options = []
        self.error = None

    def setsockopt(self, *args):
        self.options.append(args)

    def getsockname(self):
        return ("127.0.0.1", 60001)

    def sendto(self, data, addr):
        if self.error is not None:
            raise OSError(self.error, os.strerror(self.error))
        self.sent.append((data, addr))


class DirectReplyTests(SynchronousTestCase):
    """On a Twisted UDP port replies go straight to the socket's sendto."""

    def setUp(self):
        log_level(self, "info")
        self.p = Platform()
        self.p.oper.doStop()
        self.port = udp.Port(0, self.p.oper, "127.0.0.1", reactor=MemoryReactor())
        self.port.socket = FakeSocket()
        self.writes = []
        self.port.write = lambda data, addr: self.writes.append((data, addr))
        self.p.oper.makeConnection(self.port)

    def registered(self):
        self.p.registry.update(MAC, registered=True, hb_addr=GW)

    def test_replies(self):
        """Replies (the general path's and the short cut's) use sendto; triggers, to a
        stored address, the port's checked write."""
        p, sock = self.p, self.port.socket
        self.assertIn((socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER), sock.options)
        p.oper.datagramReceived(json.dumps(dict(BOOT, RPCMethod="Boot")).encode(), GW)
        challenge = json.loads(sock.sent[-1][0])["ChallengeCode"]
        p.oper.datagramReceived(json.dumps({
            "RPCMethod": "Register", "MAC": MAC, "SN": SN, "DevRND": DEV_RND,
            "CheckSN": identity.check_sn(challenge, SN)}).encode(), GW)
        p.oper.datagramReceived(hb_data(), GW)
        self.assertEqual([json.loads(data)["Result"] for data, _ in sock.sent], [0, 2, 0])
        self.assertEqual({addr for _, addr in sock.sent}, {GW})
        self.assertEqual(self.writes, [])
        p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        self.assertEqual(len(sock.sent), 3)
        self.assertEqual(json.loads(self.writes[0][0])["RPCMethod"], "RequestPlug-in")

    def test_refused_ignored(self):
        """ECONNREFUSED (an ICMP error of an earlier datagram) is ignored, as Twisted's
        write ignores it."""
        self.registered()
        self.port.socket.error = errno.ECONNREFUSED
        seen = len(self.p.events)
        self.p.oper.datagramReceived(hb_data(), GW)
        self.assertEqual((self.p.oper.counters.get("unsent", 0), self.p.events[seen:]), (0, []))

    def test_error_logged(self):
        """Any other error loses that reply, counted and logged; serving goes on."""
        self.registered()
        self.port.socket.error = errno.EAGAIN
        self.p.oper.datagramReceived(hb_data(), GW)
        self.assertEqual(self.p.oper.counters["unsent"], 1)
        self.assertIn(f"operation: reply to {GW!r} not sent: [Errno {errno.EAGAIN}] "
                      f"{os.strerror(errno.EAGAIN)}", self.p.logged())
        self.port.socket.error = None
        self.p.oper.datagramReceived(hb_data(), GW)
        self.assertEqual(len(self.port.socket.sent), 1)

    def test_stopped(self):
        """Once the port stops, nothing is sent on its socket."""
        self.registered()
        self.p.oper.datagramReceived(hb_data(), GW)
        self.p.oper.doStop()
        self.assertIsNone(self.p.oper._sendto)
        self.p.oper.reply(b"{}", GW)
        self.assertEqual(len(self.port.socket.sent), 1)


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
        options.check_ports = False
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

    def test_summary_with_the_service(self):
        """The heartbeat summary runs on the reactor while the service does."""
        reactor = UDPMemoryReactor()
        top = tap.makeService(self.options("--config", SHIPPED), reactor)
        top.registry.store = MemoryStore()
        self.assertIsNone(summary_call(top.operation))
        top.startService()
        self.assertIn(summary_call(top.operation), reactor.getDelayedCalls())
        self.successResultOf(top.stopService())
        self.assertIsNone(summary_call(top.operation))
        self.assertEqual(reactor.getDelayedCalls(), [])

    def test_separate_message_server(self):
        """A message_server port of its own adds a third UDP server."""
        reactor = UDPMemoryReactor()
        options = {"platform": PlatformConfig(message_server=Endpoint("127.0.0.1", 9000))}
        top = tap.makeService(options, reactor)
        self.assertEqual(sorted(s.name for s in top),
                         ["distribution", "message_server", "operation"])
        self.assertIsInstance(top.message_server, MessageServerProtocol)


ROGUE = ("127.0.0.66", 40000)


class OriginTests(SynchronousTestCase):
    """Issue 18 point 7: a gateway is tied to the address its Register came from."""

    def test_hb_from_another_address(self):
        """An Hb from another host, or another port of the same host, is -3 and moves
        nothing: triggers still go to the address that registered."""
        p = Platform()
        p.online()
        for addr in (ROGUE, (GW[0], GW[1] + 1)):
            self.assertEqual(p.hb(addr=addr), {"Result": -3})
            record = p.registry.get(MAC)
            self.assertEqual((record.hb_addr, record.online, record.registered),
                             (GW, True, True))
        p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        self.assertEqual(p.oper.transport.written[-1][1], GW)

    def test_report_from_another_address(self):
        """A Report from another address (or of an unregistered device) is dropped."""
        p = Platform()
        msg = {"RPCMethod": "Report", "MAC": MAC, "Parameter": {"n": "1"}}
        p.send(p.oper, msg)
        p.online()
        self.assertEqual(p.send(p.oper, msg, ROGUE), [])
        self.assertEqual(p.registry.reports(MAC), [])
        p.send(p.oper, msg)
        self.assertEqual(p.registry.reports(MAC), [(0.0, {"n": "1"})])

    def test_boot_register_from_another_host_while_online(self):
        """While the device heartbeats, a Boot or Register from another host is -1 and
        changes nothing; from the same host (a restarted daemon) it is served."""
        p = Platform()
        p.online()
        self.assertEqual(p.only(p.oper, dict(BOOT, RPCMethod="Boot"), ROGUE), {"Result": -1})
        self.assertEqual(p.only(p.oper, {
            "RPCMethod": "Register", "MAC": MAC, "SN": SN, "DevRND": "AB" * 16,
            "CheckSN": identity.check_sn(p.challenge(1), SN), "UserID": ""}, ROGUE),
            {"Result": -1})
        record = p.registry.get(MAC)
        self.assertEqual((record.challenge, record.dev_rnd, record.hb_addr),
                         (p.challenge(1), DEV_RND, GW))
        self.assertEqual(p.hb(), {"Result": 0, "Interval": 45})
        other_port = (GW[0], GW[1] + 1)
        self.assertEqual(p.only(p.oper, dict(BOOT, RPCMethod="Boot"), other_port)["Result"],
                         0)

    def test_moved_gateway_gets_in_when_silent(self):
        """Once the registration has been silent for 3 intervals, another host may Boot
        and Register (a gateway whose address changed)."""
        p = Platform()
        p.online()
        p.clock.advance(3 * 45 + 1)
        challenge = p.only(p.oper, dict(BOOT, RPCMethod="Boot"), ROGUE)["ChallengeCode"]
        self.assertEqual(p.only(p.oper, {
            "RPCMethod": "Register", "MAC": MAC, "SN": SN, "DevRND": DEV_RND,
            "CheckSN": identity.check_sn(challenge, SN), "UserID": ""}, ROGUE)["Result"], 2)
        self.assertEqual(p.registry.get(MAC).hb_addr, ROGUE)
        self.assertEqual(p.hb(), {"Result": -3})

    def test_boot_keeps_bound_loid(self):
        """A BootFirst or Boot does not change the LOID of a bound device; of an unbound
        one it does."""
        p = Platform()
        p.only(p.oper, dict(BOOT, RPCMethod="Boot", LOID="0755000000"))
        self.assertEqual(p.registry.get(MAC).loid, "0755000000")
        p.registry.bind(MAC, "U1")
        p.only(p.dist, dict(BOOT, RPCMethod="BootFirst", LOID="EVIL1"))
        p.only(p.oper, dict(BOOT, RPCMethod="Boot", LOID="EVIL2"))
        self.assertEqual(p.registry.get(MAC).loid, "0755000000")
        self.assertIn(f"{MAC} Boot: LOID 'EVIL2' ignored, the device is bound with "
                      "'0755000000'", p.logged())

    def test_secrets_at_debug_only(self):
        """Challenges and DevRND appear in no info line, text or fields; at debug they
        are logged."""
        log_level(self, "debug")
        p = Platform()
        p.register_first(p.boot_first()["ChallengeCode"])
        p.online()
        p.oper.send_request_plugin(MAC, "127.0.0.1", 8443)
        key = p.registry.get(MAC).trigger_key()
        secrets = (p.challenge(1), p.challenge(2), DEV_RND, key)
        info = [e for e in p.events if e["log_level"] >= LogLevel.info]
        self.assertTrue(info)
        for event in info:
            text = formatEvent(event) + repr(event)
            self.assertEqual([s for s in secrets if s in text], [], text)
        debug = " ".join(formatEvent(e) for e in p.events if e["log_level"] == LogLevel.debug)
        self.assertIn(p.challenge(2), debug)
        self.assertIn(DEV_RND, debug)
