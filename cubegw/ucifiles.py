"""The router's UCI files as the backends read and write them: each text parsed once,
each write durable before the caller answers.

Reading: the file is read each time (someone else may have changed it), but its parse is
reused while its bytes are the same: libuci's reader, which ``cubegw.store.uci`` ports
character by character, takes ~1.5 ms for a wireless file.  Every caller gets its own
copy of the package to change; ``write`` takes the package it is given as the newest
(no copy: the caller hands it over and does not change it afterwards).

Writing: ``write`` returns a Deferred that fires once the file is on disk, written and
renamed with both fsyncs of ``FileSystem.write_atomic``; a caller answers the phone
app only then.  One write per file is on its way at a time, run by ``run_write``: at
once in the daemon, as ``uci commit`` does (a thread was tried: on a tmpfs its hop cost
more than the write).  A ``run_write`` that takes time (a vendor's, a test's) gets group
commits: the packages written meanwhile go to disk together in the next write, and
until then ``read`` gives the newest package written, so a read-change-write never loses
a change answered before it.
"""

import os

from twisted.internet import defer
from twisted.python import failure

from cubegw.store import uci
from cubegw.store.store import FileSystem

__all__ = ["UciFiles", "run_now"]


def run_now(function, *args):
    """Run a write at once (the daemon's, unit tests'): ``_start`` takes what it
    returns or raises as the write's outcome."""
    return function(*args)


def _text(data):
    """The file's bytes as ``open(path, encoding="utf-8")`` reads them: strict UTF-8,
    universal newlines."""
    text = data.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def write_file(path, data):
    """Replace ``path`` (mode 0644, making its folder) so a crash leaves old or new.
    The folder is made only when the write finds it missing: it nearly always exists,
    and checking first cost two syscalls a SET."""
    try:
        FileSystem().write_atomic(path, data, mode=0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        FileSystem().write_atomic(path, data, mode=0o644)


class UciFiles:
    """The UCI packages at ``path_of(config_name)`` (asked once per name: a backend's
    paths do not move); writes run by ``run_write(function, *args)`` -> Deferred
    (``run_now``, the daemon's; a test holds them back)."""

    def __init__(self, path_of, run_write=run_now):
        self._path_of = path_of
        self._paths = {}          # config name -> path
        self.run_write = run_write
        self._fs = FileSystem()
        self._parsed = {}         # path -> (bytes, package): the newest we know
        self._writing = {}        # path -> Deferreds answered by the write on its way
        self._next = {}           # path -> [bytes, Deferreds]: the write after that one
        self.writes = 0           # writes started (each one fsync pair)
        self._texts = {}          # path -> uci.serialize's memo of its sections' texts

    def path_of(self, config_name):
        path = self._paths.get(config_name)
        if path is None:
            path = self._paths[config_name] = self._path_of(config_name)
        return path

    def read(self, config_name):
        """A copy of the package, or None without the file; ``uci.UciError`` for a
        file that does not parse."""
        path = self.path_of(config_name)
        if path in self._writing:
            return self._parsed[path][1].copy()     # newer than the file, soon in it
        data = self._fs.read(path)      # the bytes, compared before any decoding
        if data is None:
            return None
        known = self._parsed.get(path)
        if known is None or known[0] != data:
            known = self._parsed[path] = (data, uci.parse(_text(data)))
        return known[1].copy()

    def write(self, config_name, package):
        """Check (``uci.UciError`` at once, nothing written), then write ``package``:
        a Deferred firing None once it is on disk, or failing with the write's error.
        ``package`` is ours from now on (kept as the newest, which ``read`` copies):
        the caller must not change it afterwards."""
        path = self.path_of(config_name)
        known = self._parsed.get(path)
        # the values already there: what the caller read and changed (it just did), else
        # the file's; only the values new to it are checked
        uci.check_new_values(known[1] if known else self.read(config_name), package)
        data = uci.serialize(package, self._texts.setdefault(path, {})).encode("utf-8")
        self._parsed[path] = (data, package)
        done = defer.Deferred()
        if path in self._writing:
            queued = self._next.setdefault(path, [data, []])
            queued[0] = data
            queued[1].append(done)
        else:
            self._start(path, data, [done])
        return done

    def _start(self, path, data, waiters):
        self._writing[path] = waiters
        self.writes += 1
        try:
            result = self.run_write(write_file, path, data)
        except Exception:
            result = failure.Failure()
        if isinstance(result, defer.Deferred):
            result.addBoth(self._written, path)
        else:                       # written already (run_now): no Deferred to chain
            self._written(result, path)

    def _written(self, result, path):
        waiters = self._writing.pop(path)
        queued = self._next.pop(path, None)
        if queued is not None:
            self._start(path, *queued)
        elif isinstance(result, failure.Failure):
            self._parsed.pop(path, None)            # what is on disk: read it again
        for waiter in waiters:
            if isinstance(result, failure.Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)
