"""The command procd runs: ``python3 -m cubegw.daemon --config FILE [--syslog]``.

It checks what can be checked before twistd starts — the configuration, the identity,
the overrides, and the service tree itself (built with no side effect: a vendor
plugin's duplicate CmdType shows here) — then runs ``twistd -n cubegw`` in this
process (twistd's runner, with cubegw as its only command: ``twistd_options``).  A
failure at any step, before or during the start (the store cannot be opened, the UDP
address cannot be bound, another cubegw holds the lock), is one line naming cubegw and
its reason, at priority err in the system log (``--syslog``) or on
stderr, and exit status 1: no usage dump, no traceback, no respawn loop of silent exits.
"""

import signal
import sys

from twisted.logger import LogLevel
from twisted.python import usage

from cubegw import __version__
from cubegw.config import DEFAULT_CONFIG


class LauncherOptions(usage.Options):
    """``cubegw [--config FILE] [--syslog]`` (twistd's own parser: no argparse to load)."""

    synopsis = "Usage: python3 -m cubegw.daemon [--config FILE] [--syslog]"
    longdesc = "Run the cubegw gateway agent."
    optParameters = [["config", "c", DEFAULT_CONFIG, "the YAML configuration"]]
    optFlags = [["syslog", None, "log to the system log (logd) as 'cubegw', with priorities"]]

    def opt_version(self):
        """Print the version and exit."""
        print(f"cubegw {__version__}")
        sys.exit(0)


def twistd_options(built=None):
    """twistd's options class knowing cubegw as its only command.

    ``twistd cubegw`` first loads every twistd plugin installed (Twisted's own trial,
    conch, mail, words...) to list its commands: about 1 MiB and 30 ms a router never
    uses.  Same options, same runner, one command.  With ``built`` (the service tree the
    launcher checked), twistd runs that tree instead of reading the configuration and
    building it again.
    """
    from twisted.application.service import ServiceMaker
    from twisted.scripts.twistd import ServerOptions
    # the same maker as twisted/plugins/cubegw_plugin.py, without importing the
    # plugin package (which would load twisted.plugin)
    maker = ServiceMaker("cubegw", "cubegw.tap",
                         "Smart home gateway agent (G2/G4 interfaces)", "cubegw")
    if built is not None:
        maker = _Prebuilt(maker, built)

    class CubegwServerOptions(ServerOptions):
        @property
        def subCommands(self):
            self.loadedPlugins = {maker.tapname: maker}
            yield (maker.tapname, None, lambda: maker.options(), maker.description)

    return CubegwServerOptions


class _BuiltOptions(usage.Options):
    """The cubegw command's options once the launcher has read them: nothing to do."""

    optParameters = [["config", "c", DEFAULT_CONFIG, "the YAML configuration (read)"]]


class _Prebuilt:
    """A twistd service maker whose service is the tree the launcher built."""

    def __init__(self, maker, built):
        self.tapname, self.description = maker.tapname, maker.description
        self.built = built

    def options(self):
        return _BuiltOptions()

    def makeService(self, options):
        return self.built


def run_twistd_cubegw(built=None):
    """Run twistd (``sys.argv`` as its command line) with ``twistd_options``."""
    from twisted.application import app
    from twisted.scripts.twistd import runApp
    app.run(runApp, twistd_options(built))


#: The signals the daemon handles once running; until then they must not kill it (the
#: default action of each): hotplug may send SIGUSR2 while it starts or waits.
HANDLED_LATER = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
WAN_WAIT = 30.0                 # s between two looks for a missing WAN device


def sleep_until_signalled(seconds, signum=signal.SIGUSR2):
    """Sleep ``seconds`` or until ``signum`` (hotplug: an interface appeared)."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, [signum])
    try:
        signal.sigtimedwait([signum], seconds)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def wait_for_wan(config, warn, net_if_addrs=None, sleep=sleep_until_signalled):
    """With ``device.mac: auto`` the MAC is the WAN device's: wait until it exists
    (a USB modem, a late driver), saying so once, instead of exiting and being respawned
    in a loop.  OpenWrt's hotplug wakes the wait (SIGUSR2); else a look every 30 s."""
    if config.device.mac != "auto":
        return
    if net_if_addrs is None:
        import psutil
        net_if_addrs = psutil.net_if_addrs
    said = False
    while config.device.wan_interface not in net_if_addrs():
        if not said:
            warn(f"waiting for the WAN device {config.device.wan_interface} "
                 "(device.wan_interface) to appear")
            said = True
        sleep(WAN_WAIT)


def main(argv=None, run_twistd=None, report=None, warn=None, net_if_addrs=None,
         sleep=sleep_until_signalled):
    """Check, then run twistd; the exit status."""
    args = LauncherOptions()
    try:
        args.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        sys.stderr.write(f"cubegw: {e}\n{args}")
        return 2

    def say(priority):
        def line(text):
            if args["syslog"]:        # ident cubegw: "cubegw[pid]: <text>"
                # loaded when used: without --syslog the daemon never needs it
                from cubegw.syslogging import PRIORITY, send_line
                send_line(text, PRIORITY[priority])
            else:
                sys.stderr.write(f"cubegw: {text}\n")
        return line
    report = report or say(LogLevel.error)
    warn = warn or say(LogLevel.warn)
    for signum in HANDLED_LATER:
        signal.signal(signum, signal.SIG_IGN)
    try:
        from cubegw import tap
        from cubegw.config import ConfigError, load_config
        options = tap.Options()
        try:
            options.loaded = load_config(args["config"])     # read once (~2 ms of YAML)
            wait_for_wan(options.loaded, warn, net_if_addrs, sleep)
        except ConfigError:
            pass                           # the options below say what is wrong
        try:
            options.parseOptions(["--config", args["config"]])
        except usage.UsageError as e:
            report(str(e))
            return 1
        # built with no side effect: what cannot be wired is said now, and twistd runs
        # this same tree
        built = tap.makeService(options)
    except Exception as e:
        report(f"cannot start: {e}")
        return 1
    twistd_argv = ["twistd", "-n", "--pidfile="]
    if args["syslog"]:
        twistd_argv += ["--logger", "cubegw.syslogging.observer"]
    twistd_argv += ["cubegw", "--config", args["config"]]
    if run_twistd is None:
        def run_twistd():
            run_twistd_cubegw(built)
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
