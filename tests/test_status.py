"""The status file: significant changes at once, heartbeat-only changes throttled."""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from cubegw.status import ROUTINE_INTERVAL, StatusFile, read_status


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
