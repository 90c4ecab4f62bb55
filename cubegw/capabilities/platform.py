"""Platform capabilities: binding secrets, X_CT-COM_Mgt, rights."""

from cubegw import identity
from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure, field_right
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
    default_right = RIGHT_BOTH
    needs_account = True
    account_is_the_call = True

    def handle_CHECK_PASSWD_PARAM(self, payload, context):
        return _binding(context)


class HgLoid(Capability):
    """GET_HG_LOID: LOID and MD5(DevRND + SN)."""

    cmd_types = ("GET_HG_LOID",)
    default_right = RIGHT_BOTH

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
            # the LAN listener moves to a new LocalPort once this reply is out
            context.after_reply(lambda: context.store_changed(set(changes)))
        return {}


class SetRight(Capability):
    """SET_RIGHT: API (a CmdType), RIGHT as the field has it (0 local, 1 remote, 2 both,
    3 none); kept in the store across resets.  SET_RIGHT's own right cannot be changed,
    so the operator cannot lock itself out."""

    cmd_types = ("SET_RIGHT",)
    default_right = RIGHT_BOTH

    def handle_SET_RIGHT(self, payload, context):
        api = payload.get("API")
        if not isinstance(api, str) or api not in context.rights.defaults:
            raise CapabilityFailure(f"unknown API {api!r:.40}")
        if api in self.cmd_types:
            raise CapabilityFailure("the right of SET_RIGHT cannot be changed")
        try:
            right = field_right(payload.get("RIGHT"))
        except ValueError as e:
            raise CapabilityFailure(str(e))
        try:
            context.rights.set(api, right)
        except StoreError as e:
            raise CapabilityFailure(str(e))
        return {}


check_password = CheckPassword()
hg_loid = HgLoid()
business_platform = BusinessPlatform()
set_right = SetRight()
