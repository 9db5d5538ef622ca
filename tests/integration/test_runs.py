"""Runs across reloads and shutdown: deadlines that hold whatever reloads
happen meanwhile, warming that survives an edit, results of replaced
definitions dropped, a run that returns at its deadline kept, and a stop
that neither dies of SIGHUP nor skips destroy().

Each test drives the real daemon with testplug (tests/plugins/testplug.c);
a control file changes what a running check does.
"""

import os
import re
import signal
import threading
import time
import unittest

from harness import BASE, Daemon, check, config_text

SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "ERROR: ThreadSanitizer", "WARNING: ThreadSanitizer",
                     "runtime error")


def checks_yaml(*checks):
    return "checks:\n" + "\n".join(checks) + "\n"


class Reloadable(Daemon):
    """A daemon whose checks a test rewrites and reloads with SIGHUP."""

    def rewrite(self, *checks):
        """Keep everything above `checks:`; replace the checks."""
        with open(self.path) as f:
            text = f.read()
        head = text[:text.index("checks:")]
        with open(self.path, "w") as f:
            f.write(head + checks_yaml(*checks))
        self.signal(signal.SIGHUP)

    def generation(self):
        return self.get(BASE + "/").json()["config"]["generation"]

    def wait_generation(self, n):
        self.wait_for(lambda: self.generation() >= n, what=f"generation {n}")

    def check_body(self, name):
        """/checks/NAME's body; {} while no such check is loaded."""
        r = self.get(BASE + "/checks/" + name)
        return r.json() if r.status != 404 else {}

    def assert_clean_exit(self, test):
        self.signal(signal.SIGTERM)
        test.assertEqual(self.proc.wait(30), 0, self.logs())
        logs = self.logs()
        for r in SANITIZER_REPORTS:
            test.assertNotIn(r, logs)


class DeadlinesAcrossReloads(unittest.TestCase):
    def setUp(self):
        self.ctl = None

    def db(self, message, **kw):
        return check("db", interval="2s", timeout="1s", failure_threshold=1,
                     options={"control": self.ctl, "message": message}, **kw)

    def test_reload_during_hung_run_records_timeout_at_deadline(self):
        """An edit reloaded while a run hangs does not hide the timeout: it
        is recorded at the original deadline, on the edited check."""
        with Reloadable(checks=[]) as d:
            self.ctl = os.path.join(d.dir.name, "ctl")
            with open(self.ctl, "w") as f:
                f.write("pass\n")
            d.rewrite(self.db("v1"))
            d.wait_for(lambda: d.check_body("db").get("status") == "pass",
                       what="first pass")
            # The second run comes 1 to 2 s after the first; from then on
            # runs are 2 s (±5 %) apart.
            first = d.check_body("db")["last_run"]
            d.wait_for(lambda: d.check_body("db")["last_run"] != first,
                       timeout=5, interval=0.005, what="second run")
            t0 = time.monotonic()  # the next run starts 2 s (±5 %) later
            with open(self.ctl, "w") as f:
                f.write("hang\n")
            time.sleep(2.4)  # that run hangs; its deadline is at ~3.1 s
            d.rewrite(self.db("v2"))
            d.wait_generation(3)
            body = d.wait_for(
                lambda: (lambda b: b if b.get("status") == "fail" else None)(
                    d.check_body("db")),
                timeout=5, interval=0.005, what="the timeout")
            elapsed = time.monotonic() - t0
            self.assertLessEqual(elapsed, 2.1 + 1.0 + 0.2, d.logs())
            self.assertEqual(body["message"], "timed out after 1000 ms")
            self.assertEqual(d.get(BASE + "/ready").status, 503)
            # More edits while it still hangs keep it failed.
            d.rewrite(self.db("v3"))
            d.wait_generation(4)
            time.sleep(0.5)
            self.assertEqual(d.check_body("db")["status"], "fail")
            with open(self.ctl, "w") as f:
                f.write("pass\n")

    def test_removed_hung_check_added_back_does_not_start_a_second_run(self):
        """Two workers: one holds db's hung run.  Removing db and adding it
        back must not hang the second worker, so `other` keeps running; the
        re-added db reports the hung run's timeout."""
        with Reloadable(checks=[], extra="workers: 2\n") as d:
            self.ctl = os.path.join(d.dir.name, "ctl")
            with open(self.ctl, "w") as f:
                f.write("hang\n")
            other = check("other", interval="200ms", timeout="150ms")
            d.rewrite(self.db("v1"), other)
            d.wait_for(lambda: d.check_body("db").get("status") == "fail",
                       timeout=5, what="db's first run to time out")
            d.rewrite(other)           # remove db
            d.wait_generation(3)
            d.rewrite(self.db("v1"), other)  # add back
            d.wait_generation(4)
            seen = set()
            for _ in range(15):
                body = d.check_body("other")
                self.assertEqual(body["status"], "pass", d.logs())
                seen.add(body["last_run"])
                time.sleep(0.1)
            self.assertGreater(len(seen), 4, d.logs())
            db = d.wait_for(
                lambda: (lambda b: b if b.get("status") == "fail" else None)(
                    d.check_body("db")),
                timeout=3, what="the re-added db to report the hung run")
            self.assertEqual(db["message"], "timed out after 1000 ms")
            with open(self.ctl, "w") as f:
                f.write("pass\n")

    def test_edit_of_a_warming_check_keeps_it_warming(self):
        """A check added by a reload is left out of /ready until its first
        result; editing it before that result must not flap /ready."""
        app = check("app")
        with Reloadable(checks=[app]) as d:
            def newdep(msg):
                return check("newdep", interval="10s", timeout="3s",
                             options={"mode": "sleep", "sleep_ms": "2000",
                                      "message": msg})
            d.rewrite(app, newdep("v1"))
            d.wait_generation(2)
            time.sleep(0.3)
            d.rewrite(app, newdep("v2"))
            d.wait_generation(3)
            codes = set()
            end = time.monotonic() + 3.5
            while time.monotonic() < end:
                codes.add(d.get(BASE + "/ready").status)
                time.sleep(0.02)
            self.assertEqual(codes, {200}, d.logs())
            d.wait_for(lambda: d.check_body("newdep").get("message") == "v2",
                       what="the edited check's first result")

    def test_results_of_replaced_definitions_are_dropped(self):
        """The run of a definition a reload replaced returns after the
        reload: its result is neither recorded nor logged as the check's."""
        with Reloadable(checks=[]) as d:
            def slow(msg):
                return check("slow", critical=False, interval="10s",
                             timeout="3s",
                             options={"mode": "sleep", "sleep_ms": "1000",
                                      "message": msg})
            d.rewrite(slow("old-definition"))
            d.wait_generation(2)
            d.rewrite(slow("new-definition"))
            d.wait_generation(3)
            d.wait_for(lambda: d.check_body("slow").get("message") ==
                       "new-definition", timeout=5, what="the new result")
            logs = d.logs()
            self.assertNotIn("old-definition", logs)
            self.assertIn("run of a replaced definition returned", logs)
            d.assert_clean_exit(self)


class ReloadLog(unittest.TestCase):
    def test_reload_says_what_it_did_to_the_checks(self):
        keep = check("keep")
        with Reloadable(checks=[keep, check("edit", options={"message": "1"}),
                                check("gone")]) as d:
            d.rewrite(keep, check("edit", options={"message": "2"}),
                      check("new1"), check("new2"))
            d.wait_for(lambda: "config generation 2: 4 checks (added: new1, "
                       "new2; changed: edit; removed: gone); files changed: "
                       + d.path in d.logs(), what="the reload's summary")
            d.signal(signal.SIGHUP)
            d.wait_for(lambda: "config generation 3: 4 checks (no check "
                       "changed); no file changed" in d.logs(),
                       what="an empty summary")

    def test_reload_names_the_input_that_changed(self):
        """A Secret-only change is told apart from a config change."""
        with Reloadable(checks=[]) as d:
            secret = os.path.join(d.dir.name, "secret")
            with open(secret, "w") as f:
                f.write("one\n")
            d.rewrite(check("db", options={"message": "${file:%s}" % secret}))
            d.wait_generation(2)
            with open(secret, "w") as f:
                f.write("two\n")
            d.wait_for(lambda: "config generation 3: 1 check (changed: db); "
                       "files changed: " + secret + "\"" in d.logs(),
                       what="the secret named as what changed")


class DeadlineGrace(unittest.TestCase):
    def test_run_returning_at_its_deadline_keeps_its_own_result(self):
        """A plugin that gives up exactly at its deadline is recorded with
        its own message, not as a late run."""
        with Reloadable(checks=[check("edge", interval="400ms", timeout="300ms",
                                  options={"mode": "deadline"})],
                    wait_started=False) as d:
            d.wait_for(lambda: (d.check_body("edge").get("details") or {})
                       .get("runs", 0) >= 4, timeout=10, what="four runs")
            body = d.get(BASE + "/checks/edge").json()
            self.assertEqual(body["message"],
                             "testplug: no answer by the deadline", d.logs())
            self.assertEqual(body["details"]["mode"], "deadline")
            self.assertNotIn("late run returned", d.logs())

    def test_stop_waits_for_a_run_that_returns_at_its_deadline(self):
        """At shutdown a run in flight gets until its deadline and the
        grace: it returns, its instance is destroyed, nothing is left."""
        d = Daemon(wait_started=False, checks=[])
        marker = os.path.join(d.dir.name, "destroyed")
        with open(d.path, "w") as f:
            f.write(config_text([check(
                "edge", interval="5s", timeout="2s",
                options={"mode": "deadline", "destroy_file": marker})],
                d.port))
        with d:
            time.sleep(0.3)            # the first run is in flight
            d.signal(signal.SIGTERM)   # drain 1 s, then stop at ~1.3 s
            self.assertEqual(d.proc.wait(10), 0, d.logs())
            self.assertNotIn("still running past its deadline", d.logs())
            with open(marker) as f:
                self.assertEqual(f.read(), "destroyed after 1 runs\n")


class StopPhase(unittest.TestCase):
    def test_sighup_while_stopping_is_ignored(self):
        """After the drain the daemon waits for runs in flight; a SIGHUP
        then (a config-reloader sidecar) must not end it with 129."""
        with Daemon(checks=[check("slow", interval="10s", timeout="4s",
                                  options={"mode": "sleep",
                                           "sleep_ms": "3000"})],
                    wait_started=False) as d:
            time.sleep(0.2)
            d.signal(signal.SIGTERM)   # drain 1 s, then wait for "slow"
            time.sleep(0.5)
            d.signal(signal.SIGHUP)    # while draining: no reload
            time.sleep(1.0)
            d.signal(signal.SIGHUP)    # while stopping
            self.assertEqual(d.proc.wait(10), 0, d.logs())
            self.assertIn("SIGHUP while draining: not reloading", d.logs())
            self.assertNotIn('"msg":"reloading ', d.logs())


class Churn(unittest.TestCase):
    def test_reloads_hung_runs_probes_and_sigterm(self):
        """Reloads that edit, remove and add back checks (some hung, some
        slow, some fast) under constant probes, then SIGTERM: a clean exit
        and no sanitizer report.  Run under ASan, and under TSan in CI."""
        fast = check("fast", interval="100ms", timeout="80ms")
        hung = check("hung", interval="300ms", timeout="200ms",
                     options={"mode": "hang"})
        edge = check("edge", critical=False, interval="150ms",
                     timeout="100ms", options={"mode": "deadline"})

        def slow(msg):
            return check("slow", critical=False, interval="200ms",
                         timeout="150ms",
                         options={"mode": "sleep", "sleep_ms": "120",
                                  "message": msg})
        sets = [(fast, hung, edge, slow("a")), (fast, slow("b")),
                (fast, hung, slow("c")), (edge, hung), (fast, hung, edge)]
        stop = threading.Event()
        errors = []
        with Reloadable(checks=[fast], extra="workers: 3\n") as d:
            def probe():
                paths = ("/live", "/ready", "/", "/checks/fast",
                         "/checks/hung")
                i = 0
                while not stop.is_set():
                    try:
                        r = d.get(BASE + paths[i % len(paths)])
                        if r.status >= 500 and r.status != 503:
                            errors.append(r.status)
                    except OSError as e:
                        errors.append(repr(e))
                    i += 1
            threads = [threading.Thread(target=probe) for _ in range(2)]
            for t in threads:
                t.start()
            try:
                for i in range(60):
                    d.rewrite(*sets[i % len(sets)])
                    time.sleep(0.05 + 0.1 * (i % 3))
                self.assertEqual(d.get(BASE + "/live").status, 200)
            finally:
                stop.set()
                for t in threads:
                    t.join()
            self.assertEqual(errors, [])
            self.assertGreater(d.generation(), 10)
            d.signal(signal.SIGTERM)
            self.assertEqual(d.proc.wait(30), 0, d.logs())
            logs = d.logs()
            for r in SANITIZER_REPORTS:
                self.assertNotIn(r, logs)
            self.assertEqual(re.findall(r"reload failed.*", logs), [])


if __name__ == "__main__":
    unittest.main()
