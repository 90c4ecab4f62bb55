"""The one place that touches the router: files, load, reboot, commands.

Capabilities talk to an ``ISystemBackend`` (``cubegw.backend_interface``);
``LinuxBackend`` is the real one, ``TempDirBackend`` (``cubegw.backend_testing``) the
test double (files under a temporary directory, values set by the test, reboots and
commands recorded, nothing run).  Both, and the parsers of ``cubegw.backend_parse``,
are importable from here too: they are loaded when first named, as a running gateway
needs none of them until a capability asks the router for those reads; the running of a
command (``cubegw.backend_process``) loads at the first command.
"""

import importlib
import os

import psutil
from twisted.internet import defer

from cubegw.logs import Logger
from cubegw.store import uci
from cubegw.ucifiles import UciFiles, write_file

__all__ = ["BackendError", "LinuxBackend", "APPLY_COMMANDS", "NOT_OPENWRT", "BLOCK_RULE_PREFIX"]

log = Logger()

#: Names this module gives from the modules they live in, imported when first named: the
#: interface, the test double and the parsers of what the system reads (a running
#: gateway needs them only once a capability asks the router for those reads).
_ELSEWHERE = {"ISystemBackend": "cubegw.backend_interface",
              "TempDirBackend": "cubegw.backend_testing",
              **{name: "cubegw.backend_parse" for name in (
                  "cpu_busy_percent", "parse_routes", "parse_resolv_conf", "parse_arp",
                  "parse_dhcp_leases", "firewall_block_rules", "addrs_from_psutil")}}


def __getattr__(name):
    """The names of ``_ELSEWHERE`` from their own modules (PEP 562)."""
    if name in _ELSEWHERE:
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class BackendError(Exception):
    """The router could not give what was asked: the call answers Status "1" with
    ``reason`` as its FailReason (the dispatcher treats it as a capability failure)."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


#: What ``apply`` runs for each UCI config on OpenWrt.
APPLY_COMMANDS = {
    "network": ["ubus", "call", "network", "reload"],
    "wireless": ["wifi", "reload"],
    "firewall": ["/etc/init.d/firewall", "reload"],
    "dhcp": ["/etc/init.d/dnsmasq", "reload"],
}
NOT_OPENWRT = "not OpenWrt"
#: The ``name`` of the firewall rules ``set_blocked_macs`` owns: prefix + MAC hex.
BLOCK_RULE_PREFIX = "cubegw_block_"
_RESOLV_FILES = ("/tmp/resolv.conf.d/resolv.conf.auto", "/tmp/resolv.conf.auto",
                 "/etc/resolv.conf")
_SYS_NET = "/sys/class/net"
#: Where ``which`` looks, as OpenWrt's default PATH.
LED_CLASS = "/sys/class/leds"
PROGRAM_PATH = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")
_IFF_UP = 0x1


class _FilesMixin:
    """What both backends read from files under their root, and UCI I/O (in ``uci_dir``
    when it is set, else the root's ``/etc/config``)."""

    uci_dir = None

    def _path(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def read_file(self, path):
        with open(self._path(path), encoding="utf-8", errors="replace") as f:
            return f.read()

    def _read_or_empty(self, path):
        try:
            return self.read_file(path)
        except OSError:
            return ""

    def uci_path(self, config_name):
        if self.uci_dir:
            return os.path.join(self.uci_dir, config_name)
        return self._path(os.path.join("etc", "config", config_name))

    def is_openwrt(self):
        # access(), not exists(): no exception made and dropped off OpenWrt (every apply)
        return os.access(self._path("/etc/openwrt_release"), os.F_OK)

    def routes(self):
        from cubegw.backend_parse import parse_routes
        return parse_routes(self._read_or_empty("/proc/net/route"))

    def dns_servers(self):
        from cubegw.backend_parse import parse_resolv_conf
        for path in _RESOLV_FILES:
            try:
                text = self.read_file(path)
            except OSError:
                continue
            servers = parse_resolv_conf(text)
            if servers:
                return servers
        return []

    def arp_table(self):
        from cubegw.backend_parse import parse_arp
        return parse_arp(self._read_or_empty("/proc/net/arp"))

    def dhcp_leases(self):
        from cubegw.backend_parse import parse_dhcp_leases
        return parse_dhcp_leases(self._read_or_empty("/tmp/dhcp.leases"))

    def read_uci(self, config_name):
        return self.uci_files.read(config_name)

    def write_uci(self, config_name, package):
        return self.uci_files.write(config_name, package)

    def write_file(self, path, text):
        write_file(self._path(path), text.encode("utf-8"))

    def remove_file(self, path):
        try:
            os.unlink(self._path(path))
        except FileNotFoundError:
            return False
        return True

    def list_dir(self, path):
        try:
            return sorted(os.listdir(self._path(path)))
        except OSError:
            return []

    def which(self, program):
        if not program or "/" in program:
            return None
        for folder in PROGRAM_PATH:
            candidate = f"{folder}/{program}"
            if os.path.isfile(self._path(candidate)) and os.access(self._path(candidate), os.X_OK):
                return candidate
        return None

    def set_led(self, name, on):
        if not name or "/" in name or name.startswith("."):
            raise OSError(f"not an LED name: {name!r}")
        folder = f"{LED_CLASS}/{name}"
        value = self.read_file(folder + "/max_brightness").strip() if on else "0"
        with open(self._path(folder + "/brightness"), "w") as f:   # sysfs: no rename
            f.write(value if value.isdigit() else "1")

    def set_blocked_macs(self, macs):
        try:
            package = self.read_uci("firewall")
        except uci.UciError as e:
            return defer.succeed(f"UCI firewall config unreadable: {e}")
        if package is None:
            return defer.succeed("no UCI firewall config")
        from cubegw.backend_parse import firewall_block_rules
        d = self.write_uci("firewall", firewall_block_rules(package, macs))
        return d.addCallback(lambda _: self.apply("firewall"))


class LinuxBackend(_FilesMixin):
    """The real router, through psutil, /proc and ``reactor.spawnProcess``.

    ``root`` prefixes every file path (for a chroot or an image mounted for a
    test); ``uci_dir``, when given, is where the UCI packages are (the store's
    directory, as ``uci -c`` takes it).  CPU use is computed from our own ``cpu_times`` samples, so other
    users of ``psutil.cpu_percent`` do not move our baseline.  ``memory()``
    reuses one ``virtual_memory()`` reading for ``MEMORY_MAX_AGE`` seconds of
    the reactor's clock: QUERY_MEM_INFO can come thousands of times a second.
    """

    MEMORY_MAX_AGE = 1.0

    def __init__(self, reactor, root="/", psutil_module=psutil, uci_dir=None):
        self.reactor = reactor
        self.root = root
        self.uci_dir = uci_dir
        self._psutil = psutil_module
        self._cpu_last = psutil_module.cpu_times()
        self._cpu_value = 0.0
        self._memory, self._memory_at = None, None
        # written at once, as ``uci commit`` does: on a tmpfs the hop to a thread cost
        # more than the write, and on flash a SET blocking a few ms harms nothing
        self.uci_files = UciFiles(self.uci_path)

    def cpu_percent(self):
        from cubegw.backend_parse import cpu_busy_percent
        now = self._psutil.cpu_times()
        value = cpu_busy_percent(self._cpu_last, now)
        if value is not None:
            self._cpu_value = value
            self._cpu_last = now
        return self._cpu_value

    def memory(self):
        now = self.reactor.seconds()
        if self._memory is None or not 0 <= now - self._memory_at < self.MEMORY_MAX_AGE:
            vm = self._psutil.virtual_memory()
            self._memory = {"total": vm.total, "available": vm.available, "percent": vm.percent}
            self._memory_at = now
        return dict(self._memory)

    def boot_time(self):
        return self._psutil.boot_time()

    def uptime(self):
        return max(0.0, self.reactor.seconds() - self.boot_time())

    def reboot(self):
        log.warn("rebooting the router")
        return self.run(["reboot"])

    def run(self, argv):
        from cubegw.backend_process import run
        return run(self.reactor, argv, self.root)

    def net_if_addrs(self):
        from cubegw.backend_parse import addrs_from_psutil
        return addrs_from_psutil(self._psutil.net_if_addrs())

    def net_if_stats(self):
        try:
            raw = self._psutil.net_if_stats()
        except OSError as e:
            # one interface's ioctl failing fails psutil's whole call (e.g. ENOSYS for
            # SIOCETHTOOL under qemu-user): read each interface from sysfs instead
            return self._net_if_stats_sysfs(e)
        return {name: {"isup": st.isup, "speed": st.speed, "mtu": st.mtu}
                for name, st in raw.items()}

    def _net_if_stats_sysfs(self, psutil_error):
        try:
            names = os.listdir(self._path(_SYS_NET))
        except OSError:
            raise BackendError(f"network interfaces unreadable: {psutil_error}")

        def read(name, attribute):
            try:
                return self.read_file(f"{_SYS_NET}/{name}/{attribute}").strip()
            except OSError:  # e.g. EINVAL reading the speed of a link that is down
                return ""

        def number(name, attribute, base=10):
            try:
                return int(read(name, attribute), base)
            except ValueError:
                return 0

        # psutil's isup is IFF_RUNNING, which sysfs's flags lack: the kernel sets it
        # for an interface that is up with operstate up or unknown (lo's)
        return {name: {"isup": bool(number(name, "flags", 16) & _IFF_UP)
                       and read(name, "operstate") in ("up", "unknown"),
                       "speed": max(0, number(name, "speed")), "mtu": number(name, "mtu")}
                for name in names}

    def net_io_counters(self):
        return {name: {"bytes_sent": c.bytes_sent, "bytes_recv": c.bytes_recv}
                for name, c in self._psutil.net_io_counters(pernic=True).items()}

    def apply(self, config_name):
        if not self.is_openwrt():
            return defer.succeed(NOT_OPENWRT)
        argv = APPLY_COMMANDS.get(config_name, ["/etc/init.d/" + config_name, "reload"])

        def done(result):
            code, out, err = result
            if code:
                log.warn("{argv} failed ({code}): {err}", argv=argv, code=code, err=err)
                return f"reload failed: {' '.join(argv)} exited {code}"
            return None
        return self.run(argv).addCallback(done)
