"""``cubegw-certify``: run the conformance suite against a DUT through a running cubeplat.

    cubegw-certify --platform http://127.0.0.1:8080 --token ADMIN_TOKEN --dut MAC
        [--cases PATTERN ...] [--junit FILE] [--html FILE] [--json FILE]
        [--time-scale X] [--timing NAME=SECONDS ...] [--slack S] [--lan HOST:PORT]
        [--restart-command CMD] [--list]

Exit status 0 when no case failed, 1 when one did, 2 on a usage or platform error.
"""

import argparse
import html
import json
import subprocess
import sys
from xml.sax.saxutils import quoteattr

from cubegw import identity
from cubegw.platform.certify import cases as suite
from cubegw.platform.certify.lancases import parse_lan
from cubegw.platform.certify.client import PlatformClient, PlatformError
from cubegw.platform.certify.engine import FAIL, Context, Timings, run_suite, select


def parse_args(argv):
    p = argparse.ArgumentParser(prog="cubegw-certify", description=__doc__.splitlines()[0])
    p.add_argument("--platform", default="http://127.0.0.1:8080", help="cubeplat API URL")
    p.add_argument("--token", help="bearer token of an admin user of cubeplat")
    p.add_argument("--dut", help="MAC of the gateway under test")
    p.add_argument("--cases", nargs="*", default=[], help="glob patterns of case names")
    p.add_argument("--junit", help="write a JUnit XML report here")
    p.add_argument("--html", help="write an HTML report here")
    p.add_argument("--json", help="write the verdicts as JSON here")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="multiply every protocol duration (a DUT with shortened timings)")
    p.add_argument("--timing", action="append", default=[], metavar="NAME=VALUE",
                   help="one timing of the DUT (e.g. silence=2), after the scale")
    p.add_argument("--slack", type=float, default=0.3, help="tolerance of timings (s)")
    p.add_argument("--restart-command", help="shell command that restarts the DUT "
                                             "(enables the boot jitter case)")
    p.add_argument("--lan", help="the DUT's LAN address and LocatePort, HOST:PORT "
                                  "(enables the section 8 cases)")
    p.add_argument("--upload", action="store_true",
                   help="send the report to the platform (its dashboard lists the runs)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    return p.parse_args(argv)


def timings(args):
    overrides = {}
    for item in args.timing:
        name, sep, value = item.partition("=")
        try:
            overrides[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--timing {item!r}: expected NAME=NUMBER")
        if not sep:
            raise ValueError(f"--timing {item!r}: expected NAME=NUMBER")
    if args.time_scale <= 0:
        raise ValueError("--time-scale must be > 0")
    return Timings().scaled(args.time_scale, overrides)


def main(argv=None, out=sys.stdout, err=sys.stderr):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    chosen = select(suite.all_cases(), args.cases)
    if args.list:
        for c in chosen:
            print(f"{c.name:24} {c.row}: {c.title}", file=out)
        return 0
    try:
        if not args.dut or not args.token:
            raise ValueError("--dut and --token are required")
        mac = identity.normalize_mac(args.dut)
        profile = timings(args)
        lan = parse_lan(args.lan) if args.lan else None
    except (ValueError, identity.IdentityError) as e:
        print(f"cubegw-certify: {e}", file=err)
        return 2
    if not chosen:
        print(f"cubegw-certify: no case matches {args.cases}", file=err)
        return 2
    options = {"lan": lan} if lan else {}
    if args.restart_command:
        options["restart"] = lambda: subprocess.run(args.restart_command, shell=True,
                                                    check=False)
    ctx = Context(PlatformClient(args.platform, args.token), mac, profile, args.slack,
                  options)

    def show(v):
        print(f"{v.verdict:4} {v.case.name:24} {v.seconds:6.2f} s  {v.reason}", file=out,
              flush=True)
    try:
        verdicts = run_suite(ctx, chosen, show)
    except PlatformError as e:
        print(f"cubegw-certify: {e}", file=err)
        return 2
    except Exception as e:   # the DUT never came online, ...
        print(f"cubegw-certify: {e}", file=err)
        return 2
    counts = {k: sum(v.verdict == k for v in verdicts) for k in ("PASS", "FAIL", "SKIP")}
    print("%(PASS)d passed, %(FAIL)d failed, %(SKIP)d skipped" % counts, file=out)
    report = {"dut": mac, "counts": counts, "cases": [v.as_dict() for v in verdicts]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.junit:
        with open(args.junit, "w") as f:
            f.write(junit(report))
    if args.html:
        with open(args.html, "w") as f:
            f.write(html_report(report))
    if args.upload:
        try:
            run = ctx.client.request("POST", "/api/certify/runs", report)
            print(f"uploaded as run {run['id']}", file=out)
        except PlatformError as e:
            print(f"cubegw-certify: upload failed: {e}", file=err)
            return 2
    return 1 if counts[FAIL] else 0


def junit(report):
    c = report["counts"]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<testsuite name="cubegw-certify" tests="{sum(c.values())}" '
             f'failures="{c["FAIL"]}" skipped="{c["SKIP"]}">']
    for case in report["cases"]:
        lines.append(f'  <testcase classname={quoteattr(case["row"])} '
                     f'name={quoteattr(case["name"])} time="{case["seconds"]}">')
        evidence = "\n".join(json.dumps(m, sort_keys=True) for m in case["evidence"])
        if case["verdict"] == "FAIL":
            lines.append(f'    <failure message={quoteattr(case["reason"])}>'
                         f'{html.escape(evidence)}</failure>')
        elif case["verdict"] == "SKIP":
            lines.append(f'    <skipped message={quoteattr(case["reason"])}/>')
        lines.append(f'    <system-out>{html.escape(evidence)}</system-out>')
        lines.append('  </testcase>')
    lines.append('</testsuite>')
    return "\n".join(lines) + "\n"


def html_report(report):
    rows = []
    for case in report["cases"]:
        evidence = "\n".join(
            f'{m["time"]:.3f} {m["direction"]:3} {m["server"]:14} '
            f'{json.dumps(m["message"], sort_keys=True)}' for m in case["evidence"])
        rows.append(f'<tr class="{case["verdict"]}"><td>{case["verdict"]}</td>'
                    f'<td>{html.escape(case["name"])}</td><td>{html.escape(case["row"])}</td>'
                    f'<td>{html.escape(case["title"])}<br><b>{html.escape(case["reason"])}'
                    f'</b><pre>{html.escape(evidence)}</pre></td></tr>')
    return ("<!doctype html><meta charset=utf-8><title>cubegw-certify "
            f"{report['dut']}</title><style>td{{vertical-align:top;border:1px solid #ccc;"
            "padding:4px}.PASS td:first-child{color:green}.FAIL td:first-child{color:red}"
            "</style>"
            f"<h1>cubegw-certify: {report['dut']}</h1><p>%(PASS)d passed, %(FAIL)d failed, "
            "%(SKIP)d skipped</p>" % report["counts"] +
            "<table><tr><th>verdict<th>case<th>protocol.md<th>what</tr>" + "".join(rows) +
            "</table>\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
