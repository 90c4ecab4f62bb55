"""The LAN cases (protocol.md section 8): the suite plays the phone app on the DUT's LAN
address (``--lan HOST:PORT``, its LocatePort).  The platform does not see this traffic,
so the suite's own exchanges are the evidence (server ``lan``)."""

import socket
import struct
import time

from cubegw import wire
from cubegw.platform.certify.cases import case
from cubegw.platform.certify.engine import CaseFailed, CaseSkipped

ROW = "8: LAN interface"
MAX_CONNECTIONS = 5


class LanClient:
    """One TCP connection to the DUT's LAN port, Int32-framed JSON (blocking)."""

    def __init__(self, ctx, timeout):
        self.ctx = ctx
        host, port = ctx.options["lan"]
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buffer = b""

    def note(self, direction, message):
        self.ctx.cite({"time": time.time(), "direction": direction, "server": "lan",
                       "peer": "%s:%s" % self.ctx.options["lan"], "message": message})

    def send(self, message):
        data = wire.encode_frame(message)
        self.sock.sendall(struct.pack(">I", len(data)) + data)
        shown = dict(message)
        if isinstance(shown.get("Parameter"), str):
            shown["Parameter"] = wire.decode_parameter(shown["Parameter"])
        self.note("out", shown)

    def receive(self):
        """The next frame as a dict; ``CaseFailed`` when the DUT closes or is silent."""
        while True:
            if len(self.buffer) >= 4:
                size = struct.unpack(">I", self.buffer[:4])[0]
                if size > wire.MAX_FRAME:
                    raise CaseFailed(f"the DUT announced a {size}-byte frame")
                if len(self.buffer) >= 4 + size:
                    data, self.buffer = self.buffer[4:4 + size], self.buffer[4 + size:]
                    try:
                        msg = wire.decode_frame(data)
                    except wire.WireError as e:
                        raise CaseFailed(f"the DUT's reply is unreadable: {e.reason}")
                    shown = dict(msg)
                    try:
                        if "return_Parameter" in shown:
                            shown["return_Parameter"] = wire.decode_parameter(
                                shown["return_Parameter"])
                    except wire.WireError:
                        pass
                    self.note("in", shown)
                    return shown
            chunk = self.read()
            if not chunk:
                raise CaseFailed("the DUT closed the connection without a reply")
            self.buffer += chunk

    def read(self):
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            raise CaseFailed(f"no reply within {self.sock.gettimeout():.2f} s")
        except OSError:
            return b""

    def closed_by_peer(self, within):
        """True when the DUT closes this connection within ``within`` seconds."""
        self.sock.settimeout(within)
        try:
            return self.sock.recv(1) == b""
        except socket.timeout:
            return False
        except OSError:          # reset: closed as well
            return True

    def close(self):
        self.sock.close()


def lan(ctx):
    if not ctx.options.get("lan"):
        raise CaseSkipped("needs --lan HOST:PORT, the DUT's LAN address and LocatePort")


def client(ctx):
    try:
        return LanClient(ctx, 5 + ctx.slack)
    except OSError as e:
        raise CaseFailed("cannot connect to the LAN port %s:%s: %s"
                         % (ctx.options["lan"] + (e,)))


def post1(ctx, payload, ident=41, rpc="Post1", **extra):
    """One call on a fresh connection: (reply, the connection, still open)."""
    c = client(ctx)
    c.send(dict({"RPCMethod": rpc, "ID": ident, "Plugin_Name": "certify",
                 "Version": "1.0", "Parameter": wire.encode_parameter(payload)}, **extra))
    return c.receive(), c


@case("s8.post1", ROW + ": Post1, reply as Post, then close", order=4)
def lan_post1(ctx):
    """Post1 is answered as Post (Result 0, its ID, the payload), then the DUT closes."""
    lan(ctx)
    reply, c = post1(ctx, {"CmdType": "GET_VERSION", "SequenceId": "0000A001"}, ident=4711)
    try:
        payload = reply.get("return_Parameter")
        if reply.get("Result") != 0 or reply.get("ID") != 4711 or not isinstance(
                payload, dict) or payload.get("CmdType") != "GET_VERSION" \
                or payload.get("SequenceId") != "0000A001" or payload.get("Status") != "0":
            raise CaseFailed(f"Post1 GET_VERSION answered {reply}")
        if not c.closed_by_peer(1 + ctx.slack):
            raise CaseFailed("the DUT kept the connection open after its reply")
    finally:
        c.close()


@case("s8.post-refused", ROW + ": any other RPCMethod is refused", order=4)
def lan_post_refused(ctx):
    """A Post (the plugin center's method) on the LAN port is refused with -12."""
    lan(ctx)
    reply, c = post1(ctx, {"CmdType": "GET_VERSION", "SequenceId": "0000A002"}, rpc="Post")
    c.close()
    if reply.get("Result") != -12:
        raise CaseFailed(f"a Post on the LAN port answered Result {reply.get('Result')}, "
                         "not -12")


@case("s8.sixth", ROW + ": at most 5 connections; a 6th is closed at once", order=4)
def lan_sixth(ctx):
    """Five idle connections are held; a 6th is closed at once, the five still served."""
    lan(ctx)
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):
            held.append(client(ctx))
        sixth = client(ctx)
        held.append(sixth)
        closed = sixth.closed_by_peer(1 + ctx.slack)
        sixth.note("in", {"closed": closed, "connection": MAX_CONNECTIONS + 1})
        if not closed:
            raise CaseFailed("a 6th connection was kept open while 5 were")
        first = held[0]
        first.send({"RPCMethod": "Post1", "ID": 6, "Plugin_Name": "certify",
                    "Version": "1.0", "Parameter": wire.encode_parameter(
                        {"CmdType": "GET_VERSION", "SequenceId": "0000A006"})})
        reply = first.receive()
        if reply.get("Result") != 0:
            raise CaseFailed(f"one of the five answered {reply}")
    finally:
        for c in held:
            c.close()
        time.sleep(0.2 + ctx.slack)     # the DUT frees the slots


@case("s8.ability", ROW + ": Ability 1 closes the local interface (-12)", order=4)
def lan_ability(ctx):
    """With X_CT-COM_Mgt.Ability 1 (set by a platform Post) every Post1 gets -12."""
    lan(ctx)
    ctx.plugin_connected()
    setting = {"CmdType": "SET_BUSINESS_PLATFORM_PARAM", "SequenceId": "0000A0AB",
               "Ability": "1"}
    result, payload = ctx.client.call(ctx.mac, setting)
    ctx.cite({"time": time.time(), "direction": "out", "server": "plugin_center",
              "message": {"Post": setting, "Result": result, "return_Parameter": payload}})
    if result != 0 or payload.get("Status") != "0":
        raise CaseFailed(f"SET_BUSINESS_PLATFORM_PARAM Ability 1: Result {result}, {payload}")
    try:
        reply, c = post1(ctx, {"CmdType": "GET_VERSION", "SequenceId": "0000A0AC"})
        c.close()
        if reply.get("Result") != -12:
            raise CaseFailed(f"with Ability 1 a Post1 answered Result {reply.get('Result')}")
    finally:
        result, payload = ctx.client.call(ctx.mac, dict(setting, Ability="0"))
    reply, c = post1(ctx, {"CmdType": "GET_VERSION", "SequenceId": "0000A0AD"})
    c.close()
    if reply.get("Result") != 0:
        raise CaseFailed(f"with Ability 0 again a Post1 answered {reply}")


@case("s8.auth", ROW + ": LAN authorization (cubegw's choice, beyond the field)",
      order=4)
def lan_auth(ctx):
    """A call that reveals a secret needs the useradmin password: NEED_AUTH without it."""
    lan(ctx)
    ask = {"CmdType": "GET_HG_LOID", "SequenceId": "0000A0A0"}
    reply, c = post1(ctx, ask)
    c.close()
    payload = reply.get("return_Parameter") or {}
    if reply.get("Result") != 0 or payload.get("Status") != "1" \
            or payload.get("FailReason") != "NEED_AUTH":
        raise CaseFailed(f"GET_HG_LOID without a password answered {reply}")
    password = ctx.client.device(ctx.mac)["record"].get("useradmin_password", "")
    if not password:
        return
    reply, c = post1(ctx, dict(ask, USER="useradmin", PASSWORD=password))
    c.close()
    payload = reply.get("return_Parameter") or {}
    if reply.get("Result") != 0 or payload.get("Status") != "0":
        raise CaseFailed(f"GET_HG_LOID with the useradmin password answered {reply}")


def parse_lan(text):
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host, port); ``ValueError`` otherwise."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        number = int(port)
    except ValueError:
        number = 0
    if not sep or not host or not 1 <= number <= 65535:
        raise ValueError(f"--lan {text!r}: expected HOST:PORT")
    return host, number

