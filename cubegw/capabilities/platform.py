"""Platform capabilities: binding secrets, X_CT-COM_Mgt, rights."""

from cubegw import identity
from cubegw.capabilities.base import (
    RIGHT_BOTH, RIGHT_LOCAL, RIGHT_REMOTE, Capability, CapabilityFailure,
)
from cubegw.store import MGT_SECTION, StoreError

#: SET_BUSINESS_PLATFORM_PARAM argument -> X_CT-COM_Mgt parameter.
PLATFORM_FIELDS = {"MgtURL": "MgtURL", "Port": "Port", "HeartBeat": "Heartbeat",
                   "Ability": "Ability", "LocalPort": "LocatePort"}


def _binding(context):
    dev_rnd = context.dev_rnd()
    if not dev_rnd:
        raise CapabilityFailure("not registered")
    return {"LOID": context.identity.loid,
            "SN": identity.encrypted_sn(dev_rnd, context.identity.sn)}


class CheckPassword(Capability):
    """CHECK_PASSWD_PARAM: the dispatcher checks PassWD/PASSWORD (needs_account);
    then LOID and MD5(DevRND + SN) for binding (deck 6.2 step 4)."""

    cmd_types = ("CHECK_PASSWD_PARAM",)
    default_right = RIGHT_LOCAL
    needs_account = True

    def handle_CHECK_PASSWD_PARAM(self, payload, context):
        return _binding(context)


class HgLoid(Capability):
    """GET_HG_LOID: LOID and MD5(DevRND + SN)."""

    cmd_types = ("GET_HG_LOID",)
    default_right = RIGHT_LOCAL

    def handle_GET_HG_LOID(self, payload, context):
        return _binding(context)


class BusinessPlatform(Capability):
    """SET_BUSINESS_PLATFORM_PARAM (and the field's misspelling): X_CT-COM_Mgt,
    all fields or none; an absent, empty or "NULL" field is left unchanged."""

    cmd_types = ("SET_BUSINESS_PLATFORM_PARAM", "SET_BUSSINESS_PLATFORM_PARAM")
    default_right = RIGHT_BOTH

    def call(self, cmd_type, payload, context):
        changes = {}
        for arg, name in PLATFORM_FIELDS.items():
            value = payload.get(arg)
            if value is None or (isinstance(value, str) and value.strip().upper() in ("", "NULL")):
                continue
            changes[(MGT_SECTION, name)] = value
        if changes:
            try:
                context.store.update(changes)
            except StoreError as e:
                raise CapabilityFailure(str(e))
        return {}


class SetRight(Capability):
    """SET_RIGHT: API (a CmdType), RIGHT 0-3; kept in the store across resets.
    SET_RIGHT's own right cannot be changed, so the operator cannot lock itself out."""

    cmd_types = ("SET_RIGHT",)
    default_right = RIGHT_REMOTE

    def handle_SET_RIGHT(self, payload, context):
        api, right = payload.get("API"), payload.get("RIGHT")
        if isinstance(right, int) and not isinstance(right, bool):
            right = str(right)
        if not isinstance(api, str) or api not in context.rights.defaults:
            raise CapabilityFailure(f"unknown API {api!r:.40}")
        if api in self.cmd_types:
            raise CapabilityFailure("the right of SET_RIGHT cannot be changed")
        if not (isinstance(right, str) and right.strip() in ("0", "1", "2", "3")):
            raise CapabilityFailure(f"RIGHT must be 0, 1, 2 or 3, got {right!r:.40}")
        try:
            context.rights.set(api, right.strip())
        except StoreError as e:
            raise CapabilityFailure(str(e))
        return {}


check_password = CheckPassword()
hg_loid = HgLoid()
business_platform = BusinessPlatform()
set_right = SetRight()
