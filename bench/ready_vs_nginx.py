#!/usr/bin/env python3
"""/ready throughput and CPU per request: healthd side by side with nginx.

Both servers answer the same body on the same path, pinned to CPU 0
(taskset -c 0); wrk runs on CPU 1.  Rounds alternate between the servers so
drift on a shared machine hits both alike.  Two modes: keep-alive
(wrk -t1 -c64) and a new connection per request, as the kubelet probes
(-H 'Connection: close').  For each run: requests per second, and the
server's CPU time per request (utime+stime from /proc/PID/stat over the run,
divided by the requests wrk completed).

usage: bench/ready_vs_nginx.py HEALTHD_BIN [--rounds N] [--seconds S]
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BODY = '{"status":"ready"}'
PATH = "/api/v1/health/ready"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                         text=True).stdout.split()
    return [int(p) for p in out]


def start_healthd(binary, tmp):
    port = free_port()
    cfg = os.path.join(tmp, "healthd.yaml")
    with open(cfg, "w") as f:
        f.write(f'listen: "127.0.0.1:{port}"\nlog: {{level: warn}}\n'
                f"server: {{threads: 1, max_connections: 1024}}\n"
                f"shutdown: {{drain: 0s}}\n"
                f"checks: []\n")
    p = subprocess.Popen(["taskset", "-c", "0", binary, "-c", cfg],
                         stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port, [p.pid]


def start_nginx(tmp):
    port = free_port()
    cfg = os.path.join(tmp, "nginx.conf")
    with open(cfg, "w") as f:
        f.write(f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.err warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp};
    proxy_temp_path {tmp};
    fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp};
    scgi_temp_path {tmp};
    server {{
        listen 127.0.0.1:{port};
        location = {PATH} {{
            default_type application/json;
            add_header Cache-Control no-store;
            return 200 '{BODY}';
        }}
    }}
}}
""")
    p = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", cfg,
                          "-p", tmp], stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port, [p.pid] + children(p.pid)


def wrk(port, seconds, close):
    cmd = ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s"]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{port}{PATH}")
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError("non-2xx answers:\n" + out)
    return reqs


def measure(pids, port, seconds, close):
    c0 = cpu_seconds(pids)
    t0 = time.monotonic()
    reqs = wrk(port, seconds, close)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(pids) - c0
    return reqs / elapsed, cpu / reqs * 1e6  # rps, CPU µs per request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("healthd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        servers = {"healthd": start_healthd(args.healthd, tmp),
                   "nginx": start_nginx(tmp)}
        try:
            results = {}
            for mode, close in (("keep-alive", False), ("new connection", True)):
                for _ in range(args.rounds):
                    for name, (_, port, pids) in servers.items():
                        wrk(port, 1, close)  # warm up
                        results.setdefault((mode, name), []).append(
                            measure(pids, port, args.seconds, close))
        finally:
            for p, _, _ in servers.values():
                p.terminate()
                p.wait(10)

    print(f"{'mode':16} {'server':8} {'req/s':>10} {'CPU µs/req':>11}")
    for (mode, name), runs in results.items():
        rps = statistics.median(r for r, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{mode:16} {name:8} {rps:10.0f} {cpu:11.2f}")
    print()
    for mode in ("keep-alive", "new connection"):
        h = results[(mode, "healthd")]
        n = results[(mode, "nginx")]
        rps = statistics.median(r for r, _ in h) / statistics.median(r for r, _ in n)
        cpu = statistics.median(c for _, c in h) / statistics.median(c for _, c in n)
        print(f"{mode:16} healthd/nginx: {rps:.2f}x requests/s, "
              f"{cpu:.2f}x CPU per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
