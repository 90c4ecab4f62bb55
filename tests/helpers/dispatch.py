"""The capability dispatcher on a Clock, over a store and a TempDirBackend in a temp dir."""

import os

from twisted.internet.task import Clock

from cubegw.backend import TempDirBackend
from cubegw.capabilities import CapabilityContext, Dispatcher, discover_providers
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
        self.context = CapabilityContext(
            self.store, self.config, IDENTITY, self.backend, self.clock,
            dev_rnd=lambda: self.dev_rnd, registered=lambda: self.registered)
        self.providers = discover_providers() if providers is None else providers
        self.dispatcher = Dispatcher(self.providers, self.store, self.context, self.clock,
                                     **kwargs)

    def call(self, testcase, cmd_type, side="local", **args):
        """Dispatch and return the Outcome, which must already be there."""
        parameter = {"CmdType": cmd_type, "SequenceId": SEQ}
        parameter.update(args)
        return testcase.successResultOf(self.dispatcher.dispatch(side, parameter))
