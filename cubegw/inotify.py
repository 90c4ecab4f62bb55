"""inotify on one directory, through the C library the interpreter is linked with.

Twisted's ``twisted.internet.inotify`` finds the C library with
``ctypes.util.find_library("c")``, which spawns ``ldconfig -p`` at every start and finds
nothing on musl (OpenWrt has no ldconfig): there the store watch fell back to polling
its file every 2 s.  ``dlopen(NULL)`` (``ctypes.CDLL(None)``) reaches ``inotify_init1``
in the libc already loaded, glibc or musl, with no process spawned.
"""

import ctypes
import os
import struct

from twisted.internet import abstract

__all__ = ["IN_CLOSE_WRITE", "IN_MOVED_TO", "IN_CREATE", "IN_DELETE", "DirectoryWatch"]

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_Q_OVERFLOW = 0x00004000

_EVENT = struct.Struct("iIII")          # struct inotify_event: wd, mask, cookie, len
_OVERFLOW_NAME = ""                     # said for a queue overflow: "something changed"


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.inotify_init1.argtypes = [ctypes.c_int]
    libc.inotify_init1.restype = ctypes.c_int
    libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    libc.inotify_add_watch.restype = ctypes.c_int
    return libc


def parse_events(data, wanted=None):
    """The file names of the raw ``inotify_event`` records in ``data`` ("" for a queue
    overflow, always said); a truncated record at the end is ignored.  ``wanted``: a set
    of encoded names, the only ones said (the others' records are skipped undecoded)."""
    names, offset = [], 0
    while offset + _EVENT.size <= len(data):
        _, mask, _, length = _EVENT.unpack_from(data, offset)
        start = offset + _EVENT.size
        offset = start + length
        if offset > len(data):
            break
        if mask & IN_Q_OVERFLOW:
            names.append(_OVERFLOW_NAME)
            continue
        raw = data[start:offset].rstrip(b"\0")
        if wanted is None or raw in wanted:
            names.append(os.fsdecode(raw))
    return names


class DirectoryWatch(abstract.FileDescriptor):
    """Calls ``on_name(name)`` for each event of ``mask`` on a file of ``directory``
    (only the files ``names``, if given: the folder's other files cost no call) and for a
    queue overflow; raises OSError where inotify cannot be had (not Linux, too many
    watches).  ``loseConnection()`` stops it."""

    def __init__(self, reactor, directory, mask, on_name, names=None):
        super().__init__(reactor)
        libc = _libc()
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            errno = ctypes.get_errno()
            os.close(fd)
            raise OSError(errno, f"inotify_add_watch {directory} failed")
        self._fd = fd
        self.on_name = on_name
        self._wanted = None if names is None else frozenset(map(os.fsencode, names))
        # as Twisted's INotify: loseConnection() then calls connectionLost, which
        # closes the descriptor, even if reading never started
        self.connected = 1
        self._writeDisconnected = True

    def fileno(self):
        return self._fd

    def doRead(self):
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return None
        for name in parse_events(data, self._wanted):
            self.on_name(name)
        return None

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.close()

    def close(self):
        """Close the descriptor (once); for a watch that never started reading."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
