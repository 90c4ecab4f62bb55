"""The capability dispatcher on a Clock, over a store and a TempDirBackend in a temp dir."""

import os

from twisted.internet import defer
from twisted.internet.task import Clock

from cubegw.backend import TempDirBackend
from cubegw.capabilities import Capability, Dispatcher, discover_providers
from cubegw.capabilities.runtime import CapabilityRuntime
from cubegw.config import Accounts, GatewayConfig
from cubegw.store import Store, builtin_schema

from tests.helpers import IDENTITY

SEQ = "0A1b2C3d"
USERADMIN = "user-Pass1"
TELECOMADMIN = "telecom-Pass2"
DEV_RND = "00112233445566778899AABBCCDDEEFF"


class Harness:
    """A dispatcher over a store in a temp dir, a TempDirBackend and a Clock."""

    def __init__(self, testcase, providers=None, backend=None, store_path=None,
                 dev_rnd=DEV_RND, registered=False, **kwargs):
        self.dir = testcase.mktemp()
        os.makedirs(self.dir)
        self.clock = Clock()
        self.store = Store(store_path or os.path.join(self.dir, "cubegw"), builtin_schema())
        self.backend = backend if backend is not None else TempDirBackend(self.dir, self.clock)
        self.dev_rnd = dev_rnd
        self.registered = registered
        self.config = GatewayConfig(accounts=Accounts(USERADMIN, TELECOMADMIN))
        self.providers = discover_providers() if providers is None else providers
        self.runtime = CapabilityRuntime(
            self.providers, store=self.store, config=self.config, identity=IDENTITY,
            backend=self.backend, clock=self.clock, dev_rnd=lambda: self.dev_rnd,
            registered=lambda: self.registered)
        self.context = self.runtime.context
        self.dispatcher = Dispatcher(self.providers, self.store, self.context, self.clock,
                                     **kwargs)

    def call(self, testcase, cmd_type, side="local", **args):
        """Dispatch and return the Outcome, which must already be there."""
        parameter = {"CmdType": cmd_type, "SequenceId": SEQ}
        parameter.update(args)
        return testcase.successResultOf(self.dispatcher.dispatch(side, parameter))


class Pending(Capability):
    """Returns Deferreds it never fires; records cancellations."""

    cmd_types = ("SLOW",)

    def __init__(self):
        self.cancelled = 0
        self.pending = []

    def call(self, cmd_type, payload, context):
        d = defer.Deferred(lambda d: setattr(self, "cancelled", self.cancelled + 1))
        self.pending.append(d)
        return d
