"""The platform's device registry: what it knows about each gateway, by MAC.

The in-memory records are the source of truth: protocol handlers read and change them
synchronously, so a heartbeat never waits on the database.  Changes are written behind,
batched every ``flush_delay`` seconds, to SQLite through ``adbapi`` (one worker thread),
and loaded back at start, so a restart loses no device, binding or DevRND.

Records use ``__slots__`` and shared (interned) strings: a registered device costs well
under 4 KiB.  Reports pushed by gateways are kept in memory only, a bounded list per MAC.
"""

import collections
import os
import sys

from twisted.internet import defer
from twisted.logger import Logger, LogLevel
from zope.interface import Interface, implementer

from cubegw import identity

#: Every field of a record, in the order of ``DeviceRecord.row()``.
FIELDS = (
    "mac", "sn", "loid", "vendor", "model", "firmware_version", "hardware_version",
    "wifi_ssid", "wifi_password", "useradmin_password", "telecomadmin_password",
    "dist_challenge", "challenge", "dev_rnd", "registered", "online", "wan_ip",
    "last_hb", "hb_addr", "user_id",
)
_DEFAULTS = {"registered": False, "online": False, "last_hb": 0.0, "hb_addr": None}
#: Values many devices share (one copy in memory).
_INTERNED = frozenset(("vendor", "model", "firmware_version", "hardware_version"))
#: What ``Registry.update`` may change (everything but the key).
_SETTABLE = frozenset(FIELDS[1:])
#: A heartbeat that changes only the time or ``online`` is written behind at most this
#: often per device (from the record's last write), so 200k gateways do not rewrite 200k
#: rows a second, nor all at once as they come online after registering: after a restart
#: a device's last_hb and online may be this much behind (its address, WAN IP and
#: registration are exact).
HB_SAVE_INTERVAL = 60.0

SCHEMA_VERSION = 1
_COLUMNS = (
    "mac TEXT PRIMARY KEY", "sn TEXT", "loid TEXT", "vendor TEXT", "model TEXT",
    "firmware_version TEXT", "hardware_version TEXT", "wifi_ssid TEXT",
    "wifi_password TEXT", "useradmin_password TEXT", "telecomadmin_password TEXT",
    "dist_challenge TEXT", "challenge TEXT", "dev_rnd TEXT", "registered INTEGER",
    "online INTEGER", "wan_ip TEXT", "last_hb REAL", "hb_host TEXT", "hb_port INTEGER",
    "user_id TEXT",
)
_NAMES = tuple(c.split()[0] for c in _COLUMNS)
_ONLINE, _LAST_HB = _NAMES.index("online"), _NAMES.index("last_hb")


class DeviceRecord:
    """One gateway as the platform knows it.

    ``dist_challenge``: the ChallengeCode of the last BootFirst; ``challenge``: of the last
    Boot; ``registered``: a Register succeeded since that challenge; ``hb_addr``: the
    (host, port) the last heartbeat came from, where triggers go; ``user_id``: the bound
    user ("" when unbound).
    """

    #: Not stored: ``hb_saved``, when the database last got the record (its last_hb
    #: when loaded); ``summary_mark``, the operation platform's heartbeat summary round
    #: that counted this device; ``log_device``, the platform's message log's
    #: ``Device`` of this MAC, kept here by the operation platform's heartbeat path.
    __slots__ = FIELDS + ("hb_saved", "summary_mark", "log_device")

    def __init__(self, mac, **values):
        for name in FIELDS[1:]:
            setattr(self, name, values.pop(name, _DEFAULTS.get(name, "")))
        if values:
            raise TypeError(f"unknown device field {sorted(values)[0]!r}")
        self.mac = mac
        self.hb_saved = self.last_hb    # when the database got it (see heartbeat)
        self.summary_mark = 0
        self.log_device = None
        for name in _INTERNED:
            setattr(self, name, sys.intern(getattr(self, name)))

    def row(self):
        """The record as a database row (``hb_addr`` split in host and port)."""
        host, port = self.hb_addr or (None, None)
        return (self.mac, self.sn, self.loid, self.vendor, self.model,
                self.firmware_version, self.hardware_version, self.wifi_ssid,
                self.wifi_password, self.useradmin_password, self.telecomadmin_password,
                self.dist_challenge, self.challenge, self.dev_rnd, int(self.registered),
                int(self.online), self.wan_ip, self.last_hb, host, port, self.user_id)

    @classmethod
    def from_row(cls, row):
        values = dict(zip(_NAMES, row))
        host, port = values.pop("hb_host"), values.pop("hb_port")
        values["hb_addr"] = (host, port) if host is not None and port is not None else None
        values["registered"] = bool(values["registered"])
        values["online"] = bool(values["online"])
        values["last_hb"] = float(values["last_hb"] or 0.0)
        mac = values.pop("mac")
        for name in FIELDS:
            if values.get(name) is None and name not in _DEFAULTS and name != "mac":
                values[name] = ""
        return cls(mac, **values)

    def as_dict(self):
        """Every field, for status output (passwords included: this is a test platform)."""
        return {name: getattr(self, name) for name in FIELDS}

    def is_online(self, now, timeout):
        """Heartbeating: marked online and heard from within ``timeout`` seconds."""
        return self.online and now - self.last_hb <= timeout

    def trigger_key(self):
        """The Key of RequestPlug-in/RequestDistri (protocol.md section 2), or None before
        the first Register (no DevRND)."""
        if not self.dev_rnd:
            return None
        return identity.trigger_key(self.dev_rnd, self.sn, self.wifi_ssid,
                                    self.wifi_password, self.useradmin_password)


# ---------------------------------------------------------------- storage

class IDeviceStore(Interface):
    """Where records are persisted; every method returns a Deferred."""

    def load():
        """Fire with every stored row (tuples in ``DeviceRecord.row()`` order)."""

    def save(rows, deleted, beats=()):
        """Insert or replace ``rows``, delete the MACs in ``deleted`` and apply ``beats``
        (``(online, last_hb, mac)``: a heartbeat's two columns of a row already stored),
        in one transaction."""

    def close():
        """Release the store; fires when done."""


@implementer(IDeviceStore)
class MemoryStore:
    """An in-memory store (tests, and a platform with no database)."""

    def __init__(self):
        self.rows = {}
        self.saves = 0

    def load(self):
        return defer.succeed(list(self.rows.values()))

    def save(self, rows, deleted, beats=()):
        self.saves += 1
        for row in rows:
            self.rows[row[0]] = row
        for online, last_hb, mac in beats:
            row = self.rows.get(mac)
            if row is not None:
                self.rows[mac] = row[:_ONLINE] + (online,) + row[_ONLINE + 1:_LAST_HB] + \
                    (last_hb,) + row[_LAST_HB + 1:]
        for mac in deleted:
            self.rows.pop(mac, None)
        return defer.succeed(None)

    def close(self):
        return defer.succeed(None)


def private_file(path):
    """Create ``path`` (if need be) readable and writable by its owner only (0600): it
    holds the devices' passwords and DevRNDs.  SQLite gives its journal the same mode."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


@implementer(IDeviceStore)
class SQLiteStore:
    """SQLite through one adbapi worker thread, so no query runs on the reactor thread.

    The pool is made at ``load()`` (service start), not at construction.
    """

    def __init__(self, path, reactor=None):
        self.path = path
        self.reactor = reactor
        self.pool = None

    @staticmethod
    def check(path):
        """Open, create if need be, and check the database now, blocking: for the command
        line, before the reactor runs.  Raises ``ValueError`` with one line if unusable."""
        import sqlite3
        try:
            if path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                private_file(path)
            conn = sqlite3.connect(path)
            try:
                SQLiteStore._schema(conn.cursor())
                conn.commit()
            finally:
                conn.close()
        except (OSError, sqlite3.Error, RuntimeError) as e:
            raise ValueError(f"cannot use the database {path}: {e}")

    def load(self):
        from twisted.enterprise import adbapi
        directory = os.path.dirname(os.path.abspath(self.path))
        if self.path != ":memory:":
            os.makedirs(directory, exist_ok=True)
            private_file(self.path)
        extra = {} if self.reactor is None else {"cp_reactor": self.reactor}
        self.pool = adbapi.ConnectionPool(
            "sqlite3", self.path, check_same_thread=False, cp_min=1, cp_max=1,
            cp_openfun=self._journal, **extra)
        return self.pool.runInteraction(self._load)

    @staticmethod
    def _journal(conn):
        """Write-ahead log, synced at checkpoints: a flush is one append to the log, not
        a copy of every page it touches to a rollback journal and two fsyncs (a minute
        of 200k gateways' heartbeats touches most pages).  A power cut may lose the last
        flushes, never the database's consistency: the registry is written behind
        anyway (``flush_delay``, ``HB_SAVE_INTERVAL``)."""
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")

    @staticmethod
    def _load(txn):
        SQLiteStore._schema(txn)
        txn.execute("SELECT %s FROM devices" % ", ".join(_NAMES))
        return txn.fetchall()

    @staticmethod
    def _schema(txn):
        txn.execute("PRAGMA user_version")
        version = txn.fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"the database has schema {version}, newer than this "
                               f"cubeplat's {SCHEMA_VERSION}")
        txn.execute("CREATE TABLE IF NOT EXISTS devices (%s)" % ", ".join(_COLUMNS))
        txn.execute("PRAGMA user_version = %d" % SCHEMA_VERSION)

    def save(self, rows, deleted, beats=()):
        return self.pool.runInteraction(self._save, rows, deleted, beats)

    @staticmethod
    def _save(txn, rows, deleted, beats=()):
        if rows:
            txn.executemany("INSERT OR REPLACE INTO devices (%s) VALUES (%s)" % (
                ", ".join(_NAMES), ", ".join("?" * len(_NAMES))), rows)
        if beats:
            # the row stays in place (a REPLACE deletes it and inserts it again, index
            # entry included): ~2.5x cheaper a row, and 200k gateways beat every minute
            txn.executemany("UPDATE devices SET online = ?, last_hb = ? WHERE mac = ?", beats)
        if deleted:
            txn.executemany("DELETE FROM devices WHERE mac = ?", [(m,) for m in deleted])

    def close(self):
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        return defer.succeed(None)


class Backend(collections.namedtuple("Backend", "make check")):
    """A registry backend: ``make(config, reactor)`` builds its ``IDeviceStore``;
    ``check(config)`` raises ``ValueError`` (one line, naming the key) if it cannot be used,
    while twistd parses its options, before the reactor runs."""


def _check_sqlite(config):
    try:
        SQLiteStore.check(config.db)
    except ValueError as e:
        raise ValueError(f"db: {e}")


#: ``registry:`` in cubeplat.yaml -> its backend; a new backend is one entry here.
BACKENDS = {
    "sqlite": Backend(lambda config, reactor: SQLiteStore(config.db, reactor), _check_sqlite),
    "memory": Backend(lambda config, reactor: MemoryStore(), lambda config: None),
}


# --------------------------------------------------------------- registry

class Registry:
    """The devices by MAC, written behind to ``store`` on ``clock``."""

    log = Logger()

    def __init__(self, store, clock, flush_delay=1.0, report_limit=20):
        self.store = store
        self.clock = clock
        self.flush_delay = flush_delay
        self.report_limit = report_limit
        self.loaded = False
        self._devices = {}
        #: ``get(mac)``: the device's record or None; the dict's own ``get``, not a method
        #: calling it: every heartbeat looks its device up (a Python frame is 0.1 us).
        self.get = self._devices.get
        self._reports = {}
        self._dirty = set()             # MACs whose whole row is to be written
        self._beats = set()             # records whose heartbeat alone is to be written
        self._deleted = set()
        self._timer = None
        self._closed = False

    # ----------------------------------------------------------- lifecycle

    def load(self):
        """Read every stored device; fires with the registry once the cache is filled."""
        def loaded(rows):
            for row in rows:
                record = DeviceRecord.from_row(row)
                self._devices[record.mac] = record
            self.loaded = True
            self.log.info("registry loaded: {count} devices", count=len(rows))
            return self
        return defer.maybeDeferred(self.store.load).addCallback(loaded)

    def flush(self):
        """Write every pending change now; fires when the store has them."""
        self._cancel_timer()
        if not self._dirty and not self._deleted and not self._beats:
            return defer.succeed(None)
        devices, dirty = self._devices, self._dirty
        records = [devices[mac] for mac in dirty if mac in devices]
        rows = [record.row() for record in records]
        # a whole row written carries the heartbeat too; records, not MACs: no lookup
        # in a dict of 200k devices per beat (``remove`` takes its record out)
        beaten = [record for record in self._beats if record.mac not in dirty]
        beats = [(int(record.online), record.last_hb, record.mac) for record in beaten]
        now = self.clock.seconds()
        for record in records:
            record.hb_saved = now
        for record in beaten:
            record.hb_saved = now
        deleted = sorted(self._deleted)
        self._dirty, self._deleted, self._beats = set(), set(), set()
        d = defer.maybeDeferred(self.store.save, rows, deleted, beats)

        def failed(reason):
            self.log.failure("registry write of {count} devices failed; will retry",
                             reason, LogLevel.error,
                             count=len(rows) + len(beats) + len(deleted))
            self._dirty.update(row[0] for row in rows if row[0] in self._devices)
            self._beats.update(record for record in beaten
                               if self._devices.get(record.mac) is record)
            self._deleted.update(m for m in deleted if m not in self._devices)
            self._schedule()
            return reason
        return d.addErrback(failed)

    def close(self):
        """Flush, then release the store; the registry takes no more writes to disk."""
        self._closed = True
        d = self.flush()
        d.addErrback(lambda f: None)  # logged by flush; closing goes on
        d.addCallback(lambda _: self.store.close())
        return d

    # --------------------------------------------------------------- reads

    def __contains__(self, mac):
        return mac in self._devices

    def __len__(self):
        return len(self._devices)

    def __iter__(self):
        return iter(list(self._devices.values()))

    def reports(self, mac):
        """The last reports of ``mac``, oldest first: (time, Parameter dict) pairs."""
        return list(self._reports.get(mac, ()))

    # -------------------------------------------------------------- writes

    def add(self, mac, **values):
        """A new device (``ValueError`` if the MAC is already known)."""
        if mac in self._devices:
            raise ValueError(f"device {mac} is already registered")
        record = DeviceRecord(mac, **values)
        self._devices[mac] = record
        self._deleted.discard(mac)
        self._touch(mac)
        return record

    def update(self, mac, **values):
        """Change fields of a known device (``KeyError`` if unknown); written behind."""
        record = self._devices[mac]
        for name in values:
            if name not in _SETTABLE:
                raise TypeError(f"cannot set device field {name!r}")
        for name, value in values.items():
            if name in _INTERNED:
                value = sys.intern(value)
            setattr(record, name, value)
        self._touch(mac)
        return record

    def heartbeat(self, record, now, addr, wan_ip=""):
        """``record`` (this registry's, as ``get`` gave it) heartbeats from ``addr`` at
        ``now``: online, with its WAN IP when given; written behind: at once when the
        address or WAN IP changed, else once ``HB_SAVE_INTERVAL`` has passed since the
        record was last written (its registration's write too: 200k gateways' first Hb
        is not a second write of 200k rows).

        The same as ``update(mac, online=True, last_hb=now, hb_addr=addr, wan_ip=...)``,
        without the per-field checks: the operation platform calls it for every Hb.
        """
        changed = False
        record.online = True
        record.last_hb = now
        # an address or WAN IP equal to the one held is not stored again: 200k records
        # then hold one copy each, not the last datagram's
        if record.hb_addr != addr:
            record.hb_addr = addr
            changed = True
        if wan_ip and wan_ip != record.wan_ip:
            record.wan_ip = wan_ip
            changed = True
        if changed:
            self._touch(record.mac)
        elif now - record.hb_saved >= HB_SAVE_INTERVAL:
            self._beats.add(record)
            self._schedule()

    def remove(self, mac):
        """Forget a device (its reports too)."""
        self._beats.discard(self._devices.pop(mac))
        self._reports.pop(mac, None)
        self._dirty.discard(mac)
        self._deleted.add(mac)
        self._schedule()

    def bind(self, mac, user_id):
        """Bind ``user_id`` to the device (deck 6.2); "" unbinds."""
        return self.update(mac, user_id=user_id)

    def add_report(self, mac, parameter, now):
        """Keep a pushed report, dropping the oldest past ``report_limit``."""
        reports = self._reports.get(mac)
        if reports is None:
            reports = self._reports[mac] = collections.deque(maxlen=self.report_limit)
        reports.append((now, parameter))

    def preset(self, devices):
        """Apply the configured devices (``config.DeviceConfig``): add the unknown ones,
        refresh the account data of known ones.  ``user_id`` applies only to a new device,
        so a binding made later survives a restart."""
        for d in devices:
            values = dict(wifi_ssid=d.wifi_ssid, wifi_password=d.wifi_password,
                          useradmin_password=d.useradmin_password,
                          telecomadmin_password=d.telecomadmin_password)
            if d.sn:
                values["sn"] = d.sn
            if d.loid:
                values["loid"] = d.loid
            if d.mac in self._devices:
                self.update(d.mac, **values)
            else:
                self.add(d.mac, user_id=d.user_id, **values)

    # ------------------------------------------------------------- helpers

    def _touch(self, mac):
        self._dirty.add(mac)
        self._schedule()

    def _schedule(self):
        if self._timer is None and not self._closed:
            self._timer = self.clock.callLater(self.flush_delay, self._timed_flush)

    def _timed_flush(self):
        self._timer = None
        self.flush().addErrback(lambda f: None)  # logged, and retried by flush

    def _cancel_timer(self):
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None
