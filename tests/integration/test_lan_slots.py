"""Issue 18 must-show, on loopback with the real daemon: five slow LAN clients from one
host (127.0.0.2) that reconnect as soon as they are dropped cannot keep a second host
(127.0.0.1) from having its Post1 answered within 1 s."""

import json
import time

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from cubegw import wire

from tests.integration.support import (
    Daemon, Probe, lan_gateway_config, scratch_dir, sleep, udp_peer)

SLOW_HOST, OTHER_HOST = "127.0.0.2", "127.0.0.1"
SLOW_CLIENTS = 5
ROUNDS = 5


class Slow(protocol.Protocol):
    """Sends one byte and then nothing; reconnects at once when dropped."""

    def __init__(self, again):
        self.again = again

    def connectionMade(self):
        self.transport.write(b"\0")

    def connectionLost(self, reason):
        self.again()


class LanSlotTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_slow_host_cannot_deny_another(self):
        """Five slow clients from 127.0.0.2, reconnecting at once: every Post1 from
        127.0.0.1 is answered within 1 s."""
        tmp = scratch_dir(self)
        dist = udp_peer(self)
        config, port = lan_gateway_config(tmp)
        daemon = Daemon("cubegw", ["--config", config, "--mgt-url", "127.0.0.1",
                                   "--port", str(dist.address[1])], tmp).start()
        self.addCleanup(daemon.stop)
        yield daemon.wait_for(f"listening on 127.0.0.1:{port}")
        stopping = [False]
        counts = {"slow_connections": 0}
        open_slow = []

        def slow_one():
            if stopping[0]:
                return
            counts["slow_connections"] += 1
            d = connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=2,
                                                   bindAddress=(SLOW_HOST, 0)), Slow(slow_one))
            d.addCallbacks(open_slow.append, lambda f: reactor.callLater(0.05, slow_one))
        for _ in range(SLOW_CLIENTS):
            slow_one()
        yield sleep(0.5)
        latencies = []
        for n in range(ROUNDS):
            start = time.monotonic()
            p = yield connectProtocol(TCP4ClientEndpoint(reactor, OTHER_HOST, port, timeout=2),
                                      Probe())
            p.sendString(wire.encode_frame(wire.Post1(
                ID=n, Parameter={"CmdType": "GET_VERSION", "SequenceId": "%08X" % n})))
            reply = yield p.done
            latencies.append(time.monotonic() - start)
            self.assertEqual((reply or {}).get("Result"), 0, reply)
            yield sleep(0.2)
        stopping[0] = True
        for s in open_slow:
            if s.transport.connected:
                s.transport.abortConnection()
        counts["post1_ms"] = [round(x * 1000, 1) for x in latencies]
        print(f"\nLAN SLOT FIGURES: {json.dumps(counts)}")
        self.assertLess(max(latencies), 1.0)
        self.assertGreater(counts["slow_connections"], SLOW_CLIENTS)
