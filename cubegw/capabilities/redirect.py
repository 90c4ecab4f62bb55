"""SET_REDIRECT_INFO: DNS redirect rules from a file the platform names.

As the field gateway (``DNSRedirect``): ``downurl`` is answered at once, the file
is fetched in the background and each line holding ``ErrRedirect`` gives a rule
``ErrRedirect "<mode>" "<source IP>" "<redirect IP>"``.  A rule with a source
address makes an answer of that address come back as the redirect address
(dnsmasq's ``alias=``); a rule with an empty source names where failed look-ups
go (kept, reported, not applied: dnsmasq has no such switch).

The deck names DNS redirect APP-owned data: the rules are ``dns_redirect``
sections of the store, owner APP, so the APP factory reset clears them.  The
dnsmasq file ``/tmp/dnsmasq.d/cubegw-redirect.conf`` (OpenWrt's dnsmasq reads
that folder) is written from the store at start, after a download and after the
APP reset, then dnsmasq is reloaded (``apply("dhcp")``).
"""

import ipaddress
import re

from twisted.internet import defer

from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure
from cubegw.logs import Logger
from cubegw.capabilities.stored import MAX_RULES, REDIRECT_CONF, REDIRECT_TYPE
from cubegw.store import StoreError

__all__ = ["DnsRedirect", "REDIRECT_TYPE", "CONF_PATH", "parse_rules", "dnsmasq_lines",
           "dns_redirect"]

log = Logger()

CONF_PATH = REDIRECT_CONF
MAX_FILE = 64 * 1024
FETCH_TIMEOUT = 30.0
_TYPE = REDIRECT_TYPE.type
_QUOTED = re.compile(r'"([^"]*)"')


def _address(text):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_rules(text):
    """The rules of a redirect file: dicts mode, source, target, family; lines
    without ``ErrRedirect`` or with an address that is not one are skipped."""
    rules = []
    for line in text.splitlines():
        if "ErrRedirect" not in line:
            continue
        values = _QUOTED.findall(line)
        if len(values) < 3:
            continue
        mode, source, target = (v.strip() for v in values[:3])
        target_ip = _address(target)
        if target_ip is None or (source and _address(source) is None) \
                or not re.fullmatch(r"[A-Za-z0-9_-]{0,16}", mode):
            continue
        if source and _address(source).version != target_ip.version:
            continue
        rules.append({"mode": mode, "source": source, "target": str(target_ip),
                      "family": str(target_ip.version)})
        if len(rules) == MAX_RULES:
            break
    return rules


def dnsmasq_lines(rules):
    """The dnsmasq configuration of the rules (``alias=`` per sourced rule)."""
    lines = ["# written by cubegw from SET_REDIRECT_INFO; do not edit"]
    for rule in rules:
        if rule["source"]:
            lines.append(f"alias={rule['source']},{rule['target']}")
    return "\n".join(lines) + "\n"


def _fetch(url, reactor):
    """GET ``url`` (at most MAX_FILE bytes): a Deferred of the body."""
    from twisted.web import client
    d = client.Agent(reactor).request(b"GET", url.encode("ascii"))

    def body(response):
        if response.code != 200:
            raise ValueError(f"HTTP status {response.code}")
        if response.length not in (None, client.UNKNOWN_LENGTH) and response.length > MAX_FILE:
            raise ValueError("file too large")
        return client.readBody(response)
    return d.addCallback(body)


class DnsRedirect(Capability):
    """SET_REDIRECT_INFO (downurl http(s)): Status 0 at once, the rules replaced in
    the background once the file is read; Status 1 without a usable downurl."""

    cmd_types = ("SET_REDIRECT_INFO",)
    default_right = RIGHT_BOTH
    store_schema = (REDIRECT_TYPE,)

    def __init__(self, fetch=_fetch):
        self.fetch = fetch
        self.pending = None
        #: The outcome of the last download: "" none yet, "Done", or the reason.
        self.last = ""

    def rules(self, store):
        self.ensure_schema(store.schema)
        return sorted(store.list_sections(_TYPE), key=lambda r: r["index"])

    def write_conf(self, context):
        """Make dnsmasq's file match the store and reload dnsmasq (a Deferred)."""
        backend = context.backend
        rules = self.rules(context.store)
        if not any(r["source"] for r in rules):
            if not backend.remove_file(CONF_PATH):
                return defer.succeed(None)
        else:
            backend.write_file(CONF_PATH, dnsmasq_lines(rules))
        d = backend.apply("dhcp")
        d.addCallback(lambda reason: reason and log.info(
            "DNS redirect not reloaded: {reason}", reason=reason))
        return d

    def start(self, context):
        return self._logged(self.write_conf(context))

    def stop(self):
        if self.pending is not None:
            self.pending.cancel()

    def after_app_reset(self, context):
        return self._logged(self.write_conf(context))

    @staticmethod
    def _logged(d):
        return d.addErrback(lambda f: log.failure("DNS redirect not applied", f))

    def handle_SET_REDIRECT_INFO(self, payload, context):
        url = payload.get("downurl")
        if not isinstance(url, str) or not re.fullmatch(r"https?://[\x21-\x7e]{1,1000}", url):
            raise CapabilityFailure("downurl must be an http:// or https:// URL")
        if self.pending is not None:
            raise CapabilityFailure("busy: a redirect file is being read")
        d = defer.maybeDeferred(self.fetch, url, context.clock)
        d.addTimeout(FETCH_TIMEOUT, context.clock)
        self.pending = d
        d.addCallback(self._store, context)
        d.addErrback(self._failed)
        d.addBoth(self._finished)
        return {}

    def _store(self, body, context):
        if len(body) > MAX_FILE:
            raise ValueError("file too large")
        rules = parse_rules(body.decode("utf-8", "replace"))
        store = context.store
        try:
            for old in self.rules(store):
                store.remove_section(_TYPE, old["index"])
            for index, rule in enumerate(rules):
                store.add_section(_TYPE, index, rule)
        except StoreError as e:
            raise ValueError(str(e))
        self.last = "Done"
        log.info("DNS redirect: {n} rules", n=len(rules))
        return self.write_conf(context)

    def _failed(self, failure):
        self.last = f"download failed: {failure.getErrorMessage()[:120]}"
        log.warn("SET_REDIRECT_INFO: {reason}", reason=self.last)

    def _finished(self, _):
        self.pending = None


dns_redirect = DnsRedirect()
