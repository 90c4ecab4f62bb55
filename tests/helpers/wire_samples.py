"""Wire samples: one instance of every message class, the dispatch tables, and the
hypothesis strategies of JSON-like values and near-valid messages built from them."""

from hypothesis import strategies as st

from cubegw import wire
from cubegw.record import fields

from tests.helpers import MAC, SN

HEX = "0123456789ABCDEF0123456789ABCDEF"
PAYLOAD = {"CmdType": "GET_SN_INFO", "SequenceId": "0000000A", "Name": "网关"}

BOOT_FIELDS = dict(Vendor="V", Model="M", MAC=MAC, SN=SN, FirmwareVer="1.0",
                   HardwareVer="HW", IPAddr="192.0.2.10", LOID="0755123456")

#: One instance of every message class, with every optional field set.
SAMPLES = {
    wire.BootFirst: wire.BootFirst(**BOOT_FIELDS),
    wire.BootFirstReply: wire.BootFirstReply(Result=0, ChallengeCode=HEX),
    wire.RegisterFirst: wire.RegisterFirst(MAC=MAC, SN=SN, CheckSN=HEX),
    wire.RegisterFirstReply: wire.RegisterFirstReply(
        Result=2, ServerAddr="oper.example", ServerPort=60001, Interval=60),
    wire.Boot: wire.Boot(**BOOT_FIELDS),
    wire.BootReply: wire.BootReply(Result=0, ChallengeCode=HEX, Interval=45, flag="1"),
    wire.Register: wire.Register(MAC=MAC, SN=SN, CheckSN=HEX, DevRND=HEX, UserID="U1"),
    wire.RegisterReply: wire.RegisterReply(
        Result=2, UPDATEServer="upd.example", MessageServer="192.0.2.4:9000", UserID="U1"),
    wire.Hb: wire.Hb(MAC=MAC, IPAddr="192.0.2.10", FLAG="1"),
    wire.HbReply: wire.HbReply(Result=0, Interval=60),
    wire.RequestPlugin: wire.RequestPlugin(Key=HEX, ServerAddr="plug.example", ServerPort=8000),
    wire.RequestDistri: wire.RequestDistri(
        Key=HEX, ServerAddr="dist.example", ServerPort=12112, mode="1"),
    wire.Result: wire.Result(Result=-1),
    wire.PluginBoot: wire.PluginBoot(**BOOT_FIELDS),
    wire.PluginBootReply: wire.PluginBootReply(Result=0, ChallengeCode=HEX),
    wire.PluginRegister: wire.PluginRegister(MAC=MAC, SN=SN, CheckSN=HEX),
    wire.Heartbeat: wire.Heartbeat(MAC=MAC),
    wire.Post: wire.Post(ID=7, Parameter=PAYLOAD, Plugin_Name="p", Version="1.0"),
    wire.Post1: wire.Post1(ID=8, Parameter=PAYLOAD, Plugin_Name="p", Version="1.0"),
    wire.PostReply: wire.PostReply(Result=0, ID=7, return_Parameter=PAYLOAD),
    wire.Disconnect: wire.Disconnect(),
    wire.Report: wire.Report(MAC=MAC, Parameter=PAYLOAD),
}

TABLES = {
    "TO_GATEWAY_UDP": wire.TO_GATEWAY_UDP,
    "TO_PLATFORM_UDP": wire.TO_PLATFORM_UDP,
    "TO_GATEWAY_PLUGIN": wire.TO_GATEWAY_PLUGIN,
    "TO_PLUGIN_CENTER": wire.TO_PLUGIN_CENTER,
    "TO_GATEWAY_LAN": wire.TO_GATEWAY_LAN,
}

# No NaN: it decodes and encodes fine but is never equal to itself in the round trip.
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=40) | st.sampled_from(["", "0", "-1", "12112", MAC, HEX, "{}"]))
JSONISH = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=10), inner, max_size=4), max_leaves=12)

WIRE_NAMES = sorted({f.metadata["wire"] for cls in SAMPLES
                     for f in fields(cls)} | {"Result"})
METHODS = sorted({m for table in TABLES.values() for m in table} | {"Nope"})
MESSAGES = st.fixed_dictionaries(
    {"RPCMethod": st.sampled_from(METHODS) | JSONISH},
    optional={name: JSONISH for name in WIRE_NAMES})
# Messages that are valid except for the fields hypothesis replaces.
NEAR_VALID = st.builds(
    lambda cls, changes: dict(SAMPLES[cls].to_wire(), **changes),
    st.sampled_from(sorted(SAMPLES, key=lambda c: c.__name__)),
    st.dictionaries(st.sampled_from(WIRE_NAMES), JSONISH, max_size=3))
