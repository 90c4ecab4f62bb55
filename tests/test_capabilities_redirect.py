"""SET_REDIRECT_INFO: the rules file fetched, stored APP-owned, written for dnsmasq."""

import os

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import redirect

from tests.helpers.dispatch import Harness

RULES = b"""# redirect rules
ErrRedirect "1" "10.0.0.1" "192.168.1.1"
ErrRedirect "1" "" "192.168.1.254"
ErrRedirect "2" "2001:db8::1" "2001:db8::2"
ErrRedirect "1" "10.0.0.9" "not-an-address"
ErrRedirect "1" "10.0.0.2"
something else "1" "10.0.0.3" "10.0.0.4"
"""


class RedirectTests(SynchronousTestCase):
    """SET_REDIRECT_INFO on a TempDirBackend with a fake fetch."""

    def setUp(self):
        self.fetched = []
        self.answer = defer.Deferred()
        self.provider = redirect.DnsRedirect(fetch=self.fetch)
        self.h = Harness(self, providers=[self.provider])
        os.makedirs(os.path.join(self.h.dir, "etc"), exist_ok=True)
        with open(os.path.join(self.h.dir, "etc", "openwrt_release"), "w") as f:
            f.write("DISTRIB_ID='OpenWrt'\n")

    def fetch(self, url, reactor):
        self.fetched.append(url)
        return self.answer

    def conf(self):
        path = os.path.join(self.h.dir, redirect.CONF_PATH.lstrip("/"))
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def test_parse_rules(self):
        """Only ErrRedirect lines with three quoted valid values make rules."""
        rules = redirect.parse_rules(RULES.decode())
        self.assertEqual([(r["mode"], r["source"], r["target"], r["family"]) for r in rules],
                         [("1", "10.0.0.1", "192.168.1.1", "4"), ("1", "", "192.168.1.254", "4"),
                          ("2", "2001:db8::1", "2001:db8::2", "6")])

    def test_download_stores_and_applies(self):
        """Status 0 at once; the fetched rules are stored and written as dnsmasq aliases."""
        reply = self.h.call(self, "SET_REDIRECT_INFO", downurl="http://plat.example/dns.txt")
        self.assertEqual(reply.payload["Status"], "0")
        self.assertEqual(self.fetched, ["http://plat.example/dns.txt"])
        self.assertIsNone(self.conf())
        self.answer.callback(RULES)
        self.assertEqual(len(self.h.store.list_sections("dns_redirect")), 3)
        self.assertEqual(self.conf().splitlines()[1:], ["alias=10.0.0.1,192.168.1.1",
                                                        "alias=2001:db8::1,2001:db8::2"])
        self.assertIn("dhcp", self.h.backend.applied)
        self.assertEqual(self.provider.last, "Done")

    def test_app_reset_clears(self):
        """The rules are APP-owned: the APP reset removes them and dnsmasq's file."""
        self.h.call(self, "SET_REDIRECT_INFO", downurl="https://plat.example/dns.txt")
        self.answer.callback(RULES)
        self.h.runtime.app_reset()
        self.assertEqual(self.h.store.list_sections("dns_redirect"), [])
        self.assertIsNone(self.conf())

    def test_itms_reset_keeps(self):
        """The ITMS reset does not touch the APP-owned rules."""
        self.h.call(self, "SET_REDIRECT_INFO", downurl="https://plat.example/dns.txt")
        self.answer.callback(RULES)
        self.h.store.factory_reset_itms()
        self.assertEqual(len(self.h.store.list_sections("dns_redirect")), 3)

    def test_bad_url_and_busy(self):
        """No downurl, a non-http URL or a control character: Status 1; one at a time."""
        for bad in (None, "", "ftp://x/y", "http://a\nb", 5):
            args = {} if bad is None else {"downurl": bad}
            reply = self.h.call(self, "SET_REDIRECT_INFO", **args)
            self.assertEqual(reply.payload["Status"], "1", bad)
        self.h.call(self, "SET_REDIRECT_INFO", downurl="http://a/b")
        reply = self.h.call(self, "SET_REDIRECT_INFO", downurl="http://a/b")
        self.assertIn("busy", reply.payload["FailReason"])

    def test_failed_download_keeps_rules(self):
        """A failed download leaves the stored rules and says why."""
        self.h.call(self, "SET_REDIRECT_INFO", downurl="http://a/b")
        self.answer.callback(RULES)
        self.answer = defer.Deferred()
        self.h.call(self, "SET_REDIRECT_INFO", downurl="http://a/c")
        self.answer.errback(ValueError("HTTP status 404"))
        self.assertEqual(len(self.h.store.list_sections("dns_redirect")), 3)
        self.assertIn("404", self.provider.last)

    def test_start_writes_conf(self):
        """At start the dnsmasq file is rebuilt from the store (/tmp is lost at boot)."""
        self.h.store.schema.ensure_type(redirect.REDIRECT_TYPE)
        self.h.store.add_section("dns_redirect", 0, {"mode": "1", "source": "10.0.0.1",
                                                     "target": "10.0.0.2", "family": "4"})
        self.provider.start(self.h.context)
        self.assertIn("alias=10.0.0.1,10.0.0.2", self.conf())
