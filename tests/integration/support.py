"""Real processes and real loopback sockets for the integration tests.

``Daemon`` runs ``twistd -n <plugin>`` from this source tree as a child process;
``UdpPeer`` is a scripted platform on 127.0.0.1 that queues what it receives.
"""

import json
import os
import signal
import sys

import yaml
from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAC = "02AB54000001"


def gateway_config(tmpdir, **extra):
    """A cubegw YAML config for loopback with timings scaled down; returns its path."""
    config = {
        "device": {"mac": MAC, "sn": "auto", "loid": "0755000001", "vendor": "cubegw",
                   "model": "loopback", "wan_interface": "lo"},
        "accounts": {"useradmin": "admin1", "telecomadmin": "telecom1"},
        "wifi": {"ssid": "ChinaNet-TEST", "password": "wifipass"},
        "store": {"confdir": os.path.join(tmpdir, "config")},
        "state_dir": os.path.join(tmpdir, "state"),
        "udp_bind": "127.0.0.1",
        "timing": {"boot_jitter": 0.2, "retry_initial": 0.2, "retry_factor": 2,
                   "retry_max": 2, "silence": 3, "reply_timeout": 0.5, "hb_timeout": 1,
                   "wan_check": 0.5, "store_check": 0.2},
    }
    for key, value in extra.items():
        if isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    path = os.path.join(tmpdir, "cubegw.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f)
    return path


class Daemon(protocol.ProcessProtocol):
    """``twistd -n`` of this tree as a child; ``output`` collects its log, ``ended`` fires on exit."""

    def __init__(self, plugin, args, cwd):
        self.output = []
        self.ended = defer.Deferred()
        self.plugin, self.args, self.cwd = plugin, args, cwd
        self._waiters = []

    def start(self):
        env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
        argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "-n", "--pidfile=", self.plugin] + self.args
        self.process = reactor.spawnProcess(self, sys.executable, argv, env=env, path=self.cwd)
        return self

    def outReceived(self, data):
        self.output.append(data.decode("utf-8", "replace"))
        self._check_waiters()

    errReceived = outReceived

    def processEnded(self, reason):
        self.exit = reason.value
        self.ended.callback(reason.value)
        self._check_waiters()

    def text(self):
        return "".join(self.output)

    def wait_for_output(self, needle, timeout=10):
        """A Deferred firing when ``needle`` appears in the output (fails after ``timeout``)."""
        d = defer.Deferred()
        self._waiters.append((needle, d))
        self._check_waiters()
        return _with_timeout(d, timeout, f"{needle!r} in the daemon's output:\n{self.text()}")

    def _check_waiters(self):
        text = self.text()
        for needle, d in list(self._waiters):
            if needle in text:
                self._waiters.remove((needle, d))
                d.callback(text)

    def stop(self, sig=signal.SIGTERM):
        """Signal the daemon and wait for it to exit."""
        if not self.ended.called:
            self.process.signalProcess({signal.SIGTERM: "TERM", signal.SIGKILL: "KILL"}[sig])
        return self.ended


class UdpPeer(protocol.DatagramProtocol):
    """A platform socket on 127.0.0.1: received datagrams go to a queue, replies are by hand."""

    def __init__(self):
        self.queue = defer.DeferredQueue()

    def listen(self):
        self.port = reactor.listenUDP(0, self, interface="127.0.0.1")
        self.address = ("127.0.0.1", self.port.getHost().port)
        return self

    def datagramReceived(self, data, addr):
        self.queue.put((json.loads(data), addr))

    def next(self, timeout=10):
        """The next (message, source address)."""
        return _with_timeout(self.queue.get(), timeout, "a datagram at the peer")

    def send(self, message, addr):
        self.transport.write(json.dumps(message).encode(), addr)


def _with_timeout(d, timeout, what):
    timer = reactor.callLater(timeout, d.cancel)

    def done(result):
        if timer.active():
            timer.cancel()
        return result

    def timed_out(failure):
        failure.trap(defer.CancelledError)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")

    return d.addBoth(done).addErrback(timed_out)


def sleep(seconds):
    return deferLater(reactor, seconds, lambda: None)
