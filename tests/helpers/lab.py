"""A lab on loopback for the certification and dashboard tests: cubeplat's config with
an admin user, a deep message log and the DUT's account data."""

import json
import os
import sys

import yaml
from twisted.internet import reactor, utils

from cubegw.ctl import main as ctl_main
from cubegw.demo import free_port
from tests.integration.support import ROOT, Daemon, free_tcp_port, scratch_dir

TOKEN = "certify-admin-1"
#: The gateway's timings, scaled down (what cubegw is configured with).
GATEWAY_TIMING = {"boot_jitter": 0.2, "retry_initial": 0.3, "retry_factor": 2,
                  "retry_max": 2, "silence": 1.5, "reply_timeout": 0.3, "hb_timeout": 0.4,
                  "plugin_retry_initial": 0.1, "plugin_retry_max": 1,
                  "plugin_reply_timeout": 2, "call_timeout": 3}
#: What certify is told about the DUT: the same timings, X_CT-COM_Mgt.Heartbeat 1 s.
PROFILE = {k: v for k, v in dict(GATEWAY_TIMING, heartbeat=1).items()
           if k not in ("call_timeout", "plugin_reply_timeout")}


def platform_config(tmp, dist, oper, api_port, devices, **extra):
    """Write cubeplat's YAML for loopback (memory registry, 1 s heartbeats); its path.

    ``devices``: the ``devices`` entries (MAC and account data)."""
    config = {
        "distribution": {"host": "127.0.0.1", "port": dist},
        "operation": {"host": "127.0.0.1", "port": oper},
        "plugin_center": {"host": "127.0.0.1", "port": 0},
        "api": {"host": "127.0.0.1", "port": api_port},
        "users": [{"user_id": "LAB", "token": TOKEN, "admin": True}],
        "heartbeat_interval": 1, "trigger_timeout": 2, "registry": "memory",
        "message_log": 20000, "plugin_boot_timeout": 5, "plugin_idle_timeout": 10,
        "devices": devices,
    }
    config.update(extra)
    path = os.path.join(tmp, "cubeplat.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


def dut_device(mac):
    """The ``devices`` entry of tests.helpers.config's loopback gateway."""
    return {"mac": mac, "wifi_ssid": "ChinaNet-TEST", "wifi_password": "wifipass",
            "useradmin_password": "admin1", "telecomadmin_password": "telecom1"}


class Lab:
    """cubeplat on loopback with free ports (started by ``start``)."""

    def __init__(self, testcase, devices, **extra):
        """``extra``: more keys of cubeplat's config (``platform_config``)."""
        self.testcase = testcase
        self.tmp = scratch_dir(testcase)
        self.api_port = free_tcp_port()
        self.dist, self.oper = free_port(), free_port()
        path = platform_config(self.tmp, self.dist, self.oper, self.api_port, devices,
                               **extra)
        self.platform = Daemon("cubeplat", ["--config", path], self.tmp)
        testcase.addCleanup(self.platform.stop, "KILL")

    def start(self):
        self.platform.start()
        return self.platform.wait_for("cubeplat ready", 20)

    def start_gateway(self, config):
        """``twistd cubegw`` on ``config`` against this lab's distribution platform, with
        X_CT-COM_Mgt.Heartbeat 1 s as the certification profile says; killed at cleanup."""
        with open(os.devnull, "w") as devnull:
            self.testcase.assertEqual(
                ctl_main(["--config", config, "mgt", "set", "Heartbeat", "1"], out=devnull), 0)
        gateway = Daemon("cubegw", ["--config", config, "--mgt-url", "127.0.0.1",
                                    "--port", str(self.dist)], self.tmp)
        self.testcase.addCleanup(gateway.stop, "KILL")
        return gateway.start()

    def certify(self, mac, *args):
        """Run cubegw-certify as a process: (exit status, JSON report, output)."""
        report = os.path.join(self.tmp, "report.json")
        argv = ["-m", "cubegw.platform.certify.cli", "--platform",
                f"http://127.0.0.1:{self.api_port}", "--token", TOKEN, "--dut", mac,
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
