"""The command procd runs: ``python3 -m cubegw.daemon --config FILE [--syslog]``.

It checks what can be checked before twistd starts — the configuration, the identity,
the overrides, and the service tree itself (built with no side effect: a vendor
plugin's duplicate CmdType shows here) — then runs ``twistd -n cubegw`` in this
process.  A failure at any step, before or during the start (the store cannot be
opened, the UDP address cannot be bound, another cubegw holds the lock), is one line
naming cubegw and its reason, at priority err in the system log (``--syslog``) or on
stderr, and exit status 1: no usage dump, no traceback, no respawn loop of silent exits.
"""

import argparse
import sys

from twisted.logger import LogLevel

from cubegw import __version__
from cubegw.config import DEFAULT_CONFIG
from cubegw.syslogging import PRIORITY, send_line


def _parser():
    p = argparse.ArgumentParser(prog="cubegw", description="Run the cubegw gateway agent.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="the YAML configuration")
    p.add_argument("--syslog", action="store_true",
                   help="log to the system log (logd) as 'cubegw', with priorities")
    return p


def main(argv=None, run_twistd=None, report=None):
    """Check, then run twistd; the exit status."""
    args = _parser().parse_args(argv)
    if report is None:
        def report(line):
            if args.syslog:        # ident cubegw: "cubegw[pid]: <line>" at priority err
                send_line(line, PRIORITY[LogLevel.error])
            else:
                sys.stderr.write(f"cubegw: {line}\n")
    try:
        from twisted.python import usage
        from cubegw import tap
        options = tap.Options()
        try:
            options.parseOptions(["--config", args.config])
        except usage.UsageError as e:
            report(str(e))
            return 1
        tap.makeService(options)        # builds only: what cannot be wired is said now
    except Exception as e:
        report(f"cannot start: {e}")
        return 1
    twistd_argv = ["twistd", "-n", "--pidfile="]
    if args.syslog:
        twistd_argv += ["--logger", "cubegw.syslogging.observer"]
    twistd_argv += ["cubegw", "--config", args.config]
    if run_twistd is None:
        from twisted.scripts.twistd import run as run_twistd
    saved, sys.argv = sys.argv, twistd_argv
    try:
        run_twistd()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except Exception as e:
        report(f"cannot start: {e}")
        return 1
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main())
