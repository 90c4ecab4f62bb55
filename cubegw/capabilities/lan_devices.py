"""LAN devices: the LAN itself, the attached devices, per-device internet
access, and the LAN_DEVICE_ACCESS / DEVICE_SPEED subscriptions.

Devices are the complete ARP entries not on a WAN device, merged with
dnsmasq's leases (hostname; a lease alone counts while it has not expired).
ConnectionType is ``WiFi`` for a MAC that ``iw station dump`` lists, else
``Ethernet``.  OnlineTime is the seconds since a scan of this process first saw the MAC
present (a MAC absent from a scan starts again; scans happen on every
GET_LAN_INFO2 and every subscription poll).  UpRate and
DownRate (kbit/s) exist only where a per-device counter does: the WiFi
station byte counters, rated between two scans; else "".

Access rights are kept per MAC in the management store (section type
``lan_access``, owner SHARED_ACCESS: both factory resets clear them) and
applied as UCI firewall rules through ``backend.set_blocked_macs``.

Subscriptions live in this process (they end with it): LAN_DEVICE_ACCESS polls
every ``POLL_INTERVAL`` s and reports each MAC not present at the poll before
(a device that leaves and returns is reported again); DEVICE_SPEED
reports the listed MACs' rates every Time s.  Reports go through
``context.report``.
"""

import ipaddress

from twisted.internet import defer, task

from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure
from cubegw.identity import IdentityError, colon_mac
from cubegw.capabilities.base import text_values
from cubegw.capabilities.wan import ipv4_of, read_uci_or_fail, wan_interfaces
from cubegw.capabilities.wifi import station_dump
from cubegw.logs import Logger
from cubegw.capabilities.stored import ACCESS_TYPE
from cubegw.store import StoreError

log = Logger()

POLL_INTERVAL = 10.0
MAX_SPEED_INTERVAL = 3600



def ensure_schema(schema):
    """Register the ``lan_access`` section type in ``schema`` unless it is there."""
    schema.ensure_type(ACCESS_TYPE)


def normalize_mac(value):
    """A MAC as the ARP table and the firewall write it (``AA:BB:CC:00:00:02``), or
    CapabilityFailure."""
    try:
        if not isinstance(value, str):
            raise IdentityError("not a string")
        return colon_mac(value.strip())
    except IdentityError:
        raise CapabilityFailure(f"MAC must be a MAC address, got {value!r}")


def hex_mac(mac):
    """``AA:BB:CC:00:00:02`` -> ``AABBCC000002``: a MAC as payloads carry it."""
    return mac.replace(":", "").upper()


def blocked_macs(store):
    ensure_schema(store.schema)
    return [item["mac"] for item in store.list_sections(ACCESS_TYPE.type) if not item["internet"]]


def sync_firewall(store, backend):
    """Make the firewall match the store (at start, after an APP reset)."""
    return backend.set_blocked_macs(blocked_macs(store))


def _sync_logged(context, what):
    d = sync_firewall(context.store, context.backend)
    d.addCallback(lambda problem: problem and log.info("{what}: {problem}", what=what,
                                                       problem=problem))
    return d


class LanTracker:
    """Scans the LAN; remembers first-seen times and WiFi byte samples."""

    def __init__(self):
        self.first_seen = {}          # MAC -> clock time
        self.samples = {}             # MAC -> (clock time, tx bytes, rx bytes)

    async def scan(self, backend, clock):
        """MAC -> device dict, in a stable order."""
        now = clock.seconds()
        try:
            wan_devices = {device for _, device, _ in wan_interfaces(backend)}
        except CapabilityFailure:
            wan_devices = set()
        devices = {}
        for entry in backend.arp_table():
            if entry["iface"] in wan_devices:
                continue
            devices.setdefault(entry["mac"], {"MAC": entry["mac"], "IP": entry["ip"],
                                              "HostName": "", "Interface": entry["iface"]})
        wall = clock.seconds()
        for lease in backend.dhcp_leases():
            device = devices.get(lease["mac"])
            if device is None:
                if lease["expires"] and lease["expires"] < wall:
                    continue
                device = devices[lease["mac"]] = {"MAC": lease["mac"], "IP": lease["ip"],
                                                  "HostName": "", "Interface": ""}
            device["HostName"] = lease["hostname"]
        stations, _ = await station_dump(backend)
        wifi = {s["MAC"]: s for s in stations}
        for gone in set(self.first_seen) - set(devices):   # back later: online anew
            self.first_seen.pop(gone)
            self.samples.pop(gone, None)
        for mac, device in devices.items():
            self.first_seen.setdefault(mac, now)
            device["ConnectionType"] = "WiFi" if mac in wifi else "Ethernet"
            device["OnlineTime"] = int(now - self.first_seen[mac])
            device["UpRate"], device["DownRate"] = "", ""
            station = wifi.get(mac)
            if station is not None:
                # the AP's tx is the device's download
                sample = (now, station["TxBytes"], station["RxBytes"])
                previous = self.samples.get(mac)
                self.samples[mac] = sample
                if previous is not None and now > previous[0]:
                    elapsed = now - previous[0]
                    device["DownRate"] = max(0, round((sample[1] - previous[1]) * 8 / 1000 / elapsed))
                    device["UpRate"] = max(0, round((sample[2] - previous[2]) * 8 / 1000 / elapsed))
                else:
                    device["DownRate"], device["UpRate"] = 0, 0
        return devices


tracker = LanTracker()


def _lan_section(backend):
    network = read_uci_or_fail(backend, "network")
    return network.section("lan") if network is not None else None


class LanInfo(Capability):
    """GET_LAN_NET_INFO, GET_LAN_INFO2."""

    cmd_types = ("GET_LAN_NET_INFO", "GET_LAN_INFO2")
    default_right = RIGHT_BOTH

    def __init__(self, lan_tracker=None):
        self.tracker = lan_tracker or tracker

    def handle_GET_LAN_NET_INFO(self, payload, context):
        backend = context.backend
        lan = _lan_section(backend)
        if lan is not None:
            address = lan.options.get("ipaddr", "")
            address = address[0] if isinstance(address, list) else address
            netmask = lan.options.get("netmask", "")
            if "/" in address:
                iface = ipaddress.ip_interface(address)
                address, netmask = str(iface.ip), str(iface.netmask)
            device = "br-lan"
        else:
            device = "br-lan"
            address, netmask = ipv4_of(backend, device)
            if not address:
                raise CapabilityFailure("no LAN (no UCI network 'lan', no br-lan)")
        reply = {"IPAddress": address, "SubnetMask": netmask, "DHCPEnable": False,
                 "DHCPStart": "", "DHCPLimit": "", "LeaseTime": "",
                 "MAC": next((a["address"].upper() for a in backend.net_if_addrs().get(device, [])
                              if a["family"] == "mac"), "")}
        dhcp = read_uci_or_fail(backend, "dhcp")
        for section in (dhcp.sections_of("dhcp") if dhcp is not None else []):
            if section.options.get("interface") == "lan":
                reply["DHCPEnable"] = section.options.get("ignore", "0") != "1"
                reply["DHCPStart"] = section.options.get("start", "100")
                reply["DHCPLimit"] = section.options.get("limit", "150")
                reply["LeaseTime"] = section.options.get("leasetime", "12h")
        return reply

    async def handle_GET_LAN_INFO2(self, payload, context):
        devices = await self.tracker.scan(context.backend, context.clock)
        blocked = set(blocked_macs(context.store))
        items = []
        for device in devices.values():
            item = dict(device)
            item["InternetAccessRight"] = "OFF" if device["MAC"] in blocked else "ON"
            items.append(item)
        return {"Num": len(items), "List": items}


class AccessRight(Capability):
    """SET_ATTACH_DEVICE_RIGHT / GET_ATTACH_DEVICE_RIGHT: MAC, InternetAccessRight ON/OFF."""

    cmd_types = ("SET_ATTACH_DEVICE_RIGHT", "GET_ATTACH_DEVICE_RIGHT")
    default_right = RIGHT_BOTH
    store_schema = (ACCESS_TYPE,)

    def start(self, context):
        """At the daemon's start the firewall is made to match the stored rules."""
        return _sync_logged(context, "firewall not synced")

    def after_app_reset(self, context):
        """The APP reset cleared the rules: the firewall follows, so they never
        outlive the settings that made them."""
        return _sync_logged(context, "firewall not synced after the APP reset")

    async def handle_SET_ATTACH_DEVICE_RIGHT(self, payload, context):
        mac = normalize_mac(payload.get("MAC"))
        right = payload.get("InternetAccessRight")
        if right not in ("ON", "OFF"):
            raise CapabilityFailure("InternetAccessRight must be ON or OFF")
        backend, store = context.backend, context.store
        if read_uci_or_fail(backend, "firewall") is None:
            raise CapabilityFailure("no UCI firewall config")
        ensure_schema(store.schema)
        try:
            if right == "ON":
                store.remove_section(ACCESS_TYPE.type, mac)
            elif store.get_section(ACCESS_TYPE.type, mac) is None:
                store.add_section(ACCESS_TYPE.type, mac, {"internet": False})
            else:
                store.update_section(ACCESS_TYPE.type, mac, {"internet": False})
        except StoreError as e:
            raise CapabilityFailure(str(e))
        problem = await backend.set_blocked_macs(blocked_macs(store))
        reply = {"MAC": hex_mac(mac), "InternetAccessRight": right}
        if problem:
            reply["Note"] = problem
        return reply

    def handle_GET_ATTACH_DEVICE_RIGHT(self, payload, context):
        """The field's MACList (the blocked MACs, 12 hex characters each, joined by "/",
        as Get_Gateway_Blacklist writes it); cubegw's Num and List, or with a MAC that
        MAC's InternetAccessRight.  MACs in the reply are 12 hex characters."""
        blocked = blocked_macs(context.store)
        hexes = [hex_mac(m) for m in blocked]
        if payload.get("MAC") in (None, ""):
            return {"MACList": "/".join(hexes), "Num": len(blocked),
                    "List": [{"MAC": m, "InternetAccessRight": "OFF"} for m in hexes]}
        mac = normalize_mac(payload.get("MAC"))
        return {"MAC": hex_mac(mac), "MACList": "/".join(hexes),
                "InternetAccessRight": "OFF" if mac in blocked else "ON"}


def _enable(payload):
    value = str(payload.get("Enable", ""))
    if value not in ("0", "1"):
        raise CapabilityFailure("Enable must be 0 or 1")
    return value == "1"


class Subscriptions(Capability):
    """LAN_DEVICE_ACCESS and DEVICE_SPEED: pollers on ``context.clock`` that
    push Reports through ``context.report``."""

    cmd_types = ("LAN_DEVICE_ACCESS", "DEVICE_SPEED")
    default_right = RIGHT_BOTH

    def __init__(self, lan_tracker=None):
        self.tracker = lan_tracker or tracker
        self.access_loop = None
        self.speed_loop = None
        self.known = set()
        self.speed_macs = []

    def stop(self):
        for loop in (self.access_loop, self.speed_loop):
            if loop is not None and loop.running:
                loop.stop()
        self.access_loop = self.speed_loop = None

    def _loop(self, function, context, interval):
        loop = task.LoopingCall(lambda: defer.ensureDeferred(function(context)))
        loop.clock = context.clock
        d = loop.start(interval, now=False)
        d.addErrback(lambda f: log.failure("subscription poller stopped", failure=f))
        return loop

    async def handle_LAN_DEVICE_ACCESS(self, payload, context):
        enable = _enable(payload)
        if self.access_loop is not None and self.access_loop.running:
            self.access_loop.stop()
        self.access_loop = None
        if enable:
            devices = await self.tracker.scan(context.backend, context.clock)
            self.known = set(devices)
            self.access_loop = self._loop(self._poll_access, context, POLL_INTERVAL)
        return {"Enable": enable}

    async def _poll_access(self, context):
        try:
            devices = await self.tracker.scan(context.backend, context.clock)
        except Exception:
            log.failure("LAN scan failed")
            return
        known, self.known = self.known, set(devices)   # a MAC that left is new again
        for mac, device in devices.items():
            if mac not in known:
                context.report(text_values({
                    "CmdType": "LAN_DEVICE_ACCESS", "MAC": mac, "IP": device["IP"],
                    "HostName": device["HostName"],
                    "ConnectionType": device["ConnectionType"]}))

    async def handle_DEVICE_SPEED(self, payload, context):
        enable = _enable(payload)
        if enable:                    # a refused request leaves the running one alone
            try:
                interval = int(payload.get("Time"))
            except (TypeError, ValueError):
                interval = 0
            if not 1 <= interval <= MAX_SPEED_INTERVAL:
                raise CapabilityFailure(f"Time must be 1-{MAX_SPEED_INTERVAL} seconds")
            entries = payload.get("List", [])
            if not isinstance(entries, list):
                raise CapabilityFailure("List must be a list of {MAC}")
            macs = [normalize_mac(e.get("MAC") if isinstance(e, dict) else e)
                    for e in entries]
        if self.speed_loop is not None and self.speed_loop.running:
            self.speed_loop.stop()
        self.speed_loop = None
        if not enable:
            return {"Enable": False}
        self.speed_macs = macs
        await self.tracker.scan(context.backend, context.clock)  # first byte sample
        self.speed_loop = self._loop(self._poll_speed, context, interval)
        return {"Enable": True, "Time": interval}

    async def _poll_speed(self, context):
        try:
            devices = await self.tracker.scan(context.backend, context.clock)
        except Exception:
            log.failure("LAN scan failed")
            return
        macs = self.speed_macs or list(devices)
        items = [{"MAC": mac, "UpRate": devices.get(mac, {}).get("UpRate", ""),
                  "DownRate": devices.get(mac, {}).get("DownRate", ""),
                  "Online": mac in devices} for mac in macs]
        context.report(text_values({"CmdType": "DEVICE_SPEED", "List": items}))


lan_info = LanInfo()
access_right = AccessRight()
subscriptions = Subscriptions()

