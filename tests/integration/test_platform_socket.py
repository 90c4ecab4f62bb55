"""The platform's UDP sockets on a real 127.0.0.1 port."""

import socket

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from cubegw.platform.operation import OperationProtocol


class ReceiveBufferTests(TestCase):
    def test_receive_buffer_enlarged(self):
        """A platform socket asks for a large receive buffer, so load bursts queue instead of dropping."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
            default = plain.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        proto = OperationProtocol(None, None, None, reactor)
        port = reactor.listenUDP(0, proto, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        size = port.getHandle().getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self.assertGreater(size, default)
