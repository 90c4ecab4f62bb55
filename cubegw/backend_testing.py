"""``TempDirBackend``: the test double of ``cubegw.backend.LinuxBackend``.

A router in a directory, for tests and the demo: files under a temporary directory,
load values set by the test, reboots and commands recorded, nothing run.  Apart from
the real backend so that a running gateway does not load it.
"""

import os

from twisted.internet import defer
from zope.interface import implementer

from cubegw.backend import APPLY_COMMANDS, NOT_OPENWRT, _FilesMixin
from cubegw.backend_interface import ISystemBackend
from cubegw.ucifiles import UciFiles

__all__ = ["TempDirBackend"]


@implementer(ISystemBackend)
class TempDirBackend(_FilesMixin):
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
        self.addrs = {}               # net_if_addrs(): name -> [{"family", "address", "netmask"}]
        self.stats = {}               # net_if_stats(): name -> {"isup", "speed", "mtu"}
        self.counters = {}            # net_io_counters(): name -> {"bytes_sent", "bytes_recv"}
        self.applied = []             # every config_name given to apply()
        self.uci_files = UciFiles(self.uci_path)      # written at once: no thread

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

    def net_if_addrs(self):
        return {name: [dict(a) for a in addrs] for name, addrs in self.addrs.items()}

    def net_if_stats(self):
        return {name: dict(st) for name, st in self.stats.items()}

    def net_io_counters(self):
        return {name: dict(c) for name, c in self.counters.items()}

    def apply(self, config_name):
        self.applied.append(config_name)
        if not self.is_openwrt():
            return defer.succeed(NOT_OPENWRT)
        argv = APPLY_COMMANDS.get(config_name, ["/etc/init.d/" + config_name, "reload"])
        return self.run(argv).addCallback(
            lambda r: f"reload failed: {' '.join(argv)} exited {r[0]}" if r[0] else None)
