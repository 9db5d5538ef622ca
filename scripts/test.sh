#!/usr/bin/env bash
# The whole test suite: installs its packages, then builds and runs every
# test twice, once plain and once under AddressSanitizer +
# UndefinedBehaviorSanitizer, and the thread-heavy tests (runs across
# reloads, hung runs, probes, SIGTERM) a third time under ThreadSanitizer;
# the plain build is also soaked for 10 minutes (scripts/soak.sh); then
# each fuzz target runs for 45 s (clang, libFuzzer).
# The tests start their own servers.  Each stage prints its duration.
set -euo pipefail
cd "$(dirname "$0")/.."

stage_start=$SECONDS
stage() {
	local now=$SECONDS
	[ -n "${stage_name:-}" ] &&
		echo "=== $stage_name: $((now - stage_start)) s ==="
	stage_name=$1
	stage_start=$now
	[ -n "$stage_name" ] && echo "=== $stage_name ==="
	return 0
}

stage "dependencies"
bash scripts/deps.sh
bash tests/deploy/setup.sh

jobs=$(nproc)
for variant in plain asan tsan; do
	build="build/test-$variant"
	flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
	[ "$variant" = asan ] && flags=(-DCMAKE_BUILD_TYPE=Debug -DHEALTHD_SANITIZE=ON)
	[ "$variant" = tsan ] && flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEALTHD_TSAN=ON)
	stage "$variant build"
	cmake -S . -B "$build" "${flags[@]}" >/dev/null
	cmake --build "$build" -j"$jobs"
	stage "$variant tests"
	# The container image builds from source inside podman, whatever the
	# variant: once is enough; so are the tests labelled `once` (a real
	# Prometheus, a browser), which exercise outside tools more than our
	# memory.  TSan runs only the thread-heavy tests.  (-LE takes a regex.)
	select=()
	[ "$variant" = asan ] && select=(-LE 'image|once')
	[ "$variant" = tsan ] && select=(-L threads)
	(cd "$build" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest --output-on-failure --timeout 900 "${select[@]}")
	# The soak, once, on the plain build (a sanitizer's own memory would
	# hide ours): 10 minutes against real, failing dependencies; fails if
	# RSS, fds, threads or processes grow after its warm-up, or if a
	# probe answers what it should not.  Samples (CSV) and the chart go
	# to build/test-plain/artifacts/soak/.
	if [ "$variant" = plain ]; then
		stage "soak"
		# (SIGTERM past 15 minutes: the soak stops its servers, fails.)
		HEALTHD_BUILD_DIR="$build" timeout 15m bash scripts/soak.sh 10
	fi
done
# Every fuzz target for 45 s (libFuzzer needs clang; scripts/fuzz.sh runs
# longer ones).  A find is reported, with its input under
# build/test-fuzz/fuzz/artifacts/, but does not fail this run: a random
# find must not block an unrelated change.  Fixed finds live on in
# tests/fuzz/regressions/, which every build replays as unit tests (those
# do fail).
stage "fuzz build and smoke"
bash scripts/fuzz.sh all 45 build/test-fuzz ||
	echo "=== FUZZ FOUND SOMETHING: see the FAILED lines above; fix it and keep the input in tests/fuzz/regressions/"
stage ""
