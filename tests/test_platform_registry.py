"""The device registry: records, write-behind, presets, reports, and SQLite persistence."""

import os
import sqlite3
import stat
import tracemalloc

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from cubegw import identity
from cubegw.platform import tap
from cubegw.platform.config import ConfigError, DeviceConfig, PlatformConfig, parse_config
from cubegw.platform.registry import (
    BACKENDS, FIELDS, HB_SAVE_INTERVAL, DeviceRecord, IDeviceStore, MemoryStore, Registry,
    SQLiteStore)

MAC = "64D95420214B"
SN = "64D954-D6AEE64D95420214B"
DEVICE = DeviceConfig(MAC, sn=SN, loid="0755123456", wifi_ssid="ChinaNet-ABCD",
                      wifi_password="wifipass", useradmin_password="admin1",
                      telecomadmin_password="tele1", user_id="U1")


def full_record(mac=MAC):
    return DeviceRecord(
        mac, sn=SN, loid="0755123456", vendor="V", model="M", firmware_version="1.0",
        hardware_version="HW1", wifi_ssid="ChinaNet-ABCD", wifi_password="wifipass",
        useradmin_password="admin1", telecomadmin_password="tele1",
        dist_challenge="A" * 32, challenge="B" * 32, dev_rnd="C" * 32, registered=True,
        online=True, wan_ip="192.0.2.10", last_hb=1234.5, hb_addr=("127.0.0.9", 40000),
        user_id="U1")


class FailingStore(MemoryStore):
    """A store whose next ``fail`` saves fail."""

    def __init__(self, fail):
        super().__init__()
        self.fail = fail

    def save(self, rows, deleted, beats=()):
        if self.fail:
            self.fail -= 1
            return defer.fail(OSError("disk full"))
        return super().save(rows, deleted, beats)


class RecordTests(SynchronousTestCase):
    def test_defaults(self):
        """A new record has empty strings, not registered, offline, no heartbeat address."""
        r = DeviceRecord(MAC)
        self.assertEqual((r.sn, r.dev_rnd, r.registered, r.online, r.hb_addr, r.last_hb),
                         ("", "", False, False, None, 0.0))

    def test_unknown_field(self):
        """An unknown field is refused."""
        self.assertRaises(TypeError, DeviceRecord, MAC, colour="red")

    def test_row_round_trip(self):
        """A record survives the trip to a database row and back."""
        r = full_record()
        self.assertEqual(DeviceRecord.from_row(r.row()).as_dict(), r.as_dict())
        empty = DeviceRecord(MAC)
        self.assertEqual(DeviceRecord.from_row(empty.row()).as_dict(), empty.as_dict())

    def test_trigger_key(self):
        """The Key is identity.trigger_key over the record's DevRND, SN and accounts."""
        r = full_record()
        self.assertEqual(r.trigger_key(), identity.trigger_key(
            "C" * 32, SN, "ChinaNet-ABCD", "wifipass", "admin1"))
        self.assertEqual(r.trigger_key(), identity.md5_upper(
            "C" * 32, SN, "ABCD", "wifipass", "admin1"))
        self.assertIsNone(DeviceRecord(MAC).trigger_key())

    def test_is_online(self):
        """Online means marked online and heard from within the timeout."""
        r = full_record()
        self.assertTrue(r.is_online(1300, 180))
        self.assertFalse(r.is_online(1500, 180))
        r.online = False
        self.assertFalse(r.is_online(1300, 180))

    def test_compact(self):
        """A registered device costs well under the 4 KiB budget (slots, shared strings)."""
        self.assertFalse(hasattr(DeviceRecord(MAC), "__dict__"))
        registry = Registry(MemoryStore(), Clock())
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(2000):
                mac = "%012X" % i
                registry.add(mac, sn="64D954-%017X" % i, loid="%010d" % i, vendor="V",
                             model="M", firmware_version="1.0", hardware_version="HW1",
                             wifi_ssid="ChinaNet-%04X" % i, wifi_password="pw%08d" % i,
                             useradmin_password="ua%06d" % i,
                             telecomadmin_password="ta%06d" % i)
                registry.update(mac, challenge=os.urandom(16).hex().upper(),
                                dev_rnd=os.urandom(16).hex().upper(), registered=True,
                                online=True, wan_ip="10.%d.%d.1" % (i // 256, i % 256),
                                last_hb=1e9 + i, hb_addr=("10.0.%d.%d" % (i // 256, i % 256),
                                                          40000 + i), user_id="user%d" % i)
            per_device = (tracemalloc.get_traced_memory()[0] - before) / 2000
        finally:
            tracemalloc.stop()
        self.assertLess(per_device, 4096)


class RegistryTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.store = MemoryStore()
        self.registry = Registry(self.store, self.clock, flush_delay=1.0, report_limit=3)
        self.successResultOf(self.registry.load())

    def test_store_interface(self):
        """Both stores provide IDeviceStore."""
        verifyObject(IDeviceStore, self.store)
        verifyObject(IDeviceStore, SQLiteStore(":memory:"))

    def test_add_get(self):
        """An added device can be read back at once, from memory."""
        self.registry.add(MAC, sn=SN)
        self.assertEqual(self.registry.get(MAC).sn, SN)
        self.assertIn(MAC, self.registry)
        self.assertEqual(len(self.registry), 1)
        self.assertEqual([r.mac for r in self.registry], [MAC])
        self.assertIsNone(self.registry.get("001122334455"))

    def test_add_twice(self):
        """Adding a known MAC is refused."""
        self.registry.add(MAC)
        self.assertRaises(ValueError, self.registry.add, MAC)

    def test_update_checks(self):
        """update refuses unknown devices, unknown fields and the MAC itself."""
        self.assertRaises(KeyError, self.registry.update, MAC, sn=SN)
        self.registry.add(MAC)
        self.assertRaises(TypeError, self.registry.update, MAC, colour="red")
        self.assertRaises(TypeError, self.registry.update, MAC, mac="001122334455")
        # a refused update changes nothing, not even the fields named before the bad one
        self.assertRaises(TypeError, self.registry.update, MAC, sn=SN, colour="red")
        self.assertEqual(self.registry.get(MAC).sn, "")

    def test_update_interns(self):
        """Values many devices share are kept once."""
        self.registry.add(MAC)
        self.registry.add("001122334455")
        for mac in (MAC, "001122334455"):
            self.registry.update(mac, vendor="".join(["Test", "Vendor"]))
        self.assertIs(self.registry.get(MAC).vendor,
                      self.registry.get("001122334455").vendor)

    def test_heartbeat(self):
        """heartbeat marks the record online from addr at now, keeps the WAN IP when none
        is given, and writes behind like update."""
        record = self.registry.add(MAC, wan_ip="192.0.2.1")
        self.successResultOf(self.registry.flush())
        self.registry.heartbeat(record, 5.0, ("127.0.0.9", 40000), "")
        self.assertEqual((record.online, record.last_hb, record.hb_addr, record.wan_ip),
                         (True, 5.0, ("127.0.0.9", 40000), "192.0.2.1"))
        self.registry.heartbeat(record, 6.0, ("127.0.0.9", 40001), "192.0.2.7")
        self.assertEqual((record.last_hb, record.hb_addr, record.wan_ip),
                         (6.0, ("127.0.0.9", 40001), "192.0.2.7"))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(1)
        self.assertEqual(self.store.rows[MAC], record.row())
        self.assertEqual(self.store.saves, 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_routine_heartbeat_written_once_a_minute(self):
        """A heartbeat that changes only the time is written behind at most every
        HB_SAVE_INTERVAL s from the record's last write; a new address or a new WAN IP
        at once."""
        record = self.registry.add(MAC, wan_ip="192.0.2.1")
        addr = ("127.0.0.9", 40000)
        self.registry.heartbeat(record, self.clock.seconds(), addr)   # with the add
        self.clock.advance(1)
        saves = self.store.saves
        written = self.clock.seconds()
        while self.clock.seconds() + 5 < written + HB_SAVE_INTERVAL:  # kept in memory only
            self.clock.advance(5)
            self.registry.heartbeat(record, self.clock.seconds(), addr)
        self.clock.advance(1)
        self.assertEqual(self.store.saves, saves)
        self.assertEqual(record.last_hb, 56.0)
        self.clock.advance(written + HB_SAVE_INTERVAL - self.clock.seconds())
        self.registry.heartbeat(record, self.clock.seconds(), addr)   # a minute on: written
        self.clock.advance(1)
        self.assertEqual((self.store.saves, self.store.rows[MAC]), (saves + 1, record.row()))
        for news in ((("127.0.0.9", 40001), ""), (("127.0.0.9", 40001), "192.0.2.7")):
            self.registry.heartbeat(record, self.clock.seconds(), *news)
            self.clock.advance(1)
            self.assertEqual(self.store.rows[MAC], record.row())
        self.assertEqual(self.store.saves, saves + 3)

    def test_online_written_at_the_heartbeat_cadence(self):
        """Coming online is written with the next write due by the cadence: at once when
        the record was last written HB_SAVE_INTERVAL s ago or more (or never), else at
        the first Hb after that, so the Hb of 200k just registered gateways are not a
        second write of every row."""
        addr = ("127.0.0.9", 40000)
        record = self.registry.add(MAC, sn=SN, registered=True, hb_addr=addr)
        self.clock.advance(1)                   # the registration's write
        saves = self.store.saves
        self.registry.heartbeat(record, self.clock.seconds(), addr)
        self.clock.advance(1)
        self.assertEqual(self.store.saves, saves)
        self.assertTrue(record.online)
        self.assertFalse(self.store.rows[MAC][15])          # online, not yet written
        self.clock.advance(HB_SAVE_INTERVAL - 1)            # a minute after the write
        self.registry.heartbeat(record, self.clock.seconds(), addr)
        self.clock.advance(1)
        self.assertEqual(self.store.rows[MAC], record.row())
        self.assertTrue(self.store.rows[MAC][15])
        record.online = False                       # silent for long, then back
        self.clock.advance(HB_SAVE_INTERVAL)
        self.registry.heartbeat(record, self.clock.seconds(), addr)
        self.clock.advance(1)
        self.assertEqual(self.store.rows[MAC], record.row())

    def test_heartbeat_keeps_equal_values(self):
        """An address or WAN IP equal to the one held is not stored again (the record
        keeps one copy, not each datagram's); a different one replaces it."""
        record = self.registry.add(MAC, wan_ip="192.0.2.1")
        first = ("127.0.0.9", 40000)
        self.registry.heartbeat(record, 1.0, first, "192.0.2.1")
        wan_ip = record.wan_ip
        self.registry.heartbeat(record, 2.0, ("127.0.0.9", 40000), "".join(["192.0.2", ".1"]))
        self.assertIs(record.hb_addr, first)
        self.assertIs(record.wan_ip, wan_ip)
        moved = ("127.0.0.9", 40001)
        self.registry.heartbeat(record, 3.0, moved, "192.0.2.2")
        self.assertEqual((record.hb_addr, record.wan_ip, record.last_hb),
                         (moved, "192.0.2.2", 3.0))

    def test_heartbeat_same_as_update(self):
        """heartbeat leaves the record and the store as update would."""
        other = Registry(MemoryStore(), self.clock)
        self.successResultOf(other.load())
        for registry in (self.registry, other):
            registry.add(MAC, sn=SN, wan_ip="192.0.2.1", registered=True)
        self.registry.heartbeat(self.registry.get(MAC), 7.0, ("127.0.0.9", 1), "10.0.0.1")
        other.update(MAC, online=True, last_hb=7.0, hb_addr=("127.0.0.9", 1),
                     wan_ip="10.0.0.1")
        self.assertEqual(self.registry.get(MAC).as_dict(), other.get(MAC).as_dict())
        self.clock.advance(1)
        self.assertEqual(self.registry.store.rows, other.store.rows)

    def test_heartbeat_after_close(self):
        """A heartbeat after close schedules no write."""
        record = self.registry.add(MAC)
        self.successResultOf(self.registry.close())
        self.registry.heartbeat(record, 1.0, ("127.0.0.9", 1))
        self.assertTrue(record.online)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_write_behind(self):
        """Changes reach the store once, batched, flush_delay after the first change."""
        self.registry.add(MAC, sn=SN)
        self.registry.update(MAC, online=True, last_hb=5.0)
        self.registry.add("001122334455")
        self.assertEqual(self.store.rows, {})
        self.clock.advance(0.9)
        self.assertEqual(self.store.rows, {})
        self.clock.advance(0.1)
        self.assertEqual(self.store.saves, 1)
        self.assertEqual(set(self.store.rows), {MAC, "001122334455"})
        self.assertEqual(self.store.rows[MAC], self.registry.get(MAC).row())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_flush_now(self):
        """flush writes pending changes at once and cancels the timer."""
        self.registry.add(MAC)
        self.successResultOf(self.registry.flush())
        self.assertIn(MAC, self.store.rows)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.successResultOf(self.registry.flush())
        self.assertEqual(self.store.saves, 1)

    def test_remove(self):
        """A removed device is gone from memory and, after the flush, from the store."""
        self.registry.add(MAC)
        self.successResultOf(self.registry.flush())
        self.registry.add_report(MAC, {"a": "1"}, 1.0)
        self.registry.remove(MAC)
        self.assertIsNone(self.registry.get(MAC))
        self.assertEqual(self.registry.reports(MAC), [])
        self.clock.advance(1)
        self.assertEqual(self.store.rows, {})

    def test_bind(self):
        """bind sets the bound UserID; "" unbinds."""
        self.registry.add(MAC)
        self.registry.bind(MAC, "U7")
        self.assertEqual(self.registry.get(MAC).user_id, "U7")
        self.registry.bind(MAC, "")
        self.assertEqual(self.registry.get(MAC).user_id, "")

    def test_reports_bounded(self):
        """Reports are kept per MAC, oldest dropped past report_limit."""
        for i in range(5):
            self.registry.add_report(MAC, {"n": str(i)}, float(i))
        self.assertEqual(self.registry.reports(MAC),
                         [(2.0, {"n": "2"}), (3.0, {"n": "3"}), (4.0, {"n": "4"})])
        self.assertEqual(self.registry.reports("001122334455"), [])

    def test_preset(self):
        """Configured devices are added; later presets refresh accounts, not the binding."""
        self.registry.preset([DEVICE])
        r = self.registry.get(MAC)
        self.assertEqual((r.sn, r.loid, r.wifi_ssid, r.useradmin_password, r.user_id),
                         (SN, "0755123456", "ChinaNet-ABCD", "admin1", "U1"))
        self.registry.bind(MAC, "U2")
        self.registry.preset([DeviceConfig(MAC, wifi_ssid="Home", wifi_password="p2",
                                           user_id="U1")])
        r = self.registry.get(MAC)
        self.assertEqual((r.sn, r.loid, r.wifi_ssid, r.wifi_password, r.user_id),
                         (SN, "0755123456", "Home", "p2", "U2"))

    def test_failed_write_retried(self):
        """A failed write is logged and retried later; nothing is lost."""
        store = FailingStore(fail=1)
        registry = Registry(store, self.clock, flush_delay=1.0)
        registry.add(MAC, sn=SN)
        self.clock.advance(1)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(store.rows, {})
        self.clock.advance(1)
        self.assertEqual(store.rows[MAC][1], SN)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failed_heartbeat_write_retried(self):
        """A heartbeat's write (its two columns) that fails is retried with the next
        flush, and a whole row pending for the same device carries it instead."""
        store = FailingStore(fail=0)
        registry = Registry(store, self.clock, flush_delay=1.0)
        addr = ("127.0.0.9", 40000)
        record = registry.add(MAC, sn=SN, registered=True, hb_addr=addr)
        self.clock.advance(1)
        self.clock.advance(HB_SAVE_INTERVAL)                # written a minute ago
        store.fail = 1
        registry.heartbeat(record, self.clock.seconds(), addr)
        self.clock.advance(1)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertFalse(store.rows[MAC][15])
        self.clock.advance(1)
        self.assertEqual(store.rows[MAC], record.row())
        self.clock.advance(HB_SAVE_INTERVAL)
        registry.heartbeat(record, self.clock.seconds(), addr)  # a beat, and a new SN:
        registry.update(MAC, sn="SN2")                          # one whole row
        self.clock.advance(1)
        self.assertEqual(store.rows[MAC], record.row())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_forgotten_device_heartbeat_not_written(self):
        """A device removed before its heartbeat's write is not written back."""
        addr = ("127.0.0.9", 40000)
        record = self.registry.add(MAC, registered=True, hb_addr=addr)
        self.clock.advance(1)
        self.clock.advance(HB_SAVE_INTERVAL)
        self.assertEqual(self.store.rows[MAC], record.row())
        self.registry.heartbeat(record, self.clock.seconds(), addr)
        self.registry.remove(MAC)
        self.clock.advance(1)
        self.assertNotIn(MAC, self.store.rows)

    def test_close(self):
        """close writes what is pending, and later changes schedule no writes."""
        self.registry.add(MAC)
        self.successResultOf(self.registry.close())
        self.assertIn(MAC, self.store.rows)
        self.registry.update(MAC, online=True)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SQLitePersistenceTests(TestCase):
    """Real adbapi threads on the real reactor, on a temporary database file."""

    def setUp(self):
        self.path = os.path.join(self.mktemp(), "sub", "cubeplat.db")

    @defer.inlineCallbacks
    def open(self):
        registry = Registry(SQLiteStore(self.path, reactor), reactor, flush_delay=0.01)
        yield registry.load()
        return registry

    @defer.inlineCallbacks
    def test_reopen(self):
        """Every field of every device, bindings included, survives a close and re-open."""
        registry = yield self.open()
        self.assertEqual(len(registry), 0)
        registry.preset([DEVICE])
        registry.update(MAC, **{k: v for k, v in full_record().as_dict().items()
                                if k != "mac"})
        registry.bind(MAC, "U9")
        registry.add("001122334455", sn="001122-ABCDEFGHIJKLMNOPQ")
        registry.add("AABBCCDDEEFF")
        yield registry.flush()
        registry.remove("AABBCCDDEEFF")
        expected = {r.mac: r.as_dict() for r in registry}
        yield registry.close()

        again = yield self.open()
        self.addCleanup(again.close)
        self.assertEqual({r.mac: r.as_dict() for r in again}, expected)
        self.assertEqual(again.get(MAC).user_id, "U9")
        self.assertEqual(again.get(MAC).hb_addr, ("127.0.0.9", 40000))

    @defer.inlineCallbacks
    def test_write_behind_reaches_disk(self):
        """A change is on disk shortly after it is made, without a flush call."""
        registry = yield self.open()
        self.addCleanup(registry.close)
        registry.add(MAC, sn=SN)
        d = defer.Deferred()
        reactor.callLater(0.2, d.callback, None)
        yield d
        rows = yield registry.store.pool.runQuery("SELECT mac, sn FROM devices")
        self.assertEqual([tuple(r) for r in rows], [(MAC, SN)])

    @defer.inlineCallbacks
    def test_heartbeat_updates_the_row_in_place(self):
        """A routine heartbeat's write changes online and last_hb of the stored row and
        keeps the row where it is (same rowid: an UPDATE, not a delete and insert), and
        the database keeps a write-ahead log."""
        registry = yield self.open()
        self.addCleanup(registry.close)
        addr = ("127.0.0.9", 40000)
        record = registry.add(MAC, sn=SN, registered=True, hb_addr=addr)
        yield registry.flush()
        query = "SELECT rowid, sn, online, last_hb FROM devices"
        (rowid, _, _, _), = yield registry.store.pool.runQuery(query)
        when = record.hb_saved + HB_SAVE_INTERVAL
        registry.heartbeat(record, when, addr)
        yield registry.flush()
        rows = yield registry.store.pool.runQuery(query)
        self.assertEqual([tuple(r) for r in rows], [(rowid, SN, 1, when)])
        mode = yield registry.store.pool.runQuery("PRAGMA journal_mode")
        self.assertEqual(mode[0][0], "wal")

    @defer.inlineCallbacks
    def test_newer_schema_refused(self):
        """A database written by a newer schema is refused, not silently misread."""
        os.makedirs(os.path.dirname(self.path))
        conn = sqlite3.connect(self.path)
        conn.execute("PRAGMA user_version = 99")
        conn.close()
        registry = Registry(SQLiteStore(self.path, reactor), reactor)
        self.addCleanup(registry.close)
        with self.assertRaises(RuntimeError):
            yield registry.load()

    @defer.inlineCallbacks
    def test_file_mode_0600(self):
        """The database is created 0600 whatever the umask, by the start-up check and by
        the service; a file left group- or world-readable is made 0600."""
        old = os.umask(0o000)
        self.addCleanup(os.umask, old)
        SQLiteStore.check(self.path)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        os.remove(self.path)
        registry = yield self.open()
        registry.add(MAC, sn=SN)
        yield registry.close()
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        os.chmod(self.path, 0o644)
        again = yield self.open()
        self.addCleanup(again.close)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertIn(MAC, again)

    def test_fields_are_columns(self):
        """Every record field has a column (hb_addr as host and port)."""
        self.assertEqual(len(full_record().row()), len(FIELDS) + 1)


class BackendTests(SynchronousTestCase):
    def options(self, *args):
        options = tap.Options()
        options.parseOptions(list(args))
        return options

    def config_file(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_every_backend_is_a_store(self):
        """Each entry of BACKENDS makes an IDeviceStore and checks a default config."""
        for name, backend in BACKENDS.items():
            config = PlatformConfig(registry=name, db=":memory:")
            verifyObject(IDeviceStore, backend.make(config, Clock()))
            backend.check(config)

    def test_default_is_sqlite(self):
        """With no registry key the registry is the SQLite file db, as before."""
        config = parse_config("db: x.db")
        self.assertEqual(config.registry, "sqlite")
        store = tap.build_registry(Clock(), config).store
        self.assertIsInstance(store, SQLiteStore)
        self.assertEqual(store.path, "x.db")

    def test_memory(self):
        """registry: memory keeps the devices in memory only: no database is opened or
        created, and the configured devices are there once the service starts."""
        path = os.path.join(self.mktemp(), "never", "cubeplat.db")
        options = self.options("--config", self.config_file(
            "registry: memory\ndevices: [{mac: '%s'}]\n" % MAC), "--db", path)
        reactor = MemoryReactorClock()
        reactor.listenUDP = lambda port, protocol, interface="", maxPacketSize=8192: None
        top = tap.makeService(options, reactor)
        self.assertIsInstance(top.registry.store, MemoryStore)
        top.startService()
        self.assertIn(MAC, top.registry)
        self.successResultOf(top.stopService())
        self.assertFalse(os.path.exists(os.path.dirname(path)))

    def test_bad_backend(self):
        """An unknown backend is refused with the key and the choices named."""
        e = self.assertRaises(ConfigError, parse_config, "registry: postgres")
        self.assertIn("registry: must be one of memory, sqlite, got 'postgres'", str(e))
