"""k8s/ renders, and every object is valid Kubernetes with no unknown field.

Wraps tests/deploy/{render,validate}.mjs (kubernetes-models validate() for the
schema, kubernetes-types + `tsc --strict` for unknown fields).  Needs
tests/deploy/setup.sh to have run; fails, not skips, when it has not.
"""
import os
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


if __name__ == "__main__":
    unittest.main()
