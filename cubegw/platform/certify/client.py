"""The certification tool's side of cubeplat's admin HTTP API (blocking, standard library:
the tool is a command line, not a daemon)."""

import json
import urllib.error
import urllib.request


class PlatformError(Exception):
    """The platform answered an error, or could not be reached."""

    def __init__(self, message, code=None, body=None):
        super().__init__(message)
        self.code = code
        self.body = body or {}


class PlatformClient:
    """``base``: ``http://host:port`` of cubeplat's API; ``token``: an admin user's."""

    def __init__(self, base, token, timeout=30.0):
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method, path, body=None, timeout=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                answer = json.loads(e.read() or b"{}")
            except ValueError:
                answer = {}
            raise PlatformError(f"{method} {path}: HTTP {e.code}: "
                                f"{answer.get('error', e.reason)}", e.code, answer)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise PlatformError(f"{method} {path}: cannot reach the platform at "
                                f"{self.base}: {getattr(e, 'reason', e)}")

    def platform(self):
        return self.request("GET", "/api/platform")

    def device(self, mac):
        return self.request("GET", f"/api/devices/{mac}")

    def messages(self, mac, since=0):
        return self.request("GET", f"/api/devices/{mac}/messages?since={since}")["messages"]

    def set_faults(self, rules):
        return self.request("PUT", "/api/faults", {"faults": list(rules)})

    def trigger(self, mac, kind, **body):
        """``kind``: request-plugin or request-distri; the gateway's Result, or
        ``PlatformError`` (504: no answer)."""
        return self.request("POST", f"/api/devices/{mac}/{kind}", body)["result"]

    def disconnect(self, mac):
        return self.request("POST", f"/api/devices/{mac}/disconnect", {})

    def drop(self, mac):
        return self.request("POST", f"/api/devices/{mac}/drop", {})

    def call(self, mac, parameter, timeout=10):
        """A Post: ``(result, return_parameter)``."""
        answer = self.request("POST", f"/api/devices/{mac}/call",
                              {"parameter": parameter, "timeout": timeout},
                              timeout=timeout + 10)
        return answer["result"], answer["return_parameter"]
