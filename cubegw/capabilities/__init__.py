"""Capabilities: what the plugin center (``Post``) and the phone app on the LAN
(``Post1``) may call on the gateway (protocol.md sections 8-9).

``base`` defines the ``IGatewayCapability`` plug-in interface, the rights and
the per-call context; ``dispatch`` checks a call and routes it to a provider;
``catalogue`` names every built-in CmdType so that its module is imported on first
call, ``stored`` their store schema; the other modules are the built-in providers.  A vendor adds
providers without editing this package: see ``cubegw.plugins`` and
docs/CAPABILITIES.md.
"""

from cubegw.capabilities.base import (
    RIGHT_BOTH, RIGHT_LOCAL, RIGHT_NONE, RIGHT_REMOTE, LOCAL, REMOTE,
    Capability, CapabilityContext, CapabilityFailure, CapabilityUnavailable,
    IGatewayCapability,
)
from cubegw.capabilities.catalogue import lazy_providers
from cubegw.capabilities.dispatch import (
    Dispatcher, DuplicateCmdType, Outcome, Rights, discover_providers,
)
from cubegw.capabilities.lanauth import LanAuth

__all__ = [
    "RIGHT_BOTH", "RIGHT_LOCAL", "RIGHT_NONE", "RIGHT_REMOTE", "LOCAL", "REMOTE",
    "Capability", "CapabilityContext", "CapabilityFailure", "CapabilityUnavailable",
    "IGatewayCapability", "Dispatcher", "DuplicateCmdType", "Outcome", "Rights",
    "discover_providers", "lazy_providers", "LanAuth",
]
