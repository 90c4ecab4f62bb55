"""cubegw-app's pure parts: payloads and the deck's polling schedule."""

import io
import re

from twisted.trial.unittest import SynchronousTestCase

from cubegw import app


class PayloadTests(SynchronousTestCase):
    def test_payload(self):
        """CmdType, an 8-hex SequenceId and the KEY=VALUE arguments as strings."""
        p = app.payload_for("SET_RIGHT", ["API=QUERY_CPU_INFO", "RIGHT=3", "X=a=b"])
        self.assertTrue(re.fullmatch(r"[0-9A-F]{8}", p.pop("SequenceId")))
        self.assertEqual(p, {"CmdType": "SET_RIGHT", "API": "QUERY_CPU_INFO", "RIGHT": "3",
                             "X": "a=b"})

    def test_bad_argument(self):
        """An argument without '=' is refused."""
        self.assertRaises(app.AppError, app.payload_for, "X", ["novalue"])


class PollTests(SynchronousTestCase):
    def test_schedule(self):
        """Every 1 s for the first 10 s, then every 5 s, ending at 60 s."""
        self.assertEqual(list(app.poll_schedule()),
                         [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60])

    def test_wait_connected_times_out(self):
        """A gateway that never connects: polled on the schedule, then False."""
        now = [0.0]
        polls = []

        def fake_api(base, token, method, path, body=None, timeout=70.0):
            polls.append(now[0])
            return 200, {"connected": False}
        self.patch(app, "api", fake_api)
        out = io.StringIO()
        ok = app.wait_connected("http://x", "t", "AA", out, clock=lambda: now[0],
                                sleep=lambda s: now.__setitem__(0, now[0] + s))
        self.assertFalse(ok)
        self.assertEqual(polls, list(app.poll_schedule()))
        self.assertIn("timed out", out.getvalue())

    def test_wait_connected_succeeds(self):
        """Polling stops as soon as the platform says connected."""
        now = [0.0]
        answers = iter([False, False, True])
        self.patch(app, "api", lambda *a, **k: (200, {"connected": next(answers)}))
        ok = app.wait_connected("http://x", "t", "AA", io.StringIO(), clock=lambda: now[0],
                                sleep=lambda s: now.__setitem__(0, now[0] + s))
        self.assertTrue(ok)
        self.assertEqual(now[0], 3)
