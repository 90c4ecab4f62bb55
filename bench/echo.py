"""Twisted echo servers, the baselines of the throughput figures.

    python bench/echo.py tcp-close PORT   Int32 frame in, the same frame back, then close
                                          (the LAN's connect-send-close pattern)
    python bench/echo.py tcp PORT         Int32 echo on a connection that stays open
    python bench/echo.py udp PORT         UDP echo
    python bench/echo.py wire PORT        the gateway's side of the plugin channel reduced
                                          to the codec (see ``WirePlugin``): connects to
                                          the plugin center on 127.0.0.1:PORT, as the
                                          gateway does, instead of listening

The first three listen on 127.0.0.1 only and print "ready" once listening; ``wire``
prints "ready" once the center has answered its Register.
"""

import os
import socket
import sys

from twisted.internet import protocol, reactor
from twisted.protocols.basic import Int32StringReceiver


class CloseEcho(Int32StringReceiver):
    MAX_LENGTH = 64 * 1024

    def stringReceived(self, data):
        self.sendString(data)
        self.transport.loseConnection()


class Echo(Int32StringReceiver):
    MAX_LENGTH = 64 * 1024

    def stringReceived(self, data):
        self.sendString(data)


class UdpEcho(protocol.DatagramProtocol):
    def datagramReceived(self, data, addr):
        self.transport.write(data, addr)


def wire_plugin_factory():
    """A client factory for ``WirePlugin`` (imports cubegw only for this mode)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from cubegw import wire
    from cubegw.identity import check_sn

    mac, sn = "02BE4C000002", "02BE4C-0000002BE4C000002"

    class WirePlugin(Int32StringReceiver):
        """The protocol's minimum work per Post, with no capability behind it.

        Per frame it makes the same ``cubegw.wire`` calls as the gateway's plugin channel
        (``cubegw.pluginchannel``): ``decode_frame``, then ``decode_request`` with
        ``TO_GATEWAY_PLUGIN`` (which base64-decodes and parses the Parameter), then for the
        reply ``encode_frame(PostReply(...))`` (which JSON-encodes and base64s the
        return_Parameter) and ``sendString``.  The reply payload is what QUERY_MEM_INFO
        returns, with a fixed Percent: no dispatcher, rights, capability, Deferred, timeout
        or logging.  Before the Posts it says Boot and Register, as the gateway does, so the
        bench's scripted plugin center drives both with the same code.
        """

        MAX_LENGTH = wire.MAX_FRAME

        def connectionMade(self):
            self.pending = wire.PluginBoot
            self.send(wire.PluginBoot(Vendor="bench", Model="wire-echo", MAC=mac, SN=sn,
                                      FirmwareVer="0", HardwareVer="0", IPAddr="127.0.0.1",
                                      LOID="0755BENCH2"))

        def send(self, message):
            self.sendString(wire.encode_frame(message))

        def stringReceived(self, data):
            try:
                msg = wire.decode_frame(data)
                if "RPCMethod" not in msg:
                    return self.replied(msg)
                request = wire.decode_request(msg, wire.TO_GATEWAY_PLUGIN)
            except wire.WireError as e:
                print(f"bad frame: {e.reason}; closing", flush=True)
                return self.transport.loseConnection()
            if isinstance(request, wire.Disconnect):
                return self.transport.loseConnection()
            param = request.Parameter
            self.send(wire.PostReply(Result=0, ID=request.ID, return_Parameter={
                "CmdType": param.get("CmdType"), "SequenceId": param.get("SequenceId"),
                "Percent": "42", "Status": "0"}))

        def replied(self, msg):
            if self.pending is None:            # registered: nothing else is asked
                return
            reply = wire.decode_reply(self.pending, msg)
            if reply.Result != 0:
                raise wire.WireError(f"{self.pending.METHOD} answered Result {reply.Result}")
            if self.pending is wire.PluginBoot:
                self.pending = wire.PluginRegister
                self.send(wire.PluginRegister(MAC=mac, SN=sn,
                                              CheckSN=check_sn(reply.ChallengeCode, sn)))
            elif self.pending is wire.PluginRegister:
                self.pending = None
                print("ready", flush=True)

        def connectionLost(self, reason):
            if reactor.running:
                reactor.stop()

    class Factory(protocol.ClientFactory):
        noisy = False

        def buildProtocol(self, addr):
            p = WirePlugin()
            p.factory = self
            return p

        def clientConnectionFailed(self, connector, reason):
            print(f"cannot connect: {reason.getErrorMessage()}", flush=True)
            reactor.stop()

    return Factory()


def main(argv):
    kind, port = argv[0], int(argv[1])
    if kind == "udp":
        from cubegw.platform.udp import RECEIVE_BUFFER
        listening = reactor.listenUDP(port, UdpEcho(), interface="127.0.0.1")
        # the platform's receive buffer, so neither side loses a burst the other would not
        listening.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    elif kind == "wire":
        reactor.connectTCP("127.0.0.1", port, wire_plugin_factory(), timeout=10)
        reactor.run()
        return
    else:
        f = protocol.Factory()
        f.protocol = CloseEcho if kind == "tcp-close" else Echo
        f.noisy = False
        reactor.listenTCP(port, f, interface="127.0.0.1", backlog=128)
    print("ready", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
