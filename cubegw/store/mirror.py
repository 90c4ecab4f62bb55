"""A copy of X_CT-COM_Mgt and the stored operation platform outside the overlay.

protocol.md section 10 wants the ``mgt`` section (X_CT-COM_Mgt) and the
``registration`` section (the stored operation platform) kept across every
factory reset.  OpenWrt's ``firstboot`` (and ``sysupgrade -n``) wipe the
overlay, so ``/etc/config/cubegw`` goes back to the ROM default; a mirror kept
somewhere the reset does not touch brings the two sections back:

- ``DirectoryMirror(path)``: the file ``<path>/mgt`` on a persistent partition
  (a UBI volume, a data partition mounted at e.g. ``/mnt/persist/cubegw``), in
  UCI syntax, with a checksum line, written atomically;
- ``FwEnvMirror(run)``: the bootloader environment variable ``cubegw_mgt``,
  set with ``fw_setenv`` and read with ``fw_printenv -n``.

The daemon saves the mirror after each change (``MirrorSync`` as the Store's
``on_contents`` callback); ``/etc/uci-defaults/90-cubegw`` restores it at the
first boot after a reset or upgrade::

    python3 -m cubegw.store.mirror restore --config /etc/config/cubegw \\
        --yaml /etc/cubegw/cubegw.yaml [--pending FILE]
    python3 -m cubegw.store.mirror save --config /etc/config/cubegw --mirror-dir DIR
    python3 -m cubegw.store.mirror show --fw-env

Exit status: 0 done (also: no mirror configured, no mirror saved yet: nothing
changed), 1 error (a corrupt mirror or config: nothing changed), 2 usage,
3 the mirror location is not available (not mounted, no fw_printenv): with
``--pending FILE`` the file is created so that the init script tries again
before the daemon starts, and ``MirrorSync`` does not save while it exists
(saving then would overwrite the good mirror with the ROM defaults).

Standard library only (PyYAML used when present): it runs from the
uci-defaults script, without Twisted.

The code lives in sibling modules, all re-exported here (import from this
module: its names are the API):

- ``mirror_codec``: the errors, which sections are mirrored, ``merge``,
  ``check_sections`` and the file and environment encodings (no I/O);
- ``mirror_backends``: ``IMirror``, ``DirectoryMirror``, ``FwEnvMirror``;
- ``mirror_sync``: ``restore``, ``save`` and ``MirrorSync``;
- ``mirror_config``: ``read_store_keys`` and ``mirror_from_config``;
- ``mirror_cli``: ``main``, the command line (argparse imported only when
  it runs, never at the daemon's start-up).
"""

import sys

from cubegw.store.mirror_backends import (
    ENV_NAME, MIRROR_FILE, DirectoryMirror, FwEnvMirror, IMirror,
)
from cubegw.store.mirror_cli import (
    EXIT_ERROR, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, main,
)
from cubegw.store.mirror_codec import (
    PERSISTENT_OWNERS, MirrorError, MirrorUnavailable, check_sections, decode_env,
    decode_file, encode_env, encode_file, extract, merge, persistent_section_names,
)
from cubegw.store.mirror_config import mirror_from_config, read_store_keys
from cubegw.store.mirror_sync import MirrorSync, restore, save

__all__ = [
    "MirrorError", "MirrorUnavailable", "IMirror", "DirectoryMirror", "FwEnvMirror",
    "PERSISTENT_OWNERS", "persistent_section_names", "extract", "merge",
    "check_sections", "encode_file", "decode_file", "encode_env", "decode_env",
    "restore", "save", "MirrorSync", "mirror_from_config", "read_store_keys", "main",
    "MIRROR_FILE", "ENV_NAME", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_UNAVAILABLE",
]


if __name__ == "__main__":
    sys.exit(main())
