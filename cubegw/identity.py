"""Who the gateway is, and the digests that prove it (protocol.md section 2); pure.

The only impure helpers are ``interface_mac``/``interface_ipv4``, which take psutil's
``net_if_addrs`` as a parameter so tests pass a dict.
"""

import _operator
import hashlib
import os
import re
import socket

from cubegw.record import Record

SSID_PREFIX = "ChinaNet-"

#: Secrets compared in constant time: ``hmac.compare_digest`` is this C function (hmac's
#: own fallback; with OpenSSL, hmac takes OpenSSL's twin of it), and importing hmac for
#: it alone cost the daemon ~20 KiB.
compare_digest = _operator._compare_digest

_MAC = re.compile(r"^[0-9A-F]{12}$")
_SN = re.compile(r"^[0-9A-F]{6}-[0-9A-Za-z]{17}$")


class IdentityError(ValueError):
    """A configured identity value that does not have the protocol's format."""


class Identity(Record):
    """The device fields every Boot carries."""
    mac: str
    sn: str
    loid: str
    vendor: str
    model: str
    firmware_version: str
    hardware_version: str


def md5_upper(*parts):
    """MD5 over the concatenated parts (UTF-8), as 32 upper-case hex characters."""
    return hashlib.md5("".join(parts).encode("utf-8")).hexdigest().upper()


def normalize_mac(value):
    """``64:d9:54:20:21:4b`` or ``64D95420214B`` -> ``64D95420214B``."""
    mac = re.sub(r"[:\-.]", "", str(value)).upper()
    if not _MAC.fullmatch(mac):
        raise IdentityError(f"MAC must be 12 hex digits, got {value!r}")
    return mac


def colon_mac(value):
    """``64d95420214b`` or ``64-D9-54-20-21-4B`` -> ``64:D9:54:20:21:4B`` (ARP, firewall)."""
    mac = normalize_mac(value)
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2))


def check_sn_format(sn):
    """Refuse an SN that is not ``<6 hex OUI>-<17-char serial>``."""
    if not _SN.fullmatch(sn):
        raise IdentityError(f"SN must be <6 hex OUI>-<17 characters>, got {sn!r}")
    return sn


def sn_from_mac(mac):
    """The SN derived from the MAC when the config says ``auto``.

    Like the deck's example (``64D954-D6AEE64D95420214B``): the OUI, then a 17-character
    serial made of 5 hex digits (here from an MD5 of the MAC, so it is stable) and the MAC.
    """
    return f"{mac[:6]}-{md5_upper(mac)[:5]}{mac}"


def new_dev_rnd(urandom=os.urandom):
    """16 bytes from the OS CSPRNG as 32 upper-case hex: made anew at every Register."""
    return urandom(16).hex().upper()


def check_sn(challenge_code, sn):
    """CheckSN = MD5(ChallengeCode + SN)."""
    return md5_upper(challenge_code.upper(), sn)


def ssid_tail(ssid):
    """The primary SSID with a leading ``ChinaNet-`` removed."""
    return ssid[len(SSID_PREFIX):] if ssid.startswith(SSID_PREFIX) else ssid


def trigger_key(dev_rnd, sn, ssid, wifi_password, useradmin_password):
    """Key of RequestPlug-in / RequestDistri: MD5(DevRND + SN + SSIDTail + WiFi pw + useradmin pw)."""
    return md5_upper(dev_rnd, sn, ssid_tail(ssid), wifi_password, useradmin_password)


def encrypted_sn(dev_rnd, sn):
    """The SN handed to the app for binding: MD5(DevRND + SN)."""
    return md5_upper(dev_rnd, sn)


def interface_mac(interface, net_if_addrs):
    """The hardware address of ``interface`` from psutil's ``net_if_addrs()`` mapping."""
    for addr in net_if_addrs.get(interface, ()):
        if getattr(addr, "family", None) == _AF_LINK and addr.address:
            mac = normalize_mac(addr.address)
            if mac != "000000000000":
                return mac
    raise IdentityError(f"interface {interface!r} has no hardware address")


def interface_ipv4(interface, net_if_addrs):
    """The first IPv4 address of ``interface``, or "" when it has none (WAN down)."""
    for addr in net_if_addrs.get(interface, ()):
        if getattr(addr, "family", None) == socket.AF_INET:
            return addr.address
    return ""


def _link_family():
    try:
        import psutil
        return psutil.AF_LINK
    except (ImportError, AttributeError):  # pragma: no cover - psutil is a dependency
        return getattr(socket, "AF_PACKET", 17)


_AF_LINK = _link_family()


def new_challenge(urandom=os.urandom):
    """A fresh ChallengeCode: 16 bytes from the OS CSPRNG as 32 upper-case hex."""
    return urandom(16).hex().upper()
