"""The gateway's registration session: the machine, its UDP socket, what its commands do.

``RegistrationService`` owns the registration machine and the one UDP socket it speaks
through (protocol.md sections 4-6); ``GatewayEffects`` is what the machine's commands do
to the rest of the gateway (store the operation platform, the APP reset, connect the
plugin channel, tell the status file).  Each gets its collaborators in its constructor;
the wiring (``cubegw.tap``) is the one place that joins them.
"""

from twisted.application import service

from cubegw import __version__, identity
from cubegw.access import AccessProtocol, resolver_for
from cubegw.logs import Logger
from cubegw.registration import ONLINE, RegistrationMachine, Settings
from cubegw.store import StoreError


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
    """Registers with the platforms over one UDP socket and keeps the heartbeat.

    ``wan_ip()`` gives the current WAN address at start (``WanWatch`` reports later
    changes to ``protocol``); ``effects`` carries out the machine's commands;
    ``backend`` (the router) gives the live Wi-Fi SSID and key the Key is made with.
    """

    log = Logger()

    def __init__(self, config, store, ident, reactor, effects, wan_ip, uniform=None,
                 backend=None):
        self.config = config
        self.backend = backend
        self.store = store
        self.identity = ident
        self.reactor = reactor
        self.wan_ip = wan_ip
        self.machine = RegistrationMachine(
            ident, config.timing, self.settings, uniform=uniform,
            trust=(config.trust.plugin_centers, config.trust.distribution))
        self.protocol = AccessProtocol(self.machine, reactor, resolver_for(reactor), effects)
        self._port = None

    def privilegedStartService(self):
        """Bind the socket before the reactor runs: an address that cannot be bound
        stops twistd with its reason instead of leaving a daemon that cannot talk."""
        super().privilegedStartService()
        self._listen()

    def _listen(self):
        if self._port is None:
            self._port = self.reactor.listenUDP(0, self.protocol,
                                                interface=self.config.udp_bind)

    def startService(self):
        super().startService()
        self._listen()
        reg = (self.store.get("registration", "ServerAddr"),
               self.store.get("registration", "ServerPort"))
        stored = reg if reg[0] and reg[1] else None
        self.log.info("cubegw {version} {mac} starting: {how}", version=__version__,
                      mac=self.identity.mac,
                      how=f"Boot at the stored platform {reg[0]}:{reg[1]}" if stored
                      else "first registration through the distribution platform")
        self.protocol.start(self.wan_ip(), stored)

    def stopService(self):
        super().stopService()
        self.protocol.stop()
        self.protocol.effects.changed()
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()

    def settings(self):
        mgt = self.store.mgt()
        ssid, password = self.live_wifi()
        return Settings(
            mgt_url=mgt["MgtURL"], mgt_port=mgt["Port"], heartbeat=mgt["Heartbeat"],
            user_id=self.store.get("app", "UserID"),
            wifi_ssid=ssid, wifi_password=password,
            useradmin_password=self.config.accounts.useradmin)

    def live_wifi(self):
        """(SSID, key) of the primary SSID (the first UCI wifi-iface, SSIDIndex 1) as
        SET_WIFI_INFO left it; the YAML ``wifi`` where the router has no such thing."""
        fallback = (self.config.wifi.ssid, self.config.wifi.password)
        if self.backend is None:
            return fallback
        try:
            wireless = self.backend.read_uci("wireless")
        except Exception as e:          # unreadable: the Key still has to be computed
            self.log.debug("wireless config unreadable, the Key uses the YAML wifi: {e}",
                           e=e)
            return fallback
        ifaces = wireless.sections_of("wifi-iface") if wireless is not None else []
        if not ifaces or not ifaces[0].get("ssid"):
            return fallback
        return ifaces[0].get("ssid"), ifaces[0].get("key")

    def registered(self):
        """Whether the operation platform has accepted our Register (GET_SN_INFO's status)."""
        return self.machine.state == ONLINE

    def dev_rnd(self):
        """The DevRND of the current registration, or None."""
        return self.machine.dev_rnd


class GatewayEffects:
    """What the registration machine's commands do outside it (``AccessProtocol.effects``).

    ``app_reset()`` is the capability runtime's APP-side reset; ``plugin_channel`` the
    plugin-center client; ``changed(force=False, routine=False)`` the status file's;
    ``store_written()`` tells the store watch that the file changed by our own hand.
    """

    log = Logger()

    def __init__(self, store, app_reset, plugin_channel, changed, store_written):
        self.store = store
        self.app_reset = app_reset
        self.plugin_channel = plugin_channel
        self.changed = changed
        self.store_written = store_written
        self.plugin_requests = []          # plugin-center addresses asked for by triggers

    def store_operation_platform(self, host, port):
        values = {("registration", "ServerAddr"): host, ("registration", "ServerPort"): port}
        try:
            self.store.update(values)
        except StoreError as e:
            self.log.error("cannot store {values}: {error}", values=values, error=e)
        self.store_written()

    def reset_app_data(self):
        keys = self.app_reset()
        self.store_written()
        self.log.info("APP-side factory reset: {keys}", keys=sorted(f"{s}.{n}" for s, n in keys))

    def connect_plugin(self, host, port):
        self.plugin_requests.append((host, port))
        self.log.info("RequestPlug-in accepted: plugin center {host}:{port}", host=host, port=port)
        self.plugin_channel.connect(host, port)
