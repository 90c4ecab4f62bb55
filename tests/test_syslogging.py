"""The logd observer: ident cubegw, each event at its own priority, never blocking."""

import io
import os
import shutil
import socket
import tempfile

from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from cubegw.syslogging import SyslogObserver


class SyslogObserverTests(SynchronousTestCase):
    """Datagrams on a Unix socket the test binds, as logd's /dev/log."""

    def setUp(self):
        directory = tempfile.mkdtemp(prefix="cubegw-log-")   # socket paths must be short
        self.addCleanup(shutil.rmtree, directory, True)
        self.path = os.path.join(directory, "log")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.server.bind(self.path)
        self.server.setblocking(False)
        self.addCleanup(self.server.close)
        self.stderr = io.StringIO()
        self.observer = SyslogObserver(path=self.path, stderr=self.stderr)

    def received(self):
        out = []
        while True:
            try:
                out.append(self.server.recv(4096).decode())
            except BlockingIOError:
                return out

    def event(self, level, text, **extra):
        return dict(log_level=level, log_format=text, log_namespace="t", **extra)

    def test_priorities(self):
        """debug 7, info 6, warn 4, error 3, critical 2, facility daemon, ident cubegw."""
        for level in (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error,
                      LogLevel.critical):
            self.observer(self.event(level, "x {n}", n=1))
        pid = os.getpid()
        self.assertEqual(self.received(), [f"<{24 + p}>cubegw[{pid}]: x 1"
                                           for p in (7, 6, 4, 3, 2)])

    def test_traceback_line_by_line(self):
        """A failure's traceback follows its line, each at the event's priority."""
        try:
            1 / 0
        except ZeroDivisionError:
            failure = Failure()
        self.observer(self.event(LogLevel.critical, "it failed", log_failure=failure))
        lines = self.received()
        self.assertTrue(lines[0].endswith(": it failed"))
        self.assertTrue(all(line.startswith("<26>cubegw[") for line in lines))
        self.assertIn("ZeroDivisionError", lines[-1])

    def test_full_queue_drops_instead_of_blocking(self):
        """A stalled logd (nobody reads the socket) never blocks: lines are dropped and
        counted once the queue is full."""
        for n in range(5000):
            self.observer(self.event(LogLevel.info, "line {n} " + "x" * 200, n=n))
        self.assertGreater(self.observer.dropped, 0)

    def test_no_system_log_goes_to_stderr(self):
        """Without a syslog socket the line goes to stderr, still naming cubegw."""
        observer = SyslogObserver(path=self.path + "-none", stderr=self.stderr)
        observer(self.event(LogLevel.error, "bad thing"))
        self.assertEqual(self.stderr.getvalue(), "cubegw: bad thing\n")
