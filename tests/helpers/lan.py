"""The LAN side: a LanFactory on a Clock and StringTransports, a store and a dispatcher faked,
and the Int32 frame helpers; used by the LAN, plugin channel and flood tests."""

import json
import struct

from twisted.internet import defer, error
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure

from cubegw import lan, wire
from cubegw.capabilities import Outcome

SN_INFO = {"CmdType": "GET_SN_INFO", "SequenceId": "0000000A"}


class FakeStore:
    """The store's ``get`` over a dict of X_CT-COM_Mgt values."""

    def __init__(self, **mgt):
        self.mgt = {"LocatePort": 17998, "Ability": 0, "Heartbeat": 60}
        self.mgt.update(mgt)

    def get(self, section, name):
        assert section == "mgt", section
        return self.mgt[name]


class FakeDispatcher:
    """Records each call with its Deferred; the test fires them in any order.

    With ``auto`` set, GET_SN_INFO-like payloads are answered at once.
    """

    def __init__(self, auto=False):
        self.auto = auto
        self.calls = []

    def dispatch(self, side, parameter, source=None):
        d = defer.Deferred()
        self.calls.append((side, parameter, d))
        if self.auto:
            d.callback(self.sn_info(parameter))
        return d

    @staticmethod
    def sn_info(parameter, after=()):
        payload = {"CmdType": parameter.get("CmdType"), "SequenceId": parameter.get("SequenceId"),
                   "Status": "0", "MAC": "64D95420214B", "BussinessStatus": "SUCCESS"}
        return Outcome(0, payload, tuple(after))

    def answer(self, index, outcome=None):
        """Fire call ``index`` with ``outcome`` (a tuple is taken as Outcome's fields)."""
        side, parameter, d = self.calls[index]
        if outcome is None:
            outcome = self.sn_info(parameter)
        d.callback(outcome if isinstance(outcome, Outcome) else Outcome(*outcome))


def frame(obj):
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack("!I", len(data)) + data


def unframe(data):
    """All complete frames in ``data`` as dicts, with Parameter fields decoded."""
    out = []
    while len(data) >= 4:
        (n,) = struct.unpack("!I", data[:4])
        msg = json.loads(data[4:4 + n])
        for name in ("Parameter", "return_Parameter"):
            if name in msg:
                msg[name] = wire.decode_parameter(msg[name])
        out.append(msg)
        data = data[4 + n:]
    return out


def post(ident, payload=SN_INFO, method="Post1", **extra):
    msg = {"RPCMethod": method, "ID": ident, "Plugin_Name": "cube", "Version": "1.0",
           "Parameter": wire.encode_parameter(payload)}
    msg.update(extra)
    return msg


def capture_logs(testcase):
    """Every log event emitted during the test."""
    events = []
    globalLogPublisher.addObserver(events.append)
    testcase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def logged(events, text):
    return [e for e in events if text in e.get("log_format", "")]


class LanHarness:
    """A LanFactory on a Clock; ``connect`` opens a connection on a StringTransport."""

    def __init__(self, store=None, dispatcher=None, **kw):
        self.clock = Clock()
        self.store = store or FakeStore()
        self.dispatcher = dispatcher or FakeDispatcher()
        self.factory = lan.LanFactory(self.dispatcher, self.clock, **kw)

    def connect(self, port=40000):
        proto = connect(self.factory, port)
        return (None, None) if proto is None else (proto, proto.transport)


def connect(factory, port=40000):
    """A protocol of ``factory`` on a StringTransport from a LAN address (None if refused)."""
    addr = IPv4Address("TCP", "192.168.1.10", port)
    proto = factory.buildProtocol(addr)
    if proto is not None:
        proto.makeConnection(StringTransport(peerAddress=addr))
    return proto


def lose(proto):
    proto.connectionLost(Failure(error.ConnectionDone()))
