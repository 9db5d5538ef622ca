#!/usr/bin/env bash
# Fuzz one target, or all, for SECONDS each (libFuzzer, ASan, UBSan):
#   bash scripts/fuzz.sh TARGET|all SECONDS [BUILD_DIR]
# Targets are tests/fuzz/fuzz_TARGET.c; BUILD_DIR (default build/fuzz) is
# configured with clang and -DHEALTHD_FUZZ=ON when it is not yet.  New
# inputs go to BUILD_DIR/fuzz/corpus/TARGET, crashes to
# BUILD_DIR/fuzz/artifacts/TARGET/: fix the bug, then keep the input in
# tests/fuzz/regressions/TARGET/ (every test run replays it).
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS [BUILD_DIR]}
seconds=${2:?usage: scripts/fuzz.sh TARGET|all SECONDS [BUILD_DIR]}
build=${3:-build/fuzz}

if [ ! -f "$build/CMakeCache.txt" ]; then
	CC=clang cmake -S . -B "$build" -DHEALTHD_FUZZ=ON \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
grep -q '^HEALTHD_FUZZ:BOOL=ON' "$build/CMakeCache.txt" || {
	echo "$build is not a -DHEALTHD_FUZZ=ON build" >&2
	exit 2
}

if [ "$target" = all ]; then
	targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
else
	targets=$target
fi
# shellcheck disable=SC2086
cmake --build "$build" -j"$(nproc)" $(printf -- '--target fuzz_%s ' $targets) >/dev/null

failed=()
for t in $targets; do
	bin="$build/fuzz/fuzz_$t"
	[ -x "$bin" ] || { echo "=== fuzz_$t: not built (see cmake's output)"; continue; }
	work="$build/fuzz/corpus/$t" artifacts="$build/fuzz/artifacts/$t"
	mkdir -p "$work" "$artifacts"
	args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
		-print_final_stats=1 -artifact_prefix="$artifacts/")
	[ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
	dirs=("$work" "tests/fuzz/corpus/$t")
	[ -d "tests/fuzz/regressions/$t" ] && dirs+=("tests/fuzz/regressions/$t")
	echo "=== fuzz_$t: $seconds s"
	log="$build/fuzz/$t.log"
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		"$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1; then
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" |
			sed 's/^stat::/    /'
	else
		tail -n 60 "$log"
		echo "=== fuzz_$t FAILED: input in $artifacts/, log in $log"
		failed+=("$t")
	fi
done
[ "${#failed[@]}" -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
