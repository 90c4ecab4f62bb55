"""WAN capabilities: WAN list and state, live rates, DNS, PPPoE.

Everything is read through ``context.backend``: interface addresses, state and
counters (psutil on the real router), the routing table, resolv.conf and the
OpenWrt UCI ``network`` config.

Which interfaces are WANs: on OpenWrt the UCI ``network`` interfaces whose name
starts with ``wan`` (``wan``, ``wan6``, ...), named by their UCI name; their
Linux device is ``pppoe-<name>`` for proto pppoe, else option ``device`` (or
the older ``ifname``).  Without a UCI network config (a plain Linux host), the
devices of the default routes, named by the device.  QUERY_WAN_INFO also takes
any interface the system has (``lo``, ``eth0``) by its device name.
"""

import ipaddress


from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure, text_values
from cubegw.capabilities.wan import (
    field_wan_names, find_wan, ipv4_of, read_uci_or_fail, wan_info, wan_interfaces)
from cubegw.logs import Logger
from cubegw.store import uci

log = Logger()

__all__ = ["wan_interfaces", "field_wan_names", "find_wan", "ipv4_of", "wan_info", "text_values",
           "read_uci_or_fail", "WanInfo", "WanRate", "NetworkDns", "Pppoe"]

NO_PPPOE = "no PPPoE WAN"


def _wan_name(payload, backend):
    name = payload.get("WANName")
    if name in (None, ""):
        wans = wan_interfaces(backend)
        if not wans:
            raise CapabilityFailure("no WAN interface")
        return wans[0][0]
    if not isinstance(name, str):
        raise CapabilityFailure("WANName must be a string")
    return name


class WanInfo(Capability):
    """QUERY_WAN_NUM, QUERY_WAN_INFO: the WAN list and one WAN's state."""

    cmd_types = ("QUERY_WAN_NUM", "QUERY_WAN_INFO")
    default_right = RIGHT_BOTH

    def handle_QUERY_WAN_NUM(self, payload, context):
        """cubegw's Num and List of WAN names; the field's NUM and Description (its
        names joined by "/", as Get_WanConnectNum writes them)."""
        named = field_wan_names(context.backend)
        return {"Num": len(named), "List": [name for _, name, _, _ in named],
                "NUM": len(named), "Description": "/".join(f for f, _, _, _ in named)}

    def handle_QUERY_WAN_INFO(self, payload, context):
        return wan_info(context.backend, _wan_name(payload, context.backend))


class WanRate(Capability):
    """QUERY_WAN_REALRATE: UpRate/DownRate in kbit/s from the interface counters.

    No sampling wait: the provider keeps the previous counter sample of each
    device and reports the average rate since it.  The first call on a device
    reports the average since boot (counters / uptime); later calls the rate
    since the previous call (a caller polling every N s gets N-second rates).
    """

    cmd_types = ("QUERY_WAN_REALRATE",)
    default_right = RIGHT_BOTH

    def __init__(self):
        self.samples = {}             # device -> (clock time, bytes_sent, bytes_recv)

    def rates(self, backend, clock, device):
        counters = backend.net_io_counters().get(device)
        if counters is None:
            raise CapabilityFailure(f"no counters for {device}")
        now = clock.seconds()
        sent, recv = counters["bytes_sent"], counters["bytes_recv"]
        previous = self.samples.get(device)
        if previous is None or now <= previous[0] or sent < previous[1] or recv < previous[2]:
            base = (now - backend.uptime(), 0, 0)
        else:
            base = previous
        self.samples[device] = (now, sent, recv)
        elapsed = now - base[0]
        if elapsed <= 0:
            return 0, 0
        return (round((sent - base[1]) * 8 / 1000 / elapsed),
                round((recv - base[2]) * 8 / 1000 / elapsed))

    def handle_QUERY_WAN_REALRATE(self, payload, context):
        name = _wan_name(payload, context.backend)
        device, _ = find_wan(context.backend, name)
        up, down = self.rates(context.backend, context.clock, device)
        return {"WANName": name, "UpRate": up, "DownRate": down}


def _ip(payload, field, required):
    value = payload.get(field, "")
    if value in ("", None) and not required:
        return ""
    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise CapabilityFailure(f"{field} is not an IP address: {value!r}")


class NetworkDns(Capability):
    """SET_NETWORK_DNS: DNS1 (required), DNS2 (optional) as UCI network
    ``wan`` ``list dns`` with ``peerdns '0'``, then the network reloads.
    Refused off OpenWrt (nothing else would read it)."""

    cmd_types = ("SET_NETWORK_DNS",)
    default_right = RIGHT_BOTH

    async def handle_SET_NETWORK_DNS(self, payload, context):
        servers = [_ip(payload, "DNS1", True)]
        dns2 = _ip(payload, "DNS2", False)
        if dns2:
            servers.append(dns2)
        backend = context.backend
        if not backend.is_openwrt():
            raise CapabilityFailure(
                "not OpenWrt: DNS servers are only set through UCI network")
        network = read_uci_or_fail(backend, "network")
        section = network.section("wan") if network is not None else None
        if section is None or section.type != "interface":
            raise CapabilityFailure("no UCI network interface 'wan'")
        section.options["dns"] = servers
        section.options["peerdns"] = "0"
        await backend.write_uci("network", network)
        problem = await backend.apply("network")
        if problem:
            raise CapabilityFailure(f"DNS stored, {problem}")
        return {}


def pppoe_interfaces(backend):
    network = read_uci_or_fail(backend, "network")
    if network is None:
        return None, []
    return network, [s for s in network.sections_of("interface")
                     if s.name and s.get("proto") == "pppoe"]


class Pppoe(Capability):
    """PPPOE_DIAG_REQ: the PPPoE WAN's dial state; PPPOE_DIAL_REQUEST: store
    Account/Password (if given) as the UCI username/password and redial by
    reloading the network.  DialStatus: Connected (pppoe-<wan> up with an
    IPv4 address), Connecting (configured, no address yet), Disabled."""

    cmd_types = ("PPPOE_DIAG_REQ", "PPPOE_DIAL_REQUEST")
    default_right = RIGHT_BOTH

    def _state(self, backend, section):
        if section.get("disabled") == "1" or section.get("auto") == "0":
            return "Disabled", "interface disabled in UCI"
        device = "pppoe-" + section.name
        address, _ = ipv4_of(backend, device)
        if backend.net_if_stats().get(device, {}).get("isup") and address:
            return "Connected", ""
        return "Connecting", f"{device} has no IPv4 address"

    def handle_PPPOE_DIAG_REQ(self, payload, context):
        _, sections = pppoe_interfaces(context.backend)
        if not sections:
            raise CapabilityFailure(NO_PPPOE)
        status, reason = self._state(context.backend, sections[0])
        return {"WANName": sections[0].name, "DialStatus": status, "DialReason": reason}

    async def handle_PPPOE_DIAL_REQUEST(self, payload, context):
        backend = context.backend
        network, sections = pppoe_interfaces(backend)
        if not sections:
            raise CapabilityFailure(NO_PPPOE)
        section = sections[0]
        changed = False
        for field, option in (("Account", "username"), ("Password", "password")):
            value = payload.get(field)
            if value in (None, ""):
                continue
            if not isinstance(value, str) or len(value) > 128:
                raise CapabilityFailure(f"{field} must be a string of at most 128 characters")
            try:
                uci.check_value(value, field)
            except uci.UciError as e:
                raise CapabilityFailure(e.reason)
            section.options[option] = value
            changed = True
        if changed:
            await backend.write_uci("network", network)
        problem = await backend.apply("network")
        return {"WANName": section.name, "DialStatus": "Dialing" if not problem else "NotDialed",
                "DialReason": problem or ""}


wan_info_provider = WanInfo()
wan_rate = WanRate()
network_dns = NetworkDns()
pppoe = Pppoe()
