"""The daemon's YAML configuration: every key, its default, and its validation.

``etc/cubegw.yaml`` documents the same keys for operators.  A bad file raises
``ConfigError`` with the key at fault, so ``twistd`` stops with a one-line message.
"""

import math

import yaml

from cubegw.logs import LEVELS
from cubegw.record import Record, field, fields
from cubegw.trust import TrustError, check_pattern

#: Where twistd cubegw and cubegw-ctl look for the configuration by default.
DEFAULT_CONFIG = "/etc/cubegw/cubegw.yaml"
#: The UCI package of the management store, inside ``store.confdir``.
STORE_FILE = "cubegw"


class ConfigError(ValueError):
    """The configuration file is unusable; the message names the key."""


class Device(Record):
    mac: str = "auto"                 # "auto": read from wan_interface
    sn: str = "auto"                  # "auto": derived from the MAC
    loid: str = ""
    vendor: str = "cubegw"
    model: str = "generic"
    firmware_version: str = "0.1.0"
    hardware_version: str = "1.0"
    wan_interface: str = "eth0"


class Accounts(Record):
    useradmin: str = ""
    telecomadmin: str = ""


class Wifi(Record):
    ssid: str = ""
    password: str = ""


class Timing(Record):
    """Every protocol duration in seconds (floats allowed so tests and demos run fast)."""
    boot_jitter: float = 30.0         # random wait before the first message
    retry_initial: float = 5.0        # m of the TR-069 retry rule
    retry_factor: float = 2.0         # k of the TR-069 retry rule
    retry_max: float = 3600.0         # cap of a retry wait
    silence: float = 9000.0           # after Result -2: 150 minutes
    reply_timeout: float = 5.0        # wait for a UDP reply
    hb_timeout: float = 30.0          # wait for a heartbeat reply
    boot_tries: int = 3               # unanswered/failed operation-platform tries before BootFirst
    hb_misses: int = 3                # heartbeats missed in a row before Boot
    resync_limit: int = 3             # operation -5 in a row before BootFirst
    trigger_limit: int = 6            # reverse triggers acted on per minute, at most
    wan_check: float = 60.0           # WAN address poll, behind OpenWrt's hotplug signal
    store_check: float = 2.0          # UCI file poll, only where inotify is missing
    call_timeout: float = 10.0        # a capability call unanswered by then: Result -100
    plugin_reply_timeout: float = 30.0  # plugin-center connect, Boot/Register/Heartbeat replies
    plugin_retry_initial: float = 1.0   # first plugin-center reconnect wait (x1.5 each time)
    plugin_retry_max: float = 60.0      # cap of a plugin-center reconnect wait


#: The least each duration or count may be: a zero retry wait sent 2,206 BootFirst in
#: 5 s.  The tests and the demo run the protocol at a tenth of a second and more.
TIMING_FLOORS = {
    "retry_initial": 0.1, "retry_factor": 1.0, "retry_max": 0.1, "silence": 0.1,
    "reply_timeout": 0.1, "hb_timeout": 0.1, "boot_tries": 1, "hb_misses": 1,
    "resync_limit": 1, "trigger_limit": 1, "call_timeout": 0.1, "plugin_reply_timeout": 0.1,
    "plugin_retry_initial": 0.1, "plugin_retry_max": 0.1,
}


def check_timing(timing):
    """``timing`` if every value is at least its floor and each cap at least its start."""
    for name, floor in TIMING_FLOORS.items():
        if getattr(timing, name) < floor:
            raise ConfigError(f"timing.{name}: must be at least {floor:g}, "
                              f"got {getattr(timing, name):g}")
    for cap, start in (("retry_max", "retry_initial"),
                       ("plugin_retry_max", "plugin_retry_initial")):
        if getattr(timing, cap) < getattr(timing, start):
            raise ConfigError(f"timing.{cap}: must be at least timing.{start}")
    return timing


class Trust(Record):
    """Hosts a reverse trigger may name (``trust.py`` patterns); empty: any host."""
    plugin_centers: tuple = ()
    distribution: tuple = ()


def _trust(raw):
    if raw is None:
        return Trust()
    if not isinstance(raw, dict):
        raise ConfigError("trust: must be a mapping")
    lists = {}
    for key, value in raw.items():
        if key not in ("plugin_centers", "distribution"):
            raise ConfigError(f"trust.{key}: unknown key (known: plugin_centers, distribution)")
        if value is None:
            value = []
        if not isinstance(value, list):
            raise ConfigError(f"trust.{key}: must be a list of host names, .suffixes or CIDRs")
        try:
            lists[key] = tuple(check_pattern(p) for p in value)
        except TrustError as e:
            raise ConfigError(f"trust.{key}: {e}")
    return Trust(**lists)


class GatewayConfig(Record):
    device: Device = field(default_factory=Device)
    accounts: Accounts = field(default_factory=Accounts)
    wifi: Wifi = field(default_factory=Wifi)
    confdir: str = "/etc/config"
    persist_dir: str = ""             # mirror of X_CT-COM_Mgt outside the overlay ("" = none)
    fw_env: bool = False              # or: mirror it in the bootloader environment
    state_dir: str = "/var/run/cubegw"
    lan_addresses: tuple = ()
    lan_idle_timeout: float = 10.0    # a LAN client that sends nothing is dropped after this
    lan_auth: str = "password"        # "open": any LAN host may change the gateway (labs)
    lan_session_ttl: float = 600.0    # a proven password serves its source this long
    upgrade_keys_dir: str = "/etc/opkg/keys"  # usign public keys a firmware must be signed by
    upgrade_require_signature: bool = True
    udp_bind: str = ""                # address of the platform-side UDP socket ("" = all)
    log_level: str = "info"           # "debug": also each heartbeat and successful call
    timing: Timing = field(default_factory=Timing)
    trust: Trust = field(default_factory=Trust)


def _section(cls, raw, where):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping")
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key")
        values[key] = _convert(known[key].type, value, f"{where}.{key}")
    return cls(**values)


def _convert(kind, value, where):
    kind = kind if isinstance(kind, str) else kind.__name__
    if kind == "str":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # YAML turned an unquoted value into a number: 0755123456 (a LOID) is octal
            # 129279790, 0123 (a password) is 83; taking its decimal form would be a guess
            raise ConfigError(f"{where}: must be a string, got the number {value!r}: "
                              "quote it")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if kind in ("float", "int"):
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value < 0):
            raise ConfigError(f"{where}: must be a non-negative number")
        if kind == "int" and value != int(value):
            raise ConfigError(f"{where}: must be a whole number")
        return float(value) if kind == "float" else int(value)
    raise ConfigError(f"{where}: unsupported type {kind}")  # pragma: no cover


def yaml_mapping(text, source, allowed):
    """YAML text -> its top-level mapping, every key checked against ``allowed``.

    Shared by the gateway's and the platform's configuration files.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping")
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{key}: unknown key (known: {', '.join(allowed)})")
    return raw


def read_text(path):
    """The UTF-8 text of a configuration file, or ConfigError saying why not."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text")


_TOP = ("accounts", "device", "lan", "log_level", "state_dir", "store", "timing", "udp_bind",
        "wifi", "trust", "upgrade")


def parse_config(text, source="config"):
    """YAML text -> ``GatewayConfig``."""
    raw = yaml_mapping(text, source, _TOP)
    store = {} if raw.get("store") is None else raw["store"]
    lan = {} if raw.get("lan") is None else raw["lan"]
    upgrade = {} if raw.get("upgrade") is None else raw["upgrade"]
    for name, section, known in (("store", store, ("confdir", "persist_dir", "fw_env")),
                                 ("lan", lan, ("addresses", "idle_timeout", "auth", "session_ttl")),
                                 ("upgrade", upgrade, ("keys_dir", "require_signature"))):
        if not isinstance(section, dict):
            raise ConfigError(f"{name}: must be a mapping")
        for key in section:
            if key not in known:
                raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(known)})")
    addresses = [] if lan.get("addresses") is None else lan["addresses"]
    if not isinstance(addresses, list) or not all(isinstance(a, str) for a in addresses):
        raise ConfigError("lan.addresses: must be a list of addresses")
    defaults = GatewayConfig()
    return GatewayConfig(
        device=_section(Device, raw.get("device"), "device"),
        accounts=_section(Accounts, raw.get("accounts"), "accounts"),
        wifi=_section(Wifi, raw.get("wifi"), "wifi"),
        confdir=_convert("str", store.get("confdir", defaults.confdir), "store.confdir"),
        persist_dir=_convert("str", store.get("persist_dir", defaults.persist_dir),
                             "store.persist_dir"),
        fw_env=_convert("bool", store.get("fw_env", defaults.fw_env), "store.fw_env"),
        state_dir=_convert("str", raw.get("state_dir", defaults.state_dir), "state_dir"),
        lan_addresses=tuple(addresses),
        lan_idle_timeout=_convert("float", lan.get("idle_timeout", defaults.lan_idle_timeout),
                                  "lan.idle_timeout"),
        lan_auth=_lan_auth(lan.get("auth", defaults.lan_auth)),
        lan_session_ttl=_convert("float", lan.get("session_ttl", defaults.lan_session_ttl),
                                 "lan.session_ttl"),
        upgrade_keys_dir=_convert("str", upgrade.get("keys_dir", defaults.upgrade_keys_dir),
                                  "upgrade.keys_dir"),
        upgrade_require_signature=_convert(
            "bool", upgrade.get("require_signature", defaults.upgrade_require_signature),
            "upgrade.require_signature"),
        udp_bind=_convert("str", raw.get("udp_bind", defaults.udp_bind), "udp_bind"),
        log_level=log_level(raw.get("log_level", defaults.log_level)),
        timing=check_timing(_section(Timing, raw.get("timing"), "timing")),
        trust=_trust(raw.get("trust")),
    )


def _lan_auth(value):
    if value not in ("password", "open"):
        raise ConfigError('lan.auth: must be "password" or "open"')
    return value


def log_level(value):
    """A validated ``log_level`` value (both daemons' configurations have one)."""
    if value not in LEVELS:
        raise ConfigError(f"log_level: must be one of {', '.join(LEVELS)}")
    return value


def load_config(path):
    """Read and parse the YAML file at ``path``."""
    return parse_config(read_text(path), path)
