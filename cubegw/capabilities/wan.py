"""Which interfaces are WANs and what they are: the lookups WAN capabilities share.

Apart from ``network`` (the WAN capabilities) so that a capability that only needs to
name the WANs or read an address (GET_SN_INFO, the LAN and WiFi ones) does not load
the WAN capabilities with it.  See ``network``'s docstring for the rules.
"""

from cubegw.capabilities.base import CapabilityFailure
from cubegw.store import uci

__all__ = ["read_uci_or_fail", "wan_interfaces", "field_wan_names", "find_wan", "ipv4_of",
           "wan_info"]


def read_uci_or_fail(backend, name):
    """The UCI package, None without the file, CapabilityFailure if unreadable."""
    try:
        return backend.read_uci(name)
    except uci.UciError as e:
        raise CapabilityFailure(f"UCI {name} config unreadable: {e}")


def wan_interfaces(backend):
    """[(WANName, linux device, uci section or None)], in order."""
    network = read_uci_or_fail(backend, "network")
    if network is not None:
        wans = []
        for section in network.sections_of("interface"):
            if section.name and section.name.startswith("wan"):
                if section.get("proto") == "pppoe":
                    device = "pppoe-" + section.name
                else:
                    device = section.get("device") or section.get("ifname")
                wans.append((section.name, device, section))
        return wans
    seen = []
    for route in backend.routes():
        if route["destination"] == "0.0.0.0" and route["mask"] == "0.0.0.0" \
                and route["iface"] not in seen:
            seen.append(route["iface"])
    return [(device, device, None) for device in seen]


def _service(name):
    """The field's service list word for a WAN interface name."""
    name = (name or "").lower()
    for key, word in (("tr069", "TR069"), ("cwmp", "TR069"), ("voip", "VOIP"),
                      ("iptv", "OTHER"), ("other", "OTHER")):
        if key in name:
            return word
    return "INTERNET"


def field_wan_names(backend):
    """[(field name, WANName, device, uci section or None)]: each WAN also named as the
    field names its connections, ``<index>_<INTERNET|TR069|VOIP|OTHER>_<R|B>_VID_<vlan>``
    (index from 1 in QUERY_WAN_NUM's order; B for a bridged ``proto 'none'`` WAN)."""
    named = []
    for index, (name, device, section) in enumerate(wan_interfaces(backend), 1):
        mode = "B" if section is not None and section.get("proto") == "none" else "R"
        vlan = _vlan(backend, device, section) if device else ""
        named.append((f"{index}_{_service(name)}_{mode}_VID_{vlan}", name, device, section))
    return named


def find_wan(backend, name):
    """(device, uci section or None) of a WAN name, a field WAN name or a device name."""
    for wan_name, device, section in wan_interfaces(backend):
        if name in (wan_name, device):
            return device, section
    for field_name, _, device, section in field_wan_names(backend):
        if name == field_name:
            return device, section
    if name in backend.net_if_stats() or name in backend.net_if_addrs():
        return name, None
    raise CapabilityFailure(f"unknown WAN {name!r}")


def ipv4_of(backend, device):
    """(address, netmask) of the device's first IPv4 address, or ("", "")."""
    for addr in backend.net_if_addrs().get(device, []):
        if addr["family"] == "ipv4":
            return addr["address"], addr["netmask"]
    return "", ""


def _vlan(backend, device, section):
    base, dot, vid = device.rpartition(".")
    if dot and vid.isdigit():
        return vid
    network = read_uci_or_fail(backend, "network")
    for dev in (network.sections_of("device") if network is not None else []):
        if dev.get("name") == device and dev.get("vid"):
            return dev.get("vid")
    return ""


def wan_info(backend, name):
    """QUERY_WAN_INFO's fields for one WAN.  The deck's ``Status`` (Up/Down)
    is sent as ``WANStatus``: the reply's ``Status`` is the call's 0/1."""
    device, section = find_wan(backend, name)
    address, netmask = ipv4_of(backend, device)
    gateway = ""
    for route in backend.routes():
        if route["iface"] == device and route["destination"] == "0.0.0.0" \
                and route["flags"] & 0x2:
            gateway = route["gateway"]
            break
    dns = backend.dns_servers()
    up = backend.net_if_stats().get(device, {}).get("isup", False)
    return {"WANName": name, "IPAddress": address, "SubnetMask": netmask,
            "Gateway": gateway, "DNS1": dns[0] if dns else "",
            "DNS2": dns[1] if len(dns) > 1 else "", "WANStatus": "Up" if up else "Down",
            "VLAN": _vlan(backend, device, section)}
