"""The command line, ``python3 -m cubegw.store.mirror restore|save|show``
(see ``cubegw.store.mirror`` for its usage and exit statuses).

argparse is imported by ``_parser`` only: the daemon imports this module
(through ``cubegw.store.mirror``) and never pays for it at start-up.
"""

import contextlib
import os
import sys

from cubegw.store import uci
from cubegw.store.mirror_backends import DirectoryMirror, FwEnvMirror, _subprocess_run
from cubegw.store.mirror_codec import MirrorError, MirrorUnavailable
from cubegw.store.mirror_config import mirror_from_config, read_store_keys
from cubegw.store.mirror_sync import restore, save

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


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
