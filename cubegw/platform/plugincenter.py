"""The plugin center (protocol.md section 7): gateways connect over TCP, the platform calls.

``PluginCenterProtocol`` (``pluginconn.py``) only frames: it hands requests (Boot,
Register, Heartbeat, Report) and replies (to Post) to the ``PluginCenter``, which keeps the sessions by MAC, answers the gateway's requests under the fault rules
(server ``plugin_center``), and turns ``call()`` into a ``Post`` whose reply is matched by
ID, with a timer per call, as ``twisted.names`` matches DNS replies.

Idle connections are closed so half-open TCP peers do not pile up: a peer must send
``Boot`` within ``boot_timeout`` (30 s) of connecting, and after that some message
(Heartbeat, a reply to a Post, ...) at least every ``idle_timeout`` (180 s: three of the
gateway's default 60 s heartbeats).  Such a close sends no ``Disconnect``: a live gateway
reconnects with backoff (protocol.md section 7).
"""

import os

from twisted.internet import defer
from twisted.logger import Logger

from cubegw import identity, wire
from cubegw.platform import messagelog
from cubegw.platform.faults import (
    POST_ACTIONS, REGISTER_ACTIONS, REQUEST_ACTIONS, Delayed, on_request, on_send)
from cubegw.platform.origin import public, same_host
from cubegw.platform.pluginconn import SERVER, PluginCenterFactory, PluginCenterProtocol

__all__ = ("PluginCenter", "PluginCenterProtocol", "PluginCenterError", "NotConnected",
           "CallTimeout", "GatewayGone", "SERVER", "TIMEOUT_RESULT")

TIMEOUT_RESULT = -100
#: Seconds a new connection may take to send Boot.
BOOT_TIMEOUT = 30.0
#: Seconds a connection that has sent Boot may stay silent (3 x the default Heartbeat).
IDLE_TIMEOUT = 180.0


class PluginCenterError(Exception):
    """A capability call that could not be made or completed."""


class NotConnected(PluginCenterError):
    """The gateway has no registered plugin-center connection."""


class CallTimeout(PluginCenterError):
    """The gateway did not answer a Post in time (Result -100 for the app)."""

    result = TIMEOUT_RESULT


class GatewayGone(PluginCenterError):
    """The connection closed while the call waited for its reply."""


class _Call:
    """A Post waiting for its reply."""

    __slots__ = ("id", "mac", "connection", "cmd", "deferred", "timer", "done")

    def __init__(self, id, mac, connection, cmd):
        self.id = id
        self.mac = mac
        self.connection = connection
        self.cmd = cmd
        self.deferred = self.timer = None
        self.done = False


class PluginCenter:
    """Sessions by MAC, the gateways' requests, and the platform's capability calls."""

    log = Logger()

    def __init__(self, registry, faults, clock, urandom=os.urandom,
                 boot_timeout=BOOT_TIMEOUT, idle_timeout=IDLE_TIMEOUT, wirelog=None):
        """``boot_timeout``: seconds a new connection has to send Boot; ``idle_timeout``:
        seconds a booted connection may send nothing.  ``None`` or 0 turns one off."""
        for name, value in (("boot_timeout", boot_timeout), ("idle_timeout", idle_timeout)):
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be None or a number of seconds >= 0")
        self.boot_timeout = boot_timeout
        self.idle_timeout = idle_timeout
        self.wirelog = wirelog or messagelog.OFF   # the wire message log
        self.registry = registry
        self.faults = faults
        self.clock = clock
        self.urandom = urandom
        self._sessions = {}      # MAC -> registered PluginCenterProtocol
        self._calls = {}         # ID -> _Call
        self._connections = set()
        self._later = Delayed(clock)
        self._next_id = 1

    # ------------------------------------------------------------ public API

    def factory(self):
        """A protocol factory for a TCP server endpoint."""
        return PluginCenterFactory(self)

    def is_connected(self, mac):
        """True when gateway ``mac`` has a registered connection."""
        return mac in self._sessions

    def connected(self):
        """The MACs with a registered connection, sorted."""
        return sorted(self._sessions)

    def pending_calls(self):
        return len(self._calls)

    def call(self, mac, parameter, plugin_name="", timeout=10):
        """Post ``parameter`` (a capability payload dict) to gateway ``mac``.

        Fires with ``(Result, return_parameter_dict)``; errbacks with ``NotConnected`` at
        once, ``CallTimeout`` after ``timeout`` seconds, ``GatewayGone`` if the connection
        closes first, ``PluginCenterError`` if the payload cannot be sent.
        """
        connection = self._sessions.get(mac)
        if connection is None:
            return defer.fail(NotConnected(f"{mac}: not connected to the plugin center"))
        cmd = parameter.get("CmdType", "?") if isinstance(parameter, dict) else "?"
        post = wire.Post(ID=self._new_id(), Parameter=parameter, Plugin_Name=plugin_name)
        try:
            wire.encode_frame(post)
        except wire.WireError as e:
            return defer.fail(PluginCenterError(f"{mac}: cannot send the Post: {e.reason}"))
        pending = _Call(post.ID, mac, connection, cmd)
        pending.deferred = defer.Deferred(lambda d: self._finish(pending))
        self._calls[pending.id] = pending
        fault = self.faults.decide(mac, "Post", SERVER, POST_ACTIONS)
        delay = on_send(fault, self, pending, post)
        if not pending.done:
            pending.timer = self.clock.callLater(delay + timeout, self._expired, pending,
                                                 timeout)
        return pending.deferred

    def disconnect(self, mac):
        """Send ``Disconnect`` to gateway ``mac`` and close; False if it was not connected."""
        connection = self._sessions.get(mac)
        if connection is None:
            return False
        self._disconnect(connection, "by the platform")
        return True

    def drop(self, mac):
        """Close gateway ``mac``'s connection with no Disconnect (as a failing network
        would: the gateway reconnects with backoff); False if it was not connected."""
        connection = self._sessions.get(mac)
        if connection is None:
            return False
        self.log.info("{mac} plugin connection dropped by the platform", mac=mac)
        connection.abort()
        self._forget(connection, "dropped by the platform")
        return True

    def close_all(self):
        """Close every connection (the service is stopping)."""
        for connection in list(self._connections):
            connection.close()
            self._forget(connection, "the plugin center stopped")
        self._later.cancel_all()

    # ------------------------------------------------------- from connections

    def connection_made(self, connection):
        self._connections.add(connection)
        self.log.info("plugin center: connection from {peer}", peer=connection.peer())
        self._arm_idle_timer(connection)

    def connection_lost(self, connection, reason):
        self._connections.discard(connection)
        if self._forget(connection, "the connection closed"):
            self.log.info("{mac} plugin connection closed", mac=connection.mac)

    def dropped(self, connection, reason):
        self.log.warn("plugin center: dropped a frame from {peer}: {reason}",
                      peer=connection.peer(), reason=reason)

    def request_received(self, connection, request):
        method = request.METHOD
        if method == "Boot" and not connection.booted:
            connection.booted = True
        if connection.booted:
            self._arm_idle_timer(connection)
        supported = REGISTER_ACTIONS if method == "Register" else REQUEST_ACTIONS
        fault = None
        if method != "Report":
            fault = self.faults.decide(request.MAC, method, SERVER, supported)
        on_request(fault, self, request, connection)

    def reply_received(self, connection, msg):
        """A frame with no RPCMethod: the reply to a Post, matched by its ID."""
        try:
            id = wire.as_int(msg.get("ID"), "ID")
        except wire.WireError as e:
            return self.dropped(connection, f"a reply without a usable ID: {e.reason}")
        pending = self._calls.get(id)
        if pending is None or pending.connection is not connection:
            return self.dropped(connection, f"a reply to ID {id}, which no call waits for")
        self._arm_idle_timer(connection)
        self._finish(pending)
        try:
            reply = wire.decode_reply(wire.Post, msg)
        except wire.WireError as e:
            self.log.warn("{mac} Post ID {id} CmdType {cmd}: bad reply: {reason}",
                          mac=pending.mac, id=id, cmd=pending.cmd, reason=e.reason)
            pending.deferred.errback(PluginCenterError(
                f"{pending.mac}: bad reply to Post ID {id}: {e.reason}"))
            return
        self.log.info("{mac} Post ID {id} CmdType {cmd} -> Result {result}", mac=pending.mac,
                      id=id, cmd=pending.cmd, result=reply.Result)
        pending.deferred.callback((reply.Result, reply.return_Parameter or {}))

    # ------------------------- answering (what faults.on_request works through)

    def answer(self, request, connection):
        """Run the request's handler: its ``(reply, note)``, or None when there is nothing
        to send (logged) or the connection is closing."""
        if not connection.open:
            return None
        method = request.METHOD
        reply, note = getattr(self, "handle_" + method)(connection, request,
                                                         self.clock.seconds())
        if reply is None:
            self.log.info("{mac} plugin {method}: {note}", mac=request.MAC, method=method,
                          note=note)
            return None
        return reply, note

    def send_reply(self, request, connection, reply, note):
        connection.send(reply)
        self.log.info("{mac} plugin {method} -> Result {result}{note}", mac=request.MAC,
                      method=request.METHOD, result=reply["Result"],
                      note=f" ({note})" if note else "", reply=public(reply))

    def withhold_reply(self, request, connection, reply, note, fault):
        self.log.info("{mac} plugin {method} -> Result {result}{note}, not sent "
                      "({rule}: {action})", mac=request.MAC, method=request.METHOD,
                      result=reply["Result"], note=f" ({note})" if note else "",
                      rule=fault.rule, action=fault.action)

    def send_result(self, request, connection, fault):
        if connection.open:
            connection.send({"Result": fault.result})
            self.log.info("{mac} plugin {method} -> Result {result} ({rule}: result)",
                          mac=request.MAC, method=request.METHOD, result=fault.result,
                          rule=fault.rule)

    def close_after(self, request, connection, fault):
        if connection.open:
            self._disconnect(connection, f"{fault.rule}: {fault.action}")

    def log_fault(self, request, fault, text):
        self.log.info("{mac} plugin {method}" + text, mac=request.MAC, method=request.METHOD,
                      rule=fault.rule, delay=fault.delay)

    # -------------------------------------------------------------- handlers

    def handle_Boot(self, connection, request, now):
        record = self.registry.get(request.MAC)
        if record is None:
            return {"Result": -1}, "unknown MAC"
        if record.sn and request.SN != record.sn:
            return {"Result": -1}, f"SN {request.SN} is not the registered {record.sn}"
        if connection.registered and connection.mac != request.MAC:
            return {"Result": -1}, f"this connection is registered as {connection.mac}"
        connection.mac = request.MAC
        connection.challenge = identity.new_challenge(self.urandom)
        self.log.debug("{mac} plugin Boot challenge {challenge}", mac=request.MAC,
                       challenge=connection.challenge)
        return {"Result": 0, "ChallengeCode": connection.challenge}, ""

    def handle_Register(self, connection, request, now):
        record = self.registry.get(request.MAC)
        if record is None:
            return {"Result": -1}, "unknown MAC"
        if connection.challenge is None or connection.mac != request.MAC:
            return {"Result": -1}, "no Boot challenge on this connection"
        if request.CheckSN != identity.check_sn(connection.challenge, record.sn or request.SN):
            return {"Result": -1}, "bad CheckSN"
        if not record.registered or not same_host(connection.address(), record.hb_addr):
            # anyone knowing the MAC can make CheckSN: only the registered host may
            return {"Result": -1}, (f"{connection.address()[0]} is not the address of the "
                                    "gateway's operation registration")
        old = self._sessions.get(request.MAC)
        if old is not None and old is not connection:
            old.close()
            self._forget(old, "replaced by a new connection")
        connection.registered = True
        self._sessions[request.MAC] = connection
        return {"Result": 0}, "connected"

    def handle_Heartbeat(self, connection, request, now):
        if not connection.registered or connection.mac != request.MAC:
            return {"Result": -1}, "not registered on this connection"
        return {"Result": 0}, ""

    def handle_Report(self, connection, request, now):
        if request.MAC not in self.registry:
            return None, "report from an unknown MAC dropped"
        if not connection.registered or connection.mac != request.MAC:
            return None, "report from a connection not registered as that MAC dropped"
        self.registry.add_report(request.MAC, request.Parameter, now)
        return None, "report stored"

    # --------------------------------- sending Posts (what faults.on_send works through)

    def send_now(self, pending, post):
        if pending.done:
            return
        if not pending.connection.open:
            return self._fail(pending, GatewayGone(f"{pending.mac}: the connection closed"))
        pending.connection.send(post)
        self.log.info("{mac} Post ID {id} CmdType {cmd} sent", mac=pending.mac,
                      id=pending.id, cmd=pending.cmd, message=post.to_wire())

    def not_sent(self, pending, post, fault):
        self.log.info("{mac} Post ID {id} CmdType {cmd} not sent ({rule}: {action})",
                      mac=pending.mac, id=pending.id, cmd=pending.cmd, rule=fault.rule,
                      action=fault.action)

    def result_instead(self, pending, fault):
        if pending.done:
            return
        self._finish(pending)
        self.log.info("{mac} Post ID {id} CmdType {cmd} -> Result {result} ({rule}: "
                      "result)", mac=pending.mac, id=pending.id, cmd=pending.cmd,
                      result=fault.result, rule=fault.rule)
        pending.deferred.callback((fault.result, {}))

    def later(self, delay, f, *args):
        """Call ``f(*args)`` now, or after ``delay`` seconds (cancelled when stopping)."""
        return self._later.soon(delay, f, *args)

    # --------------------------------------------------------------- helpers

    def _arm_idle_timer(self, connection):
        """(Re)start the timer that closes ``connection`` if its peer stays silent."""
        connection.cancel_idle_timer()
        seconds = self.idle_timeout if connection.booted else self.boot_timeout
        if connection.open and seconds:
            connection.idle_timer = self.clock.callLater(seconds, self._idle, connection,
                                                         seconds)

    def _idle(self, connection, seconds):
        connection.idle_timer = None
        why = ("sent nothing" if connection.booted else "sent no Boot") + f" for {seconds:g} s"
        self.log.warn("plugin center: {peer} {why}; closing", peer=connection.peer(), why=why)
        connection.abort()
        if self._forget(connection, f"the connection was idle ({why})"):
            self.log.info("{mac} plugin connection closed", mac=connection.mac)

    def _expired(self, pending, timeout):
        pending.timer = None
        self.log.warn("{mac} Post ID {id} CmdType {cmd}: no reply within {timeout} s "
                      "-> Result {result}", mac=pending.mac, id=pending.id, cmd=pending.cmd,
                      timeout=timeout, result=TIMEOUT_RESULT)
        self._fail(pending, CallTimeout(
            f"{pending.mac}: no reply to Post ID {pending.id} ({pending.cmd}) within "
            f"{timeout} s"))

    def _fail(self, pending, error):
        self._finish(pending)
        pending.deferred.errback(error)

    def _finish(self, pending):
        """Take ``pending`` out of the waiting calls and stop its timer."""
        pending.done = True
        if pending.timer is not None and pending.timer.active():
            pending.timer.cancel()
        pending.timer = None
        if self._calls.get(pending.id) is pending:
            del self._calls[pending.id]

    def _disconnect(self, connection, why):
        try:
            connection.send(wire.Disconnect())
        except Exception:  # the transport may already be gone
            self.log.failure("{mac}: cannot send Disconnect", mac=connection.mac)
        self.log.info("{mac} plugin Disconnect sent ({why})", mac=connection.mac, why=why)
        connection.close()
        self._forget(connection, f"disconnected {why}")

    def _forget(self, connection, why):
        """Drop the session of ``connection`` and fail its calls; True if it had one."""
        had = self._sessions.get(connection.mac) is connection
        if had:
            del self._sessions[connection.mac]
        connection.registered = False
        for pending in [c for c in self._calls.values() if c.connection is connection]:
            self._fail(pending, GatewayGone(
                f"{pending.mac}: Post ID {pending.id} ({pending.cmd}) failed: {why}"))
        return had

    def _new_id(self):
        id = self._next_id
        self._next_id = id + 1 if id < 2 ** 31 - 1 else 1
        return id
