"""What the store holds: parameter specs, their owner classes, the reset table.

A spec converts and validates one value; a Schema is the registry of specs
that a Store consults, so a later module adds its parameters (or a repeatable
section type such as one ``access`` section per LAN device) by registering
them, with no edit to the store.  ``DEFAULT_SCHEMA`` holds the built-ins.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

from cubegw.record import Record, field
from cubegw.store import uci

__all__ = [
    "StoreError", "Owner", "MGT", "REGISTRATION", "ITMS", "APP", "SHARED",
    "SHARED_ACCESS", "ITMS_RESET", "APP_RESET", "Kind", "UnsignedInt",
    "String", "Choice", "Bool", "ParamSpec", "SectionType", "Schema",
    "builtin_schema", "DEFAULT_SCHEMA", "MGT_SECTION", "MGT_PATH",
]


class StoreError(ValueError):
    """A value, a file or a write the store refuses, with a one-line reason."""


class Owner(enum.Enum):
    """Who owns a parameter, which decides what each factory reset clears."""

    MGT = "X_CT-COM_Mgt, never reset"
    REGISTRATION = "stored operation platform, never reset"
    ITMS = "ITMS only"
    APP = "APP only"
    SHARED = "shared by ITMS and APP"
    SHARED_ACCESS = "shared, LAN device access control"


MGT = Owner.MGT
REGISTRATION = Owner.REGISTRATION
ITMS = Owner.ITMS
APP = Owner.APP
SHARED = Owner.SHARED
SHARED_ACCESS = Owner.SHARED_ACCESS

#: protocol.md section 10: what each factory reset clears.
ITMS_RESET = frozenset({ITMS, SHARED, SHARED_ACCESS})
APP_RESET = frozenset({APP, SHARED_ACCESS})

MGT_SECTION = "mgt"
MGT_PATH = "InternetGatewayDevice.X_CT-COM_Mgt."

_DIGITS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WHITESPACE = re.compile(r"\s")            # what str.isspace() calls whitespace


class Kind:
    """A value type: ``convert`` checks a value given as str or int and returns
    the Python value (raising StoreError with the reason alone); ``to_text``
    gives the text stored in the UCI file."""

    def convert(self, value: Any) -> Any:
        raise NotImplementedError

    def to_text(self, value: Any) -> str:
        return str(value)


class UnsignedInt(Record, Kind):
    """TR-069 unsignedInt, optionally narrowed to [minimum, maximum]."""

    minimum: int = 0
    maximum: int = 2 ** 32 - 1

    def convert(self, value):
        if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
            number = int(value.strip())
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise StoreError(f"must be an unsigned integer, got {value!r}")
        if not self.minimum <= number <= self.maximum:
            raise StoreError(
                f"must be between {self.minimum} and {self.maximum}, got {number}")
        return number


class String(Record, Kind):
    """A one-line string (an int is taken as its decimal text)."""

    max_length: Optional[int] = None
    non_empty: bool = False
    no_whitespace: bool = False

    def convert(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise StoreError(f"must be a string, got {value!r}")
        if _CONTROL.search(value):
            raise StoreError(f"must not contain control characters, got {value!r}")
        if self.max_length is not None and len(value) > self.max_length:
            raise StoreError(
                f"must be at most {self.max_length} characters, got {len(value)}")
        if self.non_empty and not value:
            raise StoreError("must not be empty")
        if self.no_whitespace and _WHITESPACE.search(value):
            raise StoreError(f"must not contain whitespace, got {value!r}")
        return value


class Choice(Record, Kind):
    """One of a fixed set of strings."""

    choices: Tuple[str, ...]

    def convert(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value not in self.choices:
            raise StoreError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        return value


class Bool(Kind):
    """A UCI boolean: stored as '1'/'0', read in any spelling uci scripts use."""

    _TRUE = ("1", "true", "yes", "on", "enabled")
    _FALSE = ("0", "false", "no", "off", "disabled")

    def convert(self, value):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in self._TRUE:
                return True
            if text in self._FALSE:
                return False
        raise StoreError(f"must be a boolean (1 or 0), got {value!r}")

    def to_text(self, value):
        return "1" if value else "0"

    def __eq__(self, other):
        return isinstance(other, Bool)

    def __hash__(self):
        return hash(Bool)


class ParamSpec(Record):
    """One stored parameter: where it lives, its type, default and owner.

    ``default`` is given in any form ``kind`` accepts and kept converted.
    A string whose default is not empty may not be set to '' (libuci reads an
    empty option as unset, so it would come back as the default).
    """

    section: str
    name: str
    kind: Kind
    default: Any
    owner: Owner
    writable: bool = True
    doc: str = field(default="", compare=False)

    def __post_init__(self):
        if not uci.is_name(self.section) or not uci.is_name(self.name):
            raise ValueError(f"bad UCI name in {self.section!r}.{self.name!r}")
        if not isinstance(self.owner, Owner):
            raise ValueError(f"{self.label}: owner must be an Owner, got {self.owner!r}")
        object.__setattr__(self, "default", self._kind_convert(self.default))

    @property
    def key(self) -> Tuple[str, str]:
        return (self.section, self.name)

    @property
    def label(self) -> str:
        """How messages name it: bare for X_CT-COM_Mgt, else section.name."""
        return self.name if self.section == MGT_SECTION else f"{self.section}.{self.name}"

    def _kind_convert(self, value: Any) -> Any:
        try:
            return self.kind.convert(value)
        except StoreError as e:
            raise StoreError(f"{self.label}: {e}") from None

    def convert(self, value: Any) -> Any:
        """The checked Python value, or StoreError naming this parameter."""
        converted = self._kind_convert(value)
        if self.kind.to_text(converted) == "" and self.kind.to_text(self.default) != "":
            raise StoreError(f"{self.label}: must not be empty")
        return converted

    def to_text(self, value: Any) -> str:
        return self.kind.to_text(value)


class SectionType(Record):
    """A repeatable section: one anonymous UCI section per item, told apart by
    the value of its ``key`` option (e.g. one ``access`` section per MAC)."""

    type: str
    key: str
    owner: Owner
    params: Tuple[ParamSpec, ...] = ()
    key_kind: Kind = String(max_length=64, non_empty=True)

    def __post_init__(self):
        object.__setattr__(self, "params", tuple(self.params))
        if not uci.is_name(self.type) or not uci.is_name(self.key):
            raise ValueError(f"bad UCI name in section type {self.type!r}")
        for spec in self.params:
            if spec.section != self.type or spec.name == self.key:
                raise ValueError(f"{spec.label} does not belong in section type {self.type}")

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise StoreError(f"{self.type}: unknown parameter {name!r}")

    def convert_key(self, key: Any) -> str:
        try:
            return self.key_kind.to_text(self.key_kind.convert(key))
        except StoreError as e:
            raise StoreError(f"{self.type}.{self.key}: {e}") from None


class Schema:
    """The registry: parameters in named sections, and repeatable section types.

    A named section holding parameters is written ``config NAME 'NAME'``.
    """

    def __init__(self):
        self._params: Dict[Tuple[str, str], ParamSpec] = {}
        self._types: Dict[str, SectionType] = {}

    def register(self, spec: ParamSpec) -> ParamSpec:
        """Add a parameter; refuse a duplicate or a clash with a section type."""
        if spec.key in self._params:
            raise ValueError(f"{spec.label} is already registered")
        if spec.section in self._types:
            raise ValueError(f"{spec.section} is a repeatable section type")
        self._params[spec.key] = spec
        return spec

    def register_type(self, section_type: SectionType) -> SectionType:
        """Add a repeatable section type."""
        if section_type.type in self._types or section_type.type in self.sections():
            raise ValueError(f"section {section_type.type} is already registered")
        self._types[section_type.type] = section_type
        return section_type

    def ensure(self, *specs: ParamSpec) -> None:
        """Register each parameter unless it is there already (modules call this lazily)."""
        for spec in specs:
            if spec.key not in self._params:
                self.register(spec)

    def ensure_type(self, section_type: SectionType) -> None:
        """Register a repeatable section type unless it is there already."""
        if section_type.type not in self._types:
            self.register_type(section_type)

    def param(self, section: str, name: str) -> ParamSpec:
        try:
            return self._params[(section, name)]
        except KeyError:
            raise StoreError(f"unknown parameter {section}.{name}") from None

    def params(self, owners: Optional[Iterable[Owner]] = None) -> List[ParamSpec]:
        """All parameters in registration order, or those of some owners."""
        owners = None if owners is None else frozenset(owners)
        return [p for p in self._params.values() if owners is None or p.owner in owners]

    def sections(self) -> List[str]:
        """Names of the sections that hold parameters, in registration order."""
        return list(dict.fromkeys(p.section for p in self._params.values()))

    def section_type(self, type: str) -> SectionType:
        try:
            return self._types[type]
        except KeyError:
            raise StoreError(f"unknown section type {type!r}") from None

    def section_types(self, owners: Optional[Iterable[Owner]] = None) -> List[SectionType]:
        owners = None if owners is None else frozenset(owners)
        return [t for t in self._types.values() if owners is None or t.owner in owners]

    def mgt_names(self) -> List[str]:
        """The X_CT-COM_Mgt parameters by bare name (MgtURL, Port, ...)."""
        return [p.name for p in self._params.values() if p.section == MGT_SECTION]

    def lookup(self, text: str) -> ParamSpec:
        """Find a parameter by bare X_CT-COM_Mgt name, ``section.name`` or
        TR-098 path (``InternetGatewayDevice.X_CT-COM_Mgt.Port``)."""
        for prefix in (MGT_PATH, "X_CT-COM_Mgt."):
            if text.startswith(prefix):
                text = text[len(prefix):]
                break
        section, dot, name = text.rpartition(".")
        if not dot:
            section = MGT_SECTION
        try:
            return self._params[(section, name)]
        except KeyError:
            raise StoreError(f"unknown parameter {text!r}") from None

    def copy(self) -> "Schema":
        """An independent registry with the same entries (for tests, tools)."""
        other = Schema()
        other._params = dict(self._params)
        other._types = dict(self._types)
        return other

    def defaults_package(self) -> uci.Package:
        """The UCI file of a fresh router: every section, every default
        (an empty default is no option, as libuci would read it)."""
        package = uci.Package()
        for spec in self._params.values():
            section = package.section(spec.section)
            if section is None:
                section = uci.Section(spec.section, spec.section)
                package.sections.append(section)
            text = spec.to_text(spec.default)
            if text:
                section.options[spec.name] = text
        return package


def builtin_schema() -> Schema:
    """A new registry holding the built-in parameters of protocol.md section 10."""
    schema = Schema()
    port = UnsignedInt(1, 65535)
    for spec in [
        ParamSpec(MGT_SECTION, "MgtURL", String(256, non_empty=True, no_whitespace=True),
                  "189cube", MGT, doc="distribution platform host"),
        ParamSpec(MGT_SECTION, "Port", port, 12112, MGT,
                  doc="distribution platform port (UDP and TCP)"),
        ParamSpec(MGT_SECTION, "Heartbeat", UnsignedInt(1, 86400), 60, MGT,
                  doc="seconds between heartbeats unless the platform says otherwise"),
        ParamSpec(MGT_SECTION, "Ability", UnsignedInt(0, 1), 0, MGT,
                  doc="0: local interface open, 1: closed"),
        ParamSpec(MGT_SECTION, "LocatePort", port, 17998, MGT,
                  doc="LAN port of the local interface"),
        ParamSpec(MGT_SECTION, "Version", String(64), "1.0", MGT, writable=False,
                  doc="interface version"),
        ParamSpec("registration", "ServerAddr", String(256, no_whitespace=True), "",
                  REGISTRATION, doc="operation platform host from RegisterFirst"),
        ParamSpec("registration", "ServerPort", UnsignedInt(0, 65535), 0, REGISTRATION,
                  doc="operation platform port, 0: none stored"),
        ParamSpec("app", "UserID", String(64), "", APP, doc="bound app user"),
        ParamSpec("itms", "ProvisioningCode", String(64), "", ITMS,
                  doc="TR-098 DeviceInfo.ProvisioningCode"),
    ]:
        schema.register(spec)
    return schema


#: The registry a Store uses unless given another; modules register here.
DEFAULT_SCHEMA = builtin_schema()
