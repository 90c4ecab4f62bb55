"""What the built-in capabilities keep in the store, known from boot without their modules.

The store must know every section and parameter when it loads, resets or fills in
defaults, but a capability module is imported only when one of its CmdTypes is first
called (``catalogue``).  So the store schema of every built-in capability lives here;
each module imports its own part back (``wifi.TIMER_TYPE`` is this ``TIMER_TYPE``).
"""

from cubegw.store import APP, ITMS, SHARED_ACCESS, Bool, Choice, ParamSpec, SectionType, String, UnsignedInt

__all__ = ["ensure_schema", "HTTP_SECTION", "MAX_HTTP_TIME", "HTTP_PARAMS", "NAME_TYPE",
           "GATEWAY_NAME", "ACCESS_TYPE", "REDIRECT_TYPE", "REDIRECT_CONF", "MAX_RULES",
           "LOID_SECTION", "LOID_PARAMS", "WD_SECTION", "WD_FIELDS", "TIMER_KEY", "TIMER_TYPE"]

# -- diagnostics: HTTP download speed test ------------------------------------------
#: The dispatcher times a call out at 10 s, and HTTP_DOWNLOAD_REQUEST answers
#: with the measurement: a test lasts at most this many seconds.
MAX_HTTP_TIME = 8
HTTP_SECTION = "http_test"
HTTP_PARAMS = (
    ParamSpec(HTTP_SECTION, "url", String(256, no_whitespace=True), "", APP,
              doc="default URL of HTTP_DOWNLOAD_REQUEST (SET_HTTP_CFG)"),
    ParamSpec(HTTP_SECTION, "time", UnsignedInt(1, MAX_HTTP_TIME), 5, APP,
              doc="default seconds of HTTP_DOWNLOAD_REQUEST (SET_HTTP_CFG)"),
)

# -- field_extra: device names ---------------------------------------------------------
NAME_TYPE = SectionType(
    "lan_name", "mac", APP,
    (ParamSpec("lan_name", "name", String(64), "", APP,
               doc="name given with SET_ATTACH_DEVICE_NAME"),),
    key_kind=String(12, non_empty=True, no_whitespace=True))
GATEWAY_NAME = ParamSpec("gateway", "name", String(64), "", APP,
                         doc="the gateway's name (SET_HG_DEV_NAME); empty: the model")

# -- lan_devices: internet access control -------------------------------------------
ACCESS_TYPE = SectionType(
    "lan_access", "mac", SHARED_ACCESS,
    (ParamSpec("lan_access", "internet", Bool(), True, SHARED_ACCESS,
               doc="internet access allowed"),),
    key_kind=String(17, non_empty=True, no_whitespace=True))

# -- redirect: DNS redirect rules, and the dnsmasq file written from them -------------
REDIRECT_CONF = "/tmp/dnsmasq.d/cubegw-redirect.conf"
MAX_RULES = 256
REDIRECT_TYPE = SectionType(
    "dns_redirect", "index", APP,
    (ParamSpec("dns_redirect", "mode", String(16, no_whitespace=True), "", APP,
               doc="the rule's mode"),
     ParamSpec("dns_redirect", "source", String(45, no_whitespace=True), "", APP,
               doc="answer address redirected (empty: failed look-ups)"),
     ParamSpec("dns_redirect", "target", String(45, non_empty=True, no_whitespace=True),
               "0.0.0.0", APP, doc="the address given instead"),
     ParamSpec("dns_redirect", "family", Choice(("4", "6")), "4", APP, doc="IP version")),
    key_kind=UnsignedInt(0, MAX_RULES))

# -- system_extra: the LOID given with REGISTER ---------------------------------------
LOID_SECTION = "loid"
LOID_PARAMS = (
    ParamSpec(LOID_SECTION, "userid", String(64, no_whitespace=True), "", ITMS,
              doc="LOID given with REGISTER"),
    ParamSpec(LOID_SECTION, "password", String(64), "", ITMS,
              doc="LOID password given with REGISTER"),
    ParamSpec(LOID_SECTION, "state", String(32), "REGISTER_DEFAULT", ITMS,
              doc="REGISTER_GETSTAT's RegisterStatus"),
    ParamSpec(LOID_SECTION, "since", String(16), "", ITMS,
              doc="clock seconds of the last REGISTER"),
)

# -- upgrade: the web pop-up's settings (SET_WD_INFO) ---------------------------------
WD_SECTION = "web_popup"
WD_FIELDS = {  # request field -> store parameter
    "enable": ParamSpec(WD_SECTION, "enable", Bool(), False, APP, doc="pop-up on"),
    "W": ParamSpec(WD_SECTION, "width", UnsignedInt(0, 4096), 0, APP, doc="width, px"),
    "H": ParamSpec(WD_SECTION, "height", UnsignedInt(0, 4096), 0, APP, doc="height, px"),
    "Place": ParamSpec(WD_SECTION, "place", String(32, no_whitespace=True), "", APP,
                       doc="where the pop-up shows"),
    "WDurl": ParamSpec(WD_SECTION, "url", String(256, no_whitespace=True), "", APP,
                       doc="page shown in the pop-up"),
    "time": ParamSpec(WD_SECTION, "time", UnsignedInt(0, 86400), 0, APP,
                      doc="seconds the pop-up stays"),
}

# -- wifi: the WiFi timer -------------------------------------------------------------
TIMER_KEY = "1"
TIMER_TYPE = SectionType(
    "wifi_timer", "id", APP, (
        ParamSpec("wifi_timer", "enable", Bool(), False, APP, doc="timer on"),
        ParamSpec("wifi_timer", "start", String(5), "", APP, doc="HH:MM radios off"),
        ParamSpec("wifi_timer", "end", String(5), "", APP, doc="HH:MM radios on"),
        ParamSpec("wifi_timer", "cycle", String(32), "DAY", APP,
                  doc="DAY or weekdays 1-7 (1 Monday)"),
        ParamSpec("wifi_timer", "radios_off", String(256), "", APP,
                  doc="radios the timer turned off (comma list), the only ones it turns on"),
    ))

#: Everything above, in the order the modules registered it when all were imported at
#: start (by module name), so a store file's layout does not change.
_ALL = (*HTTP_PARAMS, NAME_TYPE, GATEWAY_NAME, ACCESS_TYPE, REDIRECT_TYPE, *LOID_PARAMS,
        *WD_FIELDS.values(), TIMER_TYPE)


def ensure_schema(schema):
    """Register every built-in capability's sections and parameters (idempotent)."""
    for item in _ALL:
        if isinstance(item, SectionType):
            schema.ensure_type(item)
        else:
            schema.ensure(item)
