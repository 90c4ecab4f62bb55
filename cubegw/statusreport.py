"""The operator's status file, kept by the running daemon (``cubegw-ctl status`` reads it).

``StatusReport.changed`` runs after every registration event: it writes the file at once
when something other than the heartbeat counters changed, and lets a routine event (the
registration machine says which) build no snapshot unless the once-a-minute counters are
due.  SIGUSR1 (``cubegw-ctl status``) forces a write.
"""

import os

from cubegw.logs import Logger
from cubegw.status import StatusFile


class StatusReport:
    """Builds the snapshot from the session, the trigger requests and the plugin channel."""

    log = Logger()

    def __init__(self, state_dir, clock, session, plugin_requests, plugin_channel):
        self.status_file = StatusFile(state_dir)
        self.clock = clock
        self.session = session              # RegistrationService: machine, protocol
        self.plugin_requests = plugin_requests
        self.plugin_channel = plugin_channel
        self.last_hb = None                 # clock time of the last answered heartbeat
        self._hb_seen = 0

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
        }
