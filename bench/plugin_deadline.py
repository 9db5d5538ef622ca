#!/usr/bin/env python3
"""How far past its deadline each bundled plugin returns against a hung server.

Starts PostgreSQL, Redis, MariaDB and an HTTP server (tests/integration/servers.py),
SIGSTOPs each one; adds a DNS server that never answers (a UDP socket), a
TCP peer that accepts and never answers, a listener whose accept queue is
full, and a script that sleeps forever; and runs each plugin's check N
times through healthd-plugin-run with a 300 ms deadline.  The overshoot is the check's own duration_ms (measured by
healthd-plugin-run around check()) minus the deadline; the process's start and exit
are not counted.

    HEALTHD_BUILD_DIR=build HEALTHD_PLUGIN_DIR=build/plugins \\
        python3 bench/plugin_deadline.py [--runs 20] [--timeout-ms 300]
"""

import argparse
import os
import socket
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


def measure_resolver_hangs(runs, timeout_ms, plugin="postgres",
                           options=None):
    """postgres (or `plugin` with `options`) with a host name and a
    nameserver that never answers (a private /etc/resolv.conf: needs root
    and unshare); None otherwise."""
    import tempfile
    if not servers.namespaces_usable():
        return None
    with servers.dns_relay() as relay, \
            tempfile.NamedTemporaryFile("w", prefix="bench-resolv-") as conf:
        conf.write(relay.resolv_conf)
        conf.flush()
        over = []
        for _ in range(runs):
            result, stderr, _ = servers.run_plugin_with_files(
                plugin, {"/etc/resolv.conf": conf.name},
                options or
                {"dsn": "host=db.example.test user=u password=bench-pw",
                 "mode": "connect"}, timeout_ms)
            if result is None or "timed out" not in result["message"]:
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
            servers.HTTPServer() as web, servers.MariaDB() as my, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # a DNS server that never answers
        # tcp: a peer the kernel accepts for but that never answers, and a
        # listener whose accept queue is full (SYNs dropped); both live
        # until the script exits.
        mute = socket.create_server(("127.0.0.1", 0), backlog=128)
        full = socket.create_server(("127.0.0.1", 0), backlog=0)
        filler = socket.create_connection(full.getsockname())  # noqa: F841
        cases = [
            ("postgres", "hung server (SIGSTOP)", pg, {"dsn": pg.dsn}),
            ("postgres", "slow query (pg_sleep)", None,
             {"dsn": pg.dsn, "query": "SELECT pg_sleep(10)"}),
            ("postgres", "TLS handshake stalls", None,
             {"dsn": "host=127.0.0.1 port=%d user=u password=bench-pw "
              "sslmode=require" % mute.getsockname()[1], "mode": "connect"}),
            ("redis", "hung server (SIGSTOP)", rd, {"url": rd.url}),
            ("redis", "TLS handshake stalls", None,
             {"url": "rediss://:bench-pw@127.0.0.1:%d"
              % mute.getsockname()[1]}),
            ("http", "hung server (SIGSTOP)", web, {"url": web.url("/ok")}),
            ("http", "hung handler (/hang)", None, {"url": web.url("/hang")}),
            ("dns", "server never answers", None,
             {"name": "app.test",
              "server": "127.0.0.1:%d" % silent.getsockname()[1]}),
            ("tcp", "peer never answers", None,
             {"host": "127.0.0.1", "port": mute.getsockname()[1],
              "expect": "+OK"}),
            ("tcp", "accept queue full", None,
             {"host": "127.0.0.1", "port": full.getsockname()[1],
              "expect": "+OK"}),
            # exec: a script (and a child it started) that sleeps forever.
            ("exec", "script sleeps forever", None,
             {"command": "sh -c 'sleep infinity & sleep infinity'"}),
            # grpc: the peer that never answers, over h2c and TLS.
            ("grpc", "server never answers", None,
             {"address": "127.0.0.1:%d" % mute.getsockname()[1]}),
            ("grpc", "TLS handshake stalls", None,
             {"address": "127.0.0.1:%d" % mute.getsockname()[1],
              "tls": "true"}),
            # mysql: TLS off, so the numbers are the deadline's and not
            # libmariadb's loading of the system CA bundle (see README).
            ("mysql", "hung server (SIGSTOP)", my,
             {"dsn": my.url, "ssl_mode": "disabled"}),
            ("mysql", "slow query (SLEEP)", None,
             {"dsn": my.url, "ssl_mode": "disabled",
              "query": "SELECT SLEEP(10)"}),
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
        over = measure_resolver_hangs(a.runs, a.timeout_ms)
        if over:
            rows.append(("postgres", "resolver never answers",
                          statistics.median(over), max(over), min(over)))
        over = measure_resolver_hangs(
            a.runs, a.timeout_ms, "redis",
            {"url": "redis://:bench-pw@db.example.test:6379"})
        if over:
            rows.append(("redis", "resolver never answers",
                          statistics.median(over), max(over), min(over)))

    print(f"overshoot past a {a.timeout_ms} ms deadline, {a.runs} runs each "
          f"(duration_ms - {a.timeout_ms})")
    print(f"{'plugin':10} {'case':24} {'median':>8} {'worst':>8} {'best':>8}")
    for plugin, what, med, worst, best in rows:
        print(f"{plugin:10} {what:24} {med:7.2f}ms {worst:7.2f}ms {best:7.2f}ms")


if __name__ == "__main__":
    main()
