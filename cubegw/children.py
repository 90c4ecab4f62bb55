"""Run ``twistd -n <plugin>`` as a child process and follow its log.

Shared by ``make demo`` and the integration tests: both start the real daemons as
processes, wait for log lines, and stop them with a signal.
"""

import os
import sys

from twisted.internet import defer, protocol

TWISTD = "from twisted.scripts.twistd import run; run()"


class ChildDaemon(protocol.ProcessProtocol):
    """``twistd -n plugin args`` in ``cwd``; ``on_line`` sees each output line as it comes."""

    def __init__(self, reactor, plugin, args, cwd, env=None, on_line=None):
        self.reactor = reactor
        self.plugin, self.args, self.cwd = plugin, list(args), cwd
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.on_line = on_line
        self.output = []
        self.ended = defer.Deferred()
        self._partial = ""
        self._waiters = []

    def start(self):
        argv = [sys.executable, "-c", TWISTD, "-n", "--pidfile=", self.plugin] + self.args
        self.process = self.reactor.spawnProcess(
            self, sys.executable, argv, env=self.env, path=self.cwd)
        return self

    def outReceived(self, data):
        text = self._partial + data.decode("utf-8", "replace")
        *lines, self._partial = text.split("\n")
        for line in lines:
            self.output.append(line + "\n")
            if self.on_line:
                self.on_line(line)
        self._check_waiters()

    errReceived = outReceived

    def processEnded(self, reason):
        if self._partial:
            self.outReceived(b"\n")
        self.exit = reason.value
        self.ended.callback(reason.value)
        for needle, d, _ in self._waiters:
            d.errback(AssertionError(f"{self.plugin} exited before {needle!r}:\n{self.text()}"))
        self._waiters = []

    def text(self):
        return "".join(self.output)

    def wait_for(self, needle, timeout=10, after=0):
        """Fires when ``needle`` appears in the output past line ``after``; fails after ``timeout``."""
        d = defer.Deferred()
        self._waiters.append((needle, d, after))
        self._check_waiters()
        return with_timeout(self.reactor, d, timeout, f"{needle!r} in the {self.plugin} output")

    def _check_waiters(self):
        for entry in list(self._waiters):
            needle, d, after = entry
            if any(needle in line for line in self.output[after:]):
                self._waiters.remove(entry)
                d.callback(None)

    def stop(self, how="TERM"):
        """Signal the daemon (TERM or KILL) and wait for it to exit."""
        if not self.ended.called:
            try:
                self.process.signalProcess(how)
            except Exception:  # already gone: processEnded is on its way
                pass
        return defer.succeed(self.exit) if self.ended.called else self.ended


def with_timeout(reactor, d, timeout, what):
    """``d``, failing with an AssertionError naming ``what`` after ``timeout`` seconds."""
    timer = reactor.callLater(timeout, d.cancel)

    def done(result):
        if timer.active():
            timer.cancel()
        return result

    def timed_out(failure):
        failure.trap(defer.CancelledError)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    return d.addBoth(done).addErrback(timed_out)

