"""A gateway's connection to the reference plugin center, on a StringTransport."""

import json
import struct

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from cubegw import identity, wire

from tests.helpers import MAC, SN

BOOT = dict(RPCMethod="Boot", Vendor="TestVendor", Model="HG-1", MAC=MAC, SN=SN,
            FirmwareVer="1.2.3", HardwareVer="HW1", IPAddr="192.0.2.10", LOID="0755123456")


def frame(msg):
    """``msg`` (a dict or bytes) as one Int32 frame."""
    data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    return struct.pack("!I", len(data)) + data


class Gateway:
    """One gateway connection: a protocol on a StringTransport, with frame helpers."""

    def __init__(self, center, port=40000):
        self.protocol = center.factory().buildProtocol(IPv4Address("TCP", "127.0.0.9", port))
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.9", port))
        self.protocol.makeConnection(self.transport)

    def send(self, msg):
        """Deliver one message; return the frames written since, as dicts."""
        self.transport.clear()
        self.protocol.dataReceived(frame(msg))
        return self.frames()

    def frames(self):
        """Every frame written since the last ``clear``, decoded; clears."""
        data, out = self.transport.value(), []
        self.transport.clear()
        while data:
            (n,), data = struct.unpack("!I", data[:4]), data[4:]
            out.append(json.loads(data[:n]))
            data = data[n:]
        return out

    def only(self, msg):
        replies = self.send(msg)
        assert len(replies) == 1, replies
        return replies[0]

    def boot(self, mac=MAC, sn=SN):
        return self.only(dict(BOOT, MAC=mac, SN=sn))

    def register(self, challenge, mac=MAC, sn=SN, check_sn=None):
        return self.only({"RPCMethod": "Register", "MAC": mac, "SN": sn,
                          "CheckSN": check_sn or identity.check_sn(challenge, sn)})

    def connect(self):
        """Boot and Register: the gateway is connected."""
        challenge = self.boot()["ChallengeCode"]
        assert self.register(challenge) == {"Result": 0}

    def reply(self, id, result=0, **payload):
        self.protocol.dataReceived(frame({"Result": result, "ID": id,
                                          "return_Parameter": wire.encode_parameter(payload)}))

    def lose(self):
        self.protocol.connectionLost(Failure(ConnectionDone()))
