"""The store beside the real ``uci`` (built from OpenWrt's sources, tests/helpers/
openwrt_tools.py), and on a real full file system (a small tmpfs, as root).

Prints ``STORE UCI FIGURES`` and ``STORE TMPFS FIGURES`` lines (docs/SECURITY.md).
"""

import os
import subprocess
import threading

from twisted.trial.unittest import SynchronousTestCase

from cubegw.store import Store, StoreError, uci
from cubegw.store.recovery import recover_file
from tests.helpers.openwrt_tools import tool
from tests.helpers.store import extended_schema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROUNDS = 300


class ConcurrentUciCommitTests(SynchronousTestCase):
    """``uci set`` + ``uci commit`` in a loop beside the daemon's writes: none lost."""

    def setUp(self):
        self.uci = tool("uci")
        base = os.path.abspath(self.mktemp())
        self.confdir = os.path.join(base, "config")
        self.savedir = os.path.join(base, "save")
        os.makedirs(self.confdir)
        os.makedirs(self.savedir)
        self.path = os.path.join(self.confdir, "cubegw")

    def run_uci(self, *args):
        return subprocess.run([self.uci, "-c", self.confdir, "-t", self.savedir, *args],
                              capture_output=True, text=True, timeout=30)

    def test_300_uci_commits_beside_300_daemon_writes(self):
        """300 uci set+commit (each a new option) interleaved with 300 Store writes
        (each a new access section): every one of the 600 is in the file at the end."""
        schema = extended_schema()
        Store(self.path, schema=schema).save()
        self.assertEqual(self.run_uci("set", "cubegw.ucitest=ucitest").returncode, 0)
        self.assertEqual(self.run_uci("commit", "cubegw").returncode, 0)
        script = (f'i=0; while [ $i -lt {ROUNDS} ]; do i=$((i+1)); '
                  f'"$0" -c "$1" -t "$2" set cubegw.ucitest.k$i=v$i || exit 1; '
                  f'"$0" -c "$1" -t "$2" commit cubegw || exit 2; done')
        loop = subprocess.Popen(["sh", "-c", script, self.uci, self.confdir, self.savedir],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        store = Store(self.path, schema=schema)
        errors = []

        def daemon():
            for i in range(ROUNDS):
                try:
                    store.add_section("access", f"D{i}")
                except StoreError as e:  # pragma: no cover - reported below
                    errors.append(str(e))
        writer = threading.Thread(target=daemon)
        writer.start()
        writer.join(120)
        out, err = loop.communicate(timeout=120)
        self.assertEqual((loop.returncode, errors), (0, []), err)
        with open(self.path) as f:
            package = uci.parse(f.read())
        options = package.section("ucitest").options
        uci_lost = sum(options.get(f"k{i}") != f"v{i}" for i in range(1, ROUNDS + 1))
        keys = {s.options.get("mac") for s in package.sections_of("access")}
        daemon_lost = sum(f"D{i}" not in keys for i in range(ROUNDS))
        shown = self.run_uci("get", f"cubegw.ucitest.k{ROUNDS}")
        print(f"\nSTORE UCI FIGURES: {ROUNDS} uci set+commit beside {ROUNDS} daemon writes: "
              f"{uci_lost} uci commits lost, {daemon_lost} daemon writes lost")
        self.assertEqual((uci_lost, daemon_lost), (0, 0))
        self.assertEqual(shown.stdout.strip(), f"v{ROUNDS}")
        self.assertEqual(Store(self.path, schema=schema).problems(), [])

    def test_uci_defaults_recreates_file_0600(self):
        """90-cubegw, run by sh with the real uci, recreates a missing file as 0600
        (the package ships it 0600) with every default, and keeps a set value."""
        with open(os.path.join(ROOT, "openwrt", "files", "cubegw.uci-defaults")) as f:
            script = f.read()
        bindir = os.path.join(os.path.dirname(self.confdir), "bin")
        os.makedirs(bindir)
        with open(os.path.join(bindir, "uci"), "w") as f:
            f.write(f'#!/bin/sh\nexec "{self.uci}" -c "{self.confdir}" -t "{self.savedir}" "$@"\n')
        os.chmod(os.path.join(bindir, "uci"), 0o755)
        script = (script.replace("CUBEGW_LIB=/usr/lib/cubegw", "CUBEGW_LIB=/nonexistent")
                  .replace("/etc/config/cubegw", self.path))
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        old = os.umask(0o022)
        try:
            result = subprocess.run(["sh", "-c", script], env=env, capture_output=True,
                                    text=True, timeout=60)
        finally:
            os.umask(old)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        store = Store(self.path)
        self.assertEqual(store.mgt()["Port"], 12112)
        self.assertEqual(recover_file(self.path), [])
        store.set("mgt", "Port", 3000)
        result = subprocess.run(["sh", "-c", script], env=env, capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(Store(self.path).get("mgt", "Port"), 3000)
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)


class TmpfsFullTests(SynchronousTestCase):
    """A real full file system: a 64 KiB tmpfs filled up, writes refused, nothing lost."""

    def setUp(self):
        if os.geteuid() != 0:
            raise self.skipTest("mounting a tmpfs needs root")
        self.mount = os.path.abspath(self.mktemp())
        os.makedirs(self.mount)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                                 self.mount], capture_output=True, text=True)
        if result.returncode != 0:
            raise self.skipTest(f"cannot mount a tmpfs: {result.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", self.mount])
        self.path = os.path.join(self.mount, "cubegw")

    def fill(self, filler, leave_pages):
        """Fill the file system, then free ``leave_pages`` pages."""
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        size = os.path.getsize(filler)
        os.truncate(filler, max(0, size - 4096 * leave_pages))

    def test_full_tmpfs(self):
        """With 0, 1 and 2 pages free, writes that grow the file past a page are refused
        or done whole; the values are always the last acknowledged ones."""
        schema = extended_schema()
        acked = {}
        refused = done = lost = 0
        for leave in (0, 1, 2):
            for name in os.listdir(self.mount):
                os.remove(os.path.join(self.mount, name))
            store = Store(self.path, schema=schema)
            store.update({("mgt", "MgtURL"): "start.example", ("mgt", "Port"): 2000})
            acked = {"MgtURL": "start.example", "Port": 2000}
            self.fill(os.path.join(self.mount, "filler"), leave)
            for i in range(60):
                change = {("mgt", "MgtURL"): f"d{i}." + "x" * 200, ("mgt", "Port"): 3000 + i}
                try:
                    store.update(change)
                except StoreError:
                    refused += 1
                else:
                    done += 1
                    acked = {"MgtURL": change[("mgt", "MgtURL")], "Port": 3000 + i}
                try:                                # grows the file past a page
                    store.add_section("access", f"K{leave}{i:03d}" + "y" * 55)
                    done += 1
                except StoreError:
                    refused += 1
                for reader in (Store(self.path, schema=schema), store):
                    lost += sum(reader.get("mgt", k) != v for k, v in acked.items())
                recover_file(self.path, schema=schema)
                lost += sum(Store(self.path, schema=schema).get("mgt", k) != v
                            for k, v in acked.items())
            self.assertEqual([n for n in os.listdir(self.mount) if n.endswith(".tmp")], [])
        print(f"\nSTORE TMPFS FIGURES: 64 KiB tmpfs full (0-2 pages free): {done} writes "
              f"done, {refused} refused (ENOSPC), {lost} values lost")
        self.assertGreater(refused, 0)
        self.assertEqual(lost, 0)
