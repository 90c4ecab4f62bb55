"""Identity formats and digests (protocol.md section 2), checked against hashlib directly."""

import hashlib
import hmac
import re
import socket
from collections import namedtuple

import psutil
from twisted.trial.unittest import SynchronousTestCase

from cubegw import identity
from cubegw.identity import IdentityError

MAC = "64D95420214B"
SN = "64D954-D6AEE64D95420214B"
CHALLENGE = "0123456789ABCDEF0123456789ABCDEF"
DEV_RND = "00112233445566778899AABBCCDDEEFF"

# psutil's snicaddr, as net_if_addrs() returns it.
Addr = namedtuple("Addr", ["family", "address", "netmask", "broadcast", "ptp"])


def md5(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def link(address):
    return Addr(psutil.AF_LINK, address, None, "ff:ff:ff:ff:ff:ff", None)


def inet(address):
    return Addr(socket.AF_INET, address, "255.255.255.0", None, None)


def inet6(address):
    return Addr(socket.AF_INET6, address, "ffff:ffff:ffff:ffff::", None, None)


class CompareDigestTests(SynchronousTestCase):
    def test_as_hmac(self):
        """compare_digest answers as hmac.compare_digest: equal or not, str or bytes,
        and refuses what it refuses (mixed types, non-ASCII str) with TypeError."""
        for a, b in [("AB12", "AB12"), ("AB12", "AB13"), ("", ""), ("A", "AB"),
                     (b"\x00\xff", b"\x00\xff"), (b"x", b"y"), (bytearray(b"k"), b"k")]:
            self.assertEqual(identity.compare_digest(a, b), hmac.compare_digest(a, b), (a, b))
        for a, b in [("AB", b"AB"), ("网", "网"), (1, 1)]:
            self.assertRaises(TypeError, hmac.compare_digest, a, b)
            self.assertRaises(TypeError, identity.compare_digest, a, b)


class MacTests(SynchronousTestCase):
    def test_deck_example(self):
        """The deck's MAC is already in the protocol's format."""
        self.assertEqual(identity.normalize_mac(MAC), MAC)

    def test_separators_and_case(self):
        """Colons, dashes, dots and lower case are normalised to 12 upper-case hex digits."""
        for value in ["64:d9:54:20:21:4b", "64-D9-54-20-21-4B", "64d9.5420.214b",
                      "64d95420214b", "64:D9:54:20:21:4b"]:
            self.assertEqual(identity.normalize_mac(value), MAC)

    def test_bad_macs(self):
        """Wrong length, non-hex digits, other separators, trailing newline and None are refused."""
        for value in ["", "64D95420214", "64D95420214B0", "64D95420214G", "64 D9 54 20 21 4B",
                      "64_D9_54_20_21_4B", MAC + "\n", "\n" + MAC, None, 0x64D95420214B]:
            self.assertRaises(IdentityError, identity.normalize_mac, value)

    def test_error_is_value_error(self):
        """IdentityError is a ValueError whose message shows the bad value."""
        with self.assertRaises(ValueError) as caught:
            identity.normalize_mac("nope")
        self.assertIn("'nope'", str(caught.exception))


class SnTests(SynchronousTestCase):
    def test_deck_example(self):
        """The deck's SN has the protocol's format."""
        self.assertEqual(identity.check_sn_format(SN), SN)

    def test_bad_sns(self):
        """SNs with a bad OUI, separator or serial length are refused."""
        for value in ["", "64D954D6AEE64D95420214B", "64D954-D6AEE64D95420214",
                      "64D954-D6AEE64D95420214BX", "64d954-D6AEE64D95420214B",
                      "64D95-4D6AEE64D95420214B", "64D954_D6AEE64D95420214B",
                      "64D954-D6AEE64D9542021-B", "64G954-D6AEE64D95420214B",
                      SN + "\n", " " + SN]:
            self.assertRaises(IdentityError, identity.check_sn_format, value)

    def test_from_mac_format(self):
        """sn_from_mac gives the 6-hex OUI, '-', then 17 characters ending with the MAC."""
        sn = identity.sn_from_mac(MAC)
        self.assertTrue(re.fullmatch(r"[0-9A-F]{6}-[0-9A-Za-z]{17}", sn), sn)
        self.assertEqual(sn[:7], "64D954-")
        self.assertEqual(len(sn.split("-")[1]), 17)
        self.assertTrue(sn.endswith(MAC))
        self.assertEqual(identity.check_sn_format(sn), sn)

    def test_from_mac_stable(self):
        """The derived SN is the same on every call and differs between MACs."""
        self.assertEqual(identity.sn_from_mac(MAC), identity.sn_from_mac(MAC))
        self.assertEqual(identity.sn_from_mac(MAC), "64D954-" + md5(MAC)[:5] + MAC)
        self.assertNotEqual(identity.sn_from_mac(MAC), identity.sn_from_mac("64D95420214C"))


class DevRndTests(SynchronousTestCase):
    def test_injected_urandom(self):
        """new_dev_rnd asks for 16 bytes and gives them as 32 upper-case hex characters."""
        asked = []

        def urandom(n):
            asked.append(n)
            return bytes(range(0xF0, 0x100))

        self.assertEqual(identity.new_dev_rnd(urandom), "F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF")
        self.assertEqual(asked, [16])

    def test_os_urandom(self):
        """By default the value comes from the OS CSPRNG: 32 hex digits, fresh every call."""
        first, second = identity.new_dev_rnd(), identity.new_dev_rnd()
        self.assertTrue(re.fullmatch(r"[0-9A-F]{32}", first), first)
        self.assertNotEqual(first, second)


class DigestTests(SynchronousTestCase):
    def test_md5_upper(self):
        """md5_upper is the upper-case hex MD5 of the concatenated UTF-8 parts."""
        self.assertEqual(identity.md5_upper("ab", "c", "网"), md5("abc网"))
        self.assertEqual(identity.md5_upper(), "D41D8CD98F00B204E9800998ECF8427E")

    def test_check_sn(self):
        """CheckSN = MD5(ChallengeCode + SN), upper case; a lower-case challenge is upper-cased."""
        expected = md5(CHALLENGE + SN)
        self.assertEqual(identity.check_sn(CHALLENGE, SN), expected)
        self.assertEqual(identity.check_sn(CHALLENGE.lower(), SN), expected)
        self.assertTrue(re.fullmatch(r"[0-9A-F]{32}", expected))

    def test_key_chinanet_prefix(self):
        """The trigger Key drops a leading "ChinaNet-" from the SSID."""
        key = identity.trigger_key(DEV_RND, SN, "ChinaNet-ABCD", "wifipass", "admin1")
        self.assertEqual(key, md5(DEV_RND + SN + "ABCD" + "wifipass" + "admin1"))

    def test_key_without_prefix(self):
        """An SSID without the prefix is used whole; "ChinaNet-" elsewhere is kept."""
        key = identity.trigger_key(DEV_RND, SN, "HomeNet", "wifipass", "admin1")
        self.assertEqual(key, md5(DEV_RND + SN + "HomeNet" + "wifipass" + "admin1"))
        key = identity.trigger_key(DEV_RND, SN, "My-ChinaNet-X", "", "")
        self.assertEqual(key, md5(DEV_RND + SN + "My-ChinaNet-X"))
        key = identity.trigger_key(DEV_RND, SN, "chinanet-X", "", "")
        self.assertEqual(key, md5(DEV_RND + SN + "chinanet-X"))

    def test_ssid_tail(self):
        """Only one leading "ChinaNet-" is removed."""
        self.assertEqual(identity.ssid_tail("ChinaNet-ABCD"), "ABCD")
        self.assertEqual(identity.ssid_tail("ChinaNet-ChinaNet-A"), "ChinaNet-A")
        self.assertEqual(identity.ssid_tail("ChinaNet-"), "")
        self.assertEqual(identity.ssid_tail("ABCD"), "ABCD")

    def test_key_utf8(self):
        """A non-ASCII SSID and password are hashed as UTF-8."""
        key = identity.trigger_key(DEV_RND, SN, "ChinaNet-家", "密码", "admin")
        self.assertEqual(key, md5(DEV_RND + SN + "家" + "密码" + "admin"))

    def test_encrypted_sn(self):
        """The SN for binding is MD5(DevRND + SN), upper case."""
        self.assertEqual(identity.encrypted_sn(DEV_RND, SN), md5(DEV_RND + SN))


class InterfaceTests(SynchronousTestCase):
    ADDRS = {
        "lo": [inet("127.0.0.1"), link("00:00:00:00:00:00")],
        "eth0": [inet6("fe80::1"), inet("192.0.2.10"), inet("192.0.2.11"),
                 link("64:d9:54:20:21:4b")],
        "pppoe-wan": [inet("198.51.100.7")],
        "br-lan": [link("")],
    }

    def test_mac(self):
        """interface_mac reads the link-layer address and normalises it."""
        self.assertEqual(identity.interface_mac("eth0", self.ADDRS), MAC)

    def test_zero_mac_refused(self):
        """An interface whose only hardware address is all zeros (loopback) is refused."""
        self.assertRaises(IdentityError, identity.interface_mac, "lo", self.ADDRS)

    def test_no_mac(self):
        """An interface without a link address, with an empty one, or missing, is refused."""
        for name in ["pppoe-wan", "br-lan", "wlan9"]:
            self.assertRaises(IdentityError, identity.interface_mac, name, self.ADDRS)

    def test_zero_then_real(self):
        """An all-zero address is skipped in favour of a real one on the same interface."""
        addrs = {"eth1": [link("00:00:00:00:00:00"), link("64-D9-54-20-21-4B")]}
        self.assertEqual(identity.interface_mac("eth1", addrs), MAC)

    def test_ipv4(self):
        """interface_ipv4 gives the first IPv4 address, ignoring IPv6 and link entries."""
        self.assertEqual(identity.interface_ipv4("eth0", self.ADDRS), "192.0.2.10")
        self.assertEqual(identity.interface_ipv4("pppoe-wan", self.ADDRS), "198.51.100.7")

    def test_ipv4_none(self):
        """An interface without IPv4, or one that does not exist, gives "" (WAN down)."""
        self.assertEqual(identity.interface_ipv4("br-lan", self.ADDRS), "")
        self.assertEqual(identity.interface_ipv4("wlan9", self.ADDRS), "")

    def test_real_psutil_shape(self):
        """The real net_if_addrs() output is accepted: every interface gives a str or ""."""
        addrs = psutil.net_if_addrs()
        for name in addrs:
            self.assertIsInstance(identity.interface_ipv4(name, addrs), str)
