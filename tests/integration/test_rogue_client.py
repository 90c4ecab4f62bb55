"""Issue 18's must-show against the real ``twistd cubeplat`` and ``twistd cubegw`` on
loopback: a rogue client on 127.0.0.2 that knows the gateway's MAC (so its SN, and how to
make CheckSN) cannot take its plugin-center session, redirect its triggers, bind it, or
inject Reports.  Prints a ``ROGUE CLIENT FIGURES`` line (docs/SECURITY.md)."""

import json
import re

from twisted.internet import defer, protocol, reactor, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from cubegw import app, identity, wire
from cubegw.children import with_timeout
from tests.helpers.lab import GATEWAY_TIMING, TOKEN, Lab, dut_device
from tests.integration.support import MAC, FrameAsker, lan_gateway_config, sleep

ROGUE_HOST = "127.0.0.2"
ROGUE_TOKEN = "rogue-user-token-1"
SN = identity.sn_from_mac(MAC)
LOID = "0755000001"          # tests.helpers.config's gateway
ROGUE_DEV_RND = "AB" * 16
BOOT = {"Vendor": "cubegw", "Model": "loopback", "MAC": MAC, "SN": SN,
        "FirmwareVer": "1", "HardwareVer": "1", "IPAddr": ROGUE_HOST, "LOID": "EVIL0001"}


class RogueUdp(protocol.DatagramProtocol):
    """The rogue's UDP socket on 127.0.0.2: every datagram it receives is kept."""

    def __init__(self):
        self.received = []
        self.queue = defer.DeferredQueue()

    def datagramReceived(self, data, addr):
        msg = json.loads(data)
        self.received.append(msg)
        self.queue.put(msg)

    def ask(self, message, addr, timeout=5):
        self.transport.write(wire.encode_datagram(message), addr)
        return with_timeout(reactor, self.queue.get(), timeout, "a reply to the rogue")


class RogueClientTests(TestCase):
    timeout = 120

    def http(self, method, path, body=None, token=TOKEN):
        return threads.deferToThread(app.api, f"http://127.0.0.1:{self.lab.api_port}",
                                     token, method, path, body, 20)

    def device(self):
        return self.http("GET", f"/api/devices/{MAC}").addCallback(lambda r: r[1])

    @defer.inlineCallbacks
    def test_rogue_knowing_the_mac(self):
        """A rogue on 127.0.0.2 with the MAC, SN and a good CheckSN: its plugin-center
        Register, Hb, Boot, Register, Report and binds are all refused, the gateway's
        session, triggers and binding stay the gateway's and its owner's."""
        self.lab = Lab(self, [dut_device(MAC)], users=[
            {"user_id": "LAB", "token": TOKEN, "admin": True},
            {"user_id": "ROGUE", "token": ROGUE_TOKEN}])
        yield self.lab.start()
        plat = self.lab.platform
        config, lan_port = lan_gateway_config(self.lab.tmp, timing=GATEWAY_TIMING)
        self.lab.start_gateway(config)
        yield plat.wait_for(f"{MAC} Hb -> Result 0 (first after Register)", 30)
        oper = ("127.0.0.1", self.lab.oper)
        before = (yield self.device())["record"]
        gw_addr = tuple(before["hb_addr"])
        figures = {}

        rogue = RogueUdp()
        port = reactor.listenUDP(0, rogue, interface=ROGUE_HOST)
        self.addCleanup(port.stopListening)
        # 1. a Boot and Register as the gateway, from another host: refused while it heartbeats
        figures["boot"] = (yield rogue.ask(dict(BOOT, RPCMethod="Boot"), oper))["Result"]
        figures["register"] = (yield rogue.ask({
            "RPCMethod": "Register", "MAC": MAC, "SN": SN, "DevRND": ROGUE_DEV_RND,
            "CheckSN": identity.check_sn(before["challenge"], SN), "UserID": ""},
            oper))["Result"]
        # 2. heartbeats to move the trigger address; a Report to inject
        figures["hb"] = (yield rogue.ask({"RPCMethod": "Hb", "MAC": MAC,
                                          "IPAddr": ROGUE_HOST, "FLAG": "0"}, oper))["Result"]
        rogue.transport.write(wire.encode_datagram(wire.Report(
            MAC=MAC, Parameter={"CmdType": "ROGUE_REPORT"})), oper)
        self.assertEqual((figures["boot"], figures["register"], figures["hb"]), (-1, -1, -3))
        # 3. bind: the plain SN, and MD5(DevRND+SN) of the DevRND it sent
        binds = []
        for sn in (SN, identity.encrypted_sn(ROGUE_DEV_RND, SN)):
            status, _ = yield self.http("POST", "/api/bind", {"sn": sn, "loid": LOID},
                                        ROGUE_TOKEN)
            binds.append(status)
        self.assertEqual(binds, [404, 404])
        after = (yield self.device())["record"]
        self.assertEqual((tuple(after["hb_addr"]), after["loid"], after["user_id"],
                          after["dev_rnd"]), (gw_addr, LOID, "", before["dev_rnd"]))

        # the owner binds with the app's flow (CHECK_PASSWD_PARAM on the LAN)
        check = yield threads.deferToThread(app.post1, "127.0.0.1", lan_port, app.payload_for(
            "CHECK_PASSWD_PARAM", ["PassWD=admin1"]))
        status, body = yield self.http("POST", "/api/bind", {
            "sn": check.return_Parameter["SN"], "loid": check.return_Parameter["LOID"]})
        self.assertEqual((status, body), (200, {"mac": MAC, "user_id": "LAB"}))

        # 4. the gateway's plugin-center session, then the rogue's attempt on it
        status, body = yield self.http("POST", f"/api/devices/{MAC}/request-plugin", {})
        self.assertEqual((status, body.get("result")), (200, 0))
        yield plat.wait_for(f"{MAC} plugin Register -> Result 0", 10)
        center = int(re.search(r"plugin center listening on 127\.0\.0\.1:(\d+)",
                               plat.text()).group(1))
        frames = yield connectProtocol(TCP4ClientEndpoint(
            reactor, "127.0.0.1", center, bindAddress=(ROGUE_HOST, 0)), FrameAsker(timeout=5))
        self.addCleanup(frames.transport.loseConnection)
        boot = yield frames.ask(dict(BOOT, RPCMethod="Boot"))
        figures["plugin_register"] = (yield frames.ask({
            "RPCMethod": "Register", "MAC": MAC, "SN": SN,
            "CheckSN": identity.check_sn(boot["ChallengeCode"], SN)}))["Result"]
        self.assertEqual(figures["plugin_register"], -1)
        frames.sendString(json.dumps({"RPCMethod": "Report", "MAC": MAC, "Parameter":
                                      wire.encode_parameter({"CmdType": "ROGUE_REPORT"})})
                          .encode())
        status, body = yield self.http("POST", f"/api/gateways/{MAC}/call",
                                       {"parameter": {"CmdType": "GET_VERSION"}})
        self.assertEqual((status, body["result"]), (200, 0))

        # 5. a trigger still reaches the gateway, not the rogue
        yield self.http("POST", f"/api/devices/{MAC}/disconnect", {})
        status, body = yield self.http("POST", f"/api/devices/{MAC}/request-plugin", {})
        self.assertEqual((status, body.get("result")), (200, 0))
        yield sleep(1.5)    # heartbeats go on from the gateway's address
        final = yield self.device()
        status, reports = yield self.http("GET", f"/api/gateways/{MAC}/reports")
        self.assertEqual(status, 200)
        injected = [r for r in reports["reports"]
                    if r["parameter"].get("CmdType") == "ROGUE_REPORT"]
        triggers = [m for m in rogue.received if "RPCMethod" in m]
        self.assertEqual((tuple(final["record"]["hb_addr"]), final["online"],
                          final["user_id"], injected, triggers),
                         (gw_addr, True, "LAB", [], []))
        figures.update(binds=binds, reports_injected=len(injected),
                       triggers_to_rogue=len(triggers),
                       rogue_datagrams_received=len(rogue.received))
        print("ROGUE CLIENT FIGURES", json.dumps(figures, sort_keys=True))
