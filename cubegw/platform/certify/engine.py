"""Running certification cases and judging them.

A case sets the platform's behaviour (fault rules, a trigger, a Post), then expects the
gateway to send something within a time, read from the platform's wire message log.  Its
verdict is PASS, FAIL or SKIP with a reason and the evidence: the messages that decided
it.  Times come from the gateway's timing profile (``Timings``: protocol.md's defaults,
multiplied by ``--time-scale``, each overridable), with ``slack`` seconds of tolerance
for the network and the scheduler.  ``clock`` and ``sleep`` are injected.
"""

import dataclasses
import fnmatch
import time

from cubegw import identity
from cubegw.platform.certify.client import PlatformError

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
#: protocol.md 5: the same trigger again within this many seconds is a resend.
RESEND_WINDOW = 10.0


@dataclasses.dataclass
class Timings:
    """The DUT's protocol timings in seconds (protocol.md defaults)."""
    reply_timeout: float = 5.0
    retry_initial: float = 5.0
    retry_factor: float = 2.0
    retry_max: float = 3600.0
    silence: float = 9000.0
    hb_timeout: float = 30.0
    boot_jitter: float = 30.0
    plugin_retry_initial: float = 1.0
    plugin_retry_max: float = 60.0
    heartbeat: float = 60.0           # the DUT's X_CT-COM_Mgt.Heartbeat (plugin center)
    boot_tries: int = 3
    hb_misses: int = 3
    resync_limit: int = 3

    COUNTS = ("boot_tries", "hb_misses", "resync_limit", "retry_factor")

    def scaled(self, scale, overrides=None):
        """Every duration times ``scale``, then ``overrides`` (name -> value) applied."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in values:
            if name not in self.COUNTS:
                values[name] *= scale
        for name, value in (overrides or {}).items():
            if name not in values:
                raise ValueError(f"unknown timing {name!r} (known: {', '.join(values)})")
            values[name] = type(values[name])(value)
        return Timings(**values)

    def backoff(self, n):
        """Bounds (low, high) of the n-th TR-069 retry wait (n >= 1)."""
        m, k = self.retry_initial, self.retry_factor
        return min(m * k ** (n - 1), self.retry_max), min(m * k ** n, self.retry_max)


class CaseFailed(Exception):
    """The gateway did not do what the case expects."""


class CaseSkipped(Exception):
    """The case cannot run here (a missing option, a capability the DUT lacks)."""


@dataclasses.dataclass
class Case:
    name: str           # e.g. "s6.hb.minus3"
    row: str            # the protocol.md row it checks
    title: str
    run: object         # run(ctx)
    order: int = 0      # cases that spend budgets (the trigger rate) go last


@dataclasses.dataclass
class Verdict:
    case: Case
    verdict: str
    reason: str = ""
    seconds: float = 0.0
    evidence: list = dataclasses.field(default_factory=list)

    def as_dict(self):
        return {"name": self.case.name, "row": self.case.row, "title": self.case.title,
                "verdict": self.verdict, "reason": self.reason,
                "seconds": round(self.seconds, 3), "evidence": self.evidence}


def is_gateway(m):
    return m["direction"] == "in"


def method(m):
    return m["message"].get("RPCMethod")


def sent(name, server=None):
    """A predicate: the gateway sent RPCMethod ``name`` (to ``server``)."""
    return lambda m: is_gateway(m) and method(m) == name and (
        server is None or m["server"] == server)


class Context:
    """What a case works with: the platform, the DUT's MAC and timings, and the
    transcript of the DUT's messages (polled from the wire log)."""

    def __init__(self, client, mac, timings, slack=0.3, options=None, clock=time.monotonic,
                 sleep=time.sleep, poll=0.05):
        self.client = client
        self.mac = mac
        self.timings = timings
        self.slack = slack
        self.options = options or {}
        self.clock = clock
        self.sleep = sleep
        self.poll = poll
        self.transcript = []
        self.evidence = []
        self.seq = 0
        self.dev_rnd = None
        self.platform = {}
        self.device = {}
        #: the suite's triggers: (clock time, body, Result, acted on)
        self.triggers = []

    # ------------------------------------------------------------- the log

    def pull(self):
        """Read the DUT's new messages into the transcript; return them."""
        new = self.client.messages(self.mac, self.seq)
        for m in new:
            self.seq = max(self.seq, m["seq"])
            msg = m["message"]
            if is_gateway(m) and (method(m) == "Register" and m["server"] == "operation"
                                  or (msg.get("Result") == 0 and "DevRND" in msg)):
                if isinstance(msg.get("DevRND"), str):
                    self.dev_rnd = msg["DevRND"]
        self.transcript.extend(new)
        return new

    def mark(self):
        """The current end of the transcript (pass as ``after`` to ``expect``)."""
        self.pull()
        return len(self.transcript)

    def cite(self, *messages):
        for m in messages:
            if m not in self.evidence:
                self.evidence.append(m)

    def since(self, after, pred=lambda m: True):
        return [m for m in self.transcript[after:] if pred(m)]

    def expect(self, pred, within, after, what):
        """The first message after index ``after`` matching ``pred`` within ``within``
        seconds from now (``CaseFailed`` naming ``what`` otherwise); it is cited."""
        deadline = self.clock() + within
        while True:
            for m in self.transcript[after:]:
                if pred(m):
                    self.cite(m)
                    return m
            if self.clock() > deadline:
                self.evidence.extend(m for m in self.transcript[after:][-8:]
                                     if m not in self.evidence)
                raise CaseFailed(f"expected {what} within {within:.2f} s; it did not come")
            self.sleep(self.poll)
            self.pull()

    def expect_none(self, pred, during, after, what):
        """No message matching ``pred`` for ``during`` seconds (``CaseFailed`` citing
        the one that came)."""
        deadline = self.clock() + during
        while self.clock() < deadline:
            self.sleep(self.poll)
            self.pull()
            for m in self.transcript[after:]:
                if pred(m):
                    self.cite(m)
                    raise CaseFailed(f"expected no {what} for {during:.2f} s; one came")

    def expect_reply(self, request, pred, what):
        """The platform's reply to ``request`` (the next message out after it)."""
        index = self.transcript.index(request)
        return self.expect(lambda m: not is_gateway(m) and pred(m), 2 + self.slack,
                           index + 1, what)

    def gap(self, first, second):
        return second["time"] - first["time"]

    def check_between(self, value, low, high, what):
        if not low - self.slack <= value <= high + self.slack:
            raise CaseFailed(f"{what}: {value:.3f} s, outside [{low:.3f}, {high:.3f}] "
                             f"(± {self.slack} s)")

    # ----------------------------------------------------------- the platform

    def faults(self, *rules):
        """Replace the platform's fault rules with ``rules`` (for this DUT)."""
        self.client.set_faults([dict(r, mac=self.mac) for r in rules])

    def key(self):
        """The next trigger Key: MD5(DevRND + SN + SSID tail + WiFi + useradmin)."""
        record = self.client.device(self.mac)["record"]
        if not self.dev_rnd:
            self.dev_rnd = record["dev_rnd"]
        return identity.trigger_key(self.dev_rnd, record["sn"], record["wifi_ssid"],
                                    record["wifi_password"], record["useradmin_password"])

    def trigger(self, kind="request-plugin", resend=False, **body):
        """Send a trigger and read its answer from the log: (Result, answer message).

        The same trigger again within 10 s is a resend (protocol.md 5: answered, not
        acted on); unless ``resend`` is asked for, one identical to a recent trigger
        waits until the window has passed, so a case never resends by accident (a DUT
        whose answers carry no fresh DevRND makes every Key the same)."""
        wait = self.resend_wait(kind, **body)
        if wait > 0 and not resend:
            self.sleep(wait)
        after = self.mark()
        sent_at = self.clock()
        try:
            result = self.client.trigger(self.mac, kind, **body)
        except PlatformError as e:
            if e.code == 504:
                raise CaseFailed(f"{kind}: the gateway did not answer")
            raise
        out = self.expect(lambda m: not is_gateway(m) and method(m) in (
            "RequestPlug-in", "RequestDistri"), 1 + self.slack, after, "the trigger")
        answer = self.expect(lambda m: is_gateway(m) and "Result" in m["message"]
                             and m["server"] == "operation" and m["seq"] > out["seq"],
                             1 + self.slack, after, "the trigger's answer")
        self.triggers.append((sent_at, (kind, sorted(body.items())), result,
                              result == 0 and not resend))
        return result, answer

    def resend_wait(self, kind="request-plugin", **body):
        """Seconds until this trigger is no longer a resend of one the suite sent."""
        content = (kind, sorted(body.items()))
        recent = [t for t, b, _, _ in self.triggers if b == content]
        if not recent:
            return 0.0
        return max(0.0, recent[-1] + RESEND_WINDOW + self.slack - self.clock())

    def trigger_room(self):
        """Wait until the DUT's trigger rate limit (``trigger_limit`` a minute, counting
        the suite's own triggers) lets one more trigger be acted on."""
        limit = self.options.get("trigger_limit", 6)
        window = 60 + 1 + self.slack
        acted = self.acted_on(window)
        if len(acted) >= limit:
            self.sleep(acted[len(acted) - limit] + window - self.clock())

    def acted_on(self, window=60.0):
        """Clock times of the suite's triggers the DUT acted on within ``window`` s."""
        now = self.clock()
        return [t for t, _, _, acted in self.triggers if acted and now - t < window]

    def online(self, within=None):
        """Wait for a heartbeat answered Result 0 (the DUT is online)."""
        after = self.mark()
        interval = self.platform.get("heartbeat_interval", 60)
        within = within or (interval + self.timings.hb_timeout + self.slack)
        hb = self.expect(sent("Hb"), within, after, "a heartbeat")
        self.expect_reply(hb, lambda m: m["message"].get("Result") == 0, "Hb Result 0")

    def plugin_connected(self):
        """Connect the DUT to the plugin center (RequestPlug-in) unless it is."""
        if self.client.device(self.mac)["plugin_connected"]:
            return
        self.trigger_room()
        result, _ = self.trigger(key=self.key())
        if result != 0:
            raise CaseFailed(f"RequestPlug-in with the right Key answered {result}")
        deadline = self.clock() + self.timings.plugin_retry_max + 5
        while not self.client.device(self.mac)["plugin_connected"]:
            if self.clock() > deadline:
                raise CaseFailed("the gateway did not connect to the plugin center")
            self.sleep(self.poll)
        self.pull()


def select(cases, patterns):
    """The cases whose name matches one of the glob ``patterns`` (all when none)."""
    if not patterns:
        return list(cases)
    return [c for c in cases if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]


def run_case(ctx, case, recover=True):
    """Run one case: its verdict (never raises but for KeyboardInterrupt)."""
    ctx.evidence = []
    started = ctx.clock()
    try:
        ctx.faults()
        case.run(ctx)
        verdict, reason = PASS, ""
    except CaseFailed as e:
        verdict, reason = FAIL, str(e)
    except CaseSkipped as e:
        verdict, reason = SKIP, str(e)
    except PlatformError as e:
        verdict, reason = FAIL, f"platform: {e}"
    result = Verdict(case, verdict, reason, ctx.clock() - started, list(ctx.evidence))
    try:
        ctx.faults()
        if recover and verdict != SKIP:
            ctx.online(within=recovery_time(ctx))
    except (CaseFailed, PlatformError) as e:
        if result.verdict == PASS:
            result.verdict, result.reason = FAIL, f"the gateway did not recover: {e}"
    return result


def recovery_time(ctx):
    """How long a DUT may take to be online again after a case: a few retries (the
    case may leave it in backoff), a registration, a heartbeat."""
    t = ctx.timings
    retries = sum(t.backoff(n)[1] + t.reply_timeout for n in range(1, 5))
    return retries + ctx.platform.get("heartbeat_interval", 60) + t.hb_timeout + 2


def run_suite(ctx, cases, on_verdict=lambda v: None):
    """Wait for the DUT to be online, run ``cases`` in their order; the verdicts."""
    ctx.platform = ctx.client.platform()
    ctx.pull()
    ctx.online()
    verdicts = []
    for case in sorted(cases, key=lambda c: c.order):
        verdict = run_case(ctx, case)
        verdicts.append(verdict)
        on_verdict(verdict)
    return verdicts
