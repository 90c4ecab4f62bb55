"""What the gateway watches: its WAN address and its UCI file.

``WanWatch`` tells the registration session when the WAN address changes (a Boot at the
stored platform): OpenWrt's hotplug tells the daemon when an interface goes up or
changes (SIGUSR2, see openwrt/files/cubegw.hotplug), and a slow poll catches the rest.
``StoreWatch`` re-reads the UCI file when another process (``uci commit``,
``cubegw-ctl mgt set``) changed it, and tells its listeners which keys moved: it is
woken by inotify where the kernel and Python offer it, and polls only where they do
not, so an idle daemon sleeps between two heartbeats.
"""

import os

from twisted.application import service
from twisted.internet.task import LoopingCall

from cubegw import identity
from cubegw.logs import Logger
from cubegw.store import StoreError


class _Poll(service.Service):
    """Calls the subclass's ``check`` every ``interval`` seconds of ``clock`` while
    running (0: never)."""

    def __init__(self, clock, interval):
        self.clock = clock
        self.interval = interval
        self._loop = None

    def startService(self):
        super().startService()
        if self.interval > 0:
            self._loop = LoopingCall(self.check)
            self._loop.clock = self.clock
            self._loop.start(self.interval, now=False)

    def stopService(self):
        super().stopService()
        if self._loop is not None:
            loop, self._loop = self._loop, None
            loop.stop()


class WanWatch(_Poll):
    """Polls the WAN interface's IPv4 address; a change goes to ``on_change(ip)``."""

    def __init__(self, clock, interval, interface, net_if_addrs, on_change):
        super().__init__(clock, interval)
        self.interface = interface
        self.net_if_addrs = net_if_addrs
        self.on_change = on_change
        self.current = None

    def wan_ip(self):
        """The address now (read once at start, then kept by ``check``)."""
        if self.current is None:
            self.current = identity.interface_ipv4(self.interface, self.net_if_addrs())
        return self.current

    def check(self):
        ip = identity.interface_ipv4(self.interface, self.net_if_addrs())
        if ip != self.wan_ip():
            self.current = ip
            self.on_change(ip)


def inotify_watcher(reactor, directory, on_event, names=None):
    """Call ``on_event(name)`` for each file of ``directory`` (of ``names`` only, if
    given) written, moved in, created or removed (``""``: the kernel's queue overflowed,
    anything may have changed); returns the function that stops watching, or None where
    inotify cannot be had (not Linux, no ctypes as on a minimal OpenWrt, too many
    watches)."""
    try:
        from cubegw import inotify
        mask = inotify.IN_CLOSE_WRITE | inotify.IN_MOVED_TO | inotify.IN_CREATE | \
            inotify.IN_DELETE
        notifier = inotify.DirectoryWatch(reactor, directory, mask, on_event, names)
    except (ImportError, OSError, AttributeError):   # AttributeError: no inotify in libc
        return None
    try:
        notifier.startReading()
    except Exception:               # a clock that is not a reactor
        notifier.close()
        return None
    return notifier.loseConnection


class StoreWatch(_Poll):
    """Re-reads the UCI file when its inode, time or size moved (or when forced: SIGHUP).

    Each listener is called with the set of (section, name) keys that changed.
    ``watcher(clock, directory, on_event, names)`` (``inotify_watcher``) wakes it on a
    change of the file in its directory (``names``: the file's name, so the folder's
    other files, /etc/config/wireless among them, cost no call); only where it returns
    None is the file polled every ``interval`` seconds.
    """

    log = Logger()

    def __init__(self, clock, interval, store, listeners=(), watcher=None):
        super().__init__(clock, interval)
        self.store = store
        self.listeners = list(listeners)
        self.watcher = watcher
        self.events = False               # woken by the watcher, not polling
        self._stop_watching = None
        self._stamp = None

    def startService(self):
        self._stamp = self._read_stamp()
        directory, name = os.path.split(os.path.abspath(self.store.path))
        if self.watcher is not None:
            self._stop_watching = self.watcher(
                self.clock, directory, lambda changed: changed in (name, "") and self.check(),
                (name,))
        self.events = self._stop_watching is not None
        if self.events:
            service.Service.startService(self)      # no poll
        else:
            super().startService()

    def stopService(self):
        if self._stop_watching is not None:
            stop, self._stop_watching = self._stop_watching, None
            stop()
        return super().stopService()

    def _read_stamp(self):
        try:
            st = os.stat(self.store.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def written(self):
        """Our own write: the file's new stamp is not news."""
        self._stamp = self._read_stamp()

    def check(self, force=False):
        stamp = self._read_stamp()
        if stamp == self._stamp and not force:
            return
        self._stamp = stamp
        try:
            changed = self.store.reload()
        except StoreError as e:
            self.log.error("store file unreadable, keeping the values in memory: {error}",
                           error=e)
            return
        if changed:
            self.log.info("store changed outside the daemon: {keys}",
                          keys=sorted(f"{s}.{n}" for s, n in changed))
            self.notify(changed)

    def notify(self, changed):
        """Call each listener with the keys that changed (a reload's, or the daemon's own
        writes: ``CapabilityContext.store_changed``)."""
        for listener in self.listeners:
            listener(changed)
