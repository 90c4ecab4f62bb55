"""WAN capabilities over fixture files and on this machine, and the new backend methods."""

import errno
import os
import socket

import psutil
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cubegw.backend import (
    BackendError, ISystemBackend, LinuxBackend, TempDirBackend, firewall_block_rules, parse_arp,
    parse_dhcp_leases, parse_resolv_conf, parse_routes,
)
from cubegw.capabilities import IGatewayCapability, network
from cubegw.store import uci

from tests.helpers import psutil_net_if_stats
from tests.helpers.dispatch import TELECOMADMIN, Harness
from tests.helpers.openwrt import ARP, LEASES, RESOLV_AUTO, ROUTE, openwrt, write


PPPOE_NETWORK = """
config interface 'lan'
	option device 'br-lan'
	option proto 'static'
	option ipaddr '192.168.1.1'
	option netmask '255.255.255.0'

config interface 'wan'
	option device 'eth0.2'
	option proto 'pppoe'
	option username 'old'
	option password 'oldpw'
"""


class NoEthtool:
    """psutil on a system where the SIOCETHTOOL ioctl is not implemented."""

    cpu_times = staticmethod(psutil.cpu_times)

    def net_if_stats(self):
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))


class ParserTests(SynchronousTestCase):
    """The /proc, resolv.conf and lease parsers of the backend."""

    def test_routes(self):
        """/proc/net/route's hex addresses become dotted quads."""
        rows = parse_routes(ROUTE)
        self.assertEqual(rows[0], {"iface": "wan", "destination": "0.0.0.0",
                                   "gateway": "192.168.0.1", "flags": 3, "mask": "0.0.0.0"})
        self.assertEqual(rows[1]["mask"], "255.255.255.0")

    def test_resolv(self):
        """Nameservers in order, scope ids dropped, comments skipped."""
        self.assertEqual(parse_resolv_conf(RESOLV_AUTO), ["192.168.0.1", "8.8.8.8", "fe80::1"])

    def test_arp_and_leases(self):
        """Only complete ARP entries; a '*' hostname is empty."""
        self.assertEqual([r["mac"] for r in parse_arp(ARP)],
                         ["AA:BB:CC:00:00:01", "AA:BB:CC:00:00:99"])
        leases = parse_dhcp_leases(LEASES)
        self.assertEqual(leases[1], {"expires": 1700000500, "mac": "AA:BB:CC:00:00:02",
                                     "ip": "192.168.1.102", "hostname": ""})

    def test_firewall_rules(self):
        """Our block rules are replaced, other rules kept."""
        package = uci.parse("config rule\n\toption name 'Allow-Ping'\n"
                            "config rule\n\toption name 'cubegw_block_AABBCC000001'\n")
        firewall_block_rules(package, ["aa:bb:cc:00:00:02"])
        names = [s.options["name"] for s in package.sections]
        self.assertEqual(names, ["Allow-Ping", "cubegw_block_AABBCC000002"])
        self.assertEqual(package.sections[1].options["target"], "REJECT")


class BackendNetworkTests(SynchronousTestCase):
    """The network methods of both backends."""

    def test_verify(self):
        """Both backends provide the extended ISystemBackend; the providers theirs."""
        self.assertTrue(verifyObject(ISystemBackend, LinuxBackend(Clock())))
        self.assertTrue(verifyObject(ISystemBackend, TempDirBackend(self.mktemp(), Clock())))
        for provider in (network.wan_info_provider, network.wan_rate, network.network_dns,
                         network.pppoe):
            self.assertTrue(verifyObject(IGatewayCapability, provider))

    def test_linux_reads_psutil(self):
        """LinuxBackend's interface data matches psutil."""
        backend = LinuxBackend(Clock())
        addrs = backend.net_if_addrs()
        self.assertEqual(set(addrs), set(psutil.net_if_addrs()))
        lo = [a["address"] for a in addrs["lo"] if a["family"] == "ipv4"]
        self.assertIn("127.0.0.1", lo)
        self.assertTrue(backend.net_if_stats()["lo"]["isup"])
        self.assertIn("lo", backend.net_io_counters())

    def test_linux_stats_without_ethtool(self):
        """psutil failing for one interface's ioctl (ENOSYS under qemu-user) fails its
        whole net_if_stats: LinuxBackend reads every interface from sysfs instead."""
        root = self.mktemp()
        for name, flags, operstate, speed in [("eth0", "0x1003", "up", "1000"),
                                              ("lo", "0x9", "unknown", None),
                                              ("eth1", "0x1003", "down", "-1"),
                                              ("wlan0", "0x1002", "down", None)]:
            write(root, f"/sys/class/net/{name}/flags", flags + "\n")
            write(root, f"/sys/class/net/{name}/operstate", operstate + "\n")
            write(root, f"/sys/class/net/{name}/mtu", "1500\n")
            if speed is not None:  # absent: as unreadable as a down link's (EINVAL)
                write(root, f"/sys/class/net/{name}/speed", speed + "\n")
        backend = LinuxBackend(Clock(), root=root, psutil_module=NoEthtool())
        self.assertEqual(backend.net_if_stats(), {
            "eth0": {"isup": True, "speed": 1000, "mtu": 1500},
            "lo": {"isup": True, "speed": 0, "mtu": 1500},
            "eth1": {"isup": False, "speed": 0, "mtu": 1500},
            "wlan0": {"isup": False, "speed": 0, "mtu": 1500}})

    def test_linux_stats_sysfs_as_psutil(self):
        """On this machine the sysfs reading has psutil's interfaces, up or not."""
        backend = LinuxBackend(Clock())
        self.assertEqual({n: st["isup"] for n, st in backend._net_if_stats_sysfs(None).items()},
                         {n: st.isup for n, st in psutil_net_if_stats().items()})

    def test_linux_stats_unreadable(self):
        """With neither psutil nor sysfs, a capability fails with the reason (Status 1),
        not an internal error."""
        backend = LinuxBackend(Clock(), root=self.mktemp(), psutil_module=NoEthtool())
        self.assertRaises(BackendError, backend.net_if_stats)
        h = Harness(self, providers=[network.WanInfo()], backend=backend)
        p = h.call(self, "QUERY_WAN_INFO", WANName="eth0").payload
        self.assertEqual(p["Status"], "1")
        self.assertIn("network interfaces unreadable", p["FailReason"])
        self.assertIn("Function not implemented", p["FailReason"])

    def test_apply_off_openwrt(self):
        """apply is a no-op reporting 'not OpenWrt' without /etc/openwrt_release."""
        backend = LinuxBackend(Clock(), root=self.mktemp())
        self.assertEqual(self.successResultOf(backend.apply("network")), "not OpenWrt")

    def test_apply_on_openwrt(self):
        """On OpenWrt apply runs the reload command; a failure is a reason."""
        h = Harness(self)
        write(h.dir, "/etc/openwrt_release", "x")
        self.assertIsNone(self.successResultOf(h.backend.apply("network")))
        self.assertEqual(h.backend.commands, [["ubus", "call", "network", "reload"]])
        h.backend.results["wifi"] = (1, b"", b"")
        self.assertIn("reload failed", self.successResultOf(h.backend.apply("wireless")))


class WanTests(SynchronousTestCase):
    """QUERY_WAN_NUM, QUERY_WAN_INFO, QUERY_WAN_REALRATE over an OpenWrt fixture."""

    def setUp(self):
        self.rate = network.WanRate()
        self.h = openwrt(Harness(self, providers=[network.WanInfo(), self.rate,
                                                  network.NetworkDns(), network.Pppoe()]))

    def test_wan_num(self):
        """The UCI interfaces named wan* are the WANs."""
        payload = self.h.call(self, "QUERY_WAN_NUM").payload
        self.assertEqual((payload["Num"], payload["List"]), ("2", ["wan", "wan6"]))

    def test_field_wan_names(self):
        """QUERY_WAN_NUM also has the field's NUM and Description (its WAN names); such a
        name is a WANName of QUERY_WAN_INFO and QUERY_WAN_REALRATE."""
        payload = self.h.call(self, "QUERY_WAN_NUM").payload
        self.assertEqual(payload["NUM"], "2")
        names = payload["Description"].split("/")
        self.assertEqual(names[0], "1_INTERNET_R_VID_35")
        self.assertTrue(names[1].startswith("2_INTERNET_R_VID_"), names)
        by_field = self.h.call(self, "QUERY_WAN_INFO", WANName=names[0]).payload
        by_uci = self.h.call(self, "QUERY_WAN_INFO", WANName="wan").payload
        self.assertEqual((by_field["IPAddress"], by_field["VLAN"]),
                         (by_uci["IPAddress"], by_uci["VLAN"]))
        rate = self.h.call(self, "QUERY_WAN_REALRATE", WANName=names[0], USER="telecomadmin",
                           PASSWORD=TELECOMADMIN).payload
        self.assertEqual(rate["Status"], "0", rate)
        self.assertEqual(self.h.call(self, "QUERY_WAN_INFO",
                                     WANName="9_INTERNET_R_VID_35").payload["Status"], "1")

    def test_wan_info(self):
        """Address, mask, gateway from the routes, DNS from resolv.conf.auto, VLAN."""
        payload = self.h.call(self, "QUERY_WAN_INFO", WANName="wan").payload
        self.assertEqual(payload["Status"], "0")
        for key, value in {"IPAddress": "192.168.0.50", "SubnetMask": "255.255.255.0",
                           "Gateway": "192.168.0.1", "DNS1": "192.168.0.1",
                           "DNS2": "8.8.8.8", "WANStatus": "Up", "VLAN": "35"}.items():
            self.assertEqual(payload[key], value)

    def test_wan_down_and_unknown(self):
        """A down device reports Down; an unknown name is Status 1."""
        self.h.backend.stats["wan"]["isup"] = False
        self.assertEqual(self.h.call(self, "QUERY_WAN_INFO", WANName="wan")
                         .payload["WANStatus"], "Down")
        payload = self.h.call(self, "QUERY_WAN_INFO", WANName="nope").payload
        self.assertEqual((payload["Status"], payload["FailReason"]), ("1", "unknown WAN 'nope'"))

    def test_realrate(self):
        """First call: rate since boot; then the rate since the previous call."""
        b, clock = self.h.backend, self.h.clock
        clock.advance(100)                      # booted at 0
        b.counters["wan"] = {"bytes_sent": 125000, "bytes_recv": 1250000}
        args = {"USER": "telecomadmin", "PASSWORD": TELECOMADMIN}
        p = self.h.call(self, "QUERY_WAN_REALRATE", **args).payload
        self.assertEqual((p["UpRate"], p["DownRate"]), ("10", "100"))
        clock.advance(10)
        b.counters["wan"] = {"bytes_sent": 125000 + 12500, "bytes_recv": 1250000 + 250000}
        p = self.h.call(self, "QUERY_WAN_REALRATE", **args).payload
        self.assertEqual((p["UpRate"], p["DownRate"]), ("10", "200"))
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_realrate_no_account(self):
        """QUERY_WAN_REALRATE and PPPOE_DIAG_REQ need no account, as in the field's table."""
        p = self.h.call(self, "QUERY_WAN_REALRATE", WANName="wan").payload
        self.assertEqual(p["Status"], "0", p)
        self.assertNotEqual(self.rate.samples, {})
        self.assertFalse(network.Pppoe.needs_account)


class DnsTests(SynchronousTestCase):
    """SET_NETWORK_DNS."""

    def test_set_dns(self):
        """DNS1/DNS2 go to the wan interface's dns list and the network reloads."""
        h = openwrt(Harness(self, providers=[network.NetworkDns()]))
        p = h.call(self, "SET_NETWORK_DNS", DNS1="1.1.1.1", DNS2="2001:4860:4860::8888").payload
        self.assertEqual(p["Status"], "0")
        wan = h.backend.read_uci("network").section("wan")
        self.assertEqual(wan.options["dns"], ["1.1.1.1", "2001:4860:4860::8888"])
        self.assertEqual(wan.options["peerdns"], "0")
        self.assertEqual(h.backend.applied, ["network"])

    def test_bad_address(self):
        """A DNS that is not an IP address is refused and nothing is written."""
        h = openwrt(Harness(self, providers=[network.NetworkDns()]))
        p = h.call(self, "SET_NETWORK_DNS", DNS1="8.8.8.300").payload
        self.assertEqual((p["Status"], p["FailReason"]),
                         ("1", "DNS1 is not an IP address: '8.8.8.300'"))
        self.assertNotIn("dns", h.backend.read_uci("network").section("wan").options)

    def test_not_openwrt(self):
        """Off OpenWrt the call is refused with a clear reason."""
        h = openwrt(Harness(self, providers=[network.NetworkDns()]), marker=False)
        p = h.call(self, "SET_NETWORK_DNS", DNS1="1.1.1.1").payload
        self.assertEqual(p["FailReason"],
                         "not OpenWrt: DNS servers are only set through UCI network")


class PppoeTests(SynchronousTestCase):
    """PPPOE_DIAG_REQ, PPPOE_DIAL_REQUEST."""

    ACCOUNT = {"USER": "telecomadmin", "PASSWORD": TELECOMADMIN}

    def test_no_pppoe(self):
        """Without a PPPoE WAN both calls are Status 1 'no PPPoE WAN'."""
        h = openwrt(Harness(self, providers=[network.Pppoe()]))
        for cmd in ("PPPOE_DIAG_REQ", "PPPOE_DIAL_REQUEST"):
            p = h.call(self, cmd, **self.ACCOUNT).payload
            self.assertEqual((p["Status"], p["FailReason"]), ("1", "no PPPoE WAN"))

    def test_diag_and_dial(self):
        """Diag reads pppoe-wan; dial stores the account and reloads the network."""
        h = openwrt(Harness(self, providers=[network.Pppoe()]), PPPOE_NETWORK)
        p = h.call(self, "PPPOE_DIAG_REQ", **self.ACCOUNT).payload
        self.assertEqual((p["DialStatus"], p["WANName"]), ("Connected", "wan"))
        p = h.call(self, "PPPOE_DIAL_REQUEST", Account="user@isp", Password="secret",
                   **self.ACCOUNT).payload
        self.assertEqual(p["DialStatus"], "Dialing")
        wan = h.backend.read_uci("network").section("wan")
        self.assertEqual((wan.options["username"], wan.options["password"]),
                         ("user@isp", "secret"))
        self.assertEqual(h.backend.applied, ["network"])
        self.assertEqual(network.wan_interfaces(h.backend)[0][1], "pppoe-wan")


class LinuxWanTests(SynchronousTestCase):
    """QUERY_WAN_INFO and QUERY_WAN_NUM on this machine through LinuxBackend."""

    def test_wan_info_lo(self):
        """lo: 127.0.0.1/255.0.0.0, Up, as psutil shows it."""
        clock = Clock()
        h = Harness(self, providers=[network.WanInfo()], backend=LinuxBackend(clock))
        p = h.call(self, "QUERY_WAN_INFO", WANName="lo").payload
        ipv4 = [a for a in psutil.net_if_addrs()["lo"] if a.family == socket.AF_INET][0]
        self.assertEqual((p["IPAddress"], p["SubnetMask"]), (ipv4.address, ipv4.netmask))
        self.assertEqual(p["WANStatus"], "Up" if psutil_net_if_stats()["lo"].isup else "Down")

    def test_wan_num_default_route(self):
        """Off OpenWrt the WANs are the devices of the default routes."""
        h = Harness(self, providers=[network.WanInfo()], backend=LinuxBackend(Clock()))
        p = h.call(self, "QUERY_WAN_NUM").payload
        with open("/proc/net/route") as f:
            expected = list(dict.fromkeys(
                line.split()[0] for line in f.read().splitlines()[1:]
                if line.split()[1] == "00000000" and line.split()[7] == "00000000"))
        self.assertEqual(p["List"], expected)
