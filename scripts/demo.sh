#!/usr/bin/env bash
# The demo: builds healthd, starts a throwaway PostgreSQL, Redis and HTTP
# server on 127.0.0.1, runs healthd on examples/healthd.yaml against them and
# prints the URLs to try.  Ctrl-C stops everything (DEMO_SECONDS=N stops
# after N seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DHEALTHD_TESTS=ON >/dev/null
cmake --build build/demo -j"$(nproc)"
exec python3 scripts/demo.py build/demo
