"""What the mirror holds, and its two encodings: pure functions, no I/O.

Which sections are mirrored (``extract``), how a mirror goes back into a UCI
package (``merge``), what a valid mirror may hold (``check_sections``), and
the checksummed forms a DirectoryMirror (``encode_file``) and a FwEnvMirror
(``encode_env``) keep.  Part of ``cubegw.store.mirror``, which re-exports it.
"""

import base64
import copy
import json
import zlib
from typing import List, Sequence, Tuple

from cubegw.store import uci
from cubegw.store.schema import DEFAULT_SCHEMA, MGT, REGISTRATION, Schema, StoreError

#: The owner classes the mirror keeps (never reset by any factory reset).
PERSISTENT_OWNERS = (MGT, REGISTRATION)

_FILE_MAGIC = "# cubegw-mirror 1 crc32 "
_FILE_HEAD = ("# cubegw: copy of /etc/config/cubegw's mgt and registration sections,\n"
              "# restored after a factory reset.  Written by cubegw; do not edit.\n")
_ENV_VERSION = "1"


class MirrorError(StoreError):
    """A mirror that cannot be read or written, with a one-line reason."""


class MirrorUnavailable(MirrorError):
    """The mirror's location is not there (not mounted, no fw_printenv)."""


# -- the persistent sections --------------------------------------------------------


def persistent_section_names(schema: Schema = DEFAULT_SCHEMA) -> List[str]:
    """The sections holding X_CT-COM_Mgt and the registration, in schema order."""
    names: List[str] = []
    for spec in schema.params(PERSISTENT_OWNERS):
        if spec.section not in names:
            names.append(spec.section)
    return names


def extract(package: uci.Package, schema: Schema = DEFAULT_SCHEMA) -> List[uci.Section]:
    """Copies of the persistent sections of ``package`` (those it has)."""
    out = []
    for name in persistent_section_names(schema):
        section = package.section(name)
        if section is not None:
            out.append(copy.deepcopy(section))
    return out


def merge(package: uci.Package, sections: Sequence[uci.Section]) -> Tuple[uci.Package, bool]:
    """A copy of ``package`` with the mirror's ``sections`` put in; whether it changed.

    The mirror wins for every option it has; an option only ``package`` has
    (say one a newer firmware added) stays; every other section stays as it is.
    """
    merged = copy.deepcopy(package)
    changed = False
    for mirrored in sections:
        target = merged.section(mirrored.name)
        if target is None:
            merged.sections.append(copy.deepcopy(mirrored))
            changed = True
            continue
        for name, value in mirrored.options.items():
            if target.options.get(name) != value:
                target.options[name] = copy.deepcopy(value)
                changed = True
    return merged, changed


def check_sections(sections: Sequence[uci.Section], schema: Schema = DEFAULT_SCHEMA,
                   where: str = "mirror") -> List[uci.Section]:
    """Refuse a mirror that is not what ``extract`` makes: only persistent named
    sections, single values, and every writable known value valid."""
    allowed = persistent_section_names(schema)
    specs = {spec.key: spec for spec in schema.params(PERSISTENT_OWNERS)}
    seen = set()
    for section in sections:
        if section.name not in allowed or section.name in seen:
            raise MirrorError(f"{where}: unexpected section {section.name or section.type!r}")
        seen.add(section.name)
        for name, value in section.options.items():
            if not isinstance(value, str):
                raise MirrorError(f"{where}: {section.name}.{name}: not a single value")
            spec = specs.get((section.name, name))
            if spec is not None and spec.writable:
                try:
                    spec.convert(value)
                except StoreError as e:
                    raise MirrorError(f"{where}: {spec.label}: {e}") from None
    if not seen:
        raise MirrorError(f"{where}: no section")
    return list(sections)


# -- the two encodings ----------------------------------------------------------------


def encode_file(sections: Sequence[uci.Section]) -> bytes:
    """A DirectoryMirror's file: a header, a checksum line and the UCI sections."""
    body = uci.serialize(uci.Package(list(sections))).encode("utf-8", "surrogateescape")
    return (_FILE_HEAD + f"{_FILE_MAGIC}{zlib.crc32(body):08x}\n").encode() + body


def decode_file(data: bytes, schema: Schema = DEFAULT_SCHEMA,
                where: str = "mirror") -> List[uci.Section]:
    """The sections of ``encode_file``'s output; MirrorError if it is not whole."""
    head = _FILE_HEAD.encode()
    if not data.startswith(head):
        raise MirrorError(f"{where}: not a cubegw mirror (bad header)")
    line, sep, body = data[len(head):].partition(b"\n")
    text = line.decode("ascii", "replace")
    if not sep or not text.startswith(_FILE_MAGIC):
        raise MirrorError(f"{where}: not a cubegw mirror (no checksum line)")
    if text[len(_FILE_MAGIC):] != f"{zlib.crc32(body):08x}":
        raise MirrorError(f"{where}: checksum mismatch (truncated or corrupt)")
    try:
        package = uci.parse(body.decode("utf-8", "surrogateescape"))
    except uci.UciError as e:
        raise MirrorError(f"{where}: {e}") from None
    return check_sections(package.sections, schema, where)


def encode_env(sections: Sequence[uci.Section]) -> str:
    """A FwEnvMirror's value: ``1.<base64url of compact JSON>.<crc32>``.

    Only ``[A-Za-z0-9_.-]``: nothing a bootloader environment or a shell
    could misread.
    """
    doc = [[s.type, s.name, s.options] for s in sections]
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    b64 = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return f"{_ENV_VERSION}.{b64}.{zlib.crc32(raw):08x}"


def decode_env(text: str, schema: Schema = DEFAULT_SCHEMA,
               where: str = "mirror") -> List[uci.Section]:
    """The sections of ``encode_env``'s output; MirrorError if it is not whole."""
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != _ENV_VERSION:
        raise MirrorError(f"{where}: not a cubegw mirror value")
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
    except (ValueError, TypeError):
        raise MirrorError(f"{where}: bad encoding") from None
    if f"{zlib.crc32(raw):08x}" != parts[2]:
        raise MirrorError(f"{where}: checksum mismatch (truncated or corrupt)")
    try:
        doc = json.loads(raw.decode("ascii"))
        sections = [uci.Section(t, n, dict(o)) for t, n, o in doc]
        for s in sections:
            if not isinstance(s.type, str) or not isinstance(s.name, str):
                raise TypeError
    except (ValueError, TypeError):
        raise MirrorError(f"{where}: bad contents") from None
    return check_sections(sections, schema, where)
