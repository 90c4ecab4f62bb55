"""A whole reference platform in memory on one Clock: the UDP platforms on fake
transports, the plugin center, the message log and the HTTP API (a real Site on a
StringTransport), for the tests of the message log, the admin view and certification."""

import json

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import Logger

from cubegw import identity
from cubegw.platform.api import Api, build_site
from cubegw.platform.config import DeviceConfig, PlatformConfig, UserConfig
from cubegw.platform.distribution import DistributionProtocol
from cubegw.platform.faults import FaultRules
from cubegw.platform.messagelog import MessageLog
from cubegw.platform.operation import OperationProtocol
from cubegw.platform.plugincenter import PluginCenter
from cubegw.platform.registry import MemoryStore, Registry

from tests.helpers import MAC, SN

GW = ("127.0.0.9", 40000)
DEVICE = DeviceConfig(MAC, sn=SN, loid="0755123456", wifi_ssid="ChinaNet-ABCD",
                      wifi_password="wifipass", useradmin_password="admin1",
                      telecomadmin_password="tele1")
BOOT = dict(Vendor="TestVendor", Model="HG-1", MAC=MAC, SN=SN, FirmwareVer="1.2.3",
            HardwareVer="HW1", IPAddr="192.0.2.10", LOID="0755123456", Version="1.0")
DEV_RND = "0123456789ABCDEF0123456789ABCDEF"
ADMIN, USER = "admin-token-1", "user-token-2"
USERS = (UserConfig("A1", ADMIN, admin=True), UserConfig("U2", USER))


class FakeDatagramTransport:
    """Records (data, address) pairs a DatagramProtocol writes; no bound address."""

    def __init__(self):
        self.written = []

    def write(self, data, addr):
        self.written.append((data, addr))


def quiet():
    return Logger(observer=lambda e: None)


class Response:
    """An HTTP/1.0 response read from a StringTransport."""

    def __init__(self, transport):
        self.transport = transport

    def parse(self):
        head, _, self.body = self.transport.value().partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.code = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in
                        (line.partition(":") for line in lines[1:])}
        ctype = self.headers.get("content-type", "")
        self.json = json.loads(self.body) if ctype.startswith("application/json") \
            and self.body else None
        return self

    @property
    def done(self):
        return self.transport.disconnecting


class MemoryPlatform:
    """The platform's parts wired as ``platform.tap`` wires them, with no socket."""

    def __init__(self, log_size=1000, faults=(), devices=(DEVICE,)):
        self.clock = Clock()
        self.config = PlatformConfig(devices=devices, heartbeat_interval=45,
                                     users=USERS, faults=tuple(faults))
        self.registry = Registry(MemoryStore(), self.clock, flush_delay=0)
        self.registry.load()
        self.registry.preset(self.config.devices)
        self.faults = FaultRules(faults)
        self.wirelog = MessageLog(self.clock, log_size)
        self.n = 0
        self.oper = OperationProtocol(self.registry, self.faults, self.config, self.clock,
                                      urandom=self._urandom, wirelog=self.wirelog)
        self.dist = DistributionProtocol(self.registry, self.faults, self.config,
                                         self.clock, urandom=self._urandom,
                                         wirelog=self.wirelog)
        for protocol in (self.oper, self.dist):
            protocol.log = quiet()
            protocol.makeConnection(FakeDatagramTransport())
        self.center = PluginCenter(self.registry, self.faults, self.clock,
                                   boot_timeout=None, idle_timeout=None,
                                   wirelog=self.wirelog)
        self.center.log = quiet()
        self.api = Api(USERS, self.registry, self.faults, self.center, self.oper,
                       lambda: ("127.0.0.1", 9000), self.clock, online_timeout=180,
                       wirelog=self.wirelog, config=self.config,
                       distribution_port=lambda: 12112)
        self.api.log = quiet()
        self.site = build_site(self.api, reactor=self.clock, timeout=None)

    def _urandom(self, n):
        self.n += 1
        return bytes([self.n]) * n

    # ---------------------------------------------------------------- UDP

    def send(self, protocol, msg, addr=GW):
        """Deliver ``msg`` (dict or bytes); the replies written since, as dicts."""
        written = protocol.transport.written
        seen = len(written)
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        protocol.datagramReceived(data, addr)
        return [json.loads(d) for d, _ in written[seen:]]

    def online(self, hbs=1):
        """BootFirst, RegisterFirst, Boot, Register and ``hbs`` heartbeats."""
        challenge = self.send(self.dist, dict(BOOT, RPCMethod="BootFirst"))[0]["ChallengeCode"]
        self.send(self.dist, {"RPCMethod": "RegisterFirst", "MAC": MAC, "SN": SN,
                              "CheckSN": identity.check_sn(challenge, SN)})
        challenge = self.send(self.oper, dict(BOOT, RPCMethod="Boot"))[0]["ChallengeCode"]
        self.send(self.oper, {"RPCMethod": "Register", "MAC": MAC, "SN": SN,
                              "DevRND": DEV_RND, "UserID": "",
                              "CheckSN": identity.check_sn(challenge, SN)})
        for i in range(hbs):
            self.send(self.oper, {"RPCMethod": "Hb", "MAC": MAC, "IPAddr": "192.0.2.10",
                                  "FLAG": "1" if i == 0 else "0"})

    # --------------------------------------------------------------- HTTP

    def start(self, method, path, body=None, token=ADMIN):
        """Send a request; its Response (``parse()`` it once it is done)."""
        channel = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 50000))
        transport = StringTransport()
        channel.makeConnection(transport)
        data = b"" if body is None else (body if isinstance(body, bytes)
                                         else json.dumps(body).encode())
        lines = [f"{method} {path} HTTP/1.0", "Host: cubeplat",
                 f"Content-Length: {len(data)}"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        channel.dataReceived("\r\n".join(lines).encode() + b"\r\n\r\n" + data)
        response = Response(transport)
        response.channel = channel
        return response

    def request(self, method, path, body=None, token=ADMIN):
        """A request that completes at once: its parsed Response."""
        response = self.start(method, path, body, token)
        assert response.done, transport_text(response)
        return response.parse()


def transport_text(response):
    return response.transport.value()[:400]
