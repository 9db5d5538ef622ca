"""Real servers for integration tests: PostgreSQL 15, Redis 7, HTTP and HTTPS.

Each server runs on 127.0.0.1 on a free port, keeps its files in its own temp
dir, and is stopped by its PID (never by name).  Python 3 stdlib only.

    with servers.Postgres() as pg:          # initdb + postgres, as user postgres
        pg.dsn        # conninfo: host=127.0.0.1 port=N dbname=app user=healthd password=...
        pg.url        # postgresql://healthd:...@127.0.0.1:N/app
        pg.pause()    # SIGSTOP the postmaster and every backend (a hung server)
        pg.resume()   # SIGCONT
        pg.stop(); pg.start()   # same port, same data
    servers.Postgres(standby=True)          # a server in recovery (role replica)

    with servers.Redis(password="pw", acl_users={"app": "apppw"},
                       maxmemory="64mb") as r:
        r.url         # redis://:pw@127.0.0.1:N/0 (r.url_for(user, pw, db) for others)
        r.socket      # its unix socket
    servers.Redis(replica_of=r)             # a replica of r

    with servers.HTTPServer(tls=True) as h:  # a subprocess, so it can be stopped
        h.url("/ok"); h.ca_file
        # paths: /ok (200 "ok: all good"), /status/NNN, /redirect (302 -> /ok),
        # /redirect-loop, /slow?ms=N, /hang, /big (1 MiB), /headers (JSON echo)

Every server has start(), stop(), pause(), resume(), close() (stop and
delete its files), .port and .pid, and is a context manager.

run_plugin() drives a plugin through healthd-plugin-run (the core's real loader):
    result, stderr, wall_ms = servers.run_plugin("postgres", {"dsn": pg.dsn},
                                                 timeout_ms=300)
PluginTestCase adds assertions on top of it (status, deadline, refusals,
secrets) and runs the daemon's --check-config and --once on a one-check
config.

The environment set by tests/CMakeLists.txt says where things are:
HEALTHD_BUILD_DIR (healthd-plugin-run), HEALTHD_PLUGIN_DIR (the bundled plugins).
"""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

PG_BIN = "/usr/lib/postgresql/15/bin"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

BUILD_DIR = os.environ.get("HEALTHD_BUILD_DIR", "")
PLUGIN_DIR = os.environ.get("HEALTHD_PLUGIN_DIR", "")
PLUGIN_RUN = os.path.join(BUILD_DIR, "healthd-plugin-run")

# Proxies from the caller's environment would catch requests to 127.0.0.1.
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
CLEAN_ENV["NO_PROXY"] = CLEAN_ENV["no_proxy"] = "*"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise RuntimeError(f"timed out waiting for {what}")


def run_plugin(plugin, options=(), timeout_ms=2000, wall_timeout=30,
               wrapper=()):
    """Run one check through healthd-plugin-run (behind `wrapper`, a
    command that execs its arguments, when given).

    `options` is a dict or a list of (key, value) pairs.  Returns (result,
    stderr, wall_ms): result is the parsed JSON line, or None when
    healthd-plugin-run refused (exit 2); anything else raises.
    """
    items = options.items() if isinstance(options, dict) else options
    args = list(wrapper) + [PLUGIN_RUN, plugin, "--timeout-ms", str(timeout_ms)]
    if PLUGIN_DIR:
        args += ["--dir", PLUGIN_DIR]
    args += [f"{k}={v}" for k, v in items]
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, env=CLEAN_ENV,
                       timeout=wall_timeout)
    wall_ms = (time.monotonic() - t0) * 1000
    if p.returncode == 2:
        return None, p.stdout + p.stderr, wall_ms
    if p.returncode != 0:
        raise RuntimeError(f"healthd-plugin-run exited {p.returncode}: {p.stderr}")
    return json.loads(p.stdout), p.stderr, wall_ms


class PluginTestCase(unittest.TestCase):
    """Assertions for tests that drive one plugin."""

    plugin = None        # the plugin's name
    timeout_ms = 2000
    # The deadline must hold to within this (issue: +-50 ms).
    slack_ms = 50

    def run_check(self, options, timeout_ms=None):
        """Run one check; returns (result, all output as one string)."""
        result, stderr, self.wall_ms = run_plugin(
            self.plugin, options, timeout_ms or self.timeout_ms)
        self.assertIsNotNone(result, f"healthd-plugin-run refused: {stderr}")
        return result, json.dumps(result) + stderr

    def assert_result(self, options, status, *words, timeout_ms=None):
        """The check ends in `status` and its message holds every word."""
        result, _ = self.run_check(options, timeout_ms)
        self.assertEqual(result["status"], status, result)
        for w in words:
            self.assertIn(w, result["message"], result)
        return result

    def assert_deadline(self, options, *words, timeout_ms=300):
        """A hung server: `fail`, published within slack_ms of the deadline."""
        result = self.assert_result(options, "fail", "timed out after",
                                    *words, timeout_ms=timeout_ms)
        self.assertGreaterEqual(result["duration_ms"], timeout_ms - 2, result)
        self.assertLessEqual(result["duration_ms"], timeout_ms + self.slack_ms,
                             result)
        # healthd-plugin-run's own start and exit come on top; generous for ASan.
        self.assertLess(self.wall_ms, timeout_ms + 2000)
        return result

    def assert_refused(self, options, *words, secrets=()):
        """create() (or the core) refuses the options with a message that
        holds every word and no secret."""
        result, stderr, _ = run_plugin(self.plugin, options, self.timeout_ms)
        self.assertIsNone(result, f"accepted: {result}")
        for w in words:
            self.assertIn(w, stderr)
        self.assert_no_secret(stderr, secrets)
        return stderr

    def assert_no_secret(self, text, secrets):
        for s in secrets:
            self.assertNotIn(s, text, "a secret was printed")

    # The daemon, on a config of one check of this plugin.

    def daemon_run(self, options, *args, critical=True):
        """healthd -c CONFIG ARGS; returns CompletedProcess (text)."""
        import harness
        with tempfile.TemporaryDirectory(prefix="healthd-cfg-") as d:
            path = os.path.join(d, "healthd.yaml")
            with open(path, "w") as f:
                f.write(harness.config_text(
                    [harness.check("target", plugin=self.plugin,
                                   critical=critical, interval="5s", timeout="2s",
                                   options=options)],
                    port=free_port()))
            return subprocess.run([harness.BIN, "-c", path, *args],
                                  capture_output=True, text=True,
                                  env=CLEAN_ENV, timeout=60)

    def assert_check_config_rejects(self, options, *words, secrets=()):
        p = self.daemon_run(options, "--check-config")
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 2, out)
        for w in words:
            self.assertIn(w, out)
        self.assert_no_secret(out, secrets)
        return out

    def assert_once(self, options, code, *words, secrets=()):
        """healthd --once --json: exit code, words in the output, no
        secret anywhere (stdout and the log on stderr)."""
        p = self.daemon_run(options, "--once", "--json")
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, code, out)
        for w in words:
            self.assertIn(w, out)
        self.assert_no_secret(out, secrets)
        return p


class Server:
    """Start/stop/pause/resume of one server process and its temp dir."""

    name = "server"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix=f"healthd-{self.name}-")
        self.port = free_port()
        self.proc = None
        self.paused = False

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _spawn(self, args, log_name, **kw):
        log = open(os.path.join(self.dir, log_name), "ab")
        try:
            # Its own session: a signal meant for the test runner's group
            # (Ctrl-C) goes to the runner, which then stops the server.
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log,
                                         start_new_session=True, **kw)
        finally:
            log.close()

    def _wait_listening(self, what):
        """Until 127.0.0.1:self.port accepts, while the server lives."""
        def ready():
            self._check_alive()
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return True
            except OSError:
                return False
        wait_until(ready, 30, what)

    def _descendants(self):
        """PIDs of the server's children, grandchildren...: PostgreSQL's
        backends call setsid(), so its process group is not enough."""
        parent = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        # "pid (comm) state ppid ...": comm may hold spaces
                        parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    pass
        found, todo = [], [self.proc.pid]
        while todo:
            p = todo.pop()
            kids = [c for c, pp in parent.items() if pp == p]
            found += kids
            todo += kids
        return found

    def _signal_tree(self, sig):
        """Signal the server and every process it started, by PID."""
        if not self.proc or self.proc.poll() is not None:
            return
        # Children seen before (a killed parent's are re-parented) and
        # after (a stopped parent starts no more) the parent's signal.
        before = self._descendants()
        os.kill(self.proc.pid, sig)
        for pid in set(before + self._descendants()):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def pause(self):
        """SIGSTOP the server and its children: it accepts TCP
        connections (the kernel's backlog) but never answers."""
        self._signal_tree(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self._signal_tree(signal.SIGCONT)
        self.paused = False

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stop the process (by its PID); the port and files stay."""
        if not self.proc:
            return
        if self.paused:
            self.resume()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_tree(signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        """The server's log file(s), for failure messages."""
        out = []
        for f in sorted(os.listdir(self.dir)):
            if f.endswith(".log"):
                with open(os.path.join(self.dir, f), "rb") as fh:
                    out.append(fh.read().decode(errors="replace"))
        return "\n".join(out)

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n"
                               + self.log())


class Postgres(Server):
    """A PostgreSQL 15 cluster: superuser `postgres` (trust over the unix
    socket), and `user` with `password` owning database `dbname`, which
    must log in with scram-sha-256 over TCP.

    standby=True leaves the cluster in recovery (standby.signal, no primary)
    so pg_is_in_recovery() is true and it answers read-only queries.

    ssl={"cert": PEM, "key": PEM} serves TLS on .port too (ssl=on; plain
    connections still accepted); with "ca": PEM and "cert_user": NAME, the
    role NAME logs in over TLS by client certificate only (pg_hba `cert`:
    a certificate issued by that CA, CN=NAME).
    """

    name = "postgres"

    def __init__(self, user="healthd", password="pg-Secr3t-pw-4711",
                 dbname="app", standby=False, ssl=None):
        super().__init__()
        self.user, self.password, self.dbname = user, password, dbname
        self.standby = standby
        self.ssl = dict(ssl or {})
        self.data = os.path.join(self.dir, "data")
        self.sockdir = os.path.join(self.dir, "sock")
        self.initialised = False
        # initdb and postgres refuse to run as root.
        self.run_as = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.run_as = {"user": pw.pw_uid, "group": pw.pw_gid,
                           "extra_groups": []}
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        os.mkdir(self.sockdir, 0o700)
        if self.run_as:
            os.chown(self.sockdir, self.run_as["user"], self.run_as["group"])

    @property
    def dsn(self):
        return (f"host=127.0.0.1 port={self.port} dbname={self.dbname} "
                f"user={self.user} password={self.password}")

    @property
    def url(self):
        return (f"postgresql://{self.user}:{self.password}@127.0.0.1:"
                f"{self.port}/{self.dbname}")

    def dsn_with(self, **kw):
        """The conninfo with some fields replaced, e.g. password='wrong'."""
        f = {"host": "127.0.0.1", "port": self.port, "dbname": self.dbname,
             "user": self.user, "password": self.password}
        f.update(kw)
        return " ".join(f"{k}={v}" for k, v in f.items() if v is not None)

    def _pg(self, tool, *args, check=True):
        return subprocess.run([os.path.join(PG_BIN, tool), *args],
                              capture_output=True, text=True, cwd=self.dir,
                              check=check, timeout=120, **self.run_as)

    def psql(self, sql, db="postgres", check=True):
        """Run SQL as the superuser over the unix socket; returns stdout."""
        p = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A",
                            "-t", "-v", "ON_ERROR_STOP=1", "-h", self.sockdir,
                            "-p", str(self.port), "-U", "postgres", "-d", db,
                            "-c", sql], capture_output=True, text=True,
                           timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError(f"psql failed: {p.stderr}")
        return p.stdout.strip()

    def _ssl_setup(self):
        """The server's copies of the TLS files (owned by it, 0600: the
        server refuses a key others can read) and the `cert` line first in
        pg_hba.conf.  Returns the -c options."""
        opts = ["-c", "ssl=on"]
        for k, conf in (("cert", "ssl_cert_file"), ("key", "ssl_key_file"),
                        ("ca", "ssl_ca_file")):
            if k not in self.ssl:
                continue
            dst = os.path.join(self.dir, f"server-{k}.pem")
            shutil.copyfile(self.ssl[k], dst)
            os.chmod(dst, 0o600)
            if self.run_as:
                os.chown(dst, self.run_as["user"], self.run_as["group"])
            opts += ["-c", f"{conf}={dst}"]
        if self.ssl.get("cert_user"):
            hba = os.path.join(self.data, "pg_hba.conf")
            with open(hba) as f:
                text = f.read()
            with open(hba, "w") as f:
                f.write(f"hostssl all {self.ssl['cert_user']} 127.0.0.1/32 "
                        f"cert\n" + text)
        return opts

    def start(self):
        ssl_opts = []
        if not self.initialised:
            self._pg("initdb", "-D", self.data, "-U", "postgres",
                     "--auth-local=trust", "--auth-host=scram-sha-256",
                     "-E", "UTF8", "--no-sync")
        if self.ssl:
            ssl_opts = self._ssl_setup() if not self.initialised else \
                self._ssl_opts
            self._ssl_opts = ssl_opts
        self._spawn([os.path.join(PG_BIN, "postgres"), "-D", self.data,
                     "-k", self.sockdir, "-p", str(self.port),
                     "-c", "listen_addresses=127.0.0.1",
                     "-c", "fsync=off", "-c", "max_connections=30",
                     "-c", "shared_buffers=16MB", *ssl_opts],
                    "postgres.log", cwd=self.dir, **self.run_as)

        def ready():
            self._check_alive()
            return self.psql("SELECT 1", check=False) == "1"
        wait_until(ready, 60, "postgres to accept connections")
        if not self.initialised:
            self.initialised = True
            self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD "
                      f"'{self.password}'")
            self.psql(f"CREATE DATABASE {self.dbname} OWNER {self.user}")
            if self.ssl.get("cert_user"):
                self.psql(f"CREATE ROLE {self.ssl['cert_user']} LOGIN")
            if self.standby:
                # A clean shutdown, then recovery with no primary: the
                # server is consistent at once and serves read-only.
                self.stop()
                open(os.path.join(self.data, "standby.signal"), "w").close()
                if self.run_as:
                    os.chown(os.path.join(self.data, "standby.signal"),
                             self.run_as["user"], self.run_as["group"])
                self.start()
        return self

    def stop(self, sig=signal.SIGINT, timeout=15):
        """Fast shutdown (SIGINT) by default."""
        super().stop(sig, timeout)


class Redis(Server):
    """A redis-server with a generated config.

    password: `requirepass` (the default user's password); acl_users:
    {name: password} users with every permission, or {name: (password,
    "rules")} with ACL rules of your own; maxmemory: e.g. "64mb";
    replica_of: another Redis (its password is used as masterauth);
    tls: {"cert": PEM, "key": PEM, "ca": PEM, "auth_clients": "no" |
    "yes" | "optional"} serves TLS only on .port (url is rediss://; the
    unix socket stays plain).
    """

    name = "redis"

    def __init__(self, password=None, acl_users=None, maxmemory=None,
                 replica_of=None, extra_config=(), tls=None):
        super().__init__()
        self.password = password
        self.acl_users = acl_users or {}
        self.maxmemory = maxmemory
        self.replica_of = replica_of
        self.extra_config = list(extra_config)
        self.tls = tls
        self.socket = os.path.join(self.dir, "redis.sock")

    @property
    def url(self):
        return self.url_for(None, self.password)

    def url_for(self, user=None, password=None, db=0, host="127.0.0.1"):
        auth = ""
        if password is not None:
            auth = f"{user or ''}:{password}@"
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}{host}:{self.port}/{db}"

    def _config(self):
        port = [f"port {self.port}"]
        if self.tls:
            port = ["port 0", f"tls-port {self.port}",
                    f"tls-cert-file {self.tls['cert']}",
                    f"tls-key-file {self.tls['key']}",
                    f"tls-ca-cert-file {self.tls['ca']}",
                    f"tls-auth-clients {self.tls.get('auth_clients', 'no')}"]
        lines = port + ["bind 127.0.0.1", f"dir {self.dir}",
                 "daemonize no", 'save ""', "appendonly no",
                 f"unixsocket {self.socket}", "unixsocketperm 700",
                 f"logfile {os.path.join(self.dir, 'redis.log')}"]
        if self.password:
            lines.append(f"requirepass {self.password}")
        for name, spec in self.acl_users.items():
            pw, rules = spec if isinstance(spec, tuple) else (spec, "~* &* +@all")
            lines.append(f"user {name} on >{pw} {rules}")
        if self.maxmemory:
            lines.append(f"maxmemory {self.maxmemory}")
        if self.replica_of:
            lines.append(f"replicaof 127.0.0.1 {self.replica_of.port}")
            if self.replica_of.password:
                lines.append(f"masterauth {self.replica_of.password}")
        return "\n".join(lines + self.extra_config) + "\n"

    def command(self, *args):
        """One command as the default user over the unix socket; returns the
        raw reply bytes (enough for tests)."""
        def enc(a):
            a = str(a).encode()
            return b"$%d\r\n%s\r\n" % (len(a), a)
        msgs = []
        if self.password:
            msgs.append(b"*2\r\n" + enc("AUTH") + enc(self.password))
        msgs.append(b"*%d\r\n" % len(args) + b"".join(enc(a) for a in args))
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.socket)
            s.sendall(b"".join(msgs))
            time.sleep(0.05)
            return s.recv(1 << 20)

    def start(self):
        conf = os.path.join(self.dir, "redis.conf")
        with open(conf, "w") as f:
            f.write(self._config())
        self._spawn([REDIS_SERVER, conf], "redis-stdout.log", cwd=self.dir)

        def ready():
            self._check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                    if self.tls:  # listening; PING over the unix socket
                        return b"PONG" in self.command("PING")
                    s.sendall(b"PING\r\n")
                    return bool(s.recv(64))
            except OSError:
                return False
        wait_until(ready, 30, "redis to answer")
        return self


CERT_SUBJECT_ALT = "subjectAltName=IP:127.0.0.1,DNS:localhost"


class HTTPServer(Server):
    """An HTTP (or, with tls=True, HTTPS with a self-signed certificate made
    by the openssl CLI) server in a subprocess, so pause() hangs it.

    url(path) gives the full URL; ca_file is the certificate to trust.
    """

    name = "http"

    def __init__(self, tls=False):
        super().__init__()
        self.tls = tls
        self.ca_file = None
        self.scheme = "https" if tls else "http"
        if tls:
            self.ca_file = os.path.join(self.dir, "cert.pem")
            self.key_file = os.path.join(self.dir, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-days", "2", "-subj", "/CN=localhost",
                            "-addext", CERT_SUBJECT_ALT,
                            "-keyout", self.key_file, "-out", self.ca_file],
                           check=True, capture_output=True, timeout=60)

    def url(self, path="/ok"):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def start(self):
        args = [sys.executable, os.path.abspath(__file__), "--http-server",
                str(self.port)]
        if self.tls:
            args += [self.ca_file, self.key_file]
        self._spawn(args, "http.log", cwd=self.dir, env=CLEAN_ENV)
        self._wait_listening("the http server to listen")
        return self


def _http_server_main(port, cert=None, key=None):
    """The child process behind HTTPServer."""
    import http.server
    import ssl
    import urllib.parse

    big = b"BEGIN" + b"x" * (1 << 20) + b"END"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            # The TLS handshake runs here, on the request's thread: a client
            # that gives up half-way must not stall the accepting thread.
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(10)
                self.request.do_handshake()
            super().setup()

        def answer(self, status, body=b"", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(u.query)
            p = u.path
            if p == "/ok":
                self.answer(200, b"ok: all good\n")
            elif p.startswith("/status/"):
                code = int(p.rsplit("/", 1)[1])
                self.answer(code, b"status %d\n" % code)
            elif p == "/redirect":
                self.answer(302, b"moved\n", [("Location", "/ok")])
            elif p == "/redirect-loop":
                self.answer(302, b"again\n", [("Location", "/redirect-loop")])
            elif p == "/slow":
                time.sleep(int(q.get("ms", ["1000"])[0]) / 1000)
                self.answer(200, b"slow but ok\n")
            elif p == "/hang":
                time.sleep(3600)
            elif p == "/big":
                self.answer(200, big)
            elif p == "/headers":
                body = json.dumps(dict(self.headers.items())).encode()
                self.answer(200, body)
            else:
                self.answer(404, b"not found\n")

        do_HEAD = do_GET

        def log_message(self, fmt, *args):
            sys.stderr.write("%s\n" % (fmt % args))
            sys.stderr.flush()

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    srv.serve_forever()


if __name__ == "__main__" and len(sys.argv) >= 3 and sys.argv[1] == "--http-server":
    _http_server_main(int(sys.argv[2]), *sys.argv[3:5])


def start_dnsmasq(records=(), local="test"):
    """Start a dnsmasq DNS server on 127.0.0.1 (UDP and TCP, one free port)
    that answers only `records` — no upstream, no /etc/hosts — and return
    it (a Server: .port, .address "127.0.0.1:PORT", pause() SIGSTOPs it so
    it never answers, stop(), close(); also a context manager).

    records are dnsmasq options without their "--", e.g.
        ["host-record=app.test,10.0.0.1,::1", "cname=alias.test,app.test",
         "srv-host=_pg._tcp.test,db.test,5432", "txt-record=app.test,v=1"]
    Names under `local` it does not know are NXDOMAIN; other names are
    REFUSED.  Debian's dnsmasq-base is enough (the binary, no system
    service); it runs in the foreground and drops root to `nobody`
    (--no-daemon would keep root, so it is not used).
    """
    dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"

    def udp_free(port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False

    def query():
        """One A query for `local` over UDP; True when anything answers."""
        qname = b"".join(bytes([len(p)]) + p.encode()
                         for p in local.split(".") if p) + b"\0"
        packet = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + \
            qname + b"\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(packet, ("127.0.0.1", srv.port))
                return s.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    class Dnsmasq(Server):
        name = "dnsmasq"

        @property
        def address(self):
            return f"127.0.0.1:{self.port}"

        def start(self):
            if self.proc and self.proc.poll() is None:
                return self
            user = "nobody" if os.geteuid() == 0 else \
                pwd.getpwuid(os.geteuid()).pw_name
            self._spawn([dnsmasq, "--keep-in-foreground", "--log-facility=-",
                         f"--port={self.port}", "--listen-address=127.0.0.1",
                         "--bind-interfaces", "--no-resolv", "--no-hosts",
                         "--no-poll", "--conf-file=/dev/null",
                         f"--pid-file={os.path.join(self.dir, 'dnsmasq.pid')}",
                         f"--user={user}", f"--local=/{local}/",
                         *[f"--{r}" for r in records]],
                        "dnsmasq.log", cwd=self.dir)

            def ready():
                self._check_alive()
                return query()
            wait_until(ready, 30, "dnsmasq to answer")
            return self

    srv = Dnsmasq()
    for _ in range(20):  # a TCP port that is also free for UDP
        if udp_free(srv.port):
            break
        srv.port = free_port()
    try:
        return srv.start()
    except BaseException:
        srv.close()
        raise


def namespaces_usable():
    """A private mount namespace (root, unshare) to bind-mount our own
    /etc/hosts or /etc/resolv.conf for one healthd-plugin-run."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"],
                          capture_output=True).returncode == 0


def run_plugin_with_files(plugin, files, options=(), timeout_ms=2000,
                          wall_timeout=30):
    """run_plugin() with `files` ({path: our copy}, e.g. /etc/resolv.conf)
    bind-mounted over the system's in a private mount namespace of its own
    (needs namespaces_usable()).  Returns (result, stderr, wall_ms)."""
    mounts = "".join(f'mount --bind "{src}" "{dst}" && '
                     for dst, src in files.items())
    return run_plugin(plugin, options, timeout_ms, wall_timeout,
                      wrapper=("unshare", "-m", "sh", "-c",
                               mounts + 'exec "$@"', "sh"))


def dns_relay(upstream=None):
    """A nameserver for a private /etc/resolv.conf, which has no port: UDP
    port 53 of a random 127.x.y.53 (needs root), relaying each query to
    `upstream` (host, port) — e.g. start_dnsmasq()'s — or, without one,
    never answering.  Returns it: .address, .queries (how many came),
    .resolv_conf (the file's text), close(); a context manager."""
    import random
    import threading

    class Relay:
        def __init__(self):
            for _ in range(20):
                ip = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.53"
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    self.sock.bind((ip, 53))
                    break
                except OSError as e:
                    self.sock.close()
                    err = e
            else:
                raise unittest.SkipTest(f"cannot bind a 127.x.y.53:53: {err}")
            self.address = ip
            self.queries = 0
            self.resolv_conf = (f"nameserver {ip}\n"
                                "options timeout:5 attempts:1\n")
            self.sock.settimeout(0.1)
            self.stopping = False
            threading.Thread(target=self._serve, daemon=True).start()

        def _serve(self):
            while not self.stopping:
                try:
                    data, peer = self.sock.recvfrom(4096)
                except socket.timeout:
                    continue
                except OSError:
                    return
                self.queries += 1
                if upstream:
                    threading.Thread(target=self._relay, args=(data, peer),
                                     daemon=True).start()

        def _relay(self, data, peer):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.settimeout(5)
                try:
                    u.sendto(data, upstream)
                    self.sock.sendto(u.recv(4096), peer)
                except OSError:
                    pass

        def close(self):
            self.stopping = True
            time.sleep(0.15)
            self.sock.close()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    return Relay()


MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
MARIADB_INSTALL_DB = shutil.which("mariadb-install-db") or \
    "/usr/bin/mariadb-install-db"
MARIADB_CLIENT = shutil.which("mariadb") or "/usr/bin/mariadb"


class MariaDB(Server):
    """A MariaDB server (Debian's mariadb-server binaries, no system
    service): root with no password over its unix socket (`sql()`), and
    `user` with `password` owning database `dbname`, from 127.0.0.1 and
    over the socket.

    tls=(cert, key) serves TLS with that certificate and key (PEM; copied
    into the server's dir).  Run as user `mysql` when root.

        with servers.MariaDB() as db:
            db.url        # mysql://healthd:...@127.0.0.1:N/app
            db.dsn        # host=127.0.0.1 port=N user=healthd password=... dbname=app
            db.socket     # its unix socket
            db.sql("SET GLOBAL read_only=1")
    """

    name = "mariadb"

    def __init__(self, user="healthd", password="my-Secr3t-pw-8812",
                 dbname="app", tls=None):
        super().__init__()
        self.user, self.password, self.dbname = user, password, dbname
        self.data = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.initialised = False
        self.run_as = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("mysql")
            self.run_as = {"user": pw.pw_uid, "group": pw.pw_gid,
                           "extra_groups": []}
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.tls = None
        if tls:
            self.tls = []
            for src, name in zip(tls, ("server-cert.pem", "server-key.pem")):
                dst = os.path.join(self.dir, name)
                shutil.copyfile(src, dst)
                os.chmod(dst, 0o600)
                if self.run_as:
                    os.chown(dst, self.run_as["user"], self.run_as["group"])
                self.tls.append(dst)

    @property
    def url(self):
        return (f"mysql://{self.user}:{self.password}@127.0.0.1:"
                f"{self.port}/{self.dbname}")

    @property
    def dsn(self):
        return self.dsn_with()

    def dsn_with(self, **kw):
        """The key=value form with some fields replaced (None: left out)."""
        f = {"host": "127.0.0.1", "port": self.port, "user": self.user,
             "password": self.password, "dbname": self.dbname}
        f.update(kw)
        return " ".join(f"{k}={v}" for k, v in f.items() if v is not None)

    def sql(self, sql, check=True):
        """Run SQL as root over the unix socket; returns stdout (tab-
        separated rows, no column names)."""
        p = subprocess.run([MARIADB_CLIENT, "--no-defaults", "-uroot",
                            f"--socket={self.socket}", "-N", "-B",
                            "--connect-timeout=5", "-e", sql],
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError(f"mariadb failed: {p.stderr}")
        return p.stdout.strip()

    def start(self):
        if not self.initialised:
            subprocess.run([MARIADB_INSTALL_DB, "--no-defaults",
                            f"--datadir={self.data}",
                            "--auth-root-authentication-method=normal",
                            "--skip-test-db", "--skip-name-resolve",
                            "--innodb-buffer-pool-size=16M",
                            "--innodb-log-file-size=8M"],
                           capture_output=True, text=True, cwd=self.dir,
                           check=True, timeout=300, **self.run_as)
        args = [MARIADBD, "--no-defaults", f"--datadir={self.data}",
                f"--socket={self.socket}", f"--port={self.port}",
                "--bind-address=127.0.0.1", "--skip-name-resolve",
                f"--pid-file={os.path.join(self.dir, 'mariadbd.pid')}",
                f"--log-error={os.path.join(self.dir, 'mariadb.log')}",
                "--skip-log-bin", "--innodb-buffer-pool-size=16M",
                "--innodb-log-file-size=8M",
                "--innodb-flush-log-at-trx-commit=0", "--max-connections=50",
                "--performance-schema=OFF"]
        if self.tls:
            args += [f"--ssl-cert={self.tls[0]}", f"--ssl-key={self.tls[1]}"]
        self._spawn(args, "mariadbd-stdout.log", cwd=self.dir, **self.run_as)

        def ready():
            self._check_alive()
            return self.sql("SELECT 1", check=False) == "1"
        wait_until(ready, 60, "mariadb to accept connections")
        if not self.initialised:
            self.initialised = True
            u, pw = self.user, self.password
            self.sql(f"CREATE DATABASE {self.dbname}; "
                     f"CREATE USER '{u}'@'127.0.0.1' IDENTIFIED BY '{pw}'; "
                     f"CREATE USER '{u}'@'localhost' IDENTIFIED BY '{pw}'; "
                     f"GRANT ALL ON {self.dbname}.* TO '{u}'@'127.0.0.1'; "
                     f"GRANT ALL ON {self.dbname}.* TO '{u}'@'localhost'")
        return self
