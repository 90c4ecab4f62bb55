"""Issue 18 point 6: every value the gateway writes to a UCI file refuses control
characters (``uci.check_new_values`` in ``backend.write_uci``), while a multi-line value
someone else wrote is written back as it was."""

from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import network
from cubegw.store import uci

from tests.helpers.dispatch import Harness
from tests.helpers.openwrt import NETWORK, openwrt

#: The network file with a multi-line value written by someone else (uci allows it).
FOREIGN = NETWORK + "\nconfig note 'n'\n\toption text 'line one\nline two'\n"


class UciWriteTests(SynchronousTestCase):
    def test_ipv6_scope_newline_refused(self):
        """SET_NETWORK_DNS with an IPv6 scope ID carrying a newline: Status 1, the network
        file unchanged, no traceback."""
        h = openwrt(Harness(self, providers=[network.NetworkDns()]))
        before = h.backend.read_uci("network")
        for bad in ("fe80::1%eth0\nconfig interface 'evil'", "fe80::1%a\rb", "fe80::1%a\x1bb"):
            p = h.call(self, "SET_NETWORK_DNS", DNS1=bad).payload
            self.assertEqual(p["Status"], "1", bad)
            self.assertIn("not allowed in a UCI value", p["FailReason"])
        self.assertEqual(h.backend.read_uci("network"), before)
        self.assertEqual(h.backend.applied, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_foreign_multiline_value_kept(self):
        """A value already in the file (someone else's) is written back; ours are checked."""
        h = openwrt(Harness(self, providers=[network.NetworkDns()]), network_text=FOREIGN)
        p = h.call(self, "SET_NETWORK_DNS", DNS1="1.1.1.1").payload
        self.assertEqual(p["Status"], "0", p)
        self.assertEqual(h.backend.read_uci("network").section("n").options["text"],
                         "line one\nline two")

    def test_check_new_values(self):
        """Only values not already on disk are checked; lists item by item."""
        old = uci.parse("config a 'x'\n\toption v 'one\ntwo'\n")
        new = uci.parse("config a 'x'\n\toption v 'one\ntwo'\n\tlist l 'ok'\n")
        uci.check_new_values(old, new)
        new.section("x").options["l"] = ["ok", "bad\x07"]
        self.assertRaises(uci.UciError, uci.check_new_values, old, new)
        self.assertRaises(uci.UciError, uci.check_new_values, None,
                          uci.parse("config a 'x'\n\toption v 'one\ntwo'\n"))

    def test_check_new_values_changed_section_only(self):
        """An unchanged section is trusted as on disk; in a changed one a foreign value
        stays allowed and a new bad value is refused, also in a section new to the file."""
        old = uci.parse("config a 'x'\n\toption v 'one\ntwo'\nconfig b 'y'\n\toption w 'k'\n")
        new = old.copy()
        new.section("y").options["w"] = "one\ntwo"        # a value old holds elsewhere
        uci.check_new_values(old, new)
        new.section("y").options["w"] = "new\nline"
        self.assertRaises(uci.UciError, uci.check_new_values, old, new)
        added = old.copy()
        added.sections.append(uci.Section("c", "z", {"u": "bad\x07"}))
        self.assertRaises(uci.UciError, uci.check_new_values, old, added)
