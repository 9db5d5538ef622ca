"""k8s/ renders, and every object is valid Kubernetes with no unknown field.

Wraps tests/deploy/{render,validate}.mjs (kubernetes-models validate() for the
schema, kubernetes-types + `tsc --strict` for unknown fields).  Needs
tests/deploy/setup.sh to have run; fails, not skips, when it has not.
"""
import os
import re
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.environ.get("HEALTHD_SOURCE_DIR") or
                                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                                "tests", "deploy"))
import deploytest as d  # noqa: E402

BAD_FIELD = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  selector: {matchLabels: {app: bad}}
  template:
    metadata: {labels: {app: bad}}
    spec:
      containers:
        - name: c
          image: i
          readinessProbe:
            httpGet: {path: /, port: 8000}
            periodSecond: 5
"""

BAD_TYPE = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: bad}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}
  minReplicas: "3"
  maxReplicas: 10
"""


class Manifests(unittest.TestCase):
    def setUp(self):
        d.require_setup()

    def test_kustomize_renders(self):
        kinds = sorted(o["kind"] for o in d.render(d.K8S_DIR))
        self.assertEqual(kinds, sorted(["Namespace", "ConfigMap", "Service", "Service",
                                        "Deployment", "HorizontalPodAutoscaler",
                                        "PodDisruptionBudget", "NetworkPolicy"]))

    def test_base_valid_schema_and_no_unknown_fields(self):
        p = d.node("validate.mjs", d.K8S_DIR, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_examples_and_secret_example_valid(self):
        p = d.node("validate.mjs", *d.EXAMPLES, d.SECRETS_EXAMPLE, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def validate_text(self, text, flag):
        """validate.mjs FLAG on a manifest written to a temp file."""
        with tempfile.TemporaryDirectory() as tmp:
            f = os.path.join(tmp, "bad.yaml")
            with open(f, "w") as fh:
                fh.write(text)
            return d.node("validate.mjs", flag, f, check=False)

    def test_validator_rejects_unknown_field(self):
        p = self.validate_text(BAD_FIELD, "--types")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("periodSecond", p.stderr)

    def test_validator_rejects_wrong_type(self):
        p = self.validate_text(BAD_TYPE, "--schema")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("minReplicas", p.stderr)

    def test_builtin_renderer_matches_kubectl(self):
        """The fallback renderer (used where kubectl is missing) gives kubectl's objects."""
        if not shutil.which("kubectl"):
            self.skipTest("kubectl not installed: only the built-in renderer is available")
        key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
        a = sorted(d.render(d.K8S_DIR, engine="kubectl"), key=key)
        b = sorted(d.render(d.K8S_DIR, engine="builtin"), key=key)
        self.assertEqual(a, b)


# --- k8s/monitoring: the Prometheus Operator's objects (an optional Component) ---

MONITORING_DIR = os.path.join(d.K8S_DIR, "monitoring")
PODMONITOR = os.path.join(MONITORING_DIR, "podmonitor.yaml")

BAD_MONITOR_FIELD = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: bad}
spec:
  selector: {matchLabels: {app: bad}}
  endpoints:
    - port: http
      intervall: 30s
"""

BAD_RULE_TYPE = """\
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: bad}
spec:
  groups:
    - name: bad
      rules:
        - alert: Bad
          expr: up == 0
          for: 5
"""


def relabel_keeps(relabelings, meta):
    """Prometheus' `keep`/`drop` relabelings on a target's meta labels:
    regexes are anchored, source values joined with ';'."""
    for r in relabelings or []:
        action = r.get("action", "replace").lower()
        if action not in ("keep", "drop"):
            continue
        value = r.get("separator", ";").join(meta.get(x, "") for x in r["sourceLabels"])
        hit = re.fullmatch(r.get("regex", "(.*)"), value) is not None
        if hit != (action == "keep"):
            return False
    return True


class MonitoringManifests(unittest.TestCase):
    """k8s/monitoring renders on top of the base as a kustomize Component
    (overlay in a temp dir, as a user's would be), is valid for the
    Prometheus Operator's CRDs (@kubernetes-models/prometheus-operator:
    schema and strict types) and scrapes the right Service."""

    def setUp(self):
        d.require_setup()
        tmp = tempfile.TemporaryDirectory(prefix="healthd-overlay-")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.overlay = self.write_overlay("overlay", resources=[d.K8S_DIR],
                                          components=[MONITORING_DIR])

    def write_overlay(self, name, resources=(), components=()):
        """A kustomization in the temp dir naming dirs by relative path
        (kustomize refuses absolute ones)."""
        path = os.path.join(self.tmp, name)
        os.mkdir(path)
        rel = lambda ps: "".join(f"  - {os.path.relpath(p, path)}\n" for p in ps)  # noqa: E731
        text = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        if resources:
            text += "resources:\n" + rel(resources)
        if components:
            text += "components:\n" + rel(components)
        with open(os.path.join(path, "kustomization.yaml"), "w") as f:
            f.write(text)
        return path

    def test_component_not_in_base(self):
        with open(os.path.join(d.K8S_DIR, "kustomization.yaml")) as f:
            (k,) = d.yaml_docs(f.read())
        self.assertNotIn("components", k)
        self.assertNotIn("monitoring", k["resources"])
        with open(os.path.join(MONITORING_DIR, "kustomization.yaml")) as f:
            (c,) = d.yaml_docs(f.read())
        self.assertEqual((c["apiVersion"], c["kind"]),
                         ("kustomize.config.k8s.io/v1alpha1", "Component"))
        self.assertNotIn("podmonitor.yaml", c["resources"])

    def test_component_renders_with_base(self):
        objs = d.render(self.overlay)
        base = d.render(d.K8S_DIR)
        self.assertEqual(sorted(o["kind"] for o in objs),
                         sorted([o["kind"] for o in base] + ["ServiceMonitor", "PrometheusRule"]))
        for o in objs:
            if o["kind"] != "Namespace":
                self.assertEqual(o["metadata"].get("namespace"), "example-service", o["kind"])
        sm = d.find(objs, "ServiceMonitor", "healthd")
        rule = d.find(objs, "PrometheusRule", "healthd")
        for o in (sm, rule):
            self.assertEqual(o["metadata"]["labels"]["app.kubernetes.io/name"], "healthd")
        self.assertTrue(rule["spec"]["groups"])
        (ep,) = sm["spec"]["endpoints"]
        self.assertEqual((ep["port"], ep.get("path")), ("http", "/metrics"))
        # Of the Services the selector matches, the relabelings keep only
        # healthd-monitoring, which has the port and publishes unready pods.
        services = [o for o in objs if o["kind"] == "Service"]
        matched = [s["metadata"]["name"] for s in services
                   if d.selector_matches(sm["spec"]["selector"], s["metadata"].get("labels", {}))]
        self.assertIn("healthd-monitoring", matched)
        kept = [n for n in matched
                if relabel_keeps(ep.get("relabelings"), {"__meta_kubernetes_service_name": n})]
        self.assertEqual(kept, ["healthd-monitoring"])
        svc = d.find(objs, "Service", "healthd-monitoring")
        self.assertTrue(svc["spec"]["publishNotReadyAddresses"])
        self.assertIn("http", [p["name"] for p in svc["spec"]["ports"]])

    def test_component_and_podmonitor_valid_schema_and_no_unknown_fields(self):
        p = d.node("validate.mjs", self.overlay, PODMONITOR, check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        for check in ("schema", "types"):
            for kind in ("ServiceMonitor healthd", "PrometheusRule healthd", "PodMonitor healthd"):
                self.assertRegex(p.stdout, rf"ok   {check} .*monitoring\.coreos\.com/v1/{kind}")

    def test_podmonitor_selects_the_pods(self):
        with open(PODMONITOR) as f:
            (pm,) = d.yaml_docs(f.read())
        dep = d.find(d.render(d.K8S_DIR), "Deployment", "healthd")
        pod = dep["spec"]["template"]
        self.assertTrue(d.selector_matches(pm["spec"]["selector"], pod["metadata"]["labels"]))
        (ep,) = pm["spec"]["podMetricsEndpoints"]
        ports = [p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])]
        self.assertIn(ep["port"], ports)
        self.assertEqual(ep.get("path"), "/metrics")
        self.assertEqual(pm["metadata"]["namespace"], "example-service")

    def test_builtin_renderer_matches_kubectl(self):
        if not shutil.which("kubectl"):
            self.skipTest("kubectl not installed: only the built-in renderer is available")
        key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
        a = sorted(d.render(self.overlay, engine="kubectl"), key=key)
        b = sorted(d.render(self.overlay, engine="builtin"), key=key)
        self.assertEqual(a, b)

    def test_builtin_renderer_refuses_component_as_resource(self):
        bad = self.write_overlay("bad", resources=[d.K8S_DIR, MONITORING_DIR])
        p = d.node("render.mjs", "--engine=builtin", bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("list it under components", p.stderr)

    def validate_text(self, text, flag):
        f = os.path.join(self.tmp, "bad.yaml")
        with open(f, "w") as fh:
            fh.write(text)
        return d.node("validate.mjs", flag, f, check=False)

    def test_validator_rejects_unknown_monitor_field(self):
        p = self.validate_text(BAD_MONITOR_FIELD, "--types")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("intervall", p.stderr)

    def test_validator_rejects_wrong_rule_type(self):
        p = self.validate_text(BAD_RULE_TYPE, "--schema")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("/spec/groups/0/rules/0/for must be string", p.stderr)


if __name__ == "__main__":
    unittest.main()
