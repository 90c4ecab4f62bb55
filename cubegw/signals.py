"""Signal handlers as a service: installed when the daemon starts, put back when it stops.

SIGHUP (``/etc/init.d/cubegw reload``) re-reads the UCI file at once; SIGUSR1
(``cubegw-ctl status``) rewrites the status file at once; SIGUSR2 (OpenWrt's hotplug,
an interface went up or changed) checks the WAN address at once.  Building the service
tree installs nothing.
"""

import signal

from twisted.application import service


class SignalService(service.Service):
    """``actions``: signal number -> callable, run in the reactor thread."""

    def __init__(self, reactor, actions):
        self.reactor = reactor
        self.actions = dict(actions)
        self._previous = {}

    def startService(self):
        super().startService()
        try:
            for signum in self.actions:
                self._previous[signum] = signal.signal(signum, self._handler)
        except ValueError:  # not the main thread (embedded use): the file poll still works
            pass

    def stopService(self):
        super().stopService()
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _handler(self, signum, frame):
        self.reactor.callFromThread(self.actions[signum])


#: ``/etc/init.d/cubegw reload``: re-read the UCI file at once.
SIGNAL_RELOAD = signal.SIGHUP
#: ``cubegw-ctl status``: rewrite the status file at once.
SIGNAL_STATUS = signal.SIGUSR1
#: ``/etc/hotplug.d/iface/90-cubegw``: an interface went up, down or changed.
SIGNAL_NETWORK = signal.SIGUSR2
