"""Immutable value classes from their annotations, without ``dataclasses``.

``dataclass(frozen=True)`` compiles an ``__init__``, ``__eq__``, ``__hash__``,
``__repr__``, ``__setattr__`` and ``__delattr__`` for each class it decorates: ~10 KiB
and a few tenths of a millisecond each for the ~20 value classes a running gateway
loads (configuration, commands, store schema, identity).  ``Record`` defines them once.

A subclass declares its fields as annotated class attributes, in order, with an
optional default (or ``field(...)``); it gets keyword or positional construction,
``__post_init__`` if it has one, equality and hashing over the compared fields, a
dataclass-style repr, and refuses assignment.  ``fields`` and ``replace`` work as
``dataclasses``' do.  ``MutableRecord`` is the same with assignable fields.
"""

from types import MappingProxyType

__all__ = ["Record", "MutableRecord", "FrozenRecordError", "MISSING", "field", "field_table", "fields",
           "replace"]

MISSING = object()
#: the metadata of a field given none: one read-only mapping shared by all of them
NO_METADATA = MappingProxyType({})


class FrozenRecordError(AttributeError):
    """An assignment to, or deletion of, a field of a Record."""


class Field:
    """One field: its name, annotation, default (or factory), and whether it is compared
    and shown in the repr."""

    __slots__ = ("name", "type", "default", "default_factory", "compare", "repr", "metadata")

    def __init__(self, default=MISSING, default_factory=MISSING, compare=True, repr=True,
                 metadata=None):
        self.name = self.type = None
        self.default, self.default_factory = default, default_factory
        self.compare, self.repr = compare, repr
        self.metadata = NO_METADATA if metadata is None else metadata

    def __repr__(self):
        return f"Field({self.name!r})"


def field(default=MISSING, *, default_factory=MISSING, compare=True, repr=True,
          metadata=None):
    """A field with a factory for its default, left out of comparison or repr, or
    carrying ``metadata`` for its class's own use."""
    return Field(default, default_factory, compare, repr, metadata)


def fields(record):
    """The fields of a Record class or instance, in order."""
    return record.FIELDS


def replace(record, **changes):
    """A copy of ``record`` with ``changes`` (built again: ``__post_init__`` runs)."""
    values = {f.name: getattr(record, f.name) for f in record.FIELDS}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(record).__qualname__} has no field {', '.join(sorted(unknown))}")
    values.update(changes)
    return type(record)(**values)


def field_table(cls):
    """The fields of ``cls``: its base's ``FIELDS``, then its own annotated attributes in
    order; a default stays as the class attribute, as with ``dataclasses``."""
    table = {f.name: f for f in getattr(cls, "FIELDS", ())}
    for name, kind in cls.__dict__.get("__annotations__", {}).items():
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(value)
        f.name, f.type = name, kind
        if isinstance(value, Field):
            if f.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        table[name] = f
    return tuple(table.values())


class Record:
    """Base of the value classes (see the module's docstring)."""

    FIELDS = ()
    #: how many fields may be given by position (None: all; 0: keyword arguments only)
    POSITIONAL = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.FIELDS = field_table(cls)
        cls._COMPARED = tuple(f.name for f in cls.FIELDS if f.compare)

    def __init__(self, *args, **kwargs):
        name = type(self).__qualname__
        positional = len(self.FIELDS) if self.POSITIONAL is None else self.POSITIONAL
        if len(args) > positional:
            raise TypeError(f"{name}() takes {positional} positional arguments "
                            f"but {len(args)} were given")
        for i, f in enumerate(self.FIELDS):
            if i < len(args):
                if f.name in kwargs:
                    raise TypeError(f"{name}() got multiple values for argument {f.name!r}")
                value = args[i]
            elif f.name in kwargs:
                value = kwargs.pop(f.name)
            elif f.default_factory is not MISSING:
                value = f.default_factory()
            elif f.default is not MISSING:
                value = f.default
            else:
                raise TypeError(f"{name}() missing required argument {f.name!r}")
            object.__setattr__(self, f.name, value)
        if kwargs:
            raise TypeError(f"{name}() got an unexpected keyword argument {next(iter(kwargs))!r}")
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def _compared(self):
        return tuple(getattr(self, name) for name in self._COMPARED)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self):
        return hash(self._compared())

    def __repr__(self):
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self.FIELDS if f.repr)
        return f"{type(self).__qualname__}({shown})"

    def __setattr__(self, name, value):
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenRecordError(f"cannot delete field {name!r}")


class MutableRecord(Record):
    """A Record whose fields may be assigned, as a dataclass that is not frozen (so it
    has no hash)."""

    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__
    __hash__ = None
