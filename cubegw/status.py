"""The operator's status snapshot: a JSON file the daemon rewrites whenever it changes.

``cubegw-ctl status`` reads it, so the command works without talking to the daemon.  What
every heartbeat changes (counters, last heartbeat) is written at most once a minute, so a
heartbeat costs no file write; ``cubegw-ctl status`` asks a running daemon for a fresh
snapshot first (SIGUSR1, ``refresh_status``).
"""

import json
import os
import signal
import tempfile
import time

STATUS_FILE = "status.json"


def atomic_write(path, data, mode=0o644, fsync=True):
    """Write ``data`` (bytes) to ``path`` so a reader sees the old or the new file, never half.

    ``fsync=False`` for files in RAM (``/var/run``) that need no power-cut safety.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


#: What every heartbeat changes (with the time of the next one, ``next_attempt``): alone,
#: these are written at most every ROUTINE_INTERVAL s.
ROUTINE_COUNTERS = ("sent", "replies", "hb_ok")
ROUTINE_INTERVAL = 60.0


def _significant(snapshot):
    """The snapshot less what every heartbeat changes (but "never" -> "some time" counts)."""
    out = {k: v for k, v in snapshot.items()
           if k not in ("counters", "last_heartbeat", "next_attempt")}
    out["counters"] = {k: v for k, v in (snapshot.get("counters") or {}).items()
                       if k not in ROUTINE_COUNTERS}
    out["has_heartbeat"] = snapshot.get("last_heartbeat") is not None
    return out


class StatusFile:
    """Writes a snapshot dict to ``<state_dir>/status.json``.

    A change of state, platform or the like is written at once; a change of counters
    and heartbeat time alone at most every ``ROUTINE_INTERVAL`` seconds, so a heartbeat
    costs no file write on a router's slow flash or CPU.  ``force`` writes in any case
    (an operator asked).
    """

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, STATUS_FILE)
        self._last = None
        self._last_significant = None
        self._written_at = None

    def routine_due(self, now):
        """Whether a change of the heartbeat counters alone would be written now."""
        return self._written_at is None or now - self._written_at >= ROUTINE_INTERVAL

    def write(self, snapshot, now, force=False):
        if snapshot == self._last and not force:
            return False
        significant = _significant(snapshot)
        routine = significant == self._last_significant
        if routine and not force and not self.routine_due(now):
            return False
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        atomic_write(self.path, json.dumps(snapshot, indent=1, sort_keys=True).encode(),
                     fsync=False)
        self._last, self._last_significant = snapshot, significant
        self._written_at = now
        return True


def read_status(state_dir):
    """The last snapshot, or None when the daemon has never run with this state_dir."""
    try:
        with open(os.path.join(state_dir, STATUS_FILE), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def refresh_status(state_dir, snapshot, timeout=1.0, kill=os.kill, sleep=time.sleep):
    """Ask the running daemon of ``snapshot`` to rewrite its status (SIGUSR1) and return
    the new snapshot; the one given if the daemon does not answer within ``timeout`` s."""
    path = os.path.join(state_dir, STATUS_FILE)
    try:
        before = os.stat(path).st_mtime_ns
        kill(snapshot["pid"], signal.SIGUSR1)
    except (OSError, KeyError, TypeError):
        return snapshot
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sleep(0.02)
        try:
            if os.stat(path).st_mtime_ns != before:
                return read_status(state_dir) or snapshot
        except OSError:
            pass
    return snapshot


def pid_alive(pid):
    """Whether a process with ``pid`` exists (the daemon may have died without cleaning up)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
