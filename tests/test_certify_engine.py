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
        """Missing --dut/--token, a bad MAC, timing or --lan: exit 2 with one line."""
        import io
        for argv in ([], ["--dut", "xx", "--token", "t"],
                     ["--dut", MAC, "--token", "t", "--timing", "silence"],
                     ["--dut", MAC, "--token", "t", "--lan", "nohost"],
                     ["--dut", MAC, "--token", "t", "--lan", "h:99999"]):
            err = io.StringIO()
            self.assertEqual(main(argv, out=io.StringIO(), err=err), 2, argv)
            self.assertEqual(len(err.getvalue().splitlines()), 1)


class ConformantDut:
    """A client whose DUT answers triggers as protocol.md 5 says: a fresh DevRND per
    accepted trigger, a used Key refused, resends answered alike, 6 a minute."""

    def __init__(self, clock, fresh=True):
        self.clock = clock
        self.fresh = fresh
        self.log = []
        self.dev_rnd = "A" * 32
        self.acted = []
        self.last = None
        self.n = 0

    def record(self):
        return {"dev_rnd": self.dev_rnd, "sn": "SN1", "wifi_ssid": "ChinaNet-X",
                "wifi_password": "w", "useradmin_password": "u"}

    def device(self, mac):
        return {"record": self.record(), "plugin_connected": True}

    def messages(self, mac, since):
        return [m for m in self.log if m["seq"] > since]

    def set_faults(self, rules):
        pass

    def add(self, direction, **body):
        self.log.append({"seq": len(self.log) + 1, "time": self.clock.now,
                         "direction": direction, "server": "operation", "message": body})

    def trigger(self, mac, kind, key=None, port=9000):
        from cubegw import identity
        r = self.record()
        self.add("out", RPCMethod="RequestPlug-in", Key=key, ServerPort=port)
        content = (key, port)
        if self.last and self.last[0] == content and self.clock.now - self.last[1] < 10:
            answer = self.last[2]
        elif key != identity.trigger_key(self.dev_rnd, r["sn"], r["wifi_ssid"],
                                         r["wifi_password"], r["useradmin_password"]):
            answer = {"Result": -1}
        elif len([t for t in self.acted if self.clock.now - t < 60]) >= 6:
            answer = {"Result": -1}
        else:
            self.acted.append(self.clock.now)
            if self.fresh:
                self.n += 1
                self.dev_rnd = "%032X" % self.n
            answer = {"Result": 0, "DevRND": self.dev_rnd}
            self.last = (content, self.clock.now, answer)
        self.add("in", **answer)
        self.clock.sleep(0.01)
        return answer["Result"]


class TriggerCaseTests(SynchronousTestCase):
    """The section 5 cases against a scripted DUT, time injected."""

    def run_cases(self, dut, now, *names):
        ctx = Context(dut, MAC, Timings().scaled(0.01), 0.2, clock=now, sleep=now.sleep)
        ctx.platform = {"heartbeat_interval": 1}
        cases = {c.name: c for c in suite.all_cases()}
        return ctx, [run_case(ctx, cases[n], recover=False) for n in names]

    def test_conformant_dut_passes(self):
        """With a fresh DevRND per answer, key.ok, single-use, resend and the rate limit
        PASS, the rate limit counting the triggers the earlier cases spent."""
        now = Now()
        dut = ConformantDut(now)
        dut.device = lambda mac: {"record": dut.record(), "plugin_connected": False}
        ctx, verdicts = self.run_cases(dut, now, "s5.key.single-use", "s5.key.resend",
                                       "s5.rate-limit")
        self.assertEqual([(v.verdict, v.reason) for v in verdicts], [(PASS, "")] * 3)
        self.assertLess(now.now, 5)     # nothing waited: every Key was new

    def test_rate_limit_waits_out_an_edge(self):
        """Triggers that leave the minute during the case are waited out first."""
        now = Now()
        dut = ConformantDut(now)
        ctx, _ = self.run_cases(dut, now, "s5.key.single-use")
        now.sleep(58)
        case = next(c for c in suite.all_cases() if c.name == "s5.rate-limit")
        verdict = run_case(ctx, case, recover=False)
        self.assertEqual(verdict.verdict, PASS, verdict.reason)
        self.assertGreater(now.now, 60)

    def test_no_fresh_devrnd_fails_with_the_reason(self):
        """A DUT whose answers carry the same DevRND: key.ok FAILs, the rate limit says
        it cannot count, and no case waits out resend windows for it."""
        now = Now()
        dut = ConformantDut(now, fresh=False)
        ctx, verdicts = self.run_cases(dut, now, "s5.key.ok", "s5.rate-limit")
        self.assertEqual(verdicts[0].verdict, FAIL)
        self.assertIn("not fresh", verdicts[0].reason)
        self.assertEqual(verdicts[1].verdict, FAIL)
        self.assertIn("no fresh DevRND", verdicts[1].reason)
        self.assertLess(now.now, 5)
