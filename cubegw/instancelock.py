"""One cubegw per state directory: a second one would register the same MAC twice.

``InstanceLock`` takes an exclusive ``flock`` on ``<state_dir>/cubegw.lock`` when the
daemon starts (before the reactor runs, so a second daemon stops with the reason) and
holds it for the life of the process; the kernel drops it when the process dies, so a
crash never leaves a stale lock behind.
"""

import fcntl
import os

from twisted.application import service

LOCK_FILE = "cubegw.lock"


class AlreadyRunning(Exception):
    """Another process holds the lock."""


class InstanceLock(service.Service):
    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, LOCK_FILE)
        self._file = None

    def privilegedStartService(self):
        super().privilegedStartService()
        self.acquire()

    def startService(self):
        super().startService()
        self.acquire()

    def acquire(self):
        if self._file is not None:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "?"
            f.close()
            raise AlreadyRunning(f"another cubegw (pid {holder}) runs with state_dir "
                                 f"{os.path.dirname(self.path)}")
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self._file = f

    def stopService(self):
        super().stopService()
        if self._file is not None:
            f, self._file = self._file, None
            f.close()              # closing drops the flock
