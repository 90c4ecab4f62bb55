"""Tests for cubegw.store.mirror: the copy of mgt and registration outside the overlay."""

import io
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from cubegw.store import FileSystem, Store, StoreError, mirror, uci
from tests.helpers.store import FailingOS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULTS_FILE = os.path.join(ROOT, "etc", "config", "cubegw")

CONFIG_TEXT = """
config mgt 'mgt'
\toption MgtURL 'dist.example.net'
\toption Port '2000'
\toption Version '1.0'

config registration 'registration'
\toption ServerAddr 'op.example.net'
\toption ServerPort '9000'

config app 'app'
\toption UserID 'user-1'

config itms 'itms'
\toption ProvisioningCode 'PC'
"""


def sections(text=CONFIG_TEXT):
    return mirror.extract(uci.parse(text))


class FakeEnv:
    """fw_setenv / fw_printenv over a dict, recording the commands."""

    def __init__(self):
        self.env = {}
        self.calls = []
        self.fail = None

    def __call__(self, argv):
        self.calls.append(list(argv))
        if self.fail is not None:
            raise self.fail
        if argv[0] == "fw_setenv":
            self.env[argv[1]] = argv[2]
            return 0, "", ""
        if argv[0] == "fw_printenv":
            name = argv[-1]
            if name not in self.env:
                return 1, "", f'## Error: "{name}" not defined\n'
            return 0, self.env[name] + "\n", ""
        raise AssertionError(argv)


class PureTests(SynchronousTestCase):

    def test_persistent_sections(self):
        """The mirror keeps the mgt and registration sections, in schema order."""
        self.assertEqual(mirror.persistent_section_names(), ["mgt", "registration"])

    def test_extract(self):
        """Only mgt and registration, as copies."""
        package = uci.parse(CONFIG_TEXT)
        found = mirror.extract(package)
        self.assertEqual([s.name for s in found], ["mgt", "registration"])
        found[0].options["MgtURL"] = "x"
        self.assertEqual(package.section("mgt").options["MgtURL"], "dist.example.net")

    def test_merge_into_rom_default(self):
        """The mirror wins for mgt and registration; every other section of the ROM
        default is kept; ROM options the mirror lacks stay."""
        with open(DEFAULTS_FILE) as f:
            rom = uci.parse(f.read())
        merged, changed = mirror.merge(rom, sections())
        self.assertTrue(changed)
        self.assertEqual([s.name for s in merged.sections],
                         ["mgt", "registration", "app", "itms"])
        mgt = merged.section("mgt").options
        self.assertEqual((mgt["MgtURL"], mgt["Port"], mgt["Heartbeat"]),
                         ("dist.example.net", "2000", "60"))
        self.assertEqual(merged.section("registration").options,
                         {"ServerAddr": "op.example.net", "ServerPort": "9000"})
        self.assertEqual(merged.section("app").options, {})
        self.assertEqual(rom.section("mgt").options["MgtURL"], "189cube")  # not modified

    def test_merge_unchanged(self):
        """Merging a mirror into a file that already holds it changes nothing."""
        merged, changed = mirror.merge(uci.parse(CONFIG_TEXT), sections())
        self.assertFalse(changed)

    def test_merge_missing_sections(self):
        """Sections the file lacks are added from the mirror."""
        merged, changed = mirror.merge(uci.Package(), sections())
        self.assertTrue(changed)
        self.assertEqual([s.name for s in merged.sections], ["mgt", "registration"])

    def test_file_round_trip(self):
        """decode_file gives back the sections encode_file was given."""
        data = mirror.encode_file(sections())
        self.assertEqual(mirror.decode_file(data), sections())

    def test_file_corrupt(self):
        """A truncated, edited or foreign file is refused with a clear reason."""
        data = mirror.encode_file(sections())
        for bad, reason in [(data[:-10], "checksum"),
                            (data.replace(b"dist", b"DIST"), "checksum"),
                            (b"config mgt 'mgt'\n", "bad header"),
                            (b"", "bad header"),
                            (b"\n".join(data.split(b"\n")[:2]) + b"\n", "no checksum line")]:
            e = self.assertRaises(mirror.MirrorError, mirror.decode_file, bad, where="F")
            self.assertIn(reason, str(e))
            self.assertTrue(str(e).startswith("F: "), str(e))

    def test_file_invalid_values(self):
        """A whole file with a value the schema refuses, or a foreign section, is refused."""
        for text, reason in [
                ("config mgt 'mgt'\n\toption Port 'x'\n", "Port"),
                ("config mgt 'mgt'\n\tlist MgtURL 'a'\n", "single value"),
                ("config app 'app'\n\toption UserID 'u'\n", "unexpected section"),
                ("\n", "no section")]:
            data = mirror.encode_file(uci.parse(text).sections)
            e = self.assertRaises(mirror.MirrorError, mirror.decode_file, data)
            self.assertIn(reason, str(e))

    def test_env_round_trip(self):
        """encode_env makes one safe token that decode_env turns back into the sections."""
        value = mirror.encode_env(sections())
        self.assertRegex(value, r"^1\.[A-Za-z0-9_-]+\.[0-9a-f]{8}$")
        self.assertEqual(mirror.decode_env(value), sections())

    def test_env_escaping(self):
        """Quotes, spaces, '=', ';' and non-ASCII in values survive, and the encoded
        value has none of them."""
        text = ("config mgt 'mgt'\n\toption MgtURL 'a=b;c\"d$(x)`\u00e9'\n"
                "config registration 'registration'\n\toption Extra 'x y'\n")
        value = mirror.encode_env(sections(text))
        self.assertRegex(value, r"^[A-Za-z0-9_.-]+$")
        decoded = mirror.decode_env(value)
        self.assertEqual(decoded[0].options["MgtURL"], "a=b;c\"d$(x)`\u00e9")
        self.assertEqual(decoded[1].options["Extra"], "x y")

    def test_env_corrupt(self):
        """A truncated, re-versioned, edited or foreign env value is refused."""
        value = mirror.encode_env(sections())
        for bad in [value[:-1], value[:20], "2" + value[1:], "garbage", "",
                    value.replace(value.split(".")[1][:4], "AAAA", 1),
                    "1.e30.00000000"]:
            self.assertRaises(mirror.MirrorError, mirror.decode_env, bad)

    def test_read_store_keys(self):
        """The store mapping is read from the daemon's YAML ({} when there is none)."""
        text = ('device:\n  mac: "auto"\nstore:\n  confdir: "/etc/config"\n'
                '  persist_dir: "/mnt/persist/cubegw"  # a comment\n  fw_env: false\n'
                'lan:\n  addresses: []\n')
        self.assertEqual(mirror.read_store_keys(text)["persist_dir"], "/mnt/persist/cubegw")
        self.assertEqual(mirror.read_store_keys("store:\n  fw_env: true\n"),
                         {"fw_env": True})
        self.assertEqual(mirror.read_store_keys("device: {}\n"), {})
        self.assertEqual(mirror.read_store_keys(""), {})

    def test_read_store_keys_without_yaml(self):
        """The line reader used where PyYAML is missing reads the same keys."""
        saved = sys.modules.get("yaml")
        sys.modules["yaml"] = None  # import yaml raises ImportError

        def put_back():
            if saved is None:
                sys.modules.pop("yaml", None)
            else:
                sys.modules["yaml"] = saved
        self.addCleanup(put_back)
        text = ('# c\nstore:\n  # c\n  confdir: "/etc/config"\n'
                "  persist_dir: '/mnt/p'  # comment\n  fw_env: true\nstate_dir: x\n"
                "lan:\n  persist_dir: no\n")
        self.assertEqual(mirror.read_store_keys(text),
                         {"confdir": "/etc/config", "persist_dir": "/mnt/p", "fw_env": True})

    def test_mirror_from_config(self):
        """persist_dir gives a DirectoryMirror, fw_env a FwEnvMirror, neither None;
        a wrong type or both at once is refused."""
        self.assertIsNone(mirror.mirror_from_config({}))
        self.assertIsNone(mirror.mirror_from_config({"persist_dir": "", "fw_env": False}))
        self.assertIsInstance(mirror.mirror_from_config({"persist_dir": "/p"}),
                              mirror.DirectoryMirror)
        self.assertIsInstance(mirror.mirror_from_config({"fw_env": True}), mirror.FwEnvMirror)
        for bad in [{"persist_dir": 3}, {"fw_env": "yes"},
                    {"persist_dir": "/p", "fw_env": True}]:
            self.assertRaises(mirror.MirrorError, mirror.mirror_from_config, bad)


class DirectoryMirrorTests(SynchronousTestCase):

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.mirror = mirror.DirectoryMirror(self.dir)

    def test_provides_interface(self):
        """It provides IMirror, as restore, save and MirrorSync expect."""
        self.assertTrue(verifyObject(mirror.IMirror, self.mirror))

    def test_round_trip(self):
        """Nothing saved loads as None; a save is read back, in a 0600 file of
        readable UCI holding only the persistent sections."""
        self.assertIsNone(self.mirror.load())
        self.mirror.save(sections())
        self.assertEqual(self.mirror.load(), sections())
        self.assertEqual(os.stat(self.mirror.file).st_mode & 0o777, 0o600)
        with open(self.mirror.file) as f:
            text = f.read()
        self.assertIn("config mgt 'mgt'", text)  # readable UCI
        self.assertNotIn("config app", text)

    def test_not_mounted(self):
        """A missing directory is never created: not mounted."""
        gone = mirror.DirectoryMirror(os.path.join(self.dir, "nope"))
        self.assertRaises(mirror.MirrorUnavailable, gone.load)
        self.assertRaises(mirror.MirrorUnavailable, gone.save, sections())
        self.assertFalse(os.path.exists(gone.path))

    def test_atomic(self):
        """A failed write (disk full at fsync, rename refused) leaves the old copy
        whole and no temp file behind."""
        self.mirror.save(sections())
        other = sections(CONFIG_TEXT.replace("dist.example.net", "other.example.net"))
        for name in ("fsync", "write", "replace"):
            failing = mirror.DirectoryMirror(self.dir, fs=FileSystem(FailingOS(name)))
            e = self.assertRaises(mirror.MirrorError, failing.save, other)
            self.assertIn("cannot write", str(e))
            self.assertEqual(self.mirror.load(), sections())
            self.assertEqual(os.listdir(self.dir), ["mgt"])

    def test_corrupt(self):
        """A file edited after its checksum was written is refused, naming the file."""
        self.mirror.save(sections())
        with open(self.mirror.file, "ab") as f:
            f.write(b"\toption Port '1'\n")
        e = self.assertRaises(mirror.MirrorError, self.mirror.load)
        self.assertIn(self.mirror.file, str(e))
        self.assertIn("checksum mismatch", str(e))


class FwEnvMirrorTests(SynchronousTestCase):

    def setUp(self):
        self.fake = FakeEnv()
        self.mirror = mirror.FwEnvMirror(self.fake)

    def test_provides_interface(self):
        """It provides IMirror, as restore, save and MirrorSync expect."""
        self.assertTrue(verifyObject(mirror.IMirror, self.mirror))

    def test_round_trip(self):
        """Nothing saved loads as None; a save is read back; the value is passed to
        fw_setenv as one argv item."""
        self.assertIsNone(self.mirror.load())
        self.mirror.save(sections())
        self.assertEqual(self.mirror.load(), sections())
        self.assertEqual(self.fake.calls[0], ["fw_printenv", "-n", "cubegw_mgt"])
        self.assertEqual(self.fake.calls[1][:2], ["fw_setenv", "cubegw_mgt"])
        self.assertEqual(len(self.fake.calls[1]), 3)  # one argv item: no shell, no splitting

    def test_corrupt(self):
        """A corrupt value is an error (naming the variable), not unavailable."""
        self.fake.env["cubegw_mgt"] = "1.AAAA.00000000"
        e = self.assertRaises(mirror.MirrorError, self.mirror.load)
        self.assertNotIsInstance(e, mirror.MirrorUnavailable)
        self.assertIn("cubegw_mgt", str(e))

    def test_no_tools(self):
        """No fw_printenv / fw_setenv installed: the mirror is unavailable."""
        self.fake.fail = FileNotFoundError(2, "No such file or directory")
        self.assertRaises(mirror.MirrorUnavailable, self.mirror.load)
        self.assertRaises(mirror.MirrorUnavailable, self.mirror.save, sections())

    def test_tool_fails(self):
        """fw_printenv failing otherwise (no /etc/fw_env.config, no MTD) is unavailable;
        a failing fw_setenv is an error."""
        mirror_ = mirror.FwEnvMirror(lambda argv: (1, "", "Cannot parse config file\n"))
        self.assertRaises(mirror.MirrorUnavailable, mirror_.load)
        e = self.assertRaises(mirror.MirrorError, mirror_.save, sections())
        self.assertIn("Cannot parse", str(e))


class FileTests(SynchronousTestCase):
    """restore / save / MirrorSync against a real UCI file and Store."""

    def setUp(self):
        base = os.path.abspath(self.mktemp())
        self.confdir = os.path.join(base, "config")
        self.persist = os.path.join(base, "persist")
        os.makedirs(self.confdir)
        os.makedirs(self.persist)
        self.config = os.path.join(self.confdir, "cubegw")
        self.mirror = mirror.DirectoryMirror(self.persist)

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def read_config(self):
        with open(self.config) as f:
            return f.read()

    def test_restore_nothing_saved(self):
        """No mirror saved: restore returns None and leaves the file byte for byte."""
        with open(DEFAULTS_FILE) as f:
            self.write_config(f.read())
        before = self.read_config()
        self.assertIsNone(mirror.restore(self.config, self.mirror))
        self.assertEqual(self.read_config(), before)  # comments and all

    def test_restore(self):
        """The mirror is merged into the ROM default (the directory then holds the
        file only); a second restore finds nothing to change."""
        self.mirror.save(sections())
        with open(DEFAULTS_FILE) as f:
            self.write_config(f.read())
        self.assertTrue(mirror.restore(self.config, self.mirror))
        store = Store(self.config)
        self.assertEqual(store.get("mgt", "MgtURL"), "dist.example.net")
        self.assertEqual(store.get("registration", "ServerPort"), 9000)
        self.assertEqual(sorted(os.listdir(self.confdir)), ["cubegw"])
        self.assertFalse(mirror.restore(self.config, self.mirror))  # now the same

    def test_restore_missing_config(self):
        """A missing UCI file is created with the mirror's sections alone."""
        self.mirror.save(sections())
        self.assertTrue(mirror.restore(self.config, self.mirror))
        self.assertEqual([s.name for s in uci.parse(self.read_config()).sections],
                         ["mgt", "registration"])

    def test_restore_corrupt_mirror_changes_nothing(self):
        """Never overwrite a good config with garbage."""
        self.mirror.save(sections())
        with open(self.mirror.file, "r+b") as f:
            f.seek(-8, os.SEEK_END)
            f.write(b"\x00\x01junk\n\n")
        with open(DEFAULTS_FILE) as f:
            self.write_config(f.read())
        before = self.read_config()
        self.assertRaises(mirror.MirrorError, mirror.restore, self.config, self.mirror)
        self.assertEqual(self.read_config(), before)

    def test_restore_corrupt_config_changes_nothing(self):
        """A UCI file that does not parse is an error and is left as it is."""
        self.mirror.save(sections())
        self.write_config("config mgt 'mgt\n")
        e = self.assertRaises(mirror.MirrorError, mirror.restore, self.config, self.mirror)
        self.assertIn("line", str(e))
        self.assertEqual(self.read_config(), "config mgt 'mgt\n")

    def test_save(self):
        """save copies the file's persistent sections; a missing file is an error."""
        self.write_config(CONFIG_TEXT)
        mirror.save(self.config, self.mirror)
        self.assertEqual(self.mirror.load(), sections())
        os.unlink(self.config)
        self.assertRaises(mirror.MirrorError, mirror.save, self.config, self.mirror)

    def test_sync_with_store(self):
        """Saved after writes of mgt/registration only; other writes cost nothing."""
        fake = FakeEnv()
        sync = mirror.MirrorSync(mirror.FwEnvMirror(fake))
        store = Store(self.config, on_contents=sync)
        store.set("mgt", "MgtURL", "dist.example.net")
        self.assertEqual(sum(c[0] == "fw_setenv" for c in fake.calls), 1)
        store.set("app", "UserID", "u")
        store.factory_reset_app()
        store.factory_reset_itms()
        self.assertEqual(sum(c[0] == "fw_setenv" for c in fake.calls), 1)
        store.set("registration", "ServerPort", 9000)
        self.assertEqual(sum(c[0] == "fw_setenv" for c in fake.calls), 2)
        saved = mirror.FwEnvMirror(fake).load()
        self.assertEqual(saved[1].options["ServerPort"], "9000")

    def test_sync_failure_logged_and_retried(self):
        """A failing mirror never fails the Store's write; the next call retries."""
        fake = FakeEnv()
        log = []
        sync = mirror.MirrorSync(mirror.FwEnvMirror(fake), log=log.append)
        store = Store(self.config, on_contents=sync)
        fake.fail = OSError(5, "Input/output error")
        self.assertEqual(store.set("mgt", "Heartbeat", 30), 30)
        self.assertIn("mirror not saved", log[0])
        fake.fail = None
        store.set("app", "UserID", "u")
        self.assertIn("cubegw_mgt", fake.env)

    def test_sync_file_at_start(self):
        """At start the mirror is written only when it differs (and a corrupt one is
        replaced); the Store's next unrelated write then costs nothing."""
        fake = FakeEnv()
        with open(self.config, "w") as f:
            f.write(CONFIG_TEXT)
        sync = mirror.MirrorSync(mirror.FwEnvMirror(fake))
        self.assertTrue(sync.sync_file(self.config))
        sync = mirror.MirrorSync(mirror.FwEnvMirror(fake))
        self.assertFalse(sync.sync_file(self.config))
        Store(self.config, on_contents=sync).set("app", "UserID", "x")
        self.assertEqual(sum(c[0] == "fw_setenv" for c in fake.calls), 1)
        fake.env["cubegw_mgt"] = "garbage"
        self.assertTrue(mirror.MirrorSync(mirror.FwEnvMirror(fake)).sync_file(self.config))
        self.assertEqual(mirror.FwEnvMirror(fake).load(), sections())
        self.assertFalse(sync.sync_file(self.config + ".missing"))

    def test_sync_pending(self):
        """While the pending file exists MirrorSync saves nothing and says why."""
        pending = os.path.join(self.confdir, "pending")
        open(pending, "w").close()
        log = []
        sync = mirror.MirrorSync(self.mirror, pending=pending, log=log.append)
        Store(self.config, on_contents=sync).save()
        self.assertIsNone(self.mirror.load())
        self.assertIn("pending", log[0])

    def test_store_hook_on_reload(self):
        """The Store calls on_contents after a save and a reload, not for a file
        that does not parse."""
        seen = []
        store = Store(self.config, on_contents=seen.append)
        store.save()
        self.assertEqual(len(seen), 1)
        store.reload()
        self.assertEqual(len(seen), 2)
        self.assertIsInstance(seen[1], uci.Package)
        os.remove(self.config + ".bak")  # no good copy to read instead
        self.write_config("config mgt 'mgt\n")
        self.assertRaises(StoreError, store.reload)
        self.assertEqual(len(seen), 2)  # not for a file that does not parse


class CommandLineTests(SynchronousTestCase):

    def setUp(self):
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        self.persist = os.path.join(base, "persist")
        os.makedirs(self.persist)
        self.config = os.path.join(base, "cubegw")
        self.yaml = os.path.join(base, "cubegw.yaml")
        self.pending = os.path.join(base, "pending")
        with open(self.config, "w") as f:
            f.write(CONFIG_TEXT)

    def run_main(self, *args, run=None):
        out, err = io.StringIO(), io.StringIO()
        kwargs = {} if run is None else {"run": run}
        code = mirror.main(list(args), out=out, err=err, **kwargs)
        return code, out.getvalue(), err.getvalue()

    def test_save_and_restore_dir(self):
        """save, restore and show with --mirror-dir: exit 0, the ROM default gets
        the saved values back."""
        code, out, _ = self.run_main("save", "--config", self.config,
                                     "--mirror-dir", self.persist)
        self.assertEqual(code, 0)
        with open(DEFAULTS_FILE) as f, open(self.config, "w") as g:
            g.write(f.read())
        code, out, _ = self.run_main("restore", "--config", self.config,
                                     "--mirror-dir", self.persist)
        self.assertEqual(code, 0)
        self.assertIn("restored from", out)
        self.assertEqual(Store(self.config).get("mgt", "MgtURL"), "dist.example.net")
        code, out, _ = self.run_main("show", "--mirror-dir", self.persist)
        self.assertEqual(code, 0)
        self.assertIn("option MgtURL 'dist.example.net'", out)

    def test_fw_env(self):
        """save and restore with --fw-env go through fw_setenv / fw_printenv."""
        fake = FakeEnv()
        self.assertEqual(self.run_main("save", "--config", self.config, "--fw-env",
                                       run=fake)[0], 0)
        with open(DEFAULTS_FILE) as f, open(self.config, "w") as g:
            g.write(f.read())
        code, out, err = self.run_main("restore", "--config", self.config, "--fw-env",
                                       run=fake)
        self.assertEqual(code, 0, err)
        self.assertEqual(Store(self.config).get("registration", "ServerAddr"),
                         "op.example.net")

    def test_yaml(self):
        """--yaml takes the mirror from store.persist_dir and restore brings its
        values back into the ROM default."""
        with open(self.yaml, "w") as f:
            f.write(f'store:\n  confdir: "/etc/config"\n  persist_dir: "{self.persist}"\n')
        mirror.save(self.config, mirror.DirectoryMirror(self.persist))
        with open(DEFAULTS_FILE) as f, open(self.config, "w") as g:
            g.write(f.read())
        code, out, err = self.run_main("restore", "--config", self.config,
                                       "--yaml", self.yaml, "--pending", self.pending)
        self.assertEqual(code, 0, err)
        self.assertEqual(Store(self.config).get("mgt", "MgtURL"), "dist.example.net")

    def test_yaml_nothing_configured(self):
        """No persist_dir / fw_env: exit 0, nothing changed."""
        with open(self.yaml, "w") as f:
            f.write('store:\n  confdir: "/etc/config"\n')
        code, out, _ = self.run_main("restore", "--config", self.config, "--yaml", self.yaml)
        self.assertEqual(code, 0)
        self.assertIn("no mirror configured", out)
        with open(self.config) as f:
            self.assertEqual(f.read(), CONFIG_TEXT)

    def test_yaml_errors(self):
        """An unreadable YAML file or a bad store.fw_env exits 1 with the reason."""
        code, _, err = self.run_main("restore", "--yaml", self.yaml + ".missing")
        self.assertEqual(code, 1)
        self.assertIn("cannot read", err)
        with open(self.yaml, "w") as f:
            f.write("store:\n  fw_env: 'yes'\n")
        code, _, err = self.run_main("restore", "--yaml", self.yaml)
        self.assertEqual(code, 1)
        self.assertIn("store.fw_env", err)

    def test_no_mirror_saved(self):
        """Nothing saved yet: restore exits 0 and leaves the file alone."""
        code, out, _ = self.run_main("restore", "--config", self.config,
                                     "--mirror-dir", self.persist)
        self.assertEqual(code, 0)
        self.assertIn("no mirror saved", out)
        with open(self.config) as f:
            self.assertEqual(f.read(), CONFIG_TEXT)

    def test_unavailable_pending(self):
        """An unavailable mirror exits 3 and creates --pending; a later successful
        restore removes it."""
        gone = os.path.join(self.persist, "nope")
        code, _, err = self.run_main("restore", "--config", self.config,
                                     "--mirror-dir", gone, "--pending", self.pending)
        self.assertEqual(code, 3)
        self.assertIn("not mounted", err)
        self.assertTrue(os.path.exists(self.pending))
        code, _, _ = self.run_main("restore", "--config", self.config,
                                   "--mirror-dir", self.persist, "--pending", self.pending)
        self.assertEqual(code, 0)
        self.assertFalse(os.path.exists(self.pending))

    def test_corrupt_exit_1(self):
        """A corrupt mirror exits 1 and the config is not changed."""
        with open(os.path.join(self.persist, "mgt"), "w") as f:
            f.write("config mgt 'mgt'\n\toption MgtURL 'evil'\n")
        code, _, err = self.run_main("restore", "--config", self.config,
                                     "--mirror-dir", self.persist)
        self.assertEqual(code, 1)
        self.assertIn("not a cubegw mirror", err)
        self.assertIn("nothing changed", err)
        with open(self.config) as f:
            self.assertEqual(f.read(), CONFIG_TEXT)

    def test_usage(self):
        """No action, no mirror, or two mirrors at once: usage error, exit 2."""
        self.assertEqual(self.run_main()[0], 2)
        self.assertEqual(self.run_main("restore")[0], 2)  # no mirror given
        self.assertEqual(self.run_main("restore", "--fw-env", "--mirror-dir", "x")[0], 2)

    def test_module_entry_point(self):
        """`python3 -m cubegw.store.mirror` works without Twisted on the path."""
        code = ("import sys, runpy; sys.modules['twisted'] = None; "
                "sys.argv = ['mirror'] + sys.argv[1:]; "
                "runpy.run_module('cubegw.store.mirror', run_name='__main__')")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = ROOT
        result = subprocess.run(
            [sys.executable, "-c", code, "save", "--config", self.config,
             "--mirror-dir", self.persist], env=env, capture_output=True, text=True,
            timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("saved to", result.stdout)


class LayoutTests(SynchronousTestCase):
    """cubegw.store.mirror stays the one import path, and stays light."""

    def test_no_argparse_at_import(self):
        """Importing cubegw.store.mirror (as the daemon does) does not import argparse:
        only the command line's parser does."""
        code = ("import sys; import cubegw.store.mirror; "
                "assert 'argparse' not in sys.modules, 'argparse imported'")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = ROOT
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_reexports(self):
        """Every name of cubegw.store.mirror's __all__ is there, and is the very object
        its own module defines (one MirrorError class, not a copy)."""
        from cubegw.store import mirror_backends, mirror_codec, mirror_sync
        for name in mirror.__all__:
            self.assertTrue(hasattr(mirror, name), name)
        self.assertIs(mirror.MirrorError, mirror_codec.MirrorError)
        self.assertIs(mirror.IMirror, mirror_backends.IMirror)
        self.assertIs(mirror.MirrorSync, mirror_sync.MirrorSync)
