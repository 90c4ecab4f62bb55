"""The ipk and the apk installed, upgraded and removed by the real opkg and the real apk.

Both packages are built from this tree (openwrt/build_ipk.py, openwrt/build_apk.py) and from
a copy with a newer version whose shipped /etc/config/cubegw gains a section.  Each package
manager works on an offline root in a temporary directory, as an image build does
(``IPKG_INSTROOT`` set, no network), with empty packages standing in for the Python
dependencies.  Every UCI file installed is parsed by the real uci.  The maintainer scripts
run; the service commands they must not run into an offline root are recorded instead.

The tools come from OPENWRT_TOOLS (default /opt/openwrt-tools): without them these tests skip.
"""

import os
import shutil

from twisted.trial.unittest import TestCase

from tests.helpers import openwrt_root
from tests.helpers.openwrt_root import OfflineRoot, uci_show

MTIME = 1700000000
NEW_VERSION = "99.0.1"
NEW_SECTION = "\nconfig extra 'extra'\n\toption added_in '99.0.1'\n"
LIBDIR = "usr/lib/cubegw"
#: What a router needs from the package, with its mode.
INSTALLED = {"etc/init.d/cubegw": 0o755, "usr/bin/cubegw-ctl": 0o755,
             "etc/config/cubegw": 0o600, "etc/cubegw/cubegw.yaml": 0o600,
             "etc/uci-defaults/90-cubegw": 0o755, "lib/upgrade/keep.d/cubegw": 0o644,
             f"{LIBDIR}/cubegw/__init__.py": 0o644,
             f"{LIBDIR}/twisted/plugins/cubegw_plugin.py": 0o644}
LINKS = {"etc/rc.d/S95cubegw": "../init.d/cubegw", "etc/rc.d/K10cubegw": "../init.d/cubegw"}


class _PackageManagerTests:
    """The same life cycle for each package manager; subclasses say how to drive it."""

    timeout = 120
    #: where a changed conffile's new default is put on an upgrade
    new_default = None

    def setUp(self):
        self.tmp = os.path.abspath(self.mktemp())
        os.makedirs(self.tmp)
        self.dist = os.path.join(self.tmp, "dist")
        os.makedirs(self.dist)
        self.root = OfflineRoot(os.path.join(self.tmp, "root"), self.tmp)
        self.confdir = os.path.join(self.root.path, "etc", "config")
        newer = openwrt_root.source_copy(os.path.join(self.tmp, "newer"), NEW_VERSION,
                                         NEW_SECTION)
        self.old = self.build(os.path.join(self.tmp, "old"), openwrt_root.SRC, MTIME)
        self.new = self.build(os.path.join(self.tmp, "new"), newer, MTIME + 100)
        self.stubs = [self.stub(name, version)
                      for name, version in openwrt_root.DEPENDENCIES.items()]

    def ok(self, done):
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        return done

    def edit_config(self):
        """What a user does on the router: a value set with the real uci."""
        uci = openwrt_root.tool("uci")
        self.ok(openwrt_root.run([uci, "-c", self.confdir, "set",
                                  "cubegw.mgt.MgtURL=dist.example.net"]))
        self.ok(openwrt_root.run([uci, "-c", self.confdir, "commit", "cubegw"]))

    def assertUciFiles(self):
        """Every installed UCI file parses with the real uci; the store's values."""
        names = sorted(n for n in os.listdir(self.confdir)
                       if "." not in n and not n.endswith("-opkg"))
        self.assertEqual(names, ["cubegw"])
        return uci_show(self.confdir, "cubegw")

    def assertInstalled(self, version):
        for path, mode in INSTALLED.items():
            full = os.path.join(self.root.path, path)
            self.assertTrue(os.path.isfile(full), path)
            self.assertEqual(os.stat(full).st_mode & 0o7777, mode, path)
        for path, target in LINKS.items():
            self.assertEqual(os.readlink(os.path.join(self.root.path, path)), target, path)
        self.assertEqual(self.installed_version(), version)
        init = self.root.file(f"{LIBDIR}/cubegw/__init__.py")
        self.assertIn(f'__version__ = "{version.split("-")[0]}"', init)
        # the scripts only made the links: no uci, no service command into an offline root
        self.assertEqual(self.root.calls(), "")

    def test_install(self):
        """A fresh install: the payload with its modes, the rc.d links, the store parses."""
        self.ok(self.install(self.stubs + [self.old]))
        self.assertInstalled(self.old_version)
        values = self.assertUciFiles()
        self.assertEqual((values["mgt"], values["mgt.MgtURL"], values["mgt.Port"]),
                         ("mgt", "189cube", "12112"))
        # first boot applies the defaults and starts the service: left for it
        self.assertTrue(self.root.exists("etc/uci-defaults/90-cubegw"))

    def test_upgrade_keeps_edited_config(self):
        """An upgrade keeps a user-edited /etc/config/cubegw; the new default goes beside it."""
        self.ok(self.install(self.stubs + [self.old]))
        self.edit_config()
        self.ok(self.install([self.new]))
        self.assertInstalled(self.new_version)
        self.assertEqual(self.assertUciFiles()["mgt.MgtURL"], "dist.example.net")
        # the new default, beside it, is a UCI file too
        other = os.path.join(self.tmp, "new-default")
        os.makedirs(other)
        shutil.copy(os.path.join(self.root.path, self.new_default),
                    os.path.join(other, "cubegw"))
        self.assertEqual(uci_show(other, "cubegw")["extra.added_in"], NEW_VERSION)

    def test_upgrade_unedited_config(self):
        """An unedited /etc/config/cubegw is replaced by the new default."""
        self.ok(self.install(self.stubs + [self.old]))
        self.ok(self.install([self.new]))
        self.assertInstalled(self.new_version)
        self.assertFalse(self.root.exists(self.new_default))
        self.assertEqual(self.assertUciFiles()["extra.added_in"], NEW_VERSION)

    def test_remove(self):
        """Removal takes the code, the links and the database entry; edited settings stay."""
        self.ok(self.install(self.stubs + [self.old]))
        self.edit_config()
        self.ok(self.remove())
        for path in list(INSTALLED) + list(LINKS):
            if path != "etc/config/cubegw":
                self.assertFalse(self.root.exists(path), path)
        # no file left under /usr/lib/cubegw (opkg leaves the empty directories: it lists
        # no directory in cubegw.list; apk removes them)
        left = [os.path.join(d, n) for d, _, names in os.walk(os.path.join(self.root.path, LIBDIR))
                for n in names]
        self.assertEqual(left, [])
        self.assertEqual(self.root.exists(LIBDIR), self.leaves_directories)
        self.assertIsNone(self.installed_version())
        self.assertEqual(self.assertUciFiles()["mgt.MgtURL"], "dist.example.net")
        self.assertEqual(self.root.calls(), "")

    def test_twisted_too_old(self):
        """The versioned dependency holds: python3-twisted 22.2.0 (OpenWrt 21.02) is refused."""
        old_twisted = os.path.join(self.tmp, "old-twisted")
        os.makedirs(old_twisted)
        stubs = [self.stub(name, "22.2.0" if name == "python3-twisted" else version,
                           old_twisted)
                 for name, version in openwrt_root.DEPENDENCIES.items()]
        self.ok(self.install(stubs))
        done = self.install([self.old])
        self.assertNotEqual(done.returncode, 0, done.stdout)
        self.assertIn("python3-twisted", done.stdout + done.stderr)
        self.assertFalse(self.root.exists(f"{LIBDIR}/cubegw/__init__.py"))


class OpkgTests(_PackageManagerTests, TestCase):
    """``make ipk``'s package and the real opkg (opkg-cl) on an offline root."""

    new_default = "etc/config/cubegw-opkg"
    leaves_directories = True

    def setUp(self):
        self.opkg = openwrt_root.tool("opkg-cl")
        self.build_ipk = openwrt_root.load_builder("build_ipk")
        self.old_version = self.build_ipk.version()
        self.new_version = NEW_VERSION
        super().setUp()

    def build(self, out, src, mtime):
        return self.build_ipk.build(out, root=src, mtime=mtime)

    def stub(self, name, version, out=None):
        return openwrt_root.stub_ipk(self.build_ipk, out or self.dist, name, version, MTIME)

    def install(self, paths):
        return self.root.opkg("install", *paths)

    def remove(self):
        return self.root.opkg("remove", "cubegw")

    def installed_version(self):
        status = os.path.join(self.root.path, "usr/lib/opkg/status")
        with open(status) as f:
            for block in f.read().split("\n\n"):
                fields = dict(line.split(": ", 1) for line in block.splitlines()
                              if ": " in line)
                if fields.get("Package") == "cubegw":
                    return fields["Version"]
        return None


class ApkTests(_PackageManagerTests, TestCase):
    """``make apk``'s package and the real apk (apk-tools 3) on an offline root."""

    new_default = "etc/config/cubegw.apk-new"
    leaves_directories = False

    def setUp(self):
        self.apk = openwrt_root.tool("apk")
        self.build_apk = openwrt_root.load_builder("build_apk")
        self.old_version = self.build_apk.apk_version()
        self.new_version = f"{NEW_VERSION}-r{self.build_apk.RELEASE}"
        self.first = True
        super().setUp()

    def build(self, out, src, mtime):
        return self.build_apk.build(out, root=src, mtime=mtime, apk=self.apk)

    def stub(self, name, version, out=None):
        return openwrt_root.stub_apk(self.apk, out or self.dist, name, version)

    def install(self, paths):
        initdb = ["--initdb"] if self.first else []
        self.first = False
        return self.root.apk("add", *initdb, *paths)

    def remove(self):
        return self.root.apk("del", "cubegw")

    def installed_version(self):
        if self.root.apk("info", "-e", "cubegw").returncode:
            return None
        done = self.ok(self.root.apk("query", "--installed", "--fields", "version", "cubegw"))
        return done.stdout.split(":", 1)[1].strip()

    def test_package_database(self):
        """/lib/apk/packages: the file list, the conffiles and their sums, as OpenWrt's."""
        self.ok(self.install(self.stubs + [self.old]))
        listed = self.root.file("lib/apk/packages/cubegw.list").split()
        self.assertIn("/etc/init.d/cubegw", listed)
        self.assertIn(f"/{LIBDIR}/cubegw/__init__.py", listed)
        self.assertEqual(self.root.file("lib/apk/packages/cubegw.conffiles").split(),
                         ["/etc/config/cubegw", "/etc/cubegw/cubegw.yaml"])
        static = self.root.file("lib/apk/packages/cubegw.conffiles_static").splitlines()
        self.assertEqual([line.split()[0] for line in static],
                         ["/etc/config/cubegw", "/etc/cubegw/cubegw.yaml"])
