"""SYSTEST, GET_DEVICE_INFO_ALL, SET_HG_DATE_TIME_SYNC, GET_SERVICE,
INFORM_DIAG_REQ, REGISTER / REGISTER_GETSTAT on a TempDirBackend."""

import os

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cubegw.capabilities import IGatewayCapability
from cubegw.capabilities import system_extra

from tests.helpers.dispatch import TELECOMADMIN, Harness

NETWORK = """\
config interface 'loopback'
	option device 'lo'

config interface 'lan'
	option device 'br-lan'

config interface 'wan'
	option device 'eth1'
	option proto 'dhcp'

config interface 'iptv'
	option device 'eth1.45'
	option proto 'dhcp'

config interface 'voip'
	option device 'eth1.46'
	option disabled '1'
"""

PPPOE_NETWORK = """\
config interface 'lan'
	option device 'br-lan'

config interface 'wan'
	option device 'eth0'
	option proto 'pppoe'
	option username 'user'
	option password 'secret'
"""

EASYCWMP = """\
config acs 'acs'
	option url 'http://itms.example:9090/acs'
	option periodic_enable '1'
	option periodic_interval '86400'
"""


def up(flag):
    return {"isup": flag, "speed": 1000, "mtu": 1500}


class SystemExtraTests(SynchronousTestCase):
    """The capabilities of system_extra."""

    def setUp(self):
        self.h = Harness(self, providers=[
            system_extra.selftest, system_extra.device_info_all, system_extra.date_time_sync,
            system_extra.services, system_extra.inform_diag, system_extra.loid_register])
        self.h.backend.stats = {"eth1": up(True), "lan1": up(True), "lan2": up(False),
                                "wlan0": up(True), "br-lan": up(True), "lo": up(True)}
        self.h.backend.addrs = {"eth1": [{"family": "ipv4", "address": "100.64.1.2",
                                          "netmask": "255.255.255.0"}]}

    def write(self, name, text):
        path = os.path.join(self.h.dir, "etc", "config")
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, name), "w") as f:
            f.write(text)

    def call(self, cmd, **args):
        return self.h.call(self, cmd, **args).payload

    def test_verify(self):
        """Every provider of the module provides IGatewayCapability."""
        for provider in self.h.providers:
            self.assertTrue(verifyObject(IGatewayCapability, provider))

    def test_systest(self):
        """WAN from UCI, LAN ports each Up/Down, WiFi Up."""
        self.write("network", NETWORK)
        reply = self.call("SYSTEST")
        self.assertEqual(reply["WANStatus"], "on")
        self.assertEqual(reply["LANStatus"], [{"Port": "lan1", "Status": "Up"},
                                              {"Port": "lan2", "Status": "Down"}])
        self.assertEqual(reply["WIFIStatus"], "Up")
        self.h.backend.stats["eth1"] = up(False)
        del self.h.backend.stats["wlan0"]
        reply = self.call("SYSTEST")
        self.assertEqual((reply["WANStatus"], reply["WIFIStatus"]), ("off", "None"))

    def test_systest_field_fields(self):
        """SYSTEST has the field's LAN1Status.., WANStatus, WIFIModuleStatus, on/off."""
        self.write("network", NETWORK)
        reply = self.call("SYSTEST")
        self.assertEqual({k: reply.get(k) for k in ("LAN1Status", "LAN2Status", "LAN3Status",
                                                     "WANStatus", "WIFIModuleStatus")},
                         {"LAN1Status": "on", "LAN2Status": "off", "LAN3Status": None,
                          "WANStatus": "on", "WIFIModuleStatus": "on"})
        del self.h.backend.stats["wlan0"]
        self.assertEqual(self.call("SYSTEST")["WIFIModuleStatus"], "off")

    def test_service_field_fields(self):
        """GET_SERVICE has the field's wifi timer fields, NFC and HGWSLEEP."""
        reply = self.call("GET_SERVICE")
        self.assertEqual((reply["wifiEnable"], reply["wifiControlCycle"], reply["NFC"],
                          reply["HGWSLEEP"]), ("0", "DAY", "0", "0"))
        from cubegw.capabilities import wifi
        wifi.ensure_schema(self.h.store.schema)
        self.h.store.add_section(wifi.TIMER_TYPE.type, wifi.TIMER_KEY,
                                 {"enable": True, "start": "23:00", "end": "06:30"})
        reply = self.call("GET_SERVICE")
        self.assertEqual((reply["wifiStartTime"], reply["wifiEndTime"], reply["wifiEnable"]),
                         ("23:00", "06:30", "1"))

    def test_pppoe_wan_down(self):
        """A PPPoE WAN that is not dialled is reported as its pppoe- session, Down, with no
        address, and the port under it is not a LAN port."""
        self.write("network", PPPOE_NETWORK)
        self.h.backend.stats["eth0"] = up(True)
        self.h.backend.addrs["eth0"] = [{"family": "ipv4", "address": "192.168.100.2",
                                         "netmask": "255.255.255.0"}]
        reply = self.call("SYSTEST")
        self.assertEqual(reply["WANStatus"], "off")
        self.assertEqual(reply["WANList"], [{"Port": "pppoe-wan", "Status": "Down"}])
        self.assertNotIn("eth0", [p["Port"] for p in reply["LANStatus"]])
        reply = self.call("GET_DEVICE_INFO_ALL", USER="telecomadmin", PASSWORD=TELECOMADMIN)
        self.assertEqual((reply["WANIPAddress"], reply["SelfTest"]["WANStatus"]), ("", "off"))
        self.h.backend.stats["pppoe-wan"] = up(True)
        self.h.backend.addrs["pppoe-wan"] = [{"family": "ipv4", "address": "100.64.9.9",
                                              "netmask": "255.255.255.255"}]
        reply = self.call("GET_DEVICE_INFO_ALL", USER="telecomadmin", PASSWORD=TELECOMADMIN)
        self.assertEqual((reply["WANIPAddress"], reply["SelfTest"]["WANStatus"]),
                         ("100.64.9.9", "on"))

    def test_device_info_all(self):
        """Needs the account; a snapshot with the WAN address."""
        self.write("network", NETWORK)
        self.assertEqual(self.call("GET_DEVICE_INFO_ALL")["FailReason"],
                         "wrong user or password")
        reply = self.call("GET_DEVICE_INFO_ALL", USER="telecomadmin", PASSWORD=TELECOMADMIN)
        self.assertEqual(reply["Status"], "0")
        self.assertEqual((reply["WANIPAddress"], reply["CPU"], reply["Memory"], reply["SN"]),
                         ("100.64.1.2", "12", "25", self.h.context.identity.sn))
        self.assertEqual(reply["SelfTest"]["WANStatus"], "on")

    def test_date_time(self):
        """An offset time is set in UTC with date -u -s; a refusal is the FailReason."""
        reply = self.call("SET_HG_DATE_TIME_SYNC", Time="2024-05-01T10:00:00+08:00")
        self.assertEqual(reply["Status"], "0")
        self.assertEqual(self.h.backend.commands, [["date", "-u", "-s", "2024-05-01 02:00:00"]])
        self.call("SET_HG_DATE_TIME_SYNC", Time="2024-05-01T10:00:00")
        self.assertEqual(self.h.backend.commands[-1], ["date", "-s", "2024-05-01 10:00:00"])
        self.h.backend.results["date"] = (1, b"", b"date: cannot set date: Operation not "
                                          b"permitted\n")
        self.assertEqual(self.call("SET_HG_DATE_TIME_SYNC", Time="2024-05-01T10:00:00Z")[
            "FailReason"], "date: cannot set date: Operation not permitted")
        for bad in ("yesterday", "", None, "2024-13-01T00:00:00"):
            self.assertEqual(self.call("SET_HG_DATE_TIME_SYNC", Time=bad)["Status"], "1")
        self.assertEqual(len(self.h.backend.commands), 3)

    def test_date_time_utc_designator(self):
        """A Time ending in Z is UTC on every Python (3.9/3.10 fromisoformat refuse it)."""
        reply = self.call("SET_HG_DATE_TIME_SYNC", Time="2024-05-01T10:00:00Z")
        self.assertEqual(reply["Status"], "0")
        self.assertEqual(self.h.backend.commands, [["date", "-u", "-s", "2024-05-01 10:00:00"]])

    def test_services(self):
        """Internet and IPTV from UCI interfaces; a disabled voip does not count."""
        self.write("network", NETWORK)
        reply = self.call("GET_SERVICE")
        self.assertEqual((reply["Internet"], reply["IPTV"], reply["VoIP"]), ("1", "1", "0"))

    def test_services_without_uci(self):
        """Without UCI network: Internet is whether there is a default route."""
        self.assertEqual(self.call("GET_SERVICE")["Internet"], "0")

    def test_inform(self):
        """INFORM_DIAG_REQ asks the TR-069 client for an Inform (ubus) and answers the
        field's InformResult; no client, no ubus or a refused request: Status 1."""
        self.write("network", NETWORK)
        self.assertEqual(self.call("INFORM_DIAG_REQ")["FailReason"], "no TR-069 client")
        self.write("easycwmp", EASYCWMP.replace("http://itms.example:9090/acs", ""))
        self.assertEqual(self.call("INFORM_DIAG_REQ")["InformResult"],
                         "INFORM_NO_ACS_CONFIGURATION")
        self.write("easycwmp", EASYCWMP)
        self.assertIn("no ubus", self.call("INFORM_DIAG_REQ")["FailReason"])
        self.install("ubus")
        reply = self.call("INFORM_DIAG_REQ")
        self.assertEqual((reply["Status"], reply["InformStatus"], reply["InformResult"]),
                         ("0", "", "INFORM_IAD_RUNNING"))
        self.assertEqual(self.h.backend.commands[-1], ["/bin/ubus", "call", "tr069", "inform"])
        self.h.backend.results["/bin/ubus"] = (4, b"", b"Not found\n")
        self.assertIn("Not found", self.call("INFORM_DIAG_REQ")["FailReason"])
        self.h.backend.stats["eth1"] = up(False)
        self.assertEqual(self.call("INFORM_DIAG_REQ")["InformResult"], "INFORM_NO_WAN")

    def install(self, program):
        path = os.path.join(self.h.dir, "bin", program)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(path, 0o755)

    def test_register(self):
        """Without a TR-069 client REGISTER keeps the LOID (ITMS-owned) and says Status 1;
        GETSTAT is REGISTER_DEFAULT; the ITMS reset clears the LOID."""
        self.assertEqual(self.call("REGISTER_GETSTAT")["RegisterStatus"], "REGISTER_DEFAULT")
        reply = self.call("REGISTER", USERID="0755123456", PASSWORD="loidpw")
        self.assertEqual(reply["Status"], "1")
        self.assertIn("no TR-069 client", reply["FailReason"])
        reply = self.call("REGISTER_GETSTAT")
        self.assertEqual((reply["USERID"], reply["RegisterStatus"]),
                         ("0755123456", "REGISTER_DEFAULT"))
        self.assertEqual(self.call("REGISTER")["FailReason"], "USERID is required")
        self.h.store.factory_reset_app()
        self.assertEqual(self.h.store.get("loid", "userid"), "0755123456")
        self.h.store.factory_reset_itms()
        self.assertEqual(self.call("REGISTER_GETSTAT")["USERID"], "")

    def test_register_with_client(self):
        """With a TR-069 client REGISTER asks it for an Inform; GETSTAT says REGISTER_OLT
        (40) inside the field's window, REGISTER_TIMEOUT after it, never pending forever."""
        self.write("network", NETWORK)
        self.write("easycwmp", EASYCWMP)
        self.install("ubus")
        reply = self.call("REGISTER", USERID="L1", PASSWORD="p")
        self.assertEqual((reply["Status"], reply["RegisterStatus"], reply["RegisterResult"]),
                         ("0", "REGISTER_OLT", "40"))
        self.assertEqual(self.h.backend.commands[-1], ["/bin/ubus", "call", "tr069", "inform"])
        self.h.clock.advance(system_extra.REGISTER_WINDOW - 1)
        self.assertEqual(self.call("REGISTER_GETSTAT")["RegisterStatus"], "REGISTER_OLT")
        self.h.clock.advance(1)
        reply = self.call("REGISTER_GETSTAT")
        self.assertEqual((reply["RegisterStatus"], reply.get("RegisterResult")),
                         ("REGISTER_TIMEOUT", None))
