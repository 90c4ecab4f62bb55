"""The certification engine's pure parts: timing profiles, backoff bounds, case selection,
and a case judged against a scripted platform with an injected clock."""

from twisted.trial.unittest import SynchronousTestCase

from cubegw.platform.certify import cases as suite
from cubegw.platform.certify.cli import junit, main
from cubegw.platform.certify.engine import FAIL, PASS, Context, Timings, run_case, select

from tests.helpers import MAC


class TimingTests(SynchronousTestCase):
    """Timings scaled and overridden; TR-069 bounds."""

    def test_scale_and_override(self):
        """Durations scale, counts and the factor do not; an override wins."""
        t = Timings().scaled(0.01, {"silence": 2})
        self.assertEqual((t.reply_timeout, t.retry_factor, t.boot_tries, t.silence),
                         (0.05, 2.0, 3, 2.0))
        self.assertRaises(ValueError, Timings().scaled, 1, {"nope": 1})

    def test_backoff_bounds(self):
        """The n-th wait is in [m k^(n-1), m k^n], capped at retry_max."""
        t = Timings()
        self.assertEqual([t.backoff(n) for n in (1, 2, 3)], [(5, 10), (10, 20), (20, 40)])
        self.assertEqual(Timings(retry_max=15).backoff(3), (15, 15))

    def test_select(self):
        """Glob patterns pick cases by name; none picks all."""
        self.assertEqual(len(select(suite.CASES, [])), len(suite.CASES))
        self.assertEqual([c.name for c in select(suite.CASES, ["s6.hb.minus*"])],
                         ["s6.hb.minus3", "s6.hb.minus5"])


class ScriptedPlatform:
    """Answers the client calls a case makes from a script of log messages."""

    def __init__(self, clock, script):
        self.clock = clock
        self.script = script     # (time, message dict)
        self.rules = []

    def platform(self):
        return {"heartbeat_interval": 1}

    def set_faults(self, rules):
        self.rules.append(rules)

    def messages(self, mac, since):
        return [dict(m, seq=i + 1, time=t) for i, (t, m) in enumerate(self.script)
                if t <= self.clock.now and i + 1 > since]


class Now:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def msg(direction, server, **body):
    return {"direction": direction, "server": server, "message": body}


class JudgedTests(SynchronousTestCase):
    """One case judged on scripted evidence, time injected."""

    def judge(self, after_minus3):
        now = Now()
        script = [(0.5, msg("in", "operation", RPCMethod="Hb", FLAG="0")),
                  (0.5, msg("out", "operation", Result=-3)),
                  (0.6, after_minus3),
                  (1.6, msg("in", "operation", RPCMethod="Hb", FLAG="0")),
                  (1.6, msg("out", "operation", Result=0, Interval=1))]
        ctx = Context(ScriptedPlatform(now, script), MAC, Timings().scaled(0.01), 0.2,
                      clock=now, sleep=now.sleep)
        ctx.platform = {"heartbeat_interval": 1}
        case = next(c for c in suite.CASES if c.name == "s6.hb.minus3")
        return run_case(ctx, case, recover=False)

    def test_pass(self):
        """Boot after Hb -3: PASS, the Boot cited."""
        verdict = self.judge(msg("in", "operation", RPCMethod="Boot"))
        self.assertEqual(verdict.verdict, PASS, verdict.reason)
        self.assertIn("Boot", [m["message"].get("RPCMethod") for m in verdict.evidence])

    def test_seeded_defect_fails(self):
        """A DUT that ignores Hb -3 (heartbeats on): FAIL, with the Hb as evidence."""
        verdict = self.judge(msg("in", "operation", RPCMethod="Hb", FLAG="0"))
        self.assertEqual(verdict.verdict, FAIL)
        self.assertIn("not Boot", verdict.reason)
        self.assertIn("<failure", junit({"counts": {"PASS": 0, "FAIL": 1, "SKIP": 0},
                                         "cases": [verdict.as_dict()]}))

    def test_cli_usage_errors(self):
        """Missing --dut/--token, a bad MAC or timing: exit 2 with one line."""
        import io
        for argv in ([], ["--dut", "xx", "--token", "t"],
                     ["--dut", MAC, "--token", "t", "--timing", "silence"]):
            err = io.StringIO()
            self.assertEqual(main(argv, out=io.StringIO(), err=err), 2, argv)
            self.assertEqual(len(err.getvalue().splitlines()), 1)
