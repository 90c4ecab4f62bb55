"""Wiring point of ``twistd cubeplat``: options, and the service tree of the platform.

``makeService`` only builds: a ``PlatformService`` (loads the registry, then starts its
children) holding one UDP server per platform socket, and, in ``frontends``, the TCP
listeners of the plugin center and the HTTP API (Twisted endpoints, IPv4 or IPv6 by the
configured host), which start after the UDP servers (the API drives the operation
platform) and stop before them.  Each builder takes the reactor, so tests pass a
``MemoryReactorClock``.
"""

import errno
import socket

from twisted.application import internet, service
from twisted.internet import defer, endpoints
from twisted.internet.abstract import isIPv6Address
from twisted.internet.posixbase import PosixReactorBase
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from cubegw import logs
from cubegw.platform.api import Api, build_site
from cubegw.platform.config import ConfigError, PlatformConfig, load_config
from cubegw.platform.faults import FaultRules
from cubegw.platform.messagelog import MessageLog
from cubegw.platform.plugincenter import PluginCenter
from cubegw.platform.registry import BACKENDS, Registry
from cubegw.platform.distribution import DistributionProtocol
from cubegw.platform.operation import HeartbeatPort, OperationProtocol
from cubegw.platform.udp import MessageServerProtocol


class Options(usage.Options):
    synopsis = ("[--config FILE] [--db PATH] [--distribution-port N] [--operation-port N] "
                "[--plugin-center-port N] [--api-port N]")
    longdesc = ("The cubegw reference platform: distribution and operation platforms over "
                "UDP, the plugin center over TCP, a JSON HTTP API for the phone app, with a "
                "device registry in SQLite and scripted fault injection.")
    optParameters = [
        ["config", "c", None, "YAML configuration (default: built-in defaults; see "
                              "etc/cubeplat.yaml)"],
        ["db", None, None, "SQLite database path (overrides db)"],
        ["distribution-port", None, None, "UDP port of the distribution platform "
                                          "(overrides distribution.port)"],
        ["operation-port", None, None, "UDP port of the operation platform "
                                       "(overrides operation.port)"],
        ["plugin-center-port", None, None, "TCP port of the plugin center "
                                           "(overrides plugin_center.port)"],
        ["api-port", None, None, "TCP port of the HTTP API (overrides api.port)"],
    ]

    #: Open the database while parsing, so a bad path stops twistd with one line.
    check_database = True
    #: Bind each configured port once while parsing, so a taken one does too.
    check_ports = True

    def postOptions(self):
        try:
            config = load_config(self["config"]) if self["config"] else PlatformConfig()
            self["platform"] = config.with_overrides(
                db=self["db"], distribution_port=self["distribution-port"],
                operation_port=self["operation-port"],
                plugin_center_port=self["plugin-center-port"], api_port=self["api-port"])
        except ConfigError as e:
            raise usage.UsageError(str(e))
        if self.check_database:
            config = self["platform"]
            try:
                BACKENDS[config.registry].check(config)
            except ValueError as e:
                raise usage.UsageError(str(e))
        if self.check_ports:
            try:
                check_ports(self["platform"])
            except ValueError as e:
                raise usage.UsageError(str(e))


def check_ports(config):
    """``ValueError`` naming the first configured port (not 0) that cannot be bound now:
    taken, or not allowed.  The listeners bind again at start; this makes the common
    failure one line and exit status 1 rather than a traceback, or a stop with status 0
    for the TCP listeners, which start once the registry is loaded."""
    wanted = [("distribution", config.distribution, socket.SOCK_DGRAM),
              ("operation", config.operation, socket.SOCK_DGRAM),
              ("plugin_center", config.plugin_center, socket.SOCK_STREAM),
              ("api", config.api, socket.SOCK_STREAM)]
    if config.separate_message_server():
        ms = config.message_server
        wanted.append(("message_server", config.message_server.__class__(
            host=ms.host or config.operation.host, port=ms.port), socket.SOCK_DGRAM))
    for name, endpoint, kind in wanted:
        if not endpoint.port:
            continue
        family = socket.AF_INET6 if isIPv6Address(endpoint.host) else socket.AF_INET
        try:
            with socket.socket(family, kind) as s:
                if kind == socket.SOCK_STREAM:   # as Twisted's TCP ports do
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((endpoint.host, endpoint.port))
        except OSError as e:
            why = "taken" if e.errno == errno.EADDRINUSE else "unusable"
            raise ValueError(f"{name}.port: {host_port(endpoint.host, endpoint.port)} is "
                             f"{why} ({e.strerror or e})")


class PlatformService(service.MultiService):
    """Loads the registry before starting its children, flushes it after stopping them."""

    log = Logger()

    def __init__(self, reactor, config, registry, faults):
        super().__init__()
        self.reactor = reactor
        self.config = config
        self.registry = registry
        self.faults = faults
        self.distribution = self.operation = self.message_server = None
        self.plugin_center = self.api = None
        self.frontends = service.MultiService()   # TCP listeners, started last
        self._loading = None

    def startService(self):
        service.Service.startService(self)
        self._loading = self.registry.load()
        self._loading.addCallback(self._loaded).addErrback(self._load_failed)

    def _loaded(self, _):
        self.registry.preset(self.config.devices)
        if self.running:
            for child in self:
                child.startService()
            try:
                self.frontends.startService()
            except Exception as e:
                self.log.critical("cannot start the plugin center and HTTP API listeners: "
                                  "{error}", error=e)
                self.reactor.callWhenRunning(self.reactor.stop)
                return
        self.log.info("cubeplat ready: {devices} devices, {faults} fault rules",
                      devices=len(self.registry), faults=len(self.faults.rules))

    def _load_failed(self, reason):
        self.log.failure("cannot open the device registry {db}", reason, db=self.config.db)
        self.reactor.callWhenRunning(self.reactor.stop)

    def stopService(self):
        d = defer.Deferred()
        (self._loading or defer.succeed(None)).addBoth(lambda _: d.callback(None))
        d.addCallback(lambda _: self.frontends.running and self.frontends.stopService())
        d.addCallback(lambda _: service.MultiService.stopService(self))
        d.addCallback(lambda _: self.registry.close())
        return d


def build_registry(reactor, config):
    """The device registry on the store of the configured backend (``registry:``)."""
    store = BACKENDS[config.registry].make(config, reactor)
    return Registry(store, reactor, flush_delay=config.flush_delay,
                    report_limit=config.report_limit)


def build_operation(reactor, config, registry, faults, wirelog=None):
    protocol = OperationProtocol(registry, faults, config, reactor, wirelog=wirelog)
    server = _HeartbeatServer(config.operation.port, protocol,
                              interface=config.operation.host, reactor=reactor)
    server.setName("operation")
    return protocol, server


class _HeartbeatServer(internet.UDPServer):
    """The operation socket's service: a ``HeartbeatPort`` where the reactor's own
    ``listenUDP`` would make a ``udp.Port`` (the POSIX reactors); elsewhere (a test's
    memory reactor) ``listenUDP`` as before."""

    def _getPort(self):
        if not isinstance(self.reactor, PosixReactorBase):
            return super()._getPort()
        port = HeartbeatPort(*self.args, reactor=self.reactor, **self.kwargs)
        port.startListening()
        return port


def build_distribution(reactor, config, registry, faults, operation, wirelog=None):
    protocol = DistributionProtocol(
        registry, faults, config, reactor,
        operation_address=lambda: (config.operation.advertised, operation.bound_port()),
        wirelog=wirelog)
    return protocol, _udp_server(reactor, "distribution", config.distribution, protocol)


def build_message_server(reactor, config, registry, faults, wirelog=None):
    protocol = MessageServerProtocol(registry, faults, config, reactor, wirelog=wirelog)
    endpoint = config.message_server
    host = endpoint.host or config.operation.host
    return protocol, _udp_server(reactor, "message_server", endpoint, protocol, host)


def server_endpoint(reactor, host, port):
    """A TCP server endpoint on ``host:port``: IPv6 when ``host`` is an IPv6 address (such
    as ``::1`` or ``::``), else IPv4 (an address or a name)."""
    if isIPv6Address(host):
        return endpoints.TCP6ServerEndpoint(reactor, port, interface=host)
    return endpoints.TCP4ServerEndpoint(reactor, port, interface=host)


def host_port(host, port):
    """``host:port``, with an IPv6 host in brackets (``[::1]:9000``)."""
    return f"[{host}]:{port}" if isIPv6Address(host) else f"{host}:{port}"


class TCPListener(service.Service):
    """Listens on a TCP endpoint when started, logging the bound port (port 0: any free
    port).  Starting raises if the port cannot be had: TCP endpoints listen at once."""

    log = Logger()

    def __init__(self, reactor, label, endpoint, factory, on_stop=None):
        self.reactor = reactor
        self.label = label
        self.endpoint = endpoint
        self.factory = factory
        self.on_stop = on_stop
        self.port = None

    def startService(self):
        service.Service.startService(self)
        listening = server_endpoint(self.reactor, self.endpoint.host,
                                    self.endpoint.port).listen(self.factory)
        outcome = []
        listening.addBoth(outcome.append)
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        self.port = outcome[0]
        self.log.info("{label} listening on {address}", label=self.label,
                      address=host_port(self.endpoint.host, self.bound_port()),
                      host=self.endpoint.host, port=self.bound_port())

    def stopService(self):
        service.Service.stopService(self)
        if self.on_stop is not None:
            self.on_stop()
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else None

    def bound_port(self):
        """The port listened on (the configured one before start)."""
        if self.port is None:
            return self.endpoint.port
        return self.port.getHost().port


def build_plugin_center(reactor, config, registry, faults, wirelog=None):
    center = PluginCenter(registry, faults, reactor,
                          boot_timeout=config.plugin_boot_timeout or None,
                          idle_timeout=config.plugin_idle_timeout or None, wirelog=wirelog)
    listener = TCPListener(reactor, "plugin center", config.plugin_center, center.factory(),
                           on_stop=center.close_all)
    listener.setName("plugin_center")
    return center, listener


def build_api(reactor, config, registry, faults, center, operation, plugin_listener,
              wirelog=None, distribution=None):
    api = Api(config.users, registry, faults, center, operation,
              lambda: (config.plugin_center.advertised, plugin_listener.bound_port()),
              reactor, online_timeout=3 * config.heartbeat_interval, wirelog=wirelog,
              config=config, distribution_port=distribution and distribution.bound_port)
    listener = TCPListener(reactor, "HTTP API", config.api, build_site(api, reactor))
    listener.setName("api")
    return api, listener


def _udp_server(reactor, name, endpoint, protocol, host=None):
    server = internet.UDPServer(endpoint.port, protocol, interface=host or endpoint.host,
                                reactor=reactor)
    server.setName(name)
    return server


def makeService(options, reactor=None):
    if reactor is None:  # pragma: no cover - twistd's path
        from twisted.internet import reactor
    config = options["platform"]
    logs.set_level(config.log_level)
    registry = build_registry(reactor, config)
    faults = FaultRules(config.faults)
    wirelog = MessageLog(reactor, config.message_log)
    top = PlatformService(reactor, config, registry, faults)
    top.wirelog = wirelog
    top.operation, server = build_operation(reactor, config, registry, faults, wirelog)
    server.setServiceParent(top)
    top.distribution, server = build_distribution(reactor, config, registry, faults,
                                                  top.operation, wirelog)
    server.setServiceParent(top)
    if config.separate_message_server():
        top.message_server, server = build_message_server(reactor, config, registry, faults,
                                                          wirelog)
        server.setServiceParent(top)
    top.plugin_center, plugin_listener = build_plugin_center(reactor, config, registry,
                                                             faults, wirelog)
    plugin_listener.setServiceParent(top.frontends)
    top.api, listener = build_api(reactor, config, registry, faults, top.plugin_center,
                                  top.operation, plugin_listener, wirelog, top.distribution)
    listener.setServiceParent(top.frontends)
    return top
