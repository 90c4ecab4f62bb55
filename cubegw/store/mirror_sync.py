"""The UCI file and its mirror: ``restore`` and ``save`` (the command line's
actions) and ``MirrorSync`` (the daemon's Store callback).  Part of
``cubegw.store.mirror``, which re-exports it.
"""

import os
from typing import Callable, List, Optional

from cubegw.store import uci
from cubegw.store.mirror_backends import IMirror
from cubegw.store.mirror_codec import MirrorError, extract, merge, persistent_section_names
from cubegw.store.schema import DEFAULT_SCHEMA, Schema
from cubegw.store.store import FileSystem, read_package


def restore(config, mirror: IMirror, schema: Schema = DEFAULT_SCHEMA,
            fs: Optional[FileSystem] = None) -> Optional[bool]:
    """Put the mirror's sections into the UCI file ``config``.

    None when there is no mirror (the file is not touched), else whether the
    file changed.  The mirror is read and checked before the file is locked:
    a corrupt mirror raises MirrorError and the file stays as it is.  A
    missing file is created with the mirror's sections alone.
    """
    config = os.fspath(config)
    fs = fs if fs is not None else FileSystem()
    sections = mirror.load(schema)
    if sections is None:
        return None
    try:
        with fs.locked(config) as file:         # libuci's lock: written in place
            current = file.read()
            package = _parse(current, config) if current is not None else uci.Package()
            merged, changed = merge(package, sections)
            if changed:
                text = uci.serialize(merged)
                file.overwrite(text.encode("utf-8", "surrogateescape"), current)
    except (OSError, uci.UciError) as e:
        raise MirrorError(f"{config}: cannot write: {getattr(e, 'strerror', None) or e}") \
            from None
    return changed


def _parse(data: bytes, config: str) -> uci.Package:
    try:
        return uci.parse(data.decode("utf-8", "surrogateescape"))
    except uci.UciError as e:
        raise MirrorError(f"{config}: line {e.line}: {e.reason}") from e


def save(config, mirror: IMirror, schema: Schema = DEFAULT_SCHEMA,
         fs: Optional[FileSystem] = None) -> None:
    """Copy the persistent sections of the UCI file ``config`` to the mirror."""
    config = os.fspath(config)
    fs = fs if fs is not None else FileSystem()
    package = read_package(fs, config, MirrorError)
    if package is None:
        raise MirrorError(f"{config}: no such file")
    sections = extract(package, schema)
    if not sections:
        raise MirrorError(f"{config}: no {' or '.join(persistent_section_names(schema))} section")
    mirror.save(sections)


class MirrorSync:
    """Keeps a mirror in step with a Store: pass it as ``Store(on_contents=...)``.

    Called with the file's contents after each write and reload; saves only
    when the persistent sections differ from what it last saved (so an ITMS
    or APP reset, or any other write, costs nothing).  Never raises: a
    failure is given to ``log`` (a callable taking one string) and retried
    at the next call.  While the file ``pending`` exists (a restore that
    could not be done yet) nothing is saved.
    """

    def __init__(self, mirror: IMirror, schema: Schema = DEFAULT_SCHEMA,
                 pending: Optional[str] = None, log: Optional[Callable[[str], None]] = None):
        self.mirror = mirror
        self.schema = schema
        self.pending = pending
        self.log = log if log is not None else (lambda message: None)
        self._saved: Optional[List[uci.Section]] = None

    def __call__(self, package: uci.Package) -> bool:
        """Save if needed; whether a save was made."""
        sections = extract(package, self.schema)
        if not sections or sections == self._saved:
            return False
        if self.pending is not None and os.path.exists(self.pending):
            self.log(f"mirror not saved: a restore is pending ({self.pending})")
            return False
        try:
            self.mirror.save(sections)
        except MirrorError as e:
            self.log(f"mirror not saved: {e}")
            return False
        self._saved = sections
        return True

    def sync_file(self, config) -> bool:
        """At daemon start: save the persistent sections of the file ``config``
        unless the mirror already holds them (no flash write then); whether a
        save was made.  Never raises."""
        try:
            package = read_package(FileSystem(), os.fspath(config), MirrorError)
        except MirrorError as e:
            self.log(f"mirror not saved: {e}")
            return False
        if package is None:
            return False
        try:
            current = self.mirror.load(self.schema)
        except MirrorError:
            current = None  # missing, corrupt or unavailable: __call__ decides
        if current is not None and current == extract(package, self.schema):
            self._saved = current
            return False
        return self(package)
