"""The reference platform's YAML configuration: every key, its default, its validation.

``etc/cubeplat.yaml`` documents the same keys for operators.  A bad file raises
``ConfigError`` naming the key at fault, so ``twistd cubeplat`` stops with one line.
"""

import dataclasses
from dataclasses import dataclass


from cubegw import identity
from cubegw.config import ConfigError, log_level, read_text, yaml_mapping
from cubegw.platform import faults as faults_module
from cubegw.platform.registry import BACKENDS

__all__ = ["ConfigError", "DeviceConfig", "Endpoint", "PlatformConfig", "UserConfig",
           "load_config", "parse_config"]

WILDCARDS = ("", "0.0.0.0", "::")


@dataclass(frozen=True)
class Endpoint:
    """A socket (UDP, or a TCP listener): bound on ``host:port`` (port 0: any free port;
    ``host`` IPv4, or IPv6 such as ``::1``), told to gateways as ``advertised_host``
    ("" = ``host``)."""
    host: str = "127.0.0.1"
    port: int = 0
    advertised_host: str = ""

    @property
    def advertised(self):
        return self.advertised_host or self.host


@dataclass(frozen=True)
class DeviceConfig:
    """A gateway the platform knows in advance, with the account data of its trigger Key."""
    mac: str
    sn: str = ""                      # "" = learned from the first BootFirst/Boot
    loid: str = ""
    wifi_ssid: str = ""
    wifi_password: str = ""
    useradmin_password: str = ""
    telecomadmin_password: str = ""
    user_id: str = ""                 # bound user when first added to the database


@dataclass(frozen=True)
class UserConfig:
    """A phone-app user of the HTTP API: who they are, and the bearer token proving it."""
    user_id: str
    token: str
    admin: bool = False               # may read and replace the fault rules (all gateways)

    def __repr__(self):  # keep tokens out of logs and tracebacks
        return f"UserConfig(user_id={self.user_id!r}, token=..., admin={self.admin!r})"


@dataclass(frozen=True)
class PlatformConfig:
    distribution: Endpoint = Endpoint(port=12112)
    operation: Endpoint = Endpoint(port=60001)
    message_server: Endpoint = Endpoint(host="", port=0)   # "", 0: the operation socket
    update_server: str = ""           # UPDATEServer of Register replies ("" = operation)
    heartbeat_interval: int = 60
    trigger_timeout: float = 5.0
    report_limit: int = 20
    registry: str = "sqlite"          # backend of the device registry (registry.BACKENDS)
    db: str = "cubeplat.db"           # the SQLite file (registry: sqlite)
    flush_delay: float = 1.0
    plugin_idle_timeout: float = 180.0  # close a plugin connection silent this long (0: never)
    plugin_boot_timeout: float = 30.0   # close a plugin connection with no Boot by then (0: never)
    accept_unknown: bool = False
    devices: tuple = ()
    faults: tuple = ()                # rule mappings, validated by faults.parse_rules
    plugin_center: Endpoint = Endpoint(port=9000)   # TCP; advertised in RequestPlug-in
    api: Endpoint = Endpoint(port=8080)             # HTTP API for the phone app
    users: tuple = ()                 # UserConfig: who may use the HTTP API
    log_level: str = "info"           # "debug": also each answered heartbeat
    message_log: int = 50000          # wire messages kept in all (0: no message log)

    def with_overrides(self, db=None, distribution_port=None, operation_port=None,
                       plugin_center_port=None, api_port=None):
        """The same configuration with the command line's overrides applied."""
        changes = {}
        if plugin_center_port is not None:
            changes["plugin_center"] = dataclasses.replace(
                self.plugin_center, port=_port(plugin_center_port, "plugin_center.port"))
        if api_port is not None:
            changes["api"] = dataclasses.replace(self.api, port=_port(api_port, "api.port"))
        if db is not None:
            changes["db"] = db
        if distribution_port is not None:
            changes["distribution"] = dataclasses.replace(
                self.distribution, port=_port(distribution_port, "distribution.port"))
        if operation_port is not None:
            changes["operation"] = dataclasses.replace(
                self.operation, port=_port(operation_port, "operation.port"))
        return dataclasses.replace(self, **changes)

    def message_server_host(self):
        """The host advertised in MessageServer."""
        return self.message_server.host or self.operation.advertised

    def separate_message_server(self):
        """True when reports go to a socket of their own, not the operation platform's."""
        ms = self.message_server
        return bool(ms.port) and (ms.host or self.operation.host, ms.port) != (
            self.operation.host, self.operation.port)


# ------------------------------------------------------------------ parsing

_TOP = ("distribution", "operation", "message_server", "update_server",
        "heartbeat_interval", "trigger_timeout", "report_limit", "registry", "db",
        "flush_delay",
        "plugin_idle_timeout", "plugin_boot_timeout",
        "accept_unknown", "devices", "faults", "plugin_center", "api", "users",
        "log_level", "message_log")


def parse_config(text, source="config"):
    """YAML text -> ``PlatformConfig``."""
    raw = yaml_mapping(text, source, _TOP)
    d = PlatformConfig()
    values = dict(
        distribution=_endpoint(raw.get("distribution"), d.distribution, "distribution",
                               advertise=False),
        operation=_endpoint(raw.get("operation"), d.operation, "operation"),
        message_server=_endpoint(raw.get("message_server"), d.message_server,
                                 "message_server", advertise=False),
        update_server=_str(raw.get("update_server", d.update_server), "update_server"),
        heartbeat_interval=_int(raw.get("heartbeat_interval", d.heartbeat_interval),
                                "heartbeat_interval", low=1),
        trigger_timeout=_seconds(raw.get("trigger_timeout", d.trigger_timeout),
                                 "trigger_timeout"),
        report_limit=_int(raw.get("report_limit", d.report_limit), "report_limit", low=1),
        registry=_choice(raw.get("registry", d.registry), "registry", sorted(BACKENDS)),
        db=_str(raw.get("db", d.db), "db"),
        flush_delay=_seconds(raw.get("flush_delay", d.flush_delay), "flush_delay"),
        plugin_idle_timeout=_seconds(raw.get("plugin_idle_timeout", d.plugin_idle_timeout),
                                     "plugin_idle_timeout"),
        plugin_boot_timeout=_seconds(raw.get("plugin_boot_timeout", d.plugin_boot_timeout),
                                     "plugin_boot_timeout"),
        accept_unknown=_bool(raw.get("accept_unknown", d.accept_unknown), "accept_unknown"),
        devices=_devices(raw.get("devices")),
        faults=_faults(raw.get("faults")),
        plugin_center=_endpoint(raw.get("plugin_center"), d.plugin_center, "plugin_center"),
        api=_endpoint(raw.get("api"), d.api, "api", advertise=False),
        users=_users(raw.get("users")),
        log_level=log_level(raw.get("log_level", d.log_level)),
        message_log=_int(raw.get("message_log", d.message_log), "message_log"),
    )
    if not values["db"]:
        raise ConfigError("db: must be a file path")
    op = values["operation"]
    if op.advertised in WILDCARDS:
        raise ConfigError("operation.advertised_host: required when operation.host is a "
                          "wildcard address (gateways must be told where to go)")
    if values["plugin_center"].advertised in WILDCARDS:
        raise ConfigError("plugin_center.advertised_host: required when plugin_center.host "
                          "is a wildcard address (sent in RequestPlug-in)")
    return PlatformConfig(**values)


def load_config(path):
    """Read and parse the YAML file at ``path``."""
    return parse_config(read_text(path), path)


def _endpoint(raw, default, where, advertise=True):
    if raw is None:
        return default
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with host and port")
    known = ("host", "port", "advertised_host") if advertise else ("host", "port")
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
    return Endpoint(
        host=_str(raw.get("host", default.host), f"{where}.host", strip=True),
        port=_port(raw.get("port", default.port), f"{where}.port"),
        advertised_host=_str(raw.get("advertised_host", default.advertised_host),
                             f"{where}.advertised_host", strip=True))


def _devices(raw):
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("devices: must be a list of devices")
    known = [f.name for f in dataclasses.fields(DeviceConfig)]
    out, seen = [], {}
    for i, item in enumerate(raw):
        where = f"devices[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a mapping")
        for key in item:
            if key not in known:
                raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
        if "mac" not in item:
            raise ConfigError(f"{where}.mac: required")
        try:
            mac = identity.normalize_mac(_str(item["mac"], f"{where}.mac"))
        except identity.IdentityError as e:
            raise ConfigError(f"{where}.mac: {e} (quote MACs in YAML)")
        if mac in seen:
            raise ConfigError(f"{where}.mac: {mac} is already devices[{seen[mac]}]")
        seen[mac] = i
        values = {key: _str(item[key], f"{where}.{key}") for key in known[1:] if key in item}
        if values.get("sn"):
            try:
                identity.check_sn_format(values["sn"])
            except identity.IdentityError as e:
                raise ConfigError(f"{where}.sn: {e}")
        out.append(DeviceConfig(mac=mac, **values))
    return tuple(out)


def _users(raw):
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("users: must be a list of {user_id, token}")
    out, ids, tokens = [], {}, {}
    for i, item in enumerate(raw):
        where = f"users[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a mapping with user_id and token")
        for key in item:
            if key not in ("user_id", "token", "admin"):
                raise ConfigError(f"{where}.{key}: unknown key (known: user_id, token, admin)")
        user_id = _str(item.get("user_id"), f"{where}.user_id", strip=True)
        token = _str(item.get("token"), f"{where}.token", strip=True)
        if not user_id:
            raise ConfigError(f"{where}.user_id: required")
        if len(token) < 8 or any(c.isspace() for c in token):
            raise ConfigError(f"{where}.token: required, at least 8 characters, no spaces")
        if user_id in ids:
            raise ConfigError(f"{where}.user_id: {user_id} is already users[{ids[user_id]}]")
        if token in tokens:
            raise ConfigError(f"{where}.token: the same token as users[{tokens[token]}]")
        ids[user_id] = tokens[token] = i
        out.append(UserConfig(user_id, token, _bool(item.get("admin", False),
                                                     f"{where}.admin")))
    return tuple(out)


def _faults(raw):
    try:
        faults_module.parse_rules(raw)
    except faults_module.FaultError as e:
        raise ConfigError(str(e))
    return tuple(raw or ())


def _str(value, where, strip=False):
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: must be a string")
    text = str(value)
    return text.strip() if strip else text


def _int(value, where, low=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: must be a whole number >= {low}, got {value!r}")
    return value


def _port(value, where):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"{where}: must be a port number 0-65535 (0: any free port), "
                          f"got {value!r}")
    return value


def _seconds(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: must be a non-negative number of seconds, got {value!r}")
    return float(value)


def _choice(value, where, choices):
    if value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(value, where):
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: must be true or false, got {value!r}")
    return value
