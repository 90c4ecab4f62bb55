"""Diagnostics: ping, traceroute (run in the background, polled) and a timed
HTTP download speed test.

PING_DIAG_REQ / TRACEROUTE_DIAG_REQ start the real ``ping`` / ``traceroute``
through ``context.backend.run`` (an argv list, no shell) and answer at once;
GET_PING_RESULT / GET_TRACEROUTE_RESULT report ``State`` "Running" until the
program ends, then its parsed output.  One run of each kind at a time.

The parsers (``parse_ping``, ``parse_traceroute``) are pure functions that read
both iputils / Linux traceroute and busybox (OpenWrt) output.
"""

import ipaddress
import re
import shutil
import time

from twisted.internet import defer
from twisted.internet.protocol import Protocol

from cubegw.capabilities import network as network_caps
from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure
from cubegw.logs import Logger
from cubegw.capabilities.stored import HTTP_PARAMS, HTTP_SECTION, MAX_HTTP_TIME
from cubegw.store import StoreError

__all__ = [
    "parse_ping", "parse_traceroute", "valid_dest", "Diagnostics", "TracerouteResult",
    "HttpDownload", "traceroute_result",
    "ensure_schema", "HTTP_SECTION", "MAX_HTTP_TIME", "diagnostics", "http_download",
]

log = Logger()

#: Count of echo requests when ``time`` is absent; the largest accepted.
PING_COUNT = 4
MAX_PING_COUNT = 100
#: ICMP payload size when ``leng`` is absent; the largest accepted.
PING_SIZE = 56
MAX_PING_SIZE = 65507
#: Seconds each probe waits for its answer.
PROBE_WAIT = 2
TRACEROUTE_MAX_HOPS = 30
TRACEROUTE_QUERIES = 3

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,14}")
_STATE_RUNNING, _STATE_COMPLETE, _STATE_FAILED = "Running", "Complete", "Failed"


def valid_dest(dest):
    """Whether ``dest`` is an IP address or a host name (never an option,
    never a space or a shell character)."""
    if not isinstance(dest, str) or not dest or len(dest) > 253:
        return False
    try:
        ipaddress.ip_address(dest)
        return True
    except ValueError:
        pass
    labels = dest[:-1].split(".") if dest.endswith(".") else dest.split(".")
    return all(_HOST_LABEL.fullmatch(label) for label in labels)


def _not_installed(code, err):
    """Whether a run result says the program could not be executed at all."""
    return code == 127 or (code == 1 and b"Upon execvpe" in err
                           and b"FileNotFoundError" in err)


# -- parsers ------------------------------------------------------------------

_PING_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_PING_LOSS = re.compile(r"([\d.]+)% packet loss")
_PING_RTT = re.compile(
    r"(?:rtt|round-trip) min/avg/max(?:/(?:mdev|stddev))? = ([\d.]+)/([\d.]+)/([\d.]+)")


def parse_ping(text):
    """Statistics of a ping run (iputils or busybox): a dict ``Sent``,
    ``Received`` (ints), ``LossRate`` (percent, as printed), ``MinRTT``,
    ``AvgRTT``, ``MaxRTT`` (ms, as printed, "" with no reply); None when the
    output has no statistics (unknown host, no permission...)."""
    counts = _PING_COUNTS.search(text)
    if counts is None:
        return None
    sent, received = int(counts.group(1)), int(counts.group(2))
    loss = _PING_LOSS.search(text)
    if loss is not None:
        loss_rate = loss.group(1)
    else:
        loss_rate = str(round(100 * (sent - received) / sent)) if sent else "0"
    rtt = _PING_RTT.search(text)
    low, avg, high = rtt.groups() if rtt else ("", "", "")
    return {"Sent": sent, "Received": received, "LossRate": loss_rate,
            "MinRTT": low, "AvgRTT": avg, "MaxRTT": high}


_HOP = re.compile(r"\s*(\d+)\s+(.*)")
_NUMBER = re.compile(r"[\d.]+")


def parse_traceroute(text):
    """The hops of a traceroute run (Linux traceroute or busybox, with or
    without ``-n``): a list of dicts ``Hop`` (int), ``Address`` (the first
    address that answered, "" when none did), ``Host`` (its name when printed,
    else the address), ``Times`` (one string per probe: ms as printed, or "*"),
    ``Note`` (``!H``-style annotations, space separated)."""
    hops = []
    for line in text.splitlines():
        match = _HOP.fullmatch(line)
        if match is None:
            continue  # the "traceroute to ..." header, warnings
        tokens = match.group(2).split()
        address = host = ""
        times, notes = [], []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token == "*":
                times.append("*")
            elif (_NUMBER.fullmatch(token) and i + 1 < len(tokens)
                  and tokens[i + 1] == "ms"):
                times.append(token)
                i += 1
            elif token.startswith("(") and token.endswith(")"):
                if address == host:  # "name (addr)": the address is in brackets
                    address = token[1:-1]
            elif token.startswith("!"):
                notes.append(token)
            elif not address:
                address = host = token
            i += 1
        hops.append({"Hop": int(match.group(1)), "Address": address, "Host": host,
                     "Times": times, "Note": " ".join(notes)})
    return hops


def _traceroute_fields(text):
    hops = parse_traceroute(text)
    return {"Hops": hops} if hops else None


# -- ping and traceroute --------------------------------------------------------

def _uint(payload, name, default, low, high):
    value = payload.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value), 10)
    except ValueError:
        raise CapabilityFailure(f"{name} must be an integer") from None
    if not low <= number <= high:
        raise CapabilityFailure(f"{name} must be {low}-{high}")
    return number


def _device(payload, context):
    """The network device named by WANName (a device, or a UCI network
    interface whose device is used); None without WANName."""
    name = payload.get("WANName")
    if name is None or name == "":
        return None
    if not isinstance(name, str):
        raise CapabilityFailure("bad WANName")
    try:
        named = network_caps.field_wan_names(context.backend)
    except Exception:
        named = []
    for field_name, _, device, _ in named:
        if name == field_name and device and _IFNAME.fullmatch(device):
            return device
    if not _IFNAME.fullmatch(name):
        raise CapabilityFailure("bad WANName")
    if name in context.backend.net_if_stats():
        return name
    try:
        network = context.backend.read_uci("network")
    except Exception:
        network = None
    if network is not None:
        section = network.section(name)
        if section is not None:
            device = section.options.get("device") or section.options.get("ifname")
            if isinstance(device, list):
                device = device[0] if device else None
            if isinstance(device, str) and _IFNAME.fullmatch(device):
                return device
    raise CapabilityFailure(f"unknown WANName {name}")


def _web():
    """twisted.web's client, imported on first use: it costs start-up time on a router."""
    from twisted.web import client, http_headers
    return client, http_headers.Headers


class _Run:
    """One kind of diagnostic: its program, the current run and the last result."""

    def __init__(self, program):
        self.program = program
        self.state = None           # None: never run
        self.fields = {}
        self.reason = ""
        self.pending = None

    def start(self, argv, context, timeout, parse):
        self.state, self.fields, self.reason = _STATE_RUNNING, {"Dest": argv[-1]}, ""
        d = defer.maybeDeferred(context.backend.run, argv)
        d.addTimeout(timeout, context.clock)
        self.pending = d

        def done(result):
            code, out, err = result
            if _not_installed(code, err):
                self.state, self.reason = _STATE_FAILED, f"{self.program} is not installed"
                return
            text = out.decode("utf-8", "replace")
            parsed = parse(text)
            if parsed is None:
                first = (err.decode("utf-8", "replace").strip().splitlines()
                         or text.strip().splitlines() or [f"exit code {code}"])[0]
                self.state, self.reason = _STATE_FAILED, first[:200]
                return
            self.state = _STATE_COMPLETE
            self.fields.update(parsed)

        def failed(failure):
            if failure.check(defer.TimeoutError):
                self.state, self.reason = _STATE_FAILED, f"{self.program} did not finish"
            else:
                log.failure("{program} run failed", failure=failure, program=self.program)
                self.state, self.reason = _STATE_FAILED, f"{self.program} could not run"

        def finished(_):
            self.pending = None
        d.addCallbacks(done, failed)
        d.addBoth(finished)

    def result(self):
        if self.state is None:
            raise CapabilityFailure("no diagnostic has run")
        if self.state == _STATE_FAILED:
            raise CapabilityFailure(self.reason)
        return dict(self.fields, State=self.state)


class Diagnostics(Capability):
    """PING_DIAG_REQ / GET_PING_RESULT, TRACEROUTE_DIAG_REQ; GET_TRACEROUTE_RESULT is
    ``TracerouteResult``'s, which needs the account as in the field's table."""

    cmd_types = ("PING_DIAG_REQ", "GET_PING_RESULT", "TRACEROUTE_DIAG_REQ")
    default_right = RIGHT_BOTH

    def __init__(self, which=shutil.which):
        #: ``which(program)``: its path or None (checked before each run).
        self.which = which
        self.ping = _Run("ping")
        self.traceroute = _Run("traceroute")

    def _begin(self, run, payload, context):
        if run.state == _STATE_RUNNING:
            raise CapabilityFailure("busy")
        dest = payload.get("Dest")
        if not valid_dest(dest):
            raise CapabilityFailure("Dest must be a host name or an IP address")
        if self.which(run.program) is None:
            raise CapabilityFailure(f"{run.program} is not installed")
        return dest

    def handle_PING_DIAG_REQ(self, payload, context):
        dest = self._begin(self.ping, payload, context)
        size = _uint(payload, "leng", PING_SIZE, 0, MAX_PING_SIZE)
        count = _uint(payload, "time", PING_COUNT, 1, MAX_PING_COUNT)
        device = _device(payload, context)
        argv = ["ping", "-c", str(count), "-s", str(size), "-W", str(PROBE_WAIT)]
        if device:
            argv += ["-I", device]
        argv.append(dest)
        self.ping.start(argv, context, count * (1 + PROBE_WAIT) + 10, parse_ping)
        return {"State": _STATE_RUNNING}

    def handle_GET_PING_RESULT(self, payload, context):
        return self.ping.result()

    def handle_TRACEROUTE_DIAG_REQ(self, payload, context):
        dest = self._begin(self.traceroute, payload, context)
        device = _device(payload, context)
        argv = ["traceroute", "-n", "-q", str(TRACEROUTE_QUERIES), "-w", str(PROBE_WAIT),
                "-m", str(TRACEROUTE_MAX_HOPS)]
        if device:
            argv += ["-i", device]
        argv.append(dest)
        limit = TRACEROUTE_MAX_HOPS * TRACEROUTE_QUERIES * PROBE_WAIT + 30
        self.traceroute.start(argv, context, limit, _traceroute_fields)
        return {"State": _STATE_RUNNING}

    def handle_GET_TRACEROUTE_RESULT(self, payload, context):
        result = self.traceroute.result()
        hops = result.pop("Hops", [])
        result["Num"] = len(hops)
        result["List"] = hops
        return result


class TracerouteResult(Capability):
    """GET_TRACEROUTE_RESULT of a ``Diagnostics``' traceroute run: a provider of its own
    because the field's table asks USER/PASSWORD for it (and not for the rest)."""

    cmd_types = ("GET_TRACEROUTE_RESULT",)
    default_right = RIGHT_BOTH
    needs_account = True

    def __init__(self, diagnostics):
        self.diagnostics = diagnostics

    def handle_GET_TRACEROUTE_RESULT(self, payload, context):
        return self.diagnostics.handle_GET_TRACEROUTE_RESULT(payload, context)


# -- HTTP download speed test -----------------------------------------------------

#: The longest Time the field accepts (its 1-30 s); beyond MAX_HTTP_TIME the test
#: measures MAX_HTTP_TIME s and says so in a Note.
FIELD_HTTP_TIME = 30
#: The field's Method value ("Start"); "GET" is cubegw's older spelling, kept.
HTTP_METHODS = ("Start",)


def ensure_schema(schema):
    """Register the ``http_test`` parameters (APP-owned) unless they are there."""
    schema.ensure(*HTTP_PARAMS)


def _http_url(url):
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return None
    if not (url.startswith("http://") or url.startswith("https://")):
        return None
    return url


class _Counter(Protocol):
    def __init__(self, finished):
        self.finished = finished
        self.bytes = 0
        self.reason = None

    def dataReceived(self, data):
        self.bytes += len(data)

    def connectionLost(self, reason):
        self.reason = reason
        if not self.finished.called:
            self.finished.callback(None)


class HttpDownload(Capability):
    """HTTP_DOWNLOAD_REQUEST (Method GET, Time s, URL): download for at most
    Time s, count the bytes, answer with the rate.  SET_HTTP_CFG (URL, Time):
    the defaults, kept in the store (APP-owned)."""

    cmd_types = ("HTTP_DOWNLOAD_REQUEST", "SET_HTTP_CFG")
    default_right = RIGHT_BOTH
    needs_account = True        # both are password calls in the field's table
    store_schema = HTTP_PARAMS

    def __init__(self, agent_factory=None, now=time.monotonic):
        self.agent_factory = agent_factory
        self.now = now
        self.running = False

    def handle_SET_HTTP_CFG(self, payload, context):
        store = context.store
        ensure_schema(store.schema)
        changes = {}
        if payload.get("URL") not in (None, ""):
            if _http_url(payload["URL"]) is None:
                raise CapabilityFailure("URL must be an http:// or https:// URL")
            changes[(HTTP_SECTION, "url")] = payload["URL"]
        if payload.get("Time") not in (None, ""):
            changes[(HTTP_SECTION, "time")] = _uint(payload, "Time", 0, 1, MAX_HTTP_TIME)
        try:
            store.update(changes)
        except StoreError as e:
            raise CapabilityFailure(str(e)) from None
        return {"URL": store.get(HTTP_SECTION, "url"), "Time": store.get(HTTP_SECTION, "time")}

    async def handle_HTTP_DOWNLOAD_REQUEST(self, payload, context):
        store = context.store
        ensure_schema(store.schema)
        method = payload.get("Method") or "GET"
        if not isinstance(method, str) or method not in HTTP_METHODS and method.upper() != "GET":
            raise CapabilityFailure("Method must be Start (or GET)")
        url = payload.get("URL") or store.get(HTTP_SECTION, "url")
        if _http_url(url) is None:
            raise CapabilityFailure("URL must be an http:// or https:// URL"
                                    if url else "no URL given or configured")
        asked = _uint(payload, "Time", store.get(HTTP_SECTION, "time"), 1, FIELD_HTTP_TIME)
        seconds = min(asked, MAX_HTTP_TIME)
        if self.running:
            raise CapabilityFailure("busy")
        self.running = True
        try:
            fields = await self._measure(url, seconds, context.clock)
        finally:
            self.running = False
        if asked > seconds:
            fields["Note"] = (f"measured for {seconds} s of the {asked} s asked: a call "
                              f"must answer within the time limit")
        return fields

    async def _measure(self, url, seconds, reactor):
        client, Headers = _web()
        agent = (self.agent_factory or client.Agent)(reactor)
        started = self.now()
        request = agent.request(b"GET", url.encode("ascii", "strict"),
                                Headers({b"User-Agent": [b"cubegw speed test"]}))
        timer = reactor.callLater(seconds, request.cancel)
        try:
            response = await request
        except defer.CancelledError:
            raise CapabilityFailure(f"no response within {seconds} s") from None
        except Exception as e:
            raise CapabilityFailure(f"download failed: {type(e).__name__}") from None
        finally:
            if timer.active():
                timer.cancel()
        if response.code != 200:
            response.deliverBody(_Counter(defer.Deferred()))  # drop the body
            raise CapabilityFailure(f"HTTP status {response.code}")
        body_started = self.now()
        finished = defer.Deferred()
        counter = _Counter(finished)
        response.deliverBody(counter)
        remaining = max(0.0, seconds - (body_started - started))

        def stop():
            if counter.transport is not None:
                counter.transport.stopProducing()
            if not finished.called:
                finished.callback(None)
        timer = reactor.callLater(remaining, stop)
        await finished
        if timer.active():
            timer.cancel()
        ended = self.now()
        reason = counter.reason
        complete = reason is not None and reason.check(client.ResponseDone) is not None
        if reason is not None and not complete:
            log.info("download of {url} ended early: {why}", url=url, why=reason.value)
        duration = max(ended - body_started, 1e-6)
        return {"URL": url, "Bytes": counter.bytes, "Duration": f"{duration:.3f}",
                "Speed": round(counter.bytes * 8 / 1000 / duration),
                "Completed": complete}


diagnostics = Diagnostics()
traceroute_result = TracerouteResult(diagnostics)
http_download = HttpDownload()
