"""The daemon's YAML configuration: defaults, every key, refusals, and etc/cubegw.yaml."""

import os

import yaml
from twisted.trial.unittest import SynchronousTestCase

from cubegw.config import (
    Accounts, ConfigError, Device, GatewayConfig, Timing, Wifi, load_config, parse_config)
from cubegw.record import fields, replace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "etc", "cubegw.yaml")

FULL = """
device:
  mac: "64:d9:54:20:21:4b"
  sn: "64D954-D6AEE64D95420214B"
  loid: "0755123456"
  vendor: ACME
  model: HG-1
  firmware_version: "2.0.1"
  hardware_version: HW2
  wan_interface: pppoe-wan
accounts:
  useradmin: admin1
  telecomadmin: telecom1
wifi:
  ssid: ChinaNet-ABCD
  password: wifipass
store:
  confdir: /tmp/uci
state_dir: /tmp/state
lan:
  addresses: [192.168.1.1, "fd00::1"]
udp_bind: 192.0.2.10
timing:
  boot_jitter: 1.5
  retry_initial: 2
  retry_factor: 3
  retry_max: 60
  silence: 10
  reply_timeout: 0.5
  hb_timeout: 7
  boot_tries: 4
  hb_misses: 5
  resync_limit: 6
  wan_check: 0.25
  store_check: 0.125
"""


class DefaultsTests(SynchronousTestCase):
    def test_empty(self):
        """An empty file, or one of comments only, gives the defaults."""
        for text in ["", "\n", "# nothing here\n", "---\n"]:
            self.assertEqual(parse_config(text), GatewayConfig())

    def test_default_values(self):
        """The defaults are the protocol's: 30 s jitter, 5 s x 2 retries up to 3600 s, etc."""
        config = GatewayConfig()
        self.assertEqual(config.device.mac, "auto")
        self.assertEqual(config.device.sn, "auto")
        self.assertEqual(config.confdir, "/etc/config")
        self.assertEqual(config.lan_addresses, ())
        self.assertEqual(config.udp_bind, "")
        self.assertEqual(
            (config.timing.boot_jitter, config.timing.retry_initial, config.timing.retry_factor,
             config.timing.retry_max, config.timing.silence, config.timing.reply_timeout,
             config.timing.hb_timeout, config.timing.boot_tries, config.timing.hb_misses,
             config.timing.resync_limit),
            (30, 5, 2, 3600, 150 * 60, 5, 30, 3, 3, 3))

    def test_empty_sections(self):
        """Sections present but empty (null) keep their defaults."""
        text = "device:\naccounts:\nwifi:\nstore:\nlan:\n  addresses:\ntiming:\n"
        self.assertEqual(parse_config(text), GatewayConfig())

    def test_partial_section(self):
        """Keys left out of a section keep their defaults."""
        config = parse_config("timing:\n  silence: 3\n")
        self.assertEqual(config.timing, replace(Timing(), silence=3.0))


class ParseTests(SynchronousTestCase):
    def test_every_section(self):
        """Every key of every section is read and converted."""
        self.assertEqual(parse_config(FULL), GatewayConfig(
            device=Device(
                mac="64:d9:54:20:21:4b", sn="64D954-D6AEE64D95420214B", loid="0755123456",
                vendor="ACME", model="HG-1", firmware_version="2.0.1", hardware_version="HW2",
                wan_interface="pppoe-wan"),
            accounts=Accounts(useradmin="admin1", telecomadmin="telecom1"),
            wifi=Wifi(ssid="ChinaNet-ABCD", password="wifipass"),
            confdir="/tmp/uci",
            state_dir="/tmp/state",
            lan_addresses=("192.168.1.1", "fd00::1"),
            udp_bind="192.0.2.10",
            timing=Timing(
                boot_jitter=1.5, retry_initial=2.0, retry_factor=3.0, retry_max=60.0,
                silence=10.0, reply_timeout=0.5, hb_timeout=7.0, boot_tries=4, hb_misses=5,
                resync_limit=6, wan_check=0.25, store_check=0.125)))

    def test_number_types(self):
        """Durations become floats; counts given as whole floats become ints."""
        timing = parse_config("timing: {boot_jitter: 1, boot_tries: 2.0, silence: 1}").timing
        self.assertIsInstance(timing.boot_jitter, float)
        self.assertIsInstance(timing.boot_tries, int)
        self.assertEqual((timing.boot_jitter, timing.boot_tries, timing.silence), (1.0, 2, 1.0))

    def test_numbers_for_strings_refused(self):
        """A YAML number where a string is expected is refused with the advice to quote it:
        an unquoted LOID 0755123456 is YAML's octal 129279790, never what was meant."""
        for text, key in (("device: {loid: 0755123456}", "device.loid"),
                          ("device: {firmware_version: 2.5}", "device.firmware_version"),
                          ("wifi: {password: 0123}", "wifi.password"),
                          ("accounts: {useradmin: 1234}", "accounts.useradmin")):
            e = self.assertRaises(ConfigError, parse_config, text)
            self.assertIn(key, str(e))
            self.assertIn("quote it", str(e))

    def test_timing_floors(self):
        """No zero backoff: each wait and count has a floor, each cap is at least its start;
        boot_jitter and the polls may be 0 (none)."""
        for text, key in (("timing: {retry_initial: 0}", "timing.retry_initial"),
                          ("timing: {retry_factor: 0.5}", "timing.retry_factor"),
                          ("timing: {hb_timeout: 0}", "timing.hb_timeout"),
                          ("timing: {boot_tries: 0}", "timing.boot_tries"),
                          ("timing: {plugin_retry_initial: 0}", "timing.plugin_retry_initial"),
                          ("timing: {retry_initial: 5, retry_max: 1}", "timing.retry_max")):
            e = self.assertRaises(ConfigError, parse_config, text)
            self.assertIn(key, str(e))
        timing = parse_config("timing: {boot_jitter: 0, wan_check: 0, store_check: 0}").timing
        self.assertEqual((timing.boot_jitter, timing.wan_check, timing.store_check), (0, 0, 0))

    def test_quoted_strings_kept(self):
        """A quoted LOID or password keeps its leading zeros."""
        config = parse_config("device: {loid: '0755123456'}\nwifi: {password: '0123'}")
        self.assertEqual((config.device.loid, config.wifi.password), ("0755123456", "0123"))


class RefusalTests(SynchronousTestCase):
    def assertRefused(self, text, *words):
        """parse_config(text) raises ConfigError whose message has every one of ``words``."""
        with self.assertRaises(ConfigError) as caught:
            parse_config(text)
        for word in words:
            self.assertIn(word, str(caught.exception))
        return caught.exception

    def test_unknown_top_level(self):
        """An unknown top-level key is refused and named."""
        self.assertRefused("devices: {}\n", "devices", "unknown")
        self.assertRefused("1: x\n", "1", "unknown")

    def test_unknown_section_keys(self):
        """An unknown key in any section is refused and named with its section."""
        for section in ["device", "accounts", "wifi", "timing", "store", "lan"]:
            self.assertRefused(f"{section}:\n  bogus_key: 1\n", f"{section}.bogus_key")

    def test_log_level(self):
        """log_level is error, warn, info or debug; anything else is refused and named."""
        for value in ("error", "warn", "info", "debug"):
            self.assertEqual(parse_config(f"log_level: {value}\n").log_level, value)
        self.assertEqual(parse_config("").log_level, "info")
        for value in ["warning", "DEBUG", "1", "[debug]"]:
            self.assertRefused(f"log_level: {value}\n", "log_level", "error, warn, info, debug")

    def test_timing_string(self):
        """A string for a timing value is refused, even a numeric one."""
        for value in ["'5'", "five", "5s"]:
            self.assertRefused(f"timing:\n  reply_timeout: {value}\n", "timing.reply_timeout")

    def test_negative(self):
        """Negative timing values and counts are refused."""
        self.assertRefused("timing:\n  retry_max: -1\n", "timing.retry_max", "non-negative")
        self.assertRefused("timing:\n  hb_misses: -3\n", "timing.hb_misses")

    def test_not_finite(self):
        """NaN and infinity are refused for durations and counts."""
        for key in ["boot_jitter", "boot_tries"]:
            for value in [".nan", ".inf", "-.inf"]:
                self.assertRefused(f"timing:\n  {key}: {value}\n", f"timing.{key}")

    def test_fraction_for_count(self):
        """A count (boot_tries, hb_misses, resync_limit) must be a whole number."""
        self.assertRefused("timing:\n  boot_tries: 2.5\n", "timing.boot_tries", "whole")

    def test_booleans(self):
        """Booleans are refused for numbers and strings."""
        self.assertRefused("timing:\n  silence: true\n", "timing.silence")
        self.assertRefused("device:\n  mac: no\n", "device.mac")

    def test_null_value(self):
        """A key given with no value is refused rather than taken as the text "None"."""
        self.assertRefused("device:\n  mac:\n", "device.mac")
        self.assertRefused("state_dir:\n", "state_dir")
        self.assertRefused("store:\n  confdir:\n", "store.confdir")

    def test_list_for_mapping(self):
        """A list (even an empty one) or a scalar where a section mapping is expected is refused."""
        for section in ["device", "accounts", "wifi", "timing", "store", "lan"]:
            self.assertRefused(f"{section}: [a]\n", section)
            self.assertRefused(f"{section}: []\n", section)
            self.assertRefused(f"{section}: text\n", section)

    def test_structure_for_string(self):
        """A list or mapping where a string is expected is refused."""
        self.assertRefused("device:\n  sn: [a, b]\n", "device.sn")
        self.assertRefused("wifi:\n  ssid: {a: 1}\n", "wifi.ssid")
        self.assertRefused("udp_bind: [0.0.0.0]\n", "udp_bind")
        self.assertRefused("timing:\n  silence: [1]\n", "timing.silence")

    def test_lan_addresses_not_list(self):
        """lan.addresses must be a list of strings."""
        for value in ["192.168.1.1", "''", "{a: 1}", "[1]", "[[a]]", "0"]:
            self.assertRefused(f"lan:\n  addresses: {value}\n", "lan.addresses")

    def test_invalid_yaml(self):
        """Text that is not YAML is refused, naming the source."""
        with self.assertRaises(ConfigError) as caught:
            parse_config("device: {mac: [\n", source="my.yaml")
        self.assertIn("my.yaml", str(caught.exception))
        self.assertIn("not valid YAML", str(caught.exception))
        self.assertRefused("a: b: c\n", "YAML")
        self.assertRefused("\tdevice: 1\n", "YAML")

    def test_top_level_not_mapping(self):
        """A top level that is a list, string or number is refused."""
        for text in ["- device\n", "hello\n", "42\n"]:
            self.assertRefused(text, "top level")

    def test_error_is_value_error(self):
        """ConfigError is a ValueError, so callers may catch either."""
        self.assertTrue(issubclass(ConfigError, ValueError))


class LoadTests(SynchronousTestCase):
    def write(self, data):
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_missing_file(self):
        """A file that does not exist gives ConfigError naming it."""
        path = self.mktemp()
        with self.assertRaises(ConfigError) as caught:
            load_config(path)
        self.assertIn(path, str(caught.exception))

    def test_directory(self):
        """A directory instead of a file gives ConfigError."""
        path = self.mktemp()
        os.mkdir(path)
        self.assertRaises(ConfigError, load_config, path)

    def test_not_utf8(self):
        """A file that is not UTF-8 gives ConfigError."""
        self.assertRaises(ConfigError, load_config, self.write(b"device:\n  vendor: \xff\xfe\n"))

    def test_load(self):
        """load_config reads and parses the file; errors name the path."""
        self.assertEqual(load_config(self.write(FULL.encode())), parse_config(FULL))
        path = self.write(b"bogus: 1\n")
        self.assertRaises(ConfigError, load_config, path)
        path = self.write(b"[\n")
        with self.assertRaises(ConfigError) as caught:
            load_config(path)
        self.assertIn(path, str(caught.exception))


class ExampleFileTests(SynchronousTestCase):
    #: The values etc/cubegw.yaml deliberately sets away from the defaults (none at present).
    OVERRIDES = {}

    def test_parses_to_defaults(self):
        """etc/cubegw.yaml parses and equals the defaults except for its deliberate values."""
        self.assertEqual(load_config(EXAMPLE), replace(GatewayConfig(), **self.OVERRIDES))

    def test_documents_every_key(self):
        """etc/cubegw.yaml sets every key config.py accepts, so it documents them all."""
        with open(EXAMPLE, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
        self.assertEqual(set(raw), {"device", "accounts", "wifi", "store", "state_dir", "lan",
                                    "udp_bind", "log_level", "timing", "trust", "upgrade"})
        for name, cls in [("device", Device), ("accounts", Accounts), ("wifi", Wifi),
                          ("timing", Timing)]:
            self.assertEqual(set(raw[name]), {f.name for f in fields(cls)}, name)
        self.assertEqual(set(raw["store"]), {"confdir", "persist_dir", "fw_env"})
        self.assertEqual(set(raw["lan"]), {"addresses", "idle_timeout", "auth", "session_ttl"})
        self.assertEqual(set(raw["trust"]), {"plugin_centers", "distribution"})
        self.assertEqual(set(raw["upgrade"]), {"keys_dir", "require_signature"})

    def test_every_key_commented(self):
        """Every key line in etc/cubegw.yaml follows a comment line saying what it does."""
        with open(EXAMPLE, encoding="utf-8") as f:
            lines = f.read().splitlines()
        for number, line in enumerate(lines):
            stripped = line.strip()
            if stripped and not stripped.startswith("#") and not stripped.endswith(":"):
                self.assertTrue(lines[number - 1].strip().startswith("#"),
                                f"line {number + 1} has no comment: {line}")


class MirrorKeyTests(SynchronousTestCase):
    def test_mirror_keys(self):
        """store.persist_dir and store.fw_env are read; fw_env must be a boolean."""
        config = parse_config("store:\n  persist_dir: /mnt/persist/cubegw\n")
        self.assertEqual((config.persist_dir, config.fw_env), ("/mnt/persist/cubegw", False))
        self.assertTrue(parse_config("store:\n  fw_env: true\n").fw_env)
        self.assertRaises(ConfigError, parse_config, "store:\n  fw_env: 1\n")
