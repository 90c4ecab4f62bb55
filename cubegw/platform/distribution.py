"""The distribution platform over UDP (protocol.md section 4): BootFirst, RegisterFirst."""

import os

from cubegw import identity
from cubegw.platform.udp import PlatformProtocol, fail


class DistributionProtocol(PlatformProtocol):
    """The distribution platform: BootFirst, RegisterFirst (protocol.md section 4).

    ``operation_address()`` gives the (host, port) handed out in RegisterFirst replies.
    """

    server = "distribution"
    methods = ("BootFirst", "RegisterFirst")
    endpoint = "distribution"

    def __init__(self, registry, faults, config, clock, urandom=os.urandom,
                 operation_address=None, wirelog=None):
        super().__init__(registry, faults, config, clock, urandom, wirelog)
        self.operation_address = operation_address or (
            lambda: (config.operation.advertised, config.operation.port))

    def handle_BootFirst(self, request, addr, now):
        record, why = self._known(request, learn=True)
        if record is None:
            return fail(-6, why)
        challenge = identity.new_challenge(self.urandom)
        self._booted(record, request, dist_challenge=challenge)
        self.log.debug("{mac} BootFirst challenge {challenge}", mac=record.mac,
                       challenge=challenge)
        return {"Result": 0, "ChallengeCode": challenge}, ""

    def handle_RegisterFirst(self, request, addr, now):
        record, why = self._known(request, learn=False)
        if record is None:
            return fail(-6, why)
        if not record.dist_challenge:
            return fail(-1, "no BootFirst challenge to check CheckSN against")
        if request.CheckSN != identity.check_sn(record.dist_challenge, record.sn):
            return fail(-1, "bad CheckSN")
        host, port = self.operation_address()
        return {"Result": 0, "ServerAddr": host, "ServerPort": port,
                "Interval": self.config.heartbeat_interval}, f"operation platform {host}:{port}"
