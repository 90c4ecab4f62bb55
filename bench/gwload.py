"""Load and measurement process for the gateway figures (``twistd cubegw`` under test).

Runs in its own process, apart from the daemon it measures.  It plays the platform side
on 127.0.0.1 (a scripted distribution + operation platform that answers at once, and a
scripted plugin center), spawns the gateway, and measures it with psutil and
/proc/<pid>/task/*/schedstat:

  startup     process start -> first Hb datagram received (boot_jitter 0), N runs,
              against a bare ``twistd --python bench/baseline.tac`` start -> reactor running
  rss         RSS after --dwell s registered, plugin channel up, LAN served; baseline tac
  hb_cpu      CPU per heartbeat cycle (see METHOD below)
  lan         Post1 connect-call-close loops against a bare Int32 echo (windows
              alternating): SET_WLAN_SSID_DISABLE, 5 clients, in a session proven with
              the useradmin password (CHECK_PASSWD_PARAM) on a seeded UCI wireless
              file; GET_SN_INFO (open to anyone), 1 and 5 clients, for reference
  plugin      Post QUERY_MEM_INFO over the plugin-center connection, 64 in flight;
              baseline: ``echo.py wire`` (registers like the gateway, then decodes each
              Post and encodes its reply with cubegw.wire, no capability behind it),
              driven by the same scripted center code; for reference, the raw Int32
              echo (``echo.py tcp``) over one connection

METHOD for hb_cpu: Interval is an integer (>= 1 s) on the wire and X_CT-COM_Mgt.Heartbeat
too, so 0.2 s heartbeats cannot be asked for without changing the protocol.  The scripted
operation platform answers every Hb at once with Interval 1, so the gateway runs one full
cycle (timer, encode, send, reply, decode, machine, status file) per second.  The CPU time
of all the daemon's threads (schedstat, ns) is read at window edges during the dwell; then
a Hb is answered with Interval 3600 and the same daemon is measured idle (no heartbeat,
every other timer still running).  per-heartbeat CPU = (window CPU - idle CPU rate x window
length) / heartbeats in the window.  Baseline, measured over the same windows beside the
gateway: ``baseline.tac`` with BENCH_HB, a bare Twisted process whose timer sends a JSON Hb
each second to a scripted answer and decodes the reply (per cycle = its CPU / replies; its
idle rate is near zero, no other timers).  Bounded: every phase has a fixed duration.

Writes one JSON document to --out.  Loopback only.
"""

import argparse
import compileall
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time

import yaml
from twisted.internet import defer, protocol, reactor, task
from twisted.protocols.basic import Int32StringReceiver

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.common import (  # noqa: E402
    BENCH, LOOPBACK, ROOT, child_env, cpu_ns, free_port, percentile, rss, run_count,
    twistd_argv)
from cubegw import identity, wire  # noqa: E402

MAC = "02BE4C000001"
SN = identity.sn_from_mac(MAC)
CHALLENGE = "00112233445566778899AABBCCDDEEFF"
ACCOUNTS = {"useradmin": "bench-admin", "telecomadmin": "bench-telecom"}
WIFI = {"ssid": "ChinaNet-BENCH", "password": "bench-wifi"}
#: The test backend's UCI wireless file: two radios, three SSIDs; the first is the
#: YAML ``wifi`` (the trigger Key is computed from it).
WIRELESS = """
config wifi-device 'radio0'
	option type 'mac80211'
	option path 'platform/soc/18000000.wifi'
	option channel '1'
	option band '2g'
	option htmode 'HE20'
	option country 'CN'
	option cell_density '0'

config wifi-device 'radio1'
	option type 'mac80211'
	option path 'platform/soc/18000000.wifi+1'
	option channel '36'
	option band '5g'
	option htmode 'HE80'
	option country 'CN'
	option cell_density '0'

config wifi-iface 'default_radio0'
	option device 'radio0'
	option network 'lan'
	option mode 'ap'
	option ssid '%(ssid)s'
	option encryption 'psk2'
	option key '%(password)s'

config wifi-iface 'default_radio1'
	option device 'radio1'
	option network 'lan'
	option mode 'ap'
	option ssid '%(ssid)s-5G'
	option encryption 'psk2'
	option key '%(password)s'

config wifi-iface 'guest_radio0'
	option device 'radio0'
	option network 'guest'
	option mode 'ap'
	option ssid 'ChinaNet-GUEST'
	option encryption 'psk2'
	option key 'bench-guest-key'
	option isolate '1'
""" % WIFI
SSIDS = 3
SET_CMD = "SET_WLAN_SSID_DISABLE"
GET_CMD = "GET_SN_INFO"


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


def progress(text):
    sys.stderr.write(f"\r  gwload: {text:<70}")
    sys.stderr.flush()


# ---------------------------------------------------------------- processes

class Child(protocol.ProcessProtocol):
    """A child process whose output goes to a log file; ``ended`` fires at exit."""

    def __init__(self, argv, cwd, logpath, env=None):
        self.argv, self.cwd = argv, cwd
        self.log = open(logpath, "ab")
        self.env = env or child_env()
        self.ended = defer.Deferred()
        self.lines = b""

    def start(self):
        self.t_spawn = time.monotonic()
        self.process = reactor.spawnProcess(self, self.argv[0], self.argv, env=self.env,
                                            path=self.cwd)
        self.pid = self.process.pid
        return self

    def outReceived(self, data):
        self.log.write(data)
        self.lines = (self.lines + data)[-4096:]

    errReceived = outReceived

    def processEnded(self, reason):
        self.log.close()
        self.ended.callback(None)

    def stop(self, sig="TERM", timeout=10):
        if not self.ended.called:
            try:
                self.process.signalProcess(sig)
            except Exception:
                pass
            if sig != "KILL":
                def kill():
                    if not self.ended.called:
                        try:
                            self.process.signalProcess("KILL")
                        except Exception:
                            pass
                call = reactor.callLater(timeout, kill)
                self.ended.addBoth(lambda r: call.active() and call.cancel() or r)
        return self.ended


def gateway_config(workdir, dist_port, lan=True, jitter=0.0):
    """The gateway's YAML in ``workdir``.  The store is in ``workdir/etc/config``, so
    the backend's root is ``workdir`` (``tap.backend_root``): the test backend, not
    OpenWrt (``apply`` answers "not OpenWrt" at once); with ``lan``, a UCI wireless
    file is seeded there for the SET calls.  The distribution platform's address
    (127.0.0.1, ``dist_port``) is written to the store, as ``cubegw-ctl mgt set`` does."""
    confdir = os.path.join(workdir, "etc", "config")
    os.makedirs(confdir, exist_ok=True)
    if lan:
        with open(os.path.join(confdir, "wireless"), "w") as f:
            f.write(WIRELESS)
    config = {
        "device": {"mac": MAC, "sn": "auto", "loid": "0755BENCH1", "vendor": "cubegw",
                   "model": "bench", "wan_interface": "lo"},
        "accounts": ACCOUNTS, "wifi": WIFI,
        "store": {"confdir": confdir},
        "state_dir": os.path.join(workdir, "state"),
        "udp_bind": LOOPBACK,
        "lan": {"addresses": [LOOPBACK] if lan else []},
        "timing": {"boot_jitter": jitter, "retry_initial": 0.5, "retry_factor": 2,
                   "retry_max": 4, "reply_timeout": 1, "hb_timeout": 2},
    }
    path = os.path.join(workdir, "cubegw.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    set_mgt(path, "MgtURL", LOOPBACK)
    set_mgt(path, "Port", dist_port)
    return path


def read_wireless(workdir):
    """The SSIDs' ``disabled`` options in the gateway's wireless file after the load."""
    from cubegw.store import uci
    with open(os.path.join(workdir, "etc", "config", "wireless")) as f:
        package = uci.parse(f.read())
    return {s.name: s.get("disabled") for s in package.sections_of("wifi-iface")}


def durable_write_ms(directory, runs=20):
    """The median time, in ms, of one durable write of the wireless file in
    ``directory`` by the backend's own writer (``ucifiles.write_file``: a temporary
    file, fsync, rename, fsync of the folder)."""
    from cubegw.ucifiles import write_file
    path = os.path.join(directory, "durable-probe")
    data = WIRELESS.encode()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        write_file(path, data)
        times.append(time.perf_counter() - t0)
    os.remove(path)
    return sorted(times)[len(times) // 2] * 1e3


def set_mgt(config, name, value):
    from cubegw.ctl import main
    out = io.StringIO()
    if main(["--config", config, "mgt", "set", name, str(value)], out=out) != 0:
        raise RuntimeError(f"cubegw-ctl mgt set {name} failed: {out.getvalue()}")


# -------------------------------------------------------- scripted platform

class Platform(protocol.DatagramProtocol):
    """Distribution and operation in one scripted peer (two sockets share it)."""

    def __init__(self):
        self.interval = 1
        self.hb_times = []
        self.first_hb = None           # Deferred fired by the next Hb
        self.trigger_answer = None
        self.dev_rnd = None
        self.hb_source = None

    def listen(self):
        self.dist = reactor.listenUDP(0, _Side(self), interface=LOOPBACK)
        self.oper = reactor.listenUDP(0, _Side(self), interface=LOOPBACK)
        self.dist_port = self.dist.getHost().port
        self.oper_port = self.oper.getHost().port
        return self

    def answer(self, side, msg, addr):
        method = msg.get("RPCMethod")
        if method is None:
            if self.trigger_answer is not None and not self.trigger_answer.called:
                self.trigger_answer.callback(msg)
            return None
        if method == "BootFirst":
            return {"Result": 0, "ChallengeCode": CHALLENGE}
        if method == "RegisterFirst":
            return {"Result": 0, "ServerAddr": LOOPBACK, "ServerPort": self.oper_port,
                    "Interval": self.interval}
        if method == "Boot":
            return {"Result": 0, "ChallengeCode": CHALLENGE, "Interval": self.interval}
        if method == "Register":
            self.dev_rnd = msg.get("DevRND")
            return {"Result": 2}
        if method == "Hb":
            self.hb_times.append(time.monotonic())
            self.hb_source = addr
            if self.first_hb is not None and not self.first_hb.called:
                d, self.first_hb = self.first_hb, None
                d.callback(time.monotonic())
            return {"Result": 0, "Interval": self.interval}
        return None

    def wait_hb(self):
        self.first_hb = defer.Deferred()
        return self.first_hb

    def request_plugin(self, port):
        key = identity.trigger_key(self.dev_rnd, SN, WIFI["ssid"], WIFI["password"],
                                   ACCOUNTS["useradmin"])
        self.trigger_answer = defer.Deferred()
        msg = wire.RequestPlugin(Key=key, ServerAddr=LOOPBACK, ServerPort=port)
        self.oper.write(wire.encode_datagram(msg), self.hb_source)
        return self.trigger_answer

    def close(self):
        return defer.gatherResults([defer.maybeDeferred(p.stopListening)
                                    for p in (self.dist, self.oper)])


class _HbAnswer(protocol.DatagramProtocol):
    """The operation platform of the bare heartbeat baseline: answers and counts."""

    REPLY = json.dumps({"Result": 0, "Interval": 1}).encode()

    def __init__(self):
        self.count = 0

    def datagramReceived(self, data, addr):
        self.count += 1
        self.transport.write(self.REPLY, addr)


class _Side(protocol.DatagramProtocol):
    def __init__(self, platform):
        self.platform = platform

    def datagramReceived(self, data, addr):
        reply = self.platform.answer(self, json.loads(data), addr)
        if reply is not None:
            self.transport.write(json.dumps(reply).encode(), addr)


class Ready(protocol.DatagramProtocol):
    """Receives the baseline tac's "reactor running" datagram."""

    def __init__(self):
        self.waiting = None

    def datagramReceived(self, data, addr):
        if self.waiting is not None and not self.waiting.called:
            d, self.waiting = self.waiting, None
            d.callback(time.monotonic())


# ------------------------------------------------------ scripted plugin center

class CenterProtocol(Int32StringReceiver):
    MAX_LENGTH = wire.MAX_FRAME

    def connectionMade(self):
        self.factory.conn = self

    def stringReceived(self, data):
        msg = json.loads(data)
        method = msg.get("RPCMethod")
        if method == "Boot":
            self.sendString(b'{"Result":0,"ChallengeCode":"%s"}' % CHALLENGE.encode())
        elif method == "Register":
            self.sendString(b'{"Result":0}')
            if not self.factory.registered.called:
                self.factory.registered.callback(self)
        elif method in ("Heartbeat", "Report"):
            if method == "Heartbeat":
                self.factory.heartbeats += 1
                self.sendString(b'{"Result":0}')
        elif self.factory.on_reply is not None:
            self.factory.on_reply(msg)


class Center(protocol.Factory):
    protocol = CenterProtocol
    noisy = False

    def __init__(self):
        self.registered = defer.Deferred()
        self.on_reply = None
        self.conn = None
        self.heartbeats = 0


class EchoClient(Int32StringReceiver):
    """gwload's end of the raw Int32 echo: parses each frame as CenterProtocol does."""

    MAX_LENGTH = wire.MAX_FRAME

    def connectionMade(self):
        self.factory.connected.callback(self)

    def stringReceived(self, data):
        self.factory.on_reply(json.loads(data))


def post_frames(n, method="Post", cmd="QUERY_MEM_INFO", extra=None):
    """``n`` request frames; ``extra(i)``: more Parameter fields for the i-th."""
    cls = wire.Post if method == "Post" else wire.Post1
    frames = []
    for i in range(n):
        payload = {"CmdType": cmd, "SequenceId": "%08X" % (0xB0000000 + i)}
        payload.update(extra(i) if extra else {})
        frames.append(wire.encode_frame(cls(ID=10_000_000 + i, Parameter=payload,
                                            Plugin_Name=cmd)))
    return frames


@defer.inlineCallbacks
def pipelined(send, set_reply, seconds, window, in_flight=64, echo=False):
    """Keep ``in_flight`` Posts outstanding on one connection for ``seconds``.

    ``set_reply`` installs the callback that gets each reply as a dict (CenterProtocol and
    EchoClient both ``json.loads`` the frame).  A reply counts when its ID is one still
    outstanding and its Result is 0; ``echo``: the replies are the Posts themselves (the
    raw echo), so only the ID is checked.  Anything else counts as ``bad``; either way the
    next Post goes out, so ``in_flight`` stays constant.  Returns replies/s per window of
    ``window`` s.
    """
    frames = post_frames(1000)
    ids = [10_000_000 + i for i in range(1000)]        # post_frames' IDs
    outstanding = set()
    state = {"count": 0, "sent": 0, "bad": 0, "stop": False}

    def send_next():
        k = state["sent"] % 1000
        outstanding.add(ids[k])
        send(frames[k])
        state["sent"] += 1

    def on_reply(msg):
        ident = msg.get("ID")
        if ident in outstanding and (echo or msg.get("Result") == 0):
            outstanding.discard(ident)
            state["count"] += 1
        else:
            state["bad"] += 1
        if not state["stop"]:
            send_next()
    set_reply(on_reply)
    for _ in range(in_flight):
        send_next()
    rates = []
    for _ in range(int(seconds // window)):
        c0, t0 = state["count"], time.monotonic()
        yield sleep(window)
        rates.append((state["count"] - c0) / (time.monotonic() - t0))
    state["stop"] = True
    yield sleep(0.5)
    set_reply(lambda _: None)
    return {"rates": rates, "replies": state["count"], "sent": state["sent"],
            "bad": state["bad"], "unanswered": len(outstanding)}


def center_load(center, seconds, window):
    """``pipelined`` Posts over a registered plugin-center connection (gateway or wire echo)."""
    def set_reply(f):
        center.on_reply = f
    return pipelined(center.conn.sendString, set_reply, seconds, window)


# ------------------------------------------------------------- LAN clients

class LanClient(Int32StringReceiver):
    MAX_LENGTH = wire.MAX_FRAME

    def connectionMade(self):
        self.sendString(self.factory.frame())

    def stringReceived(self, data):
        self.factory.replied(self, data)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self.factory.lost(self)


def lan_frames(cmd):
    """The Post1 frames of a LAN load: SET_WLAN_SSID_DISABLE goes round the SSIDs."""
    if cmd == SET_CMD:
        return post_frames(1000, "Post1", cmd, lambda i: {"SSIDIndex": str(1 + i % SSIDS)})
    return post_frames(1000, "Post1", cmd)


def reply_status(data):
    """A Post1 reply's (Result, return_Parameter's Status, its FailReason)."""
    msg = wire.decode_frame(data)
    param = wire.decode_parameter(msg.get("return_Parameter") or "{}")
    return msg.get("Result"), param.get("Status"), param.get("FailReason")


class LanLoad(protocol.ClientFactory):
    """``clients`` loops of connect -> Post1 ``cmd`` -> reply -> close, for ``seconds``.

    A gateway's reply counts only with Result 0 and Status "0" (a NEED_AUTH or any other
    FailReason is ``bad``, the first one kept in ``fail``); the echo's, when it arrives.
    """

    protocol = LanClient
    noisy = False

    def __init__(self, port, clients, seconds, window, echo, cmd=GET_CMD):
        self.port, self.clients, self.seconds, self.window = port, clients, seconds, window
        self.echo = echo
        self.frames = lan_frames(cmd)
        self.fail = None
        self.i = 0
        self.latencies = []
        self.window_lat = []
        self.done = 0
        self.refused = self.bad = 0
        self.stop = False
        self.finished = defer.Deferred()
        self.active = 0

    def frame(self):
        self.i += 1
        return self.frames[self.i % 1000]

    def buildProtocol(self, addr):
        p = protocol.ClientFactory.buildProtocol(self, addr)
        p.t0 = self._t0_next
        p.ok = False
        return p

    def one(self):
        if self.stop:
            self.active -= 1
            if self.active == 0 and not self.finished.called:
                self.finished.callback(None)
            return
        self._t0_next = time.monotonic()
        reactor.connectTCP(LOOPBACK, self.port, self, timeout=5)

    def replied(self, proto, data):
        dt = time.monotonic() - proto.t0
        proto.ok = True
        ok = self.echo
        if not ok:
            result, status, reason = reply_status(data)
            ok = result == 0 and status == "0"
            if not ok and self.fail is None:
                self.fail = f"Result {result}, Status {status}, FailReason {reason}"
        if ok:
            self.done += 1
            self.latencies.append(dt)
            self.window_lat.append(dt)
        else:
            self.bad += 1

    def lost(self, proto):
        if not proto.ok:
            self.refused += 1
        self.one()

    def clientConnectionFailed(self, connector, reason):
        self.refused += 1
        reactor.callLater(0.01, self.one)

    @defer.inlineCallbacks
    def run(self):
        self.active = self.clients
        for _ in range(self.clients):
            self.one()
        rates, p99s = [], []
        for _ in range(int(self.seconds // self.window)):
            c0, t0 = self.done, time.monotonic()
            self.window_lat = []
            yield sleep(self.window)
            rates.append((self.done - c0) / (time.monotonic() - t0))
            lat = sorted(self.window_lat)
            p99s.append(percentile(lat, 99))
        self.stop = True
        yield task.deferLater(reactor, 0, lambda: None)
        yield defer.DeferredList([self.finished]) if self.active else None
        return {"rates": rates, "p99_windows_ms": [x * 1e3 for x in p99s if x is not None],
                "latencies": self.latencies,
                "calls": self.done, "refused": self.refused, "bad": self.bad,
                "fail": self.fail}


def merge_lan(results):
    """LanLoad results of several runs as one: windows side by side, latencies pooled."""
    lat = sorted(x for r in results for x in r["latencies"])
    return {"rates": [x for r in results for x in r["rates"]],
            "p99_windows_ms": [x for r in results for x in r["p99_windows_ms"]],
            "p50_ms": percentile(lat, 50) * 1e3 if lat else None,
            "p99_ms": percentile(lat, 99) * 1e3 if lat else None,
            "fail": next((r["fail"] for r in results if r.get("fail")), None),
            **{k: sum(r[k] for r in results) for k in ("calls", "refused", "bad")}}


class Prove(Int32StringReceiver):
    """One Post1 CHECK_PASSWD_PARAM with the useradmin password: the LAN session of
    this source address (protocol.md 8), which the SET calls need."""

    MAX_LENGTH = wire.MAX_FRAME

    def connectionMade(self):
        payload = {"CmdType": "CHECK_PASSWD_PARAM", "SequenceId": "B0B0B0B0",
                   "USER": "useradmin", "PASSWORD": ACCOUNTS["useradmin"]}
        self.sendString(wire.encode_frame(wire.Post1(
            ID=9_999_999, Parameter=payload, Plugin_Name="CHECK_PASSWD_PARAM")))

    def stringReceived(self, data):
        if not self.factory.answer.called:
            self.factory.answer.callback(reply_status(data))
        self.transport.loseConnection()


@defer.inlineCallbacks
def prove_session(port):
    f = protocol.ClientFactory()
    f.protocol, f.answer = Prove, defer.Deferred()
    reactor.connectTCP(LOOPBACK, port, f, timeout=5)
    result, status, reason = yield _timeout(f.answer, 10, "the CHECK_PASSWD_PARAM answer")
    if result != 0 or status != "0":
        raise RuntimeError(f"the LAN session was not proven: Result {result}, "
                           f"Status {status}, FailReason {reason}")


def registered_cmd_types(child):
    """How many CmdTypes the gateway says it registered at start (its log line
    "capabilities: N CmdTypes registered, ..."), or None if it did not say."""
    child.log.flush()
    with open(child.log.name, "rb") as f:
        found = re.findall(rb"capabilities: (\d+) CmdTypes registered", f.read())
    return int(found[-1]) if found else None


# ------------------------------------------------------------------ phases

class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.out = {"dwell_s": args.dwell}
        self.children = []
        self.session_dir = None          # the session's tmpfs directory, removed at the end

    def spawn(self, argv, name, env=None):
        c = Child(argv, self.workdir, os.path.join(self.workdir, name + ".log"), env).start()
        self.children.append(c)
        return c

    def gateway_argv(self, config, extra=()):
        """The gateway as procd starts it (the launcher, ``python3 -m cubegw.daemon``);
        with twistd options (the profiler), ``twistd cubegw`` itself."""
        if extra:
            return twistd_argv(*extra, "cubegw", "--config", config)
        return [sys.executable, "-m", "cubegw.daemon", "--config", config]

    @defer.inlineCallbacks
    def startup(self):
        n = self.args.startup_runs
        plat = Platform().listen()
        ready = Ready()
        ready_port = reactor.listenUDP(0, ready, interface=LOOPBACK)
        gw, base = [], []
        # an installed gateway runs from bytecode after its first start (the router writes
        # __pycache__), and the baseline's packages are precompiled by pip; without this,
        # with PYTHONDONTWRITEBYTECODE set, every run would compile cubegw (~60 ms)
        for package in ("cubegw", os.path.join("twisted", "plugins")):
            compileall.compile_dir(os.path.join(ROOT, package), quiet=1)
        for i in range(n):
            progress(f"start-up run {i + 1}/{n}")
            # the gateway: fresh store, first registration, boot_jitter 0
            wd = os.path.join(self.workdir, f"startup-{i}")
            config = gateway_config(wd, plat.dist_port, lan=False)
            plat.interval = 3600
            d = plat.wait_hb()
            child = self.spawn(self.gateway_argv(config), f"startup-gw-{i}")
            t_hb = yield _timeout(d, 30, "the first Hb")
            gw.append(t_hb - child.t_spawn)
            yield child.stop()
            # the baseline: bare twistd start -> reactor running
            ready.waiting = d = defer.Deferred()
            env = child_env(BENCH_READY=f"{LOOPBACK}:{ready_port.getHost().port}")
            child = self.spawn(twistd_argv("--python", os.path.join(BENCH, "baseline.tac")),
                               f"startup-base-{i}", env)
            t_ready = yield _timeout(d, 30, "the baseline's datagram")
            base.append(t_ready - child.t_spawn)
            yield child.stop()
        yield plat.close()
        yield ready_port.stopListening()
        self.out["startup"] = {"gateway_s": gw, "baseline_s": base}

    @defer.inlineCallbacks
    def baseline_rss(self):
        progress("baseline RSS")
        child = self.spawn(twistd_argv("--python", os.path.join(BENCH, "baseline.tac")),
                           "rss-base")
        yield sleep(3)
        samples = []
        for _ in range(5):
            samples.append(rss(child.pid))
            yield sleep(1)
        c0, r0, t0 = cpu_ns(child.pid), run_count(child.pid), time.monotonic()
        yield sleep(self.args.idle_window)
        wall = time.monotonic() - t0
        idle = (cpu_ns(child.pid) - c0) / wall
        runs = (run_count(child.pid) - r0) / wall
        yield child.stop()
        self.out["baseline_rss"] = samples
        self.out["baseline_idle_cpu_ns_per_s"] = idle
        self.out["baseline_idle_runs_per_s"] = runs

    @defer.inlineCallbacks
    def session(self):
        a = self.args
        plat = Platform().listen()
        center = Center()
        center_port = reactor.listenTCP(0, center, interface=LOOPBACK)
        lan_port = free_port(__import__("socket").SOCK_STREAM)
        # the test backend, a router in a directory, is in RAM where the machine has a
        # tmpfs: the SET row then measures the gateway, not this VM's shared disk, whose
        # durable write (reported beside it) took 1-12 ms as other jobs ran
        self.out["disk_durable_write_ms"] = durable_write_ms(self.workdir)
        shm = "/dev/shm"
        if os.path.isdir(shm) and os.access(shm, os.W_OK):
            wd = self.session_dir = tempfile.mkdtemp(prefix="cubegw-bench-", dir=shm)
            self.out["session_root"] = "tmpfs (/dev/shm)"
        else:
            wd = os.path.join(self.workdir, "session")
            self.out["session_root"] = "the bench's scratch directory (disk)"
        config = gateway_config(wd, plat.dist_port, lan=True)
        set_mgt(config, "LocatePort", lan_port)
        extra = ()
        if a.profile:
            extra = ("--profile", a.profile, "--profiler", "cprofile", "--savestats")
        plat.interval = 1
        first = plat.wait_hb()
        gw = self.spawn(self.gateway_argv(config, extra), "session-gw")
        self.out["gateway_pid"] = gw.pid
        yield _timeout(first, 30, "the first Hb")
        yield sleep(0.2)
        answer = yield _timeout(plat.request_plugin(center_port.getHost().port), 10,
                                "the RequestPlug-in answer")
        if answer.get("Result") != 0:
            raise RuntimeError(f"RequestPlug-in answered {answer}")
        yield _timeout(center.registered, 10, "the plugin-center Register")
        # one LAN call to check it is served
        check = LanLoad(lan_port, 1, 1, 1, echo=False)
        r = yield check.run()
        if not r["calls"]:
            raise RuntimeError(f"the LAN interface does not answer: {r}")
        # ---- dwell: RSS samples, heartbeat CPU windows; beside the gateway, the bare
        # heartbeat baseline (baseline.tac with BENCH_HB) measured over the same windows
        bare = bare_port = None
        if not a.no_baselines:
            answer = _HbAnswer()
            bare_port = reactor.listenUDP(0, answer, interface=LOOPBACK)
            bare = self.spawn(twistd_argv("--python", os.path.join(BENCH, "baseline.tac")),
                              "hb-base", child_env(
                                  BENCH_HB=f"{LOOPBACK}:{bare_port.getHost().port}"))
            yield sleep(3)
        bare_windows = []
        t_start = time.monotonic()
        hb_windows, rss_samples = [], []
        window = a.hb_window
        n_windows = max(1, int(a.dwell // window))
        t_end = t_start + a.dwell
        for w in range(n_windows):
            c0, h0, t0 = cpu_ns(gw.pid), len(plat.hb_times), time.monotonic()
            if bare is not None:
                b0, n0 = cpu_ns(bare.pid), answer.count
            w_end = t0 + window
            while time.monotonic() < w_end:
                progress(f"dwell {time.monotonic() - t_start:5.1f}/{a.dwell} s, "
                         f"{len(plat.hb_times)} Hb, RSS {rss(gw.pid) / 2**20:.1f} MiB")
                rss_samples.append((time.monotonic() - t_start, rss(gw.pid)))
                yield sleep(min(5, max(0.01, w_end - time.monotonic())))
            hb_windows.append({"cpu_ns": cpu_ns(gw.pid) - c0,
                               "hb": len(plat.hb_times) - h0,
                               "wall_s": time.monotonic() - t0})
            if bare is not None:
                bare_windows.append({"cpu_ns": cpu_ns(bare.pid) - b0,
                                     "hb": answer.count - n0,
                                     "wall_s": time.monotonic() - t0})
        if bare is not None:
            yield bare.stop()
            yield bare_port.stopListening()
            self.out["bare_hb_windows"] = bare_windows
        while time.monotonic() < t_end:
            yield sleep(min(1, t_end - time.monotonic()))
        final_rss = [rss(gw.pid)]
        for _ in range(2):
            yield sleep(1)
            final_rss.append(rss(gw.pid))
        self.out["rss_samples"] = rss_samples
        self.out["rss_final"] = final_rss
        self.out["cmd_types"] = registered_cmd_types(gw)
        self.out["hb_windows"] = hb_windows
        # ---- idle: the next Hb gets Interval 3600
        plat.interval = 3600
        n_before = len(plat.hb_times)
        while len(plat.hb_times) == n_before:
            yield sleep(0.05)
        # settle: the reply timers of the last Interval-1 heartbeats were cancelled, but
        # the reactor still wakes at their time (Twisted drops a cancelled call lazily)
        yield sleep(max(3.0, a.settle))
        idle = []
        for _ in range(a.idle_windows):
            progress("idle (no heartbeat) CPU window")
            c0, h0, t0 = cpu_ns(gw.pid), len(plat.hb_times), time.monotonic()
            r0, p0 = run_count(gw.pid), center.heartbeats
            yield sleep(a.idle_window)
            idle.append({"cpu_ns": cpu_ns(gw.pid) - c0, "hb": len(plat.hb_times) - h0,
                         "runs": run_count(gw.pid) - r0,
                         "center_hb": center.heartbeats - p0,
                         "wall_s": time.monotonic() - t0})
        self.out["idle_windows"] = idle
        # ---- LAN: gateway and baseline echo in alternate windows, so a slow spell of
        # the machine hits both alike
        lan = {}
        echo_port = echo = None
        if not a.no_baselines:
            echo_port = free_port(__import__("socket").SOCK_STREAM)
            echo = self.spawn([sys.executable, os.path.join(BENCH, "echo.py"), "tcp-close",
                               str(echo_port)], "echo-tcp-close")
            yield sleep(1.0)
        # GET_SN_INFO (open to anyone) for reference, then SET_WLAN_SSID_DISABLE in a
        # session proven with the useradmin password, as the phone app does
        rows = [(GET_CMD, 1, a.lan_seconds_1), (GET_CMD, 5, a.lan_seconds_get),
                (SET_CMD, 5, a.lan_seconds)]
        for cmd, clients, secs in rows:
            if cmd == SET_CMD:
                yield prove_session(lan_port)
            key = f"{'set' if cmd == SET_CMD else 'get'}_{clients}"
            runs = {"gateway": [], "baseline": []}
            for w in range(max(1, int(secs // a.window))):
                progress(f"LAN Post1 {cmd}, {clients} client(s), window {w + 1}")
                runs["gateway"].append((yield LanLoad(lan_port, clients, a.window, a.window,
                                                      echo=False, cmd=cmd).run()))
                if echo is not None:
                    progress(f"LAN baseline echo, {clients} client(s), window {w + 1}")
                    runs["baseline"].append((yield LanLoad(
                        echo_port, clients, a.window, a.window, echo=True, cmd=cmd).run()))
            for side, results in runs.items():
                if results:
                    lan[f"{side}_{key}"] = merge_lan(results)
        lan["wireless_after"] = read_wireless(wd)
        if echo is not None:
            yield echo.stop()
        self.out["lan"] = lan
        self.out["rss_after_load"] = rss(gw.pid)
        # ---- plugin center Posts: the gateway, then the wire echo through the same
        # scripted center code, then the raw Int32 echo (reported for reference)
        progress("plugin-center Post, 64 in flight")
        plugin = self.out["plugin"] = {}
        plugin["gateway"] = yield center_load(center, a.plugin_seconds, a.window)
        if not a.no_baselines:
            progress("plugin baseline: wire echo, 64 in flight")
            plugin["wire_echo"] = yield self.wire_echo_load()
            progress("plugin reference: raw Int32 echo, 64 in flight")
            plugin["raw_echo"] = yield self.raw_echo_load()
        self.out["rss_end"] = rss(gw.pid)
        yield gw.stop(timeout=30)
        yield center_port.stopListening()
        yield plat.close()
        progress("done")
        sys.stderr.write("\n")

    @defer.inlineCallbacks
    def wire_echo_load(self):
        """The plugin figure's baseline: ``echo.py wire`` registers with a fresh scripted
        center (Boot, Register) exactly as the gateway did, then the same ``center_load``."""
        a = self.args
        center = Center()
        port = reactor.listenTCP(0, center, interface=LOOPBACK)
        echo = self.spawn([sys.executable, os.path.join(BENCH, "echo.py"), "wire",
                           str(port.getHost().port)], "echo-wire")
        try:
            yield _timeout(center.registered, 20, "the wire echo's Register")
            result = yield center_load(center, a.plugin_seconds, a.window)
        finally:
            yield echo.stop()
            yield port.stopListening()
        return result

    @defer.inlineCallbacks
    def raw_echo_load(self):
        """The raw Int32 echo (``echo.py tcp``), for reference: no decoding on its side."""
        a = self.args
        echo_port = free_port(__import__("socket").SOCK_STREAM)
        echo = self.spawn([sys.executable, os.path.join(BENCH, "echo.py"), "tcp",
                           str(echo_port)], "echo-tcp")
        yield sleep(1.0)
        f = protocol.ClientFactory()
        f.protocol = EchoClient
        f.connected = defer.Deferred()
        f.on_reply = None
        reactor.connectTCP(LOOPBACK, echo_port, f)
        client = yield _timeout(f.connected, 10, "the echo connection")

        def set_reply(fn):
            f.on_reply = fn
        try:
            result = yield pipelined(client.sendString, set_reply, a.plugin_seconds,
                                     a.window, echo=True)
        finally:
            client.transport.loseConnection()
            yield echo.stop()
        return result

    @defer.inlineCallbacks
    def run(self):
        try:
            if not self.args.skip_startup:
                yield self.startup()
                yield self.baseline_rss()
            yield self.session()
        finally:
            for c in self.children:
                if not c.ended.called:
                    yield c.stop("KILL")
            if self.session_dir:
                shutil.rmtree(self.session_dir, ignore_errors=True)


def _timeout(d, seconds, what):
    timer = reactor.callLater(seconds, d.cancel)

    def done(r):
        if timer.active():
            timer.cancel()
        return r

    def failed(f):
        f.trap(defer.CancelledError)
        raise RuntimeError(f"timed out after {seconds} s waiting for {what}")
    return d.addBoth(done).addErrback(failed)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--dwell", type=float, default=60.0)
    p.add_argument("--hb-window", type=float, default=20.0)
    p.add_argument("--idle-window", type=float, default=30.0)
    p.add_argument("--idle-windows", type=int, default=2)
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds between the last Interval-1 heartbeat and the idle windows")
    p.add_argument("--startup-runs", type=int, default=20)
    p.add_argument("--lan-seconds", type=float, default=20.0)
    p.add_argument("--lan-seconds-1", type=float, default=10.0)
    p.add_argument("--lan-seconds-get", type=float, default=10.0,
                   help="GET_SN_INFO with 5 clients (--lan-seconds: the SET with 5)")
    p.add_argument("--plugin-seconds", type=float, default=10.0)
    p.add_argument("--window", type=float, default=5.0)
    p.add_argument("--skip-startup", action="store_true")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the LAN and plugin echo baselines (for the profiling run)")
    p.add_argument("--profile", default="", help="run the session gateway under cProfile")
    p.add_argument("--workdir", default="")
    args = p.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="cubegw-bench-gw-")
    bench = Bench(args, workdir)
    result = {}

    def run(_reactor):
        d = bench.run()

        def ok(_):
            result["ok"] = True

        def bad(f):
            result["error"] = f.getErrorMessage()
            sys.stderr.write(f"\ngwload failed: {f.getTraceback()}\n")
        return d.addCallbacks(ok, bad)
    try:
        task.react(run)
    except SystemExit:
        pass
    bench.out.update(result)
    bench.out["workdir"] = workdir
    with open(args.out, "w") as f:
        json.dump(bench.out, f, indent=1)
    if not args.workdir and result.get("ok") and not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
