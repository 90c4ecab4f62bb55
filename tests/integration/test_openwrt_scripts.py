"""The small OpenWrt scripts of the package, run with sh against a fake ubus and init
script: the hotplug hook (an interface changed: SIGUSR2 through procd) and the rpcd
exec plugin (`ubus call cubegw status|reload`)."""

import json
import os
import shutil
import stat
import subprocess
import unittest

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SH = shutil.which("sh")


class ScriptTests(SynchronousTestCase):
    """Each script with its absolute paths moved into a temp root."""

    def setUp(self):
        if SH is None:
            raise unittest.SkipTest("no sh")
        self.root = os.path.abspath(self.mktemp())
        self.bin = os.path.join(self.root, "bin")
        os.makedirs(self.bin)
        self.calls = os.path.join(self.root, "calls")
        for name in ("ubus", "cubegw.init"):
            self.executable(os.path.join(self.bin, name),
                            f'#!/bin/sh\necho "{name} $*" >> "{self.calls}"\n')

    def executable(self, path, text):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)

    def script(self, name, replace=()):
        with open(os.path.join(ROOT, "openwrt", "files", name)) as f:
            text = f.read()
        for old, new in replace:
            text = text.replace(old, new)
        path = os.path.join(self.root, name)
        self.executable(path, text)
        return path

    def run_sh(self, path, *args, **env):
        environ = dict(os.environ, PATH=self.bin + os.pathsep + os.environ["PATH"], **env)
        return subprocess.run([SH, path, *args], env=environ, capture_output=True,
                              text=True, timeout=30)

    def recorded(self):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return f.read().splitlines()

    def test_hotplug_signals_on_interface_changes_only(self):
        """ifup, ifupdate and ifdown send procd's signal 12 (SIGUSR2) to cubegw; other
        actions nothing."""
        hook = self.script("cubegw.hotplug")
        for action in ("ifup", "ifupdate", "ifdown", "add", "ifup-failed"):
            self.assertEqual(self.run_sh(hook, ACTION=action, INTERFACE="wan").returncode, 0)
        self.assertEqual(self.recorded(),
                         ['ubus call service signal {"name":"cubegw","signal":12}'] * 3)

    def rpcd(self, yaml_text):
        config = os.path.join(self.root, "cubegw.yaml")
        with open(config, "w") as f:
            f.write(yaml_text)
        return self.script("cubegw.rpcd", [("/etc/cubegw/cubegw.yaml", config),
                                           ("/etc/init.d/cubegw", self.bin + "/cubegw.init")])

    def test_rpcd_list_and_status(self):
        """list names both methods; status prints the snapshot of the configured state_dir
        (quoted or not), or a JSON error before the daemon wrote one."""
        state = os.path.join(self.root, "run state")
        plugin = self.rpcd(f'log_level: info\nstate_dir: "{state}"  # where\n')
        listed = json.loads(self.run_sh(plugin, "list").stdout)
        self.assertEqual(sorted(listed), ["reload", "status"])
        self.assertIn("error", json.loads(self.run_sh(plugin, "call", "status").stdout))
        os.makedirs(state)
        with open(os.path.join(state, "status.json"), "w") as f:
            json.dump({"state": "online", "version": "0.1.0"}, f)
        self.assertEqual(json.loads(self.run_sh(plugin, "call", "status").stdout),
                         {"state": "online", "version": "0.1.0"})

    def test_rpcd_default_state_dir_and_reload(self):
        """Without state_dir in the YAML the default is read; reload runs the init script's
        reload and answers JSON."""
        plugin = self.rpcd("log_level: info\n")
        with open(plugin) as f:
            self.assertIn("/var/run/cubegw", f.read())
        out = json.loads(self.run_sh(plugin, "call", "reload").stdout)
        self.assertEqual(out, {"result": "reloaded"})
        self.assertEqual(self.recorded(), ["cubegw.init reload"])
        self.assertIn("error", json.loads(self.run_sh(plugin, "call", "nope").stdout))
