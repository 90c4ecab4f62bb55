"""``make demo``: the gateway against the reference platform on 127.0.0.1, step by step.

Starts ``twistd cubeplat`` and ``twistd cubegw`` as real processes in a scratch
directory with the protocol's timings scaled down, walks through the flows that exist
so far, prints every protocol step of both sides as it happens, and stops both.
Exit status 0 when every flow completed, 1 otherwise.
"""

import os
import re
import shutil
import socket
import sys
import tempfile
import time

import yaml
from twisted.internet import defer, task, utils

from cubegw.children import ChildDaemon

MAC = "02AB54DE0001"
USER, TOKEN = "demo-user", "demo-token-0001"
ACCOUNTS = {"useradmin": "demo-admin", "telecomadmin": "demo-telecom"}
WIFI = {"ssid": "ChinaNet-DEMO", "password": "demo-wifi-pw"}
_LINE = re.compile(r"^\S+ \[(?P<ns>[^\]#]+)(?:#(?P<level>\w+))?\] (?P<text>.*)$")


def free_port(kind=socket.SOCK_DGRAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    def __init__(self, reactor, workdir, out=sys.stdout):
        self.reactor = reactor
        self.workdir = workdir
        self.out = out
        self.t0 = time.monotonic()
        self.dist_port = free_port()
        self.oper_port = free_port()
        self.api_port = free_port(socket.SOCK_STREAM)
        self.lan_port = free_port(socket.SOCK_STREAM)
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.gateway = self.platform = None
        self._cursor = 0

    # ------------------------------------------------------------- output

    def say(self, text=""):
        self.out.write(text + "\n")
        self.out.flush()

    def heading(self, text):
        self.say()
        self.say(f"== {text}")

    def _printer(self, who):
        def on_line(line):
            m = _LINE.match(line)
            if not m:
                if line.startswith(("Traceback", "  File", "builtins.")) or "Error" in line:
                    self.say(f"{self._stamp()} {who:8} ! {line}")
                return
            ns, level, text = m.group("ns"), m.group("level"), m.group("text")
            if not ns.startswith("cubegw") and level not in ("error", "critical"):
                return
            mark = {"warn": "!", "error": "!!", "critical": "!!"}.get(level, "|")
            self.say(f"{self._stamp()} {who:8} {mark} {text}")
        return on_line

    def _stamp(self):
        return f"{time.monotonic() - self.t0:7.2f}s"

    # ------------------------------------------------------------ configs

    def write_configs(self, faults=()):
        platform = {
            "distribution": {"host": "127.0.0.1", "port": self.dist_port},
            "operation": {"host": "127.0.0.1", "port": self.oper_port},
            "plugin_center": {"host": "127.0.0.1", "port": 0},
            "api": {"host": "127.0.0.1", "port": self.api_port},
            "users": [{"user_id": USER, "token": TOKEN}],
            "heartbeat_interval": 2, "trigger_timeout": 2,
            "db": os.path.join(self.workdir, "cubeplat.db"), "flush_delay": 0.2,
            "devices": [{"mac": MAC, "loid": "0755DEMO01", "wifi_ssid": WIFI["ssid"],
                         "wifi_password": WIFI["password"],
                         "useradmin_password": ACCOUNTS["useradmin"],
                         "telecomadmin_password": ACCOUNTS["telecomadmin"]}],
            "faults": list(faults),
            "log_level": "debug",   # the demo shows every heartbeat and call
        }
        gateway = {
            "device": {"mac": MAC, "sn": "auto", "loid": "0755DEMO01", "vendor": "cubegw",
                       "model": "demo", "wan_interface": "lo"},
            "accounts": ACCOUNTS, "wifi": WIFI,
            "store": {"confdir": os.path.join(self.workdir, "config")},
            "state_dir": os.path.join(self.workdir, "state"),
            "udp_bind": "127.0.0.1",
            "lan": {"addresses": ["127.0.0.1"]},
            "log_level": "debug",
            "timing": {"boot_jitter": 0.5, "retry_initial": 0.5, "retry_factor": 2,
                       "retry_max": 4, "silence": 5, "reply_timeout": 1, "hb_timeout": 2,
                       "wan_check": 1, "store_check": 0.5},
        }
        self.platform_config = self._dump("cubeplat.yaml", platform)
        self.gateway_config = self._dump("cubegw.yaml", gateway)

    def _dump(self, name, data):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            yaml.safe_dump(data, f)
        return path

    # ---------------------------------------------------------- processes

    @defer.inlineCallbacks
    def start_platform(self, faults=()):
        self.write_configs(faults)
        self.platform = ChildDaemon(self.reactor, "cubeplat", ["--config", self.platform_config],
                                    self.workdir, on_line=self._printer("platform")).start()
        yield self.platform.wait_for("cubeplat ready")

    def start_gateway(self):
        self.gateway = ChildDaemon(
            self.reactor, "cubegw",
            ["--config", self.gateway_config, "--mgt-url", "127.0.0.1",
             "--port", str(self.dist_port)],
            self.workdir, on_line=self._printer("gateway")).start()
        self._cursor = 0
        return self.gateway

    @defer.inlineCallbacks
    def wait_gateway(self, needle, count=1, timeout=20):
        """Wait for ``needle`` to appear ``count`` times in the gateway's log past the cursor.

        The cursor moves past each match, so a sequence of waits follows the log in order.
        """
        deadline = time.monotonic() + timeout
        for _ in range(count):
            while not self._advance(needle):
                if time.monotonic() > deadline or self.gateway.ended.called:
                    raise AssertionError(f"the gateway did not log {needle!r} in time")
                yield task.deferLater(self.reactor, 0.05, lambda: None)

    def _advance(self, needle):
        for i in range(self._cursor, len(self.gateway.output)):
            if needle in self.gateway.output[i]:
                self._cursor = i + 1
                return True
        return False

    @defer.inlineCallbacks
    def app(self, *args):
        """Run cubegw-app as the phone app would, showing its command line and output."""
        self.say(f"{self._stamp()} app      $ cubegw-app {' '.join(args)}")
        out, err, code = yield utils.getProcessOutputAndValue(
            sys.executable, ["-m", "cubegw.app"] + list(args), env=dict(os.environ),
            path=self.workdir, reactor=self.reactor)
        for line in (out + err).decode("utf-8", "replace").splitlines():
            if line.strip():
                self.say(f"{self._stamp()} app      > {line.rstrip()}")
        if code != 0:
            raise AssertionError(f"cubegw-app {args[0]} exited with {code}")

    def ctl(self, *args):
        from cubegw.ctl import main
        import io
        out = io.StringIO()
        code = main(["--config", self.gateway_config] + list(args), out=out)
        self.say(f"           $ cubegw-ctl {' '.join(args)}")
        for line in out.getvalue().splitlines():
            self.say("           " + line)
        return code

    def ctl_status(self):
        from cubegw.ctl import main
        import io
        out = io.StringIO()
        main(["--config", self.gateway_config, "status"], out=out)
        for line in out.getvalue().splitlines():
            self.say("           " + line)

    # --------------------------------------------------------------- flows

    @defer.inlineCallbacks
    def run(self):
        self.say("cubegw demo: gateway and reference platform on 127.0.0.1, timings scaled down")
        self.say(f"LAN interface tcp/{self.lan_port}, platform HTTP API {self.api}")
        self.say(f"scratch directory {self.workdir}")
        self.heading(f"Reference platform: distribution udp/{self.dist_port}, "
                     f"operation udp/{self.oper_port}")
        yield self.start_platform()

        self.heading("Flow 1: first registration "
                     "(BootFirst -> RegisterFirst -> Boot -> Register -> Hb FLAG 1 -> Hb)")
        self.ctl("mgt", "set", "LocatePort", str(self.lan_port))
        self.start_gateway()
        yield self.wait_gateway("registered")
        yield self.wait_gateway("received Hb reply", count=3)
        self.say("-- cubegw-ctl status:")
        self.ctl_status()

        self.heading("Flow 2: reboot: Boot at the stored operation platform, no distribution")
        yield self.gateway.stop()
        self.start_gateway()
        yield self.wait_gateway("registered")
        yield self.wait_gateway("received Hb reply", count=1)

        self.heading("Fault: the platform restarts (registry kept in SQLite) and answers "
                     "one Hb with -3 -> the gateway registers again (Boot)")
        yield self.platform.stop()
        yield self.start_platform(faults=[{"mac": MAC, "message": "Hb", "result": -3,
                                           "count": 1}])
        yield self.wait_gateway("Hb -3")
        yield self.wait_gateway("registered")
        yield self.wait_gateway("received Hb reply", count=1)

        self.heading("Fault: the operation platform stops answering -> three lost "
                     "heartbeats -> register again (Boot)")
        yield self.platform.stop()
        yield self.start_platform(faults=[{"mac": MAC, "message": "Hb", "no_reply": True,
                                           "count": 3}])
        yield self.wait_gateway("heartbeat lost", timeout=30)
        yield self.wait_gateway("registered")
        yield self.wait_gateway("received Hb reply", count=1)

        lan = ["--host", "127.0.0.1", "--port", str(self.lan_port)]
        web = ["--platform", self.api, "--token", TOKEN]
        self.heading("Flow 3: binding: GET_SN_INFO and CHECK_PASSWD_PARAM on the LAN, "
                     "then the platform binds SN + LOID to the app user")
        yield self.app("bind", *lan, *web, "--password", ACCOUNTS["useradmin"])

        self.heading("Flow 4: remote configuration: app -> platform -> RequestPlug-in -> "
                     "gateway joins the plugin center -> Post -> result")
        yield self.app("remote", *web, "--mac", MAC, "QUERY_CPU_INFO")
        yield self.app("remote", *web, "--mac", MAC, "QUERY_SYSTEM_INFO")

        self.heading("Flow 5: local configuration: Post1 on the LAN, reply, connection closed")
        yield self.app("local", *lan, "QUERY_MEM_INFO")
        yield self.app("local", *lan, "SET_BUSINESS_PLATFORM_PARAM", "HeartBeat=2",
                       "MgtURL=NULL", "Port=", "Ability=", "LocalPort=")
        self.ctl("mgt", "get", "Heartbeat")
        yield self.gateway.stop()
        yield self.platform.stop()
        self.say()
        self.say("demo complete: both daemons stopped cleanly")


def main(argv=None):
    workdir = tempfile.mkdtemp(prefix="cubegw-demo-")

    def run(reactor):
        demo = Demo(reactor, workdir)
        d = demo.run()

        def failed(reason):
            demo.say(f"\ndemo FAILED: {reason.getErrorMessage()}")
            stops = [p.stop("KILL") for p in (demo.gateway, demo.platform) if p]
            return defer.DeferredList(stops).addCallback(lambda _: sys.exit(1))
        return d.addErrback(failed)

    try:
        task.react(run)
    finally:
        if not os.environ.get("CUBEGW_DEMO_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

