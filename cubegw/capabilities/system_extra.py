"""More system capabilities: self test, device snapshot, clock, services,
TR-069 inform state and the LOID registration."""

import datetime
import re


from cubegw.capabilities import network, system, wifi
from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure
from cubegw.logs import Logger
from cubegw.capabilities.stored import LOID_PARAMS, LOID_SECTION
from cubegw.store import StoreError
from cubegw.store.uci import UciError

__all__ = ["SelfTest", "DeviceInfoAll", "DateTimeSync", "Services", "InformDiag",
           "LoidRegister", "ensure_schema", "wan_devices", "classify_ports",
           "CWMP_CONFIGS", "selftest", "device_info_all", "date_time_sync",
           "services", "inform_diag", "loid_register"]

log = Logger()

_WIFI = re.compile(r"(wlan|phy\d+-ap|ra|rai|ath)\d*")
_LAN = re.compile(r"(lan\d*|eth\d+(\.\d+)?|br-lan)")
#: The UCI configs of the TR-069 clients we read, in order.
CWMP_CONFIGS = ("easycwmp", "cwmp")


def _uci(backend, name):
    try:
        return backend.read_uci(name)
    except (OSError, UciError):
        return None


def _wans(backend):
    try:
        return network.wan_interfaces(backend)
    except (CapabilityFailure, OSError):
        return []


def wan_devices(backend):
    """The Linux devices of the WANs, as ``network.wan_interfaces`` names them (a PPPoE
    WAN is its ``pppoe-<name>`` session, absent, so Down, while it is not dialled);
    without UCI network, the devices of the default routes."""
    devices = []
    for _, device, _ in _wans(backend):
        if device and device not in devices:
            devices.append(device)
    return devices


def wan_ports(backend):
    """The WAN devices and the ports under them (a PPPoE WAN's ``device``): not LAN ports."""
    ports = set(wan_devices(backend))
    for _, _, section in _wans(backend):
        if section is not None:
            ports.add(section.get("device") or section.get("ifname"))
    return ports


def classify_ports(stats, wan):
    """Split ``net_if_stats()`` into (LAN ports, WiFi interfaces): names only."""
    lan = sorted(n for n in stats if n not in wan and _LAN.fullmatch(n) and n != "br-lan")
    wifi = sorted(n for n in stats if _WIFI.fullmatch(n))
    return lan, wifi


def _up(stats, name):
    return "Up" if stats.get(name, {}).get("isup") else "Down"


def _on(up):
    return "on" if up else "off"


class SelfTest(Capability):
    """SYSTEST, with the field's fields (GetPhyInterConStatus): LAN1Status..LAN4Status
    (one per LAN port there is, at most 4), WANStatus, WIFIModuleStatus, each on/off;
    and cubegw's WANList, LANStatus (every port, Up/Down) and WIFIStatus (Up/Down/None)."""

    cmd_types = ("SYSTEST",)
    default_right = RIGHT_BOTH

    def handle_SYSTEST(self, payload, context):
        backend = context.backend
        stats = backend.net_if_stats()
        wan = wan_devices(backend)
        lan, wifi = classify_ports(stats, wan_ports(backend))
        wan_up = any(_up(stats, d) == "Up" for d in wan)
        wifi_up = any(_up(stats, w) == "Up" for w in wifi)
        fields = {f"LAN{i}Status": _on(_up(stats, port) == "Up")
                  for i, port in enumerate(lan[:4], 1)}
        fields.update({
            "WANStatus": _on(wan_up), "WIFIModuleStatus": _on(wifi_up),
            "WANList": [{"Port": d, "Status": _up(stats, d)} for d in wan],
            "LANStatus": [{"Port": p, "Status": _up(stats, p)} for p in lan],
            "WIFIStatus": ("Up" if wifi_up else "Down") if wifi else "None",
        })
        return fields


class DeviceInfoAll(Capability):
    """GET_DEVICE_INFO_ALL (USER/PASSWORD): system info, CPU, memory, uptime, WAN IP."""

    cmd_types = ("GET_DEVICE_INFO_ALL",)
    default_right = RIGHT_BOTH
    needs_account = True

    def handle_GET_DEVICE_INFO_ALL(self, payload, context):
        backend = context.backend
        fields = system.status.handle_QUERY_SYSTEM_INFO(payload, context)
        addrs = backend.net_if_addrs()
        wan_ip = ""
        for device in wan_devices(backend):
            for addr in addrs.get(device, []):
                if addr["family"] == "ipv4":
                    wan_ip = addr["address"]
                    break
            if wan_ip:
                break
        fields.update(CPU=round(backend.cpu_percent()), Memory=round(backend.memory()["percent"]),
                      TimeDuration=int(backend.uptime()), WANIPAddress=wan_ip,
                      BussinessStatus="SUCCESS" if context.registered() else "FAIL")
        fields.update(SelfTest=SelfTest().handle_SYSTEST(payload, context))
        return fields


class DateTimeSync(Capability):
    """SET_HG_DATE_TIME_SYNC (Time, ISO 8601): ``date -s`` (UTC when Time has an
    offset, else local time); the command's error is the FailReason."""

    cmd_types = ("SET_HG_DATE_TIME_SYNC",)
    default_right = RIGHT_BOTH

    async def handle_SET_HG_DATE_TIME_SYNC(self, payload, context):
        text = payload.get("Time")
        if isinstance(text, str) and text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"     # fromisoformat takes "Z" only from Python 3.11
        try:
            when = datetime.datetime.fromisoformat(text)
            if when.tzinfo is not None:     # 0001-01-01T00:00+01:00 is out of range in UTC
                when = when.astimezone(datetime.timezone.utc)
        except (TypeError, ValueError, OverflowError):
            raise CapabilityFailure("Time must be an ISO 8601 date and time in years "
                                    "1..9999") from None
        argv = ["date"]
        if when.tzinfo is not None:
            argv.append("-u")
        argv += ["-s", when.strftime("%Y-%m-%d %H:%M:%S")]
        code, out, err = await context.backend.run(argv)
        if code:
            reason = err.decode("utf-8", "replace").strip().splitlines() or [f"exit {code}"]
            raise CapabilityFailure(reason[0][:200])
        return {"Time": when.isoformat()}


def _wifi_timer(store):
    """The field's wifi* fields of GET_SERVICE from the SET_HG_WIFI_TIMER settings."""
    try:
        wifi.ensure_schema(store.schema)
        timer = store.get_section(wifi.TIMER_TYPE.type, wifi.TIMER_KEY) or {}
    except (StoreError, KeyError):
        timer = {}
    return {"wifiStartTime": timer.get("start", ""), "wifiEndTime": timer.get("end", ""),
            "wifiControlCycle": timer.get("cycle") or "DAY",
            "wifiEnable": "1" if timer.get("enable") else "0"}


class Services(Capability):
    """GET_SERVICE, with the field's fields (Query_Current_Business_func): the WiFi
    timer's wifiStartTime, wifiEndTime, wifiControlCycle, wifiEnable, NFC "0" and
    HGWSLEEP "0" (no NFC, no sleep mode); and cubegw's Internet, IPTV, VoIP "1"/"0" from
    the UCI network interfaces (``wan*``, ``iptv*``/``*_iptv``, ``voip*``/``*_voip``,
    not disabled; without UCI network, Internet is whether a default route exists)."""

    cmd_types = ("GET_SERVICE",)
    default_right = RIGHT_BOTH

    def handle_GET_SERVICE(self, payload, context):
        network = _uci(context.backend, "network")
        found = {"Internet": False, "IPTV": False, "VoIP": False}
        names = []
        if network is None:
            found["Internet"] = any(r["destination"] == "0.0.0.0"
                                    for r in context.backend.routes())
        else:
            for section in network.sections:
                if section.type != "interface" or section.get("disabled") == "1":
                    continue
                name = (section.name or "").lower()
                for service, key in (("Internet", "wan"), ("IPTV", "iptv"), ("VoIP", "voip")):
                    if key in name and (service != "Internet" or name.startswith("wan")):
                        found[service] = True
                        names.append(section.name)
        return dict(found, List=names, NFC="0", HGWSLEEP="0", **_wifi_timer(context.store))


def _cwmp_client(backend):
    """(name, ACS URL) of the installed TR-069 client's UCI config, or None."""
    for name in CWMP_CONFIGS:
        package = _uci(backend, name)
        if package is not None:
            acs = next((s for s in package.sections if s.type == "acs"), None)
            return name, acs.get("url") if acs is not None else ""
    return None


def _wan_up(backend):
    stats = backend.net_if_stats()
    return any(stats.get(d, {}).get("isup") for d in wan_devices(backend))


async def request_inform(backend):
    """Ask the TR-069 client for an Inform now (``ubus call tr069 inform``, easycwmp's
    and icwmp's object): the field's INFORM_* result this gateway can know, or
    CapabilityFailure when the request itself fails (the field's "Inform Is Failure!")."""
    client = _cwmp_client(backend)
    if client is None:
        raise CapabilityFailure("no TR-069 client")
    if not client[1]:
        return "INFORM_NO_ACS_CONFIGURATION"
    if not _up_or_routed(backend):
        return "INFORM_NO_WAN"
    ubus = backend.which("ubus")
    if ubus is None:
        raise CapabilityFailure("Inform Is Failure! no ubus to reach the TR-069 client")
    code, _, err = await backend.run([ubus, "call", "tr069", "inform"])
    if code:
        reason = err.decode("utf-8", "replace").strip()[:80] or f"exit {code}"
        raise CapabilityFailure(f"Inform Is Failure! {client[0]}: {reason}")
    # the client sends it and learns the ACS's answer later: the field's "running"
    return "INFORM_IAD_RUNNING"


def _up_or_routed(backend):
    return _wan_up(backend) or any(r["destination"] == "0.0.0.0" for r in backend.routes())


class InformDiag(Capability):
    """INFORM_DIAG_REQ, as the field does: ask the TR-069 client for an Inform and answer
    InformStatus "" and InformResult (INFORM_NO_ACS_CONFIGURATION, INFORM_NO_WAN,
    INFORM_IAD_RUNNING once the client took the request); Status 1 without a client or
    when the request fails."""

    cmd_types = ("INFORM_DIAG_REQ",)
    default_right = RIGHT_BOTH

    async def handle_INFORM_DIAG_REQ(self, payload, context):
        return {"InformStatus": "", "InformResult": await request_inform(context.backend)}


#: How long a REGISTER may wait for the ITMS before REGISTER_GETSTAT says
#: REGISTER_TIMEOUT (the field's window after a REGISTER, 300 s).
REGISTER_WINDOW = 300


def ensure_schema(schema):
    """Register the ``loid`` parameters (ITMS-owned) unless they are there."""
    schema.ensure(*LOID_PARAMS)


class LoidRegister(Capability):
    """REGISTER (USERID = LOID, PASSWORD = LOID password, not an account: no account
    check) stores them, ITMS-owned (the ITMS factory reset clears them), and asks the
    TR-069 client for an Inform, as the field starts its ITMS registration.  Without a
    client the LOID is kept and the answer is Status 1 saying so.
    REGISTER_GETSTAT, with the field's values: REGISTER_DEFAULT before any REGISTER or
    without a client; REGISTER_OLT (RegisterResult 40: waiting for the ITMS) for
    ``REGISTER_WINDOW`` seconds after it; then REGISTER_TIMEOUT, as this gateway never
    learns the ITMS's verdict."""

    cmd_types = ("REGISTER", "REGISTER_GETSTAT")
    default_right = RIGHT_BOTH
    store_schema = LOID_PARAMS

    async def handle_REGISTER(self, payload, context):
        store = context.store
        ensure_schema(store.schema)
        userid, password = payload.get("USERID"), payload.get("PASSWORD", "")
        if not isinstance(userid, str) or not userid:
            raise CapabilityFailure("USERID is required")
        has_client = _cwmp_client(context.backend) is not None
        values = {(LOID_SECTION, "userid"): userid,
                  (LOID_SECTION, "password"): password if password is not None else "",
                  (LOID_SECTION, "state"): "REGISTER_OLT" if has_client else "REGISTER_DEFAULT",
                  (LOID_SECTION, "since"): str(int(context.clock.seconds()))}
        try:
            store.update(values)
        except StoreError as e:
            raise CapabilityFailure(str(e)) from None
        if not has_client:
            raise CapabilityFailure("no TR-069 client: the LOID is kept, no ITMS "
                                    "registration can follow")
        await request_inform(context.backend)
        return self._state(store, context)

    def handle_REGISTER_GETSTAT(self, payload, context):
        ensure_schema(context.store.schema)
        return self._state(context.store, context)

    def _state(self, store, context):
        state = store.get(LOID_SECTION, "state")
        fields = {"USERID": store.get(LOID_SECTION, "userid")}
        if _cwmp_client(context.backend) is None:
            state = "REGISTER_DEFAULT"
        elif state == "REGISTER_OLT":
            since = store.get(LOID_SECTION, "since")
            elapsed = context.clock.seconds() - int(since) if since.isdigit() else 0
            if not 0 <= elapsed < REGISTER_WINDOW:
                state = "REGISTER_TIMEOUT"
            else:
                fields["RegisterResult"] = "40"
        fields["RegisterStatus"] = state
        return fields


selftest = SelfTest()
device_info_all = DeviceInfoAll()
date_time_sync = DateTimeSync()
services = Services()
inform_diag = InformDiag()
loid_register = LoidRegister()
