# The baseline daemon: ``twistd -n --python bench/baseline.tac``.
#
# A bare twistd process importing the same third-party packages as cubegw (twisted,
# zope.interface, psutil, yaml) and doing nothing.  With BENCH_READY=host:port it sends
# one datagram once the reactor runs (the start-up baseline: twistd start to reactor
# running).
import os
import socket

import psutil  # noqa: F401
import yaml  # noqa: F401
import zope.interface  # noqa: F401
from twisted.application import service
from twisted.internet import reactor

application = service.Application("bench-baseline")

_ready = os.environ.get("BENCH_READY")
if _ready:
    host, _, port = _ready.rpartition(":")

    def _running():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b'{"ready":1}', (host, int(port)))

    reactor.callWhenRunning(_running)
