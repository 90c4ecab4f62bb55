"""WiFi capabilities over OpenWrt's UCI ``wireless`` config, and the WiFi timer.

SSIDIndex 1..N is the Nth ``wifi-iface`` section of the file; its radio is
the ``wifi-device`` its ``device`` option names.  Without a UCI wireless config
every call is Status 1 "no WiFi radio (no UCI wireless config)".

Value choices (the deck does not fix them):

* ENCRYPT: ``none``, ``WPA-PSK`` (uci psk), ``WPA2-PSK`` (psk2),
  ``WPA-PSK/WPA2-PSK`` (psk-mixed); other uci encryptions are reported as is.
  PWD must be 8-63 characters for the PSK modes, is ignored for ``none``.
* SSID: 1-32 bytes of UTF-8.
* Channel: 0 (auto) or a valid channel of the radio's band (2.4 GHz 1-13,
  5 GHz 36-64, 100-144 by 4, 149-165 by 4; any of both when the band is unknown).
* PowerLevel: 1-100 percent of ``MAX_TXPOWER_DBM`` (uci ``txpower`` in dBm);
  an unset txpower reads as 100.
* SET_WIFI_RATE_PRIORITY_MODE: WiFi_Mode 1 (rate priority: no legacy 802.11b
  rates, uci ``legacy_rates '0'`` on every radio) or 0 (compatibility,
  ``legacy_rates '1'``); OprType ``GET`` only reports the mode.
* GET_WLAN_ATTACH_INFO runs ``iw dev <if> station dump`` per interface; when
  iw is missing or fails the list is empty, Status 0, and ``Note`` says why.

SET_HG_WIFI_TIMER keeps its settings in the management store (section type
``wifi_timer``, APP-owned, so the APP reset clears it): the radios go off at
StartTime and back on at EndTime (HH:MM, local time; EndTime before StartTime
crosses midnight) on the days of ControlCycle: ``DAY`` (every day) or a comma
list of weekdays 1-7 (1 = Monday), optionally prefixed ``WEEK``; a window
crossing midnight belongs to the day it starts.  ``WifiTimer`` checks once a
minute on the clock, so it follows store changes, resets and restarts.
"""

import re
import time

from twisted.internet import defer

from cubegw.backend import NOT_OPENWRT
from cubegw.capabilities.base import PENDING, RIGHT_BOTH, Capability, CapabilityFailure, fired
from cubegw.capabilities.wan import read_uci_or_fail
from cubegw.logs import Logger
from cubegw.capabilities.stored import TIMER_KEY, TIMER_TYPE
from cubegw.store import StoreError

log = Logger()

NO_WIFI = "no WiFi radio (no UCI wireless config)"
MAX_TXPOWER_DBM = 20
ENCRYPT_TO_UCI = {"none": "none", "WPA-PSK": "psk", "WPA2-PSK": "psk2",
                  "WPA-PSK/WPA2-PSK": "psk-mixed"}
UCI_TO_ENCRYPT = {"none": "none", "psk": "WPA-PSK", "psk2": "WPA2-PSK",
                  "psk-mixed": "WPA-PSK/WPA2-PSK"}
CHANNELS_2G = frozenset(range(1, 14))
CHANNELS_5G = frozenset(list(range(36, 65, 4)) + list(range(100, 145, 4))
                        + list(range(149, 166, 4)))

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def ensure_schema(schema):
    """Register the ``wifi_timer`` section type in ``schema`` unless it is there."""
    schema.ensure_type(TIMER_TYPE)


def load_wireless(backend):
    wireless = read_uci_or_fail(backend, "wireless")
    if wireless is None or not wireless.sections_of("wifi-device"):
        raise CapabilityFailure(NO_WIFI)
    return wireless


def _index(payload, wireless):
    ifaces = wireless.sections_of("wifi-iface")
    raw = payload.get("SSIDIndex")
    try:
        index = int(raw)
    except (TypeError, ValueError):
        raise CapabilityFailure(f"SSIDIndex must be 1-{len(ifaces)}, got {raw!r}")
    if not 1 <= index <= len(ifaces):
        raise CapabilityFailure(f"SSIDIndex must be 1-{len(ifaces)}, got {raw!r}")
    return index, ifaces[index - 1]


def _radio(wireless, iface):
    name = iface.get("device")
    for device in wireless.sections_of("wifi-device"):
        if device.name == name:
            return device
    raise CapabilityFailure(f"wifi-iface names an unknown radio {name!r}")


def _band(device):
    band = device.get("band")
    if band in ("2g", "5g"):
        return band
    hwmode = device.get("hwmode")
    return {"11a": "5g", "11g": "2g", "11b": "2g", "11ng": "2g", "11na": "5g"}.get(hwmode, "")


def _power_level(device):
    txpower = device.get("txpower")
    if not str(txpower).isdigit():
        return 100
    return max(1, min(100, round(int(txpower) * 100 / MAX_TXPOWER_DBM)))


def iface_info(index, iface, device):
    encryption = iface.get("encryption", "none")
    mode = encryption.split("+", 1)[0]
    channel = device.get("channel", "auto")
    return {"SSIDIndex": index, "SSID": iface.get("ssid"), "PWD": iface.get("key"),
            "ENCRYPT": UCI_TO_ENCRYPT.get(mode, encryption),
            "PowerLevel": _power_level(device),
            "Channel": "0" if channel == "auto" else channel,
            "Enable": iface.get("disabled", "0") != "1" and device.get("disabled", "0") != "1"}


def _write_apply(backend, wireless, reply=None):
    """Write (on disk before the answer), then apply: a Deferred of ``reply``.  Steps done
    when they return (a write made at once, apply off OpenWrt) are read, not chained on."""
    written = backend.write_uci("wireless", wireless)
    if fired(written) is PENDING:           # on its way, or failed: apply after it
        written.addCallback(lambda _: backend.apply("wireless"))
        return written.addCallback(_log_not_applied, reply)
    applied = backend.apply("wireless")
    problem = fired(applied)
    return applied.addCallback(_log_not_applied, reply) if problem is PENDING \
        else defer.succeed(_log_not_applied(problem, reply))


def _log_not_applied(problem, reply):
    if problem:     # in a lab (not OpenWrt) every SET would say so: debug there
        (log.debug if problem == NOT_OPENWRT else log.info)(
            "wireless stored; not applied: {problem}", problem=problem)
    return reply


class WifiInfo(Capability):
    """The WiFi settings and stations (``cmd_types``), over UCI ``wireless``."""

    cmd_types = ("GET_WIFI_INFO", "SET_WIFI_INFO", "SET_WLAN_SSID_DISABLE",
                 "GET_WLAN_INTF_INFO", "GET_WLAN_ATTACH_INFO", "SET_WIFI_RATE_PRIORITY_MODE")
    default_right = RIGHT_BOTH

    def handle_GET_WIFI_INFO(self, payload, context):
        wireless = load_wireless(context.backend)
        if payload.get("SSIDIndex") not in (None, ""):
            index, iface = _index(payload, wireless)
            return iface_info(index, iface, _radio(wireless, iface))
        items = [iface_info(i, iface, _radio(wireless, iface))
                 for i, iface in enumerate(wireless.sections_of("wifi-iface"), 1)]
        return {"Num": len(items), "List": items}

    async def handle_SET_WIFI_INFO(self, payload, context):
        wireless = load_wireless(context.backend)
        index, iface = _index(payload, wireless)
        device = _radio(wireless, iface)
        iface_changes, device_changes = {}, {}
        ssid = payload.get("SSID")
        if ssid not in (None, ""):
            if not isinstance(ssid, str) or not 1 <= len(ssid.encode("utf-8")) <= 32 \
                    or any(ord(c) < 32 or ord(c) == 127 for c in ssid):
                raise CapabilityFailure("SSID must be 1-32 bytes, no control characters")
            iface_changes["ssid"] = ssid
        encrypt = payload.get("ENCRYPT")
        pwd = payload.get("PWD")
        if encrypt not in (None, ""):
            if encrypt not in ENCRYPT_TO_UCI:
                raise CapabilityFailure(f"ENCRYPT must be one of {', '.join(ENCRYPT_TO_UCI)}")
            iface_changes["encryption"] = ENCRYPT_TO_UCI[encrypt]
        mode = iface_changes.get("encryption", iface.get("encryption", "none").split("+")[0])
        if pwd not in (None, "") or (encrypt not in (None, "") and mode != "none"):
            if mode != "none":
                if not isinstance(pwd, str) or not 8 <= len(pwd) <= 63 \
                        or any(not 32 <= ord(c) < 127 for c in pwd):
                    raise CapabilityFailure("PWD must be 8-63 printable ASCII characters")
                iface_changes["key"] = pwd
        if mode == "none" and encrypt == "none":
            iface_changes["key"] = ""
        channel = payload.get("Channel")
        if channel not in (None, ""):
            try:
                number = int(channel)
            except (TypeError, ValueError):
                raise CapabilityFailure(f"Channel must be a number, got {channel!r}")
            band = _band(device)
            valid = {"2g": CHANNELS_2G, "5g": CHANNELS_5G}.get(band, CHANNELS_2G | CHANNELS_5G)
            if number != 0 and number not in valid:
                raise CapabilityFailure(f"Channel {number} is not valid for the {band or 'radio'}"
                                        " band (0 is auto)")
            device_changes["channel"] = "auto" if number == 0 else str(number)
        level = payload.get("PowerLevel")
        if level not in (None, ""):
            try:
                percent = int(level)
            except (TypeError, ValueError):
                percent = -1
            if not 1 <= percent <= 100:
                raise CapabilityFailure(f"PowerLevel must be 1-100, got {level!r}")
            device_changes["txpower"] = str(max(1, round(MAX_TXPOWER_DBM * percent / 100)))
        enable = payload.get("Enable")
        if enable not in (None, ""):
            if str(enable) not in ("0", "1"):
                raise CapabilityFailure(f"Enable must be 0 or 1, got {enable!r}")
            iface_changes["disabled"] = "0" if str(enable) == "1" else "1"
        for section, changes in ((iface, iface_changes), (device, device_changes)):
            for name, value in changes.items():
                if value == "":
                    section.options.pop(name, None)
                else:
                    section.options[name] = value
        await _write_apply(context.backend, wireless)
        return {}

    def handle_SET_WLAN_SSID_DISABLE(self, payload, context):
        wireless = load_wireless(context.backend)
        _, iface = _index(payload, wireless)
        iface.options["disabled"] = "1"
        return _write_apply(context.backend, wireless, {})

    def handle_GET_WLAN_INTF_INFO(self, payload, context):
        wireless = load_wireless(context.backend)
        radios = []
        for device in wireless.sections_of("wifi-device"):
            ssids = [i for i, iface in enumerate(wireless.sections_of("wifi-iface"), 1)
                     if iface.get("device") == device.name]
            radios.append({"Name": device.name, "Band": _band(device),
                           "Channel": device.get("channel", "auto"),
                           "HTMode": device.get("htmode"),
                           "Country": device.get("country"),
                           "PowerLevel": _power_level(device),
                           "Enable": device.get("disabled", "0") != "1",
                           "SSIDIndex": ",".join(str(i) for i in ssids)})
        return {"Num": len(radios), "List": radios}

    async def handle_GET_WLAN_ATTACH_INFO(self, payload, context):
        load_wireless(context.backend)
        stations, note = await station_dump(context.backend)
        reply = {"Num": len(stations), "List": stations}
        if note:
            reply["Note"] = note
        return reply

    async def handle_SET_WIFI_RATE_PRIORITY_MODE(self, payload, context):
        wireless = load_wireless(context.backend)
        radios = wireless.sections_of("wifi-device")
        if str(payload.get("OprType", "SET")).upper() == "GET":
            legacy = any(d.get("legacy_rates", "1") == "1" for d in radios)
            return {"WiFi_Mode": 0 if legacy else 1}
        mode = str(payload.get("WiFi_Mode", ""))
        if mode not in ("0", "1"):
            raise CapabilityFailure("WiFi_Mode must be 0 (compatibility) or 1 (rate priority)")
        for device in radios:
            device.options["legacy_rates"] = "0" if mode == "1" else "1"
        await _write_apply(context.backend, wireless)
        return {"WiFi_Mode": mode}


def wifi_devices(backend):
    """Names of the system's WiFi interfaces (wlanN, phyN-apN, ...)."""
    names = set(backend.net_if_stats()) | set(backend.net_if_addrs())
    return sorted(n for n in names if re.match(r"(wlan|wl|ath|phy\d+-)", n))


def parse_station_dump(text, ifname):
    stations, current = [], None
    for line in text.splitlines():
        match = re.match(r"Station ([0-9a-fA-F:]{17})", line)
        if match:
            current = {"MAC": match.group(1).upper(), "Interface": ifname, "RSSI": "",
                       "RxBytes": 0, "TxBytes": 0, "ConnectedTime": 0, "TxRate": ""}
            stations.append(current)
            continue
        if current is None or ":" not in line:
            continue
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "rx bytes":
            current["RxBytes"] = int(value) if value.isdigit() else 0
        elif key == "tx bytes":
            current["TxBytes"] = int(value) if value.isdigit() else 0
        elif key == "signal":
            current["RSSI"] = value.split()[0] if value else ""
        elif key == "connected time":
            current["ConnectedTime"] = int(value.split()[0]) if value.split()[0].isdigit() else 0
        elif key == "tx bitrate":
            current["TxRate"] = value.split()[0] if value else ""
    return stations


async def station_dump(backend):
    """([station dicts], note): every WiFi interface's ``iw station dump``."""
    stations, notes = [], []
    for ifname in wifi_devices(backend):
        try:
            code, out, _ = await backend.run(["iw", "dev", ifname, "station", "dump"])
        except Exception as e:  # iw not there: the spawn itself failed
            code, out = 127, str(e).encode()
        if code:
            notes.append(f"iw failed on {ifname}")
            continue
        stations.extend(parse_station_dump(out.decode("utf-8", "replace"), ifname))
    if not wifi_devices(backend):
        notes.append("no WiFi interface up")
    return stations, "; ".join(notes)


# ---------------------------------------------------------------- the timer

def parse_cycle(text):
    """A set of weekdays 1-7 for ControlCycle, or StoreError-like CapabilityFailure."""
    if not isinstance(text, str):
        raise CapabilityFailure("ControlCycle must be DAY or weekdays 1-7")
    value = text.strip().upper()
    if value in ("DAY", ""):
        return frozenset(range(1, 8))
    if value.startswith("WEEK"):
        value = value[4:].lstrip(":")
    try:
        days = frozenset(int(d) for d in value.split(","))
    except ValueError:
        raise CapabilityFailure("ControlCycle must be DAY or weekdays 1-7 (1 Monday)")
    if not days or not days <= frozenset(range(1, 8)):
        raise CapabilityFailure("ControlCycle must be DAY or weekdays 1-7 (1 Monday)")
    return days


def _minutes(text):
    match = _HHMM.fullmatch(text or "")
    if not match:
        raise CapabilityFailure(f"time must be HH:MM, got {text!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def in_window(settings, local):
    """Whether ``local`` (a struct_time) is inside the timer's off window."""
    if not settings or not settings["enable"] or not settings["start"] or not settings["end"]:
        return False
    start, end = _minutes(settings["start"]), _minutes(settings["end"])
    days = parse_cycle(settings["cycle"])
    now = local.tm_hour * 60 + local.tm_min
    today = local.tm_wday + 1
    yesterday = 7 if today == 1 else today - 1
    if start == end:
        return False
    if start < end:
        return today in days and start <= now < end
    return (today in days and now >= start) or (yesterday in days and now < end)


def set_radios(wireless, enabled, names=None):
    """Set the radios in ``names`` (all when None); return the names of those that changed."""
    changed = []
    for i, device in enumerate(wireless.sections_of("wifi-device")):
        name = device.name or f"@wifi-device[{i}]"
        if names is not None and name not in names:
            continue
        was_on = device.options.get("disabled", "0") != "1"
        if was_on != enabled:
            changed.append(name)
        device.options["disabled"] = "0" if enabled else "1"
    return changed


class WifiTimer:
    """Turns the radios off inside the timer's window and back on when it ends.

    Only the radios on at the "off" edge come back on (a radio the user disabled stays
    so); their names are kept in the store (``radios_off``) across a restart.
    Checks once a minute (just after the minute turns) on ``clock``;
    ``localtime`` converts clock seconds to a struct_time (``time.localtime``).
    At start, inside the window, the radios go off; outside, nothing changes.
    """

    def __init__(self, store, backend, clock, localtime=time.localtime):
        ensure_schema(store.schema)
        self.store, self.backend, self.clock, self.localtime = store, backend, clock, localtime
        self._call = None
        self._inside = None
        self._turned_off = []         # radios this timer turned off, the ones it turns on
        self.actions = []             # (clock time, "off"/"on") for the log and tests

    def start(self):
        settings = self.settings()
        self._turned_off = [n for n in (settings or {}).get("radios_off", "").split(",") if n]
        # radios still off from before a restart: the "on" edge is due whatever the window
        self._inside = True if self._turned_off else None
        self.check()

    def stop(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def settings(self):
        return self.store.get_section(TIMER_TYPE.type, TIMER_KEY)

    def check(self):
        """Act on a window edge, then arm the next check."""
        self._call = None
        try:
            inside = in_window(self.settings(), self.localtime(self.clock.seconds()))
        except CapabilityFailure as e:
            log.warn("WiFi timer settings unusable: {reason}", reason=e.reason)
            inside = False
        if inside != self._inside:
            if inside or self._inside:
                self._switch(not inside)
            self._inside = inside
        settings = self.settings()
        if not settings or not settings["enable"]:
            return              # no timer set: nothing wakes the daemon (SET re-arms it)
        now = self.clock.seconds()
        self._call = self.clock.callLater(60 - now % 60 + 0.5, self.check)

    def _switch(self, enabled):
        try:
            wireless = self.backend.read_uci("wireless")
        except Exception as e:
            log.warn("WiFi timer: wireless config unreadable: {e}", e=e)
            return
        if wireless is None:
            return
        turned = [] if enabled else set_radios(wireless, False)
        if enabled:
            set_radios(wireless, True, set(self._turned_off))
        d = defer.maybeDeferred(self.backend.write_uci, "wireless", wireless)
        self._remember(turned)
        self.actions.append((self.clock.seconds(), "on" if enabled else "off"))
        log.info("WiFi timer: radios {state}", state="on" if enabled else "off")
        d.addCallback(lambda _: self.backend.apply("wireless"))
        d.addErrback(lambda f: log.failure("WiFi timer: write or apply failed", failure=f))

    def _remember(self, names):
        self._turned_off = list(names)
        if self.settings() is None:
            return              # the APP reset cleared the timer: nothing to keep
        try:
            self.store.update_section(TIMER_TYPE.type, TIMER_KEY,
                                      {"radios_off": ",".join(names)})
        except StoreError as e:
            log.warn("WiFi timer: cannot keep the radios it turned off: {e}", e=e)


class WifiTimerCapability(Capability):
    """SET_HG_WIFI_TIMER: StartTime, EndTime (HH:MM), ControlCycle, Enable.

    Its scheduler (a ``WifiTimer``) runs from ``start`` to ``stop``, which the daemon's
    capability runtime calls; ``localtime`` converts clock seconds to local time.
    """

    cmd_types = ("SET_HG_WIFI_TIMER",)
    default_right = RIGHT_BOTH
    store_schema = (TIMER_TYPE,)

    def __init__(self, localtime=time.localtime):
        self.localtime = localtime
        self.scheduler = None         # the running WifiTimer, set by ``start``

    def start(self, context):
        """Make and start the scheduler (the daemon does this once at start)."""
        self.stop()
        self.scheduler = WifiTimer(context.store, context.backend, context.clock,
                                   self.localtime)
        self.scheduler.start()
        return self.scheduler

    def stop(self):
        if self.scheduler is not None:
            self.scheduler.stop()
        self.scheduler = None

    def handle_SET_HG_WIFI_TIMER(self, payload, context):
        load_wireless(context.backend)
        enable = str(payload.get("Enable", "1"))
        if enable not in ("0", "1"):
            raise CapabilityFailure("Enable must be 0 or 1")
        values = {"enable": enable}
        if enable == "1" or payload.get("StartTime") not in (None, ""):
            for field, name in (("StartTime", "start"), ("EndTime", "end")):
                _minutes(payload.get(field))
                values[name] = payload[field]
            cycle = payload.get("ControlCycle", "DAY")
            parse_cycle(cycle)
            values["cycle"] = cycle.strip().upper() or "DAY"
        store = context.store
        ensure_schema(store.schema)
        try:
            if store.get_section(TIMER_TYPE.type, TIMER_KEY) is None:
                store.add_section(TIMER_TYPE.type, TIMER_KEY, values)
            else:
                store.update_section(TIMER_TYPE.type, TIMER_KEY, values)
        except StoreError as e:
            raise CapabilityFailure(str(e))
        if self.scheduler is not None and self.scheduler.store is store:
            self.scheduler.stop()
            self.scheduler.check()
        return {}


wifi_info = WifiInfo()
wifi_timer = WifiTimerCapability()
