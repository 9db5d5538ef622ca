#!/usr/bin/env python3
"""How a reload's cost grows with the number of checks.

Starts each given healthd build with N testplug checks (interval 1h, so the
checks themselves cost nothing after the first round), edits one check and
sends SIGHUP, and reads the reload's duration from the daemon's own log:
the "reloading" line to the "config generation" line (ms timestamps).  The
builds run side by side, alternating, so a noisy machine hits both.

    python3 bench/reload_scale.py BUILD_DIR [BUILD_DIR ...] \
        [--checks 1000,4000,16000] [--rounds 3]

Each BUILD_DIR holds healthd and tests/plugins/testplug.so.  Prints the
median reload time per build and N, and each build's ratio to the first.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from datetime import datetime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(build, port, n, edit):
    lines = [f'listen: "127.0.0.1:{port}"', "log: {level: info, format: json}",
             f'plugin_dirs: ["{build}/tests/plugins"]', "workers: 4", "checks:"]
    for i in range(n):
        msg = f"m{edit}" if i == 0 else "m"
        lines.append(f"  - {{name: c{i:05d}, plugin: testplug, critical: false, "
                     f"interval: 1h, timeout: 1s, options: {{message: {msg}}}}}")
    return "\n".join(lines) + "\n"


def ts(line):
    return datetime.strptime(json.loads(line)["ts"],
                             "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def reload_ms(build, n):
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="healthd-bench-") as d:
        path = os.path.join(d, "healthd.yaml")
        log = os.path.join(d, "log")
        with open(path, "w") as f:
            f.write(config(build, port, n, 0))
        with open(log, "wb") as out:
            p = subprocess.Popen([os.path.join(build, "healthd"), "-c", path],
                                 stderr=out)
        try:
            url = f"http://127.0.0.1:{port}/api/v1/health/startup"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if urllib.request.urlopen(url, timeout=5).status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            with open(path, "w") as f:
                f.write(config(build, port, n, 1))
            p.send_signal(signal.SIGHUP)
            while time.monotonic() < deadline:
                with open(log) as f:
                    text = f.read()
                if '"config generation 2' in text:
                    break
                time.sleep(0.05)
            start = end = None
            for line in text.splitlines():
                if '"reloading ' in line:
                    start = ts(line)
                elif '"config generation 2' in line:
                    end = ts(line)
            return (end - start) * 1000
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("builds", nargs="+")
    ap.add_argument("--checks", default="1000,4000,16000")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    for n in [int(x) for x in a.checks.split(",")]:
        times = {b: [] for b in a.builds}
        for _ in range(a.rounds):
            for b in a.builds:
                times[b].append(reload_ms(b, n))
        ref = statistics.median(times[a.builds[0]])
        for b in a.builds:
            m = statistics.median(times[b])
            print(f"{n:6d} checks  {b:40s} reload {m:8.1f} ms  "
                  f"({m / ref:.2f}x the first)", flush=True)


if __name__ == "__main__":
    main()
