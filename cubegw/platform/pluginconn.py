"""The plugin center's TCP connections (protocol.md section 7): framing only.

``PluginCenterProtocol`` decodes each Int32 frame and hands requests (Boot, Register,
Heartbeat, Report) and replies (to Post) to the ``PluginCenter`` (``plugincenter.py``),
which decides everything about them.
"""

from twisted.internet import protocol
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver

from cubegw import wire
from cubegw.platform import messagelog

SERVER = "plugin_center"


class PluginCenterProtocol(Int32StringReceiver):
    """One gateway's TCP connection: decodes frames and forwards them to the center."""

    MAX_LENGTH = wire.MAX_FRAME
    log = Logger()

    def __init__(self, center):
        self.center = center
        self.mac = None          # from Boot
        self.challenge = None    # ChallengeCode of this connection's Boot
        self.registered = False  # a Register with a good CheckSN on this connection
        self.open = False        # connected and not being closed by us
        self.booted = False      # a Boot arrived on this connection
        self.idle_timer = None   # closes the connection when the peer stays silent

    def connectionMade(self):
        self.open = True
        self.center.connection_made(self)

    def stringReceived(self, data):
        try:
            msg = wire.decode_frame(data)
        except wire.WireError as e:
            self.center.wirelog.inbound(self.mac, SERVER, self.address(), data)
            self.center.dropped(self, e.reason)
            return
        self.center.wirelog.inbound(self.mac or messagelog.mac_of(msg), SERVER,
                                    self.address(), data)
        try:
            if "RPCMethod" not in msg:
                return self.center.reply_received(self, msg)
            request = wire.decode_request(msg, wire.TO_PLUGIN_CENTER)
        except wire.WireError as e:
            self.center.dropped(self, e.reason)
            return
        self.center.request_received(self, request)

    def lengthLimitExceeded(self, length):
        self.log.warn("{peer}: frame of {length} bytes exceeds {limit}; closing",
                      peer=self.peer(), length=length, limit=self.MAX_LENGTH)
        self.close()

    def close(self):
        """Close the connection; nothing more is sent on it."""
        self.open = False
        self.cancel_idle_timer()
        self.transport.loseConnection()

    def abort(self):
        """Close at once, dropping unsent data (the peer may be gone without a FIN)."""
        self.open = False
        self.cancel_idle_timer()
        self.transport.abortConnection()

    def cancel_idle_timer(self):
        timer, self.idle_timer = self.idle_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def connectionLost(self, reason):
        self.open = False
        self.cancel_idle_timer()
        self.center.connection_lost(self, reason)

    def send(self, message):
        """Frame and write a message (typed or dict); ``WireError`` if it is too big."""
        self.sendString(wire.encode_frame(message))
        self.center.wirelog.outbound(self.mac, SERVER, self.address(), message)

    def address(self):
        """(host, port) of the peer, for the message log."""
        peer = self.transport.getPeer() if self.transport is not None else None
        return (getattr(peer, "host", "?"), getattr(peer, "port", 0))

    def peer(self):
        if self.mac:
            return self.mac
        peer = self.transport.getPeer() if self.transport is not None else None
        return "%s:%s" % (getattr(peer, "host", "?"), getattr(peer, "port", "?"))


class PluginCenterFactory(protocol.Factory):
    """Builds one ``PluginCenterProtocol`` per accepted connection."""

    noisy = False

    def __init__(self, center):
        self.center = center

    def buildProtocol(self, addr):
        p = PluginCenterProtocol(self.center)
        p.factory = self
        return p
