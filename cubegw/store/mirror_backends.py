"""Where a mirror is kept: the IMirror interface and its two providers.

``DirectoryMirror`` keeps a file on a persistent partition, ``FwEnvMirror`` a
bootloader environment variable; both read and write through
``cubegw.store.mirror_codec``.  Part of ``cubegw.store.mirror``, which
re-exports it.
"""

import os
import subprocess
from typing import Callable, Optional, Sequence, Tuple

from zope.interface import Interface, implementer

from cubegw.store import uci
from cubegw.store.mirror_codec import (
    MirrorError, MirrorUnavailable, decode_env, decode_file, encode_env, encode_file,
)
from cubegw.store.schema import DEFAULT_SCHEMA
from cubegw.store.store import FileSystem

#: Name of the file a DirectoryMirror keeps in its directory.
MIRROR_FILE = "mgt"
#: The bootloader environment variable of a FwEnvMirror.
ENV_NAME = "cubegw_mgt"


class IMirror(Interface):
    """Where the persistent sections are copied."""

    def load(schema=DEFAULT_SCHEMA):
        """The saved sections, or None when none were ever saved.

        Raises MirrorUnavailable when the location is not there and MirrorError
        when what is there is corrupt.
        """

    def save(sections):
        """Replace the copy as a whole."""

    def describe():
        """Where the copy is, for messages."""


@implementer(IMirror)
class DirectoryMirror:
    """``<path>/mgt`` on a persistent partition.

    The directory must exist (it is never created: a missing one is a
    partition that is not mounted, and writing there would land in the
    overlay or in RAM).
    """

    def __init__(self, path, fs: Optional[FileSystem] = None):
        self.path = os.fspath(path)
        self.file = os.path.join(self.path, MIRROR_FILE)
        self._fs = fs if fs is not None else FileSystem()

    def describe(self):
        return self.file

    def _check_directory(self):
        if not os.path.isdir(self.path):
            raise MirrorUnavailable(f"{self.path}: no such directory (not mounted?)")

    def load(self, schema=DEFAULT_SCHEMA):
        self._check_directory()
        try:
            data = self._fs.read(self.file)
        except OSError as e:
            raise MirrorError(f"{self.file}: cannot read: {e.strerror or e}") from None
        if data is None:
            return None
        return decode_file(data, schema, self.file)

    def save(self, sections):
        self._check_directory()
        try:
            self._fs.write_atomic(self.file, encode_file(sections))
        except (OSError, uci.UciError) as e:
            raise MirrorError(f"{self.file}: cannot write: {getattr(e, 'strerror', None) or e}") \
                from None


def _subprocess_run(argv: Sequence[str]) -> Tuple[int, str, str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


@implementer(IMirror)
class FwEnvMirror:
    """The bootloader environment variable ``cubegw_mgt`` (uboot-envtools).

    ``run(argv) -> (returncode, stdout, stderr)`` runs a command (injectable
    for tests).  fw_setenv rewrites the environment in one go; with a
    redundant environment (two copies, as most boards configure in
    /etc/fw_env.config) an interrupted write leaves the old copy valid.
    """

    def __init__(self, run: Callable[[Sequence[str]], Tuple[int, str, str]] = _subprocess_run,
                 name: str = ENV_NAME, printenv: str = "fw_printenv",
                 setenv: str = "fw_setenv"):
        self.run = run
        self.name = name
        self.printenv = printenv
        self.setenv = setenv

    def describe(self):
        return f"bootloader environment {self.name}"

    def _run(self, argv):
        try:
            return self.run(argv)
        except (OSError, subprocess.SubprocessError) as e:
            raise MirrorUnavailable(f"{argv[0]}: {getattr(e, 'strerror', None) or e}") from None

    def load(self, schema=DEFAULT_SCHEMA):
        code, out, err = self._run([self.printenv, "-n", self.name])
        if code != 0:
            if "not defined" in err:
                return None
            raise MirrorUnavailable(
                f"{self.printenv} -n {self.name}: exit {code}: {err.strip()[:200]}")
        return decode_env(out, schema, self.describe())

    def save(self, sections):
        try:
            value = encode_env(sections)
        except (TypeError, ValueError) as e:
            raise MirrorError(f"{self.describe()}: cannot encode: {e}") from None
        code, _, err = self._run([self.setenv, self.name, value])
        if code != 0:
            raise MirrorError(f"{self.setenv} {self.name}: exit {code}: {err.strip()[:200]}")
