"""``twistd cubegw``'s options and service tree: building has no side effect; starting
opens the store, installs the signal handlers and listens; stopping puts them back."""

import os
import signal
import subprocess
import sys

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from cubegw import logs, tap
from cubegw.capabilities.runtime import CapabilityRuntime
from cubegw.config import STORE_FILE
from cubegw.lan import LanServer
from cubegw.signals import SIGNAL_RELOAD, SIGNAL_STATUS

from tests.helpers.config import gateway_config
from tests.helpers.gateway import UdpMemoryReactor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Modules a started gateway that served GET_SN_INFO does not load until something asks
#: for them (syslogging: without --syslog; hmac: never, ``identity.compare_digest``).
LOADED_WHEN_NEEDED = ("cubegw.backend_interface", "cubegw.backend_testing",
                      "cubegw.backend_parse", "cubegw.store.repair", "cubegw.syslogging",
                      "cubegw.capabilities.wan", "cubegw.capabilities.system",
                      "cubegw.backend_process", "hmac")

#: Builds and starts the tree of the config argv[1] on a memory reactor, in a fresh
#: process with the launcher's imports, answers one GET_SN_INFO, and prints which of
#: argv[2:] it loaded.
START_PROBE = """
import sys
import cubegw.daemon
from cubegw import tap
from cubegw.lan import LanServer
from tests.helpers.gateway import UdpMemoryReactor
options = tap.Options()
options.parseOptions(["--config", sys.argv[1]])
top = tap.makeService(options, UdpMemoryReactor())
top.privilegedStartService()
top.startService()
lan = next(s for s in top if isinstance(s, LanServer))
answered = []
lan.factory.dispatcher.dispatch("remote", {"CmdType": "GET_SN_INFO",
                                           "SequenceId": "00000001"}).addCallback(
    lambda outcome: answered.append(outcome.payload["Status"]))
assert answered == ["0"], answered
print(" ".join(m for m in sys.argv[2:] if m in sys.modules))
"""


class TapTests(SynchronousTestCase):
    """Options, then makeService on a memory reactor, then start and stop."""

    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.addCleanup(logs.set_level, logs.level())
        for signum in (SIGNAL_RELOAD, SIGNAL_STATUS):
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))

    def options(self, *args, **config):
        options = tap.Options()
        options.parseOptions(["--config", gateway_config(self.tmp, **config)] + list(args))
        return options

    def test_building_has_no_side_effect(self):
        """makeService writes no file, binds nothing and installs no handler; start does
        all three (the --port override lands in the store), stop puts the handlers back."""
        options = self.options("--port", "12112")
        store_path = os.path.join(options.config.confdir, STORE_FILE)
        before = {s: signal.getsignal(s) for s in (SIGNAL_RELOAD, SIGNAL_STATUS)}
        reactor = UdpMemoryReactor()
        top = tap.makeService(options, reactor)
        self.assertFalse(os.path.exists(store_path))
        self.assertEqual((reactor.tcpServers, reactor.udpServers), ([], []))
        self.assertEqual({s: signal.getsignal(s) for s in before}, before)
        top.privilegedStartService()
        top.startService()
        self.assertTrue(os.path.exists(store_path))
        with open(store_path) as f:
            self.assertIn("option Port '12112'", f.read())
        self.assertEqual(len(reactor.udpServers), 1)
        self.assertNotEqual(signal.getsignal(SIGNAL_RELOAD), before[SIGNAL_RELOAD])
        self.successResultOf(top.stopService())
        self.assertEqual({s: signal.getsignal(s) for s in before}, before)

    def test_local_port_set_by_a_call_moves_the_lan_listener(self):
        """A LocalPort written by SET_BUSINESS_PLATFORM_PARAM moves the LAN listener once
        the reply is out, with no restart and no reload of the file."""
        reactor = UdpMemoryReactor()
        top = tap.makeService(self.options(lan={"addresses": ["127.0.0.1"]}), reactor)
        top.privilegedStartService()
        top.startService()
        self.addCleanup(top.stopService)
        lan = next(s for s in top if isinstance(s, LanServer))
        self.assertEqual([port for port, *_ in reactor.tcpServers], [17998])
        outcome = self.successResultOf(lan.factory.dispatcher.dispatch(
            "remote", {"CmdType": "SET_BUSINESS_PLATFORM_PARAM", "SequenceId": "00000001",
                       "LocalPort": "18001"}))
        self.assertEqual(outcome.payload["Status"], "0", outcome.payload)
        self.assertEqual(len(reactor.tcpServers), 1)
        outcome.run_after()
        self.assertEqual([port for port, *_ in reactor.tcpServers], [17998, 18001])

    def test_backend_files_follow_store_confdir(self):
        """The capabilities read the UCI packages beside the store, and every other file
        under the root that precedes /etc/config in store.confdir, never the host's."""
        root = os.path.join(self.tmp, "image")
        confdir = os.path.join(root, "etc", "config")
        os.makedirs(confdir)
        with open(os.path.join(confdir, "network"), "w") as f:
            f.write("config interface 'wan'\n\toption device 'eth9'\n")
        for directory, want_root in ((confdir, root), (os.path.join(self.tmp, "conf"), "/")):
            top = tap.makeService(self.options(store={"confdir": directory}),
                                  UdpMemoryReactor())
            backend = next(s for s in top if isinstance(s, CapabilityRuntime)).context.backend
            self.assertEqual((backend.root, backend.uci_path("wireless")),
                             (want_root, os.path.join(directory, "wireless")))
        self.assertEqual(tap.backend_root("/etc/config"), "/")
        top = tap.makeService(self.options(store={"confdir": confdir}), UdpMemoryReactor())
        backend = next(s for s in top if isinstance(s, CapabilityRuntime)).context.backend
        self.assertEqual(backend.read_uci("network").section("wan").get("device"), "eth9")

    def test_bad_override_stops_before_start(self):
        """A --port that is not a port is refused by the options, with its reason."""
        e = self.assertRaises(usage.UsageError, self.options, "--port", "abc")
        self.assertIn("Port", str(e))

    def test_confdir_that_cannot_hold_the_store(self):
        """A store.confdir under a file is refused by the options, before any start."""
        open(os.path.join(self.tmp, "afile"), "w").close()
        e = self.assertRaises(usage.UsageError, self.options,
                              store={"confdir": os.path.join(self.tmp, "afile", "config")})
        self.assertIn("not a directory", str(e))


class StartPathTests(SynchronousTestCase):
    """What a started gateway leaves unloaded (memory a router keeps for nothing)."""

    def loaded(self, config):
        argv = [sys.executable, "-c", START_PROBE, config, *LOADED_WHEN_NEEDED]
        out = subprocess.run(argv, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.split()

    def test_start_loads_nothing_it_does_not_use(self):
        """A fresh gateway's start and a GET_SN_INFO load neither the backend's interface,
        its test double, its parsers, its command runner, the store's repair, the syslog
        writer, the WAN lookups, the other system capabilities, nor hmac."""
        tmp = os.path.abspath(self.mktemp())
        os.makedirs(tmp)
        self.assertEqual(self.loaded(gateway_config(tmp)), [])

    def test_damaged_store_loads_the_repair(self):
        """A damaged store file is rebuilt at start: then, and only then, the repair loads."""
        tmp = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(tmp, "config"))
        with open(os.path.join(tmp, "config", STORE_FILE), "wb") as f:
            f.write(b"config mgt 'X_CT-COM_Mgt'\n\toption MgtURL '\x00\x01")
        self.assertEqual(self.loaded(gateway_config(tmp)), ["cubegw.store.repair"])
