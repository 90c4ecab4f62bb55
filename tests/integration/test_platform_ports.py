"""``twistd cubeplat`` with a port already taken on 127.0.0.1: exit status 1, no
traceback, the last line naming the key and the address (twistd's usage error form)."""

import os
import socket
import sys

from twisted.internet import utils, reactor
from twisted.trial.unittest import TestCase

from tests.integration.support import ROOT, scratch_dir

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")


class TakenPortTests(TestCase):
    timeout = 60

    def run_platform(self, *args):
        tmp = scratch_dir(self)
        return utils.getProcessOutputAndValue(
            TWISTD, ["-n", "--pidfile", "", "cubeplat", "--db", os.path.join(tmp, "p.db"),
                     "--distribution-port", "0", "--operation-port", "0",
                     "--plugin-center-port", "0", "--api-port", "0"] + list(args),
            env={"PYTHONPATH": ROOT, "PATH": os.environ.get("PATH", "")}, path=tmp,
            reactor=reactor)

    def taken(self, kind):
        s = socket.socket(socket.AF_INET, kind)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            s.listen()
        return str(s.getsockname()[1])

    def check(self, outcome, key, port):
        out, err, code = outcome
        text = (out + err).decode()
        self.assertEqual(code, 1, text)
        self.assertNotIn("Traceback", text)
        last = [line for line in text.splitlines() if line.strip()][-1]
        self.assertIn(f"{key}: 127.0.0.1:{port} is taken", last)   # twistd's usage error

    def test_api_port_taken(self):
        """A taken HTTP API port stops cubeplat at once: exit 1 and a line naming api.port."""
        port = self.taken(socket.SOCK_STREAM)
        return self.run_platform("--api-port", port).addCallback(
            self.check, "api.port", port)

    def test_udp_port_taken(self):
        """A taken operation port: exit 1 and one line naming operation.port."""
        port = self.taken(socket.SOCK_DGRAM)
        return self.run_platform("--operation-port", port).addCallback(
            self.check, "operation.port", port)
