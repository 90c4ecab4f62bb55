"""The whole gateway as ``tap.makeService`` wires it, on a memory reactor."""

import os

from twisted.internet.testing import MemoryReactorClock

from cubegw import logs, tap

from tests.helpers.config import gateway_config


class UdpMemoryReactor(MemoryReactorClock):
    """MemoryReactorClock with listenUDP recorded (the registration service needs one)."""

    def __init__(self):
        super().__init__()
        self.udpServers = []

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        self.udpServers.append((port, protocol, interface, maxPacketSize))

        class Port:
            def getHost(self_):
                return None

            def stopListening(self_):
                return None
        protocol.makeConnection(_NullDatagramTransport())
        return Port()


class _NullDatagramTransport:
    def write(self, data, addr):
        pass

    def getHost(self):
        return None


def wire_gateway(testcase, reactor, **config):
    """``tap.makeService`` on ``reactor`` for a loopback config with ``config`` merged in."""
    tmp = os.path.abspath(testcase.mktemp())
    os.makedirs(tmp)
    options = tap.Options()
    options.parseOptions(["--config", gateway_config(tmp, **config)])
    # makeService sets the log level: put it back
    testcase.addCleanup(logs.set_level, logs.level())
    return tap.makeService(options, reactor)
