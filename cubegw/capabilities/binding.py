"""GET_SN_INFO, the first step of binding (deck 6.2): what every app asks first.

Apart from the other system capabilities so that the call every app makes on sight
loads only this, not the load, uptime and device-description code with it.
"""

from cubegw.capabilities.base import RIGHT_BOTH, Capability


class SnInfo(Capability):
    """GET_SN_INFO: the first step of binding (deck 6.2)."""

    cmd_types = ("GET_SN_INFO",)
    default_right = RIGHT_BOTH

    def handle_GET_SN_INFO(self, payload, context):
        return {"MAC": context.identity.mac,
                "BussinessStatus": "SUCCESS" if context.registered() else "FAIL"}


sn_info = SnInfo()
