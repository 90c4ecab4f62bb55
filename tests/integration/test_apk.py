"""openwrt/build_apk.py (``make apk``), read back with the real apk, and UPGRADE's choice of
``apk add`` where apk manages the packages.

The package is built with the real ``apk mkpkg`` and read back with ``apk adbdump`` and
``apk extract``: the same files as the ipk, with OpenWrt's /lib/apk/packages entries, the
metadata and the three scripts.  Without apk (OPENWRT_TOOLS, default /opt/openwrt-tools)
those tests skip; the ones that need no apk always run.
"""

import hashlib
import os
import shutil
import stat

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from cubegw.backend import TempDirBackend
from cubegw.capabilities.upgrade import OpenWrtInstaller

from tests.helpers import openwrt_root
from tests.helpers.openwrt_root import OfflineRoot

MTIME = 1700000000
build_ipk = openwrt_root.load_builder("build_ipk")
build_apk = openwrt_root.load_builder("build_apk")


class NoApkTests(SynchronousTestCase):
    """What build_apk does before and without apk."""

    def test_missing_apk(self):
        """No apk where OPENWRT_TOOLS points: one line naming the place and the way to get it."""
        tmp = self.mktemp()
        env = {"OPENWRT_TOOLS": tmp, "PATH": tmp}
        with self.assertRaises(SystemExit) as caught:
            build_apk.build(os.path.join(tmp, "dist"), mtime=MTIME, environ=env)
        message = str(caught.exception)
        self.assertIn(f"{tmp}/bin/apk", message)
        self.assertIn("OPENWRT_TOOLS", message)
        self.assertIn("openwrt-tools.sh", message)
        self.assertNotIn("\n", message)
        self.assertFalse(os.path.exists(os.path.join(tmp, "dist")))

    def test_not_apk_tools_3(self):
        """A binary named apk that is not apk-tools 3 is not taken for it."""
        tmp = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(tmp, "bin"))
        fake = os.path.join(tmp, "bin", "apk")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho 'apk-tools 2.14.0, compiled for x86_64.'\n")
        os.chmod(fake, 0o755)
        with self.assertRaises(SystemExit):
            build_apk.find_apk(environ={"OPENWRT_TOOLS": tmp, "PATH": tmp})

    def test_version(self):
        """One version: cubegw.__version__ with the release, apk's form (0.1.0-r1)."""
        self.assertEqual(build_apk.apk_version(), f"{build_ipk.version()}-r1")
        self.assertEqual(build_apk.apk_name(), f"cubegw-{build_ipk.version()}-r1.apk")
        self.assertEqual(build_apk.DEPENDS, ["python3-twisted>=22.4.0", "python3-psutil",
                                             "python3-yaml", "python3-zope-interface"])

    def test_scripts(self):
        """post-install is postinst, post-upgrade adds PKG_UPGRADE=1, pre-deinstall is prerm."""
        scripts = build_apk.scripts()
        with open(os.path.join(openwrt_root.SRC, "openwrt/control/postinst")) as f:
            postinst = f.read().split("\n", 1)[1]
        with open(os.path.join(openwrt_root.SRC, "openwrt/control/prerm")) as f:
            prerm = f.read().split("\n", 1)[1]
        head = '#!/bin/sh\nexport root="${IPKG_INSTROOT}"\nexport pkgname="cubegw"\n'
        self.assertEqual(scripts, {"post-install": head + postinst,
                                   "post-upgrade": head + "export PKG_UPGRADE=1\n" + postinst,
                                   "pre-deinstall": head + prerm})


class BuiltApkTests(TestCase):
    """The package ``make apk`` writes, read back by the real apk."""

    def setUp(self):
        self.apk = openwrt_root.tool("apk")
        self.tmp = os.path.abspath(self.mktemp())
        self.path = build_apk.build(os.path.join(self.tmp, "dist"), mtime=MTIME, apk=self.apk)

    def dump(self):
        return openwrt_root.run([self.apk, "adbdump", self.path], check=True).stdout

    def test_name_and_info(self):
        """cubegw-<version>-r1.apk, noarch, MIT, the versioned Depends in apk's syntax."""
        self.assertEqual(os.path.basename(self.path), build_apk.apk_name())
        info = self.dump().split("paths:")[0]
        for line in ["name: cubegw", f"version: {build_apk.apk_version()}", "arch: noarch",
                     "license: MIT", "origin: cubegw", "- python3-twisted>=22.4.0",
                     "- python3-psutil", "- python3-yaml", "- python3-zope-interface"]:
            self.assertIn(f"  {line}\n", info)

    def test_scripts_in_package(self):
        """The package holds exactly the three scripts."""
        dump = self.dump()
        scripts = dump.split("\nscripts:\n", 1)[1]
        kinds = [line.strip().split(":")[0] for line in scripts.splitlines()
                 if line.startswith("  ") and not line.startswith("    ")]
        self.assertEqual(sorted(kinds), ["post-install", "post-upgrade", "pre-deinstall"])
        self.assertIn("    export PKG_UPGRADE=1\n", scripts)

    def test_payload(self):
        """apk extract gives the ipk's files with their modes, plus /lib/apk/packages."""
        out = os.path.join(self.tmp, "extracted")
        os.makedirs(out)
        openwrt_root.run([self.apk, "extract", "--allow-untrusted", "--destination", out,
                          self.path], check=True)
        found = {}
        for dirpath, _, names in os.walk(out):
            for name in names:
                full = os.path.join(dirpath, name)
                with open(full, "rb") as f:
                    found[os.path.relpath(full, out)] = (f.read(),
                                                         stat.S_IMODE(os.stat(full).st_mode))
        payload = build_ipk.payload()
        extra = build_apk.package_files(payload)
        self.assertEqual(found, dict(payload, **extra))
        listed = extra["lib/apk/packages/cubegw.list"][0].decode().split()
        self.assertEqual(listed, sorted("/" + p for p in payload))
        static = extra["lib/apk/packages/cubegw.conffiles_static"][0].decode().splitlines()
        self.assertEqual(static, [
            f"/{p} {hashlib.sha256(payload[p][0]).hexdigest()}"
            for p in ["etc/config/cubegw", "etc/cubegw/cubegw.yaml"]])

    def test_reproducible(self):
        """Two builds of one tree at one SOURCE_DATE_EPOCH are byte-identical."""
        again = build_apk.build(os.path.join(self.tmp, "again"), mtime=MTIME, apk=self.apk)
        with open(self.path, "rb") as a, open(again, "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_apk_refuses_ipk(self):
        """The reason for the apk: apk 3 does not take the ipk."""
        ipk = build_ipk.build(os.path.join(self.tmp, "ipk"), mtime=MTIME)
        root = OfflineRoot(os.path.join(self.tmp, "root"), self.tmp)
        done = root.apk("add", "--initdb", ipk)
        self.assertNotEqual(done.returncode, 0)
        self.assertFalse(root.exists("usr/lib/cubegw"))


class InstallerTests(TestCase):
    """UPGRADE method "ipk": ``apk add`` where apk is the package manager."""

    def backend(self, world):
        tmp = self.mktemp()
        backend = TempDirBackend(tmp, Clock())
        os.makedirs(os.path.join(tmp, "etc", "apk"))
        open(os.path.join(tmp, "etc", "openwrt_release"), "w").close()
        if world:
            with open(os.path.join(tmp, "etc", "apk", "world"), "w") as f:
                f.write("base-files\n")
        return backend

    def test_apk_or_opkg(self):
        """apk's world file present: ``apk add FILE``; absent: ``opkg install FILE``."""
        installer = OpenWrtInstaller()
        for world, argv in [(True, ["apk", "add", "/tmp/p"]),
                            (False, ["opkg", "install", "/tmp/p"])]:
            backend = self.backend(world)
            self.assertIsNone(installer.unavailable("ipk", backend))
            self.assertIsNone(self.successResultOf(installer.install("ipk", "/tmp/p", backend)))
            self.assertIsNone(self.successResultOf(
                installer.install("firmware", "/tmp/f", backend)))
            self.assertEqual(backend.commands, [argv, ["sysupgrade", "/tmp/f"]])

    def test_apk_failure(self):
        """apk's exit status and message become the reason."""
        backend = self.backend(True)
        backend.results["apk"] = (99, b"", b"ERROR: upgrade.bin: UNTRUSTED signature")
        self.assertEqual(
            self.successResultOf(OpenWrtInstaller().install("ipk", "/tmp/p", backend)),
            "apk exited 99: ERROR: upgrade.bin: UNTRUSTED signature")

    def test_real_apk_takes_download(self):
        """The real apk installs the downloaded file by UPGRADE's command (file upgrade.bin);
        an unsigned one only with --allow-untrusted (a vendor signs its packages)."""
        apk = openwrt_root.tool("apk")
        tmp = os.path.abspath(self.mktemp())
        root = OfflineRoot(os.path.join(tmp, "root"), tmp)
        stubs = [openwrt_root.stub_apk(apk, tmp, name, version)
                 for name, version in openwrt_root.DEPENDENCIES.items()]
        self.assertEqual(root.apk("add", "--initdb", *stubs).returncode, 0)
        download = os.path.join(tmp, "upgrade.bin")
        shutil.copy(build_apk.build(os.path.join(tmp, "dist"), mtime=MTIME, apk=apk), download)
        argv = OpenWrtInstaller().command("ipk", self.backend(True))
        self.assertEqual(argv, ["apk", "add"])
        options = ["--root", root.path, "--no-network", "--force-no-chroot", "--preserve-env",
                   "--no-cache", "--no-logfile"]
        refused = openwrt_root.run([apk] + options + argv[1:] + [download], env=root.env)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("UNTRUSTED", refused.stderr + refused.stdout)
        done = openwrt_root.run([apk, "--allow-untrusted"] + options + argv[1:] + [download],
                                env=root.env)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertTrue(root.exists("usr/lib/cubegw/cubegw/__init__.py"))
