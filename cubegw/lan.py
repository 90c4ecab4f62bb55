"""The LAN interface for the phone app (protocol.md section 8): ``Post1`` on LocatePort.

``LanProtocol`` only frames, decodes and encodes; the capability work and every rule of a
call (Ability, rights, accounts, the time limit) are the dispatcher's
(``dispatch(side, parameter, source) -> Deferred`` firing an ``Outcome``, never failing;
``source`` is the client's address, which the LAN authorization rules key on).  One
request per connection: the reply goes out, the connection is closed, and the
after-reply actions (reboot, factory reset) run once it is gone, so the reply has left
the gateway first.  ``LanServer`` listens on each configured LAN address
only, never on a wildcard, and moves when X_CT-COM_Mgt.LocatePort changes.
"""

import ipaddress
import socket

from twisted.application import service
from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall

from cubegw import wire
from cubegw.capabilities.base import PENDING, fired
from cubegw.capabilities.dispatch import RESULT_NOT_ALLOWED, encode_reply, request_id
from cubegw.framing import Int32Receiver
from cubegw.logs import Logger

WILDCARDS = frozenset(["", "*", "0.0.0.0", "::", "0:0:0:0:0:0:0:0", "::0"])

_log = Logger()


def listen_tcp(reactor, port, address, factory):
    """Listen on one LAN address, IPv4 or IPv6 (``fe80::1%br-lan`` included): a Deferred,
    as a TCP server endpoint's ``listen`` gives (``listenTCP`` takes both families, and
    twisted.internet.endpoints would cost a running gateway ~0.3 MiB)."""
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    return defer.execute(reactor.listenTCP, port, factory, interface=bare)


def is_wan_address(address, wan_ip):
    """Whether ``address`` is the WAN interface's address ``wan_ip`` (None: unknown).

    A loopback WAN address (a lab on ``lo``) faces no WAN, so it is never refused.
    """
    if not wan_ip:
        return False
    try:
        wan = ipaddress.ip_address(str(wan_ip))
        bare = str(address).strip().strip("[]").split("%", 1)[0]
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return ip == wan and not wan.is_loopback


def is_wildcard(address):
    """Whether binding ``address`` would listen on every interface (so also the WAN).

    Catches the spellings the kernel accepts for "any": ``0.0.0.0`` and its short
    forms (``0``, ``0.0``), every IPv6 form of ``::`` (``::0``, ``0::0``, ``[::]``,
    with a zone), the IPv4-mapped ``::ffff:0.0.0.0``, ``*`` and the empty string.
    """
    text = str(address).strip().lower()
    if text in WILDCARDS:
        return True
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    bare = bare.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        mapped = getattr(ip, "ipv4_mapped", None)
        return ip.is_unspecified or bool(mapped and mapped.is_unspecified)
    try:                            # inet_aton's legacy forms: "0", "0.0", "0x0", "00.0.0"
        return socket.inet_aton(bare) == b"\0\0\0\0"
    except (OSError, ValueError):
        return False


class LanProtocol(Int32Receiver):
    """One phone-app connection: one ``Post1`` in, one reply out, then close."""

    MAX_LENGTH = wire.MAX_FRAME
    log = Logger()

    def __init__(self):
        self._request_seen = False
        self._sent = None            # the Outcome answered: its actions run once we are gone
        self._gone = False
        self._deadline = None        # clock time the request must be complete by, or None

    host = None                      # the client's address (LanFactory.buildProtocol)
    _expires = None                  # clock time the idle timer runs out, or None
    _for_deadline = False            # the idle timer runs out at the request deadline

    def setTimeout(self, period):
        """(Re)start the idle timer for ``period`` s, or stop it (None): TimeoutMixin's
        one timer, without twisted.protocols.policies (~0.1 MiB in a running gateway).
        The factory's one DelayedCall runs every connection's (``LanFactory.wake_at``):
        none is made, moved and cancelled per connection."""
        self._idle_period = period
        if period is None:
            self._expires = None
        else:
            self._arm()

    def resetTimeout(self):
        if self._expires is not None:
            self._arm()

    def _arm(self):
        """The idle period from now, cut short by the request deadline while one runs:
        one expiry per connection serves both."""
        now = self.factory.clock.seconds()
        left = None if self._deadline is None else self._deadline - now
        self._for_deadline = left is not None and left < self._idle_period
        self._expires = now + (max(0.0, left) if self._for_deadline else self._idle_period)
        self.factory.wake_at(self._expires)

    def _idle(self):
        """The idle timer ran out (``LanFactory``'s timer says so)."""
        self._expires = None
        if self._for_deadline and self._deadline is not None and not self._request_seen:
            return self._request_too_slow()
        self.timeoutConnection()

    def connectionMade(self):
        # The idle timeout restarts on every byte, so a client dribbling one byte a
        # second would hold one of the five slots for ever (slowloris): the whole
        # request must also arrive within request_timeout.
        self._deadline = self.factory.clock.seconds() + self.factory.request_timeout
        self.setTimeout(self.factory.idle_timeout)

    def _request_too_slow(self):
        self._deadline = None
        if not self._request_seen and not self._gone:
            self.log.warn("LAN client {peer} did not complete a request in {timeout} s; "
                          "aborting", peer=self._peer(), timeout=self.factory.request_timeout)
            self.transport.abortConnection()

    def _cancel_deadline(self):
        """The request is in (or the connection over): only the idle timeout is left."""
        self._deadline = None

    def dataReceived(self, data):
        if self._request_seen or self._gone:
            return                   # one request per connection; the rest is ignored
        Int32Receiver.dataReceived(self, data)
        if not self._request_seen:   # bytes came: the idle timer restarts (a request read
            self.resetTimeout()      # has its timer set by its answer, or none meanwhile)

    def lengthLimitExceeded(self, length):
        self.log.warn("LAN client {peer} announced a {length}-byte frame (limit {limit}); "
                      "closing", peer=self._peer(), length=length, limit=self.MAX_LENGTH)
        self._close()

    def timeoutConnection(self):
        if self._request_seen:
            self.log.warn("LAN client {peer} does not take its reply; aborting",
                          peer=self._peer())
        else:
            self.log.info("LAN client {peer} sent nothing for {timeout} s; closing",
                          peer=self._peer(), timeout=self.factory.idle_timeout)
        self.transport.abortConnection()

    def stringReceived(self, data):
        if self._request_seen:
            return
        try:
            msg = wire.decode_frame(data)
        except wire.WireError as e:
            # protocol.md 3: an unreadable frame is dropped, the connection stays (its
            # idle and request deadlines still run); only an over-limit length closes it
            self.log.warn("LAN client {peer}: frame dropped: {reason}", peer=self._peer(),
                          reason=e.reason)
            return
        self._request_seen = True
        self._cancel_deadline()
        if msg.get("RPCMethod") != "Post1":
            self.log.warn("LAN client {peer}: RPCMethod {method!r:.40} refused",
                          peer=self._peer(), method=msg.get("RPCMethod"))
            ident = request_id(msg)
            return self._reply({"Result": RESULT_NOT_ALLOWED, "ID": 0 if ident is None else ident})
        try:
            request = wire.decode_request(msg, wire.TO_GATEWAY_LAN)
        except wire.WireError as e:
            self.log.warn("LAN client {peer}: bad Post1: {reason}; closing",
                          peer=self._peer(), reason=e.reason)
            return self._close()
        # the peer's address as the factory noted it (getPeer builds a new one per call)
        d = self.factory.dispatcher.dispatch("local", request.Parameter, source=self.host)
        outcome = fired(d)
        if outcome is not PENDING:
            # most calls are answered at once: the idle timer then runs on into _close,
            # which moves it, rather than being cancelled here and made anew there
            return self._answer(outcome, request.ID)
        self.setTimeout(None)        # the dispatcher's own time limit applies now
        d.addCallback(self._answer, request.ID)

    def _answer(self, outcome, ident):
        if self._gone:
            self.log.warn("LAN client {peer} left before its reply (ID {id}); "
                          "{n} after-reply action(s) dropped",
                          peer=self._peer(), id=ident, n=len(outcome.after))
            return
        data, self._sent = encode_reply(outcome, ident)
        self.sendString(data)
        self._close()

    def _reply(self, message):
        self.sendString(wire.encode_frame(message))
        self._close()

    def _close(self):
        """Close after the buffered reply is written; abort if the client will not read it."""
        self._request_seen = True
        self._cancel_deadline()
        self.setTimeout(self.factory.idle_timeout)
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self._gone = True
        self.setTimeout(None)
        self._cancel_deadline()
        self.factory.released(self)
        sent, self._sent = self._sent, None
        if sent is not None:
            sent.run_after()

    def _peer(self):
        peer = self.transport.getPeer() if self.transport else None
        return f"{peer.host}:{peer.port}" if hasattr(peer, "host") else str(peer)


class LanFactory(Factory):
    """Builds ``LanProtocol``s; refuses a connection beyond ``max_connections`` unread."""

    noisy = False

    protocol = LanProtocol
    log = Logger()

    def __init__(self, dispatcher, clock, idle_timeout=10.0, max_connections=5,
                 request_timeout=None):
        self.dispatcher = dispatcher
        self.clock = clock
        self.idle_timeout = idle_timeout
        # a request must be complete this long after connecting (default 2 x idle)
        self.request_timeout = (2 * idle_timeout if request_timeout is None
                                else request_timeout)
        self.max_connections = max_connections
        self.active = set()
        self.refused = 0

    def buildProtocol(self, addr):
        host = getattr(addr, "host", addr)
        if len(self.active) >= self.max_connections and not self._evict_for(host):
            self.refused += 1
            self.log.warn("LAN connection from {peer} refused: {n} connections already open",
                          peer=host, n=len(self.active))
            return None              # the port closes the socket at once, nothing is read
        proto = Factory.buildProtocol(self, addr)
        proto.host, proto.opened = host, self.clock.seconds()
        self.active.add(proto)
        return proto

    def _evict_for(self, host):
        """Free a slot for ``host`` if another host holds more slots than it and one of
        them is still waiting for its request (slow or idle): the oldest of those is
        aborted.  So one host's slow connections cannot deny the interface to others,
        while five prompt connections from one host are still served (protocol.md 8)."""
        held = {}
        for p in self.active:
            held[p.host] = held.get(p.host, 0) + 1
        mine = held.get(host, 0)
        waiting = [p for p in self.active if held[p.host] > mine + 1
                   and not p._request_seen and not p._gone]
        if not waiting:
            return False
        victim = min(waiting, key=lambda p: (-held[p.host], p.opened))
        self.active.discard(victim)
        self.log.warn("LAN client {peer} still waiting for its request: closed to serve "
                      "{host} ({n} slots held by its host)", peer=victim.host, host=host,
                      n=held[victim.host])
        victim.transport.abortConnection()
        return True

    def released(self, proto):
        self.active.discard(proto)
        if not self.active and self._timer is not None:
            self._timer, timer = None, self._timer
            timer.cancel()              # nothing left to time out: no wake-up

    _timer = None                    # the one DelayedCall of every connection's timeout
    _timer_due = None                # the clock time it was set for

    def wake_at(self, when):
        """Have the timer run by ``when``, a connection's timeout.  Later ones need
        nothing: at each run it times out what is due and waits for the next."""
        if self._timer is None:
            self._timer_due = when
            self._timer = self.clock.callLater(max(0.0, when - self.clock.seconds()),
                                               self._expire)
        elif when < self._timer_due:
            self._timer_due = when
            self._timer.reset(max(0.0, when - self.clock.seconds()))

    def _expire(self):
        # due: the time the call was set for (clock.seconds() may be an ulp short of it)
        self._timer, due = None, max(self.clock.seconds(), self._timer_due)
        timed = sorted((p for p in self.active if p._expires is not None),
                       key=lambda p: p._expires)
        for proto in timed:
            if proto._expires > due:
                self.wake_at(proto._expires)
                break
            try:                        # one failing leaves the others' timeouts running
                proto._idle()
            except Exception:
                self.log.failure("LAN client {peer}: timing out failed", peer=proto.host)


class LanServer(service.Service):
    """Listens for the phone app on each LAN address at X_CT-COM_Mgt.LocatePort."""

    log = Logger()

    def __init__(self, addresses, store, dispatcher, reactor, idle_timeout=10.0,
                 max_connections=5, check_interval=None, wan_ip=lambda: None):
        """``wan_ip()``: the WAN interface's address now (None: unknown); a LAN address
        equal to it is refused (issue 18 point 6)."""
        self.addresses = tuple(addresses)
        self.wan_ip = wan_ip
        self.store = store
        self.reactor = reactor
        self.factory = LanFactory(dispatcher, reactor, idle_timeout, max_connections)
        self.check_interval = check_interval
        self.ports = []
        self.port_number = None
        self._loop = None
        self._lock = defer.DeferredLock()    # one listen/unlisten change at a time

    def startService(self):
        super().startService()
        self._listen()
        if self.check_interval:
            self._loop = LoopingCall(self.relisten)
            self._loop.clock = self.reactor
            self._loop.start(self.check_interval, now=False)

    def stopService(self):
        super().stopService()
        if self._loop is not None:
            self._loop, loop = None, self._loop
            loop.stop()
        return self._lock.run(self._unlisten)

    def relisten(self, force=False):
        """Move to the current LocatePort if it changed (or always, with ``force``)."""
        def move():
            if not self.running:
                return None
            if not force and self.store.get("mgt", "LocatePort") == self.port_number:
                return None
            self.log.info("LocatePort is now {port}; moving the LAN listener",
                          port=self.store.get("mgt", "LocatePort"))
            d = self._unlisten()
            d.addCallback(lambda _: self._listen())
            return d
        return self._lock.run(move).addErrback(
            lambda f: self.log.failure("moving the LAN listener failed", f))

    def _listen(self):
        self.port_number = port = self.store.get("mgt", "LocatePort")
        wanted = []
        wan_ip = self.wan_ip()
        for address in self.addresses:
            if is_wildcard(address):
                self.log.error("LAN address {address!r} is a wildcard; not listening there "
                               "(the LAN interface must never face the WAN)", address=address)
            elif is_wan_address(address, wan_ip):
                self.log.error("LAN address {address!r} is the WAN interface's address; not "
                               "listening there (the LAN interface must never face the WAN)",
                               address=address)
            else:
                wanted.append(address.strip())
        if not wanted:
            self.log.warn("no LAN address configured (lan.addresses): the local Post1 "
                          "interface is not served")
        for address in wanted:
            d = listen_tcp(self.reactor, port, address, self.factory)
            d.addCallbacks(self._listening, self._not_listening,
                           callbackArgs=(address, port), errbackArgs=(address, port))

    def _listening(self, listening_port, address, port):
        self.ports.append(listening_port)
        self.log.info("LAN interface listening on {address}:{port}", address=address, port=port)

    def _not_listening(self, reason, address, port):
        self.log.error("cannot listen on {address}:{port}: {error}",
                       address=address, port=port, error=reason.value)

    def _unlisten(self):
        ports, self.ports = self.ports, []
        return defer.gatherResults(
            [defer.maybeDeferred(p.stopListening) for p in ports]).addCallback(lambda _: None)
