"""LAN devices, access rights through the UCI firewall, and the subscriptions."""

import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cubegw.backend import LinuxBackend, parse_arp
from cubegw.capabilities import IGatewayCapability, lan_devices

from tests.helpers import psutil_net_if_stats
from tests.helpers.dispatch import Harness
from tests.helpers.openwrt import STATIONS, lan_router


class LanInfoTests(SynchronousTestCase):
    """GET_LAN_NET_INFO and GET_LAN_INFO2 over an OpenWrt fixture."""

    def setUp(self):
        self.h = lan_router(self)

    def test_verify(self):
        """The providers provide IGatewayCapability."""
        for provider in (lan_devices.lan_info, lan_devices.access_right,
                         lan_devices.subscriptions):
            self.assertTrue(verifyObject(IGatewayCapability, provider))

    def test_lan_net_info(self):
        """The LAN address from UCI network, the DHCP pool from UCI dhcp."""
        p = self.h.call(self, "GET_LAN_NET_INFO").payload
        self.assertEqual({k: p[k] for k in ("IPAddress", "SubnetMask", "DHCPEnable",
                                            "DHCPStart", "DHCPLimit", "LeaseTime", "MAC")},
                         {"IPAddress": "192.168.1.1", "SubnetMask": "255.255.255.0",
                          "DHCPEnable": "1", "DHCPStart": "100", "DHCPLimit": "150",
                          "LeaseTime": "12h", "MAC": "64:D9:54:20:21:4B"})

    def test_lan_info2(self):
        """ARP + leases, WAN neighbours left out, WiFi from the station dump, online time."""
        b = self.h.backend
        b.stats["phy0-ap0"] = {"isup": True, "speed": 0, "mtu": 1500}
        b.results["iw"] = (0, STATIONS, b"")
        p = self.h.call(self, "GET_LAN_INFO2").payload
        self.assertEqual(p["Num"], "2")
        first, second = p["List"]
        self.assertEqual((first["MAC"], first["IP"], first["HostName"], first["ConnectionType"],
                          first["OnlineTime"], first["UpRate"]),
                         ("AA:BB:CC:00:00:01", "192.168.1.100", "phone", "WiFi", "0", "0"))
        self.assertEqual((second["MAC"], second["ConnectionType"], second["UpRate"],
                          second["InternetAccessRight"]),
                         ("AA:BB:CC:00:00:02", "Ethernet", "", "ON"))
        self.h.clock.advance(10)
        b.results["iw"] = (0, STATIONS.replace(b"9000", b"21500").replace(b"5000", b"6250"), b"")
        first = self.h.call(self, "GET_LAN_INFO2").payload["List"][0]
        self.assertEqual((first["OnlineTime"], first["DownRate"], first["UpRate"]),
                         ("10", "10", "1"))


class AccessRightTests(SynchronousTestCase):
    """SET/GET_ATTACH_DEVICE_RIGHT, the store and the firewall."""

    def setUp(self):
        self.h = lan_router(self)

    def rules(self):
        return [s.options for s in self.h.backend.read_uci("firewall").sections_of("rule")]

    def test_block_and_allow(self):
        """OFF stores the MAC and adds a REJECT rule; ON removes both."""
        p = self.h.call(self, "SET_ATTACH_DEVICE_RIGHT", MAC="aa-bb-cc-00-00-02",
                        InternetAccessRight="OFF").payload
        self.assertEqual((p["Status"], p["MAC"]), ("0", "AABBCC000002"))
        self.assertEqual(self.rules()[1], {
            "name": "cubegw_block_AABBCC000002", "src": "lan", "src_mac": "AA:BB:CC:00:00:02",
            "dest": "wan", "proto": "all", "target": "REJECT"})
        self.assertEqual(self.h.backend.applied, ["firewall"])
        p = self.h.call(self, "GET_ATTACH_DEVICE_RIGHT", MAC="AABBCC000002").payload
        self.assertEqual(p["InternetAccessRight"], "OFF")
        self.assertEqual(self.h.call(self, "GET_ATTACH_DEVICE_RIGHT").payload["Num"], "1")
        self.h.call(self, "SET_ATTACH_DEVICE_RIGHT", MAC="AA:BB:CC:00:00:02",
                    InternetAccessRight="ON")
        self.assertEqual([r["name"] for r in self.rules()], ["Allow-Ping"])
        self.assertEqual(self.h.call(self, "GET_ATTACH_DEVICE_RIGHT", MAC="AABBCC000002")
                         .payload["InternetAccessRight"], "ON")

    def test_field_mac_list(self):
        """GET_ATTACH_DEVICE_RIGHT has the field's MACList: blocked MACs, 12 hex, "/"."""
        self.assertEqual(self.h.call(self, "GET_ATTACH_DEVICE_RIGHT").payload["MACList"], "")
        for mac in ("aa:bb:cc:00:00:02", "AA-BB-CC-00-00-03"):
            self.h.call(self, "SET_ATTACH_DEVICE_RIGHT", MAC=mac, InternetAccessRight="OFF")
        p = self.h.call(self, "GET_ATTACH_DEVICE_RIGHT").payload
        self.assertEqual(sorted(p["MACList"].split("/")), ["AABBCC000002", "AABBCC000003"])
        self.assertEqual(sorted(item["MAC"] for item in p["List"]),
                         ["AABBCC000002", "AABBCC000003"])
        p = self.h.call(self, "GET_ATTACH_DEVICE_RIGHT", MAC="aa:bb:cc:00:00:02").payload
        self.assertEqual((p["MAC"], p["InternetAccessRight"]), ("AABBCC000002", "OFF"))

    def test_app_reset_clears(self):
        """The rights are SHARED_ACCESS: the APP reset clears them; sync_firewall follows."""
        self.h.call(self, "SET_ATTACH_DEVICE_RIGHT", MAC="AA:BB:CC:00:00:02",
                    InternetAccessRight="OFF")
        self.h.store.factory_reset_app()
        self.assertEqual(lan_devices.blocked_macs(self.h.store), [])
        self.successResultOf(lan_devices.sync_firewall(self.h.store, self.h.backend))
        self.assertEqual([r["name"] for r in self.rules()], ["Allow-Ping"])

    def test_refused(self):
        """A bad MAC or right, or no firewall config, is Status 1."""
        for args in [{"MAC": "nope", "InternetAccessRight": "OFF"},
                     {"MAC": "AA:BB:CC:00:00:02", "InternetAccessRight": "MAYBE"}]:
            self.assertEqual(self.h.call(self, "SET_ATTACH_DEVICE_RIGHT", **args)
                             .payload["Status"], "1")
        os.remove(self.h.backend.uci_path("firewall"))
        p = self.h.call(self, "SET_ATTACH_DEVICE_RIGHT", MAC="AA:BB:CC:00:00:02",
                        InternetAccessRight="OFF").payload
        self.assertEqual((p["Status"], p["FailReason"]), ("1", "no UCI firewall config"))


class SubscriptionTests(SynchronousTestCase):
    """LAN_DEVICE_ACCESS and DEVICE_SPEED on the Clock."""

    def setUp(self):
        self.h = lan_router(self)

    def test_new_device_report(self):
        """A MAC appearing after Enable is reported once; Enable 0 stops polling."""
        self.assertEqual(self.h.call(self, "LAN_DEVICE_ACCESS", Enable="1").payload["Status"],
                         "0")
        self.h.clock.advance(lan_devices.POLL_INTERVAL)
        self.assertEqual(self.h.reports, [])
        with open(os.path.join(self.h.dir, "proc/net/arp"), "a") as f:
            f.write("192.168.1.103    0x1         0x2         aa:bb:cc:00:00:03     *"
                    "        br-lan\n")
        self.h.clock.advance(lan_devices.POLL_INTERVAL)
        self.h.clock.advance(lan_devices.POLL_INTERVAL)
        self.assertEqual(self.h.reports, [{
            "CmdType": "LAN_DEVICE_ACCESS", "MAC": "AA:BB:CC:00:00:03", "IP": "192.168.1.103",
            "HostName": "", "ConnectionType": "Ethernet"}])
        self.h.call(self, "LAN_DEVICE_ACCESS", Enable="0")
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def arp(self):
        return os.path.join(self.h.dir, "proc/net/arp")

    def test_device_that_returns_is_reported_again(self):
        """A device that leaves the LAN and comes back is reported again, its OnlineTime
        counted from its return."""
        line = ("192.168.1.103    0x1         0x2         aa:bb:cc:00:00:03     *"
                "        br-lan\n")
        with open(self.arp()) as f:
            before = f.read()
        self.h.call(self, "LAN_DEVICE_ACCESS", Enable="1")
        with open(self.arp(), "a") as f:
            f.write(line)
        self.h.clock.advance(lan_devices.POLL_INTERVAL)
        with open(self.arp(), "w") as f:
            f.write(before)
        self.h.clock.advance(lan_devices.POLL_INTERVAL)
        with open(self.arp(), "a") as f:
            f.write(line)
        self.h.clock.advance(lan_devices.POLL_INTERVAL)
        self.assertEqual([r["MAC"] for r in self.h.reports], ["AA:BB:CC:00:00:03"] * 2)
        self.h.clock.advance(7)
        devices = self.h.call(self, "GET_LAN_INFO2").payload["List"]
        self.assertEqual([d["OnlineTime"] for d in devices if d["MAC"] == "AA:BB:CC:00:00:03"],
                         ["7"])
        self.h.call(self, "LAN_DEVICE_ACCESS", Enable="0")

    def test_invalid_speed_request_keeps_subscription(self):
        """A refused DEVICE_SPEED request leaves the running subscription polling."""
        self.h.call(self, "DEVICE_SPEED", Enable="1", Time="5")
        for args in [{"Time": "0"}, {"Time": "5", "List": [{"MAC": "zz"}]},
                     {"Time": "5", "List": "x"}]:
            p = self.h.call(self, "DEVICE_SPEED", Enable="1", **args).payload
            self.assertEqual(p["Status"], "1", args)
        self.h.clock.advance(5)
        self.assertEqual(len(self.h.reports), 1)
        self.h.call(self, "DEVICE_SPEED", Enable="0")

    def test_device_speed(self):
        """Rate Reports every Time seconds for the listed MACs, until disabled."""
        b = self.h.backend
        b.stats["phy0-ap0"] = {"isup": True, "speed": 0, "mtu": 1500}
        b.results["iw"] = (0, STATIONS, b"")
        p = self.h.call(self, "DEVICE_SPEED", Enable="1", Time="5",
                        List=[{"MAC": "aa:bb:cc:00:00:01"}, {"MAC": "AA:BB:CC:00:00:02"}]).payload
        self.assertEqual(p["Status"], "0")
        b.results["iw"] = (0, STATIONS.replace(b"9000", b"15250"), b"")
        self.h.clock.advance(5)
        self.assertEqual(self.h.reports, [{"CmdType": "DEVICE_SPEED", "List": [
            {"MAC": "AA:BB:CC:00:00:01", "UpRate": "0", "DownRate": "10", "Online": "1"},
            {"MAC": "AA:BB:CC:00:00:02", "UpRate": "", "DownRate": "", "Online": "1"}]}])
        self.h.clock.advance(5)
        self.assertEqual(len(self.h.reports), 2)
        self.h.call(self, "DEVICE_SPEED", Enable="0")
        self.h.clock.advance(50)
        self.assertEqual(len(self.h.reports), 2)

    def test_device_speed_refused(self):
        """A Time outside 1-3600 or a bad MAC is Status 1 and starts nothing."""
        for args in [{"Time": "0"}, {"Time": "x"}, {"Time": "5", "List": [{"MAC": "zz"}]}]:
            p = self.h.call(self, "DEVICE_SPEED", Enable="1", **args).payload
            self.assertEqual(p["Status"], "1", args)
        self.assertEqual(self.h.clock.getDelayedCalls(), [])


class LinuxLanTests(SynchronousTestCase):
    """GET_LAN_INFO2 on this machine through LinuxBackend."""

    def test_real_arp(self):
        """The devices are this machine's complete ARP entries off the default-route devices."""
        clock = Clock()
        backend = LinuxBackend(clock)
        h = Harness(self, providers=[lan_devices.LanInfo(lan_devices.LanTracker())],
                    backend=backend)
        p = h.call(self, "GET_LAN_INFO2").payload
        with open("/proc/net/arp") as f:
            arp = parse_arp(f.read())
        wan = {n for n in psutil_net_if_stats()} & {
            r["iface"] for r in backend.routes() if r["destination"] == "0.0.0.0"}
        self.assertEqual(sorted(d["MAC"] for d in p["List"]),
                         sorted({e["mac"] for e in arp if e["iface"] not in wan}))
