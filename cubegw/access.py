"""The UDP transport that drives the registration machine (protocol.md sections 4-6).

One socket serves the whole session, so the reverse triggers the operation platform
sends to the heartbeat's source address arrive here.  This module only translates:
datagrams into machine events, machine commands into datagrams, timers and effects.
Malformed, oversized and stray datagrams are logged and dropped; the port lives on.
"""

from twisted.internet import defer
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.protocol import DatagramProtocol

from cubegw import logs, wire
from cubegw import registration as reg
from cubegw.logs import Logger


def is_address(host):
    """Whether ``host`` is an IPv4 or IPv6 literal (it needs no resolver)."""
    return isIPAddress(host) or isIPv6Address(host)


def resolver_for(reactor):
    """A ``resolve(host) -> Deferred[ip]`` that never blocks: literals pass, names use the reactor."""
    def resolve(host):
        if is_address(host):
            return defer.succeed(host)
        return reactor.resolve(host)
    return resolve


class AccessProtocol(DatagramProtocol):
    """Feeds datagrams and timer ticks to ``machine`` and carries out its commands.

    ``effects`` provides ``store_operation_platform(host, port)``, ``reset_app_data()``,
    ``connect_plugin(host, port)`` and ``changed()`` (called after every event).
    """

    log = Logger()

    def __init__(self, machine, clock, resolve, effects):
        self.machine = machine
        self.clock = clock
        self.resolve = resolve
        self.effects = effects
        self.dropped = 0
        self._drop_logged_at = None  # clock time of the last "dropped" log line
        self._drops_unlogged = 0
        self._timer = None
        self._reply_from = None      # resolved (ip, port) the pending request went to
        self._operation_from = None  # resolved (ip, port) of the operation platform
        self._sends = 0              # Send commands so far: a later one supersedes
        self._encoded = (None, b"")  # the last request written and its bytes
        self._decoded = (None, None) # the last datagram decoded and its dict (read-only)

    # ----------------------------------------------------------- events in

    def start(self, wan_ip, stored_operation):
        self._run(self.machine.start(wan_ip, stored_operation))

    def stop(self):
        self._cancel_timer()
        self.machine.stop()

    def next_event(self):
        """Clock time the machine's timer runs out (a retry, the next Hb), or None."""
        timer = self._timer
        return timer.getTime() if timer is not None and timer.active() else None

    def wan_ip_changed(self, wan_ip):
        self._run(self.machine.wan_ip_changed(wan_ip))

    def datagramReceived(self, data, addr):
        last, msg = self._decoded
        if data != last:             # the platform's Hb reply is the same bytes each time
            try:
                msg = wire.decode_datagram(data)
            except wire.WireError as e:
                return self._drop(addr, e.reason)
            self._decoded = (data, msg)
        try:
            if "RPCMethod" in msg:
                method = msg["RPCMethod"]
                if not isinstance(method, str) or method not in wire.TO_GATEWAY_UDP:
                    return self._drop(addr, f"unexpected RPCMethod {method!r:.40}")
                from_operation = addr == self._operation_from
                commands = self.machine.trigger_received(
                    msg, addr, self.clock.seconds(), from_operation)
                if not from_operation:
                    # counted by the machine; logged rate-limited, and no status-file
                    # write per datagram, so a spoofed flood is not amplified
                    return self._drop(addr, "trigger from an address that is not the "
                                            "operation platform")
            else:
                commands = self._reply(msg, addr)
        except wire.WireError as e:
            return self._drop(addr, e.reason)
        self._run(commands)

    def _reply(self, msg, addr):
        """A datagram with no RPCMethod: the pending request's reply if it is in that
        request's own form, else, from the operation platform, maybe a trigger follow-up
        (protocol.md 5); ``WireError`` for a stray."""
        pending = self.machine.pending
        if pending is not None and addr == self._reply_from:
            try:
                commands = self.machine.reply_received(msg)
            except wire.WireError:
                if addr != self._operation_from:
                    raise
            else:
                if not self.machine.routine:
                    self.log.info("received {method} reply: Result {result}",
                                  method=pending.METHOD, result=msg.get("Result"))
                elif logs.debug_enabled():
                    self.log.debug("received {method} reply: Result {result}",
                                   method=pending.METHOD, result=msg.get("Result"))
                return commands
        if addr != self._operation_from:
            raise wire.WireError("stray reply: no request is waiting for it")
        return self.machine.followup_received(msg, self.clock.seconds())

    def _fire(self):
        self._timer = None
        self._run(self.machine.timer_fired())

    def send_report(self, host, port, report):
        """One Report datagram to the MessageServer, from the session socket."""
        def write(ip):
            if self.transport is not None:
                self.transport.write(wire.encode_datagram(report), (ip, port))
                self.log.info("sent Report to the message server {host}:{port}",
                              host=host, port=port)

        def failed(reason):
            self.log.warn("Report dropped: cannot resolve {host}: {error}", host=host,
                          error=reason.getErrorMessage())
        self.resolve(host).addCallbacks(write, failed)

    # -------------------------------------------------------- commands out

    def _run(self, commands):
        """Carry out ``commands``, then tell ``effects`` whether the event was routine
        (the machine says: an Hb sent or answered 0, only counters changed)."""
        for command in commands:
            _ACTIONS[type(command)](self, command)
        self.effects.changed(routine=self.machine.routine)

    def _do_Send(self, cmd):
        """Write the request to the platform's address: at once for an address literal
        (the heartbeat's usual case: no Deferred), after the resolver for a name."""
        self._reply_from = None
        self._sends += 1
        host = cmd.host
        if is_address(host):
            return self._write_request(cmd, host, self._sends)

        def failed(reason):
            self.log.warn("cannot resolve {host}: {error}; the reply timer will retry",
                          host=host, error=reason.getErrorMessage())
        seq = self._sends
        self.resolve(host).addCallbacks(lambda ip: self._write_request(cmd, ip, seq), failed)

    def _write_request(self, cmd, ip, seq):
        """Send ``cmd``'s request to ``ip`` unless a later Send, a reply timeout or a stop
        came first (``seq`` is the Send's number)."""
        if seq != self._sends or self.machine.pending is None or self.transport is None:
            return  # superseded while the name was resolving
        message = cmd.message
        self._reply_from = (ip, cmd.port)
        if cmd.target == reg.OPERATION:
            self._operation_from = self._reply_from
        last, data = self._encoded
        if message is not last:            # the machine reuses an unchanged Hb
            data = wire.encode_datagram(message)
            self._encoded = (message, data)
        self.transport.write(data, self._reply_from)
        if message.METHOD != "Hb":
            self.log.info("sent {method} to the {target} platform {host}:{port}",
                          method=message.METHOD, target=cmd.target, host=cmd.host,
                          port=cmd.port)
        elif logs.debug_enabled():
            self.log.debug("sent {method} to the {target} platform {host}:{port}",
                           method=message.METHOD, target=cmd.target, host=cmd.host,
                           port=cmd.port)

    def _do_SetTimer(self, cmd):
        """Arm the one timer.  An armed call is moved (``reset``), not cancelled and
        replaced: moved sooner (the reply timeout becoming the wait for the next Hb at
        short intervals) it leaves nothing behind, where a cancelled call still wakes the
        reactor at its time; moved later, the reactor passes by once at the old time."""
        timer = self._timer
        if timer is not None and timer.active():
            timer.reset(cmd.delay)
        else:
            self._timer = self.clock.callLater(cmd.delay, self._fire)

    def _do_StoreOperationPlatform(self, cmd):
        self.effects.store_operation_platform(cmd.host, cmd.port)

    def _do_ResetAppData(self, cmd):
        self.effects.reset_app_data()

    def _do_ConnectPlugin(self, cmd):
        self.effects.connect_plugin(cmd.host, cmd.port)

    def _do_AnswerTrigger(self, cmd):
        if self.transport is not None:
            self.transport.write(wire.encode_datagram(cmd.message()), cmd.address)

    def _do_Note(self, cmd):
        emit = {"info": self.log.info, "warn": self.log.warn, "error": self.log.error}
        text = cmd.event + (" {fields}" if cmd.fields else "")
        emit[cmd.level](text, fields=cmd.fields)

    # -------------------------------------------------------------- helpers

    def _cancel_timer(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    DROP_LOG_INTERVAL = 1.0      # s: at most one "dropped" line this often (log flood)

    def _drop(self, addr, reason):
        """Count and log a dropped datagram; under a flood, one line per interval."""
        self.dropped += 1
        now = self.clock.seconds()
        if self._drop_logged_at is not None and now - self._drop_logged_at < self.DROP_LOG_INTERVAL:
            self._drops_unlogged += 1
            return
        more, self._drops_unlogged = self._drops_unlogged, 0
        self._drop_logged_at = now
        self.log.warn("dropped a datagram from {addr}: {reason}" +
                      (" ({more} more dropped, not logged)" if more else ""),
                      addr=addr, reason=reason, more=more)


#: What each of the machine's commands does (a type -> method table: no name built per command).
_ACTIONS = {command: getattr(AccessProtocol, "_do_" + command.__name__) for command in (
    reg.Send, reg.SetTimer, reg.StoreOperationPlatform, reg.ResetAppData, reg.ConnectPlugin,
    reg.AnswerTrigger, reg.Note)}
