"""Build cubegw's architecture-independent OpenWrt package without an OpenWrt SDK.

    python openwrt/build_ipk.py --out dist/     ->  dist/cubegw_<version>_all.ipk

The ipk is what OpenWrt's ipkg-build makes: a gzip'd tar holding ``./debian-binary``,
``./control.tar.gz`` and ``./data.tar.gz``, in that order.  Every member is owned by
root (uid/gid 0), entries are sorted and carry one fixed time (SOURCE_DATE_EPOCH, else
the time of the last git commit), so two builds of one tree are byte-identical.

The payload (see ``payload``) is the ``cubegw`` package and its twistd plugin under
``/usr/lib/cubegw`` (plain .py, independent of the Python version), the procd init
script, the UCI defaults, the router's YAML configuration, a uci-defaults script, the
sysupgrade keep list and ``cubegw-ctl``.  openwrt/Makefile installs the same paths in an
OpenWrt firmware build.  Standard library only.
"""

import argparse
import configparser
import gzip
import io
import os
import re
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PACKAGE = "cubegw"
#: Names in OpenWrt's packages feed (python3-twisted brings python3-light); Twisted 22.4
#: is the oldest cubegw runs on (OpenWrt 21.02 ships 22.2).
DEPENDS = ["python3-twisted (>= 22.4.0)", "python3-psutil", "python3-yaml",
           "python3-zope-interface"]
MAINTAINER = "cubegw developers <cubegw@localhost>"
SECTION = "net"
#: The files opkg keeps when they were changed (and sysupgrade keeps, see keep.d).
CONFFILES = ["/etc/config/cubegw", "/etc/cubegw/cubegw.yaml"]
#: Where the Python code goes: on PYTHONPATH of the daemon and of cubegw-ctl.
LIBDIR = "usr/lib/cubegw"
#: Parts of the cubegw package that a router does not run: the reference platform
#: (twistd cubeplat), the demo and the phone-app client (cubegw-app).  Names in the
#: package's top directory.
EXCLUDED = {"platform", "demo.py", "app.py"}
DESCRIPTION = [
    "Smart home gateway agent (China Telecom G2/G4 interfaces), on Twisted",
    "twistd cubegw: registers with the distribution and operation platforms, keeps",
    "the heartbeat and answers reverse triggers; settings in /etc/config/cubegw.",
]

_FILE, _EXEC, _DIR = 0o644, 0o755, 0o755


def version(root=ROOT):
    """The one version: ``__version__`` of cubegw/__init__.py (setup.cfg reads it too)."""
    with open(os.path.join(root, "cubegw", "__init__.py"), encoding="utf-8") as f:
        found = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.M)
    if found is None:
        raise SystemExit("cubegw/__init__.py has no __version__")
    return found.group(1)


def _metadata(root):
    cfg = configparser.ConfigParser()
    with open(os.path.join(root, "setup.cfg"), encoding="utf-8") as f:
        cfg.read_file(f)
    return cfg["metadata"]


def build_time(root=ROOT, environ=None):
    """The time every entry carries: SOURCE_DATE_EPOCH, else the last git commit's."""
    if environ is None:
        environ = os.environ
    if environ.get("SOURCE_DATE_EPOCH"):
        return int(environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=root,
                             capture_output=True, text=True, check=True).stdout.strip()
        return int(out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        raise SystemExit("build_ipk: not a git checkout: set SOURCE_DATE_EPOCH")


def _read(root, relpath):
    with open(os.path.join(root, relpath), "rb") as f:
        return f.read()


def _package_sources(root):
    """(path in the tree, path in the package) of every .py of the cubegw package."""
    base = os.path.join(root, PACKAGE)
    found = []
    for dirpath, dirnames, filenames in os.walk(base):
        rel = os.path.relpath(dirpath, base)
        dirnames[:] = [d for d in dirnames if d != "__pycache__" and d != "tests"
                       and not (rel == "." and d in EXCLUDED)]
        for name in filenames:
            if not name.endswith(".py") or (rel == "." and name in EXCLUDED):
                continue
            src = os.path.normpath(os.path.join(PACKAGE, rel, name))
            found.append((src, f"{LIBDIR}/{src}".replace(os.sep, "/")))
    return found


def payload(root=ROOT):
    """{path in the package (no leading /): (content bytes, mode)}."""
    files = {}
    for src, dest in _package_sources(root):
        files[dest] = (_read(root, src), _FILE)
    files[f"{LIBDIR}/twisted/plugins/cubegw_plugin.py"] = (
        _read(root, "twisted/plugins/cubegw_plugin.py"), _FILE)
    for src, dest, mode in [
        ("openwrt/files/cubegw.init", "etc/init.d/cubegw", _EXEC),
        ("openwrt/files/cubegw-ctl", "usr/bin/cubegw-ctl", _EXEC),
        # 0600 as OpenWrt's INSTALL_CONF: the YAML holds the account and Wi-Fi passwords
        ("etc/config/cubegw", "etc/config/cubegw", 0o600),
        ("openwrt/files/cubegw.yaml", "etc/cubegw/cubegw.yaml", 0o600),
        ("openwrt/files/cubegw.uci-defaults", "etc/uci-defaults/90-cubegw", _EXEC),
        ("openwrt/files/cubegw.keep", "lib/upgrade/keep.d/cubegw", _FILE),
        ("openwrt/files/cubegw.hotplug", "etc/hotplug.d/iface/90-cubegw", _EXEC),
        ("openwrt/files/cubegw.rpcd", "usr/libexec/rpcd/cubegw", _EXEC),
    ]:
        files[dest] = (_read(root, src), mode)
    return files


def installed_size(files):
    """Installed-Size: the KiB of the payload's files, rounded up."""
    return -(-sum(len(content) for content, _ in files.values()) // 1024)


def control_file(root, files):
    meta = _metadata(root)
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version(root)}\n"
        f"Depends: {', '.join(DEPENDS)}\n"
        f"Source: {PACKAGE}\n"
        f"License: {meta.get('license', 'MIT')}\n"
        f"Section: {SECTION}\n"
        f"Architecture: all\n"
        f"Installed-Size: {installed_size(files)}\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Description: {DESCRIPTION[0]}\n"
        + "".join(f" {line}\n" for line in DESCRIPTION[1:])
    ).encode("utf-8")


def control_files(root, files):
    return {
        "control": (control_file(root, files), _FILE),
        "conffiles": ("".join(f"{p}\n" for p in CONFFILES).encode(), _FILE),
        "postinst": (_read(root, "openwrt/control/postinst"), _EXEC),
        "prerm": (_read(root, "openwrt/control/prerm"), _EXEC),
    }


def _info(name, mtime, mode, type_=tarfile.REGTYPE, size=0):
    info = tarfile.TarInfo(name)
    info.type = type_
    info.mode = mode
    info.size = size
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _gzip(data, mtime):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9,
                       mtime=mtime) as gz:
        gz.write(data)
    return buf.getvalue()


def tree_tar_gz(files, mtime):
    """A gzip'd tar of ``files`` ({relative path: (bytes, mode)}) rooted at ``./``.

    Directories are made for every parent (0755), entries sorted by path component.
    """
    dirs = {""}
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    entries = [(d, None) for d in dirs] + [(p, files[p]) for p in files]
    entries.sort(key=lambda e: e[0].split("/") if e[0] else [])
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, item in entries:
            if item is None:
                tar.addfile(_info(f"./{path}/" if path else "./", mtime, _DIR, tarfile.DIRTYPE))
            else:
                content, mode = item
                tar.addfile(_info(f"./{path}", mtime, mode, size=len(content)),
                            io.BytesIO(content))
    return _gzip(raw.getvalue(), mtime)


def ipk_bytes(root=ROOT, mtime=None):
    """The whole ipk, as bytes."""
    if mtime is None:
        mtime = build_time(root)
    files = payload(root)
    members = [
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", tree_tar_gz(control_files(root, files), mtime)),
        ("data.tar.gz", tree_tar_gz(files, mtime)),
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in members:
            tar.addfile(_info(f"./{name}", mtime, _FILE, size=len(content)),
                        io.BytesIO(content))
    return _gzip(raw.getvalue(), mtime)


def ipk_name(root=ROOT):
    return f"{PACKAGE}_{version(root)}_all.ipk"


def build(out_dir, root=ROOT, mtime=None):
    """Write ``<out_dir>/cubegw_<version>_all.ipk``; return its path."""
    data = ipk_bytes(root, mtime)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, ipk_name(root))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="build_ipk.py", description="Build cubegw_<version>_all.ipk for OpenWrt.")
    parser.add_argument("--out", default="dist", help="output directory (default: dist)")
    args = parser.parse_args(argv)
    print(build(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
