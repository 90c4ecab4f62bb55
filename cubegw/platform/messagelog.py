"""The wire message log: every datagram and frame in and out of cubeplat, per device.

A ring of the last ``per_device`` messages per MAC (``message_log`` in the
configuration; 0 turns the log off).  Recording is cheap on purpose, since the routine
heartbeat path records too: an entry is one tuple holding the bytes or the dict as they
were sent or received; nothing is decoded, formatted or copied until someone reads the
log (``messages``, the HTTP API, the live stream).  Messages that name no device (a
datagram that does not decode, a frame before Boot) go to the ring of ``UNKNOWN``.

Readers get dicts: ``seq`` (one counter for the whole log, so ``since`` pages through
it), ``time``, ``direction`` ("in": to the platform, "out": from it), ``server``
(distribution, operation, message_server, plugin_center), ``peer`` ("host:port"),
``message`` (the JSON object; ``{"raw": text}`` when it is not JSON) and, when the
message carries a ``Parameter`` or ``return_Parameter``, ``parameter`` (its JSON
object decoded from base64).  ``subscribe`` gives the entries as they are recorded (the
server-sent events of the API).
"""

import collections
import json

from cubegw import wire

#: The ring of messages that name no device.
UNKNOWN = "-"
#: Entries kept per device by default: at 200k gateways heartbeating, about 16 x 200k
#: small tuples (the Hb reply bytes are shared).
DEFAULT_PER_DEVICE = 16
IN, OUT = "in", "out"


class _Ring(collections.deque):
    """The last messages of one device, and how many went each way in all."""

    __slots__ = ("count_in", "count_out")


class MessageLog:
    """Rings of wire messages by MAC; ``record`` them, read them decoded."""

    def __init__(self, clock, per_device=DEFAULT_PER_DEVICE):
        if isinstance(per_device, bool) or not isinstance(per_device, int) \
                or per_device < 0:
            raise ValueError("per_device must be a whole number >= 0")
        self.clock = clock
        self.per_device = per_device
        self._rings = {}
        self._seq = 0
        self._listeners = []

    @property
    def enabled(self):
        return self.per_device > 0

    @property
    def last_seq(self):
        """The sequence number of the newest entry (0: none yet)."""
        return self._seq

    def record(self, mac, direction, server, peer, message):
        """Keep ``message`` (bytes as on the wire, or a dict / typed message about to be
        encoded) under ``mac`` (None or "": ``UNKNOWN``)."""
        if not self.per_device:
            return
        self._seq += 1
        entry = (self._seq, self.clock.seconds(), direction, server, peer, message)
        key = mac or UNKNOWN
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = _Ring((), self.per_device)
            ring.count_in = ring.count_out = 0
        ring.append(entry)
        if direction == IN:
            ring.count_in += 1
        else:
            ring.count_out += 1
        if self._listeners:
            for listener in tuple(self._listeners):
                listener(key, entry)

    def inbound(self, mac, server, peer, message):
        self.record(mac, IN, server, peer, message)

    def outbound(self, mac, server, peer, message):
        self.record(mac, OUT, server, peer, message)

    # ---------------------------------------------------------------- reading

    def macs(self):
        """The MACs with messages in the log, sorted."""
        return sorted(self._rings)

    def counts(self, mac):
        """``{"in", "out"}``: messages recorded each way for ``mac`` since it was first
        seen (or forgotten), ``kept``: how many of them the ring still holds."""
        ring = self._rings.get(mac)
        if ring is None:
            return {"in": 0, "out": 0, "kept": 0}
        return {"in": ring.count_in, "out": ring.count_out, "kept": len(ring)}

    def last(self, mac):
        """The newest message of ``mac``, decoded, or None."""
        ring = self._rings.get(mac)
        return decode(mac, ring[-1]) if ring else None

    def messages(self, mac, since=0, limit=None):
        """The kept messages of ``mac`` with ``seq > since``, oldest first, decoded;
        with ``limit``, the newest ``limit`` of them."""
        ring = self._rings.get(mac, ())
        chosen = [e for e in ring if e[0] > since]
        if limit is not None:
            chosen = chosen[-limit:] if limit else []
        return [decode(mac, e) for e in chosen]

    def subscribe(self, listener):
        """Call ``listener(mac, entry)`` for every message recorded from now on; returns
        the function that stops it (decode the entry with ``decode``)."""
        self._listeners.append(listener)

        def stop():
            if listener in self._listeners:
                self._listeners.remove(listener)
        return stop

    def forget(self, mac):
        """Drop the messages of ``mac``."""
        self._rings.pop(mac, None)


def _peer(peer):
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = peer[0]
        return f"[{host}]:{peer[1]}" if ":" in str(host) else f"{host}:{peer[1]}"
    return str(peer) if peer is not None else ""


def _json(message):
    """The message as a JSON-able dict."""
    if isinstance(message, dict):
        return message
    if isinstance(message, wire.Message):
        return message.to_wire()
    if isinstance(message, (bytes, bytearray)):
        try:
            value = json.loads(bytes(message).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return {"raw": bytes(message).decode("utf-8", "replace")}
        return value if isinstance(value, dict) else {"raw": json.dumps(value)}
    return {"raw": str(message)}


def decode(mac, entry):
    """A recorded entry as the dict readers get (see the module docstring)."""
    seq, when, direction, server, peer, message = entry
    body = _json(message)
    out = {"seq": seq, "time": when, "mac": mac, "direction": direction, "server": server,
           "peer": _peer(peer), "message": body}
    for name in ("Parameter", "return_Parameter"):
        if name in body:
            try:
                out["parameter"] = wire.decode_parameter(body[name])
            except (wire.WireError, ValueError, TypeError) as e:
                out["parameter_error"] = str(getattr(e, "reason", e))
            break
    return out


def json_lines(entries):
    """Decoded entries as JSON lines (the export format), bytes."""
    return b"".join(json.dumps(e, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
                    for e in entries)


def mac_of(msg):
    """The MAC a decoded message names (upper case), or None."""
    mac = msg.get("MAC") if isinstance(msg, dict) else None
    if isinstance(mac, str) and len(mac) == 12:
        mac = mac.upper()
        if all(c in "0123456789ABCDEF" for c in mac):
            return mac
    return None


#: The log of a platform part built without one: records nothing.
OFF = MessageLog(None, 0)
