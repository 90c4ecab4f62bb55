"""Property tests (hypothesis) over the codecs, the Parameter envelope, the UCI reader,
the store and the registration state machine.

The suite runs each with ``CUBEGW_FUZZ_EXAMPLES`` cases (200 by default, fast enough
for ``make test``); ``fuzz/run.py`` imports this module with a larger number for the
long ``make fuzz`` run and counts the cases each target ran in ``CASES``.
"""

import base64
import json
import os
from collections import Counter
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from cubegw import registration as reg
from cubegw import wire
from cubegw.record import fields
from cubegw.config import Timing
from cubegw.store import FileSystem, Store, StoreError, uci
from cubegw.wire import WireError
from tests.helpers import CHALLENGE, IDENTITY, OPER, Gateway
from tests.helpers.wire_samples import JSONISH, MESSAGES, NEAR_VALID, SAMPLES, TABLES

EXAMPLES = int(os.environ.get("CUBEGW_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

#: Cases run per target (read by fuzz/run.py).
CASES = Counter()


def only_wire_errors(call, *args):
    try:
        return call(*args)
    except WireError:
        return None


# ------------------------------------------------------------------- strategies

HEX32 = st.text("0123456789ABCDEFabcdef", min_size=32, max_size=32)
#: Values a field of each kind may take on the wire: valid, borderline and junk.
ODD = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
       | st.text(max_size=30) | st.lists(st.integers(), max_size=2))
KIND_VALUES = {
    "int": st.integers(-2**40, 2**40) | st.integers().map(str) | ODD,
    "str": st.text(max_size=300) | st.integers().map(str) | ODD,
    "port": st.integers(-1, 70000) | st.integers(0, 65536).map(str) | ODD,
    "host": st.sampled_from(["oper.test", "127.0.0.3", "a b", " ", "x" * 300]) | ODD,
    "hex32": HEX32 | st.text(max_size=40) | ODD,
    "mac": st.text("0123456789ABCDEF", min_size=11, max_size=13) | ODD,
    "flag": st.sampled_from(["0", "1", 0, 1, "2"]) | ODD,
    "param": JSONISH | st.text(max_size=50) | st.dictionaries(st.text(max_size=5), JSONISH,
                                                               max_size=3),
}
RESULTS = (st.sampled_from([0, 2, 3, -1, -2, -3, -5, -6, "0", "-2", 1, 99])
           | st.integers(-2**33, 2**33) | ODD)


SUCCESS_FIELDS = {
    wire.BootFirst: {"ChallengeCode": st.just(CHALLENGE)},
    wire.RegisterFirst: {"ServerAddr": st.just("oper.test"), "ServerPort": st.just(OPER[1]),
                         "Interval": st.sampled_from([None, 0, 1, 60])},
    wire.Boot: {"ChallengeCode": st.just(CHALLENGE), "Interval": st.sampled_from([None, 1, 60]),
                "flag": st.sampled_from(["0", "1"])},
    wire.Register: {"UPDATEServer": st.just("upd.test"), "MessageServer": st.just("m:1")},
    wire.Hb: {"Interval": st.sampled_from([None, 0, 1, 30])},
}


def good_reply(request_cls, result, data):
    """A success reply to ``request_cls`` (Result 0, or 2 where that is a success)."""
    reply_cls = wire.REPLIES[request_cls]
    if result not in reply_cls.SUCCESS:
        result = 0
    extra = data.draw(st.fixed_dictionaries(SUCCESS_FIELDS.get(request_cls, {})))
    return dict({k: v for k, v in extra.items() if v is not None}, Result=result)


def reply_fields(request_cls):
    """Random fields for a reply to ``request_cls``: from its table, some junk keys."""
    reply_cls = wire.REPLIES[request_cls]
    names = {f.metadata["wire"]: f.metadata["kind"] for f in fields(reply_cls)}
    names.pop("Result", None)
    valid = {
        "ChallengeCode": st.just(CHALLENGE) | KIND_VALUES["hex32"],
        "ServerAddr": st.sampled_from(["oper.test", "127.0.0.9"]) | KIND_VALUES["host"],
        "ServerPort": st.just(OPER[1]) | KIND_VALUES["port"],
        "Interval": st.sampled_from([None, 0, -5, 1, 60, 10**6]) | KIND_VALUES["int"],
    }
    return st.fixed_dictionaries({}, optional={
        name: valid.get(name, KIND_VALUES[kind]) for name, kind in names.items()})


# A UCI text that is mostly UCI: real keywords, quotes, comments, continuations.
UCI_TOKENS = st.sampled_from([
    "config", "option", "list", "package", "c", "o", "l", "p", " ", "\t", "\n", ";",
    "#", "'", '"', "\\", "\\\n", "\r\n", "mgt", "Port", "'12112'", "\"a b\"", "x",
    "'it'\\''s'", "\x00", "\x01", "é", "-", "_", "''",
])
UCI_TEXT = st.lists(UCI_TOKENS | st.text(max_size=5), max_size=40).map("".join) | st.text()

NAME_CHARS = "abcXYZ019_"
NAMES = st.text(NAME_CHARS, min_size=1, max_size=8)
VALUES = st.text(st.characters(blacklist_categories=("Cs",),
                               blacklist_characters="\x00\n\r" + "".join(
                                   map(chr, range(1, 9))) + "".join(map(chr, range(11, 32)))),
                 max_size=20)
SECTIONS = st.builds(
    lambda type_, name, options: uci.Section(type_, name, options),
    st.text(NAME_CHARS + "!'\"#;\\-~", min_size=1, max_size=8), st.none() | NAMES,
    st.dictionaries(NAMES, VALUES.filter(bool) | st.lists(VALUES, min_size=1, max_size=3),
                    max_size=4))


def unique_names(sections):
    seen, out = set(), []
    for s in sections:
        if s.name is not None:
            if s.name in seen:
                continue
            seen.add(s.name)
        out.append(s)
    return out


PACKAGES = st.builds(
    lambda sections, name: uci.Package(unique_names(sections), name),
    st.lists(SECTIONS, max_size=5), st.none() | st.text(NAME_CHARS + "-", min_size=1,
                                                        max_size=8))


class MemoryFileSystem(FileSystem):
    """The store's I/O in a dict: fast enough for thousands of fuzz cases."""

    def __init__(self, files=None):
        super().__init__()
        self.files = dict(files or {})

    def read(self, path):
        return self.files.get(path)

    read_shared = read

    @contextmanager
    def locked(self, path):
        yield MemoryFile(self.files, path)

    def write_atomic(self, path, data, mode=0o600):
        self.files[path] = bytes(data)


class MemoryFile:
    """MemoryFileSystem's LockedFile."""

    def __init__(self, files, path):
        self.files, self.path = files, path

    def read(self):
        return self.files.get(self.path)

    def overwrite(self, data, old):
        self.files[self.path] = bytes(data)

    def discard(self, old, data):
        if old is None:
            self.files.pop(self.path, None)
        else:
            self.files[self.path] = bytes(old)


# ---------------------------------------------------------------- the codecs

class CodecPropertyTests(SynchronousTestCase):
    """Every decoder raises WireError and nothing else; what decodes re-encodes."""

    @FUZZ
    @given(st.sampled_from(sorted(SAMPLES, key=lambda c: c.__name__)), st.data())
    def test_typed_fields(self, cls, data):
        """Each message class, with every field drawn from its kind's valid and junk
        values: from_wire raises only WireError, and a decoded message round-trips
        through a frame (and through a datagram when it fits)."""
        CASES["codec-fields"] += 1
        msg = SAMPLES[cls].to_wire()
        for f in fields(cls):
            if data.draw(st.booleans()):
                msg[f.metadata["wire"]] = data.draw(KIND_VALUES[f.metadata["kind"]])
        if data.draw(st.booleans()):
            msg.pop(data.draw(st.sampled_from(sorted(msg))), None)
        typed = only_wire_errors(cls.from_wire, msg)
        if typed is None:
            return
        for encode, decode in [(wire.encode_frame, wire.decode_frame),
                               (wire.encode_datagram, wire.decode_datagram)]:
            encoded = only_wire_errors(encode, typed)
            if encoded is not None:
                self.assertEqual(cls.from_wire(decode(encoded)), typed)

    @FUZZ
    @given(MESSAGES | NEAR_VALID, st.sampled_from(sorted(TABLES)))
    def test_dispatch(self, msg, table):
        """decode_request over each channel table, with the encoded datagram bytes too."""
        CASES["codec-dispatch"] += 1
        only_wire_errors(wire.decode_request, msg, TABLES[table])
        data = only_wire_errors(wire.encode_datagram, msg)
        if data is not None:
            decoded = wire.decode_datagram(data)
            only_wire_errors(wire.decode_request, decoded, TABLES[table])

    @FUZZ
    @given(st.binary(max_size=5000))
    def test_size_limits(self, data):
        """Bytes near and over the datagram limit: WireError only, the limit enforced."""
        CASES["codec-limits"] += 1
        padded = b'{"a":"' + data.replace(b'"', b"").replace(b"\\", b"") + b'"}'
        for decode, limit in [(wire.decode_datagram, wire.MAX_DATAGRAM),
                              (wire.decode_frame, wire.MAX_FRAME)]:
            result = only_wire_errors(decode, padded)
            if len(padded) > limit:
                self.assertIsNone(result)


class ParameterPropertyTests(SynchronousTestCase):
    """The base64 JSON ``Parameter`` envelope."""

    @FUZZ
    @given(st.dictionaries(st.text(max_size=8), JSONISH, max_size=4))
    def test_round_trip(self, payload):
        """encode_parameter then decode_parameter gives the payload back, or WireError
        for text that cannot be UTF-8 (a lone surrogate), on both ends."""
        CASES["parameter-round-trip"] += 1
        encoded = only_wire_errors(wire.encode_parameter, payload)
        if encoded is None:
            return
        self.assertEqual(wire.decode_parameter(encoded), payload)
        self.assertEqual(wire.decode_parameter(" " + encoded + "\n"), payload)
        raw = json.dumps(payload, ensure_ascii=False)
        self.assertEqual(wire.decode_parameter(raw), payload)

    @FUZZ
    @given(st.binary(max_size=200), st.sampled_from(["", " ", "=", "==", "\n", "{"]))
    def test_mangled(self, data, extra):
        """base64 of anything, with padding and whitespace mangled: WireError only;
        a decoded Parameter is always a dict."""
        CASES["parameter-mangled"] += 1
        text = base64.b64encode(data).decode("ascii")
        for variant in (text + extra, extra + text, text[:-1], text.replace("=", extra)):
            result = only_wire_errors(wire.decode_parameter, variant)
            if result is not None:
                self.assertIsInstance(result, dict)
        only_wire_errors(wire.decode_frame, wire.encode_frame(
            {"RPCMethod": "Post", "ID": 1, "Parameter": text}))
        only_wire_errors(wire.decode_request, {"RPCMethod": "Post", "ID": 1, "Parameter": text},
                         wire.TO_GATEWAY_PLUGIN)


# --------------------------------------------------------------- UCI and store

class UciPropertyTests(SynchronousTestCase):
    """The UCI reader raises UciError and nothing else; the writer's output reads back."""

    @FUZZ
    @given(UCI_TEXT)
    def test_parse_only_uci_error(self, text):
        """Arbitrary near-UCI text: parse raises only UciError (with a line number);
        whatever parses and can be written reads back to the same model, and writing
        that again gives the same text (a fixed point)."""
        CASES["uci-parse"] += 1
        try:
            package = uci.parse(text)
        except uci.UciError as e:
            self.assertIsInstance(e.line, int)
            self.assertGreaterEqual(e.line, 1)
            return
        try:
            written = uci.serialize(package)
        except uci.UciError:
            return  # e.g. a multi-line value: readable, refused by the writer
        again = uci.parse(written)
        self.assertEqual(uci.serialize(again), written)
        self.assertEqual(_normal(again), _normal(package))

    @FUZZ
    @given(PACKAGES)
    def test_serialize_round_trip(self, package):
        """Any model the writer accepts reads back to the same model."""
        CASES["uci-round-trip"] += 1
        try:
            text = uci.serialize(package)
        except uci.UciError:
            return
        self.assertEqual(_normal(uci.parse(text)), _normal(package))


def _normal(package):
    """A package as comparable data: '' options dropped, as libuci drops them."""
    return (package.name, [(s.type, s.name, {k: v for k, v in s.options.items() if v != ""})
                           for s in package.sections])


STORE_PATH = "/mem/cubegw"
PARAM_KEYS = [("mgt", "MgtURL"), ("mgt", "Port"), ("mgt", "Heartbeat"), ("mgt", "Ability"),
              ("mgt", "LocatePort"), ("mgt", "Version"), ("registration", "ServerAddr"),
              ("registration", "ServerPort"), ("app", "UserID"), ("itms", "ProvisioningCode"),
              ("mgt", "Nope")]


class StorePropertyTests(SynchronousTestCase):
    """The store over arbitrary file contents and arbitrary values."""

    @FUZZ
    @given(UCI_TEXT | PACKAGES.map(lambda p: _try_serialize(p)),
           st.lists(st.tuples(st.sampled_from(PARAM_KEYS), KIND_VALUES["str"] | ODD
                              | st.integers(-5, 70000)), max_size=4))
    def test_load_and_write(self, text, changes):
        """A file of any content: Store raises only StoreError; reading any parameter
        never raises; a write is refused with StoreError or reads back as written, and
        the file stays parseable."""
        CASES["store"] += 1
        fs = MemoryFileSystem({STORE_PATH: text.encode("utf-8", "surrogatepass")})
        try:
            store = Store(STORE_PATH, fs=fs)
        except StoreError:
            return
        for key in PARAM_KEYS[:-1]:
            store.get(*key)
        store.problems()
        store.mgt()
        for key, value in changes:
            try:
                written = store.set(*key, value)
            except StoreError:
                continue
            self.assertEqual(store.get(*key), written)
            self.assertEqual(Store(STORE_PATH, fs=fs).get(*key), written)
            uci.parse(fs.files[STORE_PATH].decode("utf-8", "surrogateescape"))


def _try_serialize(package):
    try:
        return uci.serialize(package)
    except uci.UciError:
        return ""


# --------------------------------------------------------- registration machine

FAST = Timing(boot_jitter=1.0, retry_initial=1.0, retry_factor=2.0, retry_max=20.0,
              silence=50.0, reply_timeout=2.0, hb_timeout=3.0)

EVENTS = st.one_of(
    st.tuples(st.just("fire")),
    st.tuples(st.just("advance"), st.floats(0, 10)),
    st.tuples(st.just("reply"), RESULTS, st.data()),
    st.tuples(st.just("good"), st.sampled_from([0, 2]), st.data()),
    st.tuples(st.just("good"), st.sampled_from([0, 2]), st.data()),
    st.tuples(st.just("stray"), RESULTS),
    st.tuples(st.just("garbage"), st.binary(max_size=40) | st.sampled_from(
        [b"{}", b"[]", b'{"Result":0}', b'{"RPCMethod":"Hb"}', b'{"RPCMethod":null}'])),
    st.tuples(st.just("trigger"), st.sampled_from(["RequestPlug-in", "RequestDistri", "Hb"]),
              st.booleans(), st.booleans(), st.data()),
    st.tuples(st.just("trigger"), st.sampled_from(["RequestPlug-in", "RequestDistri"]),
              st.just(True), st.just(True), st.data()),
    st.tuples(st.just("wan"), st.sampled_from(["192.0.2.10", "192.0.2.11", ""])),
)


class RegistrationPropertyTests(SynchronousTestCase):
    """Random event sequences never break the machine or leave it stuck."""

    def assertOneTimer(self, gw, event):
        calls = gw.clock.getDelayedCalls()
        self.assertEqual(len(calls), 1, f"after {event!r} in state {gw.machine.state}: "
                                        f"{len(calls)} delayed calls")

    @FUZZ
    @given(st.booleans(), st.lists(EVENTS, max_size=40))
    def test_random_events(self, stored, events):
        """Through the Gateway harness: after each event the Clock holds exactly one
        delayed call, anything but a WireError from the machine would propagate (the
        transport only catches WireError), and stop() leaves no delayed call."""
        CASES["registration"] += 1
        gw = Gateway(timing=FAST)
        gw.start(stored=OPER if stored else None)
        self.assertOneTimer(gw, "start")
        for event in events:
            self._apply(gw, event)
            self.assertOneTimer(gw, event[:2])
            self._check_timer_meaning(gw, event)
        gw.protocol.stop()
        self.assertEqual(gw.clock.getDelayedCalls(), [])
        self.assertEqual(gw.machine.timer_fired(), [])

    def _apply(self, gw, event):
        kind = event[0]
        if kind == "fire":
            (call,) = gw.clock.getDelayedCalls()
            gw.clock.advance(max(0.0, call.getTime() - gw.clock.seconds()))
        elif kind == "advance":
            gw.advance_to(gw.clock.seconds() + event[1])
        elif kind == "reply":
            if gw.machine.pending is None:
                return
            extra = event[2].draw(reply_fields(gw.machine.pending.kind))
            msg = dict(extra, Result=event[1])
            data = only_wire_errors(wire.encode_datagram, msg)
            if data is not None:
                gw.protocol.datagramReceived(data, gw.protocol._reply_from)
        elif kind == "good":
            if gw.machine.pending is not None:
                msg = good_reply(gw.machine.pending.kind, event[1], event[2])
                gw.protocol.datagramReceived(wire.encode_datagram(msg), gw.protocol._reply_from)
        elif kind == "stray":
            gw.protocol.datagramReceived(json.dumps({"Result": event[1]}).encode(),
                                         ("198.51.100.1", 1))
        elif kind == "garbage":
            gw.protocol.datagramReceived(event[1], gw.protocol._reply_from or OPER)
        elif kind == "trigger":
            _, method, good_key, from_oper, data = event
            key = gw.key() if good_key and gw.machine.dev_rnd else data.draw(HEX32)
            extra = data.draw(st.just({}) | st.fixed_dictionaries({}, optional={
                "ServerAddr": KIND_VALUES["host"], "ServerPort": KIND_VALUES["port"],
                "mode": KIND_VALUES["str"]}))
            msg = dict({"RPCMethod": method, "Key": key, "ServerAddr": "127.0.0.5",
                        "ServerPort": 8080}, **extra)
            data_bytes = only_wire_errors(wire.encode_datagram, msg)
            if data_bytes is not None:
                gw.protocol.datagramReceived(
                    data_bytes, gw.protocol._operation_from or OPER if from_oper
                    else ("198.51.100.7", 5))
        elif kind == "wan":
            gw.protocol.wan_ip_changed(event[1])

    def _check_timer_meaning(self, gw, event):
        """A pending request has its reply timeout armed, and a wait has a next step:
        a fired timer always leads somewhere."""
        m = gw.machine
        if m.state == reg.STOPPED:
            return
        self.assertTrue(m.pending is not None or m._next is not None,
                        f"after {event[:2]!r} in state {m.state}: nothing to do when the "
                        "timer fires")

    @FUZZ
    @given(st.booleans(), st.lists(EVENTS, max_size=40))
    def test_machine_alone(self, stored, events):
        """The pure machine, with no transport: reply_received raises only WireError,
        trigger_received and the other events never raise, every command list arms at
        most one timer, and a fired timer is always re-armed while running."""
        CASES["registration-pure"] += 1
        settings_ = reg.Settings(mgt_url="dist.test", user_id="U1")
        counter = iter(range(1, 10**6))
        m = reg.RegistrationMachine(IDENTITY, FAST,
                                    lambda: settings_, uniform=lambda a, b: (a + b) / 2,
                                    new_dev_rnd=lambda: "%032X" % next(counter))
        armed = self._timers(m.start("192.0.2.10", OPER if stored else None)) == 1
        self.assertTrue(armed)
        now = 0.0
        for event in events:
            kind = event[0]
            if kind in ("fire", "advance"):
                now += 1
                commands = m.timer_fired()
                self.assertEqual(self._timers(commands), 1, f"timer not re-armed in {m.state}")
            elif kind == "good":
                if m.pending is None:
                    continue
                commands = m.reply_received(good_reply(m.pending.kind, event[1], event[2]))
                self.assertEqual(self._timers(commands), 1, f"reply left no timer in {m.state}")
            elif kind == "reply":
                if m.pending is None:
                    with self.assertRaises(WireError):
                        m.reply_received({"Result": 0})
                    continue
                extra = event[2].draw(reply_fields(m.pending.kind))
                try:
                    commands = m.reply_received(dict(extra, Result=event[1]))
                except WireError:
                    continue
                self.assertEqual(self._timers(commands), 1, f"reply left no timer in {m.state}")
            elif kind in ("stray", "garbage"):
                msg = only_wire_errors(wire.decode_datagram, event[1]) if kind == "garbage" \
                    else {"Result": event[1]}
                if msg is not None and m.pending is not None:
                    try:
                        commands = m.reply_received(msg)
                    except WireError:
                        continue
                    self.assertEqual(self._timers(commands), 1)
            elif kind == "trigger":
                _, method, good_key, from_oper, data = event
                msg = data.draw(st.fixed_dictionaries(
                    {"RPCMethod": st.just(method)},
                    optional={"Key": HEX32, "ServerAddr": KIND_VALUES["host"],
                              "ServerPort": KIND_VALUES["port"], "mode": ODD}))
                commands = m.trigger_received(msg, ("127.0.0.3", 60001), now, from_oper)
                self.assertLessEqual(self._timers(commands), 1)
            elif kind == "wan":
                commands = m.wan_ip_changed(event[1])
                self.assertLessEqual(self._timers(commands), 1)
            self.assertTrue(m.pending is not None or m._next is not None, m.state)
        self.assertEqual(m.stop(), [])
        self.assertEqual(m.timer_fired(), [])

    @staticmethod
    def _timers(commands):
        return sum(isinstance(c, reg.SetTimer) for c in commands)
