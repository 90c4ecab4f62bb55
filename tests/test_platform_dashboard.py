"""The dashboard's side of cubeplat: its static files, and certification runs received,
kept (the last 50) and refused with 400 when they are not reports."""

import json

from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import client

from cubegw.platform.dashboard import MAX_REPORT, MAX_RUNS

from tests.helpers.platform import USER, MemoryPlatform

REPORT = {"dut": "64D95420214B", "counts": {"PASS": 9, "FAIL": 9, "SKIP": 9}, "cases": [
    {"name": "s6.hb.minus3", "row": "6: Hb -3", "title": "Hb -3", "verdict": "FAIL",
     "reason": "after Hb -3 the DUT sent Hb", "seconds": 1.5,
     "evidence": [{"direction": "out", "message": {"Result": -3}}]},
    {"name": "s6.boot.jitter", "row": "6: daemon start", "title": "", "verdict": "SKIP",
     "reason": "needs --restart-command", "seconds": 0}]}


class RunsTests(SynchronousTestCase):
    """POST and GET /api/certify/runs."""

    def setUp(self):
        self.platform = MemoryPlatform()

    def test_upload_and_read(self):
        """A report is stored with counts recomputed from its cases, listed newest first."""
        r = self.platform.request("POST", "/api/certify/runs", REPORT)
        self.assertEqual((r.code, r.json["id"], r.json["counts"]),
                         (201, 1, {"PASS": 0, "FAIL": 1, "SKIP": 1}))
        self.platform.request("POST", "/api/certify/runs", dict(REPORT, dut="AABBCCDDEEFF"))
        runs = self.platform.request("GET", "/api/certify/runs").json["runs"]
        self.assertEqual([(run["id"], run["dut"]) for run in runs],
                         [(2, "AABBCCDDEEFF"), (1, "64D95420214B")])
        one = self.platform.request("GET", "/api/certify/runs/1").json
        self.assertEqual(one["cases"][0]["evidence"], REPORT["cases"][0]["evidence"])
        self.assertTrue(one["by"])

    def test_only_the_last_runs_are_kept(self):
        """Past MAX_RUNS the oldest run is forgotten (404)."""
        for _ in range(MAX_RUNS + 2):
            self.platform.request("POST", "/api/certify/runs", REPORT)
        runs = self.platform.request("GET", "/api/certify/runs").json["runs"]
        self.assertEqual(len(runs), MAX_RUNS)
        self.assertEqual(self.platform.request("GET", "/api/certify/runs/1").code, 404)
        self.assertEqual(self.platform.request("GET", "/api/certify/runs/3").code, 200)

    def test_hostile_reports_are_400(self):
        """Not JSON, not a report, wrong verdicts or types: 400 with the reason; nothing kept."""
        bad = [b"{", b"[]", b"\xff", {"cases": []}, {"cases": "x"},
               {"cases": [{"name": "a", "verdict": "OK"}]},
               {"cases": [{"name": 5, "verdict": "PASS"}]},
               {"cases": [{"name": "a", "verdict": "PASS", "evidence": {}}]},
               {"cases": [{"name": "a", "verdict": "PASS", "seconds": "1"}]},
               {"cases": [{"name": "a", "verdict": "PASS"}], "dut": ["x"]},
               {"cases": [7]}, json.dumps([[]] * 100000).encode()]
        for body in bad:
            r = self.platform.request("POST", "/api/certify/runs", body)
            self.assertEqual(r.code, 400, body if len(body) < 100 else "big")
            self.assertTrue(r.json["error"])
        r = self.platform.request("POST", "/api/certify/runs", b" " * (MAX_REPORT + 1))
        self.assertEqual(r.code, 413)
        self.assertEqual(self.platform.request("GET", "/api/certify/runs").json["runs"], [])

    def test_refusals(self):
        """No token 401, a user who is not admin 403, unknown paths 404, bad id 404."""
        self.assertEqual(self.platform.request("GET", "/api/certify/runs", token=None).code,
                         401)
        self.assertEqual(self.platform.request("POST", "/api/certify/runs", REPORT,
                                               token=USER).code, 403)
        self.assertEqual(self.platform.request("GET", "/api/certify/runs/x").code, 404)
        self.assertEqual(self.platform.request("GET", "/api/certify/runs/1/2").code, 404)
        self.assertEqual(self.platform.request("GET", "/api/certify/other").code, 404)
        self.assertEqual(self.platform.request("DELETE", "/api/certify/runs").code, 405)


class WebFilesTests(TestCase):
    """/dashboard/ over a loopback socket: the page, its script and style; nothing else."""

    @defer.inlineCallbacks
    def get(self, path):
        agent = client.Agent(reactor)
        response = yield agent.request(b"GET", f"http://127.0.0.1:{self.port}{path}".encode())
        body = yield client.readBody(response)
        ctype = (response.headers.getRawHeaders(b"content-type") or [b""])[0].decode()
        return response.code, ctype, body

    @defer.inlineCallbacks
    def test_files_served(self):
        """index.html, app.js and style.css come with their types; no listing, no CDN."""
        platform = MemoryPlatform()
        listening = reactor.listenTCP(0, platform.site, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        self.port = listening.getHost().port
        code, ctype, page = yield self.get("/dashboard/")
        self.assertEqual((code, ctype.split(";")[0]), (200, "text/html"))
        self.assertIn(b'<script src="app.js">', page)
        self.assertNotIn(b"http", page)
        code, ctype, script = yield self.get("/dashboard/app.js")
        self.assertIn("javascript", ctype)
        self.assertNotIn(b"innerHTML", script)
        code, ctype, _ = yield self.get("/dashboard/style.css")
        self.assertIn("css", ctype)
        for path in ("/dashboard/nope.js", "/dashboard/../platform/api.py"):
            code, _, _ = yield self.get(path)
            self.assertEqual(code, 404, path)
