"""Prometheus and promtool for the monitoring tests (Debian's `prometheus`
package: /usr/bin/prometheus and /usr/bin/promtool).

The alert rules live only in k8s/monitoring/prometheusrule.yaml (a
PrometheusRule for the Prometheus Operator); write_rules() extracts its
`spec` (the rule groups) into a plain rules file for promtool and Prometheus.

    with prom.Prometheus(targets=[f"127.0.0.1:{d.port}"], rules=True) as p:
        p.query("healthd_ready")        # [(labels, value), ...]
        p.alerts()                      # /api/v1/alerts' alerts
"""

import json
import os
import shutil
import subprocess
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

import harness
import servers

SOURCE_DIR = harness.SOURCE_DIR or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
RULE_MANIFEST = os.path.join(SOURCE_DIR, "k8s", "monitoring", "prometheusrule.yaml")
RULE_TESTS_DIR = os.path.join(SOURCE_DIR, "tests", "rules")
# The name tests/rules/*_test.yaml give in rule_files.
RULES_FILE = "healthd.rules.yaml"

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def require_tools(testcase):
    """Fail (not skip) with the fix when Debian's prometheus is missing:
    scripts/deps.sh installs it."""
    for tool in (PROMETHEUS, PROMTOOL):
        if not os.access(tool, os.X_OK):
            testcase.fail(f"{tool} is missing: apt-get install prometheus "
                          "(scripts/deps.sh)")


def rule_manifest():
    """The PrometheusRule object from k8s/monitoring/prometheusrule.yaml."""
    with open(RULE_MANIFEST) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if len(docs) != 1 or docs[0].get("kind") != "PrometheusRule":
        raise AssertionError(f"{RULE_MANIFEST}: expected one PrometheusRule")
    return docs[0]


def rule_groups():
    """The manifest's spec: {"groups": [...]}, a Prometheus rules file."""
    return rule_manifest()["spec"]


def alerting_rules(spec=None):
    """Every alerting rule of the manifest, as dicts."""
    spec = spec or rule_groups()
    return [r for g in spec["groups"] for r in g["rules"] if "alert" in r]


def write_rules(directory, spec=None):
    """Write the rule groups as DIRECTORY/healthd.rules.yaml; returns its path."""
    path = os.path.join(directory, RULES_FILE)
    with open(path, "w") as f:
        yaml.safe_dump(spec if spec is not None else rule_groups(), f,
                       sort_keys=False, width=1000)
    return path


def promtool(*args, stdin=None, cwd=None, timeout=120):
    """Run promtool; returns CompletedProcess (text)."""
    return subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True,
                          text=True, cwd=cwd, timeout=timeout,
                          env=servers.CLEAN_ENV)


# urllib without the caller's proxies: everything here is on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Prometheus(servers.Server):
    """A Prometheus server on 127.0.0.1 on a free port, its config and TSDB in
    its own temp dir, stopped by its PID.  It scrapes `targets` every
    `interval` (job `job`, with `labels` on every series, e.g. the namespace
    and pod the operator would add) and, with rules=True, evaluates the
    manifest's alert rules at the same interval."""

    name = "prometheus"

    def __init__(self, targets, job="healthd", interval="1s", labels=None,
                 rules=False):
        super().__init__()
        self.targets, self.job, self.interval = list(targets), job, interval
        self.labels = dict(labels or {})
        self.rules = rules
        self.url = f"http://127.0.0.1:{self.port}"

    def _config(self):
        cfg = {
            "global": {"scrape_interval": self.interval,
                       "scrape_timeout": self.interval,
                       "evaluation_interval": self.interval},
            "scrape_configs": [{
                "job_name": self.job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": self.targets,
                                    "labels": self.labels}],
            }],
        }
        if self.rules:
            cfg["rule_files"] = [write_rules(self.dir)]
        return yaml.safe_dump(cfg, sort_keys=False)

    def start(self):
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write(self._config())
        check = promtool("check", "config", conf)
        if check.returncode != 0:
            raise RuntimeError(f"promtool check config:\n{check.stdout}{check.stderr}")
        self._spawn([PROMETHEUS, f"--config.file={conf}",
                     f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
                     f"--web.listen-address=127.0.0.1:{self.port}",
                     "--log.level=info"],
                    "prometheus.log", cwd=self.dir, env=servers.CLEAN_ENV)

        def ready():
            self._check_alive()
            try:
                return self.get("/-/ready")[0] == 200
            except OSError:
                return False
        servers.wait_until(ready, 60, "prometheus to be ready")
        return self

    def get(self, path, params=None, timeout=10):
        """GET path; returns (status, body bytes)."""
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with _OPENER.open(url, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def api(self, path, **params):
        """GET /api/v1/PATH; returns `data` of a successful answer."""
        status, body = self.get("/api/v1/" + path, params)
        answer = json.loads(body)
        if status != 200 or answer.get("status") != "success":
            raise AssertionError(f"/api/v1/{path} {params}: {status} {body[:500]!r}")
        return answer["data"]

    def query(self, expr):
        """An instant query: [(labels without __name__, float value), ...]."""
        data = self.api("query", query=expr)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [({k: v for k, v in s["metric"].items() if k != "__name__"},
                 float(s["value"][1])) for s in data["result"]]

    def value(self, expr):
        """The value of a query that must give exactly one sample, or None
        while it gives none."""
        result = self.query(expr)
        if len(result) > 1:
            raise AssertionError(f"{expr}: {len(result)} series: {result}")
        return result[0][1] if result else None

    def alerts(self):
        """Active alerts (pending and firing), as /api/v1/alerts gives them."""
        return self.api("alerts")["alerts"]

    def rule_groups(self):
        return self.api("rules")["groups"]

    def wait_for(self, predicate, timeout=30, what="condition", interval=0.25):
        """Poll predicate() until it returns something true; returns it."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except AssertionError as e:   # e.g. a query that is not valid yet
                last = e
            if last and not isinstance(last, AssertionError):
                return last
            time.sleep(interval)
        raise AssertionError(textwrap.dedent(f"""\
            timed out waiting for {what} (last: {last!r})
            --- prometheus log (tail) ---
            """) + self.log()[-3000:])
