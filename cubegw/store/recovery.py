"""Opening the store when its file is damaged, and the backup that makes that safe.

A file is damaged when it is not a complete store file (integrity.py: it does not parse,
is empty, cut, binary, or lacks a required section or option).  ``recover_file`` then
keeps a copy of it as ``<path>.corrupt-<timestamp>`` and rewrites it in place (under
libuci's lock) from the backup ``<path>.bak``, which every write keeps a complete copy
of the file; without a complete backup, from what still parses of the file, the
X_CT-COM_Mgt and registration values a damaged backup still holds, the mirror (if
configured), and the defaults (that rewrite is ``cubegw.store.repair``, imported only
when there is damage).  The damaged file is never removed before its
replacement is on disk: if the copy or the rewrite fails (a full disk), the file stays
as it is, an event says so, and the Store reads the backup until a write succeeds.  A
missing file with a complete backup is restored too.  Plain Python, no Twisted:
``cubegw-ctl`` and first-boot scripts may use it as well as the daemon.
"""

from __future__ import annotations

import os
import re
import time
from typing import Callable, List, Optional, Tuple

from cubegw.record import Record
from cubegw.store import integrity, uci
from cubegw.store.schema import DEFAULT_SCHEMA, StoreError
from cubegw.store.store import FileSystem, Store, backup_path_for

__all__ = ["RecoveryEvent", "open_store", "recover_file", "save_backup", "backup_path_for"]


class RecoveryEvent(Record):
    """Something ``open_store`` did or found; ``code`` is stable, ``message`` is for logs.

    Codes: ``corrupt`` (a damaged file, copied aside), ``missing`` (no file, a backup),
    ``restored`` (from the backup), ``no-backup``, ``backup-unusable``, ``value-skipped``
    (a bad value in a damaged backup), ``mirror-restored``, ``mirror-unusable``,
    ``not-repaired`` (the disk refused the repair: the file is left as it was),
    ``temp-removed`` (a temp file left by a killed write).
    """

    code: str
    message: str

    def __str__(self):
        return self.message


def open_store(path, backup_path: Optional[str] = None,
               log: Optional[Callable[[str], None]] = None,
               schema=None, fs: Optional[FileSystem] = None, on_contents=None,
               now: Callable[[], float] = time.time,
               mirror=None) -> Tuple[Store, List[RecoveryEvent]]:
    """A Store on ``path``, recovering a damaged file; returns (store, events).

    A good file is not touched.  ``log`` is called with each event's message as it
    happens.  A file that cannot be read at all (permissions, I/O error) still raises
    StoreError: a copy would not help.
    """
    schema = schema if schema is not None else DEFAULT_SCHEMA
    fs = fs if fs is not None else FileSystem()
    events = recover_file(path, backup_path, log, schema, fs, now, mirror)
    return Store(path, schema=schema, fs=fs, on_contents=on_contents,
                 backup_path=backup_path), events


def recover_file(path, backup_path: Optional[str] = None,
                 log: Optional[Callable[[str], None]] = None,
                 schema=None, fs: Optional[FileSystem] = None,
                 now: Callable[[], float] = time.time, mirror=None) -> List[RecoveryEvent]:
    """Make ``path`` a complete store file: stale temp files removed, a damaged or
    missing file rebuilt (module docstring).  ``mirror``: an IMirror, the last source
    of X_CT-COM_Mgt and the registration.  Returns the events."""
    path = os.fspath(path)
    backup_path = backup_path_for(path) if backup_path is None else os.fspath(backup_path)
    schema = schema if schema is not None else DEFAULT_SCHEMA
    fs = fs if fs is not None else FileSystem()
    events: List[RecoveryEvent] = []

    def event(code, message):
        events.append(RecoveryEvent(code, message))
        if log is not None:
            log(message)

    try:
        with fs.locked(path) as file:
            _remove_stale_temps(fs, [path, backup_path], event)
            current = file.read()
            backup = _read_backup(fs, backup_path, schema)
            mirrored = None if backup.good else _load_mirror(mirror, schema, event)
            reference = backup.package if backup.good else _as_package(mirrored)
            verdict = integrity.assess(current, schema, reference)
            if verdict.good or (current is None and reference is None):
                return events               # good, or a fresh router: defaults, no file
            from cubegw.store.repair import rebuild     # on damage only
            rebuild(fs, file, current, verdict, backup, backup_path, schema, now, mirrored,
                    event)
    except OSError as e:
        raise StoreError(f"{path}: cannot recover: {e.strerror or e}") from e
    return events


def save_backup(store: Store, backup_path: Optional[str] = None,
                fs: Optional[FileSystem] = None) -> bool:
    """Copy the store's file to its backup, atomically, if it is a complete file.

    Returns whether a backup was written (False: no file, a damaged one, so the last
    good backup is kept, or the backup is the same already).  Raises StoreError if the
    write fails; the caller logs that and carries on.  The store's own writes keep the
    backup; call this after a start and after a reload (a change made with ``uci``).
    """
    backup_path = store.backup_path if backup_path is None else os.fspath(backup_path)
    fs = fs if fs is not None else FileSystem()
    try:
        with fs.locked(store.path) as file:
            data = file.read()
            backup = _read_backup(fs, backup_path, store.schema)
            verdict = integrity.assess(data, store.schema,
                                       backup.package if backup.good else None)
            if not verdict.good or fs.read(backup_path) == data:
                return False
            fs.write_atomic(backup_path, data)
    except OSError as e:
        raise StoreError(f"{backup_path}: cannot write the backup: {e.strerror or e}") from e
    return True


# -- internals ------------------------------------------------------------------

def _read_backup(fs, backup_path, schema) -> integrity.Verdict:
    try:
        data = fs.read(backup_path)
    except OSError as e:
        return integrity.Verdict(None, [f"cannot be read ({e.strerror or e})"])
    return integrity.assess(data, schema)


def _load_mirror(mirror, schema, event):
    """The mirror's sections, or None (no mirror, none saved, or unusable: said)."""
    if mirror is None:
        return None
    from cubegw.store.mirror_codec import MirrorError   # with a mirror only
    try:
        return mirror.load(schema) or None
    except MirrorError as e:
        event("mirror-unusable", f"mirror: {e}")
        return None


def _as_package(sections):
    return None if not sections else uci.Package(list(sections))


def _remove_stale_temps(fs, paths, event):
    """Delete the temp files a write killed mid-way left: ``.<base>.<hex>.tmp`` of the
    file, its backup and its aside copies (``FileSystem.write_atomic``'s names).

    Only called with the store's lock held, so no live write owns them.
    """
    for path in paths:
        directory, base = os.path.split(os.path.abspath(path))
        pattern = re.compile(rf"\.{re.escape(base)}(\.corrupt-[0-9TZ.]+)?\.[0-9a-f]{{12}}\.tmp")
        try:
            names = fs.os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if not pattern.fullmatch(name):
                continue
            try:
                fs.os.unlink(os.path.join(directory, name))
            except OSError:
                continue
            event("temp-removed", f"removed {name}, left by an interrupted write")
