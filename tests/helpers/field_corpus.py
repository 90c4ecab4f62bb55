"""Field-shaped messages, byte for byte as the field sends them (protocol.md 3, 5, 8, 9).

Shaped after the public lab tool (zhaojunhhu/GUIServerByTkinter: its ``ServerCmd/*.txt``
command files and ``TCPandUDP/CmdSet.py``): numbers with leading zeros (``"ID":0000``),
spaces around separators, ``Plugin_Name`` "test" or "", numeric strings, a raw JSON
``Parameter``, junk after the object, and the platform's follow-ups to a trigger answer.
Each entry is ``(name, frame payload bytes, expected ID, expected CmdType, expected
Status, expected FailReason or None)``; ``{method}`` is Post1 (LAN) or Post (plugin center).
"""

import base64
import json


def b64(payload):
    """The payload as the lab encodes it: base64 of its JSON."""
    return base64.b64encode(json.dumps(payload).encode()).decode()


def raw(payload):
    """The payload as a raw JSON string inside the Parameter string."""
    return json.dumps(json.dumps(payload))[1:-1]


_DURATION = {"CmdType": "GET_TIME_DURATION", "SequenceId": "1234567b"}
_VERSION = {"CmdType": "GET_VERSION", "SequenceId": "1234567B"}
_SYSINFO = {"CmdType": "QUERY_SYSTEM_INFO", "SequenceId": "0000AAAA"}
_MEM = {"CmdType": "QUERY_MEM_INFO", "SequenceId": "00000001"}
_UNKNOWN = {"CmdType": "NO_SUCH_FIELD_CMD", "SequenceId": "ABCDEF01"}

#: Capability calls, for either side (``{method}`` filled in by the caller).
POSTS = [
    ("lab command file: ID 0000, spaces, Plugin_Name test",
     '{{"RPCMethod":"{method}" , "ID":0000,"Plugin_Name": "test","Version":"1.0",'
     '"Parameter":"' + b64(_DURATION) + '"}}', 0, "GET_TIME_DURATION", "0", None),
    ("leading zeros read as decimal, never octal",
     '{{"RPCMethod":"{method}","ID":0010,"Plugin_Name":"","Version":"1.0",'
     '"Parameter":"' + b64(_VERSION) + '"}}', 10, "GET_VERSION", "0", None),
    ("ID as a numeric string, Plugin_Name empty",
     '{{"RPCMethod":"{method}","ID":"0042","Plugin_Name":"","Version":"1.0",'
     '"Parameter":"' + b64(_SYSINFO) + '"}}', 42, "QUERY_SYSTEM_INFO", "0", None),
    ("raw JSON object string as Parameter",
     '{{"RPCMethod":"{method}","ID":7,"Plugin_Name":"test","Version":"1.0",'
     '"Parameter":"' + raw(_MEM) + '"}}', 7, "QUERY_MEM_INFO", "0", None),
    ("Parameter as a JSON object, no Version",
     '{{"RPCMethod":"{method}","ID":8,"Plugin_Name":"test",'
     '"Parameter":' + json.dumps(_VERSION) + '}}', 8, "GET_VERSION", "0", None),
    ("a NUL counted in the length after the object",
     '{{"RPCMethod":"{method}","ID":0003,"Plugin_Name":"test","Version":"1.0",'
     '"Parameter":"' + b64(_VERSION) + '"}}\0', 3, "GET_VERSION", "0", None),
    ("a trailing newline, as the command file's line",
     '{{"RPCMethod":"{method}" , "ID":0004,"Plugin_Name": "test","Version":"1.0",'
     '"Parameter":"' + b64(_MEM) + '"}}\r\n', 4, "QUERY_MEM_INFO", "0", None),
    ("an unknown CmdType, answered as the field does",
     '{{"RPCMethod":"{method}","ID":0005,"Plugin_Name":"test","Version":"1.0",'
     '"Parameter":"' + b64(_UNKNOWN) + '"}}', 5, "NO_SUCH_FIELD_CMD", "1",
     "UNRECOGNIZE_REQUEST"),
]

#: A frame no tolerance can read: dropped, the connection stays.
UNREADABLE = b'{"RPCMethod":"Post1","ID":'

#: The lab's SET_RIGHT command (ServerCmd "6.32"): GET_SN_INFO to RIGHT 2 (both sides).
SET_RIGHT_GET_SN_INFO = (
    '{"RPCMethod":"Post" , "ID":0000,"Plugin_Name": "test","Version":"1.0","Parameter":"'
    + b64({"CmdType": "SET_RIGHT", "API": "GET_SN_INFO", "RIGHT": "2",
           "SequenceId": "1234AABB"}) + '"}')

#: The platform's follow-ups to a trigger answer (CmdSet.SendHb1): acknowledged, or
#: "register again".
FOLLOW_UP_ACK = b'{"Result": 1}'
FOLLOW_UP_AGAIN = b'{"Result": -1}'


def post(entry, method):
    """The frame payload bytes of a POSTS entry for ``method`` (Post1 or Post)."""
    return entry[1].replace("{method}", method).replace("{{", "{").replace("}}", "}") \
        .encode("utf-8")
