"""Start the real healthd daemon for integration tests and talk to it.

The build tells the tests where things are through the environment (set by
tests/CMakeLists.txt): HEALTHD_BIN, HEALTHD_PLUGIN_DIR (bundled plugins),
HEALTHD_TEST_PLUGIN_DIR (testplug.so and friends), HEALTHD_BUILD_DIR,
HEALTHD_SOURCE_DIR.

    with Daemon(checks=[check("db", mode="pass")]) as d:
        status, headers, body = d.get("/api/v1/health/ready")
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import textwrap
import time

BIN = os.environ.get("HEALTHD_BIN", "healthd")
PLUGIN_DIR = os.environ.get("HEALTHD_PLUGIN_DIR", "")
TEST_PLUGIN_DIR = os.environ.get("HEALTHD_TEST_PLUGIN_DIR", "")
BUILD_DIR = os.environ.get("HEALTHD_BUILD_DIR", "")
SOURCE_DIR = os.environ.get("HEALTHD_SOURCE_DIR", "")
BASE = "/api/v1/health"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(name, plugin="testplug", critical=True, interval="1s",
          timeout="500ms", options=None, **extra):
    """One entry of `checks:` as YAML text; extra keys go in as written."""
    opts = dict(options or {})
    lines = [f"  - name: {name}", f"    plugin: {plugin}",
             f"    critical: {'true' if critical else 'false'}",
             f"    interval: {interval}", f"    timeout: {timeout}"]
    for k, v in extra.items():
        lines.append(f"    {k}: {v}")
    if opts:
        lines.append("    options:")
        for k, v in opts.items():
            lines.append(f"      {k}: {json.dumps(str(v))}")
    return "\n".join(lines)


def config_text(checks=(), port=None, extra=""):
    """A whole healthd.yaml listening on 127.0.0.1:port."""
    dirs = [d for d in (PLUGIN_DIR, TEST_PLUGIN_DIR) if d]
    head = textwrap.dedent(f"""\
        listen: "127.0.0.1:{port}"
        log:
          level: debug
          format: json
        plugin_dirs: {json.dumps(dirs)}
        server:
          threads: 2
        shutdown:
          drain: 1s
        """)
    # No control socket unless a test asks for one: test daemons running
    # side by side would all want the default path.
    if not extra.startswith("control:") and "\ncontrol:" not in extra:
        head += 'control: {socket: ""}\n'
    body = "checks:\n" + "\n".join(checks) + "\n" if checks else "checks: []\n"
    return head + extra + body


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw

    def json(self):
        return json.loads(self.raw) if self.raw else None


class Daemon:
    """A healthd process on a free port with its config in a temp dir."""

    def __init__(self, checks=(), extra="", env=None, config=None,
                 wait_started=True, port=None):
        self.dir = tempfile.TemporaryDirectory(prefix="healthd-test-")
        self.port = port or free_port()
        self.path = os.path.join(self.dir.name, "healthd.yaml")
        with open(self.path, "w") as f:
            f.write(config if config is not None
                    else config_text(checks, self.port, extra))
        self.env = dict(os.environ, **(env or {}))
        self.wait_started = wait_started
        self.proc = None
        self.log_path = os.path.join(self.dir.name, "stderr.log")

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        self.dir.cleanup()

    def start(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BIN, "-c", self.path], env=self.env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"healthd exited {self.proc.returncode}:\n"
                                   + self.logs())
            try:
                r = self.get(BASE + "/startup")
                if not self.wait_started or r.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("healthd did not start:\n" + self.logs())

    def stop(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        if self.proc:
            self.log.close()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def request(self, method, path, headers=None, timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()},
                            r.read())
        finally:
            conn.close()

    def get(self, path, headers=None, timeout=5):
        return self.request("GET", path, headers, timeout)

    def wait_logged(self, text, timeout=5):
        """Wait for text in the log. The log writer is a thread of its own,
        so a line logged before the state a test saw may land a moment
        later."""
        self.wait_for(lambda: text in self.logs(), timeout=timeout,
                      what=f"{text!r} in the log")

    def wait_for(self, predicate, timeout=10, interval=0.01, what="condition"):
        """Poll until predicate() is true; returns its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = predicate()
            if v:
                return v
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}\n" + self.logs())

    def check_status(self, name):
        body = self.get(BASE + "/").json()
        return body["checks"][name]["status"]


def run(args, env=None, timeout=30):
    """Run healthd with args; returns CompletedProcess with text output."""
    return subprocess.run([BIN] + list(args), capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=timeout)
