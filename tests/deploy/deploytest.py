"""Helpers shared by tests/integration/test_deploy_*.py (stdlib only).

The YAML work is done by the Node scripts beside this file (the pinned npm
packages in node_modules, installed by setup.sh); these helpers run them and
hand back JSON.  A missing node_modules is an error, not a skip: CI must run
tests/deploy/setup.sh first.
"""
import json
import os
import re
import shutil
import subprocess

DEPLOY_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("HEALTHD_SOURCE_DIR") or os.path.dirname(os.path.dirname(DEPLOY_DIR))
K8S_DIR = os.path.join(SOURCE_DIR, "k8s")
EXAMPLES = [os.path.join(K8S_DIR, "examples", f) for f in ("sidecar.yaml", "custom-plugin.yaml",
                                                           "exec-script.yaml")]
SECRETS_EXAMPLE = os.path.join(K8S_DIR, "secrets.example.yaml")


class SetupError(AssertionError):
    pass


def require_setup():
    """Fail (not skip) with the fix when node or the npm packages are missing."""
    if not shutil.which("node"):
        raise SetupError("node is not installed (apt-get install nodejs npm)")
    for pkg in ("kubernetes-models", "kubernetes-types", "typescript", "yaml",
                "@kubernetes-models/prometheus-operator"):
        if not os.path.isfile(os.path.join(DEPLOY_DIR, "node_modules", pkg, "package.json")):
            raise SetupError(f"tests/deploy/node_modules/{pkg} is missing: run tests/deploy/setup.sh")


def node(script, *args, stdin=None, env=None, check=True):
    require_setup()
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run(["node", os.path.join(DEPLOY_DIR, script), *args], input=stdin,
                       capture_output=True, text=True, env=e, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"node {script} {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def render(*inputs, engine=None):
    """Objects of a kustomize dir / YAML files, as a list of dicts."""
    args = ([f"--engine={engine}"] if engine else []) + list(inputs)
    return json.loads(node("render.mjs", *args).stdout)


def yaml_docs(text):
    return json.loads(node("yaml2json.mjs", stdin=text).stdout)


def find(objs, kind, name=None):
    hits = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    if len(hits) != 1:
        raise AssertionError(f"expected one {kind} {name or ''}, found {len(hits)}")
    return hits[0]


def selector_matches(selector, labels):
    """A metav1.LabelSelector (matchLabels + matchExpressions) against labels."""
    if not selector:
        return False  # an empty selector selects everything: never what we want
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for ex in selector.get("matchExpressions") or []:
        k, op, vals = ex["key"], ex["operator"], ex.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


FILE_REF = re.compile(r"\$\{file:([^}]+)\}")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


def duration_s(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text))
    if not m:
        raise AssertionError(f"{text!r} is not a duration")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
