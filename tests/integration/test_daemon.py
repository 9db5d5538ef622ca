"""The daemon end to end: endpoints, headers, verdicts, timeouts, drain, CLI.

Every test starts the real healthd with testplug.so checks whose behaviour
the test sets (pass, warn, fail, sleep past the deadline, never return).
"""

import json
import os
import re
import signal
import tempfile
import time
import unittest

from harness import (BASE, PLUGIN_DIR, TEST_PLUGIN_DIR, Daemon, check,
                     config_text, free_port, run)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Endpoints(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(checks=[
            check("db", options={"mode": "pass", "message": "SELECT 1 ok"}),
            check("cache", options={"mode": "pass"}),
            check("payments", critical=False, options={"mode": "pass"}),
        ])
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.dir.cleanup()

    def test_probes_answer_200(self):
        for path in ("/startup", "/live", "/ready", "/", "", "/checks/db"):
            r = self.d.get(BASE + path)
            self.assertEqual(r.status, 200, path + " " + r.raw.decode())

    def test_comprehensive_body(self):
        body = self.d.get(BASE + "/").json()
        self.assertEqual(body["status"], "healthy")
        self.assertIs(body["started"], True)
        self.assertIs(body["ready"], True)
        self.assertIs(body["draining"], False)
        self.assertEqual(body["version"], "0.1.0")
        self.assertGreaterEqual(body["uptime_s"], 0)
        self.assertEqual(body["config"]["generation"], 1)
        self.assertEqual(body["config"]["last_reload"], "ok")
        self.assertIsNone(body["config"]["last_reload_error"])
        self.assertTrue(body["config"]["loaded_at"].endswith("Z"))
        db = body["checks"]["db"]
        self.assertEqual(db["plugin"], "testplug")
        self.assertIs(db["critical"], True)
        self.assertEqual(db["status"], "pass")
        self.assertEqual(db["last_result"], "pass")
        self.assertEqual(db["message"], "SELECT 1 ok")
        self.assertEqual(db["interval_ms"], 1000)
        self.assertEqual(db["timeout_ms"], 500)
        self.assertIsNone(db["last_failure"])
        self.assertIsNotNone(db["last_success"])
        self.assertGreaterEqual(db["consecutive_successes"], 1)
        self.assertEqual(db["consecutive_failures"], 0)
        self.assertEqual(db["details"]["mode"], "pass")
        self.assertIs(body["checks"]["payments"]["critical"], False)

    def test_headers(self):
        r = self.d.get(BASE + "/ready")
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.headers["cache-control"], "no-store")
        generated = r.headers["x-request-id"]
        self.assertTrue(generated)
        self.assertNotEqual(self.d.get(BASE + "/ready").headers["x-request-id"],
                            generated)
        r = self.d.get(BASE + "/live", {"X-Request-ID": "abc-123"})
        self.assertEqual(r.headers["x-request-id"], "abc-123")
        for path in ("/nope", BASE + "/nope", BASE + "/checks/nope"):
            r = self.d.get(path, {"X-Request-ID": "r1"})
            self.assertEqual(r.status, 404, path)
            self.assertEqual(r.headers["content-type"], "application/json")
            self.assertEqual(r.headers["x-request-id"], "r1")
            self.assertEqual(r.json()["code"], 404)

    def test_methods(self):
        r = self.d.request("HEAD", BASE + "/ready")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.raw, b"")
        for method in ("POST", "PUT", "DELETE", "OPTIONS"):
            r = self.d.request(method, BASE + "/ready")
            self.assertEqual(r.status, 405, method)
            self.assertEqual(r.headers["allow"], "GET, HEAD")
            self.assertEqual(r.headers["content-type"], "application/json")

    def test_metrics(self):
        r = self.d.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain"))
        self.assertEqual(r.headers["cache-control"], "no-store")
        text = r.raw.decode()
        self.assertIn("healthd_up 1\n", text)
        self.assertIn("healthd_ready 1\n", text)
        self.assertIn('healthd_verdict{verdict="healthy"} 1\n', text)
        self.assertIn('healthd_check_status{check="db",plugin="testplug",'
                      'critical="true",status="pass"} 1\n', text)
        self.assertIn("healthd_config_last_reload_success 1\n", text)
        self.assertRegex(text, r'healthd_check_runs_total\{check="db"\} [1-9]')
        self.assertEqual(self.d.request("POST", "/metrics").status, 405)

    def test_health_json_format(self):
        r = self.d.get(BASE + "/", {"Accept": "application/health+json"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/health+json")
        body = r.json()
        self.assertEqual(body["status"], "pass")
        self.assertEqual(body["checks"]["db:status"][0]["status"], "pass")
        self.assertEqual(body["checks"]["db:status"][0]["componentType"],
                         "testplug")

    def test_keep_alive(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=5)
        for _ in range(5):
            conn.request("GET", BASE + "/ready")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertNotEqual(r.getheader("connection", "").lower(), "close")
        conn.close()


class Verdicts(unittest.TestCase):
    def test_critical_failure_makes_unready(self):
        with Daemon(checks=[check("db", options={"mode": "fail",
                                                 "message": "refused"}),
                            check("cache")]) as d:
            r = d.get(BASE + "/ready")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["failing"], ["db"])
            r = d.get(BASE + "/")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["status"], "unhealthy")
            self.assertEqual(d.get(BASE + "/checks/db").status, 503)
            self.assertEqual(d.get(BASE + "/checks/cache").status, 200)
            self.assertEqual(d.get(BASE + "/live").status, 200)
            self.assertEqual(d.get(BASE + "/startup").status, 200)
            # ?exclude= leaves the check out of that answer.
            self.assertEqual(d.get(BASE + "/ready?exclude=db").status, 200)
            body = d.get(BASE + "/?exclude=db").json()
            self.assertEqual(body["status"], "healthy")
            self.assertNotIn("db", body["checks"])
            self.assertEqual(
                d.get(BASE + "/ready?exclude=cache&exclude=db").status, 200)

    def test_informational_failure_degrades(self):
        with Daemon(checks=[check("db"),
                            check("extra", critical=False,
                                  options={"mode": "fail"})]) as d:
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            r = d.get(BASE + "/")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["status"], "degraded")
            r = d.get(BASE + "/", {"Accept": "application/health+json"})
            self.assertEqual(r.json()["status"], "warn")

    def test_warn_degrades_but_stays_ready(self):
        with Daemon(checks=[check("db", options={"mode": "warn"})]) as d:
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            self.assertEqual(d.get(BASE + "/").json()["status"], "degraded")
            self.assertEqual(d.get(BASE + "/checks/db").status, 200)

    def test_warn_after_marks_slow_runs(self):
        with Daemon(checks=[check("db", warn_after="50ms",
                                  options={"mode": "pass",
                                           "sleep_ms": "120"})]) as d:
            c = d.get(BASE + "/").json()["checks"]["db"]
            self.assertEqual(c["status"], "warn")
            self.assertIn("warn_after", c["message"])

    def test_failure_threshold_then_recovery(self):
        with tempfile.TemporaryDirectory() as tmp:
            ctl = os.path.join(tmp, "ctl")
            write(ctl, "pass\n")
            with Daemon(checks=[check("db", interval="100ms",
                                      timeout="100ms",
                                      failure_threshold=3,
                                      success_threshold=2,
                                      options={"control": ctl})]) as d:
                write(ctl, "fail\n")
                # Below the threshold the status holds.
                d.wait_for(lambda: d.get(BASE + "/").json()["checks"]["db"]
                           ["last_result"] == "fail", what="a failed run")
                c = d.get(BASE + "/").json()["checks"]["db"]
                if c["consecutive_failures"] < 3:
                    self.assertEqual(c["status"], "pass")
                d.wait_for(lambda: d.check_status("db") == "fail",
                           what="status fail")
                c = d.get(BASE + "/").json()["checks"]["db"]
                self.assertGreaterEqual(c["consecutive_failures"], 3)
                self.assertEqual(d.get(BASE + "/ready").status, 503)
                write(ctl, "pass\n")
                d.wait_for(lambda: d.check_status("db") == "pass",
                           what="recovery")
                c = d.get(BASE + "/").json()["checks"]["db"]
                self.assertGreaterEqual(c["consecutive_successes"], 2)
                d.wait_logged('"status pass -> fail')


class Startup(unittest.TestCase):
    def test_startup_waits_for_first_results(self):
        with Daemon(checks=[check("slow", timeout="2s", interval="5s",
                                  options={"mode": "sleep",
                                           "sleep_ms": "700"})],
                    wait_started=False) as d:
            r = d.get(BASE + "/startup")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()["pending"], ["slow"])
            self.assertEqual(d.get(BASE + "/ready").status, 503)
            self.assertEqual(d.get(BASE + "/live").status, 200)
            self.assertEqual(d.check_status("slow"), "pending")
            d.wait_for(lambda: d.get(BASE + "/startup").status == 200,
                       what="startup")
            self.assertEqual(d.get(BASE + "/ready").status, 200)

    def test_too_many_excludes(self):
        with Daemon(checks=[check("db")]) as d:
            q = "&".join(f"exclude=c{i}" for i in range(65))
            r = d.get(BASE + "/ready?" + q)
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json()["code"], 400)
            q = "&".join(f"exclude=c{i}" for i in range(64))
            self.assertEqual(d.get(BASE + "/ready?" + q).status, 200)

    def test_large_headers_answered(self):
        with Daemon(checks=[check("db")]) as d:
            r = d.get(BASE + "/ready", {"Authorization": "Bearer " + "x" * 3000,
                                        "X-Forwarded-Client-Cert": "y" * 2000})
            self.assertEqual(r.status, 200)

    def test_ipv6_wildcard_serves_ipv4_too(self):
        port = free_port()
        text = config_text([check("db")], port).replace(
            f'listen: "127.0.0.1:{port}"', f'listen: "[::]:{port}"')
        with Daemon(config=text, port=port) as d:
            self.assertEqual(d.get(BASE + "/ready").status, 200)

    def test_one_daemon_per_port(self):
        """A second healthd on a port one already serves is refused: probes
        are never answered by whichever copy the kernel picks."""
        with Daemon(checks=[check("db")]) as d:
            r = run(["-c", d.path])
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(f"cannot listen on port {d.port}: Address already "
                          "in use", r.stderr)
            for _ in range(20):
                self.assertEqual(d.get(BASE + "/ready").status, 200)

    def test_metrics_off(self):
        with Daemon(checks=[], extra="metrics: false\n") as d:
            self.assertEqual(d.get("/metrics").status, 404)

    def test_no_checks_is_healthy(self):
        with Daemon(checks=[]) as d:
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            self.assertEqual(d.get(BASE + "/").json()["status"], "healthy")


class Timeouts(unittest.TestCase):
    def test_timeout_published_at_deadline(self):
        """A run past its deadline is a failure at the deadline (±50 ms)."""
        with Daemon(checks=[check("slow", interval="10s", timeout="300ms",
                                  failure_threshold=1,
                                  options={"mode": "sleep",
                                           "sleep_ms": "3000"})],
                    wait_started=False) as d:
            t0 = time.monotonic()  # the first round starts at once
            d.wait_for(lambda: d.get(BASE + "/checks/slow").status == 503 and
                       d.check_status("slow") == "fail",
                       interval=0.002, what="timeout")
            elapsed = (time.monotonic() - t0) * 1000
            self.assertGreaterEqual(elapsed, 300 - 50)
            self.assertLessEqual(elapsed, 300 + 50)
            c = d.get(BASE + "/").json()["checks"]["slow"]
            self.assertEqual(c["message"], "timed out after 300 ms")

    def test_timeout_names_the_target(self):
        """The core's own timeout message names what the plugin said in
        create() it talks to, in a plugin host and inline."""
        for isolation in ("process", "inline"):
            with Daemon(checks=[check("db", interval="1s", timeout="200ms",
                                      isolation=isolation,
                                      options={"mode": "hang",
                                               "target": "db.internal:5432/app"}),
                                check("plain", interval="1s", timeout="200ms",
                                      isolation=isolation,
                                      options={"mode": "hang"})],
                        extra="workers: 2\n") as d:
                body = d.get(BASE + "/").json()
                self.assertEqual(body["checks"]["db"]["message"],
                                 "testplug db.internal:5432/app: timed out "
                                 "after 200 ms", isolation)
                self.assertEqual(body["checks"]["plain"]["message"],
                                 "timed out after 200 ms", isolation)

    def test_hung_plugin_never_slows_probes(self):
        with Daemon(checks=[check("stuck", interval="1s", timeout="200ms",
                                  options={"mode": "hang"}),
                            check("fine", critical=False)],
                    extra="workers: 2\n") as d:
            worst = 0.0
            for path in ("/live",) * 1000:
                t = time.monotonic()
                self.assertEqual(d.get(BASE + path).status, 200)
                worst = max(worst, time.monotonic() - t)
            print(f"\nworst /live latency over 1000 probes with a hung "
                  f"plugin: {worst * 1000:.2f} ms")
            self.assertLess(worst, 0.1)
            self.assertEqual(d.get(BASE + "/ready").status, 503)
            body = d.get(BASE + "/").json()
            self.assertEqual(body["checks"]["stuck"]["message"],
                             "timed out after 200 ms")
            # The other check keeps running on the other worker (its
            # plugin's own run count starts again with each plugin host
            # that replaces the hung one: its last run tells).
            last = body["checks"]["fine"]["last_run"]
            d.wait_for(lambda: d.get(BASE + "/").json()["checks"]["fine"]
                       ["last_run"] > last, what="more runs")


class Starvation(unittest.TestCase):
    def test_live_fails_when_every_worker_is_stuck(self):
        """A wedged daemon (every worker inside an inline plugin that never
        returns, 60 s past its deadline) fails /live, so Kubernetes
        restarts it; until then /live stays 200 while /ready reports the
        failure.  (A plugin host would have been killed: test_isolation.)"""
        with Daemon(checks=[check("stuck", interval="1s", timeout="200ms",
                                  isolation="inline",
                                  options={"mode": "hang"})],
                    extra="workers: 1\n") as d:
            t0 = time.monotonic()
            self.assertEqual(d.get(BASE + "/ready").status, 503)
            while time.monotonic() - t0 < 55:
                self.assertEqual(d.get(BASE + "/live").status, 200)
                time.sleep(0.5)
            r = d.wait_for(lambda: (lambda r: r if r.status == 503 else None)(
                d.get(BASE + "/live")), timeout=20, interval=0.2,
                what="/live to fail")
            # Stuck 60 s past the 200 ms deadline, then 5 s without progress.
            self.assertGreaterEqual(time.monotonic() - t0, 60)
            self.assertEqual(r.json()["status"], "stalled")


class Details(unittest.TestCase):
    def test_hidden(self):
        with Daemon(checks=[check("db", options={"message": "m1"})],
                    extra="details: hidden\n") as d:
            c = d.get(BASE + "/").json()["checks"]["db"]
            self.assertNotIn("message", c)
            self.assertNotIn("details", c)
            self.assertEqual(c["status"], "pass")
            self.assertNotIn("message", d.get(BASE + "/checks/db").json())

    def test_token(self):
        with tempfile.TemporaryDirectory() as tmp:
            token = os.path.join(tmp, "token")
            write(token, "s3cret-token\n")
            with Daemon(checks=[check("db", options={"message": "m1"})],
                        extra=f"details: token\ndetails_token_file: {token}\n"
                        ) as d:
                url = BASE + "/"
                self.assertNotIn("message", d.get(url).json()["checks"]["db"])
                for bad in ("Bearer wrong", "Bearer s3cret-toke",
                            "Bearer s3cret-token2", "Basic s3cret-token"):
                    c = d.get(url, {"Authorization": bad}).json()
                    self.assertNotIn("message", c["checks"]["db"], bad)
                c = d.get(url, {"Authorization": "Bearer s3cret-token"}).json()
                self.assertEqual(c["checks"]["db"]["message"], "m1")
                c = d.get(BASE + "/checks/db",
                          {"Authorization": "Bearer s3cret-token"}).json()
                self.assertEqual(c["message"], "m1")
                self.assertNotIn("s3cret", d.logs())


class Drain(unittest.TestCase):
    def test_sigterm_drains_then_exits_zero(self):
        with Daemon(checks=[check("db")],
                    extra="") as d:
            d.signal(signal.SIGTERM)
            t0 = time.monotonic()
            r = d.wait_for(lambda: (lambda r: r if r.status == 503 else None)(
                d.get(BASE + "/ready")), interval=0.005, what="503")
            self.assertLess(time.monotonic() - t0, 0.5)
            self.assertEqual(r.json()["reason"], "draining")
            self.assertEqual(d.get(BASE + "/live").status, 200)
            self.assertEqual(d.get(BASE + "/startup").status, 200)
            body = d.get(BASE + "/").json()
            self.assertIs(body["draining"], True)
            self.assertIs(body["ready"], False)
            rc = d.proc.wait(5)
            elapsed = time.monotonic() - t0
            self.assertEqual(rc, 0, d.logs())
            self.assertGreaterEqual(elapsed, 0.9)  # drain: 1s
            self.assertLess(elapsed, 3)

    def test_second_signal_exits_at_once(self):
        with Daemon(checks=[check("db")], extra="") as d:
            with open(d.path) as f:
                text = f.read()
            self.assertIn("drain: 1s", text)
            d.signal(signal.SIGTERM)
            d.wait_for(lambda: d.get(BASE + "/ready").status == 503,
                       what="draining")
            t0 = time.monotonic()
            d.signal(signal.SIGINT)
            rc = d.proc.wait(5)
            self.assertLess(time.monotonic() - t0, 0.5)
            self.assertNotEqual(rc, 0)

    def test_drain_with_hung_plugin_still_exits(self):
        with Daemon(checks=[check("stuck", timeout="300ms",
                                  options={"mode": "hang"})],
                    wait_started=True) as d:
            d.signal(signal.SIGTERM)
            self.assertEqual(d.proc.wait(5), 0, d.logs())


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.tmp.name, "healthd.yaml")

    def tearDown(self):
        self.tmp.cleanup()

    def conf(self, checks, extra=""):
        write(self.path, config_text(checks, free_port(), extra))
        return self.path

    def test_version_and_help(self):
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("0.1.0", r.stdout)
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check-config", r.stdout)
        self.assertEqual(run(["--bogus"]).returncode, 2)

    def test_plugins_lists_each_plugin_with_its_options(self):
        r = run(["plugins", PLUGIN_DIR])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = r.stdout
        self.assertTrue(out.startswith(PLUGIN_DIR + ":\n"), out)
        for name in ("file", "http", "postgres", "redis"):
            self.assertRegex(out, rf"\n  {name} — \S", out)
        self.assertRegex(out, r"\n      tls_verify +verify .* \[default: true\]\n")
        self.assertRegex(out, r"\n      path +the file to check \[required\]\n")
        # A file the loader refuses is listed with why, and the exit says so.
        r = run(["plugins", TEST_PLUGIN_DIR, os.path.join(self.tmp.name, "none")])
        self.assertEqual(r.returncode, 1)
        self.assertIn("  testplug — ", r.stdout)
        self.assertRegex(r.stdout, r"  bad_major\.so: refused: .*ABI version 2\.\d+ "
                                   r"is not supported")
        self.assertIn("none:\n  cannot read it: No such file or directory", r.stdout)

    def test_check_config(self):
        r = run(["-c", self.conf([check("db")]), "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(["-c", self.conf([check("db", timeout="2x")]),
                 "--check-config"])
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stderr, r"healthd\.yaml:\d+:\d+: .*timeout")
        r = run(["-c", self.conf([check("db", plugin="nosuch")]),
                 "--check-config"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("nosuch", r.stderr)
        r = run(["-c", self.conf([check("db", options={"mdoe": "x"})]),
                 "--check-config"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("mdoe", r.stderr)
        r = run(["-c", self.conf([check("db", options={"mode": "bogus"})]),
                 "--check-config"])
        self.assertEqual(r.returncode, 2)
        r = run(["-c", os.path.join(self.tmp.name, "missing.yaml"),
                 "--check-config"])
        self.assertEqual(r.returncode, 2)

    def test_check_config_reports_every_error(self):
        """Every error it can find, in the file's order, exit 2; --json
        says the same for CI annotations."""
        path = self.conf([
            check("a", timeout="2x"),
            check("b", plugin="nosuch"),
            check("c", options={"mdoe": "x"}),
            check("a"),
            check("fine")], extra="workers: 0\nlsten: 1\n")
        r = run(["-c", path, "--check-config"])
        self.assertEqual(r.returncode, 2)
        lines = r.stderr.strip().splitlines()
        wanted = [r'workers: "0" is out of range',
                  r'unknown key "lsten"',
                  r'timeout: "2x" is not a duration',
                  r'check "b": plugin "nosuch": no nosuch\.so in ',
                  r'check "c": option "mdoe" is not known to plugin testplug',
                  r'check "a" is defined twice \(first at line \d+\)']
        self.assertEqual(len(lines), len(wanted), r.stderr)
        places = []
        for line, want in zip(sorted(lines, key=lambda l: [
                int(x) for x in l[len(path) + 1:].split(":")[:2]]), wanted):
            self.assertRegex(line, re.escape(path) + r":\d+:\d+: " + want)
        for line in lines:
            places.append([int(x) for x in
                           line[len(path) + 1:].split(":")[:2]])
        self.assertEqual(places, sorted(places))  # the file's order
        self.assertNotIn("valid", r.stdout)

        r = run(["-c", path, "--check-config", "--json"])
        self.assertEqual(r.returncode, 2)
        out = json.loads(r.stdout)
        self.assertEqual(out["config"], path)
        self.assertIs(out["valid"], False)
        self.assertEqual(len(out["errors"]), len(wanted))
        for e, line in zip(out["errors"], lines):
            self.assertEqual(e["file"], path)
            self.assertEqual(f"{path}:{e['line']}:{e['column']}: "
                             f"{e['message']}", line)
        r = run(["-c", self.conf([check("db")]), "--check-config", "--json"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout),
                         {"config": path, "valid": True, "errors": []})
        # Not placed in the file: line and column are null.
        r = run(["-c", path, "--check-config", "--json"],
                env={"HEALTHD_LOG_LEVEL": "loud"})
        e = json.loads(r.stdout)["errors"][0]
        self.assertEqual((e["line"], e["column"]), (None, None))
        self.assertIn("HEALTHD_LOG_LEVEL", e["message"])

    def test_check_config_map_path(self):
        """A config written for a container's mounts, checked where they
        do not exist: --map-path FROM=TO reads FROM's files from TO."""
        local = os.path.join(self.tmp.name, "mounts")
        os.makedirs(os.path.join(local, "secrets"))
        write(os.path.join(local, "secrets", "msg"), "from the Secret\n")
        text = re.sub(r"(?m)^plugin_dirs: .*$",
                      "plugin_dirs: [/usr/lib/healthd/plugins]",
                      config_text([check("db", options={
                          "message": "${file:/etc/healthd-secrets/msg}"})],
                          free_port()))
        path = self.path
        write(path, text)
        r = run(["-c", path, "--check-config"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read /etc/healthd-secrets/msg", r.stderr)
        maps = ["--map-path",
                "/etc/healthd-secrets=" + os.path.join(local, "secrets"),
                "--map-path", "/usr/lib/healthd/plugins/=" + TEST_PLUGIN_DIR]
        r = run(["-c", path, "--check-config"] + maps)
        self.assertEqual(r.returncode, 0, r.stderr)
        os.remove(os.path.join(local, "secrets", "msg"))
        r = run(["-c", path, "--check-config"] + maps)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read /etc/healthd-secrets/msg (mapped to "
                      + os.path.join(local, "secrets", "msg") + ")", r.stderr)
        for bad in (["--map-path", "relative=/x"], ["--map-path", "/x"]):
            r = run(["-c", path, "--check-config"] + bad)
            self.assertEqual(r.returncode, 2)
            self.assertIn("expected FROM=TO", r.stderr)
        # Only a validation maps paths: the daemon reads the real ones.
        r = run(["-c", path, "--once"] + maps)
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)

    def test_config_from_environment(self):
        path = self.conf([check("db")])
        r = run(["--check-config"], env={"HEALTHD_CONFIG": path})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(path, r.stdout)

    def test_once_exit_codes(self):
        cases = [([check("a")], 0, "healthy"),
                 ([check("a"), check("b", critical=False,
                                     options={"mode": "fail"})], 1, "degraded"),
                 ([check("a", options={"mode": "fail"})], 2, "unhealthy"),
                 ([check("a", timeout="200ms",
                         options={"mode": "hang"})], 2, "unhealthy")]
        for checks, code, verdict in cases:
            t0 = time.monotonic()
            r = run(["-c", self.conf(checks), "--once", "--json"])
            self.assertEqual(r.returncode, code, r.stderr)
            self.assertEqual(json.loads(r.stdout)["status"], verdict)
            self.assertLess(time.monotonic() - t0, 5)
            r = run(["-c", self.path, "--once"])
            self.assertEqual(r.returncode, code)
            self.assertIn("verdict: " + verdict, r.stdout)
        r = run(["-c", self.conf([check("a", plugin="nosuch")]), "--once"])
        self.assertEqual(r.returncode, 3)

    def test_secrets_never_printed(self):
        secret = "hunter2-very-secret"
        env = {"CHECK_SECRET": secret}
        checks = [check("db", options={"secret": "${CHECK_SECRET}",
                                       "mode": "fail"})]
        path = self.conf(checks)
        for args in (["--once", "--json"], ["--once"], ["--check-config"]):
            r = run(["-c", path] + args, env=env)
            self.assertNotIn(secret, r.stdout + r.stderr, args)
        # An option the plugin does not know, holding the secret.
        path = self.conf([check("db", options={"secrett": "${CHECK_SECRET}"})])
        r = run(["-c", path, "--check-config"], env=env)
        self.assertEqual(r.returncode, 2)
        self.assertNotIn(secret, r.stdout + r.stderr)
        # A secret where a duration belongs.
        write(self.path, config_text([check("db", timeout="${CHECK_SECRET}")],
                                     free_port()))
        r = run(["-c", self.path, "--check-config"], env=env)
        self.assertEqual(r.returncode, 2)
        self.assertNotIn(secret, r.stdout + r.stderr)
        with Daemon(checks=checks, env=env) as d:
            for path in ("/", "/ready", "/checks/db"):
                self.assertNotIn(secret, d.get(BASE + path).raw.decode())
            self.assertNotIn(secret, d.logs())
        # A plugin that echoes an expanded value: the core redacts it.
        echo = [check("db", options={"message": "${CHECK_SECRET}",
                                     "mode": "fail"})]
        with Daemon(checks=echo, env=env) as d:
            c = d.get(BASE + "/").json()["checks"]["db"]
            self.assertEqual(c["message"], "***")
            self.assertNotIn(secret, d.logs())
            self.assertNotIn(secret, d.get("/metrics").raw.decode())

    def test_env_overrides(self):
        port = free_port()
        path = self.conf([check("db")])
        with open(path) as f:
            text = f.read()
        with Daemon(config=text, port=port,
                    env={"HEALTHD_LISTEN": f"127.0.0.1:{port}",
                         "HEALTHD_LOG_LEVEL": "error"}) as d:
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            time.sleep(0.3)
            self.assertNotIn('"level":"info"', d.logs())


if __name__ == "__main__":
    unittest.main()
