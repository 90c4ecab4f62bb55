"""The lab's side of the HTTP API: every device, its wire messages, and the platform's
messages sent on demand.  Admin users only (``users[].admin: true``), else 403.

    GET    /api/platform                       what gateways are told (intervals, addresses)
    GET    /api/devices                        every device, bound or not: phase, counters
    GET    /api/devices/<MAC>                  one of them, with its registry record
    GET    /api/devices/<MAC>/messages         the wire log (?since=SEQ&limit=N;
                                               ?format=jsonl: JSON lines, the export)
    GET    /api/devices/<MAC>/messages/stream  the wire log live (server-sent events)
    GET    /api/messages/stream                every device's messages live
    DELETE /api/devices/<MAC>/binding          unbind the device from its user
    POST   /api/devices/<MAC>/request-plugin   {host?, port?, key?} RequestPlug-in
    POST   /api/devices/<MAC>/request-distri   {host?, port?, mode?, key?} RequestDistri
    POST   /api/devices/<MAC>/disconnect       plugin-center Disconnect
    POST   /api/devices/<MAC>/drop             close the plugin connection, no Disconnect
    POST   /api/devices/<MAC>/call             {parameter, timeout?} a Post

A trigger answers ``{"result": N}`` once the gateway answered (504 when it did not);
``key`` replaces the Key the platform would compute (a lab's wrong or replayed Key).
"""

import json

from twisted.web import server
from twisted.web.resource import Resource

from cubegw import identity
from cubegw.platform import messagelog
from cubegw.platform.api import ApiError, CallResource, JSONResource, NotFound, read_object
from cubegw.platform.operation import TriggerError, TriggerTimeout

#: Seconds between two keep-alive comments on an idle event stream.
KEEPALIVE = 15.0
MAX_LIMIT = 100000


def require_admin(api, user_id):
    """``ApiError`` 403 unless ``user_id`` is an admin user."""
    if not any(u.user_id == user_id and u.admin for u in api.users):
        raise ApiError(403, "this needs an admin user (users[].admin: true)")


def gate(api, request):
    """The admin caller's user_id, or None with the error answer written (401/403)."""
    user_id = api.authenticate(request)
    try:
        if user_id is None:
            request.setHeader(b"www-authenticate", b'Bearer realm="cubeplat"')
            raise ApiError(401, "missing or unknown bearer token")
        require_admin(api, user_id)
    except ApiError as e:
        error_answer(request, e)
        return None
    return user_id


def error_answer(request, error):
    request.setResponseCode(error.code)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.write(json.dumps(error.body).encode("utf-8"))


class AdminResource(JSONResource):
    """A JSON resource for admin users only."""

    isLeaf = True

    def handler(self, method):
        found = super().handler(method)
        if found is None:
            return None

        def checked(request, user_id):
            require_admin(self.api, user_id)
            return found(request, user_id)
        return checked


def _int_arg(request, name, default, low=0, high=MAX_LIMIT):
    values = request.args.get(name.encode("ascii"))
    if not values:
        return default
    try:
        value = int(values[0])
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ApiError(400, f"{name} must be a whole number in {low}..{high}")
    return value


def phase(record, api, now):
    """Where a device is in the protocol, as the platform saw it last."""
    if api.plugin_center.is_connected(record.mac):
        return "plugin-connected"
    if record.registered and record.is_online(now, api.online_timeout):
        return "online"
    if record.registered:
        return "registered"
    if record.challenge:
        return "booted"
    if record.dist_challenge:
        return "distributed"
    return "known"


def describe(record, api, now, full=False, counts=None):
    """The device as the API shows it (``counts``: its log counters, if read already)."""
    last = api.wirelog.last(record.mac)
    out = {
        "mac": record.mac, "sn": record.sn, "loid": record.loid, "model": record.model,
        "vendor": record.vendor, "user_id": record.user_id, "bound": bool(record.user_id),
        "phase": phase(record, api, now), "registered": record.registered,
        "online": record.is_online(now, api.online_timeout),
        "last_heartbeat": record.last_hb or None, "wan_ip": record.wan_ip,
        "plugin_connected": api.plugin_center.is_connected(record.mac),
        "counters": counts or api.wirelog.counts(record.mac),
        "last_message": last,
    }
    if full:
        out["record"] = record.as_dict()
        out["trigger_key"] = record.trigger_key()
    return out


class PlatformResource(AdminResource):
    def do_GET(self, request, user_id):
        config = self.api.config
        out = {"message_log": self.api.wirelog.size}
        if config is not None:
            host, port = self.api.plugin_address()
            out.update(heartbeat_interval=config.heartbeat_interval,
                       trigger_timeout=config.trigger_timeout,
                       plugin_center={"host": host, "port": port},
                       distribution={"host": config.distribution.advertised,
                                     "port": self.api.distribution_port()})
        return 200, out


class DevicesResource(AdminResource):
    """``GET /api/devices``; ``/api/devices/<MAC>/...`` below it."""

    isLeaf = False

    def getChild(self, path, request):
        if path == b"" and not request.postpath:
            return self
        return DeviceResource(self.api, path)

    def do_GET(self, request, user_id):
        now = self.api.clock.seconds()
        records = sorted(self.api.registry, key=lambda r: r.mac)
        counts = self.api.wirelog.all_counts()      # one pass over the log's ring
        none = {"in": 0, "out": 0, "kept": 0}
        return 200, {"devices": [describe(r, self.api, now, counts=counts.get(r.mac, none))
                                 for r in records],
                     "unknown": counts.get(messagelog.UNKNOWN, none)}


class DeviceResource(Resource):
    """``/api/devices/<MAC>``: the device itself, or one of its actions."""

    def __init__(self, api, mac_segment):
        super().__init__()
        self.api = api
        self.mac_segment = mac_segment

    def getChild(self, path, request):
        if path == b"messages" and request.postpath in ([b"stream"], [b"stream", b""]):
            request.postpath = []
            return StreamResource(self.api, self.mac_segment)
        action = DEVICE_ACTIONS.get(path)
        if action is None or request.postpath not in ([], [b""]):
            return NotFound(self.api)
        return action(self.api, self.mac_segment)

    def render(self, request):
        return DeviceInfo(self.api, self.mac_segment).render(request)


class _DeviceAction(AdminResource):
    def __init__(self, api, mac_segment):
        super().__init__(api)
        self.mac_segment = mac_segment

    def device(self):
        """The device named in the path (any device: this is the admin's view), or 404."""
        mac = device_mac(self.mac_segment)
        record = self.api.registry.get(mac) if mac else None
        if record is None:
            raise ApiError(404, "no such device")
        return record


def device_mac(segment):
    try:
        return identity.normalize_mac(segment.decode("ascii"))
    except (UnicodeDecodeError, identity.IdentityError):
        return None


class DeviceInfo(_DeviceAction):
    def do_GET(self, request, user_id):
        return 200, describe(self.device(), self.api, self.api.clock.seconds(), full=True)


class MessagesResource(_DeviceAction):
    """The device's wire log: JSON, or JSON lines with ``?format=jsonl`` (the export)."""

    def render(self, request):
        if request.method != b"GET" or request.args.get(b"format") != [b"jsonl"]:
            return super().render(request)
        if gate(self.api, request) is None:
            return b""
        try:
            mac, entries = self.entries(request)
        except ApiError as e:
            error_answer(request, e)
            return b""
        request.setHeader(b"content-type", b"application/x-ndjson; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-disposition",
                          f'attachment; filename="{mac}-messages.jsonl"'.encode("ascii"))
        return messagelog.json_lines(entries)

    def entries(self, request):
        mac = device_mac(self.mac_segment)
        if mac is None or (mac not in self.api.registry
                           and not self.api.wirelog.counts(mac)["kept"]):
            raise ApiError(404, "no such device")
        since = _int_arg(request, "since", 0, high=2 ** 62)
        limit = _int_arg(request, "limit", None)
        return mac, self.api.wirelog.messages(mac, since, limit)

    def do_GET(self, request, user_id):
        fmt = (request.args.get(b"format") or [b"json"])[0]
        if fmt != b"json":
            raise ApiError(400, "format must be json or jsonl")
        mac, entries = self.entries(request)
        return 200, {"mac": mac, "last_seq": self.api.wirelog.last_seq,
                     "messages": entries}


class BindingResource(_DeviceAction):
    def do_DELETE(self, request, user_id):
        record = self.device()
        was = record.user_id
        if was:
            self.api.registry.bind(record.mac, "")
            self.api.log.info("{mac} unbound from user {user} by {admin}", mac=record.mac,
                              user=was, admin=user_id)
        return 200, {"mac": record.mac, "user_id": "", "was": was}


def _key(body):
    key = body.get("key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 64):
        raise ApiError(400, "key must be a string of 1 to 64 characters")
    return key


def _host_port(body, default):
    host = body.get("host", default[0])
    port = body.get("port", default[1])
    if not isinstance(host, str) or not host or len(host) > 256:
        raise ApiError(400, "host must be a non-empty string")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ApiError(400, "port must be a whole number 1-65535")
    return host, port


class _TriggerResource(_DeviceAction):
    def do_POST(self, request, user_id):
        record = self.device()
        body = read_object(request, required=False)
        d = self.send(record.mac, body)
        return d.addCallbacks(lambda result: (200, {"result": result}), self._failed)

    def _failed(self, reason):
        if reason.check(TriggerTimeout):
            raise ApiError(504, reason.getErrorMessage())
        if reason.check(TriggerError):
            raise ApiError(409, reason.getErrorMessage())
        return reason


class RequestPluginResource(_TriggerResource):
    def send(self, mac, body):
        host, port = _host_port(body, self.api.plugin_address())
        return self.api.operation.send_request_plugin(mac, host, port, key=_key(body))


class RequestDistriResource(_TriggerResource):
    def send(self, mac, body):
        host, port = _host_port(body, (self.api.config.distribution.advertised,
                                       self.api.distribution_port()))
        mode = body.get("mode")
        if mode is not None and not isinstance(mode, (str, int)):
            raise ApiError(400, "mode must be a string")
        return self.api.operation.send_request_distri(mac, host, port, mode, key=_key(body))


class DisconnectResource(_DeviceAction):
    def do_POST(self, request, user_id):
        record = self.device()
        if not self.api.plugin_center.disconnect(record.mac):
            raise ApiError(409, f"{record.mac}: not connected to the plugin center")
        return 200, {"disconnected": True}


class DropResource(_DeviceAction):
    def do_POST(self, request, user_id):
        record = self.device()
        if not self.api.plugin_center.drop(record.mac):
            raise ApiError(409, f"{record.mac}: not connected to the plugin center")
        return 200, {"dropped": True}


class AdminCallResource(_DeviceAction):
    """A Post to any device (what ``/api/gateways/<MAC>/call`` does for its owner)."""

    def do_POST(self, request, user_id):
        record = self.device()
        owner_view = CallResource(self.api, self.mac_segment)
        owner_view.gateway = lambda _: record
        return owner_view.do_POST(request, user_id)


class StreamResource(Resource):
    """Server-sent events: one ``message`` event per wire message (``id`` its seq)."""

    isLeaf = True

    def __init__(self, api, mac_segment=None):
        super().__init__()
        self.api = api
        self.mac_segment = mac_segment

    def render_GET(self, request):
        if gate(self.api, request) is None:
            return b""
        try:
            mac = None
            if self.mac_segment is not None:
                mac = device_mac(self.mac_segment)
                if mac is None:
                    raise ApiError(404, "no such device")
            since = _int_arg(request, "since", None, high=2 ** 62)
        except ApiError as e:
            error_answer(request, e)
            return b""
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        request.write(b": cubeplat message log\n\n")
        log = self.api.wirelog
        if since is not None and mac is not None:
            for entry in log.messages(mac, since):
                request.write(_event(entry))

        def listener(key, entry):
            if mac is None or key == mac:
                request.write(_event(messagelog.decode(key, entry)))
        stop = log.subscribe(listener)
        keepalive = self.api.clock.callLater(KEEPALIVE, self._keepalive, request)
        state = {"timer": keepalive}

        def finished(_):
            stop()
            timer = state["timer"]
            if timer is not None and timer.active():
                timer.cancel()
        request.notifyFinish().addBoth(finished)
        request._cubeplat_stream = state
        return server.NOT_DONE_YET

    def _keepalive(self, request):
        state = request._cubeplat_stream
        request.write(b": keep-alive\n\n")
        state["timer"] = self.api.clock.callLater(KEEPALIVE, self._keepalive, request)


def _event(entry):
    data = json.dumps(entry, ensure_ascii=False, sort_keys=True)
    return f"id: {entry['seq']}\nevent: message\ndata: {data}\n\n".encode("utf-8")


DEVICE_ACTIONS = {
    b"messages": MessagesResource, b"binding": BindingResource,
    b"request-plugin": RequestPluginResource, b"request-distri": RequestDistriResource,
    b"disconnect": DisconnectResource, b"drop": DropResource, b"call": AdminCallResource,
}


def install(branch, api):
    """Put the admin resources under ``branch`` (the ``/api`` resource)."""
    branch.putChild(b"platform", PlatformResource(api))
    branch.putChild(b"devices", DevicesResource(api))
    messages = Resource()
    messages.putChild(b"stream", StreamResource(api))
    branch.putChild(b"messages", messages)

