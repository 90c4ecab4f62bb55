"""The HTTP API through a real twisted.web Site on a StringTransport and a Clock, no
sockets; its configuration and its wiring in the platform's tap."""

import json

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.endpoints import TCP4ServerEndpoint, TCP6ServerEndpoint
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity, wire
from cubegw.platform import tap
from cubegw.platform.api import Api, build_site
from cubegw.platform.config import (
    ConfigError, DeviceConfig, Endpoint, PlatformConfig, UserConfig, parse_config)
from cubegw.platform.faults import FaultRules
from cubegw.platform.operation import TriggerError
from cubegw.platform.plugincenter import PluginCenter
from cubegw.platform.registry import MemoryStore, Registry

from tests.helpers import MAC, SN
from tests.helpers.plugincenter import Gateway

LOID = "0755123456"
OTHER = "001122334455"
OTHER_SN = "001122-ABCDEFABCDEF12345"
USERS = (UserConfig("U1", "token-one-1", admin=True), UserConfig("U2", "token-two-2"))
DEV_RND = "0123456789ABCDEF0123456789ABCDEF"


class FakeOperation:
    """Records RequestPlug-in triggers; answers them with ``result`` or fails at once."""

    def __init__(self):
        self.sent = []
        self.refuse = None
        self.pending = []

    def send_request_plugin(self, mac, host, port):
        if self.refuse:
            return defer.fail(TriggerError(self.refuse))
        self.sent.append((mac, host, port))
        d = defer.Deferred()
        self.pending.append(d)
        return d


class Response:
    """An HTTP/1.0 response read from a StringTransport once it is complete."""

    def __init__(self, channel, transport):
        self.channel = channel
        self.transport = transport

    def parse(self):
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.code = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in
                        (line.partition(":") for line in lines[1:])}
        self.json = json.loads(body) if body else None
        return self

    @property
    def done(self):
        return self.transport.disconnecting


class ApiHarness:
    """The API over an in-memory registry, a real PluginCenter and a fake operation
    platform, all on one Clock."""

    def __init__(self, testcase):
        self.testcase = testcase
        self.clock = Clock()
        self.registry = Registry(MemoryStore(), self.clock, flush_delay=0)
        self.registry.load()
        self.registry.preset([DeviceConfig(MAC, sn=SN, loid=LOID),
                              DeviceConfig(OTHER, sn=OTHER_SN, loid="0755999999",
                                           user_id="U2")])
        self.faults = FaultRules()
        self.center = PluginCenter(self.registry, self.faults, self.clock,
                                   boot_timeout=None, idle_timeout=None)
        self.center.log = Logger(observer=lambda e: None)
        self.operation = FakeOperation()
        self.api = Api(USERS, self.registry, self.faults, self.center, self.operation,
                       lambda: ("pc.example", 9000), self.clock, online_timeout=180,
                       urandom=lambda n: b"\xab" * n)
        self.api.log = Logger(observer=lambda e: None)
        self.site = build_site(self.api, reactor=self.clock, timeout=None)

    def start(self, method, path, body=None, token="token-one-1", raw=None):
        """Send a request; return its Response (call ``parse()`` once it is done)."""
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        transport = StringTransport()
        channel.makeConnection(transport)
        data = raw if raw is not None else (b"" if body is None else
                                            json.dumps(body).encode())
        lines = [f"{method} {path} HTTP/1.0", "Host: cubeplat",
                 f"Content-Length: {len(data)}"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        channel.dataReceived("\r\n".join(lines).encode() + b"\r\n\r\n" + data)
        return Response(channel, transport)

    def request(self, method, path, body=None, token="token-one-1", raw=None):
        """Send a request that completes at once; return the parsed Response."""
        response = self.start(method, path, body, token, raw)
        self.testcase.assertTrue(response.done, "the response is not complete")
        return response.parse()

    def bind(self, user="U1"):
        self.registry.bind(MAC, user)
        self.clock.advance(0)     # the registry's write-behind

    def settle(self):
        """No timer left behind (registry writes run first)."""
        self.clock.advance(0)
        self.testcase.assertEqual(self.clock.getDelayedCalls(), [])
        self.testcase.assertEqual(self.center.pending_calls(), 0)

    def connect_gateway(self):
        """A plugin session from the host the device registered from (127.0.0.9)."""
        record = self.registry.get(MAC)
        if not record.registered:
            self.registry.update(MAC, registered=True, hb_addr=("127.0.0.9", 50000))
        gw = Gateway(self.center)
        gw.connect()
        gw.frames()
        return gw


class AuthTests(SynchronousTestCase):
    def test_no_token(self):
        """Without a bearer token every endpoint is 401, with WWW-Authenticate."""
        h = ApiHarness(self)
        for method, path in [("GET", "/api/gateways"), ("POST", "/api/bind"),
                             ("GET", "/api/faults"), ("GET", "/nowhere"),
                             ("GET", f"/api/gateways/{OTHER}/connection")]:
            r = h.request(method, path, token=None)
            self.assertEqual(r.code, 401, path)
            self.assertIn("error", r.json)
            self.assertIn("Bearer", r.headers["www-authenticate"])

    def test_bad_token(self):
        """An unknown token, or another scheme, is 401."""
        h = ApiHarness(self)
        self.assertEqual(h.request("GET", "/api/gateways", token="nope").code, 401)
        r = h.start("GET", "/api/gateways", token=None)
        self.assertEqual(r.parse().code, 401)
        self.assertEqual(h.request("GET", "/api/gateways", token="").code, 401)

    def test_unknown_path_and_method(self):
        """Unknown paths are JSON 404; a wrong method is JSON 405 with Allow."""
        h = ApiHarness(self)
        r = h.request("GET", "/api/nothing")
        self.assertEqual((r.code, r.json), (404, {"error": "not found"}))
        self.assertEqual(h.request("GET", "/").code, 404)
        r = h.request("DELETE", "/api/faults")
        self.assertEqual(r.code, 405)
        self.assertEqual(r.headers["allow"], "GET, PUT")
        self.assertEqual(r.headers["content-type"], "application/json; charset=utf-8")


class BindTests(SynchronousTestCase):
    def test_bind(self):
        """The encrypted SN MD5(DevRND+SN) of CHECK_PASSWD_PARAM and the LOID of an
        unbound device bind it to the caller (lower case too)."""
        h = ApiHarness(self)
        h.registry.update(MAC, dev_rnd=DEV_RND)
        encrypted = identity.encrypted_sn(DEV_RND, SN)
        r = h.request("POST", "/api/bind", {"sn": encrypted, "loid": LOID})
        self.assertEqual((r.code, r.json), (200, {"mac": MAC, "user_id": "U1"}))
        self.assertEqual(h.registry.get(MAC).user_id, "U1")
        self.assertEqual(h.request("POST", "/api/bind",
                                   {"sn": encrypted.lower(), "loid": LOID}).code, 200)

    def test_plain_sn_refused(self):
        """The plain SN (anyone who knows the MAC can make it) binds nothing, nor does
        an encrypted SN of a DevRND no longer current, nor any SN before a Register."""
        h = ApiHarness(self)
        self.assertEqual(h.request("POST", "/api/bind", {"sn": SN, "loid": LOID}).code, 404)
        h.registry.update(MAC, dev_rnd=DEV_RND)
        self.assertEqual(h.request("POST", "/api/bind", {"sn": SN, "loid": LOID}).code, 404)
        old = identity.encrypted_sn(DEV_RND, SN)
        h.registry.update(MAC, dev_rnd="AB" * 16)   # a trigger answer's fresh DevRND
        self.assertEqual(h.request("POST", "/api/bind", {"sn": old, "loid": LOID}).code, 404)
        self.assertEqual(h.registry.get(MAC).user_id, "")

    def test_not_found(self):
        """No device with that SN and LOID: 404."""
        h = ApiHarness(self)
        self.assertEqual(h.request("POST", "/api/bind", {"sn": SN, "loid": "x"}).code, 404)
        self.assertEqual(h.request("POST", "/api/bind",
                                   {"sn": "64D954-00000000000000000", "loid": LOID}).code,
                         404)

    def test_bound_to_another(self):
        """A device bound to another user is 409, and stays theirs."""
        h = ApiHarness(self)
        h.registry.update(OTHER, dev_rnd=DEV_RND)
        r = h.request("POST", "/api/bind", {"sn": identity.encrypted_sn(DEV_RND, OTHER_SN),
                                            "loid": "0755999999"})
        self.assertEqual(r.code, 409)
        self.assertEqual(h.registry.get(OTHER).user_id, "U2")

    def test_bad_bodies(self):
        """Bad JSON, a non-object, or missing fields are 400."""
        h = ApiHarness(self)
        for raw in (b"{", b"[1]", b"", b'{"sn": 1, "loid": "x"}', b"\xff"):
            r = h.request("POST", "/api/bind", raw=raw)
            self.assertEqual(r.code, 400, raw)
            self.assertIn("error", r.json)


class GatewayTests(SynchronousTestCase):
    def test_listing(self):
        """A user lists only their gateways, with online state and last heartbeat."""
        h = ApiHarness(self)
        h.bind()
        h.clock.advance(100)
        h.registry.update(MAC, online=True, last_hb=90.0, registered=True)
        r = h.request("GET", "/api/gateways")
        self.assertEqual(r.code, 200)
        [gw] = r.json["gateways"]
        self.assertEqual((gw["mac"], gw["sn"], gw["online"], gw["last_heartbeat"],
                          gw["plugin_connected"]), (MAC, SN, True, 90.0, False))
        h.clock.advance(200)
        self.assertFalse(h.request("GET", "/api/gateways").json["gateways"][0]["online"])
        r = h.request("GET", "/api/gateways", token="token-two-2")
        self.assertEqual([g["mac"] for g in r.json["gateways"]], [OTHER])

    def test_other_users_gateway_is_404(self):
        """A token cannot read or control another user's gateway: 404, as for none."""
        h = ApiHarness(self)
        h.bind("U2")
        for method, action, body in [("GET", "connection", None), ("GET", "reports", None),
                                     ("POST", "connect", None),
                                     ("POST", "call", {"parameter": {"CmdType": "X"}})]:
            for mac in (MAC, "AABBCCDDEEFF", "zz"):
                r = h.request(method, f"/api/gateways/{mac}/{action}", body)
                self.assertEqual((r.code, r.json), (404, {"error": "no such gateway"}),
                                 (mac, action))
        self.assertEqual(h.operation.sent, [])
        self.assertEqual(h.request("GET", f"/api/gateways/{MAC}/connection",
                                   token="token-two-2").code, 200)

    def test_unknown_action(self):
        """An unknown action, or extra path segments, is 404."""
        h = ApiHarness(self)
        h.bind()
        self.assertEqual(h.request("GET", f"/api/gateways/{MAC}/nothing").code, 404)
        self.assertEqual(h.request("GET", f"/api/gateways/{MAC}/connection/x").code, 404)
        self.assertEqual(h.request("GET", f"/api/gateways/{MAC}").code, 404)

    def test_connect(self):
        """connect sends RequestPlug-in with the plugin center's address: 202."""
        h = ApiHarness(self)
        h.bind()
        r = h.request("POST", f"/api/gateways/{MAC.lower()}/connect")
        self.assertEqual(r.code, 202)
        self.assertEqual(r.json, {"requested": True, "server_addr": "pc.example",
                                  "server_port": 9000})
        self.assertEqual(h.operation.sent, [(MAC, "pc.example", 9000)])
        h.operation.pending[0].errback(TriggerError("late"))   # logged, not raised

    def test_connect_refused(self):
        """A trigger that cannot be sent (no heartbeat yet) is 409 with the reason."""
        h = ApiHarness(self)
        h.bind()
        h.operation.refuse = f"{MAC}: no heartbeat yet"
        r = h.request("POST", f"/api/gateways/{MAC}/connect")
        self.assertEqual((r.code, r.json), (409, {"error": f"{MAC}: no heartbeat yet"}))

    def test_connection(self):
        """connection says whether the gateway is registered at the plugin center."""
        h = ApiHarness(self)
        h.bind()
        path = f"/api/gateways/{MAC}/connection"
        self.assertEqual(h.request("GET", path).json, {"connected": False})
        h.connect_gateway()
        self.assertEqual(h.request("GET", path).json, {"connected": True})
        r = h.request("POST", f"/api/gateways/{MAC}/connect")
        self.assertEqual((r.code, r.json), (200, {"connected": True}))

    def test_reports(self):
        """reports lists what the gateway pushed, oldest first."""
        h = ApiHarness(self)
        h.bind()
        h.registry.add_report(MAC, {"CmdType": "DEVICE_SPEED"}, 5.0)
        r = h.request("GET", f"/api/gateways/{MAC}/reports")
        self.assertEqual(r.json, {"reports": [{"time": 5.0,
                                               "parameter": {"CmdType": "DEVICE_SPEED"}}]})


class CallTests(SynchronousTestCase):
    def test_not_connected(self):
        """A call to a gateway not connected to the plugin center is 409."""
        h = ApiHarness(self)
        h.bind()
        r = h.request("POST", f"/api/gateways/{MAC}/call",
                      {"parameter": {"CmdType": "GET_VERSION"}})
        self.assertEqual(r.code, 409)
        self.assertIn("not connected", r.json["error"])

    def test_call(self):
        """A call is a Post; the gateway's reply becomes result and return_parameter."""
        h = ApiHarness(self)
        h.bind()
        gw = h.connect_gateway()
        r = h.start("POST", f"/api/gateways/{MAC}/call",
                    {"parameter": {"CmdType": "GET_VERSION"}, "timeout": 5})
        self.assertFalse(r.done)
        [post] = gw.frames()
        self.assertEqual(wire.decode_parameter(post["Parameter"]),
                         {"CmdType": "GET_VERSION", "SequenceId": "ABABABAB"})
        gw.reply(post["ID"], Status="0", Version="1.0")
        self.assertTrue(r.done)
        r.parse()
        self.assertEqual((r.code, r.json), (200, {"result": 0, "return_parameter": {
            "Status": "0", "Version": "1.0"}}))
        h.settle()

    def test_timeout(self):
        """A gateway that never answers: 504 with result -100 after the timeout."""
        h = ApiHarness(self)
        h.bind()
        h.connect_gateway()
        r = h.start("POST", f"/api/gateways/{MAC}/call",
                    {"parameter": {"CmdType": "GET_VERSION"}, "timeout": 2})
        h.clock.advance(1.9)
        self.assertFalse(r.done)
        h.clock.advance(0.1)
        r.parse()
        self.assertEqual(r.code, 504)
        self.assertEqual(r.json["result"], -100)
        self.assertIn("within 2 s", r.json["error"])

    def test_gateway_gone(self):
        """The gateway disconnecting mid-call is 502 at once."""
        h = ApiHarness(self)
        h.bind()
        gw = h.connect_gateway()
        r = h.start("POST", f"/api/gateways/{MAC}/call",
                    {"parameter": {"CmdType": "GET_VERSION"}})
        gw.lose()
        self.assertEqual(r.parse().code, 502)
        h.settle()

    def test_client_gone(self):
        """The app hanging up mid-call is harmless when the reply comes."""
        h = ApiHarness(self)
        h.bind()
        gw = h.connect_gateway()
        r = h.start("POST", f"/api/gateways/{MAC}/call",
                    {"parameter": {"CmdType": "GET_VERSION"}})
        [post] = gw.frames()
        r.channel.connectionLost(Failure(ConnectionDone()))
        gw.reply(post["ID"])
        h.settle()

    def test_bad_call_bodies(self):
        """A missing CmdType, a bad timeout or bad JSON are 400."""
        h = ApiHarness(self)
        h.bind()
        h.connect_gateway()
        path = f"/api/gateways/{MAC}/call"
        for body in ({}, {"parameter": "x"}, {"parameter": {}},
                     {"parameter": {"CmdType": "X"}, "timeout": 0},
                     {"parameter": {"CmdType": "X"}, "timeout": True},
                     {"parameter": {"CmdType": "X"}, "timeout": 1000},
                     {"parameter": {"CmdType": "X"}, "plugin_name": 1}):
            self.assertEqual(h.request("POST", path, body).code, 400, body)
        self.assertEqual(h.request("POST", path, raw=b"{nope").code, 400)
        self.assertEqual(h.center.pending_calls(), 0)


class FaultsTests(SynchronousTestCase):
    def test_put_and_get(self):
        """PUT replaces the rules (a list or {"faults": [...]}); GET shows them."""
        h = ApiHarness(self)
        self.assertEqual(h.request("GET", "/api/faults").json, {"faults": []})
        rule = {"mac": "*", "message": "Post", "drop": 1}
        r = h.request("PUT", "/api/faults", [rule])
        self.assertEqual(r.code, 200)
        self.assertEqual(h.request("GET", "/api/faults").json,
                         {"faults": [dict(rule, remaining=1)]})
        r = h.request("PUT", "/api/faults", {"faults": []})
        self.assertEqual(r.json, {"faults": []})

    def test_admin_only(self):
        """A user who is not an admin gets 403 for the rules, and they stay as they were."""
        h = ApiHarness(self)
        h.request("PUT", "/api/faults", [{"mac": "*", "message": "Hb", "no_reply": True}])
        for method, body in (("GET", None), ("PUT", [])):
            r = h.request(method, "/api/faults", body, token="token-two-2")
            self.assertEqual(r.code, 403, method)
            self.assertIn("admin", r.json["error"])
        self.assertEqual(len(h.request("GET", "/api/faults").json["faults"]), 1)

    def test_bad_rule(self):
        """A bad rule is 400 naming it, and the rules stay as they were."""
        h = ApiHarness(self)
        h.request("PUT", "/api/faults", [{"mac": "*", "message": "Hb", "no_reply": True}])
        r = h.request("PUT", "/api/faults", [{"mac": "*", "message": "Hb"}])
        self.assertEqual(r.code, 400)
        self.assertIn("faults[0] (mac=*, message=Hb)", r.json["error"])
        for body in ({"rules": []}, "x"):
            self.assertEqual(h.request("PUT", "/api/faults", body).code, 400)
        self.assertEqual(h.request("PUT", "/api/faults", raw=b"[").code, 400)
        self.assertEqual(len(h.request("GET", "/api/faults").json["faults"]), 1)


class ConfigTests(SynchronousTestCase):
    def test_defaults(self):
        """The plugin center and API default to 127.0.0.1:9000 and :8080, no users."""
        c = parse_config("")
        self.assertEqual((c.plugin_center, c.api, c.users),
                         (Endpoint("127.0.0.1", 9000), Endpoint("127.0.0.1", 8080), ()))

    def test_keys(self):
        """plugin_center, api and users are read."""
        c = parse_config("""
plugin_center: {host: 0.0.0.0, port: 0, advertised_host: pc.example}
api: {port: "0"}
users: [{user_id: U1, token: secret-token}, {user_id: LAB, token: lab-token, admin: true}]
""")
        self.assertEqual(c.plugin_center.advertised, "pc.example")
        self.assertEqual(c.api.port, 0)
        self.assertEqual(c.users, (UserConfig("U1", "secret-token"),
                                   UserConfig("LAB", "lab-token", admin=True)))
        self.assertNotIn("secret-token", repr(c.users))

    def test_errors(self):
        """Bad values are refused with the key named."""
        cases = [
            ("plugin_center: {port: -1}", "plugin_center.port"),
            ("plugin_center: {host: 0.0.0.0}", "plugin_center.advertised_host"),
            ("api: {advertised_host: x}", "api.advertised_host"),
            ("users: {}", "users"),
            ("users: [{token: abcdefgh}]", "users[0].user_id"),
            ("users: [{user_id: U1, token: short}]", "users[0].token"),
            ("users: [{user_id: U1, token: abcdefgh, x: 1}]", "users[0].x"),
            ("users: [{user_id: U1, token: abcdefgh, admin: yes-please}]", "users[0].admin"),
            ("users: [{user_id: U1, token: abcdefgh}, {user_id: U1, token: abcdefgi}]",
             "users[1].user_id"),
            ("users: [{user_id: U1, token: abcdefgh}, {user_id: U2, token: abcdefgh}]",
             "users[1].token"),
        ]
        for text, key in cases:
            e = self.assertRaises(ConfigError, parse_config, text)
            self.assertIn(key, str(e), text)


class TapTests(SynchronousTestCase):
    def test_plugin_timeouts(self):
        """plugin_boot_timeout and plugin_idle_timeout reach the plugin center; 0 = never."""
        c = parse_config("plugin_boot_timeout: 5\nplugin_idle_timeout: 0\n")
        self.assertEqual((c.plugin_boot_timeout, c.plugin_idle_timeout), (5, 0))
        self.assertEqual(parse_config("").plugin_boot_timeout, 30)
        self.assertRaises(ConfigError, parse_config, "plugin_boot_timeout: -1")
        top = tap.makeService({"platform": c}, MemoryReactorClock())
        self.assertEqual((top.plugin_center.boot_timeout, top.plugin_center.idle_timeout),
                         (5, None))

    def test_listeners(self):
        """The plugin center and the API listen once the registry is loaded; the bound
        ports are logged and RequestPlug-in advertises the plugin center's."""
        reactor = MemoryReactorClock()
        reactor.listenUDP = lambda port, protocol, interface="", maxPacketSize=8192: None
        config = PlatformConfig(plugin_center=Endpoint("127.0.0.1", 0, "pc.example"),
                                api=Endpoint("127.0.0.1", 0), users=USERS)
        options = tap.Options()
        options.check_database = options.check_ports = False
        options.parseOptions(["--plugin-center-port", "9100", "--api-port", "8100"])
        self.assertEqual((options["platform"].plugin_center.port,
                          options["platform"].api.port), (9100, 8100))
        top = tap.makeService({"platform": config}, reactor)
        top.registry.store = MemoryStore()
        self.assertIsInstance(top.plugin_center, PluginCenter)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        top.startService()
        self.assertEqual([(port, interface) for port, _, _, interface in reactor.tcpServers],
                         [(0, "127.0.0.1"), (0, "127.0.0.1")])
        messages = [formatEvent(e) for e in events]
        self.assertIn("plugin center listening on 127.0.0.1:0", messages)
        self.assertIn("HTTP API listening on 127.0.0.1:0", messages)
        self.assertEqual(top.api.plugin_address(), ("pc.example", 0))
        self.successResultOf(top.stopService())
        self.assertFalse(top.frontends.running)

    def test_endpoint_family(self):
        """An IPv6 host (::1, ::) gets a TCP6 endpoint, anything else a TCP4 one; logs put
        an IPv6 host in brackets."""
        reactor = MemoryReactorClock()
        for host in ("::1", "::"):
            self.assertIsInstance(tap.server_endpoint(reactor, host, 0), TCP6ServerEndpoint)
        for host in ("127.0.0.1", "0.0.0.0", "localhost"):
            self.assertIsInstance(tap.server_endpoint(reactor, host, 0), TCP4ServerEndpoint)
        self.assertEqual(tap.host_port("::1", 9000), "[::1]:9000")
        self.assertEqual(tap.host_port("127.0.0.1", 9000), "127.0.0.1:9000")

    def test_plugin_center_on_ipv6(self):
        """plugin_center.host "::1" listens there and advertises ::1 in RequestPlug-in."""
        config = parse_config('plugin_center: {host: "::1", port: 0}\n'
                              'api: {port: 0}\n')
        reactor = MemoryReactorClock()
        reactor.listenUDP = lambda port, protocol, interface="", maxPacketSize=8192: None
        top = tap.makeService({"platform": config}, reactor)
        top.registry.store = MemoryStore()
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        top.startService()
        self.assertEqual([(port, interface) for port, _, _, interface in reactor.tcpServers],
                         [(0, "::1"), (0, "127.0.0.1")])
        self.assertIn("plugin center listening on [::1]:0", [formatEvent(e) for e in events])
        self.assertEqual(top.api.plugin_address(), ("::1", 0))
        self.successResultOf(top.stopService())
