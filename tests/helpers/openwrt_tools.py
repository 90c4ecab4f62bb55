"""The real OpenWrt tools (uci, jshn, opkg-cl, apk), built from OpenWrt's sources by
/work/shared/tools/openwrt-tools.sh (or any copy of it) into ``$OPENWRT_TOOLS``
(default /opt/openwrt-tools), never into the repository.  Tests that need one call
``tool("uci")`` and skip with the reason where it is absent (a fresh clone)."""

import os

from twisted.trial.unittest import SkipTest

DEFAULT = "/opt/openwrt-tools"


def prefix() -> str:
    """Where the tools are looked for."""
    return os.environ.get("OPENWRT_TOOLS") or DEFAULT


def tool_path(name: str):
    """The tool's path, or None if it is not built there."""
    path = os.path.join(prefix(), "bin", name)
    return path if os.access(path, os.X_OK) else None


def tool(name: str) -> str:
    """The tool's path; SkipTest saying how to get it if it is not there."""
    path = tool_path(name)
    if path is None:
        raise SkipTest(f"no {name} in {prefix()}/bin: build OpenWrt's tools with "
                       f"openwrt-tools.sh SRC {prefix()} (or set OPENWRT_TOOLS)")
    return path
