"""The catalogue of built-in CmdTypes against the modules it stands for, and lazy loading:
a provider is imported on its first call (or at start when it has boot work), answers as
the eagerly imported one does, and a module that cannot be imported fails only its calls."""

import os
import sys
import textwrap

from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import base, discover_providers, lazy_providers, stored
from cubegw.capabilities.catalogue import BUILTIN, PACKAGE, Entry, LazyProvider
from tests.helpers.dispatch import Harness

PROBE = textwrap.dedent('''
    from cubegw.capabilities import Capability

    class Probe(Capability):
        cmd_types = ("PROBE_A", "PROBE_B")

        def __init__(self):
            self.started = self.stopped = 0

        def start(self, context):
            self.started += 1

        def stop(self):
            self.stopped += 1

        def handle_PROBE_A(self, payload, context):
            return {"Answer": "a"}

        handle_PROBE_B = handle_PROBE_A

    probe = Probe()
''')


def _builtin():
    """(module, name) -> provider, for every provider of cubegw.capabilities."""
    found = {}
    for provider in discover_providers(plugin_package=base):   # no vendor plugins
        module = sys.modules[type(provider).__module__]
        [name] = [k for k, v in vars(module).items() if v is provider]
        found[(module.__name__.rpartition(".")[2], name)] = provider
    return found


class CatalogueTests(SynchronousTestCase):
    """The static table is what importing every module finds."""

    def test_catalogue_matches_the_modules(self):
        """Every built-in provider is in the catalogue with its CmdTypes and right."""
        real = {key: (tuple(p.cmd_types), p.default_right) for key, p in _builtin().items()}
        table = {(e.module, e.name): (e.cmd_types, e.default_right) for e in BUILTIN}
        self.assertEqual(table, real)

    def test_every_provider_with_boot_work_has_a_boot_check(self):
        """A provider whose start or APP-reset follow-up does something has a boot check."""
        boot = {(e.module, e.name) for e in BUILTIN if e.boot is not None}
        for key, provider in _builtin().items():
            overrides = [m for m in ("start", "after_app_reset")
                         if getattr(type(provider), m) is not getattr(base.Capability, m)]
            if overrides:
                self.assertIn(key, boot, f"{key} overrides {overrides}")

    def test_stored_schema_covers_every_provider(self):
        """What each provider keeps is registered from ``stored`` at boot, unimported."""
        h = Harness(self, providers=[])
        stored.ensure_schema(h.store.schema)
        for key, provider in _builtin().items():
            for item in provider.store_schema:
                if isinstance(item, base.SectionType):
                    self.assertIs(h.store.schema.section_type(item.type), item, key)
                else:
                    self.assertIs(h.store.schema.param(item.section, item.name), item, key)


class LazyLoadingTests(SynchronousTestCase):
    """A LazyProvider loads on first call; the runtime adopts it."""

    def setUp(self):
        self.root = self.mktemp()
        self.package = f"lazyprobe{id(self)}"
        os.makedirs(os.path.join(self.root, self.package))
        for name, text in (("__init__", ""), ("good", PROBE),
                           ("bad", "raise ImportError('a missing library')\n")):
            with open(os.path.join(self.root, self.package, name + ".py"), "w") as f:
                f.write(text)
        sys.path.insert(0, self.root)
        self.addCleanup(sys.path.remove, self.root)
        self.addCleanup(lambda: [sys.modules.pop(m) for m in list(sys.modules)
                                 if m.startswith(self.package)])

    def harness(self, *entries):
        h = Harness(self, providers=lazy_providers(plugin_package=base, catalogue=entries,
                                                   package=self.package))
        h.runtime.startService()
        self.addCleanup(h.runtime.stopService)
        return h

    def test_first_call_loads_the_module_and_answers(self):
        """The module is imported by the first call, not before; the call is answered."""
        h = self.harness(Entry("good", "probe", ("PROBE_A", "PROBE_B")))
        self.assertEqual(h.dispatcher.rights.table(), {"PROBE_A": 3, "PROBE_B": 3})
        self.assertNotIn(f"{self.package}.good", sys.modules)
        outcome = h.call(self, "PROBE_A")
        self.assertEqual((outcome.payload["Status"], outcome.payload["Answer"]), ("0", "a"))
        probe = sys.modules[f"{self.package}.good"].probe
        self.assertIs(h.dispatcher.providers["PROBE_B"], probe)
        self.assertEqual(probe.started, 1)          # adopted by the running runtime
        h.runtime.stopService()
        self.assertEqual(probe.stopped, 1)

    def test_builtin_answers_as_the_imported_one(self):
        """GET_SN_INFO through the catalogue answers what the imported provider does."""
        lazy = Harness(self, providers=lazy_providers(plugin_package=base))
        eager = Harness(self, providers=discover_providers(plugin_package=base))
        self.assertEqual(lazy.call(self, "GET_SN_INFO"), eager.call(self, "GET_SN_INFO"))
        self.assertEqual(sorted(lazy.dispatcher.rights.table()),
                         sorted(eager.dispatcher.rights.table()))

    def test_module_that_cannot_be_imported_fails_its_calls(self):
        """Status 1 with a FailReason, logged once; the other CmdTypes still answer."""
        h = self.harness(Entry("bad", "probe", ("BAD_A",)),
                         Entry("good", "probe", ("PROBE_A", "PROBE_B")))
        for _ in range(2):
            outcome = h.call(self, "BAD_A")
            self.assertEqual(outcome.result, 0)
            self.assertEqual((outcome.payload["Status"], outcome.payload["FailReason"]),
                             ("1", "capability bad.probe cannot be loaded"))
        self.assertEqual(len(self.flushLoggedErrors(ImportError)), 1)
        self.assertEqual(h.call(self, "PROBE_A").payload["Status"], "0")

    def test_catalogue_that_disagrees_with_its_module_fails_the_call(self):
        """A module serving other CmdTypes than the table says is not used."""
        h = self.harness(Entry("good", "probe", ("PROBE_A",)))
        self.assertEqual(h.call(self, "PROBE_A").payload["Status"], "1")
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_boot_check_loads_and_starts_at_start(self):
        """A provider whose boot check finds work is loaded and started with the tree."""
        self.harness(Entry("good", "probe", ("PROBE_A", "PROBE_B"),
                               boot=lambda store, backend: True))
        probe = sys.modules[f"{self.package}.good"].probe
        self.assertEqual(probe.started, 1)


class BootCheckTests(SynchronousTestCase):
    """The built-in boot checks: work found means the provider loads at start."""

    def lazy(self, name):
        [entry] = [e for e in BUILTIN if e.name == name]
        return LazyProvider(entry, PACKAGE)

    def test_nothing_stored_nothing_loaded(self):
        """An empty store and router: no built-in provider is needed at start."""
        h = Harness(self, providers=[])
        stored.ensure_schema(h.store.schema)
        for entry in BUILTIN:
            self.assertFalse(LazyProvider(entry).needed_at_boot(h.store, h.backend), entry)

    def test_stored_work_is_found(self):
        """A WiFi timer, a blocked device, a redirect rule or its file: loaded at start."""
        h = Harness(self, providers=[])
        stored.ensure_schema(h.store.schema)
        h.store.add_section(stored.TIMER_TYPE.type, stored.TIMER_KEY, {"enable": True})
        h.store.add_section(stored.ACCESS_TYPE.type, "AA:BB:CC:00:00:02", {"internet": False})
        for name in ("wifi_timer", "access_right"):
            self.assertTrue(self.lazy(name).needed_at_boot(h.store, h.backend), name)
        redirect = self.lazy("dns_redirect")
        self.assertFalse(redirect.needed_at_boot(h.store, h.backend))
        h.backend.write_file(stored.REDIRECT_CONF, "# left over\n")
        self.assertTrue(redirect.needed_at_boot(h.store, h.backend))
