#!/bin/sh
# qemu/test-old-twisted.sh [TRIAL ARGS...]: the trial suite on the oldest Twisted cubegw
# supports, 22.4.0 (Debian 12 "bookworm"'s python3-twisted; OpenWrt's packages feed has
# carried 22.x too), in a venv of pinned versions from PyPI.
#
#   qemu/test-old-twisted.sh                       # the whole suite (tests)
#   qemu/test-old-twisted.sh tests.test_store      # some modules
#   PYTHON=python3.9 VENV=/tmp/venv-tw224 qemu/test-old-twisted.sh
#
# The venv (default .venv-tw224 at the top of the tree, git-ignored) is made once and
# reused while its pins are unchanged.  The project is not installed into it: the tests
# run from the tree with PYTHONPATH, in a temporary directory (so _trial_temp does not
# collide with a `make test` running in the tree).
#
# The pins are those of Twisted 22.4's time, close to bookworm's packages.  One of them
# matters: Twisted 22.4's `python -m twisted.trial` goes through pkg_resources, and the
# venv's setuptools (65, Python 3.11's bundled one) does not find zope.interface >= 7
# (its metadata is zope_interface-*.dist-info): "DistributionNotFound: The
# 'zope.interface>=4.4.2' distribution was not found".  So zope.interface stays at 6.0
# (the first with Python 3.11 wheels).  twistd and the cubegw code do not care.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$SRC/.venv-tw224}

PINS="Twisted==22.4.0 zope.interface==6.0 attrs==22.2.0 Automat==22.10.0 constantly==15.1.0
hyperlink==21.0.0 incremental==22.10.0 idna==3.3 typing_extensions==4.4.0
psutil==5.9.4 PyYAML==6.0.1 hypothesis==6.67.1 sortedcontainers==2.4.0 pyflakes==3.0.1"
STAMP=$VENV/.pins

if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$PINS" ]; then
	rm -rf "$VENV"
	"$PYTHON" -m venv "$VENV"
	# shellcheck disable=SC2086
	"$VENV/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: $PINS
	printf '%s' "$PINS" >"$STAMP"
fi

[ $# -gt 0 ] || set -- tests
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cubegw-tw224.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
VERSIONS=$("$VENV/bin/python" -c 'import sys, twisted; print("Python %s, Twisted %s" % (sys.version.split()[0], twisted.__version__))')
echo "test-old-twisted: $VERSIONS: trial $*" >&2
START=$(date +%s)
set +e
(cd "$WORK" && PYTHONPATH=$SRC "$VENV/bin/python" -m twisted.trial "$@")
RC=$?
set -e
echo "test-old-twisted: $VERSIONS: trial exit $RC in $(( $(date +%s) - START )) s" >&2
exit $RC
