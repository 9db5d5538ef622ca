#!/usr/bin/env bash
# The soak test: healthd for MINUTES (default 10) against real PostgreSQL,
# Redis, HTTP and DNS servers that are stopped, hung and restarted, with
# ~50 checks over every bundled plugin, a plugin that crashes and hangs,
# kubelet-style probes, scrapes and ConfigMap-style config rewrites; passes
# only if /live never failed, /ready failed only while a critical
# dependency was down, and RSS, fds, threads and processes stayed flat.
# See tests/soak/soak.py.
#
#   bash scripts/soak.sh [MINUTES] [--out DIR] [--seed N] [--no-grpc] [--tcache]
#
# Runs against an already built tree: $HEALTHD_BUILD_DIR, default
# build/test-plain (the plain variant of scripts/test.sh) if it has been
# built, else build.  Artifacts (samples.csv, soak.png, summary.json,
# healthd.log) go to $HEALTHD_BUILD_DIR/artifacts/soak unless --out says
# otherwise.  `bash scripts/soak.sh 1` is a quick self-test: everything
# runs and is judged, but growth slopes of runs under 5 minutes are only
# printed (a minute cannot tell a leak from warming up).
# Needs the packages of scripts/deps.sh (gnuplot-nox for the plot).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10
if [ $# -gt 0 ] && [[ $1 != -* ]]; then
	minutes=$1
	shift
fi

if [ -z "${HEALTHD_BUILD_DIR:-}" ]; then
	if [ -x build/test-plain/healthd ]; then
		HEALTHD_BUILD_DIR=build/test-plain
	else
		HEALTHD_BUILD_DIR=build
	fi
fi
HEALTHD_BUILD_DIR=$(cd "$HEALTHD_BUILD_DIR" && pwd)
if [ ! -x "$HEALTHD_BUILD_DIR/healthd" ]; then
	echo "soak: no healthd in $HEALTHD_BUILD_DIR: build it first" >&2
	exit 2
fi
export HEALTHD_BUILD_DIR
export HEALTHD_BIN="$HEALTHD_BUILD_DIR/healthd"
export HEALTHD_PLUGIN_DIR="$HEALTHD_BUILD_DIR/plugins"
export HEALTHD_TEST_PLUGIN_DIR="$HEALTHD_BUILD_DIR/tests/plugins"
export HEALTHD_SOURCE_DIR="$PWD"

exec python3 tests/soak/soak.py --minutes "$minutes" "$@"
