"""cubeplat's dashboard in a real headless Chromium (DevTools protocol, standard library
client in tests/helpers/browser.py): the page loads, shows a registering cubegw live, a
fault rule added on the page changes what the gateway sees, a certification run's
verdicts appear.  Screenshots go to the test's directory, and to docs/ when
CUBEGW_SCREENSHOTS=docs (how docs/dashboard-*.png were made)."""

import json
import os
import shutil
import urllib.request

from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from tests.helpers.browser import NO_CHROMIUM, Browser
from tests.helpers.lab import GATEWAY_TIMING, TOKEN, Lab, dut_device
from tests.helpers.config import gateway_config
from tests.integration.support import MAC, ROOT

DEVICE_ROW = f'#devices tbody tr[data-mac="{MAC}"]'


class DashboardTests(TestCase):
    timeout = 150
    skip = NO_CHROMIUM

    @defer.inlineCallbacks
    def setUp(self):
        self.lab = Lab(self, [dut_device(MAC)])
        yield self.lab.start()
        self.browser = yield threads.deferToThread(Browser, self.lab.tmp)
        self.addCleanup(threads.deferToThread, self.browser.close)

    def in_browser(self, f, *args, **kw):
        return threads.deferToThread(f, *args, **kw)

    def shoot(self, name):
        path = os.path.join(self.lab.tmp, name)
        self.browser.screenshot(path)
        if os.environ.get("CUBEGW_SCREENSHOTS") == "docs":
            shutil.copy(path, os.path.join(ROOT, "docs", name))
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def start_gateway(self):
        self.lab.start_gateway(gateway_config(self.lab.tmp, timing=GATEWAY_TIMING))

    def messages(self):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.lab.api_port}/api/devices/{MAC}/messages",
            headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)["messages"]

    @defer.inlineCallbacks
    def test_dashboard_live(self):
        """The page shows the gateway registering live, a rule added on it answers the
        gateway's Hb -3 (it Boots again), and an uploaded certification run's verdicts."""
        b = self.browser
        url = f"http://127.0.0.1:{self.lab.api_port}/dashboard/#token={TOKEN}"
        yield self.in_browser(b.navigate, url)
        yield self.in_browser(b.wait_for, "document.body.classList.contains('signed-in')",
                              what="the signed-in page")
        yield self.in_browser(b.wait_for, f"!!document.querySelector('{DEVICE_ROW}')",
                              what="the DUT's row (known, not yet registered)")
        self.start_gateway()
        yield self.in_browser(
            b.wait_for, f"!!(document.querySelector('{DEVICE_ROW} .phase-online') || "
            f"document.querySelector('{DEVICE_ROW} .phase-plugin-connected'))",
            30, "the gateway online")
        seen = yield self.in_browser(
            b.wait_for, "Array.from(document.querySelectorAll('#log tbody td.json'))"
            ".map(td => td.textContent).join('\\n')", what="the live log")
        yield self.in_browser(b.wait_for, "!!document.querySelector('#log tbody td.json') "
                              "&& /\"RPCMethod\":\"Hb\"/.test(document.querySelector("
                              "'#log tbody').textContent)", what="a heartbeat in the log")
        self.assertTrue(seen)
        yield self.in_browser(self.shoot, "dashboard-devices.png")

        # a fault rule from the page's form: the next Hb is answered -3, so the gateway
        # registers again (Boot)
        before = max(m["seq"] for m in self.messages())
        yield self.in_browser(b.evaluate, f"""(() => {{
            document.getElementById('rule-mac').value = '{MAC}';
            document.getElementById('rule-message').value = 'Hb';
            document.getElementById('rule-action').value = 'result';
            document.getElementById('rule-value').value = '-3';
            document.getElementById('rule-count').value = '1';
            document.getElementById('rule-add').click();
            return true; }})()""")
        yield self.in_browser(b.wait_for, "/\"result\":-3/.test(Array.from("
                              "document.querySelectorAll('#faults .rule-json'))"
                              ".map(t => t.value).join())", what="the rule in the table")
        for _ in range(100):
            later = [m for m in self.messages() if m["seq"] > before]
            minus3 = [m for m in later if m["direction"] == "out"
                      and m["message"].get("Result") == -3]
            boots = [m for m in later if minus3 and m["seq"] > minus3[0]["seq"]
                     and m["message"].get("RPCMethod") == "Boot"]
            if boots:
                break
            yield threads.deferToThread(lambda: __import__("time").sleep(0.1))
        self.assertTrue(minus3, "the platform never answered Hb -3")
        self.assertTrue(boots, "the gateway did not Boot after the page's rule")
        yield self.in_browser(b.wait_for, "/\"Result\":-3/.test(document.querySelector("
                              "'#log tbody').textContent)", what="the -3 in the live log")
        yield self.in_browser(self.shoot, "dashboard-faults.png")

        # a certification run, uploaded by cubegw-certify: its verdicts on the page
        code, report, text = yield self.lab.certify(MAC, "--cases", "s6.hb.minus3",
                                                    "s6.hb.minus5", "s6.boot.jitter",
                                                    "--upload")
        self.assertEqual(code, 0, text)
        self.assertIn("uploaded as run 1", text)
        verdicts = yield self.in_browser(
            b.wait_for, "document.querySelectorAll('#verdicts tr[data-case]').length === 3 "
            "&& Array.from(document.querySelectorAll('#verdicts tr[data-case]'))"
            ".map(tr => tr.dataset.case + ' ' + tr.cells[0].textContent)",
            what="the run's verdicts")
        self.assertEqual(sorted(verdicts), ["s6.boot.jitter SKIP", "s6.hb.minus3 PASS",
                                            "s6.hb.minus5 PASS"])
        yield self.in_browser(b.evaluate, "document.getElementById('certify-section')"
                              ".scrollIntoView()")
        yield self.in_browser(self.shoot, "dashboard-certify.png")
