"""The one place that touches the router: files, load, reboot, commands.

Capabilities talk to an ``ISystemBackend``; ``LinuxBackend`` is the real one,
``TempDirBackend`` the test double (files under a temporary directory, values
set by the test, reboots and commands recorded, nothing run).
"""

import os

import psutil
from twisted.internet import defer, error, protocol
from twisted.logger import Logger
from zope.interface import Interface, implementer

__all__ = ["ISystemBackend", "LinuxBackend", "TempDirBackend", "cpu_busy_percent"]

log = Logger()


class ISystemBackend(Interface):
    """What capabilities may do to the router; nothing here blocks the reactor
    for longer than reading a small file."""

    def read_file(path):
        """The text of ``path`` (an absolute router path); raises OSError."""

    def cpu_percent():
        """CPU use in percent (0-100) since the previous call (or since the
        backend was made); never sleeps."""

    def memory():
        """A dict: ``total`` and ``available`` bytes, ``percent`` in use (0-100)."""

    def boot_time():
        """When the system booted, in seconds since the epoch."""

    def uptime():
        """Seconds since boot, by the backend's clock."""

    def reboot():
        """Reboot the router (a Deferred firing when the command was started)."""

    def run(argv):
        """Run ``argv`` (argv[0] looked up on PATH) with no shell; a Deferred
        firing with ``(exit_code, stdout_bytes, stderr_bytes)``; a process
        killed by signal N gives exit code -N."""

    def uci_path(config_name):
        """The path of the UCI file ``config_name`` (``/etc/config/<name>``)."""


def _split_times(times):
    """(busy, total) CPU seconds from a psutil cpu_times, as psutil counts them
    (on Linux guest time is already inside user time)."""
    total = sum(times)
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def cpu_busy_percent(before, after):
    """Percent of CPU time busy between two psutil ``cpu_times()`` samples, or
    None when no time passed between them."""
    busy0, total0 = _split_times(before)
    busy1, total1 = _split_times(after)
    if total1 - total0 <= 0:
        return None
    return max(0.0, min(100.0, 100.0 * (busy1 - busy0) / (total1 - total0)))


class _Collect(protocol.ProcessProtocol):
    def __init__(self, deferred):
        self.deferred = deferred
        self.out, self.err = [], []

    def connectionMade(self):
        self.transport.closeStdin()

    def outReceived(self, data):
        self.out.append(data)

    def errReceived(self, data):
        self.err.append(data)

    def processEnded(self, reason):
        value = reason.value
        code = -value.signal if value.signal else (value.exitCode or 0)
        if not self.deferred.called:  # not cancelled
            self.deferred.callback((code, b"".join(self.out), b"".join(self.err)))


@implementer(ISystemBackend)
class LinuxBackend:
    """The real router, through psutil, /proc and ``reactor.spawnProcess``.

    ``root`` prefixes every file path (for a chroot or an image mounted for a
    test).  CPU use is computed from our own ``cpu_times`` samples, so other
    users of ``psutil.cpu_percent`` do not move our baseline.
    """

    def __init__(self, reactor, root="/", psutil_module=psutil):
        self.reactor = reactor
        self.root = root
        self._psutil = psutil_module
        self._cpu_last = psutil_module.cpu_times()
        self._cpu_value = 0.0

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def read_file(self, path):
        with open(self._path(path), encoding="utf-8", errors="replace") as f:
            return f.read()

    def cpu_percent(self):
        now = self._psutil.cpu_times()
        value = cpu_busy_percent(self._cpu_last, now)
        if value is not None:
            self._cpu_value = value
            self._cpu_last = now
        return self._cpu_value

    def memory(self):
        vm = self._psutil.virtual_memory()
        return {"total": vm.total, "available": vm.available, "percent": vm.percent}

    def boot_time(self):
        return self._psutil.boot_time()

    def uptime(self):
        return max(0.0, self.reactor.seconds() - self.boot_time())

    def reboot(self):
        log.warn("rebooting the router")
        return self.run(["reboot"])

    def run(self, argv):
        argv = [os.fsdecode(a) for a in argv]
        spawned = []

        def cancel(_):
            for process in spawned:
                try:
                    process.signalProcess("KILL")
                except error.ProcessExitedAlready:
                    pass
        d = defer.Deferred(cancel)
        spawned.append(self.reactor.spawnProcess(
            _Collect(d), argv[0], argv, env=dict(os.environ), path=self.root))
        return d

    def uci_path(self, config_name):
        return self._path(os.path.join("etc", "config", config_name))


@implementer(ISystemBackend)
class TempDirBackend:
    """A router in a directory: files under ``tmpdir``, load values set by the
    test, commands answered from ``results`` and recorded, reboots counted."""

    def __init__(self, tmpdir, clock):
        self.root = os.fspath(tmpdir)
        self.clock = clock
        self.cpu = 12.5
        self.mem = {"total": 256 * 2 ** 20, "available": 192 * 2 ** 20, "percent": 25.0}
        self.booted = 0.0
        self.reboots = []             # clock time of each reboot
        self.commands = []            # every argv run
        self.results = {}             # argv[0] -> (code, out, err) or a Deferred

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def read_file(self, path):
        with open(self._path(path), encoding="utf-8", errors="replace") as f:
            return f.read()

    def cpu_percent(self):
        return self.cpu

    def memory(self):
        return dict(self.mem)

    def boot_time(self):
        return self.booted

    def uptime(self):
        return max(0.0, self.clock.seconds() - self.booted)

    def reboot(self):
        self.reboots.append(self.clock.seconds())
        return defer.succeed(None)

    def run(self, argv):
        self.commands.append(list(argv))
        result = self.results.get(argv[0], (0, b"", b""))
        return result if isinstance(result, defer.Deferred) else defer.succeed(result)

    def uci_path(self, config_name):
        return self._path(os.path.join("etc", "config", config_name))
