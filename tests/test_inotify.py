"""cubegw.inotify on the real reactor and a temporary directory: the events arrive, the
records parse, and stopping closes the descriptor."""

import os
import struct

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cubegw import inotify
from cubegw.watch import StoreWatch, inotify_watcher


def record(name, mask=inotify.IN_CLOSE_WRITE, pad=0):
    raw = name.encode() + b"\0" * (1 + pad)
    return struct.pack("iIII", 1, mask, 0, len(raw)) + raw


class ParseTests(SynchronousTestCase):
    def test_records(self):
        """Names come out in order, NUL padding dropped, an overflow as ""."""
        data = record("cubegw", pad=6) + record("", mask=inotify.IN_Q_OVERFLOW) + \
            record("wireless")
        self.assertEqual(inotify.parse_events(data), ["cubegw", "", "wireless"])

    def test_truncated_record_ignored(self):
        """A record cut short (a hostile or broken read) is dropped, never a crash."""
        data = record("cubegw") + record("wireless")[:20]
        self.assertEqual(inotify.parse_events(data), ["cubegw"])
        self.assertEqual(inotify.parse_events(b"\x01\x02"), [])


class WatchTests(TestCase):
    timeout = 10

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)

    @defer.inlineCallbacks
    def test_write_and_rename_seen(self):
        """A file written in place and one renamed into the directory are both said,
        through the libc already loaded (no ldconfig, works on musl)."""
        seen = []
        stop = inotify_watcher(reactor, self.dir, seen.append)
        self.assertIsNotNone(stop)
        self.addCleanup(stop)
        with open(os.path.join(self.dir, "cubegw"), "w") as f:
            f.write("x")
        tmp = os.path.join(os.path.dirname(self.dir), "elsewhere")
        with open(tmp, "w") as f:
            f.write("y")
        os.rename(tmp, os.path.join(self.dir, "wireless"))
        for _ in range(100):
            if "cubegw" in seen and "wireless" in seen:
                break
            yield task.deferLater(reactor, 0.02, lambda: None)
        self.assertIn("cubegw", seen)
        self.assertIn("wireless", seen)

    def test_stop_closes_the_descriptor(self):
        """Stopping releases the inotify descriptor."""
        watch = inotify.DirectoryWatch(reactor, self.dir, inotify.IN_CREATE, print)
        fd = watch.fileno()
        self.assertIn("inotify", os.readlink(f"/proc/self/fd/{fd}"))
        watch.startReading()
        watch.loseConnection()

        def closed():
            self.assertEqual(watch.fileno(), -1)
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                return
            self.assertNotIn("inotify", target)
        return task.deferLater(reactor, 0.05, closed)

    def test_missing_directory_is_none(self):
        """A directory that does not exist: None (the caller polls instead)."""
        self.assertIsNone(inotify_watcher(reactor, os.path.join(self.dir, "nope"), print))

    def test_clock_is_none(self):
        """A test clock (not a reactor) gets None, and its descriptor is closed."""
        opened = []
        real = inotify.DirectoryWatch.__init__

        def spy(watch, *args):
            real(watch, *args)
            opened.append(watch)
        self.patch(inotify.DirectoryWatch, "__init__", spy)
        self.assertIsNone(inotify_watcher(task.Clock(), self.dir, print))
        self.assertEqual(opened[0].fileno(), -1)


class NameFilterTests(SynchronousTestCase):
    def test_only_wanted_names_and_overflow(self):
        """With ``wanted``, other files' records are skipped; an overflow is always said."""
        data = record(".wireless-a1b2", mask=inotify.IN_CREATE) + record("wireless") + \
            record("cubegw", mask=inotify.IN_MOVED_TO, pad=3) + \
            record("", mask=inotify.IN_Q_OVERFLOW) + record("cubegw.bak")
        self.assertEqual(inotify.parse_events(data, frozenset([b"cubegw"])), ["cubegw", ""])


class StoreWatchEventTests(TestCase):
    timeout = 10

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "cubegw")
        self.write(self.path, "config mgt 'mgt'\n")

    def write(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    @defer.inlineCallbacks
    def until(self, done):
        for _ in range(100):
            if done():
                return
            yield task.deferLater(reactor, 0.02, lambda: None)

    @defer.inlineCallbacks
    def test_other_files_filtered_store_changes_seen(self):
        """Writes of the folder's other files (a temp file renamed onto wireless, as uci
        commit does) reach no one; the store file renamed onto, edited in place and
        deleted each make the watch re-read it."""
        seen, reloads = [], []
        stop = inotify_watcher(reactor, self.dir, seen.append, ("cubegw",))
        self.assertIsNotNone(stop)
        self.addCleanup(stop)
        store = type("Store", (), {"path": self.path,
                                   "reload": lambda _: reloads.append(1) or set()})()
        watch = StoreWatch(reactor, 0, store, watcher=inotify_watcher)
        watch.startService()
        self.addCleanup(watch.stopService)
        self.assertTrue(watch.events)
        self.write(os.path.join(self.dir, ".wireless-x"), "w")
        os.rename(os.path.join(self.dir, ".wireless-x"), os.path.join(self.dir, "wireless"))
        self.write(os.path.join(self.dir, ".cubegw-x"), "config mgt 'mgt'\n\n")
        os.rename(os.path.join(self.dir, ".cubegw-x"), self.path)
        yield self.until(lambda: reloads)
        self.assertEqual(set(seen), {"cubegw"})
        self.assertEqual(len(reloads), 1)
        self.write(self.path, "config mgt 'mgt'\n\n\n")
        yield self.until(lambda: len(reloads) == 2)
        self.assertEqual(len(reloads), 2)
        os.unlink(self.path)
        yield self.until(lambda: len(reloads) == 3)
        self.assertEqual(len(reloads), 3)
