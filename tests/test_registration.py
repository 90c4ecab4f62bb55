"""Every row of protocol.md section 6, on a Clock, through the real UDP transport.

Random waits take the upper end of their range (``Gateway.draws`` records each range), so
each test asserts the exact datagram sent next and the exact time it goes out.
Default timings are used: reply_timeout 5 s, retry 5 s x 2, jitter 30 s, hb_timeout 30 s.
"""

import json

from twisted.logger import Logger, LogLevel
from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity
from cubegw.config import Timing
from cubegw.registration import ONLINE, SILENT, tr069_backoff

from tests.helpers import CHALLENGE, DIST, IDENTITY, OPER, Gateway


class BackoffTests(SynchronousTestCase):
    def test_ranges(self):
        """The n-th wait is drawn from [m*k^(n-1), m*k^n], the upper end capped."""
        ranges = []
        for n in range(1, 6):
            tr069_backoff(n, 5, 2, 60, lambda a, b: ranges.append((a, b)))
        self.assertEqual(ranges, [(5, 10), (10, 20), (20, 40), (40, 60), (60, 60)])


class FirstRegistrationTests(SynchronousTestCase):
    def test_full_flow(self):
        """Jitter, BootFirst, RegisterFirst with CheckSN, Boot, Register, Hb FLAG 1, Hb FLAG 0."""
        g = Gateway()
        g.start()
        self.assertEqual(g.draws, [(0, 30.0)])
        self.assertEqual(g.sent(), [])
        g.advance_to(29.9)
        self.assertEqual(g.sent(), [])
        g.advance_to(30)
        boot_first = g.expect(self, "BootFirst", DIST, 30)
        self.assertEqual(boot_first, {
            "RPCMethod": "BootFirst", "Vendor": "TestVendor", "Model": "HG-1",
            "MAC": IDENTITY.mac, "SN": IDENTITY.sn, "FirmwareVer": "1.2.3",
            "HardwareVer": "HW1", "IPAddr": "192.0.2.10", "LOID": "0755123456",
            "Version": "1.0"})
        g.reply(0, ChallengeCode=CHALLENGE.lower())
        msg = g.expect(self, "RegisterFirst", DIST, 30)
        self.assertEqual(msg["CheckSN"], identity.md5_upper(CHALLENGE, IDENTITY.sn))
        g.reply(2, ServerAddr="oper.test", ServerPort="60001", Interval=60)
        self.assertEqual(g.effects.stored, [("oper.test", 60001)])
        g.expect(self, "Boot", OPER, 30, IPAddr="192.0.2.10")
        g.reply(0, ChallengeCode=CHALLENGE, Interval=45, flag="1")
        msg = g.expect(self, "Register", OPER, 30, UserID="U1", DevRND="%032X" % 1)
        self.assertEqual(msg["CheckSN"], identity.check_sn(CHALLENGE, IDENTITY.sn))
        g.reply(2, UPDATEServer="upd.test", MessageServer="127.0.0.4:9000")
        g.expect(self, "Hb", OPER, 30, FLAG="1", MAC=IDENTITY.mac, IPAddr="192.0.2.10")
        self.assertEqual(g.machine.message_server, "127.0.0.4:9000")
        g.reply(0)
        self.assertEqual(g.machine.state, ONLINE)
        g.advance_to(74.9)
        self.assertEqual(g.sent(), [])
        g.advance_to(75)
        g.expect(self, "Hb", OPER, 75, FLAG="0")

    def test_boot_goes_out_before_the_durable_write(self):
        """With an address literal, the Boot is written before the operation platform
        is stored, so the store's fsyncs overlap the Boot's round trip."""
        g = Gateway()
        g.start()
        g.advance_to(30)
        g.expect(self, "BootFirst", DIST, 30)
        g.reply(0, ChallengeCode=CHALLENGE)
        g.expect(self, "RegisterFirst", DIST, 30)
        order = []
        g.effects.store_operation_platform = lambda host, port: order.append(
            ("stored", len(g.transport.written)))
        g.reply(0, ServerAddr="192.0.2.77", ServerPort="60001", Interval=60)
        msg = g.sent()[-1][2]
        self.assertEqual(msg["RPCMethod"], "Boot")
        self.assertEqual(order, [("stored", len(g.transport.written))])

    def test_hb_interval_from_reply(self):
        """Hb 0 with an Interval schedules the next heartbeat after that Interval."""
        g = Gateway()
        t = g.run_to_online(self)
        g.reply(0, Interval=20)
        g.advance_to(t + 20)
        g.expect(self, "Hb", OPER, t + 20, FLAG="0")

    def test_hb_default_interval_from_store(self):
        """With no Interval from the platform, X_CT-COM_Mgt.Heartbeat paces the heartbeat."""
        g = Gateway()
        g.settings.heartbeat = 7
        g.start()
        g.advance_to(30)
        g.sent()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.reply(0, ServerAddr="oper.test", ServerPort=60001)
        g.reply(0, ChallengeCode=CHALLENGE)
        g.reply(2)
        g.reply(0)
        g.sent()
        g.advance_to(37)
        g.expect(self, "Hb", OPER, 37, FLAG="0")

    def test_no_leaked_timer_after_stop(self):
        """Stopping cancels the one timer."""
        g = Gateway()
        g.run_to_online(self)
        g.protocol.stop()
        self.assertEqual(g.clock.getDelayedCalls(), [])


class RetryTests(SynchronousTestCase):
    def test_no_reply_backoff(self):
        """Unanswered BootFirst: retry after 5 s timeout + the n-th backoff; ranges double."""
        g = Gateway(Timing(retry_max=30))
        g.start()
        g.advance_to(30)
        g.expect(self, "BootFirst", DIST, 30)
        t = 30
        for low, high in [(5, 10), (10, 20), (20, 30), (30, 30)]:
            g.advance_to(t + 5)              # reply timeout
            self.assertEqual(g.draws[-1], (low, high))
            t = t + 5 + high
            g.advance_to(t - 0.01)
            self.assertEqual(g.sent(), [])
            g.advance_to(t)
            g.expect(self, "BootFirst", DIST, t)

    def test_counter_resets_after_success(self):
        """After being online, a new failure starts the backoff from [m, m*k] again."""
        g = Gateway()
        g.start()
        g.advance_to(30)
        g.advance_to(35)                      # timeout -> retry 1
        g.advance_to(45)
        g.sent()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.reply(0, ServerAddr="oper.test", ServerPort=60001)
        g.reply(0, ChallengeCode=CHALLENGE)
        g.reply(2)
        g.reply(0)
        self.assertEqual(g.machine.retries, 0)
        g.sent()
        g.advance_to(g.clock.seconds() + 60)
        g.expect(self, "Hb", OPER, g.clock.seconds())
        g.reply(-1)                           # Boot path after misses, not a retry draw
        g.protocol.wan_ip_changed("192.0.2.99")
        g.expect(self, "Boot", OPER, g.clock.seconds(), IPAddr="192.0.2.99")
        g.reply(-1)
        self.assertEqual(g.draws[-1], (5, 10))

    def test_register_first_no_reply_resends_same(self):
        """An unanswered RegisterFirst is resent unchanged after the backoff."""
        g = Gateway()
        g.start()
        g.advance_to(30)
        g.sent()
        g.reply(0, ChallengeCode=CHALLENGE)
        first = g.expect(self, "RegisterFirst", DIST, 30)
        g.advance_to(45)
        self.assertEqual(g.expect(self, "RegisterFirst", DIST, 45), first)


class DistributionResultTests(SynchronousTestCase):
    def _at_boot_first(self):
        g = Gateway()
        g.start()
        g.advance_to(30)
        g.expect(self, "BootFirst", DIST, 30)
        return g

    def test_boot_first_minus_1(self):
        """BootFirst -1: general failure, BootFirst again after the backoff."""
        g = self._at_boot_first()
        g.reply(-1)
        g.advance_to(40)
        g.expect(self, "BootFirst", DIST, 40)

    def test_boot_first_minus_6(self):
        """BootFirst -6: MAC not accepted, logged as an error, retried with backoff."""
        g = self._at_boot_first()
        events = []
        g.protocol.log = Logger(observer=events.append)
        g.reply(-6)
        errors = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1)
        self.assertIn("MAC not accepted", errors[0]["log_format"])
        g.advance_to(39.9)
        self.assertEqual(g.sent(), [])
        g.advance_to(40)
        g.expect(self, "BootFirst", DIST, 40)

    def test_register_first_minus_1(self):
        """RegisterFirst -1: retry from BootFirst (a fresh challenge) after the backoff."""
        g = self._at_boot_first()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.expect(self, "RegisterFirst", DIST, 30)
        g.reply(-1)
        g.advance_to(40)
        g.expect(self, "BootFirst", DIST, 40)

    def test_distribution_minus_5(self):
        """-5 from distribution: start again at BootFirst (after the backoff)."""
        g = self._at_boot_first()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        g.reply(-5)
        g.advance_to(40)
        g.expect(self, "BootFirst", DIST, 40)

    def test_minus_2_silence(self):
        """-2: silent for 150 minutes, then BootFirst."""
        g = self._at_boot_first()
        g.reply(-2)
        self.assertEqual(g.machine.state, SILENT)
        g.advance_to(30 + 9000 - 1)
        self.assertEqual(g.sent(), [])
        g.advance_to(30 + 9000)
        g.expect(self, "BootFirst", DIST, 30 + 9000)

    def test_register_first_minus_2_silence(self):
        """-2 on RegisterFirst: the same silence."""
        g = self._at_boot_first()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        g.reply(-2)
        g.advance_to(30 + 8999)
        self.assertEqual(g.sent(), [])
        g.advance_to(30 + 9000)
        g.expect(self, "BootFirst", DIST, 30 + 9000)

    def test_malformed_success_reply_counts_as_none(self):
        """RegisterFirst 0 without ServerAddr is dropped; the timeout then retries."""
        g = self._at_boot_first()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        g.reply(0)
        self.assertEqual(g.protocol.dropped, 1)
        g.advance_to(35 + 10)
        g.expect(self, "RegisterFirst", DIST, 45)


class OperationResultTests(SynchronousTestCase):
    def _at_boot(self):
        g = Gateway()
        g.start()
        g.advance_to(30)
        g.sent()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        g.reply(0, ServerAddr="oper.test", ServerPort=60001)
        g.expect(self, "Boot", OPER, 30)
        return g

    def test_boot_minus_1_three_tries(self):
        """Boot -1 three times: Boot retried with backoff twice, then BootFirst."""
        g = self._at_boot()
        g.reply(-1)
        g.advance_to(40)
        g.expect(self, "Boot", OPER, 40)
        g.reply(-1)
        g.advance_to(60)
        g.expect(self, "Boot", OPER, 60)
        g.reply(-1)
        g.advance_to(100)
        g.expect(self, "BootFirst", DIST, 100)

    def test_boot_no_reply_three_tries(self):
        """Boot unanswered three times: back to the distribution platform."""
        g = self._at_boot()
        g.advance_to(35 + 10)
        g.expect(self, "Boot", OPER, 45)
        g.advance_to(50 + 20)
        g.expect(self, "Boot", OPER, 70)
        g.advance_to(75 + 40)
        g.expect(self, "BootFirst", DIST, 115)

    def test_boot_minus_2(self):
        """Boot -2: silence, then BootFirst."""
        g = self._at_boot()
        g.reply(-2)
        g.advance_to(9030)
        g.expect(self, "BootFirst", DIST, 9030)

    def test_operation_minus_5(self):
        """-5 from the operation platform: Boot again; the third in a row: BootFirst."""
        g = self._at_boot()
        g.reply(-5)
        g.expect(self, "Boot", OPER, 30)
        g.reply(-5)
        g.expect(self, "Boot", OPER, 30)
        g.reply(-5)
        g.expect(self, "BootFirst", DIST, 30)

    def test_register_minus_5(self):
        """Register -5: Boot at the operation platform."""
        g = self._at_boot()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.expect(self, "Register", OPER, 30)
        g.reply(-5)
        g.expect(self, "Boot", OPER, 30)

    def test_register_2_starts_hb_flag_1(self):
        """Register 2: heartbeats start at once with FLAG "1"."""
        g = self._at_boot()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        g.reply(2)
        g.expect(self, "Hb", OPER, 30, FLAG="1")

    def test_register_3_resets_app_data(self):
        """Register 3: APP-side reset, UserID cleared, Register again with a new DevRND."""
        g = self._at_boot()
        g.reply(0, ChallengeCode=CHALLENGE)
        first = g.expect(self, "Register", OPER, 30, UserID="U1")
        g.reply(3)
        self.assertEqual(g.effects.resets, 1)
        again = g.expect(self, "Register", OPER, 30, UserID="")
        self.assertNotEqual(again["DevRND"], first["DevRND"])
        self.assertEqual(again["CheckSN"], first["CheckSN"])
        g.reply(2)
        g.expect(self, "Hb", OPER, 30, FLAG="1")

    def test_register_3_twice_is_a_failure(self):
        """A second Register 3 in a row is a failed try (Boot after backoff), not a loop."""
        g = self._at_boot()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        g.reply(3)
        g.sent()
        g.reply(3)
        self.assertEqual(g.effects.resets, 1)
        g.advance_to(40)
        g.expect(self, "Boot", OPER, 40)


class HeartbeatResultTests(SynchronousTestCase):
    def test_hb_minus_3(self):
        """Hb -3: register again at the operation platform (Boot)."""
        g = Gateway()
        t = g.run_to_online(self)
        g.reply(-3)
        g.expect(self, "Boot", OPER, t)

    def test_hb_minus_5(self):
        """Hb -5: back to the distribution platform (BootFirst)."""
        g = Gateway()
        t = g.run_to_online(self)
        g.reply(-5)
        g.expect(self, "BootFirst", DIST, t)

    def test_hb_minus_2(self):
        """Hb -2: silence, then BootFirst."""
        g = Gateway()
        t = g.run_to_online(self)
        g.reply(-2)
        g.advance_to(t + 9000)
        g.expect(self, "BootFirst", DIST, t + 9000)

    def test_hb_three_timeouts(self):
        """Hb unanswered for 30 s three times in a row: Boot."""
        g = Gateway()
        t = g.run_to_online(self)
        g.advance_to(t + 30)
        g.expect(self, "Hb", OPER, t + 30, FLAG="1")
        g.advance_to(t + 60)
        g.expect(self, "Hb", OPER, t + 60, FLAG="1")
        g.advance_to(t + 89.9)
        self.assertEqual(g.sent(), [])
        g.advance_to(t + 90)
        g.expect(self, "Boot", OPER, t + 90)

    def test_hb_timeouts_not_in_a_row(self):
        """A heartbeat answered between two misses resets the miss count."""
        g = Gateway()
        t = g.run_to_online(self)
        g.advance_to(t + 30)
        g.expect(self, "Hb", OPER, t + 30)
        g.reply(0)
        for n in range(2):
            t = g.clock.seconds()
            g.advance_to(t + 60)
            g.expect(self, "Hb", OPER, t + 60)
            g.advance_to(t + 90)
            g.expect(self, "Hb", OPER, t + 90)
            g.reply(0)


class RoutineEventTests(SynchronousTestCase):
    """Which events the transport calls routine: only an Hb sent after the wait and an Hb
    answered 0 (the status file then skips its snapshot)."""

    def test_routine_only_for_the_heartbeat_cycle(self):
        """Only the heartbeat cycle (an Hb sent after the wait, an Hb answered 0) is routine;
        registration never is."""
        g = Gateway()
        t = g.run_to_online(self)
        self.assertEqual(set(g.effects.routine), {False})      # registration: never
        g.effects.routine.clear()
        g.reply(0, Interval=20)                              # Hb answered 0
        g.advance_to(t + 20)                                 # the next Hb sent
        g.expect(self, "Hb", OPER, t + 20)
        self.assertEqual(g.effects.routine, [True, True])

    def test_not_routine(self):
        """A heartbeat timeout, the Hb sent again after it, and a non-zero result are
        news: not routine."""
        g = Gateway()
        t = g.run_to_online(self)
        g.reply(0, Interval=20)
        g.advance_to(t + 20)
        g.expect(self, "Hb", OPER, t + 20)
        g.effects.routine.clear()
        g.advance_to(t + 50)                                 # no reply within 30 s
        g.expect(self, "Hb", OPER, t + 50)
        g.reply(-3)
        self.assertEqual(g.effects.routine, [False, False])


class RebootAndWanTests(SynchronousTestCase):
    def test_reboot_with_stored_platform(self):
        """A start with a stored operation platform goes to Boot there after the jitter."""
        g = Gateway()
        g.start(stored=("oper.test", 60001))
        g.advance_to(30)
        g.expect(self, "Boot", OPER, 30)

    def test_wan_ip_change(self):
        """A WAN address change while online: Boot at the stored platform with the new IP."""
        g = Gateway()
        t = g.run_to_online(self)
        g.reply(0)
        g.advance_to(t + 10)
        g.protocol.wan_ip_changed("198.51.100.7")
        g.expect(self, "Boot", OPER, t + 10, IPAddr="198.51.100.7")

    def test_wan_ip_change_during_jitter_waits(self):
        """During the start jitter a WAN change sends nothing early."""
        g = Gateway()
        g.start()
        g.protocol.wan_ip_changed("198.51.100.7")
        self.assertEqual(g.sent(), [])
        g.advance_to(30)
        g.expect(self, "BootFirst", DIST, 30, IPAddr="198.51.100.7")

    def test_jitter_range(self):
        """The first message waits a random time in [0, boot_jitter]."""
        g = Gateway(Timing(boot_jitter=12))
        g.start()
        self.assertEqual(g.draws, [(0, 12)])


class TriggerTests(SynchronousTestCase):
    def _online(self):
        g = Gateway()
        g.run_to_online(self)
        g.reply(0)
        return g

    def _answers(self, g):
        return [(to, msg) for _, to, msg in g.sent()]

    def test_request_plugin(self):
        """A RequestPlug-in with the right Key: Result 0 with a fresh DevRND, then connect
        to the plugin center."""
        g = self._online()
        g.trigger("RequestPlug-in")
        self.assertEqual(self._answers(g), [(OPER, {"Result": 0, "DevRND": "%032X" % 2})])
        self.assertEqual(g.machine.dev_rnd, "%032X" % 2)
        self.assertEqual(g.effects.plugin, [("127.0.0.5", 8080)])

    def test_key_works_once(self):
        """The next Key uses the DevRND of the trigger answer: the old Key, on the same or
        other content, is refused after the replay window."""
        g = self._online()
        old = g.key()
        g.trigger("RequestPlug-in", key=old)
        g.clock.advance(11)
        g.sent()
        g.trigger("RequestPlug-in", key=old)
        g.trigger("RequestPlug-in", key=old, ServerPort=9999)
        self.assertEqual(self._answers(g), [(OPER, {"Result": -1})] * 2)
        g.trigger("RequestPlug-in", ServerPort=9999)      # the Key made with DevRND 2
        self.assertEqual(self._answers(g), [(OPER, {"Result": 0, "DevRND": "%032X" % 3})])
        self.assertEqual(len(g.effects.plugin), 2)

    def test_key_formula(self):
        """The Key is MD5(DevRND + SN + SSID tail + WiFi password + useradmin password)."""
        g = self._online()
        key = identity.md5_upper(g.machine.dev_rnd, IDENTITY.sn, "ABCD", "wifipass", "admin1")
        g.trigger("RequestPlug-in", key=key)
        self.assertEqual(g.effects.plugin, [("127.0.0.5", 8080)])

    def test_wrong_key(self):
        """A wrong Key: Result -1, nothing done."""
        g = self._online()
        g.trigger("RequestPlug-in", key="F" * 32)
        self.assertEqual(self._answers(g), [(OPER, {"Result": -1})])
        self.assertEqual(g.effects.plugin, [])
        self.assertEqual(g.machine.counters["triggers_refused"], 1)

    def test_missing_fields(self):
        """A trigger lacking ServerPort: Result -1."""
        g = self._online()
        msg = {"RPCMethod": "RequestPlug-in", "Key": g.key(), "ServerAddr": "127.0.0.5"}
        g.protocol.datagramReceived(json.dumps(msg).encode(), OPER)
        self.assertEqual(self._answers(g), [(OPER, {"Result": -1})])
        self.assertEqual(g.effects.plugin, [])

    def test_before_registration(self):
        """Before any Register there is no DevRND, so every trigger is refused."""
        g = Gateway()
        g.start(stored=("oper.test", OPER[1]))
        g.advance_to(30)
        g.sent()
        g.protocol.datagramReceived(json.dumps({
            "RPCMethod": "RequestPlug-in", "Key": "A" * 32, "ServerAddr": "h",
            "ServerPort": 1}).encode(), OPER)
        self.assertEqual(self._answers(g), [(OPER, {"Result": -1})])

    def test_spoofed_source_dropped(self):
        """A valid trigger from any address but the operation platform's: no answer, no action."""
        g = self._online()
        for source in [("127.0.0.9", OPER[1]), (OPER[0], OPER[1] + 1), DIST]:
            g.trigger("RequestPlug-in", frm=source)
        self.assertEqual(g.sent(), [])
        self.assertEqual(g.effects.plugin, [])
        self.assertEqual(g.machine.counters["triggers_spoofed"], 3)

    def test_rate_limit(self):
        """At most trigger_limit (6) triggers a minute are acted on; the rest get -1."""
        g = self._online()
        for n in range(8):
            g.trigger("RequestPlug-in", ServerPort=8000 + n)
            g.clock.advance(1)
        results = [m["Result"] for _, m in self._answers(g) if "Result" in m]
        self.assertEqual(results, [0] * 6 + [-1] * 2)
        self.assertEqual(len(g.effects.plugin), 6)
        g.clock.advance(60)
        g.trigger("RequestPlug-in", ServerPort=9000)
        self.assertEqual(len(g.effects.plugin), 7)

    def test_resent_within_ten_seconds(self):
        """The same trigger again within 10 s (the platform resends a lost answer) gets the
        same answer, same DevRND, and is acted on once, outside the rate limit."""
        g = self._online()
        key = g.key()
        g.trigger("RequestPlug-in", key=key)
        g.clock.advance(9.5)
        g.trigger("RequestPlug-in", key=key)
        answer = {"Result": 0, "DevRND": "%032X" % 2}
        self.assertEqual([m for _, m in self._answers(g)], [answer, answer])
        self.assertEqual(len(g.effects.plugin), 1)
        self.assertEqual(g.machine.counters["triggers_ok"], 1)
        g.clock.advance(1.0)
        g.trigger("RequestPlug-in")
        self.assertEqual(len(g.effects.plugin), 2)

    def test_request_distri(self):
        """RequestDistri with the right Key: Result 0, then BootFirst at the given platform."""
        g = self._online()
        g.trigger("RequestDistri", ServerAddr="127.0.0.6", ServerPort=12113, mode="1")
        sent = g.sent()
        self.assertEqual(sent[0][1:], (OPER, {"Result": 0, "DevRND": "%032X" % 2}))
        self.assertEqual(sent[1][1], ("127.0.0.6", 12113))
        self.assertEqual(sent[1][2]["RPCMethod"], "BootFirst")

    def test_new_key_after_register(self):
        """A new Register makes a new DevRND, so the old Key stops working."""
        g = self._online()
        old = g.key()
        g.protocol.wan_ip_changed("192.0.2.11")
        g.sent()
        g.reply(0, ChallengeCode=CHALLENGE)
        g.sent()
        g.trigger("RequestPlug-in", key=old)
        self.assertEqual(self._answers(g), [(OPER, {"Result": -1})])


class TriggerFollowUpTests(SynchronousTestCase):
    """What the platform sends after the gateway's trigger answer (protocol.md 5), and
    replies that count only in their request's own form."""

    def _triggered(self):
        g = Gateway()
        g.run_to_online(self)
        g.reply(0)
        g.trigger("RequestPlug-in")
        g.sent()
        return g

    def test_ack_ignored(self):
        """A bare {"Result":1} after the trigger answer is ignored: nothing sent, the
        heartbeat goes on as before."""
        g = self._triggered()
        t = g.clock.seconds()
        g.reply(1, frm=OPER)
        self.assertEqual((g.sent(), g.protocol.dropped), ([], 0))
        self.assertEqual(g.machine.state, "online")
        g.advance_to(t + 60)
        g.expect(self, "Hb", OPER, t + 60, FLAG="0")

    def test_ack_never_taken_as_hb_reply(self):
        """{"Result":1} while an Hb waits is not its reply: the Hb still times out and is
        sent again; the real reply then counts."""
        g = self._triggered()
        g.advance_to(g.clock.seconds() + 60)
        g.expect(self, "Hb", OPER, g.clock.seconds())
        g.reply(1, frm=OPER)
        self.assertIsNotNone(g.machine.pending)
        self.assertEqual(g.machine.counters["hb_ok"], 1)
        g.reply(0)
        self.assertEqual(g.machine.counters["hb_ok"], 2)

    def test_minus_one_registers_again_from_bootfirst(self):
        """{"Result":-1} after the trigger answer: BootFirst at the distribution platform."""
        g = self._triggered()
        g.reply(-1, frm=OPER)
        g.expect(self, "BootFirst", DIST, g.clock.seconds())

    def test_minus_one_without_trigger_is_stray(self):
        """{"Result":-1} from the operation platform with no trigger answer before it, or
        after the follow-up window, is a stray: dropped, nothing done."""
        g = Gateway()
        g.run_to_online(self)
        g.reply(0)
        g.reply(-1, frm=OPER)
        self.assertEqual((g.sent(), g.protocol.dropped), ([], 1))
        g.trigger("RequestPlug-in")
        g.sent()
        g.clock.advance(10.5)
        g.reply(-1, frm=OPER)
        self.assertEqual((g.sent(), g.protocol.dropped), ([], 2))

    def test_reply_in_another_form_is_stray(self):
        """A Result that is not in the pending request's own form (Boot 1, Hb -1 with no
        trigger before it, Register 7) is dropped; the request's timer runs on."""
        g = Gateway()
        g.start(stored=("oper.test", OPER[1]))
        g.advance_to(30)
        g.expect(self, "Boot", OPER, 30)
        g.reply(1)
        g.reply(7)
        self.assertEqual((g.sent(), g.protocol.dropped), ([], 2))
        g.reply(0, ChallengeCode=CHALLENGE)
        g.expect(self, "Register", OPER, 30)


class BadDatagramTests(SynchronousTestCase):
    def test_garbage_dropped(self):
        """Non-JSON, non-object, non-UTF-8 and oversized datagrams are dropped, state kept."""
        g = Gateway()
        t = g.run_to_online(self)
        for data in [b"\xff\xfe", b"not json", b"[1,2]", b"{" * 5000, b'{"Result":"x"}',
                     json.dumps({"Result": 0, "pad": "x" * 5000}).encode()]:
            g.protocol.datagramReceived(data, OPER)
        self.assertEqual(g.protocol.dropped, 6)
        self.assertEqual(g.sent(), [])
        g.reply(0)
        g.advance_to(t + 60)
        g.expect(self, "Hb", OPER, t + 60)

    def test_stray_reply_dropped(self):
        """A reply from an address no request went to is dropped."""
        g = Gateway()
        g.run_to_online(self)
        g.reply(-5, frm=("127.0.0.9", 60001))
        self.assertEqual(g.protocol.dropped, 1)
        self.assertEqual(g.sent(), [])

    def test_unknown_method_dropped(self):
        """A request other than a trigger is dropped without an answer."""
        g = Gateway()
        g.run_to_online(self)
        g.protocol.datagramReceived(b'{"RPCMethod":"Boot"}', OPER)
        self.assertEqual((g.protocol.dropped, g.sent()), (1, []))
