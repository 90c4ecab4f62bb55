"""Bare Twisted echo servers, the baselines of the throughput figures.

    python bench/echo.py tcp-close PORT   Int32 frame in, the same frame back, then close
                                          (the LAN's connect-send-close pattern)
    python bench/echo.py tcp PORT         Int32 echo on a connection that stays open
    python bench/echo.py udp PORT         UDP echo

Listens on 127.0.0.1 only and prints "ready" once listening.
"""

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


def main(argv):
    kind, port = argv[0], int(argv[1])
    if kind == "udp":
        reactor.listenUDP(port, UdpEcho(), interface="127.0.0.1")
    else:
        f = protocol.Factory()
        f.protocol = CloseEcho if kind == "tcp-close" else Echo
        f.noisy = False
        reactor.listenTCP(port, f, interface="127.0.0.1", backlog=128)
    print("ready", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
