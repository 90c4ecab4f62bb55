"""The messages on the wire (protocol.md sections 3-8); pure, no I/O.

UDP messages are one JSON object per datagram; TCP messages are the JSON payloads of
Int32-prefixed frames (the length prefix itself is ``cubegw.framing``);
``Parameter``/``return_Parameter`` carry a base64 JSON object.  Every message has a typed
class built from one field table, so decoding validates and converts in one place.  Bad
input of any kind raises ``WireError`` with a reason, and nothing else escapes.  The
codecs under them (JSON objects, the Parameter envelope, the converters) are in
``cubegw.wire_codec`` and re-exported here.
"""

from cubegw.record import MISSING, Record, field
from cubegw.wire_codec import (  # re-exported: callers use cubegw.wire for all of it
    CONVERTERS, INTERFACE_VERSION, MAX_DATAGRAM, MAX_FRAME, WireError, as_int, as_str,
    decode_datagram, decode_frame, decode_parameter, encode_datagram, encode_frame,
    encode_parameter,
)

__all__ = [
    "MAX_DATAGRAM", "MAX_FRAME", "INTERFACE_VERSION", "WireError", "as_int", "as_str",
    "decode_datagram", "encode_datagram", "decode_frame", "encode_frame",
    "decode_parameter", "encode_parameter", "CONVERTERS", "wf", "Message",
    "BootFirst", "BootFirstReply", "RegisterFirst", "RegisterFirstReply", "Boot",
    "BootReply", "Register", "RegisterReply", "Hb", "HbReply", "RequestPlugin",
    "RequestDistri", "Result", "PluginBoot", "PluginBootReply", "PluginRegister",
    "Heartbeat", "Post", "Post1", "PostReply", "Disconnect", "Report",
    "TO_GATEWAY_UDP", "TO_PLATFORM_UDP", "TO_GATEWAY_PLUGIN", "TO_PLUGIN_CENTER",
    "TO_GATEWAY_LAN", "REPLIES", "decode_request", "decode_reply",
]

_KINDS = {kind: (convert, lambda v: v) for kind, convert in CONVERTERS.items()}
_KINDS["param"] = (CONVERTERS["param"], encode_parameter)


def wf(wire, kind="str", default=MISSING, success_only=False):
    """Declare a message field: its JSON name, kind, and default (absent = required).

    ``success_only`` fields are required only when the reply's Result is a success code.
    """
    return field(default, metadata={
        "wire": wire, "kind": kind, "success_only": success_only})


# ------------------------------------------------------------- typed messages

class Message(Record):
    """Base of the typed messages: ``to_wire()`` and ``from_wire(dict)`` from the field table.

    Each message class declares its fields with ``wf``; construction, equality,
    hashing, repr and immutability are ``record.Record``'s (``dataclass(frozen=True)``
    generated them for each of the 23 classes: ~15 ms of the daemon's start-up).
    """

    METHOD = None           # RPCMethod for requests; None for replies
    SUCCESS = ()            # Result codes meaning success, for replies
    POSITIONAL = 0          # fields by name only: a message's order is not its meaning
    _CODEC = ()             # per field: name, wire name, decode, encode, default, success_only

    def __init_subclass__(cls, **kwargs):
        """Each field's wire name, converters and default in one tuple, read per message
        (the field table's metadata looked up field by field was half of a decode)."""
        super().__init_subclass__(**kwargs)
        cls._CODEC = tuple(
            (f.name, f.metadata["wire"], *_KINDS[f.metadata["kind"]], f.default,
             f.metadata["success_only"]) for f in cls.FIELDS)

    def to_wire(self):
        out = {"RPCMethod": self.METHOD} if self.METHOD else {}
        for name, wire, _, encode, _, _ in self._CODEC:
            value = getattr(self, name)
            if value is not None:
                out[wire] = encode(value)
        return out

    @classmethod
    def from_wire(cls, msg):
        if not isinstance(msg, dict):
            raise WireError("message is not a JSON object")
        if cls.METHOD and msg.get("RPCMethod") != cls.METHOD:
            raise WireError(f"expected RPCMethod {cls.METHOD}, got {msg.get('RPCMethod')!r:.40}")
        success = True
        if "Result" in msg and cls.SUCCESS:
            success = as_int(msg["Result"], "Result") in cls.SUCCESS
        # every field converted or defaulted here, so Record's keyword checks in
        # __init__ have nothing left to check: the message is filled in directly
        message = object.__new__(cls)
        for name, wire, convert, _, default, success_only in cls._CODEC:
            value = msg.get(wire)
            if value is not None:
                value = convert(value, wire)
            elif default is MISSING or (success_only and success):
                raise WireError(f"{cls.__name__} lacks the field {wire}")
            else:
                value = default
            object.__setattr__(message, name, value)
        return message


def _reply(success):
    """Class decorator for replies: the field table plus the success codes."""
    def wrap(cls):
        cls.SUCCESS = success
        return cls
    return wrap


def _request(method):
    def wrap(cls):
        cls.METHOD = method
        return cls
    return wrap


# -- distribution (section 4)

class _DeviceReport(Message):
    """The device fields of every Boot (distribution, operation and plugin center)."""
    Vendor: str = wf("Vendor")
    Model: str = wf("Model")
    MAC: str = wf("MAC", "mac")
    SN: str = wf("SN")
    FirmwareVer: str = wf("FirmwareVer")
    HardwareVer: str = wf("HardwareVer")
    IPAddr: str = wf("IPAddr")
    LOID: str = wf("LOID")


@_request("BootFirst")
class BootFirst(_DeviceReport):
    Version: str = wf("Version", default=INTERFACE_VERSION)


@_reply((0,))
class BootFirstReply(Message):
    Result: int = wf("Result", "int")
    ChallengeCode: str = wf("ChallengeCode", "hex32", default=None, success_only=True)


@_request("RegisterFirst")
class RegisterFirst(Message):
    MAC: str = wf("MAC", "mac")
    SN: str = wf("SN")
    CheckSN: str = wf("CheckSN", "hex32")


@_reply((0, 2))
class RegisterFirstReply(Message):
    Result: int = wf("Result", "int")
    ServerAddr: str = wf("ServerAddr", "host", default=None, success_only=True)
    ServerPort: int = wf("ServerPort", "port", default=None, success_only=True)
    Interval: int = wf("Interval", "int", default=None)


# -- operation (section 5)

@_request("Boot")
class Boot(BootFirst):
    pass


@_reply((0,))
class BootReply(Message):
    Result: int = wf("Result", "int")
    ChallengeCode: str = wf("ChallengeCode", "hex32", default=None, success_only=True)
    Interval: int = wf("Interval", "int", default=None)
    flag: str = wf("flag", default=None)


@_request("Register")
class Register(Message):
    MAC: str = wf("MAC", "mac")
    SN: str = wf("SN")
    CheckSN: str = wf("CheckSN", "hex32")
    DevRND: str = wf("DevRND", "hex32")
    UserID: str = wf("UserID", default="")


@_reply((0, 2))
class RegisterReply(Message):
    Result: int = wf("Result", "int")
    UPDATEServer: str = wf("UPDATEServer", default=None)
    MessageServer: str = wf("MessageServer", default=None)
    UserID: str = wf("UserID", default=None)


@_request("Hb")
class Hb(Message):
    MAC: str = wf("MAC", "mac")
    IPAddr: str = wf("IPAddr")
    FLAG: str = wf("FLAG", "flag")


@_reply((0,))
class HbReply(Message):
    Result: int = wf("Result", "int")
    Interval: int = wf("Interval", "int", default=None)

    @classmethod
    def from_wire(cls, msg):
        """The usual reply (JSON integers, as ``{"Result":0,"Interval":60}``) without the
        field table: the same value its converters would give, at every heartbeat."""
        if type(msg) is dict:
            result, every = msg.get("Result"), msg.get("Interval")
            if type(result) is int and (every is None or type(every) is int):
                reply = object.__new__(cls)
                object.__setattr__(reply, "Result", result)
                object.__setattr__(reply, "Interval", every)
                return reply
        return super().from_wire(msg)


@_request("RequestPlug-in")
class RequestPlugin(Message):
    Key: str = wf("Key", "hex32")
    ServerAddr: str = wf("ServerAddr", "host")
    ServerPort: int = wf("ServerPort", "port")


@_request("RequestDistri")
class RequestDistri(Message):
    Key: str = wf("Key", "hex32")
    ServerAddr: str = wf("ServerAddr", "host")
    ServerPort: int = wf("ServerPort", "port")
    mode: str = wf("mode", default=None)


@_reply((0,))
class Result(Message):
    """The bare ``{"Result": n}`` reply (triggers, plugin-center Register and Heartbeat)."""
    Result: int = wf("Result", "int")


# -- plugin center (section 7) and LAN (section 8)

@_request("Boot")
class PluginBoot(_DeviceReport):
    pass


@_reply((0,))
class PluginBootReply(Message):
    Result: int = wf("Result", "int")
    ChallengeCode: str = wf("ChallengeCode", "hex32", default=None, success_only=True)


@_request("Register")
class PluginRegister(Message):
    MAC: str = wf("MAC", "mac")
    SN: str = wf("SN")
    CheckSN: str = wf("CheckSN", "hex32")


@_request("Heartbeat")
class Heartbeat(Message):
    MAC: str = wf("MAC", "mac")


@_request("Post")
class Post(Message):
    ID: int = wf("ID", "int")
    Parameter: dict = wf("Parameter", "param")
    Plugin_Name: str = wf("Plugin_Name", default="")
    Version: str = wf("Version", default=INTERFACE_VERSION)


@_request("Post1")
class Post1(Post):
    pass


@_reply((0,))
class PostReply(Message):
    Result: int = wf("Result", "int")
    ID: int = wf("ID", "int")
    return_Parameter: dict = wf("return_Parameter", "param", default=None)


@_request("Disconnect")
class Disconnect(Message):
    pass


@_request("Report")
class Report(Message):
    MAC: str = wf("MAC", "mac")
    Parameter: dict = wf("Parameter", "param")


# ------------------------------------------------------------ dispatch tables

def _table(*classes):
    return {cls.METHOD: cls for cls in classes}


#: What each side receives, by channel: a receiver decodes with the table of its channel.
TO_GATEWAY_UDP = _table(RequestPlugin, RequestDistri)
TO_PLATFORM_UDP = _table(BootFirst, RegisterFirst, Boot, Register, Hb, Report)
TO_GATEWAY_PLUGIN = _table(Post, Disconnect)
TO_PLUGIN_CENTER = _table(PluginBoot, PluginRegister, Heartbeat, Report)
TO_GATEWAY_LAN = _table(Post1)

#: The reply class of each request class.
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
    cls = table.get(method) if isinstance(method, str) else None
    if cls is None:
        raise WireError(f"unexpected RPCMethod {method!r:.40}")
    return cls.from_wire(msg)


def decode_reply(request_cls, msg):
    """A received dict -> the typed reply to a request of ``request_cls``."""
    if not isinstance(msg, dict):
        raise WireError("message is not a JSON object")
    if "Result" not in msg:
        raise WireError("reply lacks the field Result")
    return REPLIES[request_cls].from_wire(msg)
