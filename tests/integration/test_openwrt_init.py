"""/etc/init.d/cubegw under OpenWrt's real /etc/rc.common and /lib/functions/procd.sh.

The package's payload is laid out in a temporary root beside OpenWrt's own rc.common,
functions.sh, service.sh, procd.sh and libubox's jshn.sh (from OPENWRT_TOOLS/openwrt-base,
``make openwrt-base``; jshn is the real one from OPENWRT_TOOLS/bin).  ``rc.common`` runs
with ``IPKG_INSTROOT`` pointing at that root, under bash as OpenWrt's own image build runs
it, and a recording ``ubus`` in place of the real one: what procd would be told (``ubus
call service set|signal|delete``) is asserted field by field.  Without the tools or the
base files these tests skip, saying which.
"""

import json
import os
import shutil

from twisted.trial.unittest import TestCase

from tests.helpers import openwrt_root

BASH = shutil.which("bash")
CONFIG = "/etc/cubegw/cubegw.yaml"


class InitScriptTests(TestCase):
    """start, reload, stop, enable and disable of the init script, as procd sees them."""

    def setUp(self):
        if BASH is None:
            self.skipTest("no bash")
        base = openwrt_root.base_dir()
        jshn_dir = os.path.dirname(openwrt_root.tool("jshn"))
        self.tmp = os.path.abspath(self.mktemp())
        self.root = os.path.join(self.tmp, "root")
        build_ipk = openwrt_root.load_builder("build_ipk")
        for path, (content, mode) in build_ipk.payload().items():
            dest = os.path.join(self.root, path)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(content)
            os.chmod(dest, mode)
        shutil.copytree(base, self.root, dirs_exist_ok=True)
        for directory in ["var/lock", "etc/rc.d"]:
            os.makedirs(os.path.join(self.root, directory))
        self.log = os.path.join(self.tmp, "ubus.log")
        bin_dir = os.path.join(self.tmp, "bin")
        openwrt_root.recording_ubus(bin_dir, self.log)
        self.others = os.path.join(self.tmp, "other-calls")
        openwrt_root.recording_stubs(bin_dir, self.others, ["logger", "uci", "python3"])
        self.env = {"PATH": os.pathsep.join([bin_dir, jshn_dir, "/usr/bin", "/bin"]),
                    "IPKG_INSTROOT": self.root, "HOME": self.tmp, "LC_ALL": "C"}
        self.script = os.path.join(self.root, "etc/init.d/cubegw")

    def rc(self, action, status=0):
        """``/etc/init.d/cubegw <action>`` through the real rc.common; the ubus calls."""
        done = openwrt_root.run([BASH, os.path.join(self.root, "etc/rc.common"), self.script,
                                 action], env=self.env)
        self.assertEqual(done.returncode, status, done.stdout + done.stderr)
        self.assertEqual(done.stderr, "")
        self.assertFalse(os.path.exists(self.others), "ran commands besides ubus")
        calls = openwrt_root.ubus_calls(self.log)
        if os.path.exists(self.log):
            os.remove(self.log)
        return [(args[:3], json.loads(args[3]) if len(args) > 3 else None, stdin)
                for args, stdin in calls]

    def test_start(self):
        """start: one ``service set`` with the launcher's command line, respawn, env, file."""
        [(call, message, stdin)] = self.rc("start")
        self.assertEqual(call, ["call", "service", "set"])
        self.assertEqual(stdin, "")
        self.assertEqual(message["name"], "cubegw")
        self.assertEqual(message["script"], self.script)
        [(name, instance)] = message["instances"].items()
        self.assertEqual(instance["command"], ["/usr/bin/python3", "-m", "cubegw.daemon",
                                               "--config", CONFIG, "--syslog"])
        # respawn for ever: threshold 3600 s, 5 s apart, no limit on retries
        self.assertEqual(instance["respawn"], ["3600", "5", "0"])
        self.assertEqual(instance["env"], {"PYTHONPATH": "/usr/lib/cubegw"})
        # procd restarts the daemon at the next start when the YAML changed
        self.assertEqual(instance["file"], [CONFIG])
        self.assertEqual((instance["stdout"], instance["stderr"]), (True, True))

    def test_triggers(self):
        """A ``uci commit cubegw`` (config.change of package cubegw) runs reload, 1 s later."""
        [(_, message, _)] = self.rc("start")
        self.assertEqual(message["triggers"], [
            ["config.change", ["if", ["eq", "package", "cubegw"],
                               ["run_script", "/etc/init.d/cubegw", "reload"]], 1000]])

    def test_reload(self):
        """reload: ``service signal`` for cubegw with procd's default signal (SIGHUP)."""
        self.assertEqual(self.rc("reload"),
                         [(["call", "service", "signal"], {"name": "cubegw"}, "")])

    def test_stop(self):
        """stop: ``service delete`` of cubegw."""
        self.assertEqual(self.rc("stop"),
                         [(["call", "service", "delete"], {"name": "cubegw"}, "")])

    def test_enable_disable(self):
        """enable makes S95/K10 links in the root's /etc/rc.d, disable removes them."""
        self.assertEqual(self.rc("enabled", status=1), [])
        self.assertEqual(self.rc("enable"), [])
        rcd = os.path.join(self.root, "etc/rc.d")
        self.assertEqual({n: os.readlink(os.path.join(rcd, n)) for n in os.listdir(rcd)},
                         {"S95cubegw": "../init.d/cubegw", "K10cubegw": "../init.d/cubegw"})
        self.assertEqual(self.rc("enabled"), [])
        self.assertEqual(self.rc("disable"), [])
        self.assertEqual(os.listdir(rcd), [])
