"""An OpenWrt router's files for the capability tests: fixture texts and harnesses that
write them into a dispatcher Harness's TempDirBackend root."""

import calendar
import os
import time

from cubegw.capabilities import lan_devices, wifi
from cubegw.record import replace

from tests.helpers.dispatch import Harness


NETWORK = """
config interface 'loopback'
	option device 'lo'
	option proto 'static'
	option ipaddr '127.0.0.1'
	option netmask '255.0.0.0'

config globals 'globals'
	option ula_prefix 'fd12:3456:789a::/48'

config device
	option name 'br-lan'
	option type 'bridge'
	list ports 'lan1'
	list ports 'lan2'

config device
	option name 'wan'
	option type '8021q'
	option ifname 'eth1'
	option vid '35'

config interface 'lan'
	option device 'br-lan'
	option proto 'static'
	option ipaddr '192.168.1.1'
	option netmask '255.255.255.0'

config interface 'wan'
	option device 'wan'
	option proto 'dhcp'

config interface 'wan6'
	option device 'wan'
	option proto 'dhcpv6'
"""


ROUTE = """Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
wan	00000000	0100A8C0	0003	0	0	0	00000000	0	0	0
wan	0000A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
br-lan	0001A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
"""


RESOLV_AUTO = """# Interface wan
nameserver 192.168.0.1
nameserver 8.8.8.8
# Interface wan6
nameserver fe80::1%wan
"""


ARP = """IP address       HW type     Flags       HW address            Mask     Device
192.168.1.100    0x1         0x2         aa:bb:cc:00:00:01     *        br-lan
192.168.1.101    0x1         0x0         00:00:00:00:00:00     *        br-lan
192.168.0.1      0x1         0x2         aa:bb:cc:00:00:99     *        wan
"""


LEASES = """1700000000 aa:bb:cc:00:00:01 192.168.1.100 phone 01:aa:bb:cc:00:00:01
1700000500 aa:bb:cc:00:00:02 192.168.1.102 * *
"""


def write(root, path, text):
    """Write ``text`` at ``path`` under the fake root ``root``."""
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


def openwrt(h, network_text=NETWORK, marker=True):
    """Fill a harness's TempDirBackend root with an OpenWrt router's files."""
    write(h.dir, "/etc/config/network", network_text)
    write(h.dir, "/proc/net/route", ROUTE)
    write(h.dir, "/tmp/resolv.conf.d/resolv.conf.auto", RESOLV_AUTO)
    write(h.dir, "/etc/resolv.conf", "nameserver 127.0.0.1\n")
    write(h.dir, "/proc/net/arp", ARP)
    write(h.dir, "/tmp/dhcp.leases", LEASES)
    if marker:
        write(h.dir, "/etc/openwrt_release", "DISTRIB_ID='OpenWrt'\n")
    b = h.backend
    b.addrs = {"wan": [{"family": "ipv4", "address": "192.168.0.50",
                        "netmask": "255.255.255.0"}],
               "br-lan": [{"family": "ipv4", "address": "192.168.1.1",
                           "netmask": "255.255.255.0"},
                          {"family": "mac", "address": "64:d9:54:20:21:4b", "netmask": ""}],
               "pppoe-wan": [{"family": "ipv4", "address": "100.64.1.2",
                              "netmask": "255.255.255.255"}]}
    b.stats = {"wan": {"isup": True, "speed": 1000, "mtu": 1500},
               "br-lan": {"isup": True, "speed": 1000, "mtu": 1500},
               "pppoe-wan": {"isup": True, "speed": 0, "mtu": 1492}}
    b.counters = {"wan": {"bytes_sent": 0, "bytes_recv": 0}}
    return h


WIRELESS = """
config wifi-device 'radio0'
	option type 'mac80211'
	option path 'platform/soc/18000000.wifi'
	option channel '1'
	option band '2g'
	option htmode 'HE20'
	option country 'CN'
	option cell_density '0'

config wifi-iface 'default_radio0'
	option device 'radio0'
	option network 'lan'
	option mode 'ap'
	option ssid 'OpenWrt'
	option encryption 'psk2+ccmp'
	option key 'password1'

config wifi-device 'radio1'
	option type 'mac80211'
	option path 'platform/soc/18000000.wifi+1'
	option channel '36'
	option band '5g'
	option htmode 'HE80'
	option txpower '10'

config wifi-iface 'default_radio1'
	option device 'radio1'
	option network 'lan'
	option mode 'ap'
	option ssid 'OpenWrt-5G'
	option encryption 'none'
	option disabled '1'
"""


STATIONS = b"""Station aa:bb:cc:00:00:01 (on phy0-ap0)
	inactive time:	1000 ms
	rx bytes:	5000
	tx bytes:	9000
	signal:  	-52 [-54, -56] dBm
	tx bitrate:	286.7 MBit/s HE-MCS 11 HE-NSS 2
	connected time:	120 seconds
"""


def wireless_router(testcase, **kwargs):
    """A Harness with the WiFi providers over the WIRELESS fixture."""
    h = Harness(testcase, providers=[wifi.WifiInfo(), wifi.WifiTimerCapability(time.gmtime)],
                **kwargs)
    write(h.dir, "/etc/config/wireless", WIRELESS)
    write(h.dir, "/etc/openwrt_release", "x")
    return h


def at(day, hhmm):
    """Epoch seconds of 2024-01-(day) hh:mm UTC (2024-01-01 is a Monday)."""
    return calendar.timegm((2024, 1, day, int(hhmm[:2]), int(hhmm[3:]), 0, 0, 0, 0))


FIREWALL = """
config defaults
	option input 'REJECT'
	option output 'ACCEPT'
	option forward 'REJECT'

config zone
	option name 'lan'
	list network 'lan'
	option input 'ACCEPT'
	option output 'ACCEPT'
	option forward 'ACCEPT'

config zone
	option name 'wan'
	list network 'wan'
	option input 'REJECT'
	option masq '1'

config rule
	option name 'Allow-Ping'
	option src 'wan'
	option proto 'icmp'
	option target 'ACCEPT'
"""


DHCP = """
config dnsmasq
	option domainneeded '1'
	option leasefile '/tmp/dhcp.leases'

config dhcp 'lan'
	option interface 'lan'
	option start '100'
	option limit '150'
	option leasetime '12h'

config dhcp 'wan'
	option interface 'wan'
	option ignore '1'
"""


def lan_router(testcase):
    """A Harness with the LAN device providers on an OpenWrt router with FIREWALL and DHCP,
    its clock at 1700000000; reports go to ``h.reports``."""
    tracker = lan_devices.LanTracker()
    providers = [lan_devices.LanInfo(tracker), lan_devices.AccessRight(),
                 lan_devices.Subscriptions(tracker)]
    h = openwrt(Harness(testcase, providers=providers))
    write(h.dir, "/etc/config/firewall", FIREWALL)
    write(h.dir, "/etc/config/dhcp", DHCP)
    h.clock.advance(1700000000)
    h.reports = []
    h.dispatcher.context = replace(
        h.context, report=lambda payload: h.reports.append(payload) or True)
    testcase.addCleanup(providers[2].stop)
    return h
