"""The system and platform capabilities on real state, and the backends."""

import os
import platform
import sys
import time
from types import SimpleNamespace

import psutil
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from cubegw import identity
from cubegw.backend import ISystemBackend, LinuxBackend, TempDirBackend, cpu_busy_percent
from cubegw.capabilities import system

from tests.helpers import IDENTITY, SN
from tests.helpers.dispatch import DEV_RND, TELECOMADMIN, USERADMIN, Harness


class BackendTests(SynchronousTestCase):
    """Both ISystemBackend providers."""

    def test_verify(self):
        """LinuxBackend and TempDirBackend provide ISystemBackend."""
        self.assertTrue(verifyObject(ISystemBackend, LinuxBackend(Clock())))
        self.assertTrue(verifyObject(ISystemBackend, TempDirBackend(self.mktemp(), Clock())))

    def test_files_under_root(self):
        """read_file and uci_path are relative to the backend's root."""
        root = self.mktemp()
        os.makedirs(os.path.join(root, "proc"))
        with open(os.path.join(root, "proc", "version"), "w") as f:
            f.write("Linux test\n")
        for backend in (LinuxBackend(Clock(), root=root), TempDirBackend(root, Clock())):
            self.assertEqual(backend.read_file("/proc/version"), "Linux test\n")
            self.assertEqual(backend.uci_path("cubegw"),
                             os.path.join(root, "etc", "config", "cubegw"))
            self.assertRaises(OSError, backend.read_file, "/proc/none")

    def test_temp_backend_records(self):
        """TempDirBackend records reboots and commands and runs nothing."""
        clock = Clock()
        backend = TempDirBackend(self.mktemp(), clock)
        backend.results["ping"] = (1, b"", b"unreachable")
        clock.advance(5)
        self.successResultOf(backend.reboot())
        self.assertEqual(backend.reboots, [5])
        self.assertEqual(self.successResultOf(backend.run(["ping", "x"])), (1, b"", b"unreachable"))
        self.assertEqual(self.successResultOf(backend.run(["true"])), (0, b"", b""))
        self.assertEqual(backend.commands, [["ping", "x"], ["true"]])

    def test_memory_cached_for_a_second(self):
        """LinuxBackend.memory() reads psutil at most once a second of its clock."""
        class Psutil:
            cpu_times = staticmethod(psutil.cpu_times)
            reads = 0

            def virtual_memory(self):
                self.reads += 1
                return SimpleNamespace(total=1000, available=600 - self.reads,
                                       percent=40.0 + self.reads)

        clock, fake = Clock(), Psutil()
        backend = LinuxBackend(clock, psutil_module=fake)
        first = backend.memory()
        self.assertEqual(first, {"total": 1000, "available": 599, "percent": 41.0})
        first["total"] = 0  # the caller's copy
        clock.advance(0.999)
        self.assertEqual(backend.memory(), {"total": 1000, "available": 599, "percent": 41.0})
        self.assertEqual(fake.reads, 1)
        clock.advance(0.001)
        self.assertEqual(backend.memory()["percent"], 42.0)
        clock.advance(0.5)
        backend.memory()
        self.assertEqual(fake.reads, 2)
        clock.rightNow -= 10  # a clock set back: read again
        self.assertEqual(backend.memory()["percent"], 43.0)

    def test_cpu_busy_percent(self):
        """Busy share between two cpu_times samples; None when no time passed."""
        t0 = psutil.cpu_times()
        self.assertIsNone(cpu_busy_percent(t0, t0))
        fields = t0._fields
        t1 = type(t0)(*[getattr(t0, f) + (3.0 if f == "user" else 1.0 if f == "idle" else 0.0)
                        for f in fields])
        self.assertAlmostEqual(cpu_busy_percent(t0, t1), 75.0)


class LinuxRunTests(TestCase):
    """LinuxBackend.run spawns a real process (no reboot is ever run here)."""

    def test_run(self):
        """Exit code, stdout and stderr come back without blocking the reactor."""
        from twisted.internet import reactor
        backend = LinuxBackend(reactor)
        d = backend.run([sys.executable, "-c",
                         "import sys; sys.stdout.write('out'); sys.stderr.write('err'); "
                         "sys.exit(3)"])
        d.addCallback(self.assertEqual, (3, b"out", b"err"))
        return d


def _busy(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class LoadTests(SynchronousTestCase):
    """QUERY_CPU_INFO, QUERY_MEM_INFO, GET_TIME_DURATION against psutil."""

    def assertClose(self, value, expected, tolerance):
        self.assertTrue(abs(value - expected) <= tolerance,
                        f"{value} is not within {tolerance} of {expected}")

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(time.time())
        self.h = Harness(self, backend=LinuxBackend(self.clock))

    def test_cpu(self):
        """Percent matches the busy share psutil shows over the same window."""
        before = psutil.cpu_times()
        self.h.backend.cpu_percent()  # restart the backend's window now
        _busy(0.2)
        percent = int(self.h.call(self, "QUERY_CPU_INFO", side="remote").payload["Percent"])
        expected = cpu_busy_percent(before, psutil.cpu_times())
        self.assertTrue(0 <= percent <= 100)
        self.assertClose(percent, expected, 15)

    def test_memory(self):
        """Percent matches psutil.virtual_memory().percent."""
        percent = int(self.h.call(self, "QUERY_MEM_INFO").payload["Percent"])
        self.assertClose(percent, psutil.virtual_memory().percent, 5)

    def test_time_duration(self):
        """TimeDuration is the number of seconds since psutil.boot_time()."""
        seconds = int(self.h.call(self, "GET_TIME_DURATION").payload["TimeDuration"])
        self.assertClose(seconds, time.time() - psutil.boot_time(), 2)

    def test_field_durations(self):
        """GET_TIME_DURATION has the field's SYSDuration, PPPoEDuration and PONDuration."""
        h = Harness(self)
        h.backend.booted = 100.0
        h.clock.advance(160.7)
        payload = h.call(self, "GET_TIME_DURATION").payload
        self.assertEqual((payload["SYSDuration"], payload["PPPoEDuration"],
                          payload["PONDuration"]), ("60", "0", "0"))

    def test_pppoe_duration(self):
        """PPPoEDuration is netifd's uptime of a PPPoE WAN that is up."""
        h = Harness(self)
        os.makedirs(os.path.join(h.dir, "etc", "config"))
        with open(os.path.join(h.dir, "etc", "config", "network"), "w") as f:
            f.write("config interface 'wan'\n\toption proto 'pppoe'\n")
        h.backend.stats = {"pppoe-wan": {"isup": True}}
        h.backend.addrs = {"pppoe-wan": [{"family": "ipv4", "address": "100.64.9.9",
                                          "netmask": "255.255.255.255"}]}
        os.makedirs(os.path.join(h.dir, "bin"))
        ubus = os.path.join(h.dir, "bin", "ubus")
        with open(ubus, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(ubus, 0o755)
        h.backend.results["/bin/ubus"] = (0, b'{"up": true, "uptime": 4242}', b"")
        self.assertEqual(h.call(self, "GET_TIME_DURATION").payload["PPPoEDuration"], "4242")

    def test_temp_backend_values(self):
        """With TempDirBackend the values are the test's, rounded, uptime by the clock."""
        h = Harness(self)
        h.backend.cpu, h.backend.mem["percent"], h.backend.booted = 37.6, 41.2, 100.0
        h.clock.advance(160.7)
        self.assertEqual(h.call(self, "QUERY_CPU_INFO", side="remote").payload["Percent"], "38")
        self.assertEqual(h.call(self, "QUERY_MEM_INFO").payload["Percent"], "41")
        self.assertEqual(h.call(self, "GET_TIME_DURATION").payload["TimeDuration"], "60")


class InfoTests(SynchronousTestCase):
    """GET_SN_INFO, GET_VERSION, QUERY_SYSTEM_INFO."""

    def test_sn_info(self):
        """MAC, and BussinessStatus following registered()."""
        h = Harness(self)
        payload = h.call(self, "GET_SN_INFO").payload
        self.assertEqual((payload["MAC"], payload["BussinessStatus"]), (IDENTITY.mac, "FAIL"))
        h.registered = True
        self.assertEqual(h.call(self, "GET_SN_INFO").payload["BussinessStatus"], "SUCCESS")

    def test_version(self):
        """GET_VERSION is the interface version 1.0."""
        self.assertEqual(Harness(self).call(self, "GET_VERSION").payload["Version"], "1.0")

    def test_system_info(self):
        """QUERY_SYSTEM_INFO describes the device from the identity and the CPU."""
        payload = Harness(self).call(self, "QUERY_SYSTEM_INFO", side="remote").payload
        self.assertEqual(payload["Vendor"], IDENTITY.vendor)
        self.assertEqual(payload["Model"], IDENTITY.model)
        self.assertEqual(payload["SWVersion"], IDENTITY.firmware_version)
        self.assertEqual(payload["HWVersion"], IDENTITY.hardware_version)
        self.assertEqual(payload["CPUClass"], platform.machine())
        self.assertEqual((payload["MAC"], payload["SN"], payload["LOID"]),
                         (IDENTITY.mac, IDENTITY.sn, IDENTITY.loid))
        for name in ("ProductClass", "DevType"):
            self.assertTrue(payload[name])

    def test_system_info_field_names(self):
        """QUERY_SYSTEM_INFO also has the field's names: HDVersion, ProductCLass, DEVType
        (OUI-SN), DEVType1, WanIPAddr, LanIPAddr."""
        payload = Harness(self).call(self, "QUERY_SYSTEM_INFO").payload
        self.assertEqual(payload["HDVersion"], IDENTITY.hardware_version)
        self.assertEqual(payload["ProductCLass"], IDENTITY.model)
        self.assertEqual(payload["DEVType"], f"{IDENTITY.mac[:6]}-{IDENTITY.sn}")
        self.assertEqual((payload["DEVType1"], payload["WanIPAddr"]), ("0", "0.0.0.0"))
        self.assertIn("LanIPAddr", payload)

    def test_version_from_store(self):
        """GET_VERSION is the stored X_CT-COM_Mgt.Version, as the field reads its own."""
        h = Harness(self)
        self.assertEqual(h.call(self, "GET_VERSION").payload["Version"],
                         h.store.get("mgt", "Version"))


class CheckPasswordTests(SynchronousTestCase):
    """CHECK_PASSWD_PARAM and GET_HG_LOID (binding, deck 6.2)."""

    def setUp(self):
        self.h = Harness(self)
        self.encrypted = identity.encrypted_sn(DEV_RND, SN)

    def test_both_accounts(self):
        """PassWD of useradmin or telecomadmin: LOID and MD5(DevRND + SN)."""
        for args in ({"PassWD": USERADMIN}, {"PassWD": TELECOMADMIN},
                     {"PASSWORD": USERADMIN}, {"USER": "telecomadmin", "PASSWORD": TELECOMADMIN}):
            payload = self.h.call(self, "CHECK_PASSWD_PARAM", **args).payload
            self.assertEqual(payload["Status"], "0", args)
            self.assertEqual(payload["LOID"], IDENTITY.loid)
            self.assertEqual(payload["SN"], self.encrypted)

    def test_wrong_password(self):
        """A wrong or missing password: Status 1 and no SN."""
        for args in ({"PassWD": "guess"}, {}, {"PassWD": USERADMIN.upper()}):
            payload = self.h.call(self, "CHECK_PASSWD_PARAM", **args).payload
            self.assertEqual(payload["Status"], "1", args)
            self.assertNotIn("SN", payload)

    def test_no_dev_rnd(self):
        """Before the first Register there is no DevRND: Status 1 "not registered"."""
        self.h.dev_rnd = None
        payload = self.h.call(self, "CHECK_PASSWD_PARAM", PassWD=USERADMIN).payload
        self.assertEqual((payload["Status"], payload["FailReason"]), ("1", "not registered"))
        self.assertEqual(self.h.call(self, "GET_HG_LOID").payload["Status"], "1")

    def test_both_sides_password_checked(self):
        """CHECK_PASSWD_PARAM is allowed from both sides (the field's table) and checks the
        password from the plugin center too: the check is the call."""
        good = self.h.call(self, "CHECK_PASSWD_PARAM", side="remote", PassWD=USERADMIN)
        self.assertEqual(good.payload["Status"], "0")
        bad = self.h.call(self, "CHECK_PASSWD_PARAM", side="remote", PassWD="nope")
        self.assertEqual(bad.payload["Status"], "1")
        self.assertNotIn("SN", bad.payload)

    def test_hg_loid(self):
        """GET_HG_LOID gives LOID and the encrypted SN."""
        payload = self.h.call(self, "GET_HG_LOID").payload
        self.assertEqual((payload["LOID"], payload["SN"]), (IDENTITY.loid, self.encrypted))


class BusinessPlatformTests(SynchronousTestCase):
    """SET_BUSINESS_PLATFORM_PARAM and its misspelling write X_CT-COM_Mgt."""

    def setUp(self):
        self.h = Harness(self)

    def test_all_fields(self):
        """Every field lands in its X_CT-COM_Mgt parameter."""
        payload = self.h.call(self, "SET_BUSINESS_PLATFORM_PARAM", MgtURL="plat.example",
                              Port="12113", HeartBeat="30", Ability="1",
                              LocalPort="18000").payload
        self.assertEqual(payload["Status"], "0")
        mgt = self.h.store.mgt()
        self.assertEqual((mgt["MgtURL"], mgt["Port"], mgt["Heartbeat"], mgt["Ability"],
                          mgt["LocatePort"]), ("plat.example", 12113, 30, 1, 18000))

    def test_misspelling(self):
        """SET_BUSSINESS_PLATFORM_PARAM does the same, from the platform too."""
        payload = self.h.call(self, "SET_BUSSINESS_PLATFORM_PARAM", side="remote",
                              HeartBeat="90").payload
        self.assertEqual(payload["Status"], "0")
        self.assertEqual(self.h.store.get("mgt", "Heartbeat"), 90)

    def test_null_and_empty_unchanged(self):
        """Empty, "NULL" and absent fields leave their parameter as it was."""
        self.h.store.set("mgt", "Port", 4000)
        payload = self.h.call(self, "SET_BUSINESS_PLATFORM_PARAM", MgtURL="NULL", Port="",
                              HeartBeat="null", LocalPort="17999").payload
        self.assertEqual(payload["Status"], "0")
        mgt = self.h.store.mgt()
        self.assertEqual((mgt["MgtURL"], mgt["Port"], mgt["Heartbeat"], mgt["LocatePort"]),
                         ("189cube", 4000, 60, 17999))

    def test_bad_values(self):
        """A bad value: Status 1 with the store's reason, and nothing changed."""
        before = self.h.store.mgt()
        for args in ({"Port": "70000", "HeartBeat": "30"}, {"Ability": "2"},
                     {"MgtURL": "a b", "LocalPort": "18000"}, {"HeartBeat": "-1"}):
            payload = self.h.call(self, "SET_BUSINESS_PLATFORM_PARAM", **args).payload
            self.assertEqual(payload["Status"], "1", args)
            self.assertTrue(payload["FailReason"])
            self.assertEqual(self.h.store.mgt(), before)
        payload = self.h.call(self, "SET_BUSINESS_PLATFORM_PARAM", Port="70000").payload
        self.assertIn("Port", payload["FailReason"])
        self.assertIn("65535", payload["FailReason"])


class AfterReplyActionTests(SynchronousTestCase):
    """HG_COMMAND_REBOOT and HG_LOCAL_RECOVERY act only after the reply is written."""

    def setUp(self):
        self.h = Harness(self)

    def test_reboot_after_reply(self):
        """The reboot happens REBOOT_DELAY s after run_after, never before it."""
        outcome = self.h.call(self, "HG_COMMAND_REBOOT", side="remote")
        self.assertEqual(outcome.payload["Status"], "0")
        self.h.clock.advance(60)
        self.assertEqual(self.h.backend.reboots, [])
        outcome.run_after()
        self.h.clock.advance(system.REBOOT_DELAY - 0.01)
        self.assertEqual(self.h.backend.reboots, [])
        self.h.clock.advance(0.01)
        self.assertEqual(self.h.backend.reboots, [60 + system.REBOOT_DELAY])
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_recovery_after_reply(self):
        """APP data is reset on run_after; ITMS data and X_CT-COM_Mgt stay."""
        store = self.h.store
        store.update({("app", "UserID"): "U1", ("itms", "ProvisioningCode"): "P1",
                      ("mgt", "Heartbeat"): 30})
        outcome = self.h.call(self, "HG_LOCAL_RECOVERY")
        self.assertEqual(outcome.payload["Status"], "0")
        self.assertEqual(store.get("app", "UserID"), "U1")
        outcome.run_after()
        self.assertEqual(store.get("app", "UserID"), "")
        self.assertEqual(store.get("itms", "ProvisioningCode"), "P1")
        self.assertEqual(store.get("mgt", "Heartbeat"), 30)
