"""LanServer and PluginChannel on the real reactor over 127.0.0.1, in-process.

The phone app and the plugin center are small Int32 peers written here; nothing else runs.
Every wait is bounded.
"""

import json

from twisted.application.internet import backoffPolicy
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import deferLater
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial.unittest import TestCase

from cubegw import lan, pluginchannel, wire
from cubegw.pluginchannel import PluginChannel

from tests.helpers import CHALLENGE, IDENTITY, MAC
from tests.helpers.lan import SN_INFO, FakeDispatcher, FakeStore, post

WAIT = 5.0


def bounded(d, seconds=WAIT):
    return d.addTimeout(seconds, reactor)


@defer.inlineCallbacks
def eventually(condition, seconds=WAIT):
    """Poll ``condition`` every 10 ms until true, failing after ``seconds``."""
    deadline = reactor.seconds() + seconds
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError("condition not reached in time")
        yield deferLater(reactor, 0.01, lambda: None)


class Peer(Int32StringReceiver):
    """One end of an Int32 JSON connection: frames to a queue, loss to a Deferred."""

    def __init__(self):
        self.frames = defer.DeferredQueue()
        self.lost = defer.Deferred()
        self.count = 0

    def stringReceived(self, data):
        self.count += 1
        msg = json.loads(data)
        for name in ("Parameter", "return_Parameter"):
            if name in msg:
                msg[name] = wire.decode_parameter(msg[name])
        self.frames.put(msg)

    def send(self, obj):
        self.sendString(json.dumps(obj).encode())

    def next(self):
        return bounded(self.frames.get())

    def connectionLost(self, reason):
        self.reason = reason
        self.lost.callback(None)


class DelayingDispatcher:
    """Answers GET_SN_INFO-like payloads after the payload's ``Delay`` seconds."""

    def __init__(self):
        self.calls = []

    def dispatch(self, side, parameter):
        self.calls.append((side, parameter))
        reply = FakeDispatcher.sn_info(parameter)
        return deferLater(reactor, float(parameter.get("Delay", 0)), lambda: reply)


class LanIntegrationTests(TestCase):
    timeout = 30

    def setUp(self):
        self.dispatcher = FakeDispatcher()
        self.server = lan.LanServer(("127.0.0.1",), FakeStore(LocatePort=0), self.dispatcher,
                                    reactor, idle_timeout=0.5)
        self.server.startService()
        self.addCleanup(self.server.stopService)
        self.port = self.server.ports[0].getHost().port

    def client(self):
        return bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port),
                                       Peer()))

    @defer.inlineCallbacks
    def test_six_connections(self):
        """Five simultaneous clients are served, each closed after its reply; the sixth is closed unread."""
        clients = []
        for _ in range(5):
            clients.append((yield self.client()))
        yield eventually(lambda: len(self.server.factory.active) == 5)
        sixth = yield self.client()
        yield bounded(sixth.lost)
        self.assertEqual(sixth.count, 0)
        self.assertEqual(self.server.factory.refused, 1)
        for ident, c in enumerate(clients, 1):
            c.send(post(ident, dict(SN_INFO, SequenceId="%08d" % ident)))
        yield eventually(lambda: len(self.dispatcher.calls) == 5)
        for index in reversed(range(5)):
            self.dispatcher.answer(index)
        for ident, c in enumerate(clients, 1):
            reply = yield c.next()
            self.assertEqual((reply["Result"], reply["ID"],
                              reply["return_Parameter"]["SequenceId"]), (0, ident, "%08d" % ident))
            yield bounded(c.lost)                 # the server closes after the reply
        yield eventually(lambda: not self.server.factory.active)

    @defer.inlineCallbacks
    def test_silent_client_dropped(self):
        """A client that sends nothing is dropped after the idle timeout (0.5 s)."""
        start = reactor.seconds()
        c = yield self.client()
        yield bounded(c.lost)
        elapsed = reactor.seconds() - start
        self.assertTrue(0.4 <= elapsed < WAIT, elapsed)
        self.assertEqual(c.count, 0)

    @defer.inlineCallbacks
    def test_post_refused_on_lan(self):
        """A Post (not Post1) on the LAN port is answered -12 and the connection closed."""
        c = yield self.client()
        c.send(post(3, method="Post"))
        self.assertEqual((yield c.next()), {"Result": -12, "ID": 3})
        yield bounded(c.lost)


class CenterFactory(protocol.Factory):
    """A scripted plugin center: each accepted connection is put on a queue."""

    def __init__(self):
        self.connections = defer.DeferredQueue()
        self.accepted = []

    def buildProtocol(self, addr):
        peer = Peer()
        peer.factory = self
        self.accepted.append(peer)
        self.connections.put(peer)
        return peer


class PluginIntegrationTests(TestCase):
    timeout = 30

    def setUp(self):
        self.center = CenterFactory()
        self.listener = reactor.listenTCP(0, self.center, interface="127.0.0.1")
        self.address = ("127.0.0.1", self.listener.getHost().port)
        self.dispatcher = DelayingDispatcher()
        self.channel = PluginChannel(
            reactor, IDENTITY, FakeStore(Heartbeat=1), self.dispatcher,
            wan_ip=lambda: "127.0.0.1", reply_timeout=5,
            backoff=backoffPolicy(initialDelay=0.1, factor=1.5, maxDelay=0.5, jitter=lambda: 0))
        self.addCleanup(self.cleanup)

    @defer.inlineCallbacks
    def cleanup(self):
        yield bounded(self.channel.stop())
        yield self.listener.stopListening()
        for peer in self.center.accepted:
            yield bounded(peer.lost)

    @defer.inlineCallbacks
    def register(self):
        """Accept the next connection and take it through Boot and Register."""
        peer = yield bounded(self.center.connections.get())
        boot = yield peer.next()
        self.assertEqual((boot["RPCMethod"], boot["MAC"], boot["IPAddr"]),
                         ("Boot", MAC, "127.0.0.1"))
        peer.send({"Result": 0, "ChallengeCode": CHALLENGE})
        register = yield peer.next()
        self.assertEqual(register["RPCMethod"], "Register")
        peer.send({"Result": 0})
        yield eventually(lambda: self.channel.connected)
        return peer

    @defer.inlineCallbacks
    def test_posts_in_flight_out_of_order(self):
        """Three Posts in flight come back in the order they finish, each with its ID; heartbeats flow."""
        self.channel.connect(*self.address)
        peer = yield self.register()
        for ident, delay in ((1, "0.6"), (2, "0.3"), (3, "0")):
            peer.send(post(ident, dict(SN_INFO, Delay=delay), method="Post"))
        got = []
        while len(got) < 3:
            msg = yield peer.next()
            if msg.get("RPCMethod") == "Heartbeat":
                peer.send({"Result": 0})
            else:
                got.append((msg["ID"], msg["Result"], msg["return_Parameter"]["Status"]))
        self.assertEqual(got, [(3, 0, "0"), (2, 0, "0"), (1, 0, "0")])
        self.assertEqual([s for s, _ in self.dispatcher.calls], ["remote"] * 3)
        hb = yield peer.next()
        self.assertEqual(hb, {"RPCMethod": "Heartbeat", "MAC": MAC})

    @defer.inlineCallbacks
    def test_disconnect_honoured(self):
        """After Disconnect the gateway closes and does not come back until connect()."""
        self.channel.connect(*self.address)
        peer = yield self.register()
        peer.send({"RPCMethod": "Disconnect"})
        yield bounded(peer.lost)
        yield deferLater(reactor, 1.0, lambda: None)     # twice the longest backoff
        self.assertEqual(len(self.center.accepted), 1)
        self.assertEqual(self.channel.state, pluginchannel.DISCONNECTED)
        self.channel.connect(*self.address)
        yield self.register()

    @defer.inlineCallbacks
    def test_reconnect_after_drop(self):
        """When the center drops the connection the gateway reconnects and registers again."""
        self.channel.connect(*self.address)
        peer = yield self.register()
        peer.transport.loseConnection()
        yield bounded(peer.lost)
        yield self.register()
        self.assertEqual(self.channel.counters["registered"], 2)
        self.assertTrue(self.channel.send_report({"CmdType": "LAN_DEVICE_ACCESS"}))
        report = yield self.center.accepted[1].next()
        while report.get("RPCMethod") == "Heartbeat":
            report = yield self.center.accepted[1].next()
        self.assertEqual(report, {"RPCMethod": "Report", "MAC": MAC,
                                  "Parameter": {"CmdType": "LAN_DEVICE_ACCESS"}})
