"""What a complete store file looks like, and what is left of a damaged one.

A file cut at a line boundary, emptied, or stripped of its ``mgt`` section may still
parse; taken as it is, its lost values would read as defaults and, written back, be lost
for good.  So a file is *good* only if it parses, holds no binary bytes (a zero-filled
block is what failing NAND gives), ends with a newline (``uci commit`` always writes
one), and lacks none of the X_CT-COM_Mgt and registration sections and options that the
last complete copy (the backup, else the mirror) holds: those are never reset, so only
damage takes them away.  (A hand-written file that never had an option is not damaged:
the option reads as its default.)  Pure: bytes in, verdict out.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from cubegw.record import MutableRecord, field
from cubegw.store import uci
from cubegw.store.schema import MGT, REGISTRATION, Schema

__all__ = ["Verdict", "assess", "required", "salvage", "RECOVERED_OWNERS"]

#: Owners whose values a damaged file must never lose (never reset by the protocol).
RECOVERED_OWNERS = frozenset({MGT, REGISTRATION})

_BINARY = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Salvage gives up after this many parses (each drops the line that failed and after).
_SALVAGE_TRIES = 50


class Verdict(MutableRecord):
    """``package``: the file parsed (None if missing or unparsable); ``problems``: why it
    is not a complete file (empty: it is)."""

    package: Optional[uci.Package]
    problems: List[str] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return not self.problems


def required(schema: Schema, reference: uci.Package) -> List[Tuple[str, Optional[str]]]:
    """(section, None) and (section, option) of the never-reset parameters that
    ``reference`` holds: what a good file must hold too."""
    keys: List[Tuple[str, Optional[str]]] = []
    for spec in schema.params(RECOVERED_OWNERS):
        found = reference.section(spec.section)
        if found is None:
            continue
        if (spec.section, None) not in keys:
            keys.append((spec.section, None))
        if spec.name in found.options:
            keys.append((spec.section, spec.name))
    return keys


def assess(data: Optional[bytes], schema: Schema,
           reference: Optional[uci.Package] = None) -> Verdict:
    """Whether ``data`` (None: no file) is a good store file, and what it parses to;
    ``reference``: the last complete copy, whose never-reset keys ``data`` must hold."""
    if data is None:
        return Verdict(None, ["missing"])
    problems = []
    if not data.strip():
        return Verdict(uci.Package(), ["empty"])
    binary = _BINARY.search(data)
    if binary:
        problems.append(f"binary data at byte {binary.start()}")
    if not data.endswith(b"\n"):
        problems.append("truncated: no newline at the end")
    try:
        package = uci.parse(data.decode("utf-8", "surrogateescape"))
    except uci.UciError as e:
        return Verdict(None, problems + [f"does not parse (line {e.line}: {e.reason})"])
    missing = []
    for section, option in required(schema, reference) if reference is not None else []:
        found = package.section(section)
        if found is None:
            if option is None:
                missing.append(f"section {section}")
        elif option is not None and option not in found.options:
            missing.append(f"{section}.{option}")
    if missing:
        problems.append("lost " + ", ".join(missing))
    return Verdict(package, problems)


def salvage(data: Optional[bytes]) -> uci.Package:
    """The longest run of whole lines from the start of ``data`` that parses, without
    binary bytes; an empty package if none does."""
    if not data:
        return uci.Package()
    binary = _BINARY.search(data)
    text = data[:binary.start()] if binary else data
    lines = text.decode("utf-8", "surrogateescape").split("\n")
    if not text.endswith(b"\n"):
        lines = lines[:-1]                      # a cut line is not a line
    end = len(lines)
    for _ in range(_SALVAGE_TRIES):
        if end <= 0:
            break
        try:
            return uci.parse("\n".join(lines[:end]) + "\n")
        except uci.UciError as e:             # keep the lines before the one that failed
            end = min(end - 1, (e.line or end) - 1)
    return uci.Package()
