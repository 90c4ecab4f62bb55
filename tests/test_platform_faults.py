"""The fault-injection rules: parsing, validation with the rule named, matching, counting."""

from twisted.trial.unittest import SynchronousTestCase

from cubegw.platform.faults import (
    ACTION_TABLE, POST_ACTIONS, REGISTER_ACTIONS, REQUEST_ACTIONS, TRIGGER_ACTIONS,
    UDP_ACTIONS, FaultError, FaultRules, on_request, on_send, parse_rule, parse_rules)

MAC = "64D95420214B"
OTHER = "001122334455"


class ParseTests(SynchronousTestCase):
    def test_every_action(self):
        """Each action parses into a Fault with its value."""
        cases = [
            ({"drop": 2}, "drop", None, 0.0, None, 2),
            ({"no_reply": True}, "no_reply", None, 0.0, None, None),
            ({"result": -5}, "result", -5, 0.0, None, None),
            ({"delay": 2.5}, "delay", None, 2.5, None, None),
            ({"result": -1, "delay": 3}, "result", -1, 3.0, None, None),
            ({"disconnect": True}, "disconnect", None, 0.0, None, None),
            ({"distri_elsewhere": "127.0.0.1:12113"}, "distri_elsewhere", None, 0.0,
             ("127.0.0.1", 12113), None),
            ({"no_reply": True, "count": 3}, "no_reply", None, 0.0, None, 3),
        ]
        message = {"disconnect": "Register", "distri_elsewhere": "RequestDistri"}
        for extra, action, result, delay, target, remaining in cases:
            rule = parse_rule(dict({"mac": "*", "message": message.get(action, "Hb")},
                                   **extra))
            self.assertEqual(
                (rule.fault.action, rule.fault.result, rule.fault.delay, rule.fault.target,
                 rule.remaining), (action, result, delay, target, remaining), extra)

    def test_mac_normalized(self):
        """A MAC with separators or lower case matches the protocol's upper-case form."""
        rule = parse_rule({"mac": "64:d9:54:20:21:4b", "message": "Boot", "result": -1})
        self.assertEqual(rule.mac, MAC)

    def test_plugin_alias(self):
        """RequestPlugin is accepted for the wire name RequestPlug-in."""
        rule = parse_rule({"mac": "*", "message": "RequestPlugin", "drop": 1})
        self.assertEqual(rule.message, "RequestPlug-in")

    def test_none_is_empty(self):
        """A missing faults list is no rules."""
        self.assertEqual(parse_rules(None), [])

    def test_bad_rules_name_the_rule(self):
        """Every bad rule is refused with its index, MAC and message in the error."""
        bad = [
            ({"mac": "*", "message": "Hb", "no_reply": True, "colour": 1}, "unknown key"),
            ({"message": "Hb", "no_reply": True}, "mac is required"),
            ({"mac": "XYZ", "message": "Hb", "no_reply": True}, "mac:"),
            ({"mac": "*", "no_reply": True}, "message is required"),
            ({"mac": "*", "message": "Hello", "no_reply": True}, "unknown message"),
            ({"mac": "*", "message": "Hb", "server": "moon", "no_reply": True}, "server"),
            ({"mac": "*", "message": "Hb"}, "no action"),
            ({"mac": "*", "message": "Hb", "no_reply": True, "result": 0}, "only one of"),
            ({"mac": "*", "message": "Hb", "drop": 1, "delay": 1}, "delay combines"),
            ({"mac": "*", "message": "Hb", "result": "x"}, "result: must be an integer"),
            ({"mac": "*", "message": "Hb", "result": True}, "result: must be an integer"),
            ({"mac": "*", "message": "Hb", "delay": -1}, "delay: must be"),
            ({"mac": "*", "message": "Hb", "no_reply": "yes"}, "no_reply: must be true"),
            ({"mac": "*", "message": "Hb", "drop": 0}, "drop: must be"),
            ({"mac": "*", "message": "Hb", "drop": 2, "count": 1}, "drop counts itself"),
            ({"mac": "*", "message": "Hb", "no_reply": True, "count": 0}, "count: must be"),
            ({"mac": "*", "message": "RequestPlug-in", "result": 0}, "does not apply"),
            ({"mac": "*", "message": "RequestDistri", "distri_elsewhere": "nohost"},
             "host:port"),
        ]
        for spec, why in bad:
            specs = [{"mac": "*", "message": "Boot", "result": -1}, spec]
            e = self.assertRaises(FaultError, parse_rules, specs)
            self.assertIn("faults[1]", str(e), spec)
            self.assertIn(why, str(e), spec)
            self.assertIn("message=%s" % spec.get("message", "?"), str(e))

    def test_not_a_mapping(self):
        """A rule that is not a mapping, or a faults value that is not a list, is refused."""
        self.assertIn("faults[0]", str(self.assertRaises(FaultError, parse_rules, ["Hb"])))
        self.assertRaises(FaultError, parse_rules, {"mac": "*"})


class DecideTests(SynchronousTestCase):
    def test_no_rules(self):
        """With no rules every message is handled normally."""
        self.assertIsNone(FaultRules().decide(MAC, "Hb", "operation"))

    def test_mac_and_message_match(self):
        """A rule for one MAC and message leaves other MACs and messages alone."""
        rules = FaultRules([{"mac": MAC, "message": "Hb", "result": -5}])
        self.assertIsNone(rules.decide(OTHER, "Hb", "operation"))
        self.assertIsNone(rules.decide(MAC, "Boot", "operation"))
        self.assertEqual(rules.decide(MAC, "Hb", "operation").result, -5)

    def test_wildcards(self):
        """mac "*" and message "*" match everything."""
        rules = FaultRules([{"mac": "*", "message": "*", "no_reply": True}])
        self.assertEqual(rules.decide(OTHER, "BootFirst", "distribution").action, "no_reply")

    def test_server(self):
        """A rule for one server does not match the same message on another."""
        rules = FaultRules([{"mac": "*", "message": "Boot", "server": "plugin_center",
                             "result": -1}])
        self.assertIsNone(rules.decide(MAC, "Boot", "operation"))
        self.assertEqual(rules.decide(MAC, "Boot", "plugin_center").result, -1)

    def test_first_match_wins(self):
        """Rules are tried in order; the first live match is used."""
        rules = FaultRules([{"mac": MAC, "message": "Hb", "result": -3, "count": 1},
                            {"mac": "*", "message": "Hb", "result": -5}])
        self.assertEqual(rules.decide(MAC, "Hb", "operation").result, -3)
        self.assertEqual(rules.decide(MAC, "Hb", "operation").result, -5)

    def test_count(self):
        """count: N applies N times, then the message is handled normally."""
        rules = FaultRules([{"mac": "*", "message": "Hb", "no_reply": True, "count": 2}])
        got = [rules.decide(MAC, "Hb", "operation") for _ in range(3)]
        self.assertEqual([f and f.action for f in got], ["no_reply", "no_reply", None])

    def test_active_until_spent(self):
        """active() is False with no rules, and again once every counted rule is used up
        (the spent rule stays listed, with remaining 0)."""
        self.assertFalse(FaultRules().active())
        rules = FaultRules([{"mac": "*", "message": "Hb", "no_reply": True, "count": 1}])
        self.assertTrue(rules.active())
        rules.decide(MAC, "Hb", "operation")
        self.assertFalse(rules.active())
        self.assertEqual(rules.rules[0]["remaining"], 0)
        self.assertTrue(FaultRules([{"mac": "*", "message": "Hb", "result": -1}]).active())

    def test_count_shared_by_devices(self):
        """The count of a "*" rule is shared by every device it matches."""
        rules = FaultRules([{"mac": "*", "message": "Hb", "result": -1, "count": 1}])
        self.assertIsNotNone(rules.decide(MAC, "Hb", "operation"))
        self.assertIsNone(rules.decide(OTHER, "Hb", "operation"))

    def test_drop(self):
        """drop: N drops the next N, then behaves normally."""
        rules = FaultRules([{"mac": "*", "message": "Boot", "drop": 2}])
        got = [rules.decide(MAC, "Boot", "operation") for _ in range(3)]
        self.assertEqual([f and f.action for f in got], ["drop", "drop", None])
        self.assertEqual(rules.rules[0]["remaining"], 0)

    def test_unlimited(self):
        """A rule with no count applies every time."""
        rules = FaultRules([{"mac": "*", "message": "Hb", "delay": 1}])
        for _ in range(5):
            self.assertEqual(rules.decide(MAC, "Hb", "operation").delay, 1.0)

    def test_supported_filter(self):
        """A caller that cannot carry out an action skips the rule without using it up."""
        rules = FaultRules([{"mac": "*", "message": "*", "disconnect": True, "count": 1},
                            {"mac": "*", "message": "RequestDistri",
                             "distri_elsewhere": "127.0.0.1:1", "count": 1}])
        self.assertIsNone(rules.decide(MAC, "Hb", "operation", UDP_ACTIONS))
        self.assertIsNone(rules.decide(MAC, "Register", "operation", UDP_ACTIONS))
        self.assertIsNone(rules.decide(MAC, "Heartbeat", "plugin_center"))
        self.assertIsNone(rules.decide(MAC, "RequestPlug-in", "operation", TRIGGER_ACTIONS))
        self.assertEqual(rules.decide(MAC, "Register", "plugin_center").action,
                         "disconnect")
        self.assertEqual(rules.decide(MAC, "RequestDistri", "operation").target,
                         ("127.0.0.1", 1))

    def test_fault_names_rule(self):
        """The fault says which rule produced it, for the log."""
        rules = FaultRules([{"mac": "*", "message": "Hb", "no_reply": True}])
        self.assertEqual(rules.decide(MAC, "Hb", "operation").rule,
                         "faults[0] (mac=*, message=Hb)")


class SetRulesTests(SynchronousTestCase):
    def test_replace(self):
        """set_rules replaces every rule and starts counts afresh."""
        rules = FaultRules([{"mac": "*", "message": "Hb", "result": -1, "count": 1}])
        rules.decide(MAC, "Hb", "operation")
        rules.set_rules([{"mac": "*", "message": "Boot", "result": -2, "count": 1}])
        self.assertIsNone(rules.decide(MAC, "Hb", "operation"))
        self.assertEqual(rules.decide(MAC, "Boot", "operation").result, -2)
        rules.set_rules([])
        self.assertEqual(rules.rules, [])

    def test_bad_set_keeps_old(self):
        """A bad rule list changes nothing: the old rules stay in force."""
        rules = FaultRules([{"mac": "*", "message": "Hb", "result": -1}])
        self.assertRaises(FaultError, rules.set_rules,
                          [{"mac": "*", "message": "Boot", "result": -2},
                           {"mac": "*", "message": "Hb"}])
        self.assertEqual(rules.decide(MAC, "Hb", "operation").result, -1)
        self.assertIsNone(rules.decide(MAC, "Boot", "operation"))

    def test_rules_listing(self):
        """rules lists each rule as given plus its remaining uses."""
        rules = FaultRules([{"mac": "*", "message": "Hb", "no_reply": True, "count": 2}])
        rules.decide(MAC, "Hb", "operation")
        self.assertEqual(rules.rules, [{"mac": "*", "message": "Hb", "no_reply": True,
                                        "count": 2, "remaining": 1}])


class Recorder:
    """A server as ``on_request`` and ``on_send`` see it: records each step it is asked for,
    and runs what ``later`` is given at once."""

    def __init__(self, result=0):
        self.steps = []
        self.result = result

    def answer(self, request, where):
        self.steps.append("answer")
        return {"Result": self.result}, "note"

    def send_reply(self, request, where, reply, note):
        self.steps.append(("send_reply", reply["Result"]))

    def withhold_reply(self, request, where, reply, note, fault):
        self.steps.append(("withhold_reply", reply["Result"]))

    def send_result(self, request, where, fault):
        self.steps.append(("send_result", fault.result))

    def close_after(self, request, where, fault):
        self.steps.append("close_after")

    def log_fault(self, request, fault, text):
        self.steps.append(("log", text.split("(")[0].strip(" :")))

    def send_now(self, pending, message):
        self.steps.append("send_now")

    def not_sent(self, pending, message, fault):
        self.steps.append("not_sent")

    def result_instead(self, pending, fault):
        self.steps.append(("result_instead", fault.result))

    def later(self, delay, f, *args):
        self.steps.append(("later", delay))
        f(*args)


def fault(**action):
    return parse_rule(dict({"mac": "*", "message": "*"}, **action)).fault


class ActionTableTests(SynchronousTestCase):
    def test_which_server_does_what(self):
        """The sets of actions each kind of server carries out come from the table."""
        self.assertEqual(UDP_ACTIONS, REQUEST_ACTIONS)
        self.assertEqual(REQUEST_ACTIONS, {"drop", "no_reply", "result", "delay"})
        self.assertEqual(REGISTER_ACTIONS, REQUEST_ACTIONS | {"disconnect"})
        self.assertEqual(POST_ACTIONS, {"drop", "no_reply", "result", "delay"})
        self.assertEqual(TRIGGER_ACTIONS, {"drop", "no_reply", "delay", "distri_elsewhere"})
        self.assertEqual(list(ACTION_TABLE), ["drop", "no_reply", "result", "delay",
                                              "disconnect", "distri_elsewhere"])

    def test_request(self):
        """Each action answers a request in its own steps; no fault answers normally."""
        cases = [
            (None, ["answer", ("send_reply", 0)]),
            (fault(drop=1), [("log", "dropped")]),
            (fault(no_reply=True), ["answer", ("withhold_reply", 0)]),
            (fault(result=-5, delay=2), [("later", 2.0), ("send_result", -5)]),
            (fault(delay=3), [("log", "answering in {delay} s"), ("later", 3.0), "answer",
                              ("send_reply", 0)]),
            (fault(disconnect=True), ["answer", ("send_reply", 0), "close_after"]),
        ]
        for f, steps in cases:
            server = Recorder()
            on_request(f, server, "request", "where")
            self.assertEqual(server.steps, steps, f)

    def test_disconnect_only_after_success(self):
        """disconnect closes only after a Result 0 reply."""
        server = Recorder(result=-1)
        on_request(fault(disconnect=True), server, "request", "where")
        self.assertEqual(server.steps, ["answer", ("send_reply", -1)])

    def test_send(self):
        """Each action sends a message in its own steps, and says how late it goes."""
        cases = [
            (None, ["send_now"], 0.0),
            (fault(drop=1), ["not_sent"], 0.0),
            (fault(no_reply=True), ["not_sent"], 0.0),
            (fault(result=-5), [("later", 0.0), ("result_instead", -5)], 0.0),
            (fault(delay=4), [("later", 4.0), "send_now"], 4.0),
        ]
        for f, steps, late in cases:
            sender = Recorder()
            self.assertEqual(on_send(f, sender, "pending", "message"), late, f)
            self.assertEqual(sender.steps, steps, f)


class NeverFiresTests(SynchronousTestCase):
    """Rules the platform could never carry out are refused when parsed (issue 14)."""

    def test_refused(self):
        """Each false pass is a FaultError naming where the action does fire."""
        for spec in ({"message": "Post", "disconnect": True},
                     {"message": "Hb", "disconnect": True},
                     {"message": "Register", "server": "operation", "disconnect": True},
                     {"message": "Boot", "distri_elsewhere": "127.0.0.1:1"},
                     {"message": "RequestPlug-in", "distri_elsewhere": "127.0.0.1:1"},
                     {"message": "Disconnect", "drop": 1},
                     {"message": "Hb", "server": "plugin_center", "result": -3},
                     {"message": "BootFirst", "server": "operation", "no_reply": True},
                     {"message": "Report", "no_reply": True}):
            with self.assertRaises(FaultError, msg=spec) as caught:
                parse_rule(dict(spec, mac="*"))
            self.assertIn("never fires", str(caught.exception))
            self.assertIn("it fires on", str(caught.exception))

    def test_accepted(self):
        """Rules that can fire stay accepted, wildcards where one place fits."""
        for spec in ({"message": "Register", "disconnect": True},
                     {"message": "*", "disconnect": True},
                     {"message": "Register", "server": "plugin_center", "disconnect": True},
                     {"message": "RequestDistri", "distri_elsewhere": "127.0.0.1:1"},
                     {"message": "*", "server": "plugin_center", "result": -1},
                     {"message": "Report", "server": "message_server", "drop": 1}):
            parse_rule(dict(spec, mac="*"))

    def test_distri_elsewhere_sends_the_other_address(self):
        """distri_elsewhere rewrites ServerAddr and ServerPort of the RequestDistri sent."""
        from cubegw import wire
        sent = []

        class Sender:
            def send_now(self, pending, message):
                sent.append(message)
        rules = FaultRules([{"mac": "*", "message": "RequestDistri",
                             "distri_elsewhere": "10.0.0.1:12113"}])
        fault = rules.decide(MAC, "RequestDistri", "operation", TRIGGER_ACTIONS)
        delay = on_send(fault, Sender(), None, wire.RequestDistri(
            Key="K", ServerAddr="127.0.0.1", ServerPort=12112))
        self.assertEqual((delay, sent[0].ServerAddr, sent[0].ServerPort),
                         (0.0, "10.0.0.1", 12113))
