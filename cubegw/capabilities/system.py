"""System capabilities: load, uptime, version, device description, reboot, APP reset
(GET_SN_INFO, every app's first call, is ``capabilities.binding``)."""

import json
import platform

from cubegw import wire
from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure
from cubegw.logs import Logger
from cubegw.store import MGT_SECTION

log = Logger()

#: What QUERY_SYSTEM_INFO calls the device class (our choice: a home gateway).
DEV_TYPE = "HG"
#: The field's DEVType1 for a gateway outside the E8-C standard line (its 3 and 4 are
#: E8-C boxes with and without WiFi).
DEV_TYPE1 = "0"
#: Seconds between the reboot reply being written and the reboot command, so
#: the bytes leave the socket buffer before the network goes down.
REBOOT_DELAY = 2.0


class CpuInfo(Capability):
    """QUERY_CPU_INFO: CPU use since the previous sample, in percent."""

    cmd_types = ("QUERY_CPU_INFO",)
    default_right = RIGHT_BOTH

    def handle_QUERY_CPU_INFO(self, payload, context):
        return {"Percent": round(context.backend.cpu_percent())}


def _wans(backend):
    from cubegw.capabilities import wan   # with the two calls that read the WANs only
    try:
        return wan.wan_interfaces(backend)
    except (CapabilityFailure, OSError):
        return []


def wan_ipv4(backend):
    """The IPv4 address of the first WAN that is up with one, else "0.0.0.0" (the
    field's WanIPAddr: the default-route WAN's address while it is up)."""
    from cubegw.capabilities import wan
    stats = backend.net_if_stats()
    for _, device, _ in _wans(backend):
        address, _ = wan.ipv4_of(backend, device) if device else ("", "")
        if address and stats.get(device, {}).get("isup"):
            return address
    return "0.0.0.0"


def lan_ipv4(backend):
    """The LAN address: UCI network ``lan`` ipaddr, else br-lan's IPv4 address."""
    from cubegw.capabilities import wan
    try:
        package = backend.read_uci("network")
    except Exception:
        package = None
    for section in (package.sections_of("interface") if package is not None else []):
        if section.name == "lan" and section.get("ipaddr"):
            return section.get("ipaddr").split("/")[0]
    return wan.ipv4_of(backend, "br-lan")[0]


async def pppoe_duration(backend):
    """Seconds the Internet PPPoE WAN has been up (netifd's ``uptime`` from
    ``ubus call network.interface.<wan> status``), 0 when there is none, it is down or
    ubus cannot tell: the field's PPPoEDuration."""
    from cubegw.capabilities import wan
    stats = backend.net_if_stats()
    for name, device, section in _wans(backend):
        if section is None or section.get("proto") != "pppoe":
            continue
        if not (stats.get(device, {}).get("isup") and wan.ipv4_of(backend, device)[0]):
            continue
        ubus = backend.which("ubus")
        if ubus is None:
            return 0
        code, out, _ = await backend.run([ubus, "call", f"network.interface.{name}", "status"])
        try:
            uptime = json.loads(out.decode("utf-8", "replace")).get("uptime") if not code else 0
        except (ValueError, AttributeError):
            uptime = 0
        return uptime if isinstance(uptime, int) and uptime >= 0 else 0
    return 0


class Status(Capability):
    """Memory use, uptime, interface version, device description."""

    cmd_types = ("QUERY_MEM_INFO", "GET_TIME_DURATION", "GET_VERSION", "QUERY_SYSTEM_INFO")
    default_right = RIGHT_BOTH

    def handle_QUERY_MEM_INFO(self, payload, context):
        return {"Percent": round(context.backend.memory()["percent"])}

    async def handle_GET_TIME_DURATION(self, payload, context):
        """The field's SYSDuration, PPPoEDuration, PONDuration (0: no PON here), and
        cubegw's TimeDuration (= SYSDuration)."""
        uptime = int(context.backend.uptime())
        return {"SYSDuration": uptime, "PPPoEDuration": await pppoe_duration(context.backend),
                "PONDuration": 0, "TimeDuration": uptime}

    def handle_GET_VERSION(self, payload, context):
        """The field reads its stored interface Version ("1.0" when unset): here the
        store's X_CT-COM_Mgt.Version."""
        try:
            version = context.store.get(MGT_SECTION, "Version")
        except Exception:
            version = ""
        return {"Version": version or wire.INTERFACE_VERSION}

    def handle_QUERY_SYSTEM_INFO(self, payload, context):
        ident, backend = context.identity, context.backend
        try:
            backend.read_file("/proc/net/if_inet6")
            ipv6 = "1"
        except OSError:
            ipv6 = "0"
        return {
            # the field's names (GetSysInfo); DEVType is its OUI-SerialNumber
            "SWVersion": ident.firmware_version, "HDVersion": ident.hardware_version,
            "ProductCLass": ident.model, "CPUClass": platform.machine(),
            "DEVType": f"{ident.mac[:6]}-{ident.sn}", "DEVType1": DEV_TYPE1,
            "IPV6": ipv6, "VLANbind": "0", "Card": "0", "Cardno": "", "NFC": "0",
            "RamSize": int(backend.memory().get("total", 0)),
            "WanIPAddr": wan_ipv4(backend), "LanIPAddr": lan_ipv4(backend),
            # cubegw's (the deck's) names
            "Vendor": ident.vendor, "Model": ident.model, "HWVersion": ident.hardware_version,
            "ProductClass": ident.model, "DevType": DEV_TYPE, "MAC": ident.mac,
            "SN": ident.sn, "LOID": ident.loid}


class Reboot(Capability):
    """HG_COMMAND_REBOOT: reply first, reboot ``REBOOT_DELAY`` s after it is written."""

    cmd_types = ("HG_COMMAND_REBOOT",)
    default_right = RIGHT_BOTH

    def handle_HG_COMMAND_REBOOT(self, payload, context):
        backend, clock = context.backend, context.clock
        context.after_reply(lambda: clock.callLater(REBOOT_DELAY, backend.reboot))
        return {}


class LocalRecovery(Capability):
    """HG_LOCAL_RECOVERY: the APP-side factory reset (protocol.md 10), after the reply."""

    cmd_types = ("HG_LOCAL_RECOVERY",)
    default_right = RIGHT_BOTH

    def handle_HG_LOCAL_RECOVERY(self, payload, context):
        context.after_reply(context.app_reset)
        return {}


cpu_info = CpuInfo()
status = Status()
reboot = Reboot()
local_recovery = LocalRecovery()
