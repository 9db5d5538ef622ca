#!/usr/bin/env python3
"""Where healthd's memory goes, for the example-sized config.

    python3 bench/footprint.py BUILD_DIR [BUILD_DIR ...] [--rounds 3]

3 plugins, 10 checks (4 postgres, 3 redis, 3 http against the test
harness's real servers), every second, after 3 s; `inline` and `process`
isolation.  The total is what bench/isolation.py counts: private pages of
the daemon and of each plugin host, plus each shared file mapping once.
The breakdown sorts it into the heap and other anonymous memory (thread
stacks, malloc arenas), each shared library, and healthd's own files.
Builds alternate; medians.
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from isolation import Healthd, breakdown, check, footprint, tree  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    builds = [os.path.abspath(b) for b in a.builds]
    os.environ.setdefault("HEALTHD_BUILD_DIR", builds[0])
    os.environ.setdefault("HEALTHD_PLUGIN_DIR", builds[0] + "/plugins")
    import servers  # reads the environment above

    with servers.Postgres() as pg, servers.Redis() as rd, \
            servers.HTTPServer() as web:
        example = ([check(f"db{i}", "postgres", "1s", "500ms", dsn=pg.dsn)
                    for i in range(4)] +
                   [check(f"cache{i}", "redis", "1s", "500ms", url=rd.url)
                    for i in range(3)] +
                   [check(f"api{i}", "http", "1s", "500ms",
                          url=web.url("/ok")) for i in range(3)])
        totals, parts = {}, {}
        for _ in range(a.rounds):
            for b in builds:
                for mode in ("inline", "process"):
                    h = Healthd(b, example, mode)
                    try:
                        time.sleep(3)
                        pids = tree(h.proc.pid)
                        totals.setdefault((b, mode), []).append(
                            footprint(pids) / 1024)
                        parts[(b, mode)] = breakdown(pids)
                    finally:
                        h.close()
    for (b, mode), mib in totals.items():
        print(f"{b} {mode}: {statistics.median(mib):.1f} MiB "
              f"(median of {a.rounds})")
        for name, kb in parts[(b, mode)].most_common(a.top):
            print(f"    {kb / 1024:5.2f} MiB  {name}")


if __name__ == "__main__":
    main()
