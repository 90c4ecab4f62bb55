"""The platform on the IPv6 loopback ::1: the plugin center under twistd, a UDP platform."""

import json
import os
import re
import socket

import yaml
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP6ClientEndpoint, connectProtocol
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from cubegw import identity, wire
from cubegw.children import with_timeout
from cubegw.platform.config import DeviceConfig, PlatformConfig
from cubegw.platform.distribution import DistributionProtocol
from cubegw.platform.faults import FaultRules
from cubegw.platform.registry import MemoryStore, Registry
from tests.integration.support import NO_IPV6, Daemon, FrameAsker, scratch_dir

MAC = "64D95420214B"
SN = "64D954-D6AEE64D95420214B"
BOOT = {"RPCMethod": "Boot", "Vendor": "TestVendor", "Model": "HG-1", "MAC": MAC, "SN": SN,
        "FirmwareVer": "1.2.3", "HardwareVer": "HW1", "IPAddr": "192.0.2.10",
        "LOID": "0755123456"}


class UdpClient(DatagramProtocol):
    """A gateway's UDP socket: datagrams received go to a queue."""

    def __init__(self):
        self.replies = defer.DeferredQueue()

    def datagramReceived(self, data, addr):
        self.replies.put(json.loads(data))

    def ask(self, message, addr):
        self.transport.write(json.dumps(message).encode(), addr)
        return with_timeout(reactor, self.replies.get(), 10, "a UDP reply")


class PluginCenterIPv6Tests(TestCase):
    skip = NO_IPV6

    @defer.inlineCallbacks
    def test_twistd_plugin_center_on_ipv6_loopback(self):
        """twistd cubeplat with plugin_center.host "::1" listens on [::1] and answers a
        gateway's Boot and Register there (once it registered from ::1 with the operation
        platform, also on ::1)."""
        tmp = scratch_dir(self)
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        oper_port = probe.getsockname()[1]
        probe.close()
        config = {
            "distribution": {"host": "127.0.0.1", "port": 0},
            "operation": {"host": "::1", "port": oper_port},
            "plugin_center": {"host": "::1", "port": 0},
            "api": {"host": "127.0.0.1", "port": 0},
            "db": os.path.join(tmp, "cubeplat.db"),
            "devices": [{"mac": MAC, "sn": SN}],
        }
        path = os.path.join(tmp, "cubeplat.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        plat = Daemon("cubeplat", ["--config", path], tmp).start()
        self.addCleanup(plat.stop)
        yield plat.wait_for("cubeplat ready", timeout=30)
        port = int(re.search(r"plugin center listening on \[::1\]:(\d+)", plat.text()).group(1))

        gateway = UdpClient()
        udp = reactor.listenUDP(0, gateway, interface="::1")
        self.addCleanup(udp.stopListening)
        boot = yield gateway.ask(dict(BOOT), ("::1", oper_port))
        yield gateway.ask({"RPCMethod": "Register", "MAC": MAC, "SN": SN, "DevRND": "AB" * 16,
                           "CheckSN": identity.check_sn(boot["ChallengeCode"], SN),
                           "UserID": ""}, ("::1", oper_port))

        client = yield connectProtocol(TCP6ClientEndpoint(reactor, "::1", port), FrameAsker())
        self.addCleanup(client.transport.loseConnection)
        self.assertEqual(client.transport.getPeer().host, "::1")
        boot = yield client.ask(BOOT)
        self.assertEqual(boot["Result"], 0)
        register = yield client.ask({"RPCMethod": "Register", "MAC": MAC, "SN": SN,
                                     "CheckSN": identity.check_sn(boot["ChallengeCode"], SN)})
        self.assertEqual(register, {"Result": 0})
        yield plat.wait_for(f"{MAC} plugin Register -> Result 0")


class UDPIPv6Tests(TestCase):
    skip = NO_IPV6

    @defer.inlineCallbacks
    def test_distribution_on_ipv6_loopback(self):
        """A UDP platform bound on ::1 answers a BootFirst from an IPv6 peer."""
        registry = Registry(MemoryStore(), Clock())
        yield registry.load()
        registry.preset([DeviceConfig(MAC, sn=SN)])
        protocol = DistributionProtocol(registry, FaultRules(), PlatformConfig(), Clock())
        port = reactor.listenUDP(0, protocol, interface="::1")
        self.addCleanup(port.stopListening)
        peer = DatagramPeer()
        peer_port = reactor.listenUDP(0, peer, interface="::1")
        self.addCleanup(peer_port.stopListening)
        peer.transport.write(wire.encode_datagram(dict(BOOT, RPCMethod="BootFirst",
                                                       Version="1.0")),
                             ("::1", port.getHost().port))
        reply, source = yield with_timeout(reactor, peer.datagrams.get(), 10,
                                           "the BootFirst reply")
        self.assertEqual((reply["Result"], source), (0, ("::1", port.getHost().port)))


class DatagramPeer(DatagramProtocol):
    """A gateway's UDP socket: datagrams received go to a queue."""

    def __init__(self):
        self.datagrams = defer.DeferredQueue()

    def datagramReceived(self, data, addr):
        self.datagrams.put((json.loads(data), addr))
