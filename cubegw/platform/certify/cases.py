"""The conformance cases over the wire (protocol.md sections 5, 6, 7 and the catalogue).

Each case starts from a DUT online at the platform, with no fault rule; the engine clears
the rules afterwards and waits for the DUT to be online again.  ``row`` names the row of
protocol.md a case checks; docs/CERTIFICATION.md lists them.
"""

import importlib
import re

from cubegw.platform.certify.engine import (
    Case, CaseFailed, CaseSkipped, is_gateway, method, sent)

CASES = []
HEX32 = re.compile(r"[0-9A-F]{32}").fullmatch


def case(name, row, order=0):
    def wrap(f):
        CASES.append(Case(name, row, (f.__doc__ or "").strip().splitlines()[0], f, order))
        return f
    return wrap


def all_cases():
    """Every case of the suite, those of the other case modules included."""
    for module in ("plugincases", "lancases"):
        importlib.import_module("cubegw.platform.certify." + module)
    return list(CASES)


def answered(result):
    return lambda m: m["message"].get("Result") == result


def kick(ctx, hb_result, *rules):
    """Set ``rules``, then answer the next Hb ``hb_result`` once: the DUT's reaction
    starts there.  Returns (index after that Hb, the Hb)."""
    ctx.faults({"message": "Hb", "result": hb_result, "count": 1}, *rules)
    after = ctx.mark()
    interval = ctx.platform.get("heartbeat_interval", 60)
    hb = ctx.expect(sent("Hb"), interval + ctx.timings.hb_timeout + ctx.slack, after,
                    "a heartbeat")
    ctx.expect_reply(hb, answered(hb_result), f"Hb answered {hb_result}")
    return ctx.transcript.index(hb) + 1, hb


def retries(ctx, name, tries, after, extra=0.0):
    """``tries`` sends of ``name`` from ``after``; checks the n-th gap against the n-th
    TR-069 backoff bounds (plus ``extra``: the reply timeout when nothing answered)."""
    t = ctx.timings
    first = ctx.expect(sent(name), t.reply_timeout + t.backoff(1)[1] + ctx.slack, after,
                       name)
    previous = first
    for n in range(1, tries):
        low, high = t.backoff(n)
        nxt = ctx.expect(lambda m, p=previous: sent(name)(m) and m["seq"] > p["seq"],
                         extra + high + 2 * ctx.slack, ctx.transcript.index(previous) + 1,
                         f"{name} retry {n}")
        ctx.check_between(ctx.gap(previous, nxt), extra + low, extra + high,
                          f"wait before {name} retry {n}")
        previous = nxt
    return previous


# ------------------------------------------------------------------ section 6

@case("s6.noreply.retry", "6: any UDP request, no reply within reply_timeout")
def noreply_retry(ctx):
    """Unanswered BootFirst is retried after reply_timeout plus the n-th backoff wait."""
    after, _ = kick(ctx, -5, {"message": "BootFirst", "drop": 3})
    retries(ctx, "BootFirst", 4, after, extra=ctx.timings.reply_timeout)


@case("s6.bootfirst.minus1", "6: BootFirst / RegisterFirst -1")
def bootfirst_minus1(ctx):
    """BootFirst -1 is retried with the TR-069 backoff, over three tries."""
    after, _ = kick(ctx, -5, {"message": "BootFirst", "result": -1, "count": 3})
    retries(ctx, "BootFirst", 4, after)


@case("s6.registerfirst.minus1", "6: BootFirst / RegisterFirst -1")
def registerfirst_minus1(ctx):
    """RegisterFirst -1: the DUT starts again from BootFirst after a backoff wait."""
    after, _ = kick(ctx, -5, {"message": "RegisterFirst", "result": -1, "count": 1})
    rf = ctx.expect(sent("RegisterFirst"), 2 + ctx.slack, after, "RegisterFirst")
    ctx.expect_reply(rf, answered(-1), "RegisterFirst answered -1")
    low, high = ctx.timings.backoff(1)
    bf = ctx.expect(sent("BootFirst"), high + 2 * ctx.slack, ctx.transcript.index(rf) + 1,
                    "BootFirst again")
    ctx.check_between(ctx.gap(rf, bf), low, high, "wait before BootFirst")


@case("s6.bootfirst.minus6", "6: BootFirst -6")
def bootfirst_minus6(ctx):
    """BootFirst -6 (MAC not accepted) is retried with backoff."""
    after, _ = kick(ctx, -5, {"message": "BootFirst", "result": -6, "count": 2})
    retries(ctx, "BootFirst", 3, after)


@case("s6.any.minus2", "6: any, -2")
def any_minus2(ctx):
    """Result -2: silence for `silence` seconds, then BootFirst."""
    t = ctx.timings
    after, hb = kick(ctx, -2)
    ctx.expect_none(is_gateway, max(t.silence - ctx.slack, 0), after, "message in the silence")
    bf = ctx.expect(sent("BootFirst"), 2 * ctx.slack + 1, after, "BootFirst after the silence")
    ctx.check_between(ctx.gap(hb, bf), t.silence, t.silence, "silence")
    bad = ctx.since(after, lambda m: is_gateway(m) and m["seq"] < bf["seq"])
    if bad:
        ctx.cite(*bad)
        raise CaseFailed("the DUT spoke during the silence")


@case("s6.dist.minus5", "6: any, -5 (distribution reply)")
def dist_minus5(ctx):
    """BootFirst -5: BootFirst again."""
    after, _ = kick(ctx, -5, {"message": "BootFirst", "result": -5, "count": 1})
    retries(ctx, "BootFirst", 2, after)


@case("s6.oper.minus5", "6: any, -5 (operation reply)")
def oper_minus5(ctx):
    """Boot -5 three times in a row: Boot again twice, then BootFirst."""
    limit = ctx.timings.resync_limit
    after, _ = kick(ctx, -3, {"message": "Boot", "result": -5, "count": limit})
    for n in range(limit):
        boot = ctx.expect(sent("Boot"), 2 + ctx.slack, after, f"Boot {n + 1}")
        after = ctx.transcript.index(boot) + 1
    bf = ctx.expect(lambda m: is_gateway(m) and method(m) in ("BootFirst", "Boot"),
                    2 + ctx.slack, after, "BootFirst after the third -5")
    if method(bf) != "BootFirst":
        raise CaseFailed(f"Boot a {limit + 1}th time instead of BootFirst")


def boot_budget(ctx, rule):
    t = ctx.timings
    after, _ = kick(ctx, -3, rule)
    extra = t.reply_timeout if "drop" in rule else 0.0
    last = retries(ctx, "Boot", t.boot_tries, after, extra)
    low, high = ctx.timings.backoff(t.boot_tries)
    bf = ctx.expect(lambda m: is_gateway(m) and method(m) in ("BootFirst", "Boot")
                    and m["seq"] > last["seq"], extra + high + 2 * ctx.slack,
                    ctx.transcript.index(last) + 1, "BootFirst once the budget is spent")
    if method(bf) != "BootFirst":
        raise CaseFailed(f"Boot a {t.boot_tries + 1}th time instead of BootFirst")


@case("s6.boot.minus1", "6: Boot -1 or no reply after the retry budget")
def boot_minus1(ctx):
    """Boot -1 boot_tries times: retried with backoff, then BootFirst."""
    boot_budget(ctx, {"message": "Boot", "result": -1, "count": ctx.timings.boot_tries})


@case("s6.boot.noreply", "6: Boot -1 or no reply after the retry budget")
def boot_noreply(ctx):
    """Boot unanswered boot_tries times: retried, then BootFirst."""
    boot_budget(ctx, {"message": "Boot", "server": "operation",
                      "drop": ctx.timings.boot_tries})


@case("s6.register.2", "6: Register 2")
def register_2(ctx):
    """Register 2: heartbeats start, the first with FLAG "1", the next "0"."""
    after, _ = kick(ctx, -3)
    reg = ctx.expect(sent("Register", "operation"), 2 + ctx.slack, after, "Register")
    ctx.expect_reply(reg, answered(2), "Register answered 2")
    first = ctx.expect(sent("Hb"), 2 + ctx.slack, ctx.transcript.index(reg), "the first Hb")
    if first["message"].get("FLAG") != "1":
        raise CaseFailed(f"first Hb after Register has FLAG {first['message'].get('FLAG')!r}")
    interval = ctx.platform.get("heartbeat_interval", 60)
    nxt = ctx.expect(lambda m: sent("Hb")(m) and m["seq"] > first["seq"],
                     interval + 2 * ctx.slack, ctx.transcript.index(first) + 1, "the next Hb")
    if nxt["message"].get("FLAG") != "0":
        raise CaseFailed(f"later Hb has FLAG {nxt['message'].get('FLAG')!r}")


@case("s6.register.3", "6: Register 3")
def register_3(ctx):
    """Register 3: the DUT clears UserID and sends Register again, UserID empty."""
    after, _ = kick(ctx, -3, {"message": "Register", "server": "operation", "result": 3,
                              "count": 1})
    first = ctx.expect(sent("Register", "operation"), 2 + ctx.slack, after, "Register")
    ctx.expect_reply(first, answered(3), "Register answered 3")
    again = ctx.expect(lambda m: is_gateway(m) and m["seq"] > first["seq"], 2 + ctx.slack,
                       ctx.transcript.index(first) + 1, "the next message")
    if method(again) != "Register" or again["message"].get("UserID") != "":
        raise CaseFailed("after Register 3 the next message is not Register with UserID \"\"")


@case("s6.hb.0", "6: Hb 0")
def hb_0(ctx):
    """Hb 0: the next heartbeats follow the Interval of the reply."""
    interval = ctx.platform.get("heartbeat_interval", 60)
    after = ctx.mark()
    hbs = [ctx.expect(sent("Hb"), interval + 2 * ctx.slack, after, "Hb")]
    for n in range(2):
        hbs.append(ctx.expect(lambda m, p=hbs[-1]: sent("Hb")(m) and m["seq"] > p["seq"],
                              interval + 2 * ctx.slack, ctx.transcript.index(hbs[-1]) + 1,
                              "the next Hb"))
        ctx.check_between(ctx.gap(hbs[-2], hbs[-1]), interval, interval, "Hb interval")


@case("s6.hb.minus3", "6: Hb -3")
def hb_minus3(ctx):
    """Hb -3: the DUT registers again at the operation platform (Boot)."""
    after, _ = kick(ctx, -3)
    nxt = ctx.expect(is_gateway, 2 + ctx.slack, after, "Boot after Hb -3")
    if method(nxt) != "Boot" or nxt["server"] != "operation":
        raise CaseFailed(f"after Hb -3 the DUT sent {method(nxt)} to {nxt['server']}, "
                         "not Boot to the operation platform")


@case("s6.hb.minus5", "6: Hb -5")
def hb_minus5(ctx):
    """Hb -5: the DUT goes back to the distribution platform (BootFirst)."""
    after, _ = kick(ctx, -5)
    nxt = ctx.expect(is_gateway, 2 + ctx.slack, after, "BootFirst after Hb -5")
    if method(nxt) != "BootFirst":
        raise CaseFailed(f"after Hb -5 the DUT sent {method(nxt)}, not BootFirst")


@case("s6.hb.noreply", "6: Hb no reply within 30 s, 3 times in a row")
def hb_noreply(ctx):
    """Three heartbeats unanswered: each retried after hb_timeout, then Boot."""
    t = ctx.timings
    ctx.faults({"message": "Hb", "drop": t.hb_misses})
    after = ctx.mark()
    interval = ctx.platform.get("heartbeat_interval", 60)
    previous = ctx.expect(sent("Hb"), interval + t.hb_timeout + ctx.slack, after, "Hb")
    for n in range(1, t.hb_misses):
        nxt = ctx.expect(lambda m, p=previous: sent("Hb")(m) and m["seq"] > p["seq"],
                         t.hb_timeout + 2 * ctx.slack, ctx.transcript.index(previous) + 1,
                         f"Hb after miss {n}")
        ctx.check_between(ctx.gap(previous, nxt), t.hb_timeout, t.hb_timeout,
                          f"wait after miss {n}")
        previous = nxt
    boot = ctx.expect(lambda m: is_gateway(m) and m["seq"] > previous["seq"],
                      t.hb_timeout + 2 * ctx.slack, ctx.transcript.index(previous) + 1,
                      "Boot after the last miss")
    if method(boot) != "Boot":
        raise CaseFailed(f"after {t.hb_misses} misses the DUT sent {method(boot)}, not Boot")


@case("s6.boot.jitter", "6: daemon start")
def boot_jitter(ctx):
    """At start the DUT waits a random time in [0, boot_jitter] before its first message."""
    restart = ctx.options.get("restart")
    if not restart:
        raise CaseSkipped("needs --restart-command to restart the DUT")
    after = ctx.mark()
    started = ctx.clock()
    restart()
    first = ctx.expect(lambda m: is_gateway(m) and method(m) in ("BootFirst", "Boot"),
                       ctx.timings.boot_jitter + 30, after, "the first message after start")
    waited = ctx.clock() - started
    if waited > ctx.timings.boot_jitter + 10 + ctx.slack:
        raise CaseFailed(f"first message {waited:.2f} s after the restart")
    ctx.cite(first)


# ------------------------------------------------------------------ section 5

@case("s5.key.ok", "5: trigger Key match", order=1)
def key_ok(ctx):
    """The right Key: Result 0 with a fresh 32-hex DevRND, then the DUT connects."""
    key = ctx.key()
    old = ctx.dev_rnd
    result, answer = ctx.trigger(key=key)
    dev_rnd = answer["message"].get("DevRND")
    if result != 0 or not isinstance(dev_rnd, str) or not HEX32(dev_rnd):
        raise CaseFailed(f"answer {answer['message']}: not Result 0 with a 32-hex DevRND")
    if dev_rnd == old:
        raise CaseFailed("the DevRND in the answer is not fresh")
    after = ctx.transcript.index(answer)
    boot = ctx.expect(sent("Boot", "plugin_center"), ctx.timings.plugin_retry_max + 5,
                      after, "plugin-center Boot")
    ctx.cite(boot)


@case("s5.key.bad", "5: trigger Key mismatch", order=1)
def key_bad(ctx):
    """A wrong Key: Result -1 and nothing done (no plugin connection)."""
    if ctx.client.device(ctx.mac)["plugin_connected"]:
        ctx.client.disconnect(ctx.mac)
    result, answer = ctx.trigger(key="0" * 32)
    if result != -1:
        raise CaseFailed(f"a wrong Key answered {result}, not -1")
    ctx.expect_none(sent("Boot", "plugin_center"), 1 + ctx.slack,
                    ctx.transcript.index(answer), "plugin-center connection")


@case("s5.key.single-use", "5: a Key works once", order=1)
def key_single_use(ctx):
    """A used Key on other content (another port) is refused -1."""
    key = ctx.key()
    result, _ = ctx.trigger(key=key)
    if result != 0:
        raise CaseFailed(f"the right Key answered {result}")
    result, answer = ctx.trigger(key=key, port=1)
    if result != -1:
        raise CaseFailed(f"a used Key on other content answered {result}, not -1")


@case("s5.key.resend", "5: the same trigger within 10 s", order=1)
def key_resend(ctx):
    """The same trigger again within 10 s gets the same answer (same DevRND)."""
    key = ctx.key()
    first, a = ctx.trigger(key=key)
    second, b = ctx.trigger(key=key, resend=True)
    if (first, second) != (0, 0) or a["message"].get("DevRND") != b["message"].get("DevRND"):
        raise CaseFailed(f"answers {a['message']} then {b['message']}: not the same")


@case("s5.rate-limit", "5: triggers acted on per minute", order=9)
def rate_limit(ctx):
    """At most 6 triggers a minute are acted on: a 7th with the right Key is refused."""
    limit = ctx.options.get("trigger_limit", 6)
    budget = trigger_budget(ctx, limit)
    for n in range(budget + 1):
        key = ctx.key()
        if ctx.resend_wait(key=key):
            raise CaseFailed("cannot count: the next Key is one sent within 10 s (the DUT's "
                             "answers carry no fresh DevRND, see s5.key.ok), so the DUT "
                             "would take the trigger for a resend")
        result, answer = ctx.trigger(key=key)
        if n < budget and result != 0:
            raise CaseFailed(f"trigger {n + 1} of the {budget} left of {limit} a minute "
                             f"answered {result}")
    if result != -1:
        raise CaseFailed(f"trigger {limit + 1} within a minute answered {result}, not -1")


def trigger_budget(ctx, limit):
    """How many triggers the DUT will still act on this minute, counting the suite's
    own earlier ones; waits while one of them would leave the minute mid-case."""
    margin = 1 + ctx.slack
    while True:
        acted = ctx.acted_on(60 + margin)
        during = (limit - len(acted) + 2) * (1 + ctx.slack)
        ages = [ctx.clock() - t for t in acted]
        edge = [a for a in ages if a > 60 - during - margin]
        if not edge:
            return limit - len(acted)
        ctx.sleep(60 + margin - min(edge))
