"""The wire message log: every datagram and frame in and out of cubeplat, by device.

One ring of the last ``size`` messages of the whole platform (``message_log`` in the
configuration, default ``DEFAULT_SIZE``; 0 turns the log off; a routine heartbeat and the
reply sent at once take one slot, see ``exchange``), and for each device that
ever sent or was sent a message: how many went each way, how many the ring still holds,
and its newest message, which stays even after the ring has moved on.  A lab with a few
gateways keeps hours of their traffic; a platform with 200,000 heartbeating gateways keeps
the last seconds of it, and every device's counters and last message, at a cost that does
not grow with the ring (per-device rings were 5-6 KiB a device at 16 messages each).

Recording is cheap on purpose, since the routine heartbeat path records too: an entry is
one tuple holding the bytes or the dict as they were sent or received (a heartbeat spelt
as ``CANONICAL_HB``: its IPAddr, spelt again when read); nothing is decoded, formatted or
copied until someone reads the log (``messages``, the HTTP API, the live
stream).  Messages that name no device (a datagram that does not decode, a frame before
Boot) are under ``UNKNOWN``.

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
import re

from cubegw import wire

#: The key of messages that name no device.
UNKNOWN = "-"
#: Messages kept in all by default: about 10-25 MB when full (an Hb in is ~250 bytes with
#: its entry, a reply ~150: the reply bytes are shared), minutes of a lab's traffic.
DEFAULT_SIZE = 50000
IN, OUT = "in", "out"
#: A heartbeat as cubegw's gateway and protocol.md spell it: compact JSON, the protocol's
#: key order (``exchange`` keeps one spelt so as its IPAddr alone: ``HB_IP``).
CANONICAL_HB = '{"RPCMethod":"Hb","MAC":"%s","IPAddr":"%s","FLAG":"0"}'
#: ``exchange``'s kind of a request given as the IPAddr of a heartbeat spelt CANONICAL_HB.
HB_IP = "hb-ip"
_HEX12 = re.compile(r"[0-9A-F]{12}").fullmatch


class Device:
    """What the log knows of one device beyond the ring: its counters, its newest entry
    and its MAC (the log's key), by which its ring entries name it.  ``MessageLog.device``
    gives it to a caller that keeps it (the registry record, for the heartbeat path)."""

    __slots__ = ("count_in", "count_out", "last", "mac")

    def __init__(self, mac):
        self.count_in = self.count_out = 0
        self.last = None
        self.mac = mac


class MessageLog:
    """The platform's wire messages, newest ``size`` kept; ``record`` them, read them by
    device, decoded.

    Recording never looks at the entry it pushes out of the ring: at 200,000 devices that
    entry's device, its counters and the objects it names are cold, and reaching them
    cost the heartbeat's path more than all the rest of the log (bench/ANALYSIS.md).  So
    how many messages of a device the ring still holds is counted when asked (``counts``,
    ``all_counts``: one pass over the ring), and a device's newest entry stays its
    ``last`` whole, an exchange's request with it, until the device's next message."""

    def __init__(self, clock, size=DEFAULT_SIZE):
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("size must be a whole number >= 0")
        self.clock = clock
        self.size = size
        self._ring = collections.deque(maxlen=size)    # appending drops the oldest
        self._devices = {}
        # Ring entries name their device by its MAC, not by the object: an entry then
        # holds only strings, bytes and numbers, which the garbage collector stops
        # tracking, so heartbeats' entries never reach its oldest generation, whose full
        # collections over 200k devices' records took 0.2 s each, every few seconds.
        self._seq = 0
        self._listeners = []

    @property
    def enabled(self):
        return self.size > 0

    @property
    def last_seq(self):
        """The sequence number of the newest entry (0: none yet)."""
        return self._seq

    def record(self, mac, direction, server, peer, message):
        """Keep ``message`` (bytes as on the wire, or a dict / typed message about to be
        encoded) under ``mac`` (None or "": ``UNKNOWN``)."""
        if self.size:
            self._record(self.device(mac or UNKNOWN), direction, server, peer, message)

    def device(self, mac):
        """The log's ``Device`` of ``mac`` (made on first use); None while the log is
        off.  A caller that keeps it spares ``exchange`` a lookup by MAC, which at
        200,000 devices costs the heartbeat's path a few cache misses."""
        if not self.size:
            return None
        device = self._devices.get(mac)
        if device is None:
            device = self._devices[mac] = Device(mac)
        return device

    def exchange(self, device, server, peer, request, reply, when=None, kind=None):
        """A request from ``device`` (``self.device(mac)``; None: the log is off) and the
        reply sent to it at once: read back as two messages, ``seq`` and ``seq + 1``, at
        one time (``when``, the caller's clock reading, or now), but kept as one entry
        with one ring slot, which is half the work and the memory of two ``record`` calls.

        ``kind=HB_IP``: the request is a heartbeat spelt ``CANONICAL_HB % (mac, ip)``
        byte for byte, given as its ``ip`` (best the registry record's own string): it
        is spelt again when read, so a full ring does not hold every heartbeat's ~110
        bytes as well."""
        if device is None:
            return
        mac = device.mac
        if self._listeners:
            if kind is HB_IP:
                request = _hb_bytes(mac, request)
            self._record(device, IN, server, peer, request)
            self._record(device, OUT, server, peer, reply)
            return
        seq = self._seq + 1
        self._seq = seq + 1
        entry = (seq, self.clock.seconds() if when is None else when, kind, server, peer,
                 request, mac, reply)
        self._ring.append(entry)
        device.count_in += 1
        device.count_out += 1
        device.last = entry

    def _record(self, device, direction, server, peer, message):
        """``record`` for the log's ``device`` (an exchange is ``exchange``'s)."""
        self._seq += 1
        entry = (self._seq, self.clock.seconds(), direction, server, peer, message,
                 device.mac)
        self._ring.append(entry)
        if direction == IN:
            device.count_in += 1
        else:
            device.count_out += 1
        device.last = entry
        if self._listeners:
            for listener in tuple(self._listeners):
                listener(device.mac, entry)

    def inbound(self, mac, server, peer, message):
        self.record(mac, IN, server, peer, message)

    def outbound(self, mac, server, peer, message):
        self.record(mac, OUT, server, peer, message)

    # ---------------------------------------------------------------- reading

    def macs(self):
        """The MACs with messages counted in the log, sorted."""
        return sorted(mac for mac, d in self._devices.items() if d.count_in or d.count_out)

    def counts(self, mac):
        """``{"in", "out"}``: messages recorded each way for ``mac`` since it was first
        seen (or forgotten), ``kept``: how many of them the ring still holds (counted
        now: one pass over the ring)."""
        device = self._devices.get(mac)
        if device is None:
            return {"in": 0, "out": 0, "kept": 0}
        kept = sum(_width(e) for e in self._ring if e[6] == mac)
        return {"in": device.count_in, "out": device.count_out, "kept": kept}

    def all_counts(self):
        """``counts`` of every MAC with messages counted, in one pass over the ring."""
        kept = collections.Counter()
        for entry in self._ring:
            kept[entry[6]] += _width(entry)
        return {mac: {"in": d.count_in, "out": d.count_out, "kept": kept[mac]}
                for mac, d in self._devices.items() if d.count_in or d.count_out}

    def last(self, mac):
        """The newest message of ``mac``, decoded (even when the ring no longer holds
        it), or None."""
        device = self._devices.get(mac)
        if device is None or device.last is None:
            return None
        return decode(mac, _messages(device.last)[-1])

    def messages(self, mac, since=0, limit=None):
        """The kept messages of ``mac`` with ``seq > since``, oldest first, decoded;
        with ``limit``, the newest ``limit`` of them.  Reads the ring from its newest
        end back to ``since`` (a poll with a recent ``since`` reads a few entries)."""
        device = self._devices.get(mac)
        chosen = []
        if device is not None and limit != 0:
            for entry in reversed(self._ring):
                if entry[0] + _width(entry) - 1 <= since:
                    break
                if entry[6] == mac:
                    chosen.extend(m for m in reversed(_messages(entry)) if m[0] > since)
                    if limit is not None and len(chosen) >= limit:
                        del chosen[limit:]
                        break
        return [decode(mac, e) for e in reversed(chosen)]

    def subscribe(self, listener):
        """Call ``listener(mac, entry)`` for every message recorded from now on; returns
        the function that stops it (decode the entry with ``decode``)."""
        self._listeners.append(listener)

        def stop():
            if listener in self._listeners:
                self._listeners.remove(listener)
        return stop

    def forget(self, mac):
        """Drop the messages of ``mac`` (from the ring too) and its counters (its
        ``Device`` stays: a caller may hold it)."""
        device = self._devices.get(mac)
        if device is not None:
            device.count_in = device.count_out = 0
            device.last = None
            kept = [e for e in self._ring if e[6] != mac]
            self._ring.clear()
            self._ring.extend(kept)


def _width(entry):
    """How many messages a ring entry is: 2 for an exchange, else 1."""
    return 2 if len(entry) == 8 else 1


def _messages(entry):
    """The messages of a ring entry: itself, or the two of an exchange."""
    if len(entry) != 8:
        return (entry,)
    seq, when, kind, server, peer, request, mac, reply = entry
    if kind is HB_IP:
        request = _hb_bytes(mac, request)
    return (seq, when, IN, server, peer, request, mac), _reply(entry)


def _hb_bytes(mac, ip):
    """A heartbeat kept as its IPAddr (``HB_IP``), as it came on the wire."""
    return (CANONICAL_HB % (mac, ip)).encode("latin-1")


def _reply(exchange):
    """The reply of an exchange entry, as the message it is read back as."""
    seq, when, _, server, peer, _, mac, reply = exchange
    return seq + 1, when, OUT, server, peer, reply, mac


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
    seq, when, direction, server, peer, message = entry[:6]
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
        upper = mac.upper()
        if _HEX12(upper):
            # the message's own string when it is upper case already: the one the
            # registry keys the device with, so the log's key is not a second copy
            return mac if upper == mac else upper
    return None


#: The log of a platform part built without one: records nothing.
OFF = MessageLog(None, 0)
