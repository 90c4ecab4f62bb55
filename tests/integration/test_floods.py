"""Floods and resource limits: the gateway keeps its heartbeat and answers Post1.

``FloodTests`` runs ``twistd -n cubegw`` on 127.0.0.1, registers it with a scripted UDP
platform (heartbeat every 1 s), then for ``FLOOD_SECONDS`` throws at it at once:
malformed, random, oversized and spoofed datagrams at its session UDP socket (found from
the platform side: the source port of its heartbeats), garbage frames, slow clients (one
byte per 0.5 s) and a connection storm at its LAN port.  Meanwhile it must answer every
heartbeat and a well-formed Post1 (GET_VERSION) within 1 s at several moments; a Post1
refused as a 6th connection counts as a failure, it is not retried.  The figures are
printed (``FLOOD FIGURES``) for docs/SECURITY.md.

``ResourceLimitTests`` proves each limit at unit level (Clock, StringTransport): the frame
length cap, the idle timeout and the whole-request deadline, the 5-connection cap, the
dispatcher's concurrency cap (-5) and that Reports never queue.
"""

import json
import random
import socket
import struct
import time

import psutil
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock, LoopingCall
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cubegw import wire
from cubegw.capabilities import Capability
from cubegw.pluginchannel import PluginChannel

from tests.helpers import IDENTITY
from tests.helpers.dispatch import Harness
from tests.helpers.lan import FakeDispatcher, FakeStore, LanHarness, frame, lose, post
from tests.integration.support import (
    Daemon, Probe, lan_gateway_config, register_gateway, scratch_dir, sleep, udp_peer)

FLOOD_SECONDS = 5.0          # the issue asks ~10 s; 5 s keeps `make test` short
UDP_BATCH = 20               # datagrams per UDP tick
UDP_TICK = 0.01              # s between UDP ticks (so at most ~2000 datagrams/s)
SLOW_CLIENTS = 2             # one byte every SLOW_BYTE_EVERY s each
SLOW_BYTE_EVERY = 0.5
STORM_IN_FLIGHT = 1          # garbage/storm connections open at once (slots: 2 slow + 1 + probe < 5)
PROBE_EVERY = 0.8            # s between Post1 probes
POST1_DEADLINE = 1.0         # s: the answer every probe must beat
SEED = 20240611


class Storm(protocol.Protocol):
    """Connects, writes its payload (maybe nothing), closes; ``lost`` fires when gone."""

    def __init__(self, payload):
        self.payload = payload
        self.lost = defer.Deferred()

    def connectionMade(self):
        # the server closes on an over-limit length and drops other bad frames (protocol.md
        # 3), so the storm cuts its own connection after 0.1 s and never holds more server
        # slots than it counts
        if self.payload:
            self.transport.write(self.payload)
        self.cut = reactor.callLater(0.1, self.transport.loseConnection)

    def connectionLost(self, reason):
        if self.cut.active():
            self.cut.cancel()
        self.lost.callback(None)



class Slow(protocol.Protocol):
    """Writes a valid Post1 frame one byte at a time; ``lost`` fires when dropped."""

    def __init__(self, data):
        self.data = data
        self.lost = defer.Deferred()
        self.loop = None

    def connectionMade(self):
        self.loop = LoopingCall(self.dribble)
        self.loop.start(SLOW_BYTE_EVERY, now=True)

    def dribble(self):
        if self.data and self.transport.connected:
            self.transport.write(self.data[:1])
            self.data = self.data[1:]

    def connectionLost(self, reason):
        if self.loop and self.loop.running:
            self.loop.stop()
        self.lost.callback(None)


def garbage_datagrams(rng, n):
    kinds = [
        lambda: rng.randbytes(rng.randint(0, 300)),
        lambda: b'{"RPCMethod": "Hb", "MAC": ',                              # truncated
        lambda: b"x" * 5000,                                                  # > 4096
        lambda: b"[1, 2, 3]",
        lambda: json.dumps({"Result": 0, "Interval": 0}).encode(),            # stray reply
        lambda: json.dumps({"RPCMethod": "RequestPlug-in", "Key": "0" * 32,   # spoofed
                            "ServerAddr": "127.0.0.1", "ServerPort": 1}).encode(),
        lambda: json.dumps({"RPCMethod": "Boot" * 100}).encode(),
        lambda: "\udcff".encode("utf-8", "surrogatepass"),
    ]
    return [rng.choice(kinds)() for _ in range(n)]


def garbage_frames(rng):
    return rng.choice([
        b"\xff\xff\xff\xff",                                        # over the length cap
        struct.pack("!I", 10) + b"not json!!",
        frame(b"[]"),
        frame(post(1, method="Post")),                              # not Post1
        frame({"RPCMethod": "Post1", "ID": "x", "Parameter": "%%%"}),
        rng.randbytes(rng.randint(1, 64)),
        b"",                                                        # connect and close
        b"",
    ])


class FloodTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.tmp = scratch_dir(self)
        self.dist, self.oper = udp_peer(self), udp_peer(self)
        self.config, self.lan_port = lan_gateway_config(self.tmp, lan={"idle_timeout": 1.5})
        self.daemon = Daemon("cubegw", ["--config", self.config, "--mgt-url", "127.0.0.1",
                                        "--port", str(self.dist.address[1])], self.tmp).start()
        self.addCleanup(self.daemon.stop)
        yield self.daemon.wait_for(f"listening on 127.0.0.1:{self.lan_port}")
        _, self.gw_udp = yield register_gateway(self.dist, self.oper, hb_interval=1)

    def connect(self, proto):
        return connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.lan_port,
                                                  timeout=2), proto)

    @defer.inlineCallbacks
    def probe(self, n):
        """One Post1 GET_VERSION: (seconds to the reply, reply or None)."""
        start = time.monotonic()
        p = yield self.connect(Probe())
        p.sendString(wire.encode_frame(wire.Post1(
            ID=n, Parameter={"CmdType": "GET_VERSION", "SequenceId": "%08X" % n})))
        reply = yield p.done
        return time.monotonic() - start, reply

    @defer.inlineCallbacks
    def test_flood(self):
        """Under a UDP, TCP and slow-client flood the daemon keeps its heartbeat, answers Post1
        in time and cuts the slow clients off; the figures are printed."""
        rng = random.Random(SEED)
        cpu0 = sum(psutil.Process().cpu_times()[:2])
        figures = {"datagrams": 0, "frames": 0, "connections": 0, "slow": 0,
                   "heartbeats": 0, "probes": 0}
        end = time.monotonic() + FLOOD_SECONDS
        flooding = lambda: time.monotonic() < end  # noqa: E731

        # the scripted platform answers every heartbeat with Interval 1
        stop_hb = [False]

        @defer.inlineCallbacks
        def platform():
            while not stop_hb[0]:
                try:
                    msg, addr = yield self.oper.next(timeout=3)
                except AssertionError:
                    break
                if msg.get("RPCMethod") == "Hb":
                    self.oper.send({"Result": 0, "Interval": 1}, addr)
                    if flooding():
                        figures["heartbeats"] += 1
        hb_done = platform()

        # UDP: garbage at the session socket, from a socket that is not the platform's
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setblocking(False)
        self.addCleanup(udp.close)

        pool = garbage_datagrams(rng, 500)      # made up front: the test's CPU is for I/O
        frames = [garbage_frames(rng) for _ in range(200)]

        def throw_datagrams():
            for data in rng.sample(pool, UDP_BATCH):
                try:
                    udp.sendto(data, self.gw_udp)
                    figures["datagrams"] += 1
                except (BlockingIOError, OSError):
                    pass
        udp_loop = LoopingCall(throw_datagrams)
        udp_done = udp_loop.start(UDP_TICK)

        # LAN: a bounded connection storm carrying garbage frames
        in_flight = [0]

        def storm_one():
            if in_flight[0] >= STORM_IN_FLIGHT:
                return
            payload = rng.choice(frames)
            in_flight[0] += 1
            figures["connections"] += 1
            figures["frames"] += bool(payload)
            d = self.connect(Storm(payload))
            d.addCallback(lambda s: s.lost)
            d.addBoth(lambda _: in_flight.__setitem__(0, in_flight[0] - 1))
        storm_loop = LoopingCall(storm_one)
        storm_done = storm_loop.start(0.005)

        # LAN: slow clients dribbling a Post1, one byte per 0.5 s, for the whole flood
        slow = []
        for i in range(SLOW_CLIENTS):
            s = yield self.connect(Slow(frame(post(100 + i))))
            slow.append(s)
            figures["slow"] += 1

        # the probes: a real Post1 at several moments, each timed, none retried
        latencies, failures = [], []
        n = 0
        while flooding():
            yield sleep(PROBE_EVERY)
            n += 1
            try:
                took, reply = yield self.probe(n)
            except Exception as e:  # refused or failed to connect: a failure, not a retry
                failures.append((n, repr(e)))
                continue
            if reply is None or reply.get("Result") != 0 or reply.get("ID") != n:
                failures.append((n, reply))
            latencies.append(took)
        figures["probes"] = n

        udp_loop.stop()
        storm_loop.stop()
        yield udp_done
        yield storm_done
        while in_flight[0]:
            yield sleep(0.05)
        slow_dropped = sum(1 for s in slow if s.lost.called)
        for s in slow:
            if s.transport.connected:
                s.transport.abortConnection()
        yield sleep(1.5)                # the heartbeat after the flood still comes
        stop_hb[0] = True
        yield hb_done

        figures["max_post1_latency_s"] = round(max(latencies), 3) if latencies else None
        figures["slow_clients_dropped_by_deadline"] = slow_dropped
        figures["gateway_log_lines"] = len(self.daemon.output)
        figures["test_cpu_s"] = round(sum(psutil.Process().cpu_times()[:2]) - cpu0, 2)
        figures["gateway_cpu_s"] = round(sum(psutil.Process(
            self.daemon.process.pid).cpu_times()[:2]), 2)
        print(f"\nFLOOD FIGURES ({FLOOD_SECONDS:.0f} s): {json.dumps(figures)}")
        self.assertEqual(failures, [])
        self.assertGreaterEqual(n, 4)
        self.assertLess(max(latencies), POST1_DEADLINE, [round(x, 3) for x in latencies])
        # heartbeat every 1 s: allow for the reply-timeout jitter, but it must keep going
        self.assertGreaterEqual(figures["heartbeats"], FLOOD_SECONDS - 2)
        self.assertFalse(self.daemon.ended.called, self.daemon.text()[-2000:])
        self.assertGreater(figures["datagrams"], 1000)
        self.assertGreater(figures["connections"], 30)
        # idle 1.5 s -> request deadline 3 s: the slow clients were cut off during the flood
        self.assertEqual(slow_dropped, SLOW_CLIENTS)


class Sleepy(Capability):
    """A capability whose calls finish only when the test says so."""

    cmd_types = ("SLEEPY",)

    def __init__(self):
        self.pending = []

    def call(self, cmd_type, payload, context):
        d = defer.Deferred()
        self.pending.append(d)
        return d


class ResourceLimitTests(SynchronousTestCase):
    def test_frame_length_cap_lan(self):
        """A LAN length header over 64 KiB closes the connection before any body is read."""
        h = LanHarness()
        proto, transport = h.connect()
        proto.dataReceived(struct.pack("!I", wire.MAX_FRAME + 1))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(h.dispatcher.calls, [])
        lose(proto)

    def test_frame_at_cap_is_read(self):
        """A LAN length header of exactly 64 KiB is accepted: the connection stays open."""
        h = LanHarness()
        proto, transport = h.connect()
        proto.dataReceived(struct.pack("!I", wire.MAX_FRAME))
        self.assertFalse(transport.disconnecting)
        lose(proto)

    def test_frame_length_cap_plugin_channel(self):
        """The plugin-center client closes on an oversized frame too."""
        from twisted.internet.testing import MemoryReactorClock, StringTransport
        from cubegw.pluginchannel import PluginProtocol
        channel = PluginChannel(MemoryReactorClock(), IDENTITY, FakeStore(), FakeDispatcher())
        proto = PluginProtocol(channel, attempt=0)
        proto.makeConnection(StringTransport())
        proto.dataReceived(struct.pack("!I", wire.MAX_FRAME + 1))
        self.assertTrue(proto.closing)

    def test_idle_timeout(self):
        """A silent LAN connection is closed after idle_timeout, not before."""
        h = LanHarness(idle_timeout=10)
        proto, transport = h.connect()
        h.clock.advance(9.9)
        self.assertFalse(transport.disconnected)
        h.clock.advance(0.2)
        self.assertTrue(transport.disconnected)
        lose(proto)

    def test_slow_client_cut_by_request_deadline(self):
        """One byte per 0.5 s resets the idle timeout, but not the request deadline."""
        h = LanHarness(idle_timeout=10)
        protos = [h.connect(40000 + i) for i in range(5)]
        self.assertEqual(h.connect(40010), (None, None))          # all five slots held
        data = frame(post(1))
        for step in range(40):                                     # 20 s of dribbling
            for proto, transport in protos:
                if not transport.disconnected:
                    proto.dataReceived(data[step:step + 1])
            h.clock.advance(0.5)
        self.assertTrue(all(t.disconnected for _, t in protos))
        self.assertEqual(h.factory.request_timeout, 20)
        for proto, _ in protos:
            lose(proto)
        self.assertIsNotNone(h.connect(40011)[0])                 # a slot is free again

    def test_request_deadline_cancelled_once_served(self):
        """Once a request is answered and the connection gone, no deadline timer is left."""
        h = LanHarness(dispatcher=FakeDispatcher(auto=True))
        proto, transport = h.connect()
        proto.dataReceived(frame(post(1)))
        lose(proto)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_connection_cap(self):
        """A sixth simultaneous LAN connection is refused and counted; five are served."""
        h = LanHarness()
        protos = [h.connect(40000 + i)[0] for i in range(5)]
        self.assertNotIn(None, protos)
        self.assertEqual(h.connect(40005), (None, None))
        self.assertEqual(h.factory.refused, 1)
        for p in protos:
            lose(p)

    def test_dispatcher_concurrency_cap(self):
        """Beyond max_concurrent calls in flight the dispatcher answers -5 (busy)."""
        sleepy = Sleepy()
        h = Harness(self, providers=[sleepy], max_concurrent=3)
        calls = [h.dispatcher.dispatch("local", {"CmdType": "SLEEPY", "SequenceId": "0000000%d"
                                                 % i}) for i in range(3)]
        self.assertEqual([c.called for c in calls], [False] * 3)
        busy = self.successResultOf(h.dispatcher.dispatch(
            "local", {"CmdType": "SLEEPY", "SequenceId": "00000009"}))
        self.assertEqual(busy.result, -5)
        sleepy.pending[0].callback({})
        self.assertEqual(self.successResultOf(calls[0]).result, 0)
        again = h.dispatcher.dispatch("local", {"CmdType": "SLEEPY", "SequenceId": "0000000A"})
        self.assertFalse(again.called)                 # a slot freed: accepted
        for d in sleepy.pending[1:]:
            d.callback({})
        self.assertEqual(h.dispatcher.in_flight, 0)

    def test_dispatcher_timeout_frees_its_slot(self):
        """A call past the dispatcher timeout answers -100 and frees its concurrency slot."""
        sleepy = Sleepy()
        h = Harness(self, providers=[sleepy], max_concurrent=1, timeout=10)
        d = h.dispatcher.dispatch("local", {"CmdType": "SLEEPY", "SequenceId": "00000001"})
        h.clock.advance(10)
        self.assertEqual(self.successResultOf(d).result, -100)
        self.assertEqual(h.dispatcher.in_flight, 0)

    def test_reports_not_queued_while_channel_down(self):
        """send_report refuses at once when the channel is not registered: no queue."""
        from twisted.internet.testing import MemoryReactorClock
        channel = PluginChannel(MemoryReactorClock(), IDENTITY, FakeStore(), FakeDispatcher(),
                                clock=Clock())
        for _ in range(1000):
            self.assertFalse(channel.send_report({"Event": "x"}))
        self.assertEqual(channel.counters["reports"], 0)
        self.assertFalse([name for name, value in vars(channel).items()
                          if isinstance(value, (list, dict)) and len(value) > 10])
