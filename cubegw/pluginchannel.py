"""The plugin-center channel (protocol.md section 7): the gateway's TCP client.

After a valid ``RequestPlug-in`` the gateway connects, says ``Boot`` and ``Register``
(CheckSN = MD5(ChallengeCode + SN)), then keeps a ``Heartbeat`` every
X_CT-COM_Mgt.Heartbeat seconds, and answers ``Post`` capability calls (several may be in
flight; each reply carries its ID).  ``Disconnect`` closes the channel until the next
``connect()``; a dropped or refused connection, a failed Boot/Register or an unanswered
request is retried with ``backoff_policy`` delays, the counter resetting after a Register
succeeds.

``PluginProtocol`` only frames and decodes; ``PluginChannel`` holds the state, the timers
and the reconnects, and ignores every event of a connection it has already left.

Bounded output: each connection registers its protocol as a streaming producer on the
transport, whose write buffer pauses it past ``HIGH_WATER`` bytes (a center that does not
read).  While paused, Reports are refused (the caller falls back to one UDP datagram, which
does not queue) and the center's requests are not read, so it cannot make the gateway
buffer replies without bound; the heartbeat reply timeout then drops a center that stays
wedged.
"""

import random

from twisted.application import service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectingCancelledError
from twisted.internet.protocol import ClientFactory, Factory

from cubegw import wire
from cubegw.access import is_address
from cubegw.identity import check_sn
from cubegw.capabilities.dispatch import RESULT_NOT_ALLOWED, encode_reply, request_id
from cubegw.framing import Int32Receiver
from cubegw.logs import Logger

IDLE = "idle"                    # never asked to connect
CONNECTING = "connecting"
BOOTING = "booting"
REGISTERING = "registering"
ONLINE = "online"
WAITING = "waiting"              # backing off before the next attempt
DISCONNECTED = "disconnected"    # the center said Disconnect: down until connect()
STOPPED = "stopped"

_ACTIVE = (CONNECTING, BOOTING, REGISTERING, ONLINE)

HIGH_WATER = 256 * 1024          # bytes of unsent output before the transport pauses us


class PluginProtocol(Int32Receiver):
    """Frames to dicts for the channel; malformed or oversized input closes the connection."""

    MAX_LENGTH = wire.MAX_FRAME
    log = Logger()

    def __init__(self, channel, attempt):
        self.channel = channel
        self.attempt = attempt
        self.closing = False
        self.gone = False
        self.paused = False              # the transport's write buffer is over HIGH_WATER
        self._producing = False          # registered as the transport's producer
        self._waiters = []

    def connectionMade(self):
        if hasattr(self.transport, "bufferSize"):     # a FileDescriptor: TCP
            self.transport.bufferSize = HIGH_WATER
        self.transport.registerProducer(self, True)
        self._producing = True
        self.channel._connection_made(self)

    # IPushProducer: called by the transport when its write buffer passes HIGH_WATER
    # (pause) and when it has drained (resume).

    def pauseProducing(self):
        if not self.paused and not self.closing:
            self.log.warn("plugin center is not reading (over {limit} bytes unsent): "
                          "Reports go by UDP and its requests wait", limit=HIGH_WATER)
        self.paused = True
        if not self.closing:
            self.transport.pauseProducing()              # stop reading its requests

    def resumeProducing(self):
        if not self.paused:
            return
        self.paused = False
        if not self.closing:
            self.log.info("plugin center reads again")
            self.transport.resumeProducing()

    def stopProducing(self):
        self.paused = True

    def stringReceived(self, data):
        if self.closing:
            return
        try:
            msg = wire.decode_frame(data)
        except wire.WireError as e:
            # protocol.md 3: dropped, the connection stays; only an over-limit length closes
            self.log.warn("plugin center sent a bad frame, dropped: {reason}", reason=e.reason)
            return
        self.channel._message(self, msg)

    def lengthLimitExceeded(self, length):
        self.log.warn("plugin center announced a {length}-byte frame (limit {limit}); closing",
                      length=length, limit=self.MAX_LENGTH)
        self.close()

    def send(self, message):
        """Encode and send; False when this connection is closing or the message too big."""
        if self.closing:
            return False
        try:
            data = wire.encode_frame(message)
        except wire.WireError as e:
            self.log.error("not sent to the plugin center: {reason}", reason=e.reason)
            return False
        self.sendString(data)
        return True

    def close(self, abort=False):
        self.closing = True
        if self._producing:
            # a paused producer would keep loseConnection waiting for it for ever
            self._producing = False
            self.transport.unregisterProducer()
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def when_lost(self):
        """A Deferred that fires once this connection is gone."""
        if self.gone:
            return succeed(None)
        d = Deferred()
        self._waiters.append(d)
        return d

    def connectionLost(self, reason):
        self.closing = self.gone = True
        self.channel._connection_lost(self, reason)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)


class _ChannelFactory(Factory):
    noisy = False

    def __init__(self, channel, attempt):
        self.channel = channel
        self.attempt = attempt

    def buildProtocol(self, addr):
        proto = PluginProtocol(self.channel, self.attempt)
        proto.factory = self
        return proto


def tcp_endpoint(reactor, host, port, timeout):
    """The plugin center over TCP: a host name, an IPv4 or an IPv6 address (``::1`` or
    ``[::1]``), with RFC 8305 happy eyeballs when a name has both.  An address is
    connected to as it is (``AddressEndpoint``): Twisted's name resolution would start a
    thread (and its memory arena) to "resolve" it."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if is_address(host):
        return AddressEndpoint(reactor, host, port, timeout)
    from twisted.internet.endpoints import HostnameEndpoint
    return HostnameEndpoint(reactor, host, port, timeout=timeout)


class AddressEndpoint:
    """A TCP client endpoint for an IPv4 or IPv6 address literal on ``connectTCP`` (which
    takes both): twisted.internet.endpoints, with the stdio and systemd modules it loads,
    cost a running gateway ~0.3 MiB, and is loaded only when a host name is configured."""

    def __init__(self, reactor, host, port, timeout):
        self.reactor, self.host, self.port, self.timeout = reactor, host, port, timeout

    def connect(self, factory):
        """A Deferred firing with ``factory``'s protocol once connected (or failing);
        cancelling it stops the attempt, as an endpoint's does."""
        connecting = _Connecting(factory)
        connecting.connector = self.reactor.connectTCP(self.host, self.port, connecting,
                                                       timeout=self.timeout)
        return connecting.deferred


class _Connecting(ClientFactory):
    """One ``AddressEndpoint.connect``: builds the protocol with the caller's factory and
    reports the attempt's outcome on ``deferred``."""

    noisy = False

    def __init__(self, factory):
        self.factory = factory
        self.connector = None
        self.deferred = Deferred(self._cancel)

    def _cancel(self, d):
        d.errback(ConnectingCancelledError(self.connector.getDestination()))
        self.connector.stopConnecting()

    def buildProtocol(self, addr):
        try:
            proto = self.factory.buildProtocol(addr)
        except BaseException:
            self.deferred.errback()
            return None
        self.deferred.callback(proto)
        return proto

    def clientConnectionFailed(self, connector, reason):
        if not self.deferred.called:
            self.deferred.errback(reason)


def backoff_policy(initial=1.0, maximum=60.0, factor=1.5, jitter=random.random):
    """``attempt -> seconds``: the delays of Twisted's ``backoffPolicy`` (initial x
    factor^attempt, capped, plus up to 1 s of jitter), without importing
    twisted.application.internet, which pulls in automat and TLS (about 13 ms of start-up)."""
    def delay(attempt):
        try:
            base = min(initial * factor ** min(100, attempt), maximum)
        except OverflowError:
            base = maximum
        return base + jitter()
    return delay


class PluginChannel(service.Service):
    """The one connection to the plugin center, kept up until Disconnect or ``stop()``.

    As a service it does nothing at start (a RequestPlug-in connects it) and closes
    the channel when the daemon stops.
    """

    log = Logger()

    def __init__(self, reactor, identity, store, dispatcher, wan_ip=lambda: "", clock=None,
                 backoff=None, reply_timeout=30.0, connect_timeout=30.0,
                 endpoint=tcp_endpoint):
        self.reactor = reactor
        self.identity = identity
        self.store = store
        self.dispatcher = dispatcher
        self.wan_ip = wan_ip
        self.clock = clock if clock is not None else reactor
        self.backoff = backoff if backoff is not None else backoff_policy()
        self.reply_timeout = reply_timeout
        self.connect_timeout = connect_timeout
        #: ``endpoint(reactor, host, port, timeout)`` -> an IStreamClientEndpoint: how the
        #: center is reached (TCP by default; a vendor may wrap it in TLS)
        self.endpoint = endpoint
        self.state = IDLE
        self.address = None
        self.failures = 0                # failed attempts since the last Register 0
        self.in_flight = 0               # Posts being dispatched
        self.counters = {"connects": 0, "registered": 0, "posts": 0, "reports": 0,
                         "reports_refused": 0, "heartbeats": 0}
        self._attempt = 0                # events of older attempts are ignored
        self._proto = None
        self._connecting = None
        self._retry = None
        self._pending = None             # (request class, timeout call)
        self._hb_call = None
        self._hb_sent = None

    # ------------------------------------------------------------- public

    @property
    def connected(self):
        """True while registered with the plugin center (Reports go over TCP)."""
        return self.state == ONLINE

    def connect(self, host, port):
        """Connect (or move) to the plugin center named by a valid RequestPlug-in."""
        address = (host, int(port))
        if address == self.address and self.state in _ACTIVE:
            self.log.info("plugin center {host}:{port} already {state}; keeping it",
                          host=host, port=port, state=self.state)
            return
        if self.state in _ACTIVE or self.state == WAITING:
            self.log.info("plugin center moves from {old} to {host}:{port}",
                          old="%s:%s" % self.address, host=host, port=port)
        self._leave(IDLE)
        self.address = address
        self.failures = 0
        self._connect()

    def stop(self):
        """Close the channel and stay down; the Deferred fires once the socket is gone."""
        return self._leave(STOPPED)

    def stopService(self):
        super().stopService()
        return self.stop()

    def send_report(self, parameter):
        """Send a Report over the channel; False when it is down or the center is not
        reading (its write buffer is over HIGH_WATER): use UDP instead, nothing queues."""
        if self.state != ONLINE or self._proto is None:
            return False
        if self._proto.paused:
            self.counters["reports_refused"] += 1
            return False
        report = wire.Report(MAC=self.identity.mac, Parameter=parameter)
        if self._proto.send(report):
            self.counters["reports"] += 1
            return True
        return False

    def snapshot(self):
        return {"state": self.state, "connected": self.connected,
                "address": "%s:%s" % self.address if self.address else None,
                "failures": self.failures, "in_flight": self.in_flight,
                "counters": dict(self.counters)}

    # --------------------------------------------------------- connection

    def _connect(self):
        self._retry = None
        self._attempt += 1
        self.state = CONNECTING
        self.counters["connects"] += 1
        host, port = self.address
        self.log.info("connecting to the plugin center {host}:{port}", host=host, port=port)
        attempt = self._attempt
        endpoint = self.endpoint(self.reactor, host, port, self.connect_timeout)
        self._connecting = endpoint.connect(_ChannelFactory(self, attempt))
        self._connecting.addErrback(lambda reason: self._connect_failed(attempt, reason))

    def _leave(self, state):
        """Drop the current attempt (timers, connector, connection) without a retry."""
        self._attempt += 1
        self._cancel_timers()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        done = succeed(None)
        if self._proto is not None:
            proto, self._proto = self._proto, None
            done = proto.when_lost()
            proto.close()
        elif self._connecting is not None and self.state == CONNECTING:
            self._connecting.cancel()
        self._connecting = None
        self.state = state
        return done

    def _retry_later(self, why):
        self._cancel_timers()
        self._proto = None
        self._connecting = None
        self.failures += 1
        delay = self.backoff(self.failures)
        self.state = WAITING
        self.log.info("plugin center {address}: {why}; retry {n} in {delay:.1f} s",
                      address="%s:%s" % self.address, why=why, n=self.failures, delay=delay)
        self._retry = self.clock.callLater(delay, self._connect)

    def _connect_failed(self, attempt, reason):
        if attempt == self._attempt:
            self._retry_later(f"connection failed ({reason.getErrorMessage()})")

    def _connection_made(self, proto):
        if proto.attempt != self._attempt:
            proto.close(abort=True)
            return
        self._proto = proto
        self._connecting = None
        self.state = BOOTING
        ident = self.identity
        self._request(wire.PluginBoot(
            Vendor=ident.vendor, Model=ident.model, MAC=ident.mac, SN=ident.sn,
            FirmwareVer=ident.firmware_version, HardwareVer=ident.hardware_version,
            IPAddr=self.wan_ip(), LOID=ident.loid))

    def _connection_lost(self, proto, reason):
        if proto is not self._proto:
            return
        self._retry_later(f"connection lost ({reason.getErrorMessage()})")

    def _drop(self, why):
        """Close the current connection; its loss schedules the retry."""
        self.log.warn("plugin center {address}: {why}; closing",
                      address="%s:%s" % self.address, why=why)
        self._cancel_timers()
        self._proto.close(abort=True)

    def _cancel_timers(self):
        for call in (self._pending[1] if self._pending else None, self._hb_call):
            if call is not None and call.active():
                call.cancel()
        self._pending = None
        self._hb_call = None

    # -------------------------------------------------- requests we make

    def _request(self, message):
        self._pending = (message.kind, self.clock.callLater(self.reply_timeout, self._timed_out))
        self._proto.send(message)

    def _timed_out(self):
        cls = self._pending[0]
        self._pending = None
        self._drop(f"no reply to {cls.METHOD} within {self.reply_timeout} s")

    def _reply(self, msg):
        cls, timer = self._pending
        self._pending = None
        timer.cancel()
        try:
            reply = wire.decode_reply(cls, msg)
        except wire.WireError as e:
            return self._drop(f"bad reply to {cls.METHOD}: {e.reason}")
        if reply.Result != 0:
            return self._drop(f"{cls.METHOD} answered Result {reply.Result}")
        if cls is wire.PluginBoot:
            self.state = REGISTERING
            self._request(wire.PluginRegister(
                MAC=self.identity.mac, SN=self.identity.sn,
                CheckSN=check_sn(reply.ChallengeCode, self.identity.sn)))
        elif cls is wire.PluginRegister:
            self.state = ONLINE
            self.failures = 0
            self.counters["registered"] += 1
            self.log.info("registered with the plugin center {address}",
                          address="%s:%s" % self.address)
            self._hb_sent = self.clock.seconds()
            self._schedule_heartbeat()
        else:
            self.counters["heartbeats"] += 1
            self._schedule_heartbeat()

    def _schedule_heartbeat(self):
        interval = self.store.get("mgt", "Heartbeat")
        delay = max(0, self._hb_sent + interval - self.clock.seconds())
        self._hb_call = self.clock.callLater(delay, self._heartbeat)

    def _heartbeat(self):
        self._hb_call = None
        self._hb_sent = self.clock.seconds()
        self._request(wire.Heartbeat(MAC=self.identity.mac))

    # ----------------------------------------------- requests we receive

    def _message(self, proto, msg):
        if proto is not self._proto:
            return
        if "RPCMethod" not in msg:
            if self._pending is None:
                self.log.info("plugin center sent a reply nobody waits for: {msg!r:.120}",
                              msg=msg)
                return
            return self._reply(msg)
        try:
            request = wire.decode_request(msg, wire.TO_GATEWAY_PLUGIN)
        except wire.WireError as e:
            ident = request_id(msg)
            if ident is None:
                self.log.warn("plugin center request dropped (no ID to answer): {reason}",
                              reason=e.reason)
                return
            self.log.warn("plugin center request ID {id} refused: {reason}",
                          id=ident, reason=e.reason)
            proto.send({"Result": RESULT_NOT_ALLOWED, "ID": ident})
            return
        if request.kind is wire.Disconnect:
            self.log.info("plugin center {address} said Disconnect; down until the next "
                          "RequestPlug-in", address="%s:%s" % self.address)
            self._leave(DISCONNECTED)
            return
        if self.state != ONLINE:
            self.log.warn("Post ID {id} before Register succeeded; refused", id=request.ID)
            proto.send({"Result": RESULT_NOT_ALLOWED, "ID": request.ID})
            return
        self.counters["posts"] += 1
        self.in_flight += 1
        d = self.dispatcher.dispatch("remote", request.Parameter)
        d.addCallback(self._answer, proto, request.ID)

    def _answer(self, outcome, proto, ident):
        self.in_flight -= 1
        if proto.closing:
            self.log.warn("plugin-center connection gone before the reply to ID {id}; "
                          "{n} after-reply action(s) dropped", id=ident, n=len(outcome.after))
            return
        data, sent = encode_reply(outcome, ident)
        proto.sendString(data)
        sent.run_after()
