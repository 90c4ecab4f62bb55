"""VoIP and PON capabilities with and without a vendor hardware provider."""

import os
import sys
import textwrap

from twisted.internet import defer
from twisted.plugin import IPlugin
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from cubegw.capabilities import IGatewayCapability
from cubegw.capabilities.hardware import (
    NOT_SUPPORTED, Hardware, IPonProvider, IVoipProvider, find_hardware, hardware,
)

from tests.helpers.dispatch import Harness


@implementer(IPlugin, IVoipProvider, IPonProvider)
class FakeHardware:
    """A vendor board with one VoIP line and a GPON port."""

    def voip_info(self, backend):
        return {"Num": 1, "List": [{"Line": 1, "Number": "075512345678", "Enable": True}]}

    def voip_reg_status(self, backend):
        return defer.succeed({"Num": 1, "List": [{"Line": 1, "RegStatus": "Registered"}]})

    def pon_inform(self, backend):
        return {"PONType": "GPON", "AuthStatus": "O5"}

    def pon_status(self, backend):
        return {"Status": "Up", "RxPower": -18.5, "TxPower": 2.1}


class HardwareTests(SynchronousTestCase):
    """Answers from the provider, or Status 1 without one."""

    def test_verify(self):
        """The capability and the fake provider provide their interfaces."""
        self.assertTrue(verifyObject(IGatewayCapability, hardware))
        self.assertTrue(verifyObject(IVoipProvider, FakeHardware()))
        self.assertTrue(verifyObject(IPonProvider, FakeHardware()))

    def test_not_supported(self):
        """Without a provider every CmdType is Status 1 "not supported on this hardware"."""
        h = Harness(self, providers=[Hardware(find=lambda interface: None)])
        for cmd in Hardware.cmd_types:
            reply = h.call(self, cmd).payload
            self.assertEqual((reply["Status"], reply["FailReason"]), ("1", NOT_SUPPORTED))

    def test_with_provider(self):
        """With a provider: its fields as strings; a PON Status becomes LinkStatus."""
        fake = FakeHardware()
        h = Harness(self, providers=[Hardware(find=lambda interface: fake)])
        reply = h.call(self, "GET_VOIP_INFO").payload
        self.assertEqual(reply["List"], [{"Line": "1", "Number": "075512345678",
                                          "Enable": "1"}])
        self.assertEqual(h.call(self, "GET_VOIP_REG_STATUS").payload["List"][0]["RegStatus"],
                         "Registered")
        self.assertEqual(h.call(self, "GET_PONINFORM_REQ").payload["PONType"], "GPON")
        reply = h.call(self, "GET_PON_STATUS").payload
        self.assertEqual((reply["Status"], reply["LinkStatus"], reply["RxPower"]),
                         ("0", "Up", "-18.5"))

    def test_only_voip(self):
        """A VoIP-only provider: PON stays unsupported."""
        fake = FakeHardware()
        h = Harness(self, providers=[Hardware(
            find=lambda interface: fake if interface is IVoipProvider else None)])
        self.assertEqual(h.call(self, "GET_VOIP_INFO").payload["Status"], "0")
        self.assertEqual(h.call(self, "GET_PON_STATUS").payload["FailReason"], NOT_SUPPORTED)

    def test_plugin_discovery(self):
        """find_hardware finds a provider dropped into a cubegw/plugins directory."""
        import cubegw.plugins
        self.assertIsNone(find_hardware(IPonProvider))
        drop = os.path.join(os.path.abspath(self.mktemp()), "cubegw", "plugins")
        os.makedirs(drop)
        with open(os.path.join(drop, "vendor_pon_test.py"), "w") as f:
            f.write(textwrap.dedent("""\
                from twisted.plugin import IPlugin
                from zope.interface import implementer
                from cubegw.capabilities.hardware import IPonProvider

                @implementer(IPlugin, IPonProvider)
                class Pon:
                    def pon_inform(self, backend):
                        return {"PONType": "EPON"}

                    def pon_status(self, backend):
                        return {"Status": "Down"}

                pon = Pon()
                """))
        cubegw.plugins.__path__.append(drop)
        self.addCleanup(cubegw.plugins.__path__.remove, drop)
        self.addCleanup(sys.modules.pop, "cubegw.plugins.vendor_pon_test", None)
        found = find_hardware(IPonProvider)
        self.assertIsNotNone(found)
        self.assertTrue(verifyObject(IPonProvider, found))
        h = Harness(self, providers=[Hardware()])
        self.assertEqual(h.call(self, "GET_PONINFORM_REQ").payload["PONType"], "EPON")
        self.assertEqual(h.call(self, "GET_VOIP_INFO").payload["FailReason"], NOT_SUPPORTED)
