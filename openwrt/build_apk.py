"""Build cubegw's apk-tools 3 package (OpenWrt 25.12 and later) with the real ``apk mkpkg``.

    python openwrt/build_apk.py --out dist/     ->  dist/cubegw-<version>-r<release>.apk

The payload is build_ipk.py's (the same files, modes and paths), plus what OpenWrt's own
package build (include/package-pack.mk) adds for apk: ``/lib/apk/packages/cubegw.list``
(every file), ``cubegw.conffiles`` and ``cubegw.conffiles_static`` (each conffile with its
sha256; sysupgrade reads them to keep changed settings).  The scripts are the ipk's
postinst and prerm under apk's names, with what they expect from opkg exported:

* ``post-install``: postinst (``root`` and ``pkgname`` exported as OpenWrt does);
* ``post-upgrade``: the same with ``PKG_UPGRADE=1`` (apk runs no pre-deinstall on an
  upgrade: the running service is restarted, its links stay);
* ``pre-deinstall``: prerm.

apk passes only PATH to scripts; an image build runs it with ``IPKG_INSTROOT`` set and
``--preserve-env``, as opkg's offline root does, so the same two branches apply.

The ``apk`` binary is apk-tools 3: ``--apk PATH``, else ``$OPENWRT_TOOLS/bin/apk``
(default /opt/openwrt-tools, built by ../shared/tools/openwrt-tools.sh), else ``apk`` on
PATH.  Entries carry one time (SOURCE_DATE_EPOCH, else the last git commit's) and belong
to root (the build runs under fakeroot when not root), so two builds are byte-identical.
"""

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_spec = importlib.util.spec_from_file_location("build_ipk", os.path.join(HERE, "build_ipk.py"))
build_ipk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_ipk)

PACKAGE = build_ipk.PACKAGE
#: The package release (PKG_RELEASE of openwrt/Makefile): apk versions are <version>-r<n>.
RELEASE = 1
#: apk's dependency syntax for build_ipk.DEPENDS ("name (>= v)" -> "name>=v").
DEPENDS = [d.replace(" (", "").replace(" ", "").rstrip(")") for d in build_ipk.DEPENDS]
DEFAULT_TOOLS = "/opt/openwrt-tools"
PACKAGES_DIR = "lib/apk/packages"


class ApkMissing(SystemExit):
    """No apk-tools 3 binary where it was looked for."""


def apk_version(root=ROOT):
    """``<version>-r<release>``: cubegw.__version__ with the release, as apk wants it."""
    return f"{build_ipk.version(root)}-r{RELEASE}"


def apk_name(root=ROOT):
    return f"{PACKAGE}-{apk_version(root)}.apk"


def find_apk(explicit=None, environ=None):
    """The apk-tools 3 binary's path; ApkMissing (exit status 1, one line saying where) if none."""
    environ = os.environ if environ is None else environ
    tools = environ.get("OPENWRT_TOOLS") or DEFAULT_TOOLS
    if explicit:
        candidates = [explicit]
    else:
        candidates = [os.path.join(tools, "bin", "apk")]
        on_path = shutil.which("apk", path=environ.get("PATH", os.defpath))
        if on_path:
            candidates.append(on_path)
    for path in candidates:
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            continue
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if out.startswith("apk-tools 3."):
            return path
    where = candidates[0] if explicit else f"{tools}/bin/apk (OPENWRT_TOOLS) or on PATH"
    raise ApkMissing(
        f"build_apk: no apk-tools 3 at {where}: build it with "
        f"../shared/tools/openwrt-tools.sh SRC {tools}, or set OPENWRT_TOOLS")


def _body(root, relpath):
    """A maintainer script without its ``#!`` line."""
    with open(os.path.join(root, relpath), encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    if lines and lines[0].startswith("#!"):
        lines = lines[1:]
    return "".join(lines)


def scripts(root=ROOT):
    """{apk script type: text}: the ipk's postinst/prerm with what they expect exported."""
    head = "#!/bin/sh\nexport root=\"${IPKG_INSTROOT}\"\nexport pkgname=\"%s\"\n" % PACKAGE
    postinst = _body(root, "openwrt/control/postinst")
    return {
        "post-install": head + postinst,
        "post-upgrade": head + "export PKG_UPGRADE=1\n" + postinst,
        "pre-deinstall": head + _body(root, "openwrt/control/prerm"),
    }


def package_files(files):
    """{path: (bytes, mode)}: /lib/apk/packages/cubegw.{list,conffiles,conffiles_static}."""
    listed = "".join(f"/{p}\n" for p in sorted(files))
    conffiles = "".join(f"{p}\n" for p in build_ipk.CONFFILES)
    static = "".join(f"{p} {hashlib.sha256(files[p[1:]][0]).hexdigest()}\n"
                     for p in build_ipk.CONFFILES)
    return {
        f"{PACKAGES_DIR}/{PACKAGE}.list": (listed.encode(), 0o644),
        f"{PACKAGES_DIR}/{PACKAGE}.conffiles": (conffiles.encode(), 0o644),
        f"{PACKAGES_DIR}/{PACKAGE}.conffiles_static": (static.encode(), 0o644),
    }


def stage(files, directory, mtime):
    """Write ``files`` ({relative path: (bytes, mode)}) under ``directory``, every entry
    (files and directories) at ``mtime``."""
    for path, (content, mode) in files.items():
        dest = os.path.join(directory, path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(content)
        os.chmod(dest, mode)
    for dirpath, dirnames, filenames in os.walk(directory, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (mtime, mtime), follow_symlinks=False)
        os.chmod(dirpath, 0o755)
        os.utime(dirpath, (mtime, mtime))


def mkpkg_argv(apk, root, files_dir, scripts_dir, output):
    """The ``apk mkpkg`` command line (as OpenWrt's package-pack.mk writes it)."""
    meta = build_ipk._metadata(root)
    argv = [apk, "mkpkg",
            "--info", f"name:{PACKAGE}",
            "--info", f"version:{apk_version(root)}",
            "--info", f"description:{build_ipk.DESCRIPTION[0]}",
            "--info", "arch:noarch",
            "--info", f"license:{meta.get('license', 'MIT')}",
            "--info", f"origin:{PACKAGE}",
            "--info", f"maintainer:{build_ipk.MAINTAINER}",
            "--info", "depends:" + " ".join(DEPENDS)]
    for kind in ("post-install", "post-upgrade", "pre-deinstall"):
        argv += ["--script", f"{kind}:{os.path.join(scripts_dir, kind)}"]
    return argv + ["--files", files_dir, "--output", output]


def build(out_dir, root=ROOT, mtime=None, apk=None, environ=None):
    """Write ``<out_dir>/cubegw-<version>-r<release>.apk``; return its path."""
    environ = dict(os.environ if environ is None else environ)
    apk = find_apk(apk, environ)
    if mtime is None:
        mtime = build_ipk.build_time(root, environ)
    files = build_ipk.payload(root)
    files.update(package_files(files))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(os.path.abspath(out_dir), apk_name(root))
    with tempfile.TemporaryDirectory(prefix="cubegw-apk-") as tmp:
        files_dir = os.path.join(tmp, "files")
        scripts_dir = os.path.join(tmp, "scripts")
        os.makedirs(scripts_dir)
        stage(files, files_dir, mtime)
        for kind, text in scripts(root).items():
            with open(os.path.join(scripts_dir, kind), "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(os.path.join(scripts_dir, kind), 0o755)
        argv = mkpkg_argv(apk, root, files_dir, scripts_dir, path + ".tmp")
        if os.geteuid() != 0:
            fakeroot = shutil.which("fakeroot", path=environ.get("PATH", os.defpath))
            if fakeroot is None:
                raise SystemExit("build_apk: not root and no fakeroot: the files would not "
                                 "belong to root in the package")
            argv = [fakeroot, "--"] + argv
        environ["SOURCE_DATE_EPOCH"] = str(mtime)
        done = subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise SystemExit(f"build_apk: apk mkpkg exited {done.returncode}: "
                             + (done.stderr or done.stdout).strip())
    os.replace(path + ".tmp", path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="build_apk.py",
        description="Build cubegw-<version>-r<release>.apk for OpenWrt (apk-tools 3).")
    parser.add_argument("--out", default="dist", help="output directory (default: dist)")
    parser.add_argument("--apk", help="the apk-tools 3 binary (default: $OPENWRT_TOOLS/bin/apk)")
    args = parser.parse_args(argv)
    print(build(args.out, apk=args.apk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
