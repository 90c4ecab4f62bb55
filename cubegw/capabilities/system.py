"""System capabilities: identity, load, uptime, version, reboot, APP reset."""

import platform


from cubegw import wire
from cubegw.capabilities.base import RIGHT_BOTH, Capability
from cubegw.logs import Logger

log = Logger()

#: What QUERY_SYSTEM_INFO calls the device class (our choice: a home gateway).
DEV_TYPE = "HG"
#: Seconds between the reboot reply being written and the reboot command, so
#: the bytes leave the socket buffer before the network goes down.
REBOOT_DELAY = 2.0


class SnInfo(Capability):
    """GET_SN_INFO: the first step of binding (deck 6.2)."""

    cmd_types = ("GET_SN_INFO",)
    default_right = RIGHT_BOTH

    def handle_GET_SN_INFO(self, payload, context):
        return {"MAC": context.identity.mac,
                "BussinessStatus": "SUCCESS" if context.registered() else "FAIL"}


class CpuInfo(Capability):
    """QUERY_CPU_INFO: CPU use since the previous sample, in percent."""

    cmd_types = ("QUERY_CPU_INFO",)
    default_right = RIGHT_BOTH

    def handle_QUERY_CPU_INFO(self, payload, context):
        return {"Percent": round(context.backend.cpu_percent())}


class Status(Capability):
    """Memory use, uptime, interface version, device description."""

    cmd_types = ("QUERY_MEM_INFO", "GET_TIME_DURATION", "GET_VERSION", "QUERY_SYSTEM_INFO")
    default_right = RIGHT_BOTH

    def handle_QUERY_MEM_INFO(self, payload, context):
        return {"Percent": round(context.backend.memory()["percent"])}

    def handle_GET_TIME_DURATION(self, payload, context):
        return {"TimeDuration": int(context.backend.uptime())}

    def handle_GET_VERSION(self, payload, context):
        return {"Version": wire.INTERFACE_VERSION}

    def handle_QUERY_SYSTEM_INFO(self, payload, context):
        ident = context.identity
        return {"Vendor": ident.vendor, "Model": ident.model,
                "SWVersion": ident.firmware_version, "HWVersion": ident.hardware_version,
                "ProductClass": ident.model, "CPUClass": platform.machine(),
                "DevType": DEV_TYPE, "MAC": ident.mac, "SN": ident.sn, "LOID": ident.loid}


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


sn_info = SnInfo()
cpu_info = CpuInfo()
status = Status()
reboot = Reboot()
local_recovery = LocalRecovery()
