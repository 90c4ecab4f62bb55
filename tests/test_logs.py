"""cubegw.logs: routine debug lines are dropped before they are built unless asked for."""

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from cubegw import logs


class RoutineLoggingTests(SynchronousTestCase):
    def setUp(self):
        self.addCleanup(logs.set_level, logs.level())
        self.events = []
        self.log = logs.Logger(observer=self.events.append)

    def test_debug_dropped_at_info(self):
        """At "info" a debug call reaches no observer; other levels still do."""
        logs.set_level("info")
        self.log.debug("routine {n}", n=1)
        self.log.info("kept")
        self.assertEqual([e["log_level"] for e in self.events], [LogLevel.info])

    def test_debug_kept_at_debug(self):
        """At "debug" the routine line is emitted with its fields and namespace."""
        logs.set_level("debug")
        self.log.debug("routine {n}", n=1)
        [event] = self.events
        self.assertEqual((event["log_level"], event["n"], event["log_namespace"]),
                         (LogLevel.debug, 1, __name__))

    def test_class_attribute_keeps_the_subclass(self):
        """As a class attribute (Twisted's descriptor) it stays a cubegw Logger."""
        class Owner:
            log = logs.Logger()
        self.assertIsInstance(Owner().log, logs.Logger)

    def test_unknown_level_refused(self):
        """set_level refuses a level name it does not know."""
        self.assertRaises(ValueError, logs.set_level, "verbose")

    def test_warn_and_error_levels(self):
        """At "warn" info lines are dropped and warnings kept; at "error" only errors and
        failures (critical) are."""
        logs.set_level("warn")
        self.log.info("dropped")
        self.log.warn("kept")
        logs.set_level("error")
        self.log.warn("dropped")
        self.log.error("kept")
        try:
            1 / 0
        except ZeroDivisionError:
            self.log.failure("kept")
        self.assertEqual([e["log_level"] for e in self.events],
                         [LogLevel.warn, LogLevel.error, LogLevel.critical])
