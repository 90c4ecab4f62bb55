"""The heartbeat cycle's short cuts (issue 15) answer exactly as the general path does.

Each Hb cycle wakes a sleeping router, so the transport keeps it short: the machine
reuses its Hb while the WAN address and FLAG stay and the transport its encoded bytes,
an address literal needs no resolver (no Deferred), the one timer is moved instead of
cancelled and replaced, and the usual Hb reply is decoded without the field table.
"""

import json

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from cubegw import wire
from cubegw.wire_codec import WireError

from tests.helpers import OPER, Gateway


class CountingClock(Clock):
    """A Clock that counts the calls made and cancelled."""

    def __init__(self):
        super().__init__()
        self.made = 0
        self.cancelled = 0

    def callLater(self, delay, f, *args, **kw):
        self.made += 1
        call = super().callLater(delay, f, *args, **kw)
        canceller = call.canceller

        def cancel(c):
            self.cancelled += 1
            canceller(c)
        call.canceller = cancel
        return call


def online(testcase, clock=None):
    """A gateway answered once (its Hb FLAG "1" answered 0, Interval 20)."""
    g = Gateway()
    if clock is not None:
        g.clock = g.protocol.clock = clock
    t = g.run_to_online(testcase)
    g.reply(0, Interval=20)
    return g, t


class CachedHbTests(SynchronousTestCase):
    def test_same_bytes_while_nothing_changes(self):
        """Heartbeats with the same address and FLAG are the same message and bytes."""
        g, t = online(self)
        g.advance_to(t + 20)
        first = g.machine.pending
        data = g.transport.written[-1][0]
        g.reply(0, Interval=20)
        g.advance_to(t + 40)
        self.assertIs(g.machine.pending, first)
        self.assertIs(g.transport.written[-1][0], data)
        self.assertEqual(json.loads(data), {"RPCMethod": "Hb", "MAC": g.machine.identity.mac,
                                            "IPAddr": "192.0.2.10", "FLAG": "0"})

    def test_new_bytes_when_the_flag_changes(self):
        """The first Hb after Register says FLAG "1", the next "0": two encodings."""
        g, t = online(self)
        flag_1 = json.loads(g.transport.written[-1][0])
        g.advance_to(t + 20)
        flag_0 = json.loads(g.transport.written[-1][0])
        self.assertEqual((flag_1["FLAG"], flag_0["FLAG"]), ("1", "0"))

    def test_new_bytes_when_the_wan_address_changes(self):
        """A new WAN address: Boot, Register, then Hb carrying the new address (FLAG "1",
        then "0"), never the bytes cached for the old one."""
        g, t = online(self)
        g.advance_to(t + 20)
        g.expect(self, "Hb", OPER, t + 20, IPAddr="192.0.2.10", FLAG="0")
        g.reply(0, Interval=20)
        g.protocol.wan_ip_changed("198.51.100.7")
        g.expect(self, "Boot", OPER, t + 20, IPAddr="198.51.100.7")
        g.reply(0, ChallengeCode="0123456789ABCDEF0123456789ABCDEF", Interval=20)
        g.expect(self, "Register", OPER, t + 20)
        g.reply(0)
        g.expect(self, "Hb", OPER, t + 20, IPAddr="198.51.100.7", FLAG="1")
        g.reply(0, Interval=20)
        g.advance_to(t + 40)
        g.expect(self, "Hb", OPER, t + 40, IPAddr="198.51.100.7", FLAG="0")

    def test_unanswered_hb_sent_again_same_bytes(self):
        """An Hb whose reply timed out goes again as it was (same FLAG, same bytes)."""
        g, t = online(self)
        g.advance_to(t + 20)
        g.expect(self, "Hb", OPER, t + 20, FLAG="0")
        data = g.transport.written[-1][0]
        g.advance_to(t + 50)
        g.expect(self, "Hb", OPER, t + 50, FLAG="0")
        self.assertEqual(g.transport.written[-1][0], data)


class TimerTests(SynchronousTestCase):
    def test_one_call_per_hb_none_cancelled(self):
        """Each cycle makes one timer call (the reply timeout, then moved to the next Hb):
        none is cancelled, so the reactor has no dead call to wake for."""
        clock = CountingClock()
        g, t = online(self, clock)
        made, cancelled = clock.made, clock.cancelled
        for n in range(1, 11):
            g.advance_to(t + 20 * n)
            g.expect(self, "Hb", OPER, t + 20 * n, FLAG="0")
            g.reply(0, Interval=20)
        self.assertEqual((clock.made - made, clock.cancelled - cancelled), (10, 0))
        self.assertEqual([c.getTime() for c in clock.getDelayedCalls()], [t + 220])

    def test_reply_timeout_moved_later_still_fires_later(self):
        """A wait moved past the reply timeout (Interval 60 > hb_timeout 30) runs out at
        its new time, not at the old one."""
        g, t = online(self)
        g.advance_to(t + 20)
        g.expect(self, "Hb", OPER, t + 20)
        g.reply(0, Interval=60)
        g.advance_to(t + 79.9)
        self.assertEqual(g.sent(), [])
        g.advance_to(t + 80)
        g.expect(self, "Hb", OPER, t + 80)


class ResolveTests(SynchronousTestCase):
    def test_literal_needs_no_resolver(self):
        """An operation platform given as an address: written at once, the resolver is
        never asked."""
        g = Gateway()
        asked = []
        g.protocol.resolve = lambda host: asked.append(host) or defer.succeed("203.0.113.9")
        g.machine.operation = ("127.0.0.3", OPER[1])
        g.protocol._run(g.machine._hb())
        self.assertEqual(g.sent()[0][1], ("127.0.0.3", OPER[1]))
        self.assertEqual(asked, [])

    def test_name_resolved_every_time(self):
        """A name goes through the resolver for each request (its address may move)."""
        g, t = online(self)
        asked = []
        g.protocol.resolve = lambda host: asked.append(host) or defer.succeed(OPER[0])
        g.advance_to(t + 20)
        g.reply(0, Interval=20)
        g.advance_to(t + 40)
        self.assertEqual(asked, ["oper.test", "oper.test"])

    def test_superseded_while_resolving(self):
        """A request whose name resolves after a newer request was sent is not written."""
        g, t = online(self)
        pending = []
        g.protocol.resolve = lambda host: pending.append(defer.Deferred()) or pending[-1]
        g.advance_to(t + 20)                   # Hb: resolving
        g.advance_to(t + 50)                   # its reply timeout: the Hb again
        self.assertEqual(len(pending), 2)
        pending[0].callback(OPER[0])
        self.assertEqual(g.sent(), [])
        pending[1].callback(OPER[0])
        g.expect(self, "Hb", OPER, t + 50)


class HbReplyDecodeTests(SynchronousTestCase):
    CASES = [
        {"Result": 0, "Interval": 60}, {"Result": 0}, {"Result": -3}, {"Result": 0,
                                                                         "Interval": None},
        {"Result": "0", "Interval": "60"}, {"Result": 0, "Interval": 60.0},
        {"Result": 0, "Interval": True}, {"Result": True}, {"Result": 0, "Extra": [1]},
        {"Result": 0, "Interval": "x"}, {"Interval": 60}, {"Result": None},
    ]

    def test_same_as_the_field_table(self):
        """For each reply, usual or not, the same HbReply or the same refusal as the
        generic decoder."""
        generic = wire.decode_fields
        for msg in self.CASES:
            try:
                expected = generic(wire.HbReply, msg)
            except WireError as e:
                with self.assertRaises(WireError) as got:
                    wire.HbReply.from_wire(msg)
                self.assertEqual(got.exception.reason, e.reason, msg)
            else:
                reply = wire.HbReply.from_wire(msg)
                self.assertEqual((reply, type(reply.Result), type(reply.Interval)),
                                 (expected, type(expected.Result), type(expected.Interval)),
                                 msg)

    def test_still_immutable(self):
        """The reply built without the table is as frozen as any message."""
        reply = wire.HbReply.from_wire({"Result": 0, "Interval": 60})
        self.assertEqual(repr(reply), "HbReply(Result=0, Interval=60)")
        with self.assertRaises(AttributeError):
            reply.Result = 1

    def test_not_a_dict(self):
        """A JSON array is refused as before."""
        self.assertRaises(WireError, wire.HbReply.from_wire, [0])


class RepeatedDatagramTests(SynchronousTestCase):
    def test_repeated_reply_read_the_same(self):
        """The platform's reply, the same bytes each cycle, is read afresh in meaning:
        answered once it counts, the same bytes again with nothing pending are a stray."""
        g, t = online(self)
        g.advance_to(t + 20)
        g.sent()
        reply = json.dumps({"Result": 0, "Interval": 20}).encode()
        g.protocol.datagramReceived(reply, OPER)
        self.assertEqual((g.machine.counters["hb_ok"], g.protocol.dropped), (2, 0))
        g.protocol.datagramReceived(reply, OPER)
        self.assertEqual((g.machine.counters["hb_ok"], g.protocol.dropped), (2, 1))
        g.advance_to(t + 40)
        g.expect(self, "Hb", OPER, t + 40)
        g.protocol.datagramReceived(reply, OPER)
        self.assertEqual((g.machine.counters["hb_ok"], g.protocol.dropped), (3, 1))

    def test_bad_bytes_repeated_dropped_each_time(self):
        """Garbage sent twice is dropped twice (a refusal is not remembered as a value)."""
        g, t = online(self)
        g.protocol.datagramReceived(b"\xff{", OPER)
        g.protocol.datagramReceived(b"\xff{", OPER)
        self.assertEqual(g.protocol.dropped, 2)
