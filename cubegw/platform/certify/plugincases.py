"""The plugin-center cases (protocol.md section 7: the session, Posts, Disconnect,
reconnect, Reports) and the catalogue's (section 9)."""

import threading

from cubegw import identity
from cubegw.platform.certify.cases import answered, case
from cubegw.platform.certify.engine import CaseFailed, is_gateway, method, sent

@case("s7.session", "7: plugin center Boot, Register, Heartbeat", order=2)
def plugin_session(ctx):
    """After RequestPlug-in: Boot, Register with CheckSN = MD5(ChallengeCode+SN), Heartbeat."""
    if ctx.client.device(ctx.mac)["plugin_connected"]:
        ctx.client.disconnect(ctx.mac)
    after = ctx.mark()
    ctx.plugin_connected()
    boot = ctx.expect(sent("Boot", "plugin_center"), 2, after, "plugin Boot")
    reply = ctx.expect_reply(boot, answered(0), "Boot answered 0")
    reg = ctx.expect(sent("Register", "plugin_center"), 2, after, "plugin Register")
    challenge = reply["message"].get("ChallengeCode", "")
    if reg["message"].get("CheckSN") != identity.check_sn(challenge, boot["message"]["SN"]):
        raise CaseFailed("plugin Register's CheckSN is not MD5(ChallengeCode + SN)")
    ctx.expect(sent("Heartbeat", "plugin_center"), ctx.timings.heartbeat + 2 * ctx.slack,
               after,
               "plugin Heartbeat")


@case("s7.posts.concurrent", "7: several Posts in flight", order=2)
def posts_concurrent(ctx):
    """Three Posts at once: each answered with its own ID and CmdType."""
    ctx.plugin_connected()
    cmds = ["GET_TIME_DURATION", "QUERY_MEM_INFO", "GET_VERSION"]
    answers, errors = {}, []

    def call(cmd):
        try:
            answers[cmd] = ctx.client.call(ctx.mac, {"CmdType": cmd, "SequenceId": "%08X" % (
                0xC0C0A000 + cmds.index(cmd))}, timeout=10)
        except Exception as e:  # reported as the case's failure
            errors.append(f"{cmd}: {e}")
    threads = [threading.Thread(target=call, args=(c,)) for c in cmds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ctx.pull()
    posts = [m for m in ctx.transcript if not is_gateway(m) and method(m) == "Post"][-3:]
    ctx.cite(*posts)
    if errors:
        raise CaseFailed("; ".join(errors))
    for cmd, (result, payload) in answers.items():
        if result != 0 or payload.get("CmdType") != cmd:
            raise CaseFailed(f"{cmd} answered Result {result} with {payload}")


@case("s7.disconnect", "7: Disconnect", order=3)
def plugin_disconnect(ctx):
    """Disconnect: the DUT closes and does not reconnect until the next RequestPlug-in."""
    ctx.plugin_connected()
    after = ctx.mark()
    ctx.client.disconnect(ctx.mac)
    ctx.expect_none(sent("Boot", "plugin_center"),
                    ctx.timings.plugin_retry_initial * 3 + 1 + ctx.slack, after,
                    "reconnection after Disconnect")


@case("s7.reconnect", "7: a dropped connection is re-established with backoff", order=3)
def plugin_reconnect(ctx):
    """A dropped connection (no Disconnect): the DUT reconnects within the first wait."""
    ctx.plugin_connected()
    after = ctx.mark()
    ctx.client.drop(ctx.mac)
    ctx.expect(sent("Boot", "plugin_center"),
               ctx.timings.plugin_retry_initial * 1.5 + 1 + 2 * ctx.slack, after,
               "plugin Boot after the drop")


@case("s7.reports", "7: pushed reports (plugin connection up, else UDP)", order=3)
def plugin_reports(ctx):
    """Reports go over the plugin connection while it is up, else as UDP datagrams."""
    ctx.plugin_connected()
    period = 1
    after = ctx.mark()
    speed = {"CmdType": "DEVICE_SPEED", "SequenceId": "0000C0DE", "Enable": "1",
             "Time": str(period), "List": []}
    result, payload = ctx.client.call(ctx.mac, speed)
    ctx.pull()
    if result != 0 or payload.get("Status") != "0":
        ctx.cite(*ctx.transcript[after:][-2:])
        raise CaseFailed(f"DEVICE_SPEED Enable 1: Result {result}, payload {payload}")
    try:
        report = sent("Report", "plugin_center")
        ctx.expect(report, period + 1 + 2 * ctx.slack, after, "a Report over the plugin "
                   "connection")
        ctx.client.disconnect(ctx.mac)
        after = ctx.mark()
        ctx.expect(lambda m: sent("Report")(m) and m["server"] != "plugin_center",
                   period + 1 + 2 * ctx.slack, after, "a Report by UDP once disconnected")
        if ctx.since(after, report):
            ctx.cite(*ctx.since(after, report))
            raise CaseFailed("a Report over the plugin connection after Disconnect")
    finally:
        ctx.plugin_connected()
        ctx.client.call(ctx.mac, dict(speed, Enable="0"))


# ------------------------------------------------------------------ catalogue

READ_ONLY = {"GET_SN_INFO": ("MAC",), "QUERY_CPU_INFO": ("Percent",),
             "QUERY_MEM_INFO": ("Percent",), "GET_TIME_DURATION": (),
             "GET_VERSION": ("Version",), "QUERY_SYSTEM_INFO": ("MAC", "SN")}


@case("cat.forms", "9: request and reply payloads", order=2)
def catalogue_forms(ctx):
    """Read-only CmdTypes answer Result 0 in their form: CmdType, SequenceId, Status."""
    ctx.plugin_connected()
    for n, (cmd, fields) in enumerate(sorted(READ_ONLY.items())):
        seq = "%08X" % (0xC0DE0000 + n)
        result, payload = ctx.client.call(ctx.mac, {"CmdType": cmd, "SequenceId": seq})
        ctx.pull()
        ctx.cite(*ctx.transcript[-2:])
        if result != 0 or payload.get("CmdType") != cmd or payload.get("SequenceId") != seq \
                or payload.get("Status") != "0":
            raise CaseFailed(f"{cmd}: Result {result}, payload {payload}")
        missing = [f for f in fields if f not in payload]
        if missing or any(not isinstance(v, str) for k, v in payload.items()
                          if k in fields):
            raise CaseFailed(f"{cmd}: fields {missing} missing or not strings")


@case("cat.unknown", "8/9: an unknown CmdType", order=2)
def catalogue_unknown(ctx):
    """An unknown CmdType: Result 0, Status 1, FailReason UNRECOGNIZE_REQUEST."""
    ctx.plugin_connected()
    result, payload = ctx.client.call(ctx.mac, {"CmdType": "NO_SUCH_COMMAND",
                                                "SequenceId": "0000ABCD"})
    ctx.pull()
    ctx.cite(*ctx.transcript[-2:])
    if result != 0 or payload.get("Status") != "1" \
            or payload.get("FailReason") != "UNRECOGNIZE_REQUEST":
        raise CaseFailed(f"Result {result}, payload {payload}")


@case("cat.consistent", "9: read-only values agree with what the DUT reports", order=2)
def catalogue_consistent(ctx):
    """QUERY_SYSTEM_INFO's MAC and SN are those of the DUT's Boot."""
    ctx.plugin_connected()
    result, payload = ctx.client.call(ctx.mac, {"CmdType": "QUERY_SYSTEM_INFO"})
    record = ctx.client.device(ctx.mac)["record"]
    ctx.pull()
    ctx.cite(*ctx.transcript[-2:])
    if payload.get("MAC", "").replace(":", "").upper() != ctx.mac \
            or payload.get("SN") != record["sn"]:
        raise CaseFailed(f"QUERY_SYSTEM_INFO says MAC {payload.get('MAC')} SN "
                         f"{payload.get('SN')}; the DUT registered as {ctx.mac} {record['sn']}")
