"""The backends' UCI files: one parse per text, durable writes in group commits, and a
SET answered only once its write is on disk."""

import os
import threading

from twisted.internet import defer, reactor
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cubegw.backend import LinuxBackend
from cubegw.store import uci
from cubegw.ucifiles import UciFiles, run_now

from tests.helpers.openwrt import wireless_router

TEXT = "\nconfig wifi-iface 'one'\n\toption ssid 'A'\n\nconfig wifi-iface 'two'\n\toption ssid 'B'\n"


class HeldWrites:
    """A ``run_write`` whose writes wait until the test lets them run, one by one."""

    def __init__(self):
        self.held = []            # (function, args, Deferred)

    def __call__(self, function, *args):
        d = defer.Deferred()
        self.held.append((function, args, d))
        return d

    def finish(self, error=None):
        """Run (or fail with ``error``) the oldest write still held."""
        function, args, d = self.held.pop(0)
        if error is not None:
            d.errback(error)
        else:
            function(*args)
            d.callback(None)


class UciFilesTests(SynchronousTestCase):
    """Reading through the parse cache, writing through the group commit."""

    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "wireless")
        with open(self.path, "w") as f:
            f.write(TEXT)
        self.held = HeldWrites()
        self.files = UciFiles(lambda name: os.path.join(self.dir, name), self.held)

    def on_disk(self):
        with open(self.path) as f:
            return uci.parse(f.read()).section("one").options.get("ssid")

    def test_read_copies(self):
        """Each read is the caller's own copy: changing one leaves the next read whole."""
        first = self.files.read("wireless")
        first.section("one").options["ssid"] = "changed"
        first.sections.pop()
        second = self.files.read("wireless")
        self.assertEqual([s.get("ssid") for s in second.sections], ["A", "B"])

    def test_read_follows_the_file(self):
        """A file changed by someone else is parsed again; a missing one reads None."""
        self.files.read("wireless")
        with open(self.path, "w") as f:
            f.write(TEXT.replace("'A'", "'Z'"))
        self.assertEqual(self.files.read("wireless").section("one").get("ssid"), "Z")
        os.unlink(self.path)
        self.assertIsNone(self.files.read("wireless"))

    def test_read_as_text_mode_reads(self):
        """Read as ``open(path, encoding="utf-8")`` reads: CR LF and CR are newlines,
        a file that is not UTF-8 raises each time it is read."""
        with open(self.path, "wb") as f:
            f.write(TEXT.replace("\n", "\r\n").encode())
        self.assertEqual(self.files.read("wireless"), uci.parse(TEXT))
        with open(self.path, "wb") as f:
            f.write(TEXT.replace("\n", "\r").encode())
        self.assertEqual(self.files.read("wireless"), uci.parse(TEXT))
        with open(self.path, "wb") as f:
            f.write(b"config wifi-iface 'one'\n\toption ssid '\xff'\n")
        for _ in range(2):
            self.assertRaises(UnicodeDecodeError, self.files.read, "wireless")

    def test_answered_once_on_disk(self):
        """The write's Deferred fires only after the file is written."""
        package = self.files.read("wireless")
        package.section("one").options["ssid"] = "new"
        d = self.files.write("wireless", package)
        self.assertNoResult(d)
        self.assertEqual(self.on_disk(), "A")
        self.held.finish()
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.on_disk(), "new")

    def test_group_commit(self):
        """Writes made while one is on its way go to disk together, the newest package;
        reads see each write at once, so no change is lost."""
        answers = []
        for ssid in ("1", "2", "3"):
            package = self.files.read("wireless")
            package.section("one").options["ssid"] = ssid
            package.section("two").options["n" + ssid] = ssid
            answers.append(self.files.write("wireless", package))
        self.assertEqual(len(self.held.held), 1)
        self.held.finish()
        self.successResultOf(answers[0])
        self.assertNoResult(answers[1])
        self.assertNoResult(answers[2])
        self.assertEqual(self.on_disk(), "1")
        self.held.finish()
        self.assertEqual([self.successResultOf(d) for d in answers[1:]], [None, None])
        self.assertEqual(self.files.writes, 2)
        self.assertEqual(self.held.held, [])
        package = self.files.read("wireless")
        self.assertEqual((self.on_disk(), package.section("two").options),
                         ("3", {"ssid": "B", "n1": "1", "n2": "2", "n3": "3"}))

    def test_failed_write(self):
        """A failed write fails the calls it carried; reads go back to the disk."""
        package = self.files.read("wireless")
        package.section("one").options["ssid"] = "lost"
        d = self.files.write("wireless", package)
        self.held.finish(OSError(28, "No space left on device"))
        self.failureResultOf(d, OSError)
        self.assertEqual(self.files.read("wireless").section("one").get("ssid"), "A")

    def test_failed_write_at_once(self):
        """A write run at once that raises (as ``run_now`` does on a full disk) fails
        its Deferred the same way; the next read is the disk's, a later write goes out."""
        full = [OSError(28, "No space left on device")]

        def run_at_once(function, *args):
            if full:
                raise full.pop()
            return run_now(function, *args)
        files = UciFiles(lambda name: os.path.join(self.dir, name), run_at_once)
        package = files.read("wireless")
        package.section("one").options["ssid"] = "lost"
        self.failureResultOf(files.write("wireless", package), OSError)
        self.assertEqual(files.read("wireless").section("one").get("ssid"), "A")
        package = files.read("wireless")
        package.section("one").options["ssid"] = "kept"
        self.assertIsNone(self.successResultOf(files.write("wireless", package)))
        self.assertEqual(self.on_disk(), "kept")

    def test_refused_value(self):
        """A value UCI cannot hold is refused at once; nothing is written or remembered."""
        package = self.files.read("wireless")
        package.section("one").options["ssid"] = "two\nlines"
        self.assertRaises(uci.UciError, self.files.write, "wireless", package)
        self.assertEqual(self.held.held, [])
        self.assertEqual(self.files.read("wireless").section("one").get("ssid"), "A")


class SetAnswerTests(SynchronousTestCase):
    """SET_WLAN_SSID_DISABLE through the dispatcher waits for its disk write."""

    def test_answer_after_the_write(self):
        """No Outcome until the write is done; then Status 0 and the file says disabled."""
        h = wireless_router(self)
        held = h.backend.uci_files.run_write = HeldWrites()
        d = h.dispatcher.dispatch("local", {"CmdType": "SET_WLAN_SSID_DISABLE",
                                            "SequenceId": "0000000A", "SSIDIndex": "1"})
        self.assertNoResult(d)
        held.finish()
        self.assertEqual(self.successResultOf(d).payload["Status"], "0")
        with open(h.backend.uci_path("wireless")) as f:
            iface = uci.parse(f.read()).sections_of("wifi-iface")[0]
        self.assertEqual(iface.options["disabled"], "1")

    def test_failed_write_is_not_ok(self):
        """A write that fails answers Status 1, never 0."""
        h = wireless_router(self)
        held = h.backend.uci_files.run_write = HeldWrites()
        d = h.dispatcher.dispatch("local", {"CmdType": "SET_WLAN_SSID_DISABLE",
                                            "SequenceId": "0000000B", "SSIDIndex": "2"})
        held.finish(OSError(5, "Input/output error"))
        self.assertEqual(self.successResultOf(d).payload["Status"], "1")
        self.flushLoggedErrors(OSError)


    def test_logged_at_info(self):
        """A SET that was done is logged at info with its source; a GET is not."""
        h = wireless_router(self)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for cmd in ("SET_WLAN_SSID_DISABLE", "GET_WIFI_INFO"):
            outcome = self.successResultOf(h.dispatcher.dispatch(
                "local", {"CmdType": cmd, "SequenceId": "0000000C", "SSIDIndex": "1"},
                source="192.168.1.20"))
            self.assertEqual(outcome.payload["Status"], "0")
        done = [(e.get("cmd"), e.get("source")) for e in events
                if e.get("log_level") == LogLevel.info and e.get("cmd")]
        self.assertEqual(done, [("SET_WLAN_SSID_DISABLE", "192.168.1.20")])

    def test_info_lines_budgeted(self):
        """A LAN host repeating SETs gets 20 info lines a minute; the rest are counted
        and the first line of the next minute says how many were not logged."""
        h = wireless_router(self)
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)

        def set_once():
            self.successResultOf(h.dispatcher.dispatch(
                "local", {"CmdType": "SET_WLAN_SSID_DISABLE", "SequenceId": "0000000D",
                          "SSIDIndex": "1"}, source="192.168.1.66"))
        for _ in range(25):
            set_once()
        infos = [e for e in events if e.get("log_level") == LogLevel.info and e.get("cmd")]
        self.assertEqual(len(infos), 20)
        h.clock.advance(61)
        set_once()
        infos = [e for e in events if e.get("log_level") == LogLevel.info and e.get("cmd")]
        self.assertEqual(len(infos), 21)
        self.assertEqual(infos[-1]["more"], " (and 5 such calls not logged)")


class DaemonWriteTests(TestCase):
    """LinuxBackend on the real reactor writes at once, as ``uci commit`` does."""

    def test_write_done_when_answered(self):
        """The Deferred has fired when write_uci returns: the file is on disk, no thread
        was started (a UCI file is small; the thread hop cost more than the write)."""
        root = self.mktemp()
        threads = threading.active_count()
        backend = LinuxBackend(reactor, root=root)
        package = uci.parse(TEXT)
        package.section("two").options["ssid"] = "written"
        self.successResultOf(backend.write_uci("wireless", package))
        with open(os.path.join(root, "etc", "config", "wireless")) as f:
            self.assertIn("'written'", f.read())
        self.assertEqual(threading.active_count(), threads)
