#!/bin/sh
# Put OpenWrt's own init script machinery beside the OpenWrt tools, for the tests that run
# /etc/init.d/cubegw under the real rc.common and procd.sh (tests/integration/test_openwrt_init.py):
#
#   $OPENWRT_TOOLS/openwrt-base/etc/rc.common               openwrt/openwrt package/base-files
#   $OPENWRT_TOOLS/openwrt-base/lib/functions.sh            openwrt/openwrt package/base-files
#   $OPENWRT_TOOLS/openwrt-base/lib/functions/service.sh    openwrt/openwrt package/base-files
#   $OPENWRT_TOOLS/openwrt-base/lib/functions/procd.sh      openwrt/openwrt package/system/procd
#   $OPENWRT_TOOLS/openwrt-base/usr/share/libubox/jshn.sh   libubox, installed by openwrt-tools.sh
#
# OPENWRT_TOOLS defaults to /opt/openwrt-tools (see ../shared/tools/openwrt-tools.sh).  Each file
# is taken at a pinned commit and checked against its sha256; files already there with the
# right sum are kept.  OPENWRT_BASE_URL (default https://raw.githubusercontent.com/openwrt/openwrt)
# may name a mirror or a local copy (file://...) laid out as <commit>/<path>.  Never committed.
set -eu
tools=${OPENWRT_TOOLS:-/opt/openwrt-tools}
base=$tools/openwrt-base
url=${OPENWRT_BASE_URL:-https://raw.githubusercontent.com/openwrt/openwrt}

# destination  commit  path in openwrt/openwrt  sha256
files='
etc/rc.common 0b1fa809d0e974398503a24e408c1209969711f7 package/base-files/files/etc/rc.common fff958592f68f8be12345170364c58ed28873e73034e4cfb64d7f31286378ad0
lib/functions.sh 01fa063ae9440273c6701708623a1928bb3ff657 package/base-files/files/lib/functions.sh bd143032bbe4df87a6f69874fb2ae63eb1157389d593083756de0169ff42e6d1
lib/functions/service.sh 9963ae1d1c331b0f5e8cf7c6762b3c9bd126037d package/base-files/files/lib/functions/service.sh 03f0391288859ffdc4de837dd348399120d3cb951bbeaf75b13ad1241bd9ee8a
lib/functions/procd.sh 03eca6c5e85cad7ff20459d2f363c60c598d9825 package/system/procd/files/procd.sh b9172be2e4993f25b2dc029b63fd1794ab1a13c080301242b812f81f9fbb8825
'

sum() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }

fetch() { # URL DEST
	if command -v curl >/dev/null; then curl -fsSL --max-time 60 -o "$2" "$1"
	elif command -v wget >/dev/null; then wget -q -T 60 -O "$2" "$1"
	else echo "openwrt-base.sh: neither curl nor wget" >&2; return 1
	fi
}

failed=0
echo "$files" | while read -r dest commit path want; do
	[ -n "$dest" ] || continue
	out=$base/$dest
	[ "$(sum "$out")" = "$want" ] && continue
	mkdir -p "$(dirname "$out")"
	if fetch "$url/$commit/$path" "$out.part" && [ "$(sum "$out.part")" = "$want" ]; then
		mv "$out.part" "$out"
	else
		rm -f "$out.part"
		echo "openwrt-base.sh: could not get $path at $commit (sha256 $want) from $url" >&2
		exit 1
	fi
done || failed=1
chmod 0755 "$base/etc/rc.common" 2>/dev/null || true

jshn=$tools/share/libubox/jshn.sh
if [ -f "$jshn" ]; then
	mkdir -p "$base/usr/share/libubox"
	cp "$jshn" "$base/usr/share/libubox/jshn.sh"
else
	echo "openwrt-base.sh: no $jshn: build the tools first (../shared/tools/openwrt-tools.sh)" >&2
	failed=1
fi
[ "$failed" = 0 ] && echo "OpenWrt base files in $base"
exit "$failed"
