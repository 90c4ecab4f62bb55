"""The LAN Post1 server never faces the WAN (protocol.md section 8), on a MemoryReactor.

``LanServer`` on its own, and the whole ``twistd cubegw`` wiring (``tap.makeService``),
must listen on the configured LAN addresses only: never on ``0.0.0.0``, ``""``, ``::``,
``::0`` or another spelling of "every interface", whatever else is configured, at start
and after LocatePort moves.
"""


from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from cubegw import lan
from cubegw.pluginchannel import PluginChannel
from cubegw.watch import WanWatch

from tests.helpers.gateway import UdpMemoryReactor, wire_gateway
from tests.helpers.lan import FakeDispatcher, FakeStore

LAN = ("192.168.1.1", "10.0.0.1", "fd00::1")
WILDCARD_SPELLINGS = ("0.0.0.0", "", "::", "::0", " 0.0.0.0 ", "*", "0:0:0:0:0:0:0:0",
                      "0::0", "[::]", "::ffff:0.0.0.0", "0", "0.0", "00.000.0.0")


def tcp_interfaces(reactor):
    return [interface for _, _, _, interface in reactor.tcpServers]


def capture(testcase):
    events = []
    globalLogPublisher.addObserver(events.append)
    testcase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


class WildcardTests(SynchronousTestCase):
    def test_every_spelling_is_a_wildcard(self):
        """Every spelling of "all addresses" counts as a wildcard."""
        for spelling in WILDCARD_SPELLINGS:
            self.assertTrue(lan.is_wildcard(spelling), spelling)

    def test_lan_addresses_are_not(self):
        """LAN, loopback and link-local addresses are not wildcards."""
        for address in LAN + ("127.0.0.1", "::1", "fe80::1%br-lan", "192.168.0.0"):
            self.assertFalse(lan.is_wildcard(address), address)


class LanServerExposureTests(SynchronousTestCase):
    def start(self, addresses):
        self.reactor = MemoryReactorClock()
        self.store = FakeStore()
        server = lan.LanServer(addresses, self.store, FakeDispatcher(), self.reactor)
        server.startService()
        self.addCleanup(server.stopService)
        return server

    def assertOnlyLan(self, expected):
        interfaces = tcp_interfaces(self.reactor)
        for interface in interfaces:
            self.assertFalse(lan.is_wildcard(interface),
                             f"LAN server listens on wildcard {interface!r}")
        self.assertEqual(sorted(interfaces), sorted(expected))

    def test_each_wildcard_among_lan_addresses_refused(self):
        """A wildcard mixed into lan.addresses is refused; the LAN addresses are served."""
        for spelling in WILDCARD_SPELLINGS:
            events = capture(self)
            self.start((LAN[0], spelling, LAN[2]))
            self.assertOnlyLan([LAN[0], LAN[2]])
            self.assertTrue([e for e in events if "wildcard" in e.get("log_format", "")],
                            spelling)

    def test_only_wildcards_listens_nowhere(self):
        """Only wildcards configured: nothing listens (never fall back to "all")."""
        self.start(WILDCARD_SPELLINGS)
        self.assertEqual(self.reactor.tcpServers, [])

    def test_nothing_configured_listens_nowhere(self):
        """No LAN address configured: nothing listens."""
        self.start(())
        self.assertEqual(self.reactor.tcpServers, [])

    def test_relisten_after_locateport_change_stays_on_lan(self):
        """Moving to a new LocatePort binds the LAN addresses again, nothing more."""
        server = self.start(("::", LAN[0], "0.0.0.0", LAN[1]))
        self.store.mgt["LocatePort"] = 18000
        server.relisten()
        self.assertOnlyLan([LAN[0], LAN[1], LAN[0], LAN[1]])
        self.assertEqual([p for p, _, _, _ in self.reactor.tcpServers],
                         [17998, 17998, 18000, 18000])


class WanAddressTests(SynchronousTestCase):
    """lan.addresses never includes the WAN interface's address (issue 18 point 6)."""

    def start(self, addresses, wan_ip):
        self.reactor = MemoryReactorClock()
        self.wan = wan_ip
        server = lan.LanServer(addresses, FakeStore(), FakeDispatcher(), self.reactor,
                               wan_ip=lambda: self.wan)
        server.startService()
        self.addCleanup(server.stopService)
        return server

    def test_wan_address_refused(self):
        """The WAN address among lan.addresses is not listened on, logged as an error;
        the other LAN addresses are served."""
        for wan_ip, spelling in (("100.64.1.2", "100.64.1.2"), ("100.64.1.2", " 100.64.1.2"),
                                 ("100.64.1.2", "::ffff:100.64.1.2"),
                                 ("2001:db8::2", "[2001:db8::2]")):
            events = capture(self)
            self.start((LAN[0], spelling), wan_ip)
            self.assertEqual(tcp_interfaces(self.reactor), [LAN[0]], spelling)
            self.assertTrue([e for e in events if "the WAN interface's address" in
                             e.get("log_format", "") and e["log_level"].name == "error"],
                            spelling)

    def test_checked_again_when_relistening(self):
        """After the WAN address changed, moving LocatePort refuses the new one."""
        server = self.start((LAN[0], LAN[1]), None)
        self.wan = LAN[1]
        server.relisten(force=True)
        self.assertEqual(tcp_interfaces(self.reactor), [LAN[0], LAN[1], LAN[0]])

    def test_unknown_or_loopback_wan(self):
        """No WAN address, or a loopback one (a lab on lo, which faces no WAN): every LAN
        address is served."""
        self.start(("127.0.0.1", LAN[0]), "127.0.0.1")
        self.assertEqual(tcp_interfaces(self.reactor), ["127.0.0.1", LAN[0]])
        self.start((LAN[0],), None)
        self.assertEqual(tcp_interfaces(self.reactor), [LAN[0]])
        self.assertFalse(lan.is_wan_address("not an address", "100.64.1.2"))


class TapWiringExposureTests(SynchronousTestCase):
    """``twistd cubegw`` as wired by ``tap.makeService``, on a memory reactor."""

    def make(self, addresses):
        self.reactor = UdpMemoryReactor()
        top = wire_gateway(self, self.reactor, lan={"addresses": list(addresses)})
        top.startService()
        self.addCleanup(top.stopService)
        return top

    def test_listens_only_on_configured_lan_addresses(self):
        """The wired daemon listens at LocatePort on each configured LAN address, nowhere else."""
        self.make(["127.0.0.1", "127.0.0.2"])
        self.assertEqual(tcp_interfaces(self.reactor), ["127.0.0.1", "127.0.0.2"])
        self.assertEqual([p for p, _, _, _ in self.reactor.tcpServers], [17998, 17998])

    def test_wildcards_in_config_not_bound(self):
        """Wildcards in the configured addresses are skipped; the others are bound."""
        self.make(["0.0.0.0", "127.0.0.1", "::", "", "::0"])
        self.assertEqual(tcp_interfaces(self.reactor), ["127.0.0.1"])

    def test_wan_address_from_the_wan_watch(self):
        """The wired LAN server asks the WAN watch for the WAN interface's address."""
        top = self.make(["127.0.0.1"])
        [server] = [s for s in top if isinstance(s, lan.LanServer)]
        [wan] = [s for s in top if isinstance(s, WanWatch)]
        self.assertEqual(server.wan_ip, wan.wan_ip)

    def test_no_lan_address_no_tcp_listener(self):
        """With no LAN address the daemon serves no TCP at all; only the UDP session."""
        self.make([])
        self.assertEqual(self.reactor.tcpServers, [])
        self.assertEqual([i for _, _, i, _ in self.reactor.udpServers], ["127.0.0.1"])


class TapTimingTests(SynchronousTestCase):
    """The timing keys of the configuration reach the parts ``tap.makeService`` wires."""

    def test_timeouts_and_backoff_from_config(self):
        """The call, plugin reply and retry timings of the config reach the dispatcher, the
        plugin channel and the LAN server."""
        top = wire_gateway(self, UdpMemoryReactor(), lan={"addresses": ["127.0.0.1"]},
                           timing={"call_timeout": 4, "plugin_reply_timeout": 7,
                                   "plugin_retry_initial": 2, "plugin_retry_max": 5})
        [channel] = [s for s in top if isinstance(s, PluginChannel)]
        [lan_server] = [s for s in top if isinstance(s, lan.LanServer)]
        self.assertEqual(channel.dispatcher.timeout, 4)
        self.assertIs(lan_server.factory.dispatcher, channel.dispatcher)
        self.assertEqual((channel.reply_timeout, channel.connect_timeout), (7, 7))
        self.assertTrue(2 <= channel.backoff(0) < 3)
        self.assertTrue(5 <= channel.backoff(50) < 6)
