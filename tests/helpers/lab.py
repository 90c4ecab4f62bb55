"""A lab on loopback for the certification and dashboard tests: cubeplat's config with
an admin user, a deep message log and the DUT's account data."""

import os

import yaml

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
        "message_log": 512, "plugin_boot_timeout": 5, "plugin_idle_timeout": 10,
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
