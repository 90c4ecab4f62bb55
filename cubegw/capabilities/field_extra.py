"""Field CmdTypes on real state: addresses, name servers, rates, device names,
SSID enable, LEDs, WPS; and the field's own-platform extras cubegw refuses.

Reply field names are the field handlers' (``Get_Network_Dns``, ``Get_HW_IP_func``,
``Get_RealRate_func``, ``GetHgdevName``, ``SetAttachDevName``...); MACs are
read in any spelling and written as 12 hex characters.
"""

import ipaddress

from cubegw.capabilities import lan_devices, network, system_extra, wifi
from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure
from cubegw.identity import IdentityError, normalize_mac
from cubegw.capabilities.stored import GATEWAY_NAME, NAME_TYPE
from cubegw.store import StoreError

__all__ = ["Addresses", "Rates", "DeviceNames", "SsidEnable", "Leds", "Wps", "Refused",
           "NAME_TYPE", "NO_LED", "NO_WPS", "hex_mac"]

NO_LED = "no LED class (/sys/class/leds) on this hardware"
NO_WPS = "WPS needs hostapd_cli"
_NAMES = NAME_TYPE.type


def hex_mac(value):
    """Any MAC spelling -> 12 upper-case hex characters, or CapabilityFailure."""
    try:
        if not isinstance(value, str):
            raise IdentityError("not a string")
        return normalize_mac(value.strip())
    except IdentityError:
        raise CapabilityFailure(f"MAC must be a MAC address, got {value!r:.40}") from None


def _text(payload, *names, limit=64):
    for name in names:
        value = payload.get(name)
        if value is not None:
            if not isinstance(value, str) or len(value) > limit \
                    or any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise CapabilityFailure(f"{name} must be text of at most {limit} characters,"
                                        " no control characters")
            return value
    raise CapabilityFailure(f"{names[0]} is required")


def _wan_addr(backend, family):
    addrs = backend.net_if_addrs()
    stats = backend.net_if_stats()
    for device in system_extra.wan_devices(backend):
        if not stats.get(device, {}).get("isup"):
            continue
        for addr in addrs.get(device, []):
            if addr["family"] != family:
                continue
            ip = ipaddress.ip_address(addr["address"].split("%", 1)[0])
            if family == "ipv4" or not (ip.is_link_local or ip.is_loopback):
                return str(ip)
    return None


class Addresses(Capability):
    """GET_HW_IP: WanIPAddr, IPV6WanIPAddr, LanIPAddr; GET_NETWORK_DNS: DNS1, DNS2.
    A WAN that is down gives 0.0.0.0 (and 0:0:0:0:0:0:0:0), as the field."""

    cmd_types = ("GET_HW_IP", "GET_NETWORK_DNS")
    default_right = RIGHT_BOTH

    def handle_GET_HW_IP(self, payload, context):
        backend = context.backend
        lan = ""
        try:
            package = backend.read_uci("network")
        except Exception:
            package = None
        section = package.section("lan") if package is not None else None
        if section is not None:
            lan = section.get("ipaddr", "")
        if not lan:
            lan = next((a["address"] for a in backend.net_if_addrs().get("br-lan", [])
                        if a["family"] == "ipv4"), "")
        return {"WanIPAddr": _wan_addr(backend, "ipv4") or "0.0.0.0",
                "IPV6WanIPAddr": _wan_addr(backend, "ipv6") or "0:0:0:0:0:0:0:0",
                "LanIPAddr": lan}

    def handle_GET_NETWORK_DNS(self, payload, context):
        backend = context.backend
        servers = backend.dns_servers() if _wan_addr(backend, "ipv4") else []
        servers = [s for s in servers if ":" not in s] + ["0.0.0.0", "0.0.0.0"]
        return {"DNS1": servers[0], "DNS2": servers[1]}


class Rates(Capability):
    """QUERY_REALRATE: RealTimeRate "up|down" kB/s of the WAN (the field's form);
    QUERY_ATTACH_DEVICE_REALRATE: MAC -> UsBandwidth, DsBandwidth kB/s (WiFi
    station counters; Status 1 for a device without counters)."""

    cmd_types = ("QUERY_REALRATE", "QUERY_ATTACH_DEVICE_REALRATE")
    default_right = RIGHT_BOTH

    def __init__(self):
        self.wan = network.WanRate()

    def handle_QUERY_REALRATE(self, payload, context):
        devices = system_extra.wan_devices(context.backend)
        if not devices:
            raise CapabilityFailure("get bandwidth fail: no WAN")
        up, down = self.wan.rates(context.backend, context.clock, devices[0])
        return {"RealTimeRate": f"{up // 8}|{down // 8}"}

    async def handle_QUERY_ATTACH_DEVICE_REALRATE(self, payload, context):
        mac = lan_devices.normalize_mac(payload.get("MAC"))
        devices = await lan_devices.tracker.scan(context.backend, context.clock)
        device = devices.get(mac)
        if device is None:
            raise CapabilityFailure("get bandwidth fail: no such device")
        if device["UpRate"] == "":
            raise CapabilityFailure("get bandwidth fail: no counters for this device")
        return {"MAC": hex_mac(mac), "UsBandwidth": device["UpRate"] // 8,
                "DsBandwidth": device["DownRate"] // 8}


class DeviceNames(Capability):
    """SET_ATTACH_DEVICE_NAME (MAC, DevName), SET_HG_DEV_NAME (DevName),
    GET_HG_DEV_NAME: NameList and MACList, "/"-joined, the gateway first, then the
    LAN devices (a given name, else the DHCP host name).  Names are APP-owned."""

    cmd_types = ("SET_ATTACH_DEVICE_NAME", "SET_HG_DEV_NAME", "GET_HG_DEV_NAME")
    default_right = RIGHT_BOTH
    store_schema = (NAME_TYPE, GATEWAY_NAME)

    def handle_SET_ATTACH_DEVICE_NAME(self, payload, context):
        self.ensure_schema(context.store.schema)
        mac = hex_mac(payload.get("MAC"))
        name = _text(payload, "DevName")
        store = context.store
        try:
            if store.get_section(_NAMES, mac) is None:
                store.add_section(_NAMES, mac, {"name": name})
            else:
                store.update_section(_NAMES, mac, {"name": name})
        except StoreError as e:
            raise CapabilityFailure(str(e)) from None
        return {}

    def handle_SET_HG_DEV_NAME(self, payload, context):
        self.ensure_schema(context.store.schema)
        try:
            context.store.set("gateway", "name", _text(payload, "DevName", "Name"))
        except StoreError as e:
            raise CapabilityFailure(str(e)) from None
        return {}

    async def handle_GET_HG_DEV_NAME(self, payload, context):
        store = context.store
        self.ensure_schema(store.schema)
        given = {item["mac"]: item["name"] for item in store.list_sections(_NAMES)}
        names = [store.get("gateway", "name") or context.identity.model]
        macs = [hex_mac(context.identity.mac)]
        devices = await lan_devices.tracker.scan(context.backend, context.clock)
        for mac, device in devices.items():
            mac = hex_mac(mac)
            macs.append(mac)
            names.append(given.get(mac) or device["HostName"])
        return {"NameList": "/".join(n.replace("/", "_") for n in names),
                "MACList": "/".join(macs)}


class SsidEnable(Capability):
    """SET_WLAN_SSID_ENABLE: SSIDIndex -> ``disabled '0'`` on that wifi-iface, reload."""

    cmd_types = ("SET_WLAN_SSID_ENABLE",)
    default_right = RIGHT_BOTH

    async def handle_SET_WLAN_SSID_ENABLE(self, payload, context):
        wireless = wifi.load_wireless(context.backend)
        _, iface = wifi._index(payload, wireless)
        iface.options.pop("disabled", None)
        await wifi._write_apply(context.backend, wireless)
        return {}


class Leds(Capability):
    """SET_LED_STATUS: LEDStatus ON/OFF -> every LED of /sys/class/leds;
    SET_HG_LED_INDICATOR_TIMER: Status 1 (no LED schedule in cubegw yet)."""

    cmd_types = ("SET_LED_STATUS", "SET_HG_LED_INDICATOR_TIMER")
    default_right = RIGHT_BOTH

    def _leds(self, backend):
        leds = backend.list_dir("/sys/class/leds")
        if not leds:
            raise CapabilityFailure(NO_LED)
        return leds

    def handle_SET_LED_STATUS(self, payload, context):
        status = str(payload.get("LEDStatus", "")).upper()
        if status not in ("ON", "OFF"):
            raise CapabilityFailure("LEDStatus must be ON or OFF")
        failed = []
        for name in self._leds(context.backend):
            try:
                context.backend.set_led(name, status == "ON")
            except OSError:
                failed.append(name)
        if failed:
            raise CapabilityFailure(f"cannot set LED {', '.join(failed)[:120]}")
        return {}

    def handle_SET_HG_LED_INDICATOR_TIMER(self, payload, context):
        self._leds(context.backend)
        raise CapabilityFailure("an LED schedule is not supported by cubegw")


class Wps(Capability):
    """WPS_ON (push button on every AP), WPS_OFF (cancel), WPS_QY (Status of the
    first AP) through ``hostapd_cli``; Status 1 without it or without an AP."""

    cmd_types = ("WPS_ON", "WPS_OFF", "WPS_QY")
    default_right = RIGHT_BOTH

    def _aps(self, backend):
        if backend.which("hostapd_cli") is None:
            raise CapabilityFailure(NO_WPS)
        aps = wifi.wifi_devices(backend)
        if not aps:
            raise CapabilityFailure("no WiFi access point is up")
        return aps

    async def _each(self, backend, command):
        outputs = []
        for ap in self._aps(backend):
            code, out, err = await backend.run(["hostapd_cli", "-i", ap, command])
            if code:
                raise CapabilityFailure(f"hostapd_cli {command} on {ap} failed ({code})")
            outputs.append(out.decode("utf-8", "replace"))
        return outputs

    async def handle_WPS_ON(self, payload, context):
        await self._each(context.backend, "wps_pbc")
        return {}

    async def handle_WPS_OFF(self, payload, context):
        await self._each(context.backend, "wps_cancel")
        return {}

    async def handle_WPS_QY(self, payload, context):
        out = (await self._each(context.backend, "wps_get_status"))[0]
        status = ""
        for line in out.splitlines():
            if line.startswith("PBC Status:"):
                status = line.split(":", 1)[1].strip()
        return {"WPSStatus": "ON" if status == "Active" else "OFF", "PBCStatus": status}


class Refused(Capability):
    """Field CmdTypes of the field platform's own plug-in framework, which cubegw
    does not carry: Status 1 with the reason."""

    REASONS = {
        "SET_HTTP_CFG1": "SET_HTTP_CFG1 is not supported: use SET_HTTP_CFG",
        "SET_OS_RIGHT": "plug-in OS rights are not supported: cubegw runs no plug-ins",
        "SET_RIGHT1": "per-plug-in TR-069 rights are not supported: cubegw runs no plug-ins",
        "SET_HG_WIFI_TIMER_EX": "the extended WiFi timer is not supported: use SET_HG_WIFI_TIMER",
        "GET_HG_WIFI_TIMER_EX": "the extended WiFi timer is not supported: use SET_HG_WIFI_TIMER",
    }
    cmd_types = tuple(sorted(REASONS))
    default_right = RIGHT_BOTH

    def call(self, cmd_type, payload, context):
        raise CapabilityFailure(self.REASONS[cmd_type])


addresses = Addresses()
rates = Rates()
device_names = DeviceNames()
ssid_enable = SsidEnable()
leds = Leds()
wps = Wps()
refused = Refused()
