"""The gateway's registration service: the store, the identity, the machine and its socket.

It is the ``effects`` of ``AccessProtocol``: it persists the operation platform, performs
the APP-side reset, and keeps the operator's status file.  It also watches the WAN
address and the UCI file, so ``cubegw-ctl mgt set`` reaches a running daemon.
"""

import os

from twisted.application import service
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from cubegw import identity, wire
from cubegw.access import AccessProtocol, resolver_for
from cubegw.registration import ONLINE, RegistrationMachine, Settings
from cubegw.status import StatusFile
from cubegw.store import StoreError

STORE_FILE = "cubegw"


def build_identity(device, net_if_addrs):
    """The device identity from the config; ``auto`` MAC from the WAN interface, ``auto`` SN from the MAC."""
    if device.mac == "auto":
        mac = identity.interface_mac(device.wan_interface, net_if_addrs)
    else:
        mac = identity.normalize_mac(device.mac)
    sn = identity.sn_from_mac(mac) if device.sn == "auto" else identity.check_sn_format(device.sn)
    if len(device.loid) > 24:
        raise identity.IdentityError("LOID must be at most 24 characters")
    return identity.Identity(
        mac=mac, sn=sn, loid=device.loid, vendor=device.vendor, model=device.model,
        firmware_version=device.firmware_version, hardware_version=device.hardware_version)


class RegistrationService(service.Service):
    """Registers with the platforms over one UDP socket and keeps the heartbeat."""

    log = Logger()

    def __init__(self, config, store, ident, reactor, net_if_addrs, uniform=None):
        self.config = config
        self.store = store
        self.identity = ident
        self.reactor = reactor
        self._net_if_addrs = net_if_addrs
        self.machine = RegistrationMachine(ident, config.timing, self.settings, uniform=uniform)
        self.protocol = AccessProtocol(self.machine, reactor, resolver_for(reactor), self)
        self.status_file = StatusFile(config.state_dir)
        self.plugin_requests = []          # plugin-center addresses asked for by triggers
        self.plugin_channel = None         # set by the wiring: a PluginChannel
        self.lan = None                    # set by the wiring: the LanServer
        self.app_reset = store.factory_reset_app   # the wiring adds the firewall sync
        self.last_hb = None                # wall time of the last answered heartbeat
        self._hb_seen = 0
        self._port = None
        self._loops = []
        self._store_stamp = None
        self._wan_ip = ""

    # -------------------------------------------------------------- lifecycle

    def startService(self):
        super().startService()
        self._wan_ip = self.wan_ip()
        self._store_stamp = self._stamp()
        for problem in self.store.problems():
            self.log.warn("store: {problem}", problem=problem)
        self._port = self.reactor.listenUDP(0, self.protocol, interface=self.config.udp_bind)
        reg = (self.store.get("registration", "ServerAddr"),
               self.store.get("registration", "ServerPort"))
        stored = reg if reg[0] and reg[1] else None
        self.log.info("cubegw {mac} starting: {how}", mac=self.identity.mac,
                      how=f"Boot at the stored platform {reg[0]}:{reg[1]}" if stored
                      else "first registration through the distribution platform")
        self.protocol.start(self._wan_ip, stored)
        timing = self.config.timing
        for interval, check in [(timing.wan_check, self.check_wan),
                                (timing.store_check, self.check_store)]:
            if interval > 0:
                loop = LoopingCall(check)
                loop.clock = self.reactor
                loop.start(interval, now=False)
                self._loops.append(loop)

    def stopService(self):
        super().stopService()
        for loop in self._loops:
            loop.stop()
        self._loops = []
        if self.plugin_channel is not None:
            self.plugin_channel.stop()
        self.protocol.stop()
        self.changed()
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()

    # --------------------------------------------------------------- inputs

    def settings(self):
        mgt = self.store.mgt()
        return Settings(
            mgt_url=mgt["MgtURL"], mgt_port=mgt["Port"], heartbeat=mgt["Heartbeat"],
            user_id=self.store.get("app", "UserID"),
            wifi_ssid=self.config.wifi.ssid, wifi_password=self.config.wifi.password,
            useradmin_password=self.config.accounts.useradmin)

    def wan_ip(self):
        return identity.interface_ipv4(self.config.device.wan_interface, self._net_if_addrs())

    def check_wan(self):
        """Poll the WAN address; a change means Boot at the stored platform."""
        ip = self.wan_ip()
        if ip != self._wan_ip:
            self._wan_ip = ip
            self.protocol.wan_ip_changed(ip)

    def _stamp(self):
        try:
            st = os.stat(self.store.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def check_store(self, force=False):
        """Re-read the UCI file when another process (cubegw-ctl, uci) changed it."""
        stamp = self._stamp()
        if stamp == self._store_stamp and not force:
            return
        self._store_stamp = stamp
        try:
            changed = self.store.reload()
        except StoreError as e:
            self.log.error("store file unreadable, keeping the values in memory: {error}",
                           error=e)
            return
        if changed:
            self.log.info("store changed outside the daemon: {keys}",
                          keys=sorted(f"{s}.{n}" for s, n in changed))
            if self.lan is not None and ("mgt", "LocatePort") in changed:
                self.lan.relisten()

    # -------------------------------------------------------------- effects

    def store_operation_platform(self, host, port):
        self._write({("registration", "ServerAddr"): host, ("registration", "ServerPort"): port})

    def reset_app_data(self):
        keys = self.app_reset()
        self._store_stamp = self._stamp()
        self.log.info("APP-side factory reset: {keys}", keys=sorted(f"{s}.{n}" for s, n in keys))

    def connect_plugin(self, host, port):
        self.plugin_requests.append((host, port))
        self.log.info("RequestPlug-in accepted: plugin center {host}:{port}", host=host, port=port)
        if self.plugin_channel is not None:
            self.plugin_channel.connect(host, port)

    def registered(self):
        """Whether the operation platform has accepted our Register (GET_SN_INFO's status)."""
        return self.machine.state == ONLINE

    def push_report(self, parameter):
        """A Report over the plugin channel when it is up, else one datagram to MessageServer."""
        if self.plugin_channel is not None and self.plugin_channel.send_report(parameter):
            return True
        host, _, port = (self.machine.message_server or "").rpartition(":")
        if not host or not port.isdigit():
            self.log.warn("Report dropped: no plugin channel and no MessageServer")
            return False
        self.protocol.send_report(host, int(port),
                                  wire.Report(MAC=self.identity.mac, Parameter=parameter))
        return True

    def changed(self, force=False, routine=False):
        """After every event: the status file, at once if something other than the
        heartbeat counters changed (or ``force``: an operator asked, SIGUSR1).

        A ``routine`` event (an Hb sent or answered 0) builds no snapshot unless the
        status file is due for its once-a-minute counters anyway.
        """
        now = self.reactor.seconds()
        hb_ok = self.machine.counters["hb_ok"]
        if hb_ok != self._hb_seen:
            routine = routine and self.last_hb is not None   # the first answer is news
            self._hb_seen = hb_ok
            self.last_hb = now
        if routine and not force and not self.status_file.routine_due(now):
            return
        try:
            self.status_file.write(self.snapshot(), now, force)
        except OSError as e:
            self.log.warn("cannot write the status file: {error}", error=e)

    def _write(self, values):
        try:
            self.store.update(values)
        except StoreError as e:
            self.log.error("cannot store {values}: {error}", values=values, error=e)
        self._store_stamp = self._stamp()

    def snapshot(self):
        m = self.machine
        return {
            "pid": os.getpid(),
            "running": self.running,
            "state": m.state,
            "mac": self.identity.mac,
            "sn": self.identity.sn,
            "wan_ip": m.wan_ip,
            "distribution": "%s:%s" % m.distribution if m.distribution else None,
            "operation": "%s:%s" % m.operation if m.operation else None,
            "message_server": m.message_server,
            "heartbeat_interval": m.interval,
            "last_heartbeat": self.last_hb,
            "counters": dict(m.counters, dropped=self.protocol.dropped),
            "plugin_requests": ["%s:%s" % hp for hp in self.plugin_requests[-5:]],
            "plugin_channel": self.plugin_channel.snapshot() if self.plugin_channel else None,
        }
