"""The vendor-provided field CmdTypes: Status 1 without a provider, the provider's fields with one."""

from zope.interface import implementer
from twisted.trial.unittest import SynchronousTestCase

from cubegw.capabilities import vendor

from tests.helpers.dispatch import Harness


@implementer(vendor.IL2tpProvider)
class FakeL2tp:
    def __init__(self):
        self.calls = []

    def call(self, cmd_type, payload, backend):
        self.calls.append(cmd_type)
        return {"TunnelName": payload.get("TunnelName", ""), "TunnelStatus": "Up"}


class VendorTests(SynchronousTestCase):
    """Every CmdType of vendor.FEATURES."""

    def test_without_provider(self):
        """Each CmdType answers Status 1 with its feature's reason."""
        h = Harness(self, providers=[vendor.VendorFeatures(find=lambda i: None)])
        for cmd, (_, reason) in vendor.FEATURES.items():
            reply = h.call(self, cmd).payload
            self.assertEqual((reply["Status"], reply["FailReason"]), ("1", reason), cmd)
        self.assertEqual(len(vendor.FEATURES), 13)

    def test_with_provider(self):
        """A provider of the interface answers; the others still say what is missing."""
        fake = FakeL2tp()
        h = Harness(self, providers=[vendor.VendorFeatures(
            find=lambda i: fake if i is vendor.IL2tpProvider else None)])
        reply = h.call(self, "GET_WANL2TP_TUNNEL_STATUS", TunnelName="t1").payload
        self.assertEqual((reply["Status"], reply["TunnelStatus"], reply["TunnelName"]),
                         ("0", "Up", "t1"))
        self.assertEqual(h.call(self, "MULTICAST_DIAG_REQ").payload["Status"], "1")
