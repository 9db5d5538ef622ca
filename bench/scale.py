#!/usr/bin/env python3
"""healthd with many checks: CPU per run, runs done, memory, the
comprehensive body's latency and probe latency under load.

    python3 bench/scale.py BUILD_DIR [BUILD_DIR ...] --checks 1000 \
        --interval 1s [--plugin http|testplug] [--isolation inline|process] \
        [--seconds 10] [--rounds 2]

Each BUILD_DIR holds healthd, plugins/ and tests/plugins/.  http checks GET
a local nginx (started here, pinned like bench/ready_vs_nginx.py's);
testplug checks do nothing, so what is measured is healthd's own cost.
Builds alternate within each round; medians.  Figures:

- CPU µs per run: utime + stime of healthd and every process below it,
  over --seconds, per run counted in /metrics;
- runs done: those runs against checks x seconds / interval;
- memory: private pages of every process plus shared file pages once;
- comprehensive GET: the process's first (its first render, into memory
  never used), the median of 10 spaced past the render pause (each after
  the state changed: a render), and of 5 back to back (cached);
- /ready p99 over 200 requests, a new connection each, during the load.
"""

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from isolation import Healthd, check, cpu_ticks, footprint, runs, tree  # noqa: E402
from ready_vs_nginx import PATH, start_nginx  # noqa: E402


def get_ms(port, path):
    t = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    c.getresponse().read()
    c.close()
    return (time.monotonic() - t) * 1000


def seconds_of(text):
    return float(text[:-2]) / 1000 if text.endswith("ms") else float(text[:-1])


def measure(build, checks, a):
    h = Healthd(build, checks, a.isolation)
    try:
        time.sleep(2 * seconds_of(a.interval) + 1)
        pids = tree(h.proc.pid)
        r0, c0, t0 = runs(h.port), cpu_ticks(pids), time.monotonic()
        probes = []
        while time.monotonic() - t0 < a.seconds:
            probes.append(get_ms(h.port, "/api/v1/health/ready"))
            time.sleep(a.seconds / 200)
        pids = tree(h.proc.pid)
        r1, c1, t1 = runs(h.port), cpu_ticks(pids), time.monotonic()
        first = get_ms(h.port, "/api/v1/health/")
        fresh = []
        for _ in range(10):
            time.sleep(0.15)  # past the render pause: the state changed
            fresh.append(get_ms(h.port, "/api/v1/health/"))
        again = statistics.median(get_ms(h.port, "/api/v1/health/")
                                  for _ in range(5))
        expected = a.checks * (t1 - t0) / seconds_of(a.interval)
        return {
            "cpu_us_per_run": (c1 - c0) / os.sysconf("SC_CLK_TCK") * 1e6
            / max(r1 - r0, 1),
            "runs_done_pct": 100 * (r1 - r0) / expected,
            "memory_mib": footprint(tree(h.proc.pid)) / 1024,
            "comprehensive_first_ms": first,
            "comprehensive_ms": statistics.median(fresh),
            "comprehensive_cached_ms": again,
            "ready_p99_ms": sorted(probes)[int(len(probes) * 0.99) - 1],
        }
    finally:
        h.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--checks", type=int, default=1000)
    ap.add_argument("--interval", default="1s")
    ap.add_argument("--plugin", default="http", choices=("http", "testplug"))
    ap.add_argument("--isolation", default="inline",
                    choices=("inline", "process"))
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    timeout = f"{int(seconds_of(a.interval) * 800)}ms"
    with tempfile.TemporaryDirectory(prefix="healthd-scale-") as tmp:
        nginx, port, _ = start_nginx(tmp)
        try:
            opts = ({"url": f"http://127.0.0.1:{port}{PATH}"}
                    if a.plugin == "http" else {})
            checks = [check(f"c{i:05d}", a.plugin, a.interval, timeout, **opts)
                      for i in range(a.checks)]
            results = {}
            for _ in range(a.rounds):
                for b in a.builds:
                    results.setdefault(b, []).append(
                        measure(os.path.abspath(b), checks, a))
        finally:
            nginx.terminate()
            nginx.wait()
    print(f"{a.checks} {a.plugin} checks every {a.interval}, "
          f"isolation {a.isolation}, medians of {a.rounds}")
    for b, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(f"{b}: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))


if __name__ == "__main__":
    main()
