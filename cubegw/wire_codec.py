"""The codecs under every message (protocol.md section 3); pure, no I/O.

JSON objects of UDP datagrams and Int32 frames, the base64 ``Parameter`` envelope and
the field converters.  ``cubegw.wire`` builds the typed messages on them and re-exports
every name here, so ``from cubegw import wire`` is all a caller needs.

Decoding is liberal where the field is (docs/PROTOCOL-CHOICES.md, "Tolerant input"):
strict JSON first; only a payload that strict JSON refuses gets the second, tolerant
reading (numbers with leading zeros as decimal, junk after the object).
"""

import base64
import binascii
import json
import json.scanner
import re
from json.encoder import c_make_encoder, encode_basestring

MAX_DATAGRAM = 4096
MAX_FRAME = 64 * 1024
INTERFACE_VERSION = "1.0"


class WireError(ValueError):
    """A message that cannot be accepted; ``reason`` says why in one line."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------- JSON objects

def _decode_object(data, limit, what):
    if isinstance(data, str):
        data = _utf8(data, what)
    if len(data) > limit:
        raise WireError(f"{what} of {len(data)} bytes exceeds the {limit}-byte limit")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise WireError(f"{what} is not valid UTF-8")
    try:
        obj = _loads(text)
    except RecursionError as e:
        raise WireError(f"{what} is not valid JSON: {e}")
    except ValueError as e:
        obj = _tolerant_loads(text, what, e)
    if not isinstance(obj, dict):
        raise WireError(f"{what} is not a JSON object")
    return obj


#: One JSON value at the start of a string -> (value, where it ends): what json.loads
#: scans with, without its two whitespace searches (StopIteration when no value starts
#: there).  The platform's routine heartbeat reads with it too.
scan_json = json.scanner.make_scanner(json.JSONDecoder())


def _loads(text):
    """``json.loads(text)``; the usual payload, one object with nothing around it, read by
    the scanner straight (loads' two whitespace matches and wrappers were a third of a
    frame's decode).  Anything else, errors included, is json.loads' own reading."""
    if text[:1] == "{" and text[-1:] == "}":
        try:
            obj, end = scan_json(text, 0)
        except (ValueError, StopIteration):
            pass
        else:
            if end == len(text):
                return obj
    return json.loads(text)


#: A JSON string (left as it is) or a number's leading zeros (``0000``, ``-007``): not
#: after a letter, digit, dot or sign, so ``1000``, ``1.05`` and ``1e-05`` stay whole.
_STRING_OR_ZEROS = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\w.+-])(-?)0+(?=\d)')
_DECODER = json.JSONDecoder()
_TRAILING_BLANKS = " \t\r\n\0"


def _tolerant_loads(text, what, strict_error):
    """The second reading of a payload strict JSON refused (protocol.md section 3).

    Numbers with leading zeros are read as decimal, and anything after the object is
    ignored unless it is another JSON value (two objects in one payload: which one was
    meant is ambiguous, so it is refused).  Otherwise the strict error stands.
    """
    fixed = _STRING_OR_ZEROS.sub(lambda m: m.group(0) if m.group(1) is None else m.group(1),
                                 text).lstrip(" \t\r\n")
    try:
        obj, end = _DECODER.raw_decode(fixed)
    except (ValueError, RecursionError):
        raise WireError(f"{what} is not valid JSON: {strict_error}")
    rest = fixed[end:].strip(_TRAILING_BLANKS)
    if not isinstance(obj, dict):
        raise WireError(f"{what} is not a JSON object")
    if rest:
        try:
            _DECODER.raw_decode(rest)
        except (ValueError, RecursionError):
            return obj
        raise WireError(f"{what} holds more than one JSON value")
    return obj


def _utf8(text, what):
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a JSON "\ud800" escape
        raise WireError(f"{what} contains a character that is not valid in UTF-8")


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _to_json(obj):
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``: the C encoder that
    ``JSONEncoder.encode`` makes, made here without its Python layers (~1.5 us of each
    of the two encodes of a reply); the encoder itself where C's is missing."""
    if c_make_encoder is None:
        return _JSON.encode(obj)
    return "".join(c_make_encoder(
        {}, _JSON.default, encode_basestring, None, _JSON.key_separator,
        _JSON.item_separator, False, False, True)(obj, 0))


def _encode_object(obj, limit, what):
    data = _utf8(_to_json(obj), what)
    if len(data) > limit:
        raise WireError(f"{what} of {len(data)} bytes exceeds the {limit}-byte limit")
    return data


def decode_datagram(data):
    """One UDP datagram -> dict."""
    return _decode_object(data, MAX_DATAGRAM, "datagram")


def encode_datagram(message):
    """A message (typed or dict) -> datagram bytes."""
    return _encode_object(_as_dict(message), MAX_DATAGRAM, "datagram")


def decode_frame(data):
    """The payload of one Int32 frame -> dict."""
    return _decode_object(data, MAX_FRAME, "frame")


def encode_frame(message):
    """A message (typed or dict) -> frame payload bytes (without the length prefix)."""
    return _encode_object(_as_dict(message), MAX_FRAME, "frame")


def _as_dict(message):
    to_wire = getattr(message, "to_wire", None)
    return to_wire() if callable(to_wire) else message


# ---------------------------------------------------------- Parameter envelope

def encode_parameter(payload):
    """A payload dict -> base64 of its JSON (a sender always encodes)."""
    raw = _utf8(_to_json(payload), "Parameter")
    return base64.b64encode(raw).decode("ascii")


def decode_parameter(value):
    """A ``Parameter`` value -> dict; accepts base64 JSON or a raw JSON object string."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise WireError("Parameter is not a string")
    text = value.strip()
    if text.startswith("{"):
        return _decode_object(text, MAX_FRAME, "Parameter")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WireError("Parameter is neither base64 nor a JSON object")
    return _decode_object(raw, MAX_FRAME, "Parameter")


# ------------------------------------------------------------ field converters

_INT = re.compile(r"^[+-]?\d{1,12}$")
_HEX32 = re.compile(r"^[0-9A-Fa-f]{32}$")
_MAC = re.compile(r"^[0-9A-Fa-f]{12}$")


def as_int(value, name="value"):
    """A JSON number or a numeric string -> int (``"12112"`` and ``12112`` alike)."""
    if isinstance(value, bool):
        raise WireError(f"{name} must be an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.match(value.strip()):
        return int(value.strip())
    raise WireError(f"{name} must be an integer, got {value!r:.40}")


def as_str(value, name="value", limit=256):
    """A string (numbers are accepted and turned into strings) of at most ``limit`` chars."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise WireError(f"{name} must be a string, got {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise WireError(f"{name} is longer than {limit} characters")
    return text


def _port(value, name):
    port = as_int(value, name)
    if not 1 <= port <= 65535:
        raise WireError(f"{name} must be a port number 1-65535, got {port}")
    return port


def _host(value, name):
    host = as_str(value, name).strip()
    if not host or any(c.isspace() for c in host):
        raise WireError(f"{name} must be a host name or address, got {value!r:.40}")
    return host


def _hex32(value, name):
    text = as_str(value, name)
    if not _HEX32.fullmatch(text):
        raise WireError(f"{name} must be 32 hex characters")
    return text.upper()


def _mac(value, name):
    text = as_str(value, name)
    if not _MAC.fullmatch(text):
        raise WireError(f"{name} must be 12 hex characters")
    upper = text.upper()
    return text if upper == text else upper     # the same string: a registry key is one copy


def _flag(value, name):
    text = as_str(value, name)
    if text not in ("0", "1"):
        raise WireError(f"{name} must be \"0\" or \"1\"")
    return text


#: The converter of each field kind (a typed message's field table names the kind).
CONVERTERS = {
    "int": as_int,
    "str": as_str,
    "port": _port,
    "host": _host,
    "hex32": _hex32,
    "mac": _mac,
    "flag": _flag,
    "param": lambda v, name: decode_parameter(v),
}
