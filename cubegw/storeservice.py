"""Opening the management store is a start-up step, not a side effect of building.

``StoreService`` is the first child of the daemon's service tree.  When twistd starts
it (``privilegedStartService``, before the reactor runs, so a failure stops the start
with its reason), it recovers a damaged file (from the backup, else the mirror), loads it, hooks the mirror (if configured)
and the backup onto every later write, writes the command-line overrides, and keeps the
backup.  Every other service gets the ``Store`` object at build time and reads it only
once started.
"""

import os

from twisted.application import service

from cubegw.config import STORE_FILE
from cubegw.logs import Logger
from cubegw.store import Store, StoreError, builtin_schema
from cubegw.store.recovery import recover_file, save_backup


class StoreService(service.Service):
    """The store of ``config.confdir``; ``overrides`` are ``{(section, name): value}``
    already checked by the options (``--mgt-url``, ``--port``)."""

    log = Logger()

    def __init__(self, config, config_path, overrides=None):
        self.config = config
        self.config_path = config_path
        self.overrides = dict(overrides or {})
        self.path = os.path.join(config.confdir, STORE_FILE)
        self.store = Store(self.path, builtin_schema(), load=False)
        self.opened = False

    def privilegedStartService(self):
        super().privilegedStartService()
        self.open()

    def startService(self):
        super().startService()
        self.open()             # started without twistd (tests, embedded use)

    def open(self):
        if self.opened:
            return
        store, warn = self.store, self.log.warn
        try:
            os.makedirs(self.config.confdir, exist_ok=True)
            sync = self._mirror_sync()
            recover_file(self.path, log=lambda msg: warn("store recovery: {msg}", msg=msg),
                         schema=store.schema, mirror=sync and sync.mirror)
            store.reload()
            store.on_contents = self._after_write(sync)
            if sync is not None:
                sync.sync_file(self.path)
            if self.overrides:
                store.update(self.overrides)
        except (StoreError, OSError) as e:
            raise StoreError(f"store: {e}") from e
        self._backup()
        for problem in store.problems():
            warn("store: {problem}", problem=problem)
        self.opened = True

    def _backup(self):
        """Keep ``<store>.bak``, the last good file a corrupt store is recovered from."""
        try:
            save_backup(self.store)
        except StoreError as e:
            self.log.warn("store backup: {error}", error=e)

    def _after_write(self, sync):
        """After every write or reload of the store: the mirror (if any), then the backup."""
        def after(package):
            if sync is not None:
                sync(package)
            self._backup()
        return after

    def _mirror_sync(self):
        """Keeps X_CT-COM_Mgt and the registration mirrored outside the overlay, if configured.

        The restore side runs at first boot after a factory reset (openwrt uci-defaults).
        """
        config = self.config
        if not config.persist_dir and not config.fw_env:
            return None                 # the default: the mirror's code is not loaded
        from cubegw.store import mirror as store_mirror
        mirror = store_mirror.mirror_from_config(
            {"persist_dir": config.persist_dir, "fw_env": config.fw_env})
        if mirror is None:
            return None
        pending = os.path.join(os.path.dirname(os.path.abspath(self.config_path)),
                               "restore-pending")
        return store_mirror.MirrorSync(
            mirror, pending=pending,
            log=lambda msg: self.log.warn("store mirror: {msg}", msg=msg))
