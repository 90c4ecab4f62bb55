"""docs/CATALOGUE.md against the providers it describes, so the table cannot drift."""

import os
import re

from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import discover_providers

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "docs", "CATALOGUE.md")
CAPABILITIES_DOC = os.path.join(os.path.dirname(DOC), "CAPABILITIES.md")
CAPABILITIES_HEADER = ["CmdType", "module", "default right", "account",
                       "reply fields / effect"]
HEADER = ["CmdType", "right", "account", "data it changes (owner)", "on OpenWrt",
          "on a plain Linux host"]
RIGHT_WORDS = {0: "none", 1: "local", 2: "remote", 3: "both"}
FIELD_HEADER = ["field CmdType", "field handler", "field password flag", "cubegw status"]

#: The CmdTypes of the field gateway's table (HyGw/test, mobile-manager
#: parameter/src/parameter_table.c), TCSUPPORT_CT_JOYME rows included.
FIELD_CMD_TYPES = """
ADDOBJECT ATTACH_WANL2TP_TUNNEL ATTACH_WAN_DNS_TUNNEL CHECK_PASSWD_PARAM CREATE_WANL2TP_TUNNEL
DELETEOBJECT DETACH_WANL2TP_TUNNEL DETACH_WAN_DNS_TUNNEL DEVICE_SPEED GETPARAMETERVALUES
GET_ATTACH_DEVICE_BANDWIDTH GET_ATTACH_DEVICE_RIGHT GET_ATTACH_DEVICE_STORAGE_ACCESS_BLACKLIST
GET_DEVICE_INFO_ALL GET_HG_DEV_NAME GET_HG_LOID GET_HG_WIFI_TIMER_EX GET_HW_IP GET_LAN_INFO2
GET_LAN_NET_INFO GET_NETWORK_DNS GET_PING_RESULT GET_PONINFORM_REQ GET_PON_STATUS GET_SERVICE
GET_SLEEP_STATUS GET_SN_INFO GET_TIME_DURATION GET_TRACEROUTE_RESULT GET_VERSION GET_VOIP_INFO
GET_VOIP_REG_STATUS GET_WANL2TP_TUNNEL_STATUS GET_WIFI_INFO GET_WLAN_ATTACH_INFO
GET_WLAN_INTF_INFO HG_COMMAND_REBOOT HG_LOCAL_RECOVERY HTTP_DOWNLOAD_REQUEST INFORM_DIAG_REQ
LAN_DEVICE_ACCESS MULTICAST_DIAG_REQ PING_DIAG_REQ PPPOE_DIAG_REQ PPPOE_DIAL_REQUEST
QUERY_ATTACH_DEVICE_REALRATE QUERY_CPU_INFO QUERY_MEM_INFO QUERY_REALRATE QUERY_SYSTEM_INFO
QUERY_WAN_INFO QUERY_WAN_NUM QUERY_WAN_REALRATE REGISTER REGISTER_GETSTAT REMOVE_WANL2TP_TUNNEL
SETPARAMETERVALUES SET_ATTACH_DEVICE_BANDWIDTH SET_ATTACH_DEVICE_NAME SET_ATTACH_DEVICE_RIGHT
SET_BUSINESS_PLATFORM_PARAM SET_HG_DATE_TIME_SYNC SET_HG_DEV_NAME SET_HG_LED_INDICATOR_TIMER
SET_HG_WIFI_TIMER SET_HG_WIFI_TIMER_EX SET_HTTP_CFG SET_HTTP_CFG1 SET_LED_STATUS SET_NETWORK_DNS
SET_OS_RIGHT SET_REDIRECT_INFO SET_RIGHT SET_RIGHT1 SET_SLEEP_STATUS SET_WD_INFO SET_WIFI_INFO
SET_WLAN_SSID_DISABLE SET_WLAN_SSID_ENABLE SYSTEST TRACEROUTE_DIAG_REQ UPGRADE WPS_OFF WPS_ON
WPS_QY
""".split()
#: The field table's password flag (its fourth column): the CmdTypes marked 1.
FIELD_PASSWORD_FLAGS = frozenset({"GET_DEVICE_INFO_ALL", "GET_TRACEROUTE_RESULT",
                                  "HTTP_DOWNLOAD_REQUEST", "SET_HTTP_CFG"})
_ACCOUNT = re.compile(r"(yes|no)\b")


def _cells(line):
    """The cells of a Markdown table row, stripped (no cell of the table holds a "|")."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def catalogue_rows(text, header=HEADER):
    """The rows of the table whose header is ``header``: lists of cells."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and _cells(line) == header:
            break
    else:
        raise AssertionError(f"no table with header {header} in {DOC}")
    rows = []
    for line in lines[i + 2:]:
        if not line.startswith("|"):
            break
        rows.append(_cells(line))
    return rows


def served():
    """CmdType -> provider, for every discovered provider."""
    return {cmd: provider for provider in discover_providers() for cmd in provider.cmd_types}


class CatalogueDocTests(SynchronousTestCase):
    """docs/CATALOGUE.md lists exactly the served CmdTypes, with their rights and accounts."""

    def setUp(self):
        with open(DOC, encoding="utf-8") as f:
            self.rows = catalogue_rows(f.read())
        self.served = served()

    def test_table_shape(self):
        """The table has rows, each with as many cells as the header."""
        self.assertTrue(self.rows)
        for row in self.rows:
            self.assertEqual(len(row), len(HEADER), row)

    def test_every_cmd_type_has_one_row(self):
        """Every discovered CmdType is named by exactly one row."""
        names = [row[0].strip("`") for row in self.rows]
        for cmd in self.served:
            self.assertEqual(names.count(cmd), 1, f"{cmd}: {names.count(cmd)} rows")

    def test_no_row_for_unserved_cmd_type(self):
        """No row names a CmdType that no provider serves."""
        extra = sorted({row[0].strip("`") for row in self.rows} - set(self.served))
        self.assertEqual(extra, [])

    def test_right_is_default_right(self):
        """The right column is each provider's default_right (none/local/remote/both)."""
        for row in self.rows:
            provider = self.served.get(row[0].strip("`"))
            if provider is not None:
                self.assertEqual(row[1], RIGHT_WORDS[provider.default_right], row[0])

    def test_account_is_needs_account(self):
        """The account column starts with yes exactly when the provider needs_account."""
        for row in self.rows:
            provider = self.served.get(row[0].strip("`"))
            if provider is None:
                continue
            match = _ACCOUNT.match(row[2])
            self.assertIsNotNone(match, f"{row[0]}: account {row[2]!r} is not yes/no")
            self.assertEqual(match.group(1) == "yes", bool(provider.needs_account), row[0])

    def test_data_and_sources_filled(self):
        """Every row says what it changes and where its answer comes from on both hosts."""
        for row in self.rows:
            for cell, name in zip(row[3:], HEADER[3:]):
                self.assertTrue(cell, f"{row[0]}: empty {name}")

    def test_store_writers_name_their_owner(self):
        """A row that writes to the store names the owner class the code registers."""
        from cubegw.capabilities import diagnostics, lan_devices, redirect, system_extra, wifi
        from cubegw.capabilities.dispatch import RIGHTS_TYPE
        from cubegw.store import APP, DEFAULT_SCHEMA, ITMS, MGT, MGT_SECTION, SHARED_ACCESS
        mgt = DEFAULT_SCHEMA.param(MGT_SECTION, "MgtURL").owner
        owners = {"SET_HG_WIFI_TIMER": (wifi.TIMER_TYPE.owner, "APP-only"),
                  "SET_HTTP_CFG": (diagnostics.HTTP_PARAMS[0].owner, "APP-only"),
                  "SET_ATTACH_DEVICE_RIGHT": (lan_devices.ACCESS_TYPE.owner, "SHARED_ACCESS"),
                  "REGISTER": (system_extra.LOID_PARAMS[0].owner, "ITMS-only"),
                  "SET_REDIRECT_INFO": (redirect.REDIRECT_TYPE.owner, "APP-only"),
                  "SET_BUSINESS_PLATFORM_PARAM": (mgt, "MGT"),
                  "SET_BUSSINESS_PLATFORM_PARAM": (mgt, "MGT"),
                  "SET_RIGHT": (RIGHTS_TYPE.owner, "MGT")}
        words = {APP: "APP-only", ITMS: "ITMS-only", SHARED_ACCESS: "SHARED_ACCESS", MGT: "MGT"}
        data = {row[0].strip("`"): row[3] for row in self.rows}
        for cmd, (owner, word) in owners.items():
            self.assertEqual(words[owner], word, cmd)
            self.assertIn(word, data[cmd], cmd)


class FieldCatalogueDocTests(SynchronousTestCase):
    """docs/CATALOGUE.md lists every CmdType of the field table, with its true status."""

    def setUp(self):
        with open(DOC, encoding="utf-8") as f:
            self.rows = catalogue_rows(f.read(), FIELD_HEADER)
        self.served = served()

    def test_every_field_cmd_type_once(self):
        """The field table section names the 85 field CmdTypes, each once, in order."""
        self.assertEqual(len(FIELD_CMD_TYPES), 85)
        self.assertEqual([row[0] for row in self.rows], FIELD_CMD_TYPES)

    def test_status_is_what_is_served(self):
        """A row says "served" exactly when a provider serves the CmdType, and names its
        module; the others say UNRECOGNIZE_REQUEST."""
        for cmd, _, _, status in self.rows:
            provider = self.served.get(cmd)
            if provider is None:
                self.assertIn("UNRECOGNIZE_REQUEST", status, cmd)
            else:
                module = type(provider).__module__.rsplit(".", 1)[-1]
                self.assertTrue(status.startswith(f"served: `{module}`"), (cmd, status))

    def test_password_flags_are_needs_account(self):
        """Over the whole field table (and every CmdType served beyond it), needs_account
        is the field's password flag, and the doc's flag column says the same; only
        CHECK_PASSWD_PARAM, whose handler is the password check, checks one unflagged."""
        flags = {row[0]: row[2] for row in self.rows}
        for cmd in sorted(set(FIELD_CMD_TYPES) | set(self.served)):
            flagged = cmd in FIELD_PASSWORD_FLAGS
            if cmd in flags:
                self.assertEqual(flags[cmd], "yes" if flagged else "no", cmd)
            provider = self.served.get(cmd)
            if provider is None:
                continue
            if getattr(provider, "account_is_the_call", False):
                self.assertEqual(cmd, "CHECK_PASSWD_PARAM")
                self.assertFalse(flagged, cmd)
                continue
            self.assertEqual(bool(provider.needs_account), flagged, cmd)


class ImplementedTableTests(SynchronousTestCase):
    """docs/CAPABILITIES.md's "Implemented CmdTypes" table against the providers."""

    def test_every_served_cmd_type_listed(self):
        """Every served CmdType is named by one row, with its provider's module, and no
        row names a CmdType that is not served."""
        with open(CAPABILITIES_DOC, encoding="utf-8") as f:
            rows = catalogue_rows(f.read(), CAPABILITIES_HEADER)
        listed = {}
        for row in rows:
            for name in row[0].split(","):
                self.assertNotIn(name.strip(), listed, name)
                listed[name.strip()] = row[1]
        served_ = served()
        self.assertEqual(sorted(set(served_) - set(listed)), [])
        self.assertEqual(sorted(set(listed) - set(served_)), [])
        for cmd, module in listed.items():
            self.assertEqual(type(served_[cmd]).__module__.rsplit(".", 1)[-1], module, cmd)
