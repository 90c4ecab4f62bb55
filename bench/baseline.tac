# The baseline daemon: ``twistd -n --python bench/baseline.tac``.
#
# A bare twistd process importing the same third-party packages as cubegw (twisted,
# zope.interface, psutil, yaml) and doing nothing.  With BENCH_READY=host:port it sends
# one datagram once the reactor runs (the start-up baseline: twistd start to reactor
# running).  With BENCH_HB=host:port it is the heartbeat baseline: every second a timer
# encodes an Hb as JSON and sends it, and each reply is decoded (no state, no logging).
import json
import os
import socket

import psutil  # noqa: F401
import yaml  # noqa: F401
import zope.interface  # noqa: F401
from twisted.application import service
from twisted.internet import reactor, task
from twisted.internet.protocol import DatagramProtocol

application = service.Application("bench-baseline")

_ready = os.environ.get("BENCH_READY")
if _ready:
    host, _, port = _ready.rpartition(":")

    def _running():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b'{"ready":1}', (host, int(port)))

    reactor.callWhenRunning(_running)


class _BareHeartbeat(DatagramProtocol):
    def __init__(self, to):
        self.to = to

    def beat(self):
        hb = {"RPCMethod": "Hb", "MAC": "02BE4C0000FF", "FLAG": "0"}
        self.transport.write(json.dumps(hb, separators=(",", ":")).encode(), self.to)

    def datagramReceived(self, data, addr):
        json.loads(data)


_hb = os.environ.get("BENCH_HB")
if _hb:
    host, _, port = _hb.rpartition(":")
    _bare = _BareHeartbeat((host, int(port)))
    reactor.listenUDP(0, _bare, interface=host)
    task.LoopingCall(_bare.beat).start(1.0, now=False)
