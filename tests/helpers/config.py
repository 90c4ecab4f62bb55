"""A gateway config for loopback with timings scaled down, shared by the integration tests
and the unit tests of the daemon's wiring."""

import os

import yaml

LOOPBACK_MAC = "02AB54000001"


def gateway_config(tmpdir, **extra):
    """A cubegw YAML config for loopback with timings scaled down; returns its path."""
    config = {
        "device": {"mac": LOOPBACK_MAC, "sn": "auto", "loid": "0755000001",
                   "vendor": "cubegw", "model": "loopback", "wan_interface": "lo"},
        "accounts": {"useradmin": "admin1", "telecomadmin": "telecom1"},
        "wifi": {"ssid": "ChinaNet-TEST", "password": "wifipass"},
        "store": {"confdir": os.path.join(tmpdir, "config")},
        "state_dir": os.path.join(tmpdir, "state"),
        "udp_bind": "127.0.0.1",
        "log_level": "debug",   # the tests follow each heartbeat and call in the log
        "timing": {"boot_jitter": 0.2, "retry_initial": 0.2, "retry_factor": 2,
                   "retry_max": 2, "silence": 3, "reply_timeout": 0.5, "hb_timeout": 1,
                   "wan_check": 0.5, "store_check": 0.2},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    path = os.path.join(tmpdir, "cubegw.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path
