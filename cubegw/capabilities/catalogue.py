"""Every built-in CmdType, its default right and its provider, without importing it.

The daemon knows all ~85 CmdTypes at start (the dispatcher routes them, ``Rights``
knows their defaults, SET_RIGHT may name any) but imports a capability module only
when one of its CmdTypes is first called: a ``LazyProvider`` stands in until then.
A provider with work from boot (a timer, the firewall sync) is loaded at start when its
``boot`` check says the store or the router holds something for it to do.
``tests/test_capability_catalogue.py`` imports every module and compares, so the table
cannot drift.  Vendor plugins are found with ``getPlugins`` at start as before.
"""

from __future__ import annotations

import importlib
from typing import Optional, Tuple

from cubegw.backend import BLOCK_RULE_PREFIX
from cubegw.capabilities.base import RIGHT_BOTH, CapabilityFailure
from cubegw.capabilities.stored import ACCESS_TYPE, REDIRECT_CONF, REDIRECT_TYPE, TIMER_TYPE
from cubegw.logs import Logger

__all__ = ["Entry", "BUILTIN", "LazyProvider", "lazy_providers", "PACKAGE"]

log = Logger()

PACKAGE = "cubegw.capabilities"


def _firewall_work(store, backend):
    """The firewall sync has work: blocked devices stored, or rules of ours to drop."""
    if store.list_sections(ACCESS_TYPE.type):
        return True
    try:
        firewall = backend.read_uci("firewall")
    except Exception:
        return True                     # the provider's own start says what is wrong
    return firewall is not None and any(
        s.type == "rule" and str(s.options.get("name", "")).startswith(BLOCK_RULE_PREFIX)
        for s in firewall.sections)


def _redirect_work(store, backend):
    """Redirect rules stored, or a dnsmasq file of ours to write or remove."""
    folder, _, name = REDIRECT_CONF.rpartition("/")
    return bool(store.list_sections(REDIRECT_TYPE.type)) or name in backend.list_dir(folder)


def _timer_set(store, backend):
    """A WiFi timer is stored (without one its scheduler arms nothing)."""
    return bool(store.list_sections(TIMER_TYPE.type))


class Entry:
    """One built-in provider: ``module`` (in this package) and ``name`` (the module-level
    instance); ``boot(store, backend)``: whether it must start with the daemon.  (A
    ``NamedTuple`` class cost ~8 KiB of the daemon's memory.)"""

    __slots__ = ("module", "name", "cmd_types", "default_right", "boot")

    def __init__(self, module: str, name: str, cmd_types: Tuple[str, ...],
                 default_right: int = RIGHT_BOTH, boot: Optional[object] = None):
        self.module, self.name, self.cmd_types = module, name, cmd_types
        self.default_right, self.boot = default_right, boot

    def __repr__(self):
        return f"Entry({self.module!r}, {self.name!r}, {self.cmd_types!r})"


BUILTIN = (
    Entry("binding", "sn_info", ("GET_SN_INFO",)),
    Entry("diagnostics", "diagnostics", ("PING_DIAG_REQ", "GET_PING_RESULT",
                                         "TRACEROUTE_DIAG_REQ")),
    Entry("diagnostics", "traceroute_result", ("GET_TRACEROUTE_RESULT",)),
    Entry("diagnostics", "http_download", ("HTTP_DOWNLOAD_REQUEST", "SET_HTTP_CFG")),
    Entry("field_extra", "addresses", ("GET_HW_IP", "GET_NETWORK_DNS")),
    Entry("field_extra", "rates", ("QUERY_REALRATE", "QUERY_ATTACH_DEVICE_REALRATE")),
    Entry("field_extra", "device_names", ("SET_ATTACH_DEVICE_NAME", "SET_HG_DEV_NAME",
                                          "GET_HG_DEV_NAME")),
    Entry("field_extra", "ssid_enable", ("SET_WLAN_SSID_ENABLE",)),
    Entry("field_extra", "leds", ("SET_LED_STATUS", "SET_HG_LED_INDICATOR_TIMER")),
    Entry("field_extra", "wps", ("WPS_ON", "WPS_OFF", "WPS_QY")),
    Entry("field_extra", "refused", ("GET_HG_WIFI_TIMER_EX", "SET_HG_WIFI_TIMER_EX",
                                     "SET_HTTP_CFG1", "SET_OS_RIGHT", "SET_RIGHT1")),
    Entry("hardware", "hardware", ("GET_VOIP_INFO", "GET_VOIP_REG_STATUS",
                                   "GET_PONINFORM_REQ", "GET_PON_STATUS")),
    Entry("lan_devices", "lan_info", ("GET_LAN_NET_INFO", "GET_LAN_INFO2")),
    Entry("lan_devices", "access_right", ("SET_ATTACH_DEVICE_RIGHT",
                                          "GET_ATTACH_DEVICE_RIGHT"), boot=_firewall_work),
    Entry("lan_devices", "subscriptions", ("LAN_DEVICE_ACCESS", "DEVICE_SPEED")),
    Entry("network", "wan_info_provider", ("QUERY_WAN_NUM", "QUERY_WAN_INFO")),
    Entry("network", "wan_rate", ("QUERY_WAN_REALRATE",)),
    Entry("network", "network_dns", ("SET_NETWORK_DNS",)),
    Entry("network", "pppoe", ("PPPOE_DIAG_REQ", "PPPOE_DIAL_REQUEST")),
    Entry("platform", "check_password", ("CHECK_PASSWD_PARAM",)),
    Entry("platform", "hg_loid", ("GET_HG_LOID",)),
    Entry("platform", "business_platform", ("SET_BUSINESS_PLATFORM_PARAM",
                                            "SET_BUSSINESS_PLATFORM_PARAM")),
    Entry("platform", "set_right", ("SET_RIGHT",)),
    Entry("redirect", "dns_redirect", ("SET_REDIRECT_INFO",), boot=_redirect_work),
    Entry("system", "cpu_info", ("QUERY_CPU_INFO",)),
    Entry("system", "status", ("QUERY_MEM_INFO", "GET_TIME_DURATION", "GET_VERSION",
                               "QUERY_SYSTEM_INFO")),
    Entry("system", "reboot", ("HG_COMMAND_REBOOT",)),
    Entry("system", "local_recovery", ("HG_LOCAL_RECOVERY",)),
    Entry("system_extra", "selftest", ("SYSTEST",)),
    Entry("system_extra", "device_info_all", ("GET_DEVICE_INFO_ALL",)),
    Entry("system_extra", "date_time_sync", ("SET_HG_DATE_TIME_SYNC",)),
    Entry("system_extra", "services", ("GET_SERVICE",)),
    Entry("system_extra", "inform_diag", ("INFORM_DIAG_REQ",)),
    Entry("system_extra", "loid_register", ("REGISTER", "REGISTER_GETSTAT")),
    Entry("tr069", "tr069", ("GETPARAMETERVALUES", "SETPARAMETERVALUES", "ADDOBJECT",
                             "DELETEOBJECT")),
    Entry("upgrade", "upgrade", ("UPGRADE",)),
    Entry("upgrade", "web_popup", ("SET_WD_INFO",)),
    Entry("vendor", "vendor_features", (
        "ATTACH_WANL2TP_TUNNEL", "ATTACH_WAN_DNS_TUNNEL", "CREATE_WANL2TP_TUNNEL",
        "DETACH_WANL2TP_TUNNEL", "DETACH_WAN_DNS_TUNNEL", "GET_ATTACH_DEVICE_BANDWIDTH",
        "GET_ATTACH_DEVICE_STORAGE_ACCESS_BLACKLIST", "GET_SLEEP_STATUS",
        "GET_WANL2TP_TUNNEL_STATUS", "MULTICAST_DIAG_REQ", "REMOVE_WANL2TP_TUNNEL",
        "SET_ATTACH_DEVICE_BANDWIDTH", "SET_SLEEP_STATUS")),
    Entry("wifi", "wifi_info", ("GET_WIFI_INFO", "SET_WIFI_INFO", "SET_WLAN_SSID_DISABLE",
                                "GET_WLAN_INTF_INFO", "GET_WLAN_ATTACH_INFO",
                                "SET_WIFI_RATE_PRIORITY_MODE")),
    Entry("wifi", "wifi_timer", ("SET_HG_WIFI_TIMER",), boot=_timer_set),
)


class LazyProvider:
    """Stands in for a built-in provider until ``load`` imports its module.

    ``hooks`` are called with the real provider once it is loaded (the capability
    runtime adopts it: schema, start, stop).  A module that cannot be imported fails
    every call of its CmdTypes with a FailReason, logged once with its traceback.
    """

    __slots__ = ("entry", "cmd_types", "default_right", "package", "provider", "error",
                 "hooks")

    def __init__(self, entry: Entry, package: str = PACKAGE):
        self.entry = entry
        self.cmd_types = entry.cmd_types
        self.default_right = entry.default_right
        self.package = package
        self.provider = None            # the real one, once loaded
        self.error = None               # why it could not be loaded
        self.hooks = []

    @property
    def path(self):
        """The module's dotted name."""
        return f"{self.package}.{self.entry.module}"

    def load(self):
        """The real provider, imported now if it was not; CapabilityFailure if it cannot be."""
        if self.provider is not None:
            return self.provider
        if self.error is not None:
            raise CapabilityFailure(self.error)
        try:
            provider = getattr(importlib.import_module(self.path), self.entry.name)
            if tuple(provider.cmd_types) != self.cmd_types:
                raise ValueError(f"serves {provider.cmd_types}, the catalogue says "
                                 f"{self.cmd_types}")
        except Exception:
            log.failure("capability {path}.{name} cannot be loaded", path=self.path,
                        name=self.entry.name)
            self.error = f"capability {self.entry.module}.{self.entry.name} cannot be loaded"
            raise CapabilityFailure(self.error) from None
        self.provider = provider
        for hook in self.hooks:
            hook(provider)
        return provider

    def needed_at_boot(self, store, backend):
        """Whether the daemon must load and start it with the service tree."""
        return self.entry.boot is not None and bool(self.entry.boot(store, backend))

    def __repr__(self):
        return f"<lazy {self.path}.{self.entry.name}: {', '.join(self.cmd_types)}>"


def lazy_providers(plugin_package=None, catalogue=BUILTIN, package=PACKAGE) -> list:
    """The built-in providers as ``LazyProvider`` s and the vendors' (``getPlugins``
    over ``plugin_package``, by default ``cubegw.plugins``), loaded."""
    from twisted.plugin import getPlugins

    from cubegw.capabilities.base import IGatewayCapability
    if plugin_package is None:
        import cubegw.plugins as plugin_package
    return ([LazyProvider(entry, package) for entry in catalogue]
            + list(getPlugins(IGatewayCapability, plugin_package)))
