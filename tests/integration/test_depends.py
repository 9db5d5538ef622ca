"""depends_on against the real daemon: a check is blocked, not run, while a
dependency does not pass; bodies, metrics and logs name the root causes
apart from their consequences; a check runs at once when its dependencies
pass again; cycles are config errors at load and on reload."""

import os
import re
import signal
import time
import unittest

from harness import BASE, Daemon, check, config_text, run

SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error")


def controlled(d, name, critical=True, interval="300ms", timeout="200ms",
               deps=None, **extra):
    """A testplug check whose outcome the file d/NAME.ctl decides."""
    if deps is not None:
        extra["depends_on"] = "[" + ", ".join(deps) + "]"
    return check(name, critical=critical, interval=interval, timeout=timeout,
                 options={"control": os.path.join(d, name + ".ctl")},
                 failure_threshold=1, **extra)


def set_outcome(d, name, outcome):
    with open(os.path.join(d, name + ".ctl"), "w") as f:
        f.write(outcome + "\n")


def runs_of(d, name):
    """healthd_check_runs_total of a check."""
    text = d.get("/metrics").raw.decode()
    m = re.search(r'^healthd_check_runs_total\{check="%s"[^}]*\} (\d+)$'
                  % re.escape(name), text, re.M)
    return int(m.group(1))


class Base(unittest.TestCase):
    def daemon(self, checks_of, **kw):
        """A Daemon whose checks are made by checks_of(control_dir)."""
        d = Daemon(config="", **kw)
        # The config names the daemon's own temp dir: write it now.
        with open(d.path, "w") as f:
            f.write(config_text(checks_of(d.dir.name), d.port))
        self.addCleanup(d.dir.cleanup)
        return d

    def rewrite(self, d, checks):
        """Replace the config and reload; wait for the new generation."""
        gen = d.get(BASE + "/").json()["config"]["generation"]
        tmp = d.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(config_text(checks, d.port))
        os.rename(tmp, d.path)
        d.signal(signal.SIGHUP)
        return d.wait_for(
            lambda: (d.get(BASE + "/").json()["config"]["generation"] > gen
                     or d.get(BASE + "/").json()["config"]["last_reload"]
                     == "error"), what="a reload")

    def stop_clean(self, d):
        d.stop(signal.SIGTERM)
        self.assertEqual(d.proc.returncode, 0, d.logs())
        for r in SANITIZER_REPORTS:
            self.assertNotIn(r, d.logs())


class Blocking(Base):
    def test_chain_and_diamond(self):
        """dns <- database, cache <- api: dns failing blocks the three;
        /ready names dns alone as failing, the rest as blocked; blocked
        checks do not run, and run at once when dns passes again."""
        def checks(dir):
            return [controlled(dir, "dns"),
                    controlled(dir, "database", interval="30s", deps=["dns"]),
                    controlled(dir, "cache", critical=False, interval="30s",
                               deps=["dns"]),
                    controlled(dir, "api", interval="30s",
                               deps=["database", "cache"])]
        d = self.daemon(checks)
        with d:
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            runs = {n: runs_of(d, n) for n in ("database", "cache", "api")}

            set_outcome(d.dir.name, "dns", "fail")
            d.wait_for(lambda: d.get(BASE + "/ready").status == 503,
                       what="/ready 503")
            d.wait_for(lambda: d.check_status("api") == "blocked",
                       what="api blocked")
            ready = d.get(BASE + "/ready").json()
            self.assertEqual(ready["failing"], ["dns"])
            self.assertEqual(ready["blocked"], ["api", "database"])

            body = d.get(BASE + "/").json()
            self.assertEqual(body["status"], "unhealthy")
            checks_ = body["checks"]
            self.assertEqual(checks_["database"]["status"], "blocked")
            self.assertEqual(checks_["database"]["message"],
                             "blocked: dns is fail")
            self.assertEqual(checks_["cache"]["message"],
                             "blocked: dns is fail")
            # The first dependency in its list that does not pass.
            self.assertEqual(checks_["api"]["message"],
                             "blocked: database is blocked")
            self.assertEqual(d.get(BASE + "/checks/database").status, 503)

            ietf = d.get(BASE + "/", {"Accept": "application/health+json"}).json()
            self.assertEqual(ietf["checks"]["cache:status"][0]["status"], "warn")
            self.assertEqual(ietf["checks"]["api:status"][0]["status"], "fail")
            self.assertEqual(ietf["checks"]["api:status"][0]["output"],
                             "blocked: database is blocked")

            metrics = d.get("/metrics").raw.decode()
            self.assertIn('healthd_check_status{check="cache",plugin="testplug",'
                          'critical="false",status="blocked"} 1', metrics)
            self.assertIn('healthd_check_status{check="dns",plugin="testplug",'
                          'critical="true",status="blocked"} 0', metrics)

            # Not run while blocked (dns runs every 300 ms meanwhile).
            time.sleep(1)
            for n in runs:
                self.assertEqual(runs_of(d, n), runs[n], n)

            # One warning, the root cause's; the consequences at debug.
            warnings = [l for l in d.logs().splitlines()
                        if '"level":"warn"' in l]
            self.assertEqual(len(warnings), 1, warnings)
            self.assertIn('"check":"dns"', warnings[0])

            # dns passes: the others run at once, not 30 s later.
            set_outcome(d.dir.name, "dns", "pass")
            t0 = time.monotonic()
            d.wait_for(lambda: d.get(BASE + "/ready").status == 200,
                       what="/ready 200 again")
            self.assertLess(time.monotonic() - t0, 5)
            for n in runs:
                self.assertEqual(runs_of(d, n), runs[n] + 1, n)
            body = d.get(BASE + "/").json()
            self.assertEqual(body["status"], "healthy")
            self.assertEqual(body["checks"]["api"]["message"], "testplug: pass")
            history = d.get(BASE + "/checks/api/history").json()
            self.assertEqual([(c["from"], c["to"]) for c in history["changes"]][-2:],
                             [("pass", "blocked"), ("blocked", "pass")])
            self.stop_clean(d)

    def test_informational_parent_critical_child(self):
        """An informational dependency that fails blocks a critical check:
        not ready, and nothing but the blocked check to name."""
        def checks(dir):
            return [controlled(dir, "cache", critical=False),
                    controlled(dir, "session", deps=["cache"])]
        d = self.daemon(checks)
        with d:
            set_outcome(d.dir.name, "cache", "fail")
            d.wait_for(lambda: d.get(BASE + "/ready").status == 503,
                       what="/ready 503")
            ready = d.get(BASE + "/ready").json()
            self.assertEqual(ready["failing"], [])
            self.assertEqual(ready["blocked"], ["session"])
            self.assertEqual(d.get(BASE + "/").json()["status"], "unhealthy")
            self.stop_clean(d)

    def test_critical_parent_informational_child(self):
        """A critical dependency failing, an informational check blocked:
        the verdict is the parent's, only the parent is listed."""
        def checks(dir):
            return [controlled(dir, "database"),
                    controlled(dir, "report", critical=False,
                               deps=["database"])]
        d = self.daemon(checks)
        with d:
            set_outcome(d.dir.name, "database", "fail")
            d.wait_for(lambda: d.check_status("report") == "blocked",
                       what="report blocked")
            ready = d.get(BASE + "/ready").json()
            self.assertEqual(ready["failing"], ["database"])
            self.assertEqual(ready["blocked"], [])
            # Alone, a blocked informational check only degrades.
            set_outcome(d.dir.name, "database", "warn")
            d.wait_for(lambda: d.check_status("report") == "pass",
                       what="report passing")
            self.assertEqual(d.get(BASE + "/").json()["status"], "degraded")
            self.stop_clean(d)

    def test_startup(self):
        """A check waits for its dependency's first result, blocked; a
        blocked check counts as a first result for /startup when its
        dependency fails, not while that one is pending."""
        def checks(dir):
            return [controlled(dir, "dns", interval="5s", timeout="3s"),
                    controlled(dir, "database", interval="5s",
                               deps=["dns"])]
        d = self.daemon(checks, wait_started=False)
        set_outcome(d.dir.name, "dns", "sleep 1000")
        with d:
            self.assertEqual(d.check_status("database"), "blocked")
            self.assertEqual(d.get(BASE + "/").json()["checks"]["database"]
                             ["message"], "blocked: dns is pending")
            startup = d.get(BASE + "/startup")
            self.assertEqual(startup.status, 503)
            self.assertEqual(startup.json()["pending"], ["dns"])
            d.wait_for(lambda: d.get(BASE + "/startup").status == 200,
                       what="started")
            self.assertEqual(d.check_status("database"), "pass")
            self.assertIn("started: every check has a first result", d.logs())
            self.stop_clean(d)

        def failing(dir):
            return [controlled(dir, "dns", interval="5s"),
                    controlled(dir, "database", interval="5s",
                               deps=["dns"])]
        d = self.daemon(failing, wait_started=False)
        set_outcome(d.dir.name, "dns", "fail")
        with d:
            d.wait_for(lambda: d.get(BASE + "/startup").status == 200,
                       what="started")
            self.assertEqual(d.check_status("database"), "blocked")
            self.assertEqual(d.get(BASE + "/ready").json()["blocked"],
                             ["database"])
            self.stop_clean(d)


class Reloads(Base):
    def test_reload_adds_and_removes_a_dependency(self):
        d = self.daemon(lambda dir: [controlled(dir, "a"), controlled(dir, "b")])
        dir = d.dir.name
        with d:
            set_outcome(dir, "b", "fail")
            d.wait_for(lambda: d.check_status("b") == "fail", what="b fails")
            self.assertEqual(d.check_status("a"), "pass")

            self.rewrite(d, [controlled(dir, "a", interval="30s", deps=["b"]),
                             controlled(dir, "b")])
            self.assertEqual(d.check_status("a"), "blocked")
            self.assertEqual(d.get(BASE + "/ready").json()["failing"], ["b"])

            # Removed again: a runs at once (its interval is 30 s).
            self.rewrite(d, [controlled(dir, "a", interval="30s"),
                             controlled(dir, "b")])
            d.wait_for(lambda: d.check_status("a") == "pass", timeout=3,
                       what="a runs at once")
            self.stop_clean(d)

    def test_cycle_refused_on_reload(self):
        d = self.daemon(lambda dir: [controlled(dir, "a"),
                                     controlled(dir, "b", deps=["a"])])
        dir = d.dir.name
        with d:
            self.rewrite(d, [controlled(dir, "a", deps=["b"]),
                             controlled(dir, "b", deps=["a"])])
            body = d.get(BASE + "/").json()
            self.assertEqual(body["config"]["last_reload"], "error")
            self.assertRegex(body["config"]["last_reload_error"],
                             r'healthd\.yaml:\d+:\d+: check "b": depends_on: '
                             r'a cycle: a -> b -> a$')
            self.assertEqual(body["config"]["generation"], 1)
            # The running config goes on: a passes, b waits for it.
            set_outcome(dir, "a", "fail")
            d.wait_for(lambda: d.check_status("b") == "blocked",
                       what="b blocked")
            self.stop_clean(d)

    def test_new_dependency_warming_does_not_count(self):
        """A reload adds dns and makes database depend on it: while dns has
        no result, database is blocked but, as dns, left out of /ready."""
        d = self.daemon(lambda dir: [controlled(dir, "database")])
        dir = d.dir.name
        with d:
            set_outcome(dir, "dns", "sleep 1500")
            self.rewrite(d, [controlled(dir, "dns", interval="5s",
                                        timeout="3s"),
                             controlled(dir, "database", deps=["dns"])])
            self.assertEqual(d.check_status("database"), "blocked")
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            d.wait_for(lambda: d.check_status("database") == "pass",
                       what="database runs after dns")
            self.stop_clean(d)


class Once(unittest.TestCase):
    def test_once_and_check_config(self):
        import tempfile
        with tempfile.TemporaryDirectory() as dir:
            path = os.path.join(dir, "healthd.yaml")
            set_outcome(dir, "dns", "fail")
            with open(path, "w") as f:
                f.write(config_text([controlled(dir, "dns"),
                                     controlled(dir, "database",
                                                deps=["dns"])], 1))
            r = run(["-c", path, "--once"])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^database\s+blocked\s+blocked: dns is fail$")
            set_outcome(dir, "dns", "pass")
            r = run(["-c", path, "--once"])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertRegex(r.stdout, r"(?m)^database\s+pass\s")

            with open(path, "w") as f:
                f.write(config_text([controlled(dir, "a", deps=["c"]),
                                     controlled(dir, "b", deps=["a"]),
                                     controlled(dir, "c", deps=["b", "x"])], 1))
            r = run(["-c", path, "--check-config"])
            self.assertEqual(r.returncode, 2)
            self.assertRegex(r.stderr, r'healthd\.yaml:\d+:\d+: check "c": '
                             r'depends_on: no check is named "x"')
            self.assertRegex(r.stderr, r'healthd\.yaml:\d+:\d+: check "b": '
                             r'depends_on: a cycle: a -> c -> b -> a')


if __name__ == "__main__":
    unittest.main()
