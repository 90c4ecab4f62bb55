"""The lab's web dashboard: static files from ``cubegw/platform/web/`` (no build step, no
CDN) at ``/dashboard/``, and the certification runs the platform knows about.

    GET  /dashboard/                 the page (it asks for an admin token, kept in the
                                     browser; ``#token=...`` in the URL works too)
    GET  /api/certify/runs           the runs received, newest first (summaries)
    POST /api/certify/runs           a ``cubegw-certify --json`` report (or what
                                     ``cubegw-certify --upload`` sends): stored, its id
    GET  /api/certify/runs/<id>      one run with every case, reason and evidence

Runs are kept in memory, the last ``MAX_RUNS``; admin users only, like the rest of the
lab's API.  A report that is not one (no ``cases`` list of named verdicts) is a 400.
"""

import itertools
import json
import os

from twisted.web import static

from cubegw.platform.admin import AdminResource
from cubegw.platform.api import ApiError

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
MAX_RUNS = 50
MAX_REPORT = 4 * 1024 * 1024
MAX_CASES = 1000
VERDICTS = ("PASS", "FAIL", "SKIP")


class CertifyRuns:
    """The certification reports received, newest last, at most ``limit``."""

    def __init__(self, clock, limit=MAX_RUNS):
        self.clock = clock
        self.limit = limit
        self.runs = []
        self._ids = itertools.count(1)

    def add(self, report, user_id):
        """Check and store a report; the stored run."""
        run = dict(validate(report), id=next(self._ids), received=self.clock.seconds(),
                   by=user_id)
        self.runs.append(run)
        del self.runs[:-self.limit]
        return run

    def get(self, run_id):
        return next((r for r in self.runs if r["id"] == run_id), None)


def summary(run):
    return {k: run[k] for k in ("id", "received", "by", "dut", "counts")}


def _text(value, name, limit=4096):
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(400, f"{name} must be a string of at most {limit} characters")
    return value


def validate(report):
    """The parts of a certify report the platform keeps; ``ApiError`` 400 if it is not one."""
    if not isinstance(report, dict):
        raise ApiError(400, "a report is a JSON object")
    cases = report.get("cases")
    if not isinstance(cases, list) or not 0 < len(cases) <= MAX_CASES:
        raise ApiError(400, f"cases must be a list of 1 to {MAX_CASES} verdicts")
    kept = []
    for n, case in enumerate(cases):
        where = f"cases[{n}]"
        if not isinstance(case, dict):
            raise ApiError(400, f"{where} is not an object")
        verdict = case.get("verdict")
        if verdict not in VERDICTS:
            raise ApiError(400, f"{where}.verdict must be one of {', '.join(VERDICTS)}")
        evidence = case.get("evidence", [])
        if not isinstance(evidence, list):
            raise ApiError(400, f"{where}.evidence must be a list")
        seconds = case.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise ApiError(400, f"{where}.seconds must be a number")
        kept.append({"name": _text(case.get("name"), where + ".name", 200),
                     "row": _text(case.get("row", ""), where + ".row"),
                     "title": _text(case.get("title", ""), where + ".title"),
                     "verdict": verdict, "reason": _text(case.get("reason", ""),
                                                         where + ".reason"),
                     "seconds": seconds, "evidence": evidence})
    counts = {v: sum(c["verdict"] == v for c in kept) for v in VERDICTS}
    return {"dut": _text(report.get("dut", ""), "dut", 64), "counts": counts,
            "cases": kept}


def read_report(request):
    request.content.seek(0)
    data = request.content.read(MAX_REPORT + 1)
    if len(data) > MAX_REPORT:
        raise ApiError(413, f"a report larger than {MAX_REPORT} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ApiError(400, f"the body is not valid JSON: {e}")


class RunsResource(AdminResource):
    """``/api/certify/runs`` and ``/api/certify/runs/<id>``."""

    def render(self, request):
        if len(request.postpath) > 1 or (request.postpath and request.method != b"GET"):
            request.setResponseCode(404 if len(request.postpath) > 1 else 405)
            request.setHeader(b"content-type", b"application/json; charset=utf-8")
            return json.dumps({"error": "no such resource"}).encode("utf-8")
        return super().render(request)

    def do_GET(self, request, user_id):
        runs = self.api.certify_runs
        if request.postpath and request.postpath[0]:
            try:
                run = runs.get(int(request.postpath[0]))
            except ValueError:
                run = None
            if run is None:
                raise ApiError(404, "no such run")
            return 200, run
        return 200, {"runs": [summary(r) for r in reversed(runs.runs)]}

    def do_POST(self, request, user_id):
        run = self.api.certify_runs.add(read_report(request), user_id)
        self.api.log.info("certification run {id} of {dut} received from {user}: "
                          "{counts}", id=run["id"], dut=run["dut"], user=user_id,
                          counts=run["counts"])
        return 201, summary(run)


class WebFiles(static.File):
    """The dashboard's files; no directory listings."""

    def directoryListing(self):
        return self.childNotFound


def install(root, branch, api):
    """``/dashboard/`` under ``root``, ``/api/certify/runs`` under ``branch``."""
    if not hasattr(api, "certify_runs"):
        api.certify_runs = CertifyRuns(api.clock)
    holder = type(branch)(api)       # JSON 404 for anything but runs
    holder.putChild(b"runs", RunsResource(api))
    branch.putChild(b"certify", holder)
    root.putChild(b"dashboard", WebFiles(WEB_DIR, defaultType="text/plain"))
