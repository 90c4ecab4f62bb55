"""Rebuilding a damaged store file: ``recover_file``'s repair, loaded only on damage.

``cubegw.store.recovery`` checks the file at every start; only when it is damaged or
missing does it import this module to write it again (its module docstring says from
what, in which order).  A running gateway whose store was sound never loads it.
"""

import time

from cubegw.store import integrity, uci
from cubegw.store.integrity import RECOVERED_OWNERS
from cubegw.store.schema import StoreError

__all__ = ["rebuild"]


def rebuild(fs, file, current, verdict, backup, backup_path, schema, now, mirrored, event):
    """Rewrite the damaged or missing file ``file`` (held locked) from the backup, else
    from what of it still parses, the damaged backup's values, the mirror and the
    defaults; ``event(code, message)`` says each step (``recover_file``'s)."""
    path = file.path
    aside = _aside_name(fs, path, now()) if current else None
    if current is None:
        event("missing", f"{path} is missing")
    else:
        event("corrupt", f"{path} is damaged ({'; '.join(verdict.problems)}); "
                         f"a copy is kept as {aside}")
    if backup.good:
        package = backup.package
        event("restored", f"restored {path} from {backup_path}")
    else:
        package = integrity.salvage(current)
        for section in schema.defaults_package().sections:
            _fill(package, section)
        restored = _restore_from_backup(fs, backup_path, backup, schema, package, event)
        if restored:
            event("restored", f"restored {', '.join(restored)} from {backup_path}")
        if mirrored:
            from cubegw.store.mirror_codec import merge
            package, _ = merge(package, mirrored)
            event("mirror-restored", f"restored {', '.join(s.name for s in mirrored)} "
                                     f"from the mirror")
    data = uci.serialize(package).encode("utf-8", "surrogateescape")
    try:
        if current:
            fs.write_atomic(aside, current)
        file.overwrite(data, current)
    except OSError as e:
        event("not-repaired", f"{path} left as it is: {e.strerror or e}; "
                              f"the store reads {backup_path} until a write succeeds")


def _fill(package, defaults_section):
    """Add the defaults' section and options that ``package`` lacks."""
    section = package.section(defaults_section.name)
    if section is None:
        package.sections.append(uci.Section(defaults_section.type, defaults_section.name,
                                            dict(defaults_section.options)))
        return
    for name, value in defaults_section.options.items():
        section.options.setdefault(name, value)


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


def _restore_from_backup(fs, backup_path, verdict, schema, package, event):
    """Put the mgt and registration values of a damaged backup into ``package``."""
    backup = verdict.package
    if backup is None:
        if verdict.problems == ["missing"]:
            event("no-backup", f"no backup {backup_path}: defaults only")
        else:
            event("backup-unusable", f"backup {backup_path}: {'; '.join(verdict.problems)}: "
                                     f"defaults only")
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
