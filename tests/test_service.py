"""RegistrationService's settings: the trigger Key is made with the live Wi-Fi."""

import os

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from cubegw.config import GatewayConfig, Wifi
from cubegw.service import RegistrationService

from tests.helpers import IDENTITY
from tests.helpers.openwrt import wireless_router


class LiveWifiSettingsTests(SynchronousTestCase):
    """The SSID and password the trigger Key is checked with."""

    def setUp(self):
        self.h = wireless_router(self)
        self.config = GatewayConfig(wifi=Wifi(ssid="YamlSSID", password="yamlpass"))

    def session(self, backend):
        return RegistrationService(self.config, self.h.store, IDENTITY, MemoryReactorClock(),
                                   effects=None, wan_ip=lambda: "", backend=backend)

    def test_key_follows_set_wifi_info(self):
        """After SET_WIFI_INFO the Settings carry the new primary SSID and password."""
        session = self.session(self.h.backend)
        settings = session.settings()
        self.assertEqual((settings.wifi_ssid, settings.wifi_password), ("OpenWrt", "password1"))
        p = self.h.call(self, "SET_WIFI_INFO", SSIDIndex="1", SSID="Home", ENCRYPT="WPA-PSK",
                        PWD="12345678", Channel="0", PowerLevel="100", Enable="1").payload
        self.assertEqual(p["Status"], "0")
        settings = session.settings()
        self.assertEqual((settings.wifi_ssid, settings.wifi_password), ("Home", "12345678"))

    def test_yaml_without_live_wifi(self):
        """No wireless config, an unreadable one, or no backend: the YAML values."""
        for backend in (None, self.h.backend):
            settings = self.session(backend).settings()
            self.assertEqual(settings.wifi_ssid, "OpenWrt" if backend else "YamlSSID")
        os.remove(os.path.join(self.h.dir, "etc/config/wireless"))
        settings = self.session(self.h.backend).settings()
        self.assertEqual((settings.wifi_ssid, settings.wifi_password), ("YamlSSID", "yamlpass"))
        with open(os.path.join(self.h.dir, "etc/config/wireless"), "w") as f:
            f.write("config 'unterminated\n")
        settings = self.session(self.h.backend).settings()
        self.assertEqual(settings.wifi_ssid, "YamlSSID")
