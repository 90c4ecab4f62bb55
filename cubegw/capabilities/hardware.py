"""VoIP and PON capabilities, answered by a vendor's hardware provider.

A generic OpenWrt router has neither; a vendor image that has them installs a
module in a ``cubegw/plugins/`` directory holding a module-level instance
providing ``twisted.plugin.IPlugin`` and ``IVoipProvider`` (or
``IPonProvider``).  They are found with ``twisted.plugin.getPlugins``, like
the vendor capabilities (docs/CAPABILITIES.md).  Without one, the CmdTypes
answer Status 1 "not supported on this hardware".
"""

from twisted.internet import defer
from twisted.plugin import getPlugins
from zope.interface import Interface

from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure

__all__ = ["IVoipProvider", "IPonProvider", "Hardware", "VendorBacked", "NOT_SUPPORTED", "find_hardware",
           "hardware"]

NOT_SUPPORTED = "not supported on this hardware"


class IVoipProvider(Interface):
    """The vendor's VoIP lines.  Each method returns a dict (or a Deferred of
    one); every value is turned into a string on the wire."""

    def voip_info(backend):
        """GET_VOIP_INFO fields, e.g. ``{"Num": 1, "List": [{"Line": 1,
        "Number": "...", "Enable": True, "Protocol": "SIP", "Server": "..."}]}``."""

    def voip_reg_status(backend):
        """GET_VOIP_REG_STATUS fields, e.g. ``{"Num": 1, "List": [{"Line": 1,
        "RegStatus": "Registered"|"Registering"|"Failed"|"Disabled",
        "Reason": ""}]}``."""


class IPonProvider(Interface):
    """The vendor's PON (optical) interface."""

    def pon_inform(backend):
        """GET_PONINFORM_REQ fields, e.g. ``{"PONType": "GPON"|"EPON",
        "LOID": "...", "AuthStatus": "...", "OLTVendor": "..."}``."""

    def pon_status(backend):
        """GET_PON_STATUS fields, e.g. ``{"Status": "Up"|"Down",
        "TxPower": dBm, "RxPower": dBm, "Temperature": C, "Voltage": V,
        "BiasCurrent": mA}`` (the reply's own ``Status`` is the call's 0/1, so
        a provider should name the link state ``LinkStatus``; a ``Status`` key
        is renamed to it)."""


def find_hardware(interface, plugin_package=None):
    """The first provider of ``interface`` Twisted's plugin scan finds in
    ``plugin_package`` (by default ``cubegw.plugins``), or None."""
    if plugin_package is None:
        import cubegw.plugins as plugin_package
    for provider in getPlugins(interface, plugin_package):
        return provider
    return None


class VendorBacked(Capability):
    """A capability answered by a vendor's provider of some interface, found once."""

    def __init__(self, find=find_hardware):
        #: ``find(interface)``: the provider or None; looked up once per interface.
        self.find = find
        self._found = {}

    def provider(self, interface):
        if interface not in self._found:
            self._found[interface] = self.find(interface)
        return self._found[interface]


class Hardware(VendorBacked):
    """GET_VOIP_INFO, GET_VOIP_REG_STATUS (IVoipProvider), GET_PONINFORM_REQ,
    GET_PON_STATUS (IPonProvider)."""

    cmd_types = ("GET_VOIP_INFO", "GET_VOIP_REG_STATUS", "GET_PONINFORM_REQ", "GET_PON_STATUS")
    default_right = RIGHT_BOTH

    _ROUTES = {"GET_VOIP_INFO": (IVoipProvider, "voip_info"),
               "GET_VOIP_REG_STATUS": (IVoipProvider, "voip_reg_status"),
               "GET_PONINFORM_REQ": (IPonProvider, "pon_inform"),
               "GET_PON_STATUS": (IPonProvider, "pon_status")}

    def call(self, cmd_type, payload, context):
        interface, method = self._ROUTES[cmd_type]
        provider = self.provider(interface)
        if provider is None:
            raise CapabilityFailure(NOT_SUPPORTED)
        d = defer.maybeDeferred(getattr(provider, method), context.backend)

        def check(fields):
            if not isinstance(fields, dict):
                raise CapabilityFailure(NOT_SUPPORTED)
            fields = dict(fields)
            if "Status" in fields:
                fields["LinkStatus"] = fields.pop("Status")
            return fields
        return d.addCallback(check)


hardware = Hardware()
