"""The real daemon (``twistd -n cubegw``) against a scripted UDP platform on 127.0.0.1."""

import io
import json
import os
import subprocess
import sys

from twisted.internet import defer, threads
from twisted.trial.unittest import TestCase

from cubegw import identity
from cubegw.app import main as app_main
from cubegw.ctl import main as ctl_main

from tests.integration.support import (
    MAC, ROOT, Daemon, UdpPeer, gateway_config, lan_gateway_config, scratch_dir, sleep,
    udp_peer)

CHALLENGE = "00112233445566778899AABBCCDDEEFF"


class RegistrationFlowTests(TestCase):
    timeout = 60

    def setUp(self):
        self.tmp = scratch_dir(self)
        self.dist, self.oper = udp_peer(self), udp_peer(self)
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
        self.oper.send({"Result": 0, "Interval": 1}, addr)
        yield sleep(0.3)

        status = self.ctl_status()
        self.assertEqual(status["state"], "online")
        self.assertEqual(status["operation"], f"127.0.0.1:{self.oper.address[1]}")
        self.assertTrue(status["alive"])
        self.assertIsNotNone(status["last_heartbeat"])
        # the second answered Hb changed only counters (written once a minute by
        # themselves): cubegw-ctl's SIGUSR1 brought them up to date
        self.assertEqual(status["counters"]["hb_ok"], 2)

        yield daemon.stop()
        self.assertIn("registered", daemon.text())
        self.assertFalse(self.ctl_status()["alive"])

        # A reboot: straight to Boot at the stored operation platform.
        self.start_daemon()
        msg, addr = yield self.expect(self.oper, "Boot")
        self.assertTrue(self.dist.queue.pending == [])

    def ctl_status(self):
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


class LocalCallTests(TestCase):
    """Flow 5 through the real daemon: cubegw-app local, Post1 on 127.0.0.1."""

    timeout = 60

    def setUp(self):
        self.tmp = scratch_dir(self)
        self.config, self.lan_port = lan_gateway_config(self.tmp)
        self.daemon = Daemon("cubegw", ["--config", self.config, "--mgt-url", "127.0.0.1",
                                        "--port", "9"], self.tmp).start()
        self.addCleanup(self.daemon.stop)
        return self.daemon.wait_for(f"127.0.0.1:{self.lan_port}")

    def app(self, *args):
        out = io.StringIO()
        return threads.deferToThread(
            app_main, ["local", "--port", str(self.lan_port)] + list(args), out
        ).addCallback(lambda code: (code, out.getvalue()))

    @defer.inlineCallbacks
    def test_get_sn_info(self):
        """GET_SN_INFO answers the configured MAC; not registered yet, so FAIL."""
        code, out = yield self.app("GET_SN_INFO")
        self.assertEqual(code, 0, out)
        payload = json.loads(out.split("\n", 1)[1])
        self.assertEqual((payload["MAC"], payload["BussinessStatus"]), (MAC, "FAIL"))

    @defer.inlineCallbacks
    def test_unknown_cmdtype_as_the_field(self):
        """An unknown CmdType on the LAN: Result 0, Status 1 UNRECOGNIZE_REQUEST, exit 1;
        QUERY_CPU_INFO is served locally (every CmdType is both sides by default)."""
        code, out = yield self.app("NO_SUCH_COMMAND")
        self.assertEqual((code, out.splitlines()[0]), (1, "Result 0"))
        payload = json.loads(out.split("\n", 1)[1])
        self.assertEqual((payload["Status"], payload["FailReason"]),
                         ("1", "UNRECOGNIZE_REQUEST"))
        code, out = yield self.app("QUERY_CPU_INFO")
        self.assertEqual(code, 0, out)

    @defer.inlineCallbacks
    def test_ability_closes_local_interface(self):
        """Ability=1 set while running: every Post1 gets -12."""
        self.assertEqual(ctl_main(["--config", self.config, "mgt", "set", "Ability", "1"],
                                  out=_Null()), 0)
        # the daemon sees the file through its watch: call once it has, not before
        yield self.daemon.wait_for("store changed outside the daemon")
        code, out = yield self.app("GET_SN_INFO")
        self.assertEqual(out.splitlines()[0], "Result -12")




class MirrorTests(TestCase):
    """X_CT-COM_Mgt survives a factory reset through the mirror the daemon keeps."""

    timeout = 60

    @defer.inlineCallbacks
    def test_daemon_mirrors_and_restore_recovers(self):
        """The daemon mirrors --port into persist_dir; after the UCI file is wiped, restore brings it back."""
        tmp = os.path.abspath(self.mktemp())
        persist = os.path.join(tmp, "persist")
        os.makedirs(persist)
        dist = UdpPeer().listen()
        self.addCleanup(dist.port.stopListening)
        config = gateway_config(tmp, store={"persist_dir": persist})
        daemon = Daemon("cubegw", ["--config", config, "--mgt-url", "127.0.0.1",
                                   "--port", str(dist.address[1])], tmp).start()
        self.addCleanup(daemon.stop)
        yield dist.next()
        yield daemon.stop()
        with open(os.path.join(persist, "mgt")) as f:
            self.assertIn(f"option Port '{dist.address[1]}'", f.read())
        uci_file = os.path.join(tmp, "config", "cubegw")
        os.unlink(uci_file)                      # firstboot: back to the ROM default
        proc = yield threads.deferToThread(
            subprocess.run, [sys.executable, "-m", "cubegw.store.mirror", "restore",
                             "--config", uci_file, "--mirror-dir", persist],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        out = io.StringIO()
        self.assertEqual(ctl_main(["--config", config, "mgt", "get", "Port"], out=out), 0)
        self.assertEqual(out.getvalue().strip(), str(dist.address[1]))


class CorruptStoreTests(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def test_corrupt_store_recovered_from_backup(self):
        """A store file that does not parse at start is moved aside; X_CT-COM_Mgt comes from the backup."""
        tmp = os.path.abspath(self.mktemp())
        os.makedirs(tmp)
        dist = UdpPeer().listen()
        self.addCleanup(dist.port.stopListening)
        config = gateway_config(tmp)
        daemon = Daemon("cubegw", ["--config", config, "--mgt-url", "127.0.0.1",
                                   "--port", str(dist.address[1])], tmp).start()
        yield dist.next()
        yield daemon.stop()
        uci_file = os.path.join(tmp, "config", "cubegw")
        with open(uci_file, "w") as f:
            f.write("config mgt 'mgt\n\toption Port '1\n")       # torn, does not parse
        daemon = Daemon("cubegw", ["--config", config], tmp).start()
        self.addCleanup(daemon.stop)
        msg, _ = yield dist.next()               # the Port from the backup, not the default
        self.assertEqual(msg["RPCMethod"], "BootFirst")
        self.assertIn("store recovery", daemon.text())
        self.assertTrue(any(name.startswith("cubegw.corrupt-")
                            for name in os.listdir(os.path.join(tmp, "config"))))
