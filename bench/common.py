"""Helpers shared by the bench scripts: ports, process CPU and memory, statistics."""

import glob
import os
import socket
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
TWISTD = "from twisted.scripts.twistd import run; run()"
LOOPBACK = "127.0.0.1"


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def child_env(**extra):
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=ROOT)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def twistd_argv(*args):
    """``twistd -n --pidfile= ARGS`` run with this interpreter (as cubegw.children does)."""
    return [sys.executable, "-c", TWISTD, "-n", "--pidfile="] + list(args)


def cpu_ns(pid):
    """CPU time (user+system) of every live thread of ``pid``, in ns, from schedstat.

    schedstat has nanosecond resolution (psutil's cpu_times has clock ticks, 10 ms),
    which a sub-millisecond per-heartbeat figure needs.  Falls back to psutil.
    """
    total, seen = 0, False
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
                seen = True
        except (OSError, ValueError, IndexError):
            pass
    if seen:
        return total
    import psutil
    t = psutil.Process(pid).cpu_times()
    return int((t.user + t.system) * 1e9)


def run_count(pid):
    """How many times the threads of ``pid`` went to sleep and were woken: the sum of
    their voluntary context switches (/proc/<pid>/task/*/status).  Preemptions of a busy
    thread (involuntary switches) are not wake-ups and are left out."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def rss(pid):
    import psutil
    return psutil.Process(pid).memory_info().rss


def summary(values):
    """median, min, max of a non-empty list (None for an empty one)."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(round(q / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]
