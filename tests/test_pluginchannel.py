"""The plugin-center channel on a MemoryReactorClock and StringTransports: no sockets.

Backoff is ``backoff_policy(initial=1, factor=2, jitter=0)``: the n-th retry waits 2**n s.
"""

import struct

from twisted.application.internet import backoffPolicy
from twisted.internet import abstract, error
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity, pluginchannel, wire
from cubegw.capabilities import Outcome
from cubegw.pluginchannel import PluginChannel, backoff_policy

from tests.helpers import CHALLENGE, IDENTITY, MAC, SN
from tests.helpers.lan import (
    SN_INFO, FakeDispatcher, FakeStore, capture_logs, frame, logged, post, unframe)

CENTER = ("127.0.0.5", 8080)
OTHER = ("127.0.0.6", 9090)

BOOT = {"RPCMethod": "Boot", "Vendor": "TestVendor", "Model": "HG-1", "MAC": MAC, "SN": SN,
        "FirmwareVer": "1.2.3", "HardwareVer": "HW1", "IPAddr": "192.0.2.10",
        "LOID": "0755123456"}
REGISTER = {"RPCMethod": "Register", "MAC": MAC, "SN": SN,
            "CheckSN": identity.md5_upper(CHALLENGE, SN)}
HEARTBEAT = {"RPCMethod": "Heartbeat", "MAC": MAC}


class Link:
    """One accepted connection: the gateway's protocol and its StringTransport."""

    def __init__(self, proto, transport):
        self.proto, self.transport, self._seen = proto, transport, 0

    def sent(self):
        """Frames written since the last call."""
        data = self.transport.value()
        new, self._seen = data[self._seen:], len(data)
        return unframe(new)

    def receive(self, obj):
        self.proto.dataReceived(frame(obj))

    def lose(self):
        self.proto.connectionLost(Failure(error.ConnectionLost()))


class BackoffTests(SynchronousTestCase):
    def test_same_delays_as_twisted(self):
        """backoff_policy gives Twisted's backoffPolicy delays, cap and overflow included."""
        ours = backoff_policy(initial=1, maximum=60, factor=1.5, jitter=lambda: 0.25)
        theirs = backoffPolicy(initialDelay=1, maxDelay=60, factor=1.5, jitter=lambda: 0.25)
        for attempt in (0, 1, 2, 5, 10, 11, 100, 10**6):
            self.assertEqual(ours(attempt), theirs(attempt), attempt)

    def test_default_jitter_under_a_second(self):
        """The default jitter adds less than a second to each delay."""
        delay = backoff_policy(initial=2, maximum=60)
        self.assertTrue(all(2 <= delay(0) < 3 for _ in range(50)))


class EndpointChoiceTests(SynchronousTestCase):
    def test_addresses_are_connected_to_without_resolving(self):
        """An IPv4 or IPv6 address (bracketed or not) is connected to as it is: no
        resolver thread is started for it; a name gets happy eyeballs."""
        from twisted.internet.endpoints import HostnameEndpoint
        reactor = MemoryReactorClock()
        made = {host: pluginchannel.tcp_endpoint(reactor, host, 8080, 5)
                for host in ("127.0.0.1", "::1", "[::1]", "pc.example.net")}
        for host in ("127.0.0.1", "::1", "[::1]"):
            self.assertIsInstance(made[host], pluginchannel.AddressEndpoint, host)
        self.assertIsInstance(made["pc.example.net"], HostnameEndpoint)
        made["[::1]"].connect(Factory.forProtocol(Protocol))
        made["127.0.0.1"].connect(Factory.forProtocol(Protocol))
        self.assertEqual([c[:2] + (c[3],) for c in reactor.tcpClients],
                         [("::1", 8080, 5), ("127.0.0.1", 8080, 5)])


class AddressEndpointTests(SynchronousTestCase):
    """``AddressEndpoint.connect`` keeps a TCP client endpoint's contract."""

    def connect(self, factory=None):
        self.reactor = MemoryReactorClock()
        endpoint = pluginchannel.AddressEndpoint(self.reactor, "192.0.2.1", 8080, 5)
        d = endpoint.connect(factory or Factory.forProtocol(Protocol))
        self.wrapper = self.reactor.tcpClients[0][2]
        return d

    def test_fires_with_the_protocol_built(self):
        """The Deferred fires with the caller's factory's protocol once connected."""
        d = self.connect()
        self.assertNoResult(d)
        proto = self.wrapper.buildProtocol(IPv4Address("TCP", "192.0.2.1", 8080))
        self.assertIsInstance(proto, Protocol)
        self.assertIs(self.successResultOf(d), proto)

    def test_failed_connection(self):
        """A refused or timed-out connection fails the Deferred with its reason."""
        d = self.connect()
        self.wrapper.clientConnectionFailed(None, Failure(error.ConnectionRefusedError()))
        self.failureResultOf(d, error.ConnectionRefusedError)

    def test_factory_failure(self):
        """A factory that raises fails the Deferred instead of escaping into the reactor."""
        class Broken(Factory):
            def buildProtocol(self, addr):
                raise ValueError("broken")
        d = self.connect(Broken())
        self.assertIsNone(self.wrapper.buildProtocol(None))
        self.failureResultOf(d, ValueError)

    def test_cancel(self):
        """Cancelling stops the attempt and fails with ConnectingCancelledError; the
        connector's later failure report is ignored."""
        d = self.connect()
        stopped = []
        self.wrapper.connector.stopConnecting = lambda: stopped.append(True)
        d.cancel()
        self.failureResultOf(d, error.ConnectingCancelledError)
        self.assertEqual(stopped, [True])
        self.wrapper.clientConnectionFailed(None, Failure(error.UserError()))


def memory_endpoint(reactor, host, port, timeout):
    """Plain connectTCP on the memory reactor, which records each attempt (the default
    HostnameEndpoint resolves names first; the integration tests run it for real)."""
    return TCP4ClientEndpoint(reactor, host, port, timeout=timeout)


class ChannelTests(SynchronousTestCase):
    def setUp(self):
        self.events = capture_logs(self)
        self.reactor = MemoryReactorClock()
        self.store = FakeStore()
        self.dispatcher = FakeDispatcher()
        self.channel = PluginChannel(
            self.reactor, IDENTITY, self.store, self.dispatcher, wan_ip=lambda: "192.0.2.10",
            backoff=backoff_policy(initial=1, factor=2, maximum=60, jitter=lambda: 0),
            endpoint=memory_endpoint)

    def tearDown(self):
        self.channel.stop()
        for _, _, d in self.dispatcher.calls:
            if not d.called:
                d.callback(Outcome(0, None))
        self.assertNoTimers()

    def accept(self):
        """The last connectTCP succeeds."""
        host, port, factory, timeout, bind = self.reactor.tcpClients[-1]
        wrapper = factory.buildProtocol(IPv4Address("TCP", host, port))   # the endpoint's
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
        wrapper.makeConnection(transport)
        return Link(wrapper._wrappedProtocol, transport)

    def refuse(self):
        """The last connectTCP fails."""
        factory = self.reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(self.reactor.connectors[-1],
                                       Failure(error.ConnectionRefusedError()))

    def online(self, address=CENTER):
        """connect(), Boot, Register: a registered channel."""
        self.channel.connect(*address)
        link = self.accept()
        link.receive({"Result": 0, "ChallengeCode": CHALLENGE})
        link.receive({"Result": 0})
        self.assertEqual(link.sent(), [BOOT, REGISTER])
        self.assertEqual(self.channel.state, pluginchannel.ONLINE)
        return link

    def attempts(self):
        return [(h, p) for h, p, _, _, _ in self.reactor.tcpClients]

    def assertNoTimers(self):
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    # ------------------------------------------------------------ sequence

    def test_boot_register_heartbeat_frames(self):
        """Boot, Register with CheckSN = MD5(ChallengeCode+SN), then Heartbeats, frame by frame."""
        self.assertEqual(self.channel.state, pluginchannel.IDLE)
        self.channel.connect(*CENTER)
        self.assertEqual(self.reactor.tcpClients[0][:2] + (self.reactor.tcpClients[0][3],),
                         (CENTER[0], CENTER[1], 30.0))
        self.assertEqual(self.channel.state, pluginchannel.CONNECTING)
        link = self.accept()
        self.assertEqual(link.sent(), [BOOT])
        self.assertEqual(self.channel.state, pluginchannel.BOOTING)
        link.receive({"Result": 0, "ChallengeCode": CHALLENGE})
        self.assertEqual(link.sent(), [REGISTER])
        self.assertEqual(self.channel.state, pluginchannel.REGISTERING)
        self.assertFalse(self.channel.connected)
        link.receive({"Result": 0})
        self.assertTrue(self.channel.connected)
        self.assertEqual(link.sent(), [])
        self.reactor.advance(59.9)
        self.assertEqual(link.sent(), [])
        self.reactor.advance(0.1)
        self.assertEqual(link.sent(), [HEARTBEAT])
        self.reactor.advance(5)
        link.receive({"Result": 0})
        self.reactor.advance(54.9)
        self.assertEqual(link.sent(), [])
        self.reactor.advance(0.1)                # every 60 s from the previous one
        self.assertEqual(link.sent(), [HEARTBEAT])
        self.assertEqual(self.channel.counters["heartbeats"], 1)

    def test_heartbeat_interval_read_each_time(self):
        """X_CT-COM_Mgt.Heartbeat is read from the store for every heartbeat."""
        link = self.online()
        self.reactor.advance(60)
        self.assertEqual(link.sent(), [HEARTBEAT])
        self.store.mgt["Heartbeat"] = 20
        link.receive({"Result": 0})
        self.reactor.advance(20)
        self.assertEqual(link.sent(), [HEARTBEAT])

    def test_channel_stop(self):
        """stop() closes, stays down, leaves no timer; its Deferred fires once the socket is gone."""
        link = self.online()
        d = self.channel.stop()
        self.assertNoResult(d)
        self.assertTrue(link.transport.disconnecting)
        link.lose()
        self.successResultOf(d)
        self.assertEqual(self.channel.state, pluginchannel.STOPPED)
        self.reactor.advance(1000)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertNoTimers()

    # ------------------------------------------------------------ failures

    def test_boot_failure_retries_with_backoff(self):
        """A non-zero Result to Boot closes; reconnects follow after 2 s, then 4 s."""
        self.channel.connect(*CENTER)
        link = self.accept()
        link.receive({"Result": -1})
        self.assertTrue(link.transport.disconnecting)
        link.lose()
        self.assertEqual(self.channel.state, pluginchannel.WAITING)
        self.reactor.advance(1.9)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(0.1)
        self.assertEqual(self.attempts(), [CENTER, CENTER])
        link = self.accept()
        self.assertEqual(link.sent(), [BOOT])
        link.receive({"Result": -1})
        link.lose()
        self.reactor.advance(3.9)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.reactor.advance(0.1)
        self.assertEqual(len(self.reactor.tcpClients), 3)

    def test_register_failure_retries(self):
        """A non-zero Result to Register closes and retries with backoff."""
        self.channel.connect(*CENTER)
        link = self.accept()
        link.receive({"Result": 0, "ChallengeCode": CHALLENGE})
        link.receive({"Result": -2})
        self.assertTrue(link.transport.disconnecting)
        link.lose()
        self.reactor.advance(2)
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_connect_failure_retries(self):
        """A refused connection is retried after 2, 4, 8 s."""
        self.channel.connect(*CENTER)
        times = []
        for _ in range(3):
            self.refuse()
            before = len(self.reactor.tcpClients)
            while len(self.reactor.tcpClients) == before:
                self.reactor.advance(0.5)
            times.append(self.reactor.seconds())
        self.assertEqual(times, [2, 6, 14])

    def test_backoff_resets_after_register(self):
        """After a successful Register the next drop waits the first delay again."""
        self.channel.connect(*CENTER)
        self.refuse()
        self.reactor.advance(2)
        self.refuse()
        self.reactor.advance(4)
        link = self.accept()
        link.receive({"Result": 0, "ChallengeCode": CHALLENGE})
        link.receive({"Result": 0})
        self.assertEqual(self.channel.failures, 0)
        link.lose()
        start = self.reactor.seconds()
        self.reactor.advance(2)
        self.assertEqual(len(self.reactor.tcpClients), 4)
        self.assertEqual(self.reactor.seconds() - start, 2)

    def test_reply_timeout_drops_and_reconnects(self):
        """No reply to Boot within reply_timeout (30 s): close, then retry with backoff."""
        self.channel.connect(*CENTER)
        link = self.accept()
        self.reactor.advance(29.9)
        self.assertFalse(link.transport.disconnecting)
        self.reactor.advance(0.1)
        self.assertTrue(link.transport.disconnecting)
        self.assertTrue(logged(self.events, "closing"))
        link.lose()
        self.reactor.advance(2)
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_heartbeat_timeout_drops(self):
        """An unanswered Heartbeat drops the connection after reply_timeout."""
        link = self.online()
        self.reactor.advance(60)
        self.assertEqual(link.sent(), [HEARTBEAT])
        self.reactor.advance(30)
        self.assertTrue(link.transport.disconnecting)
        link.lose()
        self.assertEqual(self.channel.state, pluginchannel.WAITING)

    def test_heartbeat_refused_drops(self):
        """A non-zero Result to Heartbeat aborts the connection; the channel registers again."""
        link = self.online()
        self.reactor.advance(60)
        link.receive({"Result": -1})
        self.assertTrue(link.transport.disconnected)
        link.lose()
        self.reactor.advance(2)
        self.assertEqual(self.accept().sent(), [BOOT])

    def test_drop_reconnects_with_backoff(self):
        """A connection lost without Disconnect is re-established after the backoff delay."""
        link = self.online()
        link.lose()
        self.assertFalse(self.channel.connected)
        self.assertEqual(self.channel.state, pluginchannel.WAITING)
        self.reactor.advance(1.9)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.reactor.advance(0.1)
        self.assertEqual(self.attempts(), [CENTER, CENTER])
        link = self.accept()
        self.assertEqual(link.sent(), [BOOT])

    def test_malformed_frame_dropped_connection_stays(self):
        """A frame that is not JSON is logged and dropped; the connection stays and serves."""
        link = self.online()
        link.proto.dataReceived(frame(b"{oops"))
        self.assertFalse(link.transport.disconnecting)
        self.assertTrue(logged(self.events, "bad frame"))
        self.assertEqual(self.channel.state, pluginchannel.ONLINE)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_oversized_frame_closes(self):
        """A length header above MAX_FRAME closes the connection at once."""
        link = self.online()
        link.proto.dataReceived(struct.pack("!I", wire.MAX_FRAME + 1))
        self.assertTrue(link.transport.disconnecting)
        self.assertTrue(logged(self.events, "-byte frame"))

    def test_bad_boot_reply_closes(self):
        """A Boot reply with Result 0 but no ChallengeCode is malformed: close."""
        self.channel.connect(*CENTER)
        link = self.accept()
        link.receive({"Result": 0})
        self.assertTrue(link.transport.disconnecting)

    def test_unexpected_reply_ignored(self):
        """A reply when nothing is pending is logged and ignored."""
        link = self.online()
        link.receive({"Result": 0})
        self.assertFalse(link.transport.disconnecting)
        self.assertTrue(logged(self.events, "nobody waits"))

    # ------------------------------------------------------------ Disconnect

    def test_disconnect_honoured(self):
        """Disconnect closes the channel; there is no reconnect until the next connect()."""
        link = self.online()
        link.receive({"RPCMethod": "Disconnect"})
        self.assertTrue(link.transport.disconnecting)
        self.assertEqual(self.channel.state, pluginchannel.DISCONNECTED)
        link.lose()
        self.reactor.advance(3600)
        self.assertEqual(len(self.reactor.tcpClients), 1)
        self.assertEqual(self.channel.state, pluginchannel.DISCONNECTED)
        self.assertNoTimers()
        self.channel.connect(*CENTER)
        self.assertEqual(self.attempts(), [CENTER, CENTER])

    # ------------------------------------------------------------ addresses

    def test_connect_new_address_while_connected(self):
        """connect() to another center closes the current connection and moves there."""
        link = self.online()
        self.channel.connect(*OTHER)
        self.assertTrue(link.transport.disconnecting)
        self.assertEqual(self.attempts(), [CENTER, OTHER])
        link.lose()                              # the old connection's loss is not a drop
        self.reactor.advance(100)
        self.assertEqual(self.attempts(), [CENTER, OTHER])
        new = self.accept()
        self.assertEqual(new.sent(), [BOOT])
        self.assertEqual(self.channel.address, OTHER)

    def test_connect_same_address_keeps(self):
        """connect() to the center already in use keeps the connection."""
        link = self.online()
        self.channel.connect(*CENTER)
        self.assertFalse(link.transport.disconnecting)
        self.assertEqual(len(self.reactor.tcpClients), 1)

    def test_connect_while_waiting_connects_now(self):
        """A fresh RequestPlug-in during a backoff wait connects at once, counter reset."""
        self.channel.connect(*CENTER)
        self.refuse()
        self.channel.connect(*CENTER)
        self.assertEqual(len(self.reactor.tcpClients), 2)
        self.assertEqual(self.channel.failures, 0)
        self.reactor.advance(100)
        self.assertEqual(len(self.reactor.tcpClients), 2)

    def test_move_while_connecting(self):
        """Moving while a connect is in progress stops it; a late success is aborted."""
        self.channel.connect(*CENTER)
        first = self.reactor.tcpClients[0][2]
        self.channel.connect(*OTHER)
        self.assertEqual(self.reactor.connectors[0].stoppedConnecting, True)
        # the endpoint's connector is stopped; should the channel's own factory still
        # build a protocol for that attempt, it is aborted
        late = first._wrappedFactory.buildProtocol(IPv4Address("TCP", *CENTER))
        transport = StringTransport()
        late.makeConnection(transport)
        self.assertTrue(transport.disconnected)
        self.assertEqual(transport.value(), b"")
        first.clientConnectionFailed(None, Failure(error.UserError()))
        self.assertEqual(self.channel.state, pluginchannel.CONNECTING)
        self.assertNoTimers()

    # ------------------------------------------------------------ Posts

    def test_posts_answered_out_of_order(self):
        """Several Posts are dispatched at once; replies go out as answered, with their IDs."""
        link = self.online()
        for ident in (1, 2, 3):
            link.receive(post(ident, dict(SN_INFO, SequenceId="0000000%d" % ident), "Post"))
        self.assertEqual([(s, p["SequenceId"]) for s, p, _ in self.dispatcher.calls],
                         [("remote", "00000001"), ("remote", "00000002"), ("remote", "00000003")])
        self.assertEqual(self.channel.in_flight, 3)
        self.assertEqual(link.sent(), [])
        for index in (1, 2, 0):
            self.dispatcher.answer(index)
        replies = link.sent()
        self.assertEqual([(r["ID"], r["Result"], r["return_Parameter"]["SequenceId"])
                          for r in replies],
                         [(2, 0, "00000002"), (3, 0, "00000003"), (1, 0, "00000001")])
        self.assertEqual(self.channel.in_flight, 0)

    def test_after_actions_after_reply(self):
        """After-reply actions run once the reply is written."""
        link = self.online()
        seen = []
        link.receive(post(4, method="Post"))
        self.dispatcher.answer(0, (0, {"Status": "0"}, [lambda: seen.append(link.sent())]))
        self.assertEqual(seen, [[{"Result": 0, "ID": 4, "return_Parameter": {"Status": "0"}}]])

    def test_result_without_payload(self):
        """An Outcome with no payload is answered with its Result and the Post's ID alone."""
        link = self.online()
        link.receive(post(1, method="Post"))
        self.dispatcher.answer(0, (-5, None))
        self.assertEqual(link.sent(), [{"Result": -5, "ID": 1}])

    def test_reply_after_connection_lost_dropped(self):
        """A Post answered after its connection is gone is dropped, its actions not run."""
        link = self.online()
        ran = []
        link.receive(post(1, method="Post"))
        link.lose()
        self.dispatcher.answer(0, (0, None, [lambda: ran.append(1)]))
        self.assertEqual(link.sent(), [])
        self.assertEqual(ran, [])
        self.assertTrue(logged(self.events, "gone before the reply"))

    def test_post_before_register_refused(self):
        """A Post before Register succeeded is answered -12 and not dispatched."""
        self.channel.connect(*CENTER)
        link = self.accept()
        link.sent()
        link.receive(post(5, method="Post"))
        self.assertEqual(link.sent(), [{"Result": -12, "ID": 5}])
        self.assertEqual(self.dispatcher.calls, [])

    def test_bad_post_with_id_refused(self):
        """A Post with a bad Parameter but a readable ID gets -12; the connection stays."""
        link = self.online()
        link.receive(post(6, method="Post", Parameter="!!"))
        self.assertEqual(link.sent(), [{"Result": -12, "ID": 6}])
        self.assertFalse(link.transport.disconnecting)

    def test_post1_on_plugin_channel_refused(self):
        """A LAN Post1 over the plugin channel is refused with -12."""
        link = self.online()
        link.receive(post(7))
        self.assertEqual(link.sent(), [{"Result": -12, "ID": 7}])

    def test_bad_request_without_id_dropped(self):
        """An unknown request with no ID is logged and dropped; the connection stays."""
        link = self.online()
        link.receive({"RPCMethod": "Nonsense"})
        self.assertFalse(link.transport.disconnecting)
        self.assertEqual(link.sent(), [])
        self.assertTrue(logged(self.events, "no ID to answer"))
        link.receive(post(8, method="Post"))
        self.assertEqual(self.channel.state, pluginchannel.ONLINE)

    # ------------------------------------------------------------ reports

    def test_send_report_when_up(self):
        """send_report goes over the channel when registered and returns True."""
        link = self.online()
        self.assertTrue(self.channel.send_report({"CmdType": "LAN_DEVICE_ACCESS", "MAC": "X"}))
        self.assertEqual(link.sent(), [{"RPCMethod": "Report", "MAC": MAC, "Parameter": {
            "CmdType": "LAN_DEVICE_ACCESS", "MAC": "X"}}])

    def test_send_report_when_down(self):
        """send_report returns False when the channel is not registered (UDP fallback)."""
        self.assertFalse(self.channel.send_report({"a": "b"}))
        self.channel.connect(*CENTER)
        link = self.accept()
        self.assertFalse(self.channel.send_report({"a": "b"}))
        self.assertEqual(link.sent(), [BOOT])

    # ------------------------------------------------- bounded output (producer)

    def test_registers_as_streaming_producer(self):
        """Each connection registers its protocol on the transport as a push producer."""
        link = self.online()
        self.assertIs(link.transport.producer, link.proto)
        self.assertTrue(link.transport.streaming)

    def test_report_refused_while_center_not_reading(self):
        """pauseProducing (write buffer over the high-water mark): Reports are refused at
        once (the caller uses UDP), nothing is queued, the center's requests are not read;
        resumeProducing brings both back."""
        link = self.online()
        link.proto.pauseProducing()                   # what the transport does when full
        self.assertEqual(link.transport.producerState, "paused")   # reading stopped
        for _ in range(100):
            self.assertFalse(self.channel.send_report({"CmdType": "LAN_DEVICE_ACCESS"}))
        self.assertEqual(link.sent(), [])
        self.assertEqual((self.channel.counters["reports"],
                          self.channel.counters["reports_refused"]), (0, 100))
        self.assertTrue(self.channel.connected)       # still registered: only paused
        self.assertTrue(logged(self.events, "not reading"))
        link.proto.resumeProducing()
        self.assertEqual(link.transport.producerState, "producing")
        self.assertTrue(self.channel.send_report({"CmdType": "LAN_DEVICE_ACCESS"}))
        self.assertEqual(len(link.sent()), 1)

    def test_close_while_paused_unregisters_producer(self):
        """Closing a paused connection unregisters the producer first, else a TCP
        transport would wait for the producer before closing."""
        link = self.online()
        link.proto.pauseProducing()
        self.channel.stop()
        self.assertIsNone(link.transport.producer)
        self.assertTrue(link.transport.disconnecting)
        link.lose()

    def test_paused_center_dropped_by_heartbeat_timeout(self):
        """A center that stays wedged (not reading) is dropped by the heartbeat timeout."""
        link = self.online()
        link.proto.pauseProducing()
        self.reactor.advance(60)                      # Heartbeat written (small), no reply
        self.reactor.advance(30)
        self.assertTrue(link.transport.disconnecting)
        link.lose()
        self.assertEqual(self.channel.state, pluginchannel.WAITING)

    def test_high_water_mark_on_a_real_file_descriptor(self):
        """With Twisted's own FileDescriptor buffer (a socket that accepts nothing), the
        gateway writes at most HIGH_WATER + one Report, then refuses; once the buffer
        drains, Reports go over TCP again."""
        self.channel.connect(*CENTER)
        host, port, factory, _, _ = self.reactor.tcpClients[-1]
        wrapper = factory.buildProtocol(IPv4Address("TCP", host, port))
        transport = StuckSocket()
        wrapper.makeConnection(transport)
        proto = wrapper._wrappedProtocol
        self.assertEqual(transport.bufferSize, pluginchannel.HIGH_WATER)
        proto.dataReceived(frame({"Result": 0, "ChallengeCode": CHALLENGE}))
        proto.dataReceived(frame({"Result": 0}))
        self.assertTrue(self.channel.connected)
        report = {"CmdType": "LAN_DEVICE_ACCESS", "Data": "x" * 8000}
        sent = 0
        while self.channel.send_report(report):
            sent += 1
            self.assertLess(sent, 1000)
        unsent = transport._tempDataLen + len(transport.dataBuffer)
        self.assertGreater(unsent, pluginchannel.HIGH_WATER)
        self.assertLess(unsent, pluginchannel.HIGH_WATER + 9000)
        self.assertTrue(proto.paused)
        self.assertFalse(self.channel.send_report(report))
        self.assertEqual(self.channel.counters["reports_refused"], 2)
        transport.accept = True                       # the center reads again
        transport.doWrite()
        self.assertFalse(proto.paused)
        self.assertTrue(self.channel.send_report(report))
        self.channel.stop()
        self.assertTrue(transport.disconnecting)
        proto.connectionLost(Failure(error.ConnectionDone()))

    def test_snapshot(self):
        """snapshot() reports state, address and counters for the status file."""
        self.online()
        snap = self.channel.snapshot()
        self.assertEqual((snap["state"], snap["connected"], snap["address"]),
                         ("online", True, "127.0.0.5:8080"))


class StuckSocket(abstract.FileDescriptor):
    """Twisted's write buffer with a socket that takes no byte until ``accept`` is set."""

    connected = 1
    accept = False

    def __init__(self):
        super().__init__(reactor=MemoryReactorClock())
        self.connected = 1

    def writeSomeData(self, data):
        return len(data) if self.accept else 0

    def startWriting(self):
        pass

    def stopWriting(self):
        pass

    def startReading(self):
        pass

    def stopReading(self):
        pass

    def getPeer(self):
        return IPv4Address("TCP", *CENTER)

    def getHost(self):
        return IPv4Address("TCP", "127.0.0.1", 40000)
