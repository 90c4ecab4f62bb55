"""The admin view of the HTTP API: every device, unbind, triggers and plugin-center
messages on demand; and fault rules that could never fire refused with 400."""

import json

from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity

from tests.helpers import MAC, SN
from tests.helpers.platform import DEV_RND, DEVICE, USER, MemoryPlatform
from tests.helpers.plugincenter import Gateway

OTHER = "001122334455"


class DevicesTests(SynchronousTestCase):
    """GET /api/devices and /api/devices/<MAC>."""

    def setUp(self):
        self.platform = MemoryPlatform(devices=(DEVICE, DEVICE.__class__(OTHER)))

    def test_all_devices_with_phase_and_counters(self):
        """Bound or not, every device is listed with its phase, counters, last message."""
        self.platform.online(hbs=2)
        r = self.platform.request("GET", "/api/devices")
        self.assertEqual(r.code, 200)
        by_mac = {d["mac"]: d for d in r.json["devices"]}
        self.assertEqual(by_mac[MAC]["phase"], "online")
        self.assertEqual(by_mac[MAC]["counters"], {"in": 6, "out": 6, "kept": 12})
        self.assertEqual(by_mac[MAC]["last_message"]["message"], {"Result": 0, "Interval": 45})
        self.assertEqual((by_mac[OTHER]["phase"], by_mac[OTHER]["bound"]), ("known", False))

    def test_phases(self):
        """known -> distributed -> booted -> registered -> online -> plugin-connected."""
        def phase():
            return self.platform.request("GET", f"/api/devices/{MAC}").json["phase"]
        self.assertEqual(phase(), "known")
        self.platform.online()
        self.assertEqual(phase(), "online")
        Gateway(self.platform.center).connect()
        self.assertEqual(phase(), "plugin-connected")
        self.platform.clock.advance(1000)
        self.platform.center.close_all()
        self.assertEqual(phase(), "registered")

    def test_one_device_has_its_record_and_key(self):
        """The device view carries the registry record and the next trigger Key."""
        self.platform.online()
        r = self.platform.request("GET", f"/api/devices/{MAC}")
        self.assertEqual(r.json["record"]["sn"], SN)
        self.assertEqual(r.json["trigger_key"], identity.trigger_key(
            DEV_RND, SN, "ChinaNet-ABCD", "wifipass", "admin1"))

    def test_refusals(self):
        """Non-admin 403, unknown MAC 404, no token 401."""
        self.assertEqual(self.platform.request("GET", "/api/devices", token=USER).code, 403)
        self.assertEqual(self.platform.request("GET", "/api/devices/AABBCCDDEEFF").code, 404)
        self.assertEqual(self.platform.request("DELETE", "/api/devices/zz/binding").code, 404)
        self.assertEqual(self.platform.request("GET", "/api/devices", token=None).code, 401)

    def test_platform_info(self):
        """GET /api/platform: the interval and addresses gateways are told."""
        r = self.platform.request("GET", "/api/platform")
        self.assertEqual((r.json["heartbeat_interval"], r.json["plugin_center"]["port"],
                          r.json["distribution"]["port"]), (45, 9000, 12112))

    def test_unbind(self):
        """DELETE .../binding clears the bound user; a second time changes nothing."""
        self.platform.registry.bind(MAC, "U2")
        r = self.platform.request("DELETE", f"/api/devices/{MAC}/binding")
        self.assertEqual((r.code, r.json["was"]), (200, "U2"))
        self.assertEqual(self.platform.registry.get(MAC).user_id, "")
        r = self.platform.request("DELETE", f"/api/devices/{MAC}/binding")
        self.assertEqual(r.json["was"], "")


class OnDemandTests(SynchronousTestCase):
    """Triggers, Disconnect, a dropped connection and a Post, sent by the admin."""

    def setUp(self):
        self.platform = MemoryPlatform()
        self.platform.online()

    def sent(self):
        return [json.loads(d) for d, _ in self.platform.oper.transport.written]

    def test_request_plugin_answered(self):
        """RequestPlug-in with the computed Key; the gateway's Result comes back."""
        response = self.platform.start("POST", f"/api/devices/{MAC}/request-plugin")
        self.assertFalse(response.done)
        trigger = self.sent()[-1]
        self.assertEqual((trigger["RPCMethod"], trigger["ServerPort"]), ("RequestPlug-in", 9000))
        self.assertEqual(trigger["Key"], self.platform.registry.get(MAC).trigger_key())
        self.platform.send(self.platform.oper, {"Result": 0, "DevRND": "CD" * 16})
        self.assertEqual(response.parse().json, {"result": 0})

    def test_request_distri_with_a_given_key(self):
        """RequestDistri to a given address with the lab's own Key and mode."""
        self.platform.start("POST", f"/api/devices/{MAC}/request-distri",
                            {"host": "10.1.1.1", "port": 12113, "mode": "1", "key": "BAD"})
        trigger = self.sent()[-1]
        self.assertEqual((trigger["Key"], trigger["ServerAddr"], trigger["ServerPort"],
                          trigger["mode"]), ("BAD", "10.1.1.1", 12113, "1"))

    def test_trigger_timeout_and_refusals(self):
        """No answer: 504; bad body: 400; an unregistered device: 409."""
        response = self.platform.start("POST", f"/api/devices/{MAC}/request-plugin")
        self.platform.clock.advance(5)
        self.assertEqual(response.parse().code, 504)
        for body in ({"port": 0}, {"host": ""}, {"key": 5}, [1], {"mode": []}):
            self.assertEqual(self.platform.request(
                "POST", f"/api/devices/{MAC}/request-distri", body).code, 400, body)
        self.platform.registry.update(MAC, dev_rnd="")
        self.assertEqual(self.platform.request(
            "POST", f"/api/devices/{MAC}/request-plugin").code, 409)

    def test_disconnect_and_drop(self):
        """Disconnect sends the message and closes; drop aborts with none; both 409
        when the gateway is not connected."""
        gateway = Gateway(self.platform.center)
        gateway.connect()
        r = self.platform.request("POST", f"/api/devices/{MAC}/disconnect")
        self.assertEqual(r.code, 200)
        self.assertEqual(gateway.frames(), [{"RPCMethod": "Disconnect"}])
        self.assertEqual(self.platform.request(
            "POST", f"/api/devices/{MAC}/disconnect").code, 409)
        gateway = Gateway(self.platform.center, port=40001)
        gateway.connect()
        self.assertEqual(self.platform.request("POST", f"/api/devices/{MAC}/drop").code, 200)
        self.assertEqual((gateway.frames(), gateway.transport.disconnected), ([], True))
        self.assertEqual(self.platform.request("POST", f"/api/devices/{MAC}/drop").code, 409)

    def test_call_any_device(self):
        """An admin Post to an unbound device answers with the gateway's reply."""
        gateway = Gateway(self.platform.center)
        gateway.connect()
        response = self.platform.start("POST", f"/api/devices/{MAC}/call",
                                       {"parameter": {"CmdType": "GET_SN_INFO"}})
        post = gateway.frames()[0]
        gateway.reply(post["ID"], CmdType="GET_SN_INFO", Status="0")
        self.assertEqual(response.parse().json["return_parameter"]["Status"], "0")
        self.assertEqual(self.platform.request(
            "POST", f"/api/devices/{MAC}/call", {"parameter": 1}).code, 400)


class FalsePassTests(SynchronousTestCase):
    """PUT /api/faults refuses a rule that could never fire."""

    def test_refused_with_400(self):
        """disconnect on Post and distri_elsewhere on Boot are 400, naming where they fire."""
        platform = MemoryPlatform()
        for rule in ({"mac": "*", "message": "Post", "disconnect": True},
                     {"mac": "*", "message": "Boot", "distri_elsewhere": "h:1"}):
            r = platform.request("PUT", "/api/faults", [rule])
            self.assertEqual(r.code, 400)
            self.assertIn("never fires", r.json["error"])
        self.assertEqual(platform.faults.rules, [])
