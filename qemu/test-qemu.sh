#!/bin/sh
# qemu/test-qemu.sh [ARCH]: run cubegw's trial unit suite on another CPU architecture,
# under qemu user-mode emulation, against Debian bookworm's own packages
# (python3-twisted, python3-psutil, ...).  ARCH is a Debian architecture name:
# arm64 (default), armhf, armel, mipsel, mips64el, ppc64el, s390x, i386.
#
#   sudo qemu/test-qemu.sh              # arm64
#   sudo qemu/test-qemu.sh armhf
#   INTEGRATION=1 qemu/test-qemu.sh     # also tests/integration (slow under emulation)
#   REBUILD=1 qemu/test-qemu.sh         # throw the cached root away first
#
# Needs root (debootstrap, chroot, mounts).  The first run builds a minimal bookworm root
# with `debootstrap --foreign` and finishes it inside the chroot under emulation
# (15-30 min); it is cached in qemu/roots/bookworm-ARCH (git-ignored), so a rerun only
# copies the tree in and runs the tests.  The mirror is the one apt uses here
# (/etc/apt/sources.list*), override with MIRROR=URL.
#
# Emulation is through binfmt_misc (qemu-user-static registers its interpreters with the
# F flag, so nothing has to be copied into the root).  Without binfmt_misc the script
# falls back to unpacking the .debs with dpkg-deb -x (no maintainer scripts) and to
# running python3 through the static qemu binary copied into the root; tests that start
# a subprocess then fail.
set -eu

ARCH=${1:-arm64}
SUITE=bookworm
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
ROOT=${ROOTS:-$HERE/roots}/$SUITE-$ARCH
# python3-cffi-backend: debootstrap does not resolve the virtual python3-cffi-backend-api-*
# that python3-bcrypt and python3-cryptography (pulled in by python3-twisted) depend on
PACKAGES="python3,python3-cffi-backend,python3-twisted,python3-psutil,python3-yaml,python3-zope.interface,python3-hypothesis,pyflakes3"

case $ARCH in
	arm64) QARCH=aarch64 ;;
	armhf|armel) QARCH=arm ;;
	mipsel) QARCH=mipsel ;;
	mips64el) QARCH=mips64el ;;
	ppc64el) QARCH=ppc64le ;;
	s390x) QARCH=s390x ;;
	i386) QARCH=i386 ;;
	amd64) QARCH= ;;
	*) echo "test-qemu: unknown architecture $ARCH" >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || { echo "test-qemu: needs root (debootstrap, chroot)" >&2; exit 2; }

log() { echo "test-qemu: $*" >&2; }

# --- host tools -------------------------------------------------------------------------
if ! command -v debootstrap >/dev/null || { [ -n "$QARCH" ] && ! command -v "qemu-$QARCH-static" >/dev/null; }; then
	log "installing debootstrap qemu-user-static binfmt-support"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap qemu-user-static binfmt-support >/dev/null
fi

# the Debian mirror apt uses here (deb822 "URIs:" or one-line "deb URL suite")
if [ -z "${MIRROR:-}" ]; then
	MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^URIs:/ {print $2} /^deb / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; break}}' |
		grep -E '/debian/?$' | head -n 1)
	MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

# --- binfmt_misc --------------------------------------------------------------------------
BINFMT=1
if [ -n "$QARCH" ]; then
	[ -e /proc/sys/fs/binfmt_misc/register ] ||
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
	[ -e "/proc/sys/fs/binfmt_misc/qemu-$QARCH" ] ||
		update-binfmts --enable "qemu-$QARCH" >/dev/null 2>&1 || true
	if ! grep -qx enabled "/proc/sys/fs/binfmt_misc/qemu-$QARCH" 2>/dev/null; then
		BINFMT=0
		QEMU=/usr/bin/qemu-$QARCH-static
		log "binfmt_misc is not available: falling back to dpkg-deb -x and an explicit qemu-$QARCH-static"
	fi
fi

# --- mounts inside the root, undone on exit -----------------------------------------------
MOUNTED=
cleanup() {
	for m in $MOUNTED; do umount -l "$ROOT/$m" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
mount_in_root() {
	mountpoint -q "$ROOT/proc" || { mount -t proc proc "$ROOT/proc"; MOUNTED="proc $MOUNTED"; }
	mountpoint -q "$ROOT/sys" || { mount -t sysfs sysfs "$ROOT/sys" 2>/dev/null && MOUNTED="sys $MOUNTED" || true; }
	mountpoint -q "$ROOT/dev" || { mount --bind /dev "$ROOT/dev"; MOUNTED="dev $MOUNTED"; }
}

# --- the root -------------------------------------------------------------------------------
[ "${REBUILD:-0}" = 1 ] && [ -d "$ROOT" ] && { log "removing $ROOT"; rm -rf "$ROOT"; }
if [ ! -e "$ROOT/.cubegw-ready" ]; then
	START=$(date +%s)
	rm -rf "$ROOT"
	mkdir -p "$ROOT"
	log "debootstrap --foreign $SUITE $ARCH from $MIRROR into $ROOT"
	debootstrap --foreign --arch="$ARCH" --variant=minbase --include="$PACKAGES" \
		"$SUITE" "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
		{ tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
	[ -n "$QARCH" ] && cp "$(command -v "qemu-$QARCH-static")" "$ROOT/usr/bin/"
	if [ "$BINFMT" = 1 ]; then
		log "second stage under emulation (the slow part)"
		chroot "$ROOT" /debootstrap/debootstrap --second-stage >>"$ROOT.debootstrap.log" 2>&1 ||
			{ tail -20 "$ROOT.debootstrap.log" >&2; exit 1; }
	else
		log "unpacking every downloaded .deb (no maintainer scripts)"
		for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
	fi
	touch "$ROOT/.cubegw-ready"
	log "root ready in $(( $(date +%s) - START )) s"
fi

# --- the project, fresh each run ------------------------------------------------------------
rm -rf "$ROOT/src/cubegw"
mkdir -p "$ROOT/src/cubegw"
(cd "$SRC" && tar cf - --exclude=./.git --exclude=./.venv --exclude='./.venv-*' \
	--exclude=./qemu/roots --exclude=./build --exclude=./dist --exclude='./_trial_temp*' \
	--exclude=__pycache__ --exclude=dropin.cache --exclude=.hypothesis --exclude='*.egg-info' .) |
	(cd "$ROOT/src/cubegw" && tar xf -)

if [ "${INTEGRATION:-0}" = 1 ]; then
	MODULES=tests
else
	MODULES=$(cd "$ROOT/src/cubegw" && ls tests/test_*.py | sed 's,/,.,; s,\.py$,,' | tr '\n' ' ')
fi

mount_in_root
# the environment is set on the host side (env -i), so that only python3 runs in the root
# (which is all the fallback without binfmt_misc can do)
ENV="env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 PYTHONPATH=/src/cubegw PYTHONDONTWRITEBYTECODE=1"
TWISTED=$($ENV chroot "$ROOT" ${QEMU:-} /usr/bin/python3 -c 'import twisted; print(twisted.__version__)')
PYVER=$($ENV chroot "$ROOT" ${QEMU:-} /usr/bin/python3 -c 'import platform; print(platform.python_version(), platform.machine())')
log "$ARCH: Python $PYVER, Twisted $TWISTED; trial $MODULES"
START=$(date +%s)
set +e
# shellcheck disable=SC2086
$ENV chroot "$ROOT" ${QEMU:-} /usr/bin/python3 -c "import os, sys; os.chdir('/src/cubegw'); sys.argv[0] = 'trial'; from twisted.scripts.trial import run; run()" \
	--temp-directory=/tmp/_trial_temp $MODULES
RC=$?
set -e
log "$ARCH (Python $PYVER, Twisted $TWISTED): trial exit $RC in $(( $(date +%s) - START )) s"
exit $RC
