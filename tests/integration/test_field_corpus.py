"""The field corpus (tests/helpers/field_corpus.py) through the real daemon on 127.0.0.1.

``twistd -n cubegw`` runs as a process; the test plays the platforms as the public lab
tool does (raw bytes: leading zeros, spaces, junk after the object, the follow-ups to a
trigger answer) and the phone app on the LAN.  It also runs the binding flow after the
lab's SET_RIGHT for GET_SN_INFO with RIGHT 2 (issue 13).
"""

import json
import struct

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial.unittest import TestCase

from cubegw import identity, wire

from tests.helpers import field_corpus as corpus
from tests.integration.support import (
    MAC, Daemon, lan_gateway_config, register_gateway, scratch_dir, udp_peer)

WIFI = ("ChinaNet-TEST", "wifipass")
USERADMIN = "admin1"


class RawClient(Int32StringReceiver):
    """Sends frame payloads as given (bytes); frames received go to a queue."""

    def __init__(self):
        self.frames = defer.DeferredQueue()
        self.closed = defer.Deferred()

    def connectionMade(self):
        factory = getattr(self, "factory", None)
        if factory is not None and hasattr(factory, "connections"):
            factory.connections.put(self)

    def stringReceived(self, data):
        self.frames.put(json.loads(data))

    def send_raw(self, payload):
        self.transport.write(struct.pack("!I", len(payload)) + payload)

    def connectionLost(self, reason):
        self.closed.callback(None)

    @defer.inlineCallbacks
    def reply(self):
        """The next frame that is a Post reply (it has an ID)."""
        frame = yield self.frames.get()
        while "ID" not in frame:
            if frame.get("RPCMethod") == "Heartbeat":
                self.send_raw(b'{"Result":0}')
            frame = yield self.frames.get()
        return frame


class FieldCorpusTests(TestCase):
    """Every corpus message through the daemon's LAN server and plugin channel."""

    timeout = 90

    @defer.inlineCallbacks
    def setUp(self):
        self.tmp = scratch_dir(self)
        self.dist, self.oper = udp_peer(self), udp_peer(self)
        self.config, self.lan_port = lan_gateway_config(
            self.tmp, lan={"idle_timeout": 3}, wifi={"ssid": WIFI[0], "password": WIFI[1]})
        self.daemon = Daemon("cubegw", ["--config", self.config, "--mgt-url", "127.0.0.1",
                                        "--port", str(self.dist.address[1])], self.tmp).start()
        self.addCleanup(self.daemon.stop)
        yield self.daemon.wait_for(f"listening on 127.0.0.1:{self.lan_port}")

    def lan_client(self):
        return connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.lan_port),
                               RawClient())

    def check(self, entry, frame):
        name, _, ident, cmd, status, fail = entry
        self.assertEqual((frame["Result"], frame["ID"]), (0, ident), name)
        payload = wire.decode_parameter(frame["return_Parameter"])
        self.assertEqual((payload["CmdType"], payload["Status"], payload.get("FailReason")),
                         (cmd, status, fail), name)

    @defer.inlineCallbacks
    def test_lan_corpus(self):
        """Each corpus Post1 on its own LAN connection is answered in its own terms; an
        unreadable frame first is dropped and the same connection then served."""
        for n, entry in enumerate(corpus.POSTS):
            client = yield self.lan_client()
            if n == 0:
                client.send_raw(corpus.UNREADABLE)
            client.send_raw(corpus.post(entry, "Post1"))
            frame = yield client.frames.get()
            self.check(entry, frame)
            yield client.closed

    @defer.inlineCallbacks
    def start_center(self):
        factory = protocol.Factory.forProtocol(RawClient)
        factory.connections = defer.DeferredQueue()
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        return factory, port.getHost().port

    def trigger(self, dev_rnd, sn, center_port, source, tail=b"\n"):
        """A RequestPlug-in as the lab builds it: ServerPort a numeric string, a newline
        after the object."""
        key = identity.trigger_key(dev_rnd, sn, WIFI[0], WIFI[1], USERADMIN)
        data = ('{"RPCMethod": "RequestPlug-in", "Key": "%s", "ServerAddr": "127.0.0.1", '
                '"ServerPort": "%05d"}' % (key, center_port)).encode() + tail
        self.oper.transport.write(data, source)

    @defer.inlineCallbacks
    def accept(self, centers):
        conn = yield centers.connections.get()
        boot = yield conn.frames.get()
        self.assertEqual((boot["RPCMethod"], boot["MAC"]), ("Boot", MAC))
        conn.send_raw(b'{"Result":0000, "ChallengeCode":"00112233445566778899AABBCCDDEEFF"}')
        register = yield conn.frames.get()
        self.assertEqual(register["RPCMethod"], "Register")
        conn.send_raw(b'{"Result": 0}\0')
        return conn

    @defer.inlineCallbacks
    def test_plugin_corpus_follow_ups_and_binding(self):
        """Trigger (numeric-string port, junk after it) answered with a fresh DevRND; the
        lab's {"Result":1} ignored; every corpus Post answered on the channel; the lab's
        SET_RIGHT GET_SN_INFO RIGHT 2, then the binding calls on the LAN work with the
        answer's DevRND; {"Result":-1} after the next trigger answer: BootFirst."""
        register, source = yield register_gateway(self.dist, self.oper)
        sn = register["SN"]
        centers, center_port = yield self.start_center()

        self.trigger(register["DevRND"], sn, center_port, source)
        answer, _ = yield self.oper.next()
        self.assertEqual(answer["Result"], 0)
        dev_rnd = answer["DevRND"]
        self.assertNotEqual(dev_rnd, register["DevRND"])
        self.oper.transport.write(corpus.FOLLOW_UP_ACK, source)
        conn = yield self.accept(centers)

        for entry in corpus.POSTS:
            conn.send_raw(corpus.post(entry, "Post"))
            frame = yield conn.reply()
            self.check(entry, frame)
        conn.send_raw(b'{"RPCMethod":"Post","Parameter":"e30="')   # unreadable: dropped
        conn.send_raw(corpus.SET_RIGHT_GET_SN_INFO.encode())
        frame = yield conn.reply()
        self.assertEqual(frame["ID"], 0)
        self.assertEqual(wire.decode_parameter(frame["return_Parameter"])["Status"], "0")

        # the binding flow (deck 6.2) on the LAN after the field's SET_RIGHT
        client = yield self.lan_client()
        client.send_raw(corpus.post(("", '{{"RPCMethod":"{method}","ID":0001,'
                                     '"Plugin_Name":"test","Version":"1.0","Parameter":"'
                                     + corpus.b64({"CmdType": "GET_SN_INFO",
                                                   "SequenceId": "00000001"}) + '"}}'),
                                    "Post1"))
        sn_info = wire.decode_parameter((yield client.frames.get())["return_Parameter"])
        self.assertEqual((sn_info["Status"], sn_info["MAC"], sn_info["BussinessStatus"]),
                         ("0", MAC, "SUCCESS"))
        client = yield self.lan_client()
        client.send_raw(corpus.post(("", '{{"RPCMethod":"{method}","ID":0002,'
                                     '"Plugin_Name":"test","Version":"1.0","Parameter":"'
                                     + corpus.b64({"CmdType": "CHECK_PASSWD_PARAM",
                                                   "SequenceId": "00000002",
                                                   "PassWD": USERADMIN}) + '"}}'),
                                    "Post1"))
        check = wire.decode_parameter((yield client.frames.get())["return_Parameter"])
        self.assertEqual((check["Status"], check["SN"]),
                         ("0", identity.encrypted_sn(dev_rnd, sn)))

        # the next trigger uses the answer's DevRND; the platform then says -1
        self.trigger(dev_rnd, sn, center_port, source, tail=b"")
        answer, _ = yield self.oper.next()
        self.assertEqual(answer["Result"], 0)
        self.oper.transport.write(corpus.FOLLOW_UP_AGAIN, source)
        boot_first, _ = yield self.dist.next()
        self.assertEqual(boot_first["RPCMethod"], "BootFirst")
