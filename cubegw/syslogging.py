"""Logging to the system log (logd on OpenWrt) with ident ``cubegw`` and real priorities.

procd would otherwise tag every line of the daemon's stdout ``python3[pid]`` at info
level, so ``logread -e cubegw`` finds nothing and an error looks like any other line.
``SyslogObserver`` sends each event to ``/dev/log`` as ``<PRI>cubegw[pid]: text`` with
the event's own priority (debug 7, info 6, warn 4, error 3, critical 2) and facility
daemon; a traceback goes line by line at the same priority.  Where there is no
``/dev/log`` (a container, a test), lines go to stderr instead.
"""

import os
import socket
import sys

from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure

__all__ = ["SyslogObserver", "PRIORITY", "FACILITY_DAEMON", "observer", "send_line"]

PRIORITY = {LogLevel.debug: 7, LogLevel.info: 6, LogLevel.warn: 4, LogLevel.error: 3,
            LogLevel.critical: 2}
FACILITY_DAEMON = 3
IDENT = "cubegw"
#: Where the system log listens; CUBEGW_SYSLOG_SOCKET moves it (tests).
DEFAULT_SOCKET = "/dev/log"
MAX_LINE = 1024                 # logd's own limit on one message


def _socket_path():
    return os.environ.get("CUBEGW_SYSLOG_SOCKET", DEFAULT_SOCKET)


def send_line(text, priority, path=None, ident=IDENT, stderr=None):
    """One line to the system log (or stderr without one): used for the one line a
    start-up failure gives, before any observer is set up."""
    SyslogObserver(path=path, ident=ident, stderr=stderr).send(text, priority)


class SyslogObserver:
    """A Twisted log observer writing datagrams to a Unix syslog socket."""

    def __init__(self, path=None, ident=IDENT, facility=FACILITY_DAEMON, stderr=None):
        self.path = path or _socket_path()
        self.ident = ident
        self.facility = facility
        self.stderr = stderr if stderr is not None else sys.stderr
        self.dropped = 0                # lines the system log had no room for
        self._socket = None

    def __call__(self, event):
        level = event.get("log_level", LogLevel.info)
        text = formatEvent(event)
        failure = event.get("log_failure")
        if isinstance(failure, Failure):
            text = f"{text}\n{failure.getTraceback()}"
        self.send(text, PRIORITY.get(level, 6))

    def send(self, text, priority):
        for line in text.rstrip("\n").split("\n") or [""]:
            message = f"<{self.facility * 8 + priority}>{self.ident}[{os.getpid()}]: {line}"
            data = message.encode("utf-8", "replace")[:MAX_LINE]
            if not self._write(data):
                self.stderr.write(f"{self.ident}: {line}\n")
                self.stderr.flush()

    def _write(self, data):
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.connect(self.path)
                # a stalled logd must never stall the reactor: a full queue drops the line
                self._socket.setblocking(False)
            self._socket.send(data)
            return True
        except BlockingIOError:
            self.dropped += 1
            return True
        except OSError:
            if self._socket is not None:
                self._socket.close()
            self._socket = None
            return False


def observer():
    """The factory ``twistd --logger cubegw.syslogging.observer`` calls."""
    return SyslogObserver()
