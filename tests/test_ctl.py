"""cubegw-ctl: mgt get/set on the UCI file and status from the status file."""

import io
import os
import sys

import yaml
from twisted.trial.unittest import SynchronousTestCase

from cubegw.ctl import main
from cubegw.status import StatusFile
from cubegw.store import Store


class CtlTests(SynchronousTestCase):
    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.confdir = os.path.join(self.tmp, "config")
        self.state = os.path.join(self.tmp, "state")
        self.config = os.path.join(self.tmp, "cubegw.yaml")
        with open(self.config, "w") as f:
            yaml.safe_dump({"store": {"confdir": self.confdir}, "state_dir": self.state}, f)
        self.err = io.StringIO()
        self.patch(sys, "stderr", self.err)

    def ctl(self, *args):
        out = io.StringIO()
        code = main(["--config", self.config] + list(args), out=out)
        return code, out.getvalue()

    def test_get_defaults(self):
        """With no store file yet, mgt get prints the X_CT-COM_Mgt defaults."""
        code, out = self.ctl("mgt", "get")
        self.assertEqual(code, 0)
        self.assertEqual(out.splitlines(), [
            "MgtURL=189cube", "Port=12112", "Heartbeat=60", "Ability=0",
            "LocatePort=17998", "Version=1.0"])

    def test_set_then_get(self):
        """mgt set writes the UCI file; mgt get NAME prints the bare value."""
        self.assertEqual(self.ctl("mgt", "set", "Heartbeat", "30"), (0, "Heartbeat=30\n"))
        self.assertEqual(self.ctl("mgt", "get", "Heartbeat"), (0, "30\n"))
        self.assertEqual(Store(os.path.join(self.confdir, "cubegw")).get("mgt", "Heartbeat"), 30)

    def test_get_says_when_a_stored_value_is_invalid(self):
        """A value `uci set` made invalid: mgt get shows the default and says so on stderr."""
        self.ctl("mgt", "set", "Heartbeat", "30")
        path = os.path.join(self.confdir, "cubegw")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("Heartbeat '30'", "Heartbeat 'often'"))
        self.assertEqual(self.ctl("mgt", "get", "Heartbeat"), (0, "60\n"))
        self.assertIn("Heartbeat", self.err.getvalue())
        self.assertIn("using the default", self.err.getvalue())

    def test_bad_value_refused_old_kept(self):
        """A bad value: one line on stderr, exit 1, the stored value unchanged."""
        self.ctl("mgt", "set", "Port", "12113")
        code, out = self.ctl("mgt", "set", "Port", "70000")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("Port", self.err.getvalue())
        self.assertEqual(len(self.err.getvalue().strip().splitlines()), 1)
        self.assertEqual(self.ctl("mgt", "get", "Port"), (0, "12113\n"))

    def test_version_read_only(self):
        """Version cannot be set."""
        self.assertEqual(self.ctl("mgt", "set", "Version", "2.0")[0], 1)
        self.assertIn("read-only", self.err.getvalue())

    def test_status_never_ran(self):
        """status before the daemon ever ran: a clear message, exit 1."""
        self.assertEqual(self.ctl("status"), (1, ""))
        self.assertIn("has not run", self.err.getvalue())

    def test_status_dead_daemon(self):
        """status of a snapshot whose process is gone says "not running"."""
        StatusFile(self.state).write({"pid": 2 ** 22 + 12345, "running": True, "state": "online",
                                      "counters": {"hb_ok": 3}, "last_heartbeat": None}, 0)
        code, out = self.ctl("status")
        self.assertEqual(code, 0)
        self.assertIn("not running", out)
        self.assertIn("online", out)
        self.assertIn("hb_ok=3", out)

    def test_bad_config(self):
        """A config file that does not parse: one line, exit 1."""
        with open(self.config, "w") as f:
            f.write("timing: [1, 2]\n")
        self.assertEqual(self.ctl("status")[0], 1)
        self.assertIn("timing", self.err.getvalue())


class VersionTests(SynchronousTestCase):
    """One version, from cubegw.__version__, in every command and in the package."""

    def test_ctl_and_app_say_their_version(self):
        """cubegw-ctl --version and cubegw-app --version print the package's version."""
        from cubegw import __version__, app
        for command, name in ((main, "cubegw-ctl"), (app.main, "cubegw-app")):
            out = io.StringIO()
            self.patch(sys, "stdout", out)
            e = self.assertRaises(SystemExit, command, ["--version"])
            self.assertEqual(e.code, 0)
            self.assertEqual(out.getvalue().strip(), f"{name} {__version__}")

    def test_package_metadata_reads_the_same_version(self):
        """setup.cfg takes its version from cubegw.__version__ rather than repeating it."""
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        with open(os.path.join(root, "setup.cfg")) as f:
            self.assertIn("version = attr: cubegw.__version__\n", f.read())
