"""``cubegw-app``: what the phone app does, from a terminal.

    cubegw-app local  [--host H] [--port N] CMDTYPE [KEY=VALUE ...]    Post1 on the LAN (flow 5)
    cubegw-app bind   --platform URL --token T --password P [--host H]  binding (flow 3)
    cubegw-app remote --platform URL --token T --mac MAC CMDTYPE [KEY=VALUE ...]   (flow 4)

Exit status: 0 when the gateway answered Result 0 and Status "0"; 1 when it answered
otherwise; 2 when it could not be reached or the platform refused the request.  A CLI
may block, so this uses plain sockets and urllib rather than the reactor.
"""

import argparse
import json
import os
import random
import socket
import struct
import sys
import time
import urllib.error
import urllib.request

from cubegw import __version__, wire


class AppError(Exception):
    """The request could not be carried out (exit status 2)."""


def payload_for(cmd_type, pairs):
    """The capability payload: CmdType, a fresh SequenceId, and KEY=VALUE arguments."""
    payload = {"CmdType": cmd_type, "SequenceId": os.urandom(4).hex().upper()}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AppError(f"argument {pair!r} is not KEY=VALUE")
        payload[key] = value
    return payload


# ------------------------------------------------------------------ local (Post1)

def post1(host, port, payload, timeout=10.0):
    """One Post1 on a fresh connection, as the deck's app does; returns the PostReply."""
    request = wire.Post1(ID=random.randint(10_000_000, 99_999_999), Parameter=payload,
                         Plugin_Name=payload["CmdType"])
    data = wire.encode_frame(request)
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(struct.pack("!I", len(data)) + data)
            length = struct.unpack("!I", _read_exactly(s, 4))[0]
            if length > wire.MAX_FRAME:
                raise AppError(f"reply frame of {length} bytes exceeds {wire.MAX_FRAME}")
            reply = wire.decode_frame(_read_exactly(s, length))
    except OSError as e:
        raise AppError(f"cannot talk to the gateway at {host}:{port}: {e}")
    except wire.WireError as e:
        raise AppError(f"malformed reply from the gateway: {e.reason}")
    try:
        return wire.PostReply.from_wire(reply)
    except wire.WireError as e:
        raise AppError(f"malformed reply from the gateway: {e.reason}")


def _read_exactly(s, n):
    chunks = []
    while n:
        chunk = s.recv(n)
        if not chunk:
            raise OSError("connection closed before the reply was complete")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def succeeded(result, payload):
    return result == 0 and isinstance(payload, dict) and payload.get("Status") == "0"


# ---------------------------------------------------------------- the platform API

def api(base, token, method, path, body=None, timeout=70.0):
    """One JSON request to the reference platform's HTTP API; returns (status, json)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {"error": e.reason}
    except (OSError, ValueError) as e:
        raise AppError(f"cannot talk to the platform at {base}: {e}")


def poll_schedule(total=60.0):
    """The deck's polling (6.4 step 6): every 1 s for 10 s, then every 5 s, 60 s in all."""
    t = 0.0
    while t < total:
        t += 1.0 if t < 10 else 5.0
        yield min(t, total)


def wait_connected(base, token, mac, out, clock=time.monotonic, sleep=time.sleep, total=60.0):
    start = clock()
    for at in poll_schedule(total):
        sleep(max(0.0, at - (clock() - start)))
        status, body = api(base, token, "GET", f"/api/gateways/{mac}/connection")
        if status != 200:
            raise AppError(f"platform: {body.get('error', status)}")
        out.write(f"\r  waiting for {mac} to reach the plugin center: {clock() - start:4.0f} s")
        out.flush()
        if body.get("connected"):
            out.write(" connected\n")
            return True
    out.write(" timed out\n")
    return False


# ----------------------------------------------------------------------- commands

def cmd_local(args, out):
    payload = payload_for(args.cmd_type, args.args)
    reply = post1(args.host, args.port, payload, args.timeout)
    return _show(reply.Result, reply.return_Parameter, out)


def cmd_bind(args, out):
    sn_info = post1(args.host, args.port, payload_for("GET_SN_INFO", []), args.timeout)
    _show(sn_info.Result, sn_info.return_Parameter, out)
    if not succeeded(sn_info.Result, sn_info.return_Parameter):
        return 1
    check = post1(args.host, args.port,
                  payload_for("CHECK_PASSWD_PARAM", [f"PassWD={args.password}"]), args.timeout)
    _show(check.Result, check.return_Parameter, out)
    if not succeeded(check.Result, check.return_Parameter):
        return 1
    fields = check.return_Parameter
    status, body = api(args.platform, args.token, "POST", "/api/bind",
                       {"sn": fields.get("SN", ""), "loid": fields.get("LOID", ""),
                        "mac": sn_info.return_Parameter.get("MAC", "")})
    out.write(f"platform bind: HTTP {status} {json.dumps(body)}\n")
    return 0 if status == 200 else 2


def cmd_remote(args, out):
    mac = args.mac.upper()
    status, body = api(args.platform, args.token, "POST", f"/api/gateways/{mac}/connect")
    if status not in (200, 202):
        raise AppError(f"platform refused the connect request: HTTP {status} {body}")
    if not wait_connected(args.platform, args.token, mac, out, total=args.wait):
        raise AppError(f"{mac} did not connect to the plugin center within {args.wait:.0f} s")
    payload = payload_for(args.cmd_type, args.args)
    status, body = api(args.platform, args.token, "POST", f"/api/gateways/{mac}/call",
                       {"parameter": payload, "timeout": args.timeout})
    if status not in (200, 504):
        raise AppError(f"platform refused the call: HTTP {status} {body}")
    return _show(body.get("result"), body.get("return_parameter"), out)


def _show(result, payload, out):
    out.write(f"Result {result}\n")
    if payload is not None:
        out.write(json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
    return 0 if succeeded(result, payload) else 1


def _parser():
    p = argparse.ArgumentParser(prog="cubegw-app", description="The phone app's side of cubegw.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def lan(sp):
        sp.add_argument("--host", default="127.0.0.1", help="the gateway's LAN address")
        sp.add_argument("--port", type=int, default=17998, help="X_CT-COM_Mgt.LocatePort")
        sp.add_argument("--timeout", type=float, default=10.0, help="seconds per call")

    def platform(sp):
        sp.add_argument("--platform", default="http://127.0.0.1:8080",
                        help="base URL of the reference platform's HTTP API")
        sp.add_argument("--token", required=True, help="the app user's API token")

    local = sub.add_parser("local", help="one capability call on the LAN (Post1)")
    lan(local)
    local.add_argument("cmd_type", metavar="CMDTYPE")
    local.add_argument("args", nargs="*", metavar="KEY=VALUE")
    local.set_defaults(run=cmd_local)

    bind = sub.add_parser("bind", help="bind this gateway to the app user (flow 3)")
    lan(bind)
    platform(bind)
    bind.add_argument("--password", required=True, help="useradmin or telecomadmin password")
    bind.set_defaults(run=cmd_bind)

    remote = sub.add_parser("remote", help="a capability call through the platform (flow 4)")
    platform(remote)
    remote.add_argument("--mac", required=True, help="the gateway's MAC")
    remote.add_argument("--timeout", type=float, default=10.0, help="seconds for the call")
    remote.add_argument("--wait", type=float, default=60.0,
                        help="seconds to wait for the plugin connection")
    remote.add_argument("cmd_type", metavar="CMDTYPE")
    remote.add_argument("args", nargs="*", metavar="KEY=VALUE")
    remote.set_defaults(run=cmd_remote)
    return p


def main(argv=None, out=sys.stdout):
    args = _parser().parse_args(argv)
    try:
        return args.run(args, out)
    except AppError as e:
        print(f"cubegw-app: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
