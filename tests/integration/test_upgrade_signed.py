"""Issue 18 point 5 on loopback: UPGRADE installs only a firmware image signed by a key in
upgrade.keys_dir, and a stalled download ends by its idle deadline leaving nothing."""

import os
import time

from twisted.internet import defer, protocol, reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web import resource, server
from zope.interface import implementer

from cubegw.backend import TempDirBackend
from cubegw.capabilities import CapabilityContext, Dispatcher
from cubegw.capabilities.upgrade import IUpgradeInstaller, Upgrade
from cubegw.config import Accounts, GatewayConfig
from cubegw.store import Store, builtin_schema

from tests.helpers import IDENTITY
from tests.helpers.dispatch import SEQ
from tests.helpers.usign import TestKey

IMAGE = os.urandom(4096) * 16
IDLE = 0.5                    # s: the download's idle deadline in these tests


@implementer(IUpgradeInstaller)
class RecordingInstaller:
    """Stands in for sysupgrade: records what it was given."""

    def __init__(self):
        self.installed = []

    def unavailable(self, kind, backend):
        return None

    def install(self, kind, path, backend):
        self.installed.append(kind)
        return defer.succeed(None)


class _Bytes(resource.Resource):
    isLeaf = True

    def __init__(self, data):
        super().__init__()
        self.data = data

    def render_GET(self, request):
        return self.data


class _Stall(resource.Resource):
    """Sends the headers and 1,000 bytes of a 100,000-byte body, then nothing."""
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-length", b"100000")
        request.write(b"x" * 1000)
        return server.NOT_DONE_YET


class SignedUpgradeTests(TestCase):
    timeout = 30

    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        self.keys = os.path.join(self.tmp, "keys")
        key = TestKey(os.urandom(32))
        key.write_public(self.keys)
        rogue = TestKey(os.urandom(32), number=key.number)
        root = resource.Resource()
        root.putChild(b"signed.bin", _Bytes(key.sign_image(IMAGE)))
        root.putChild(b"unsigned.bin", _Bytes(IMAGE))
        root.putChild(b"rogue.bin", _Bytes(rogue.sign_image(IMAGE)))
        root.putChild(b"stall.bin", _Stall())
        site = server.Site(root)
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        silent = reactor.listenTCP(0, protocol.ServerFactory.forProtocol(protocol.Protocol),
                                   interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        self.silent = f"http://127.0.0.1:{silent.getHost().port}/x.bin"
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.state_dir = os.path.join(self.tmp, "state")
        self.installer = RecordingInstaller()
        store = Store(os.path.join(self.tmp, "cubegw"), builtin_schema())
        context = CapabilityContext(
            store, GatewayConfig(accounts=Accounts("u", "t"), state_dir=self.state_dir,
                                 upgrade_keys_dir=self.keys),
            IDENTITY, TempDirBackend(self.tmp, reactor), reactor)
        self.provider = Upgrade(self.installer, connect_timeout=1, idle_timeout=IDLE)
        self.dispatcher = Dispatcher([self.provider], store, context, reactor)


    @defer.inlineCallbacks
    def upgrade(self, url):
        """UPGRADE ``url``; the final state and the seconds it took."""
        start = time.monotonic()
        outcome = yield self.dispatcher.dispatch("remote", {
            "CmdType": "UPGRADE", "SequenceId": SEQ, "downurl": url})
        self.assertEqual(outcome.payload["Status"], "0", outcome.payload)
        for _ in range(500):
            if self.provider.state["State"] in ("Done", "Failed"):
                break
            yield deferLater(reactor, 0.02, lambda: None)
        return dict(self.provider.state), time.monotonic() - start

    @defer.inlineCallbacks
    def test_signed_image_installed(self):
        """An image signed by a key in keys_dir is handed to sysupgrade."""
        state, _ = yield self.upgrade(self.base + "/signed.bin")
        self.assertEqual(state["State"], "Done", state)
        self.assertEqual(self.installer.installed, ["firmware"])

    @defer.inlineCallbacks
    def test_unsigned_and_wrongly_signed_refused(self):
        """Unsigned, or signed by another key under a trusted key's number: Failed before
        sysupgrade, nothing left in state_dir."""
        for name in ("unsigned.bin", "rogue.bin"):
            state, _ = yield self.upgrade(f"{self.base}/{name}")
            self.assertEqual(state["State"], "Failed", name)
            self.assertIn("signature refused", state["Reason"])
            self.assertEqual(os.listdir(self.state_dir), [], name)
        self.assertEqual(self.installer.installed, [])

    @defer.inlineCallbacks
    def test_stalled_download_ends_by_its_deadline(self):
        """A server that stops sending mid-body, or never answers: Failed within the idle
        deadline (+ slack), nothing left in state_dir."""
        for url, why in ((self.base + "/stall.bin", "stalled"), (self.silent, "no answer")):
            state, took = yield self.upgrade(url)
            self.assertEqual(state["State"], "Failed", state)
            self.assertIn(why, state["Reason"])
            self.assertLess(took, IDLE + 1.5)
            self.assertEqual(os.listdir(self.state_dir), [])
        self.assertEqual(self.installer.installed, [])
