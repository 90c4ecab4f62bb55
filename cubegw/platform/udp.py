"""What the platform's UDP sockets share (protocol.md sections 4-5): ``PlatformProtocol``.

Each DatagramProtocol decodes a datagram with the shared codecs, consults the fault rules,
and hands the typed request to its ``handle_<RPCMethod>`` method, which reads and changes
the registry (in memory; written behind) and returns the reply and a note for the log.
What a fault rule changes about that is ``faults.on_request``'s; this class provides the
steps it is made of (``answer``, ``send_reply``, ...).  Malformed, oversized and
misdirected datagrams are logged and dropped; the port lives on.

The sockets themselves: ``distribution.DistributionProtocol``,
``operation.OperationProtocol`` (with the heartbeats and the reverse triggers), and
``MessageServerProtocol`` below.
"""

import errno
import os
import socket

from twisted.internet import udp
from twisted.internet.protocol import DatagramProtocol

from cubegw import logs, wire
from cubegw.logs import Logger
from cubegw.platform import messagelog
from cubegw.platform.faults import UDP_ACTIONS, Delayed, on_request
from cubegw.platform.origin import public, same_address


#: SO_RCVBUF of the platform's UDP sockets (the kernel may cap it at net.core.rmem_max).
RECEIVE_BUFFER = 4 * 1024 * 1024

#: How an answer is logged (at info, or at debug for a routine heartbeat).
ANSWERED = "{mac} {method} -> Result {result}{note}"

#: The Result of an accepted registration step: such answers, and devices added by
#: ``accept_unknown``, are logged at info up to ``ROUTINE_INFO_LIMIT`` lines a minute per
#: socket, then at debug and counted in one info line (``report_quiet``).  A lab's few
#: gateways still show every step at info; 200,000 gateways registering do not write a
#: million lines (formatting them was half of cubeplat's CPU per registration).
ACCEPTED = {"BootFirst": 0, "RegisterFirst": 0, "Boot": 0, "Register": 2}
ROUTINE_INFO_LIMIT = 100
ROUTINE_WINDOW = 60.0


def fail(result, why):
    """A handler's refusal: the reply ``{"Result": result}`` and why, for the log."""
    return {"Result": result}, why


class PlatformProtocol(DatagramProtocol):
    """Decoding, fault rules, dispatch and logging shared by the platform's UDP sockets.

    ``server`` names the socket for fault rules and logs; ``methods`` are the RPCMethods
    it serves; ``endpoint`` is its key in the configuration.
    """

    server = None
    methods = ()
    endpoint = None
    log = Logger()

    def __init__(self, registry, faults, config, clock, urandom=os.urandom, wirelog=None):
        self.wirelog = wirelog or messagelog.OFF   # the wire message log
        self.registry = registry
        self.faults = faults
        self.config = config
        self.clock = clock
        self.urandom = urandom
        self.counters = {}      # by RPCMethod, "dropped", "unsent": see count
        self._later = Delayed(clock)
        self._sendto = None     # the socket's own sendto, for replies (see reply)
        # routine info lines: ROUTINE_INFO_LIMIT a minute, the rest counted
        self._routine = logs.LineBudget(clock, ROUTINE_INFO_LIMIT, ROUTINE_WINDOW)

    def startProtocol(self):
        """A large receive buffer: a burst of many gateways' datagrams is queued, not lost."""
        try:
            self.transport.getHandle().setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except (AttributeError, OSError) as e:  # a fake transport, or a capped kernel
            self.log.info("{server}: receive buffer left as it is: {error}",
                          server=self.server, error=e)
        if isinstance(self.transport, udp.Port):
            self._sendto = self.transport.getHandle().sendto

    # ------------------------------------------------------------ receiving

    def datagramReceived(self, data, addr):
        if not self.registry.loaded:
            # twistd binds ports (privilegedStartService) before the registry is read
            return self._drop(addr, "the device registry is still loading")
        try:
            msg = wire.decode_datagram(data)
        except wire.WireError as e:
            self.wirelog.inbound(None, self.server, addr, data)
            return self._drop(addr, e.reason)
        if "RPCMethod" not in msg:
            self.wirelog.inbound(self.reply_mac(addr), self.server, addr, data)
            return self.replyReceived(msg, addr)
        self.wirelog.inbound(messagelog.mac_of(msg), self.server, addr, data)
        try:
            request = wire.decode_request(msg, wire.TO_PLATFORM_UDP)
        except wire.WireError as e:
            return self._drop(addr, e.reason)
        if request.METHOD not in self.methods:
            return self._drop(addr, f"{request.METHOD} is not served by the {self.server} "
                                    "platform")
        self.count(request.METHOD)
        fault = self.faults.decide(request.MAC, request.METHOD, self.server, UDP_ACTIONS)
        on_request(fault, self, request, addr)

    def reply_mac(self, addr):
        """The device a reply from ``addr`` is about, for the message log (None: none)."""
        return None

    def replyReceived(self, msg, addr):
        """A datagram with no RPCMethod: nothing here waits for one."""
        self._drop(addr, "a reply, but no request of this platform is waiting for one")

    # -------------------------------- answering (what faults.on_request works through)

    def answer(self, request, addr):
        """Run the request's handler: its ``(reply, note)``, or None (logged) when there
        is nothing to send."""
        mac, method = request.MAC, request.METHOD
        try:
            reply, note = getattr(self, "handle_" + method)(request, addr, self.clock.seconds())
        except Exception:
            self.log.failure("{mac} {method}: the handler failed", mac=mac, method=method)
            return None
        if reply is None:
            self.log.info("{mac} {method}: {note}", mac=mac, method=method, note=note)
            return None
        return reply, note

    def send_reply(self, request, addr, reply, note):
        self.reply(wire.encode_datagram(reply), addr)
        self.wirelog.outbound(request.MAC, self.server, addr, reply)
        self._answered(request.MAC, request.METHOD, reply, note, addr)

    def withhold_reply(self, request, addr, reply, note, fault):
        self.log.info(ANSWERED + ", not sent ({rule}: {action})", mac=request.MAC,
                      method=request.METHOD, result=reply["Result"],
                      note=f" ({note})" if note else "", rule=fault.rule,
                      action=fault.action, reply=public(reply), addr=addr)

    def send_result(self, request, addr, fault):
        self.reply(wire.encode_datagram({"Result": fault.result}), addr)
        self.wirelog.outbound(request.MAC, self.server, addr, {"Result": fault.result})
        self.log.info("{mac} {method} -> Result {result} ({rule}: result)", mac=request.MAC,
                      method=request.METHOD, result=fault.result, rule=fault.rule)

    def log_fault(self, request, fault, text):
        self.log.info("{mac} {method}" + text, mac=request.MAC, method=request.METHOD,
                      rule=fault.rule, delay=fault.delay)

    def later(self, delay, f, *args):
        """Call ``f(*args)`` now, or after ``delay`` seconds (cancelled when stopping)."""
        return self._later.soon(delay, f, *args)

    def _answered(self, mac, method, reply, note, addr):
        """Log a reply sent by a handler (an accepted registration step within the
        minute's ``ROUTINE_INFO_LIMIT`` at info, beyond it at debug)."""
        info = ACCEPTED.get(method) != reply["Result"] or self.routine_info()
        if info or logs.debug_enabled():
            (self.log.info if info else self.log.debug)(
                ANSWERED, mac=mac, method=method, result=reply["Result"],
                note=f" ({note})" if note else "", reply=public(reply), addr=addr)

    def routine_info(self):
        """Whether a routine line may go out at info (else it is counted as quiet)."""
        allowed, quiet = self._routine.take()
        self._report(quiet)             # a new minute: what the last one held back
        return allowed

    def report_quiet(self):
        """One info line for the routine lines logged at debug only since the last one."""
        self._report(self._routine.held_back())

    def _report(self, quiet):
        if quiet:
            self.log.info("{server}: {count} more routine registration lines (accepted "
                          "steps, devices added) at debug only, over {limit} a minute",
                          server=self.server, count=quiet, limit=ROUTINE_INFO_LIMIT)

    # -------------------------------------------------------------- helpers

    def reply(self, data, addr):
        """Send ``data`` back to ``addr``, where a datagram has just come from.

        On a Twisted UDP port this is the socket's ``sendto``: ``Port.write`` would check,
        three times per datagram, that ``addr`` is an IP address, which an address
        ``recvfrom`` gave always is.  Errors as ``Port.write`` has them: ECONNREFUSED (an
        ICMP error left by an earlier datagram) is ignored; EINTR is retried by Python
        itself (PEP 475); any other (EAGAIN with the send buffer full, ...) loses this
        reply, logged and counted in ``counters["unsent"]`` (``Port.write`` raises it,
        and its reader logs the traceback).
        """
        sendto = self._sendto
        if sendto is None:
            if self.transport is not None:
                self.transport.write(data, addr)
            return
        try:
            sendto(data, addr)
        except OSError as e:
            if e.errno == errno.ECONNREFUSED:
                return
            self.count("unsent")
            self.log.warn("{server}: reply to {addr} not sent: {error}",
                          server=self.server, addr=addr, error=e)

    def _send(self, message, addr):
        """Send ``message`` to ``addr`` through the transport (triggers: ``addr`` is a
        stored one)."""
        if self.transport is not None:
            self.transport.write(wire.encode_datagram(message), addr)

    def count(self, key):
        """One more of ``key`` in ``counters`` (a plain dict: a Counter's ``+= 1`` was
        0.25 us, on the heartbeat's path)."""
        self.counters[key] = self.counters.get(key, 0) + 1

    def _drop(self, addr, reason):
        self.count("dropped")
        self.log.warn("{server}: dropped a datagram from {addr}: {reason}",
                      server=self.server, addr=addr, reason=reason)

    def bound_port(self):
        """The port this socket listens on (the configured one when not listening)."""
        get_host = getattr(self.transport, "getHost", None)
        if get_host is not None:
            return get_host().port
        return getattr(self.config, self.endpoint).port

    def stopProtocol(self):
        self._sendto = None
        self._later.cancel_all()
        self.report_quiet()

    def _known(self, request, learn):
        """The device's record and "", or None and why it is refused.

        With ``learn`` (BootFirst, Boot) an unknown MAC is added when ``accept_unknown``,
        and a device with no SN yet takes the one it reports.
        """
        record = self.registry.get(request.MAC)
        if record is None:
            if not (learn and self.config.accept_unknown):
                return None, "unknown MAC"
            record = self.registry.add(request.MAC, sn=request.SN)
            (self.log.info if self.routine_info() else self.log.debug)(
                "{mac} added to the registry (accept_unknown)", mac=request.MAC)
        if not record.sn and learn:
            self.registry.update(record.mac, sn=request.SN)
        elif request.SN != record.sn:
            return None, f"SN {request.SN} is not the registered {record.sn or 'none'}"
        return record, ""

    def _booted(self, record, request, **values):
        """Record what a BootFirst/Boot says about the device."""
        values.update(vendor=request.Vendor, model=request.Model,
                      firmware_version=request.FirmwareVer,
                      hardware_version=request.HardwareVer, wan_ip=request.IPAddr)
        if request.LOID and record.user_id and request.LOID != record.loid:
            # a bound gateway's LOID is what it was bound with (issue 18)
            self.log.warn("{mac} {method}: LOID {loid!r} ignored, the device is bound with "
                          "{bound!r}", mac=record.mac, method=request.METHOD,
                          loid=request.LOID, bound=record.loid)
        elif request.LOID:
            values["loid"] = request.LOID
        self.registry.update(record.mac, **values)

    def handle_Report(self, request, addr, now):
        """A pushed report (deck interface 4): kept per MAC, never answered."""
        record = self.registry.get(request.MAC)
        if record is None:
            return None, "report from an unknown MAC dropped"
        if not record.registered or not same_address(addr, record.hb_addr):
            return None, (f"report from {addr[0]}:{addr[1]}, not the address that "
                          "registered, dropped")
        self.registry.add_report(request.MAC, request.Parameter, now)
        return None, "report stored"

class MessageServerProtocol(PlatformProtocol):
    """A socket of its own for pushed reports, when ``message_server`` has its own port."""

    server = "message_server"
    methods = ("Report",)
    endpoint = "message_server"
