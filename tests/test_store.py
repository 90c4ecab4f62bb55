"""Tests for cubegw.store: typed parameters in a UCI file, shared and reset."""

import fcntl
import os
import subprocess
import sys
import textwrap

from twisted.trial.unittest import SynchronousTestCase

import cubegw
from cubegw.store import (
    APP, DEFAULT_SCHEMA, ITMS, MGT, REGISTRATION, SHARED, SHARED_ACCESS, Bool,
    Choice, FileSystem, ParamSpec, SectionType, Store, StoreError, String,
    UnsignedInt, builtin_schema, uci,
)

from tests.helpers.store import FailingOS, extended_schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cubegw.__file__)))
DEFAULTS_FILE = os.path.join(ROOT, "etc", "config", "cubegw")

MGT_DEFAULTS = {"MgtURL": "189cube", "Port": 12112, "Heartbeat": 60, "Ability": 0,
                "LocatePort": 17998, "Version": "1.0"}


class StoreTestMixin:
    """A fresh directory per test, and helpers to look at the file."""

    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "cubegw")

    def store(self, **kwargs):
        return Store(self.path, **kwargs)

    def write(self, text):
        with open(self.path, "w") as f:
            f.write(text)

    def read(self):
        with open(self.path) as f:
            return f.read()

    def on_disk(self, section, name):
        """The option as the real uci would read it from the file."""
        found = uci.parse(self.read()).section(section)
        return None if found is None else found.options.get(name)


class DefaultsTests(StoreTestMixin, SynchronousTestCase):
    """A missing file, the shipped defaults file, and values absent from a file."""

    def test_missing_file_means_defaults(self):
        """With no file every parameter has its default and nothing is written."""
        store = self.store()
        self.assertEqual(store.mgt(), MGT_DEFAULTS)
        self.assertEqual(store.get("registration", "ServerAddr"), "")
        self.assertEqual(store.get("registration", "ServerPort"), 0)
        self.assertEqual(store.get("app", "UserID"), "")
        self.assertEqual(store.get("itms", "ProvisioningCode"), "")
        self.assertFalse(os.path.exists(self.path))

    def test_typed_values(self):
        """unsignedInt parameters read as int, strings as str."""
        self.write("config mgt 'mgt'\n\toption Port '8080'\n\toption MgtURL 'plat.example'\n")
        store = self.store()
        self.assertIdentical(type(store.get("mgt", "Port")), int)
        self.assertEqual(store.get("mgt", "Port"), 8080)
        self.assertEqual(store.get("mgt", "MgtURL"), "plat.example")

    def test_values_not_in_file_take_default(self):
        """A file holding some values gives defaults for the rest."""
        self.write("config mgt 'mgt'\n\toption Heartbeat '30'\n")
        self.assertEqual(self.store().mgt(), dict(MGT_DEFAULTS, Heartbeat=30))

    def test_first_write_creates_file_with_defaults(self):
        """The first set writes the whole defaults file plus the change, mode 0600."""
        self.store().set("mgt", "Heartbeat", 30)
        package = uci.parse(self.read())
        expected = DEFAULT_SCHEMA.defaults_package()
        expected.section("mgt").options["Heartbeat"] = "30"
        self.assertEqual(package, expected)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)

    def test_save_writes_defaults(self):
        """save() on a missing file writes the defaults file and keeps values set by hand."""
        store = self.store()
        store.save()
        self.assertEqual(uci.parse(self.read()), DEFAULT_SCHEMA.defaults_package())
        os.remove(self.path + ".bak")   # else the hand-written file lost values it holds
        self.write("config mgt 'mgt'\n\toption Port '1'\n")
        store.save()
        self.assertEqual(self.on_disk("mgt", "Port"), "1")
        self.assertEqual(self.on_disk("mgt", "Heartbeat"), "60")

    def test_shipped_defaults_file(self):
        """etc/config/cubegw parses and holds exactly the schema defaults."""
        with open(DEFAULTS_FILE) as f:
            package = uci.parse(f.read())
        self.assertEqual(package, DEFAULT_SCHEMA.defaults_package())
        store = Store(DEFAULTS_FILE)
        self.assertEqual(store.mgt(), MGT_DEFAULTS)
        self.assertEqual(store.problems(), [])
        for spec in DEFAULT_SCHEMA.params():
            self.assertEqual(store.get(spec.section, spec.name), spec.default)

    def test_invalid_value_in_file(self):
        """A bad value written by hand reads as the default and is reported."""
        self.write("config mgt 'mgt'\n\toption Heartbeat 'soon'\n\tlist Port '1'\n")
        store = self.store()
        self.assertEqual(store.get("mgt", "Heartbeat"), 60)
        self.assertEqual(store.get("mgt", "Port"), 12112)
        problems = sorted(store.problems())
        self.assertEqual(problems, [
            f"{self.path}: Heartbeat: must be an unsigned integer, got 'soon'; using the default",
            f"{self.path}: Port: must be a single value, not a list; using the default"])

    def test_unparsable_file(self):
        """A file that does not parse raises StoreError naming the file and line."""
        self.write("config mgt 'mgt'\n\toption Port 'x\n")
        with self.assertRaises(StoreError) as caught:
            self.store()
        self.assertIn(self.path, str(caught.exception))
        self.assertIn("line 2", str(caught.exception))


class SetTests(StoreTestMixin, SynchronousTestCase):
    """set() and update() validate, convert and persist."""

    def test_set_converts_and_persists(self):
        """A value given as str or int is stored, and a new Store reads it back."""
        store = self.store()
        self.assertEqual(store.set("mgt", "Heartbeat", "30"), 30)
        self.assertEqual(store.get("mgt", "Heartbeat"), 30)
        store.set("mgt", "Port", 8080)
        self.assertEqual(self.on_disk("mgt", "Port"), "8080")
        self.assertEqual(Store(self.path).mgt(), dict(MGT_DEFAULTS, Heartbeat=30, Port=8080))

    def assertRefused(self, section, name, value, reason):
        store = self.store()
        before = self.read()
        with self.assertRaises(StoreError) as caught:
            store.set(section, name, value)
        self.assertEqual(str(caught.exception), reason)
        self.assertEqual(self.read(), before)
        return store

    def test_bad_values_refused_with_reason(self):
        """Bad values are refused with a human reason and the file is untouched."""
        self.store().set("mgt", "Heartbeat", 90)
        cases = [
            ("mgt", "Heartbeat", "abc", "Heartbeat: must be an unsigned integer, got 'abc'"),
            ("mgt", "Heartbeat", 0, "Heartbeat: must be between 1 and 86400, got 0"),
            ("mgt", "Heartbeat", "-5", "Heartbeat: must be an unsigned integer, got '-5'"),
            ("mgt", "Heartbeat", 1.5, "Heartbeat: must be an unsigned integer, got 1.5"),
            ("mgt", "Heartbeat", True, "Heartbeat: must be an unsigned integer, got True"),
            ("mgt", "Port", 70000, "Port: must be between 1 and 65535, got 70000"),
            ("mgt", "Ability", "2", "Ability: must be between 0 and 1, got 2"),
            ("mgt", "MgtURL", "", "MgtURL: must not be empty"),
            ("mgt", "MgtURL", "a b", "MgtURL: must not contain whitespace, got 'a b'"),
            ("mgt", "MgtURL", "x" * 257, "MgtURL: must be at most 256 characters, got 257"),
            ("mgt", "MgtURL", "a\nb", "MgtURL: must not contain control characters, got 'a\\nb'"),
            ("app", "UserID", "u" * 65, "app.UserID: must be at most 64 characters, got 65"),
            ("mgt", "Nope", "1", "unknown parameter mgt.Nope"),
        ]
        for section, name, value, reason in cases:
            store = self.assertRefused(section, name, value, reason)
            self.assertEqual(store.get("mgt", "Heartbeat"), 90)
        self.assertEqual(self.on_disk("mgt", "Heartbeat"), "90")

    def test_version_read_only(self):
        """Version cannot be set from outside, even to its own value."""
        self.store().save()
        self.assertRefused("mgt", "Version", "2.0", "Version is read-only")
        self.assertRefused("mgt", "Version", "1.0", "Version is read-only")
        self.assertEqual(self.store().read_only_names, ["Version"])

    def test_version_follows_software(self):
        """A Version edited into the file is ignored and rewritten on the next write."""
        self.write("config mgt 'mgt'\n\toption Version '0.1'\n")
        store = self.store()
        self.assertEqual(store.get("mgt", "Version"), "1.0")
        store.set("mgt", "Ability", 1)
        self.assertEqual(self.on_disk("mgt", "Version"), "1.0")

    def test_same_value_succeeds(self):
        """Setting the value already stored succeeds."""
        store = self.store()
        store.set("mgt", "Port", 12112)
        self.assertEqual(store.set("mgt", "Port", "12112"), 12112)
        self.assertEqual(self.on_disk("mgt", "Port"), "12112")

    def test_empty_string_round_trip(self):
        """'' is stored as no option (uci's unset) and reads back as ''."""
        store = self.store()
        store.set("app", "UserID", "user 1")
        self.assertEqual(self.on_disk("app", "UserID"), "user 1")
        store.set("app", "UserID", "")
        self.assertIsNone(self.on_disk("app", "UserID"))
        self.assertEqual(Store(self.path).get("app", "UserID"), "")

    def test_tricky_string_round_trip(self):
        """Quotes, backslashes and unicode survive the file."""
        value = "it's \"x\" \\ 日本 '\\''"
        self.store().set("itms", "ProvisioningCode", value)
        self.assertEqual(Store(self.path).get("itms", "ProvisioningCode"), value)

    def test_update_all_or_nothing(self):
        """update() writes every value, or none when one is refused."""
        store = self.store()
        store.update({("mgt", "Port"): 1000, ("registration", "ServerAddr"): "op.example",
                      ("registration", "ServerPort"): "60001"})
        self.assertEqual(store.get("registration", "ServerPort"), 60001)
        before = self.read()
        with self.assertRaises(StoreError) as caught:
            store.update({("mgt", "Port"): 2000, ("mgt", "Heartbeat"): "x",
                          ("mgt", "Version"): "9"})
        self.assertEqual(str(caught.exception),
                         "Heartbeat: must be an unsigned integer, got 'x'; Version is read-only")
        self.assertEqual(self.read(), before)
        self.assertEqual(store.get("mgt", "Port"), 1000)

    def test_names_and_lookup(self):
        """A CLI can list X_CT-COM_Mgt parameters by bare name and address them."""
        store = self.store()
        self.assertEqual(store.names(), list(MGT_DEFAULTS))
        for text in ("Heartbeat", "mgt.Heartbeat", "X_CT-COM_Mgt.Heartbeat",
                     "InternetGatewayDevice.X_CT-COM_Mgt.Heartbeat"):
            self.assertEqual(store.lookup(text).key, ("mgt", "Heartbeat"))
        self.assertEqual(store.lookup("app.UserID").owner, APP)
        self.assertRaises(StoreError, store.lookup, "UserID")


class AtomicWriteTests(StoreTestMixin, SynchronousTestCase):
    """Writes replace the file whole or not at all."""

    def test_no_temp_file_left(self):
        """After a write only the file and its backup are in the directory."""
        store = self.store()
        store.set("mgt", "Port", 1)
        store.set("mgt", "Port", 2)
        self.assertEqual(sorted(os.listdir(self.directory)), ["cubegw", "cubegw.bak"])
        self.assertEqual(self.read(), open(self.path + ".bak").read())
        self.assertTrue(self.read().endswith("\n\n"))
        self.assertEqual(uci.parse(self.read()).section("itms").type, "itms")

    def assertFailedWriteKeepsFile(self, failing_call):
        self.store().set("mgt", "Port", 1111)
        before = self.read()
        store = self.store(fs=FileSystem(FailingOS(failing_call)))
        with self.assertRaises(StoreError) as caught:
            store.set("mgt", "Port", 2222)
        self.assertIn("cannot write", str(caught.exception))
        self.assertEqual(self.read(), before)
        self.assertEqual(sorted(os.listdir(self.directory)), ["cubegw", "cubegw.bak"])
        with open(self.path + ".bak") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(store.get("mgt", "Port"), 1111)
        self.assertEqual(self.store().get("mgt", "Port"), 1111)

    def test_disk_full(self):
        """ENOSPC while writing leaves the old file intact and raises StoreError."""
        self.assertFailedWriteKeepsFile("write")

    def test_fsync_fails(self):
        """A failing fsync leaves the old file intact and raises StoreError."""
        self.assertFailedWriteKeepsFile("fsync")

    def test_rename_fails(self):
        """A failing os.replace leaves the old file intact and raises StoreError."""
        self.assertFailedWriteKeepsFile("replace")

    def test_lock_held_during_write(self):
        """libuci's lock (flock on the file itself) is held while the backup is written."""
        test = self

        class CheckingFileSystem(FileSystem):
            def write_atomic(self, path, data, mode=0o600):
                fd = os.open(test.path, os.O_RDWR)
                try:
                    test.assertRaises(BlockingIOError, fcntl.flock, fd,
                                      fcntl.LOCK_EX | fcntl.LOCK_NB)
                finally:
                    os.close(fd)
                super().write_atomic(path, data, mode)

        self.store().save()
        self.store(fs=CheckingFileSystem()).set("mgt", "Port", 5)
        self.assertEqual(self.on_disk("mgt", "Port"), "5")

    def test_foreign_multiline_value_kept(self):
        """A vendor's multi-line value (valid UCI) does not stop our writes, and is
        written back as it was."""
        self.write("config vendor 'v'\n\toption banner 'two\nlines'\n")
        store = self.store()
        store.set("mgt", "Port", 5)
        self.assertEqual(self.on_disk("mgt", "Port"), "5")
        self.assertIn("\toption banner 'two\nlines'\n", self.read())
        self.assertRaises(StoreError, store.set, "mgt", "MgtURL", "two\nlines")

    def test_unparsable_file_not_overwritten(self):
        """A file broken after load is not overwritten by a write."""
        store = self.store()
        self.write("config mgt 'mgt\n")
        self.assertRaises(StoreError, store.set, "mgt", "Port", 5)
        self.assertEqual(self.read(), "config mgt 'mgt\n")


class SharingTests(StoreTestMixin, SynchronousTestCase):
    """The daemon and cubegw-ctl write the same file without losing changes."""

    def test_two_stores_keep_both_writes(self):
        """Each write re-reads the file, so a stale Store keeps the other's change."""
        daemon, ctl = self.store(), self.store()
        ctl.set("mgt", "Heartbeat", 30)
        daemon.set("registration", "ServerAddr", "op.example")
        ctl.set("mgt", "Port", 1234)
        fresh = Store(self.path)
        self.assertEqual(fresh.get("mgt", "Heartbeat"), 30)
        self.assertEqual(fresh.get("mgt", "Port"), 1234)
        self.assertEqual(fresh.get("registration", "ServerAddr"), "op.example")

    def test_two_processes(self):
        """Another process adding items while we add ours: no item is lost."""
        child = textwrap.dedent("""
            import sys
            from cubegw.store import Store
            from tests.helpers.store import extended_schema
            store = Store(sys.argv[1], extended_schema())
            print("ready", flush=True)
            for i in range(40):
                store.add_section("access", "C%03d" % i)
        """)
        env = dict(os.environ, PYTHONPATH=ROOT)
        process = subprocess.Popen([sys.executable, "-c", child, self.path], cwd=ROOT,
                                   env=env, stdout=subprocess.PIPE)
        self.addCleanup(process.stdout.close)
        self.assertEqual(process.stdout.readline(), b"ready\n")
        store = self.store(schema=extended_schema())
        for i in range(40):
            store.add_section("access", "P%03d" % i)
        self.assertEqual(process.wait(timeout=60), 0)
        keys = {item["mac"] for item in Store(self.path, extended_schema()).list_sections("access")}
        self.assertEqual(keys, {f"{side}{i:03d}" for side in "CP" for i in range(40)})


class ReloadTests(StoreTestMixin, SynchronousTestCase):
    """reload() tells the daemon what another writer changed."""

    def test_reports_changed_keys(self):
        """Keys changed in the file since the last load are reported once."""
        daemon = self.store()
        ctl = self.store()
        ctl.update({("mgt", "Heartbeat"): 30, ("mgt", "Port"): 12112,
                    ("app", "UserID"): "u1"})
        self.assertEqual(daemon.reload(), {("mgt", "Heartbeat"), ("app", "UserID")})
        self.assertEqual(daemon.get("mgt", "Heartbeat"), 30)
        self.assertEqual(daemon.reload(), set())

    def test_own_writes_not_reported(self):
        """What this Store wrote itself is not reported back."""
        store = self.store()
        store.set("mgt", "Heartbeat", 45)
        self.assertEqual(store.reload(), set())

    def test_other_change_reported_after_own_write(self):
        """A change by another process is reported even if our write re-read it first."""
        daemon, ctl = self.store(), self.store()
        ctl.set("mgt", "Heartbeat", 30)
        daemon.set("registration", "ServerPort", 60001)
        self.assertEqual(daemon.get("mgt", "Heartbeat"), 30)
        self.assertEqual(daemon.reload(), {("mgt", "Heartbeat")})

    def test_hand_edit_and_delete(self):
        """An edit by hand and a deleted file (read from the backup) are both seen."""
        store = self.store()
        store.set("mgt", "Ability", 1)
        self.write(self.read().replace("Ability '1'", "Ability '0'")
                   .replace("LocatePort '17998'", "LocatePort '18000'"))
        self.assertEqual(store.reload(), {("mgt", "Ability"), ("mgt", "LocatePort")})
        os.remove(self.path)            # read from the backup: our last write
        self.assertEqual(store.reload(), {("mgt", "Ability"), ("mgt", "LocatePort")})
        self.assertEqual(store.get("mgt", "Ability"), 1)

    def test_broken_file_keeps_last_good(self):
        """A file that stops parsing, without a backup: StoreError, the old values stay."""
        store = self.store()
        store.set("mgt", "Heartbeat", 30)
        os.remove(self.path + ".bak")
        self.write("config mgt 'mgt'\n\toption Heartbeat 45 extra\n")
        with self.assertRaises(StoreError) as caught:
            store.reload()
        self.assertIn("line 2: too many arguments", str(caught.exception))
        self.assertEqual(store.get("mgt", "Heartbeat"), 30)

    def test_broken_file_read_from_backup(self):
        """A file that stops parsing, with a good backup: read from it, and said so."""
        store = self.store()
        store.set("mgt", "Heartbeat", 30)
        self.write("config mgt 'mgt'\n\toption Heartbeat 45 extra\n")
        self.assertEqual(store.reload(), set())
        self.assertEqual(store.get("mgt", "Heartbeat"), 30)
        self.assertIn("line 2: too many arguments", store.problems()[0])
        self.assertIn("read from the backup", store.problems()[1])

    def test_section_items_reported(self):
        """Added, changed and removed items of repeatable sections are reported."""
        schema = extended_schema()
        daemon, ctl = self.store(schema=schema), self.store(schema=schema)
        ctl.add_section("access", "AA")
        ctl.add_section("access", "BB")
        self.assertEqual(daemon.reload(), {("access", "AA"), ("access", "BB")})
        ctl.update_section("access", "AA", {"Limit": 5})
        ctl.remove_section("access", "BB")
        self.assertEqual(daemon.reload(), {("access", "AA"), ("access", "BB")})


class ResetTests(StoreTestMixin, SynchronousTestCase):
    """Factory resets follow protocol.md section 10 exactly."""

    CHANGED = {
        ("mgt", "MgtURL"): "plat.example", ("mgt", "Port"): 1000, ("mgt", "Heartbeat"): 30,
        ("mgt", "Ability"): 1, ("mgt", "LocatePort"): 18000,
        ("registration", "ServerAddr"): "op.example", ("registration", "ServerPort"): 60001,
        ("app", "UserID"): "u1", ("app", "WiFiTimer"): True,
        ("itms", "ProvisioningCode"): "PC1",
        ("shared", "SSID"): "Home", ("shared", "Band"): "5G", ("shared", "Blocked"): "x",
    }

    def setUp(self):
        super().setUp()
        self.schema = extended_schema()
        self.store_ = self.store(schema=self.schema)
        self.store_.update(self.CHANGED)
        self.store_.add_section("access", "AA", {"Internet": 0})
        self.store_.add_section("access", "BB")
        self.write(self.read().replace("\nconfig mgt", "\nconfig vendor 'v'\n\toption x 'y'\n"
                                       "\nconfig mgt"))
        self.store_.reload()

    def values(self):
        store = Store(self.path, self.schema)
        return {key: store.get(*key) for key in self.CHANGED}

    def expect(self, reset_keys):
        """The values after a reset of exactly ``reset_keys``."""
        return {key: (self.schema.param(*key).default if key in reset_keys else value)
                for key, value in self.CHANGED.items()}

    def test_itms_reset(self):
        """ITMS reset clears ITMS, shared and access data; X_CT-COM_Mgt, registration
        and APP data stay."""
        reset = {("itms", "ProvisioningCode"), ("shared", "SSID"), ("shared", "Band"),
                 ("shared", "Blocked")}
        self.assertEqual(self.store_.factory_reset_itms(),
                         reset | {("access", "AA"), ("access", "BB")})
        self.assertEqual(self.values(), self.expect(reset))
        self.assertEqual(self.store_.list_sections("access"), [])
        self.assertEqual(self.on_disk("v", "x"), "y")

    def test_app_reset(self):
        """APP reset clears APP data and LAN access control only: not ITMS, not the
        other shared data, not X_CT-COM_Mgt or registration."""
        reset = {("app", "UserID"), ("app", "WiFiTimer"), ("shared", "Blocked")}
        self.assertEqual(self.store_.factory_reset_app(),
                         reset | {("access", "AA"), ("access", "BB")})
        self.assertEqual(self.values(), self.expect(reset))
        self.assertEqual(self.store_.list_sections("access"), [])
        self.assertEqual(self.on_disk("v", "x"), "y")

    def test_reset_twice(self):
        """A second reset changes nothing and reports nothing."""
        self.store_.factory_reset_app()
        self.assertEqual(self.store_.factory_reset_app(), set())

    def test_builtin_schema_resets(self):
        """With only the built-ins, neither reset touches mgt or registration."""
        store = Store(self.path)
        self.assertEqual(store.factory_reset_app(), {("app", "UserID")})
        self.assertEqual(store.factory_reset_itms(), {("itms", "ProvisioningCode")})
        self.assertEqual(store.get("mgt", "Heartbeat"), 30)
        self.assertEqual(store.get("registration", "ServerPort"), 60001)

    def test_reset_table(self):
        """The owner classes each reset covers are the ones of protocol.md."""
        from cubegw.store import APP_RESET, ITMS_RESET
        self.assertEqual(ITMS_RESET, {ITMS, SHARED, SHARED_ACCESS})
        self.assertEqual(APP_RESET, {APP, SHARED_ACCESS})
        self.assertNotIn(MGT, ITMS_RESET | APP_RESET)
        self.assertNotIn(REGISTRATION, ITMS_RESET | APP_RESET)


class PreserveTests(StoreTestMixin, SynchronousTestCase):
    """What the schema does not know is kept as it is."""

    def test_unknown_sections_and_options_kept(self):
        """A vendor's sections, options and lists survive our writes."""
        self.write("config vendor 'acme'\n\toption debug 1\n\tlist servers 'a b'\n"
                   "\tlist servers c\n\nconfig mgt 'mgt'\n\toption Colour 'blue'\n"
                   "\toption Port 99\n\nconfig rule\n\toption name x\n")
        store = self.store()
        store.set("mgt", "Heartbeat", 30)
        store.factory_reset_itms()
        package = uci.parse(self.read())
        self.assertEqual(package.section("acme").options,
                         {"debug": "1", "servers": ["a b", "c"]})
        self.assertEqual(package.section("mgt").options["Colour"], "blue")
        self.assertEqual(package.section("mgt").options["Port"], "99")
        self.assertEqual(package.sections_of("rule")[0].options, {"name": "x"})
        self.assertEqual([s.name for s in package.sections][:3], ["acme", "mgt", None])


class SectionTests(StoreTestMixin, SynchronousTestCase):
    """Repeatable sections: one item per key, e.g. per LAN device."""

    def setUp(self):
        super().setUp()
        self.store_ = self.store(schema=extended_schema())

    def test_add_get_list(self):
        """Items are anonymous sections found by their key option, typed, defaults filled."""
        item = self.store_.add_section("access", "64D95420214B", {"Limit": "10"})
        self.assertEqual(item, {"mac": "64D95420214B", "Internet": True, "Limit": 10})
        self.store_.add_section("access", "AA", {"Internet": "0"})
        self.assertEqual([i["mac"] for i in self.store_.list_sections("access")],
                         ["64D95420214B", "AA"])
        self.assertEqual(self.store_.get_section("access", "AA")["Internet"], False)
        self.assertIsNone(self.store_.get_section("access", "BB"))
        section = uci.parse(self.read()).sections_of("access")[1]
        self.assertEqual((section.name, section.options), (None, {"mac": "AA", "Internet": "0"}))

    def test_update_and_remove(self):
        """update changes given values only; remove deletes and says whether it did."""
        self.store_.add_section("access", "AA", {"Limit": 3})
        self.assertEqual(self.store_.update_section("access", "AA", {"Internet": False}),
                         {"mac": "AA", "Internet": False, "Limit": 3})
        self.assertTrue(self.store_.remove_section("access", "AA"))
        self.assertFalse(self.store_.remove_section("access", "AA"))
        self.assertEqual(self.store_.list_sections("access"), [])

    def test_refusals(self):
        """Duplicate add, update of a missing item, bad values and unknown types are refused."""
        self.store_.add_section("access", "AA")
        before = self.read()
        for call, reason in [
                (lambda: self.store_.add_section("access", "AA"), "access AA already exists"),
                (lambda: self.store_.update_section("access", "BB", {}), "no access BB"),
                (lambda: self.store_.add_section("access", "CC", {"Limit": 5000}),
                 "access.Limit: must be between 0 and 1000, got 5000"),
                (lambda: self.store_.add_section("access", "CC", {"Colour": 1}),
                 "access: unknown parameter 'Colour'"),
                (lambda: self.store_.add_section("access", "", {}), "access.mac: must not be empty"),
                (lambda: self.store_.list_sections("nope"), "unknown section type 'nope'")]:
            with self.assertRaises(StoreError) as caught:
                call()
            self.assertEqual(str(caught.exception), reason)
        self.assertEqual(self.read(), before)

    def test_items_written_by_hand(self):
        """Items without a key or with a duplicate key are ignored and reported."""
        self.write("config access\n\toption Limit 1\n\nconfig access\n\toption mac AA\n"
                   "\toption Limit 2\n\nconfig access 'named'\n\toption mac AA\n")
        store = self.store(schema=extended_schema())
        self.assertEqual(store.list_sections("access"),
                         [{"mac": "AA", "Internet": True, "Limit": 2}])
        self.assertEqual(len(store.problems()), 2)


class SchemaTests(SynchronousTestCase):
    """The registry and the value kinds."""

    def test_registration_conflicts(self):
        """Duplicate parameters and clashing section names are refused."""
        schema = builtin_schema()
        self.assertRaises(ValueError, schema.register,
                          ParamSpec("mgt", "Port", UnsignedInt(), 1, MGT))
        self.assertRaises(ValueError, schema.register_type, SectionType("mgt", "k", APP))
        schema.register_type(SectionType("access", "mac", SHARED_ACCESS))
        self.assertRaises(ValueError, schema.register,
                          ParamSpec("access", "X", UnsignedInt(), 1, APP))

    def test_default_schema_untouched_by_copies(self):
        """builtin_schema() and copy() give registries independent of DEFAULT_SCHEMA."""
        copy = DEFAULT_SCHEMA.copy()
        copy.register(ParamSpec("app", "Extra", UnsignedInt(), 1, APP))
        self.assertRaises(StoreError, DEFAULT_SCHEMA.param, "app", "Extra")
        self.assertEqual(len(builtin_schema().params()), len(DEFAULT_SCHEMA.params()))

    def test_bad_spec(self):
        """A default its kind refuses, a bad name or a bad owner fail at definition."""
        self.assertRaises(StoreError, ParamSpec, "s", "n", UnsignedInt(1, 2), 3, APP)
        self.assertRaises(ValueError, ParamSpec, "s", "bad-name", UnsignedInt(), 1, APP)
        self.assertRaises(ValueError, ParamSpec, "s", "n", UnsignedInt(), 1, "APP")

    def test_kinds(self):
        """Bool and Choice accept the usual spellings and refuse the rest."""
        self.assertEqual([Bool().convert(v) for v in ("1", "on", "Yes", 0, False)],
                         [True, True, True, False, False])
        self.assertRaises(StoreError, Bool().convert, "maybe")
        self.assertEqual(Bool().to_text(True), "1")
        self.assertEqual(Choice(("a", "b")).convert("b"), "b")
        self.assertRaises(StoreError, Choice(("a", "b")).convert, "c")
        self.assertEqual(UnsignedInt().convert(" 007 "), 7)
        self.assertRaises(StoreError, UnsignedInt().convert, "٣")
        self.assertEqual(String().convert(42), "42")

    def test_non_empty_default_refuses_empty(self):
        """A string with a non-empty default cannot be set to '' (uci would read it unset)."""
        spec = ParamSpec("s", "n", String(), "x", APP)
        with self.assertRaises(StoreError) as caught:
            spec.convert("")
        self.assertEqual(str(caught.exception), "s.n: must not be empty")


class DerivedTests(StoreTestMixin, SynchronousTestCase):
    """``derived`` keeps a value worked out from the contents until they change."""

    def setUp(self):
        super().setUp()
        self.store_ = self.store(schema=extended_schema())
        self.computed = 0

    def ability(self):
        """``Ability`` through ``derived``, counting the times it was worked out."""
        def compute():
            self.computed += 1
            return self.store_.get("mgt", "Ability")
        return self.store_.derived("ability", compute)

    def test_kept_while_the_contents_stay(self):
        """Asked again with nothing changed, the value is not worked out again."""
        self.assertEqual([self.ability(), self.ability()], [0, 0])
        self.assertEqual(self.computed, 1)

    def test_every_change_is_seen(self):
        """A write of this store, of another one followed by a reload, a section change,
        a factory reset and a hand edit each give the new value at once."""
        other = self.store(schema=extended_schema())
        changes = [
            (lambda: self.store_.set("mgt", "Ability", 1), 1),
            (lambda: (other.set("mgt", "Ability", 0), self.store_.reload()), 0),
            (lambda: self.store_.set("mgt", "Ability", 1), 1),
            (lambda: self.store_.add_section("access", "AA"), 1),
            (lambda: self.write(self.read().replace("Ability '1'", "Ability '0'")), 1),
            (self.store_.reload, 0),
            (lambda: self.store_.set("mgt", "Ability", 1), 1),
            (self.store_.factory_reset_itms, 1),
        ]
        for change, expected in changes:
            change()
            self.assertEqual(self.ability(), expected)
            self.assertEqual(self.ability(), self.store_.get("mgt", "Ability"))

    def test_contents_replaced_never_changed(self):
        """What makes ``derived`` right: a write leaves the contents that were in use
        as they were (a new package takes their place)."""
        before = self.store_._package
        text = uci.serialize(before)
        self.store_.set("mgt", "Ability", 1)
        self.store_.add_section("access", "AA")
        self.store_.factory_reset_app()
        self.assertIsNot(self.store_._package, before)
        self.assertEqual(uci.serialize(before), text)

    def test_failure_keeps_nothing(self):
        """A ``compute`` that raises is asked again next time."""
        self.assertRaises(ZeroDivisionError, self.store_.derived, "x", lambda: 1 / 0)
        self.assertEqual(self.store_.derived("x", lambda: 5), 5)
