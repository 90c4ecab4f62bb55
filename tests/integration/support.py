"""Real processes and real loopback sockets for the integration tests.

``Daemon`` runs ``twistd -n <plugin>`` from this source tree as a child process;
``UdpPeer`` is a scripted platform on 127.0.0.1 that queues what it receives.
"""

import json
import os
import socket

from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater
from twisted.protocols.basic import Int32StringReceiver

from cubegw.children import ChildDaemon, with_timeout
from cubegw.demo import free_port

from tests.helpers.config import LOOPBACK_MAC, gateway_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAC = LOOPBACK_MAC


def Daemon(plugin, args, cwd):
    """``twistd -n plugin`` from this source tree, as a child process."""
    return ChildDaemon(reactor, plugin, args, cwd, env={"PYTHONPATH": ROOT})


class UdpPeer(protocol.DatagramProtocol):
    """A platform socket on 127.0.0.1: received datagrams go to a queue, replies are by hand."""

    def __init__(self):
        self.queue = defer.DeferredQueue()

    def listen(self):
        self.port = reactor.listenUDP(0, self, interface="127.0.0.1")
        self.address = ("127.0.0.1", self.port.getHost().port)
        return self

    def datagramReceived(self, data, addr):
        self.queue.put((json.loads(data), addr))

    def next(self, timeout=10):
        """The next (message, source address)."""
        return with_timeout(reactor, self.queue.get(), timeout, "a datagram at the peer")

    def send(self, message, addr):
        self.transport.write(json.dumps(message).encode(), addr)


def sleep(seconds):
    return deferLater(reactor, seconds, lambda: None)


CHALLENGE = "00112233445566778899AABBCCDDEEFF"


@defer.inlineCallbacks
def register_gateway(dist, oper, hb_interval=30):
    """Play distribution and operation for a starting gateway until its first Hb.

    Returns ``(register_message, hb_source_address)``: the Register carries the DevRND
    the trigger Key is made from; triggers go to the heartbeat's source.
    """
    def reply(peer, method, answer):
        d = peer.next()

        def check(received):
            msg, addr = received
            if msg.get("RPCMethod") != method:
                raise AssertionError(f"expected {method}, got {msg}")
            peer.send(answer(msg, addr), addr)
            return msg, addr
        return d.addCallback(check)

    yield reply(dist, "BootFirst", lambda m, a: {"Result": 0, "ChallengeCode": CHALLENGE})
    yield reply(dist, "RegisterFirst", lambda m, a: {
        "Result": 0, "ServerAddr": "127.0.0.1", "ServerPort": oper.address[1]})
    yield reply(oper, "Boot", lambda m, a: {"Result": 0, "ChallengeCode": CHALLENGE})
    register, _ = yield reply(oper, "Register", lambda m, a: {"Result": 2})
    hb, source = yield reply(oper, "Hb", lambda m, a: {"Result": 0, "Interval": hb_interval})
    return register, source


def free_tcp_port():
    """A TCP port free on 127.0.0.1 right now."""
    return free_port(socket.SOCK_STREAM)


def scratch_dir(testcase):
    """An absolute, empty directory of the test's own (daemons run with another cwd)."""
    tmp = os.path.abspath(testcase.mktemp())
    os.makedirs(tmp)
    return tmp


def udp_peer(testcase):
    """A listening UdpPeer that stops with the test."""
    peer = UdpPeer().listen()
    testcase.addCleanup(peer.port.stopListening)
    return peer


def lan_gateway_config(tmp, lan=None, **extra):
    """A gateway config whose LAN server listens on 127.0.0.1 at a free LocatePort.

    Returns (config path, LocatePort); the port is written into the store with cubegw-ctl,
    as an operator would.
    """
    from cubegw.ctl import main as ctl_main
    port = free_tcp_port()
    path = gateway_config(tmp, lan=dict({"addresses": ["127.0.0.1"]}, **(lan or {})), **extra)
    with open(os.devnull, "w") as devnull:
        if ctl_main(["--config", path, "mgt", "set", "LocatePort", str(port)], out=devnull):
            raise AssertionError("cubegw-ctl could not set LocatePort")
    return path, port


def _ipv6_loopback():
    """Whether this machine can bind the IPv6 loopback ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


NO_IPV6 = None if _ipv6_loopback() else "this machine has no IPv6 loopback (::1)"


class Probe(Int32StringReceiver):
    """One Post1; ``done`` fires with the reply dict, or None if closed without one."""

    def __init__(self):
        self.done = defer.Deferred()

    def stringReceived(self, data):
        if not self.done.called:
            self.done.callback(json.loads(data))

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(None)


class FrameAsker(Int32StringReceiver):
    """A gateway's end of a plugin-center connection: ``ask`` sends a frame and waits
    (``timeout`` s at most) for the next one."""

    def __init__(self, timeout=10):
        self.frames = defer.DeferredQueue()
        self.timeout = timeout

    def stringReceived(self, data):
        self.frames.put(json.loads(data))

    def ask(self, message):
        self.sendString(json.dumps(message).encode())
        return with_timeout(reactor, self.frames.get(), self.timeout,
                            "a plugin-center reply")
