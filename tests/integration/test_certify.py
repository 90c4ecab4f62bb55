"""``cubegw-certify`` on loopback: the real ``twistd cubeplat`` and ``twistd cubegw``
with scaled-down timings, the suite run as its own process against them."""

import json
import os
import sys

import yaml
from twisted.internet import defer, reactor, utils
from twisted.trial.unittest import TestCase

from cubegw.ctl import main as ctl_main
from tests.helpers.config import gateway_config
from tests.integration.support import (
    MAC, ROOT, Daemon, free_tcp_port, scratch_dir)
from cubegw.demo import free_port

TOKEN = "certify-admin-1"
GATEWAY_TIMING = {"boot_jitter": 0.2, "retry_initial": 0.3, "retry_factor": 2,
                  "retry_max": 2, "silence": 1.5, "reply_timeout": 0.3, "hb_timeout": 0.4,
                  "plugin_retry_initial": 0.1, "plugin_retry_max": 1,
                  "plugin_reply_timeout": 2, "call_timeout": 3}
#: What certify is told about the DUT: the same timings.
PROFILE = dict(GATEWAY_TIMING, heartbeat=1)
PROFILE.pop("call_timeout")
PROFILE.pop("plugin_reply_timeout")
PASSING = ["s6.*", "s5.key.bad", "s5.key.resend", "s7.disconnect", "s7.reconnect",
           "cat.consistent"]


class CertifyTests(TestCase):
    timeout = 240

    @defer.inlineCallbacks
    def setUp(self):
        self.tmp = scratch_dir(self)
        self.api_port = free_tcp_port()
        dist, oper = free_port(), free_port()
        config = {
            "distribution": {"host": "127.0.0.1", "port": dist},
            "operation": {"host": "127.0.0.1", "port": oper},
            "plugin_center": {"host": "127.0.0.1", "port": 0},
            "api": {"host": "127.0.0.1", "port": self.api_port},
            "users": [{"user_id": "LAB", "token": TOKEN, "admin": True}],
            "heartbeat_interval": 1, "trigger_timeout": 2, "registry": "memory",
            "message_log": 512, "plugin_boot_timeout": 5, "plugin_idle_timeout": 10,
            "devices": [{"mac": MAC, "wifi_ssid": "ChinaNet-TEST", "wifi_password": "wifipass",
                         "useradmin_password": "admin1", "telecomadmin_password": "telecom1"}],
        }
        path = os.path.join(self.tmp, "cubeplat.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(config, f)
        self.platform = Daemon("cubeplat", ["--config", path], self.tmp)
        self.addCleanup(self.platform.stop, "KILL")
        self.platform.start()
        yield self.platform.wait_for("cubeplat ready", 20)
        gw_config = gateway_config(self.tmp, timing=GATEWAY_TIMING)
        with open(os.devnull, "w") as devnull:
            self.assertEqual(ctl_main(["--config", gw_config, "mgt", "set", "Heartbeat", "1"],
                                      out=devnull), 0)
        self.gateway = Daemon("cubegw", ["--config", gw_config, "--mgt-url", "127.0.0.1",
                                         "--port", str(dist)], self.tmp)
        self.addCleanup(self.gateway.stop, "KILL")
        self.gateway.start()

    def certify(self, *args):
        report = os.path.join(self.tmp, "report.json")
        argv = ["-m", "cubegw.platform.certify.cli", "--platform",
                f"http://127.0.0.1:{self.api_port}", "--token", TOKEN, "--dut", MAC,
                "--json", report, "--junit", os.path.join(self.tmp, "junit.xml"),
                "--html", os.path.join(self.tmp, "report.html"), "--slack", "0.25"]
        for name, value in PROFILE.items():
            argv += ["--timing", f"{name}={value}"]
        d = utils.getProcessOutputAndValue(
            sys.executable, argv + list(args), env={"PYTHONPATH": ROOT}, path=self.tmp,
            reactor=reactor)

        def read(outcome):
            out, err, code = outcome
            with open(report) as f:
                return code, json.load(f), (out + err).decode()
        return d.addCallback(read)

    @defer.inlineCallbacks
    def test_cases_pass_against_cubegw(self):
        """Section 6, the Key check, Disconnect and reconnect, and the catalogue's
        consistency PASS against cubegw (the boot jitter case SKIPs without a restart
        command).  The cases left out FAIL on this branch's cubegw: see
        docs/CERTIFICATION.md (no DevRND in the trigger answer; Posts answered -12)."""
        code, report, text = yield self.certify("--cases", *PASSING)
        verdicts = {c["name"]: c["verdict"] for c in report["cases"]}
        self.assertEqual({n: v for n, v in verdicts.items() if v == "FAIL"}, {}, text)
        self.assertEqual(code, 0, text)
        self.assertEqual(verdicts["s6.boot.jitter"], "SKIP")
        self.assertGreaterEqual(len(verdicts), 20)
