"""Issue 18 must-show, on 127.0.0.1 with the real daemon: a Key works once, and a flood
of wrong-Key triggers from the operation platform's own address does not stop the
heartbeat, a legitimate trigger or the LAN's Post1 answers.

``twistd -n cubegw`` registers with a scripted platform (heartbeat every 1 s).  For
``FLOOD_SECONDS`` the platform's socket sends ``FLOOD_RATE`` wrong-Key RequestPlug-in a
second; a legitimate trigger goes 2 s in, its captured copy is replayed 1 s later and
again after the flood (10+ s later), and with other content (another plugin center, a
RequestDistri), and 60 s after it was accepted.  A Post1 GET_VERSION is timed every ``PROBE_EVERY`` s.  The figures are
printed (``TRIGGER FLOOD FIGURES``) for docs/SECURITY.md.
"""

import json
import os
import time

import psutil
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import LoopingCall
from twisted.trial.unittest import TestCase

from cubegw import identity, wire

from tests.integration.support import (
    Daemon, Probe, free_tcp_port, lan_gateway_config, register_gateway, scratch_dir, sleep,
    udp_peer)

FLOOD_SECONDS = 10.0
FLOOD_RATE = 2000            # wrong-Key triggers a second
TICK = 0.01                  # s between bursts (FLOOD_RATE * TICK datagrams each)
PROBE_EVERY = 0.1            # s between Post1 probes
P99_BOUND = 0.05             # s: Post1 p99 during the flood (1 s on a busy box, see below)
WIFI = ("ChinaNet-TEST", "wifipass")
USERADMIN = "admin1"


class TriggerFloodTests(TestCase):
    timeout = 150

    @defer.inlineCallbacks
    def setUp(self):
        self.tmp = scratch_dir(self)
        self.dist, self.oper = udp_peer(self), udp_peer(self)
        self.config, self.lan_port = lan_gateway_config(
            self.tmp, trust={"plugin_centers": ["127.0.0.0/8"]})
        self.daemon = Daemon("cubegw", ["--config", self.config, "--mgt-url", "127.0.0.1",
                                        "--port", str(self.dist.address[1])], self.tmp).start()
        self.addCleanup(self.daemon.stop)
        yield self.daemon.wait_for(f"listening on 127.0.0.1:{self.lan_port}")
        register, self.gw_udp = yield register_gateway(self.dist, self.oper, hb_interval=1)
        self.sn = register["SN"]
        self.dev_rnd = register["DevRND"]
        self.center = protocol.ServerFactory.forProtocol(protocol.Protocol)
        self.center_port = free_tcp_port()
        port = reactor.listenTCP(self.center_port, self.center, interface="127.0.0.1")
        self.addCleanup(port.stopListening)

    def key(self):
        return identity.trigger_key(self.dev_rnd, self.sn, WIFI[0], WIFI[1], USERADMIN)

    def accepted(self):
        return sum("RequestPlug-in accepted" in line for line in self.daemon.output)

    @defer.inlineCallbacks
    def probe(self, n):
        start = time.monotonic()
        p = yield connectProtocol(TCP4ClientEndpoint(
            reactor, "127.0.0.1", self.lan_port, timeout=2), Probe())
        p.sendString(wire.encode_frame(wire.Post1(
            ID=n, Parameter={"CmdType": "GET_VERSION", "SequenceId": "%08X" % n})))
        reply = yield p.done
        return time.monotonic() - start, reply

    @defer.inlineCallbacks
    def test_flood_and_replays(self):
        """2,000 wrong-Key triggers/s for 10 s from the platform's address: every heartbeat
        on time, the legitimate trigger acted on, Post1 p99 < 50 ms; the captured trigger
        replayed after 1 s, 10+ s and with other content is acted on 0 times."""
        cpu0 = sum(psutil.Process(self.daemon.process.pid).cpu_times()[:2])
        # the gateway and this test each need a CPU: on a box busy with other work the
        # latency is the scheduler's, so the 50 ms bound holds only with CPUs to spare
        busy = os.getloadavg()[0] > (os.cpu_count() or 1) - 1.5
        bound = 1.0 if busy else P99_BOUND
        figures = {"wrong_key_sent": 0, "answers_minus_1": 0, "hb": []}
        answers = []
        oper = self.oper

        def received(data, addr):           # the platform: answers Hb at once
            msg = json.loads(data)
            if msg.get("RPCMethod") == "Hb":
                figures["hb"].append(time.monotonic())
                oper.send({"Result": 0, "Interval": 1}, addr)
            elif msg == {"Result": -1}:
                figures["answers_minus_1"] += 1
            else:
                answers.append(msg)
        oper.datagramReceived = received

        def trigger(key, **fields):
            oper.transport.write(wire.encode_datagram(dict(
                {"RPCMethod": "RequestPlug-in", "Key": key, "ServerAddr": "127.0.0.1",
                 "ServerPort": self.center_port}, **fields)), self.gw_udp)

        wrong = "F" * 32
        burst = int(FLOOD_RATE * TICK)

        def flood():
            for _ in range(burst):
                trigger(wrong)
            figures["wrong_key_sent"] += burst
        start = time.monotonic()
        loop = LoopingCall(flood)
        flood_done = loop.start(TICK)

        # the probes and the triggers, while the flood runs
        latencies, failures = [], []
        legit = replayed = None
        n = 0
        while time.monotonic() - start < FLOOD_SECONDS:
            yield sleep(PROBE_EVERY)
            n += 1
            elapsed = time.monotonic() - start
            if legit is None and elapsed >= 2:
                legit = dict(key=self.key())
                trigger(**legit)
                legit_at = time.monotonic()
            elif legit is not None and replayed is None and time.monotonic() - legit_at >= 1:
                trigger(**legit)                                  # replay after 1 s
                replayed = time.monotonic()
            try:
                took, reply = yield self.probe(n)
            except Exception as e:
                failures.append((n, repr(e)))
                continue
            if reply is None or reply.get("Result") != 0:
                failures.append((n, reply))
            latencies.append(took)
        loop.stop()
        yield flood_done
        flood_end = time.monotonic()
        yield sleep(0.5)
        accepted_in_flood = self.accepted()

        # the captured trigger again, 10+ s after it was accepted, and on other content
        while time.monotonic() - legit_at < 10.5:
            yield sleep(0.1)
        trigger(**legit)
        trigger(ServerAddr="127.0.0.2", **legit)
        trigger(ServerPort=self.center_port + 1, **legit)
        trigger(RPCMethod="RequestDistri", mode="1", **legit)
        yield sleep(1.0)
        acted_on_at_10 = self.accepted()
        # and 60 s after it was accepted, the heartbeat going on meanwhile
        while time.monotonic() - legit_at < 60.5:
            yield sleep(0.5)
        trigger(**legit)
        yield sleep(1.0)
        hb_after = len([t for t in figures["hb"] if t > legit_at + 50])

        hb = figures.pop("hb")
        in_flood = [t for t in hb if start <= t <= flood_end]
        gaps = [b - a for a, b in zip(in_flood, in_flood[1:])]
        latencies.sort()
        p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] if latencies else None
        figures.update({
            "flood_s": round(flood_end - start, 2),
            "heartbeats_in_flood": len(in_flood),
            "max_hb_gap_s": round(max(gaps), 3) if gaps else None,
            "legit_answers": [a for a in answers if a.get("Result") == 0],
            "acted_on": self.accepted(), "acted_on_during_flood": accepted_in_flood,
            "probes": len(latencies), "probe_failures": len(failures),
            "post1_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "post1_p99_ms": round(p99 * 1000, 1),
            "post1_max_ms": round(latencies[-1] * 1000, 1),
            "gateway_log_lines": len(self.daemon.output),
            "p99_bound_ms": bound * 1000, "load_1min": round(os.getloadavg()[0], 2),
            "gateway_cpu_s": round(sum(psutil.Process(
                self.daemon.process.pid).cpu_times()[:2]) - cpu0, 2)})
        legit_answers = figures.pop("legit_answers")
        figures["answers_result_0"] = len(legit_answers)
        print(f"\nTRIGGER FLOOD FIGURES: {json.dumps(figures)}")
        self.assertFalse(self.daemon.ended.called, self.daemon.text()[-2000:])
        self.assertEqual(failures, [])
        self.assertGreater(figures["wrong_key_sent"], FLOOD_RATE * FLOOD_SECONDS * 0.7)
        # the legitimate trigger acted on once; its answer and the 1 s resend's are the same
        self.assertEqual(figures["acted_on"], 1)
        self.assertEqual(accepted_in_flood, 1)
        self.assertEqual(acted_on_at_10, 1)
        self.assertGreater(hb_after, 5)          # still registered: the refusal is the Key
        self.assertEqual(len(legit_answers), 2)
        self.assertEqual(legit_answers[0], legit_answers[1])
        # heartbeats every 1 s through the flood
        self.assertGreaterEqual(len(in_flood), FLOOD_SECONDS - 2)
        self.assertLess(max(gaps), 1.6, [round(g, 3) for g in gaps])
        self.assertLess(p99, bound, [round(x * 1000, 1) for x in latencies[-5:]])
