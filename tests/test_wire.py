"""The wire codecs: framing limits, the Parameter envelope, typed messages, dispatch.

Every malformed input must raise ``WireError`` and nothing else, so the transports can log
and drop it; the hypothesis tests at the end feed arbitrary input to every decoder.
"""

import base64
import json

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from cubegw import wire, wire_codec
from cubegw.record import FrozenRecordError, fields
from cubegw.wire import WireError

from tests.helpers.wire_samples import (
    BOOT_FIELDS, HEX, JSONISH, MESSAGES, NEAR_VALID, PAYLOAD, SAMPLES, TABLES)

MAC = "64D95420214B"
SN = "64D954-D6AEE64D95420214B"

CODECS = [(wire.encode_datagram, wire.decode_datagram), (wire.encode_frame, wire.decode_frame)]


def b64json(obj):
    return base64.b64encode(json.dumps(obj).encode("utf-8")).decode("ascii")


def hb(**changes):
    msg = {"RPCMethod": "Hb", "MAC": MAC, "IPAddr": "192.0.2.10", "FLAG": "0"}
    msg.update(changes)
    return msg


def post(**changes):
    msg = {"RPCMethod": "Post", "ID": 7, "Plugin_Name": "p", "Version": "1.0",
           "Parameter": b64json(PAYLOAD)}
    msg.update(changes)
    return msg


class RoundTripTests(SynchronousTestCase):
    def test_samples_cover_every_class(self):
        """SAMPLES has an instance of every class in the dispatch tables and REPLIES."""
        classes = set(wire.REPLIES) | set(wire.REPLIES.values())
        for table in TABLES.values():
            classes |= set(table.values())
        self.assertEqual(classes, set(SAMPLES))

    def test_requests(self):
        """Every request survives to_wire, encode, decode and decode_request in its tables."""
        for name, table in TABLES.items():
            for method, cls in table.items():
                for encode, decode in CODECS:
                    msg = decode(encode(SAMPLES[cls]))
                    self.assertEqual(msg["RPCMethod"], method)
                    self.assertEqual(wire.decode_request(msg, table), SAMPLES[cls], (name, cls))

    def test_replies(self):
        """Every reply survives to_wire, encode, decode and decode_reply for its request."""
        for request_cls, reply_cls in wire.REPLIES.items():
            for encode, decode in CODECS:
                msg = decode(encode(SAMPLES[reply_cls]))
                self.assertNotIn("RPCMethod", msg)
                self.assertEqual(wire.decode_reply(request_cls, msg), SAMPLES[reply_cls])

    def test_from_wire_of_to_wire(self):
        """from_wire(to_wire(m)) == m for every class, without the byte codecs."""
        for cls, sample in SAMPLES.items():
            self.assertEqual(cls.from_wire(sample.to_wire()), sample)

    def test_encode_accepts_dicts(self):
        """encode_datagram/encode_frame take a plain dict as well as a typed message."""
        msg = {"Result": 0, "Name": "网关"}
        self.assertEqual(wire.decode_datagram(wire.encode_datagram(msg)), msg)
        self.assertEqual(wire.decode_frame(wire.encode_frame(msg)), msg)

    def test_compact_utf8(self):
        """The encoding is compact UTF-8 JSON, not ASCII escapes."""
        self.assertEqual(wire.encode_datagram({"A": "网", "B": 1}),
                         '{"A":"网","B":1}'.encode("utf-8"))

    def test_defaults(self):
        """Version defaults to 1.0, UserID to "" and optional reply fields are left out."""
        self.assertEqual(wire.BootFirst.from_wire(
            {"RPCMethod": "BootFirst", **BOOT_FIELDS}).Version, "1.0")
        self.assertEqual(wire.Register(MAC=MAC, SN=SN, CheckSN=HEX, DevRND=HEX).to_wire()[
            "UserID"], "")
        self.assertEqual(wire.HbReply(Result=0).to_wire(), {"Result": 0})

    def test_wrong_rpcmethod_for_class(self):
        """from_wire refuses a message whose RPCMethod names another class."""
        self.assertRaises(WireError, wire.Boot.from_wire, SAMPLES[wire.BootFirst].to_wire())

    def test_from_wire_not_dict(self):
        """from_wire refuses a value that is not a dict."""
        self.assertRaises(WireError, wire.Hb.from_wire, ["Hb"])


class MessageObjectTests(SynchronousTestCase):
    """What Message gives every class: keyword construction, value equality, hashing,
    repr and immutability, over the class's field table."""

    def test_field_table(self):
        """Each class's FIELDS are its base's then its own annotated fields, in order,
        each with its wire name; a class without fields of its own has its base's."""
        for cls in SAMPLES:
            self.assertEqual(fields(cls), cls.FIELDS, cls)
        self.assertEqual([f.name for f in wire.Boot.FIELDS],
                         ["Vendor", "Model", "MAC", "SN", "FirmwareVer", "HardwareVer",
                          "IPAddr", "LOID", "Version"])
        self.assertEqual([f.metadata["wire"] for f in wire.Boot.FIELDS],
                         [f.name for f in wire.Boot.FIELDS])
        self.assertEqual(wire.BootReply.FIELDS[-1].metadata["wire"], "flag")
        self.assertIs(wire.BootFirst.FIELDS[-1].default, wire.INTERFACE_VERSION)

    def test_equality_and_hash(self):
        """Messages compare and hash by class and value, never equal to their wire dict."""
        hb = wire.Hb(MAC=MAC, IPAddr="192.0.2.10", FLAG="1")
        self.assertEqual(hb, SAMPLES[wire.Hb])
        self.assertEqual(hash(hb), hash(SAMPLES[wire.Hb]))
        self.assertNotEqual(hb, wire.Hb(MAC=MAC, IPAddr="192.0.2.10", FLAG="0"))
        self.assertNotEqual(SAMPLES[wire.Boot], SAMPLES[wire.BootFirst])  # same fields
        self.assertNotEqual(hb, hb.to_wire())

    def test_repr(self):
        """repr names the class and every field, None included."""
        self.assertEqual(repr(wire.HbReply(Result=0)), "HbReply(Result=0, Interval=None)")

    def test_immutable(self):
        """A message refuses setting or deleting a field."""
        hb = SAMPLES[wire.Hb]
        self.assertRaises(FrozenRecordError, setattr, hb, "FLAG", "0")
        self.assertRaises(FrozenRecordError, delattr, hb, "FLAG")
        self.assertEqual(hb.FLAG, "1")

    def test_kind_and_isinstance(self):
        """A message names its kind; isinstance holds for its kind and the kind it was
        made from (Boot from BootFirst, Post1 from Post), never the other way."""
        boot, post1 = SAMPLES[wire.Boot], SAMPLES[wire.Post1]
        self.assertIs(boot.kind, wire.Boot)
        self.assertEqual(boot.METHOD, "Boot")
        self.assertIsInstance(boot, wire.Message)
        self.assertTrue(isinstance(boot, (wire.Hb, wire.BootFirst)))
        self.assertIsInstance(post1, wire.Post)
        self.assertNotIsInstance(SAMPLES[wire.BootFirst], wire.Boot)
        self.assertNotIsInstance(SAMPLES[wire.PluginBoot], wire.BootFirst)
        self.assertNotIsInstance(boot.to_wire(), wire.Boot)

    def test_replace(self):
        """replace gives a new message of the same kind; an unknown field is a TypeError."""
        trigger = SAMPLES[wire.RequestPlugin]
        moved = trigger.replace(ServerAddr="elsewhere", ServerPort=1)
        self.assertEqual(moved, wire.RequestPlugin(Key=HEX, ServerAddr="elsewhere",
                                                   ServerPort=1))
        self.assertEqual(trigger.ServerPort, 8000)
        self.assertRaises(TypeError, trigger.replace, Port=1)

    def test_construction_errors(self):
        """Missing, unknown or positional fields are a TypeError."""
        self.assertRaises(TypeError, wire.Hb, MAC=MAC, IPAddr="192.0.2.10")
        self.assertRaises(TypeError, wire.Hb, MAC=MAC, IPAddr="192.0.2.10", FLAG="1", X=1)
        self.assertRaises(TypeError, wire.Hb, MAC, "192.0.2.10", "1")


class NumericStringTests(SynchronousTestCase):
    def test_port_string(self):
        """"ServerPort":"12112" is accepted and sent back as the number 12112."""
        msg = {"RPCMethod": "RequestDistri", "Key": HEX, "ServerAddr": "d", "ServerPort": "12112"}
        trigger = wire.decode_request(msg, wire.TO_GATEWAY_UDP)
        self.assertEqual(trigger.ServerPort, 12112)
        self.assertEqual(trigger.to_wire()["ServerPort"], 12112)
        self.assertIn(b'"ServerPort":12112', wire.encode_datagram(trigger))

    def test_result_string(self):
        """"Result":"-1" is accepted as -1 and sent as a number."""
        reply = wire.decode_reply(wire.RequestPlugin, {"Result": "-1"})
        self.assertEqual(reply, wire.Result(Result=-1))
        self.assertEqual(wire.encode_datagram(reply), b'{"Result":-1}')

    def test_id_and_interval_strings(self):
        """"ID":"7" and "Interval":"60" become ints and go out as numbers."""
        request = wire.decode_request(post(ID="7"), wire.TO_GATEWAY_PLUGIN)
        self.assertEqual(request.ID, 7)
        self.assertIn(b'"ID":7,', wire.encode_frame(request))
        reply = wire.decode_reply(wire.Hb, {"Result": "0", "Interval": " 60 "})
        self.assertEqual(reply, wire.HbReply(Result=0, Interval=60))

    def test_integral_float(self):
        """A JSON number written as 60.0 is an integer; 60.5 is not."""
        self.assertEqual(wire.decode_reply(wire.Hb, {"Result": 0, "Interval": 60.0}).Interval, 60)
        self.assertRaises(WireError, wire.decode_reply, wire.Hb, {"Result": 0, "Interval": 60.5})

    def test_non_numeric_strings(self):
        """Strings that are not whole numbers are refused where an int is expected."""
        for value in ["", "abc", "1.5", "0x10", "1e3", "12 13", "1" * 13]:
            self.assertRaises(WireError, wire.decode_reply, wire.Hb, {"Result": value})

    def test_number_for_string(self):
        """A number where a string is expected is taken as its decimal string."""
        msg = hb(IPAddr=1)
        self.assertEqual(wire.decode_request(msg, wire.TO_PLATFORM_UDP).IPAddr, "1")

    def test_port_range(self):
        """A ServerPort outside 1-65535 is refused."""
        for port in [0, -1, 65536, "70000"]:
            msg = {"RPCMethod": "RequestPlug-in", "Key": HEX, "ServerAddr": "p", "ServerPort": port}
            self.assertRaises(WireError, wire.decode_request, msg, wire.TO_GATEWAY_UDP)


class ParameterTests(SynchronousTestCase):
    def test_encoded_on_send(self):
        """A sender puts the Parameter as padded standard base64 of the payload's JSON."""
        sent = wire.decode_frame(wire.encode_frame(SAMPLES[wire.Post]))
        self.assertIsInstance(sent["Parameter"], str)
        self.assertEqual(json.loads(base64.b64decode(sent["Parameter"], validate=True)), PAYLOAD)
        reply = wire.decode_frame(wire.encode_frame(SAMPLES[wire.PostReply]))
        self.assertEqual(json.loads(base64.b64decode(reply["return_Parameter"])), PAYLOAD)

    def test_encode_parameter(self):
        """encode_parameter gives the base64 of the compact UTF-8 JSON."""
        self.assertEqual(wire.encode_parameter({"a": "网"}),
                         base64.b64encode('{"a":"网"}'.encode("utf-8")).decode("ascii"))

    def test_base64_accepted(self):
        """A base64 JSON object Parameter is decoded, with surrounding white space."""
        self.assertEqual(wire.decode_parameter(b64json(PAYLOAD)), PAYLOAD)
        self.assertEqual(wire.decode_parameter(" %s\n" % b64json(PAYLOAD)), PAYLOAD)
        request = wire.decode_request(post(), wire.TO_GATEWAY_PLUGIN)
        self.assertEqual(request.Parameter, PAYLOAD)

    def test_raw_json_accepted(self):
        """A raw JSON object string, and an already-decoded object, are accepted too."""
        self.assertEqual(wire.decode_parameter(json.dumps(PAYLOAD)), PAYLOAD)
        self.assertEqual(wire.decode_parameter(" " + json.dumps(PAYLOAD)), PAYLOAD)
        self.assertEqual(wire.decode_parameter(PAYLOAD), PAYLOAD)
        for value in [json.dumps(PAYLOAD), PAYLOAD]:
            request = wire.decode_request(post(Parameter=value), wire.TO_GATEWAY_PLUGIN)
            self.assertEqual(request.Parameter, PAYLOAD)
        reply = wire.decode_reply(wire.Post, {"Result": 0, "ID": 7,
                                              "return_Parameter": json.dumps(PAYLOAD)})
        self.assertEqual(reply.return_Parameter, PAYLOAD)

    def test_bad_base64(self):
        """Text that is not valid base64 is refused."""
        for value in ["not base64!", "QUJD=", "QUJ", "QU JD", "\u00e9\u00e9\u00e9\u00e9"]:
            self.assertRaises(WireError, wire.decode_parameter, value)

    def test_base64_not_json(self):
        """base64 of bytes that are not JSON, or not UTF-8, is refused."""
        for raw in [b"hello", b"\xff\xfe\x00", b""]:
            self.assertRaises(WireError, wire.decode_parameter, base64.b64encode(raw).decode())

    def test_base64_of_non_object(self):
        """base64 of a JSON array, string or number is refused: Parameter is an object."""
        for value in [[1, 2], "text", 3, None]:
            self.assertRaises(WireError, wire.decode_parameter, b64json(value))

    def test_raw_json_invalid(self):
        """A raw string starting with '{' that is not valid JSON is refused."""
        self.assertRaises(WireError, wire.decode_parameter, '{"a":')

    def test_not_a_string(self):
        """A Parameter that is a number, list, boolean or bytes is refused."""
        for value in [1, [PAYLOAD], True, None, b64json(PAYLOAD).encode()]:
            self.assertRaises(WireError, wire.decode_parameter, value)
        for value in [1, [PAYLOAD], True]:
            self.assertRaises(WireError, wire.decode_request, post(Parameter=value),
                              wire.TO_GATEWAY_PLUGIN)

    def test_lone_surrogate(self):
        """A raw Parameter holding a lone surrogate (from a JSON \\ud800 escape) is refused."""
        outer = wire.decode_frame(b'{"P":"{\\"a\\":1,\\ud800}"}')
        self.assertRaises(WireError, wire.decode_parameter, outer["P"])

    def test_encode_lone_surrogate(self):
        """Encoding a payload or message holding a lone surrogate raises WireError."""
        self.assertRaises(WireError, wire.encode_parameter, {"a": "\ud800"})
        self.assertRaises(WireError, wire.encode_frame, {"a": "\ud800"})
        self.assertRaises(WireError, wire.encode_datagram, {"a": "\ud800"})


class SizeTests(SynchronousTestCase):
    def test_datagram_limit(self):
        """A datagram of exactly 4096 bytes is decoded; 4097 bytes is refused."""
        pad = 4096 - len(b'{"a":""}')
        self.assertEqual(wire.decode_datagram(b'{"a":"%s"}' % (b"x" * pad)), {"a": "x" * pad})
        self.assertRaises(WireError, wire.decode_datagram, b'{"a":"%s"}' % (b"x" * (pad + 1)))

    def test_encode_datagram_limit(self):
        """Encoding a message over 4096 bytes as a datagram is refused, by UTF-8 size."""
        pad = 4096 - len(b'{"a":""}')
        self.assertEqual(len(wire.encode_datagram({"a": "x" * pad})), 4096)
        self.assertRaises(WireError, wire.encode_datagram, {"a": "x" * (pad + 1)})
        self.assertRaises(WireError, wire.encode_datagram, {"a": "网" * 1400})

    def test_frame_limit(self):
        """A frame of exactly 65536 bytes is decoded; 65537 bytes is refused."""
        pad = 65536 - len(b'{"a":""}')
        self.assertEqual(wire.decode_frame(b'{"a":"%s"}' % (b"x" * pad)), {"a": "x" * pad})
        self.assertRaises(WireError, wire.decode_frame, b'{"a":"%s"}' % (b"x" * (pad + 1)))

    def test_encode_frame_limit(self):
        """Encoding a message over 65536 bytes as a frame is refused."""
        pad = 65536 - len(b'{"a":""}')
        self.assertEqual(len(wire.encode_frame({"a": "x" * pad})), 65536)
        self.assertRaises(WireError, wire.encode_frame, {"a": "x" * (pad + 1)})
        big = wire.Post(ID=1, Parameter={"a": "x" * 60000})
        self.assertRaises(WireError, wire.encode_frame, big)

    def test_str_input_measured_in_bytes(self):
        """A str datagram is measured by its UTF-8 size."""
        self.assertRaises(WireError, wire.decode_datagram, '{"a":"%s"}' % ("网" * 1400))


class MalformedTests(SynchronousTestCase):
    def assertRefused(self, data):
        for decode in (wire.decode_datagram, wire.decode_frame):
            self.assertRaises(WireError, decode, data)

    def test_not_utf8(self):
        """Bytes that are not UTF-8 are refused."""
        self.assertRefused(b'{"a":"\xff"}')
        self.assertRefused(b'\xfe\xff{}')

    def test_invalid_json(self):
        """Invalid JSON is refused."""
        for data in [b"", b"{", b"{'a':1}", b'{"a":1,}', b"RPCMethod=Hb", b'{"a":1}{}']:
            self.assertRefused(data)

    def test_deep_nesting(self):
        """100000 '[' characters, or nesting deep enough to recurse, give WireError."""
        self.assertRefused(b"[" * 100000)
        self.assertRefused(b"{" * 100000)
        deep = b'{"a":' + b"[" * 4000 + b"]" * 4000 + b"}"
        self.assertRaises(WireError, wire.decode_datagram, b"[" * 4000)
        self.assertRaises(WireError, wire.decode_frame, b"[" * 60000)
        self.assertRaises(WireError, wire.decode_frame, deep)
        self.assertRaises(WireError, wire.decode_parameter, deep.decode())
        self.assertRaises(WireError, wire.decode_parameter,
                          base64.b64encode(b"[" * 30000).decode())

    def test_not_an_object(self):
        """JSON arrays, strings, numbers, booleans and null are refused."""
        for data in [b"[]", b'[{"RPCMethod":"Hb"}]', b'"Hb"', b"1", b"true", b"null"]:
            self.assertRefused(data)

    def test_huge_integer(self):
        """An integer literal too long for int() is refused as invalid JSON."""
        self.assertRaises(WireError, wire.decode_frame, b'{"ID":' + b"1" * 5000 + b"}")

    def test_lone_surrogate_str(self):
        """A str datagram that cannot be encoded as UTF-8 is refused."""
        self.assertRefused('{"a":"\ud800"}')

    def test_str_accepted(self):
        """An already-decoded str datagram is accepted."""
        self.assertEqual(wire.decode_datagram('{"a":"网"}'), {"a": "网"})


class ToleranceTests(SynchronousTestCase):
    """What the field sends that strict JSON refuses (protocol.md section 3,
    docs/PROTOCOL-CHOICES.md "Tolerant input")."""

    LAB_POST = (b'{"RPCMethod":"Post" , "ID":0000,"Plugin_Name": "test","Version":"1.0",'
                b'"Parameter":"e30="}')

    def test_leading_zeros_are_decimal(self):
        """The lab tool's "ID":0000 reads 0; 0010 is ten (decimal, never octal)."""
        for decode in (wire.decode_datagram, wire.decode_frame):
            self.assertEqual(decode(self.LAB_POST)["ID"], 0)
            self.assertEqual(decode(b'{"ID":0010,"n":-007,"f":00.5}'),
                             {"ID": 10, "n": -7, "f": 0.5})
        self.assertEqual(wire.decode_request(wire.decode_frame(self.LAB_POST),
                                             wire.TO_GATEWAY_PLUGIN).ID, 0)

    def test_zeros_inside_strings_and_numbers_kept(self):
        """Zeros inside strings, inside numbers and in exponents are left as they are."""
        self.assertEqual(wire.decode_frame(b'{"ID":0007,"s":"0007 \\" 00","a":1000,'
                                           b'"e":1e-05,"z":0}'),
                         {"ID": 7, "s": '0007 " 00', "a": 1000, "e": 1e-05, "z": 0})

    def test_trailing_junk_after_the_object(self):
        """A NUL, a newline or other text after the object is ignored."""
        for tail in (b"\0", b"\r\n", b"\n\0\0", b" }", b"garbage"):
            for decode in (wire.decode_datagram, wire.decode_frame):
                self.assertEqual(decode(b'{"RPCMethod":"Hb"}' + tail), {"RPCMethod": "Hb"})
        self.assertEqual(wire.decode_frame(self.LAB_POST + b"\n")["ID"], 0)

    def test_raw_parameter_with_junk_and_zeros(self):
        """A raw JSON Parameter gets the same tolerance."""
        self.assertEqual(wire.decode_parameter('{"CmdType":"GET_VERSION","N":01}\n'),
                         {"CmdType": "GET_VERSION", "N": 1})

    def test_ambiguous_or_broken_still_refused(self):
        """Two values in one payload, a truncated object, or junk before it: refused."""
        for data in [b'{"a":1}{"b":2}', b'{"a":1} [1]', b'{"a":1} "x"', b'{"a":00',
                     b'x{"a":1}', b'[1] junk', b'{"a":1} 5']:
            for decode in (wire.decode_datagram, wire.decode_frame):
                self.assertRaises(WireError, decode, data)


class FieldTypeTests(SynchronousTestCase):
    def assertBadRequest(self, msg, table=wire.TO_PLATFORM_UDP):
        self.assertRaises(WireError, wire.decode_request, msg, table)

    def test_booleans(self):
        """Booleans are refused where strings or ints are expected."""
        self.assertBadRequest(hb(IPAddr=True))
        self.assertBadRequest(post(ID=True), wire.TO_GATEWAY_PLUGIN)
        self.assertRaises(WireError, wire.decode_reply, wire.Hb, {"Result": False})

    def test_lists_and_dicts(self):
        """Lists and dicts are refused where strings or ints are expected."""
        for value in [[], ["x"], {}, {"a": 1}]:
            self.assertBadRequest(hb(IPAddr=value))
            self.assertBadRequest(hb(MAC=value))
            self.assertBadRequest(post(ID=value), wire.TO_GATEWAY_PLUGIN)
            self.assertRaises(WireError, wire.decode_reply, wire.Hb, {"Result": value})
            self.assertRaises(WireError, wire.decode_reply, wire.Hb,
                              {"Result": 0, "Interval": value})

    def test_missing_required(self):
        """A request without a required field is refused; null counts as missing."""
        for name in ["MAC", "IPAddr", "FLAG"]:
            msg = hb()
            del msg[name]
            self.assertBadRequest(msg)
            self.assertBadRequest(hb(**{name: None}))

    def test_long_string(self):
        """A string field longer than 256 characters is refused."""
        self.assertBadRequest(hb(IPAddr="1" * 257))
        self.assertEqual(wire.decode_request(hb(IPAddr="a" * 256), wire.TO_PLATFORM_UDP).IPAddr,
                         "a" * 256)

    def test_mac_format(self):
        """MAC must be exactly 12 hex digits; lower case is normalised to upper."""
        self.assertEqual(wire.decode_request(hb(MAC=MAC.lower()), wire.TO_PLATFORM_UDP).MAC, MAC)
        for bad in ["64:D9:54:20:21:4B", "64D95420214", "64D95420214BA", "64D95420214G",
                    MAC + "\n", " " + MAC, ""]:
            self.assertBadRequest(hb(MAC=bad))

    def test_challenge_code_format(self):
        """ChallengeCode must be 32 hex digits; lower case is normalised to upper."""
        reply = wire.decode_reply(wire.BootFirst, {"Result": 0, "ChallengeCode": HEX.lower()})
        self.assertEqual(reply.ChallengeCode, HEX)
        for bad in [HEX[:-1], HEX + "0", HEX[:-1] + "G", HEX + "\n", 12345]:
            self.assertRaises(WireError, wire.decode_reply, wire.BootFirst,
                              {"Result": 0, "ChallengeCode": bad})

    def test_check_sn_format(self):
        """CheckSN (and DevRND) must be 32 hex digits, normalised to upper case."""
        msg = {"RPCMethod": "RegisterFirst", "MAC": MAC, "SN": SN, "CheckSN": HEX.lower()}
        self.assertEqual(wire.decode_request(msg, wire.TO_PLATFORM_UDP).CheckSN, HEX)
        for bad in [HEX[:31], HEX + "\n", "Z" * 32, ""]:
            self.assertBadRequest(dict(msg, CheckSN=bad))
        register = dict(msg, RPCMethod="Register", CheckSN=HEX, DevRND=HEX.lower())
        self.assertEqual(wire.decode_request(register, wire.TO_PLATFORM_UDP).DevRND, HEX)
        self.assertBadRequest(dict(register, DevRND="0" * 31))

    def test_flag(self):
        """FLAG must be "0" or "1"."""
        for bad in ["2", "", "01", "true"]:
            self.assertBadRequest(hb(FLAG=bad))
        self.assertEqual(wire.decode_request(hb(FLAG=1), wire.TO_PLATFORM_UDP).FLAG, "1")

    def test_host(self):
        """ServerAddr must be a non-empty host without white space inside."""
        for bad in ["", "  ", "a b", "a\tb"]:
            self.assertRaises(WireError, wire.decode_reply, wire.RegisterFirst,
                              {"Result": 0, "ServerAddr": bad, "ServerPort": 1})
        reply = wire.decode_reply(wire.RegisterFirst,
                                  {"Result": 0, "ServerAddr": " oper ", "ServerPort": 1})
        self.assertEqual(reply.ServerAddr, "oper")


class SuccessFieldTests(SynchronousTestCase):
    def test_bootfirst_success_needs_challenge(self):
        """BootFirst Result 0 without ChallengeCode is an error; Result -1 without it is fine."""
        self.assertRaises(WireError, wire.decode_reply, wire.BootFirst, {"Result": 0})
        self.assertRaises(WireError, wire.decode_reply, wire.BootFirst,
                          {"Result": 0, "ChallengeCode": None})
        self.assertEqual(wire.decode_reply(wire.BootFirst, {"Result": -1}),
                         wire.BootFirstReply(Result=-1))
        self.assertEqual(wire.decode_reply(wire.BootFirst, {"Result": "-6"}),
                         wire.BootFirstReply(Result=-6))

    def test_boot_success_needs_challenge(self):
        """Boot and plugin-center Boot need a ChallengeCode on Result 0 only."""
        for request in [wire.Boot, wire.PluginBoot]:
            self.assertRaises(WireError, wire.decode_reply, request, {"Result": 0})
            self.assertEqual(wire.decode_reply(request, {"Result": -1}).Result, -1)

    def test_registerfirst_success_needs_server(self):
        """RegisterFirst Result 0 or 2 needs ServerAddr and ServerPort; -2 does not."""
        for result in [0, 2, "2"]:
            for msg in [{"Result": result}, {"Result": result, "ServerAddr": "o"},
                        {"Result": result, "ServerPort": 1}]:
                self.assertRaises(WireError, wire.decode_reply, wire.RegisterFirst, msg)
        self.assertEqual(wire.decode_reply(wire.RegisterFirst, {"Result": -2}),
                         wire.RegisterFirstReply(Result=-2))

    def test_failure_still_checks_present_fields(self):
        """A failure reply is still refused if a field it does carry is malformed."""
        self.assertRaises(WireError, wire.decode_reply, wire.BootFirst,
                          {"Result": -1, "ChallengeCode": "xyz"})

    def test_post_reply_needs_id(self):
        """A Post reply needs its ID whatever the Result, so it can be matched."""
        self.assertRaises(WireError, wire.decode_reply, wire.Post, {"Result": -12})
        self.assertEqual(wire.decode_reply(wire.Post1, {"Result": -12, "ID": "3"}),
                         wire.PostReply(Result=-12, ID=3))


class DispatchTests(SynchronousTestCase):
    def test_unknown_method(self):
        """An RPCMethod not in the table is refused, even one valid on another channel."""
        for table, method in [(wire.TO_GATEWAY_UDP, "Hb"), (wire.TO_GATEWAY_LAN, "Post"),
                              (wire.TO_GATEWAY_PLUGIN, "Post1"), (wire.TO_PLATFORM_UDP, "Nope"),
                              (wire.TO_PLUGIN_CENTER, "Hb")]:
            self.assertRaises(WireError, wire.decode_request, post(RPCMethod=method), table)

    def test_missing_method(self):
        """A message without RPCMethod is refused."""
        msg = post()
        del msg["RPCMethod"]
        for table in TABLES.values():
            self.assertRaises(WireError, wire.decode_request, msg, table)

    def test_method_not_string(self):
        """An RPCMethod that is a number, list, dict, boolean or null is refused."""
        for method in [1, ["Post"], {"Post": 1}, True, None]:
            self.assertRaises(WireError, wire.decode_request, post(RPCMethod=method),
                              wire.TO_GATEWAY_PLUGIN)

    def test_method_case(self):
        """RPCMethod matching is exact: "post" is not "Post"."""
        self.assertRaises(WireError, wire.decode_request, post(RPCMethod="post"),
                          wire.TO_GATEWAY_PLUGIN)

    def test_same_method_per_channel(self):
        """Boot and Register decode to the operation or plugin-center class by table."""
        boot = {"RPCMethod": "Boot", **BOOT_FIELDS}
        self.assertIs(wire.decode_request(boot, wire.TO_PLATFORM_UDP).kind, wire.Boot)
        self.assertIs(wire.decode_request(boot, wire.TO_PLUGIN_CENTER).kind, wire.PluginBoot)

    def test_reply_without_result(self):
        """decode_reply refuses a reply without Result, or with a null Result."""
        for request_cls in wire.REPLIES:
            self.assertRaises(WireError, wire.decode_reply, request_cls, {"ID": 7})
            self.assertRaises(WireError, wire.decode_reply, request_cls, {"Result": None, "ID": 7})

    def test_not_a_dict(self):
        """decode_request and decode_reply refuse values that are not dicts."""
        for value in [None, 1, "Hb", [], [{"RPCMethod": "Hb"}]]:
            self.assertRaises(WireError, wire.decode_request, value, wire.TO_PLATFORM_UDP)
            self.assertRaises(WireError, wire.decode_reply, wire.Hb, value)

    def test_wire_error_reason(self):
        """WireError is a ValueError carrying a one-line reason."""
        with self.assertRaises(WireError) as caught:
            wire.decode_reply(wire.Hb, {})
        self.assertIsInstance(caught.exception, ValueError)
        self.assertEqual(caught.exception.reason, "reply lacks the field Result")


# ---------------------------------------------------------------- properties

PROPERTY = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def only_wire_errors(call, *args):
    """Run ``call``; a WireError is fine, anything else propagates and fails the test."""
    try:
        return call(*args)
    except WireError:
        return None


class PropertyTests(SynchronousTestCase):
    @PROPERTY
    @given(st.binary(max_size=300))
    def test_bytes(self, data):
        """Arbitrary bytes to decode_datagram, decode_frame, decode_parameter: only WireError."""
        for decode in (wire.decode_datagram, wire.decode_frame, wire.decode_parameter):
            only_wire_errors(decode, data)
        only_wire_errors(wire.decode_parameter, base64.b64encode(data).decode("ascii"))

    @PROPERTY
    @given(JSONISH)
    def test_json_values(self, value):
        """Arbitrary JSON values, as text and as values, to every decoder: only WireError."""
        text = json.dumps(value)
        for data in (text, text.encode("utf-8")):
            only_wire_errors(wire.decode_datagram, data)
            only_wire_errors(wire.decode_frame, data)
        only_wire_errors(wire.decode_parameter, text)
        only_wire_errors(wire.decode_parameter, value)
        only_wire_errors(wire.decode_parameter, base64.b64encode(text.encode()).decode())
        for table in TABLES.values():
            only_wire_errors(wire.decode_request, value, table)
        for request_cls in wire.REPLIES:
            only_wire_errors(wire.decode_reply, request_cls, value)

    @PROPERTY
    @given(MESSAGES | NEAR_VALID)
    def test_messages(self, msg):
        """Arbitrary message dicts to decode_request (every table) and decode_reply: only WireError.

        Whatever decodes also encodes again, as a frame, to the same typed message.
        """
        for table in TABLES.values():
            request = only_wire_errors(wire.decode_request, msg, table)
            if request is not None:
                again = wire.decode_frame(wire.encode_frame(request))
                self.assertEqual(wire.decode_request(again, table), request)
        for request_cls in wire.REPLIES:
            reply = only_wire_errors(wire.decode_reply, request_cls, msg)
            if reply is not None:
                again = wire.decode_frame(wire.encode_frame(reply))
                self.assertEqual(wire.decode_reply(request_cls, again), reply)

    @PROPERTY
    @given(st.text(max_size=200))
    def test_text(self, text):
        """Arbitrary text as a datagram, frame or Parameter: only WireError."""
        for decode in (wire.decode_datagram, wire.decode_frame, wire.decode_parameter):
            only_wire_errors(decode, text)
            only_wire_errors(decode, "{" + text)


def loads_outcome(read, text):
    """``read(text)``'s value, or the kind of error it raised."""
    try:
        return ("value", read(text))
    except (ValueError, RecursionError) as e:
        return ("error", type(e))


def dumps_outcome(write, obj):
    try:
        return ("value", write(obj))
    except (TypeError, ValueError) as e:
        return ("error", type(e))


def strict_dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class JsonShortcutTests(SynchronousTestCase):
    """The codec's JSON reading and writing skip json's Python layers: they must give
    exactly what ``json.loads`` and ``json.dumps`` give."""

    def test_loads_edges(self):
        """Around the usual payload: blanks, extra data, a BOM, broken and deep objects,
        other values, as json.loads."""
        for text in ['{"a":1}', ' {"a":1}', '{"a":1} ', '{"a":1}{"b":2}', '{"a":1}}',
                     '\ufeff{"a":1}', '{"a":}', '{', '}', '{}', '', '[1]', '"{}"',
                     '{"a":{"b":[1,2.5,null,true,"\\u00e9"]}}', '{"a":1,"a":2}',
                     '{"a":NaN}', '{"a":1}\n', "{'a':1}", '{"a":01}',
                     "{" * 100000 + "}" * 100000]:
            self.assertEqual(loads_outcome(wire_codec._loads, text),
                             loads_outcome(json.loads, text), text[:40])

    @PROPERTY
    @given(JSONISH)
    def test_loads_values(self, value):
        """Any JSON value, compact and spaced, reads as json.loads reads it."""
        for text in (json.dumps(value), json.dumps(value, separators=(",", ":")),
                     json.dumps({"v": value}), json.dumps({"v": value}) + " x"):
            self.assertEqual(loads_outcome(wire_codec._loads, text),
                             loads_outcome(json.loads, text))

    @PROPERTY
    @given(JSONISH)
    def test_dumps_values(self, value):
        """Any JSON value writes as json.dumps writes it."""
        for obj in (value, {"v": value, "\u00e9": [value]}):
            self.assertEqual(dumps_outcome(wire_codec._to_json, obj),
                             dumps_outcome(strict_dumps, obj))

    def test_dumps_edges(self):
        """Floats, NaN, non-text keys, what JSON cannot hold and a loop, as json.dumps."""
        loop = []
        loop.append(loop)
        for obj in [{"f": 1.5, "n": float("nan"), "i": float("inf"), "big": 10**30},
                    {1: "a", None: "b", False: "c", 2.5: "d"}, {"s": {1, 2}}, {("t",): 1},
                    {"b": b"x"}, loop, "text \u2028", 7, None, {"l": loop}]:
            self.assertEqual(dumps_outcome(wire_codec._to_json, obj),
                             dumps_outcome(strict_dumps, obj))

    @PROPERTY
    @given(st.text(alphabet="AQZaz09+/=\n -_\u00e9\u0661", max_size=12) | st.text(max_size=8))
    def test_base64_as_b64decode(self, text):
        """A Parameter is refused as base64 exactly when ``b64decode(validate=True)``
        refuses it (what it accepts then fails as JSON, or decodes)."""
        if text.strip() != text or text.startswith("{"):
            return                      # stripped first; a "{" is read as raw JSON
        try:
            base64.b64decode(text, validate=True)
            b64_refused = False
        except ValueError:
            b64_refused = True
        try:
            wire.decode_parameter(text)
            refused = False
        except WireError as e:
            refused = e.reason == "Parameter is neither base64 nor a JSON object"
        self.assertEqual(refused, b64_refused)

    def test_base64_payloads(self):
        """base64 JSON objects, padded or not, decode to the object."""
        for payload in ({}, {"a": "1"}, {"ab": "\u00e9"}, {"abc": [1, 2]}):
            self.assertEqual(wire.decode_parameter(b64json(payload)), payload)
