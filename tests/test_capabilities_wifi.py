"""WiFi capabilities over an OpenWrt wireless fixture, the WiFi timer on a Clock."""


from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cubegw.backend import LinuxBackend
from cubegw.capabilities import IGatewayCapability, wifi

from tests.helpers.dispatch import Harness
from tests.helpers.openwrt import STATIONS, at, wireless_router


class WifiInfoTests(SynchronousTestCase):
    """GET/SET_WIFI_INFO, SET_WLAN_SSID_DISABLE, GET_WLAN_INTF_INFO, ATTACH, RATE MODE."""

    def setUp(self):
        self.h = wireless_router(self)

    def test_verify(self):
        """The providers provide IGatewayCapability."""
        self.assertTrue(verifyObject(IGatewayCapability, wifi.wifi_info))
        self.assertTrue(verifyObject(IGatewayCapability, wifi.wifi_timer))

    def test_no_wireless(self):
        """Without a UCI wireless config every call is Status 1."""
        h = Harness(self, providers=[wifi.WifiInfo(), wifi.WifiTimerCapability()])
        for cmd in wifi.WifiInfo.cmd_types + ("SET_HG_WIFI_TIMER",):
            p = h.call(self, cmd, SSIDIndex="1").payload
            self.assertEqual((p["Status"], p["FailReason"]),
                             ("1", "no WiFi radio (no UCI wireless config)"), cmd)

    def test_get(self):
        """SSIDIndex 2 is the second wifi-iface and its radio."""
        p = self.h.call(self, "GET_WIFI_INFO", SSIDIndex="2").payload
        self.assertEqual({k: p[k] for k in ("SSID", "ENCRYPT", "Channel", "PowerLevel", "Enable")},
                         {"SSID": "OpenWrt-5G", "ENCRYPT": "none", "Channel": "36",
                          "PowerLevel": "50", "Enable": "0"})
        p = self.h.call(self, "GET_WIFI_INFO").payload
        self.assertEqual(p["Num"], "2")
        self.assertEqual(p["List"][0]["ENCRYPT"], "WPA2-PSK")

    def test_set(self):
        """A valid SET_WIFI_INFO is written to UCI and the WiFi reloads."""
        p = self.h.call(self, "SET_WIFI_INFO", SSIDIndex="1", SSID="Home", ENCRYPT="WPA-PSK",
                        PWD="12345678", Channel="0", PowerLevel="100", Enable="1").payload
        self.assertEqual(p["Status"], "0")
        w = self.h.backend.read_uci("wireless")
        iface, radio = w.section("default_radio0"), w.section("radio0")
        self.assertEqual((iface.options["ssid"], iface.options["encryption"],
                          iface.options["key"], iface.options["disabled"]),
                         ("Home", "psk", "12345678", "0"))
        self.assertEqual((radio.options["channel"], radio.options["txpower"]), ("auto", "20"))
        self.assertEqual(self.h.backend.applied, ["wireless"])
        self.assertEqual(self.h.backend.commands, [["wifi", "reload"]])

    def test_set_refused(self):
        """Bad SSID, password, channel, power or index: Status 1, nothing written."""
        for args in [{"SSID": "x" * 33}, {"ENCRYPT": "WPA2-PSK", "PWD": "short"},
                     {"Channel": "36"}, {"Channel": "14"}, {"PowerLevel": "0"},
                     {"ENCRYPT": "WEP"}, {"SSIDIndex": "3"}]:
            args.setdefault("SSIDIndex", "1")
            p = self.h.call(self, "SET_WIFI_INFO", **args).payload
            self.assertEqual(p["Status"], "1", args)
        self.assertEqual(self.h.backend.applied, [])
        self.assertEqual(self.h.call(self, "SET_WIFI_INFO", SSIDIndex="2", Channel="165")
                         .payload["Status"], "0")

    def test_ssid_disable(self):
        """SET_WLAN_SSID_DISABLE sets the iface's disabled option."""
        self.h.call(self, "SET_WLAN_SSID_DISABLE", SSIDIndex="1")
        self.assertEqual(self.h.backend.read_uci("wireless").section("default_radio0")
                         .options["disabled"], "1")

    def test_ssid_disable_answered_after_the_reload(self):
        """On OpenWrt the SET is answered once ``wifi reload`` has run, not before; a
        failed reload still answers Status 0 (stored; the failure is logged)."""
        for code, cmd_id in ((0, "0000000A"), (1, "0000000B")):
            reload = self.h.backend.results["wifi"] = defer.Deferred()
            d = self.h.dispatcher.dispatch("local", {"CmdType": "SET_WLAN_SSID_DISABLE",
                                                     "SequenceId": cmd_id, "SSIDIndex": "1"})
            self.assertNoResult(d)
            reload.callback((code, b"", b""))
            self.assertEqual(self.successResultOf(d).payload["Status"], "0")
        self.assertEqual(self.h.backend.commands, [["wifi", "reload"]] * 2)

    def test_intf_info(self):
        """One entry per radio with band, channel and its SSID indexes."""
        p = self.h.call(self, "GET_WLAN_INTF_INFO").payload
        self.assertEqual([(r["Name"], r["Band"], r["Channel"], r["SSIDIndex"]) for r in p["List"]],
                         [("radio0", "2g", "1", "1"), ("radio1", "5g", "36", "2")])

    def test_attach_info(self):
        """Stations come from iw station dump; without interfaces a Note says so."""
        p = self.h.call(self, "GET_WLAN_ATTACH_INFO").payload
        self.assertEqual((p["Status"], p["Num"], p["Note"]), ("0", "0", "no WiFi interface up"))
        self.h.backend.stats["phy0-ap0"] = {"isup": True, "speed": 0, "mtu": 1500}
        self.h.backend.results["iw"] = (0, STATIONS, b"")
        p = self.h.call(self, "GET_WLAN_ATTACH_INFO").payload
        self.assertEqual(p["List"], [{"MAC": "AA:BB:CC:00:00:01", "Interface": "phy0-ap0",
                                      "RSSI": "-52", "RxBytes": "5000", "TxBytes": "9000",
                                      "ConnectedTime": "120", "TxRate": "286.7"}])
        self.h.backend.results["iw"] = (1, b"", b"nl80211 not found")
        p = self.h.call(self, "GET_WLAN_ATTACH_INFO").payload
        self.assertEqual((p["Num"], p["Note"]), ("0", "iw failed on phy0-ap0"))

    def test_rate_priority(self):
        """WiFi_Mode 1 turns legacy rates off on every radio; GET reports it."""
        p = self.h.call(self, "SET_WIFI_RATE_PRIORITY_MODE", WiFi_Mode="1").payload
        self.assertEqual(p["Status"], "0")
        w = self.h.backend.read_uci("wireless")
        self.assertEqual([d.options["legacy_rates"] for d in w.sections_of("wifi-device")],
                         ["0", "0"])
        p = self.h.call(self, "SET_WIFI_RATE_PRIORITY_MODE", OprType="GET").payload
        self.assertEqual(p["WiFi_Mode"], "1")


class WifiTimerTests(SynchronousTestCase):
    """SET_HG_WIFI_TIMER and the WifiTimer scheduler on a Clock."""

    def setUp(self):
        self.h = wireless_router(self)
        self.h.clock.advance(at(1, "21:59"))
        self.cap = self.h.providers[1]
        self.addCleanup(self.cap.stop)

    def radios(self):
        w = self.h.backend.read_uci("wireless")
        return [d.options.get("disabled", "0") for d in w.sections_of("wifi-device")]

    def test_off_and_on(self):
        """Radios go off at StartTime and on at EndTime across midnight."""
        self.cap.start(self.h.context)
        p = self.h.call(self, "SET_HG_WIFI_TIMER", StartTime="22:00", EndTime="06:30",
                        ControlCycle="DAY", Enable="1").payload
        self.assertEqual(p["Status"], "0")
        self.assertEqual(self.radios(), ["0", "0"])
        self.h.clock.advance(61)
        self.assertEqual(self.radios(), ["1", "1"])
        self.h.clock.pump([60] * (8 * 60 + 30))
        self.assertEqual(self.radios(), ["0", "0"])
        actions = self.cap.scheduler.actions
        self.assertEqual([kind for _, kind in actions], ["off", "on"])
        self.assertTrue(0 <= actions[0][0] - at(1, "22:00") < 2)
        self.assertTrue(0 <= actions[1][0] - at(2, "06:30") < 2)
        self.assertEqual(self.h.backend.applied, ["wireless", "wireless"])

    def test_stored_app_owned_and_rearmed(self):
        """The timer is APP-owned data and a new scheduler picks it up at start."""
        self.h.call(self, "SET_HG_WIFI_TIMER", StartTime="21:00", EndTime="23:00",
                    ControlCycle="1,2", Enable="1")
        self.assertEqual(self.h.store.get_section("wifi_timer", "1")["cycle"], "1,2")
        # a restart inside the window (Monday 21:59): radios go off at once
        self.cap.start(self.h.context)
        self.assertEqual(self.radios(), ["1", "1"])
        self.h.store.factory_reset_app()
        self.assertIsNone(self.h.store.get_section("wifi_timer", "1"))
        self.h.clock.advance(61)
        self.assertEqual(self.radios(), ["0", "0"])

    def set_radio(self, index, disabled):
        w = self.h.backend.read_uci("wireless")
        w.sections_of("wifi-device")[index].options["disabled"] = disabled
        self.h.backend.write_uci("wireless", w)

    def test_on_edge_spares_user_disabled_radio(self):
        """A radio the user had disabled before the window stays disabled at its end."""
        self.set_radio(1, "1")
        self.cap.start(self.h.context)
        self.h.call(self, "SET_HG_WIFI_TIMER", StartTime="22:00", EndTime="06:30",
                    ControlCycle="DAY", Enable="1")
        self.h.clock.advance(61)
        self.assertEqual(self.radios(), ["1", "1"])
        self.h.clock.pump([60] * (8 * 60 + 30))
        self.assertEqual(self.radios(), ["0", "1"])

    def test_restart_inside_window_still_turns_back_on(self):
        """Radios the timer turned off come back on at the window's end after a restart
        inside it, and a radio disabled by the user stays off."""
        self.set_radio(0, "1")
        self.cap.start(self.h.context)
        self.h.call(self, "SET_HG_WIFI_TIMER", StartTime="22:00", EndTime="06:30", Enable="1")
        self.h.clock.advance(61)
        self.assertEqual(self.h.store.get_section("wifi_timer", "1")["radios_off"],
                         self.radio_names()[1])
        self.cap.stop()
        self.cap.start(self.h.context)
        self.h.clock.pump([60] * (8 * 60 + 30))
        self.assertEqual(self.radios(), ["1", "0"])
        self.assertEqual(self.h.store.get_section("wifi_timer", "1")["radios_off"], "")

    def test_disable_inside_window_restores(self):
        """Disabling the timer inside its window turns back on what the timer turned off."""
        self.cap.start(self.h.context)
        self.h.call(self, "SET_HG_WIFI_TIMER", StartTime="22:00", EndTime="06:30", Enable="1")
        self.h.clock.advance(61)
        self.h.call(self, "SET_HG_WIFI_TIMER", Enable="0")
        self.assertEqual(self.radios(), ["0", "0"])
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def radio_names(self):
        w = self.h.backend.read_uci("wireless")
        return [d.name for d in w.sections_of("wifi-device")]

    def test_weekdays(self):
        """On a day not in ControlCycle nothing happens."""
        self.h.call(self, "SET_HG_WIFI_TIMER", StartTime="22:00", EndTime="23:00",
                    ControlCycle="WEEK2,3", Enable="1")
        self.cap.start(self.h.context)
        self.h.clock.pump([60] * 90)
        self.assertEqual(self.cap.scheduler.actions, [])

    def test_refused(self):
        """Bad times or cycle are Status 1 and store nothing."""
        for args in [{"StartTime": "24:00", "EndTime": "06:00"},
                     {"StartTime": "22:00", "EndTime": "6:00"},
                     {"StartTime": "22:00", "EndTime": "06:00", "ControlCycle": "8"}]:
            p = self.h.call(self, "SET_HG_WIFI_TIMER", Enable="1", **args).payload
            self.assertEqual(p["Status"], "1", args)
        wifi.ensure_schema(self.h.store.schema)
        self.assertIsNone(self.h.store.get_section("wifi_timer", "1"))


class LinuxWifiTests(SynchronousTestCase):
    """WiFi calls through LinuxBackend on this machine."""

    def test_real_machine(self):
        """Here (no /etc/config/wireless) GET_WIFI_INFO is the documented Status 1."""
        backend = LinuxBackend(Clock())
        if backend.read_uci("wireless") is not None:  # pragma: no cover - a real router
            raise self.skipTest("this machine has a UCI wireless config")
        h = Harness(self, providers=[wifi.WifiInfo()], backend=backend)
        p = h.call(self, "GET_WIFI_INFO").payload
        self.assertEqual(p["FailReason"], wifi.NO_WIFI)
        self.assertEqual(wifi.wifi_devices(backend),
                         sorted(n for n in backend.net_if_stats()
                                if n.startswith(("wlan", "wl", "ath", "phy"))))


class WifiTimerIdleTests(SynchronousTestCase):
    """An idle router sleeps: with no timer set the scheduler arms nothing."""

    def test_no_timer_no_wakeup(self):
        """Started with no timer stored, the scheduler leaves no call on the clock; a timer
        set later arms the once-a-minute check, and disabling it leaves none again."""
        h = wireless_router(self)
        cap = h.providers[1]
        cap.start(h.context)
        self.addCleanup(cap.stop)
        self.assertEqual(h.clock.getDelayedCalls(), [])
        h.call(self, "SET_HG_WIFI_TIMER", StartTime="22:00", EndTime="06:30", Enable="1")
        self.assertEqual(len(h.clock.getDelayedCalls()), 1)
        h.call(self, "SET_HG_WIFI_TIMER", Enable="0")
        self.assertEqual(h.clock.getDelayedCalls(), [])
