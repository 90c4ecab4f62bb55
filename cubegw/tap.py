"""Wiring point of ``twistd cubegw``: options, then one MultiService.

Everything that can be wrong with the configuration (YAML, identity, the UCI store, the
overrides) is checked in ``postOptions``, so twistd stops with a one-line message before
it daemonizes, and nothing is half-started.
"""

import os
import signal
from dataclasses import replace

import psutil
from twisted.application import service
from twisted.logger import Logger
from twisted.python import usage

from cubegw import identity, logs
from cubegw.backend import LinuxBackend
from cubegw.capabilities import CapabilityContext, Dispatcher, discover_providers
from cubegw.capabilities import diagnostics, lan_devices, system_extra, upgrade, wifi
from cubegw.capabilities.system import app_factory_reset
from cubegw.config import ConfigError, load_config
from cubegw.lan import LanServer
from cubegw.pluginchannel import PluginChannel, backoff_policy
from cubegw.service import STORE_FILE, RegistrationService, build_identity
from cubegw.store import StoreError
from cubegw.store import mirror as store_mirror
from cubegw.store.recovery import open_store, save_backup

DEFAULT_CONFIG = "/etc/cubegw/cubegw.yaml"
_log = Logger()


class Options(usage.Options):
    synopsis = "--config FILE [--mgt-url HOST] [--port N] [--state-dir DIR]"
    optParameters = [
        ["config", "c", DEFAULT_CONFIG, "YAML configuration file (see etc/cubegw.yaml)"],
        ["mgt-url", None, None, "write X_CT-COM_Mgt.MgtURL (distribution platform) at start"],
        ["port", None, None, "write X_CT-COM_Mgt.Port (distribution platform port) at start"],
        ["state-dir", None, None, "directory for the status file (overrides state_dir)"],
    ]

    def postOptions(self):
        try:
            config = load_config(self["config"])
        except ConfigError as e:
            raise usage.UsageError(str(e))
        if self["state-dir"]:
            config = replace(config, state_dir=self["state-dir"])
        try:
            self.identity = build_identity(config.device, psutil.net_if_addrs())
        except identity.IdentityError as e:
            raise usage.UsageError(f"device: {e}")
        try:
            if config.persist_dir and config.fw_env:
                raise StoreError("store.persist_dir and store.fw_env: set one, not both")
            os.makedirs(config.confdir, exist_ok=True)
            path = os.path.join(config.confdir, STORE_FILE)
            sync = _mirror_sync(config, self["config"])
            self.store, _ = open_store(
                path, log=lambda msg: _log.warn("store recovery: {msg}", msg=msg))
            self.store.on_contents = _after_store_write(sync, self.store)
            if sync is not None:
                sync.sync_file(path)
            overrides = {("mgt", name): self[opt] for opt, name in
                         [("mgt-url", "MgtURL"), ("port", "Port")] if self[opt] is not None}
            if overrides:
                self.store.update(overrides)
            _backup(self.store)
        except (StoreError, OSError) as e:
            raise usage.UsageError(f"store: {e}")
        self.config = config


def _backup(store):
    """Keep ``<store>.bak``, the last good file a corrupt store is recovered from."""
    try:
        save_backup(store)
    except StoreError as e:
        _log.warn("store backup: {error}", error=e)


def _after_store_write(sync, store):
    """After every write or reload of the store: the mirror (if any), then the backup."""
    def after(package):
        if sync is not None:
            sync(package)
        _backup(store)
    return after


def _mirror_sync(config, config_path):
    """Keeps X_CT-COM_Mgt and the registration mirrored outside the overlay, if configured.

    The restore side runs at first boot after a factory reset (openwrt uci-defaults).
    """
    mirror = store_mirror.mirror_from_config(
        {"persist_dir": config.persist_dir, "fw_env": config.fw_env})
    if mirror is None:
        return None
    pending = os.path.join(os.path.dirname(os.path.abspath(config_path)), "restore-pending")
    return store_mirror.MirrorSync(mirror, pending=pending,
                                   log=lambda msg: _log.warn("store mirror: {msg}", msg=msg))


def make_registration(config, store, ident, reactor, net_if_addrs=psutil.net_if_addrs):
    """The registration service alone, on any reactor (tests pass a MemoryReactorClock)."""
    return RegistrationService(config, store, ident, reactor, net_if_addrs)


def make_dispatcher(config, store, ident, reactor, registration, backend):
    """The capability dispatcher serving both the LAN and the plugin center."""
    context = CapabilityContext(
        store, config, ident, backend, reactor,
        dev_rnd=lambda: registration.machine.dev_rnd, registered=registration.registered,
        report=registration.push_report)
    return Dispatcher(discover_providers(), store, context, reactor,
                      timeout=config.timing.call_timeout)


class CapabilityRuntime(service.Service):
    """What capabilities run on their own: the WiFi timer, the firewall, subscriptions."""

    log = Logger()

    def __init__(self, store, backend, reactor):
        self.store, self.backend, self.reactor = store, backend, reactor

    def startService(self):
        super().startService()
        wifi.wifi_timer.start(self.store, self.backend, self.reactor)
        d = lan_devices.sync_firewall(self.store, self.backend)
        d.addCallback(lambda problem: problem and self.log.info(
            "firewall not synced: {problem}", problem=problem))
        d.addErrback(lambda f: self.log.failure("firewall sync failed", f))

    def stopService(self):
        super().stopService()
        wifi.wifi_timer.stop()
        lan_devices.subscriptions.stop()


def makeService(options, reactor=None):
    if reactor is None:
        from twisted.internet import reactor
    config, store, ident = options.config, options.store, options.identity
    logs.set_level(config.log_level)
    top = service.MultiService()
    for module in (wifi, lan_devices, diagnostics, upgrade, system_extra):
        module.ensure_schema(store.schema)
    backend = LinuxBackend(reactor)
    registration = make_registration(config, store, ident, reactor)
    registration.app_reset = lambda: app_factory_reset(store, backend)
    dispatcher = make_dispatcher(config, store, ident, reactor, registration, backend)
    timing = config.timing
    # the transports' own timeout is a safety net behind the dispatcher's call_timeout
    transport_timeout = timing.call_timeout + 5
    registration.plugin_channel = PluginChannel(
        reactor, ident, store, dispatcher, wan_ip=registration.wan_ip,
        backoff=backoff_policy(timing.plugin_retry_initial, timing.plugin_retry_max),
        reply_timeout=timing.plugin_reply_timeout, connect_timeout=timing.plugin_reply_timeout,
        dispatch_timeout=transport_timeout)
    registration.lan = LanServer(config.lan_addresses, store, dispatcher, reactor,
                                 idle_timeout=config.lan_idle_timeout,
                                 dispatch_timeout=transport_timeout)
    registration.lan.setServiceParent(top)
    registration.setServiceParent(top)
    CapabilityRuntime(store, backend, reactor).setServiceParent(top)
    _signal_handlers(reactor, registration)
    return top


def _signal_handlers(reactor, registration):
    """SIGHUP (``/etc/init.d/cubegw reload``) re-reads the UCI file at once; SIGUSR1
    (``cubegw-ctl status``) rewrites the status file at once."""
    actions = {signal.SIGHUP: lambda: registration.check_store(True),
               signal.SIGUSR1: lambda: registration.changed(force=True)}

    def handler(signum, frame):
        reactor.callFromThread(actions[signum])
    try:
        for signum in actions:
            signal.signal(signum, handler)
    except ValueError:  # not the main thread (embedded use): the file poll still works
        pass
