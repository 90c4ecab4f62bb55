"""What capabilities store survives a daemon restart; the APP reset clears exactly its part.

A restart is modelled as it happens in the daemon: a new Store on the same UCI file, the
schema registered again, the WiFi timer and the firewall started again from it.
"""

import time

from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import lan_devices, wifi
from cubegw.record import replace
from cubegw.store import Store, builtin_schema

from tests.helpers.openwrt import at, lan_router, wireless_router


def restarted(store):
    """The store as a restarted daemon opens it."""
    again = Store(store.path, builtin_schema())
    wifi.ensure_schema(again.schema)
    lan_devices.ensure_schema(again.schema)
    return again


class RestartTests(SynchronousTestCase):
    def test_wifi_timer_survives_restart(self):
        """A timer set before a restart turns the radios off after it, at its time."""
        h = wireless_router(self)
        h.clock.advance(at(1, "21:00"))
        p = h.call(self, "SET_HG_WIFI_TIMER", StartTime="22:00", EndTime="06:30",
                   ControlCycle="DAY", Enable="1").payload
        self.assertEqual(p["Status"], "0")
        cap = wifi.WifiTimerCapability(time.gmtime)
        self.addCleanup(cap.stop)
        scheduler = cap.start(replace(h.context, store=restarted(h.store)))
        h.clock.pump([60] * 61)
        self.assertEqual([kind for _, kind in scheduler.actions], ["off"])
        radios = h.backend.read_uci("wireless").sections_of("wifi-device")
        self.assertEqual([r.options["disabled"] for r in radios], ["1", "1"])

    def test_access_rights_survive_restart(self):
        """A blocked device stays blocked after a restart: the firewall is rebuilt from the store."""
        h = lan_router(self)
        h.call(self, "SET_ATTACH_DEVICE_RIGHT", MAC="AA:BB:CC:00:00:02",
               InternetAccessRight="OFF")
        package = h.backend.read_uci("firewall")   # a firewall rebuilt without our rule
        package.sections = [sec for sec in package.sections
                            if not sec.options.get("name", "").startswith("cubegw_block")]
        h.backend.write_uci("firewall", package)
        names = [s.options.get("name") for s in h.backend.read_uci("firewall").sections_of("rule")]
        self.assertNotIn("cubegw_block_AABBCC000002", names)
        store = restarted(h.store)
        self.assertEqual(lan_devices.blocked_macs(store), ["AA:BB:CC:00:00:02"])
        self.successResultOf(lan_devices.sync_firewall(store, h.backend))
        names = [s.options.get("name") for s in h.backend.read_uci("firewall").sections_of("rule")]
        self.assertIn("cubegw_block_AABBCC000002", names)

    def test_app_reset_scope(self):
        """The APP reset clears access rights and APP-only data, and nothing else."""
        h = lan_router(self)
        h.call(self, "SET_ATTACH_DEVICE_RIGHT", MAC="AA:BB:CC:00:00:02",
               InternetAccessRight="OFF")
        store = h.store
        store.update({("mgt", "Heartbeat"): 30, ("registration", "ServerAddr"): "op.test",
                      ("registration", "ServerPort"): 60001, ("app", "UserID"): "U1",
                      ("itms", "ProvisioningCode"): "PC1"})
        store.factory_reset_app()
        store = restarted(store)
        self.assertEqual(lan_devices.blocked_macs(store), [])
        self.assertEqual(store.get("app", "UserID"), "")
        self.assertEqual((store.get("mgt", "Heartbeat"), store.get("registration", "ServerAddr"),
                          store.get("registration", "ServerPort"),
                          store.get("itms", "ProvisioningCode")),
                         (30, "op.test", 60001, "PC1"))
