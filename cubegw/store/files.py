"""The store's file I/O: the lock libuci takes, writes in place, atomic copies.

``uci commit`` (libuci's ``file.c``, ``uci_file_commit``) locks the UCI file itself with
``flock(LOCK_EX)``, re-reads it through the locked descriptor, writes
``.<name>.uci-XXXXXX`` beside it, unlocks, then renames the temp over the file.  To
serialize with it a writer must (1) lock the same file, (2) once it holds the lock, check
that the path still names the inode it locked (a commit may have renamed a new file in)
and that no commit's ``uci-`` temp is waiting to be renamed, and (3) write in place, never
by rename: a ``uci commit`` already waiting on the lock reads the inode it waits on, so a
file renamed away would give it stale contents and lose our write.  A write torn by a
crash is what the backup (``<file>.bak``, see store.py) is for.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from typing import Callable, Optional

__all__ = ["FileSystem", "LockedFile", "UCI_COMMIT_WAIT"]

#: How long a writer waits for a ``uci commit`` between its unlock and its rename (a
#: few microseconds) before taking the temp as left by a killed ``uci``.
UCI_COMMIT_WAIT = 2.0
#: A ``uci-`` temp older than this (wall clock) belongs to a ``uci`` that was killed.
UCI_TEMP_STALE = 10.0


class LockedFile:
    """The store file, locked the way libuci locks it; written in place."""

    def __init__(self, fs: "FileSystem", fd: int, path: str, created: bool):
        self.fs, self.fd, self.path, self.created = fs, fd, path, created
        self.written = False

    def read(self) -> Optional[bytes]:
        """The contents; None if the file did not exist (the lock created it)."""
        if self.created and not self.written:
            return None
        chunks, offset = [], 0
        while True:
            chunk = self.fs.os.pread(self.fd, 65536, offset)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            offset += len(chunk)

    def overwrite(self, data: bytes, old: Optional[bytes]) -> None:
        """Make the file ``data``, durably; on failure put ``old`` back and raise.

        ``old`` None (the file did not exist): a failed write leaves no file.
        """
        try:
            self._put(data, old or b"")
        except OSError:
            try:
                if old is None:
                    self.written = False        # removed on unlock
                else:
                    self._put(old, data)
            except OSError:
                pass                            # the backup still holds a good copy
            raise
        self.written = True

    def discard(self, old: Optional[bytes], data: bytes) -> None:
        """Undo a successful ``overwrite(data, old)`` (its backup could not be written)."""
        if old is None:
            self.written = False
        else:
            self._put(old, data)

    def _put(self, data: bytes, old: bytes) -> None:
        """A shorter text is padded with newlines to the old length first, so a crash
        before the truncation leaves a file that parses the same; never an old tail."""
        o = self.fs.os
        padded = data + b"\n" * max(0, len(old) - len(data)) if data else b""
        view, offset = memoryview(padded), 0
        while offset < len(padded):
            done = o.pwrite(self.fd, view[offset:], offset)
            if done <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            offset += done
        if len(padded) != len(data) or not data:
            if padded:
                o.fsync(self.fd)
            o.ftruncate(self.fd, len(data))
        o.fsync(self.fd)


class FileSystem:
    """The store's only I/O, in one object so tests can inject failures.

    ``os_module`` supplies open, read, pread, pwrite, write, fsync, fchmod, fstat, stat,
    ftruncate, listdir, replace, unlink and close (the ``os`` module, or a wrapper);
    ``sleep`` and ``clock`` pace the wait for a ``uci commit`` between unlock and rename.
    """

    def __init__(self, os_module=os, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.os = os_module
        self.sleep = sleep
        self.clock = clock

    def read(self, path: str) -> Optional[bytes]:
        """The whole file, or None if it does not exist."""
        try:
            fd = self.os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            return self._read_fd(fd)
        finally:
            self.os.close(fd)

    def read_shared(self, path: str) -> Optional[bytes]:
        """Like ``read``, under the shared lock ``uci`` readers take: never half a write."""
        try:
            fd = self.os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            return self._read_fd(fd)
        finally:
            self.os.close(fd)

    def _read_fd(self, fd: int) -> bytes:
        chunks = []
        while True:
            chunk = self.os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    @contextmanager
    def locked(self, path: str):
        """Hold libuci's lock on the UCI file ``path``; yields a LockedFile.

        A missing file is created (0600) to be locked, and removed again at the end
        unless something was written to it.
        """
        fd, created = self._lock(path)
        handle = LockedFile(self, fd, path, created)
        try:
            yield handle
        finally:
            try:
                if created and not handle.written:
                    self.os.unlink(path)
            except OSError:
                pass
            finally:
                self.os.close(fd)               # drops the lock

    def _lock(self, path: str):
        o = self.os
        deadline = self.clock() + UCI_COMMIT_WAIT
        while True:
            created = False
            try:
                fd = o.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                try:
                    fd = o.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                except FileExistsError:
                    continue
                created = True
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # this order: a commit's temp gone before the listing has been renamed
                # in, which the inode check then sees; a new one needs our lock
                if not self._commit_pending(path, deadline) and self._same_file(fd, path):
                    return fd, created
            except BaseException:
                o.close(fd)
                raise
            o.close(fd)

    def _same_file(self, fd: int, path: str) -> bool:
        mine = self.os.fstat(fd)
        try:
            now = self.os.stat(path)
        except FileNotFoundError:
            return False
        return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)

    def _commit_pending(self, path: str, deadline: float) -> bool:
        """Whether a ``uci commit`` has unlocked but not yet renamed its temp in (then
        wait a little); past ``deadline`` the temp is taken as a killed commit's."""
        directory, base = os.path.split(os.path.abspath(path))
        prefix = f".{base}.uci-"
        try:
            names = [n for n in self.os.listdir(directory) if n.startswith(prefix)]
        except OSError:
            return False
        for name in names:
            try:
                age = time.time() - self.os.stat(os.path.join(directory, name)).st_mtime
            except OSError:
                continue                        # renamed in meanwhile
            if age < UCI_TEMP_STALE and self.clock() < deadline:
                self.sleep(0.001)
                return True
        return False

    def write_atomic(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Replace ``path`` with ``data`` so a crash leaves old or new, whole.

        For the backup and other files nobody else locks; the store file itself is
        written in place under ``locked``.
        """
        o = self.os
        directory, base = os.path.split(os.path.abspath(path))
        temp = os.path.join(directory, f".{base}.{os.urandom(6).hex()}.tmp")
        fd = o.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        try:
            try:
                o.fchmod(fd, mode)
                view = memoryview(data)
                while view:
                    view = view[o.write(fd, view):]
                o.fsync(fd)
            finally:
                o.close(fd)
            o.replace(temp, path)
        except BaseException:
            try:
                o.unlink(temp)
            except OSError:
                pass
            raise
        self._sync_directory(directory)

    def _sync_directory(self, directory: str) -> None:
        """Make the rename durable; some file systems cannot, which is fine."""
        fd = self.os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.os.fsync(fd)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOTSUP):
                raise
        finally:
            self.os.close(fd)
