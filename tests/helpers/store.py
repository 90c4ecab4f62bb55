"""Store doubles: a schema with every owner class, an os module whose one call fails,
and a stand-in for OpenWrt's ``uci`` command."""

import errno
import os

from cubegw.store import (
    APP, SHARED, SHARED_ACCESS, Bool, Choice, ParamSpec, SectionType, String, UnsignedInt,
    builtin_schema,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def extended_schema():
    """The built-ins plus what later modules will register: one parameter of
    each other owner class and a per-device ``access`` section type."""
    schema = builtin_schema()
    schema.register(ParamSpec("app", "WiFiTimer", Bool(), False, APP))
    schema.register(ParamSpec("shared", "SSID", String(32, non_empty=True), "ChinaNet-x", SHARED))
    schema.register(ParamSpec("shared", "Band", Choice(("2.4G", "5G")), "2.4G", SHARED))
    schema.register(ParamSpec("shared", "Blocked", String(64), "", SHARED_ACCESS))
    schema.register_type(SectionType("access", "mac", SHARED_ACCESS, (
        ParamSpec("access", "Internet", Bool(), True, SHARED_ACCESS),
        ParamSpec("access", "Limit", UnsignedInt(0, 1000), 0, SHARED_ACCESS),
    )))
    return schema


class FailingOS:
    """The os module, except that one function fails like a full disk."""

    def __init__(self, name, error=None):
        self._name = name
        self._error = error or OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        if name == self._name:
            def fail(*args, **kwargs):
                raise self._error
            return fail
        return getattr(os, name)


#: A stand-in for uci: get/set/commit on one file, through cubegw's UCI reader and writer.
FAKE_UCI = r"""
import sys
sys.path.insert(0, {root!r})
from cubegw.store import uci
path = {{conf!r}}
args = [a for a in sys.argv[1:] if a != "-q"]
with open(path) as f:
    package = uci.parse(f.read())
if args[0] == "commit":
    sys.exit(0)
key, _, value = args[1].partition("=")
parts = key.split(".")[1:]
section = package.section(parts[0])
if args[0] == "get":
    sys.exit(0 if section and (len(parts) == 1 or parts[1] in section.options) else 1)
if len(parts) == 1:
    package.sections.append(uci.Section(value, parts[0]))
else:
    section.options[parts[1]] = value
with open(path, "w") as f:
    f.write(uci.serialize(package))
""".format(root=ROOT)
