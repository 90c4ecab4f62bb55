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
"""

import contextlib
import os
import sys
from typing import Optional

from cubegw.store import uci
from cubegw.store.mirror_backends import (
    ENV_NAME, MIRROR_FILE, DirectoryMirror, FwEnvMirror, IMirror, _subprocess_run,
)
from cubegw.store.mirror_codec import (
    PERSISTENT_OWNERS, MirrorError, MirrorUnavailable, check_sections, decode_env,
    decode_file, encode_env, encode_file, extract, merge, persistent_section_names,
)
from cubegw.store.mirror_sync import MirrorSync, restore, save

__all__ = [
    "MirrorError", "MirrorUnavailable", "IMirror", "DirectoryMirror", "FwEnvMirror",
    "PERSISTENT_OWNERS", "persistent_section_names", "extract", "merge",
    "check_sections", "encode_file", "decode_file", "encode_env", "decode_env",
    "restore", "save", "MirrorSync", "mirror_from_config", "read_store_keys", "main",
    "MIRROR_FILE", "ENV_NAME",
]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


# -- configuration and command line ------------------------------------------------------


def _scalar(text: str):
    text = text.split(" #", 1)[0].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("", "null", "~"):
        return None
    return text


def read_store_keys(text: str) -> dict:
    """The ``store`` mapping of the daemon's YAML (PyYAML, else a line reader
    good for the router's flat ``store:`` block)."""
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise MirrorError(f"not valid YAML: {e}") from None
        store = raw.get("store") if isinstance(raw, dict) else None
        return store if isinstance(store, dict) else {}
    store, inside = {}, False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = line.split("#", 1)[0].strip() == "store:"
            continue
        if inside and ":" in line:
            key, _, value = line.strip().partition(":")
            store[key.strip()] = _scalar(value)
    return store


def mirror_from_config(store: dict, run=_subprocess_run) -> Optional[IMirror]:
    """The mirror that ``store.persist_dir`` / ``store.fw_env`` configure, or None."""
    persist_dir = store.get("persist_dir")
    fw_env = store.get("fw_env", False)
    if persist_dir not in (None, "") and not isinstance(persist_dir, str):
        raise MirrorError("store.persist_dir: must be a string")
    if not isinstance(fw_env, bool):
        raise MirrorError("store.fw_env: must be true or false")
    if persist_dir and fw_env:
        raise MirrorError("store.persist_dir and store.fw_env: set one, not both")
    if persist_dir:
        return DirectoryMirror(persist_dir)
    if fw_env:
        return FwEnvMirror(run)
    return None


def _parser():
    import argparse  # the command line only: not the daemon's start-up
    parser = argparse.ArgumentParser(
        prog="python3 -m cubegw.store.mirror",
        description="Copy cubegw's mgt and registration sections to or from a mirror "
                    "outside the overlay.")
    parser.add_argument("action", choices=("restore", "save", "show"))
    parser.add_argument("--config", default="/etc/config/cubegw",
                        help="the UCI file (default: /etc/config/cubegw)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--mirror-dir", help="a directory on a persistent partition")
    where.add_argument("--fw-env", action="store_true",
                       help="the bootloader environment (fw_setenv / fw_printenv)")
    where.add_argument("--yaml", help="take store.persist_dir / store.fw_env from this "
                                      "daemon configuration (nothing to do if neither is set)")
    parser.add_argument("--pending", help="restore: a file created when the mirror is "
                                          "not available, removed after a restore")
    return parser


def main(argv=None, run=_subprocess_run, out=None, err=None) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = _parser().parse_args(argv)
    except SystemExit as e:
        return EXIT_USAGE if e.code else EXIT_OK
    prog = "cubegw-mirror"
    try:
        if args.yaml is not None:
            try:
                with open(args.yaml, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise MirrorError(f"{args.yaml}: cannot read: {getattr(e, 'strerror', e)}")
            try:
                mirror = mirror_from_config(read_store_keys(text), run)
            except MirrorError as e:
                raise MirrorError(f"{args.yaml}: {e}") from None
            if mirror is None:
                print(f"{prog}: no mirror configured (store.persist_dir, store.fw_env)",
                      file=out)
                _done_pending(args)
                return EXIT_OK
        elif args.mirror_dir is not None:
            mirror = DirectoryMirror(args.mirror_dir)
        else:
            mirror = FwEnvMirror(run)
        if args.action == "restore":
            changed = restore(args.config, mirror)
            if changed is None:
                print(f"{prog}: no mirror saved in {mirror.describe()}; nothing changed",
                      file=out)
            else:
                print(f"{prog}: {args.config}: "
                      f"{'restored from' if changed else 'already matches'} "
                      f"{mirror.describe()}", file=out)
            _done_pending(args)
        elif args.action == "save":
            save(args.config, mirror)
            print(f"{prog}: saved to {mirror.describe()}", file=out)
        else:
            sections = mirror.load()
            if sections is None:
                print(f"{prog}: no mirror saved in {mirror.describe()}", file=err)
                return EXIT_ERROR
            out.write(uci.serialize(uci.Package(sections)).lstrip("\n"))
        return EXIT_OK
    except MirrorUnavailable as e:
        print(f"{prog}: {e}", file=err)
        if args.action == "restore" and args.pending:
            try:
                with open(args.pending, "a"):
                    pass
                print(f"{prog}: will try again before the daemon starts ({args.pending})",
                      file=err)
            except OSError as e2:
                print(f"{prog}: {args.pending}: {e2.strerror}", file=err)
        return EXIT_UNAVAILABLE
    except MirrorError as e:
        print(f"{prog}: {e}; nothing changed", file=err)
        # a corrupt mirror is not worth waiting for: let the daemon write a good one
        _done_pending(args)
        return EXIT_ERROR


def _done_pending(args) -> None:
    if args.action == "restore" and args.pending:
        try:
            os.unlink(args.pending)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    sys.exit(main())
