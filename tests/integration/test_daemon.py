"""The real daemon (``twistd -n cubegw``) against a scripted UDP platform on 127.0.0.1."""

import json
import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from cubegw import identity
from cubegw.ctl import main as ctl_main

from tests.integration.support import MAC, Daemon, UdpPeer, gateway_config, sleep

CHALLENGE = "00112233445566778899AABBCCDDEEFF"


class RegistrationFlowTests(TestCase):
    timeout = 60

    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.dist = UdpPeer().listen()
        self.oper = UdpPeer().listen()
        self.addCleanup(self.dist.port.stopListening)
        self.addCleanup(self.oper.port.stopListening)
        self.config = gateway_config(self.tmp)
        self.daemons = []

    def tearDown(self):
        return defer.gatherResults([d.stop() for d in self.daemons])

    def start_daemon(self):
        daemon = Daemon("cubegw", ["--config", self.config, "--mgt-url", "127.0.0.1",
                                   "--port", str(self.dist.address[1])], self.tmp).start()
        self.daemons.append(daemon)
        return daemon

    @defer.inlineCallbacks
    def expect(self, peer, method):
        msg, addr = yield peer.next()
        self.assertEqual(msg.get("RPCMethod"), method, msg)
        self.assertEqual(msg["MAC"], MAC)
        return msg, addr

    @defer.inlineCallbacks
    def test_first_registration_then_reboot(self):
        """BootFirst, RegisterFirst, Boot, Register, Hb 1, Hb 0; after a restart, Boot at once."""
        daemon = self.start_daemon()
        msg, addr = yield self.expect(self.dist, "BootFirst")
        self.assertEqual(msg["IPAddr"], "127.0.0.1")
        self.dist.send({"Result": 0, "ChallengeCode": CHALLENGE}, addr)
        msg, addr = yield self.expect(self.dist, "RegisterFirst")
        self.assertEqual(msg["CheckSN"], identity.check_sn(CHALLENGE, msg["SN"]))
        self.dist.send({"Result": 0, "ServerAddr": "127.0.0.1",
                        "ServerPort": self.oper.address[1], "Interval": 1}, addr)
        msg, addr = yield self.expect(self.oper, "Boot")
        self.oper.send({"Result": 0, "ChallengeCode": CHALLENGE, "Interval": 1, "flag": "1"}, addr)
        msg, addr = yield self.expect(self.oper, "Register")
        self.oper.send({"Result": 2, "UPDATEServer": "127.0.0.1",
                        "MessageServer": "127.0.0.1:9"}, addr)
        msg, addr = yield self.expect(self.oper, "Hb")
        self.assertEqual(msg["FLAG"], "1")
        self.oper.send({"Result": 0, "Interval": 1}, addr)
        msg, addr = yield self.expect(self.oper, "Hb")
        self.assertEqual(msg["FLAG"], "0")
        self.oper.send({"Result": 0, "Interval": 30}, addr)
        yield sleep(0.3)

        status = self.ctl_status()
        self.assertEqual(status["state"], "online")
        self.assertEqual(status["operation"], f"127.0.0.1:{self.oper.address[1]}")
        self.assertTrue(status["alive"])
        self.assertIsNotNone(status["last_heartbeat"])

        yield daemon.stop()
        self.assertIn("registered", daemon.text())
        self.assertFalse(self.ctl_status()["alive"])

        # A reboot: straight to Boot at the stored operation platform.
        self.start_daemon()
        msg, addr = yield self.expect(self.oper, "Boot")
        self.assertTrue(self.dist.queue.pending == [])

    def ctl_status(self):
        import io
        out = io.StringIO()
        self.assertEqual(ctl_main(["--config", self.config, "status", "--json"], out=out), 0)
        return json.loads(out.getvalue())

    @defer.inlineCallbacks
    def test_bad_datagrams_do_not_stop_it(self):
        """Garbage at the gateway's socket is dropped; registration carries on."""
        self.start_daemon()
        msg, addr = yield self.expect(self.dist, "BootFirst")
        for junk in [b"\x00\xff", b"{", b"[]", b'{"Result":"abc"}', b"x" * 4000]:
            self.dist.transport.write(junk, addr)
        yield sleep(0.2)
        self.dist.send({"Result": 0, "ChallengeCode": CHALLENGE}, addr)
        msg, addr = yield self.expect(self.dist, "RegisterFirst")

    @defer.inlineCallbacks
    def test_mgt_set_reaches_running_daemon(self):
        """``cubegw-ctl mgt set Port`` while running: the next BootFirst goes to the new port."""
        self.start_daemon()
        yield self.expect(self.dist, "BootFirst")
        other = UdpPeer().listen()
        self.addCleanup(other.port.stopListening)
        self.assertEqual(ctl_main(["--config", self.config, "mgt", "set", "Port",
                                   str(other.address[1])], out=_Null()), 0)
        msg, addr = yield self.expect(other, "BootFirst")

    def test_bad_config_is_one_line(self):
        """A config with an unknown key stops twistd with a message naming the key."""
        with open(self.config, "a") as f:
            f.write("bogus_key: 1\n")
        daemon = self.start_daemon()

        def ended(_):
            self.assertIn("bogus_key: unknown key", daemon.text())
        return daemon.ended.addCallback(ended)


class _Null:
    def write(self, _):
        pass
