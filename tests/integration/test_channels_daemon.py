"""The LAN interface and the plugin-center channel of the real daemon, on 127.0.0.1.

``twistd -n cubegw`` runs as a process; the test plays the platforms (UDP peers and a
plugin center on TCP) and the phone app (raw Int32 clients).
"""

import json

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import (
    TCP4ClientEndpoint, TCP4ServerEndpoint, TCP6ServerEndpoint, connectProtocol)
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial.unittest import TestCase

from cubegw import identity, wire

from tests.integration.support import (
    CHALLENGE, MAC, NO_IPV6, Daemon, lan_gateway_config, register_gateway, scratch_dir, sleep, udp_peer)

WIFI = ("ChinaNet-TEST", "wifipass")
USERADMIN = "admin1"


class FrameClient(Int32StringReceiver):
    """A raw Int32 client: frames received go to a queue; ``closed`` fires on disconnect."""

    def __init__(self):
        self.frames = defer.DeferredQueue()
        self.closed = defer.Deferred()

    def stringReceived(self, data):
        self.frames.put(json.loads(data))

    def send(self, msg):
        self.sendString(wire.encode_frame(msg))

    def connectionLost(self, reason):
        self.closed.callback(None)


class CenterProtocol(FrameClient):
    def connectionMade(self):
        self.factory.connections.put(self)


class DaemonTestCase(TestCase):
    timeout = 60

    def setUp(self):
        self.tmp = scratch_dir(self)
        self.dist, self.oper = udp_peer(self), udp_peer(self)
        self.config, self.lan_port = lan_gateway_config(
            self.tmp, lan={"idle_timeout": 1.5}, wifi={"ssid": WIFI[0], "password": WIFI[1]})
        self.daemon = Daemon("cubegw", ["--config", self.config, "--mgt-url", "127.0.0.1",
                                        "--port", str(self.dist.address[1])], self.tmp).start()
        self.addCleanup(self.daemon.stop)
        return self.daemon.wait_for(f"listening on 127.0.0.1:{self.lan_port}")

    def lan_client(self):
        return connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.lan_port),
                               FrameClient())


class LanDaemonTests(DaemonTestCase):
    @defer.inlineCallbacks
    def test_six_connections(self):
        """Five LAN connections are held; the sixth is closed at once, unread."""
        clients = []
        for _ in range(5):
            clients.append((yield self.lan_client()))
        sixth = yield self.lan_client()
        yield sixth.closed
        self.assertTrue(all(not c.closed.called for c in clients))
        # A slot frees when a served client is answered and closed.
        clients[0].send(wire.Post1(ID=1, Parameter={"CmdType": "GET_VERSION",
                                                    "SequenceId": "0000000A"}))
        reply = yield clients[0].frames.get()
        self.assertEqual((reply["Result"], reply["ID"]), (0, 1))
        self.assertEqual(wire.decode_parameter(reply["return_Parameter"])["Version"], "1.0")
        yield clients[0].closed
        seventh = yield self.lan_client()
        self.assertFalse(seventh.closed.called)
        for c in clients[1:] + [seventh]:
            c.transport.loseConnection()

    @defer.inlineCallbacks
    def test_closes_after_reply(self):
        """The gateway closes the connection right after its reply."""
        client = yield self.lan_client()
        client.send(wire.Post1(ID=7, Parameter={"CmdType": "GET_SN_INFO",
                                                "SequenceId": "12345678"}))
        reply = yield client.frames.get()
        self.assertEqual(wire.decode_parameter(reply["return_Parameter"])["MAC"], MAC)
        yield client.closed

    @defer.inlineCallbacks
    def test_silent_client_dropped(self):
        """A client that sends nothing is dropped after lan.idle_timeout (1.5 s here)."""
        client = yield self.lan_client()
        start = reactor.seconds()
        yield client.closed
        self.assertGreaterEqual(reactor.seconds() - start, 1.0)
        self.assertLess(reactor.seconds() - start, 5)

    @defer.inlineCallbacks
    def test_garbage_frame_closes_only_that_connection(self):
        """An oversized length header closes that connection; another is still served."""
        bad = yield self.lan_client()
        good = yield self.lan_client()
        bad.transport.write(b"\xff\xff\xff\xff")
        yield bad.closed
        good.send(wire.Post1(ID=2, Parameter={"CmdType": "GET_VERSION",
                                              "SequenceId": "0000000B"}))
        reply = yield good.frames.get()
        self.assertEqual(reply["Result"], 0)


class PluginChannelDaemonTests(DaemonTestCase):
    """The daemon as plugin-center client: trigger, Boot, Register, Posts, Disconnect."""

    center_host = "127.0.0.1"

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        factory = protocol.Factory.forProtocol(CenterProtocol)
        factory.connections = defer.DeferredQueue()
        self.center = factory
        endpoint = (TCP6ServerEndpoint if ":" in self.center_host else TCP4ServerEndpoint)
        self.center_port = yield endpoint(reactor, 0, interface=self.center_host).listen(factory)
        self.addCleanup(self.center_port.stopListening)
        register, self.hb_source = yield register_gateway(self.dist, self.oper)
        self.key = identity.trigger_key(register["DevRND"], register["SN"], WIFI[0], WIFI[1],
                                        USERADMIN)
        self.sn = register["SN"]

    def trigger(self, key=None):
        self.oper.send({"RPCMethod": "RequestPlug-in", "Key": key or self.key,
                        "ServerAddr": "127.0.0.1",
                        "ServerPort": self.center_port.getHost().port}, self.hb_source)

    @defer.inlineCallbacks
    def answer(self):
        """The gateway's trigger answer; an accepted one's DevRND makes the next Key."""
        answer, _ = yield self.oper.next()
        if answer.get("DevRND"):
            self.key = identity.trigger_key(answer["DevRND"], self.sn, WIFI[0], WIFI[1],
                                            USERADMIN)
        return answer

    @defer.inlineCallbacks
    def accept(self):
        """Take the gateway's next connection through Boot and Register."""
        conn = yield self.center.connections.get()
        boot = yield conn.frames.get()
        self.assertEqual((boot["RPCMethod"], boot["MAC"]), ("Boot", MAC))
        conn.send({"Result": 0, "ChallengeCode": CHALLENGE})
        reg = yield conn.frames.get()
        self.assertEqual(reg["CheckSN"], identity.check_sn(CHALLENGE, self.sn))
        conn.send({"Result": 0})
        return conn

    @defer.inlineCallbacks
    def test_posts_in_flight_and_disconnect(self):
        """Several Posts in flight are each answered with their ID; Disconnect is obeyed."""
        self.trigger()
        answer = yield self.answer()
        self.assertEqual((answer["Result"], len(answer["DevRND"])), (0, 32))
        conn = yield self.accept()
        calls = {11: "QUERY_MEM_INFO", 12: "GET_VERSION", 13: "QUERY_CPU_INFO",
                 14: "QUERY_SYSTEM_INFO", 15: "NO_SUCH_COMMAND"}
        for ident, cmd in calls.items():
            conn.send(wire.Post(ID=ident, Parameter={"CmdType": cmd,
                                                     "SequenceId": "%08X" % ident}))
        replies = {}
        while len(replies) < len(calls):
            frame = yield conn.frames.get()
            if "ID" in frame:
                replies[frame["ID"]] = frame
        self.assertEqual({i: r["Result"] for i, r in replies.items()},
                         {11: 0, 12: 0, 13: 0, 14: 0, 15: 0})
        unknown = wire.decode_parameter(replies[15]["return_Parameter"])
        self.assertEqual((unknown["CmdType"], unknown["Status"], unknown["FailReason"]),
                         ("NO_SUCH_COMMAND", "1", "UNRECOGNIZE_REQUEST"))
        for ident in (11, 12, 13, 14):
            payload = wire.decode_parameter(replies[ident]["return_Parameter"])
            self.assertEqual((payload["CmdType"], payload["SequenceId"], payload["Status"]),
                             (calls[ident], "%08X" % ident, "0"))
        conn.send({"RPCMethod": "Disconnect"})
        yield conn.closed
        yield sleep(3)
        self.assertEqual(self.center.connections.pending, [])
        # Only a new trigger brings it back.
        self.trigger()
        yield self.answer()
        yield self.accept()

    @defer.inlineCallbacks
    def test_reconnect_after_drop(self):
        """The plugin center dropping the connection: the gateway reconnects by itself."""
        self.trigger()
        yield self.answer()
        conn = yield self.accept()
        conn.transport.abortConnection()
        again = yield self.accept()
        again.send(wire.Post(ID=1, Parameter={"CmdType": "GET_VERSION",
                                              "SequenceId": "00000001"}))
        frame = yield again.frames.get()
        while "ID" not in frame:
            frame = yield again.frames.get()
        self.assertEqual(frame["Result"], 0)

    @defer.inlineCallbacks
    def test_wrong_key_refused(self):
        """A RequestPlug-in with a wrong Key is answered -1 and not acted on."""
        self.trigger(key="0" * 32)
        answer = yield self.answer()
        self.assertEqual(answer, {"Result": -1})
        yield sleep(1)
        self.assertEqual(self.center.connections.pending, [])


class PluginChannelIPv6Tests(PluginChannelDaemonTests):
    """The plugin center on the IPv6 loopback: RequestPlug-in names it as ``[::1]`` (or
    ``::1``) and the daemon reaches it with no other setting."""

    skip = NO_IPV6
    center_host = "::1"

    def trigger(self, key=None, host="[::1]"):
        self.oper.send({"RPCMethod": "RequestPlug-in", "Key": key or self.key,
                        "ServerAddr": host,
                        "ServerPort": self.center_port.getHost().port}, self.hb_source)

    @defer.inlineCallbacks
    def test_bare_ipv6_literal(self):
        """ServerAddr "::1" without brackets reaches the same center; a Post is answered."""
        self.trigger(host="::1")
        answer = yield self.answer()
        self.assertEqual((answer["Result"], len(answer["DevRND"])), (0, 32))
        conn = yield self.accept()
        self.assertEqual(conn.transport.getPeer().host, "::1")
        conn.send(wire.Post(ID=3, Parameter={"CmdType": "GET_VERSION",
                                              "SequenceId": "00000003"}))
        frame = yield conn.frames.get()
        while "ID" not in frame:
            frame = yield conn.frames.get()
        self.assertEqual((frame["ID"], frame["Result"]), (3, 0))
