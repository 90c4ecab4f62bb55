"""The messages on the wire (protocol.md sections 3-8); pure, no I/O.

UDP messages are one JSON object per datagram; TCP messages are the JSON payloads of
Int32-prefixed frames (the length prefix itself is ``cubegw.framing``);
``Parameter``/``return_Parameter`` carry a base64 JSON object.  Every message is of a
``Kind`` built from one field table, so decoding validates and converts in one place.  Bad
input of any kind raises ``WireError`` with a reason, and nothing else escapes.  The
codecs under them (JSON objects, the Parameter envelope, the converters) are in
``cubegw.wire_codec`` and re-exported here.
"""

from types import MethodType

from cubegw.record import MISSING, Field, FrozenRecordError
from cubegw.wire_codec import (  # re-exported: callers use cubegw.wire for all of it
    CONVERTERS, INTERFACE_VERSION, MAX_DATAGRAM, MAX_FRAME, WireError, as_int, as_str,
    decode_datagram, decode_frame, decode_parameter, encode_datagram, encode_frame,
    encode_parameter,
)

__all__ = [
    "MAX_DATAGRAM", "MAX_FRAME", "INTERFACE_VERSION", "WireError", "as_int", "as_str",
    "decode_datagram", "encode_datagram", "decode_frame", "encode_frame",
    "decode_parameter", "encode_parameter", "CONVERTERS", "wf", "Kind", "Message",
    "decode_fields", "BootFirst", "BootFirstReply", "RegisterFirst", "RegisterFirstReply",
    "Boot", "BootReply", "Register", "RegisterReply", "Hb", "HbReply", "RequestPlugin",
    "RequestDistri", "Result", "PluginBoot", "PluginBootReply", "PluginRegister",
    "Heartbeat", "Post", "Post1", "PostReply", "Disconnect", "Report",
    "TO_GATEWAY_UDP", "TO_PLATFORM_UDP", "TO_GATEWAY_PLUGIN", "TO_PLUGIN_CENTER",
    "TO_GATEWAY_LAN", "REPLIES", "decode_request", "decode_reply",
]


def _same(value):
    return value


def wf(name, kind="str", default=MISSING, success_only=False):
    """One field of a message: its JSON name (the attribute's too), kind, and default
    (absent = required), as the tuple the codecs read: name, decode, encode, default,
    success_only, kind.

    ``success_only`` fields are required only when the reply's Result is a success code.
    """
    return (name, CONVERTERS[kind], encode_parameter if kind == "param" else _same,
            default, success_only, kind)


# ------------------------------------------------------------- typed messages

class Kind:
    """One message of the protocol: its name, RPCMethod (requests), success Results
    (replies) and field table.

    A kind stands where a class per message stood, for ~0.3 KiB instead of ~3: calling
    it builds a ``Message`` (fields by keyword only: a message's order is not its
    meaning), ``from_wire(dict)`` decodes one (``WireError`` if it is none), and
    ``isinstance(m, kind)`` asks whether ``m`` is of the kind or of one made
    ``base=kind`` (as a subclass was).
    """

    __slots__ = ("__name__", "METHOD", "SUCCESS", "_CODEC", "_lineage", "from_wire",
                 "_fields")

    def __init__(self, name, *fields, method=None, success=(), base=None,
                 decode=None):
        self.__name__, self.METHOD, self.SUCCESS = name, method, success
        self._CODEC = (base._CODEC if base else ()) + fields
        self._lineage = (self,) + (base._lineage if base else ())
        self.from_wire = MethodType(decode or decode_fields, self)
        self._fields = None

    def __repr__(self):
        return f"<message kind {self.__name__}>"

    def __instancecheck__(self, obj):
        return type(obj) is Message and self in obj.kind._lineage

    def __call__(self, *args, **values):
        if args:
            raise TypeError(f"{self.__name__}() takes 0 positional arguments "
                            f"but {len(args)} were given")
        kept = {}
        for name, _, _, default, _, _ in self._CODEC:
            if name in values:
                kept[name] = values.pop(name)
            elif default is MISSING:
                raise TypeError(f"{self.__name__}() missing required argument {name!r}")
            else:
                kept[name] = default
        if values:
            raise TypeError(f"{self.__name__}() got an unexpected keyword argument "
                            f"{next(iter(values))!r}")
        return _message(self, kept)

    @property
    def FIELDS(self):
        """The field table as ``record.Field`` objects (wire name, kind and
        success_only in ``metadata``), made on first use: nothing running reads it."""
        if self._fields is None:
            self._fields = tuple(_field(*entry) for entry in self._CODEC)
        return self._fields


def _field(name, _decode, _encode, default, success_only, kind):
    f = Field(default, metadata={"wire": name, "kind": kind, "success_only": success_only})
    f.name = name
    return f


def decode_fields(kind, msg):
    """The decoder of every kind: each field converted, defaulted or refused."""
    if not isinstance(msg, dict):
        raise WireError("message is not a JSON object")
    if kind.METHOD and msg.get("RPCMethod") != kind.METHOD:
        raise WireError(f"expected RPCMethod {kind.METHOD}, got {msg.get('RPCMethod')!r:.40}")
    success = True
    if "Result" in msg and kind.SUCCESS:
        success = as_int(msg["Result"], "Result") in kind.SUCCESS
    values = {}
    for name, convert, _, default, success_only, _ in kind._CODEC:
        value = msg.get(name)
        if value is not None:
            value = convert(value, name)
        elif default is MISSING or (success_only and success):
            raise WireError(f"{kind.__name__} lacks the field {name}")
        else:
            value = default
        values[name] = value
    return _message(kind, values)


def _message(kind, values):
    message = _new(Message)
    _set(message, "kind", kind)
    _set(message, "__dict__", values)
    return message


class Message:
    """A typed message: its ``kind`` and one attribute per field; ``to_wire()`` gives
    the dict to send.  Equal and hashed by kind and value, immutable."""

    __slots__ = ("kind", "__dict__")

    @property
    def METHOD(self):
        return self.kind.METHOD

    def to_wire(self):
        out = {"RPCMethod": self.kind.METHOD} if self.kind.METHOD else {}
        values = self.__dict__
        for name, _, encode, _, _, _ in self.kind._CODEC:
            value = values[name]
            if value is not None:
                out[name] = encode(value)
        return out

    def replace(self, **changes):
        """A copy with ``changes``, checked as a new message's fields are."""
        return self.kind(**dict(self.__dict__, **changes))

    def __eq__(self, other):
        if type(other) is not Message or other.kind is not self.kind:
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self):
        return hash(tuple(self.__dict__.values()))

    def __repr__(self):
        shown = ", ".join(f"{name}={value!r}" for name, value in self.__dict__.items())
        return f"{self.kind.__name__}({shown})"

    def __setattr__(self, name, value):
        raise FrozenRecordError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenRecordError(f"cannot delete field {name!r}")


_new, _set = object.__new__, object.__setattr__


def _hb_reply(kind, msg):
    """The usual Hb reply (JSON integers, as ``{"Result":0,"Interval":60}``) without the
    field table: the same value its converters would give, at every heartbeat."""
    if type(msg) is dict:
        result, every = msg.get("Result"), msg.get("Interval")
        if type(result) is int and (every is None or type(every) is int):
            return _message(kind, {"Result": result, "Interval": every})
    return decode_fields(kind, msg)


# -- distribution (section 4)

_RESULT = wf("Result", "int")
_CHALLENGE = wf("ChallengeCode", "hex32", default=None, success_only=True)
_INTERVAL = wf("Interval", "int", default=None)
_TRIGGER = (wf("Key", "hex32"), wf("ServerAddr", "host"), wf("ServerPort", "port"))
_CHECK = (wf("MAC", "mac"), wf("SN"), wf("CheckSN", "hex32"))

#: The device fields of every Boot (distribution, operation and plugin center).
_DEVICE = (wf("Vendor"), wf("Model"), wf("MAC", "mac"), wf("SN"), wf("FirmwareVer"),
           wf("HardwareVer"), wf("IPAddr"), wf("LOID"))
BootFirst = Kind("BootFirst", *_DEVICE, wf("Version", default=INTERFACE_VERSION),
                 method="BootFirst")
BootFirstReply = Kind("BootFirstReply", _RESULT, _CHALLENGE, success=(0,))
RegisterFirst = Kind("RegisterFirst", *_CHECK, method="RegisterFirst")
RegisterFirstReply = Kind(
    "RegisterFirstReply", _RESULT, wf("ServerAddr", "host", default=None, success_only=True),
    wf("ServerPort", "port", default=None, success_only=True), _INTERVAL, success=(0, 2))

# -- operation (section 5)

Boot = Kind("Boot", method="Boot", base=BootFirst)
BootReply = Kind("BootReply", _RESULT, _CHALLENGE, _INTERVAL, wf("flag", default=None),
                 success=(0,))
Register = Kind("Register", *_CHECK, wf("DevRND", "hex32"), wf("UserID", default=""),
                method="Register")
RegisterReply = Kind("RegisterReply", _RESULT, wf("UPDATEServer", default=None),
                     wf("MessageServer", default=None), wf("UserID", default=None),
                     success=(0, 2))
Hb = Kind("Hb", wf("MAC", "mac"), wf("IPAddr"), wf("FLAG", "flag"), method="Hb")
HbReply = Kind("HbReply", _RESULT, _INTERVAL, success=(0,), decode=_hb_reply)
RequestPlugin = Kind("RequestPlugin", *_TRIGGER, method="RequestPlug-in")
RequestDistri = Kind("RequestDistri", *_TRIGGER, wf("mode", default=None),
                     method="RequestDistri")
#: The bare ``{"Result": n}`` reply (triggers, plugin-center Register and Heartbeat).
Result = Kind("Result", _RESULT, success=(0,))

# -- plugin center (section 7) and LAN (section 8)

PluginBoot = Kind("PluginBoot", *_DEVICE, method="Boot")
PluginBootReply = Kind("PluginBootReply", _RESULT, _CHALLENGE, success=(0,))
PluginRegister = Kind("PluginRegister", *_CHECK, method="Register")
Heartbeat = Kind("Heartbeat", wf("MAC", "mac"), method="Heartbeat")
Post = Kind("Post", wf("ID", "int"), wf("Parameter", "param"), wf("Plugin_Name", default=""),
            wf("Version", default=INTERFACE_VERSION), method="Post")
Post1 = Kind("Post1", method="Post1", base=Post)
PostReply = Kind("PostReply", _RESULT, wf("ID", "int"),
                 wf("return_Parameter", "param", default=None), success=(0,))
Disconnect = Kind("Disconnect", method="Disconnect")
Report = Kind("Report", wf("MAC", "mac"), wf("Parameter", "param"), method="Report")


# ------------------------------------------------------------ dispatch tables

def _table(*kinds):
    return {kind.METHOD: kind for kind in kinds}


#: What each side receives, by channel: a receiver decodes with the table of its channel.
TO_GATEWAY_UDP = _table(RequestPlugin, RequestDistri)
TO_PLATFORM_UDP = _table(BootFirst, RegisterFirst, Boot, Register, Hb, Report)
TO_GATEWAY_PLUGIN = _table(Post, Disconnect)
TO_PLUGIN_CENTER = _table(PluginBoot, PluginRegister, Heartbeat, Report)
TO_GATEWAY_LAN = _table(Post1)

#: The reply kind of each request kind.
REPLIES = {
    BootFirst: BootFirstReply, RegisterFirst: RegisterFirstReply, Boot: BootReply,
    Register: RegisterReply, Hb: HbReply, RequestPlugin: Result, RequestDistri: Result,
    PluginBoot: PluginBootReply, PluginRegister: Result, Heartbeat: Result,
    Post: PostReply, Post1: PostReply,
}


def decode_request(msg, table):
    """A received dict -> the typed request of ``table`` named by its RPCMethod."""
    if not isinstance(msg, dict):
        raise WireError("message is not a JSON object")
    method = msg.get("RPCMethod")
    kind = table.get(method) if isinstance(method, str) else None
    if kind is None:
        raise WireError(f"unexpected RPCMethod {method!r:.40}")
    return kind.from_wire(msg)


def decode_reply(request_kind, msg):
    """A received dict -> the typed reply to a request of ``request_kind``."""
    if not isinstance(msg, dict):
        raise WireError("message is not a JSON object")
    if "Result" not in msg:
        raise WireError("reply lacks the field Result")
    return REPLIES[request_kind].from_wire(msg)
