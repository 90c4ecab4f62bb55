"""The management store: X_CT-COM_Mgt and the other owned parameters, kept in
a UCI file (``/etc/config/cubegw``), with the factory-reset rules of
protocol.md section 10."""

from cubegw.store.schema import (
    APP, APP_RESET, DEFAULT_SCHEMA, ITMS, ITMS_RESET, MGT, MGT_PATH,
    MGT_SECTION, REGISTRATION, SHARED, SHARED_ACCESS, Bool, Choice, Kind,
    Owner, ParamSpec, Schema, SectionType, StoreError, String, UnsignedInt,
    builtin_schema,
)
from cubegw.store.store import FileSystem, Store
from cubegw.store.uci import UciError

__all__ = [
    "APP", "APP_RESET", "DEFAULT_SCHEMA", "ITMS", "ITMS_RESET", "MGT",
    "MGT_PATH", "MGT_SECTION", "REGISTRATION", "SHARED", "SHARED_ACCESS",
    "Bool", "Choice", "FileSystem", "Kind", "Owner", "ParamSpec", "Schema",
    "SectionType", "Store", "StoreError", "String", "UciError",
    "UnsignedInt", "builtin_schema",
]
