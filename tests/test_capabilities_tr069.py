"""The TR-069 passthroughs on the parameters cubegw owns."""

import os

from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import tr069, wifi

from tests.helpers.dispatch import Harness

WIRELESS = """\
config wifi-device 'radio0'
	option band '2g'
	option channel '6'

config wifi-iface 'default_radio0'
	option device 'radio0'
	option ssid 'OpenWrt'
	option encryption 'psk2'
	option key 'secret-key-1'
"""
MGT = "InternetGatewayDevice.X_CT-COM_Mgt."
WLAN = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1."


class Tr069Tests(SynchronousTestCase):
    """GET/SETPARAMETERVALUES, ADDOBJECT, DELETEOBJECT through the dispatcher."""

    def setUp(self):
        self.h = Harness(self, providers=[tr069.tr069, wifi.wifi_info])
        os.makedirs(os.path.join(self.h.dir, "etc", "config"))
        with open(os.path.join(self.h.dir, "etc", "config", "wireless"), "w") as f:
            f.write(WIRELESS)

    def call(self, cmd, **args):
        return self.h.call(self, cmd, **args).payload

    def test_get_mgt_and_wlan(self):
        """Named values and a partial path are answered as Name/Value pairs."""
        reply = self.call("GETPARAMETERVALUES", List=[{"Name": MGT + "Port"},
                                                      {"Name": WLAN + "SSID"}])
        self.assertEqual(reply["List"], [{"Name": MGT + "Port", "Value": "12112"},
                                         {"Name": WLAN + "SSID", "Value": "OpenWrt"}])
        reply = self.call("GETPARAMETERVALUES", List=[{"Name": MGT}])
        self.assertIn({"Name": MGT + "LocatePort", "Value": "17998"}, reply["List"])

    def test_get_unknown_is_fault(self):
        """A name cubegw does not own is fault 9005; a bad List is 9003."""
        reply = self.call("GETPARAMETERVALUES",
                          List=[{"Name": "InternetGatewayDevice.WANDevice.1.X"}])
        self.assertEqual((reply["Status"], reply["FailReason"][:4]), ("1", "9005"))
        for bad in (None, [], ["x"], [{"Name": 5}]):
            reply = self.call("GETPARAMETERVALUES", **({} if bad is None else {"List": bad}))
            self.assertTrue(reply["FailReason"].startswith("9003"), bad)

    def test_set_mgt_and_wlan(self):
        """SET writes the store and the UCI wifi-iface (through SET_WIFI_INFO's checks)."""
        reply = self.call("SETPARAMETERVALUES", List=[
            {"Name": MGT + "Heartbeat", "Value": "120"}, {"Name": WLAN + "SSID", "Value": "Home"}])
        self.assertEqual(reply["Status"], "0")
        self.assertEqual(self.h.store.get("mgt", "Heartbeat"), 120)
        self.assertEqual(self.h.backend.read_uci("wireless").sections_of("wifi-iface")[0]
                         .get("ssid"), "Home")

    def test_set_refusals(self):
        """Read-only 9008, bad value 9007 (nothing written), unknown 9005."""
        reply = self.call("SETPARAMETERVALUES", List=[
            {"Name": "InternetGatewayDevice.DeviceInfo.SerialNumber", "Value": "x"}])
        self.assertTrue(reply["FailReason"].startswith("9008"))
        reply = self.call("SETPARAMETERVALUES", List=[
            {"Name": MGT + "Port", "Value": "99999"}])
        self.assertTrue(reply["FailReason"].startswith("9007"))
        self.assertEqual(self.h.store.get("mgt", "Port"), 12112)
        reply = self.call("SETPARAMETERVALUES", List=[
            {"Name": WLAN + "SSID", "Value": "bad\nssid"}])
        self.assertTrue(reply["FailReason"].startswith("9007"))
        reply = self.call("SETPARAMETERVALUES", List=[{"Name": "Device.X", "Value": "1"}])
        self.assertTrue(reply["FailReason"].startswith("9005"))

    def test_objects(self):
        """ADDOBJECT/DELETEOBJECT: Object required (9003), else fault 9005 naming why."""
        self.assertTrue(self.call("ADDOBJECT")["FailReason"].startswith("9003"))
        reply = self.call("ADDOBJECT", Object="InternetGatewayDevice.X_CT-COM_Mgt.")
        self.assertIn("not a multi-instance object", reply["FailReason"])
        reply = self.call("DELETEOBJECT", Object="InternetGatewayDevice.WANDevice.3.")
        self.assertEqual(reply["FailReason"],
                         "9005 Invalid parameter name: InternetGatewayDevice.WANDevice.3.")
