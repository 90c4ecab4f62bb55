"""The command procd runs (``python3 -m cubegw.daemon --syslog``), as a real process.

A start-up failure is one line at priority err in the system log, under the ident
cubegw (what ``logread -e cubegw`` shows), and exit status 1; the system log here is a
Unix datagram socket the test binds and points the daemon at (CUBEGW_SYSLOG_SOCKET).
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import yaml
from twisted.trial.unittest import TestCase

from tests.helpers.config import gateway_config
from tests.integration.support import ROOT

ERR_DAEMON = 3 * 8 + 3          # facility daemon, priority err


class LauncherTests(TestCase):
    """Start-up failures under the procd command line."""

    timeout = 60

    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        # a socket path must be short (108 bytes): trial's temp dirs are long
        sock_dir = tempfile.mkdtemp(prefix="cubegw-log-")
        self.addCleanup(shutil.rmtree, sock_dir, True)
        self.log_path = os.path.join(sock_dir, "log")
        self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.syslog.bind(self.log_path)
        self.syslog.settimeout(0.2)
        self.addCleanup(self.syslog.close)

    def run_daemon(self, config, seconds=30):
        env = dict(os.environ, PYTHONPATH=ROOT, CUBEGW_SYSLOG_SOCKET=self.log_path)
        return subprocess.run(
            [sys.executable, "-m", "cubegw.daemon", "--config", config, "--syslog"],
            cwd=self.tmp, env=env, capture_output=True, text=True, timeout=seconds)

    def lines(self):
        out = []
        while True:
            try:
                out.append(self.syslog.recv(4096).decode())
            except socket.timeout:
                return out

    def config(self, **changes):
        path = gateway_config(self.tmp, **changes)
        return path

    def test_config_typo_is_one_err_line_and_exit_1(self):
        """A misspelt key: exit 1, and one syslog line at err naming cubegw and the key."""
        path = self.config()
        with open(path) as f:
            raw = yaml.safe_load(f)
        raw["device"]["wan_interfce"] = raw["device"].pop("wan_interface")
        with open(path, "w") as f:
            yaml.safe_dump(raw, f)
        result = self.run_daemon(path)
        self.assertEqual(result.returncode, 1, result.stderr)
        [line] = self.lines()
        self.assertTrue(line.startswith(f"<{ERR_DAEMON}>cubegw["), line)
        self.assertIn("device.wan_interfce: unknown key", line)
        self.assertEqual(result.stdout, "")

    def test_address_that_cannot_be_bound(self):
        """udp_bind on an address this host does not have: one err line, exit 1."""
        result = self.run_daemon(self.config(udp_bind="192.0.2.77"))
        self.assertEqual(result.returncode, 1, result.stderr)
        err = [line for line in self.lines() if line.startswith(f"<{ERR_DAEMON}>")]
        self.assertEqual(len(err), 1, err)
        self.assertIn("cannot start", err[0])
        self.assertIn("192.0.2.77", err[0])

    def test_second_instance_refused(self):
        """While one cubegw holds the state directory's lock, a second exits 1 saying so."""
        from cubegw.instancelock import InstanceLock
        path = self.config()
        with open(path) as f:
            state_dir = yaml.safe_load(f)["state_dir"]
        lock = InstanceLock(state_dir)
        lock.acquire()
        self.addCleanup(lock.stopService)
        result = self.run_daemon(path)
        self.assertEqual(result.returncode, 1, result.stderr)
        err = [line for line in self.lines() if line.startswith(f"<{ERR_DAEMON}>")]
        self.assertEqual(len(err), 1, err)
        self.assertIn("another cubegw", err[0])


class WanWaitTests(TestCase):
    """The launcher waits for a missing WAN device instead of exiting (no respawn loop)."""

    def test_waits_saying_so_once_then_goes_on(self):
        """With device.mac auto and no such device: one warning, a wait per look, and
        the start goes on once the device is there."""
        from cubegw import daemon
        from cubegw.config import parse_config
        config = parse_config("device: {mac: auto, wan_interface: wan0}\n")
        present = iter([{}, {}, {"wan0": []}])
        warnings, sleeps = [], []
        daemon.wait_for_wan(config, warnings.append, lambda: next(present), sleeps.append)
        self.assertEqual(len(warnings), 1)
        self.assertIn("waiting for the WAN device wan0", warnings[0])
        self.assertEqual(sleeps, [daemon.WAN_WAIT, daemon.WAN_WAIT])

    def test_configured_mac_needs_no_device(self):
        """With a configured MAC the WAN device is not needed to start."""
        from cubegw import daemon
        from cubegw.config import parse_config
        config = parse_config("device: {mac: '64D95420214B', wan_interface: wan0}\n")
        daemon.wait_for_wan(config, self.fail, lambda: {}, self.fail)

    def test_hotplug_signal_ends_the_wait(self):
        """SIGUSR2 (what the hotplug script sends through procd) ends the sleep early."""
        import signal
        import threading
        import time
        from cubegw import daemon
        # to this thread (where it is blocked and waited for), as procd's kill reaches the
        # launcher's only thread
        timer = threading.Timer(0.2, signal.pthread_kill,
                                (threading.main_thread().ident, signal.SIGUSR2))
        start = time.monotonic()
        timer.start()
        daemon.sleep_until_signalled(10)
        self.assertLess(time.monotonic() - start, 5)


class TwistdOptionsTests(TestCase):
    """The launcher's twistd knows cubegw alone."""

    def test_no_twistd_plugin_is_loaded(self):
        """``twistd_options`` parses the cubegw command without loading a single twistd
        plugin module (``twistd cubegw`` loads them all: trial, conch, mail...)."""
        probe = ("import sys\n"
                 "from cubegw.daemon import twistd_options\n"
                 "options = twistd_options()()\n"
                 "options.parseOptions(['-n', '--pidfile=', 'cubegw', '--config', sys.argv[1]])\n"
                 "print(options.subCommand, type(options.subOptions).__module__)\n"
                 "print(sorted(m for m in sys.modules if m.startswith('twisted.plugins')))\n")
        tmp = os.path.abspath(self.mktemp())
        os.makedirs(tmp)
        config = gateway_config(tmp)
        out = subprocess.run([sys.executable, "-c", probe, config], cwd=tmp,
                             env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines(), ["cubegw cubegw.tap", "[]"])

    def test_usage_error_is_exit_2(self):
        """An unknown launcher option is said on stderr with the usage, exit status 2."""
        out = subprocess.run([sys.executable, "-m", "cubegw.daemon", "--bogus"],
                             env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 2)
        self.assertIn("--bogus", out.stderr)
        self.assertIn("--config", out.stderr)

    def test_the_checked_tree_is_the_one_run(self):
        """Given the tree the launcher built, twistd's cubegw command reads no
        configuration again and its service is that very tree."""
        from twisted.application.service import MultiService

        from cubegw.daemon import twistd_options
        built = MultiService()
        options = twistd_options(built)()
        options.parseOptions(["-n", "--pidfile=", "cubegw", "--config", "/nonexistent.yaml"])
        maker = options.loadedPlugins[options.subCommand]
        self.assertIs(maker.makeService(options.subOptions), built)

    def test_configuration_read_once(self):
        """The launcher reads the YAML once: the tree it checks is built from the
        configuration it read for the WAN wait."""
        from cubegw import config, daemon, tap
        reads = []
        real = config.load_config

        def counting(path):
            reads.append(path)
            return real(path)
        self.patch(config, "load_config", counting)
        self.patch(tap, "load_config", counting)
        tmp = os.path.abspath(self.mktemp())
        os.makedirs(tmp)
        path = gateway_config(tmp)
        status = daemon.main(["--config", path], run_twistd=lambda: None,
                             report=self.fail, warn=self.fail)
        self.assertEqual((status, reads), (0, [path]))
