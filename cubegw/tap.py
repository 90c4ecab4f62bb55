"""Wiring point of ``twistd cubegw``: options, then one MultiService.

Everything that can be wrong with the configuration (YAML, identity, the overrides) is
checked in ``postOptions``, so twistd stops with a one-line message before it
daemonizes.  ``makeService`` only builds: opening the store, installing signal handlers
and every socket happen when the service tree starts, each in its own service.  This
module names no capability: they are discovered, and started by ``CapabilityRuntime``.
"""

import os

import psutil
from twisted.application import service
from twisted.python import usage

from cubegw import identity, logs
from cubegw.backend import LinuxBackend
from cubegw.capabilities import Dispatcher, LanAuth, lazy_providers
from cubegw.capabilities.runtime import CapabilityRuntime
from cubegw.config import DEFAULT_CONFIG, ConfigError, load_config
from cubegw.instancelock import InstanceLock
from cubegw.lan import LanServer
from cubegw.pluginchannel import PluginChannel, backoff_policy
from cubegw.record import replace
from cubegw.reports import ReportRouter
from cubegw.service import GatewayEffects, RegistrationService, build_identity
from cubegw.signals import SIGNAL_NETWORK, SIGNAL_RELOAD, SIGNAL_STATUS, SignalService
from cubegw.statusreport import StatusReport
from cubegw.store import DEFAULT_SCHEMA, StoreError
from cubegw.storeservice import StoreService
from cubegw.watch import StoreWatch, WanWatch, inotify_watcher


class Options(usage.Options):
    synopsis = "--config FILE [--mgt-url HOST] [--port N] [--state-dir DIR]"
    optParameters = [
        ["config", "c", DEFAULT_CONFIG, "YAML configuration file (see etc/cubegw.yaml)"],
        ["mgt-url", None, None, "write X_CT-COM_Mgt.MgtURL (distribution platform) at start"],
        ["port", None, None, "write X_CT-COM_Mgt.Port (distribution platform port) at start"],
        ["state-dir", None, None, "directory for the status file (overrides state_dir)"],
    ]

    #: The configuration the launcher already read from ``--config`` (None: read it).
    loaded = None

    def postOptions(self):
        config = self.loaded
        if config is None:
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
        if config.persist_dir and config.fw_env:
            raise usage.UsageError("store: store.persist_dir and store.fw_env: set one, not both")
        problem = store_location_problem(config.confdir)
        if problem:
            raise usage.UsageError(f"store: {problem}")
        self.overrides = {}
        for opt, name in [("mgt-url", "MgtURL"), ("port", "Port")]:
            if self[opt] is not None:
                try:
                    self.overrides[("mgt", name)] = DEFAULT_SCHEMA.param("mgt", name).convert(
                        self[opt])
                except StoreError as e:
                    raise usage.UsageError(f"store: {e}")
        self.config = config


def store_location_problem(confdir):
    """Why the store could not be kept in ``confdir`` (None if it can), read-only: the
    directory is made and the file opened when the daemon starts (``StoreService``)."""
    path = os.path.abspath(confdir)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        return f"store.confdir {confdir}: {path} is not a directory"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"store.confdir {confdir}: {path} is not writable"
    return None


def backend_root(confdir):
    """The root of every file the backend touches: what precedes ``/etc/config`` in
    ``store.confdir`` (a test or a chroot moves both), "/" for any other confdir (its UCI
    packages are still read beside the store)."""
    path = os.path.abspath(confdir)
    head, config = os.path.split(path)
    root, etc = os.path.split(head)
    if (etc, config) == ("etc", "config"):
        return root
    return "/"


def makeService(options, reactor=None, net_if_addrs=psutil.net_if_addrs):
    """The service tree of one gateway; starting it opens the store, then everything else."""
    if reactor is None:
        from twisted.internet import reactor
    config, ident = options.config, options.identity
    logs.set_level(config.log_level)
    timing = config.timing
    top = service.MultiService()

    InstanceLock(config.state_dir).setServiceParent(top)
    opener = StoreService(config, options["config"], options.overrides)
    opener.setServiceParent(top)
    store = opener.store
    backend = LinuxBackend(reactor, root=backend_root(config.confdir), uci_dir=config.confdir)
    providers = lazy_providers()     # built-ins imported on first call (catalogue)
    # the names below are bound further down; the lambdas read them when first called
    runtime = CapabilityRuntime(
        providers, store=store, config=config, identity=ident, backend=backend,
        clock=reactor, dev_rnd=lambda: session.dev_rnd(),
        registered=lambda: session.registered(), report=lambda p: reports.push(p),
        store_changed=lambda keys: watch.notify(keys))
    dispatcher = Dispatcher(providers, store, runtime.context, reactor,
                            timeout=timing.call_timeout,
                            lan_auth=LanAuth(reactor, config.lan_auth, config.lan_session_ttl))
    wan = WanWatch(reactor, timing.wan_check, config.device.wan_interface, net_if_addrs,
                   on_change=lambda ip: session.protocol.wan_ip_changed(ip))
    channel = PluginChannel(
        reactor, ident, store, dispatcher, wan_ip=wan.wan_ip,
        backoff=backoff_policy(timing.plugin_retry_initial, timing.plugin_retry_max),
        reply_timeout=timing.plugin_reply_timeout, connect_timeout=timing.plugin_reply_timeout)
    lan = LanServer(config.lan_addresses, store, dispatcher, reactor,
                    idle_timeout=config.lan_idle_timeout, wan_ip=wan.wan_ip)
    watch = StoreWatch(reactor, timing.store_check, store, watcher=inotify_watcher, listeners=[
        lambda changed: ("mgt", "LocatePort") in changed and lan.relisten()])
    effects = GatewayEffects(store, runtime.app_reset, channel,
                             changed=lambda **kw: status.changed(**kw),
                             store_written=watch.written)
    session = RegistrationService(config, store, ident, reactor, effects, wan.wan_ip,
                                  backend=backend)
    status = StatusReport(config.state_dir, reactor, session, effects.plugin_requests, channel,
                          lan)
    reports = ReportRouter(ident, channel, session)

    # started in this order, stopped in the reverse: the plugin channel closes before
    # the session says goodbye, the capabilities stop last
    for child in (status, runtime, lan, wan, watch, session, channel,
                  SignalService(reactor, {SIGNAL_RELOAD: lambda: watch.check(True),
                                          SIGNAL_STATUS: lambda: status.changed(force=True),
                                          SIGNAL_NETWORK: wan.check})):
        child.setServiceParent(top)
    return top
