"""The README's first command, ``make demo``, runs to the end and exits 0."""

import os
import sys

from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import TestCase

from tests.integration.support import ROOT


class _Collect(protocol.ProcessProtocol):
    def __init__(self):
        self.out = []
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self.out.append(data.decode("utf-8", "replace"))

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback(getattr(reason.value, "exitCode", 0))


class DemoTests(TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_demo_completes(self):
        """The demo walks its flows against the real daemons and stops both cleanly."""
        proc = _Collect()
        env = dict(os.environ, PYTHONPATH=ROOT)
        reactor.spawnProcess(proc, sys.executable, [sys.executable, "-m", "cubegw.demo"],
                             env=env, path=ROOT)
        code = yield proc.ended
        text = "".join(proc.out)
        self.assertEqual(code, 0, text)
        for step in ["sent BootFirst", "RegisterFirst -> Result 0", "registered",
                     "starting: Boot at the stored platform", "Hb -3: registering again",
                     "heartbeat lost", "bound to user demo-user",
                     "registered with the plugin center", "Post ID 1 CmdType QUERY_CPU_INFO",
                     "capability QUERY_MEM_INFO", "demo complete"]:
            self.assertIn(step, text)
