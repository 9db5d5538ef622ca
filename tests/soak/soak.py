#!/usr/bin/env python3
"""A soak test: healthd under a long, realistic, hostile load, proving that
nothing grows.

Real servers (PostgreSQL, Redis, an HTTP server, dnsmasq; a gRPC server
when python3-grpcio is there) on 127.0.0.1, and healthd with ~50 checks
spread over every bundled plugin the build has (intervals 1-2 s, plugin
hosts) plus two informational checks of tests/plugins/misbehave.so that
crash and hang.  Meanwhile, until the time is up:

  - three "kubelets" probe /startup, /live and /ready, a new connection
    each, once a second each; a "Prometheus" scrapes the base path (JSON,
    sometimes the HTML page), a check's history and /metrics every 2-5 s;
  - the config, a ConfigMap volume (tests/integration/test_reload.py's
    ConfigMap: new timestamped dir, ..data symlink swapped), is rewritten
    every 3-6 s: informational checks added, changed, removed; every 10th
    write is an invalid config (refused, the old one keeps running), every
    7th turn a SIGHUP instead of a write;
  - each 60 s cycle: Redis SIGSTOPped 10 s; PostgreSQL stopped and started
    again (even cycles) or SIGSTOPped (odd cycles) 8 s; the HTTP server
    SIGKILLed and restarted 6 s later; dnsmasq SIGSTOPped 5 s;
  - once a second: VmRSS, open fds and threads of the daemon and of its
    plugin hosts (its children), the processes below it, the latest
    probe codes.

Verdict (exit 0 pass, 1 fail, 2 could not run):
  - /live: every answer 200;
  - /startup: every answer 200 once it first was;
  - /ready: 200, or 503 only inside a window where a CRITICAL dependency
    was really down: [down, up + failure_threshold x interval + timeout +
    probe period + margin] (see allowed_windows());
  - after a warm-up (the first 20 % of the run; healthd runs without
    glibc's per-thread malloc caches, see NO_TCACHE): least-squares slopes of
    the daemon's RSS and of the bundled plugin hosts' RSS under bounds
    (printed, with what they catch), and the maxima of fds, threads and
    processes no higher than the warm-up's maxima plus a small constant;
    runs shorter than 5 minutes print the slopes as advisory only (too
    short to tell a leak from warming up);
  - the run did what it claims: reloads applied, refused reloads refused,
    plugin host restarts for crashes and timeouts seen, /ready was 503 in
    at least one outage window; healthd exits 0 on SIGTERM.

Artifacts in --out: samples.csv (time, rss_daemon, rss_hosts, fds,
threads, children, ready, live, then more columns), probes.csv (every
probe), events.csv (the schedule as it happened), soak.png (gnuplot),
summary.json, healthd.log.

    HEALTHD_BUILD_DIR=build/test-plain python3 tests/soak/soak.py --minutes 10
    (scripts/soak.sh MINUTES sets the environment.)
"""

import argparse
import http.client
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
INTEGRATION = os.path.join(SOURCE_DIR, "tests", "integration")

# harness and servers read where things are from the environment when
# imported: set it from HEALTHD_BUILD_DIR first.
BUILD_DIR = os.path.abspath(os.environ.get("HEALTHD_BUILD_DIR") or
                            os.path.join(SOURCE_DIR, "build"))
os.environ["HEALTHD_BUILD_DIR"] = BUILD_DIR
os.environ.setdefault("HEALTHD_BIN", os.path.join(BUILD_DIR, "healthd"))
os.environ.setdefault("HEALTHD_PLUGIN_DIR", os.path.join(BUILD_DIR, "plugins"))
os.environ.setdefault("HEALTHD_TEST_PLUGIN_DIR",
                      os.path.join(BUILD_DIR, "tests", "plugins"))
os.environ.setdefault("HEALTHD_SOURCE_DIR", SOURCE_DIR)
sys.path.insert(0, INTEGRATION)

import harness  # noqa: E402
import servers  # noqa: E402
from harness import BASE, check, config_text  # noqa: E402
from servers import (CLEAN_ENV, HTTPServer, Postgres, Redis,  # noqa: E402
                     Server, free_port, start_dnsmasq)
from test_reload import ConfigMap  # noqa: E402

MIB = 1024 * 1024
CYCLE = 60.0          # seconds: one round of the dependency schedule
PROBE_PERIOD = 1.0    # each kubelet probe, as periodSeconds: 1
PROBE_TIMEOUT = 5.0   # a probe without an answer by then counts as failed

# The critical checks whose dependency the schedule takes down.  Their
# thresholds are explicit: the allowed /ready 503 windows follow from them.
CRIT_INTERVAL = 1.0
CRIT_TIMEOUT = 0.5
CRIT_FAILURE_THRESHOLD = 2
CRIT_SUCCESS_THRESHOLD = 1
# On top of threshold x interval + timeout + probe period: the ±5 % jitter,
# a PostgreSQL reconnect, a plugin host replaced after a hung run (1 s past
# the deadline) and a loaded 2-core machine.  The run prints how much of it
# each outage used (max recovery lag).
WINDOW_MARGIN = 4.0

# Growth bounds (checked after the warm-up, on runs of 5 minutes or more).
# The daemon does ~30 check runs/s, ~3.5 requests/s and a reload every ~4.5
# s: 1 MiB per 10 min (1.7 KiB/s) catches a leak of ~60 B per run, ~500 B
# per request or ~8 KiB per reload.  The hosts' sum gets twice that: seven
# processes, each with libc arenas, libpq/hiredis/libcurl state.
RSS_DAEMON_BOUND = 1.0 * MIB / 600      # bytes per second
RSS_HOSTS_BOUND = 2.0 * MIB / 600
# glibc's per-thread caches (tcache: up to 7 freed chunks of each of 64
# sizes, kept by the thread that freed them) fill for tens of minutes
# here: the daemon's 14 threads free messages of every length, in turn.
# Bounded (about 240 KiB a thread at most), but over ten minutes no slope
# tells it from a leak: with it, the daemon's RSS rose 0.7-0.8 MiB per 10
# min from 2 to 10 min (0.2 from 10 to 20); without it 0.2.  So healthd runs
# without them (GLIBC_TUNABLES, inherited by its plugin hosts), which
# makes the RSS judgement more sensitive to a leak, not less; --tcache
# keeps them, for what a deployment sees.
NO_TCACHE = "glibc.malloc.tcache_count=0"
# Maxima after the warm-up may pass the warm-up's by at most: fds (a few
# probe connections in flight, a host being replaced: socket + 2 pipes),
# threads (libmicrohttpd per-connection work), processes (a host replaced
# while its successor starts, exec children).  The hosts' thread pools
# (core/plughost.c) never shrink: each grows to the most runs it ever had
# at once, and a hung run keeps its thread until the host is replaced, so
# an outage that overlaps more runs than any before adds a thread or two.
# Both maxima are of levels held HELD seconds (held_max()): one second's
# coincidence (fds 56 in one run, for a second, after a warm-up's 50) is
# not growth.
HELD = 5
FD_SLACK = 8
THREAD_SLACK = 4
PROC_SLACK = 4
HOST_FD_SLACK = 12
# Summed over about ten hosts, those new peaks add up: a CI run went from
# 43 after the warm-up to 51 held (bound then 12).  A pool is bounded by
# its checks (one run each at most); a leaked thread per run would pass
# any slack here within a minute.
HOST_THREAD_SLACK = 24
SHORT_RUN = 5 * 60   # shorter runs: slopes advisory


def now():
    return time.monotonic()


# --------------------------------------------------------------------------
# /proc

def proc_table():
    """{pid: (ppid, state)} of every process."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            table[int(d)] = (int(fields[1]), fields[0])
        except (OSError, IndexError, ValueError):
            pass
    return table


def status_fields(pid):
    """VmRSS (bytes) and Threads of a process; (0, 0) once gone or a
    zombie."""
    rss = threads = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except OSError:
        pass
    return rss, threads


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def host_plugin(pid):
    """The plugin a host serves, from its argv[0] "healthd: plugin NAME"."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return "?"
    m = re.match(r"healthd: plugin (\S+)", argv0)
    return m.group(1) if m else "?"


# --------------------------------------------------------------------------
# servers the suite does not already have

class TCPListener:
    """A listener that accepts and closes: the tcp plugin's steady target."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.5)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
                c.close()
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()


def grpc_python():
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe) and subprocess.run(
                [exe, "-c", "import grpc"], capture_output=True,
                timeout=60).returncode == 0:
            return exe
    return None


class GrpcServer(Server):
    """tests/integration/grpc_health_server.py, SERVING for ""."""

    name = "grpc"

    def __init__(self, python):
        super().__init__()
        self.python = python

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        self._spawn([self.python, os.path.join(INTEGRATION,
                                               "grpc_health_server.py"),
                     "--port", str(self.port), "--status",
                     json.dumps({"": "SERVING", "db": "NOT_SERVING"})],
                    "grpc.log", cwd=self.dir, env=CLEAN_ENV)
        self._wait_listening("the gRPC server to listen")
        return self


EXEC_SCRIPT = """#!/bin/sh
# healthd soak: a Nagios-style check that exits with $1
code=${1:-0}
case $code in 0) w=OK ;; 1) w=WARNING ;; 2) w=CRITICAL ;; *) w=UNKNOWN ;; esac
echo "$w - soak script exit $code | runs=1;5;10;0;100 load=0.5"
exit "$code"
"""


# --------------------------------------------------------------------------
# the config

class Configs:
    """Generates the configs: fixed critical checks, and a pool of
    informational ones of which each generation keeps most, in one of
    several variants (so a rewrite adds, changes and removes some)."""

    def __init__(self, env, plugins, rng):
        self.env = env            # addresses, paths
        self.plugins = plugins    # plugin names the build has
        self.rng = rng
        self.critical = self._critical()
        self.pool = self._pool()

    def has(self, plugin):
        return plugin in self.plugins

    def _critical(self):
        """(name, yaml, dependency or None).  The first three go down on
        schedule; the others never should."""
        e = self.env
        crit = dict(critical=True, interval=f"{CRIT_INTERVAL:g}s",
                    timeout=f"{int(CRIT_TIMEOUT * 1000)}ms",
                    failure_threshold=CRIT_FAILURE_THRESHOLD,
                    success_threshold=CRIT_SUCCESS_THRESHOLD)
        steady = dict(critical=True, interval="2s", timeout="1500ms",
                      failure_threshold=3, success_threshold=1)
        out = []
        if self.has("postgres"):
            out.append(("db", check("db", plugin="postgres",
                                    options={"dsn": e["pg"].dsn}, **crit),
                        "postgres"))
        if self.has("redis"):
            out.append(("cache", check("cache", plugin="redis",
                                       options={"url": e["redis"].url},
                                       **crit), "redis"))
        if self.has("http"):
            out.append(("web", check("web", plugin="http",
                                     options={"url": e["http"].url("/ok")},
                                     **crit), "http"))
        if self.has("file"):
            out.append(("marker", check("marker", plugin="file",
                                        options={"path": e["marker"]},
                                        **steady), None))
        if self.has("exec"):
            out.append(("script", check(
                "script", plugin="exec",
                options={"command": f"{e['script']} 0"}, **steady), None))
        if self.has("tcp"):
            out.append(("listener", check(
                "listener", plugin="tcp",
                options={"host": "127.0.0.1", "port": e["listener"].port},
                **steady), None))
        return out

    def _pool(self):
        """{name: [variant options as (plugin, options, extra)...]}."""
        e = self.env
        pg, rd, h = e.get("pg"), e.get("redis"), e.get("http")
        dns = e.get("dns")
        closed = e["closed_port"]
        s = e["script"]
        p = {}
        if self.has("postgres"):
            p["pg-connect"] = [("postgres", {"dsn": pg.dsn, "mode": "connect"}),
                               ("postgres", {"dsn": pg.url, "mode": "connect"})]
            p["pg-query"] = [("postgres", {"dsn": pg.dsn,
                                           "query": "SELECT count(*) FROM pg_stat_activity"}),
                             ("postgres", {"dsn": pg.dsn, "query": "SELECT 2"})]
            p["pg-role"] = [("postgres", {"dsn": pg.url, "role": "primary"}),
                            ("postgres", {"dsn": pg.url, "role": "any"})]
            p["pg-badauth"] = [("postgres", {"dsn": pg.dsn_with(password="wrong-pw")})]
            p["pg-closed"] = [("postgres", {"dsn": pg.dsn_with(port=closed),
                                            "mode": "connect"})]
        if self.has("redis"):
            p["redis-any"] = [("redis", {"url": rd.url}),
                              ("redis", {"url": rd.url_for(db=1)})]
            p["redis-master"] = [("redis", {"url": rd.url, "role": "master"})]
            p["redis-mem"] = [("redis", {"url": rd.url, "max_memory_ratio": "0.9"}),
                              ("redis", {"url": rd.url, "max_memory_ratio": "0.5"})]
            p["redis-unix"] = [("redis", {"url": f"unix://{rd.socket}"})]
            p["redis-closed"] = [("redis", {"url": f"redis://127.0.0.1:{closed}/0"})]
        if self.has("http"):
            p["http-status"] = [("http", {"url": h.url("/status/200")}),
                                ("http", {"url": h.url("/status/204")})]
            p["http-redirect"] = [("http", {"url": h.url("/redirect")}),
                                  ("http", {"url": h.url("/redirect"),
                                            "follow_redirects": "true"})]
            p["http-slow"] = [("http", {"url": h.url("/slow?ms=100")}),
                              ("http", {"url": h.url("/slow?ms=300")})]
            p["http-head"] = [("http", {"url": h.url("/ok"), "method": "HEAD"})]
            p["http-body"] = [("http", {"url": h.url("/ok"),
                                        "expect_body": "all good"}),
                              ("http", {"url": h.url("/ok"),
                                        "expect_body": "not there"})]
            p["http-404"] = [("http", {"url": h.url("/status/404")}),
                             ("http", {"url": h.url("/status/404"),
                                       "expect_status": "404"})]
            p["http-big"] = [("http", {"url": h.url("/big")})]
            p["http-hang"] = [("http", {"url": h.url("/hang")})]
        if self.has("tcp"):
            p["tcp-pg"] = [("tcp", {"host": "127.0.0.1", "port": pg.port})]
            p["tcp-redis"] = [("tcp", {"host": "127.0.0.1", "port": rd.port,
                                       "send": "PING\r\n", "expect": "PONG"}),
                              ("tcp", {"host": "127.0.0.1", "port": rd.port,
                                       "send": "PING\r\n",
                                       "expect_regex": "^\\+PONG"})]
            p["tcp-http"] = [("tcp", {"host": "127.0.0.1", "port": h.port,
                                      "send": "GET /ok HTTP/1.0\r\n\r\n",
                                      "expect": "200"})]
            p["tcp-closed"] = [("tcp", {"host": "127.0.0.1", "port": closed})]
        if self.has("dns") and dns:
            srv = dns.address
            p["dns-a"] = [("dns", {"name": "app.test", "type": "A",
                                   "server": srv, "expect": "10.0.0.1"}),
                          ("dns", {"name": "app.test", "server": srv})]
            p["dns-aaaa"] = [("dns", {"name": "app.test", "type": "AAAA",
                                      "server": srv})]
            p["dns-cname"] = [("dns", {"name": "alias.test", "type": "CNAME",
                                       "server": srv})]
            p["dns-srv"] = [("dns", {"name": "_pg._tcp.test", "type": "SRV",
                                     "server": srv})]
            p["dns-txt"] = [("dns", {"name": "app.test", "type": "TXT",
                                     "server": srv, "expect": "v=1"})]
            p["dns-nx"] = [("dns", {"name": "missing.test", "server": srv,
                                    "attempts": "1"})]
        if self.has("file"):
            p["file-beat"] = [("file", {"path": e["beat"], "max_age": "10s",
                                        "warn_age": "5s"})]
            p["file-absent"] = [("file", {"path": e["absent"],
                                          "exists": "false"})]
            p["file-size"] = [("file", {"path": e["script"], "min_size": "10"}),
                              ("file", {"path": e["script"], "max_size": "10"})]
            p["file-missing"] = [("file", {"path": e["absent"]})]
        if self.has("exec"):
            p["exec-warn"] = [("exec", {"command": f"{s} 1"})]
            p["exec-fail"] = [("exec", {"command": f"{s} 2"}),
                              ("exec", {"command": f"{s} 3"})]
            p["exec-sh"] = [("exec", {"command": "sh -c 'echo OK - $$0; exit 0'"}),
                            ("exec", {"command": "sh -c 'echo OK; exit 0'",
                                      "env": None})]
            p["exec-slow"] = [("exec", {"command": "sleep 30"})]
            p["exec-false"] = [("exec", {"command": "/bin/false"})]
            nagios = "/usr/lib/nagios/plugins/check_tcp"
            if os.access(nagios, os.X_OK) and pg:
                p["exec-nagios"] = [("exec", {"command":
                                              f"{nagios} -H 127.0.0.1 -p {pg.port}"})]
        if self.has("grpc") and e.get("grpc"):
            g = e["grpc"].address
            p["grpc-serving"] = [("grpc", {"address": g})]
            p["grpc-db"] = [("grpc", {"address": g, "service": "db"})]
        for name in p:  # drop options set to None (a variant without them)
            p[name] = [(pl, {k: v for k, v in o.items() if v is not None})
                       for pl, o in p[name]]
        return p

    def bad(self, gen):
        """The misbehaving checks, each with a plugin host of its own (a
        copy of misbehave.so: one host serves one plugin file): one
        crashes every run (SIGSEGV; its options never change: a reload
        that changed them would be refused while its host is in crash
        back-off, see the report), one hangs every run, in turns plain
        and with a child that ignores SIGTERM (fork_hang)."""
        if not self.has("misbehave"):
            return []
        hang = ("hang", "fork_hang")[(gen // 2) % 2]
        return [check("bad-crash", plugin=self.env["misbehave_crash"],
                      critical=False, interval="2s", timeout="500ms",
                      options={"check": "segv"}),
                check("bad-hang", plugin=self.env["misbehave_hang"],
                      critical=False, interval="2s", timeout="500ms",
                      options={"check": hang})]

    def text(self, gen, port, invalid=False):
        checks = [y for _, y, _ in self.critical] + self.bad(gen)
        names = sorted(self.pool)
        for name in names:
            # Most stay: on average ~2 of ~45 leave and come back per write.
            if gen > 0 and self.rng.random() < 0.06:
                continue
            variants = self.pool[name]
            h = zlib.crc32(name.encode())
            v = variants[(gen // 3 + h) % len(variants)] \
                if self.rng.random() < 0.8 else self.rng.choice(variants)
            plugin, opts = v
            interval = self.rng.choice(("1s", "2s")) \
                if self.rng.random() < 0.1 else \
                ("1s" if h % 2 else "2s")
            timeout = "800ms" if interval == "1s" else "1s"
            checks.append(check(name, plugin=plugin, critical=False,
                                interval=interval, timeout=timeout,
                                options=opts))
        # ~50 at a time: ~6 critical, 2 misbehaving, most of the pool.
        extra = "workers: 8\ndefaults:\n  history: 30\n"
        text = config_text(checks, port, extra)
        text = re.sub(r"(?m)^  level: debug$", "  level: info", text)
        if invalid:
            text = text.replace("interval: 2s", "interval: 2x", 1)
        return text, len(checks)


# --------------------------------------------------------------------------
# the load

class Prober(threading.Thread):
    """A kubelet: GET path on a new connection every PROBE_PERIOD."""

    def __init__(self, soak, path, name, offset):
        super().__init__(daemon=True, name=name)
        self.soak, self.path, self.pname, self.offset = soak, path, name, offset
        self.results = []   # (t_sent, t_answered, status or 0, note)
        self.last = None

    def run(self):
        s = self.soak
        tick = now() + self.offset
        while not s.done.is_set():
            delay = tick - now()
            if delay > 0 and s.done.wait(delay):
                break
            tick += PROBE_PERIOD
            if tick < now():   # fell behind (a stalled soak): no burst
                tick = now() + PROBE_PERIOD
            t0 = now()
            status, note = s.get(self.path, PROBE_TIMEOUT)
            t1 = now()
            self.results.append((t0 - s.t0, t1 - s.t0, status, note))
            self.last = status


class Scraper(threading.Thread):
    """Monitoring: the base path, a check's history and /metrics every
    2-5 s; keeps the last metrics text."""

    def __init__(self, soak):
        super().__init__(daemon=True, name="scraper")
        self.soak = soak
        self.results = []   # (t, path, status, note)
        self.metrics = ""
        self.rng = random.Random(soak.args.seed + 1)

    def run(self):
        s = self.soak
        n = 0
        while not s.done.wait(self.rng.uniform(2, 5)):
            n += 1
            html = n % 2 == 0
            hist = self.rng.choice(("db", "cache", "web", "bad-crash",
                                    "http-status"))
            for path, headers in (
                    (BASE + "/", {"Accept": "text/html"} if html else {}),
                    (f"{BASE}/checks/{hist}/history", {}),
                    ("/metrics", {})):
                status, body = s.get(path, 10, headers=headers, body=True)
                self.results.append((now() - s.t0, path, status,
                                     "" if status else body))
                if path == "/metrics" and status == 200:
                    self.metrics = body


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.done = threading.Event()
        self.events = []       # (t, what)
        self.outages = []      # [dep, t_down, t_up or None]
        self.samples = []
        self.host_samples = []
        self.rewrites = {"written": 0, "invalid": 0, "sighup": 0}
        self.servers = []
        self.lock = threading.Lock()
        self.errors = []       # background threads' exceptions
        self.t0 = None
        self.daemon = None

    # -- HTTP ----------------------------------------------------------
    def get(self, path, timeout, headers=None, body=False):
        """(status, note): status 0 when there was no answer."""
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port,
                                          timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            raw = r.read()
            if body:
                return r.status, raw.decode(errors="replace")
            return r.status, "" if r.status == 200 else \
                raw[:2000].decode(errors="replace")
        except (OSError, http.client.HTTPException) as e:
            return 0, repr(e)
        finally:
            conn.close()

    def event(self, what):
        t = now() - self.t0
        with self.lock:
            self.events.append((t, what))
        return t

    # -- setup -----------------------------------------------------------
    def setup(self):
        a = self.args
        self.tmp = tempfile.mkdtemp(prefix="healthd-soak-")
        plugin_dir = harness.PLUGIN_DIR
        self.plugins = {f[:-3] for f in os.listdir(plugin_dir)
                        if f.endswith(".so")}
        if os.path.exists(os.path.join(harness.TEST_PLUGIN_DIR,
                                       "misbehave.so")):
            self.plugins.add("misbehave")
        print(f"soak: build {BUILD_DIR}; plugins: {' '.join(sorted(self.plugins))}",
              flush=True)
        env = {}
        env["closed_port"] = free_port()
        env["marker"] = os.path.join(self.tmp, "marker")
        env["beat"] = os.path.join(self.tmp, "heartbeat")
        env["absent"] = os.path.join(self.tmp, "absent")
        env["script"] = os.path.join(self.tmp, "check.sh")
        for path, text in ((env["marker"], "here\n"), (env["beat"], ""),
                           (env["script"], EXEC_SCRIPT)):
            with open(path, "w") as f:
                f.write(text)
        os.chmod(env["script"], 0o755)
        if "misbehave" in self.plugins:
            for what in ("crash", "hang"):
                d = os.path.join(self.tmp, f"misbehave-{what}")
                os.mkdir(d)
                env[f"misbehave_{what}"] = os.path.join(d, "misbehave.so")
                shutil.copy(os.path.join(harness.TEST_PLUGIN_DIR,
                                         "misbehave.so"), d)
        env["listener"] = TCPListener()
        self.listener = env["listener"]
        print("soak: starting PostgreSQL, Redis, HTTP, dnsmasq...", flush=True)
        self.pg = env["pg"] = self._start(Postgres())
        self.redis = env["redis"] = self._start(Redis())
        self.http = env["http"] = self._start(HTTPServer())
        self.dns = None
        if shutil.which("dnsmasq") or os.path.exists("/usr/sbin/dnsmasq"):
            self.dns = env["dns"] = start_dnsmasq([
                "host-record=app.test,10.0.0.1,::1",
                "cname=alias.test,app.test",
                "srv-host=_pg._tcp.test,app.test,5432",
                "txt-record=app.test,v=1"])
            self.servers.append(self.dns)
        else:
            print("soak: no dnsmasq: no dns checks", flush=True)
        self.grpc = None
        if "grpc" in self.plugins and not a.no_grpc:
            py = grpc_python()
            if py:
                self.grpc = env["grpc"] = self._start(GrpcServer(py))
            else:
                print("soak: no python3-grpcio: no grpc checks", flush=True)
        # mysql: MariaDB's first start (mariadb-install-db) takes too long
        # and too much memory for the value here; left out.
        self.configs = Configs(env, self.plugins, self.rng)
        self.env = env

    def _start(self, srv):
        self.servers.append(srv)
        return srv.start()

    def start_daemon(self):
        self.gen = 0
        env = dict(CLEAN_ENV)
        if not self.args.tcache:
            env["GLIBC_TUNABLES"] = ":".join(
                t for t in (env.get("GLIBC_TUNABLES"), NO_TCACHE) if t)
        d = harness.Daemon(checks=[], env=env, wait_started=False)
        self.cm = ConfigMap(os.path.join(d.dir.name, "etc"))
        d.path = self.cm.path
        text, n = self.configs.text(0, d.port)
        self.cm.write(text)
        self.daemon = d
        d.start()
        self.t0 = now()
        deadline = now() + 60
        while now() < deadline:
            if self.get(BASE + "/startup", 2)[0] == 200:
                break
            if d.proc.poll() is not None:
                raise RuntimeError("healthd exited:\n" + d.logs()[-3000:])
            time.sleep(0.1)
        else:
            raise RuntimeError("healthd did not start in 60 s:\n"
                               + d.logs()[-3000:])
        self.t0 = now()
        print(f"soak: healthd pid {d.proc.pid} on port {d.port}, {n} checks, "
              f"started", flush=True)

    # -- background work -----------------------------------------------
    def guarded(self, fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - reported at the end
                import traceback
                self.errors.append(f"{fn.__name__}: {e!r}\n"
                                   + traceback.format_exc())
                self.done.set()
        return threading.Thread(target=run, daemon=True, name=fn.__name__)

    def sampler(self):
        pid = self.daemon.proc.pid
        tick = now()
        probes = {p.pname: p for p in self.probers}
        while not self.done.is_set():
            tick += 1.0
            delay = tick - now()
            if delay > 0 and self.done.wait(delay):
                break
            os.utime(self.env["beat"])
            t = now() - self.t0
            children = {}
            for c, (pp, _) in proc_table().items():
                children.setdefault(pp, []).append(c)
            kids = children.get(pid, [])
            desc, todo = 0, list(kids)
            while todo:
                desc += 1
                todo += children.get(todo.pop(), [])
            rss_d, thr_d = status_fields(pid)
            fds_d = fd_count(pid)
            rss_h = rss_hb = thr_h = fds_h = 0
            for c in kids:
                r, th = status_fields(c)
                fd = fd_count(c)
                plugin = host_plugin(c)
                if plugin == "?":
                    # Between posix_spawn() and exec: a copy of the
                    # daemon, its fds and RSS, for a moment; not a host.
                    continue
                rss_h += r
                thr_h += th
                fds_h += fd
                if plugin != "misbehave":
                    rss_hb += r
                self.host_samples.append((round(t, 2), c, plugin, r, fd, th))
            if rss_d == 0:
                raise RuntimeError("healthd is gone")
            self.samples.append({
                "time": round(t, 2), "rss_daemon": rss_d, "rss_hosts": rss_h,
                "fds": fds_d, "threads": thr_d, "children": len(kids),
                "ready": probes["ready"].last, "live": probes["live"].last,
                "startup": probes["startup"].last,
                "rss_hosts_bundled": rss_hb, "fds_hosts": fds_h,
                "threads_hosts": thr_h, "descendants": desc})

    def rewriter(self):
        n = 0
        while not self.done.wait(self.rng.uniform(3, 6)):
            n += 1
            if n % 7 == 0:
                self.daemon.signal(signal.SIGHUP)
                self.rewrites["sighup"] += 1
                self.event("config: SIGHUP")
                continue
            invalid = n % 10 == 0
            if not invalid:
                self.gen += 1
            text, count = self.configs.text(self.gen, self.daemon.port,
                                            invalid=invalid)
            self.cm.write(text)
            self.rewrites["invalid" if invalid else "written"] += 1
            self.event(f"config: {'invalid' if invalid else 'write'} "
                       f"({count} checks)")

    def schedule(self):
        """The dependencies' outages, cycle after cycle, until the end (no
        outage starts that could not end 5 s before it)."""
        end = self.args.minutes * 60
        cycle = 0
        plan = []
        while cycle * CYCLE < end:
            c = cycle * CYCLE
            pg_mode = "stop" if cycle % 2 == 0 else "pause"
            plan += [(c + 8, c + 18, "redis", "pause"),
                     (c + 24, c + 32, "postgres", pg_mode),
                     (c + 38, c + 44, "http", "kill"),
                     (c + 48, c + 53, "dnsmasq", "pause")]
            cycle += 1
        plan = [p for p in plan if p[1] < end - 5]
        srv = {"redis": self.redis, "postgres": self.pg, "http": self.http,
               "dnsmasq": self.dns}
        for t_down, t_up, dep, how in plan:
            s = srv[dep]
            if s is None or (dep == "dnsmasq" and "dns" not in self.plugins):
                continue
            if self._wait_until(t_down):
                return
            rec = [dep, self.event(f"{dep} {how}"), None]
            with self.lock:
                self.outages.append(rec)
            if how == "pause":
                s.pause()
            elif how == "stop":
                s.stop()
            elif how == "kill":
                s.stop(sig=signal.SIGKILL)
            # Always bring it back, even when the run is ending.
            self._wait_until(t_up)
            if how == "pause":
                s.resume()
            else:
                s.start()
            rec[2] = self.event(f"{dep} back")

    def _wait_until(self, t):
        delay = self.t0 + t - now()
        return delay > 0 and self.done.wait(delay)

    # -- the run -----------------------------------------------------------
    def run(self):
        self.setup()
        self.start_daemon()
        self.probers = [Prober(self, BASE + "/startup", "startup", 0.0),
                        Prober(self, BASE + "/live", "live", 0.33),
                        Prober(self, BASE + "/ready", "ready", 0.66)]
        self.scraper = Scraper(self)
        threads = self.probers + [self.scraper] + [
            self.guarded(f) for f in (self.sampler, self.rewriter,
                                      self.schedule)]
        for t in threads:
            t.start()
        end = self.args.minutes * 60
        last_print = 0
        while not self.done.wait(1.0):
            t = now() - self.t0
            if self.daemon.proc.poll() is not None:
                self.errors.append(f"healthd exited {self.daemon.proc.returncode}"
                                   f" at {t:.0f} s")
                break
            if t - last_print >= 60:
                last_print = t
                s = self.samples[-1] if self.samples else {}
                print(f"soak: {t:4.0f}/{end:.0f} s  rss {s.get('rss_daemon', 0) / MIB:.1f} MiB"
                      f" (hosts {s.get('rss_hosts', 0) / MIB:.1f} MiB)  fds {s.get('fds')}"
                      f"  threads {s.get('threads')}  children {s.get('children')}"
                      f"  ready {s.get('ready')}", flush=True)
            if t >= end:
                break
        self.done.set()
        for t in threads:
            t.join(60)
        self.final_metrics = self.get("/metrics", 10, body=True)[1]
        self.final_body = self.get(BASE + "/", 10, body=True)[1]
        self.stop_daemon()

    def stop_daemon(self):
        d = self.daemon
        self.exit_code = None
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = d.proc.wait(60)
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait(10)
                self.exit_code = "did not exit within 60 s of SIGTERM"
        else:
            self.exit_code = d.proc.returncode
        d.log.close()

    def cleanup(self):
        for s in self.servers:
            try:
                s.close()
            except Exception as e:  # noqa: BLE001
                print(f"soak: closing {s.name}: {e!r}", file=sys.stderr)
        if getattr(self, "listener", None):
            self.listener.close()
        if self.daemon:
            if self.daemon.proc and self.daemon.proc.poll() is None:
                self.daemon.proc.kill()
                self.daemon.proc.wait(10)
            self.daemon.dir.cleanup()
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# judging

def slope(points):
    """Least-squares slope of [(x, y)], per unit of x."""
    n = len(points)
    if n < 3:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx if sxx else 0.0


def held_max(values, n=None):
    """The highest level held for n consecutive samples (1 s apart): a
    leaked fd, thread or process stays; a probe connection in flight
    while two plugin hosts are being replaced is gone the next second."""
    n = n or HELD
    if len(values) < n:
        return max(values)
    return max(min(values[i:i + n]) for i in range(len(values) - n + 1))


def allowed_windows(outages):
    """Where /ready may answer 503: a critical dependency's outage
    [down, up], extended past `up` by what recovery may take: the failed
    runs that made it `fail` are history, but the first passing run comes
    up to one interval (+5 % jitter) after `up`, may take its timeout,
    success_threshold of them are needed, and the probe sees it up to one
    probe period later; failure_threshold x interval more covers a run that
    was in flight across `up` (a paused server answering late, a plugin
    host being replaced), and WINDOW_MARGIN a loaded machine."""
    ext = (max(CRIT_FAILURE_THRESHOLD, CRIT_SUCCESS_THRESHOLD) *
           CRIT_INTERVAL * 1.05 + CRIT_TIMEOUT + PROBE_PERIOD + WINDOW_MARGIN)
    out = []
    for dep, down, up in outages:
        if dep in ("postgres", "redis", "http"):
            out.append((dep, down, (up if up is not None else math.inf) + ext))
    return out, ext


def judge(soak):
    fails, notes = [], []
    report = {}
    with soak.lock:
        outages = [list(o) for o in soak.outages]
    windows, ext = allowed_windows(outages)
    report["window_extension_s"] = round(ext, 2)

    by_name = {p.pname: p.results for p in soak.probers}
    live, ready, startup = by_name["live"], by_name["ready"], by_name["startup"]
    # /live: always 200.
    bad_live = [r for r in live if r[2] != 200]
    report["live"] = {"probes": len(live), "non_200": len(bad_live)}
    if bad_live:
        fails.append(f"/live answered non-200 {len(bad_live)} times, first: "
                     f"{bad_live[:3]}")
    # /startup: 200 from its first 200 on.
    first = next((i for i, r in enumerate(startup) if r[2] == 200), None)
    bad_startup = [r for r in startup[first or 0:] if r[2] != 200]
    report["startup"] = {"probes": len(startup), "non_200": len(bad_startup)}
    if first is None or bad_startup:
        fails.append(f"/startup non-200 after it was started: {bad_startup[:3]}")
    # /ready: 200, or 503 naming only critical checks whose dependency was
    # inside an allowed window.
    dep_of = {name: dep for name, _, dep in soak.configs.critical}
    per_window = [0] * len(windows)
    last_503 = [None] * len(windows)
    bad_ready = []
    for t_sent, t_ans, status, note in ready:
        if status == 200:
            continue
        try:
            failing = json.loads(note).get("failing") or []
        except ValueError:
            failing = []
        hits, ok = set(), status == 503 and bool(failing)
        for name in failing:
            hit = [i for i, (dep, lo, hi) in enumerate(windows)
                   if dep == dep_of.get(name) and t_ans >= lo and t_sent <= hi]
            hits.update(hit)
            ok = ok and bool(hit)
        if ok:
            for i in hits:
                per_window[i] += 1
                last_503[i] = t_ans
        else:
            bad_ready.append((round(t_sent, 1), status, note[:300]))
    lags = []
    for i, (dep, lo, hi) in enumerate(windows):
        up = hi - ext
        if last_503[i] is not None and up != math.inf:
            lags.append(last_503[i] - up)
    report["ready"] = {
        "probes": len(ready),
        "503_in_windows": sum(per_window),
        "windows": [{"dependency": dep, "from": round(lo, 1),
                     "to": round(hi, 1), "503s": per_window[i]}
                    for i, (dep, lo, hi) in enumerate(windows)],
        "max_recovery_lag_s": round(max(lags), 2) if lags else None,
        "outside_windows": bad_ready[:20],
        "outside_windows_count": len(bad_ready)}
    if bad_ready:
        fails.append(f"/ready not 200 outside the allowed windows "
                     f"{len(bad_ready)} times, first: {bad_ready[:3]}")
    if windows and not any(per_window):
        fails.append("/ready never answered 503 while a critical dependency "
                     "was down: the soak's outages did not happen as planned")
    # Monitoring answers.
    scrape_bad = [r for r in soak.scraper.results
                  if not (r[2] == 200 or (r[2] == 503 and r[1] == BASE + "/")
                          or (r[2] == 404 and "/history" in r[1]))]
    report["scrapes"] = {"requests": len(soak.scraper.results),
                         "bad": len(scrape_bad)}
    if scrape_bad:
        fails.append(f"monitoring requests failed: {scrape_bad[:3]}")

    # Growth.
    samples = soak.samples
    duration = samples[-1]["time"] if samples else 0
    warm_end = duration * 0.2
    warm = [s for s in samples if s["time"] <= warm_end]
    post = [s for s in samples if s["time"] > warm_end]
    short = duration < SHORT_RUN
    growth = {"warmup_s": round(warm_end, 1), "duration_s": round(duration, 1),
              "samples": len(samples), "advisory_slopes": short,
              "glibc_tcache": soak.args.tcache}
    if len(warm) < 3 or len(post) < 3:
        fails.append(f"too few samples ({len(samples)})")
    else:
        for key, bound in (("rss_daemon", RSS_DAEMON_BOUND),
                           ("rss_hosts_bundled", RSS_HOSTS_BOUND),
                           ("rss_hosts", None)):
            sl = slope([(s["time"], s[key]) for s in post])
            per10 = sl * 600 / MIB
            growth[key] = {
                "slope_mib_per_10min": round(per10, 3),
                "bound_mib_per_10min": round(bound * 600 / MIB, 3)
                if bound else None,
                "first_post_mib": round(post[0][key] / MIB, 2),
                "last_mib": round(post[-1][key] / MIB, 2),
                "max_mib": round(max(s[key] for s in post) / MIB, 2)}
            if bound and sl > bound:
                msg = (f"{key} grows {per10:.2f} MiB per 10 min "
                       f"(bound {bound * 600 / MIB:.2f})")
                (notes if short else fails).append(
                    msg + (" [advisory: run shorter than 5 min]" if short else ""))
        for key, slack in (("fds", FD_SLACK), ("threads", THREAD_SLACK),
                           ("children", PROC_SLACK),
                           ("descendants", PROC_SLACK),
                           ("fds_hosts", HOST_FD_SLACK),
                           ("threads_hosts", HOST_THREAD_SLACK)):
            wmax = held_max([s[key] for s in warm])
            pmax = held_max([s[key] for s in post])
            sl = slope([(s["time"], s[key]) for s in post])
            growth[key] = {"warmup_max": wmax, "after_max": pmax,
                           "limit": wmax + slack,
                           "after_peak": max(s[key] for s in post),
                           "after_last": post[-1][key],
                           "slope_per_10min": round(sl * 600, 3)}
            if pmax > wmax + slack:
                fails.append(f"{key}: max {pmax} (held {HELD} s) after the "
                             f"warm-up, over the warm-up's {wmax} + {slack}")
    report["growth"] = growth

    # Did the soak do what it says?
    m = soak.final_metrics or ""
    restarts = {}
    for line in m.splitlines():
        mm = re.match(r'healthd_plugin_host_restarts_total\{plugin="([^"]+)",'
                      r'reason="([^"]+)"\} (\S+)', line)
        if mm:
            restarts[f"{mm.group(1)}/{mm.group(2)}"] = float(mm.group(3))
    report["host_restarts"] = restarts
    gen = None
    try:
        body = json.loads(soak.final_body)
        gen = body["config"]["generation"]
        report["final"] = {"status": body.get("status"),
                           "checks": len(body.get("checks", {})),
                           "generation": gen,
                           "last_reload": body["config"].get("last_reload")}
    except (ValueError, KeyError, TypeError):
        fails.append("no comprehensive body at the end")
    report["rewrites"] = dict(soak.rewrites)
    # Each write of a valid config is a new generation (SIGHUPs may add);
    # an invalid one is refused.  Slack for the odd write that the 150 ms
    # quiet period folded into the next one.
    written = soak.rewrites["written"]
    if gen is not None and gen < 1 + written * 0.9:
        fails.append(f"config generation {gen} after {written} valid "
                     f"rewrites: reloads were not applied")
    # Every refusal must be of an invalid write (its "2x" interval);
    # anything else is a valid config that healthd refused.
    refusals = re.findall(r'"msg":"(reload failed[^\n]*?)"[,}]',
                          soak.daemon.logs())
    others = [m for m in refusals if "is not a duration" not in m]
    report["reloads_refused"] = len(refusals)
    if soak.rewrites["invalid"] and len(refusals) == len(others):
        fails.append("no invalid config was refused")
    if others:
        fails.append(f"{len(others)} valid configs refused, first: "
                     f"{others[0][:300]}")
    if "misbehave" in soak.plugins:
        if not any(k.startswith("misbehave/crash") for k in restarts):
            fails.append("misbehave never crashed a host (no restart, reason crash)")
        if not any(k.startswith("misbehave/timeout") for k in restarts):
            fails.append("misbehave never hung a host (no restart, reason timeout)")
    report["exit_code"] = soak.exit_code
    if soak.exit_code != 0:
        fails.append(f"healthd exit on SIGTERM: {soak.exit_code}")
    if soak.errors:
        fails += [f"soak error: {e}" for e in soak.errors]
    report["fails"], report["notes"] = fails, notes
    return report


# --------------------------------------------------------------------------
# artifacts

SAMPLE_COLUMNS = ("time", "rss_daemon", "rss_hosts", "fds", "threads",
                  "children", "ready", "live", "startup", "rss_hosts_bundled",
                  "fds_hosts", "threads_hosts", "descendants")


def write_artifacts(soak, report, out):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "samples.csv"), "w") as f:
        f.write(",".join(SAMPLE_COLUMNS) + "\n")
        for s in soak.samples:
            f.write(",".join("" if s[c] is None else str(s[c])
                             for c in SAMPLE_COLUMNS) + "\n")
    with open(os.path.join(out, "hosts.csv"), "w") as f:
        f.write("time,pid,plugin,rss,fds,threads\n")
        for row in soak.host_samples:
            f.write(",".join(map(str, row)) + "\n")
    with open(os.path.join(out, "probes.csv"), "w") as f:
        f.write("probe,t_sent,t_answered,status,note\n")
        for p in soak.probers:
            for t0, t1, st, note in p.results:
                note = note.replace('"', "'").replace("\n", " ")
                f.write(f'{p.pname},{t0:.3f},{t1:.3f},{st},"{note[:200]}"\n')
    with open(os.path.join(out, "events.csv"), "w") as f:
        f.write("time,event\n")
        for t, what in soak.events:
            f.write(f"{t:.2f},{what}\n")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(report, f, indent=1)
    if soak.daemon:
        shutil.copyfile(soak.daemon.log_path, os.path.join(out, "healthd.log"))
    plot(soak, report, out)


def plot(soak, report, out):
    gp = shutil.which("gnuplot")
    png = os.path.join(out, "soak.png")
    if not gp:
        print("soak: no gnuplot (apt-get install gnuplot-nox): no plot",
              flush=True)
        return None
    g = report["growth"]
    warm = g.get("warmup_s", 0)
    outages = "".join(
        f"set object {i + 1} rect from {lo:.1f}, graph 0 to "
        f"{min(hi, g.get('duration_s', hi)):.1f}, graph 1 behind "
        f"fc rgb '#f4d8d8' fs solid 0.5 noborder\n"
        for i, (_, lo, hi) in enumerate(allowed_windows(
            [tuple(o) for o in soak.outages])[0]))
    dur = max(g.get("duration_s", 1), 1)
    script = f"""
set terminal pngcairo size 1400,1500 font ',10'
set output '{png}'
set datafile separator ','
set datafile missing ''
set key outside right top
set grid
set xrange [0:{dur:.0f}]
set lmargin 12
set rmargin 28
set multiplot layout 5,1 title 'healthd soak: {dur:.0f} s; grey line: end of the warm-up; red: allowed /ready 503 windows (critical dependency down)'
set arrow 1 from {warm}, graph 0 to {warm}, graph 1 nohead lc rgb '#888888' dt 2
{outages}
set ylabel 'daemon RSS (MiB)'
plot '{out}/samples.csv' every ::1 using 1:($2/1048576) with lines lw 2 title 'daemon'
set ylabel 'hosts RSS (MiB)'
plot '{out}/samples.csv' every ::1 using 1:($3/1048576) with lines title 'all plugin hosts', \\
     '' every ::1 using 1:($10/1048576) with lines lw 2 title 'hosts of bundled plugins'
set ylabel 'open fds'
plot '{out}/samples.csv' every ::1 using 1:4 with lines lw 2 title 'daemon', \\
     '' every ::1 using 1:11 with lines title 'plugin hosts (sum)'
set ylabel 'threads / processes'
plot '{out}/samples.csv' every ::1 using 1:5 with lines lw 2 title 'daemon threads', \\
     '' every ::1 using 1:12 with lines title 'host threads (sum)', \\
     '' every ::1 using 1:6 with steps title 'children (hosts)', \\
     '' every ::1 using 1:13 with steps title 'all descendants'
set ylabel 'HTTP status'
set xlabel 'seconds since healthd started'
set yrange [0:600]
plot '{out}/samples.csv' every ::1 using 1:7 with steps lw 2 title '/ready', \\
     '' every ::1 using 1:($8+20) with steps title '/live (+20)'
unset multiplot
"""
    path = os.path.join(out, "soak.gnuplot")
    with open(path, "w") as f:
        f.write(script)
    r = subprocess.run([gp, path], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        print(f"soak: gnuplot failed: {r.stderr[-2000:]}", flush=True)
        return None
    return png


def print_report(report, out):
    g = report["growth"]
    print("\n=== soak results ===")
    print(f"duration {g.get('duration_s')} s, {g.get('samples')} samples, "
          f"warm-up {g.get('warmup_s')} s, glibc tcache "
          f"{'on' if g.get('glibc_tcache') else 'off (' + NO_TCACHE + ')'}")
    print("bounds: RSS daemon slope <= "
          f"{RSS_DAEMON_BOUND * 600 / MIB:.2f} MiB/10 min (a leak of ~60 B per check run, "
          "~500 B per request or ~8 KiB per reload); bundled plugin hosts' RSS "
          f"<= {RSS_HOSTS_BOUND * 600 / MIB:.2f} MiB/10 min; after the warm-up the max "
          f"(held {HELD} s) of "
          f"fds <= warm-up max + {FD_SLACK}, threads + {THREAD_SLACK}, "
          f"processes + {PROC_SLACK}, hosts' fds + {HOST_FD_SLACK}, "
          f"hosts' threads + {HOST_THREAD_SLACK}"
          + (" (slopes advisory: run shorter than 5 min)"
             if g.get("advisory_slopes") else ""))
    for key in ("rss_daemon", "rss_hosts_bundled", "rss_hosts"):
        if key in g:
            v = g[key]
            print(f"  {key:18s} slope {v['slope_mib_per_10min']:+.3f} MiB/10 min"
                  f" (bound {v['bound_mib_per_10min']}); "
                  f"{v['first_post_mib']} -> {v['last_mib']} MiB, max {v['max_mib']}")
    for key in ("fds", "threads", "children", "descendants", "fds_hosts",
                "threads_hosts"):
        if key in g:
            v = g[key]
            print(f"  {key:18s} warm-up max {v['warmup_max']}, after max "
                  f"{v['after_max']} (limit {v['limit']}; peak "
                  f"{v['after_peak']}), last "
                  f"{v['after_last']}, slope {v['slope_per_10min']:+.2f}/10 min")
    r = report["ready"]
    print(f"probes: /live {report['live']['probes']} ({report['live']['non_200']} "
          f"non-200), /startup {report['startup']['probes']} "
          f"({report['startup']['non_200']} non-200), /ready {r['probes']} "
          f"({r['503_in_windows']} 503 inside {len(r['windows'])} outage windows, "
          f"{r['outside_windows_count']} non-200 outside); windows extend "
          f"{report['window_extension_s']} s past recovery, max recovery lag "
          f"{r['max_recovery_lag_s']} s")
    print(f"config: {report['rewrites']}, refused {report['reloads_refused']}, "
          f"final {report.get('final')}")
    print(f"plugin host restarts: {report['host_restarts']}")
    print(f"healthd exit on SIGTERM: {report['exit_code']}")
    print(f"artifacts: {out} (samples.csv, soak.png, summary.json, healthd.log)")
    for n in report["notes"]:
        print(f"note: {n}")
    for f in report["fails"]:
        print(f"FAIL: {f}")
    print("soak: PASS" if not report["fails"] else "soak: FAIL", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--out", default=None,
                    help="artifacts dir (default $HEALTHD_BUILD_DIR/artifacts/soak)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-grpc", action="store_true",
                    help="leave the grpc plugin out")
    ap.add_argument("--tcache", action="store_true",
                    help="keep glibc's per-thread malloc caches (see NO_TCACHE)")
    args = ap.parse_args()
    out = os.path.abspath(args.out or os.path.join(BUILD_DIR, "artifacts",
                                                   "soak"))
    if not os.access(harness.BIN, os.X_OK):
        print(f"soak: no healthd at {harness.BIN}: build first, or set "
              "HEALTHD_BUILD_DIR", file=sys.stderr)
        return 2
    soak = Soak(args)
    # SIGTERM (a CI timeout) ends the run like Ctrl-C: servers stopped.
    def interrupted(*_):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, interrupted)
    try:
        soak.run()
        report = judge(soak)
        write_artifacts(soak, report, out)
        print_report(report, out)
        return 0 if not report["fails"] else 1
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 2
    except Exception:
        import traceback
        traceback.print_exc()
        if soak.daemon:
            print(soak.daemon.logs()[-3000:], file=sys.stderr)
        return 2
    finally:
        soak.done.set()
        soak.cleanup()


if __name__ == "__main__":
    sys.exit(main())
