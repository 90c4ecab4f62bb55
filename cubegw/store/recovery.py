"""Opening the store when its file may be corrupt, and the backup that makes that safe.

A UCI file that does not parse would stop the daemon at start (``Store`` refuses to
read or overwrite it).  ``open_store`` instead moves it aside as
``<path>.corrupt-<timestamp>``, writes the defaults, and brings back the X_CT-COM_Mgt
(``mgt``) and ``registration`` values from ``<path>.bak``, the last good file, which
``save_backup`` keeps.  Plain Python, no Twisted: ``cubegw-ctl`` and first-boot scripts
may use it as well as the daemon.
"""

import os
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from cubegw.store import uci
from cubegw.store.schema import DEFAULT_SCHEMA, MGT, REGISTRATION, StoreError
from cubegw.store.store import FileSystem, Store, lock_path_for

__all__ = ["RecoveryEvent", "open_store", "recover_file", "save_backup", "backup_path_for"]

#: Owners whose values are brought back from the backup (never reset, and what a
#: gateway needs to find its platforms again).
RECOVERED_OWNERS = frozenset({MGT, REGISTRATION})


@dataclass(frozen=True)
class RecoveryEvent:
    """Something ``open_store`` did or found; ``code`` is stable, ``message`` is for logs.

    Codes: ``corrupt`` (file moved aside), ``restored`` (values from the backup),
    ``no-backup``, ``backup-unusable``, ``value-skipped`` (a bad value in the backup),
    ``temp-removed`` (a temp file left by a crashed write).
    """

    code: str
    message: str

    def __str__(self):
        return self.message


def backup_path_for(path: str) -> str:
    return os.fspath(path) + ".bak"


def open_store(path, backup_path: Optional[str] = None,
               log: Optional[Callable[[str], None]] = None,
               schema=None, fs: Optional[FileSystem] = None, on_contents=None,
               now: Callable[[], float] = time.time) -> Tuple[Store, List[RecoveryEvent]]:
    """A Store on ``path``, recovering a file that does not parse; returns (store, events).

    A good (or missing) file is not touched.  ``log`` is called with each event's
    message as it happens.  A file that cannot be read at all (permissions, I/O
    error) still raises StoreError: moving it aside would not help.
    """
    schema = schema if schema is not None else DEFAULT_SCHEMA
    fs = fs if fs is not None else FileSystem()
    events = recover_file(path, backup_path, log, schema, fs, now)
    return Store(path, schema=schema, fs=fs, on_contents=on_contents), events


def recover_file(path, backup_path: Optional[str] = None,
                 log: Optional[Callable[[str], None]] = None,
                 schema=None, fs: Optional[FileSystem] = None,
                 now: Callable[[], float] = time.time) -> List[RecoveryEvent]:
    """Make ``path`` a file a Store can open: stale temp files removed, a file that
    does not parse moved aside and rebuilt from the backup.  Returns the events."""
    path = os.fspath(path)
    backup_path = backup_path_for(path) if backup_path is None else os.fspath(backup_path)
    schema = schema if schema is not None else DEFAULT_SCHEMA
    fs = fs if fs is not None else FileSystem()
    events: List[RecoveryEvent] = []

    def event(code, message):
        events.append(RecoveryEvent(code, message))
        if log is not None:
            log(message)

    directory, base = os.path.split(os.path.abspath(path))
    try:
        with fs.locked(lock_path_for(path)):
            _remove_stale_temps(fs, directory, base, event)
            data = fs.read(path)
            if data is not None:
                try:
                    uci.parse(data.decode("utf-8", "surrogateescape"))
                except uci.UciError as e:
                    _recover(fs, path, backup_path, schema, e, now, event)
    except OSError as e:
        raise StoreError(f"{path}: cannot recover: {e.strerror or e}") from e
    return events


def save_backup(store: Store, backup_path: Optional[str] = None,
                fs: Optional[FileSystem] = None) -> bool:
    """Copy the store's file to its backup, atomically, if the file parses.

    Returns whether a backup was written (False: no file yet, or it does not parse,
    so the last good backup is kept).  Raises StoreError if the write fails; the
    caller logs that and carries on.  Call it after a successful start and after
    the daemon's own writes.
    """
    backup_path = backup_path_for(store.path) if backup_path is None else backup_path
    fs = fs if fs is not None else FileSystem()
    try:
        data = fs.read(store.path)
        if data is None:
            return False
        try:
            uci.parse(data.decode("utf-8", "surrogateescape"))
        except uci.UciError:
            return False
        fs.write_atomic(backup_path, data)
    except OSError as e:
        raise StoreError(f"{backup_path}: cannot write the backup: {e.strerror or e}") from e
    return True


# -- internals ------------------------------------------------------------------

def _recover(fs, path, backup_path, schema, error, now, event):
    aside = _aside_name(fs, path, now())
    fs.os.rename(path, aside)
    event("corrupt", f"{path} does not parse (line {error.line}: {error.reason}); "
                     f"moved aside to {aside}, restoring the defaults")
    package = schema.defaults_package()
    restored = _restore_from_backup(fs, backup_path, schema, package, event)
    if restored:
        event("restored", f"restored {', '.join(restored)} from {backup_path}")
    fs.write_atomic(path, uci.serialize(package).encode("utf-8", "surrogateescape"))


def _aside_name(fs, path, when):
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
    candidate, n = f"{path}.corrupt-{stamp}", 1
    while _exists(fs, candidate):
        n += 1
        candidate = f"{path}.corrupt-{stamp}.{n}"
    return candidate


def _exists(fs, path):
    try:
        fs.os.stat(path)
    except FileNotFoundError:
        return False
    return True


def _restore_from_backup(fs, backup_path, schema, package, event):
    """Put the backup's mgt and registration values into ``package``; their labels."""
    try:
        data = fs.read(backup_path)
    except OSError as e:
        event("backup-unusable", f"backup {backup_path} cannot be read "
                                 f"({e.strerror or e}): defaults only")
        return []
    if data is None:
        event("no-backup", f"no backup {backup_path}: defaults only")
        return []
    try:
        backup = uci.parse(data.decode("utf-8", "surrogateescape"))
    except uci.UciError as e:
        event("backup-unusable", f"backup {backup_path} does not parse "
                                 f"(line {e.line}: {e.reason}): defaults only")
        return []
    restored = []
    for spec in schema.params(RECOVERED_OWNERS):
        if not spec.writable:
            continue
        found = backup.section(spec.section)
        raw = None if found is None else found.options.get(spec.name)
        if raw is None:
            continue
        try:
            if not isinstance(raw, str):
                raise StoreError(f"{spec.label}: must be a single value, not a list")
            text = spec.to_text(spec.convert(raw))
            uci.check_value(text, spec.label)
        except (StoreError, uci.UciError) as e:
            event("value-skipped", f"backup {backup_path}: {e}; using the default")
            continue
        section = package.section(spec.section)
        if section is None:
            section = uci.Section(spec.section, spec.section)
            package.sections.append(section)
        if text:
            section.options[spec.name] = text
        else:
            section.options.pop(spec.name, None)
        restored.append(spec.label)
    return restored


def _remove_stale_temps(fs, directory, base, event):
    """Delete ``.<base>.<hex>.tmp`` files a write killed mid-way left behind.

    Only called with the store's lock held, so no live write owns them.
    """
    prefix, suffix = f".{base}.", ".tmp"
    try:
        names = fs.os.listdir(directory)
    except OSError:
        return
    for name in names:
        middle = name[len(prefix):-len(suffix)]
        if (name.startswith(prefix) and name.endswith(suffix) and len(middle) == 12
                and all(c in "0123456789abcdef" for c in middle)):
            try:
                fs.os.unlink(os.path.join(directory, name))
            except OSError:
                continue
            event("temp-removed", f"removed {name}, left by an interrupted write")
