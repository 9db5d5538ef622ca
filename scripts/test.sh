#!/usr/bin/env bash
# The whole test suite: installs its packages, then builds and runs every
# test twice, once plain and once under AddressSanitizer +
# UndefinedBehaviorSanitizer.  The tests start their own servers.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash tests/deploy/setup.sh

jobs=$(nproc)
for variant in plain asan; do
	build="build/test-$variant"
	flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
	[ "$variant" = asan ] && flags=(-DCMAKE_BUILD_TYPE=Debug -DHEALTHD_SANITIZE=ON)
	echo "=== $variant build ==="
	cmake -S . -B "$build" "${flags[@]}" >/dev/null
	cmake --build "$build" -j"$jobs"
	echo "=== $variant tests ==="
	# The container image builds from source inside podman, whatever the
	# variant: once is enough.
	exclude=()
	[ "$variant" = asan ] && exclude=(-LE image)
	(cd "$build" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure --timeout 900 "${exclude[@]}")
done
