"""``cubegw-ctl``: the operator's command, working whether the daemon runs or not.

    cubegw-ctl --config FILE status [--json]
    cubegw-ctl --config FILE mgt get [NAME]
    cubegw-ctl --config FILE mgt set NAME VALUE

``status`` reads the status file the daemon rewrites on every change (a running daemon
is first asked, by SIGUSR1, to bring its heartbeat counters up to date).  ``mgt`` reads and
writes X_CT-COM_Mgt in the UCI file; a running daemon re-reads the file (it polls it, and
is sent SIGHUP here so the change applies at once).  Errors: one line, exit status 1.
"""

import argparse
import json
import os
import signal
import sys
import time

from cubegw import __version__
from cubegw.config import DEFAULT_CONFIG, STORE_FILE, ConfigError, load_config
from cubegw.status import pid_alive, read_status, refresh_status
from cubegw.store import Store, StoreError

MGT_NAMES = ("MgtURL", "Port", "Heartbeat", "Ability", "LocatePort", "Version")


def _parser():
    p = argparse.ArgumentParser(prog="cubegw-ctl", description="Operate a cubegw gateway agent.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="the daemon's YAML configuration")
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("status", help="registration state, platforms, last heartbeat, counters")
    st.add_argument("--json", action="store_true", help="print the raw snapshot")
    mgt = sub.add_parser("mgt", help="read or write X_CT-COM_Mgt")
    ops = mgt.add_subparsers(dest="op", required=True)
    get = ops.add_parser("get", help="print one parameter, or all")
    get.add_argument("name", nargs="?", choices=MGT_NAMES)
    put = ops.add_parser("set", help="write one parameter")
    put.add_argument("name", choices=MGT_NAMES)
    put.add_argument("value")
    return p


def main(argv=None, out=sys.stdout):
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "status":
            return _status(config, args.json, out)
        store = Store(os.path.join(config.confdir, STORE_FILE))
        if args.op == "get":
            for problem in store.problems():    # else a bad value shows as its default
                print(f"cubegw-ctl: warning: {problem}", file=sys.stderr)
            values = store.mgt()
            for name in [args.name] if args.name else MGT_NAMES:
                print(f"{name}={values[name]}" if not args.name else values[name], file=out)
            return 0
        os.makedirs(config.confdir, exist_ok=True)
        store.set("mgt", args.name, args.value)
        print(f"{args.name}={store.get('mgt', args.name)}", file=out)
        _notify_daemon(config)
        return 0
    except (ConfigError, StoreError, OSError) as e:
        print(f"cubegw-ctl: {e}", file=sys.stderr)
        return 1


def _notify_daemon(config):
    snapshot = read_status(config.state_dir)
    pid = snapshot and snapshot.get("pid")
    if pid and snapshot.get("running") and pid_alive(pid):
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError:
            pass  # the file poll picks the change up anyway


def _duration(seconds):
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    return (f"{days}d " if days else "") + time.strftime("%H:%M:%S", time.gmtime(rest))


def _status(config, as_json, out):
    snapshot = read_status(config.state_dir)
    if snapshot is None:
        print(f"cubegw-ctl: no status in {config.state_dir}: the daemon has not run", file=sys.stderr)
        return 1
    alive = bool(snapshot.get("running")) and pid_alive(snapshot.get("pid", 0))
    if alive:
        snapshot = refresh_status(config.state_dir, snapshot)
    if as_json:
        print(json.dumps(dict(snapshot, alive=alive), indent=1, sort_keys=True), file=out)
        return 0
    last = snapshot.get("last_heartbeat")
    started, nxt = snapshot.get("started"), snapshot.get("next_attempt")
    error, lan = snapshot.get("last_error"), snapshot.get("lan")
    lines = [
        ("daemon", (f"running (pid {snapshot['pid']})" if alive else "not running")
         + (f", cubegw {snapshot['version']}" if snapshot.get("version") else "")
         + (f", up {_duration(time.time() - started)}" if alive and started else "")),
        ("state", snapshot.get("state")),
        ("device", f"MAC {snapshot.get('mac')} SN {snapshot.get('sn')} WAN {snapshot.get('wan_ip') or '-'}"),
        ("distribution", snapshot.get("distribution") or "-"),
        ("operation", snapshot.get("operation") or "-"),
        ("message server", snapshot.get("message_server") or "-"),
        ("last heartbeat", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last))
         + f" ({time.time() - last:.0f} s ago)" if last else "never"),
        ("counters", " ".join(f"{k}={v}" for k, v in sorted(snapshot.get("counters", {}).items()))),
    ]
    if nxt and alive:
        lines.append(("next attempt", f"in {max(0, nxt['at'] - time.time()):.0f} s "
                                      f"({nxt['state']}, retry {nxt['retry']})"))
    if lan is not None:
        lines.append(("LAN", f"port {lan['port']} on {', '.join(lan['listening']) or 'none'}"))
    for problem in snapshot.get("store_problems") or ():
        lines.append(("store", problem))
    if error:
        lines.append(("last error", time.strftime("%Y-%m-%d %H:%M:%S",
                                                  time.localtime(error["time"]))
                      + f" {error['text']}"))
    for name, value in lines:
        print(f"{name:>15}: {value}", file=out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
