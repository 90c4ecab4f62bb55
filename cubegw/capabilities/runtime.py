"""The providers' life under the daemon: their schema, their start and stop, the APP reset.

``CapabilityRuntime`` is the one service through which the daemon reaches its
capabilities: it builds the ``CapabilityContext`` every call gets, starts each provider
that has a lifecycle (``ICapabilityLifecycle``: the WiFi timer, the firewall sync, the
subscriptions, a vendor's poller) when the service tree starts, stops them when it stops,
and runs the APP-side factory reset with every provider's follow-up.  The wiring names no
capability module: a new one is discovered, given its schema and started here.  A
built-in provider still a ``LazyProvider`` (``catalogue``) is adopted when its module is
loaded: at start if its boot check says it has work, else on its first call.
"""

from twisted.application import service
from twisted.internet import defer

from cubegw.capabilities import stored
from cubegw.capabilities.base import CapabilityContext, ICapabilityLifecycle
from cubegw.capabilities.catalogue import LazyProvider
from cubegw.logs import Logger

__all__ = ["CapabilityRuntime", "lifecycle_providers"]

log = Logger()


def lifecycle_providers(providers):
    """The providers with a lifecycle, each once, in the order given."""
    seen, found = set(), []
    for provider in providers:
        if id(provider) not in seen and ICapabilityLifecycle.providedBy(provider):
            seen.add(id(provider))
            found.append(provider)
    return found


def _logged(action, what, provider):
    """Run ``action()``; a raise or a failed Deferred is logged, never propagated."""
    d = defer.maybeDeferred(action)
    d.addErrback(lambda f: log.failure("capability {provider!r}: {what} failed",
                                       failure=f, provider=provider, what=what))
    return d


class CapabilityRuntime(service.Service):
    """Starts and stops the providers' background work; owns the call context.

    ``context_args`` are ``CapabilityContext``'s fields (store, config, identity,
    backend, clock, dev_rnd, registered, report); ``app_reset`` is this runtime's.
    """

    def __init__(self, providers, **context_args):
        providers = list(providers)
        self.cmd_types = len({cmd for p in providers for cmd in p.cmd_types})
        self.lazy = [p for p in providers if isinstance(p, LazyProvider)]
        self.providers = lifecycle_providers(providers)
        self.context = CapabilityContext(app_reset=self.app_reset, **context_args)
        stored.ensure_schema(self.context.store.schema)
        for provider in self.providers:
            provider.ensure_schema(self.context.store.schema)
        adopt = self.adopt              # one bound method for all of them
        for lazy in self.lazy:
            lazy.hooks.append(adopt)

    def adopt(self, provider):
        """A provider loaded after the tree was built: its schema, and its start if the
        tree runs; it stops with the others and follows the APP reset."""
        if not ICapabilityLifecycle.providedBy(provider) or \
                any(p is provider for p in self.providers):
            return
        provider.ensure_schema(self.context.store.schema)
        self.providers.append(provider)
        if self.running:
            _logged(lambda: provider.start(self.context), "start", provider)

    def startService(self):
        store, backend = self.context.store, self.context.backend
        for lazy in self.lazy:
            try:
                if lazy.provider is None and lazy.needed_at_boot(store, backend):
                    lazy.load()             # adopted: started below with the others
            except Exception:
                log.failure("capability {provider!r}: not loaded at start", provider=lazy)
        super().startService()
        for provider in self.providers:
            _logged(lambda p=provider: p.start(self.context), "start", provider)
        log.info("capabilities: {n} CmdTypes registered, {loaded} of {lazy} built-in "
                 "providers loaded at start", n=self.cmd_types,
                 loaded=sum(lazy.provider is not None for lazy in self.lazy),
                 lazy=len(self.lazy))

    def stopService(self):
        super().stopService()
        return defer.gatherResults(
            [_logged(p.stop, "stop", p) for p in reversed(self.providers)]
        ).addCallback(lambda _: None)

    def app_reset(self):
        """The APP-side factory reset: APP-only and access-control data, then each
        provider's follow-up (the firewall drops the blocked-device rules).

        The same for HG_LOCAL_RECOVERY and for a Register 3 from the operation
        platform.  Returns the store keys reset.
        """
        changed = self.context.store.factory_reset_app()
        log.info("APP factory reset: {n} values reset", n=len(changed))
        for provider in self.providers:
            _logged(lambda p=provider: p.after_app_reset(self.context), "APP reset",
                    provider)
        return changed
