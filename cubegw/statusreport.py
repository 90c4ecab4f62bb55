"""The operator's status file, kept by the running daemon (``cubegw-ctl status`` reads it).

``StatusReport.changed`` runs after every registration event: it writes the file at once
when something other than the heartbeat counters changed, and lets a routine event (the
registration machine says which) build no snapshot unless the once-a-minute counters are
due.  SIGUSR1 (``cubegw-ctl status``) forces a write.

The snapshot is what ``cubegw-ctl status`` and ``ubus call cubegw status`` show: state,
platforms and counters, the version and start time, the last error logged, when the
next attempt is due (and which retry it is), the WAN interface and the LAN listeners.
"""

import os
import time

from twisted.application import service
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from cubegw import __version__

from cubegw.logs import Logger
from cubegw.status import StatusFile


class StatusReport(service.Service):
    """Builds the snapshot from the session, the trigger requests, the plugin channel and
    the LAN server; while running it keeps the last error logged (an observer of the
    global log)."""

    log = Logger()

    def __init__(self, state_dir, clock, session, plugin_requests, plugin_channel,
                 lan=None, wall=time.time, publisher=globalLogPublisher):
        """``session.store`` is read for its problems: an invalid stored value (one
        ``uci set`` made) shows in the snapshot, as it does on cubegw-ctl's stderr."""
        self.status_file = StatusFile(state_dir)
        self.clock = clock
        self.session = session              # RegistrationService: machine, protocol
        self.plugin_requests = plugin_requests
        self.plugin_channel = plugin_channel
        self.lan = lan                      # LanServer, or None
        self.wall = wall
        self.publisher = publisher
        self.started = None                 # wall time the daemon started
        self.last_error = None              # {"time", "text"} of the last error logged
        self.last_hb = None                 # clock time of the last answered heartbeat
        self._hb_seen = 0

    def startService(self):
        super().startService()
        self.started = self.wall()
        self.publisher.addObserver(self._observe)

    def stopService(self):
        super().stopService()
        self.publisher.removeObserver(self._observe)

    def _observe(self, event):
        if event.get("log_level") in (LogLevel.error, LogLevel.critical):
            text = formatEvent(event).split("\n", 1)[0][:300]
            self.last_error = {"time": self.wall(), "text": text}

    def changed(self, force=False, routine=False):
        """After every event: the status file, at once if something other than the
        heartbeat counters changed (or ``force``: an operator asked, SIGUSR1)."""
        now = self.clock.seconds()
        hb_ok = self.session.machine.counters["hb_ok"]
        if hb_ok != self._hb_seen:
            routine = routine and self.last_hb is not None   # the first answer is news
            self._hb_seen = hb_ok
            self.last_hb = now
        if routine and not force and not self.status_file.routine_due(now):
            return
        try:
            self.status_file.write(self.snapshot(), now, force)
        except OSError as e:
            self.log.warn("cannot write the status file: {error}", error=e)

    def snapshot(self):
        m = self.session.machine
        return {
            "pid": os.getpid(),
            "running": self.session.running,
            "state": m.state,
            "mac": self.session.identity.mac,
            "sn": self.session.identity.sn,
            "wan_ip": m.wan_ip,
            "distribution": "%s:%s" % m.distribution if m.distribution else None,
            "operation": "%s:%s" % m.operation if m.operation else None,
            "message_server": m.message_server,
            "heartbeat_interval": m.interval,
            "last_heartbeat": self.last_hb,
            "counters": dict(m.counters, dropped=self.session.protocol.dropped),
            "plugin_requests": ["%s:%s" % hp for hp in self.plugin_requests[-5:]],
            "plugin_channel": self.plugin_channel.snapshot(),
            "version": __version__,
            "started": self.started,
            "last_error": self.last_error,
            "next_attempt": self._next_attempt(),
            "wan": {"interface": self.session.config.device.wan_interface, "ip": m.wan_ip},
            "lan": self._lan(),
            "store_problems": self.session.store.problems(),
        }

    def _next_attempt(self):
        """When the machine acts next on its own (wall time) and the retry count."""
        at = self.session.protocol.next_event()
        if at is None:
            return None
        return {"at": self.wall() + (at - self.clock.seconds()),
                "state": self.session.machine.state, "retry": self.session.machine.retries}

    def _lan(self):
        if self.lan is None:
            return None
        return {"port": self.lan.port_number,
                "listening": [p.getHost().host for p in self.lan.ports
                              if hasattr(p.getHost(), "host")]}
