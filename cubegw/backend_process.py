"""A command ``LinuxBackend.run`` runs: its output collected, its end as the result.

Apart from ``cubegw.backend`` so that a running gateway loads it only when a capability
first runs a command (a reload after a SET, a diagnostic, a reboot), not at start.
"""

import os

from twisted.internet import defer, error, protocol


class Collect(protocol.ProcessProtocol):
    """Fires ``deferred`` with (exit code or -signal, stdout, stderr) at the end."""

    def __init__(self, deferred):
        self.deferred = deferred
        self.out, self.err = [], []

    def connectionMade(self):
        self.transport.closeStdin()

    def outReceived(self, data):
        self.out.append(data)

    def errReceived(self, data):
        self.err.append(data)

    def processEnded(self, reason):
        value = reason.value
        code = -value.signal if value.signal else (value.exitCode or 0)
        if not self.deferred.called:  # not cancelled
            self.deferred.callback((code, b"".join(self.out), b"".join(self.err)))


def run(reactor, argv, path):
    """Spawn ``argv`` (no shell) in ``path``: a Deferred of (code, out, err); cancelling
    it kills the command."""
    argv = [os.fsdecode(a) for a in argv]
    spawned = []

    def cancel(_):
        for process in spawned:
            try:
                process.signalProcess("KILL")
            except error.ProcessExitedAlready:
                pass
    d = defer.Deferred(cancel)
    spawned.append(reactor.spawnProcess(
        Collect(d), argv[0], argv, env=dict(os.environ), path=path))
    return d
