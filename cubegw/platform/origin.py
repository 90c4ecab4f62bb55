"""Where a gateway's messages may come from, and what its logs may show (issue 18, 7).

The protocol has no per-device secret: anyone who knows a gateway's MAC knows its SN, and
CheckSN is MD5(challenge + SN).  So cubeplat ties a gateway to the address its operation
Register came from: Hb and Report only from that address and port, a plugin-center
Register only from that host, and while it heartbeats no Boot or Register from another
host.  Challenges, DevRND and Keys are logged at debug only (``public``).
"""

import ipaddress

#: Reply and message fields kept out of info lines (they are logged at debug).
SECRET_FIELDS = frozenset(("ChallengeCode", "DevRND", "Key", "CheckSN"))


def host_key(host):
    """``host`` as compared: an IPv4-mapped IPv6 address as IPv4, a scope ID dropped."""
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return host
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def same_host(addr, registered):
    """True when ``addr`` (host, port, ...) is on the host of ``registered``."""
    return registered is not None and host_key(addr[0]) == host_key(registered[0])


def same_address(addr, registered):
    """True when ``addr`` is the host and port of ``registered`` (None: never)."""
    return (registered is not None and addr[1] == registered[1]
            and host_key(addr[0]) == host_key(registered[0]))


def public(message):
    """``message`` (a dict) without the fields of ``SECRET_FIELDS``, for an info line."""
    if not isinstance(message, dict) or SECRET_FIELDS.isdisjoint(message):
        return message
    return {k: ("<hidden>" if k in SECRET_FIELDS else v) for k, v in message.items()}
