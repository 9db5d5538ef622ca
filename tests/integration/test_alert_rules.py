"""healthd's alert rules (k8s/monitoring/prometheusrule.yaml) under promtool.

The rules exist once, in the PrometheusRule manifest: its `spec` is extracted
into a temp dir as healthd.rules.yaml, beside copies of tests/rules/*_test.yaml,
and checked there with `promtool check rules` and `promtool test rules`.
Also: every alert has a test case where it fires and one where it does not,
and those cases really bite (the tests fail when an alert is made to never
fire, or to always fire); every metric the rules use is one healthd exposes.
"""

import glob
import os
import re
import shutil
import tempfile
import unittest

import yaml

import prom
from harness import Daemon, check

# What the rules must cover (the alerts a team pages on), by the metric each
# alert is about.
REQUIRED_METRICS = ("healthd_ready", "healthd_check_status", "healthd_verdict",
                    "healthd_config_last_reload_success",
                    "healthd_plugin_host_restarts_total",
                    "healthd_check_transitions_total")
SEVERITIES = ("critical", "warning")
METRIC = re.compile(r"\bhealthd_[a-z_]+")


class AlertRules(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = prom.rule_groups()
        cls.alerts = prom.alerting_rules(cls.spec)
        cls.test_files = sorted(glob.glob(os.path.join(prom.RULE_TESTS_DIR,
                                                       "*_test.yaml")))

    def setUp(self):
        prom.require_tools(self)
        self.tmp = tempfile.TemporaryDirectory(prefix="healthd-rules-")
        self.addCleanup(self.tmp.cleanup)

    def promtool_test(self, spec=None):
        """`promtool test rules` on copies of tests/rules/*_test.yaml, next to
        the extracted (or the given) rule groups."""
        prom.write_rules(self.tmp.name, spec)
        names = []
        for f in self.test_files:
            shutil.copy(f, self.tmp.name)
            names.append(os.path.basename(f))
        return prom.promtool("test", "rules", *names, cwd=self.tmp.name)

    def test_manifest_is_a_prometheus_rule(self):
        m = prom.rule_manifest()
        self.assertEqual(m["apiVersion"], "monitoring.coreos.com/v1")
        self.assertEqual(m["metadata"]["labels"]["app.kubernetes.io/name"], "healthd")
        self.assertEqual(set(m["spec"]), {"groups"})
        self.assertTrue(self.alerts)

    def test_promtool_check_rules(self):
        path = prom.write_rules(self.tmp.name)
        p = prom.promtool("check", "rules", path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(f"SUCCESS: {len(self.alerts)} rules found", p.stdout)

    def test_promtool_unit_tests_pass(self):
        self.assertTrue(self.test_files, f"no *_test.yaml in {prom.RULE_TESTS_DIR}")
        p = self.promtool_test()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("SUCCESS", p.stdout)

    def test_every_alert_has_firing_and_quiet_cases(self):
        firing, quiet = set(), set()
        for f in self.test_files:
            with open(f) as fh:
                doc = yaml.safe_load(fh)
            self.assertEqual(doc["rule_files"], [prom.RULES_FILE], f)
            for t in doc["tests"]:
                for case in t.get("alert_rule_test") or []:
                    (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
        names = {a["alert"] for a in self.alerts}
        self.assertEqual(names - firing, set(), "alerts with no test case where they fire")
        self.assertEqual(names - quiet, set(), "alerts with no test case where they stay quiet")
        self.assertEqual((firing | quiet) - names, set(), "test cases of alerts that do not exist")

    def test_tests_fail_when_an_alert_breaks(self):
        """Each alert's test cases bite: one whose expression never matches
        fails its firing case; one that always fires fails its quiet case."""
        for rule in self.alerts:
            name = rule["alert"]
            for mutation, expr in (("never fires", "vector(1) == 2"),
                                   ("always fires", "vector(1)")):
                with self.subTest(alert=name, mutation=mutation):
                    spec = yaml.safe_load(yaml.safe_dump(self.spec))
                    for g in spec["groups"]:
                        for r in g["rules"]:
                            if r.get("alert") == name:
                                r["expr"] = expr
                                r.pop("for", None)
                    p = self.promtool_test(spec)
                    self.assertNotEqual(p.returncode, 0,
                                        f"tests/rules/ still pass when {name} {mutation}")
                    self.assertIn(f"alertname: {name}", p.stdout + p.stderr)

    def test_alert_conventions(self):
        """for:, a severity, summary and description naming the pod, and
        the check for per-check alerts; the alerts the brief asks for."""
        used = set()
        for rule in self.alerts:
            name = rule["alert"]
            with self.subTest(alert=name):
                self.assertRegex(name, r"^Healthd[A-Z][A-Za-z]+$")
                self.assertRegex(str(rule.get("for", "")), r"^\d+[smh]$")
                self.assertIn(rule.get("labels", {}).get("severity"), SEVERITIES)
                ann = rule.get("annotations", {})
                self.assertEqual(set(ann), {"summary", "description"})
                for key in ("summary", "description"):
                    self.assertIn("{{ $labels.pod }}", ann[key])
                if 'check' in rule["expr"] or "healthd_check_" in rule["expr"]:
                    self.assertIn("{{ $labels.check }}", ann["summary"])
                    self.assertIn("{{ $labels.check }}", ann["description"])
                used |= set(METRIC.findall(rule["expr"]))
        self.assertEqual(set(REQUIRED_METRICS) - used, set())
        by_name = {r["alert"]: r for r in self.alerts}
        crit = by_name["HealthdCriticalCheckFailing"]["expr"]
        self.assertIn('critical="true"', crit)
        self.assertIn('status="fail"', crit)

    def test_rules_use_only_metrics_healthd_exposes(self):
        """A renamed metric would leave an alert that can never fire."""
        used = {m for r in self.alerts for m in METRIC.findall(r["expr"])}
        with Daemon(checks=[check("db", options={"mode": "pass"})]) as d:
            r = d.get("/metrics")
            self.assertEqual(r.status, 200)
            text = r.raw.decode()
        exposed = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
        self.assertEqual(used - exposed, set(), "metrics the rules use but /metrics lacks")


if __name__ == "__main__":
    unittest.main()
