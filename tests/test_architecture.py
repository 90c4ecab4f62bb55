"""The import rules of docs/ARCHITECTURE.md, checked on the source (``ast``, nothing run).

Each rule keeps a floor of the house from leaning on the one above it: the pure core on
nothing, the adapters on the core, the capabilities on neither transports nor services,
and only the wiring (``tap``) on everything.
"""

import ast
import os

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "cubegw")

PURE = {"cubegw.wire", "cubegw.wire_codec", "cubegw.identity", "cubegw.registration",
        "cubegw.commands", "cubegw.record",
        "cubegw.config", "cubegw.logs", "cubegw.store.schema", "cubegw.store.uci",
        "cubegw.trust", "cubegw.usign"}
TRANSPORTS = {"cubegw.access", "cubegw.lan", "cubegw.pluginchannel"}
SERVICES = {"cubegw.service", "cubegw.watch", "cubegw.statusreport", "cubegw.reports",
            "cubegw.signals", "cubegw.storeservice", "cubegw.instancelock"}
WIRING = {"cubegw.tap", "cubegw.platform.tap"}
LAUNCHER = "cubegw.daemon"            # the command procd runs: checks, then runs twistd
MAX_LINES = 500


def modules():
    """Module name -> source path, for every module of the cubegw package."""
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                found[".".join(parts)] = path
    return found


def imports(path, known):
    """The cubegw modules ``path`` imports (``from cubegw import wire`` counts as wire)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cubegw"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.startswith("cubegw"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(known)
            found.update(subs or {node.module})
    return found


def under(module, prefixes):
    return any(module == p or module.startswith(p + ".") for p in prefixes)


class ImportRuleTests(SynchronousTestCase):
    """Each rule of docs/ARCHITECTURE.md, with the offending imports named."""

    def setUp(self):
        self.modules = modules()
        self.graph = {m: imports(p, self.modules) for m, p in self.modules.items()}

    def offenders(self, importers, forbidden):
        return sorted((m, d) for m, deps in self.graph.items() if importers(m)
                      for d in deps if forbidden(d))

    def test_pure_core_imports_only_the_core(self):
        """wire, identity, registration, config, logs, the UCI codec and schema: no adapter."""
        self.assertEqual(self.offenders(
            lambda m: m in PURE, lambda d: d not in PURE and d not in ("cubegw", "cubegw.store")),
            [])

    def test_backend_and_store_below_the_capabilities(self):
        """The router backend and the store import no capability, transport or service."""
        self.assertEqual(self.offenders(
            lambda m: m == "cubegw.backend" or under(m, ["cubegw.store"]),
            lambda d: under(d, ["cubegw.capabilities"]) or d in TRANSPORTS | SERVICES | WIRING),
            [])

    def test_capabilities_know_no_transport(self):
        """A capability serves a call; how it came (LAN, plugin center) is not its business."""
        self.assertEqual(self.offenders(
            lambda m: under(m, ["cubegw.capabilities"]),
            lambda d: d in TRANSPORTS | SERVICES | WIRING or under(d, ["cubegw.platform"])),
            [])

    def test_transports_know_no_service(self):
        """The transports frame and decode; the services and the wiring sit above them."""
        self.assertEqual(self.offenders(lambda m: m in TRANSPORTS,
                                        lambda d: d in SERVICES | WIRING), [])

    def test_only_twistd_plugins_import_the_wiring(self):
        """tap modules are the one wiring point per daemon: nothing in cubegw imports them
        but the launcher procd runs (it builds the tree once to check it)."""
        self.assertEqual(self.offenders(lambda m: m != LAUNCHER, lambda d: d in WIRING), [])

    def test_ctl_imports_no_daemon(self):
        """cubegw-ctl reads the config, the store and the status file, not the daemon."""
        self.assertEqual(self.offenders(lambda m: m == "cubegw.ctl",
                                        lambda d: d in TRANSPORTS | SERVICES | WIRING
                                        or d == LAUNCHER), [])

    def test_wiring_names_no_capability_module(self):
        """tap.py finds the capabilities by discovery: it imports the package and the
        runtime, never a provider module."""
        named = {d for d in self.graph["cubegw.tap"] if under(d, ["cubegw.capabilities"])}
        self.assertEqual(named - {"cubegw.capabilities", "cubegw.capabilities.runtime"}, set())

    def test_platform_shares_only_the_core_with_the_gateway(self):
        """cubeplat is another daemon: from the gateway it uses the pure core alone."""
        self.assertEqual(self.offenders(
            lambda m: under(m, ["cubegw.platform"]),
            lambda d: not under(d, ["cubegw.platform"]) and d not in PURE and d != "cubegw"),
            [])

    def test_no_module_over_the_limit(self):
        """No module of cubegw is longer than 500 lines: a longer one has two jobs."""
        long = {}
        for module, path in self.modules.items():
            with open(path) as f:
                lines = sum(1 for _ in f)
            if lines > MAX_LINES:
                long[module] = lines
        self.assertEqual(long, {})
