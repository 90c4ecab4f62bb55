"""Nothing lost: every corruption shape of the store file, and ENOSPC at every write step.

X_CT-COM_Mgt and the stored operation platform must come back exactly as last
acknowledged: read by a fresh Store (before any repair), after ``recover_file`` (the
daemon's start), and after the backup is saved again (a good backup is never replaced by
a worse file).  Each test prints a ``STORE DAMAGE FIGURES`` line (docs/SECURITY.md).
"""

import errno
import os
import random

from twisted.trial.unittest import SynchronousTestCase

from cubegw.store import FileSystem, Store, StoreError, mirror
from cubegw.store.recovery import recover_file, save_backup

ACKED = {("mgt", "MgtURL"): "dist.example", ("mgt", "Port"): 3000,
         ("mgt", "Heartbeat"): 45, ("mgt", "Ability"): 1, ("mgt", "LocatePort"): 18000,
         ("registration", "ServerAddr"): "oper.example",
         ("registration", "ServerPort"): 60001}
REFUSED = {("mgt", "MgtURL"): "other.example", ("mgt", "Port"): 4000,
           ("registration", "ServerAddr"): "x" * 200, ("registration", "ServerPort"): 1}


def _line_end(text, needle):
    return text.index(b"\n", text.index(needle)) + 1


#: name -> function of the good file's bytes giving the damaged bytes.
SHAPES = {
    "empty": lambda good: b"",
    "truncated mid-line": lambda good: good[:good.index(b"Port '") + 8],
    "truncated at a line boundary (in mgt)": lambda good: good[:_line_end(good, b"Port '")],
    "truncated at a line boundary (registration gone)":
        lambda good: good[:good.index(b"config registration")],
    "mgt section removed": lambda good: good[:good.index(b"config mgt")]
        + good[good.index(b"config registration"):],
    "binary garbage": lambda good: random.Random(16).randbytes(len(good)),
    "zero-filled block (whole file)": lambda good: b"\0" * len(good),
    "zero-filled block (mid-file)": lambda good: good[:64] + b"\0" * 64 + good[128:],
}

#: os calls that write, and can fail with ENOSPC (an open only if it creates).
WRITE_CALLS = {"open", "write", "pwrite", "fsync", "ftruncate", "replace", "fchmod"}


class StepOS:
    """The os module, numbering each writing call; the ``fail_at``-th fails (ENOSPC)."""

    def __init__(self, fail_at=None):
        self.calls = []
        self.fail_at = fail_at

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in WRITE_CALLS:
            return real

        def call(*args, **kwargs):
            if name == "open" and not args[1] & os.O_CREAT:
                return real(*args, **kwargs)
            self.calls.append(name)
            if len(self.calls) - 1 == self.fail_at:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real(*args, **kwargs)
        return call


class DamageMixin:
    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "cubegw")
        self.backup = self.path + ".bak"

    def acknowledge(self, **kwargs):
        store = Store(self.path, **kwargs)
        store.update(ACKED)
        store.set("app", "UserID", "U1")
        return store

    def lost(self, store):
        """The acknowledged values a store does not hold."""
        return [key for key, value in ACKED.items() if store.get(*key) != value]

    def damage(self, shape):
        with open(self.path, "rb") as f:
            good = f.read()
        with open(self.path, "wb") as f:
            f.write(SHAPES[shape](good))

    def temps(self):
        return [n for n in os.listdir(self.directory) if n.endswith(".tmp")]


class CorruptionShapeTests(DamageMixin, SynchronousTestCase):
    """Each shape, recovered from the backup or from the mirror: 0 values lost."""

    def check_shapes(self, source):
        lost_total = 0
        for shape in SHAPES:
            self.setUp()
            persist = os.path.join(self.directory, "persist")
            os.makedirs(persist)
            sync = mirror.MirrorSync(mirror.DirectoryMirror(persist))
            self.acknowledge(on_contents=sync)
            self.damage(shape)
            if source == "mirror":
                os.remove(self.backup)
            lost = [] if source == "mirror" else self.lost(Store(self.path))
            events = recover_file(self.path, mirror=sync.mirror if source == "mirror" else None)
            self.assertIn(events[0].code, ("corrupt", "missing"), shape)
            store = Store(self.path)
            lost += self.lost(store)
            self.assertEqual(store.problems(), [], shape)
            save_backup(store)
            lost += self.lost(Store(self.backup))
            if source == "backup":
                self.assertEqual(store.get("app", "UserID"), "U1", shape)
            self.assertEqual(lost, [], shape)
            lost_total += len(lost)
        print(f"\nSTORE DAMAGE FIGURES: {len(SHAPES)} corruption shapes, recovered from "
              f"the {source}: {lost_total} values lost")

    def test_shapes_recovered_from_backup(self):
        """Every shape: a fresh Store reads the backup, recovery rebuilds the file whole
        (app values too), and the backup stays good; 0 values lost."""
        self.check_shapes("backup")

    def test_shapes_recovered_from_mirror(self):
        """Every shape with no backup: X_CT-COM_Mgt and the registration from the mirror."""
        self.check_shapes("mirror")

    def test_damaged_file_never_replaces_good_backup(self):
        """save_backup with a damaged file (any shape) leaves the good backup as it is."""
        for shape in SHAPES:
            self.setUp()
            store = self.acknowledge()
            with open(self.backup, "rb") as f:
                before = f.read()
            self.damage(shape)
            self.assertFalse(save_backup(store), shape)
            with open(self.backup, "rb") as f:
                self.assertEqual(f.read(), before, shape)

    def test_damaged_file_copied_aside(self):
        """The damaged bytes are kept as <file>.corrupt-<time>, the file rebuilt in place."""
        self.acknowledge()
        inode = os.stat(self.path).st_ino
        self.damage("binary garbage")
        recover_file(self.path)
        aside = [n for n in os.listdir(self.directory) if ".corrupt-" in n]
        self.assertEqual(len(aside), 1)
        self.assertEqual(os.stat(self.path).st_ino, inode)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)

    def test_missing_file_restored(self):
        """A missing file with a good backup comes back whole at start."""
        self.acknowledge()
        os.remove(self.path)
        self.assertEqual(self.lost(Store(self.path)), [])
        self.assertEqual([e.code for e in recover_file(self.path)], ["missing", "restored"])
        self.assertEqual(self.lost(Store(self.path)), [])

    def test_intended_removal_by_the_daemon_kept(self):
        """The daemon's own write may drop an option (ServerAddr ''): the backup follows,
        and a restart does not bring the old value back."""
        store = self.acknowledge()
        store.set("registration", "ServerAddr", "")
        self.assertEqual(recover_file(self.path), [])
        self.assertEqual(Store(self.path).get("registration", "ServerAddr"), "")


class DiskFullTests(DamageMixin, SynchronousTestCase):
    """ENOSPC at each writing call of a write and of a recovery: nothing changes."""

    def steps(self, stale_backup):
        """The writing calls of one refused-to-be write, recorded."""
        self.acknowledge()
        if stale_backup:
            self.make_backup_stale()
        recorder = StepOS()
        Store(self.path, fs=FileSystem(recorder)).update(REFUSED)
        return recorder.calls

    def make_backup_stale(self):
        """A change made with uci since the backup (the write copies the file first)."""
        with open(self.path) as f:
            text = f.read()
        with open(self.path, "w") as f:
            f.write(text.replace("U1", "U2"))

    def check_write_steps(self, stale_backup):
        calls = self.steps(stale_backup)
        lost = 0
        for step, name in enumerate(calls):
            self.setUp()
            self.acknowledge()
            if stale_backup:
                self.make_backup_stale()
            store = Store(self.path, fs=FileSystem(StepOS(fail_at=step)))
            with self.assertRaises(StoreError, msg=f"step {step} {name}"):
                store.update(REFUSED)
            found = self.lost(store) + self.lost(Store(self.path))
            recover_file(self.path)
            found += self.lost(Store(self.path)) + self.lost(Store(self.backup))
            self.assertEqual(found, [], f"ENOSPC at step {step} ({name})")
            self.assertEqual(self.temps(), [], f"step {step} ({name})")
            lost += len(found)
        print(f"\nSTORE DAMAGE FIGURES: ENOSPC at each of {len(calls)} write steps "
              f"({'backup stale' if stale_backup else 'backup current'}: "
              f"{' '.join(calls)}): {lost} values lost")
        return calls

    def test_enospc_each_write_step(self):
        """ENOSPC at each writing call of a write: refused, values as acknowledged."""
        calls = self.check_write_steps(stale_backup=False)
        self.assertIn("pwrite", calls)
        self.assertIn("replace", calls)

    def test_enospc_each_write_step_stale_backup(self):
        """Same, when the backup must first catch up with a uci change."""
        calls = self.check_write_steps(stale_backup=True)
        self.assertEqual(calls.count("replace"), 2)

    def test_enospc_each_recovery_step(self):
        """ENOSPC at each writing call of a recovery, for every shape: the damaged file
        is left as it is, a Store reads the backup; once space is back, all is there."""
        lost = steps_total = 0
        for shape in SHAPES:
            self.setUp()
            self.acknowledge()
            self.damage(shape)
            recorder = StepOS()
            recover_file(self.path, fs=FileSystem(recorder))
            for step in range(len(recorder.calls)):
                self.setUp()
                self.acknowledge()
                self.damage(shape)
                with open(self.path, "rb") as f:
                    damaged = f.read()
                events = recover_file(self.path, fs=FileSystem(StepOS(fail_at=step)))
                self.assertEqual(events[-1].code, "not-repaired", (shape, step))
                with open(self.path, "rb") as f:
                    self.assertEqual(f.read(), damaged, (shape, step))
                found = self.lost(Store(self.path))
                recover_file(self.path)             # space freed: the next start
                found += self.lost(Store(self.path))
                self.assertEqual(found, [], (shape, step))
                lost += len(found)
                steps_total += 1
        print(f"\nSTORE DAMAGE FIGURES: ENOSPC at each recovery step: {len(SHAPES)} shapes, "
              f"{steps_total} shape x step cases: {lost} values lost")

    def test_write_after_space_freed(self):
        """A write refused for ENOSPC goes through once space is back."""
        self.acknowledge()
        store = Store(self.path, fs=FileSystem(StepOS(fail_at=2)))
        self.assertRaises(StoreError, store.update, REFUSED)
        Store(self.path).update(REFUSED)
        self.assertEqual(Store(self.path).get("mgt", "Port"), 4000)
        self.assertEqual(Store(self.backup).get("mgt", "Port"), 4000)
