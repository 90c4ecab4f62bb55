"""Read and write OpenWrt UCI config files exactly as libuci does.

The parser is a close port of libuci's ``file.c`` line reader, so that a file
means the same thing to us as to ``uci`` and to the shell scripts that read it,
quirks included (``;`` joins commands, ``#`` starts a comment even inside an
unquoted word, quoted values may span lines, a backslash before a newline joins
lines, ``option x ''`` sets nothing).  The writer emits the layout of
``uci commit``.  Pure: text in, model out, and back; no I/O.
"""

from __future__ import annotations

import re
from typing import Dict, Iterator, List, Optional, Union

from cubegw.record import MISSING, MutableRecord, field

__all__ = ["UciError", "Section", "Package", "Value", "parse", "serialize",
           "check_new_values", "is_name", "check_value"]

Value = Union[str, List[str]]

#: Section and option names: what libuci accepts (and shell code can use).
_NAME = re.compile(r"[A-Za-z0-9_]+")
#: Package names also allow a dash.
_PACKAGE = re.compile(r"[A-Za-z0-9_-]+")
#: Section types: libuci accepts any printable ASCII but the space.
_TYPE = re.compile(r"[!-~]+")
#: Characters that would be read as syntax if a type were written unquoted.
_TYPE_NEEDS_QUOTES = re.compile(r"['\"\\#;]")
#: What ``uci set`` refuses in a value: control characters but TAB.
_BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f]")

#: C ``isspace`` in the C locale; str.isspace() would also take Unicode spaces.
_SPACE = " \t\n\v\f\r"
#: libuci works on NUL-terminated C strings; we use the same marker.
_NUL = "\0"


class UciError(ValueError):
    """A UCI text that cannot be read, or a model that cannot be written.

    ``line`` is the 1-based line where parsing stopped, None for writer errors.
    """

    def __init__(self, reason: str, line: Optional[int] = None):
        self.reason = reason
        self.line = line
        super().__init__(reason if line is None else f"line {line}: {reason}")


class Section(MutableRecord):
    """One ``config`` block; ``name`` is None for an anonymous section."""

    type: str
    name: Optional[str] = None
    options: Dict[str, Value] = field(default_factory=dict)

    def __init__(self, type: str, name: Optional[str] = None, options=MISSING):
        # spelt out: a parse makes one per section, 1 us faster than Record's
        self.type, self.name = type, name
        self.options = {} if options is MISSING else options

    def get(self, name: str, default: str = "") -> str:
        """The option's value; the first item of a list option; ``default`` if absent."""
        value = self.options.get(name, default)
        if isinstance(value, list):
            return value[0] if value else default
        return value


class Package(MutableRecord):
    """A whole UCI file: its sections in file order.

    ``name`` is the argument of a ``package`` line, if the file has one.
    """

    sections: List[Section] = field(default_factory=list)
    name: Optional[str] = None

    def __init__(self, sections=MISSING, name: Optional[str] = None):
        self.sections, self.name = [] if sections is MISSING else sections, name

    def section(self, name: str) -> Optional[Section]:
        """The section called ``name``, or None."""
        for section in self.sections:
            if section.name == name:
                return section
        return None

    def sections_of(self, type: str) -> List[Section]:
        """All sections of one type, in file order."""
        return [s for s in self.sections if s.type == type]

    def copy(self) -> "Package":
        """A copy to change freely (new sections, option dicts, lists): far cheaper than
        a parse or ``deepcopy``; no Python call per section but for the rare list."""
        return Package([Section(s.type, s.name, _own_options(s.options)
                                if list in map(type, s.options.values()) else s.options.copy())
                        for s in self.sections], self.name)


def _own_options(options: dict) -> dict:
    """A copy of a section's options with its own lists (the values are strings)."""
    if list not in map(type, options.values()):     # in C: most sections have no list
        return options.copy()
    return {name: list(value) if isinstance(value, list) else value
            for name, value in options.items()}


def is_name(text: str) -> bool:
    """Whether ``text`` may be a section or option name."""
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


def check_value(value: str, where: str = "value") -> None:
    """Refuse what we must not put into a value ourselves (as ``uci set`` does).

    A newline would make a multi-line value, which shell code sourcing the
    config mishandles; other control characters are refused the same way.
    Values already in a file (someone else's) are written back as they are.
    """
    if not isinstance(value, str):
        raise UciError(f"{where}: must be a string, got {value!r}")
    bad = _BAD_VALUE_CHAR.search(value)
    if bad is None:
        return
    if bad.group() in "\r\n":
        raise UciError(f"{where}: newlines are not allowed in a UCI value")
    raise UciError(
        f"{where}: control character U+{ord(bad.group()):04X} is not allowed in a UCI value")


def check_new_values(old: Optional[Package], new: Package) -> None:
    """Refuse (``UciError``) a value of ``new`` that ``check_value`` refuses unless ``old``
    (the package on disk, or None) holds that same value: every value we write is checked
    (an IPv6 scope ID with a newline never reaches ``network``), while a multi-line value
    someone else wrote is written back as it was."""
    old_sections = old.sections if old is not None else ()
    unchanged = {(s.type, s.name): s.options for s in old_sections}
    kept = None
    for section in new.sections:
        if unchanged.get((section.type, section.name)) == section.options:
            continue                    # every value of it is in old: nothing new here
        if kept is None:
            kept = set()
            for value in (v for s in old_sections for v in s.options.values()):
                kept.update(value if isinstance(value, list) else [value])
        for name, value in section.options.items():
            for item in (value if isinstance(value, list) else [value]):
                if item not in kept:
                    check_value(item, f"{section.name or section.type}.{name}")


def parse(text: str) -> Package:
    """Read UCI text into a Package; raise UciError with the line number."""
    return _Parser(text).run()


def serialize(package: Package, memo: Optional[dict] = None) -> str:
    """Write a Package the way ``uci commit`` does.

    An option whose value is the empty string (or an empty list) is left out: libuci
    cannot hold one and reads ``option x ''`` as "not set".  A value is written verbatim
    in single quotes, as libuci does, so a multi-line value someone else wrote survives
    our writes; only NUL cannot be written.  What we set ourselves is checked before
    (``check_value``, the store's schema).

    ``memo`` (a dict the caller keeps, one per file) remembers each section's text by its
    place, type and name with the options it was made from: a file written again with one
    option changed formats only that section; an unchanged one costs a dict comparison.
    """
    out = []
    if package.name is not None:
        if not isinstance(package.name, str) or not _PACKAGE.fullmatch(package.name):
            raise UciError(f"invalid package name {package.name!r}")
        out.append(f"package {package.name}\n")
    names = set()
    for place, section in enumerate(package.sections):
        out.append(_section_text(section) if memo is None
                   else _remembered_text(section, place, memo))
        if section.name is not None:
            if section.name in names:
                raise UciError(f"two sections are named {section.name!r}")
            names.add(section.name)
    out.append("\n")
    return "".join(out)


def _remembered_text(section: Section, place: int, memo: dict) -> str:
    options = section.options
    try:
        key = (place, section.type, section.name)
        known = memo.get(key)
    except TypeError:               # a type or name that is not text: _section_text says why
        return _section_text(section)
    # equal values (strings, lists of strings) in the same order: the same text
    if known is not None and known[0] == options and known[1] == tuple(options):
        text = known[2]
    else:
        text = _section_text(section)
        if len(memo) >= 256:
            memo.clear()
        memo[key] = (_own_options(options), tuple(options), text)
    return text


def _writable(value: Value, where: str) -> None:
    if not isinstance(value, str):
        raise UciError(f"{where}: must be a string, got {value!r}")
    if _NUL in value:
        raise UciError(f"{where}: a NUL character cannot be written in a UCI value")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _section_text(section: Section) -> str:
    type_ = section.type
    if not isinstance(type_, str) or not _TYPE.fullmatch(type_):
        raise UciError(f"invalid section type {type_!r}")
    head = "\nconfig " + (_quote(type_) if _TYPE_NEEDS_QUOTES.search(type_) else type_)
    if section.name is not None:
        if not is_name(section.name):
            raise UciError(f"invalid section name {section.name!r}")
        head += " " + _quote(section.name)
    lines = [head + "\n"]
    label = section.name if section.name is not None else f"@{type_}"
    for option, value in section.options.items():
        if not is_name(option):
            raise UciError(f"section {label}: invalid option name {option!r}")
        where = f"{label}.{option}"
        if isinstance(value, str):
            _writable(value, where)
            if value:
                lines.append(f"\toption {option} {_quote(value)}\n")
        elif isinstance(value, (list, tuple)):
            for item in value:
                _writable(item, where)
                lines.append(f"\tlist {option} {_quote(item)}\n")
        else:
            raise UciError(f"{where}: must be a string or a list of strings, got {value!r}")
    return "".join(lines)


def _lines(text: str) -> Iterator[str]:
    """Lines as fgets() returns them: split on LF only, LF kept."""
    parts = text.split("\n")
    yield from (part + "\n" for part in parts[:-1])
    if parts[-1]:
        yield parts[-1]


class _Parser:
    """libuci's parse context: a line buffer edited in place, as in file.c.

    The in-place editing is kept on purpose: it is what makes, for example,
    ``option a b;option c d`` drop the second command while
    ``option a 'b'; option c d`` keeps it.  Differences from libuci: a NUL in
    the text is refused, and the line number also counts a last line that has
    no newline.
    """

    def __init__(self, text: str):
        if _NUL in text:
            raise UciError("NUL character in text", text.count("\n", 0, text.index(_NUL)) + 1)
        self._lines = _lines(text)
        self.buf: List[str] = []
        self.pos = 0
        self.line = 0
        self.eof = False
        self.package = Package()
        self.section: Optional[Section] = None
        self.word_length = 0

    # -- the buffer ---------------------------------------------------------

    def error(self, reason: str) -> UciError:
        return UciError(reason, max(self.line, 1))

    def getln(self, offset: int) -> None:
        """Read the next line into the buffer at ``offset`` (uci_getln)."""
        del self.buf[offset:]
        line = next(self._lines, None)
        if line is None:
            self.eof = True
            return
        self.buf.extend(line)
        self.line += 1

    def char(self, i: int) -> str:
        return self.buf[i] if i < len(self.buf) else _NUL

    def cur(self) -> str:
        return self.char(self.pos)

    def put(self, i: int, c: str) -> None:
        if i < len(self.buf):
            self.buf[i] = c

    def string(self, i: int) -> str:
        """The C string that starts at ``i``."""
        end = i
        while end < len(self.buf) and self.buf[end] != _NUL:
            end += 1
        return "".join(self.buf[i:end])

    def addc(self, target: int) -> int:
        self.buf[target] = self.buf[self.pos]
        self.pos += 1
        return target + 1

    def skip_whitespace(self) -> None:
        while self.cur() != _NUL and self.cur() in _SPACE:
            self.pos += 1

    # -- words ---------------------------------------------------------------

    def backslash(self) -> bool:
        """Skip a backslash; False if it joined the next line instead."""
        self.pos += 1
        c = self.cur()
        if c == _NUL or c == "\n" or (
                c == "\r" and self.char(self.pos + 1) == "\n"
                and self.char(self.pos + 2) == _NUL):
            self.getln(self.pos)
            return False
        return True

    def single_quoted(self, target: int) -> int:
        self.pos += 1
        while True:
            c = self.cur()
            if c == "'":
                self.pos += 1
                return target
            if c == _NUL:
                self.getln(self.pos)
                if self.cur() == _NUL:
                    raise self.error("unterminated '")
                continue
            target = self.addc(target)

    def double_quoted(self, target: int) -> int:
        self.pos += 1
        while True:
            c = self.cur()
            if c == '"':
                self.pos += 1
                return target
            if c == _NUL:
                self.getln(self.pos)
                if self.cur() == _NUL:
                    raise self.error('unterminated "')
                continue
            if c == "\\" and not self.backslash():
                continue
            target = self.addc(target)

    def word(self, target: int) -> None:
        """parse_str: one argument, its pieces concatenated in place."""
        advance = True
        while True:
            c = self.cur()
            if c == "'":
                target = self.single_quoted(target)
            elif c == '"':
                target = self.double_quoted(target)
            elif c == "#":
                self.put(self.pos, _NUL)
                break
            elif c == _NUL:
                break
            elif c == ";":
                advance = False
                break
            elif c != "\\" or self.backslash():
                target = self.addc(target)
            c = self.cur()
            if c == _NUL or c in _SPACE:
                break
        if self.cur() != _NUL and advance:
            self.pos += 1
        self.put(target, _NUL)

    def arg(self, required: bool = False, pattern: Optional[re.Pattern] = None) -> str:
        """next_arg: the next argument, '' if none."""
        self.skip_whitespace()
        start = self.pos
        if self.cur() == ";":
            self.put(self.pos, _NUL)
            self.pos += 1
        else:
            self.word(start)
        text = self.string(start)
        if not text:
            if required:
                raise self.error("insufficient arguments")
        elif pattern is not None and not pattern.fullmatch(text):
            raise self.error(f"invalid character in name field: {text!r}")
        return text

    def end_of_command(self) -> None:
        self.skip_whitespace()
        if self.arg():
            raise self.error("too many arguments")

    def command_word(self) -> Optional[str]:
        """strtok(" \\t") at pos: the command word, NUL-terminated in place."""
        text = self.string(self.pos)
        start = len(text) - len(text.lstrip(" \t"))
        if start == len(text):
            return None
        end = start
        while end < len(text) and text[end] not in " \t":
            end += 1
        self.put(self.pos + end, _NUL)
        self.word_length = end
        return text[start:end]

    def step_past_word(self) -> None:
        """Move to the command's arguments; there must be room for some."""
        step = self.word_length + 1
        if self.pos + step > len(self.buf):
            raise self.error("command without arguments")
        self.pos += step

    # -- commands --------------------------------------------------------------

    def run(self) -> Package:
        while not self.eof:
            self.pos = 0
            self.getln(0)
            if self.cur() != _NUL:
                self.line_commands()
        return self.package

    def line_commands(self) -> None:
        self.skip_whitespace()
        while True:
            word = self.command_word()
            if word is None or word[0] == "#":
                return
            if word in ("p", "package"):
                self.do_package()
            elif word in ("c", "config"):
                self.do_config()
            elif word in ("o", "option", "l", "list"):
                self.do_option(is_list=word[0] == "l")
            else:
                raise self.error(f"invalid command {word!r}")

    def do_package(self) -> None:
        self.step_past_word()
        name = self.arg(required=True, pattern=_PACKAGE)
        self.end_of_command()
        if self.package.name is None:
            self.package.name = name

    def do_config(self) -> None:
        self.step_past_word()
        type_ = self.arg(required=True)
        if not _TYPE.fullmatch(type_):
            raise self.error(f"invalid character in type field: {type_!r}")
        name = self.arg(pattern=_NAME)
        self.end_of_command()
        if not name:
            self.section = Section(type_)
            self.package.sections.append(self.section)
            return
        section = self.package.section(name)
        if section is None:
            section = Section(type_, name)
            self.package.sections.append(section)
        elif section.type != type_:
            raise self.error(
                f"section {name!r} of type {type_!r} overwrites one of type {section.type!r}")
        self.section = section

    def do_option(self, is_list: bool) -> None:
        if self.section is None:
            raise self.error("option/list command found before the first section")
        self.step_past_word()
        name = self.arg(required=True, pattern=_NAME)
        value = self.arg()
        self.end_of_command()
        options = self.section.options
        old = options.get(name)
        if is_list:
            if isinstance(old, list):
                old.append(value)
                return
            options.pop(name, None)
            options[name] = [old, value] if old is not None else [value]
        elif value and old != value:
            # libuci frees the old option and appends a new one: it moves last.
            options.pop(name, None)
            options[name] = value
