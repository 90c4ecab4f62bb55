"""The field's TR-069 passthroughs, on the parameters cubegw owns.

The field gateway hands GETPARAMETERVALUES, SETPARAMETERVALUES, ADDOBJECT and
DELETEOBJECT to its TR-069 client.  cubegw answers them itself for the data model
it holds (protocol.md section 10, docs/CATALOGUE.md):

* ``InternetGatewayDevice.X_CT-COM_Mgt.*``: the management store (MGT);
* ``InternetGatewayDevice.DeviceInfo.*``: the identity and uptime, read-only;
* ``InternetGatewayDevice.LANDevice.1.WLANConfiguration.{i}.*`` (SSID, Enable,
  Channel, KeyPassphrase): the i-th UCI ``wifi-iface``, set through SET_WIFI_INFO's
  checks; ``LANHostConfigManagement.IPInterface.1.*``: UCI network ``lan``, read-only.

Any other name is a TR-069 fault: FailReason "9005 Invalid parameter name: ...".
Requests and replies are the field's: ``List`` of ``{"Name"}`` (GET; a name ending
in "." asks for every parameter under it) or ``{"Name", "Value"}`` (SET, values
strings, all checked before any is written); ADDOBJECT/DELETEOBJECT ``Object``.
"""

from cubegw.capabilities import wifi
from cubegw.capabilities.base import RIGHT_BOTH, Capability, CapabilityFailure
from cubegw.store import MGT_SECTION, StoreError

__all__ = ["Tr069", "MGT_PATH", "WLAN_PATH", "tr069"]

ROOT = "InternetGatewayDevice."
MGT_PATH = ROOT + "X_CT-COM_Mgt."
INFO_PATH = ROOT + "DeviceInfo."
LAN_PATH = ROOT + "LANDevice.1."
WLAN_PATH = LAN_PATH + "WLANConfiguration."
IP_PATH = LAN_PATH + "LANHostConfigManagement.IPInterface.1."
#: WLANConfiguration leaf -> the SET_WIFI_INFO field it is.
WLAN_FIELDS = {"SSID": "SSID", "Enable": "Enable", "Channel": "Channel",
               "KeyPassphrase": "PWD"}
MAX_NAMES = 256


def fault(code, text):
    raise CapabilityFailure(f"{code} {text}"[:300])


def _list(payload, keys):
    items = payload.get("List")
    if not isinstance(items, list) or not items or len(items) > MAX_NAMES:
        fault(9003, "Invalid arguments: List of 1-256 objects required")
    out = []
    for item in items:
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in keys) \
                or not item["Name"]:
            fault(9003, f"Invalid arguments: each List entry needs {' and '.join(keys)}")
        out.append(tuple(item[k] for k in keys))
    return out


class Tr069(Capability):
    """GETPARAMETERVALUES, SETPARAMETERVALUES, ADDOBJECT, DELETEOBJECT."""

    cmd_types = ("GETPARAMETERVALUES", "SETPARAMETERVALUES", "ADDOBJECT", "DELETEOBJECT")
    default_right = RIGHT_BOTH

    # -- the tree ------------------------------------------------------------------

    def _values(self, context):
        """Every parameter cubegw owns: full name -> (value, writable)."""
        values = {}
        store = context.store
        for spec in store.schema.params():
            if spec.section == MGT_SECTION:
                values[MGT_PATH + spec.name] = (store.get(spec.section, spec.name),
                                                spec.writable)
        ident = context.identity
        for name, value in (("Manufacturer", ident.vendor), ("ModelName", ident.model),
                            ("SerialNumber", ident.sn), ("SoftwareVersion",
                                                         ident.firmware_version),
                            ("HardwareVersion", ident.hardware_version),
                            ("UpTime", int(context.backend.uptime()))):
            values[INFO_PATH + name] = (value, False)
        try:
            wireless = wifi.load_wireless(context.backend)
        except CapabilityFailure:
            wireless = None
        if wireless is not None:
            for i, iface in enumerate(wireless.sections_of("wifi-iface"), 1):
                info = wifi.iface_info(i, iface, wifi._radio(wireless, iface))
                for leaf, field in WLAN_FIELDS.items():
                    values[f"{WLAN_PATH}{i}.{leaf}"] = (info[field], True)
        try:
            network = context.backend.read_uci("network")
        except Exception:
            network = None
        lan = network.section("lan") if network is not None else None
        if lan is not None:
            values[IP_PATH + "IPInterfaceIPAddress"] = (lan.get("ipaddr", ""), False)
            values[IP_PATH + "IPInterfaceSubnetMask"] = (lan.get("netmask", ""), False)
        return values

    # -- the calls -----------------------------------------------------------------

    def handle_GETPARAMETERVALUES(self, payload, context):
        values = self._values(context)
        out = []
        for (name,) in _list(payload, ("Name",)):
            if name.endswith("."):
                found = [n for n in values if n.startswith(name)]
                if not found:
                    fault(9005, f"Invalid parameter name: {name}")
                out += [{"Name": n, "Value": values[n][0]} for n in found]
            elif name in values:
                out.append({"Name": name, "Value": values[name][0]})
            else:
                fault(9005, f"Invalid parameter name: {name}")
        return {"List": out}

    async def handle_SETPARAMETERVALUES(self, payload, context):
        values = self._values(context)
        mgt, wlan = {}, {}
        for name, value in _list(payload, ("Name", "Value")):
            if name not in values:
                fault(9005, f"Invalid parameter name: {name}")
            if not values[name][1]:
                fault(9008, f"Attempt to set a non-writable parameter: {name}")
            if name.startswith(MGT_PATH):
                mgt[(MGT_SECTION, name[len(MGT_PATH):])] = value
            else:
                index, leaf = name[len(WLAN_PATH):].split(".", 1)
                wlan.setdefault(index, {"SSIDIndex": index})[WLAN_FIELDS[leaf]] = value
        if mgt:
            try:
                context.store.update(mgt)
            except StoreError as e:
                fault(9007, f"Invalid parameter value: {e}")
        for fields in wlan.values():
            try:
                await wifi.wifi_info.handle_SET_WIFI_INFO(fields, context)
            except CapabilityFailure as e:
                fault(9007, f"Invalid parameter value: {e.reason}")
        return {}

    def _object(self, payload):
        name = payload.get("Object")
        if not isinstance(name, str) or not name:
            fault(9003, "Invalid arguments: Object required")
        return name

    def handle_ADDOBJECT(self, payload, context):
        name = self._object(payload)
        if name.startswith(ROOT) and any(n.startswith(name) for n in self._values(context)):
            fault(9005, f"Invalid parameter name: {name} is not a multi-instance object "
                  "cubegw adds to")
        fault(9005, f"Invalid parameter name: {name}")

    def handle_DELETEOBJECT(self, payload, context):
        name = self._object(payload)
        if name.startswith(ROOT) and any(n.startswith(name) for n in self._values(context)):
            fault(9005, f"Invalid parameter name: {name} is not an instance cubegw deletes")
        fault(9005, f"Invalid parameter name: {name}")


tr069 = Tr069()
