"""The plugin center on a Clock with StringTransport (and one iosim pair), no sockets."""

import json
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError
from twisted.internet.task import Clock
from twisted.logger import Logger, formatEvent
from twisted.protocols.basic import Int32StringReceiver
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity, wire
from cubegw.platform.config import DeviceConfig
from cubegw.platform.faults import FaultRules
from cubegw.platform.origin import same_address, same_host
from cubegw.platform.plugincenter import (
    CallTimeout, GatewayGone, NotConnected, PluginCenter, PluginCenterError,
    PluginCenterProtocol)
from cubegw.platform.registry import MemoryStore, Registry

from tests.helpers.plugincenter import BOOT, Gateway, frame

MAC = "64D95420214B"
SN = "64D954-D6AEE64D95420214B"
OTHER = "001122334455"
DEVICE = DeviceConfig(MAC, sn=SN, loid="0755123456")


class Harness:
    """A plugin center over an in-memory registry on a Clock; log events kept."""

    def __init__(self, testcase, faults=(), **timeouts):
        self.clock = Clock()
        self.gateways = []
        self.registry = Registry(MemoryStore(), self.clock)
        self.registry.load()
        self.registry.preset([DEVICE])
        # registered with the operation platform from the host the test gateways use
        self.registry.update(MAC, registered=True, hb_addr=("127.0.0.9", 50000))
        testcase.successResultOf(self.registry.flush())
        self.faults = FaultRules(faults)
        self.n = 0
        self.center = PluginCenter(self.registry, self.faults, self.clock,
                                   urandom=self._urandom, **timeouts)
        self.events = []
        self.center.log = Logger(observer=self.events.append)
        PluginCenterProtocol.log = Logger(observer=self.events.append)
        testcase.addCleanup(setattr, PluginCenterProtocol, "log", Logger())

    def _urandom(self, n):
        self.n += 1
        return bytes([self.n]) * n

    def gateway(self, port=40000):
        gw = Gateway(self.center, port)
        self.gateways.append(gw)
        return gw

    def messages(self):
        return [formatEvent(e) for e in self.events]

    def settle(self, testcase):
        """No timers left but the idle timers of connections still open."""
        idle = [gw.protocol.idle_timer for gw in self.gateways
                if not gw.transport.disconnecting]
        testcase.assertEqual([c for c in self.clock.getDelayedCalls() if c not in idle], [])
        testcase.assertEqual([c for c in self.gateways if c.transport.disconnecting
                              and c.protocol.idle_timer is not None], [])
        testcase.assertEqual(self.center.pending_calls(), 0)


class SessionTests(SynchronousTestCase):
    def test_boot_register_heartbeat(self):
        """Boot gets a fresh challenge, Register with MD5(challenge+SN) connects, Heartbeat
        is answered."""
        h = Harness(self)
        gw = h.gateway()
        boot = gw.boot()
        self.assertEqual(boot, {"Result": 0, "ChallengeCode": "01" * 16})
        self.assertFalse(h.center.is_connected(MAC))
        self.assertEqual(gw.register(boot["ChallengeCode"]), {"Result": 0})
        self.assertTrue(h.center.is_connected(MAC))
        self.assertEqual(h.center.connected(), [MAC])
        self.assertEqual(gw.only({"RPCMethod": "Heartbeat", "MAC": MAC}), {"Result": 0})
        self.assertIn(f"{MAC} plugin Boot -> Result 0", h.messages())
        self.assertNotIn("01" * 16, repr([e for e in h.events if e["log_level"].name
                                          != "debug"]))
        self.assertIn(f"{MAC} plugin Register -> Result 0 (connected)", h.messages())
        h.settle(self)

    def test_fresh_challenge_per_boot(self):
        """Each Boot gets a new challenge; only the latest one's CheckSN is accepted."""
        h = Harness(self)
        gw = h.gateway()
        first = gw.boot()["ChallengeCode"]
        second = gw.boot()["ChallengeCode"]
        self.assertNotEqual(first, second)
        self.assertEqual(gw.register(first), {"Result": -1})
        self.assertEqual(gw.register(second), {"Result": 0})

    def test_bad_check_sn(self):
        """A wrong CheckSN is Result -1 and the gateway stays unconnected."""
        h = Harness(self)
        gw = h.gateway()
        gw.boot()
        self.assertEqual(gw.register(None, check_sn="0" * 32), {"Result": -1})
        self.assertFalse(h.center.is_connected(MAC))
        self.assertIn(f"{MAC} plugin Register -> Result -1 (bad CheckSN)", h.messages())

    def test_unknown_mac(self):
        """An unknown MAC is refused at Boot and at Register."""
        h = Harness(self)
        gw = h.gateway()
        self.assertEqual(gw.boot(mac=OTHER), {"Result": -1})
        self.assertEqual(gw.register("0" * 32, mac=OTHER), {"Result": -1})
        self.assertFalse(h.center.is_connected(OTHER))

    def test_wrong_sn(self):
        """A Boot with an SN other than the registered one is refused."""
        h = Harness(self)
        self.assertEqual(h.gateway().boot(sn="64D954-00000000000000000"), {"Result": -1})

    def test_register_without_boot(self):
        """Register before any Boot on this connection is refused."""
        h = Harness(self)
        self.assertEqual(h.gateway().register("0" * 32), {"Result": -1})

    def test_heartbeat_before_register(self):
        """A Heartbeat on an unregistered connection is Result -1."""
        h = Harness(self)
        gw = h.gateway()
        gw.boot()
        self.assertEqual(gw.only({"RPCMethod": "Heartbeat", "MAC": MAC}), {"Result": -1})

    def test_report_stored(self):
        """A Report on a registered connection goes to the registry, unanswered."""
        h = Harness(self)
        gw = h.gateway()
        gw.connect()
        h.clock.advance(5)
        payload = {"CmdType": "LAN_DEVICE_ACCESS", "MAC": "AABBCCDDEEFF"}
        self.assertEqual(gw.send({"RPCMethod": "Report", "MAC": MAC,
                                  "Parameter": wire.encode_parameter(payload)}), [])
        self.assertEqual(h.registry.reports(MAC), [(5.0, payload)])

    def test_report_unregistered_dropped(self):
        """A Report from a connection not registered as that MAC is not stored."""
        h = Harness(self)
        gw = h.gateway()
        gw.send({"RPCMethod": "Report", "MAC": MAC, "Parameter": wire.encode_parameter({})})
        self.assertEqual(h.registry.reports(MAC), [])

    def test_bad_frame_dropped(self):
        """Garbage and unknown RPCMethods are logged and dropped; the connection lives."""
        h = Harness(self)
        gw = h.gateway()
        self.assertEqual(gw.send(b"not json"), [])
        self.assertEqual(gw.send({"RPCMethod": "Post1", "ID": 1}), [])
        self.assertFalse(gw.transport.disconnecting)
        self.assertEqual(gw.boot()["Result"], 0)
        self.assertTrue(any("dropped a frame" in m for m in h.messages()))

    def test_oversized_frame_closes(self):
        """A length header over MAX_FRAME closes the connection, with a log line."""
        h = Harness(self)
        gw = h.gateway()
        gw.protocol.dataReceived(struct.pack("!I", wire.MAX_FRAME + 1) + b"{")
        self.assertTrue(gw.transport.disconnecting)
        self.assertTrue(any("exceeds" in m and "closing" in m for m in h.messages()))

    def test_new_connection_replaces_old(self):
        """A second registered connection for the MAC closes the first and fails its
        calls."""
        h = Harness(self)
        old = h.gateway(40000)
        old.connect()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        new = h.gateway(40001)
        new.connect()
        self.assertTrue(old.transport.disconnecting)
        self.failureResultOf(d, GatewayGone)
        self.assertTrue(h.center.is_connected(MAC))
        old.lose()
        self.assertTrue(h.center.is_connected(MAC))
        h.settle(self)


class CallTests(SynchronousTestCase):
    def connected(self, faults=()):
        h = Harness(self, faults)
        gw = h.gateway()
        gw.connect()
        return h, gw

    def test_post(self):
        """call() sends a Post with an ID and base64 Parameter; the reply fires it."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION", "SequenceId": "0000000A"},
                          plugin_name="cube")
        [post] = gw.frames()
        self.assertEqual((post["RPCMethod"], post["ID"], post["Plugin_Name"], post["Version"]),
                         ("Post", 1, "cube", "1.0"))
        self.assertEqual(wire.decode_parameter(post["Parameter"]),
                         {"CmdType": "GET_VERSION", "SequenceId": "0000000A"})
        self.assertNoResult(d)
        gw.reply(1, Status="0", Version="1.0")
        self.assertEqual(self.successResultOf(d), (0, {"Status": "0", "Version": "1.0"}))
        self.assertIn(f"{MAC} Post ID 1 CmdType GET_VERSION -> Result 0", h.messages())
        h.settle(self)

    def test_several_in_flight_out_of_order(self):
        """Replies are matched by ID, whatever their order."""
        h, gw = self.connected()
        calls = [h.center.call(MAC, {"CmdType": f"CMD{i}"}) for i in range(3)]
        self.assertEqual([p["ID"] for p in gw.frames()], [1, 2, 3])
        self.assertEqual(h.center.pending_calls(), 3)
        gw.reply(3, result=0, n="3")
        gw.reply(1, result=-12)
        self.assertNoResult(calls[1])
        gw.reply(2, result=-5, n="2")
        self.assertEqual([self.successResultOf(d) for d in calls],
                         [(-12, {}), (-5, {"n": "2"}), (0, {"n": "3"})])
        h.settle(self)

    def test_raw_json_return_parameter(self):
        """A return_Parameter sent as a raw JSON object string is accepted."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        gw.protocol.dataReceived(frame({"Result": "0", "ID": "1",
                                        "return_Parameter": '{"Status":"0"}'}))
        self.assertEqual(self.successResultOf(d), (0, {"Status": "0"}))

    def test_timeout(self):
        """No reply within the timeout: CallTimeout (Result -100); a late reply is
        dropped."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"}, timeout=10)
        h.clock.advance(9.9)
        self.assertNoResult(d)
        h.clock.advance(0.1)
        f = self.failureResultOf(d, CallTimeout)
        self.assertEqual(f.value.result, -100)
        self.assertIn("within 10 s", f.getErrorMessage())
        gw.reply(1)
        self.assertTrue(any("ID 1, which no call waits for" in m for m in h.messages()))
        h.settle(self)

    def test_not_connected(self):
        """A call to a gateway with no registered connection fails at once."""
        h = Harness(self)
        gw = h.gateway()
        gw.boot()
        self.failureResultOf(h.center.call(MAC, {"CmdType": "GET_VERSION"}), NotConnected)
        self.assertEqual(gw.frames(), [])
        h.settle(self)

    def test_gateway_gone_mid_call(self):
        """A connection lost fails every pending call at once."""
        h, gw = self.connected()
        calls = [h.center.call(MAC, {"CmdType": "GET_VERSION"}) for _ in range(2)]
        gw.lose()
        for d in calls:
            self.failureResultOf(d, GatewayGone)
        self.assertFalse(h.center.is_connected(MAC))
        self.assertIn(f"{MAC} plugin connection closed", h.messages())
        h.settle(self)

    def test_reply_from_other_connection_ignored(self):
        """Only the connection a Post went to can answer it."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        stranger = h.gateway(40001)
        stranger.reply(1)
        self.assertNoResult(d)
        gw.reply(1)
        self.successResultOf(d)

    def test_bad_reply_fails_call(self):
        """A reply with a matching ID but an undecodable return_Parameter fails the call."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        gw.protocol.dataReceived(frame({"Result": 0, "ID": 1, "return_Parameter": "%%"}))
        self.failureResultOf(d, PluginCenterError)
        h.settle(self)

    def test_cancel(self):
        """Cancelling a call forgets it and stops its timer."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        d.cancel()
        self.failureResultOf(d, CancelledError)
        h.settle(self)

    def test_too_big(self):
        """A payload over the frame limit fails at once, nothing is sent."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "X", "Data": "x" * wire.MAX_FRAME})
        self.failureResultOf(d, PluginCenterError)
        self.assertEqual(gw.frames(), [])
        h.settle(self)

    def test_disconnect(self):
        """disconnect() sends Disconnect, closes, and fails pending calls."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        gw.frames()
        self.assertTrue(h.center.disconnect(MAC))
        self.assertEqual(gw.frames(), [{"RPCMethod": "Disconnect"}])
        self.assertTrue(gw.transport.disconnecting)
        self.assertFalse(h.center.is_connected(MAC))
        self.failureResultOf(d, GatewayGone)
        self.assertFalse(h.center.disconnect(MAC))
        gw.lose()
        h.settle(self)

    def test_close_all(self):
        """Stopping closes every connection and fails its calls."""
        h, gw = self.connected()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        h.center.close_all()
        self.assertTrue(gw.transport.disconnecting)
        self.failureResultOf(d, GatewayGone)
        h.settle(self)


class FaultTests(SynchronousTestCase):
    def test_boot_no_reply(self):
        """no_reply: Boot is handled (a challenge is made) but not answered."""
        h = Harness(self, [{"mac": "*", "message": "Boot", "server": "plugin_center",
                            "no_reply": True}])
        gw = h.gateway()
        self.assertEqual(gw.send(BOOT), [])
        self.assertEqual(gw.protocol.challenge, "01" * 16)
        self.assertEqual(gw.register(gw.protocol.challenge), {"Result": 0})

    def test_register_result(self):
        """result: Register is answered with that Result only; not connected."""
        h = Harness(self, [{"mac": MAC, "message": "Register", "result": -5, "count": 1}])
        gw = h.gateway()
        challenge = gw.boot()["ChallengeCode"]
        self.assertEqual(gw.register(challenge), {"Result": -5})
        self.assertFalse(h.center.is_connected(MAC))
        self.assertEqual(gw.register(challenge), {"Result": 0})

    def test_heartbeat_delay(self):
        """delay: the Heartbeat is answered that many seconds later."""
        h = Harness(self, [{"mac": "*", "message": "Heartbeat", "delay": 2}])
        gw = h.gateway()
        gw.connect()
        self.assertEqual(gw.send({"RPCMethod": "Heartbeat", "MAC": MAC}), [])
        h.clock.advance(1.9)
        self.assertEqual(gw.frames(), [])
        h.clock.advance(0.1)
        self.assertEqual(gw.frames(), [{"Result": 0}])
        h.settle(self)

    def test_boot_drop(self):
        """drop: the next N Boots are lost unseen, then normal behaviour."""
        h = Harness(self, [{"mac": "*", "message": "Boot", "drop": 1}])
        gw = h.gateway()
        self.assertEqual(gw.send(BOOT), [])
        self.assertIsNone(gw.protocol.challenge)
        self.assertEqual(gw.boot()["Result"], 0)

    def test_udp_only_server_rule_ignored(self):
        """A rule for another server does not touch the plugin center."""
        h = Harness(self, [{"mac": "*", "message": "Boot", "server": "operation",
                            "result": -1}])
        self.assertEqual(h.gateway().boot()["Result"], 0)

    def test_disconnect_after_register(self):
        """disconnect: Register is answered, then Disconnect is sent and the connection
        closed."""
        h = Harness(self, [{"mac": "*", "message": "Register", "disconnect": True,
                            "count": 1}])
        gw = h.gateway()
        challenge = gw.boot()["ChallengeCode"]
        replies = gw.send({"RPCMethod": "Register", "MAC": MAC, "SN": SN,
                           "CheckSN": identity.check_sn(challenge, SN)})
        self.assertEqual(replies, [{"Result": 0}, {"RPCMethod": "Disconnect"}])
        self.assertTrue(gw.transport.disconnecting)
        self.assertFalse(h.center.is_connected(MAC))

    def test_post_drop_times_out(self):
        """A dropped Post is not sent and the call times out."""
        h = Harness(self, [{"mac": "*", "message": "Post", "drop": 1}])
        gw = h.gateway()
        gw.connect()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"}, timeout=3)
        self.assertEqual(gw.frames(), [])
        h.clock.advance(3)
        self.failureResultOf(d, CallTimeout)
        h.settle(self)

    def test_post_result(self):
        """result on Post: the call gets that Result without the gateway being asked."""
        h = Harness(self, [{"mac": "*", "message": "Post", "result": -16}])
        gw = h.gateway()
        gw.connect()
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        self.assertEqual(self.successResultOf(d), (-16, {}))
        self.assertEqual(gw.frames(), [])
        h.settle(self)


class GatewayClient(Int32StringReceiver):
    """A minimal gateway side: Boot, Register, then answers each Post with its ID."""

    def connectionMade(self):
        self.received = []
        self.sendString(json.dumps(BOOT).encode())

    def stringReceived(self, data):
        msg = json.loads(data)
        self.received.append(msg)
        if "ChallengeCode" in msg:
            self.sendString(json.dumps({"RPCMethod": "Register", "MAC": MAC, "SN": SN,
                                        "CheckSN": identity.check_sn(msg["ChallengeCode"],
                                                                     SN)}).encode())
        elif msg.get("RPCMethod") == "Post":
            payload = wire.decode_parameter(msg["Parameter"])
            self.sendString(json.dumps({"Result": 0, "ID": msg["ID"],
                                        "return_Parameter": wire.encode_parameter(
                                            dict(payload, Status="0"))}).encode())


class IOSimTests(SynchronousTestCase):
    def test_round_trip(self):
        """A gateway client and the center, connected by iosim: Boot, Register, Post."""
        h = Harness(self)
        server = h.center.factory().buildProtocol(None)
        client = GatewayClient()
        server_io, client_io, pump = iosim.connectedServerAndClient(
            lambda: server, lambda: client, greet=True,
            serverTransportFactory=lambda p: iosim.FakeTransport(
                p, True, peerAddress=IPv4Address("TCP", "127.0.0.9", 1)))
        pump.flush()
        self.assertTrue(h.center.is_connected(MAC))
        d = h.center.call(MAC, {"CmdType": "GET_VERSION", "SequenceId": "00000001"})
        pump.flush()
        self.assertEqual(self.successResultOf(d),
                         (0, {"CmdType": "GET_VERSION", "SequenceId": "00000001",
                              "Status": "0"}))
        h.center.disconnect(MAC)
        pump.flush()
        self.assertEqual(client.received[-1], {"RPCMethod": "Disconnect"})
        self.assertFalse(h.center.is_connected(MAC))
        h.settle(self)


class IdleTimeoutTests(SynchronousTestCase):
    """Half-open or silent peers are closed: no Boot within 30 s, or silent for 180 s."""

    def closed(self, h, gw, why):
        self.assertTrue(gw.transport.disconnected)
        self.assertFalse(gw.protocol.open)
        self.assertTrue(any(f"{why}; closing" in m for m in h.messages()), h.messages())
        gw.lose()
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_defaults(self):
        """30 s to send Boot, 180 s (3 x the default 60 s heartbeat) of silence after."""
        h = Harness(self)
        self.assertEqual((h.center.boot_timeout, h.center.idle_timeout), (30, 180))

    def test_no_boot_closed(self):
        """A peer that connects and sends nothing is aborted after 30 s."""
        h = Harness(self)
        gw = h.gateway()
        h.clock.advance(29.9)
        self.assertFalse(gw.transport.disconnecting)
        h.clock.advance(0.1)
        self.closed(h, gw, "127.0.0.9:40000 sent no Boot for 30 s")

    def test_other_frames_do_not_replace_boot(self):
        """Garbage, Heartbeat or Register before any Boot do not extend the 30 s."""
        h = Harness(self)
        gw = h.gateway()
        h.clock.advance(10)
        gw.send(b"not json")
        gw.send({"RPCMethod": "Heartbeat", "MAC": MAC})
        gw.register("0" * 32)
        h.clock.advance(20)
        self.closed(h, gw, "sent no Boot for 30 s")

    def test_boot_starts_idle_timeout(self):
        """After Boot the peer may stay silent for 180 s, not longer."""
        h = Harness(self)
        gw = h.gateway()
        h.clock.advance(29)
        gw.boot()
        h.clock.advance(179.9)
        self.assertFalse(gw.transport.disconnecting)
        h.clock.advance(0.1)
        self.closed(h, gw, f"{MAC} sent nothing for 180 s")

    def test_heartbeats_keep_it_open(self):
        """A registered gateway heartbeating every 60 s stays connected; once it goes
        silent it is closed 180 s after its last message, its session and calls gone,
        without a Disconnect (a live gateway reconnects)."""
        h = Harness(self)
        gw = h.gateway()
        gw.connect()
        for _ in range(10):
            h.clock.advance(60)
            self.assertEqual(gw.only({"RPCMethod": "Heartbeat", "MAC": MAC}), {"Result": 0})
        self.assertTrue(h.center.is_connected(MAC))
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"}, timeout=1000)
        gw.frames()
        h.clock.advance(179.9)
        self.assertTrue(h.center.is_connected(MAC))
        h.clock.advance(0.1)
        self.failureResultOf(d, GatewayGone)
        self.assertFalse(h.center.is_connected(MAC))
        self.assertEqual(gw.frames(), [])
        self.assertIn(f"{MAC} plugin connection closed", h.messages())
        self.closed(h, gw, "sent nothing for 180 s")

    def test_post_reply_counts_as_activity(self):
        """The reply to a Post restarts the silence timer too."""
        h = Harness(self)
        gw = h.gateway()
        gw.connect()
        h.clock.advance(100)
        d = h.center.call(MAC, {"CmdType": "GET_VERSION"})
        [post] = gw.frames()
        gw.reply(post["ID"])
        self.successResultOf(d)
        h.clock.advance(179)
        self.assertFalse(gw.transport.disconnecting)
        h.clock.advance(1)
        self.assertTrue(gw.transport.disconnected)

    def test_configurable_and_off(self):
        """Both limits are constructor arguments; None or 0 turns one off."""
        h = Harness(self, boot_timeout=2, idle_timeout=5)
        gw = h.gateway()
        h.clock.advance(1)
        gw.boot()
        h.clock.advance(4.9)
        self.assertFalse(gw.transport.disconnecting)
        h.clock.advance(0.1)
        self.closed(h, gw, "sent nothing for 5 s")

        h = Harness(self, boot_timeout=None, idle_timeout=0)
        gw = h.gateway()
        self.assertEqual(h.clock.getDelayedCalls(), [])
        gw.boot()
        self.assertEqual(h.clock.getDelayedCalls(), [])
        for bad in (-1, True):
            self.assertRaises(ValueError, Harness, self, idle_timeout=bad)

    def test_timer_cancelled_on_close(self):
        """Lost, replaced, disconnected or stopped: no idle timer is left behind."""
        h = Harness(self)
        lost = h.gateway(40000)
        lost.lose()
        old, new = h.gateway(40001), h.gateway(40002)
        old.connect()
        new.connect()
        self.assertTrue(old.transport.disconnecting)
        self.assertIsNone(old.protocol.idle_timer)
        h.center.disconnect(MAC)
        h.center.close_all()
        self.assertEqual(h.clock.getDelayedCalls(), [])
        h.settle(self)

    def test_many_half_open_peers_do_not_pile_up(self):
        """Fifty peers that never speak are all gone after 30 s."""
        h = Harness(self)
        peers = [h.gateway(41000 + i) for i in range(50)]
        h.clock.advance(30)
        self.assertTrue(all(gw.transport.disconnected for gw in peers))
        for gw in peers:
            gw.lose()
        self.assertEqual(h.center._connections, set())


class OriginTests(SynchronousTestCase):
    """Issue 18 point 7: the session is only for the host of the operation registration."""

    def test_register_from_another_host(self):
        """A connection from another host than the registered one gets -1 at Register,
        even with a good CheckSN, and does not replace the gateway's session."""
        h = Harness(self)
        gw = h.gateway()
        self.assertEqual(gw.register(gw.boot()["ChallengeCode"]), {"Result": 0})
        h.registry.update(MAC, hb_addr=("127.0.0.66", 50000))
        rogue = h.gateway(40001)
        self.assertEqual(rogue.register(rogue.boot()["ChallengeCode"]), {"Result": -1})
        self.assertIs(h.center._sessions[MAC], gw.protocol)
        self.assertFalse(gw.transport.disconnecting)
        self.assertIn(f"{MAC} plugin Register -> Result -1 (127.0.0.9 is not the address "
                      "of the gateway's operation registration)", h.messages())

    def test_register_unregistered(self):
        """A device not registered with the operation platform cannot Register here."""
        h = Harness(self)
        h.registry.update(MAC, registered=False)
        gw = h.gateway()
        self.assertEqual(gw.register(gw.boot()["ChallengeCode"]), {"Result": -1})
        self.assertFalse(h.center.is_connected(MAC))

    def test_ipv4_mapped_peer(self):
        """A peer seen as ::ffff:a.b.c.d is the host a.b.c.d that registered over IPv4."""
        self.assertTrue(same_host(("::ffff:127.0.0.9", 1), ("127.0.0.9", 2)))
        self.assertTrue(same_address(("::ffff:127.0.0.9", 1, 0, 0), ("127.0.0.9", 1)))
        self.assertFalse(same_host(("127.0.0.9", 1), None))
        self.assertFalse(same_host(("not an address", 1), ("127.0.0.9", 1)))
