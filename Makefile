# Every target sets up what it needs: a fresh clone runs `make demo` or `make test` directly.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEPS   := $(VENV)/.deps-stamp
SRC    := cubegw twisted tests openwrt

.PHONY: test lint install demo clean ipk apk openwrt-base release-tarball systools fuzz bench test-qemu test-old-twisted

$(DEPS): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q '.[test]'
	touch $@

# Reinstall our own code on every run so twistd finds the current plugins and package.
install: $(DEPS)
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .

lint: $(DEPS)
	$(PY) -m pyflakes $(SRC)

test: install lint systools
	$(PY) -m twisted.trial tests

# The real ping and traceroute for the diagnostics tests (Debian's packages, as root).
systools:
	@command -v ping >/dev/null && command -v traceroute >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iputils-ping traceroute >/dev/null; } || \
	  echo "note: ping/traceroute not installed; the tests that run them will skip"

demo: install
	$(PY) -m cubegw.demo

# The unit suite on a foreign CPU: a Debian bookworm root for ARCH under qemu-user, with
# Debian's own Twisted 22.4 (about 13 min the first time; the root is cached in qemu/roots).
ARCH ?= arm64
test-qemu:
	qemu/test-qemu.sh $(ARCH)

# The whole suite on Twisted 22.4.0, the oldest supported (what Debian 12 ships).
test-old-twisted:
	qemu/test-old-twisted.sh

# Benchmarks on 127.0.0.1 (about 6 min, bounded): writes bench/RESULTS.md
bench: install
	$(PY) bench/run.py

# A longer fuzz run of the codecs, UCI reader, store, dispatcher and state machine
# (hypothesis; figures in docs/FUZZING.md). Several minutes.
fuzz: install
	$(PY) fuzz/run.py --examples 20000 --seconds 60

# The OpenWrt package, standard library only (no venv): dist/cubegw_<version>_all.ipk
ipk:
	$(PYTHON) openwrt/build_ipk.py --out dist

# The same payload as an apk-tools 3 package (OpenWrt 25.12 and later), built with the real
# `apk mkpkg` from OPENWRT_TOOLS (default /opt/openwrt-tools; see openwrt/README.md):
# dist/cubegw-<version>-r<release>.apk.  Without apk it says where it looked and fails.
apk:
	$(PYTHON) openwrt/build_apk.py --out dist

# The release tarball a feed's copy of openwrt/Makefile builds from (PKG_SOURCE): the
# committed tree at HEAD, reproducible; prints the sha256 for its PKG_HASH.
VERSION = $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' cubegw/__init__.py)
release-tarball:
	mkdir -p dist
	git archive --format=tar --prefix=cubegw-$(VERSION)/ HEAD | gzip -n9 > dist/cubegw-$(VERSION).tar.gz
	sha256sum dist/cubegw-$(VERSION).tar.gz

# OpenWrt's own rc.common, functions.sh, service.sh and procd.sh (and libubox's jshn.sh)
# into $(OPENWRT_TOOLS)/openwrt-base, for the init script tests (never committed).
openwrt-base:
	openwrt/tools/openwrt-base.sh

clean:
	rm -rf $(VENV) build dist *.egg-info _trial_temp* twisted/plugins/dropin.cache
