"""Field CmdTypes a generic OpenWrt router has no such thing for, answered by a
vendor's provider when one is installed.

As ``hardware.py`` (VoIP, PON): a vendor image drops a module into a
``cubegw/plugins/`` directory holding a module-level instance providing
``twisted.plugin.IPlugin`` and one of the interfaces below; Twisted's plugin scan
finds it.  Each interface has one method, ``call(cmd_type, payload, backend)``,
returning the reply fields (a dict or a Deferred of one) or raising
``CapabilityFailure``.  Without a provider, the CmdTypes answer Status 1 with a
FailReason naming what is missing.
"""

from twisted.internet import defer
from zope.interface import Interface

from cubegw.capabilities.base import RIGHT_BOTH, CapabilityFailure
from cubegw.capabilities.hardware import VendorBacked

__all__ = ["IL2tpProvider", "IMulticastProvider", "IBandwidthProvider", "IStorageProvider",
           "ISleepProvider", "VendorFeatures", "FEATURES", "vendor_features"]


class _IFeature(Interface):
    def call(cmd_type, payload, backend):
        """The reply fields of ``cmd_type`` (a dict or a Deferred of one)."""


class IL2tpProvider(_IFeature):
    """L2TP VPN tunnels of the WAN and the domains routed through them
    (CREATE/REMOVE/ATTACH/DETACH_WANL2TP_TUNNEL, GET_WANL2TP_TUNNEL_STATUS,
    ATTACH/DETACH_WAN_DNS_TUNNEL)."""


class IMulticastProvider(_IFeature):
    """IPTV multicast diagnosis (MULTICAST_DIAG_REQ)."""


class IBandwidthProvider(_IFeature):
    """Per-device rate limits (GET/SET_ATTACH_DEVICE_BANDWIDTH)."""


class IStorageProvider(_IFeature):
    """The attached storage service's per-device blacklist
    (GET_ATTACH_DEVICE_STORAGE_ACCESS_BLACKLIST)."""


class ISleepProvider(_IFeature):
    """The gateway's power-saving sleep schedule (SET/GET_SLEEP_STATUS)."""


#: CmdType -> (interface, FailReason without a provider).
FEATURES = {}
for _interface, _reason, _cmds in (
        (IL2tpProvider, "L2TP tunnels need an L2TP client (xl2tpd) and a vendor provider",
         ("CREATE_WANL2TP_TUNNEL", "REMOVE_WANL2TP_TUNNEL", "ATTACH_WANL2TP_TUNNEL",
          "DETACH_WANL2TP_TUNNEL", "GET_WANL2TP_TUNNEL_STATUS", "ATTACH_WAN_DNS_TUNNEL",
          "DETACH_WAN_DNS_TUNNEL")),
        (IMulticastProvider, "no IPTV multicast service on this hardware",
         ("MULTICAST_DIAG_REQ",)),
        (IBandwidthProvider, "no per-device rate limiting on this hardware",
         ("GET_ATTACH_DEVICE_BANDWIDTH", "SET_ATTACH_DEVICE_BANDWIDTH")),
        (IStorageProvider, "no storage service on this gateway",
         ("GET_ATTACH_DEVICE_STORAGE_ACCESS_BLACKLIST",)),
        (ISleepProvider, "no sleep (power-saving) mode on this hardware",
         ("SET_SLEEP_STATUS", "GET_SLEEP_STATUS"))):
    for _cmd in _cmds:
        FEATURES[_cmd] = (_interface, _reason)


class VendorFeatures(VendorBacked):
    """The CmdTypes of ``FEATURES``, each answered by its vendor provider."""

    cmd_types = tuple(sorted(FEATURES))
    default_right = RIGHT_BOTH

    def call(self, cmd_type, payload, context):
        interface, reason = FEATURES[cmd_type]
        provider = self.provider(interface)
        if provider is None:
            raise CapabilityFailure(reason)
        d = defer.maybeDeferred(provider.call, cmd_type, payload, context.backend)

        def check(fields):
            if not isinstance(fields, dict):
                raise CapabilityFailure(reason)
            return fields
        return d.addCallback(check)


vendor_features = VendorFeatures()
