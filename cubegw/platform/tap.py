"""Wiring point of ``twistd cubeplat``: options, and the service tree of the platform.

``makeService`` only builds: a ``PlatformService`` (loads the registry, then starts its
children) holding one UDP server per platform socket.  Each builder takes the reactor, so
tests pass a ``MemoryReactorClock``.  Later parts (plugin center, HTTP API) are more
children built the same way from ``service.registry``, ``service.faults`` and
``service.operation``.
"""

from twisted.application import internet, service
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python import usage

from cubegw.platform.config import ConfigError, PlatformConfig, load_config
from cubegw.platform.faults import FaultRules
from cubegw.platform.registry import Registry, SQLiteStore
from cubegw.platform.udp import (
    DistributionProtocol, MessageServerProtocol, OperationProtocol)


class Options(usage.Options):
    synopsis = "[--config FILE] [--db PATH] [--distribution-port N] [--operation-port N]"
    longdesc = ("The cubegw reference platform: distribution and operation platforms over "
                "UDP, with a device registry in SQLite and scripted fault injection.")
    optParameters = [
        ["config", "c", None, "YAML configuration (default: built-in defaults; see "
                              "etc/cubeplat.yaml)"],
        ["db", None, None, "SQLite database path (overrides db)"],
        ["distribution-port", None, None, "UDP port of the distribution platform "
                                          "(overrides distribution.port)"],
        ["operation-port", None, None, "UDP port of the operation platform "
                                       "(overrides operation.port)"],
    ]

    #: Open the database while parsing, so a bad path stops twistd with one line.
    check_database = True

    def postOptions(self):
        try:
            config = load_config(self["config"]) if self["config"] else PlatformConfig()
            self["platform"] = config.with_overrides(
                db=self["db"], distribution_port=self["distribution-port"],
                operation_port=self["operation-port"])
        except ConfigError as e:
            raise usage.UsageError(str(e))
        if self.check_database:
            try:
                SQLiteStore.check(self["platform"].db)
            except ValueError as e:
                raise usage.UsageError(f"db: {e}")


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
        self.log.info("cubeplat ready: {devices} devices, {faults} fault rules",
                      devices=len(self.registry), faults=len(self.faults.rules))

    def _load_failed(self, reason):
        self.log.failure("cannot open the device registry {db}", reason, db=self.config.db)
        self.reactor.callWhenRunning(self.reactor.stop)

    def stopService(self):
        d = defer.Deferred()
        (self._loading or defer.succeed(None)).addBoth(lambda _: d.callback(None))
        d.addCallback(lambda _: service.MultiService.stopService(self))
        d.addCallback(lambda _: self.registry.close())
        return d


def build_registry(reactor, config):
    return Registry(SQLiteStore(config.db, reactor), reactor, flush_delay=config.flush_delay,
                    report_limit=config.report_limit)


def build_operation(reactor, config, registry, faults):
    protocol = OperationProtocol(registry, faults, config, reactor)
    return protocol, _udp_server(reactor, "operation", config.operation, protocol)


def build_distribution(reactor, config, registry, faults, operation):
    protocol = DistributionProtocol(
        registry, faults, config, reactor,
        operation_address=lambda: (config.operation.advertised, operation.bound_port()))
    return protocol, _udp_server(reactor, "distribution", config.distribution, protocol)


def build_message_server(reactor, config, registry, faults):
    protocol = MessageServerProtocol(registry, faults, config, reactor)
    endpoint = config.message_server
    host = endpoint.host or config.operation.host
    return protocol, _udp_server(reactor, "message_server", endpoint, protocol, host)


def _udp_server(reactor, name, endpoint, protocol, host=None):
    server = internet.UDPServer(endpoint.port, protocol, interface=host or endpoint.host,
                                reactor=reactor)
    server.setName(name)
    return server


def makeService(options, reactor=None):
    if reactor is None:  # pragma: no cover - twistd's path
        from twisted.internet import reactor
    config = options["platform"]
    registry = build_registry(reactor, config)
    faults = FaultRules(config.faults)
    top = PlatformService(reactor, config, registry, faults)
    top.operation, server = build_operation(reactor, config, registry, faults)
    server.setServiceParent(top)
    top.distribution, server = build_distribution(reactor, config, registry, faults,
                                                  top.operation)
    server.setServiceParent(top)
    if config.separate_message_server():
        top.message_server, server = build_message_server(reactor, config, registry, faults)
        server.setServiceParent(top)
    return top
