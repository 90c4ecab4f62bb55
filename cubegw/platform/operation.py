"""The operation platform over UDP (protocol.md section 5): Boot, Register, Hb, Report.

It also sends the reverse triggers (``RequestPlug-in``, ``RequestDistri``) from its own
socket to the address the gateway's heartbeats come from, and matches the gateway's
``{"Result": n}`` answers to them by that address, first come first served.

Heartbeats are most of the traffic, so the routine one (a well-formed Hb with FLAG "0"
from a registered device, no fault rule set) takes a short cut past the typed codecs
(``OperationProtocol.routine_hb``), is answered with bytes encoded once, and is logged at
debug only; a summary line at info counts them once a minute.  Anything else about a
heartbeat goes the general way.
"""

import collections
import os
import re
import socket

from twisted.internet import defer, task, udp

from cubegw import identity, logs, wire
from cubegw.logs import Logger
from cubegw.platform.faults import TRIGGER_ACTIONS, on_send
from cubegw.platform.messagelog import CANONICAL_HB, HB_IP
from cubegw.platform.origin import public, same_address, same_host
from cubegw.platform.udp import ANSWERED, PlatformProtocol, fail
from cubegw.wire_codec import scan_json

#: A routine heartbeat spelt as cubegw's gateway and protocol.md spell it
#: (``messagelog.CANONICAL_HB``: compact JSON, keys in the protocol's order, ASCII values
#: without escapes), matched in the datagram read as Latin-1 (one byte, one character: no
#: decoding error, and MAC and IPAddr come out as strings) -> a match with MAC and IPAddr,
#: without building a dict and its strings; what it matches, JSON reads the same, and
#: any other spelling is read as JSON.
_canonical_hb = re.compile(re.escape(CANONICAL_HB) % (
    r"([0-9A-F]{12})", r"([\x20\x21\x23-\x5b\x5d-\x7e]{0,256})")).fullmatch


def _hb_fields_json(data):
    """``(MAC, IPAddr)`` of ``data`` if it is a JSON object with RPCMethod "Hb", FLAG "0",
    MAC and IPAddr strings, IPAddr at most 256 characters; else None (any spelling: the
    routine one is matched by ``_canonical_hb`` first)."""
    try:
        text = data.decode("utf-8")
        # Boot, Register, ...: not parsed twice.  Looked for in the text, not the
        # bytes: bytes' "in" first tries its operand as an int (0.2 us an Hb)
        if '"Hb"' not in text:
            return None
        msg, end = scan_json(text, 0)
    except (ValueError, StopIteration, RecursionError):  # bad UTF-8 is a ValueError
        return None
    if end != len(text) or type(msg) is not dict or msg.get("RPCMethod") != "Hb" \
            or msg.get("FLAG") != "0":
        return None
    mac, ip = msg.get("MAC"), msg.get("IPAddr")
    if type(mac) is not str or type(ip) is not str or len(ip) > 256:
        return None
    return mac, ip


class TriggerError(Exception):
    """A trigger that cannot be sent (unknown device, not registered, no heartbeat yet)."""


class TriggerTimeout(TriggerError):
    """The gateway did not answer a trigger within ``trigger_timeout`` seconds."""


class _Pending:
    """A trigger waiting for the gateway's answer."""

    __slots__ = ("mac", "method", "addr", "deferred", "timer", "done")

    def __init__(self, mac, method, addr):
        self.mac = mac
        self.method = method
        self.addr = addr
        self.deferred = self.timer = None
        self.done = False


class OperationProtocol(PlatformProtocol):
    """The operation platform: Boot, Register, Hb, Report, and the reverse triggers
    (protocol.md section 5)."""

    server = "operation"
    methods = ("Boot", "Register", "Hb", "Report")
    endpoint = "operation"

    #: Seconds between two heartbeat summary lines.
    summary_interval = 60

    def __init__(self, registry, faults, config, clock, urandom=os.urandom, wirelog=None):
        super().__init__(registry, faults, config, clock, urandom, wirelog)
        self._triggers = {}     # (host, port) -> deque of _Pending, oldest first
        self._hb_count = 0              # Hb answered Result 0 since the last summary
        self._hb_gateways = 0           # ... from this many gateways
        self._hb_round = 1              # records marked with it were counted in _hb_gateways
        self._summary = None            # the LoopingCall of the summary line
        self._hb_reply = (None, b"")    # (Interval, the Hb reply encoded)

    def startProtocol(self):
        super().startProtocol()
        self.start_summary()

    # ---------------------------------------------------------- heartbeats

    def datagramReceived(self, data, addr):
        if not self.routine_hb(data, addr):
            self.general_datagram(data, addr)

    def general_datagram(self, data, addr):
        """A datagram that is not a routine heartbeat: decoded, checked and answered
        the general way (``PlatformProtocol``)."""
        super().datagramReceived(data, addr)

    def routine_hb(self, data, addr):
        """Answer ``data`` if it is a routine heartbeat, and say whether it was one.

        Routine: no fault rule at all, the registry loaded, and a JSON object of at most
        ``wire.MAX_DATAGRAM`` bytes with RPCMethod "Hb", FLAG "0", IPAddr a string of at
        most 256 characters and MAC (upper case) of a registered device.  What
        ``handle_Hb`` then does is done in place, the reply is bytes encoded once per
        ``heartbeat_interval``, and the line is at debug.  Anything else (bad input
        included) changes nothing here and returns False: the general path decodes,
        checks, answers and logs it as it does any datagram.
        """
        registry = self.registry
        if not registry.loaded or self.faults.active() or len(data) > wire.MAX_DATAGRAM:
            return False
        match = _canonical_hb(data.decode("latin-1"))
        fields = match.group(1, 2) if match is not None else _hb_fields_json(data)
        if fields is None:
            return False
        mac, ip = fields
        # the registry's keys are MACs the codecs or the configuration checked (upper
        # case), so finding the device is the MAC's check (a regex was 0.4 us an Hb)
        record = registry.get(mac)
        if record is None or not record.registered or not (
                record.hb_addr == addr or same_address(addr, record.hb_addr)):
            return False
        now = self.clock.seconds()
        registry.heartbeat(record, now, addr, ip)
        counters = self.counters        # self.count("Hb") without its call
        counters["Hb"] = counters.get("Hb", 0) + 1
        self._hb_count += 1
        if record.summary_mark != self._hb_round:
            record.summary_mark = self._hb_round
            self._hb_gateways += 1
        interval, answer = self._hb_reply
        if interval != self.config.heartbeat_interval:
            interval = self.config.heartbeat_interval
            answer = wire.encode_datagram({"Result": 0, "Interval": interval})
            self._hb_reply = interval, answer
        self.reply(answer, addr)
        # the log's Device is kept on the record (no lookup by MAC in a second large
        # dict); a WAN IP the record holds already is not a copy
        wirelog, device = self.wirelog, record.log_device
        if device is None:
            device = record.log_device = wirelog.device(record.mac)
        if match is not None:
            wan_ip = record.wan_ip
            wirelog.exchange(device, "operation", record.hb_addr,
                             wan_ip if wan_ip == ip else ip, answer, now, HB_IP)
        else:
            wirelog.exchange(device, "operation", record.hb_addr, data, answer, now)
        if logs.debug_enabled():
            self.log.debug(ANSWERED, mac=mac, method="Hb", result=0, note="",
                           reply={"Result": 0, "Interval": interval}, addr=addr)
        return True

    def _answered(self, mac, method, reply, note, addr):
        if method == "Hb" and reply["Result"] == 0:
            self._hb_count += 1
            record = self.registry.get(mac)
            if record is not None and record.summary_mark != self._hb_round:
                record.summary_mark = self._hb_round
                self._hb_gateways += 1
            if not note:
                self.log.debug(ANSWERED, mac=mac, method=method, result=0, note="",
                               reply=reply, addr=addr)
                return
        super()._answered(mac, method, reply, note, addr)

    def start_summary(self):
        """Log the heartbeat summary every ``summary_interval`` seconds from now on."""
        if self._summary is None:
            self._summary = task.LoopingCall(self.log_summary)
            self._summary.clock = self.clock
            self._summary.start(self.summary_interval, now=False)

    def stop_summary(self):
        if self._summary is not None:
            if self._summary.running:
                self._summary.stop()
            self._summary = None

    def log_summary(self):
        """One info line for the heartbeats answered Result 0 since the last one (none
        when there were none), which are logged one by one at debug only."""
        self.report_quiet()
        count, gateways = self._hb_count, self._hb_gateways
        self._hb_count = self._hb_gateways = 0
        self._hb_round += 1     # counts every gateway anew, without a set of 200k MACs
        if count:
            self.log.info("heartbeats: {count} answered in the last {seconds} s, "
                          "{gateways} gateways", count=count, seconds=self.summary_interval,
                          gateways=gateways)

    # ------------------------------------------------------------- handlers

    def live_elsewhere(self, record, addr, now):
        """Why ``addr`` may not Boot or Register as ``record`` ("" if it may): the device
        is registered from another host and heartbeats (within 3 intervals).  A gateway
        that moved gets in once its old registration has gone silent."""
        if (record.registered and record.hb_addr is not None
                and not same_host(addr, record.hb_addr)
                and record.is_online(now, 3 * self.config.heartbeat_interval)):
            return (f"registered from {record.hb_addr[0]}, which heartbeats; refused "
                    f"from {addr[0]}")
        return ""

    def handle_Boot(self, request, addr, now):
        record, why = self._known(request, learn=True)
        why = why or self.live_elsewhere(record, addr, now)
        if why:
            return fail(-1, why)
        challenge = identity.new_challenge(self.urandom)
        self._booted(record, request, challenge=challenge, registered=False, online=False)
        self.log.debug("{mac} Boot challenge {challenge}", mac=record.mac, challenge=challenge)
        return {"Result": 0, "ChallengeCode": challenge,
                "Interval": self.config.heartbeat_interval, "flag": "1"}, ""

    def handle_Register(self, request, addr, now):
        record, why = self._known(request, learn=False)
        why = why or self.live_elsewhere(record, addr, now)
        if why:
            return fail(-1, why)
        if not record.challenge:
            return fail(-1, "no Boot challenge to check CheckSN against")
        if request.CheckSN != identity.check_sn(record.challenge, record.sn):
            return fail(-1, "bad CheckSN")
        if request.UserID and request.UserID != record.user_id:
            return fail(3, f"UserID {request.UserID!r} is not the bound user "
                            f"{record.user_id!r}")
        # Hb and Report are taken only from the address that registered (hb_addr)
        self.registry.update(record.mac, dev_rnd=request.DevRND, registered=True,
                             hb_addr=tuple(addr[:2]))
        self.log.debug("{mac} Register DevRND {dev_rnd}", mac=record.mac,
                       dev_rnd=request.DevRND)
        message_server = self.message_server_address()
        return {"Result": 2, "UPDATEServer": self.update_server(),
                "MessageServer": "%s:%d" % message_server}, f"from {addr[0]}:{addr[1]}"

    def handle_Hb(self, request, addr, now):
        record = self.registry.get(request.MAC)
        if record is None or not record.registered:
            if record is not None and record.online:
                self.registry.update(record.mac, online=False)
            return fail(-3, "not registered since the last challenge")
        if not same_address(addr, record.hb_addr):
            return fail(-3, f"not the address that registered ({addr[0]}:{addr[1]})")
        self.registry.heartbeat(record, now, addr, request.IPAddr)
        return {"Result": 0, "Interval": self.config.heartbeat_interval}, (
            "first after Register" if request.FLAG == "1" else "")

    # ------------------------------------------------------------ addresses

    def message_server_address(self):
        """(host, port) of MessageServer in Register replies."""
        return (self.config.message_server_host(),
                self.config.message_server.port or self.bound_port())

    def update_server(self):
        return self.config.update_server or self.config.operation.advertised

    # ------------------------------------------------------------- triggers

    def send_request_plugin(self, mac, host, port, key=None):
        """Ask gateway ``mac`` to connect to the plugin center at ``host:port``.

        Fires with the gateway's Result; errbacks with ``TriggerTimeout`` or ``TriggerError``.
        ``key`` replaces the computed Key (a lab testing the gateway's Key check).
        """
        return self._trigger(mac, lambda key: wire.RequestPlugin(
            Key=key, ServerAddr=host, ServerPort=int(port)), key)

    def send_request_distri(self, mac, host, port, mode=None, key=None):
        """Ask gateway ``mac`` to register again with the distribution platform at
        ``host:port`` (``mode`` is sent as given, omitted when None)."""
        return self._trigger(mac, lambda key: wire.RequestDistri(
            Key=key, ServerAddr=host, ServerPort=int(port),
            mode=None if mode is None else str(mode)), key)

    def pending_triggers(self):
        """How many triggers wait for an answer."""
        return sum(len(q) for q in self._triggers.values())

    def _trigger(self, mac, build, key=None):
        record = self.registry.get(mac)
        if record is None:
            return defer.fail(TriggerError(f"{mac}: unknown device"))
        key = key or record.trigger_key()
        if key is None:
            return defer.fail(TriggerError(f"{mac}: not registered (no DevRND for the Key)"))
        if record.hb_addr is None or not record.online:
            return defer.fail(TriggerError(f"{mac}: no heartbeat yet, so no address to "
                                           "send to"))
        if self.transport is None:
            return defer.fail(TriggerError("the operation platform is not listening"))
        message = build(key)
        pending = _Pending(mac, message.METHOD, record.hb_addr)
        pending.deferred = defer.Deferred(lambda d: self._finish(pending))
        self._triggers.setdefault(pending.addr, collections.deque()).append(pending)
        fault = self.faults.decide(mac, message.METHOD, self.server, TRIGGER_ACTIONS)
        delay = on_send(fault, self, pending, message)
        pending.timer = self.clock.callLater(
            delay + self.config.trigger_timeout, self._trigger_expired, pending)
        return pending.deferred

    def send_now(self, pending, message):
        """Send a trigger (unless it was answered or given up meanwhile)."""
        if pending.done:
            return
        self._send(message, pending.addr)
        self.wirelog.outbound(pending.mac, self.server, pending.addr, message)
        self.log.info("{mac} {method} -> {addr[0]}:{addr[1]} (to {host}:{port})",
                      mac=pending.mac, method=pending.method, addr=pending.addr,
                      host=message.ServerAddr, port=message.ServerPort,
                      message=public(message.to_wire()))

    def not_sent(self, pending, message, fault):
        self.log.info("{mac} {method} not sent ({rule}: {action})", mac=pending.mac,
                      method=pending.method, rule=fault.rule, action=fault.action)

    def reply_mac(self, addr):
        queue = self._triggers.get(addr)
        return queue[0].mac if queue else None

    def replyReceived(self, msg, addr):
        queue = self._triggers.get(addr)
        if not queue:
            return self._drop(addr, "a reply, but no trigger to that address waits for one")
        try:
            result = wire.decode_reply(wire.RequestPlugin, msg).Result
            # the trigger answer's fresh DevRND: the next Key is made with it (protocol.md 5)
            dev_rnd = (wire.CONVERTERS["hex32"](msg["DevRND"], "DevRND")
                       if result == 0 and msg.get("DevRND") is not None else None)
        except wire.WireError as e:
            return self._drop(addr, e.reason)
        pending = queue[0]
        self._finish(pending)
        if dev_rnd is not None and self.registry.get(pending.mac) is not None:
            self.registry.update(pending.mac, dev_rnd=dev_rnd)
        self.log.info("{mac} {method} answered: Result {result}", mac=pending.mac,
                      method=pending.method, result=result)
        pending.deferred.callback(result)

    def _trigger_expired(self, pending):
        pending.timer = None
        self._finish(pending)
        self.log.warn("{mac} {method}: no answer within {timeout} s", mac=pending.mac,
                      method=pending.method, timeout=self.config.trigger_timeout)
        pending.deferred.errback(TriggerTimeout(
            f"{pending.mac}: no answer to {pending.method} from "
            f"{pending.addr[0]}:{pending.addr[1]} within {self.config.trigger_timeout} s"))

    def _finish(self, pending):
        """Take ``pending`` out of the waiting list and stop its timer."""
        pending.done = True
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        pending.timer = None
        queue = self._triggers.get(pending.addr)
        if queue is not None:
            if pending in queue:
                queue.remove(pending)
            if not queue:
                del self._triggers[pending.addr]

    def stopProtocol(self):
        super().stopProtocol()
        self.stop_summary()
        for queue in list(self._triggers.values()):
            for pending in list(queue):
                self._finish(pending)
                pending.deferred.errback(TriggerError("the operation platform stopped"))


class HeartbeatPort(udp.Port):
    """The operation platform's UDP port: its read loop offers each datagram to the
    protocol's ``routine_hb`` and the rest to ``general_datagram``.

    Twisted's loop (``udp.Port.doRead``) is 0.4 us a datagram over a plain loop of
    ``recvfrom`` calls on this machine (2.5% of what a heartbeat costs the platform in
    all), and one more call to reach the short cut.  What it does otherwise is kept: at
    most ``maxThroughput`` bytes a wake-up, IPv6 addresses cut to (host, port), the
    errors it ignores or reports as refused, and a failing datagram logged without
    stopping the loop.
    """

    log = Logger()

    def doRead(self):
        protocol = self.protocol
        routine, general = protocol.routine_hb, protocol.general_datagram
        recvfrom, size, limit = self.socket.recvfrom, self.maxPacketSize, self.maxThroughput
        ipv6 = self.addressFamily == socket.AF_INET6
        read = 0
        while read < limit:
            try:
                data, addr = recvfrom(size)
            except OSError as e:
                if e.args[0] in udp._sockErrReadRefuse and self._connectedAddr:
                    protocol.connectionRefused()
                elif e.args[0] not in udp._sockErrReadIgnore + udp._sockErrReadRefuse:
                    raise
                return
            read += len(data)
            if ipv6:
                addr = addr[:2]
            try:
                if not routine(data, addr):
                    general(data, addr)
            except BaseException:
                self.log.failure("operation: a datagram from {addr} failed", addr=addr)
