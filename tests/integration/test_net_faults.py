"""Network faults between the real daemon and its platforms, on 127.0.0.1.

``twistd -n cubegw`` runs as a process with the scaled-down timings of
``support.gateway_config`` (retry 0.2 s growing 2x up to 2 s, reply timeout 0.5 s,
heartbeat timeout 1 s).  The test plays the platforms:

- ``LossyProxy`` sits between the gateway and a scripted UDP platform and drops datagrams
  in both directions with a seeded ``random.Random`` (30 %), or all of them for a while
  (an operation platform that restarts);
- scripted plugin centers accept TCP and then never answer Boot, or answer half a frame
  and stall, before a good center takes over.

Each test prints a ``NET FAULT FIGURES`` line (docs/SECURITY.md, "Platform faults").
The plugin channel's reply timeout (30 s) is not configurable in the daemon, so the
stalled-center test checks that the gateway waits without spinning (CPU time and the
number of connection attempts) rather than the timeout itself.
"""

import json
import os
import random
import struct
import time

import psutil
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial.unittest import TestCase

from cubegw import identity, wire

from tests.integration.support import CHALLENGE, MAC, Daemon, gateway_config, sleep

SEED = int(os.environ.get("NET_FAULT_SEED", "6"))   # drop pattern (a quick one: see SECURITY.md)
LOSS = 0.30
REPLY_TIMEOUT = 0.5          # support.gateway_config timings
HB_TIMEOUT = 1.0
RETRY_MAX = 2.0
TOLERANCE = 0.03             # s: timer and loopback jitter on the measured gaps
CPU_LIMIT = 0.20             # share of wall time the daemon may use while waiting
WIFI = ("ChinaNet-TEST", "wifipass")
USERADMIN = "admin1"


@defer.inlineCallbacks
def wait_until(condition, timeout, what, step=0.05):
    """Poll ``condition`` every ``step`` s; AssertionError after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        yield sleep(step)


def cpu_seconds(pid):
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def label(data):
    """A short name for a datagram: its RPCMethod, or "reply"."""
    try:
        msg = json.loads(data)
    except ValueError:
        return "?"
    return msg.get("RPCMethod", "reply") if isinstance(msg, dict) else "?"


class ScriptedPlatform(protocol.DatagramProtocol):
    """A UDP platform that answers every request at once with ``answers[method](msg)``."""

    def __init__(self, answers):
        self.answers = answers
        self.received = []           # (time, message, source)

    def listen(self):
        self.port = reactor.listenUDP(0, self, interface="127.0.0.1")
        self.address = ("127.0.0.1", self.port.getHost().port)
        return self

    def datagramReceived(self, data, addr):
        msg = json.loads(data)
        self.received.append((reactor.seconds(), msg, addr))
        answer = self.answers.get(msg.get("RPCMethod"))
        if answer is not None:
            self.send(answer(msg), addr)

    def send(self, message, addr):
        self.transport.write(json.dumps(message).encode(), addr)

    def got(self, method):
        return [(t, m, a) for t, m, a in self.received if m.get("RPCMethod") == method]


class LossyProxy:
    """``front`` faces the gateway, ``back`` the platform; drops with ``loss`` each way.

    ``events`` (shared by the proxies of one test) records every datagram as
    ``(time, proxy, direction, label, forwarded)``; ``direction`` is "up" (gateway to
    platform) or "down".
    """

    def __init__(self, name, upstream, rng, events, loss=0.0):
        self.name, self.upstream, self.rng, self.events = name, upstream, rng, events
        self.loss = loss
        self.client = None
        self.front = _Side(self._from_gateway)
        self.back = _Side(self._from_platform)
        self.front_port = reactor.listenUDP(0, self.front, interface="127.0.0.1")
        self.back_port = reactor.listenUDP(0, self.back, interface="127.0.0.1")
        self.address = ("127.0.0.1", self.front_port.getHost().port)

    def stop(self):
        return defer.gatherResults([self.front_port.stopListening(),
                                    self.back_port.stopListening()])

    def _pass(self, direction, data):
        forwarded = self.rng.random() >= self.loss
        self.events.append((reactor.seconds(), self.name, direction, label(data), forwarded))
        return forwarded

    def _from_gateway(self, data, addr):
        self.client = addr
        if self._pass("up", data):
            self.back.transport.write(data, self.upstream)

    def _from_platform(self, data, addr):
        if self.client is not None and self._pass("down", data):
            self.front.transport.write(data, self.client)


class _Side(protocol.DatagramProtocol):
    def __init__(self, handler):
        self.datagramReceived = handler


def tally(events):
    out = {}
    for _, _, direction, _, forwarded in events:
        key = f"{direction}_{'forwarded' if forwarded else 'dropped'}"
        out[key] = out.get(key, 0) + 1
    return out


def retry_gaps(events):
    """Gaps between gateway requests with no reply delivered in between (the retries).

    Returns ``[(previous label, next label, gap)]``.
    """
    gaps, last, answered = [], None, False
    for t, _, direction, what, forwarded in sorted(events):
        if direction == "down":
            answered = answered or forwarded
            continue
        if last is not None and not answered:
            gaps.append((last[1], what, t - last[0]))
        last, answered = (t, what), False
    return gaps


def answers(interval, oper_port):
    """The scripted platform's replies (distribution and operation in one table)."""
    return {
        "BootFirst": lambda m: {"Result": 0, "ChallengeCode": CHALLENGE},
        "RegisterFirst": lambda m: {"Result": 0, "ServerAddr": "127.0.0.1",
                                    "ServerPort": oper_port()},
        "Boot": lambda m: {"Result": 0, "ChallengeCode": CHALLENGE},
        "Register": lambda m: {"Result": 2},
        "Hb": lambda m: {"Result": 0, "Interval": interval},
    }


class NetFaultCase(TestCase):
    timeout = 40

    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.config = gateway_config(self.tmp, wifi={"ssid": WIFI[0], "password": WIFI[1]})
        self.figures = {}

    def start_daemon(self, dist_address):
        self.daemon = Daemon("cubegw", ["--config", self.config, "--mgt-url", "127.0.0.1",
                                        "--port", str(dist_address[1])], self.tmp).start()
        self.addCleanup(self.daemon.stop)
        self.started = reactor.seconds()
        return self.daemon

    def platform(self, interval, oper_port):
        p = ScriptedPlatform(answers(interval, oper_port)).listen()
        self.addCleanup(p.port.stopListening)
        return p

    def report(self, name):
        print(f"\nNET FAULT FIGURES ({name}): {json.dumps(self.figures)}")

    def assertNoSpin(self, cpu, wall):
        self.assertLess(cpu, CPU_LIMIT * wall, f"daemon used {cpu:.2f} s CPU in {wall:.1f} s")


class LossyPlatformTests(NetFaultCase):
    """30 % of the datagrams lost each way: registration and heartbeats still get through."""

    @defer.inlineCallbacks
    def test_registers_and_keeps_heartbeat_under_loss(self):
        """With 30 % loss each way the daemon registers and keeps its heartbeat, retrying on
        schedule (never too soon nor too late) and without spinning."""
        rng = random.Random(SEED)
        events = []
        oper_proxy = []
        platform = self.platform(1, lambda: oper_proxy[0].address[1])
        dist = LossyProxy("distribution", platform.address, rng, events, LOSS)
        oper = LossyProxy("operation", platform.address, rng, events, LOSS)
        oper_proxy.append(oper)
        self.addCleanup(dist.stop)
        self.addCleanup(oper.stop)
        daemon = self.start_daemon(dist.address)

        def answered(method):
            """Times a reply to ``method`` was delivered to the gateway."""
            out, pending = [], None
            for t, _, direction, what, forwarded in events:
                if direction == "up":
                    pending = what
                elif forwarded and pending == method:
                    out.append(t)
            return out

        yield wait_until(lambda: answered("Hb"), 25, "an answered heartbeat under 30 % loss")
        first_sent = events[0][0]                       # the first BootFirst
        registered = answered("Register")[0] - first_sent
        first_hb = answered("Hb")[0]
        cpu0, wall0 = cpu_seconds(daemon.process.pid), time.monotonic()
        # keep going: two more answered heartbeats (interval 1 s; ~half get through)
        yield wait_until(lambda: len(answered("Hb")) >= 3, 10, "two more heartbeats")
        cpu = cpu_seconds(daemon.process.pid) - cpu0
        wall = time.monotonic() - wall0
        hb_later = [t for t in answered("Hb") if t > first_hb]

        gaps = retry_gaps(events)
        too_soon = [(a, b, round(g, 3)) for a, b, g in gaps
                    if g < (HB_TIMEOUT if a == "Hb" else REPLY_TIMEOUT) - TOLERANCE]
        too_late = [(a, b, round(g, 3)) for a, b, g in gaps
                    if g > (HB_TIMEOUT if a == "Hb" else REPLY_TIMEOUT) + RETRY_MAX + 0.3]
        self.figures = dict(
            tally(events), seed=SEED, loss=LOSS,
            register_s=round(registered, 2), first_hb_s=round(first_hb - first_sent, 2),
            requests=sum(1 for e in events if e[2] == "up"),
            retries=len(gaps), min_retry_gap_s=round(min(g for _, _, g in gaps), 3),
            max_retry_gap_s=round(max(g for _, _, g in gaps), 3),
            two_more_hb_s=round(wall, 2),
            boots_sent=sum(1 for e in events if e[2] == "up" and e[3] == "Boot"),
            cpu_percent=round(100 * cpu / wall, 1))
        self.report("30 % loss")
        self.assertEqual(too_soon, [])
        self.assertEqual(too_late, [])
        self.assertGreater(len(gaps), 0)                # the loss did force retries
        self.assertGreaterEqual(len(hb_later), 2)
        self.assertGreater(self.figures["up_dropped"], 0)
        self.assertGreater(self.figures["down_dropped"], 0)
        self.assertNoSpin(cpu, wall)
        self.assertFalse(daemon.ended.called)


class PlatformRestartTests(NetFaultCase):
    """The operation platform goes silent for 4 s (a restart) and comes back."""

    @defer.inlineCallbacks
    def test_back_to_boot_after_three_missed_heartbeats(self):
        """Three heartbeats lost in a platform blackout send the daemon back to Boot; it
        registers again once the platform answers, without spinning meanwhile."""
        events = []
        oper_proxy = []
        platform = self.platform(1, lambda: oper_proxy[0].address[1])
        rng = random.Random(SEED)
        dist = LossyProxy("distribution", platform.address, rng, events)
        oper = LossyProxy("operation", platform.address, rng, events)
        oper_proxy.append(oper)
        self.addCleanup(dist.stop)
        self.addCleanup(oper.stop)
        daemon = self.start_daemon(dist.address)

        yield wait_until(lambda: len(platform.got("Hb")) >= 2, 10, "two heartbeats")
        n = len(events)
        # black out right after a heartbeat reply went through
        yield wait_until(lambda: any(e[2] == "down" and e[1] == "operation"
                                     for e in events[n:]), 3, "a heartbeat reply")
        oper.loss = 1.0
        black, log_mark = reactor.seconds(), len(daemon.output)
        cpu0, wall0 = cpu_seconds(daemon.process.pid), time.monotonic()
        yield sleep(4)
        oper.loss = 0.0
        restored = reactor.seconds()
        after = lambda method: [t for t, m, _ in platform.got(method) if t > restored]  # noqa
        yield wait_until(lambda: after("Register") and [
            t for t in after("Hb") if t > after("Register")[0]], 10,
            "Register and a heartbeat after the blackout")
        yield daemon.wait_for("heartbeat lost: registering again", timeout=1, after=log_mark)
        cpu = cpu_seconds(daemon.process.pid) - cpu0
        wall = time.monotonic() - wall0

        sent = [(t - black, what) for t, name, direction, what, _ in events
                if direction == "up" and t > black]
        hbs_before_boot = []
        for _, what in sent:
            if what != "Hb":
                break
            hbs_before_boot.append(what)
        boot_at = next(t for t, what in sent if what == "Boot")
        back = after("Hb")[0] - restored
        self.figures = dict(
            blackout_s=round(restored - black, 2),
            hb_missed_before_boot=len(hbs_before_boot), boot_after_s=round(boot_at, 2),
            requests_in_blackout=sum(1 for t, _ in sent if t < restored - black),
            bootfirst_sent=sum(1 for _, w in sent if w == "BootFirst"),
            reregistered_s_after_restore=round(back, 2),
            cpu_percent=round(100 * cpu / wall, 1), wall_s=round(wall, 1))
        self.report("platform restart")
        self.assertEqual(len(hbs_before_boot), 3)       # hb_misses = 3
        self.assertEqual(sent[3][1], "Boot")
        self.assertGreater(boot_at, 3 * HB_TIMEOUT)
        self.assertLess(back, 4)
        self.assertLess(self.figures["requests_in_blackout"], 12)
        self.assertNoSpin(cpu, wall)
        self.assertFalse(daemon.ended.called)


class Center(Int32StringReceiver):
    """A scripted plugin center connection; ``mode`` is silent, half or good."""

    def connectionMade(self):
        self.frames = []
        self.closed = defer.Deferred()
        self.factory.conns.append(self)

    def stringReceived(self, data):
        msg = json.loads(data)
        self.frames.append(msg)
        mode = self.factory.mode
        if mode == "half" and msg.get("RPCMethod") == "Boot":
            # a length header promising 100 bytes, then 10 of them, then nothing
            self.transport.write(struct.pack("!I", 100) + b'{"Result":')
        elif mode == "good" and msg.get("RPCMethod") == "Boot":
            self.sendString(wire.encode_frame({"Result": 0, "ChallengeCode": CHALLENGE}))
        elif mode == "good" and msg.get("RPCMethod") == "Register":
            self.sendString(wire.encode_frame({"Result": 0}))

    def connectionLost(self, reason):
        self.closed.callback(None)


class StalledCenterTests(NetFaultCase):
    """Plugin centers that accept and then stall: the gateway waits without spinning."""

    @defer.inlineCallbacks
    def center(self, mode):
        factory = protocol.Factory.forProtocol(Center)
        factory.mode, factory.conns = mode, []
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        factory.port = port.getHost().port
        return factory

    def trigger(self, center):
        # each accepted trigger's answer carries the DevRND the next Key is made with
        answered = [m for _, m, _ in self.platform_.received
                    if "RPCMethod" not in m and m.get("DevRND")]
        dev_rnd = answered[-1]["DevRND"] if answered else self.register["DevRND"]
        key = identity.trigger_key(dev_rnd, self.register["SN"], WIFI[0], WIFI[1], USERADMIN)
        self.platform_.send({"RPCMethod": "RequestPlug-in", "Key": key,
                             "ServerAddr": "127.0.0.1", "ServerPort": center.port},
                            self.hb_source)

    @defer.inlineCallbacks
    def test_silent_and_half_frame_centers(self):
        """A silent center and one that sends half a frame keep the gateway waiting without
        spinning; a trigger to a good center then registers at once."""
        platform = self.platform_ = self.platform(30, lambda: platform.address[1])
        daemon = self.start_daemon(platform.address)
        yield wait_until(lambda: platform.got("Hb"), 10, "the first heartbeat")
        self.register = platform.got("Register")[-1][1]
        self.hb_source = platform.got("Hb")[-1][2]
        silent, half, good = (yield self.center("silent")), (yield self.center("half")), \
            (yield self.center("good"))
        pid = daemon.process.pid
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()

        self.trigger(silent)
        yield wait_until(lambda: silent.conns and silent.conns[0].frames, 5, "Boot at silent")
        self.assertEqual(silent.conns[0].frames[0]["RPCMethod"], "Boot")
        yield sleep(4)
        self.assertFalse(silent.conns[0].closed.called)     # still waiting for the reply
        self.assertEqual(len(silent.conns), 1)

        self.trigger(half)
        yield wait_until(lambda: half.conns and half.conns[0].frames, 5, "Boot at half")
        yield silent.conns[0].closed                         # the gateway moved
        yield sleep(4)
        self.assertFalse(half.conns[0].closed.called)
        self.assertEqual(len(half.conns), 1)
        cpu = cpu_seconds(pid) - cpu0
        wall = time.monotonic() - wall0

        mark = len(daemon.output)
        took = time.monotonic()
        self.trigger(good)
        yield daemon.wait_for("registered with the plugin center", timeout=5, after=mark)
        took = time.monotonic() - took
        yield half.conns[0].closed
        self.assertEqual([f["RPCMethod"] for f in good.conns[0].frames], ["Boot", "Register"])
        self.assertEqual(good.conns[0].frames[1]["CheckSN"],
                         identity.check_sn(CHALLENGE, self.register["SN"]))
        self.assertEqual(good.conns[0].frames[0]["MAC"], MAC)
        answers = [m for _, m, _ in platform.received if "RPCMethod" not in m]
        self.figures = dict(
            stalled_wall_s=round(wall, 1), cpu_s=round(cpu, 3),
            cpu_percent=round(100 * cpu / wall, 1),
            connections={"silent": len(silent.conns), "half": len(half.conns),
                         "good": len(good.conns)},
            good_center_registered_s=round(took, 2), trigger_answers=answers[-3:])
        self.report("stalled plugin centers")
        self.assertEqual([a["Result"] for a in answers[-3:]], [0] * 3)
        self.assertEqual(len({a["DevRND"] for a in answers[-3:]}), 3)
        self.assertEqual(len(good.conns), 1)
        self.assertNoSpin(cpu, wall)
        self.assertFalse(daemon.ended.called)
