"""protocol.md section 6, end to end: ``twistd cubeplat`` with fault rules against
``twistd cubegw``, both real processes on 127.0.0.1 with the timings scaled down.

Each test sets rules (in the platform config at start, or at run time with
``PUT /api/faults``) and follows the gateway's reaction in both daemons' logs and in
``cubegw-ctl status --json``.
"""

import io
import json
import os
import socket
import time
import urllib.error
import urllib.request

import yaml
from twisted.internet import defer, reactor, threads
from twisted.trial.unittest import TestCase

from cubegw.children import ChildDaemon
from cubegw.ctl import main as ctl_main
from cubegw.demo import free_port
from tests.integration.support import MAC, ROOT, gateway_config, sleep

USER, TOKEN = "U1", "e2e-token-u1"
TIMING = {"boot_jitter": 0.1, "retry_initial": 0.2, "retry_factor": 2, "retry_max": 1,
          "reply_timeout": 0.5, "hb_timeout": 0.6, "silence": 2}
SENT = "sent {} to the {} platform"


def rule(message, server="*", count=None, **action):
    out = dict(mac=MAC, message=message, server=server, **action)
    if count is not None:
        out["count"] = count
    return out


class FaultFlowTests(TestCase):
    timeout = 30

    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.dist_port, self.oper_port = free_port(), free_port()
        self.api_port = free_port(socket.SOCK_STREAM)
        self.gateway_config = gateway_config(self.tmp, timing=TIMING)
        self.children = []
        self.gw = self.plat = None

    def tearDown(self):
        return defer.gatherResults([c.stop("KILL") for c in self.children])

    # ------------------------------------------------------------- daemons

    def spawn(self, plugin, args):
        child = ChildDaemon(reactor, plugin, args, self.tmp, env={"PYTHONPATH": ROOT},
                            on_line=lambda line: child.times.append(time.monotonic()))
        child.times, child.cursor = [], 0
        self.children.append(child)
        return child.start()

    def start_platform(self, faults=(), heartbeat_interval=1, **device):
        config = {
            "distribution": {"host": "127.0.0.1", "port": self.dist_port},
            "operation": {"host": "127.0.0.1", "port": self.oper_port},
            "plugin_center": {"host": "127.0.0.1", "port": 0},
            "api": {"host": "127.0.0.1", "port": self.api_port},
            "users": [{"user_id": USER, "token": TOKEN, "admin": True}],
            "heartbeat_interval": heartbeat_interval, "trigger_timeout": 2,
            "db": os.path.join(self.tmp, "cubeplat.db"), "flush_delay": 0.1,
            "devices": [dict({"mac": MAC, "wifi_ssid": "ChinaNet-TEST",
                              "wifi_password": "wifipass", "useradmin_password": "admin1",
                              "telecomadmin_password": "telecom1", "user_id": USER},
                             **device)],
            "faults": list(faults),
            "log_level": "debug",   # the tests follow each Hb in the log
        }
        path = os.path.join(self.tmp, "cubeplat.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        self.plat = self.spawn("cubeplat", ["--config", path])
        return self.plat.wait_for("cubeplat ready")

    def start_gateway(self):
        self.gw = self.spawn("cubegw", ["--config", self.gateway_config, "--mgt-url",
                                        "127.0.0.1", "--port", str(self.dist_port)])
        return self.gw

    @defer.inlineCallbacks
    def see(self, child, needle, count=1, timeout=10):
        """Wait for ``needle`` ``count`` times past the child's cursor, moving it on;
        returns the arrival time of the last match."""
        for _ in range(count):
            yield child.wait_for(needle, timeout, after=child.cursor)
            child.cursor = next(i for i in range(child.cursor, len(child.output))
                                if needle in child.output[i]) + 1
        return child.times[child.cursor - 1]

    def lines(self, child, needle, start=0, end=None):
        """The child's output lines holding ``needle``, from ``start`` up to ``end``."""
        return [line for line in child.output[start:end] if needle in line]

    @defer.inlineCallbacks
    def registered(self):
        """Platform and gateway up; the gateway registered and one Hb answered."""
        yield self.start_platform()
        self.start_gateway()
        yield self.see(self.gw, "registered {")
        yield self.see(self.gw, "received Hb reply: Result 0")

    def status(self):
        out = io.StringIO()
        self.assertEqual(ctl_main(["--config", self.gateway_config, "status", "--json"],
                                  out=out), 0)
        return json.loads(out.getvalue())

    @defer.inlineCallbacks
    def status_shows(self, check, timeout=5):
        """The status file satisfies ``check`` within ``timeout`` (it is written just
        after the log line that announces the change)."""
        deadline = time.monotonic() + timeout
        while not check(self.status()) and time.monotonic() < deadline:
            yield sleep(0.05)
        status = self.status()
        self.assertTrue(check(status), status)

    def state_is(self, state):
        return self.status_shows(lambda status: status["state"] == state)

    # ----------------------------------------------------------------- API

    def api(self, method, path, body=None):
        def call():
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.api_port}/api/{path}", method=method,
                data=None if body is None else json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {TOKEN}",
                         "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())
        return threads.deferToThread(call)

    @defer.inlineCallbacks
    def set_faults(self, *rules):
        code, body = yield self.api("PUT", "faults", list(rules))
        self.assertEqual(code, 200, body)

    @defer.inlineCallbacks
    def plugin_connected(self):
        code, body = yield self.api("GET", f"gateways/{MAC}/connection")
        self.assertEqual(code, 200, body)
        return body["connected"]

    # -------------------------------------------------- distribution rows

    @defer.inlineCallbacks
    def test_bootfirst_failure_retried_with_backoff(self):
        """BootFirst -1 and -6: retried after a backoff wait (-6 logged as an error),
        then registration completes."""
        yield self.start_platform([rule("BootFirst", result=-1, count=1),
                                   rule("BootFirst", result=-6, count=1)])
        self.start_gateway()
        got = yield self.see(self.gw, "received BootFirst reply: Result -1")
        again = yield self.see(self.gw, SENT.format("BootFirst", "distribution"))
        self.assertGreaterEqual(again - got, 0.15)
        got = yield self.see(self.gw, "received BootFirst reply: Result -6")
        yield self.see(self.gw, "MAC not accepted")
        again = yield self.see(self.gw, SENT.format("BootFirst", "distribution"))
        self.assertGreaterEqual(again - got, 0.3)  # second retry: [0.4, 0.8]
        yield self.see(self.gw, "registered {")
        yield self.see(self.plat, f"{MAC} BootFirst -> Result -1")
        yield self.see(self.plat, f"{MAC} BootFirst -> Result -6")
        self.assertIn("#error] MAC not accepted", self.gw.text())

    @defer.inlineCallbacks
    def test_registerfirst_failure_and_distribution_minus5_restart_at_bootfirst(self):
        """RegisterFirst -1, BootFirst -5 and RegisterFirst -5: each goes back to
        BootFirst (a fresh challenge), never resending RegisterFirst."""
        yield self.start_platform([rule("RegisterFirst", result=-1, count=1),
                                   rule("BootFirst", result=-5, count=1),
                                   rule("RegisterFirst", result=-5, count=1)])
        self.start_gateway()
        for method, result in (("BootFirst", -5), ("RegisterFirst", -1),
                               ("RegisterFirst", -5)):
            yield self.see(self.gw, f"received {method} reply: Result {result}")
            # the next request after the failure is BootFirst
            yield self.see(self.gw, "sent ")
            self.assertIn(SENT.format("BootFirst", "distribution"),
                          self.gw.output[self.gw.cursor - 1])
        yield self.see(self.gw, "registered {")
        self.assertEqual(len(self.lines(self.plat, "BootFirst -> Result")), 4)

    @defer.inlineCallbacks
    def test_minus2_silence_then_bootfirst(self):
        """-2 (to RegisterFirst, then to Hb): silent for `silence` seconds, nothing sent,
        then BootFirst."""
        yield self.start_platform([rule("RegisterFirst", result=-2, count=1)])
        self.start_gateway()
        quiet = yield self.see(self.gw, "information rejected (-2): staying silent")
        start = self.gw.cursor
        yield self.state_is("silent")
        again = yield self.see(self.gw, SENT.format("BootFirst", "distribution"))
        # nothing sent while silent: up to the BootFirst just seen (RegisterFirst may follow)
        self.assertEqual(self.lines(self.gw, "sent ", start, self.gw.cursor),
                         [self.gw.output[self.gw.cursor - 1]])
        self.assertGreaterEqual(again - quiet, TIMING["silence"] - 0.1)
        yield self.see(self.gw, "registered {")
        yield self.state_is("online")

        # the operation side: Hb -2 (rule set at run time) silences it the same way
        yield self.set_faults(rule("Hb", result=-2, count=1))
        quiet = yield self.see(self.gw, "information rejected (-2): staying silent")
        again = yield self.see(self.gw, "sent ")
        self.assertIn(SENT.format("BootFirst", "distribution"),
                      self.gw.output[self.gw.cursor - 1])
        self.assertGreaterEqual(again - quiet, TIMING["silence"] - 0.1)
        yield self.see(self.gw, "registered {")

    # ----------------------------------------------------- operation rows

    @defer.inlineCallbacks
    def test_boot_minus1_three_times_back_to_distribution(self):
        """Boot -1 three times (with backoff in between): BootFirst again."""
        yield self.start_platform([rule("Boot", server="operation", result=-1, count=3)])
        self.start_gateway()
        yield self.see(self.gw, "received Boot reply: Result -1", count=3)
        yield self.see(self.gw, "operation platform failed: back to distribution")
        yield self.see(self.gw, SENT.format("BootFirst", "distribution"))
        yield self.see(self.gw, "registered {")
        self.assertEqual(len(self.lines(self.gw, "sent BootFirst to")), 2)
        self.assertEqual(len(self.lines(self.gw, "sent Boot to")), 4)

    @defer.inlineCallbacks
    def test_boot_unanswered_back_to_distribution(self):
        """Boot lost three times (drop): each timeout retried, then BootFirst."""
        yield self.start_platform([rule("Boot", drop=3)])
        self.start_gateway()
        yield self.see(self.gw, "operation platform failed: back to distribution",
                       timeout=15)
        yield self.see(self.gw, SENT.format("BootFirst", "distribution"))
        yield self.see(self.gw, "registered {")
        self.assertEqual(len(self.lines(self.plat, f"{MAC} Boot dropped")), 3)
        self.assertEqual(len(self.lines(self.gw, "sent Boot to")), 4)
        yield self.status_shows(lambda status: status["counters"]["timeouts"] >= 3)

    @defer.inlineCallbacks
    def test_operation_minus5_boots_again(self):
        """Register -5: Boot again at once (no BootFirst); three -5 in a row: BootFirst."""
        yield self.start_platform([rule("Register", result=-5, count=1)])
        self.start_gateway()
        yield self.see(self.gw, "received Register reply: Result -5")
        yield self.see(self.gw, "sent ")
        self.assertIn(SENT.format("Boot", "operation"), self.gw.output[self.gw.cursor - 1])
        yield self.see(self.gw, "registered {")
        self.assertEqual(len(self.lines(self.gw, "sent BootFirst to")), 1)

        yield self.set_faults(rule("Hb", result=-3, count=1),
                              rule("Boot", result=-5, count=3))
        yield self.see(self.gw, "received Boot reply: Result -5", count=3)
        yield self.see(self.gw, "-5 three times: back to distribution")
        yield self.see(self.gw, SENT.format("BootFirst", "distribution"))
        yield self.see(self.gw, "registered {")

    @defer.inlineCallbacks
    def test_register_3_resets_app_data_and_registers_without_user(self):
        """Register 3 (stored UserID is not the bound user): APP reset clears UserID, then
        Register again with an empty UserID, accepted."""
        self.assertEqual(ctl_main(["--config", self.gateway_config, "mgt", "set",
                                   "Heartbeat", "60"], out=io.StringIO()), 0)
        uci = os.path.join(self.tmp, "config", "cubegw")
        with open(uci) as f:
            text = f.read()
        with open(uci, "w") as f:
            f.write(text.replace("config app 'app'\n",
                                 "config app 'app'\n\toption UserID 'U9'\n"))
        yield self.start_platform()
        self.start_gateway()
        yield self.see(self.plat, f"{MAC} Register -> Result 3 (UserID 'U9'")
        yield self.see(self.gw, "Register 3: bound user differs")
        yield self.see(self.gw, "APP-side factory reset")
        yield self.see(self.gw, SENT.format("Register", "operation"))
        yield self.see(self.plat, f"{MAC} Register -> Result 2")
        yield self.see(self.gw, "registered {")
        self.assertEqual(len(self.lines(self.gw, "sent Boot to")), 1)
        with open(uci) as f:
            self.assertNotIn("U9", f.read())

    # ----------------------------------------------------- heartbeat rows

    @defer.inlineCallbacks
    def test_hb_minus3_boot(self):
        """Hb -3 (rule set at run time): Boot at the operation platform, no BootFirst."""
        yield self.registered()
        yield self.set_faults(rule("Hb", result=-3, count=1))
        yield self.see(self.plat, f"{MAC} Hb -> Result -3")
        yield self.see(self.gw, "Hb -3: registering again")
        yield self.see(self.gw, "sent ")
        self.assertIn(SENT.format("Boot", "operation"), self.gw.output[self.gw.cursor - 1])
        yield self.see(self.gw, "registered {")
        self.assertEqual(len(self.lines(self.gw, "sent BootFirst to")), 1)

    @defer.inlineCallbacks
    def test_hb_minus5_bootfirst(self):
        """Hb -5 (rule set at run time): back to the distribution platform."""
        yield self.registered()
        yield self.set_faults(rule("Hb", result=-5, count=1))
        yield self.see(self.gw, "Hb -5: back to distribution")
        yield self.see(self.gw, "sent ")
        self.assertIn(SENT.format("BootFirst", "distribution"),
                      self.gw.output[self.gw.cursor - 1])
        yield self.see(self.gw, "registered {")

    @defer.inlineCallbacks
    def test_hb_unanswered_three_times_boot(self):
        """Three Hb without a reply (no_reply): heartbeat lost, Boot again."""
        yield self.registered()
        yield self.set_faults(rule("Hb", no_reply=True, count=3))
        yield self.see(self.gw, "heartbeat lost: registering again")
        yield self.see(self.gw, "sent ")
        self.assertIn(SENT.format("Boot", "operation"), self.gw.output[self.gw.cursor - 1])
        yield self.see(self.gw, "registered {")
        self.assertEqual(len(self.lines(self.plat, f"{MAC} Hb -> Result 0, not sent")), 3)
        self.assertEqual(len(self.lines(self.gw, "sent BootFirst to")), 1)

    # ------------------------------------------------------------ restarts

    @defer.inlineCallbacks
    def test_gateway_restart_boots_at_stored_platform(self):
        """A restarted gateway Boots at the stored operation platform, no BootFirst."""
        yield self.registered()
        yield self.gw.stop()
        self.start_gateway()
        yield self.see(self.gw, "sent ")
        self.assertIn(SENT.format("Boot", "operation") + f" 127.0.0.1:{self.oper_port}",
                      self.gw.output[self.gw.cursor - 1])
        yield self.see(self.gw, "registered {")
        yield self.see(self.gw, "received Hb reply: Result 0")
        self.assertEqual(self.lines(self.gw, "BootFirst"), [])

    @defer.inlineCallbacks
    def test_platform_restart_keeps_registry(self):
        """The platform restarts (SQLite registry): the next Hb is answered 0."""
        yield self.start_platform(heartbeat_interval=3)
        self.start_gateway()
        yield self.see(self.gw, "received Hb reply: Result 0")
        yield self.plat.stop()
        yield self.start_platform(heartbeat_interval=3)
        yield self.see(self.plat, f"{MAC} Hb -> Result 0")
        yield self.see(self.gw, "received Hb reply: Result 0")
        yield self.see(self.gw, "received Hb reply: Result 0")
        self.assertEqual(self.lines(self.gw, "heartbeat lost"), [])
        self.assertEqual(len(self.lines(self.gw, "sent Boot to")), 1)
        code, body = yield self.api("GET", "gateways")
        [gateway] = body["gateways"]
        self.assertTrue(gateway["registered"] and gateway["online"], body)

    # -------------------------------------------------------- plugin center

    @defer.inlineCallbacks
    def test_plugin_center_disconnect_no_reconnect(self):
        """A plugin-center Disconnect: the gateway stays away until the next connect."""
        yield self.start_platform([rule("Register", server="plugin_center",
                                        disconnect=True, count=1)])
        self.start_gateway()
        yield self.see(self.gw, "received Hb reply: Result 0")
        code, body = yield self.api("POST", f"gateways/{MAC}/connect")
        self.assertEqual(code, 202, body)
        yield self.see(self.plat, f"{MAC} plugin Disconnect sent")
        yield self.see(self.gw, "said Disconnect; down until the next")
        yield sleep(2)
        self.assertFalse((yield self.plugin_connected()))
        self.assertEqual(len(self.lines(self.plat, "plugin center: connection from")), 1)
        yield self.status_shows(
            lambda status: status["plugin_channel"]["state"] == "disconnected")

        code, body = yield self.api("POST", f"gateways/{MAC}/connect")
        self.assertEqual(code, 202, body)
        yield self.see(self.plat, f"{MAC} plugin Register -> Result 0 (connected)")
        self.assertTrue((yield self.plugin_connected()))

    @defer.inlineCallbacks
    def test_trigger_with_wrong_key_refused(self):
        """The platform's Key is wrong (other WiFi password): the gateway answers -1 and
        never connects."""
        yield self.start_platform(wifi_password="not-the-gateway-password")
        self.start_gateway()
        yield self.see(self.gw, "received Hb reply: Result 0")
        code, body = yield self.api("POST", f"gateways/{MAC}/connect")
        self.assertEqual(code, 202, body)
        yield self.see(self.gw, "wrong Key")
        yield self.see(self.plat, f"{MAC} RequestPlug-in answered: Result -1")
        for _ in range(4):
            self.assertFalse((yield self.plugin_connected()))
            yield sleep(0.5)
        self.assertEqual(self.lines(self.plat, "plugin center: connection from"), [])
        self.assertEqual(self.lines(self.gw, "connecting to the plugin center"), [])
        yield self.status_shows(lambda status: status["counters"]["triggers_refused"] == 1)
