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
from twisted.python import usage

from cubegw import identity
from cubegw.backend import LinuxBackend
from cubegw.capabilities import CapabilityContext, Dispatcher, discover_providers
from cubegw.config import ConfigError, load_config
from cubegw.lan import LanServer
from cubegw.pluginchannel import PluginChannel
from cubegw.service import STORE_FILE, RegistrationService, build_identity
from cubegw.store import Store, StoreError

DEFAULT_CONFIG = "/etc/cubegw/cubegw.yaml"


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
            os.makedirs(config.confdir, exist_ok=True)
            self.store = Store(os.path.join(config.confdir, STORE_FILE))
            overrides = {("mgt", name): self[opt] for opt, name in
                         [("mgt-url", "MgtURL"), ("port", "Port")] if self[opt] is not None}
            if overrides:
                self.store.update(overrides)
        except (StoreError, OSError) as e:
            raise usage.UsageError(f"store: {e}")
        self.config = config


def make_registration(config, store, ident, reactor, net_if_addrs=psutil.net_if_addrs):
    """The registration service alone, on any reactor (tests pass a MemoryReactorClock)."""
    return RegistrationService(config, store, ident, reactor, net_if_addrs)


def make_dispatcher(config, store, ident, reactor, registration, backend):
    """The capability dispatcher serving both the LAN and the plugin center."""
    context = CapabilityContext(
        store, config, ident, backend, reactor,
        dev_rnd=lambda: registration.machine.dev_rnd, registered=registration.registered)
    return Dispatcher(discover_providers(), store, context, reactor)


def makeService(options, reactor=None):
    if reactor is None:
        from twisted.internet import reactor
    config, store, ident = options.config, options.store, options.identity
    top = service.MultiService()
    registration = make_registration(config, store, ident, reactor)
    dispatcher = make_dispatcher(config, store, ident, reactor, registration,
                                 LinuxBackend(reactor))
    registration.plugin_channel = PluginChannel(
        reactor, ident, store, dispatcher, wan_ip=registration.wan_ip)
    registration.lan = LanServer(config.lan_addresses, store, dispatcher, reactor,
                                 idle_timeout=config.lan_idle_timeout)
    registration.lan.setServiceParent(top)
    registration.setServiceParent(top)
    _reload_on_sighup(reactor, registration)
    return top


def _reload_on_sighup(reactor, registration):
    """SIGHUP (``/etc/init.d/cubegw reload``) re-reads the UCI file at once."""
    def handler(signum, frame):
        reactor.callFromThread(registration.check_store, True)
    try:
        signal.signal(signal.SIGHUP, handler)
    except ValueError:  # not the main thread (embedded use): the file poll still works
        pass
