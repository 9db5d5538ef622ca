#!/usr/bin/env python3
"""What plugin hosts cost: CPU per run and memory, `isolation: process`
against `isolation: inline`, measured side by side in one run.

    python3 bench/isolation.py BUILD_DIR [--rounds 3] [--seconds 10]

BUILD_DIR holds healthd, plugins/ and tests/plugins/.  Real PostgreSQL,
Redis and HTTP servers are started on loopback (tests/integration/
servers.py), and stopped at the end.

- CPU per run: 50 testplug checks (a no-op: the cost is healthd's own) and
  20 http checks against the local HTTP server, every 100 ms, for
  --seconds; CPU is utime + stime of the daemon and every process below
  it, from /proc; runs from /metrics (healthd_check_runs_total).
- Memory: the example-sized config (3 plugins, 10 checks: 4 postgres,
  3 redis, 3 http) after 3 s: the private memory (Private_Clean +
  Private_Dirty) of the daemon and of every host, plus each shared file
  mapping counted once (its largest Rss over the processes) — what a
  container is charged for the pages it maps.

Modes alternate within each round; medians over rounds; ratios process /
inline.
"""

import argparse
import collections
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def tree(pid):
    """pid and every process below it."""
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass
    return total


def breakdown(pids):
    """KiB by mapping: private pages of every process plus shared file
    pages once (their largest resident size over the processes), keyed by
    the file's name, "heap", or "anonymous (stacks, arenas)"."""
    total, shared = collections.Counter(), {}
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        name = None
        for line in lines:
            parts = line.split()
            # "start-end perms offset dev inode [path]" opens a mapping.
            if len(parts) >= 5 and "-" in parts[0] and ":" in parts[3]:
                path = parts[5] if len(parts) > 5 else ""
                name = ("heap" if path == "[heap]" else
                        os.path.basename(path) if path.startswith("/")
                        else "anonymous (stacks, arenas)")
            elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                total[name] += int(parts[1])
            elif parts[0] in ("Shared_Clean:", "Shared_Dirty:"):
                shared[(p, name)] = shared.get((p, name), 0) + int(parts[1])
    per_file = {}
    for (_, name), kb in shared.items():
        per_file[name] = max(per_file.get(name, 0), kb)
    total.update(per_file)
    return total


def footprint(pids):
    """Private pages of every process plus shared file pages once (KiB)."""
    return sum(breakdown(pids).values())


def runs(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                  timeout=5).read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines()
               if l.startswith("healthd_check_runs_total{"))


class Healthd:
    def __init__(self, build, checks, isolation):
        self.dir = tempfile.TemporaryDirectory(prefix="healthd-bench-")
        from harness import free_port
        self.port = free_port()
        path = os.path.join(self.dir.name, "healthd.yaml")
        with open(path, "w") as f:
            f.write(f'listen: "127.0.0.1:{self.port}"\n'
                    "log: {level: warn, format: json}\n"
                    f'plugin_dirs: ["{build}/plugins", "{build}/tests/plugins"]\n'
                    "workers: 4\n"
                    f"defaults: {{isolation: {isolation}}}\n"
                    "checks:\n" + "".join(checks))
        self.log = open(os.path.join(self.dir.name, "log"), "wb")
        self.proc = subprocess.Popen([os.path.join(build, "healthd"), "-c",
                                      path], stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/api/v1/health/startup",
                    timeout=2)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("healthd did not start")

    def close(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()
        self.dir.cleanup()


def check(name, plugin, interval, timeout, **options):
    opts = ", ".join(f'{k}: "{v}"' for k, v in options.items())
    return (f"  - {{name: {name}, plugin: {plugin}, critical: false, "
            f"interval: {interval}, timeout: {timeout}, options: {{{opts}}}}}\n")


def cpu_per_run(build, checks, isolation, seconds):
    h = Healthd(build, checks, isolation)
    try:
        time.sleep(1)
        pids = tree(h.proc.pid)
        r0, c0 = runs(h.port), cpu_ticks(pids)
        time.sleep(seconds)
        pids = tree(h.proc.pid)
        r1, c1 = runs(h.port), cpu_ticks(pids)
        hz = os.sysconf("SC_CLK_TCK")
        return (c1 - c0) / hz * 1e6 / max(r1 - r0, 1)  # µs per run
    finally:
        h.close()


def memory(build, checks, isolation):
    h = Healthd(build, checks, isolation)
    try:
        time.sleep(3)
        pids = tree(h.proc.pid)
        return footprint(pids) / 1024, len(pids)  # MiB, processes
    finally:
        h.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    os.environ.setdefault("HEALTHD_BUILD_DIR", build)
    os.environ.setdefault("HEALTHD_PLUGIN_DIR", build + "/plugins")
    import servers  # reads the environment above

    with servers.Postgres() as pg, servers.Redis() as rd, \
            servers.HTTPServer() as web:
        noop = [check(f"n{i}", "testplug", "100ms", "80ms") for i in range(50)]
        http = [check(f"h{i}", "http", "100ms", "80ms", url=web.url("/ok"))
                for i in range(20)]
        example = ([check(f"db{i}", "postgres", "1s", "500ms", dsn=pg.dsn)
                    for i in range(4)] +
                   [check(f"cache{i}", "redis", "1s", "500ms", url=rd.url)
                    for i in range(3)] +
                   [check(f"api{i}", "http", "1s", "500ms", url=web.url("/ok"))
                    for i in range(3)])
        results = {}
        for _ in range(a.rounds):
            for mode in ("inline", "process"):
                for what, checks in (("noop", noop), ("http", http)):
                    results.setdefault((what, mode), []).append(
                        cpu_per_run(build, checks, mode, a.seconds))
                mib, n = memory(build, example, mode)
                results.setdefault(("memory", mode), []).append(mib)
                results[("processes", mode)] = [n]
        med = {k: statistics.median(v) for k, v in results.items()}
        for what, unit in (("noop", "µs CPU per run"), ("http", "µs CPU per run"),
                           ("memory", "MiB (example config, 10 checks)")):
            i, p = med[(what, "inline")], med[(what, "process")]
            print(f"{what:7s} inline {i:8.1f}  process {p:8.1f}  {unit}  "
                  f"process/inline {p / i:.2f}x")
        print(f"processes: inline {med[('processes', 'inline')]:.0f}, "
              f"process {med[('processes', 'process')]:.0f}")


if __name__ == "__main__":
    main()
