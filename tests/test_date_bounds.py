"""SET_HG_DATE_TIME_SYNC with dates outside what Python (and ``date``) can represent:
Status 1 with a reason, never a traceback (issue 18 point 6)."""

from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import system_extra

from tests.helpers.dispatch import Harness


class DateBoundsTests(SynchronousTestCase):
    def test_out_of_range(self):
        """Years 0 and 10000, and offsets that leave years 1..9999 in UTC, are Status 1,
        no command is run and nothing is logged as a failure."""
        h = Harness(self, providers=[system_extra.date_time_sync])
        for bad in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                    "0000-01-01T00:00:00", "10000-01-01T00:00:00", "9999-12-31T23:59:59-23:59",
                    "2024-05-01T10:00:00+24:00"):
            reply = h.call(self, "SET_HG_DATE_TIME_SYNC", Time=bad).payload
            self.assertEqual(reply["Status"], "1", bad)
            self.assertIn("ISO 8601", reply["FailReason"], bad)
        self.assertEqual(h.backend.commands, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_edges_in_range(self):
        """The first and last representable instants are set."""
        h = Harness(self, providers=[system_extra.date_time_sync])
        for good in ("0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59+01:00"):
            self.assertEqual(h.call(self, "SET_HG_DATE_TIME_SYNC", Time=good).payload[
                "Status"], "0", good)
        self.assertEqual(len(h.backend.commands), 2)
