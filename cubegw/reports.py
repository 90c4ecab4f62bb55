"""Where a Report goes (protocol.md section 7): the plugin channel when it is up, else
one UDP datagram to the MessageServer the operation platform named."""

from cubegw import wire
from cubegw.logs import Logger


class ReportRouter:
    """``push(parameter)``: True once the Report is handed to a transport."""

    log = Logger()

    def __init__(self, identity, plugin_channel, session):
        self.identity = identity
        self.plugin_channel = plugin_channel
        self.session = session              # RegistrationService: machine, protocol

    def push(self, parameter):
        if self.plugin_channel.send_report(parameter):
            return True
        host, _, port = (self.session.machine.message_server or "").rpartition(":")
        if not host or not port.isdigit():
            self.log.warn("Report dropped: no plugin channel and no MessageServer")
            return False
        self.session.protocol.send_report(
            host, int(port), wire.Report(MAC=self.identity.mac, Parameter=parameter))
        return True
