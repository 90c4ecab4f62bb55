"""Issue 18 points 1-3: a Key works once, trust lists, bounds on what the platform says.

On a Clock through the real UDP transport (``tests.helpers.Gateway``); the loopback
figures (a real daemon under a wrong-Key flood) are in ``tests/integration/test_trigger_flood.py``.
"""

import json

from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from cubegw import config, trust
from cubegw.config import ConfigError, parse_config

from tests.helpers import CHALLENGE, OPER, Gateway


def online(**kw):
    g = Gateway(**kw)
    g.run_to_online(_Expect())
    g.reply(0)
    g.sent()
    return g


class _Expect:
    """A stand-in for ``expect``'s test case outside a test method."""

    def assertEqual(self, a, b, msg=None):
        assert a == b, (a, b, msg)


def answers(g):
    return [m for _, to, m in g.sent() if to == OPER and "RPCMethod" not in m]


def captured(g):
    events = []
    g.protocol.log = Logger(observer=events.append)
    return events


class KeyWorksOnceTests(SynchronousTestCase):
    def test_captured_trigger_replayed(self):
        """A captured valid trigger replayed after 1, 10 and 60 s and on other content (another
        plugin center, a RequestDistri) from the platform's address: acted on 0 more times."""
        g = online()
        key = g.key()
        captured_msg = {"RPCMethod": "RequestPlug-in", "Key": key, "ServerAddr": "127.0.0.5",
                        "ServerPort": 8080}
        g.protocol.datagramReceived(json.dumps(captured_msg).encode(), OPER)
        self.assertEqual(len(g.effects.plugin), 1)
        sent_before = len(g.transport.written)
        start = g.clock.seconds()
        for at in (1, 10, 60):
            g.clock.advance(start + at - g.clock.seconds())
            g.protocol.datagramReceived(json.dumps(captured_msg).encode(), OPER)
        for other in ({"ServerAddr": "203.0.113.66"}, {"ServerPort": 9999},
                      {"RPCMethod": "RequestDistri", "ServerAddr": "203.0.113.66",
                       "ServerPort": 12112, "mode": "1"}):
            g.protocol.datagramReceived(json.dumps(dict(captured_msg, **other)).encode(), OPER)
        self.assertEqual(len(g.effects.plugin), 1)
        self.assertEqual(g.machine.state, "online")
        replies = [json.loads(d) for d, _ in g.transport.written[sent_before:]]
        replies = [m for m in replies if "RPCMethod" not in m]
        # after 1 s: the resend's same answer; every later one refused
        self.assertEqual(replies[0], {"Result": 0, "DevRND": "%032X" % 2})
        self.assertEqual(replies[1:], [{"Result": -1}] * 5)

    def test_refusals_do_not_use_the_budget(self):
        """2,000 wrong Keys and 2,000 resends in a second leave every real trigger's slot."""
        g = online()
        g.trigger("RequestPlug-in")
        for _ in range(2000):
            g.trigger("RequestPlug-in", key="F" * 32)
        for _ in range(2000):
            g.protocol.datagramReceived(json.dumps({
                "RPCMethod": "RequestPlug-in", "Key": "%032X" % 7, "ServerAddr": "127.0.0.5",
                "ServerPort": 8080}).encode(), OPER)
        for n in range(5):
            g.clock.advance(0.1)
            g.trigger("RequestPlug-in", ServerPort=8100 + n)
        self.assertEqual(len(g.effects.plugin), 6)

    def test_refusal_logs_and_status_writes_rate_limited(self):
        """A flood of wrong Keys: answered -1 each, one log line a second naming how many
        were not logged, and only routine (rate-limited) status-file changes."""
        g = online()
        events = captured(g)
        changes = g.effects.changes
        for n in range(4000):
            if n == 2000:
                g.clock.advance(1.0)
            g.trigger("RequestPlug-in", key="F" * 32)
        self.assertEqual(answers(g), [{"Result": -1}] * 4000)
        lines = [e for e in events if "trigger refused" in e.get("log_format", "")]
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[1]["fields"]["more"], 1999)
        self.assertNotIn(False, g.effects.routine[changes:])
        self.assertEqual(g.machine.counters["triggers_refused"], 4000)

    def test_flood_keeps_the_heartbeat(self):
        """Wrong-Key triggers between heartbeats move no timer: the next Hb is on time."""
        g = online()
        t = g.clock.seconds()
        sent = []
        for n in range(1, 700):
            g.trigger("RequestPlug-in", key="F" * 32)
            g.advance_to(t + n / 10)
            sent += [(when, m["RPCMethod"]) for when, _, m in g.sent() if "RPCMethod" in m]
        self.assertEqual(sent, [(t + 60, "Hb")])


class TrustListTests(SynchronousTestCase):
    def test_patterns(self):
        """Names exact, .suffixes strictly below, addresses in CIDRs; empty trusts all."""
        pats = [trust.check_pattern(p) for p in
                ("Center.Example.NET", ".ct10000.com", "192.0.2.0/24", "2001:db8::/32")]
        for host, ok in [("center.example.net", True), ("x.center.example.net", False),
                         ("a.ct10000.com", True), ("ct10000.com", False),
                         ("evilct10000.com", False), ("192.0.2.77", True),
                         ("192.0.3.1", False), ("2001:db8::5", True), ("[2001:db8::5]", True),
                         ("::1", False), ("192.0.2.77.evil.com", False)]:
            self.assertEqual(trust.host_trusted(host, pats), ok, host)
        self.assertTrue(trust.host_trusted("anything", ()))

    def test_bad_patterns_refused_by_the_config(self):
        """A pattern that is no name, suffix, address or CIDR stops the daemon naming the key."""
        for bad in ("10.0.0.0/33", "a b", "", "*.x.com", "1.2.3.999"):
            with self.assertRaises(ConfigError) as caught:
                parse_config(f'trust:\n  plugin_centers: ["{bad}"]\n')
            self.assertIn("trust.plugin_centers", str(caught.exception))
        for bad in ("trust: 3\n", "trust:\n  other: []\n", "trust:\n  distribution: x\n"):
            self.assertRaises(ConfigError, parse_config, bad)
        self.assertEqual(parse_config("trust:\n  distribution: ['.ct10000.com']\n").trust,
                         config.Trust(distribution=(".ct10000.com",)))

    def test_untrusted_plugin_center_refused(self):
        """A trigger with the right Key naming an untrusted host: -1, logged, nothing done,
        and the Key still works for a trusted one."""
        g = online(trust=(("127.0.0.0/8",), ("dist.test",)))
        events = captured(g)
        g.trigger("RequestPlug-in", ServerAddr="203.0.113.9")
        g.trigger("RequestDistri", ServerAddr="evil.test", ServerPort=12112, mode="1")
        self.assertEqual(answers(g), [{"Result": -1}] * 2)
        self.assertEqual(g.effects.plugin, [])
        refused = [e for e in events if "trigger refused" in e.get("log_format", "")]
        self.assertIn("not a trusted RequestPlug-in host", refused[0]["fields"]["reason"])
        g.clock.advance(1.5)
        g.trigger("RequestPlug-in", ServerAddr="127.0.0.5")
        self.assertEqual(g.effects.plugin, [("127.0.0.5", 8080)])


class RequestDistriTests(SynchronousTestCase):
    def _distri(self):
        g = online()
        g.trigger("RequestDistri", ServerAddr="127.0.0.6", ServerPort=12113, mode="1")
        g.sent()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        g.reply(0, ServerAddr="127.0.0.7", ServerPort=60009)
        sent = g.sent()
        self.assertEqual((sent[0][1], sent[0][2]["RPCMethod"]), (("127.0.0.7", 60009), "Boot"))
        return g

    def test_kept_after_a_full_registration(self):
        """The new operation platform is stored only when it answered Boot and Register."""
        g = self._distri()
        self.assertEqual(g.effects.stored, [("oper.test", OPER[1])])
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        self.assertEqual(len(g.effects.stored), 1)
        g.reply(2, UPDATEServer="u", MessageServer="127.0.0.4:9000")
        self.assertEqual(g.effects.stored[-1], ("127.0.0.7", 60009))

    def test_not_kept_when_it_never_registers(self):
        """A platform that never answers: not stored, and the gateway Boots at the old one."""
        g = self._distri()
        boots = []
        for _ in range(10):
            g.advance_to(g.clock.seconds() + 10)
            boots += [to for _, to, m in g.sent() if m.get("RPCMethod") == "Boot"]
        self.assertEqual(g.effects.stored, [("oper.test", OPER[1])])
        self.assertEqual(boots[-1], OPER)
        self.assertEqual(g.machine.operation, ("oper.test", OPER[1]))


class BoundsTests(SynchronousTestCase):
    def test_hb_interval_out_of_range_ignored(self):
        """Hb Interval 0, -5, 86401 or a huge number keeps the last good interval."""
        g = Gateway()
        t = g.run_to_online(self)
        for bad in (0, -5, 86401, 10 ** 12):
            g.reply(0, Interval=bad)
            t += 60
            g.advance_to(t)
            sent = g.sent()
            self.assertEqual([(w, m["RPCMethod"]) for w, _, m in sent], [(t, "Hb")], bad)
        g.reply(0, Interval=86400)
        self.assertEqual(g.machine.interval, 86400)

    def test_server_port_out_of_range_refused(self):
        """A trigger with ServerPort 0 or 65536: -1, nothing done."""
        g = online()
        for port in (0, 65536, -1, "70000"):
            g.trigger("RequestPlug-in", ServerPort=port)
            g.clock.advance(1.1)
        self.assertEqual(answers(g), [{"Result": -1}] * 4)
        self.assertEqual(g.effects.plugin, [])

    def test_unknown_value_types_dropped_with_one_line(self):
        """{"RPCMethod":[]} and other odd types: dropped, one log line, no traceback."""
        g = online()
        events = captured(g)
        for msg in ({"RPCMethod": []}, {"RPCMethod": {}}, {"RPCMethod": None},
                    {"RPCMethod": 5}, {"Result": []}, {"Result": {"a": 1}}):
            g.clock.advance(1.1)
            g.protocol.datagramReceived(json.dumps(msg).encode(), OPER)
        self.assertEqual(g.protocol.dropped, 6)
        self.assertEqual(len(events), 6)
        self.assertEqual(g.machine.state, "online")
        self.assertEqual(self.flushLoggedErrors(), [])
