"""The management store: typed parameters kept in one UCI file.

The file (``/etc/config/cubegw`` on a router) is shared by the daemon and
``cubegw-ctl``, and may be edited with ``uci``.  Every write takes libuci's lock
(files.py), re-reads the file, applies the change, and then: the backup
``<file>.bak`` is brought up to the file as read (if it is complete and the
backup differs), the file is rewritten in place, the backup gets the new file.
A failure at any step puts the old file back and raises, so a refused write
changes nothing; a crash mid-write leaves a good backup of the file, old or new
(recovery.py takes it at start).  The backup is only ever a complete file
(integrity.py).  Options and sections the schema does not know are kept.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Set, Tuple

from cubegw.store import integrity, uci
from cubegw.store.files import FileSystem
from cubegw.store.schema import (
    APP_RESET, DEFAULT_SCHEMA, ITMS_RESET, MGT_SECTION, Owner, ParamSpec,
    Schema, SectionType, StoreError,
)

__all__ = ["Store", "FileSystem", "backup_path_for"]

Key = Tuple[str, str]


def backup_path_for(path) -> str:
    """The last complete copy of the store file ``path``: ``<path>.bak``."""
    return os.fspath(path) + ".bak"


def read_package(fs: "FileSystem", path: str, error=StoreError) -> Optional[uci.Package]:
    """The parsed UCI file ``path``, None if it does not exist; ``error`` says why not."""
    try:
        data = fs.read(path)
    except OSError as e:
        raise error(f"{path}: cannot read: {e.strerror or e}") from e
    if data is None:
        return None
    try:
        return uci.parse(data.decode("utf-8", "surrogateescape"))
    except uci.UciError as e:
        raise error(f"{path}: line {e.line}: {e.reason}") from e


class Store:
    """Typed access to the parameters of a Schema, kept in the UCI file ``path``.

    A missing file means every default; the first write creates it with all
    defaults filled in.  A file that does not parse raises StoreError at load
    (and at every write, rather than overwrite what we cannot read).
    """

    def __init__(self, path, schema: Optional[Schema] = None,
                 fs: Optional[FileSystem] = None,
                 on_contents: Optional[Callable[[uci.Package], Any]] = None,
                 load: bool = True, backup_path=None):
        """``load=False`` defers reading the file to the first ``reload()`` (the
        daemon builds its services before its store service opens the file)."""
        self.path = os.fspath(path)
        self.backup_path = os.fspath(backup_path or backup_path_for(self.path))
        #: Why the file as last read is not a complete one (then read from the backup).
        self.damage: List[str] = []
        #: Called with the file's contents after each write and each reload
        #: (e.g. cubegw.store.mirror.MirrorSync); must not raise.
        self.on_contents = on_contents
        self.schema = schema if schema is not None else DEFAULT_SCHEMA
        self._fs = fs if fs is not None else FileSystem()
        self._package = (self._read() if load else None) or uci.Package()
        # What reload() has reported so far: the file as last read, plus our
        # own writes, so that a change made by another process is reported
        # even if one of our writes re-read the file first.
        self._reported = copy.deepcopy(self._package)
        self._derived: Dict[Any, Any] = {}      # derived()'s values, of _derived_from
        self._derived_from: Optional[uci.Package] = None

    # -- reading ---------------------------------------------------------------

    def get(self, section: str, name: str) -> Any:
        """The typed value (the default when the file has none or a bad one)."""
        return _value(self._package, self.schema.param(section, name))

    def derived(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, kept under ``key`` until the contents change: every load, reload
        and write puts a new package in place (none is changed once in use), so a value
        worked out from this package stays right while it is the store's.  For values
        asked on every call (the dispatcher's rights); ``compute`` raising keeps nothing."""
        if self._derived_from is not self._package:
            self._derived, self._derived_from = {}, self._package
        try:
            return self._derived[key]
        except KeyError:
            value = self._derived[key] = compute()
            return value

    def mgt(self) -> Dict[str, Any]:
        """The X_CT-COM_Mgt parameters by bare name."""
        return {spec.name: _value(self._package, spec)
                for spec in self.schema.params() if spec.section == MGT_SECTION}

    def names(self) -> List[str]:
        """Bare names of the X_CT-COM_Mgt parameters, in order."""
        return self.schema.mgt_names()

    @property
    def read_only_names(self) -> List[str]:
        """Bare X_CT-COM_Mgt names that refuse ``set`` (Version)."""
        return [spec.name for spec in self.schema.params()
                if spec.section == MGT_SECTION and not spec.writable]

    def lookup(self, text: str) -> ParamSpec:
        """A parameter by bare X_CT-COM_Mgt name, ``section.name`` or TR-098 path."""
        return self.schema.lookup(text)

    def problems(self) -> List[str]:
        """Values in the file that are invalid and read as the default."""
        found = [f"{self.path}: {problem}" for problem in self.damage]
        for spec in self.schema.params():
            raw = _raw(self._package, spec.section, spec.name)
            if raw is not None and spec.writable:
                try:
                    _checked(spec, raw)
                except StoreError as e:
                    found.append(f"{self.path}: {e}; using the default")
        for section_type in self.schema.section_types():
            _entries(self._package, section_type, found)
        return found

    def reload(self) -> Set[Key]:
        """Re-read the file; return the keys whose value changed since the
        last load or reload, other than by this Store's own writes.

        Keys are (section, name) for parameters and (type, key) for the
        items of repeatable sections.  A file that no longer parses raises
        StoreError and the last good contents stay in use.
        """
        package = self._read() or uci.Package()
        changed = _diff(self.schema, self._reported, package)
        self._package = package
        self._reported = copy.deepcopy(package)
        if self.on_contents is not None:
            self.on_contents(package)
        return changed

    # -- writing ---------------------------------------------------------------

    def set(self, section: str, name: str, value: Any) -> Any:
        """Check, convert and store one value; return the converted value."""
        return self.update({(section, name): value})[(section, name)]

    def update(self, changes: Mapping[Key, Any]) -> Dict[Key, Any]:
        """Set several values at once: all of them, or none if any is refused."""
        converted, errors = {}, []
        for (section, name), value in changes.items():
            try:
                spec = self._writable(self.schema.param(section, name))
                converted[spec.key] = (spec, spec.convert(value))
            except StoreError as e:
                errors.append(str(e))
        if errors:
            raise StoreError("; ".join(errors))

        def apply(package):
            for spec, value in converted.values():
                _put(package, spec.section, spec.name, spec.to_text(value))
        self._modify(apply)
        return {key: value for key, (spec, value) in converted.items()}

    def save(self) -> None:
        """Write the file, filling in every parameter it lacks with its default."""
        def fill(package):
            for spec in self.schema.params():
                if _raw(package, spec.section, spec.name) is None:
                    _put(package, spec.section, spec.name, spec.to_text(spec.default))
        self._modify(fill)

    def factory_reset_itms(self) -> Set[Key]:
        """ITMS factory reset: ITMS-only and shared data back to defaults.

        Only what this store holds: no protocol message of cubegw's asks for it (the
        vendor's TR-069 client does), and that caller must also reset the shared WiFi
        data, which lives in OpenWrt's own UCI ``wireless`` package, not here.
        """
        return self._reset(ITMS_RESET)

    def factory_reset_app(self) -> Set[Key]:
        """APP factory reset: APP-only data and LAN device access control only."""
        return self._reset(APP_RESET)

    # -- repeatable sections ----------------------------------------------------

    def list_sections(self, type: str) -> List[Dict[str, Any]]:
        """Every item of a repeatable section type, typed, in file order."""
        section_type = self.schema.section_type(type)
        return list(_entries(self._package, section_type).values())

    def get_section(self, type: str, key: Any) -> Optional[Dict[str, Any]]:
        """One item by key, or None."""
        section_type = self.schema.section_type(type)
        return _entries(self._package, section_type).get(section_type.convert_key(key))

    def add_section(self, type: str, key: Any,
                    values: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Create an item; refuse if one with this key exists."""
        return self._put_section(type, key, values or {}, must_exist=False)

    def update_section(self, type: str, key: Any, values: Mapping[str, Any]) -> Dict[str, Any]:
        """Change some values of an existing item; refuse if there is none."""
        return self._put_section(type, key, values, must_exist=True)

    def remove_section(self, type: str, key: Any) -> bool:
        """Remove an item; return whether there was one."""
        section_type = self.schema.section_type(type)
        key = section_type.convert_key(key)
        found = []

        def remove(package):
            found.append(_drop_items(package, section_type, key))
            return found[0]
        self._modify(remove)
        return found[0]

    # -- internals ---------------------------------------------------------------

    def _writable(self, spec: ParamSpec) -> ParamSpec:
        if not spec.writable:
            raise StoreError(f"{spec.label} is read-only")
        return spec

    def _put_section(self, type, key, values, must_exist):
        section_type = self.schema.section_type(type)
        key = section_type.convert_key(key)
        converted, errors = {}, []
        for name, value in values.items():
            try:
                spec = self._writable(section_type.param(name))
                converted[name] = spec.to_text(spec.convert(value))
            except StoreError as e:
                errors.append(str(e))
        if errors:
            raise StoreError("; ".join(errors))

        def check(package):
            exists = _find_item(package, section_type, key) is not None
            if exists and not must_exist:
                raise StoreError(f"{type} {key} already exists")
            if must_exist and not exists:
                raise StoreError(f"no {type} {key}")

        def apply(package):
            section = _find_item(package, section_type, key)
            if section is None:
                section = uci.Section(section_type.type, None, {section_type.key: key})
                package.sections.append(section)
            for name, text in converted.items():
                _put_option(section, name, text)
        after = self._modify(apply, check)
        return _entries(after, section_type)[key]

    def _reset(self, owners: Iterable[Owner]) -> Set[Key]:
        specs = self.schema.params(owners)
        types = self.schema.section_types(owners)
        before = []

        def reset(package):
            before.append(copy.deepcopy(package))
            for spec in specs:
                section = package.section(spec.section)
                if section is not None:
                    section.options.pop(spec.name, None)
            for section_type in types:
                _drop_items(package, section_type)
        after = self._modify(reset)
        return _diff(self.schema, before[0], after)

    def _read(self) -> Optional[uci.Package]:
        """The file as read now: None if neither it nor a good backup exists; a damaged
        or missing file is read from a good backup (``damage`` then says why)."""
        try:
            data = self._fs.read_shared(self.path)
        except OSError as e:
            raise StoreError(f"{self.path}: cannot read: {e.strerror or e}") from e
        if data is None and not self._backup().good:
            self.damage = []
            return None                 # a fresh router: every default
        package, self.damage = self._choose(data)
        return package

    def _choose(self, data: Optional[bytes]):
        """(package, damage): the file if good, else the backup if good, else what the
        file parses to (defaults for a missing one); StoreError if it does not parse
        and there is no good backup (never overwrite what we cannot read)."""
        backup = self._backup()
        verdict = integrity.assess(data, self.schema, backup.package if backup.good else None)
        if verdict.good:
            return verdict.package, []
        damage = [] if data is None else list(verdict.problems)
        if backup.good:
            return backup.package, damage + [f"read from the backup {self.backup_path}"]
        if data is None:
            return self.schema.defaults_package(), []
        if verdict.package is None:
            raise StoreError(f"{self.path}: {'; '.join(verdict.problems)}")
        return verdict.package, damage

    def _backup(self) -> integrity.Verdict:
        """The backup, assessed on its own."""
        try:
            return integrity.assess(self._fs.read(self.backup_path), self.schema)
        except OSError as e:
            return integrity.Verdict(None, [f"cannot be read ({e.strerror or e})"])

    def _modify(self, apply: Callable[[uci.Package], Optional[bool]],
                check: Optional[Callable[[uci.Package], None]] = None) -> uci.Package:
        """Lock, re-read, check, apply, write, unlock.

        ``apply`` returns False when it changed nothing, to skip the write.
        Our in-memory view becomes the file as written, and the change is
        also applied to what reload() compares against.
        """
        try:
            with self._fs.locked(self.path) as file:
                current = file.read()
                package, _ = self._choose(current)
                if check is not None:
                    check(package)
                if apply(package) is False:
                    self._package = package
                    return package
                for spec in self.schema.params():
                    if not spec.writable:  # keep e.g. Version in step with us
                        _put(package, spec.section, spec.name, spec.to_text(spec.default))
                try:
                    text = uci.serialize(package)
                except uci.UciError as e:
                    raise StoreError(f"{self.path}: cannot write: {e}") from e
                self._write(file, current, text.encode("utf-8", "surrogateescape"))
        except OSError as e:
            raise StoreError(f"{self.path}: cannot write: {e.strerror or e}") from e
        self._package = package
        self.damage = []
        apply(self._reported)
        if self.on_contents is not None:
            self.on_contents(package)
        return package

    def _write(self, file, current: Optional[bytes], data: bytes) -> None:
        """Backup of the file as it is, the file, backup of the new file: each step
        that fails undoes the ones before (the OSError goes on to the caller).  Our own
        new file always becomes the backup (it may drop an option on purpose); a file
        someone else wrote only if it lost nothing the backup holds."""
        fs = self._fs
        if data == current:
            return
        backup = self._backup()
        if current is not None and current != fs.read(self.backup_path) and integrity.assess(
                current, self.schema, backup.package if backup.good else None).good:
            fs.write_atomic(self.backup_path, current)
        file.overwrite(data, current)
        try:
            fs.write_atomic(self.backup_path, data)
        except OSError:
            try:
                file.discard(current, data)
                if current is not None and fs.read(self.backup_path) == data:
                    fs.write_atomic(self.backup_path, current)   # renamed, then failed
            except OSError:
                pass                    # the file is good: it is what a start keeps
            raise


def _raw(package: uci.Package, section: str, name: str) -> Optional[uci.Value]:
    found = package.section(section)
    return None if found is None else found.options.get(name)


def _checked(spec: ParamSpec, raw: uci.Value) -> Any:
    if not isinstance(raw, str):
        raise StoreError(f"{spec.label}: must be a single value, not a list")
    return spec.convert(raw)


def _value(package: uci.Package, spec: ParamSpec) -> Any:
    """The typed value; a read-only one is what this software says it is."""
    raw = _raw(package, spec.section, spec.name)
    if raw is None or not spec.writable:
        return spec.default
    try:
        return _checked(spec, raw)
    except StoreError:
        return spec.default


def _put_option(section: uci.Section, name: str, text: str) -> None:
    """Set an option; '' removes it, since that is what libuci makes of it."""
    if text:
        section.options[name] = text
    else:
        section.options.pop(name, None)


def _put(package: uci.Package, section_name: str, name: str, text: str) -> None:
    section = package.section(section_name)
    if section is None:
        section = uci.Section(section_name, section_name)
        package.sections.append(section)
    _put_option(section, name, text)


def _item_key(section_type: SectionType, section: uci.Section,
              problems: Optional[List[str]] = None) -> Optional[str]:
    raw = section.options.get(section_type.key)
    try:
        if not isinstance(raw, str):
            raise StoreError(f"{section_type.type}.{section_type.key}: missing")
        return section_type.convert_key(raw)
    except StoreError as e:
        if problems is not None:
            problems.append(f"{e}; section ignored")
        return None


def _find_item(package, section_type, key) -> Optional[uci.Section]:
    for section in package.sections_of(section_type.type):
        if _item_key(section_type, section) == key:
            return section
    return None


def _drop_items(package, section_type, key=None) -> bool:
    """Remove the items with ``key`` (all items if None); whether any went."""
    kept = [s for s in package.sections
            if s.type != section_type.type
            or (key is not None and _item_key(section_type, s) != key)]
    removed = len(kept) != len(package.sections)
    package.sections[:] = kept
    return removed


def _entries(package: uci.Package, section_type: SectionType,
             problems: Optional[List[str]] = None) -> Dict[str, Dict[str, Any]]:
    """key -> typed values of each item; the first of two with one key wins."""
    entries: Dict[str, Dict[str, Any]] = {}
    for section in package.sections_of(section_type.type):
        key = _item_key(section_type, section, problems)
        if key is None:
            continue
        if key in entries:
            if problems is not None:
                problems.append(f"{section_type.type} {key}: duplicate section ignored")
            continue
        values: Dict[str, Any] = {section_type.key: key}
        for spec in section_type.params:
            raw = section.options.get(spec.name)
            values[spec.name] = spec.default
            if raw is not None:
                try:
                    values[spec.name] = _checked(spec, raw)
                except StoreError as e:
                    if problems is not None:
                        problems.append(f"{section_type.type} {key}: {e}; using the default")
        entries[key] = values
    return entries


def _diff(schema: Schema, old: uci.Package, new: uci.Package) -> Set[Key]:
    changed = {spec.key for spec in schema.params()
               if _value(old, spec) != _value(new, spec)}
    for section_type in schema.section_types():
        before, after = _entries(old, section_type), _entries(new, section_type)
        changed.update((section_type.type, key) for key in before.keys() | after.keys()
                       if before.get(key) != after.get(key))
    return changed
