"""The platform's JSON HTTP API for the phone app (protocol.md section 11, flows 3-4).

A ``twisted.web`` resource tree under ``/api``; every request carries
``Authorization: Bearer <token>`` of a configured user.  A user sees and controls only the
gateways bound to them: any other MAC is 404, exactly as an unknown one, so the API never
tells who owns what.  Bodies and errors are JSON (``{"error": "..."}``).  Nothing blocks:
the registry is in memory, and calls to gateways return Deferreds.

    POST /api/bind                        {sn: MD5(DevRND+SN), loid} -> bind to the caller
    GET  /api/gateways                    the caller's gateways, online state, heartbeat
    POST /api/gateways/<MAC>/connect      RequestPlug-in -> 202
    GET  /api/gateways/<MAC>/connection   {"connected": bool}
    POST /api/gateways/<MAC>/call         {parameter, timeout?, plugin_name?} -> result
    GET  /api/gateways/<MAC>/reports      pushed reports, oldest first
    GET  /api/faults, PUT /api/faults     the fault rules (admin users only: 403 otherwise)
"""

import hmac
import json
import os

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource

from cubegw import identity
from cubegw.platform import messagelog
from cubegw.platform.faults import FaultError
from cubegw.platform.plugincenter import (
    TIMEOUT_RESULT, CallTimeout, GatewayGone, NotConnected, PluginCenterError)

MAX_BODY = 64 * 1024
MAX_CALL_TIMEOUT = 120.0


class ApiError(Exception):
    """An HTTP error answer: status ``code`` and a JSON body ``{"error": message, ...}``."""

    def __init__(self, code, message, **extra):
        super().__init__(message)
        self.code = code
        self.body = dict(extra, error=message)


class Api:
    """What the resources share: users, the registry, the platform parts they drive.

    ``plugin_address()`` gives the (host, port) sent in RequestPlug-in.
    """

    log = Logger()

    def __init__(self, users, registry, faults, plugin_center, operation, plugin_address,
                 clock, online_timeout=180.0, urandom=os.urandom, wirelog=None, config=None,
                 distribution_port=None):
        """``wirelog``, ``config``, ``distribution_port()``: for the admin resources
        (``admin.py``)."""
        self.users = tuple(users)
        self.registry = registry
        self.faults = faults
        self.plugin_center = plugin_center
        self.operation = operation
        self.plugin_address = plugin_address
        self.clock = clock
        self.online_timeout = online_timeout
        self.urandom = urandom
        self.wirelog = wirelog or messagelog.OFF
        self.config = config
        self.distribution_port = distribution_port or (
            lambda: config.distribution.port if config is not None else 0)

    def authenticate(self, request):
        """The caller's user_id, or None: the Bearer token compared in constant time."""
        header = request.getHeader(b"authorization") or b""
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return None
        token = token.strip()
        found = None
        for user in self.users:
            if hmac.compare_digest(token, user.token.encode("utf-8")):
                found = user.user_id
        return found

    def require_admin(self, user_id):
        """``ApiError`` 403 unless ``user_id`` is an admin: fault rules touch every gateway."""
        if not any(u.user_id == user_id and u.admin for u in self.users):
            raise ApiError(403, "the fault rules need an admin user (users[].admin: true)")

    def owned(self, mac_segment, user_id):
        """The caller's gateway named in the path, else ``ApiError`` 404."""
        try:
            mac = identity.normalize_mac(mac_segment.decode("ascii"))
        except (UnicodeDecodeError, identity.IdentityError):
            raise ApiError(404, "no such gateway")
        record = self.registry.get(mac)
        if record is None or not record.user_id or record.user_id != user_id:
            raise ApiError(404, "no such gateway")
        return record

    def sequence_id(self):
        return self.urandom(4).hex().upper()


# ------------------------------------------------------------------ plumbing

def _write_json(request, code, body):
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def read_json(request, required=True):
    """The request body as a JSON value; ``ApiError`` 400 if it is not JSON."""
    request.content.seek(0)
    data = request.content.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise ApiError(413, f"body larger than {MAX_BODY} bytes")
    if not data.strip():
        if required:
            raise ApiError(400, "a JSON body is required")
        return {}
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ApiError(400, f"the body is not valid JSON: {e}")


def read_object(request, required=True):
    body = read_json(request, required)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


class JSONResource(Resource):
    """Authenticates, dispatches to ``do_<METHOD>(request, user_id)`` and writes JSON.

    A handler returns ``(code, body)`` or a Deferred of it, or raises ``ApiError``.
    """

    log = Logger()

    def __init__(self, api):
        super().__init__()
        self.api = api

    def getChild(self, path, request):
        if path == b"" and not request.postpath:
            return self          # a trailing slash
        return NotFound(self.api)

    def handler(self, method):
        """The ``do_<METHOD>`` of this resource, or None."""
        return getattr(self, "do_" + method, None)

    def render(self, request):
        user_id = self.api.authenticate(request)
        if user_id is None:
            request.setHeader(b"www-authenticate", b'Bearer realm="cubeplat"')
            return _write_json(request, 401, {"error": "missing or unknown bearer token"})
        method = request.method.decode("ascii", "replace")
        handler = self.handler(method)
        if handler is None:
            allowed = sorted(m[3:] for m in dir(self) if m.startswith("do_"))
            request.setHeader(b"allow", ", ".join(allowed).encode("ascii"))
            return _write_json(request, 405, {"error": f"{method} not allowed here"})
        try:
            result = handler(request, user_id)
        except ApiError as e:
            return _write_json(request, e.code, e.body)
        except Exception:
            self.log.failure("{method} {path} failed", method=method, path=request.path)
            return _write_json(request, 500, {"error": "internal error"})
        if not isinstance(result, defer.Deferred):
            return _write_json(request, *result)
        gone = []
        request.notifyFinish().addErrback(gone.append)

        def done(outcome):
            if gone:
                return
            if isinstance(outcome, Failure):
                if outcome.check(ApiError):
                    code, body = outcome.value.code, outcome.value.body
                else:
                    self.log.failure("{method} {path} failed", outcome, method=method,
                                     path=request.path)
                    code, body = 500, {"error": "internal error"}
            else:
                code, body = outcome
            request.write(_write_json(request, code, body))
            request.finish()
        result.addBoth(done)
        return server.NOT_DONE_YET


class NotFound(JSONResource):
    """Anything the tree does not name (after authentication, so 401 comes first)."""

    isLeaf = True

    def handler(self, method):
        return self._missing

    def _missing(self, request, user_id):
        raise ApiError(404, "not found")


# ----------------------------------------------------------------- endpoints

class BindResource(JSONResource):
    """Flow 3 (deck 6.2): the app reports the encrypted SN ``MD5(DevRND+SN)`` that
    CHECK_PASSWD_PARAM gave it, and the LOID.  The plain SN is refused: anyone who knows
    the MAC can make it; the current DevRND only the gateway and this platform know."""

    isLeaf = True

    def do_POST(self, request, user_id):
        body = read_object(request)
        sn, loid = body.get("sn"), body.get("loid")
        if not isinstance(sn, str) or not sn or not isinstance(loid, str) or not loid:
            raise ApiError(400, "sn and loid are required strings")
        record = self._find(sn.strip(), loid.strip())
        if record is None:
            raise ApiError(404, "no gateway with that encrypted SN (MD5(DevRND+SN) from "
                                "CHECK_PASSWD_PARAM) and LOID")
        if record.user_id and record.user_id != user_id:
            raise ApiError(409, "the gateway is bound to another user")
        if record.user_id != user_id:
            self.api.registry.bind(record.mac, user_id)
            self.api.log.info("{mac} bound to user {user}", mac=record.mac, user=user_id)
        return 200, {"mac": record.mac, "user_id": user_id}

    def _find(self, sn, loid):
        for record in self.api.registry:
            if not record.sn or not record.dev_rnd or record.loid != loid:
                continue
            if hmac.compare_digest(sn.upper().encode("utf-8", "replace"), identity.encrypted_sn(
                    record.dev_rnd, record.sn).encode("ascii")):
                return record
        return None


class GatewaysResource(JSONResource):
    """``GET /api/gateways``; ``/api/gateways/<MAC>/...`` below it."""

    def getChild(self, path, request):
        if path == b"" and not request.postpath:
            return self
        return GatewayResource(self.api, path)

    def do_GET(self, request, user_id):
        now = self.api.clock.seconds()
        mine = sorted((r for r in self.api.registry if r.user_id == user_id),
                      key=lambda r: r.mac)
        return 200, {"gateways": [self.describe(r, now) for r in mine]}

    def describe(self, record, now):
        return {
            "mac": record.mac, "sn": record.sn, "loid": record.loid,
            "model": record.model, "registered": record.registered,
            "online": record.is_online(now, self.api.online_timeout),
            "last_heartbeat": record.last_hb or None,
            "plugin_connected": self.api.plugin_center.is_connected(record.mac),
        }


class GatewayResource(Resource):
    """``/api/gateways/<MAC>``: routes to its actions; the MAC is checked by each."""

    def __init__(self, api, mac_segment):
        super().__init__()
        self.api = api
        self.mac_segment = mac_segment

    def getChild(self, path, request):
        action = ACTIONS.get(path)
        if action is None or request.postpath not in ([], [b""]):
            return NotFound(self.api)
        return action(self.api, self.mac_segment)

    def render(self, request):
        return NotFound(self.api).render(request)


class _GatewayAction(JSONResource):
    isLeaf = True

    def __init__(self, api, mac_segment):
        super().__init__(api)
        self.mac_segment = mac_segment

    def gateway(self, user_id):
        return self.api.owned(self.mac_segment, user_id)


class ConnectResource(_GatewayAction):
    """Flow 4: ask the gateway (through the operation platform) to connect to us."""

    def do_POST(self, request, user_id):
        record = self.gateway(user_id)
        if self.api.plugin_center.is_connected(record.mac):
            return 200, {"connected": True}
        host, port = self.api.plugin_address()
        d = self.api.operation.send_request_plugin(record.mac, host, port)
        at_once = []

        def early(outcome):
            at_once.append(outcome)
            return outcome
        d.addBoth(early)
        if at_once and isinstance(at_once[0], Failure):
            # refused before sending: not registered, or no heartbeat yet
            d.addErrback(lambda _: None)
            raise ApiError(409, at_once[0].getErrorMessage())
        d.addErrback(self._lost, record.mac)  # the answer itself is logged by the platform
        return 202, {"requested": True, "server_addr": host, "server_port": port}

    def _lost(self, reason, mac):
        self.api.log.warn("{mac} RequestPlug-in failed: {why}", mac=mac,
                          why=reason.getErrorMessage())


class ConnectionResource(_GatewayAction):
    """What the app polls after ``connect``."""

    def do_GET(self, request, user_id):
        record = self.gateway(user_id)
        return 200, {"connected": self.api.plugin_center.is_connected(record.mac)}


class CallResource(_GatewayAction):
    """A capability call (``Post``) to a connected gateway."""

    def do_POST(self, request, user_id):
        record = self.gateway(user_id)
        body = read_object(request)
        parameter = body.get("parameter")
        if not isinstance(parameter, dict) or not isinstance(parameter.get("CmdType"), str):
            raise ApiError(400, "parameter must be an object with a CmdType string")
        timeout = body.get("timeout", 10)
        if (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                or not 0 < timeout <= MAX_CALL_TIMEOUT):
            raise ApiError(400, f"timeout must be a number of seconds in (0, "
                                f"{MAX_CALL_TIMEOUT:g}]")
        plugin_name = body.get("plugin_name", "")
        if not isinstance(plugin_name, str):
            raise ApiError(400, "plugin_name must be a string")
        if "SequenceId" not in parameter:
            parameter = dict(parameter, SequenceId=self.api.sequence_id())
        d = self.api.plugin_center.call(record.mac, parameter, plugin_name, timeout)
        return d.addCallbacks(self._result, self._failed)

    def _result(self, outcome):
        result, return_parameter = outcome
        return 200, {"result": result, "return_parameter": return_parameter}

    def _failed(self, reason):
        if reason.check(CallTimeout):
            raise ApiError(504, reason.getErrorMessage(), result=TIMEOUT_RESULT)
        if reason.check(NotConnected):
            raise ApiError(409, reason.getErrorMessage())
        if reason.check(GatewayGone):
            raise ApiError(502, reason.getErrorMessage())
        if reason.check(PluginCenterError):
            raise ApiError(400, reason.getErrorMessage())
        return reason


class ReportsResource(_GatewayAction):
    """Reports the gateway pushed (deck interface 4), oldest first."""

    def do_GET(self, request, user_id):
        record = self.gateway(user_id)
        return 200, {"reports": [{"time": when, "parameter": parameter}
                                 for when, parameter in self.api.registry.reports(record.mac)]}


ACTIONS = {b"connect": ConnectResource, b"connection": ConnectionResource,
           b"call": CallResource, b"reports": ReportsResource}


class FaultsResource(JSONResource):
    """The live fault rules: GET them (with uses left), PUT a new list (all or nothing)."""

    isLeaf = True

    def do_GET(self, request, user_id):
        self.api.require_admin(user_id)
        return 200, {"faults": self.api.faults.rules}

    def do_PUT(self, request, user_id):
        self.api.require_admin(user_id)
        body = read_json(request)
        rules = body.get("faults") if isinstance(body, dict) else body
        if not isinstance(rules, list):
            raise ApiError(400, "the body must be a list of rules, or {\"faults\": [...]}")
        try:
            self.api.faults.set_rules(rules)
        except FaultError as e:
            raise ApiError(400, str(e))
        self.api.log.info("fault rules replaced by {user}: {count} rules", user=user_id,
                          count=len(self.api.faults.rules))
        return 200, {"faults": self.api.faults.rules}


def build_resource(api):
    """The resource tree: ``/api/...``, JSON 404 everywhere else."""
    root = _Root(api)
    branch = _Root(api)
    branch.putChild(b"bind", BindResource(api))
    branch.putChild(b"gateways", GatewaysResource(api))
    branch.putChild(b"faults", FaultsResource(api))
    root.putChild(b"api", branch)
    from cubegw.platform import admin, dashboard   # they import this module's resources
    admin.install(branch, api)
    dashboard.install(root, branch, api)
    return root


class _Root(Resource):
    def __init__(self, api):
        super().__init__()
        self.api = api

    def getChild(self, path, request):
        return NotFound(self.api)

    def render(self, request):
        return NotFound(self.api).render(request)


def build_site(api, reactor=None, timeout=60):
    """A ``Site`` serving the API (``reactor``: the clock of the channel timeouts)."""
    site = server.Site(build_resource(api), reactor=reactor, timeout=timeout)
    site.displayTracebacks = False
    site.noisy = False
    return site
