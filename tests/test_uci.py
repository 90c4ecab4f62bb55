"""Tests for cubegw.store.uci: reading and writing UCI text as libuci does."""

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from cubegw.store import uci
from cubegw.store.uci import Package, Section, UciError, check_value, parse, serialize

# What the real `uci` tool wrote for a small /etc/config/wireless (uci commit).
UCI_COMMIT_OUTPUT = """
config wifi-device 'radio0'
\toption type 'mac80211'
\toption channel '11'
\toption htmode 'HT20'
\tlist ht_capab 'SHORT-GI-20'
\tlist ht_capab 'RX-STBC1'

config wifi-iface 'default_radio0'
\toption device 'radio0'
\toption ssid 'ChinaNet-it'\\''s "home"'
\toption key 'p@ss w\\rd'

config wifi-iface
\toption device 'radio0'
\toption ssid 'guest'

"""

# Hand-written the way OpenWrt's default files and the wiki show it.
HAND_WRITTEN = """\
# /etc/config/dhcp, as a person writes it
config dnsmasq
	option domainneeded 1   # trailing comment
	option local     "/lan/"
	option domain	lan
	list server "/example.com/10.0.0.1"
	list server '8.8.8.8'

config host 'printer'
	option name printer
	option mac '00:11:22:33:44:55'
	option note "say \\"hi\\" \\\\ bye"

	# an indented comment line
config dhcp lan
	option interface lan
"""

ALLOWED_CHARS = st.characters(blacklist_categories=("Cs",)).filter(
    lambda c: c == "\t" or ord(c) >= 32)
NAMES = st.text("abcxyzABCXYZ0189_", min_size=1, max_size=8)
TYPES = st.text([chr(c) for c in range(33, 127)], min_size=1, max_size=10)
VALUES = st.text(ALLOWED_CHARS, max_size=20)


@st.composite
def packages(draw):
    """Models the writer accepts: unique section names, allowed values."""
    package = Package(name=draw(st.none() | st.text("abc_-", min_size=1, max_size=8)))
    used = set()
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.none() | NAMES)
        if name in used:
            name = None
        used.add(name)
        options = draw(st.dictionaries(
            NAMES, VALUES | st.lists(VALUES, max_size=3), max_size=4))
        package.sections.append(Section(draw(TYPES), name, options))
    return package


def without_empty(package):
    """What libuci keeps of a model: no empty option, no empty list."""
    return Package(
        [Section(s.type, s.name, {k: v for k, v in s.options.items() if v not in ("", [])})
         for s in package.sections],
        package.name)


def one_value(value):
    """Write one option holding ``value`` and read it back."""
    text = serialize(Package([Section("t", "s", {"v": value})]))
    return parse(text).section("s").options.get("v")


class ParseTests(SynchronousTestCase):
    """Files as the real uci tool and people write them."""

    def test_uci_commit_output(self):
        """A file written by `uci commit` reads back section by section."""
        package = parse(UCI_COMMIT_OUTPUT)
        self.assertEqual(
            [(s.type, s.name) for s in package.sections],
            [("wifi-device", "radio0"), ("wifi-iface", "default_radio0"),
             ("wifi-iface", None)])
        radio = package.section("radio0")
        self.assertEqual(radio.options["channel"], "11")
        self.assertEqual(radio.options["ht_capab"], ["SHORT-GI-20", "RX-STBC1"])
        iface = package.section("default_radio0").options
        self.assertEqual(iface["ssid"], 'ChinaNet-it\'s "home"')
        self.assertEqual(iface["key"], "p@ss w\\rd")
        self.assertEqual(package.sections[2].options, {"device": "radio0", "ssid": "guest"})

    def test_uci_commit_output_round_trips(self):
        """Writing what uci wrote gives back the very same text."""
        self.assertEqual(serialize(parse(UCI_COMMIT_OUTPUT)), UCI_COMMIT_OUTPUT)

    def test_hand_written(self):
        """Unquoted and double-quoted values, tabs, comments and blank lines."""
        package = parse(HAND_WRITTEN)
        dnsmasq = package.sections_of("dnsmasq")[0]
        self.assertIsNone(dnsmasq.name)
        self.assertEqual(dnsmasq.options, {
            "domainneeded": "1", "local": "/lan/", "domain": "lan",
            "server": ["/example.com/10.0.0.1", "8.8.8.8"]})
        self.assertEqual(package.section("printer").options["note"], 'say "hi" \\ bye')
        self.assertEqual(package.section("lan").options, {"interface": "lan"})

    def test_double_quote_backslash(self):
        """Inside double quotes a backslash keeps the next character as is."""
        self.assertEqual(
            parse('config t s\n option v "a\\"b\\\\c\\nd\\\'e"\n').section("s").options["v"],
            "a\"b\\cnd'e")

    def test_concatenated_pieces(self):
        """Adjacent quoted and unquoted pieces make one value, as in a shell."""
        text = "config t s\n option a 'it'\\''s'\n option b x\"y z\"'w'\n"
        options = parse(text).section("s").options
        self.assertEqual(options, {"a": "it's", "b": "xy zw"})

    def test_hash_starts_comment_in_unquoted_word(self):
        """`#` ends the line even inside an unquoted word, not inside quotes."""
        text = "config t s\n option a foo#bar\n option b 'foo#bar'\n"
        self.assertEqual(parse(text).section("s").options, {"a": "foo", "b": "foo#bar"})

    def test_short_keywords_and_package(self):
        """`package`, and the one-letter forms c/o/l that libuci accepts."""
        package = parse("package cubegw\nc t s\no a 1\nl b 2\n")
        self.assertEqual(package.name, "cubegw")
        self.assertEqual(package.section("s").options, {"a": "1", "b": ["2"]})

    def test_empty_option_is_unset(self):
        """`option x ''` sets nothing (libuci skips empty values), even after a value."""
        text = "config t s\n option a ''\n option b 'kept'\n option b ''\n option c\n"
        self.assertEqual(parse(text).section("s").options, {"b": "kept"})

    def test_empty_list_item_kept(self):
        """An empty list item is kept, as libuci does."""
        self.assertEqual(parse("config t s\n list a ''\n").section("s").options["a"], [""])

    def test_repeated_option(self):
        """A repeated option takes the last value and moves after the others."""
        text = "config t s\n option a 1\n option b 2\n option a 3\n option b 2\n"
        self.assertEqual(list(parse(text).section("s").options.items()), [("b", "2"), ("a", "3")])

    def test_option_then_list(self):
        """A `list` after an `option` of the same name makes a list of both."""
        text = "config t s\n option a 1\n list a 2\n"
        self.assertEqual(parse(text).section("s").options["a"], ["1", "2"])

    def test_reopened_named_section_merges(self):
        """A second `config` with the same name and type adds to the first."""
        package = parse("config t s\n option a 1\nconfig u\nconfig t s\n option b 2\n")
        self.assertEqual([(s.type, s.name) for s in package.sections], [("t", "s"), ("u", None)])
        self.assertEqual(package.section("s").options, {"a": "1", "b": "2"})

    def test_multiline_quoted_value(self):
        """A quoted value may span lines, as libuci reads it."""
        text = "config t s\n option a 'one\ntwo'\n option b x\n"
        self.assertEqual(parse(text).section("s").options, {"a": "one\ntwo", "b": "x"})

    def test_backslash_newline_joins_lines(self):
        """A backslash before the newline continues the word on the next line."""
        self.assertEqual(parse('config t s\n option a "foo\\\nbar"\n').section("s").options["a"],
                         "foobar")

    def test_semicolon_joins_commands(self):
        """`;` after a quoted word starts another command on the same line."""
        package = parse("config t 's'; option a '1'; list b '2'\n")
        self.assertEqual(package.section("s").options, {"a": "1", "b": ["2"]})

    def test_semicolon_after_unquoted_word_ends_line(self):
        """After an unquoted word, libuci's in-place parsing drops the rest of the line."""
        self.assertEqual(parse("config t s\n option a 1;option b 2\n").section("s").options,
                         {"a": "1"})

    def test_crlf_and_no_final_newline(self):
        """CRLF line ends and a last line without newline read normally."""
        package = parse("config t s\r\n\toption a 'x'\r\n\toption b y")
        self.assertEqual(package.section("s").options, {"a": "x", "b": "y"})

    def test_empty_text(self):
        """An empty or comment-only file is an empty package."""
        self.assertEqual(parse(""), Package())
        self.assertEqual(parse("# nothing\n\n"), Package())

    def test_type_with_punctuation(self):
        """Section types may hold any printable ASCII, as in libuci."""
        self.assertEqual(parse("config wifi-iface.x n\n").section("n").type, "wifi-iface.x")


class ParseErrorTests(SynchronousTestCase):
    """Text libuci refuses is refused with the line where it went wrong."""

    def assertError(self, text, line, fragment):
        with self.assertRaises(UciError) as caught:
            parse(text)
        self.assertEqual(caught.exception.line, line)
        self.assertIn(fragment, caught.exception.reason)
        self.assertIsInstance(caught.exception, ValueError)
        self.assertTrue(str(caught.exception).startswith(f"line {line}: "))

    def test_option_before_section(self):
        """An option with no section before it."""
        self.assertError("# header\noption a b\n", 2, "before the first section")

    def test_bad_option_name(self):
        """A name with a character outside [A-Za-z0-9_]."""
        self.assertError("config t s\n\n option foo-bar x\n", 3, "invalid character")

    def test_bad_section_name(self):
        """A section name with a space, even quoted."""
        self.assertError("config t 'my name'\n", 1, "invalid character")

    def test_unterminated_quote(self):
        """A quote still open at the end of the file."""
        self.assertError("config t s\n option a 'abc\n option b c\n", 3, "unterminated")

    def test_too_many_arguments(self):
        """An unquoted value with a space in it."""
        self.assertError("config t s\n option a b c\n", 2, "too many arguments")

    def test_unknown_command(self):
        """A word that is not package/config/option/list."""
        self.assertError("config t s\n opt a b\n", 2, "invalid command")

    def test_missing_arguments(self):
        """`config` with no type and `option` with no name."""
        self.assertError("config \n", 1, "insufficient arguments")
        self.assertError("config t s\noption  \n", 2, "insufficient arguments")

    def test_type_conflict(self):
        """Reopening a named section with another type."""
        self.assertError("config t s\nconfig u s\n", 2, "overwrites")

    def test_nul(self):
        """A NUL character, which libuci cannot represent."""
        self.assertError("config t s\n option a 'x\0'\n", 2, "NUL")


class SerializeTests(SynchronousTestCase):
    """The writer produces what `uci commit` would."""

    def test_layout(self):
        """Blank line, config line, TAB-indented options, final blank line."""
        package = Package([
            Section("mgt", "mgt", {"Port": "12112", "dns": ["a", "b"]}),
            Section("rule", None, {"name": "x"}),
        ])
        self.assertEqual(serialize(package),
                         "\nconfig mgt 'mgt'\n\toption Port '12112'\n"
                         "\tlist dns 'a'\n\tlist dns 'b'\n"
                         "\nconfig rule\n\toption name 'x'\n\n")

    def test_empty_package(self):
        """An empty package is the single newline uci writes."""
        self.assertEqual(serialize(Package()), "\n")

    def test_single_quote_escape(self):
        """An embedded single quote is written as '\\''."""
        self.assertIn("\toption v 'it'\\''s'\n",
                      serialize(Package([Section("t", "s", {"v": "it's"})])))

    def test_multiline_written_verbatim(self):
        """A multi-line value (someone else's: libuci allows it) is written back as it
        is, quoted, and reads back the same."""
        for value in ("two\nlines", "cr\r\nhere", ["ok", "it's\nbad"], "esc\x1b bell\x07"):
            package = Package([Section("t", "s", {"v": value})])
            self.assertEqual(parse(serialize(package)).section("s").options["v"], value)

    def test_nul_refused(self):
        """NUL cannot be written (libuci's strings end at it): a clear error naming it."""
        for value in ("a\0b", ["ok", "\0"]):
            with self.assertRaises(UciError) as caught:
                serialize(Package([Section("t", "s", {"v": value})]))
            self.assertIn("s.v", str(caught.exception))

    def test_check_value_for_our_own_values(self):
        """check_value, for what we set ourselves, refuses newlines and control
        characters but TAB, as ``uci set`` does."""
        for value in ("two\nlines", "cr\rhere", "a\0", "a\x1b", "a\x07"):
            self.assertRaises(UciError, check_value, value, "s.v")
        with self.assertRaises(UciError) as caught:
            check_value("two\nlines", "s.v")
        self.assertIn("newlines are not allowed", str(caught.exception))
        check_value("a\tb", "s.v")
        self.assertEqual(one_value("a\tb"), "a\tb")

    def test_bad_names_refused(self):
        """Names outside [A-Za-z0-9_], bad types and duplicate names are refused."""
        for package in (
                Package([Section("t", "bad-name")]),
                Package([Section("t", "s", {"bad.opt": "x"})]),
                Package([Section("with space", "s")]),
                Package([Section("", "s")]),
                Package([Section("t", "s"), Section("u", "s")]),
                Package([Section("t", "s", {"v": 3})]),
                Package(name="bad name")):
            self.assertRaises(UciError, serialize, package)

    def test_empty_value_left_out(self):
        """An empty string or empty list is written as no option (uci's unset)."""
        text = serialize(Package([Section("t", "s", {"a": "", "b": [], "c": "x"})]))
        self.assertEqual(text, "\nconfig t 's'\n\toption c 'x'\n\n")

    def test_type_needing_quotes(self):
        """A type with a quote or `#` in it is quoted so it reads back."""
        package = Package([Section("a#b", "s"), Section("it's", None)])
        self.assertEqual(parse(serialize(package)), package)


class RoundTripTests(SynchronousTestCase):
    """What the writer writes, the parser reads back unchanged."""

    def test_tricky_values(self):
        """Quotes, spaces, backslashes, '\\'', `#`, `;`, unicode survive a round trip."""
        for value in ("it's", 'say "hi"', "two  spaces ", " lead", "back\\slash\\",
                      "'\\''", "''", '""', "#not a comment", "a;b", "日本語 ✓",
                      "\u00a0nbsp\u2028sep", "$(reboot) `x`", "\\", "'", '"', "é\\n"):
            self.assertEqual(one_value(value), value)
            self.assertEqual(one_value([value, value]), [value, value])

    def test_empty_string(self):
        """The empty string reads back as unset, as libuci holds it; in a list it stays."""
        self.assertIsNone(one_value(""))
        self.assertEqual(one_value(["", "x"]), ["", "x"])

    @settings(max_examples=200, deadline=None)
    @given(packages())
    def test_property_round_trip(self, package):
        """For any model the writer accepts, parse(serialize(m)) is m less empty values."""
        text = serialize(package)
        self.assertEqual(parse(text), without_empty(package))
        self.assertEqual(serialize(parse(text)), text)

    @settings(max_examples=200, deadline=None)
    @given(packages(), packages())
    def test_property_memo_same_text(self, first, second):
        """With a memo kept across writes, serialize writes exactly what it writes
        without one, and refuses what it refuses without one (duplicate names too)."""
        memo = {}
        for package in (first, second, first, Package(first.sections + first.sections)):
            try:
                plain = serialize(package)
            except UciError:
                self.assertRaises(UciError, serialize, package, memo)
                continue
            self.assertEqual(serialize(package, memo), plain)

    def test_memo_formats_only_the_changed_section(self):
        """A section already written is not formatted again; a changed one is."""
        formatted = []
        real = uci._section_text
        self.patch(uci, "_section_text", lambda s: formatted.append(s.name) or real(s))
        memo = {}
        package = parse("config a 'x'\n\toption v '1'\nconfig b 'y'\n\toption w '2'\n")
        serialize(package, memo)
        self.assertEqual(formatted, ["x", "y"])
        package.section("x").options["v"] = "it's"
        self.assertIn("option v 'it'\\''s'", serialize(package, memo))
        self.assertEqual(formatted, ["x", "y", "x"])

    def test_memo_sees_order_and_lists_changed_in_place(self):
        """The same options in another order, or a list changed in place after it was
        written, are written as they are now, not as remembered."""
        memo = {}
        section = Section("t", "s", {"a": "1", "b": ["x"]})
        serialize(Package([section]), memo)
        section.options["b"].append("y")
        section.options = {"b": section.options["b"], "a": "1"}
        self.assertEqual(serialize(Package([section]), memo),
                         serialize(Package([section])))
        self.assertIn("list b 'x'\n\tlist b 'y'\n\toption a '1'",
                      serialize(Package([section]), memo))

    def test_memo_refuses_bad_values(self):
        """A value that cannot be written is refused with a memo too."""
        for bad in ({"v": 1}, {"v": ["a", {"x": 1}]}, {"v": "nul\x00"}, {"bad name": "x"}):
            package = Package([Section("t", "s", bad)])
            self.assertRaises(UciError, serialize, package, {})

    @settings(max_examples=200, deadline=None)
    @given(VALUES)
    def test_property_any_value(self, value):
        """Any value without control characters but TAB reads back as written."""
        self.assertEqual(one_value(value), value or None)

    @settings(max_examples=200, deadline=None)
    @given(st.text(st.sampled_from("config option list t s a 'x\"\\#;\n\t\r é"), max_size=60))
    def test_property_parse_fails_cleanly(self, text):
        """Any text either parses or raises UciError, never anything else."""
        try:
            parse(text)
        except UciError:
            pass


class CopyTests(SynchronousTestCase):
    """``Package.copy``: what a reader gets to change without touching the original."""

    def test_copy_is_equal_and_independent(self):
        """Sections, option dicts and lists are the copy's own; a section without a list
        and one with a list alike."""
        original = parse("package p\nconfig a 'x'\n\toption o '1'\n"
                         "config b\n\tlist l 'one'\n\tlist l 'two'\n\toption o '2'\n")
        text = serialize(original)
        copied = original.copy()
        self.assertEqual(copied, original)
        self.assertEqual(copied.name, "p")
        copied.sections[0].options["o"] = "changed"
        copied.sections[1].options["l"].append("three")
        copied.sections[1].name = "renamed"
        copied.sections.append(Section("c"))
        self.assertEqual(serialize(original), text)

    def test_keywords_and_defaults(self):
        """``Package`` still takes its fields by keyword and defaults them."""
        self.assertEqual(Package(), Package([], None))
        self.assertEqual(Package(name="n", sections=[Section("a")]).sections, [Section("a")])
        self.assertIsNot(Package().sections, Package().sections)
