"""The wire message log: its shared ring and per-device counters, what each platform part
records, and the API that reads it (JSON, JSON lines, server-sent events), all in memory
on a Clock."""

import gc
import json

from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from cubegw import wire
from cubegw.platform.config import ConfigError, parse_config
from cubegw.platform.messagelog import (CANONICAL_HB, HB_IP, UNKNOWN, MessageLog, _messages,
                                       decode, json_lines)

from tests.helpers import MAC

OTHER = "0011223344AA"
from tests.helpers.platform import USER, MemoryPlatform
from tests.helpers.plugincenter import Gateway


class RingTests(SynchronousTestCase):
    """The MessageLog on its own."""

    def setUp(self):
        self.clock = Clock()
        self.log = MessageLog(self.clock, size=3)

    def test_ring_is_bounded(self):
        """Only the newest size messages are kept; counters go on."""
        for i in range(5):
            self.clock.advance(1)
            self.log.inbound(MAC, "operation", ("127.0.0.1", 1), {"n": i})
        got = self.log.messages(MAC)
        self.assertEqual([m["message"]["n"] for m in got], [2, 3, 4])
        self.assertEqual([m["seq"] for m in got], [3, 4, 5])
        self.assertEqual(got[0]["time"], 3.0)
        self.assertEqual(self.log.counts(MAC), {"in": 5, "out": 0, "kept": 3})

    def test_ring_is_shared_by_devices(self):
        """Devices share the ring: a busy device pushes another's messages out; each
        keeps its counters and its newest message, which outlives the ring; a request
        answered at once (exchange) is one slot, read as its two messages."""
        self.log.inbound(OTHER, "operation", ("h", 2), {"n": "other"})
        for i in range(3):
            self.log.exchange(self.log.device(MAC), "operation", ("h", 1), b'{"n":%d}' % i,
                              b'{"Result":0}')
        self.assertEqual(self.log.messages(OTHER), [])
        self.assertEqual(self.log.counts(OTHER), {"in": 1, "out": 0, "kept": 0})
        self.assertEqual(self.log.last(OTHER)["message"], {"n": "other"})
        # an exchange (a routine Hb and its reply) takes one slot
        self.assertEqual(self.log.counts(MAC), {"in": 3, "out": 3, "kept": 6})
        self.assertEqual([(m["seq"], m["direction"]) for m in self.log.messages(MAC)],
                         [(2, "in"), (3, "out"), (4, "in"), (5, "out"), (6, "in"), (7, "out")])
        self.assertEqual([m["seq"] for m in self.log.messages(MAC, since=4)], [5, 6, 7])
        self.assertEqual([m["seq"] for m in self.log.messages(MAC, limit=3)], [5, 6, 7])
        self.assertEqual(self.log.last(MAC)["seq"], 7)
        self.assertEqual(self.log.macs(), [OTHER, MAC])
        for _ in range(3):                                     # MAC's exchanges leave
            self.log.exchange(self.log.device(OTHER), "operation", ("h", 2), b"{}", b"{}")
        self.assertEqual(self.log.counts(MAC), {"in": 3, "out": 3, "kept": 0})
        self.assertEqual(self.log.messages(MAC), [])
        self.assertEqual((self.log.last(MAC)["seq"], self.log.last(MAC)["message"]),
                         (7, {"Result": 0}))

    def test_exchange_is_two_records(self):
        """exchange records the request in and the reply out as record would, one seq
        each, at the same time, and listeners see both."""
        seen = []
        self.log.subscribe(lambda mac, entry: seen.append(decode(mac, entry)))
        self.clock.advance(7)
        self.log.exchange(self.log.device(MAC), "operation", ("h", 1), b'{"RPCMethod":"Hb"}',
                          b'{"Result":0}')
        got = self.log.messages(MAC)
        self.assertEqual(got, seen)
        self.assertEqual([(m["seq"], m["time"], m["direction"], m["peer"]) for m in got],
                         [(1, 7.0, "in", "h:1"), (2, 7.0, "out", "h:1")])
        self.assertEqual(got[1]["message"], {"Result": 0})
        log = MessageLog(self.clock, 0)
        log.exchange(log.device(MAC), "operation", ("h", 1), b"{}", b"{}")
        self.assertEqual((log.macs(), log.last_seq), ([], 0))

    def test_heartbeat_kept_as_its_ip_reads_back_as_sent(self):
        """heartbeat keeps a canonically spelt Hb as its IPAddr, and every reader (the
        ring, last, a listener) gets the datagram back byte for byte, one slot, two seqs;
        the ring counts it as an exchange (two messages kept)."""
        log = MessageLog(self.clock, 2)
        sent = {}
        for i, ip in enumerate(("", "192.0.2.1", "2001:db8::1", "a b!#[]~" * 32)):
            data = CANONICAL_HB % (MAC, ip)
            sent[i] = json.loads(data)
            self.clock.advance(1)
            log.exchange(log.device(MAC), "operation", ("h", 1), ip, b'{"Result":0}', kind=HB_IP)
            entry = log._ring[-1]
            self.assertEqual(_messages(entry)[0][5], data.encode("ascii"))
            self.assertFalse(data.encode("ascii") in entry)
        got = log.messages(MAC)
        self.assertEqual([(m["seq"], m["direction"], m["message"]) for m in got],
                         [(5, "in", sent[2]), (6, "out", {"Result": 0}),
                          (7, "in", sent[3]), (8, "out", {"Result": 0})])
        self.assertEqual(log.counts(MAC), {"in": 4, "out": 4, "kept": 4})
        self.assertEqual(log.messages(MAC, since=6), got[2:])
        seen = []
        log.subscribe(lambda mac, entry: seen.append(entry[5]))
        log.exchange(log.device(MAC), "operation", ("h", 1), "198.51.100.7", b'{"Result":0}',
                     kind=HB_IP)
        self.assertEqual(seen, [(CANONICAL_HB % (MAC, "198.51.100.7")).encode("ascii"),
                                b'{"Result":0}'])

    def test_all_counts_are_each_devices_counts(self):
        """all_counts reads the ring once for every device: the same as counts for each,
        the messages an exchange keeps counted as two, those pushed out as none."""
        log = MessageLog(self.clock, 4)
        log.inbound(OTHER, "operation", ("h", 2), {"n": 0})
        log.exchange(log.device(MAC), "operation", ("h", 1), b"{}", b"{}")
        log.inbound(UNKNOWN, "operation", ("h", 3), b"?")
        log.exchange(log.device(MAC), "operation", ("h", 1), "192.0.2.1", b"{}", kind=HB_IP)
        every = log.all_counts()
        self.assertEqual(every, {mac: log.counts(mac) for mac in log.macs()})
        self.assertEqual(every[MAC], {"in": 2, "out": 2, "kept": 4})
        self.assertEqual(every[OTHER], {"in": 1, "out": 0, "kept": 1})
        log.exchange(log.device(MAC), "operation", ("h", 1), b"{}", b"{}")
        self.assertEqual(log.all_counts()[OTHER], {"in": 1, "out": 0, "kept": 0})

    def test_device_handle_kept_by_a_caller(self):
        """device() gives the same Device each time, which a caller may keep: after
        forget it counts afresh under its MAC; an off log gives None and records
        nothing for it."""
        handle = self.log.device(MAC)
        self.assertIs(self.log.device(MAC), handle)
        self.log.exchange(handle, "operation", ("h", 1), b"{}", b"{}")
        self.log.forget(MAC)
        self.assertEqual((self.log.macs(), self.log.counts(MAC)),
                         ([], {"in": 0, "out": 0, "kept": 0}))
        self.log.exchange(handle, "operation", ("h", 1), b"{}", b"{}")
        self.assertEqual(self.log.counts(MAC), {"in": 1, "out": 1, "kept": 2})
        off = MessageLog(self.clock, 0)
        self.assertIsNone(off.device(MAC))
        off.exchange(None, "operation", ("h", 1), b"{}", b"{}")
        self.assertEqual((off.macs(), off.last_seq), ([], 0))

    def test_messages_with_since_reads_from_the_newest(self):
        """since stops the read where the older entries start; limit keeps the newest;
        other devices' entries in between are skipped."""
        log = MessageLog(self.clock, 100)
        for i in range(10):
            log.inbound(MAC if i % 2 else OTHER, "operation", ("h", 1), {"n": i})
        self.assertEqual([m["seq"] for m in log.messages(MAC, since=5)], [6, 8, 10])
        self.assertEqual([m["seq"] for m in log.messages(MAC, since=5, limit=2)], [8, 10])
        self.assertEqual([m["seq"] for m in log.messages(OTHER)], [1, 3, 5, 7, 9])
        self.assertEqual(log.messages("001122334455"), [])

    def test_routine_entries_not_tracked_by_the_collector(self):
        """An exchange's ring entry (bytes in, bytes out) holds no object of the log's:
        once the garbage collector has seen it, it tracks it no more, so heartbeats do
        not fill its oldest generation; its counters are still the device's."""
        log = MessageLog(self.clock, 10)
        for mac in (OTHER, MAC):
            log.exchange(log.device(mac), "operation", ("127.0.0.1", 1), b'{"RPCMethod":"Hb"}',
                         b"{}")
        gc.collect()
        self.assertEqual([gc.is_tracked(entry) for entry in log._ring], [False, False])
        self.assertEqual(log.counts(MAC), {"in": 1, "out": 1, "kept": 2})

    def test_forget(self):
        """forget drops a device's entries and counters, not the others'."""
        self.log.inbound(OTHER, "operation", ("h", 2), {"n": 1})
        self.log.inbound(MAC, "operation", ("h", 1), {"n": 2})
        self.log.forget(MAC)
        self.assertEqual(self.log.counts(MAC), {"in": 0, "out": 0, "kept": 0})
        self.assertEqual([m["seq"] for m in self.log.messages(OTHER)], [1])
        for i in range(3):
            self.log.inbound(MAC, "operation", ("h", 1), {"n": i})
        self.assertEqual(self.log.counts(OTHER)["kept"], 0)

    def test_since_and_limit(self):
        """since pages by seq, limit keeps the newest."""
        for i in range(3):
            self.log.outbound(MAC, "operation", ("h", 1), {"n": i})
        self.assertEqual([m["seq"] for m in self.log.messages(MAC, since=1)], [2, 3])
        self.assertEqual([m["seq"] for m in self.log.messages(MAC, limit=1)], [3])
        self.assertEqual(self.log.messages(MAC, limit=0), [])

    def test_off_records_nothing(self):
        """per_device 0: nothing is kept, nothing counted."""
        log = MessageLog(self.clock, 0)
        log.inbound(MAC, "operation", ("h", 1), b"{}")
        self.assertEqual((log.macs(), log.last_seq, log.enabled), ([], 0, False))

    def test_bad_size_refused(self):
        """A negative or non-integer ring size is a ValueError."""
        for bad in (-1, 1.5, True, "3"):
            self.assertRaises(ValueError, MessageLog, self.clock, bad)

    def test_decode_bytes_parameter_and_garbage(self):
        """Bytes are decoded as JSON at read time, Parameter too; garbage stays as text."""
        post = {"RPCMethod": "Post", "ID": 1,
                "Parameter": wire.encode_parameter({"CmdType": "GET_SN_INFO"})}
        self.log.outbound(MAC, "plugin_center", ("::1", 9), json.dumps(post).encode())
        self.log.inbound(None, "operation", ("h", 2), b"\xff not json")
        self.log.inbound(MAC, "plugin_center", ("h", 2), {"Result": 0, "ID": 1,
                                                         "return_Parameter": "%%%"})
        first, bad_param = self.log.messages(MAC)
        self.assertEqual(first["parameter"], {"CmdType": "GET_SN_INFO"})
        self.assertEqual(first["peer"], "[::1]:9")
        self.assertIn("parameter_error", bad_param)
        garbage = self.log.messages(UNKNOWN)[0]
        self.assertIn("not json", garbage["message"]["raw"])

    def test_typed_message_and_listener(self):
        """A typed wire message is read as its wire form; a listener sees each entry
        until stopped."""
        seen = []
        stop = self.log.subscribe(lambda mac, entry: seen.append(decode(mac, entry)))
        self.log.outbound(MAC, "operation", ("h", 1), wire.Disconnect())
        stop()
        self.log.outbound(MAC, "operation", ("h", 1), wire.Disconnect())
        self.assertEqual([s["message"] for s in seen], [{"RPCMethod": "Disconnect"}])

    def test_json_lines(self):
        """The export is one JSON object a line."""
        self.log.inbound(MAC, "operation", ("h", 1), {"a": "é"})
        lines = json_lines(self.log.messages(MAC)).decode("utf-8").splitlines()
        self.assertEqual(json.loads(lines[0])["message"], {"a": "é"})

    def test_config_key(self):
        """message_log is a whole number >= 0 in the configuration, default 50000."""
        self.assertEqual(parse_config("{}").message_log, 50000)
        self.assertEqual(parse_config("message_log: 0").message_log, 0)
        self.assertRaises(ConfigError, parse_config, "message_log: -1")
        self.assertRaises(ConfigError, parse_config, "message_log: many")


class RecordedTests(SynchronousTestCase):
    """What the UDP platforms and the plugin center write into the log."""

    def setUp(self):
        self.platform = MemoryPlatform(log_size=50)

    def methods(self):
        return [(m["direction"], m["message"].get("RPCMethod") or m["message"].get("Result"))
                for m in self.platform.wirelog.messages(MAC)]

    def test_registration_and_routine_heartbeats(self):
        """Every request and reply of a registration, and routine Hb both ways."""
        self.platform.online(hbs=3)
        self.assertEqual(self.methods(), [
            ("in", "BootFirst"), ("out", 0), ("in", "RegisterFirst"), ("out", 0),
            ("in", "Boot"), ("out", 0), ("in", "Register"), ("out", 2),
            ("in", "Hb"), ("out", 0), ("in", "Hb"), ("out", 0), ("in", "Hb"), ("out", 0)])
        first = self.platform.wirelog.messages(MAC)[0]
        self.assertEqual((first["server"], first["peer"]), ("distribution", "127.0.0.9:40000"))

    def test_fault_result_and_bad_datagram(self):
        """A result rule's reply is logged; an undecodable datagram goes to UNKNOWN."""
        self.platform.faults.set_rules([{"mac": "*", "message": "BootFirst", "result": -6}])
        self.platform.send(self.platform.dist, {"RPCMethod": "BootFirst", "MAC": MAC})
        self.platform.send(self.platform.dist, b"nonsense")
        self.assertEqual(self.platform.wirelog.counts(UNKNOWN)["in"], 1)
        self.platform.faults.set_rules([])

    def test_trigger_and_its_answer(self):
        """A RequestPlug-in out and the gateway's answer in, under the device."""
        self.platform.online()
        d = self.platform.oper.send_request_plugin(MAC, "127.0.0.1", 9000)
        self.platform.send(self.platform.oper, {"Result": 0, "DevRND": "AB" * 16})
        self.assertEqual(self.successResultOf(d), 0)
        self.assertEqual(self.methods()[-2:], [("out", "RequestPlug-in"), ("in", 0)])
        self.assertEqual(self.platform.wirelog.messages(MAC)[-1]["message"]["DevRND"],
                         "AB" * 16)

    def test_plugin_center_frames(self):
        """Boot, Register, a Post and its reply, with the Parameters decoded."""
        self.platform.online()
        gateway = Gateway(self.platform.center)
        gateway.connect()
        d = self.platform.center.call(MAC, {"CmdType": "GET_SN_INFO", "SequenceId": "0000000A"})
        gateway.reply(1, CmdType="GET_SN_INFO", Status="0")
        self.successResultOf(d)
        plugin = [m for m in self.platform.wirelog.messages(MAC)
                  if m["server"] == "plugin_center"]
        self.assertEqual([m["direction"] for m in plugin], ["in", "out"] * 2 + ["out", "in"])
        self.assertEqual(plugin[-2]["parameter"]["CmdType"], "GET_SN_INFO")  # the Post
        self.assertEqual(plugin[-1]["parameter"], {"CmdType": "GET_SN_INFO", "Status": "0"})
        self.assertEqual(plugin[0]["peer"], "127.0.0.9:40000")


class MessagesApiTests(SynchronousTestCase):
    """GET /api/devices/<MAC>/messages and the live streams."""

    def setUp(self):
        self.platform = MemoryPlatform()
        self.platform.online()

    def test_json(self):
        """The device's messages, decoded, with the log's newest seq."""
        r = self.platform.request("GET", f"/api/devices/{MAC}/messages")
        self.assertEqual(r.code, 200)
        self.assertEqual(r.json["messages"][0]["message"]["RPCMethod"], "BootFirst")
        self.assertEqual(r.json["last_seq"], 10)
        r = self.platform.request("GET", f"/api/devices/{MAC}/messages?since=8&limit=1")
        self.assertEqual([m["seq"] for m in r.json["messages"]], [10])

    def test_jsonl_export(self):
        """format=jsonl answers JSON lines as an attachment."""
        r = self.platform.request("GET", f"/api/devices/{MAC}/messages?format=jsonl")
        self.assertEqual(r.code, 200)
        self.assertIn("attachment", r.headers["content-disposition"])
        lines = r.body.decode().splitlines()
        self.assertEqual(len(lines), 10)
        self.assertEqual(json.loads(lines[0])["seq"], 1)

    def test_hostile_queries(self):
        """Bad since/limit/format are 400; an unknown MAC 404; a non-admin 403; none 401."""
        base = f"/api/devices/{MAC}/messages"
        for query in ("?since=x", "?limit=-1", "?format=xml", "?since=99999999999999999999"):
            self.assertEqual(self.platform.request("GET", base + query).code, 400, query)
        self.assertEqual(self.platform.request("GET", base + "?format=jsonl&since=x").code,
                         400)
        self.assertEqual(self.platform.request(
            "GET", "/api/devices/001122334455/messages").code, 404)
        self.assertEqual(self.platform.request("GET", "/api/devices/zz/messages").code, 404)
        self.assertEqual(self.platform.request("GET", base, token=USER).code, 403)
        self.assertEqual(self.platform.request("GET", base + "?format=jsonl",
                                               token=USER).code, 403)
        self.assertEqual(self.platform.request("GET", base, token=None).code, 401)

    def test_device_stream(self):
        """The stream replays from since, sends each new message as an event, and stops
        listening when the client goes."""
        response = self.platform.start("GET", f"/api/devices/{MAC}/messages/stream?since=9")
        self.assertFalse(response.done)
        self.platform.send(self.platform.oper, {"RPCMethod": "Hb", "MAC": MAC,
                                                "IPAddr": "192.0.2.10", "FLAG": "0"})
        text = response.transport.value().decode()
        self.assertIn("text/event-stream", text)
        events = [json.loads(line[6:]) for line in text.splitlines()
                  if line.startswith("data: ")]
        self.assertEqual([e["seq"] for e in events], [10, 11, 12])
        self.platform.clock.advance(15)
        self.assertIn(": keep-alive", response.transport.value().decode())
        response.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.platform.wirelog._listeners, [])
        self.assertEqual([c for c in self.platform.clock.getDelayedCalls()
                          if getattr(c.func, "__name__", "") == "_keepalive"], [])

    def test_all_devices_stream(self):
        """/api/messages/stream carries every device's messages, unknown ones too."""
        response = self.platform.start("GET", "/api/messages/stream")
        self.platform.send(self.platform.dist, b"junk")
        text = response.transport.value().decode()
        self.assertIn('"mac": "-"', text)
        response.channel.connectionLost(Failure(ConnectionDone()))

    def test_stream_refused(self):
        """A stream needs an admin token and a MAC-shaped path."""
        r = self.platform.request("GET", "/api/messages/stream", token=USER)
        self.assertEqual(r.code, 403)
        r = self.platform.request("GET", "/api/devices/nope/messages/stream")
        self.assertEqual(r.code, 404)
        r = self.platform.request("GET", f"/api/devices/{MAC}/messages/stream?since=z")
        self.assertEqual(r.code, 400)
