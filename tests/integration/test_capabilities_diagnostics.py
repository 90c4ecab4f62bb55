"""Ping, traceroute and the HTTP download test: parsers, runs, the real ping."""

import os
import shutil

from twisted.internet import defer, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import resource, server
from zope.interface.verify import verifyObject

from cubegw.backend import LinuxBackend, TempDirBackend
from cubegw.capabilities import (
    CapabilityContext, Dispatcher, IGatewayCapability, discover_providers,
)
from cubegw.capabilities.diagnostics import (
    Diagnostics, HttpDownload, TracerouteResult, parse_ping, parse_traceroute, valid_dest,
)
from cubegw.config import Accounts, GatewayConfig
from cubegw.record import replace
from cubegw.store import Store, builtin_schema

from tests.helpers import IDENTITY
from tests.helpers.dispatch import SEQ, TELECOMADMIN, Harness

ACCOUNT = {"USER": "telecomadmin", "PASSWORD": TELECOMADMIN}

IPUTILS_OK = """\
PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.
64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.090 ms
64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.035 ms
64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 time=0.042 ms

--- 127.0.0.1 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 2028ms
rtt min/avg/max/mdev = 0.035/0.055/0.090/0.024 ms
"""

IPUTILS_LOSS = """\
PING 10.255.255.1 (10.255.255.1) 56(84) bytes of data.
From 10.0.0.1 icmp_seq=1 Destination Host Unreachable

--- 10.255.255.1 ping statistics ---
3 packets transmitted, 0 received, +1 errors, 100% packet loss, time 2047ms
pipe 3
"""

BUSYBOX_OK = """\
PING 192.168.1.1 (192.168.1.1): 56 data bytes
64 bytes from 192.168.1.1: seq=0 ttl=64 time=0.512 ms
64 bytes from 192.168.1.1: seq=1 ttl=64 time=0.401 ms
64 bytes from 192.168.1.1: seq=2 ttl=64 time=0.455 ms

--- 192.168.1.1 ping statistics ---
3 packets transmitted, 2 packets received, 33% packet loss
round-trip min/avg/max = 0.401/0.456/0.512 ms
"""

TRACEROUTE_LINUX = """\
traceroute to 8.8.8.8 (8.8.8.8), 30 hops max, 60 byte packets
 1  192.168.1.1  0.412 ms  0.388 ms  0.371 ms
 2  * * *
 3  10.10.1.1  5.102 ms 10.10.1.2  5.330 ms  5.012 ms
 4  72.14.215.85  12.331 ms !H  12.101 ms !H  *
"""

TRACEROUTE_LINUX_NAMES = """\
traceroute to localhost (127.0.0.1), 3 hops max, 60 byte packets
 1  localhost (127.0.0.1)  0.026 ms  0.004 ms  0.014 ms
"""

BUSYBOX_TRACEROUTE = """\
traceroute to 8.8.8.8 (8.8.8.8), 30 hops max, 38 byte packets
 1  192.168.1.1 (192.168.1.1)  0.542 ms  0.412 ms  0.398 ms
 2  *  *  *
 3  8.8.8.8 (8.8.8.8)  12.345 ms  12.100 ms  12.210 ms
"""

BUSYBOX_TRACEROUTE_N = """\
traceroute to 8.8.8.8 (8.8.8.8), 30 hops max, 38 byte packets
 1  192.168.1.1  0.542 ms  0.412 ms  0.398 ms
 2  8.8.8.8  12.345 ms  *  12.210 ms
"""

NOT_INSTALLED = (1, b"", b"Upon execvpe ping ['ping'] in environment id 1\n:Traceback "
                 b"...\nFileNotFoundError: [Errno 2] No such file or directory: b'/bin/ping'\n")


class ParserTests(SynchronousTestCase):
    """parse_ping, parse_traceroute and valid_dest on real outputs."""

    def test_iputils_ping(self):
        """iputils statistics: counts, loss and the rtt line."""
        self.assertEqual(parse_ping(IPUTILS_OK), {
            "Sent": 3, "Received": 3, "LossRate": "0",
            "MinRTT": "0.035", "AvgRTT": "0.055", "MaxRTT": "0.090"})

    def test_iputils_loss(self):
        """No reply: 100 % loss and empty RTTs (errors count ignored)."""
        self.assertEqual(parse_ping(IPUTILS_LOSS), {
            "Sent": 3, "Received": 0, "LossRate": "100",
            "MinRTT": "", "AvgRTT": "", "MaxRTT": ""})

    def test_busybox_ping(self):
        """busybox statistics ("packets received", "round-trip")."""
        self.assertEqual(parse_ping(BUSYBOX_OK), {
            "Sent": 3, "Received": 2, "LossRate": "33",
            "MinRTT": "0.401", "AvgRTT": "0.456", "MaxRTT": "0.512"})

    def test_ping_no_statistics(self):
        """Output without statistics (unknown host) gives None."""
        self.assertIsNone(parse_ping("ping: nosuch.invalid: Name or service not known\n"))

    def test_traceroute_linux(self):
        """Linux traceroute -n: timeouts, several addresses on a hop, !H notes."""
        hops = parse_traceroute(TRACEROUTE_LINUX)
        self.assertEqual([h["Hop"] for h in hops], [1, 2, 3, 4])
        self.assertEqual(hops[0], {"Hop": 1, "Address": "192.168.1.1", "Host": "192.168.1.1",
                                   "Times": ["0.412", "0.388", "0.371"], "Note": ""})
        self.assertEqual(hops[1]["Address"], "")
        self.assertEqual(hops[1]["Times"], ["*", "*", "*"])
        self.assertEqual(hops[2]["Address"], "10.10.1.1")
        self.assertEqual(hops[2]["Times"], ["5.102", "5.330", "5.012"])
        self.assertEqual(hops[3]["Times"], ["12.331", "12.101", "*"])
        self.assertEqual(hops[3]["Note"], "!H !H")

    def test_traceroute_names(self):
        """Linux traceroute with names: the address is the bracketed one."""
        self.assertEqual(parse_traceroute(TRACEROUTE_LINUX_NAMES), [
            {"Hop": 1, "Address": "127.0.0.1", "Host": "localhost",
             "Times": ["0.026", "0.004", "0.014"], "Note": ""}])

    def test_busybox_traceroute(self):
        """busybox traceroute, with and without -n."""
        hops = parse_traceroute(BUSYBOX_TRACEROUTE)
        self.assertEqual([(h["Address"], h["Times"]) for h in hops], [
            ("192.168.1.1", ["0.542", "0.412", "0.398"]), ("", ["*", "*", "*"]),
            ("8.8.8.8", ["12.345", "12.100", "12.210"])])
        hops = parse_traceroute(BUSYBOX_TRACEROUTE_N)
        self.assertEqual(hops[1]["Times"], ["12.345", "*", "12.210"])

    def test_valid_dest(self):
        """Host names and addresses pass; options, spaces and shell characters do not."""
        for good in ("127.0.0.1", "::1", "example.com", "a-b.example.com.", "localhost"):
            self.assertTrue(valid_dest(good), good)
        for bad in ("-c1", "-", "a b", "a;reboot", "$(reboot)", "a|b", "", None, 7,
                    "x" * 254, "-f.example.com", "a..b", "a`b`"):
            self.assertFalse(valid_dest(bad), bad)


class PingTests(SynchronousTestCase):
    """PING_DIAG_REQ / GET_PING_RESULT on a TempDirBackend with canned results."""

    def setUp(self):
        self.diag = Diagnostics(which=lambda name: "/bin/" + name)
        self.h = Harness(self, providers=[self.diag])
        self.pending = defer.Deferred()
        self.h.backend.results["ping"] = self.pending

    def call(self, cmd, **args):
        return self.h.call(self, cmd, **args).payload

    def test_verify(self):
        """Diagnostics and HttpDownload provide IGatewayCapability."""
        self.assertTrue(verifyObject(IGatewayCapability, self.diag))
        self.assertTrue(verifyObject(IGatewayCapability, HttpDownload()))

    def test_discovered(self):
        """The module-level providers are discovered."""
        served = {cmd for p in discover_providers() for cmd in p.cmd_types}
        self.assertTrue({"PING_DIAG_REQ", "GET_TRACEROUTE_RESULT", "HTTP_DOWNLOAD_REQUEST",
                         "SET_HTTP_CFG"} <= served)

    def test_before_any_run(self):
        """GET_PING_RESULT before a run: Status 1."""
        self.assertEqual(self.call("GET_PING_RESULT")["FailReason"], "no diagnostic has run")

    def test_run_and_poll(self):
        """REQ runs ping with an argv list; Running until it ends, then the statistics."""
        reply = self.call("PING_DIAG_REQ", Dest="192.168.1.1", leng="100", time="3")
        self.assertEqual((reply["Status"], reply["State"]), ("0", "Running"))
        self.assertEqual(self.h.backend.commands,
                         [["ping", "-c", "3", "-s", "100", "-W", "2", "192.168.1.1"]])
        self.assertEqual(self.call("GET_PING_RESULT")["State"], "Running")
        busy = self.call("PING_DIAG_REQ", Dest="192.168.1.1")
        self.assertEqual((busy["Status"], busy["FailReason"]), ("1", "busy"))
        self.pending.callback((0, BUSYBOX_OK.encode(), b""))
        result = self.call("GET_PING_RESULT")
        self.assertEqual(result["Status"], "0")
        self.assertEqual(result["State"], "Complete")
        self.assertEqual((result["Sent"], result["Received"], result["LossRate"],
                          result["MinRTT"], result["AvgRTT"], result["MaxRTT"]),
                         ("3", "2", "33", "0.401", "0.456", "0.512"))
        self.assertEqual(result["Dest"], "192.168.1.1")

    def test_bad_dest(self):
        """A Dest that looks like an option or holds shell characters is refused unrun."""
        for dest in ("-f", "a b", "x;reboot", None):
            reply = self.call("PING_DIAG_REQ", Dest=dest)
            self.assertEqual(reply["Status"], "1")
        self.assertEqual(self.h.backend.commands, [])

    def test_bad_numbers(self):
        """leng and time out of range or not integers: Status 1."""
        for args in ({"leng": "-1"}, {"leng": "70000"}, {"time": "0"}, {"time": "x"}):
            self.assertEqual(self.call("PING_DIAG_REQ", Dest="1.1.1.1", **args)["Status"], "1")

    def test_wan_device(self):
        """WANName: a device is used as is, a UCI interface by its device."""
        self.h.backend.stats = {"eth1": {"isup": True, "speed": 1000, "mtu": 1500}}
        os.makedirs(os.path.join(self.h.dir, "etc", "config"))
        with open(os.path.join(self.h.dir, "etc", "config", "network"), "w") as f:
            f.write("config interface 'wan'\n\toption device 'eth0.2'\n\toption proto 'dhcp'\n")
        self.call("PING_DIAG_REQ", Dest="1.1.1.1", WANName="eth1")
        self.assertEqual(self.h.backend.commands[-1][-3:], ["-I", "eth1", "1.1.1.1"])
        self.pending.callback((0, IPUTILS_OK.encode(), b""))
        self.h.backend.results["ping"] = (0, IPUTILS_OK.encode(), b"")
        self.call("PING_DIAG_REQ", Dest="1.1.1.1", WANName="wan")
        self.assertEqual(self.h.backend.commands[-1][-3:], ["-I", "eth0.2", "1.1.1.1"])
        self.assertEqual(self.call("PING_DIAG_REQ", Dest="1.1.1.1",
                                   WANName="nope")["FailReason"], "unknown WANName nope")

    def test_field_wan_name(self):
        """WANName may be the field's name of a WAN (QUERY_WAN_NUM's Description)."""
        os.makedirs(os.path.join(self.h.dir, "etc", "config"))
        with open(os.path.join(self.h.dir, "etc", "config", "network"), "w") as f:
            f.write("config interface 'wan'\n\toption device 'eth0.1007'\n"
                    "\toption proto 'dhcp'\n")
        self.h.backend.results["ping"] = (0, IPUTILS_OK.encode(), b"")
        reply = self.call("PING_DIAG_REQ", Dest="1.1.1.1", WANName="1_INTERNET_R_VID_1007")
        self.assertEqual(reply["Status"], "0", reply)
        self.assertEqual(self.h.backend.commands[-1][-3:], ["-I", "eth0.1007", "1.1.1.1"])

    def test_not_installed(self):
        """No ping on PATH: Status 1 "ping is not installed", nothing run."""
        self.diag.which = lambda name: None
        reply = self.call("PING_DIAG_REQ", Dest="1.1.1.1")
        self.assertEqual(reply["FailReason"], "ping is not installed")
        self.assertEqual(self.h.backend.commands, [])

    def test_exec_failure(self):
        """A run that could not exec is reported as not installed on the poll."""
        self.call("PING_DIAG_REQ", Dest="1.1.1.1")
        self.pending.callback(NOT_INSTALLED)
        self.assertEqual(self.call("GET_PING_RESULT")["FailReason"], "ping is not installed")

    def test_unknown_host(self):
        """No statistics: Status 1 with ping's first line of error."""
        self.call("PING_DIAG_REQ", Dest="nosuch.invalid")
        self.pending.callback((2, b"", b"ping: nosuch.invalid: Name or service not known\n"))
        self.assertEqual(self.call("GET_PING_RESULT")["FailReason"],
                         "ping: nosuch.invalid: Name or service not known")

    def test_timeout_kills(self):
        """A run that does not end is cancelled (killed) after its time limit."""
        cancelled = []
        self.h.backend.results["ping"] = defer.Deferred(cancelled.append)
        self.call("PING_DIAG_REQ", Dest="1.1.1.1", time="1")
        self.h.clock.advance(1 + 2 + 10)
        self.assertEqual(len(cancelled), 1)
        self.assertEqual(self.call("GET_PING_RESULT")["FailReason"], "ping did not finish")
        self.h.backend.results["ping"] = (0, IPUTILS_OK.encode(), b"")
        self.assertEqual(self.call("PING_DIAG_REQ", Dest="1.1.1.1")["Status"], "0")


class TracerouteTests(SynchronousTestCase):
    """TRACEROUTE_DIAG_REQ / GET_TRACEROUTE_RESULT on canned output."""

    def test_run_and_poll(self):
        """The hop list, one entry per hop, address and times."""
        diag = Diagnostics(which=lambda name: "/usr/bin/" + name)
        h = Harness(self, providers=[diag, TracerouteResult(diag)])
        pending = defer.Deferred()
        h.backend.results["traceroute"] = pending
        self.assertEqual(h.call(self, "GET_TRACEROUTE_RESULT").payload["FailReason"],
                         "wrong user or password")
        self.assertEqual(h.call(self, "GET_TRACEROUTE_RESULT", **ACCOUNT).payload["FailReason"],
                         "no diagnostic has run")
        self.assertEqual(h.call(self, "TRACEROUTE_DIAG_REQ", Dest="8.8.8.8").payload["State"],
                         "Running")
        self.assertEqual(h.backend.commands, [["traceroute", "-n", "-q", "3", "-w", "2",
                                               "-m", "30", "8.8.8.8"]])
        self.assertEqual(h.call(self, "TRACEROUTE_DIAG_REQ", Dest="8.8.8.8").payload[
            "FailReason"], "busy")
        pending.callback((0, BUSYBOX_TRACEROUTE.encode(), b""))
        reply = h.call(self, "GET_TRACEROUTE_RESULT", **ACCOUNT).payload
        self.assertEqual((reply["Status"], reply["State"], reply["Num"]), ("0", "Complete", "3"))
        self.assertEqual(reply["List"][0], {"Hop": "1", "Address": "192.168.1.1",
                                            "Host": "192.168.1.1",
                                            "Times": ["0.542", "0.412", "0.398"], "Note": ""})

    def test_not_installed(self):
        """No traceroute: Status 1 "traceroute is not installed"."""
        h = Harness(self, providers=[Diagnostics(which=lambda name: None)])
        self.assertEqual(h.call(self, "TRACEROUTE_DIAG_REQ", Dest="8.8.8.8").payload[
            "FailReason"], "traceroute is not installed")


class RealPingTests(TestCase):
    """The real ping to 127.0.0.1 through LinuxBackend on the reactor."""

    timeout = 30

    @defer.inlineCallbacks
    def test_real_ping(self):
        """ping -c 2 127.0.0.1 runs in the background and its statistics are parsed."""
        if shutil.which("ping") is None:
            raise self.skipTest("the ping program is not installed "
                                "(apt-get install iputils-ping)")
        diag = Diagnostics()
        h = Harness(self, providers=[diag], backend=LinuxBackend(reactor))
        h.context = replace(h.context, clock=reactor)
        h.dispatcher.context = h.context
        reply = h.call(self, "PING_DIAG_REQ", Dest="127.0.0.1", time="2")
        self.assertEqual(reply.payload["Status"], "0", reply.payload)
        while diag.ping.state == "Running":
            yield deferLater(reactor, 0.1, lambda: None)
        result = h.call(self, "GET_PING_RESULT").payload
        if result["Status"] == "1" and "not permitted" in result.get("FailReason", ""):
            raise self.skipTest("ping may not open an ICMP socket here: " + result["FailReason"])
        self.assertEqual(result["Status"], "0", result)
        self.assertEqual((result["Sent"], result["Received"], result["LossRate"]),
                         ("2", "2", "0"))
        self.assertTrue(float(result["AvgRTT"]) >= 0)


class _Bytes(resource.Resource):
    isLeaf = True

    def __init__(self, size, status=200):
        super().__init__()
        self.size, self.status = size, status

    def render_GET(self, request):
        request.setResponseCode(self.status)
        return b"x" * self.size


class _Endless(resource.Resource):
    """Writes a chunk every 10 ms until the client goes away."""

    isLeaf = True

    def render_GET(self, request):
        from twisted.internet.task import LoopingCall
        loop = LoopingCall(request.write, b"y" * 16384)
        loop.start(0.01)
        request.notifyFinish().addBoth(lambda _: loop.stop())
        return server.NOT_DONE_YET


class HttpDownloadTests(TestCase):
    """HTTP_DOWNLOAD_REQUEST against a twisted.web server on 127.0.0.1."""

    timeout = 20

    def setUp(self):
        root = resource.Resource()
        root.putChild(b"small", _Bytes(100000))
        root.putChild(b"missing", _Bytes(10, status=404))
        root.putChild(b"endless", _Endless())
        site = server.Site(root)
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        tmp = self.mktemp()
        os.makedirs(tmp)
        self.store = Store(os.path.join(tmp, "cubegw"), builtin_schema())
        context = CapabilityContext(
            self.store, GatewayConfig(accounts=Accounts("u", "t")), IDENTITY,
            TempDirBackend(tmp, reactor), reactor)
        self.dispatcher = Dispatcher([HttpDownload()], self.store, context, reactor)

    def call(self, cmd, **args):
        """On the LAN with the telecomadmin account (both CmdTypes need it, as the field)."""
        parameter = {"CmdType": cmd, "SequenceId": SEQ, "USER": "telecomadmin",
                     "PASSWORD": "t"}
        parameter.update(args)
        return self.dispatcher.dispatch("local", parameter).addCallback(lambda o: o.payload)

    @defer.inlineCallbacks
    def test_complete(self):
        """A body shorter than Time: all bytes counted, Completed 1, a rate."""
        reply = yield self.call("HTTP_DOWNLOAD_REQUEST", Method="GET", Time="3",
                                URL=self.base + "/small")
        self.assertEqual(reply["Status"], "0", reply)
        self.assertEqual((reply["Bytes"], reply["Completed"]), ("100000", "1"))
        self.assertTrue(int(reply["Speed"]) > 0)

    @defer.inlineCallbacks
    def test_needs_account(self):
        """Without the account a LAN call is refused, as the field's password flag says."""
        reply = yield self.call("HTTP_DOWNLOAD_REQUEST", PASSWORD="wrong",
                                URL=self.base + "/small")
        self.assertEqual(reply["FailReason"], "wrong user or password")

    @defer.inlineCallbacks
    def test_field_start(self):
        """The field's request (Method Start, Time 30) is measured within the time limit,
        with a Note saying so."""
        reply = yield self.call("HTTP_DOWNLOAD_REQUEST", Method="Start", Time="30",
                                URL=self.base + "/small")
        self.assertEqual(reply["Status"], "0", reply)
        self.assertEqual(reply["Bytes"], "100000")
        self.assertIn("measured for 8 s of the 30 s", reply["Note"])

    @defer.inlineCallbacks
    def test_time_limit(self):
        """An endless body is cut at Time s; the bytes so far are counted."""
        reply = yield self.call("HTTP_DOWNLOAD_REQUEST", Time="1", URL=self.base + "/endless")
        self.assertEqual(reply["Status"], "0", reply)
        self.assertEqual(reply["Completed"], "0")
        self.assertTrue(int(reply["Bytes"]) > 0)
        self.assertTrue(0.5 <= float(reply["Duration"]) <= 2.5, reply["Duration"])

    @defer.inlineCallbacks
    def test_config_default(self):
        """SET_HTTP_CFG stores URL and Time (APP-owned); a request without URL uses them."""
        reply = yield self.call("SET_HTTP_CFG", URL=self.base + "/small", Time="2")
        self.assertEqual(reply["Status"], "0", reply)
        self.assertEqual(self.store.get("http_test", "time"), 2)
        reply = yield self.call("HTTP_DOWNLOAD_REQUEST")
        self.assertEqual(reply["Bytes"], "100000")
        self.store.factory_reset_app()
        self.assertEqual(self.store.get("http_test", "url"), "")

    @defer.inlineCallbacks
    def test_refused(self):
        """Non-http URLs, no URL, Time over the cap, HTTP errors: Status 1."""
        for args, reason in [({"URL": "ftp://127.0.0.1/x"}, "URL must be"),
                             ({}, "no URL given"),
                             ({"URL": self.base + "/small", "Time": "60"}, "Time must be"),
                             ({"URL": self.base + "/small", "Method": "POST"}, "Method"),
                             ({"URL": self.base + "/missing"}, "HTTP status 404")]:
            reply = yield self.call("HTTP_DOWNLOAD_REQUEST", **args)
            self.assertEqual(reply["Status"], "1", args)
            self.assertIn(reason, reply["FailReason"])
        reply = yield self.call("SET_HTTP_CFG", URL="file:///etc/passwd")
        self.assertEqual(reply["Status"], "1")
