"""The OpenWrt package: openwrt/build_ipk.py's ipk, its scripts, and openwrt/Makefile."""

import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

from twisted.trial import unittest

from cubegw.config import load_config
from cubegw.store import uci

from tests.helpers.store import FAKE_UCI

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPENWRT = os.path.join(ROOT, "openwrt")

_spec = importlib.util.spec_from_file_location(
    "build_ipk", os.path.join(OPENWRT, "build_ipk.py"))
build_ipk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_ipk)

DEPENDS = ["python3-twisted (>= 22.4.0)", "python3-psutil", "python3-yaml",
           "python3-zope-interface"]
MTIME = 1700000000
GUARD = '[ -n "$IPKG_INSTROOT" ] ||'
SH = shutil.which("sh")

#: What a router needs, with its mode.
DATA_FILES = {
    "./etc/init.d/cubegw": 0o755,
    "./usr/bin/cubegw-ctl": 0o755,
    "./etc/config/cubegw": 0o600,
    "./etc/cubegw/cubegw.yaml": 0o600,
    "./etc/uci-defaults/90-cubegw": 0o755,
    "./lib/upgrade/keep.d/cubegw": 0o644,
    "./usr/lib/cubegw/twisted/plugins/cubegw_plugin.py": 0o644,
    "./usr/lib/cubegw/cubegw/__init__.py": 0o644,
    "./usr/lib/cubegw/cubegw/tap.py": 0o644,
    "./usr/lib/cubegw/cubegw/store/uci.py": 0o644,
}

#: Run in a subprocess on the unpacked payload: what twistd and cubegw-ctl would see.
_PROBE = r"""
import importlib, json, os, pkgutil, sys
lib = sys.argv[1]
sys.path.insert(0, lib)
from twisted.plugin import getPlugins
from twisted.application.service import IServiceMaker
import twisted.plugins
names = [p.tapname for p in getPlugins(IServiceMaker)]
plugdir = os.path.join(lib, "twisted", "plugins")
on_path = plugdir in twisted.plugins.__path__
# Only the payload's plugin directory: the cubegw plugin must come from there.
twisted.plugins.__path__[:] = [plugdir]
sys.modules.pop("twisted.plugins.cubegw_plugin", None)
alone = [p.tapname for p in getPlugins(IServiceMaker, twisted.plugins)]
plugin_file = sys.modules["twisted.plugins.cubegw_plugin"].__file__
import cubegw
modules = sorted(m.name for m in pkgutil.walk_packages(cubegw.__path__, "cubegw."))
for name in modules:
    importlib.import_module(name)
print(json.dumps({"names": names, "on_path": on_path, "alone": alone,
                  "plugin_file": plugin_file, "cubegw_file": cubegw.__file__,
                  "modules": modules}))
"""


def _members(data):
    """[(TarInfo, content or None)] of a gzip'd tar, in archive order."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar.getmembers():
            content = tar.extractfile(info).read() if info.isfile() else None
            out.append((info, content))
    return out


def _control_fields(text):
    fields, last = {}, None
    for line in text.splitlines():
        if line.startswith(" ") and last:
            fields[last] += "\n" + line[1:]
        else:
            last, _, value = line.partition(": ")
            fields[last] = value
    return fields


def _read(relpath):
    with open(os.path.join(ROOT, relpath), encoding="utf-8") as f:
        return f.read()


class _Built(unittest.TestCase):
    """Builds the ipk once per test into a fresh directory."""

    def setUp(self):
        self.out = self.mktemp()
        self.path = build_ipk.build(self.out, mtime=MTIME)
        with open(self.path, "rb") as f:
            self.ipk = f.read()
        self.outer = _members(self.ipk)
        inner = {info.name: content for info, content in self.outer}
        self.control = _members(inner["./control.tar.gz"])
        self.data = _members(inner["./data.tar.gz"])
        self.control_by_name = {i.name: (i, c) for i, c in self.control}
        self.data_by_name = {i.name: (i, c) for i, c in self.data}

    def extract_data(self):
        """Unpack data.tar.gz into a temporary directory; return it."""
        root = os.path.abspath(self.mktemp())
        os.makedirs(root)
        inner = {info.name: content for info, content in self.outer}
        with tarfile.open(fileobj=io.BytesIO(inner["./data.tar.gz"]), mode="r:gz") as tar:
            for info in tar.getmembers():
                if info.isdir():
                    os.makedirs(os.path.join(root, info.name), exist_ok=True)
                else:
                    dest = os.path.join(root, info.name)
                    with open(dest, "wb") as f:
                        f.write(tar.extractfile(info).read())
                    os.chmod(dest, info.mode)
        return root


class OuterArchiveTests(_Built):

    def test_file_name(self):
        """The ipk is <out>/cubegw_<setup.cfg version>_all.ipk."""
        self.assertEqual(os.path.basename(self.path),
                         f"cubegw_{build_ipk.version()}_all.ipk")
        self.assertEqual(build_ipk.version(), "0.1.0")

    def test_member_order(self):
        """The outer tar holds debian-binary, control.tar.gz, data.tar.gz in that order."""
        self.assertEqual([i.name for i, _ in self.outer],
                         ["./debian-binary", "./control.tar.gz", "./data.tar.gz"])
        for info, _ in self.outer:
            self.assertTrue(info.isfile())
            self.assertEqual(info.mode, 0o644)

    def test_gzip_header(self):
        """The outer archive is gzip with the fixed time and no file name."""
        self.assertEqual(self.ipk[:3], b"\x1f\x8b\x08")
        self.assertEqual(self.ipk[3], 0)  # no FNAME flag
        self.assertEqual(int.from_bytes(self.ipk[4:8], "little"), MTIME)

    def test_debian_binary(self):
        """debian-binary says 2.0."""
        self.assertEqual(self.outer[0][1], b"2.0\n")

    def test_owner_and_time(self):
        """Every entry of all three tars is root:root (0/0) with the fixed time."""
        for members in (self.outer, self.control, self.data):
            for info, _ in members:
                self.assertEqual((info.uid, info.gid), (0, 0), info.name)
                self.assertEqual((info.uname, info.gname), ("root", "root"), info.name)
                self.assertEqual(info.mtime, MTIME, info.name)

    def test_sorted(self):
        """Inner tars are sorted by path, each directory before its contents."""
        for members in (self.control, self.data):
            # (tarfile reads "./usr/" as "./usr")
            names = [i.name for i, _ in members]
            self.assertEqual(names[0], ".")
            keys = [n.split("/") for n in names]
            self.assertEqual(keys, sorted(keys))
            seen = {os.path.dirname(".")}
            for info, _ in members:
                self.assertIn(os.path.dirname(info.name), seen, info.name)
                if info.isdir():
                    seen.add(info.name)
                    self.assertEqual(info.mode, 0o755, info.name)

    def test_reproducible(self):
        """Two builds of one tree are byte-identical."""
        again = build_ipk.build(self.mktemp(), mtime=MTIME)
        with open(again, "rb") as f:
            self.assertEqual(f.read(), self.ipk)

    def test_build_time(self):
        """SOURCE_DATE_EPOCH sets the time; without it, the last git commit's."""
        self.assertEqual(build_ipk.build_time(environ={"SOURCE_DATE_EPOCH": "12345"}), 12345)
        if shutil.which("git") and os.path.isdir(os.path.join(ROOT, ".git")):
            commit = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip()
            if commit:
                self.assertEqual(build_ipk.build_time(environ={}), int(commit))

    def test_main(self):
        """The command line writes the ipk into --out and prints its path."""
        out = self.mktemp()
        self.patch(sys, "stdout", io.StringIO())
        self.patch(os, "environ", dict(os.environ, SOURCE_DATE_EPOCH=str(MTIME)))
        self.assertEqual(build_ipk.main(["--out", out]), 0)
        path = sys.stdout.getvalue().strip()
        self.assertEqual(path, os.path.join(out, os.path.basename(self.path)))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), self.ipk)


class ControlTests(_Built):

    def fields(self):
        return _control_fields(self.control_by_name["./control"][1].decode("utf-8"))

    def test_members(self):
        """control.tar.gz holds control, conffiles, postinst and prerm."""
        self.assertEqual(sorted(self.control_by_name),
                         [".", "./conffiles", "./control", "./postinst", "./prerm"])

    def test_fields(self):
        """Package, Version, Depends, Architecture, Section and the rest are set."""
        fields = self.fields()
        self.assertEqual(fields["Package"], "cubegw")
        self.assertEqual(fields["Version"], build_ipk.version())
        self.assertEqual(fields["Depends"].split(", "), DEPENDS)
        self.assertEqual(fields["Architecture"], "all")
        self.assertEqual(fields["Section"], "net")
        self.assertTrue(fields["Maintainer"])
        self.assertTrue(fields["Description"])
        self.assertTrue(self.control_by_name["./control"][1].endswith(b"\n"))

    def test_installed_size(self):
        """Installed-Size is the KiB (rounded up) of data.tar.gz's files."""
        total = sum(i.size for i, _ in self.data if i.isfile())
        self.assertEqual(int(self.fields()["Installed-Size"]), -(-total // 1024))

    def test_conffiles(self):
        """conffiles lists the UCI file and the YAML configuration, both in the payload."""
        conffiles = self.control_by_name["./conffiles"][1].decode().splitlines()
        self.assertEqual(conffiles, ["/etc/config/cubegw", "/etc/cubegw/cubegw.yaml"])
        for path in conffiles:
            self.assertIn("." + path, self.data_by_name)

    def test_scripts_guarded(self):
        """postinst and prerm are 0755 shell scripts with the IPKG_INSTROOT guard."""
        for name in ("./postinst", "./prerm"):
            info, content = self.control_by_name[name]
            self.assertEqual(info.mode, 0o755, name)
            text = content.decode()
            self.assertTrue(text.startswith("#!/bin/sh\n"), name)
            self.assertIn(GUARD, text, name)

    def test_scripts_live_actions(self):
        """On a live system postinst enables and starts, prerm stops and disables."""
        postinst = self.control_by_name["./postinst"][1].decode()
        prerm = self.control_by_name["./prerm"][1].decode()
        live_post = postinst.split(GUARD, 1)[1].split("\n}\n", 1)[0]
        live_pre = prerm.split(GUARD, 1)[1].split("\n}\n", 1)[0]
        self.assertIn("/etc/init.d/cubegw enable", live_post)
        self.assertIn("/etc/init.d/cubegw start", live_post)
        self.assertIn("/etc/uci-defaults/90-cubegw", live_post)
        self.assertIn("/etc/init.d/cubegw stop", live_pre)
        self.assertIn("/etc/init.d/cubegw disable", live_pre)

    def test_image_links_match_init(self):
        """The rc.d links made for an image are those rc.common's enable makes."""
        init = _read("openwrt/files/cubegw.init")
        start = re.search(r"^START=(\d+)$", init, re.M).group(1)
        stop = re.search(r"^STOP=(\d+)$", init, re.M).group(1)
        postinst = self.control_by_name["./postinst"][1].decode()
        prerm = self.control_by_name["./prerm"][1].decode()
        for link in (f"/etc/rc.d/S{start}cubegw", f"/etc/rc.d/K{stop}cubegw"):
            self.assertIn(f'"$IPKG_INSTROOT{link}"', postinst)
            self.assertIn(f'"$IPKG_INSTROOT{link}"', prerm)

    def _run_script(self, name, env):
        """Run a maintainer script with /etc/init.d/cubegw replaced by a recorder."""
        text = self.control_by_name["./" + name][1].decode()
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        log = os.path.join(work, "log")
        fake = os.path.join(work, "initd")
        with open(fake, "w") as f:
            f.write(f'#!/bin/sh\necho "$*" >> {log}\n[ "$1" != enabled ]\n')
        os.chmod(fake, 0o755)
        script = os.path.join(work, name)
        with open(script, "w") as f:
            f.write(text.replace("/etc/init.d/cubegw", fake)
                    .replace("/etc/uci-defaults/90-cubegw", os.path.join(work, "none"))
                    .replace("/usr/lib/cubegw", os.path.join(work, "lib")))
        result = subprocess.run([SH, script], env=dict(env, PATH=os.environ["PATH"]),
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return f.read().split()

    def test_scripts_run(self):
        """The scripts run under sh: live actions, nothing but links in an image."""
        if SH is None:
            raise unittest.SkipTest("no sh")
        self.assertEqual(self._run_script("postinst", {}), ["enable", "start"])
        self.assertEqual(self._run_script("prerm", {}), ["stop", "disable"])
        self.assertEqual(self._run_script("postinst", {"PKG_UPGRADE": "1"}), ["enabled"])
        self.assertEqual(self._run_script("prerm", {"PKG_UPGRADE": "1"}), [])
        instroot = os.path.abspath(self.mktemp())
        os.makedirs(instroot)
        self.assertEqual(self._run_script("postinst", {"IPKG_INSTROOT": instroot}), [])
        self.assertEqual(sorted(os.listdir(os.path.join(instroot, "etc", "rc.d"))),
                         ["K10cubegw", "S95cubegw"])
        self.assertEqual(os.readlink(os.path.join(instroot, "etc/rc.d/S95cubegw")),
                         "../init.d/cubegw")
        self.assertEqual(self._run_script("prerm", {"IPKG_INSTROOT": instroot}), [])
        self.assertEqual(os.listdir(os.path.join(instroot, "etc", "rc.d")), [])


class PayloadTests(_Built):

    def test_paths_and_modes(self):
        """The init script, plugin, package, configuration and scripts are there."""
        for name, mode in DATA_FILES.items():
            self.assertIn(name, self.data_by_name)
            info, _ = self.data_by_name[name]
            self.assertTrue(info.isfile(), name)
            self.assertEqual(info.mode, mode, name)

    def test_file_contents(self):
        """Files are copied unchanged from the tree."""
        for src, dest in [("etc/config/cubegw", "./etc/config/cubegw"),
                          ("openwrt/files/cubegw.init", "./etc/init.d/cubegw"),
                          ("openwrt/files/cubegw.yaml", "./etc/cubegw/cubegw.yaml"),
                          ("cubegw/tap.py", "./usr/lib/cubegw/cubegw/tap.py"),
                          ("twisted/plugins/cubegw_plugin.py",
                           "./usr/lib/cubegw/twisted/plugins/cubegw_plugin.py")]:
            self.assertEqual(self.data_by_name[dest][1].decode("utf-8"), _read(src), dest)

    def test_uci_defaults_parse(self):
        """The shipped /etc/config/cubegw parses with cubegw's UCI reader."""
        package = uci.parse(self.data_by_name["./etc/config/cubegw"][1].decode("utf-8"))
        self.assertEqual(package.section("mgt").options["MgtURL"], "189cube")

    def test_nothing_extra(self):
        """No tests, bytecode, cubeplat or twisted/plugins/__init__.py in the payload."""
        names = [i.name for i, _ in self.data]
        for name in names:
            parts = name.split("/")
            self.assertNotIn("tests", parts, name)
            self.assertNotIn("__pycache__", parts, name)
            self.assertFalse(name.endswith((".pyc", ".pyo", "dropin.cache")), name)
            self.assertNotIn("cubeplat", name)
        self.assertEqual(
            [n for n in names if n.startswith("./usr/lib/cubegw/twisted")],
            ["./usr/lib/cubegw/twisted", "./usr/lib/cubegw/twisted/plugins",
             "./usr/lib/cubegw/twisted/plugins/cubegw_plugin.py"])
        self.assertNotIn("./usr/lib/cubegw/cubegw/platform", names)
        python = [n for n in names if n.startswith("./usr/lib/cubegw/") and
                  self.data_by_name[n][0].isfile()]
        self.assertTrue(all(n.endswith(".py") for n in python), python)

    def test_keep_list(self):
        """The sysupgrade keep list names the UCI file and the YAML directory."""
        keep = self.data_by_name["./lib/upgrade/keep.d/cubegw"][1].decode().split()
        self.assertEqual(keep, ["/etc/config/cubegw", "/etc/cubegw/"])

    def test_router_yaml(self):
        """The router's YAML loads, with the OpenWrt confdir, state_dir and a WAN device."""
        root = self.extract_data()
        config = load_config(os.path.join(root, "etc/cubegw/cubegw.yaml"))
        self.assertEqual(config.confdir, "/etc/config")
        self.assertEqual(config.state_dir, "/var/run/cubegw")
        self.assertEqual(config.device.wan_interface, "wan")

    def test_imports_and_plugin(self):
        """The unpacked payload imports, and twistd finds its cubegw plugin."""
        root = self.extract_data()
        lib = os.path.join(root, "usr", "lib", "cubegw")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run([sys.executable, "-c", _PROBE, lib], cwd=root, env=env,
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        probe = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertIn("cubegw", probe["names"])
        self.assertTrue(probe["on_path"])
        self.assertEqual(probe["alone"], ["cubegw"])
        self.assertTrue(probe["plugin_file"].startswith(lib), probe["plugin_file"])
        self.assertTrue(probe["cubegw_file"].startswith(lib), probe["cubegw_file"])
        self.assertIn("cubegw.tap", probe["modules"])

    def test_twistd_command(self):
        """The init script's command (the launcher) runs from the payload: --version, and a
        missing configuration is one line and exit status 1."""
        init = _read("openwrt/files/cubegw.init")
        self.assertIn('procd_set_param command "$PROG" -m cubegw.daemon --config "$CONFIG" '
                      '--syslog', init)
        root = self.extract_data()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = os.path.join(root, "usr", "lib", "cubegw")
        result = subprocess.run([sys.executable, "-m", "cubegw.daemon", "--version"],
                                cwd=root, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual((result.returncode, result.stdout.strip()),
                         (0, f"cubegw {build_ipk.version()}"), result.stderr)
        result = subprocess.run(
            [sys.executable, "-m", "cubegw.daemon", "--config", os.path.join(root, "none")],
            cwd=root, env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn("cubegw: ", result.stderr)
        self.assertIn("cannot read", result.stderr)

    def test_ctl_wrapper(self):
        """/usr/bin/cubegw-ctl runs cubegw-ctl from the payload."""
        if SH is None:
            raise unittest.SkipTest("no sh")
        root = self.extract_data()
        confdir = os.path.join(root, "etc", "config")
        config = os.path.join(root, "test.yaml")
        with open(config, "w") as f:
            f.write(f"store:\n  confdir: {json.dumps(confdir)}\n"
                    f"state_dir: {json.dumps(os.path.join(root, 'run'))}\n")
        wrapper = os.path.join(root, "usr", "bin", "cubegw-ctl")
        with open(wrapper) as f:
            text = f.read()
        self.assertIn("PYTHONPATH=/usr/lib/cubegw", text)
        with open(wrapper, "w") as f:
            f.write(text.replace("/usr/bin/python3", sys.executable)
                    .replace("/usr/lib/cubegw", os.path.join(root, "usr", "lib", "cubegw")))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run([SH, wrapper, "--config", config, "mgt", "get", "MgtURL"],
                                cwd=root, env=env, capture_output=True, text=True,
                                timeout=120)
        self.assertEqual((result.returncode, result.stdout), (0, "189cube\n"), result.stderr)

    def test_shell_syntax(self):
        """The init script, uci-defaults, cubegw-ctl and maintainer scripts pass sh -n."""
        if SH is None:
            raise unittest.SkipTest("no sh")
        scripts = {n: c for n, (_, c) in self.control_by_name.items()
                   if n in ("./postinst", "./prerm")}
        for name in ("./etc/init.d/cubegw", "./etc/uci-defaults/90-cubegw",
                     "./usr/bin/cubegw-ctl"):
            scripts[name] = self.data_by_name[name][1]
        for name, content in scripts.items():
            result = subprocess.run([SH, "-n"], input=content, capture_output=True,
                                    timeout=30)
            self.assertEqual(result.returncode, 0, (name, result.stderr))


class InitScriptTests(unittest.TestCase):

    def setUp(self):
        self.init = _read("openwrt/files/cubegw.init")

    def test_procd(self):
        """A procd service started at 95, with respawn and output to logd."""
        self.assertTrue(self.init.startswith("#!/bin/sh /etc/rc.common\n"))
        for line in ["START=95", "USE_PROCD=1", "procd_open_instance", "procd_close_instance",
                     "procd_set_param env PYTHONPATH=/usr/lib/cubegw",
                     "procd_set_param respawn 3600 5 0", "procd_set_param stdout 1",
                     'procd_set_param file "$CONFIG"',
                     "procd_set_param stderr 1", "CONFIG=/etc/cubegw/cubegw.yaml"]:
            self.assertIn(line, self.init)

    def test_reload(self):
        """A change of the cubegw config reloads, and reload sends SIGHUP, not a restart."""
        triggers = self.init.split("service_triggers()", 1)[1].split("}", 1)[0]
        self.assertIn("procd_add_reload_trigger cubegw", triggers)
        reload = self.init.split("reload_service()", 1)[1].split("}", 1)[0]
        self.assertEqual([line.strip() for line in reload.splitlines()
                          if line.strip() and not line.strip().startswith("#")],
                         ["{", "procd_send_signal cubegw"])


class UciDefaultsTests(unittest.TestCase):

    def setUp(self):
        self.script = _read("openwrt/files/cubegw.uci-defaults")

    def test_matches_defaults(self):
        """The uci-defaults script adds exactly the sections and options of etc/config/cubegw."""
        sections, options = {}, {}
        for line in self.script.splitlines():
            words = line.split()
            if words[:1] == ["cubegw_section"]:
                sections[words[1]] = words[2]
            elif words[:1] == ["cubegw_option"]:
                value = line.split(None, 3)[3]
                self.assertTrue(value.startswith("'") and value.endswith("'"), line)
                options.setdefault(words[1], {})[words[2]] = value[1:-1]
        package = uci.parse(_read("etc/config/cubegw"))
        self.assertEqual(sections, {s.name: s.type for s in package.sections})
        self.assertEqual(options, {s.name: s.options for s in package.sections if s.options})

    def test_runs(self):
        """With a fake uci: missing sections and options are added, set values kept."""
        if SH is None:
            raise unittest.SkipTest("no sh")
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        conf = os.path.join(work, "cubegw")
        with open(conf, "w") as f:
            f.write("config mgt 'mgt'\n\toption MgtURL 'example.net'\n")
        fake = os.path.join(work, "uci")
        with open(fake, "w") as f:
            f.write(f"#!{sys.executable}\n" + FAKE_UCI.format(conf=conf))
        os.chmod(fake, 0o755)
        script = self.script.replace("/etc/config/cubegw", conf)
        env = dict(os.environ, PATH=work + os.pathsep + os.environ["PATH"])
        env.pop("PYTHONPATH", None)
        result = subprocess.run([SH, "-c", script], env=env, capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        package = uci.parse(_read(conf))
        self.assertEqual(package.section("mgt").options["MgtURL"], "example.net")
        self.assertEqual(package.section("mgt").options["Port"], "12112")
        self.assertEqual(package.section("registration").options, {"ServerPort": "0"})
        self.assertEqual([s.name for s in package.sections],
                         ["mgt", "registration", "app", "itms"])


class FeedMakefileTests(unittest.TestCase):

    def setUp(self):
        self.makefile = _read("openwrt/Makefile")

    def test_package(self):
        """The feed Makefile has the version of setup.cfg, PKGARCH all and the same DEPENDS."""
        self.assertIn("include $(TOPDIR)/rules.mk", self.makefile)
        self.assertIn("include $(INCLUDE_DIR)/package.mk", self.makefile)
        self.assertIn(f"PKG_VERSION:={build_ipk.version()}\n", self.makefile)
        self.assertIn("PKGARCH:=all", self.makefile)
        depends = re.search(r"^\s*DEPENDS:=(.*)$", self.makefile, re.M).group(1).split()
        self.assertEqual(depends, ["+" + d.split()[0] for d in DEPENDS])
        extra = re.search(r"^\s*EXTRA_DEPENDS:=(.*)$", self.makefile, re.M).group(1)
        self.assertEqual(extra, "python3-twisted (>= 22.4.0)")
        self.assertIn("$(eval $(call BuildPackage,cubegw))", self.makefile)

    def test_conffiles(self):
        """The feed package's conffiles are the ipk's."""
        conffiles = self.makefile.split("define Package/cubegw/conffiles\n", 1)[1]
        self.assertEqual(conffiles.split("endef", 1)[0].split(), build_ipk.CONFFILES)

    def test_installs_payload(self):
        """Package/cubegw/install installs every non-Python path of the ipk's payload."""
        install = self.makefile.split("define Package/cubegw/install\n", 1)[1]
        install = install.split("endef", 1)[0]
        for path in build_ipk.payload():
            if not path.startswith("usr/lib/cubegw/cubegw/"):
                self.assertIn(f"$(1)/{path}", install.replace("\\\n\t\t", ""))

    def test_sources(self):
        """A tree builds from itself; a feed's copy from the release tarball with its hash,
        and every path the install section reads is in the tree (the tarball's layout)."""
        self.assertIn("PKG_LICENSE_FILES:=LICENSE\n", self.makefile)
        self.assertTrue(os.path.isfile(os.path.join(ROOT, "LICENSE")))
        self.assertIn("CUBEGW_SRC ?= $(if $(wildcard $(CURDIR)/../cubegw/__init__.py),"
                      "$(CURDIR)/..)", self.makefile)
        feed = self.makefile.split("ifeq ($(CUBEGW_SRC),)\n", 1)[1].split("endif", 1)[0]
        self.assertIn("PKG_SOURCE:=$(PKG_NAME)-$(PKG_VERSION).tar.gz", feed)
        self.assertIn("PKG_SOURCE_URL:=", feed)
        self.assertIn("PKG_HASH:=", feed)
        read = re.findall(r"\$\(PKG_BUILD_DIR\)/([\w./-]+)", self.makefile.split(
            "define Package/cubegw/install\n", 1)[1].split("endef", 1)[0])
        self.assertTrue(read)
        for path in read:
            self.assertTrue(os.path.exists(os.path.join(ROOT, path)), path)
