"""A vendor's capability with settings and a background timer is one new module.

The module below is written into a temporary ``cubegw/plugins/`` directory, the way a
vendor's own package would install it, and the daemon is wired exactly as ``twistd
cubegw`` wires it: nothing in cubegw names it, yet its settings land in the UCI store,
its timer runs from the daemon's start to its stop, and its CmdType answers.
"""

import os
import textwrap

from twisted.internet import defer
from twisted.internet.error import DNSLookupError
from twisted.trial.unittest import SynchronousTestCase

import cubegw.plugins
from cubegw.capabilities import Dispatcher
from cubegw.capabilities.runtime import CapabilityRuntime
from tests.helpers.gateway import UdpMemoryReactor, wire_gateway

TICKER_MODULE = textwrap.dedent('''
    """A vendor's ticker: counts every ``interval`` seconds (a UCI setting)."""

    from twisted.internet import task

    from cubegw.capabilities import Capability, CapabilityFailure
    from cubegw.store import APP, ParamSpec, StoreError, UnsignedInt

    INTERVAL = ParamSpec("vendor_ticker", "interval", UnsignedInt(1, 3600), 60, APP,
                         doc="seconds between two ticks")


    class Ticker(Capability):
        cmd_types = ("VENDOR_TICKER",)
        store_schema = (INTERVAL,)

        def __init__(self):
            self.ticks = 0
            self.loop = None

        def start(self, context):
            self.loop = task.LoopingCall(self.tick)
            self.loop.clock = context.clock
            self.loop.start(context.store.get("vendor_ticker", "interval"), now=False)

        def tick(self):
            self.ticks += 1

        def stop(self):
            if self.loop is not None and self.loop.running:
                self.loop.stop()
            self.loop = None

        def handle_VENDOR_TICKER(self, payload, context):
            if "Interval" in payload:
                try:
                    context.store.set("vendor_ticker", "interval", payload["Interval"])
                except StoreError as e:
                    raise CapabilityFailure(str(e))
            return {"Ticks": self.ticks,
                    "Interval": context.store.get("vendor_ticker", "interval")}


    ticker = Ticker()
''')


class OfflineReactor(UdpMemoryReactor):
    """No name resolves: the registration retries on its own; this test is about the
    capability."""

    def resolve(self, name, timeout=None):
        return defer.fail(DNSLookupError(name))


class DropInCapabilityTests(SynchronousTestCase):
    """The daemon as tap.makeService builds it, with a drop-in module on its plugin path."""

    def setUp(self):
        root = os.path.abspath(self.mktemp())
        plugin_dir = os.path.join(root, "cubegw", "plugins")
        os.makedirs(plugin_dir)
        with open(os.path.join(plugin_dir, "vendor_ticker.py"), "w") as f:
            f.write(TICKER_MODULE)
        # what pluginPackagePaths finds at import for a directory on sys.path
        self.patch(cubegw.plugins, "__path__", list(cubegw.plugins.__path__) + [plugin_dir])
        self.reactor = OfflineReactor()
        self.top = wire_gateway(self, self.reactor, lan={"addresses": ["127.0.0.1"]})
        [self.dispatcher] = {s.dispatcher for s in self.top if hasattr(s, "dispatcher")}
        [self.runtime] = [s for s in self.top if isinstance(s, CapabilityRuntime)]
        self.store = self.runtime.context.store

    def call(self, **args):
        parameter = dict(CmdType="VENDOR_TICKER", SequenceId="0000000A", **args)
        return self.successResultOf(self.dispatcher.dispatch("local", parameter)).payload

    def test_discovered_started_and_stopped_by_the_daemon(self):
        """The ticker's timer runs from the daemon's start to its stop, on the daemon's clock."""
        self.assertIsInstance(self.dispatcher, Dispatcher)
        self.top.startService()
        self.reactor.advance(60)
        self.reactor.advance(60)
        self.assertEqual(self.call(), {"CmdType": "VENDOR_TICKER", "SequenceId": "0000000A",
                                       "Status": "0", "Ticks": "2", "Interval": "60"})
        self.successResultOf(self.top.stopService())
        self.reactor.advance(600)
        self.assertEqual(self.call()["Ticks"], "2")

    def test_settings_kept_in_the_uci_store(self):
        """Its setting is a typed UCI option of the store, checked like any other."""
        self.top.startService()
        self.addCleanup(self.top.stopService)
        self.assertEqual(self.call(Interval="10")["Interval"], "10")
        with open(self.store.path) as f:
            self.assertIn("option interval '10'", f.read())
        refused = self.call(Interval="0")
        self.assertEqual(refused["Status"], "1")
        self.assertEqual(self.store.get("vendor_ticker", "interval"), 10)
