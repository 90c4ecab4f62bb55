"""A gateway with a seeded defect, as a real process: the certification suite's
negative control.  It registers over UDP like a gateway (BootFirst, RegisterFirst,
Boot, Register, Hb) from one socket and heartbeats, but:

- ``--defect ignore-hb-minus3``: an Hb answered -3 is taken as success, so it keeps
  heartbeating instead of registering again with Boot (protocol.md section 6).

    python -m tests.helpers.defective_gateway --dist 127.0.0.1:PORT --mac MAC --sn SN
        [--defect ignore-hb-minus3] [--seconds 120]
"""

import argparse
import json
import os
import socket
import sys
import time

from cubegw import identity

REPLY_TIMEOUT = 0.3


class Gateway:
    def __init__(self, dist, mac, sn, defect):
        self.dist = dist
        self.mac = mac
        self.sn = sn
        self.defect = defect
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def ask(self, to, message):
        """Send ``message`` to ``to``; the reply (a dict with Result) or None."""
        self.sock.sendto(json.dumps(message).encode(), to)
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data, source = self.sock.recvfrom(65536)
            except socket.timeout:
                return None
            try:
                reply = json.loads(data)
            except ValueError:
                continue
            if isinstance(reply, dict) and "Result" in reply and "RPCMethod" not in reply:
                return reply            # triggers and strays are ignored

    def device(self):
        return {"Vendor": "seeded", "Model": "defect", "MAC": self.mac, "SN": self.sn,
                "FirmwareVer": "0", "HardwareVer": "0", "IPAddr": "127.0.0.1",
                "LOID": "", "Version": "1.0"}

    def register(self):
        """Distribution, then operation; the operation address once registered."""
        while True:
            r = self.ask(self.dist, dict(self.device(), RPCMethod="BootFirst"))
            if r and r["Result"] == 0:
                r = self.ask(self.dist, {"RPCMethod": "RegisterFirst", "MAC": self.mac,
                                         "SN": self.sn, "CheckSN": identity.check_sn(
                                             r["ChallengeCode"], self.sn)})
                if r and r["Result"] in (0, 2):
                    oper = (r["ServerAddr"], int(r["ServerPort"]))
                    if self.operation(oper):
                        return oper
            time.sleep(0.2)

    def operation(self, oper):
        r = self.ask(oper, dict(self.device(), RPCMethod="Boot"))
        if not r or r["Result"] != 0:
            return False
        r = self.ask(oper, {"RPCMethod": "Register", "MAC": self.mac, "SN": self.sn,
                            "CheckSN": identity.check_sn(r["ChallengeCode"], self.sn),
                            "DevRND": os.urandom(16).hex().upper(), "UserID": ""})
        return bool(r) and r["Result"] == 2

    def run(self, seconds):
        end = time.monotonic() + seconds
        oper = self.register()
        flag = "1"
        while time.monotonic() < end:
            r = self.ask(oper, {"RPCMethod": "Hb", "MAC": self.mac, "IPAddr": "127.0.0.1",
                                "FLAG": flag})
            flag = "0"
            if r is None:
                continue
            if r["Result"] == -3 and self.defect != "ignore-hb-minus3":
                if not self.operation(oper):
                    oper = self.register()
                flag = "1"
                continue
            if r["Result"] == -5:
                oper = self.register()
                flag = "1"
                continue
            interval = r.get("Interval")
            time.sleep(interval if isinstance(interval, int) and 0 < interval < 60 else 1)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--dist", required=True)
    p.add_argument("--mac", required=True)
    p.add_argument("--sn", required=True)
    p.add_argument("--defect", default="ignore-hb-minus3")
    p.add_argument("--seconds", type=float, default=120)
    args = p.parse_args(argv)
    host, port = args.dist.rsplit(":", 1)
    Gateway((host, int(port)), args.mac, args.sn, args.defect).run(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
