"""A real Prometheus scrapes healthd, which checks a real Redis.

Debian's Prometheus runs on 127.0.0.1 on a free port (config and TSDB in a
temp dir, stopped by its PID), scraping healthd every second and evaluating
the alert rules of k8s/monitoring/prometheusrule.yaml.  healthd runs a
critical `cache` check (redis plugin) against a redis-server started here and
an informational `marker` check (file plugin).  Through Prometheus's HTTP API:
before, everything passes and the duration histogram grows; after Redis is
killed, the pod is unready, `cache` fails, its transitions and failures are
counted and the alerts are pending.  `promtool check metrics` finds nothing
to lint in healthd's /metrics, before and after.
"""

import math
import os
import signal
import tempfile
import time
import unittest

import prom
from harness import Daemon, check
from servers import Redis

REDIS_PW = "prom-Redis-pw-2718"
# What the operator's ServiceMonitor would add, so the alerts' annotations
# render as in a cluster.
TARGET_LABELS = {"namespace": "example-service", "pod": "healthd-test"}
BUCKETS = ["0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
           "0.5", "1", "2.5", "5", "10", "+Inf"]


class PrometheusScrapesHealthd(unittest.TestCase):
    def setUp(self):
        prom.require_tools(self)
        tmp = tempfile.TemporaryDirectory(prefix="healthd-prom-")
        self.addCleanup(tmp.cleanup)
        self.marker = os.path.join(tmp.name, "marker")
        with open(self.marker, "w") as f:
            f.write("present\n")

        # Each cleanup is registered before its start: a start that times
        # out still stops what it started.
        self.redis = Redis(password=REDIS_PW)
        self.addCleanup(self.redis.close)
        self.redis.start()
        self.daemon = Daemon(checks=[
            check("cache", plugin="redis", critical=True, interval="1s",
                  timeout="500ms", failure_threshold=1,
                  options={"url": self.redis.url}),
            check("marker", plugin="file", critical=False, interval="1s",
                  timeout="500ms", options={"path": self.marker}),
        ])
        self.addCleanup(self.daemon.dir.cleanup)
        self.addCleanup(self.daemon.stop)
        self.daemon.start()
        self.prom = prom.Prometheus([f"127.0.0.1:{self.daemon.port}"],
                                    labels=TARGET_LABELS, rules=True)
        self.addCleanup(self.prom.close)
        self.prom.start()

    # Helpers ------------------------------------------------------------

    def wait_value(self, expr, want, timeout=30):
        """Poll until the single sample of expr equals want."""
        return self.prom.wait_for(lambda: self.prom.value(expr) == want or None,
                                  timeout, f"{expr} == {want}")

    def wait_above(self, expr, floor, timeout=30):
        """Poll until expr's single sample is above floor; returns it."""
        def above():
            v = self.prom.value(expr)
            return v if v is not None and v > floor else None
        return self.prom.wait_for(above, timeout, f"{expr} > {floor}")

    def active_alerts(self):
        return {(a["labels"]["alertname"], a["labels"].get("check")): a
                for a in self.prom.alerts()}

    def assert_metrics_lint_clean(self):
        r = self.daemon.get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/plain; version=0.0.4"),
                        r.headers["content-type"])
        p = prom.promtool("check", "metrics", stdin=r.raw.decode())
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""),
                         "promtool check metrics on healthd's /metrics")
        return r.raw.decode()

    # The test -----------------------------------------------------------

    def test_scrape_before_and_after_redis_dies(self):
        p, q = self.prom, "healthd_check_status"
        # BEFORE: scraped, ready, both checks pass.
        self.wait_value('up{job="healthd"}', 1)
        self.wait_value("healthd_up", 1)
        self.wait_value("healthd_ready", 1)
        self.wait_value('healthd_verdict{verdict="healthy"}', 1)
        self.wait_value(f'{q}{{check="cache",plugin="redis",critical="true",status="pass"}}', 1)
        self.wait_value(f'{q}{{check="marker",plugin="file",critical="false",status="pass"}}', 1)
        for status in ("pending", "warn", "fail"):
            self.assertEqual(p.value(f'{q}{{check="cache",status="{status}"}}'), 0, status)
        labels = {lb["status"] for lb, v in p.query(f'{q}{{check="cache"}}')}
        self.assertEqual(labels, {"pending", "pass", "warn", "fail", "blocked"})
        info = p.query("healthd_info")
        self.assertEqual(len(info), 1)
        self.assertEqual(info[0][0]["namespace"], "example-service")

        # The histogram: every bucket, consistent, and growing.
        buckets = p.query('healthd_check_duration_seconds_bucket{check="cache"}')
        self.assertEqual(sorted((lb["le"] for lb, _ in buckets), key=float),
                         BUCKETS)
        counts = [v for _, v in sorted(buckets, key=lambda b: float(b[0]["le"]))]
        self.assertEqual(counts, sorted(counts), "buckets are cumulative")
        self.wait_value('healthd_check_duration_seconds_bucket{check="cache",le="+Inf"}'
                        ' - ignoring(le) healthd_check_duration_seconds_count{check="cache"}', 0)
        n0 = self.wait_above('healthd_check_duration_seconds_count{check="cache"}', 0)
        self.wait_above('healthd_check_duration_seconds_count{check="cache"}', n0 + 1)
        self.wait_above('healthd_check_duration_seconds_sum{check="cache"}', 0)
        self.wait_above('rate(healthd_check_duration_seconds_count{check="cache"}[10s])', 0)
        median = self.wait_above('histogram_quantile(0.5, rate('
                                 'healthd_check_duration_seconds_bucket{check="cache"}[10s]))', 0)
        self.assertLess(median, 0.5, "a local Redis answers within the timeout")
        self.assertFalse(math.isnan(median))
        self.assertIsNotNone(p.value('healthd_check_last_duration_seconds{check="cache"}'))
        self.assertGreater(p.value('healthd_check_last_change_timestamp_seconds{check="cache"}'),
                           time.time() - 600)

        runs0 = self.wait_above('healthd_check_runs_total{check="cache"}', 0)
        fails0 = p.value('healthd_check_failures_total{check="cache"}')
        trans0 = self.wait_above('healthd_check_transitions_total{check="cache"}', 0)
        self.assertEqual(fails0, 0)
        self.assertEqual(p.value('healthd_check_failures_total{check="marker"}'), 0)
        marker_trans0 = p.value('healthd_check_transitions_total{check="marker"}')

        # The manifest's rules are loaded and evaluate cleanly; nothing active.
        groups = p.wait_for(lambda: [g for g in p.rule_groups()
                                     if g["rules"] and all(r.get("lastEvaluation", "").startswith("20")
                                                           for r in g["rules"])],
                            30, "the rules to be evaluated")
        rules = [r for g in groups for r in g["rules"]]
        self.assertEqual({r["name"] for r in rules},
                         {a["alert"] for a in prom.alerting_rules()})
        for r in rules:
            self.assertEqual((r["name"], r["health"], r.get("lastError", "")),
                             (r["name"], "ok", ""))
        self.assertEqual(self.active_alerts(), {})
        before = self.assert_metrics_lint_clean()
        self.assertIn("# TYPE healthd_check_duration_seconds histogram", before)

        # Redis dies (SIGKILL by its PID).
        self.redis.stop(signal.SIGKILL)

        # AFTER: cache fails, the pod is unready, the verdict unhealthy.
        self.wait_value(f'{q}{{check="cache",critical="true",status="fail"}}', 1)
        self.assertEqual(p.value(f'{q}{{check="cache",status="pass"}}'), 0)
        self.wait_value("healthd_ready", 0)
        self.wait_value('healthd_verdict{verdict="unhealthy"}', 1)
        self.assertEqual(p.value('healthd_verdict{verdict="healthy"}'), 0)
        # The informational check is untouched.
        self.assertEqual(p.value(f'{q}{{check="marker",status="pass"}}'), 1)
        # Transitions and failures counted; runs and the histogram go on.
        self.wait_above('healthd_check_transitions_total{check="cache"}', trans0)
        fails = self.wait_above('healthd_check_failures_total{check="cache"}', fails0)
        self.wait_above('healthd_check_failures_total{check="cache"}', fails)
        self.wait_above('increase(healthd_check_failures_total{check="cache"}[1m])', 0)
        self.wait_above('healthd_check_runs_total{check="cache"}', runs0)
        self.assertEqual(p.value('healthd_check_transitions_total{check="marker"}'),
                         marker_trans0)
        n1 = self.wait_above('healthd_check_duration_seconds_count{check="cache"}', n0)
        self.wait_above('healthd_check_duration_seconds_count{check="cache"}', n1)

        # The alerts see it (pending: their `for:` is minutes long).
        def alerts_active():
            a = self.active_alerts()
            return a if {("HealthdCriticalCheckFailing", "cache"),
                         ("HealthdNotReady", None)} <= set(a) else None
        alerts = p.wait_for(alerts_active, 30, "HealthdCriticalCheckFailing and HealthdNotReady")
        crit = alerts[("HealthdCriticalCheckFailing", "cache")]
        self.assertIn(crit["state"], ("pending", "firing"))
        self.assertEqual(crit["labels"]["severity"], "critical")
        self.assertEqual(crit["annotations"]["summary"],
                         "critical check cache is failing on example-service/healthd-test")
        self.assertEqual(alerts[("HealthdNotReady", None)]["annotations"]["summary"],
                         "healthd pod example-service/healthd-test is not ready")
        self.assertNotIn(("HealthdCriticalCheckFailing", "marker"), alerts)
        self.assert_metrics_lint_clean()


if __name__ == "__main__":
    unittest.main()
