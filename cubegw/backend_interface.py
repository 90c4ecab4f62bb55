"""``ISystemBackend``: what a capability may ask of the router.

``cubegw.backend.LinuxBackend`` is the real one, ``cubegw.backend_testing.TempDirBackend``
the test double.  The interface is the contract for vendors and tests (``verifyObject``);
the running daemon never asks it, so it lives apart from the backend and declares the
real backend here: its ~20 KiB of zope objects are not loaded by a gateway.
``cubegw.backend.ISystemBackend`` names it too (imported when first named).
"""

from zope.interface import Interface, classImplements

from cubegw.backend import LinuxBackend

__all__ = ["ISystemBackend"]


class ISystemBackend(Interface):
    """What capabilities may do to the router; nothing here blocks the reactor
    for longer than reading a small file."""

    def read_file(path):
        """The text of ``path`` (an absolute router path); raises OSError."""

    def cpu_percent():
        """CPU use in percent (0-100) since the previous call (or since the
        backend was made); never sleeps."""

    def memory():
        """A dict: ``total`` and ``available`` bytes, ``percent`` in use (0-100);
        may be up to a second old."""

    def boot_time():
        """When the system booted, in seconds since the epoch."""

    def uptime():
        """Seconds since boot, by the backend's clock."""

    def reboot():
        """Reboot the router (a Deferred firing when the command was started)."""

    def run(argv):
        """Run ``argv`` (argv[0] looked up on PATH) with no shell; a Deferred
        firing with ``(exit_code, stdout_bytes, stderr_bytes)``; a process
        killed by signal N gives exit code -N."""

    def uci_path(config_name):
        """The path of the UCI file ``config_name`` (``/etc/config/<name>``)."""

    def is_openwrt():
        """Whether this is an OpenWrt system (``/etc/openwrt_release`` exists)."""

    def net_if_addrs():
        """``{ifname: [{"family": "ipv4"|"ipv6"|"mac", "address", "netmask"}]}``."""

    def net_if_stats():
        """``{ifname: {"isup": bool, "speed": Mbit/s, "mtu": int}}``; speed and mtu
        are 0 when unknown.  Raises ``BackendError`` when the interfaces
        cannot be read at all."""

    def net_io_counters():
        """``{ifname: {"bytes_sent": int, "bytes_recv": int}}`` since boot."""

    def routes():
        """The IPv4 routing table (``/proc/net/route``): a list of dicts
        ``iface, destination, gateway, mask`` (dotted quads), ``flags`` (int)."""

    def dns_servers():
        """The name servers in use: the upstream list of dnsmasq on OpenWrt
        (``/tmp/resolv.conf.d/resolv.conf.auto``, ``/tmp/resolv.conf.auto``),
        else ``/etc/resolv.conf``; a list of address strings."""

    def arp_table():
        """Complete entries of ``/proc/net/arp``: dicts ``ip, mac`` (upper
        case, colons), ``iface``."""

    def dhcp_leases():
        """dnsmasq's leases (``/tmp/dhcp.leases``): dicts ``expires`` (int),
        ``mac``, ``ip``, ``hostname`` ("" for "*"); [] when there is no file."""

    def read_uci(config_name):
        """The ``uci.Package`` of ``/etc/config/<name>`` (the caller's copy), or None
        without the file; raises ``uci.UciError`` for a file that does not parse.  A
        package written is read back at once, even before it is on disk."""

    def write_uci(config_name, package):
        """Write the package back atomically (mode 0644): raises ``uci.UciError`` at
        once for a value it refuses, else a Deferred firing None once the file is on
        disk (fsynced and renamed); writes close together share one disk write."""

    def apply(config_name):
        """Make the service reload ``config_name`` (network, wireless, firewall,
        dhcp).  A Deferred firing with None when the reload command succeeded,
        else a reason string ("not OpenWrt", "reload failed: ...")."""

    def write_file(path, text):
        """Write ``text`` to ``path`` (a router path) atomically, making its folder."""

    def remove_file(path):
        """Remove ``path``; True if it was there."""

    def list_dir(path):
        """The sorted names in the folder ``path``; [] when it does not exist."""

    def which(program):
        """The router path of ``program`` in the standard PATH folders (an
        executable file under the root), or None."""

    def set_led(name, on):
        """Turn the LED ``/sys/class/leds/<name>`` on (its max_brightness) or off;
        raises OSError."""

    def set_blocked_macs(macs):
        """Internet access control: make the UCI firewall hold exactly one
        REJECT rule (src lan, src_mac, dest wan) per MAC of ``macs`` among the
        rules we own, then ``apply("firewall")``.  A Deferred as ``apply``'s;
        fires with "no UCI firewall config" when there is none."""


classImplements(LinuxBackend, ISystemBackend)
