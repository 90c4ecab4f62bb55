"""The operator's status snapshot: a JSON file the daemon rewrites whenever it changes.

``cubegw-ctl status`` reads it, so the command works without talking to the daemon.
"""

import json
import os
import tempfile

STATUS_FILE = "status.json"


def atomic_write(path, data, mode=0o644):
    """Write ``data`` (bytes) to ``path`` so a reader sees the old or the new file, never half."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class StatusFile:
    """Writes a snapshot dict to ``<state_dir>/status.json`` when it differs from the last one."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, STATUS_FILE)
        self._last = None

    def write(self, snapshot):
        if snapshot == self._last:
            return False
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        atomic_write(self.path, json.dumps(snapshot, indent=1, sort_keys=True).encode())
        self._last = snapshot
        return True


def read_status(state_dir):
    """The last snapshot, or None when the daemon has never run with this state_dir."""
    try:
        with open(os.path.join(state_dir, STATUS_FILE), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def pid_alive(pid):
    """Whether a process with ``pid`` exists (the daemon may have died without cleaning up)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
