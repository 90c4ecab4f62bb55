"""Tests for cubegw.store.recovery: a corrupt UCI file at start, and the backup."""

import errno
import os

from twisted.trial.unittest import SynchronousTestCase

from cubegw.store import FileSystem, Store, StoreError, uci
from cubegw.store.recovery import RecoveryEvent, open_store, save_backup
from tests.helpers.store import FailingOS

CORRUPT = "config mgt 'mgt'\n\toption Port 'unterminated\n"
WHEN = 1700000000.0  # 2023-11-14T22:13:20Z
ASIDE_SUFFIX = ".corrupt-20231114T221320Z"

GOOD = """
config mgt 'mgt'
\toption MgtURL 'dist.example'
\toption Port '3000'
\toption Heartbeat '45'

config registration 'registration'
\toption ServerAddr 'oper.example'
\toption ServerPort '60001'

config app 'app'
\toption UserID 'U1'

config itms 'itms'
\toption ProvisioningCode 'PC1'
"""


class RecoveryTestMixin:
    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "cubegw")
        self.backup = self.path + ".bak"
        self.logged = []

    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    def read(self, path):
        with open(path) as f:
            return f.read()

    def open(self, **kwargs):
        return open_store(self.path, log=self.logged.append, now=lambda: WHEN, **kwargs)

    def codes(self, events):
        return [e.code for e in events]


class CorruptFileTests(RecoveryTestMixin, SynchronousTestCase):
    """A file that does not parse is moved aside and the store starts anyway."""

    def test_moved_aside_and_mgt_recovered(self):
        """The corrupt file is kept as <path>.corrupt-<time>; the file comes back whole
        from the backup (a complete copy), app and itms values too."""
        self.write(self.backup, GOOD)
        self.write(self.path, CORRUPT)
        store, events = self.open()
        self.assertEqual(self.read(self.path + ASIDE_SUFFIX), CORRUPT)
        self.assertEqual(self.codes(events), ["corrupt", "restored"])
        self.assertEqual(self.logged, [str(e) for e in events])
        self.assertIn(self.path + ASIDE_SUFFIX, events[0].message)
        self.assertIn("line 2", events[0].message)
        self.assertEqual(store.get("mgt", "MgtURL"), "dist.example")
        self.assertEqual(store.get("mgt", "Port"), 3000)
        self.assertEqual(store.get("mgt", "Heartbeat"), 45)
        self.assertEqual(store.get("mgt", "LocatePort"), 17998)
        self.assertEqual(store.get("registration", "ServerAddr"), "oper.example")
        self.assertEqual(store.get("registration", "ServerPort"), 60001)
        self.assertEqual(store.get("app", "UserID"), "U1")
        self.assertEqual(store.get("itms", "ProvisioningCode"), "PC1")
        # The new file is a real, parseable file that a fresh Store reads the same way.
        self.assertEqual(Store(self.path).get("mgt", "Port"), 3000)
        store.set("mgt", "Port", 3001)
        self.assertEqual(Store(self.path).get("mgt", "Port"), 3001)

    def test_no_backup(self):
        """Without a backup the store holds the defaults, and an event says so."""
        self.write(self.path, CORRUPT)
        store, events = self.open()
        self.assertEqual(self.codes(events), ["corrupt", "no-backup"])
        self.assertIn("defaults only", events[1].message)
        self.assertEqual(store.get("mgt", "Port"), 12112)
        self.assertEqual(store.get("mgt", "MgtURL"), "189cube")
        self.assertEqual(store.get("registration", "ServerPort"), 0)
        self.assertTrue(os.path.exists(self.path + ASIDE_SUFFIX))
        self.assertEqual(uci.parse(self.read(self.path)).section("mgt").options["Port"], "12112")

    def test_corrupt_backup_ignored(self):
        """A backup that does not parse either is ignored (and left alone): defaults only."""
        self.write(self.path, CORRUPT)
        self.write(self.backup, "config mgt\n\toption Port \"x\n")
        store, events = self.open()
        self.assertEqual(self.codes(events), ["corrupt", "backup-unusable"])
        self.assertEqual(store.get("mgt", "Port"), 12112)
        self.assertEqual(self.read(self.backup), "config mgt\n\toption Port \"x\n")

    def test_bad_values_in_backup_skipped(self):
        """From a damaged backup (cut: no final newline) only mgt and registration
        values are taken; a value the schema refuses is not, the good ones are."""
        self.write(self.path, CORRUPT)
        self.write(self.backup, "config mgt 'mgt'\n\toption Port 'seventy'\n"
                                "\toption MgtURL 'dist.example'\n\tlist Heartbeat '1'")
        store, events = self.open()
        self.assertEqual(self.codes(events),
                         ["corrupt", "value-skipped", "value-skipped", "restored"])
        self.assertEqual(store.get("mgt", "Port"), 12112)
        self.assertEqual(store.get("mgt", "Heartbeat"), 60)
        self.assertEqual(store.get("mgt", "MgtURL"), "dist.example")

    def test_second_corruption_same_second(self):
        """Two corrupt files in the same second are both kept."""
        self.write(self.path, CORRUPT)
        self.open()
        self.write(self.path, CORRUPT + "#2\n")
        store, events = self.open()
        self.assertEqual(self.read(self.path + ASIDE_SUFFIX + ".2"), CORRUPT + "#2\n")
        self.assertEqual(self.read(self.path + ASIDE_SUFFIX), CORRUPT)

    def test_nul_byte(self):
        """Binary garbage (a NUL) counts as corrupt too."""
        with open(self.path, "wb") as f:
            f.write(b"\x00\xff\xfe config")
        store, events = self.open()
        self.assertEqual(self.codes(events), ["corrupt", "no-backup"])

    def test_unreadable_file_raises(self):
        """A read error is not corruption: StoreError, nothing moved."""
        self.write(self.path, GOOD)
        fs = FileSystem(FailingOS("pread", OSError(errno.EIO, os.strerror(errno.EIO))))
        with self.assertRaises(StoreError):
            open_store(self.path, fs=fs)
        self.assertEqual(self.read(self.path), GOOD)

    def test_write_fails_during_recovery(self):
        """A full disk while keeping the copy: the file is left as it is (never removed
        before a replacement is on disk); with no backup to read, StoreError."""
        self.write(self.path, CORRUPT)
        fs = FileSystem(FailingOS("write"))
        with self.assertRaises(StoreError) as caught:
            open_store(self.path, fs=fs, now=lambda: WHEN, log=self.logged.append)
        self.assertIn("does not parse", str(caught.exception))
        self.assertEqual(self.read(self.path), CORRUPT)
        self.assertFalse(os.path.exists(self.path + ASIDE_SUFFIX))
        self.assertIn("left as it is", self.logged[-1])


class GoodFileTests(RecoveryTestMixin, SynchronousTestCase):
    """A good or missing file is not touched."""

    def test_good_file_untouched(self):
        """A good file: no event, same bytes, same mtime, no file moved aside."""
        self.write(self.path, GOOD)
        self.write(self.backup, CORRUPT)
        before = os.stat(self.path)
        store, events = self.open()
        self.assertEqual(events, [])
        self.assertEqual(self.logged, [])
        self.assertEqual(self.read(self.path), GOOD)
        self.assertEqual(os.stat(self.path).st_mtime_ns, before.st_mtime_ns)
        self.assertEqual(store.get("mgt", "Port"), 3000)
        self.assertEqual(sorted(os.listdir(self.directory)), ["cubegw", "cubegw.bak"])

    def test_missing_file(self):
        """No file: defaults, no event, and no file created."""
        store, events = self.open()
        self.assertEqual(events, [])
        self.assertEqual(store.get("mgt", "Port"), 12112)
        self.assertFalse(os.path.exists(self.path))

    def test_stale_temp_files_removed(self):
        """Temp files of a write killed mid-way are removed at open; others are kept."""
        self.write(self.path, GOOD)
        stale = os.path.join(self.directory, ".cubegw.0123456789ab.tmp")
        other = os.path.join(self.directory, ".cubegw.notours.tmp")
        self.write(stale, "half")
        self.write(other, "keep")
        store, events = self.open()
        self.assertEqual(self.codes(events), ["temp-removed"])
        self.assertFalse(os.path.exists(stale))
        self.assertTrue(os.path.exists(other))

    def test_event_str(self):
        """An event prints as its message."""
        self.assertEqual(str(RecoveryEvent("x", "hello")), "hello")


class SaveBackupTests(RecoveryTestMixin, SynchronousTestCase):
    """save_backup copies the last good file, atomically."""

    def test_copies_file(self):
        """The backup is a byte copy of the file."""
        self.write(self.path, GOOD)
        store, _ = self.open()
        self.assertTrue(save_backup(store))
        self.assertEqual(self.read(self.backup), GOOD)
        self.assertEqual(os.stat(self.backup).st_mode & 0o777, 0o600)

    def test_no_file_no_backup(self):
        """Before the first write there is nothing to back up."""
        store, _ = self.open()
        self.assertFalse(save_backup(store))
        self.assertFalse(os.path.exists(self.backup))

    def test_corrupt_file_keeps_good_backup(self):
        """A file that went bad after load does not replace the good backup."""
        self.write(self.path, GOOD)
        store, _ = self.open()
        save_backup(store)
        self.write(self.path, CORRUPT)
        self.assertFalse(save_backup(store))
        self.assertEqual(self.read(self.backup), GOOD)

    def test_disk_full(self):
        """ENOSPC writing the backup: StoreError, the old backup kept."""
        self.write(self.path, GOOD)
        self.write(self.backup, "old backup\n")
        store, _ = self.open()
        with self.assertRaises(StoreError):
            save_backup(store, fs=FileSystem(FailingOS("write")))
        self.assertEqual(self.read(self.backup), "old backup\n")

    def test_round_trip(self):
        """Values set, backed up, file corrupted, reopened: the values are back."""
        store, _ = self.open()
        store.update({("mgt", "MgtURL"): "d.example", ("mgt", "Port"): 4444,
                      ("registration", "ServerAddr"): "o.example",
                      ("registration", "ServerPort"): 5555, ("app", "UserID"): "U9"})
        save_backup(store)
        self.write(self.path, CORRUPT)
        store, events = self.open()
        self.assertEqual(self.codes(events), ["corrupt", "restored"])
        self.assertEqual((store.get("mgt", "MgtURL"), store.get("mgt", "Port"),
                          store.get("registration", "ServerAddr"),
                          store.get("registration", "ServerPort"), store.get("app", "UserID")),
                         ("d.example", 4444, "o.example", 5555, "U9"))

    def test_custom_backup_path(self):
        """backup_path may be elsewhere (e.g. outside the overlay)."""
        elsewhere = os.path.join(self.directory, "persist.bak")
        self.write(self.path, GOOD)
        store, _ = self.open(backup_path=elsewhere)
        save_backup(store, elsewhere)
        self.write(self.path, CORRUPT)
        store, events = self.open(backup_path=elsewhere)
        self.assertEqual(store.get("mgt", "Port"), 3000)
