"""cubeplat load generator: many simulated gateways from one process over UDP.

    python bench/loadgen.py --dist 127.0.0.1:12112 --gateways 10000 --register \\
        --hb-seconds 20 [--start 0] [--sockets 256] [--json out.json]

Each simulated gateway has its own MAC (``--mac-prefix`` + index) and the SN derived from
it; registration is the real flow: BootFirst -> RegisterFirst (CheckSN from the
distribution challenge) -> Boot -> Register (CheckSN from the operation challenge, a fresh
DevRND).  The platform must accept unknown devices (``accept_unknown: true``).  Gateways
``--start``..``--gateways``-1 are registered; those below ``--start`` are taken as already
registered by an earlier run against the same platform.

Then heartbeats: one warm-up round (every gateway sends one Hb, not counted), then
``--hb-seconds`` of Hb from all gateways round-robin, as fast as the platform answers,
counted per ``--window``.  ``--echo`` points the same Hb traffic at a UDP echo (the
baseline) and counts any reply; with ``--alternate`` too, the measured windows alternate
between the platform and the echo (platform first), so a load that comes and goes on a
shared machine weighs on both alike.

Gateways share sockets (``--sockets``; gateway i uses socket i mod N); each socket has one
request outstanding at a time (stop-and-wait), so there is never more in flight than
sockets and a reply is matched to its request without relying on anything in the reply.
cubeplat takes a gateway's Hb only from the address its Register came from, so socket k
always has the same port: ``--port-base`` + k when given (the same in every run against
one platform: the bench registers in two runs), else the port the kernel gave it first in
this process.  A request unanswered after ``--timeout`` s is counted lost, and its socket
closed and bound again to the same port (what was queued for the old one is dropped).  A
progress line goes to stderr once a second.
Bounded: every phase stops at its deadline.  Standard library plus cubegw.identity.
"""

import argparse
import json
import os
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cubegw import identity  # noqa: E402
from bench.common import cpu_ns  # noqa: E402


def _addr(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


class Slot:
    __slots__ = ("sock", "gateways", "cursor", "step", "gw", "sent_at", "challenge", "oper",
                 "mac", "sn", "k")

    def __init__(self, k, gateways):
        self.k = k              # socket k: its port is LoadGen.port(k)
        self.gateways = gateways
        self.cursor = 0
        self.sock = None
        self.step = None
        self.gw = None
        self.sent_at = 0.0
        self.challenge = None
        self.oper = None
        self.mac = self.sn = None


def _template(**fields):
    """The compact JSON of ``fields`` with each ``None`` value a ``%s`` slot: a message
    built by one ``%`` per send instead of ``json.dumps`` (the values put in the slots are
    hex, digits and ASCII names, which JSON needs no escape for)."""
    text = json.dumps(fields, separators=(",", ":"))
    return text.replace("%", "%%").replace("null", '"%s"')


BOOT_FIRST = _template(RPCMethod="BootFirst", Vendor="bench", Model="sim", MAC=None, SN=None,
                       FirmwareVer="1.0", HardwareVer="1.0", IPAddr="127.0.0.1", LOID="",
                       Version="1.0")
REGISTER_FIRST = _template(RPCMethod="RegisterFirst", MAC=None, SN=None, CheckSN=None)
BOOT = BOOT_FIRST.replace('"BootFirst"', '"Boot"')
REGISTER = _template(RPCMethod="Register", MAC=None, SN=None, CheckSN=None, DevRND=None,
                     UserID="")
HB = _template(RPCMethod="Hb", MAC=None, IPAddr="127.0.0.1", FLAG="0")


class LoadGen:
    def __init__(self, args):
        self.a = args
        self.dist = _addr(args.dist) if args.dist else None
        self.oper = _addr(args.oper) if args.oper else None
        self.sel = selectors.DefaultSelector()
        self.stats = {"lost": 0, "bad": 0, "ok": 0, "sent": 0}
        self.ports = {}     # socket k -> its port, kept for every later bind
        self.last_progress = 0.0
        self.phase = ""

    # ------------------------------------------------------------- gateways

    def mac(self, i):
        return "%s%08X" % (self.a.mac_prefix, i)

    def device(self, i):
        mac = self.mac(i)
        return mac, identity.sn_from_mac(mac)

    # -------------------------------------------------------------- sockets

    def open(self, slot):
        if slot.sock is not None:
            self.sel.unregister(slot.sock)
            slot.sock.close()
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        base = self.a.port_base
        s.bind(("127.0.0.1", self.ports.get(slot.k, base + slot.k if base else 0)))
        self.ports[slot.k] = s.getsockname()[1]
        s.setblocking(False)
        slot.sock = s
        self.sel.register(s, selectors.EVENT_READ, slot)

    def send(self, slot, text, addr):
        """Send ``text`` (a template filled in) from ``slot``'s socket."""
        slot.sent_at = time.monotonic()
        self.stats["sent"] += 1
        slot.sock.sendto(text.encode(), addr)

    def make_slots(self, indices):
        """Socket k for the gateways i of ``indices`` with i mod ``--sockets`` = k."""
        n = self.a.sockets
        groups = {}
        for i in indices:
            groups.setdefault(i % n, []).append(i)
        slots = [Slot(k, groups[k]) for k in sorted(groups)]
        for s in slots:
            self.open(s)
        return slots

    def close(self, slots):
        for s in slots:
            self.sel.unregister(s.sock)
            s.sock.close()

    # ---------------------------------------------------------------- loop

    def loop(self, slots, start, handle, deadline, done):
        """Run until ``done()`` or ``deadline``; ``start(slot)`` begins a slot's work."""
        for s in slots:
            start(s)
        next_check = time.monotonic() + 0.1
        while not done():
            now = time.monotonic()
            if now >= deadline:
                return False
            for key, _ in self.sel.select(timeout=0.05):
                # one datagram per wake-up: a socket has one request outstanding, and
                # epoll (level-triggered) reports the socket again if more is queued
                slot = key.data
                try:
                    data = slot.sock.recv(4096)
                except OSError:     # EAGAIN, EINTR, or an ICMP error left by a send
                    continue
                if slot.step is not None:
                    handle(slot, json.loads(data))
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 0.1
                for slot in slots:
                    if slot.step is not None and now - slot.sent_at > self.a.timeout:
                        self.stats["lost"] += 1
                        self.open(slot)
                        handle(slot, None)
                self.progress()
        return True

    def progress(self, force=False):
        now = time.monotonic()
        if force or now - self.last_progress >= 1.0:
            self.last_progress = now
            s = self.stats
            sys.stderr.write(f"\r  loadgen {self.phase}: sent {s['sent']} ok {s['ok']} "
                             f"lost {s['lost']} bad {s['bad']}   ")
            sys.stderr.flush()

    # ------------------------------------------------------------ register

    def register(self, first, last):
        indices = list(range(first, last))
        slots = self.make_slots(indices)
        self.phase = f"register {first}..{last - 1}"
        registered = [0]
        failed = [0]

        def next_gateway(slot):
            if slot.cursor >= len(slot.gateways):
                slot.step = None
                return
            slot.gw = slot.gateways[slot.cursor]
            slot.cursor += 1
            slot.mac, slot.sn = self.device(slot.gw)
            slot.step = "BootFirst"
            self.send(slot, BOOT_FIRST % (slot.mac, slot.sn), self.dist)

        def fail(slot):
            failed[0] += 1
            next_gateway(slot)

        def handle(slot, reply):
            if reply is None:
                return fail(slot)
            mac, sn = slot.mac, slot.sn
            result = reply.get("Result")
            step = slot.step
            if step == "BootFirst" and result == 0:
                slot.step = "RegisterFirst"
                self.send(slot, REGISTER_FIRST % (
                    mac, sn, identity.check_sn(reply["ChallengeCode"], sn)), self.dist)
            elif step == "RegisterFirst" and result == 0:
                slot.oper = (reply["ServerAddr"], int(reply["ServerPort"]))
                self.oper = self.oper or slot.oper
                slot.step = "Boot"
                self.send(slot, BOOT % (mac, sn), slot.oper)
            elif step == "Boot" and result == 0:
                slot.step = "Register"
                self.send(slot, REGISTER % (
                    mac, sn, identity.check_sn(reply["ChallengeCode"], sn),
                    identity.new_dev_rnd()), slot.oper)
            elif step == "Register" and result in (0, 2):
                registered[0] += 1
                self.stats["ok"] += 1
                next_gateway(slot)
            else:
                self.stats["bad"] += 1
                fail(slot)

        t0 = time.monotonic()
        self.loop(slots, next_gateway, handle, t0 + self.a.register_limit,
                  lambda: all(s.step is None for s in slots))
        elapsed = time.monotonic() - t0
        self.close(slots)
        self.progress(force=True)
        sys.stderr.write("\n")
        return {"registered": registered[0], "failed": failed[0], "seconds": elapsed,
                "per_s": registered[0] / elapsed if elapsed else None}

    # ---------------------------------------------------------- heartbeats

    def heartbeats(self, count, seconds, window):
        """Hb from every gateway in turn: a warm-up round, then windows of ``window`` s
        for ``seconds``.  With ``--alternate`` the windows alternate between the platform
        and the echo (``echo_rates``), so both see the same background load."""
        echo = _addr(self.a.echo) if self.a.echo else None
        alternate = bool(self.a.alternate and echo and self.oper)
        target = [echo if echo and not alternate else self.oper]
        to_echo = [target[0] == echo]
        slots = self.make_slots(list(range(count)))
        msgs = {}
        ok = [0]            # replies of the current target (the counter windows read)
        got = {True: 0, False: 0}   # replies by whom they came from (echo: True)

        def hb(i):
            m = msgs.get(i)
            if m is None:
                m = msgs[i] = HB % self.mac(i)
            return m

        def start(slot):
            slot.step = "Hb"
            slot.gw = slot.gateways[slot.cursor % len(slot.gateways)]
            slot.cursor += 1
            self.send(slot, hb(slot.gw), target[0])

        def handle(slot, reply):
            if reply is not None:
                # the echo sends the Hb back; cubeplat answers {"Result": 0, ...}; a
                # reply of the window before a switch counts for whom it came from
                from_echo = echo is not None and reply.get("RPCMethod") == "Hb"
                if from_echo or reply.get("Result") == 0:
                    got[from_echo] += 1
                    if from_echo == to_echo[0]:
                        ok[0] += 1
                    self.stats["ok"] += 1
                else:
                    self.stats["bad"] += 1
            if stop[0]:
                slot.step = None
            else:
                start(slot)

        # warm-up: every gateway once
        stop = [False]
        self.phase = f"Hb warm-up ({count} gateways)"
        t0 = time.monotonic()
        lost0 = self.stats["lost"]
        self.loop(slots, start, handle, t0 + self.a.register_limit,
                  lambda: all(s.cursor >= len(s.gateways) for s in slots))
        warm = {"seconds": time.monotonic() - t0, "replies": ok[0]}
        # measured windows: keep going from where the warm-up is
        self.phase = f"Hb measured ({count} gateways)"
        rates, echo_rates = [], []
        # CPU (all threads, ns) per reply of the server each window went to, when its pid
        # is known (--cpu-pids): the same comparison without the other processes' noise
        pids = {False: self.a.cpu_pids[0], True: self.a.cpu_pids[1]} \
            if self.a.cpu_pids else None
        cpu, echo_cpu = [], []
        ok0, lost_m0, sent0 = ok[0], self.stats["lost"], self.stats["sent"]
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end - window / 2:
            if alternate:
                to_echo[0] = len(echo_rates) < len(rates)
                target[0] = echo if to_echo[0] else self.oper
            c0, t1 = ok[0], time.monotonic()
            ns0 = cpu_ns(pids[to_echo[0]]) if pids else 0
            self.loop(slots, lambda s: None, handle, t1 + window, lambda: False)
            (echo_rates if alternate and to_echo[0] else rates).append(
                (ok[0] - c0) / (time.monotonic() - t1))
            if pids and ok[0] > c0:
                (echo_cpu if to_echo[0] else cpu).append(
                    (cpu_ns(pids[to_echo[0]]) - ns0) / (ok[0] - c0))
        # drain: stop sending, wait for the outstanding replies
        stop[0] = True
        self.loop(slots, lambda s: None, handle, time.monotonic() + self.a.timeout + 0.5,
                  lambda: all(s.step is None for s in slots))
        self.close(slots)
        self.progress(force=True)
        sys.stderr.write("\n")
        return {"gateways": count, "warmup": warm, "rates": rates, "echo_rates": echo_rates,
                "cpu_ns_per_reply": cpu, "echo_cpu_ns_per_reply": echo_cpu,
                "replies_by_source": {"platform": got[False], "echo": got[True]},
                "replies": ok[0] - ok0, "sent": self.stats["sent"] - sent0,
                "lost": self.stats["lost"] - lost_m0, "lost_warmup": lost_m0 - lost0,
                "bad": self.stats["bad"]}


def main(argv=None):
    p = argparse.ArgumentParser(description="cubeplat load generator (simulated gateways)")
    p.add_argument("--dist", default="", help="distribution platform HOST:PORT")
    p.add_argument("--oper", default="", help="operation platform HOST:PORT (default: as "
                                              "RegisterFirst says)")
    p.add_argument("--echo", default="", help="HOST:PORT of a UDP echo: baseline Hb traffic")
    p.add_argument("--alternate", action="store_true",
                   help="with --echo and the platform: measured windows alternate")
    p.add_argument("--gateways", type=int, default=1000, help="gateways 0..N-1")
    p.add_argument("--start", type=int, default=0, help="first gateway not yet registered")
    p.add_argument("--register", action="store_true")
    p.add_argument("--hb-seconds", type=float, default=0.0)
    p.add_argument("--window", type=float, default=4.0)
    p.add_argument("--sockets", type=int, default=64)
    p.add_argument("--port-base", type=int, default=0,
                   help="bind socket k to 127.0.0.1:PORT_BASE+k (0: any port, kept)")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--register-limit", type=float, default=240.0,
                   help="at most this many seconds for registration / the warm-up round")
    p.add_argument("--mac-prefix", default="02CB")
    p.add_argument("--cpu-pids", default="", help="PLATFORM_PID,ECHO_PID: CPU per reply of "
                                                  "each window's server (with --alternate)")
    p.add_argument("--json", default="")
    a = p.parse_args(argv)
    a.cpu_pids = [int(x) for x in a.cpu_pids.split(",")] if a.cpu_pids else None
    if len(a.mac_prefix) != 4:
        p.error("--mac-prefix is 4 hex digits (8 more come from the index)")
    gen = LoadGen(a)
    out = {"gateways": a.gateways, "sockets": a.sockets}
    if a.register:
        if not gen.dist:
            p.error("--register needs --dist")
        out["register"] = gen.register(a.start, a.gateways)
    if a.hb_seconds > 0:
        if not (gen.oper or a.echo):
            p.error("no operation platform address: give --oper")
        out["hb"] = gen.heartbeats(a.gateways, a.hb_seconds, a.window)
    text = json.dumps(out, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
