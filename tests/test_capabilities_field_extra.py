"""The field CmdTypes of field_extra on a TempDirBackend."""

import os

from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import field_extra

from tests.helpers.dispatch import Harness

NETWORK = """\
config interface 'lan'
	option device 'br-lan'
	option ipaddr '192.168.1.1'

config interface 'wan'
	option device 'eth1'
	option proto 'dhcp'
"""
WIRELESS = """\
config wifi-device 'radio0'
	option band '2g'

config wifi-iface 'default_radio0'
	option device 'radio0'
	option ssid 'OpenWrt'
	option disabled '1'
"""
ARP = """IP address       HW type     Flags       HW address            Mask     Device
192.168.1.20     0x1         0x2         aa:bb:cc:00:00:02     *        br-lan
"""


class FieldExtraTests(SynchronousTestCase):
    """Addresses, rates, names, SSID enable, LEDs, WPS and the refused extras."""

    def setUp(self):
        self.h = Harness(self, providers=[
            field_extra.Addresses(), field_extra.Rates(), field_extra.DeviceNames(),
            field_extra.SsidEnable(), field_extra.Leds(), field_extra.Wps(),
            field_extra.Refused()])
        self.write("etc/config/network", NETWORK)
        self.write("etc/resolv.conf", "nameserver 9.9.9.9\nnameserver 1.1.1.1\n")
        self.h.backend.stats = {"eth1": {"isup": True, "speed": 0, "mtu": 1500}}
        self.h.backend.addrs = {"eth1": [
            {"family": "ipv4", "address": "100.64.1.2", "netmask": "255.255.255.0"},
            {"family": "ipv6", "address": "2001:db8::5", "netmask": ""}]}

    def write(self, path, text, mode=None):
        full = os.path.join(self.h.dir, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        if mode:
            os.chmod(full, mode)

    def call(self, cmd, **args):
        return self.h.call(self, cmd, **args).payload

    def test_hw_ip_and_dns(self):
        """WAN/LAN addresses and name servers; 0.0.0.0 once the WAN is down."""
        reply = self.call("GET_HW_IP")
        self.assertEqual((reply["WanIPAddr"], reply["IPV6WanIPAddr"], reply["LanIPAddr"]),
                         ("100.64.1.2", "2001:db8::5", "192.168.1.1"))
        self.assertEqual((self.call("GET_NETWORK_DNS")["DNS1"],
                          self.call("GET_NETWORK_DNS")["DNS2"]), ("9.9.9.9", "1.1.1.1"))
        self.h.backend.stats["eth1"]["isup"] = False
        self.assertEqual(self.call("GET_HW_IP")["WanIPAddr"], "0.0.0.0")
        self.assertEqual(self.call("GET_NETWORK_DNS")["DNS1"], "0.0.0.0")

    def test_realrate(self):
        """RealTimeRate is up|down in kB/s since the previous sample."""
        self.h.backend.counters = {"eth1": {"bytes_sent": 0, "bytes_recv": 0}}
        self.h.clock.advance(100)
        self.call("QUERY_REALRATE")
        self.h.backend.counters = {"eth1": {"bytes_sent": 80000, "bytes_recv": 160000}}
        self.h.clock.advance(10)
        self.assertEqual(self.call("QUERY_REALRATE")["RealTimeRate"], "8|16")

    def test_attach_realrate_refusals(self):
        """A bad MAC or an unknown device is Status 1."""
        self.assertEqual(self.call("QUERY_ATTACH_DEVICE_REALRATE", MAC="zz")["Status"], "1")
        reply = self.call("QUERY_ATTACH_DEVICE_REALRATE", MAC="AABBCC000009")
        self.assertIn("no such device", reply["FailReason"])

    def test_device_names(self):
        """Names given are kept (APP-owned) and listed with 12-hex MACs, gateway first."""
        self.write("proc/net/arp", ARP)
        self.assertEqual(self.call("SET_ATTACH_DEVICE_NAME", MAC="aa:bb:cc:00:00:02",
                                   DevName="phone")["Status"], "0")
        self.assertEqual(self.call("SET_HG_DEV_NAME", DevName="home gw")["Status"], "0")
        reply = self.call("GET_HG_DEV_NAME")
        self.assertEqual(reply["NameList"], "home gw/phone")
        self.assertEqual(reply["MACList"].split("/")[1], "AABBCC000002")
        self.assertEqual(self.call("SET_HG_DEV_NAME", DevName="a\nb")["Status"], "1")
        self.h.runtime.app_reset()
        self.assertEqual(self.call("GET_HG_DEV_NAME")["NameList"].split("/")[1], "")

    def test_ssid_enable(self):
        """SET_WLAN_SSID_ENABLE clears disabled on that wifi-iface."""
        self.write("etc/config/wireless", WIRELESS)
        self.assertEqual(self.call("SET_WLAN_SSID_ENABLE", SSIDIndex="1")["Status"], "0")
        iface = self.h.backend.read_uci("wireless").sections_of("wifi-iface")[0]
        self.assertNotEqual(iface.get("disabled"), "1")
        self.assertEqual(self.call("SET_WLAN_SSID_ENABLE", SSIDIndex="9")["Status"], "1")

    def test_leds(self):
        """Without a LED class Status 1; with one every LED is set."""
        self.assertEqual(self.call("SET_LED_STATUS", LEDStatus="OFF")["FailReason"],
                         field_extra.NO_LED)
        self.write("sys/class/leds/green:wan/brightness", "255")
        self.write("sys/class/leds/green:wan/max_brightness", "255\n")
        self.assertEqual(self.call("SET_LED_STATUS", LEDStatus="OFF")["Status"], "0")
        with open(os.path.join(self.h.dir, "sys/class/leds/green:wan/brightness")) as f:
            self.assertEqual(f.read(), "0")
        self.call("SET_LED_STATUS", LEDStatus="ON")
        with open(os.path.join(self.h.dir, "sys/class/leds/green:wan/brightness")) as f:
            self.assertEqual(f.read(), "255")
        self.assertEqual(self.call("SET_LED_STATUS", LEDStatus="blink")["Status"], "1")
        self.assertEqual(self.call("SET_HG_LED_INDICATOR_TIMER")["Status"], "1")

    def test_wps(self):
        """Without hostapd_cli Status 1; with it wps_pbc on each AP, and the status read."""
        self.assertEqual(self.call("WPS_ON")["FailReason"], field_extra.NO_WPS)
        self.write("usr/sbin/hostapd_cli", "#!/bin/sh\n", mode=0o755)
        self.h.backend.stats["wlan0"] = {"isup": True, "speed": 0, "mtu": 1500}
        self.assertEqual(self.call("WPS_ON")["Status"], "0")
        self.assertEqual(self.h.backend.commands[-1], ["hostapd_cli", "-i", "wlan0", "wps_pbc"])
        self.h.backend.results["hostapd_cli"] = (0, b"PBC Status: Active\n", b"")
        self.assertEqual(self.call("WPS_QY")["WPSStatus"], "ON")
        self.call("WPS_OFF")
        self.assertEqual(self.h.backend.commands[-1][-1], "wps_cancel")

    def test_refused(self):
        """The field platform's plug-in extras answer Status 1 with the reason."""
        for cmd, reason in field_extra.Refused.REASONS.items():
            self.assertEqual(self.call(cmd)["FailReason"], reason)
