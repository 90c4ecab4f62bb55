"""The real OpenWrt tools for the packaging tests: opkg-cl, apk (apk-tools 3), uci and jshn
as built by ../shared/tools/openwrt-tools.sh, and OpenWrt's rc.common/procd.sh placed beside
them by ``make openwrt-base``.

They are found through ``OPENWRT_TOOLS`` (default /opt/openwrt-tools); a test that needs one
that is absent skips, saying which and where, so a fresh clone still passes.  Everything runs
on an offline root in a temporary directory: the host's /etc is never touched.
"""

import importlib.util
import io
import os
import re
import shutil
import subprocess
import tarfile

from twisted.trial.unittest import SkipTest

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_TOOLS = "/opt/openwrt-tools"
#: The files OpenWrt's init scripts source, under <tools>/openwrt-base (make openwrt-base).
BASE_FILES = ["etc/rc.common", "lib/functions.sh", "lib/functions/service.sh",
              "lib/functions/procd.sh", "usr/share/libubox/jshn.sh"]
#: The dependencies the package names, as stub packages of these versions.
DEPENDENCIES = {"python3-twisted": "22.4.0", "python3-psutil": "5.9.5",
                "python3-yaml": "6.0.1", "python3-zope-interface": "6.1"}
#: Commands a maintainer script must not run into an offline root: recorded if it does.
SERVICE_COMMANDS = ["uci", "logger", "service", "ubus", "procd", "reload_config", "python3",
                    "opkg", "apk"]


def tools_dir(environ=None):
    environ = os.environ if environ is None else environ
    return environ.get("OPENWRT_TOOLS") or DEFAULT_TOOLS


def tool(name):
    """The path of OpenWrt tool ``name`` (opkg-cl, apk, uci, jshn); SkipTest if absent."""
    path = os.path.join(tools_dir(), "bin", name)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise SkipTest(f"no {path}: build OpenWrt's tools with ../shared/tools/openwrt-tools.sh "
                       f"SRC {tools_dir()} (or set OPENWRT_TOOLS)")
    return path


def base_dir():
    """<tools>/openwrt-base with OpenWrt's rc.common, functions and procd.sh; SkipTest if not."""
    base = os.path.join(tools_dir(), "openwrt-base")
    missing = [p for p in BASE_FILES if not os.path.isfile(os.path.join(base, p))]
    if missing:
        raise SkipTest(f"no {os.path.join(base, missing[0])}: run `make openwrt-base` "
                       f"(openwrt/tools/openwrt-base.sh)")
    return base


def load_builder(name):
    """openwrt/<name>.py (build_ipk, build_apk) as a module."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(SRC, "openwrt", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_copy(directory, version=None, uci_extra=""):
    """A copy of what the packages are built from, at ``directory``: with ``version`` as
    cubegw.__version__ and ``uci_extra`` appended to the shipped etc/config/cubegw."""
    for part in ["cubegw", "openwrt", "etc"]:
        shutil.copytree(os.path.join(SRC, part), os.path.join(directory, part),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    os.makedirs(os.path.join(directory, "twisted", "plugins"))
    shutil.copy(os.path.join(SRC, "twisted", "plugins", "cubegw_plugin.py"),
                os.path.join(directory, "twisted", "plugins"))
    shutil.copy(os.path.join(SRC, "setup.cfg"), directory)
    if version is not None:
        path = os.path.join(directory, "cubegw", "__init__.py")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(re.sub(r'^__version__ = ".*"$', f'__version__ = "{version}"', text,
                           count=1, flags=re.M))
    if uci_extra:
        with open(os.path.join(directory, "etc", "config", "cubegw"), "a") as f:
            f.write(uci_extra)
    return directory


def stub_ipk(build_ipk, out_dir, name, version, mtime):
    """An empty ipk ``name`` ``version``: a dependency that is there for opkg's solver."""
    control = (f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
               f"Maintainer: test\nDescription: stub for the tests\n").encode()
    members = [("debian-binary", b"2.0\n"),
               ("control.tar.gz", build_ipk.tree_tar_gz({"control": (control, 0o644)}, mtime)),
               ("data.tar.gz", build_ipk.tree_tar_gz({}, mtime))]
    path = os.path.join(out_dir, f"{name}_{version}_all.ipk")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member, content in members:
            tar.addfile(build_ipk._info(f"./{member}", mtime, 0o644, size=len(content)),
                        io.BytesIO(content))
    with open(path, "wb") as f:
        f.write(build_ipk._gzip(raw.getvalue(), mtime))
    return path


def stub_apk(apk, out_dir, name, version):
    """An empty apk ``name`` ``version``-r1 made with the real ``apk mkpkg``."""
    empty = os.path.join(out_dir, "empty")
    os.makedirs(empty, exist_ok=True)
    path = os.path.join(out_dir, f"{name}-{version}-r1.apk")
    run([apk, "mkpkg", "--info", f"name:{name}", "--info", f"version:{version}-r1",
         "--info", "arch:noarch", "--info", "description:stub for the tests",
         "--files", empty, "--output", path], check=True)
    return path


def run(argv, env=None, check=False, cwd=None):
    """Run ``argv`` (bounded, stdin closed); the CompletedProcess (text)."""
    done = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    if check and done.returncode:
        raise AssertionError(f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def recording_stubs(directory, log, names=SERVICE_COMMANDS):
    """Scripts named ``names`` in ``directory`` that append ``name args`` to ``log``."""
    os.makedirs(directory, exist_ok=True)
    for name in names:
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\necho "{name} $*" >> "{log}"\n')
        os.chmod(path, 0o755)
    return directory


def recording_ubus(directory, log):
    """A fake ``ubus`` that appends each call to ``log``: its arguments (separated by 0x1f),
    0x1e, what it read on stdin, 0x1d.  See ``ubus_calls``."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "ubus")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n"
                f'{{ printf ubus; for a in "$@"; do printf "\\037%s" "$a"; done\n'
                f'  printf "\\036"; cat; printf "\\035"; }} >> "{log}"\n')
    os.chmod(path, 0o755)
    return path


def ubus_calls(log):
    """[(argv list, stdin text)] of the calls ``recording_ubus`` recorded."""
    if not os.path.exists(log):
        return []
    with open(log) as f:
        records = f.read().split("\x1d")
    calls = []
    for record in records[:-1]:
        args, stdin = record.split("\x1e", 1)
        calls.append((args.split("\x1f")[1:], stdin))
    return calls


class OfflineRoot:
    """An empty OpenWrt root at ``path`` that opkg or apk install into, the way an image
    build does: ``IPKG_INSTROOT`` set, no network, scripts run outside a chroot with
    the service commands recorded (``calls()``) instead of run."""

    def __init__(self, path, tmp):
        self.path = path
        os.makedirs(os.path.join(path, "var", "lock"))
        self.log = os.path.join(tmp, "service-calls")
        stubs = recording_stubs(os.path.join(tmp, "stubs"), self.log)
        self.env = {"PATH": stubs + os.pathsep + "/usr/bin:/bin", "HOME": tmp,
                    "IPKG_INSTROOT": path, "TMPDIR": tmp, "LC_ALL": "C"}

    def calls(self):
        if not os.path.exists(self.log):
            return ""
        with open(self.log) as f:
            return f.read()

    def opkg(self, *args):
        """The real opkg-cl on this root (the options OpenWrt's image build gives it)."""
        return run([tool("opkg-cl"), "--offline-root", self.path, "--add-dest", "root:/",
                    "--add-arch", "all:100", "--add-arch", "x86_64:200",
                    "--force-postinstall"] + list(args),
                   env=self.env)

    def apk(self, *args):
        """The real apk on this root: offline, unsigned local packages, no chroot (a
        database created by a user other than root is a user-mode one)."""
        args = list(args)
        if "--initdb" in args and os.geteuid() != 0:
            args.insert(args.index("--initdb") + 1, "--usermode")
        return run([tool("apk"), "--root", self.path, "--allow-untrusted", "--no-network",
                    "--force-no-chroot", "--preserve-env", "--no-cache", "--no-logfile",
                    "--arch", "x86_64"] + args, env=self.env)

    def file(self, relpath):
        with open(os.path.join(self.path, relpath)) as f:
            return f.read()

    def exists(self, relpath):
        return os.path.lexists(os.path.join(self.path, relpath))


def uci_show(confdir, name):
    """``uci -c confdir show name`` with the real uci: {"section.option": value} of a file
    it parses; AssertionError with uci's message for one it refuses."""
    done = run([tool("uci"), "-c", confdir, "show", name])
    if done.returncode:
        raise AssertionError(f"uci refuses {confdir}/{name}: {done.stderr.strip()}")
    values = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        values[key[len(name) + 1:]] = value.strip("'")
    return values
