"""What the backend reads, parsed: pure functions over text and psutil samples.

``cubegw.backend`` re-exports them (imported when first named); they live here so the
backend module stays one screenful of I/O, and its methods import them when first
called: a running gateway loads them only once a capability asks for these reads.
"""

import ipaddress
import socket

import psutil

from cubegw.backend import BLOCK_RULE_PREFIX
from cubegw.store import uci

__all__ = ["cpu_busy_percent", "parse_routes", "parse_resolv_conf", "parse_arp",
           "parse_dhcp_leases", "firewall_block_rules", "addrs_from_psutil",
           "BLOCK_RULE_PREFIX"]


def _split_times(times):
    """(busy, total) CPU seconds from a psutil cpu_times, as psutil counts them
    (on Linux guest time is already inside user time)."""
    total = sum(times)
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def cpu_busy_percent(before, after):
    """Percent of CPU time busy between two psutil ``cpu_times()`` samples, or
    None when no time passed between them."""
    busy0, total0 = _split_times(before)
    busy1, total1 = _split_times(after)
    if total1 - total0 <= 0:
        return None
    return max(0.0, min(100.0, 100.0 * (busy1 - busy0) / (total1 - total0)))


def _hex_ipv4(text):
    """/proc/net/route's little-endian hex address as a dotted quad."""
    return socket.inet_ntoa(int(text, 16).to_bytes(4, "little"))


def parse_routes(text):
    """The rows of /proc/net/route (see ``ISystemBackend.routes``)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            rows.append({"iface": fields[0], "destination": _hex_ipv4(fields[1]),
                         "gateway": _hex_ipv4(fields[2]), "flags": int(fields[3], 16),
                         "mask": _hex_ipv4(fields[7])})
        except ValueError:
            continue
    return rows


def parse_resolv_conf(text):
    """The ``nameserver`` addresses of a resolv.conf, valid ones only."""
    servers = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            try:
                servers.append(str(ipaddress.ip_address(fields[1].split("%", 1)[0])))
            except ValueError:
                continue
    return servers


def parse_arp(text):
    """Complete (flag 0x2) entries of /proc/net/arp."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        try:
            flags = int(fields[2], 16)
        except ValueError:
            continue
        mac = fields[3].upper()
        if not flags & 0x2 or mac == "00:00:00:00:00:00":
            continue
        rows.append({"ip": fields[0], "mac": mac, "iface": fields[5]})
    return rows


def parse_dhcp_leases(text):
    """dnsmasq's lease file: ``expires mac ip hostname client-id`` per line."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].isdigit():
            continue
        rows.append({"expires": int(fields[0]), "mac": fields[1].upper(), "ip": fields[2],
                     "hostname": "" if fields[3] == "*" else fields[3]})
    return rows


def firewall_block_rules(package, macs):
    """Replace our rules in a firewall ``uci.Package`` by one REJECT rule per MAC."""
    package.sections[:] = [
        s for s in package.sections
        if not (s.type == "rule" and str(s.options.get("name", "")).startswith(BLOCK_RULE_PREFIX))]
    for mac in sorted(set(m.upper() for m in macs)):
        package.sections.append(uci.Section("rule", None, {
            "name": BLOCK_RULE_PREFIX + mac.replace(":", ""), "src": "lan", "src_mac": mac,
            "dest": "wan", "proto": "all", "target": "REJECT"}))
    return package


def addrs_from_psutil(raw):
    """psutil's ``net_if_addrs()`` as ``ISystemBackend.net_if_addrs`` gives it."""
    families = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6",
                getattr(psutil, "AF_LINK", -1): "mac"}
    return {name: [{"family": families[a.family], "address": a.address,
                    "netmask": a.netmask or ""}
                   for a in addrs if a.family in families]
            for name, addrs in raw.items()}
