"""The ipk installed into an offline root as ``opkg -o ROOT install`` does, then run from there.

openwrt/build_ipk.py builds the package into a temporary directory; ``install_offline``
does what opkg does for an offline root (``-o ROOT``, the way an image builder installs
a package): it unpacks data.tar.gz into ROOT, writes ROOT/usr/lib/opkg/info/cubegw.*
(control, list, conffiles and the maintainer scripts) and the package's entry in
ROOT/usr/lib/opkg/status, then runs postinst with ``IPKG_INSTROOT=ROOT``.  postinst must
then only touch files in ROOT (the /etc/rc.d links): no service command, no uci.

Then the daemon is started the way procd starts it on a router (``python -c 'from
twisted.scripts.twistd import run; run()' -n --pidfile= cubegw --config ...``) with
``PYTHONPATH=ROOT/usr/lib/cubegw`` only, so the cubegw package and the twistd plugin come
from the installed tree, not from this checkout; its BootFirst must reach a UDP peer on
127.0.0.1.  The store (confdir) and the state directory are those in ROOT.
"""

import hashlib
import importlib.util
import io
import json
import os
import stat
import subprocess
import sys
import tarfile

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from cubegw.children import ChildDaemon

from tests.integration.support import ROOT as SRC, UdpPeer, gateway_config

_spec = importlib.util.spec_from_file_location(
    "build_ipk", os.path.join(SRC, "openwrt", "build_ipk.py"))
build_ipk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_ipk)

MTIME = 1700000000
PACKAGE = "cubegw"
LIBDIR = "usr/lib/cubegw"
#: Commands postinst must not run into an offline root; stubs on PATH record any call.
SERVICE_COMMANDS = ["uci", "logger", "service", "ubus", "procd", "reload_config",
                    "python3", "opkg", "/etc/init.d/cubegw"]


def _members(tar_gz_bytes):
    """{name: (TarInfo, bytes or None)} of a gzip'd tar."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar_gz_bytes), mode="r:gz") as tar:
        for info in tar.getmembers():
            data = tar.extractfile(info).read() if info.isfile() else None
            out[info.name] = (info, data)
    return out


def tree(root):
    """{relative path: ('d'|'f'|'l', mode, content-or-link-target)} of everything under root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("l", None, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("d", stat.S_IMODE(st.st_mode), None)
            else:
                with open(path, "rb") as f:
                    found[rel] = ("f", stat.S_IMODE(st.st_mode), f.read())
    return found


def install_offline(ipk_path, root, env):
    """``opkg -o root install ipk_path``, by hand.  Returns the postinst CompletedProcess."""
    with open(ipk_path, "rb") as f:
        outer = _members(f.read())
    assert outer["./debian-binary"][1] == b"2.0\n", outer["./debian-binary"]
    control = _members(outer["./control.tar.gz"][1])
    data_gz = outer["./data.tar.gz"][1]

    # the payload, as opkg unpacks it (modes and symlinks as in the archive)
    with tarfile.open(fileobj=io.BytesIO(data_gz), mode="r:gz") as tar:
        for info in tar.getmembers():
            if info.name in (".", "./"):
                continue
            dest = os.path.join(root, info.name)
            if info.isdir():
                os.makedirs(dest, exist_ok=True)
                os.chmod(dest, info.mode)
            elif info.isfile():
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as out:
                    out.write(tar.extractfile(info).read())
                os.chmod(dest, info.mode)
            elif info.issym():
                os.symlink(info.linkname, dest)
            else:
                raise AssertionError(f"unexpected member type in data.tar.gz: {info.name}")
        files = sorted("/" + m.name[2:] for m in tar.getmembers() if not m.isdir())

    # the package database in the offline root (usr/lib/opkg: opkg's default lists_dir
    # and info_dir under -o)
    info_dir = os.path.join(root, "usr/lib/opkg/info")
    os.makedirs(info_dir, exist_ok=True)
    for name in ["control", "conffiles", "postinst", "prerm"]:
        if f"./{name}" not in control:
            continue
        info, content = control[f"./{name}"]
        path = os.path.join(info_dir, f"{PACKAGE}.{name}")
        with open(path, "wb") as out:
            out.write(content)
        os.chmod(path, info.mode)
    with open(os.path.join(info_dir, f"{PACKAGE}.list"), "w") as out:
        out.write("".join(f"{p}\n" for p in files))
    conffiles = control["./conffiles"][1].decode().split()
    fields = control["./control"][1].decode()
    keep = [line for line in fields.splitlines()
            if line.split(":", 1)[0] in ("Package", "Version", "Depends", "Architecture")]
    sums = [f" {p} {hashlib.md5(open(os.path.join(root, p[1:]), 'rb').read()).hexdigest()}"
            for p in conffiles]
    with open(os.path.join(root, "usr/lib/opkg/status"), "a") as out:
        out.write("\n".join(keep + ["Status: install user installed", "Conffiles:"] + sums
                            + [f"Installed-Time: {MTIME}", "", ""]))

    # postinst, as opkg runs it for an offline root
    return subprocess.run(
        ["sh", os.path.join(info_dir, f"{PACKAGE}.postinst"), "configure"],
        env=dict(env, IPKG_INSTROOT=root, PKG_ROOT=root), cwd=root,
        capture_output=True, text=True, timeout=30)


class OfflineInstallTests(TestCase):
    timeout = 60

    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        self.root = os.path.join(self.tmp, "root")
        os.makedirs(self.root)
        self.ipk = build_ipk.build(os.path.join(self.tmp, "dist"), mtime=MTIME)
        self.data = _members(_members(open(self.ipk, "rb").read())["./data.tar.gz"][1])

        # stubs that record any service-level command postinst might run
        self.calls = os.path.join(self.tmp, "calls")
        stubs = os.path.join(self.tmp, "stubs")
        os.makedirs(stubs)
        for name in SERVICE_COMMANDS:
            path = os.path.join(stubs, os.path.basename(name))
            with open(path, "w") as f:
                f.write(f'#!/bin/sh\necho "{name} $*" >> "{self.calls}"\n')
            os.chmod(path, 0o755)
        env = {"PATH": stubs + os.pathsep + "/usr/bin:/bin", "HOME": self.tmp}

        self.before = tree(self.root)
        self.host_rcd = os.path.exists("/etc/rc.d/S95cubegw")
        self.postinst = install_offline(self.ipk, self.root, env)
        self.after = tree(self.root)

    def test_files(self):
        """Every payload file is in ROOT with its mode; opkg's info files list them."""
        for name, (info, content) in self.data.items():
            rel = name[2:]
            if not rel or info.isdir():
                continue
            kind, mode, got = self.after[rel]
            self.assertEqual((kind, mode, got), ("f", info.mode, content), rel)
        self.assertEqual(self.after["etc/cubegw/cubegw.yaml"][1], 0o600)
        self.assertEqual(self.after["etc/config/cubegw"][1], 0o600)
        self.assertEqual(self.after["etc/init.d/cubegw"][1], 0o755)
        self.assertIn(f"{LIBDIR}/cubegw/__init__.py", self.after)
        self.assertIn(f"{LIBDIR}/twisted/plugins/cubegw_plugin.py", self.after)
        for excluded in ["platform", "demo.py", "app.py"]:
            self.assertNotIn(f"{LIBDIR}/cubegw/{excluded}", self.after)

        info = os.path.join(self.root, "usr/lib/opkg/info")
        with open(os.path.join(info, "cubegw.list")) as f:
            listed = f.read().split()
        self.assertEqual(sorted(listed), sorted(
            "/" + n[2:] for n, (i, _) in self.data.items() if not i.isdir()))
        with open(os.path.join(info, "cubegw.conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/config/cubegw", "/etc/cubegw/cubegw.yaml"])
        with open(os.path.join(info, "cubegw.control")) as f:
            control = f.read()
        self.assertIn("Package: cubegw\n", control)
        self.assertIn("Architecture: all\n", control)
        with open(os.path.join(self.root, "usr/lib/opkg/status")) as f:
            self.assertIn("Status: install user installed", f.read())

    def test_postinst_only_files(self):
        """postinst with IPKG_INSTROOT: exit 0, the two rc.d links, nothing else."""
        self.assertEqual(self.postinst.returncode, 0,
                         self.postinst.stdout + self.postinst.stderr)
        self.assertEqual(self.postinst.stdout + self.postinst.stderr, "")
        self.assertFalse(os.path.exists(self.calls),
                         "postinst ran commands: " + (open(self.calls).read()
                                                      if os.path.exists(self.calls) else ""))
        added = {p: v for p, v in self.after.items()
                 if p not in self.before and not p.startswith("usr/lib/opkg")
                 and "./" + p not in self.data}
        self.assertEqual(added, {
            "etc/rc.d": ("d", 0o755, None),
            "etc/rc.d/S95cubegw": ("l", None, "../init.d/cubegw"),
            "etc/rc.d/K10cubegw": ("l", None, "../init.d/cubegw"),
        })
        # nothing that came from the package was changed by postinst
        for name, (info, content) in self.data.items():
            if info.isfile():
                self.assertEqual(self.after[name[2:]][2], content, name)
        # uci-defaults is left for the first boot
        self.assertIn("etc/uci-defaults/90-cubegw", self.after)
        # and the host was not touched
        self.assertEqual(os.path.exists("/etc/rc.d/S95cubegw"), self.host_rcd)

    def _env(self):
        """The daemon's environment: the installed tree only, bytecode allowed."""
        return {"PYTHONPATH": os.path.join(self.root, LIBDIR),
                "PYTHONDONTWRITEBYTECODE": "", "PYTHONNOUSERSITE": "1"}

    def test_imports_from_root(self):
        """With PYTHONPATH=ROOT/usr/lib/cubegw, cubegw and its plugin come from ROOT.

        When the interpreter running the tests has cubegw itself installed (``make
        install`` puts twisted/plugins/cubegw_plugin.py into the venv's site-packages),
        that copy of the plugin file is imported first (twisted.plugins' own directory
        leads its __path__); it must then be the same file, and it still imports the
        cubegw package from ROOT.  On a router there is only ROOT's copy.
        """
        env = dict(os.environ, **self._env())
        out = subprocess.run(
            [sys.executable, "-c",
             "import json, cubegw, twisted.plugins, twisted.plugins.cubegw_plugin as p;"
             " print(json.dumps([cubegw.__file__, p.__file__, twisted.plugins.__path__]))"],
            env=env, cwd=self.tmp, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        package, plugin, plugin_path = json.loads(out.stdout)
        lib = os.path.join(self.root, LIBDIR)
        self.assertEqual(package, os.path.join(lib, "cubegw", "__init__.py"))
        self.assertIn(os.path.join(lib, "twisted", "plugins"), plugin_path)
        ours = os.path.join(lib, "twisted", "plugins", "cubegw_plugin.py")
        if plugin != ours:
            with open(plugin, "rb") as a, open(ours, "rb") as b:
                self.assertEqual(a.read(), b.read(), f"{plugin} is not the ipk's plugin")
        self.assertNotIn(os.path.join(SRC, "cubegw"), package)

    def test_daemon_from_root(self):
        """procd's command line, from ROOT: BootFirst reaches the peer; store and state in ROOT."""
        peer = UdpPeer().listen()
        self.addCleanup(peer.port.stopListening)
        confdir = os.path.join(self.root, "etc/config")
        state = os.path.join(self.root, "var/run/cubegw")
        config = gateway_config(self.tmp, store={"confdir": confdir}, state_dir=state)
        env = dict(os.environ, **self._env())

        # X_CT-COM_Mgt.MgtURL/Port into ROOT's store through the installed cubegw-ctl's code
        for name, value in [("MgtURL", "127.0.0.1"), ("Port", str(peer.address[1]))]:
            out = subprocess.run(
                [sys.executable, "-c", "import sys; from cubegw.ctl import main; sys.exit(main())",
                 "--config", config, "mgt", "set", name, value],
                env=env, cwd=self.tmp, capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        with open(os.path.join(confdir, "cubegw")) as f:
            self.assertIn("127.0.0.1", f.read())

        pyc = os.path.join(self.root, LIBDIR, "cubegw", "__pycache__")
        for dirpath, _, names in os.walk(os.path.join(self.root, LIBDIR)):
            for name in names:   # the ctl runs above wrote bytecode: start from none
                if name.endswith(".pyc"):
                    os.remove(os.path.join(dirpath, name))

        daemon = ChildDaemon(reactor, "cubegw", ["--config", config], self.tmp,
                             env=self._env())
        daemon.start()
        self.addCleanup(daemon.stop)

        def arrived(received):
            msg, addr = received
            self.assertEqual(msg.get("RPCMethod"), "BootFirst", msg)
            self.assertEqual(addr[0], "127.0.0.1")
            # the daemon imported cubegw (and the plugin) from ROOT: Python wrote their
            # bytecode there; the repo is not on its path
            self.assertTrue(any(n.startswith("service.") or n.startswith("__init__.")
                                for n in os.listdir(pyc)), os.listdir(pyc))
            self.assertNotIn(os.path.join(SRC, "cubegw") + os.sep, daemon.text())
            return daemon.stop()

        def stopped(_):
            self.assertNotIn("Traceback", daemon.text())

        def explain(failure):
            raise AssertionError(f"{failure.getErrorMessage()}\n--- daemon log:\n{daemon.text()}")

        d = peer.next(timeout=30)
        d.addCallback(arrived)
        d.addCallback(stopped)
        d.addErrback(explain)
        return d
