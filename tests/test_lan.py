"""The LAN Post1 server on StringTransports, a Clock and a MemoryReactor: no sockets.

``FakeStore``, ``FakeDispatcher`` and the frame helpers are in ``tests.helpers.lan``.
"""

import json
import struct

from twisted.application.service import IService
from twisted.internet import defer, error
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cubegw import lan, wire
from cubegw.capabilities import Outcome
from tests.helpers.dispatch import Harness, Pending

from tests.helpers.lan import (
    SN_INFO, FakeDispatcher, FakeStore, LanHarness, capture_logs, connect, frame, logged, lose,
    post, unframe)


class LanProtocolTests(SynchronousTestCase):
    def setUp(self):
        self.events = capture_logs(self)
        self.h = LanHarness()
        self.proto, self.transport = self.h.connect()

    def tearDown(self):
        if not self.proto._gone:
            lose(self.proto)
        for _, _, d in self.h.dispatcher.calls:
            if not d.called:
                d.callback(Outcome(0, None))
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_post1_answered_then_closed(self):
        """A Post1 goes to the dispatcher as "local"; the reply carries its ID, then close."""
        self.proto.dataReceived(frame(post(7)))
        self.assertEqual([(s, p) for s, p, _ in self.h.dispatcher.calls], [("local", SN_INFO)])
        self.assertEqual(self.transport.value(), b"")
        self.h.dispatcher.answer(0)
        [reply] = unframe(self.transport.value())
        self.assertEqual(reply, {"Result": 0, "ID": 7, "return_Parameter": {
            "CmdType": "GET_SN_INFO", "SequenceId": "0000000A", "Status": "0",
            "MAC": "64D95420214B", "BussinessStatus": "SUCCESS"}})
        self.assertTrue(self.transport.disconnecting)

    def test_reply_parameter_is_base64(self):
        """return_Parameter goes out base64-encoded, never as a raw object."""
        self.proto.dataReceived(frame(post(1)))
        self.h.dispatcher.answer(0)
        raw = json.loads(self.transport.value()[4:])
        self.assertEqual(wire.decode_parameter(raw["return_Parameter"])["Status"], "0")
        self.assertFalse(raw["return_Parameter"].startswith("{"))

    def test_raw_json_parameter_accepted(self):
        """A Parameter sent as a raw JSON object string is accepted too."""
        self.proto.dataReceived(frame(post(3, Parameter=json.dumps(SN_INFO))))
        self.assertEqual(self.h.dispatcher.calls[0][1], SN_INFO)

    def test_split_frame(self):
        """A frame arriving in pieces is handled once complete."""
        data = frame(post(4))
        for i in range(len(data)):
            self.proto.dataReceived(data[i:i + 1])
        self.assertEqual(len(self.h.dispatcher.calls), 1)

    def test_after_actions_run_once_closed(self):
        """After-reply actions wait for the connection to close, then run once each, in order."""
        ran = []
        self.proto.dataReceived(frame(post(9)))
        self.h.dispatcher.answer(0, self.h.dispatcher.sn_info(
            SN_INFO, after=[lambda: ran.append("a"), lambda: ran.append("b")]))
        self.assertEqual(unframe(self.transport.value())[0]["ID"], 9)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(ran, [])
        lose(self.proto)
        self.assertEqual(ran, ["a", "b"])

    def test_failing_action_does_not_stop_the_next(self):
        """One after-reply action raising is logged; the next still runs."""
        ran = []
        self.proto.dataReceived(frame(post(9)))
        self.h.dispatcher.answer(0, (0, None, [lambda: 1 / 0, lambda: ran.append(1)]))
        lose(self.proto)
        self.assertEqual(ran, [1])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_failing_deferred_action_logged(self):
        """An after-reply action whose Deferred fails is logged, not left unhandled."""
        self.proto.dataReceived(frame(post(9)))
        self.h.dispatcher.answer(0, (0, None, (lambda: defer.fail(ValueError("x")),)))
        lose(self.proto)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_ability_one_refuses_through_the_dispatcher(self):
        """X_CT-COM_Mgt.Ability 1: the dispatcher refuses every Post1 (-12), the provider
        is not called, and the connection closes after the reply."""
        h = Harness(self)
        h.store.set("mgt", "Ability", 1)
        proto = connect(lan.LanFactory(h.dispatcher, h.clock))
        proto.dataReceived(frame(post(11)))
        self.assertEqual(unframe(proto.transport.value()), [{"Result": -12, "ID": 11}])
        self.assertTrue(proto.transport.disconnecting)

    def test_slow_call_gets_the_dispatchers_minus_100(self):
        """The dispatcher's call_timeout is the one time limit: the LAN reply is -100."""
        h = Harness(self, providers=[Pending()], timeout=10.0)
        proto = connect(lan.LanFactory(h.dispatcher, h.clock, idle_timeout=30.0))
        proto.dataReceived(frame(post(8, {"CmdType": "SLOW", "SequenceId": "0000000A"})))
        h.clock.advance(9.9)
        self.assertEqual(proto.transport.value(), b"")
        h.clock.advance(0.1)
        self.assertEqual(unframe(proto.transport.value()), [{"Result": -100, "ID": 8}])

    def test_post_refused(self):
        """A plugin-center Post on the LAN port is answered -12 with its ID and closed."""
        self.proto.dataReceived(frame(post(12, method="Post")))
        self.assertEqual(unframe(self.transport.value()), [{"Result": -12, "ID": 12}])
        self.assertEqual(self.h.dispatcher.calls, [])
        self.assertTrue(self.transport.disconnecting)
        self.assertTrue(logged(self.events, "refused"))

    def test_other_method_without_id(self):
        """A wrong RPCMethod with no readable ID is answered -12 with ID 0."""
        self.proto.dataReceived(frame({"RPCMethod": "Heartbeat", "MAC": "64D95420214B"}))
        self.assertEqual(unframe(self.transport.value()), [{"Result": -12, "ID": 0}])

    def test_malformed_frame_dropped_connection_stays(self):
        """A frame that is not a JSON object is dropped unanswered, logged, and the
        connection stays for a good request."""
        self.proto.dataReceived(frame(b"not json"))
        self.assertEqual(self.transport.value(), b"")
        self.assertFalse(self.transport.disconnecting)
        self.assertTrue(logged(self.events, "frame dropped"))
        self.proto.dataReceived(frame(post(12)))
        self.assertEqual(len(self.h.dispatcher.calls), 1)

    def test_bad_parameter_closes(self):
        """A Post1 whose Parameter is neither base64 nor JSON closes unanswered."""
        self.proto.dataReceived(frame(post(13, Parameter="!!!")))
        self.assertEqual(self.transport.value(), b"")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.h.dispatcher.calls, [])

    def test_oversized_length_header_closes(self):
        """A length header above MAX_FRAME closes at once, without waiting for the body."""
        self.proto.dataReceived(struct.pack("!I", wire.MAX_FRAME + 1) + b"{")
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.h.dispatcher.calls, [])
        self.assertTrue(logged(self.events, "-byte frame"))

    def test_only_first_request_served(self):
        """Frames after the first request are ignored."""
        self.proto.dataReceived(frame(post(1)) + frame(post(2)))
        self.proto.dataReceived(frame(post(3)))
        self.assertEqual(len(self.h.dispatcher.calls), 1)

    def test_idle_timeout(self):
        """A client that sends nothing is dropped after idle_timeout (10 s)."""
        self.h.clock.advance(9.9)
        self.assertFalse(self.transport.disconnecting)
        self.h.clock.advance(0.1)
        self.assertTrue(self.transport.disconnecting)
        self.assertTrue(self.transport.disconnected)        # aborted
        self.assertTrue(logged(self.events, "sent nothing"))

    def test_partial_data_resets_idle_timeout(self):
        """Bytes arriving restart the idle timer; an unfinished frame still times out."""
        self.h.clock.advance(9)
        self.proto.dataReceived(frame(post(1))[:6])
        self.h.clock.advance(9)
        self.assertFalse(self.transport.disconnecting)
        self.h.clock.advance(1)
        self.assertTrue(self.transport.disconnecting)

    def test_dribbling_client_aborted_at_the_request_deadline(self):
        """A byte every 9 s keeps the idle timer going, but the request must be whole
        within request_timeout (20 s): aborted then, with its warning (slowloris)."""
        data = frame(post(1))
        for i in range(2):
            self.h.clock.advance(9)
            self.proto.dataReceived(data[i:i + 1])
        self.h.clock.advance(1.9)
        self.assertFalse(self.transport.disconnecting)
        self.h.clock.advance(0.1)
        self.assertTrue(self.transport.disconnected)         # aborted
        self.assertTrue(logged(self.events, "did not complete a request"))
        self.assertFalse(logged(self.events, "sent nothing"))
        self.assertEqual(self.h.dispatcher.calls, [])

    def test_request_deadline_shorter_than_idle(self):
        """A request_timeout under idle_timeout is the one that runs out first."""
        proto = connect(lan.LanFactory(self.h.dispatcher, self.h.clock, idle_timeout=10.0,
                                       request_timeout=3.0))
        proto.dataReceived(frame(post(1))[:2])
        self.h.clock.advance(2.9)
        self.assertFalse(proto.transport.disconnecting)
        self.h.clock.advance(0.1)
        self.assertTrue(proto.transport.disconnected)
        self.assertTrue(logged(self.events, "did not complete a request"))
        lose(proto)

    def test_no_idle_timeout_while_dispatching(self):
        """A slow capability (under the dispatch limit) is not cut by the idle timer."""
        self.proto.dataReceived(frame(post(1)))
        self.h.clock.advance(20)
        self.assertFalse(self.transport.disconnecting)
        self.h.dispatcher.answer(0)
        self.assertEqual(unframe(self.transport.value())[0]["Result"], 0)

    def test_reader_that_never_reads_is_aborted(self):
        """After the reply, a connection still open after idle_timeout is aborted."""
        self.proto.dataReceived(frame(post(1)))
        self.h.dispatcher.answer(0)
        self.assertFalse(self.transport.disconnected)
        self.h.clock.advance(10)
        self.assertTrue(self.transport.disconnected)

    def test_call_answered_at_once_moves_the_idle_timer(self):
        """A call the dispatcher answers at once keeps one idle timer, moved to the reply:
        a client that does not read its reply is aborted idle_timeout after it."""
        h = Harness(self)
        proto = connect(lan.LanFactory(h.dispatcher, h.clock, idle_timeout=10.0))
        h.clock.advance(9)
        proto.dataReceived(frame(post(11)))
        self.assertEqual(unframe(proto.transport.value())[0]["ID"], 11)
        self.assertEqual(len(h.clock.getDelayedCalls()), 1)     # no deadline, one idle
        h.clock.advance(9.9)
        self.assertFalse(proto.transport.disconnected)
        h.clock.advance(0.1)
        self.assertTrue(proto.transport.disconnected)           # aborted
        lose(proto)

    def test_client_gone_before_reply(self):
        """A client that leaves before its reply gets nothing written, and no actions run."""
        ran = []
        self.proto.dataReceived(frame(post(1)))
        lose(self.proto)
        self.h.dispatcher.answer(0, (0, None, [lambda: ran.append(1)]))
        self.assertEqual(self.transport.value(), b"")
        self.assertEqual(ran, [])


class SharedTimerTests(SynchronousTestCase):
    """Every connection's idle timer and request deadline run on the factory's one
    DelayedCall: each still times out at its own time, and none is left once all are gone."""

    def test_one_call_for_many_connections(self):
        """Three connections opened a second apart: one DelayedCall, and each connection
        is closed idle_timeout after its own start, in turn."""
        h = LanHarness()
        protos = []
        for _ in range(3):
            protos.append(h.connect(40000 + len(protos))[0])
            self.assertEqual(len(h.clock.getDelayedCalls()), 1)
            h.clock.advance(1)
        h.clock.advance(6.9)                                    # t = 9.9
        self.assertEqual([p.transport.disconnected for p in protos], [False] * 3)
        for n in range(3):
            h.clock.advance(0.1)                                # t = 10, 11, 12
            self.assertEqual([p.transport.disconnected for p in protos],
                             [True] * (n + 1) + [False] * (2 - n))
            h.clock.advance(0.9)
        for p in protos:
            lose(p)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_sooner_timeout_moves_the_call(self):
        """A connection due before the time the call is set for moves it sooner: a
        request deadline (3 s) under an answered connection's idle timer (10 s)."""
        events = capture_logs(self)
        h = LanHarness(dispatcher=FakeDispatcher(auto=True), request_timeout=3.0)
        answered, _ = h.connect(40000)
        answered.dataReceived(frame(post(1)))                   # reply unread: due at 10
        h.clock.advance(4)
        slow, _ = h.connect(40001)                              # request due at 7
        slow.dataReceived(frame(post(2))[:3])
        h.clock.advance(2.9)
        self.assertFalse(slow.transport.disconnected)
        h.clock.advance(0.1)
        self.assertTrue(slow.transport.disconnected)
        self.assertTrue(logged(events, "did not complete a request"))
        self.assertFalse(answered.transport.disconnected)
        h.clock.advance(3)
        self.assertTrue(answered.transport.disconnected)
        self.assertTrue(logged(events, "does not take its reply"))
        lose(slow)
        lose(answered)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_one_failing_timeout_spares_the_others(self):
        """A connection whose abort raises is logged; the others due then are still
        closed, and those due later still have the call."""
        h = LanHarness()
        broken, _ = h.connect(40000)
        first, _ = h.connect(40001)
        broken.transport.abortConnection = lambda: 1 / 0
        h.clock.advance(5)
        later, _ = h.connect(40002)
        h.clock.advance(5)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertTrue(first.transport.disconnected)
        self.assertFalse(later.transport.disconnected)
        h.clock.advance(5)
        self.assertTrue(later.transport.disconnected)
        for p in (broken, first, later):
            lose(p)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_dispatching_connection_not_timed_out_beside_others(self):
        """While its call runs a connection has no idle timeout, though the shared call
        runs for another connection."""
        h = LanHarness()
        busy, _ = h.connect(40000)
        busy.dataReceived(frame(post(1)))
        h.clock.advance(5)
        idle, _ = h.connect(40001)
        h.clock.advance(10)
        self.assertTrue(idle.transport.disconnected)
        self.assertFalse(busy.transport.disconnecting)
        h.dispatcher.answer(0)
        self.assertEqual(unframe(busy.transport.value())[0]["ID"], 1)
        lose(idle)
        lose(busy)
        self.assertEqual(h.clock.getDelayedCalls(), [])


class LanFactoryTests(SynchronousTestCase):
    def test_sixth_connection_refused(self):
        """Five connections are served at once; the sixth gets no protocol (closed unread)."""
        h = LanHarness()
        events = capture_logs(self)
        protos = [h.connect(40000 + i)[0] for i in range(5)]
        self.assertNotIn(None, protos)
        self.assertEqual(h.connect(40005), (None, None))
        self.assertEqual(h.factory.refused, 1)
        self.assertTrue(logged(events, "refused"))
        lose(protos[0])
        proto, _ = h.connect(40006)
        self.assertIsNotNone(proto)
        for p in protos[1:] + [proto]:
            lose(p)
        self.assertEqual(h.factory.active, set())
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_limit_configurable(self):
        """max_connections sets the limit."""
        h = LanHarness(max_connections=1)
        first, _ = h.connect()
        self.assertEqual(h.connect(), (None, None))
        lose(first)


class RecordingPort:
    def __init__(self, port, interface):
        self.port, self.interface, self.stopped = port, interface, False

    def stopListening(self):
        self.stopped = True


class RecordingReactor(MemoryReactorClock):
    """listenTCP recorded with ports that remember stopListening; some addresses fail."""

    def __init__(self, failing=()):
        super().__init__()
        self.failing = failing
        self.ports = []

    def listenTCP(self, port, factory, backlog=50, interface=""):
        if interface in self.failing:
            raise error.CannotListenError(interface, port, OSError("in use"))
        super().listenTCP(port, factory, backlog, interface)
        self.ports.append(RecordingPort(port, interface))
        return self.ports[-1]


class LanServerTests(SynchronousTestCase):
    def make(self, addresses=("192.168.1.1", "10.0.0.1"), reactor=None, **kw):
        self.reactor = reactor or RecordingReactor()
        self.store = FakeStore()
        self.server = lan.LanServer(addresses, self.store, FakeDispatcher(), self.reactor, **kw)
        return self.server

    def listening(self):
        return [(p.interface, p.port) for p in self.reactor.ports if not p.stopped]

    def test_provides_iservice(self):
        """LanServer is a twisted.application service."""
        verifyObject(IService, self.make())

    def test_listens_on_each_lan_address(self):
        """One listener per configured LAN address on LocatePort, with the shared factory."""
        server = self.make()
        server.startService()
        self.assertEqual(self.listening(), [("192.168.1.1", 17998), ("10.0.0.1", 17998)])
        self.assertEqual({f for _, f, _, _ in self.reactor.tcpServers}, {server.factory})
        self.successResultOf(server.stopService())
        self.assertEqual(self.listening(), [])

    def test_never_on_wildcard(self):
        """Wildcard addresses are refused with an error; the others are served."""
        events = capture_logs(self)
        self.make(("0.0.0.0", "::", "", "192.168.1.1")).startService()
        self.assertEqual(self.listening(), [("192.168.1.1", 17998)])
        self.assertEqual(len(logged(events, "wildcard")), 3)

    def test_no_address_no_listener(self):
        """Without a LAN address nothing listens, and that is logged."""
        events = capture_logs(self)
        self.make(()).startService()
        self.assertEqual(self.reactor.tcpServers, [])
        self.assertTrue(logged(events, "no LAN address"))

    def test_cannot_listen_logged(self):
        """An address that cannot be bound is logged; the others still listen."""
        events = capture_logs(self)
        self.make(reactor=RecordingReactor(failing=("10.0.0.1",))).startService()
        self.assertEqual(self.listening(), [("192.168.1.1", 17998)])
        self.assertTrue(logged(events, "cannot listen"))

    def test_relisten_moves_to_new_port(self):
        """relisten() after LocatePort changed closes the old listeners and opens new ones."""
        server = self.make()
        server.startService()
        self.store.mgt["LocatePort"] = 18000
        self.successResultOf(server.relisten())
        self.assertEqual(self.listening(), [("192.168.1.1", 18000), ("10.0.0.1", 18000)])
        self.assertEqual(len(self.reactor.ports), 4)

    def test_relisten_unchanged_is_noop(self):
        """relisten() with the same LocatePort keeps the listeners."""
        server = self.make()
        server.startService()
        self.successResultOf(server.relisten())
        self.assertEqual(len(self.reactor.ports), 2)

    def test_relisten_when_stopped_is_noop(self):
        """relisten() on a stopped server opens nothing."""
        server = self.make()
        self.store.mgt["LocatePort"] = 18000
        self.successResultOf(server.relisten())
        self.assertEqual(self.reactor.ports, [])

    def test_ipv6_lan_address(self):
        """An IPv6 LAN address (bare or in brackets) gets an IPv6 listener of its own."""
        self.make(("192.168.1.1", "fd00::1", "[fd00::2]")).startService()
        self.assertEqual(self.listening(), [("192.168.1.1", 17998), ("fd00::1", 17998),
                                            ("fd00::2", 17998)])

    def test_real_store(self):
        """With the UCI Store: LocatePort picks the port; with a real dispatcher on it,
        Ability 1 refuses Post1."""
        h = Harness(self)
        store = h.store
        store.update({("mgt", "LocatePort"): 18080, ("mgt", "Ability"): 1})
        self.reactor = RecordingReactor()
        server = lan.LanServer(("192.168.1.1",), store, h.dispatcher, self.reactor)
        server.startService()
        self.assertEqual(self.listening(), [("192.168.1.1", 18080)])
        proto = server.factory.buildProtocol(IPv4Address("TCP", "192.168.1.10", 1))
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(frame(post(1)))
        self.assertEqual(unframe(transport.value()), [{"Result": -12, "ID": 1}])
        lose(proto)
        self.successResultOf(server.stopService())
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_poll_follows_locate_port(self):
        """With check_interval the server notices a LocatePort change by itself."""
        server = self.make(check_interval=2)
        server.startService()
        self.store.mgt["LocatePort"] = 18001
        self.reactor.advance(2)
        self.assertEqual(self.listening(), [("192.168.1.1", 18001), ("10.0.0.1", 18001)])
        self.successResultOf(server.stopService())
        self.assertEqual(self.reactor.getDelayedCalls(), [])
