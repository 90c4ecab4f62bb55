"""The operation platform's read loop (``HeartbeatPort``) on real loopback sockets:
routine heartbeats to ``routine_hb``, the rest to ``general_datagram``, with what
Twisted's own loop keeps (a byte budget a wake-up, IPv6 addresses cut to host and port,
a failing datagram logged without stopping the loop)."""

import socket

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from cubegw.platform import tap
from cubegw.platform.config import Endpoint, PlatformConfig
from cubegw.platform.operation import HeartbeatPort


class Recorder:
    """A protocol with the two entry points the port calls; ``b"hb"`` datagrams are
    routine, ``b"boom"`` makes the routine check fail."""

    def __init__(self):
        self.routine, self.general = [], []

    def makeConnection(self, transport):
        self.transport = transport

    def doStart(self):
        pass

    def doStop(self):
        pass

    def routine_hb(self, data, addr):
        if data == b"boom":
            raise ValueError("a datagram that breaks the handler")
        if data.startswith(b"hb"):
            self.routine.append((data, addr))
            return True
        return False

    def general_datagram(self, data, addr):
        self.general.append((data, addr))


class HeartbeatPortTests(TestCase):

    def listen(self, family=socket.AF_INET, host="127.0.0.1"):
        self.proto = Recorder()
        self.port = HeartbeatPort(0, self.proto, interface=host, reactor=reactor)
        self.port.startListening()
        self.addCleanup(self.port.stopListening)
        self.client = socket.socket(family, socket.SOCK_DGRAM)
        self.addCleanup(self.client.close)
        self.client.bind((host, 0))
        self.to = (host, self.port.getHost().port)

    def send(self, *datagrams):
        for data in datagrams:
            self.client.sendto(data, self.to)

    def test_routine_and_the_rest(self):
        """Each datagram goes to routine_hb; those it does not take to
        general_datagram, in order, with the sender's (host, port)."""
        self.listen()
        self.send(b"hb1", b"Boot", b"hb2", b"")
        self.port.doRead()
        me = self.client.getsockname()
        self.assertEqual(self.proto.routine, [(b"hb1", me), (b"hb2", me)])
        self.assertEqual(self.proto.general, [(b"Boot", me), (b"", me)])
        self.port.doRead()          # nothing queued: EAGAIN ends the loop quietly
        self.assertEqual(len(self.proto.routine) + len(self.proto.general), 4)

    def test_byte_budget_a_wake_up(self):
        """One wake-up reads at most maxThroughput bytes; the rest waits for the next."""
        self.listen()
        self.port.maxThroughput = 5
        self.send(b"hb-1", b"hb-2", b"hb-3")
        self.port.doRead()
        self.assertEqual([d for d, _ in self.proto.routine], [b"hb-1", b"hb-2"])
        self.port.doRead()
        self.assertEqual([d for d, _ in self.proto.routine], [b"hb-1", b"hb-2", b"hb-3"])

    def test_failing_datagram_logged_loop_goes_on(self):
        """A handler that raises is logged; the datagrams after it are still read."""
        self.listen()
        self.send(b"hb1", b"boom", b"hb2")
        self.port.doRead()
        self.assertEqual([d for d, _ in self.proto.routine], [b"hb1", b"hb2"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_ipv6_address_is_host_and_port(self):
        """On IPv6 the sender's address is cut to (host, port), as Twisted's port does."""
        try:
            self.listen(socket.AF_INET6, "::1")
        except OSError as e:  # pragma: no cover - a host without IPv6 loopback
            self.skipTest(f"no IPv6 loopback here: {e}")
        self.send(b"hb6")
        self.port.doRead()
        (data, addr), = self.proto.routine
        self.assertEqual(addr, self.client.getsockname()[:2])

    def test_cubeplat_operation_socket_is_one(self):
        """cubeplat's operation socket, on the real reactor, reads with a HeartbeatPort."""
        config = PlatformConfig(operation=Endpoint("127.0.0.1", 0))
        protocol, server = tap.build_operation(reactor, config, None, None)
        server.startService()
        self.addCleanup(server.stopService)
        self.assertIsInstance(protocol.transport, HeartbeatPort)
