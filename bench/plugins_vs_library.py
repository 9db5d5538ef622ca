#!/usr/bin/env python3
"""Each bundled plugin's CPU per run against the plain library doing the
same round trip in a loop (bench/library_loop.c), side by side.

    python3 bench/plugins_vs_library.py BUILD_DIR [--seconds 15] [--rounds 3]

Servers are real and local: PostgreSQL and Redis from the test harness
(tests/integration/servers.py), nginx for http (as bench/scale.py).  For
each plugin healthd runs 20 checks every 200 ms, inline, and the figure is
its CPU (utime + stime) over --seconds per run counted in /metrics: the
plugin plus everything healthd does around a run (scheduling, recording,
snapshots).  The reference makes the same round trips back to back in one
thread, as the plugins do with their defaults: libcurl GET on a new
connection; libpq `SELECT 1` and `SELECT pg_is_in_recovery()` on one kept
connection (mode: persistent); hiredis PING and INFO on a new connection.  Rounds alternate; medians.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from isolation import check, cpu_per_run  # noqa: E402
from ready_vs_nginx import PATH, start_nginx  # noqa: E402


def build_reference(tmp):
    exe = os.path.join(tmp, "library_loop")
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libcurl", "libpq", "hiredis"],
        capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["cc", "-O2", "-o", exe,
                    os.path.join(HERE, "library_loop.c")] + flags, check=True)
    return exe


def reference(exe, args, n, gap_us=0):
    out = subprocess.run([exe, "-g", str(gap_us)] + args + [str(n)],
                         capture_output=True, text=True, check=True).stdout
    return float(out.split()[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ops", type=int, default=2000,
                    help="round trips per reference run")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ.setdefault("HEALTHD_BUILD_DIR", build)
    os.environ.setdefault("HEALTHD_PLUGIN_DIR", build + "/plugins")
    import servers  # reads the environment above

    with tempfile.TemporaryDirectory(prefix="healthd-vs-lib-") as tmp, \
            servers.Postgres() as pg, servers.Redis() as rd:
        exe = build_reference(tmp)
        nginx, port, _ = start_nginx(tmp)
        url = f"http://127.0.0.1:{port}{PATH}"
        cases = {
            "http": (dict(url=url), ["http", url]),
            "postgres": (dict(dsn=pg.dsn), ["postgres", pg.dsn]),
            "redis": (dict(url=rd.url), ["redis", "127.0.0.1", str(rd.port)]),
        }
        results = {}
        try:
            for _ in range(a.rounds):
                for plugin, (opts, args) in cases.items():
                    checks = [check(f"{plugin}{i}", plugin, "200ms",
                                    "150ms", **opts) for i in range(20)]
                    results.setdefault((plugin, "healthd"), []).append(
                        cpu_per_run(build, checks, "inline", a.seconds))
                    results.setdefault((plugin, "library"), []).append(
                        reference(exe, args, a.ops))
                    results.setdefault((plugin, "paced"), []).append(
                        reference(exe, args, a.ops // 4, 10000))
        finally:
            nginx.terminate()
            nginx.wait()
    print(f"CPU µs per round trip, medians of {a.rounds}")
    for plugin in cases:
        h, lib, paced = (statistics.median(results[(plugin, k)])
                         for k in ("healthd", "library", "paced"))
        print(f"{plugin:9s} healthd {h:7.1f}  library back to back "
              f"{lib:7.1f} ({h / lib:.2f}x)  paced {paced:7.1f} "
              f"({h / paced:.2f}x)")


if __name__ == "__main__":
    main()
