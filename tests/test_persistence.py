"""What survives what: every router event against every class of data.

A router is three directories: ``rom`` (the read-only image, with the
package's default files), ``overlay`` (the writable layer that ``firstboot``
wipes) and ``persist`` (a partition outside the overlay, where
cubegw.store.mirror keeps X_CT-COM_Mgt and the stored operation platform).
A file is read from the overlay if it is there, else from the ROM; a write
copies it up first, as overlayfs does.  Events are functions over the three:

- reboot: nothing changes on disk;
- sysupgrade: a new overlay holding only what /lib/upgrade/keep.d/cubegw and
  the conffiles name, then first boot (uci-defaults);
- sysupgrade -n, firstboot (factory reset of the router): an empty overlay,
  then first boot (uci-defaults restores the mirror);
- ITMS / APP factory reset: Store.factory_reset_itms / factory_reset_app.

Expected outcomes: protocol.md section 10 and openwrt/README.md.
"""

import importlib.util
import io
import os
import shutil
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from cubegw.store import Store, mirror
from tests.helpers.store import FAKE_UCI, extended_schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "etc/config/cubegw"
YAML = "etc/cubegw/cubegw.yaml"
PENDING = "etc/cubegw/restore-pending"
SH = shutil.which("sh")

_spec = importlib.util.spec_from_file_location(
    "build_ipk", os.path.join(ROOT, "openwrt", "build_ipk.py"))
build_ipk = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_ipk)


def _keep_list():
    """What sysupgrade keeps: the package's keep.d list and its conffiles."""
    with open(os.path.join(ROOT, "openwrt", "files", "cubegw.keep")) as f:
        kept = f.read().split()
    return [p.lstrip("/") for p in kept + build_ipk.CONFFILES]


class Router:
    """rom / overlay / persist directories, and the events of section 10."""

    def __init__(self, base, persist_configured=True):
        self.rom = os.path.join(base, "rom")
        self.overlay = os.path.join(base, "overlay")
        self.persist = os.path.join(base, "persist")
        for d in (self.rom, self.overlay, self.persist):
            os.makedirs(d)
        os.makedirs(os.path.join(self.rom, "etc", "config"))
        os.makedirs(os.path.join(self.rom, "etc", "cubegw"))
        shutil.copy(os.path.join(ROOT, "etc", "config", "cubegw"),
                    os.path.join(self.rom, CONFIG))
        yaml = 'store:\n  confdir: "/etc/config"\n'
        if persist_configured:
            yaml += f'  persist_dir: "{self.persist}"\n'
        with open(os.path.join(self.rom, YAML), "w") as f:
            f.write(yaml)
        self.schema = extended_schema()
        self.log = []

    # -- the file system view ----------------------------------------------------------

    def path(self, rel):
        """The overlay's copy of ``rel``, copied up from the ROM if need be."""
        upper = os.path.join(self.overlay, rel)
        lower = os.path.join(self.rom, rel)
        if not os.path.exists(upper) and os.path.exists(lower):
            os.makedirs(os.path.dirname(upper), exist_ok=True)
            shutil.copy(lower, upper)
        os.makedirs(os.path.dirname(upper), exist_ok=True)
        return upper

    def store(self):
        """The daemon's Store, with the mirror kept in step as the daemon wires it."""
        sync = mirror.MirrorSync(mirror.DirectoryMirror(self.persist), self.schema,
                                 pending=self.path(PENDING), log=self.log.append)
        return Store(self.path(CONFIG), schema=self.schema, on_contents=sync)

    # -- events ----------------------------------------------------------------------

    def first_boot(self):
        """/etc/uci-defaults/90-cubegw: restore the mirror, then fill in defaults."""
        out, err = io.StringIO(), io.StringIO()
        code = mirror.main(["restore", "--config", self.path(CONFIG), "--yaml",
                            self.path(YAML), "--pending", self.path(PENDING)],
                           out=out, err=err)
        Store(self.path(CONFIG), schema=self.schema).save()
        return code, out.getvalue() + err.getvalue()

    def reboot(self):
        pass

    def sysupgrade(self):
        kept = {}
        for rel in _keep_list():
            source = os.path.join(self.overlay, rel)
            if os.path.isfile(source):
                with open(source, "rb") as f:
                    kept[rel] = f.read()
            elif os.path.isdir(source):
                for name in os.listdir(source):
                    if os.path.isfile(os.path.join(source, name)):
                        with open(os.path.join(source, name), "rb") as f:
                            kept[os.path.join(rel, name)] = f.read()
        shutil.rmtree(self.overlay)
        os.makedirs(self.overlay)
        for rel, data in kept.items():
            os.makedirs(os.path.dirname(os.path.join(self.overlay, rel)), exist_ok=True)
            with open(os.path.join(self.overlay, rel), "wb") as f:
                f.write(data)
        return self.first_boot()

    def firstboot(self):
        shutil.rmtree(self.overlay)
        os.makedirs(self.overlay)
        return self.first_boot()

    sysupgrade_n = firstboot

    def itms_reset(self):
        self.store().factory_reset_itms()

    def app_reset(self):
        self.store().factory_reset_app()


#: (section, name) of one parameter of each data class, a set value and its default.
DATA = {
    "X_CT-COM_Mgt": [(("mgt", "MgtURL"), "dist.example.net", "189cube"),
                     (("mgt", "Heartbeat"), 30, 60)],
    "registration": [(("registration", "ServerAddr"), "op.example.net", ""),
                     (("registration", "ServerPort"), 9000, 0)],
    "shared": [(("shared", "SSID"), "home-net", "ChinaNet-x")],
    "shared access": [(("shared", "Blocked"), "aa:bb", "")],
    "APP-only": [(("app", "UserID"), "user-1", ""), (("app", "WiFiTimer"), True, False)],
    "ITMS-only": [(("itms", "ProvisioningCode"), "PC-1", "")],
}
ACCESS_MAC = "00:11:22:33:44:55"

K, D = "kept", "default"
#: protocol.md section 10 and the deck: event -> data class -> outcome.
EXPECTED = {
    "reboot": {c: K for c in DATA},
    "sysupgrade": {c: K for c in DATA},
    "firstboot": {"X_CT-COM_Mgt": K, "registration": K, "shared": D, "shared access": D,
                  "APP-only": D, "ITMS-only": D},
    "sysupgrade_n": {"X_CT-COM_Mgt": K, "registration": K, "shared": D,
                     "shared access": D, "APP-only": D, "ITMS-only": D},
    "itms_reset": {"X_CT-COM_Mgt": K, "registration": K, "shared": D, "shared access": D,
                   "APP-only": K, "ITMS-only": D},
    "app_reset": {"X_CT-COM_Mgt": K, "registration": K, "shared": K, "shared access": D,
                  "APP-only": D, "ITMS-only": K},
}


class MatrixTests(SynchronousTestCase):
    """Each event x each data class, on a router whose data were all set by the daemon."""

    def configured_router(self, **kwargs):
        router = Router(os.path.abspath(self.mktemp()), **kwargs)
        store = router.store()
        store.update({key: value for rows in DATA.values() for key, value, _ in rows})
        store.add_section("access", ACCESS_MAC, {"Internet": False})
        return router

    def outcome(self, router):
        """data class -> "kept" / "default" / a description of a mix."""
        store = Store(router.path(CONFIG), schema=router.schema)
        result = {}
        for cls, rows in DATA.items():
            states = set()
            for key, value, default in rows:
                got = store.get(*key)
                states.add(K if got == value else D if got == default else f"{key}={got!r}")
            if cls == "shared access":
                states.add(K if store.get_section("access", ACCESS_MAC) else D)
            result[cls] = states.pop() if len(states) == 1 else sorted(states)
        return result

    def check(self, event):
        router = self.configured_router()
        getattr(router, event)()
        self.assertEqual(self.outcome(router), EXPECTED[event])
        self.assertEqual(router.log, [])
        return router

    def test_reboot(self):
        """A reboot keeps every data class."""
        self.check("reboot")

    def test_sysupgrade(self):
        """keep.d and the conffiles carry the whole UCI file over."""
        self.assertIn(CONFIG, _keep_list())
        self.check("sysupgrade")

    def test_firstboot(self):
        """The overlay is wiped; uci-defaults restores mgt and registration only."""
        self.check("firstboot")

    def test_sysupgrade_without_keeping(self):
        """sysupgrade -n: uci-defaults restores mgt and registration only; the rest is default."""
        self.check("sysupgrade_n")

    def test_itms_reset(self):
        """The ITMS reset clears the shared and ITMS-only data; mgt, registration and APP stay."""
        self.check("itms_reset")

    def test_app_reset(self):
        """The APP reset clears the shared access and APP-only data; the rest stays."""
        self.check("app_reset")

    def test_every_cell(self):
        """The table covers every event and every class, and so do the tests above."""
        for event, row in EXPECTED.items():
            self.assertEqual(set(row), set(DATA), event)
            self.assertTrue(callable(getattr(Router, event)), event)

    def test_resets_then_firstboot(self):
        """Gateway resets then a router reset: X_CT-COM_Mgt still comes back."""
        router = self.configured_router()
        router.itms_reset()
        router.app_reset()
        router.firstboot()
        self.assertEqual(self.outcome(router), EXPECTED["firstboot"])

    def test_firstboot_twice(self):
        """The mirror is not consumed: a second reset restores it again."""
        router = self.configured_router()
        router.firstboot()
        router.firstboot()
        self.assertEqual(self.outcome(router), EXPECTED["firstboot"])

    def test_change_after_restore(self):
        """A change made after a restore is what the next reset brings back."""
        router = self.configured_router()
        router.firstboot()
        router.store().set("mgt", "MgtURL", "new.example.net")
        router.firstboot()
        self.assertEqual(Store(router.path(CONFIG)).get("mgt", "MgtURL"), "new.example.net")

    def test_outside_edit_mirrored_at_reload(self):
        """A `uci set` picked up by the daemon's reload is mirrored too."""
        router = self.configured_router()
        store = router.store()
        with open(router.path(CONFIG)) as f:
            text = f.read()
        with open(router.path(CONFIG), "w") as f:
            f.write(text.replace("dist.example.net", "uci.example.net"))
        store.reload()
        router.firstboot()
        self.assertEqual(Store(router.path(CONFIG)).get("mgt", "MgtURL"), "uci.example.net")

    def test_no_mirror_configured(self):
        """Without store.persist_dir, firstboot loses X_CT-COM_Mgt (README's warning)."""
        router = self.configured_router(persist_configured=False)
        code, message = router.firstboot()
        self.assertEqual(code, 0)
        self.assertIn("no mirror configured", message)
        self.assertEqual(set(self.outcome(router).values()), {D})

    def test_first_ever_boot(self):
        """No mirror saved yet: the ROM default stays as it is."""
        router = Router(os.path.abspath(self.mktemp()))
        code, message = router.first_boot()
        self.assertEqual(code, 0, message)
        self.assertIn("no mirror saved", message)
        self.assertEqual(self.outcome(router)["X_CT-COM_Mgt"], D)

    def test_corrupt_mirror(self):
        """A corrupt mirror is ignored with a message: the ROM default stays, and the
        daemon then writes a good mirror."""
        router = self.configured_router()
        with open(os.path.join(router.persist, "mgt"), "r+b") as f:
            f.seek(-20, os.SEEK_END)
            f.write(b"garbage garbage\n")
        code, message = router.firstboot()
        self.assertEqual(code, 1)
        self.assertIn("checksum mismatch", message)
        self.assertEqual(self.outcome(router)["X_CT-COM_Mgt"], D)
        self.assertFalse(os.path.exists(router.path(PENDING)))
        router.store().set("mgt", "MgtURL", "again.example.net")
        router.firstboot()
        self.assertEqual(Store(router.path(CONFIG)).get("mgt", "MgtURL"), "again.example.net")

    def test_not_mounted_at_first_boot(self):
        """The partition is mounted only later: the restore is pending, the daemon
        does not overwrite the mirror with defaults, the init script's retry restores."""
        router = self.configured_router()
        hidden = router.persist + ".unmounted"
        os.rename(router.persist, hidden)
        code, message = router.firstboot()
        self.assertEqual(code, 3, message)
        self.assertTrue(os.path.exists(router.path(PENDING)))
        os.rename(hidden, router.persist)  # mounted now
        router.store().set("app", "UserID", "someone")  # daemon writes meanwhile
        self.assertIn("restore is pending", router.log[-1])
        # /etc/init.d/cubegw start: the retry
        code = mirror.main(["restore", "--config", router.path(CONFIG), "--yaml",
                            router.path(YAML), "--pending", router.path(PENDING)],
                           out=io.StringIO(), err=io.StringIO())
        self.assertEqual(code, 0)
        self.assertFalse(os.path.exists(router.path(PENDING)))
        self.assertEqual(self.outcome(router)["X_CT-COM_Mgt"], K)
        self.assertEqual(self.outcome(router)["registration"], K)


class UciDefaultsScriptTests(SynchronousTestCase):
    """The shipped 90-cubegw, run by sh with a fake uci, restores after firstboot."""

    def test_script_restores(self):
        """The shipped uci-defaults script, run by sh after firstboot, restores mgt and
        registration from the mirror and clears the pending mark."""
        if SH is None:
            raise self.skipTest("no sh")
        router = Router(os.path.abspath(self.mktemp()))
        store = router.store()
        store.update({("mgt", "MgtURL"): "dist.example.net",
                      ("registration", "ServerAddr"): "op.example.net",
                      ("registration", "ServerPort"): 9000,
                      ("app", "UserID"): "user-1"})
        shutil.rmtree(router.overlay)  # firstboot
        os.makedirs(router.overlay)
        conf, yaml, pending = router.path(CONFIG), router.path(YAML), router.path(PENDING)
        bindir = os.path.join(router.overlay, "bin")
        os.makedirs(bindir)
        fake = os.path.join(bindir, "uci")
        with open(fake, "w") as f:
            f.write(f"#!{sys.executable}\n" + FAKE_UCI.format(conf=conf))
        os.chmod(fake, 0o755)
        logger = os.path.join(bindir, "logger")
        with open(logger, "w") as f:
            f.write(f"#!/bin/sh\ncat >> {os.path.join(router.overlay, 'log')}\n")
        os.chmod(logger, 0o755)
        with open(os.path.join(ROOT, "openwrt", "files", "cubegw.uci-defaults")) as f:
            script = f.read()
        self.assertIn("CUBEGW_LIB=/usr/lib/cubegw\n", script)
        script = (script.replace("CUBEGW_LIB=/usr/lib/cubegw", f"CUBEGW_LIB={ROOT}")
                  .replace("/usr/bin/python3", sys.executable)
                  .replace("/etc/config/cubegw", conf)
                  .replace("/etc/cubegw/cubegw.yaml", yaml)
                  .replace("/etc/cubegw/restore-pending", pending))
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        env.pop("PYTHONPATH", None)
        result = subprocess.run([SH, "-c", script], env=env, capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(router.overlay, "log")) as f:
            self.assertIn("restored from", f.read())
        restored = Store(conf)
        self.assertEqual(restored.get("mgt", "MgtURL"), "dist.example.net")
        self.assertEqual(restored.get("mgt", "Port"), 12112)
        self.assertEqual(restored.get("registration", "ServerAddr"), "op.example.net")
        self.assertEqual(restored.get("registration", "ServerPort"), 9000)
        self.assertEqual(restored.get("app", "UserID"), "")
        self.assertFalse(os.path.exists(pending))
