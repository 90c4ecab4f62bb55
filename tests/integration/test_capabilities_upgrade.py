"""UPGRADE (background download, checks, installer) and SET_WD_INFO."""

import hashlib
import os

from twisted.internet import defer, reactor, tcp
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import resource, server
from zope.interface import implementer
from zope.interface.verify import verifyObject

from cubegw.backend import TempDirBackend
from cubegw.capabilities import CapabilityContext, Dispatcher, IGatewayCapability
from cubegw.capabilities.upgrade import (
    IUpgradeInstaller, OpenWrtInstaller, Upgrade, WebPopup, upgrade, upgrade_kind, web_popup,
)
from cubegw.config import Accounts, GatewayConfig
from cubegw.store import Store, builtin_schema

from tests.helpers import IDENTITY
from tests.helpers.dispatch import SEQ, Harness

IMAGE = bytes(range(256)) * 400  # 102400 bytes


@implementer(IUpgradeInstaller)
class FakeInstaller:
    """Records installs; ``why`` is what unavailable() says."""

    def __init__(self, why=None, result=None):
        self.why, self.result = why, result
        self.installed = []

    def unavailable(self, kind, backend):
        return self.why

    def install(self, kind, path, backend):
        with open(path, "rb") as f:
            self.installed.append((kind, os.path.basename(path), f.read()))
        return defer.succeed(self.result)


class _Static(resource.Resource):
    isLeaf = True

    def __init__(self, body):
        super().__init__()
        self.body = body

    def render_GET(self, request):
        return self.body


class _Huge(resource.Resource):
    """Announces a 100 MB image, sends 1 KB of it, and never finishes: only a client that
    stops the transfer gets rid of the connection."""
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-length", b"%d" % (100 * 2**20))
        request.write(b"z" * 1024)
        return server.NOT_DONE_YET


class InstallerTests(SynchronousTestCase):
    """OpenWrtInstaller through a TempDirBackend."""

    def test_verify(self):
        """The providers and installers provide their interfaces."""
        self.assertTrue(verifyObject(IGatewayCapability, upgrade))
        self.assertTrue(verifyObject(IGatewayCapability, web_popup))
        self.assertTrue(verifyObject(IUpgradeInstaller, OpenWrtInstaller()))
        self.assertTrue(verifyObject(IUpgradeInstaller, FakeInstaller()))

    def test_openwrt(self):
        """On OpenWrt: sysupgrade / opkg install via run; elsewhere unavailable."""
        tmp = self.mktemp()
        backend = TempDirBackend(tmp, Clock())
        installer = OpenWrtInstaller()
        self.assertEqual(installer.unavailable("firmware", backend),
                         "no installer on this system")
        os.makedirs(os.path.join(tmp, "etc"))
        open(os.path.join(tmp, "etc", "openwrt_release"), "w").close()
        self.assertIsNone(installer.unavailable("firmware", backend))
        self.assertIsNone(self.successResultOf(installer.install("firmware", "/tmp/x", backend)))
        backend.results["opkg"] = (255, b"", b"bad ipk")
        self.assertEqual(self.successResultOf(installer.install("ipk", "/tmp/y", backend)),
                         "opkg exited 255: bad ipk")
        self.assertEqual(backend.commands, [["sysupgrade", "/tmp/x"],
                                            ["opkg", "install", "/tmp/y"]])

    def test_no_installer(self):
        """UPGRADE off OpenWrt (default installer): Status 1, nothing downloaded."""
        h = Harness(self, providers=[Upgrade()])
        reply = h.call(self, "UPGRADE", side="remote", downurl="http://127.0.0.1/x").payload
        self.assertEqual((reply["Status"], reply["FailReason"]),
                         ("1", "no installer on this system"))

    def test_refused(self):
        """Not http(s), bad method, bad checksum: refused (both sides may call it, as in
        the field's table)."""
        h = Harness(self, providers=[Upgrade(FakeInstaller())])
        for args in ({"downurl": "ftp://x/y"}, {"downurl": "file:///etc/passwd"}, {},
                     {"downurl": "http://x/y", "method": "rpm"},
                     {"downurl": "http://x/y", "md5": "abc"}):
            self.assertEqual(h.call(self, "UPGRADE", side="remote", **args).payload["Status"],
                             "1", args)
        self.assertEqual(h.call(self, "UPGRADE", side="local", downurl="ftp://x/y")
                         .payload["Status"], "1")

    def test_field_arguments(self):
        """The field's numeric method/mode: 1/0 is firmware; the other modes, method 0
        (a web pop-up) and unknown values are Status 1 with the field's reasons."""
        self.assertEqual(upgrade_kind("1", "0"), "firmware")
        self.assertEqual(upgrade_kind(1, 0), "firmware")
        self.assertEqual(upgrade_kind("", "0"), "firmware")
        self.assertEqual(upgrade_kind("ipk", None), "ipk")
        self.assertEqual(upgrade_kind(None, None), "firmware")
        h = Harness(self, providers=[Upgrade(FakeInstaller())])
        for method, mode, reason in (
                ("1", "1", "Mode not support: mode 1 (OSGi framework)"),
                ("1", "6", "Mode not support: mode 6 (gateway libraries)"),
                ("1", "9", "Mode not support: mode 9"), ("1", "", "Mode not support"),
                ("0", "0", "method 0 (recommend) asks the user in a web pop-up and this "
                           "gateway has no web pop-up"),
                ("2", "0", "Method not support"), ("ipk", "0", "disagree"),
                ("", "5", "Mode not support: mode 5 (mobile manager)"),
                (["1"], "0", "must be strings"), (True, "0", "must be strings")):
            reply = h.call(self, "UPGRADE", side="remote", downurl="http://x/y",
                           method=method, mode=mode).payload
            self.assertEqual(reply["Status"], "1", (method, mode))
            self.assertIn(reason, reply["FailReason"], (method, mode))
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_status_idle(self):
        """mode status before any upgrade: State Idle."""
        h = Harness(self, providers=[Upgrade(FakeInstaller())])
        self.assertEqual(h.call(self, "UPGRADE", side="remote", mode="status").payload["State"],
                         "Idle")


class DownloadTests(TestCase):
    """UPGRADE against a twisted.web server on 127.0.0.1."""

    timeout = 20

    def setUp(self):
        root = resource.Resource()
        root.putChild(b"image.bin", _Static(IMAGE))
        root.putChild(b"big.bin", _Static(b"z" * 300000))
        root.putChild(b"huge.bin", _Huge())
        self.port = reactor.listenTCP(0, server.Site(root), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.state_dir = os.path.join(self.tmp, "state")
        self.clock = Clock()
        self.installer = FakeInstaller()
        store = Store(os.path.join(self.tmp, "cubegw"), builtin_schema())
        context = CapabilityContext(
            store, GatewayConfig(accounts=Accounts("u", "t"), state_dir=self.state_dir,
                                 upgrade_require_signature=False),  # signed: test_upgrade_signed
            IDENTITY, TempDirBackend(self.tmp, self.clock), reactor)
        self.provider = Upgrade(self.installer, max_size=200000)
        self.dispatcher = Dispatcher([self.provider], store, context, reactor)

    def call(self, **args):
        parameter = {"CmdType": "UPGRADE", "SequenceId": SEQ}
        parameter.update(args)
        return self.dispatcher.dispatch("remote", parameter).addCallback(lambda o: o.payload)

    @defer.inlineCallbacks
    def wait(self, *states):
        for _ in range(200):
            if self.provider.state["State"] in states:
                return
            yield deferLater(reactor, 0.02, lambda: None)
        self.fail(f"state still {self.provider.state}")

    @defer.inlineCallbacks
    def test_field_force_firmware(self):
        """The field's method 1 (force) mode 0 (firmware) downloads and installs the
        image as firmware."""
        reply = yield self.call(downurl=self.base + "/image.bin", method="1", mode="0")
        self.assertEqual((reply["Status"], reply["State"]), ("0", "Downloading"), reply)
        yield self.wait("Done", "Failed")
        self.assertEqual(self.installer.installed, [("firmware", "upgrade.bin", IMAGE)])

    @defer.inlineCallbacks
    def test_download_verify_install(self):
        """Status 0 at once; downloaded to the state dir, sha256 checked, installed."""
        reply = yield self.call(downurl=self.base + "/image.bin",
                                sha256=hashlib.sha256(IMAGE).hexdigest(),
                                md5=hashlib.md5(IMAGE).hexdigest().upper())
        self.assertEqual((reply["Status"], reply["State"]), ("0", "Downloading"), reply)
        busy = yield self.call(downurl=self.base + "/image.bin")
        self.assertEqual(busy["FailReason"], "busy")
        yield self.wait("Installing", "Failed")
        self.assertEqual(self.provider.state["State"], "Installing")
        self.assertEqual(self.installer.installed, [])  # INSTALL_DELAY (2 s) later
        yield self.wait("Done", "Failed")
        self.assertEqual(self.installer.installed, [("firmware", "upgrade.bin", IMAGE)])
        status = yield self.call(mode="status")
        self.assertEqual((status["State"], status["Bytes"], status["Total"]),
                         ("Done", str(len(IMAGE)), str(len(IMAGE))))

    @defer.inlineCallbacks
    def test_checksum_mismatch(self):
        """A wrong md5: Failed "md5 mismatch", nothing installed, no file left."""
        yield self.call(downurl=self.base + "/image.bin", md5="0" * 32)
        yield self.wait("Failed", "Done")
        self.assertEqual(self.provider.state["Reason"], "md5 mismatch")
        self.assertEqual(self.installer.installed, [])
        self.assertEqual(os.listdir(self.state_dir), [])

    @defer.inlineCallbacks
    def test_too_large(self):
        """An image over the size cap fails, nothing kept."""
        yield self.call(downurl=self.base + "/big.bin")
        yield self.wait("Failed", "Done")
        self.assertIn("too large", self.provider.state["Reason"])
        self.assertEqual(os.listdir(self.state_dir), [])

    def assertNoClientLeft(self):
        """The download's connection is closed by the time the call has failed (the body
        of a refused image is not read to the end)."""
        self.assertEqual([s for s in reactor.getReaders() + reactor.getWriters()
                          if isinstance(s, tcp.Client)], [])

    @defer.inlineCallbacks
    def test_too_large_not_downloaded(self):
        """An image announced too large is refused without reading its body: the
        connection is closed by the time the call has failed."""
        yield self.call(downurl=self.base + "/huge.bin")
        yield self.wait("Failed", "Done")
        self.assertIn("too large (104857600 bytes", self.provider.state["Reason"])
        self.assertNoClientLeft()

    @defer.inlineCallbacks
    def test_http_error(self):
        """A 404 fails with its status."""
        yield self.call(downurl=self.base + "/none.bin")
        yield self.wait("Failed", "Done")
        self.assertEqual(self.provider.state["Reason"], "HTTP status 404")


class WebPopupTests(SynchronousTestCase):
    """SET_WD_INFO: this gateway has no web pop-up, and says so."""

    def test_no_web_popup(self):
        """SET_WD_INFO is Status 1 "this gateway has no web pop-up", good or bad values,
        and the store is left as it was (the web_popup section still loads)."""
        h = Harness(self, providers=[WebPopup()])
        for args in ({"enable": "1", "W": "300", "H": "200", "Place": "center",
                      "WDurl": "http://portal.example/ad", "time": "30"},
                     {"W": "-1"}, {"WDurl": "javascript:alert(1)"}, {}):
            reply = h.call(self, "SET_WD_INFO", **args).payload
            self.assertEqual((reply["Status"], reply["FailReason"]),
                             ("1", "this gateway has no web pop-up: SET_WD_INFO is not "
                                   "applied"), args)
        self.assertEqual((h.store.get("web_popup", "width"), h.store.get("web_popup",
                                                                          "enable")),
                         (0, False))
