#!/usr/bin/env python3
"""How far past its deadline each bundled plugin returns against a hung server.

Starts PostgreSQL, Redis and an HTTP server (tests/integration/servers.py),
SIGSTOPs each one, and runs the plugin's check N times through healthd-plugin-run with
a 300 ms deadline.  The overshoot is the check's own duration_ms (measured by
healthd-plugin-run around check()) minus the deadline; the process's start and exit
are not counted.

    HEALTHD_BUILD_DIR=build HEALTHD_PLUGIN_DIR=build/plugins \\
        python3 bench/plugin_deadline.py [--runs 20] [--timeout-ms 300]
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "integration"))
import servers  # noqa: E402


def measure(plugin, options, runs, timeout_ms):
    over = []
    for _ in range(runs):
        result, stderr, _ = servers.run_plugin(plugin, options, timeout_ms)
        if result is None or result["status"] != "fail" or \
                "timed out" not in result["message"]:
            raise SystemExit(f"{plugin}: not a timeout: {result} {stderr}")
        over.append(result["duration_ms"] - timeout_ms)
    return over


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--timeout-ms", type=int, default=300)
    a = ap.parse_args()

    rows = []
    with servers.Postgres() as pg, servers.Redis(password="bench-pw") as rd, \
            servers.HTTPServer() as web:
        cases = [
            ("postgres", "hung server (SIGSTOP)", pg, {"dsn": pg.dsn}),
            ("postgres", "slow query (pg_sleep)", None,
             {"dsn": pg.dsn, "query": "SELECT pg_sleep(10)"}),
            ("redis", "hung server (SIGSTOP)", rd, {"url": rd.url}),
            ("http", "hung server (SIGSTOP)", web, {"url": web.url("/ok")}),
            ("http", "hung handler (/hang)", None, {"url": web.url("/hang")}),
        ]
        for plugin, what, server, options in cases:
            if server:
                server.pause()
            try:
                over = measure(plugin, options, a.runs, a.timeout_ms)
            finally:
                if server:
                    server.resume()
            rows.append((plugin, what, statistics.median(over), max(over),
                         min(over)))

    print(f"overshoot past a {a.timeout_ms} ms deadline, {a.runs} runs each "
          f"(duration_ms - {a.timeout_ms})")
    print(f"{'plugin':10} {'case':24} {'median':>8} {'worst':>8} {'best':>8}")
    for plugin, what, med, worst, best in rows:
        print(f"{plugin:10} {what:24} {med:7.2f}ms {worst:7.2f}ms {best:7.2f}ms")


if __name__ == "__main__":
    main()
