"""UPGRADE (download, verify, install in the background) and SET_WD_INFO
(web pop-up settings, APP-owned).

UPGRADE (downurl, mode, method, optional md5 / sha256):

* ``mode`` "status": the state of the current or last upgrade (State Idle,
  Downloading, Installing, Done, Failed; Bytes, Total, Reason).
* otherwise: refuse a URL that is not http(s), an unknown ``method`` or a
  system with no installer (Status 1), else answer Status 0 State
  "Downloading" at once; the download runs in the background (the dispatcher
  times calls out at 10 s) into ``config.state_dir``, capped at
  ``MAX_UPGRADE_SIZE`` bytes, checked against md5 / sha256 when given, then
  handed to the ``IUpgradeInstaller`` ``INSTALL_DELAY`` s later (the reply
  left long before: the install never cuts it off).

``method``: "" or "firmware" (sysupgrade), "ipk" (a package: ``opkg install``, or
``apk add`` where apk manages the packages, OpenWrt 25.12 and later).  The field's
numeric arguments (mobile-manager's ``Upgrade``) are taken too: ``method`` "1" (force:
install now) with ``mode`` "0" (firmware) is a firmware upgrade; ``mode`` 1, 2, 5, 6
(OSGi framework, Java VM, mobile manager, gateway libraries) are not on this gateway
("Mode not support", Status 1); ``method`` "0" (recommend: the field shows the upgrade to
the user in a web pop-up) is refused, this gateway has no web pop-up.

SET_WD_INFO (the web pop-up's settings) is answered Status 1 "this gateway has no web
pop-up": nothing would ever show them.  The ``web_popup`` store section stays declared,
so stores that hold it still load.

A firmware image must carry a usign (Ed25519) signature by a key in
``upgrade.keys_dir`` (/etc/opkg/keys), checked before it is kept (``cubegw.usign``,
what sysupgrade checks with fwtool and usign); ``upgrade.require_signature: false``
turns that off.  Packages are checked by opkg / apk themselves.  The download has a
connect deadline (``CONNECT_TIMEOUT``), an idle deadline (``IDLE_TIMEOUT``: no byte for
that long, headers included, ends it) and the size cap; a failed download leaves
nothing in state_dir.
"""

import hashlib
import os

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from zope.interface import Interface, implementer

from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure
from cubegw.logs import Logger
from cubegw.usign import SignatureError, verify_image
from cubegw.capabilities.stored import WD_FIELDS

__all__ = ["IUpgradeInstaller", "OpenWrtInstaller", "Upgrade", "WebPopup", "ensure_schema",
           "MAX_UPGRADE_SIZE", "INSTALL_DELAY", "METHODS", "upgrade", "web_popup"]

log = Logger()

#: The largest image UPGRADE downloads, in bytes.
MAX_UPGRADE_SIZE = 64 * 2 ** 20
#: Seconds to connect to the download server, and the longest a download may stay
#: silent (before the headers or between two parts of the body).
CONNECT_TIMEOUT = 30.0
IDLE_TIMEOUT = 60.0
#: Seconds between a verified download and the install.
INSTALL_DELAY = 2.0
#: UPGRADE's ``method`` values and what each installs.
METHODS = {"": "firmware", "firmware": "firmware", "ipk": "ipk"}
#: The field's numeric ``mode`` (with ``method`` "0"/"1"): what this gateway installs ...
FIELD_MODES = {"0": "firmware"}
#: ... and what it has not.
ABSENT_MODES = {"1": "OSGi framework", "2": "Java VM", "5": "mobile manager",
                "6": "gateway libraries"}
#: The field's numeric ``method``: "1" force (install now), "0" recommend (ask the user).
FIELD_METHODS = ("0", "1")
NO_WEB_POPUP = "this gateway has no web pop-up"
IMAGE_NAME = "upgrade.bin"


def _web():
    """twisted.web's client, imported on first use: it costs start-up time on a router."""
    from twisted.web import client, http_headers
    return client, http_headers.Headers


class IUpgradeInstaller(Interface):
    """Installs a downloaded, verified image."""

    def unavailable(kind, backend):
        """None if ``kind`` ("firmware"/"ipk") can be installed on this
        system, else the reason (a string)."""

    def install(kind, path, backend):
        """Install the file at ``path``; a Deferred firing with None on
        success or a reason string.  A firmware install may reboot."""


@implementer(IUpgradeInstaller)
class OpenWrtInstaller:
    """``sysupgrade <image>`` (firmware) or ``opkg install <ipk>`` through
    ``backend.run``, ``apk add <apk>`` where apk's world file is (apk checks the
    package's signature against /etc/apk/keys); nothing off OpenWrt."""

    COMMANDS = {"firmware": ["sysupgrade"], "ipk": ["opkg", "install"]}
    APK_COMMAND = ["apk", "add"]
    #: Present where apk is the package manager, absent under opkg.
    APK_WORLD = "/etc/apk/world"

    def command(self, kind, backend):
        """The argv prefix that installs a file of ``kind`` on this system."""
        if kind == "ipk":
            try:
                backend.read_file(self.APK_WORLD)
            except OSError:
                pass
            else:
                return self.APK_COMMAND
        return self.COMMANDS[kind]

    def unavailable(self, kind, backend):
        if not backend.is_openwrt():
            return "no installer on this system"
        return None

    def install(self, kind, path, backend):
        argv = self.command(kind, backend) + [path]

        def done(result):
            code, out, err = result
            if code:
                return f"{argv[0]} exited {code}: " + err.decode("utf-8", "replace")[:200]
            return None
        return backend.run(argv).addCallback(done)


class _Refuse(Protocol):
    """Takes none of a body: stops the transfer at once (an image too large is not
    downloaded to be thrown away), and fires ``finished`` once the connection is gone."""

    def __init__(self, finished):
        self.finished = finished

    def connectionMade(self):
        self.transport.stopProducing()

    def connectionLost(self, reason):
        if not self.finished.called:
            self.finished.callback(None)


async def _refuse_body(response):
    finished = defer.Deferred()
    response.deliverBody(_Refuse(finished))
    await finished


class _Sink(Protocol):
    """Writes the body to a file, hashing it, stopping at ``limit`` bytes."""

    def __init__(self, path, limit, finished, progress, clock=None, idle=None):
        self.file = open(path, "wb")
        self.stalled = False
        self._idle = idle
        self._timer = clock.callLater(idle, self._stall) if clock and idle else None
        self.limit = limit
        self.finished = finished
        self.progress = progress
        self.size = 0
        self.md5, self.sha256 = hashlib.md5(), hashlib.sha256()
        self.too_large = False
        self.reason = None

    def _stall(self):
        self._timer = None
        self.stalled = True
        self.transport.stopProducing()

    def dataReceived(self, data):
        if self.too_large or self.stalled:
            return
        if self._timer is not None:
            self._timer.reset(self._idle)
        self.size += len(data)
        if self.size > self.limit:
            self.too_large = True
            self.transport.stopProducing()
            return
        self.file.write(data)
        self.md5.update(data)
        self.sha256.update(data)
        self.progress(self.size)

    def connectionLost(self, reason):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.file.close()
        self.reason = reason
        if not self.finished.called:
            self.finished.callback(None)


class Upgrade(Capability):
    """UPGRADE: see the module documentation."""

    cmd_types = ("UPGRADE",)
    default_right = RIGHT_BOTH

    def __init__(self, installer=None, agent_factory=None, max_size=MAX_UPGRADE_SIZE,
                 connect_timeout=CONNECT_TIMEOUT, idle_timeout=IDLE_TIMEOUT):
        self.installer = installer if installer is not None else OpenWrtInstaller()
        self.agent_factory = agent_factory
        self.max_size = max_size
        self.connect_timeout, self.idle_timeout = connect_timeout, idle_timeout
        self.state = {"State": "Idle", "Bytes": 0, "Total": "", "Reason": ""}
        self.task = None

    def handle_UPGRADE(self, payload, context):
        if payload.get("mode") == "status":
            return dict(self.state)
        if self.state["State"] in ("Downloading", "Installing"):
            raise CapabilityFailure("busy")
        url = payload.get("downurl")
        if not isinstance(url, str) or not (url.startswith("http://")
                                            or url.startswith("https://")) \
                or any(c.isspace() for c in url):
            raise CapabilityFailure("downurl must be an http:// or https:// URL")
        kind = upgrade_kind(payload.get("method"), payload.get("mode"))
        why = self.installer.unavailable(kind, context.backend)
        if why:
            raise CapabilityFailure(why)
        sums = {}
        for name, length in (("md5", 32), ("sha256", 64)):
            value = payload.get(name) or payload.get(name.upper())
            if value:
                value = str(value).lower()
                if len(value) != length or any(c not in "0123456789abcdef" for c in value):
                    raise CapabilityFailure(f"{name} must be {length} hex characters")
                sums[name] = value
        self.state = {"State": "Downloading", "Bytes": 0, "Total": "", "Reason": ""}
        self.task = defer.ensureDeferred(self._run(url, kind, sums, context))
        self.task.addErrback(self._crashed)
        return {"State": "Downloading"}

    def _crashed(self, failure):
        log.failure("upgrade failed", failure=failure)
        self._fail("internal error")

    def _fail(self, reason):
        log.warn("upgrade failed: {reason}", reason=reason)
        self.state.update(State="Failed", Reason=reason)

    async def _run(self, url, kind, sums, context):
        directory = context.config.state_dir
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, IMAGE_NAME)
        partial = path + ".part"
        try:
            why = await self._download(url, kind, sums, context, partial)
        except BaseException:
            _remove(partial)
            raise
        if why:
            _remove(partial)
            return self._fail(why)
        os.replace(partial, path)
        self.state["State"] = "Installing"
        log.info("upgrade image {path} ({n} bytes) verified; installing", path=path,
                 n=self.state["Bytes"])
        await _sleep(context.clock, INSTALL_DELAY)
        why = await self.installer.install(kind, path, context.backend)
        if why:
            return self._fail(why)
        self.state["State"] = "Done"

    async def _download(self, url, kind, sums, context, partial):
        """Download to ``partial`` and check it; None, or why it failed."""
        timed_out = []
        try:
            client, Headers = _web()
            agent = (self.agent_factory(context.clock) if self.agent_factory else
                     client.Agent(context.clock, connectTimeout=self.connect_timeout))
            request = agent.request(b"GET", url.encode("ascii"),
                                    Headers({b"User-Agent": [b"cubegw"]}))
            request.addTimeout(self.idle_timeout, context.clock,
                               onTimeoutCancel=lambda result, _: timed_out.append(1) or result)
            response = await request
        except Exception as e:
            if timed_out:
                return f"download failed: no answer in {self.idle_timeout:g} s"
            return f"download failed: {type(e).__name__}"
        if response.code != 200:
            await _refuse_body(response)
            return f"HTTP status {response.code}"
        length = response.length if isinstance(response.length, int) else None
        if length is not None and length > self.max_size:
            await _refuse_body(response)
            return f"image too large ({length} bytes, at most {self.max_size})"
        self.state["Total"] = "" if length is None else length
        finished = defer.Deferred()
        sink = _Sink(partial, self.max_size, finished,
                     lambda n: self.state.__setitem__("Bytes", n), context.clock,
                     self.idle_timeout)
        response.deliverBody(sink)
        await finished
        if sink.too_large:
            return f"image too large (more than {self.max_size} bytes)"
        if sink.stalled:
            return f"download stalled: no data for {self.idle_timeout:g} s"
        if sink.reason is None or not sink.reason.check(client.ResponseDone):
            return "download interrupted"
        for name, expected in sums.items():
            if getattr(sink, name).hexdigest() != expected:
                return f"{name} mismatch"
        config = context.config
        if kind == "firmware" and config.upgrade_require_signature:
            try:
                key = verify_image(partial, config.upgrade_keys_dir)
            except (SignatureError, OSError) as e:
                return f"signature refused: {e}"
            log.info("upgrade image signed by usign key {key}", key=key)
        return None


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _sleep(clock, seconds):
    d = defer.Deferred()
    clock.callLater(seconds, d.callback, None)
    return d


def upgrade_kind(method, mode):
    """What UPGRADE's ``method`` and ``mode`` ask to install ("firmware"/"ipk"), or
    ``CapabilityFailure`` with the reason."""
    method = "" if method is None else method
    mode = "" if mode is None else mode
    if not isinstance(method, (str, int)) or isinstance(method, bool) \
            or not isinstance(mode, (str, int)) or isinstance(mode, bool):
        raise CapabilityFailure("method and mode must be strings")
    method, mode = str(method).strip(), str(mode).strip()
    if method in FIELD_METHODS:
        if mode in ABSENT_MODES:
            raise CapabilityFailure(f"Mode not support: mode {mode} ({ABSENT_MODES[mode]}) "
                                    "is not on this gateway")
        if mode not in FIELD_MODES:
            raise CapabilityFailure(f"Mode not support: mode {mode or '(none)'}; mode 0 "
                                    "is firmware")
        if method == "0":
            raise CapabilityFailure(f"method 0 (recommend) asks the user in a web pop-up "
                                    f"and {NO_WEB_POPUP}; method 1 installs")
        return FIELD_MODES[mode]
    if method not in METHODS:
        raise CapabilityFailure(f"Method not support: {method[:32]!r}")
    if mode and FIELD_MODES.get(mode) not in (None, METHODS[method]):
        raise CapabilityFailure(f"mode {mode} and method {method!r} disagree")
    if mode in ABSENT_MODES:
        raise CapabilityFailure(f"Mode not support: mode {mode} ({ABSENT_MODES[mode]}) "
                                "is not on this gateway")
    return METHODS[method]


# -- SET_WD_INFO ------------------------------------------------------------------



def ensure_schema(schema):
    """Register the ``web_popup`` parameters (APP-owned) unless they are there."""
    schema.ensure(*WD_FIELDS.values())


class WebPopup(Capability):
    """SET_WD_INFO: Status 1 "this gateway has no web pop-up", the store untouched:
    nothing here shows a pop-up, so settings kept for one would be a silent lie.  The
    ``web_popup`` parameters stay declared (APP-owned) for stores that hold them."""

    cmd_types = ("SET_WD_INFO",)
    default_right = RIGHT_BOTH
    store_schema = tuple(WD_FIELDS.values())

    def handle_SET_WD_INFO(self, payload, context):
        raise CapabilityFailure(f"{NO_WEB_POPUP}: SET_WD_INFO is not applied")


upgrade = Upgrade()
web_popup = WebPopup()
