"""The status file: significant changes at once, heartbeat-only changes throttled."""

import json
import os
import signal

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from cubegw.config import GatewayConfig
from cubegw import __version__
from cubegw.pluginchannel import PluginChannel
from cubegw.service import RegistrationService
from cubegw.statusreport import StatusReport
from cubegw.status import ROUTINE_INTERVAL, StatusFile, read_status, refresh_status
from cubegw.store import Store, builtin_schema

from tests.helpers import IDENTITY


class StatusFileTests(SynchronousTestCase):
    def setUp(self):
        self.dir = self.mktemp()
        self.status = StatusFile(self.dir)

    def snap(self, state="online", hb=1, last=100.0):
        return {"state": state, "counters": {"hb_ok": hb}, "last_heartbeat": last}

    def test_state_change_written_at_once(self):
        """A new state is written even a moment after the last write."""
        self.assertTrue(self.status.write(self.snap("Boot", last=None), 0))
        self.assertTrue(self.status.write(self.snap("online", last=None), 0.1))
        self.assertEqual(read_status(self.dir)["state"], "online")

    def test_first_heartbeat_written_at_once(self):
        """The first answered heartbeat (last_heartbeat None -> a time) is written at once."""
        self.status.write(self.snap(hb=0, last=None), 0)
        self.assertTrue(self.status.write(self.snap(hb=1, last=5.0), 0.1))

    def test_counters_throttled(self):
        """Counters alone are written at most every ROUTINE_INTERVAL seconds."""
        self.status.write(self.snap(hb=1), 0)
        self.assertFalse(self.status.write(self.snap(hb=2, last=101.0), 1))
        self.assertTrue(self.status.write(self.snap(hb=3, last=102.0), ROUTINE_INTERVAL))
        self.assertEqual(read_status(self.dir)["counters"], {"hb_ok": 3})

    def test_other_counters_written_at_once(self):
        """A refused trigger or a timeout is news: written at once."""
        self.status.write(self.snap(), 0)
        snap = self.snap()
        snap["counters"]["triggers_refused"] = 1
        self.assertTrue(self.status.write(snap, 0.5))

    def test_atomic_and_no_temp_left(self):
        """Only status.json remains, and it is valid JSON."""
        self.status.write(self.snap(), 0)
        self.assertEqual(os.listdir(self.dir), ["status.json"])
        with open(os.path.join(self.dir, "status.json")) as f:
            json.load(f)

    def test_force_writes_at_once(self):
        """force (an operator asked) writes counters at once, even unchanged ones."""
        self.status.write(self.snap(hb=1), 0)
        self.assertTrue(self.status.write(self.snap(hb=2, last=101.0), 1, force=True))
        self.assertEqual(read_status(self.dir)["counters"], {"hb_ok": 2})
        self.assertTrue(self.status.write(self.snap(hb=2, last=101.0), 2, force=True))


class RefreshTests(SynchronousTestCase):
    """cubegw-ctl's side: SIGUSR1 to the daemon, then the rewritten file."""

    def setUp(self):
        self.dir = self.mktemp()
        self.status = StatusFile(self.dir)
        self.status.write({"pid": 4242, "counters": {"hb_ok": 1}}, 0)
        self.old = read_status(self.dir)
        self.signals = []

    def test_daemon_rewrites(self):
        """The daemon answers the signal by rewriting the file: the fresh one is returned."""
        def kill(pid, signum):
            self.signals.append((pid, signum))
            self.status.write({"pid": 4242, "counters": {"hb_ok": 9}}, 1, force=True)
            os.utime(self.status.path, ns=(1, 1))   # surely another mtime than before
        fresh = refresh_status(self.dir, self.old, kill=kill, sleep=lambda s: None)
        self.assertEqual(self.signals, [(4242, signal.SIGUSR1)])
        self.assertEqual(fresh["counters"], {"hb_ok": 9})

    def test_no_answer(self):
        """A daemon that does not answer (or is gone): the snapshot given, after the
        timeout at most."""
        self.assertEqual(refresh_status(self.dir, self.old, timeout=0.05,
                                        kill=lambda pid, signum: None), self.old)

        def gone(pid, signum):
            raise ProcessLookupError(pid)
        self.assertEqual(refresh_status(self.dir, self.old, kill=gone), self.old)
        self.assertEqual(refresh_status(self.dir, {"running": True}), {"running": True})


class ServiceStatusTests(SynchronousTestCase):
    """StatusReport.changed: what a routine event costs."""

    def setUp(self):
        tmp = self.mktemp()
        os.makedirs(tmp)
        self.clock = MemoryReactorClock()
        config = GatewayConfig(state_dir=os.path.join(tmp, "state"))
        self.session = RegistrationService(
            config, Store(os.path.join(tmp, "cubegw"), builtin_schema()), IDENTITY,
            self.clock, effects=None, wan_ip=lambda: "")
        self.report = StatusReport(config.state_dir, self.clock, self.session, [],
                                   PluginChannel(self.clock, IDENTITY, None, None))
        self.snapshots = 0
        snapshot = self.report.snapshot

        def counted():
            self.snapshots += 1
            return snapshot()
        self.report.snapshot = counted

    def test_routine_builds_no_snapshot_until_due(self):
        """A routine event builds no snapshot until the once-a-minute write is due; then
        it writes; any other event and SIGUSR1 build one at once."""
        counters, state_dir = self.session.machine.counters, self.session.config.state_dir
        self.report.changed()
        self.assertEqual(self.snapshots, 1)
        counters["hb_ok"] += 1
        self.report.changed(routine=True)                  # the first answer: news
        self.assertEqual(self.snapshots, 2)
        self.assertIsNotNone(read_status(state_dir)["last_heartbeat"])
        counters["hb_ok"] += 1
        self.report.changed(routine=True)                  # the next: not built
        self.assertEqual(self.snapshots, 2)
        self.report.changed()                              # news: built
        self.report.changed(force=True)                    # SIGUSR1: built, written
        self.assertEqual(self.snapshots, 4)
        self.assertEqual(read_status(state_dir)["counters"]["hb_ok"], 2)
        self.clock.advance(ROUTINE_INTERVAL)
        counters["hb_ok"] += 1
        self.report.changed(routine=True)                  # due: built and written
        self.assertEqual(self.snapshots, 5)
        self.assertEqual(read_status(state_dir)["counters"]["hb_ok"], 3)

    def test_snapshot_says_version_start_error_and_next_attempt(self):
        """Version, start time, the last error logged while running (not before, not a
        warning), the next attempt with its retry count, the WAN interface."""
        from twisted.logger import Logger, LogPublisher
        publisher = LogPublisher()
        report = StatusReport(self.session.config.state_dir, self.clock, self.session, [],
                              self.report.plugin_channel, wall=lambda: 1000.0,
                              publisher=publisher)
        log = Logger(observer=publisher)
        log.error("before the start")
        report.startService()
        log.warn("only a warning")
        log.error("UDP port {port} unusable", port=9)
        self.session.protocol.effects = report             # its changed() after each event
        self.session.protocol.start("192.0.2.1", None)      # arms the boot-jitter timer
        self.addCleanup(self.session.protocol.stop)
        snapshot = report.snapshot()
        self.assertEqual((snapshot["version"], snapshot["started"]), (__version__, 1000.0))
        self.assertEqual(snapshot["last_error"], {"time": 1000.0, "text": "UDP port 9 unusable"})
        self.assertEqual(snapshot["next_attempt"]["retry"], 0)
        self.assertGreaterEqual(snapshot["next_attempt"]["at"], 1000.0)
        self.assertEqual(snapshot["wan"]["ip"], "192.0.2.1")
        report.stopService()
        log.error("after the stop")
        self.assertEqual(report.last_error["text"], "UDP port 9 unusable")

    def test_invalid_stored_value_in_the_snapshot(self):
        """A value `uci set` made invalid shows in the snapshot's store_problems."""
        store = self.session.store
        store.set("mgt", "Heartbeat", 60)
        with open(store.path) as f:
            text = f.read()
        with open(store.path, "w") as f:
            f.write(text.replace("option Heartbeat '60'", "option Heartbeat 'often'"))
        store.reload()
        [problem] = self.report.snapshot()["store_problems"]
        self.assertIn("Heartbeat", problem)
