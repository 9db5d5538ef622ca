"""k8s/ says what a production deployment of healthd requires (docs/kubernetes.md).

Reads the rendered base (`kubectl kustomize k8s`, via tests/deploy/render.mjs)
and asserts: probe settings, preStop and grace period, securityContext,
anti-affinity, resources, HPA 3–10 on CPU 70 %/memory 80 %, PDB,
NetworkPolicy (ingress http only; egress 5432, 6379, DNS), every selector
matches the pod labels, 3 replicas, mounts at the documented paths, and the
ConfigMap's healthd.yaml wired to those mounts.  Also checks the examples.
"""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get("HEALTHD_SOURCE_DIR") or
                                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                                "tests", "deploy"))
import deploytest as d  # noqa: E402

NS = "example-service"
GUIDE_PROBES = {
    "startupProbe": ("/api/v1/health/startup", 5, 3, 30),
    "livenessProbe": ("/api/v1/health/live", 10, 3, 3),
    "readinessProbe": ("/api/v1/health/ready", 5, 3, 3),
}
GUIDE_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
}


PRESTOP_S = 15  # the guide's pause before SIGTERM
# The image has no shell: healthd itself waits (`healthd sleep`).
PRESTOP_EXEC = ["/usr/bin/healthd", "sleep", str(PRESTOP_S)]


def prestop_seconds(test, container):
    """The preStop pause of a healthd container: `healthd sleep N` run by
    exec, or Kubernetes' own sleep action (>= 1.30).  Anything needing a
    shell fails: the default image has none."""
    pre = container["lifecycle"]["preStop"]
    if "sleep" in pre:
        return pre["sleep"]["seconds"]
    cmd = pre["exec"]["command"]
    test.assertEqual(cmd[:2], PRESTOP_EXEC[:2], "preStop must run without a shell")
    test.assertEqual(len(cmd), 3)
    return int(cmd[2])


def port_of(container, name_or_number):
    for p in container.get("ports", []):
        if name_or_number in (p.get("name"), p["containerPort"]):
            return p
    return None


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objs = d.render(d.K8S_DIR)
        cls.dep = d.find(cls.objs, "Deployment", "healthd")
        cls.pod = cls.dep["spec"]["template"]
        cls.labels = cls.pod["metadata"]["labels"]
        cls.spec = cls.pod["spec"]
        cls.c = next(c for c in cls.spec["containers"] if c["name"] == "healthd")
        cls.cm = d.find(cls.objs, "ConfigMap", "healthd-config")
        cls.hcfg = d.yaml_docs(cls.cm["data"]["healthd.yaml"])[0]
        with open(d.SECRETS_EXAMPLE) as f:
            cls.secret = d.yaml_docs(f.read())[0]

    # -- namespace ---------------------------------------------------------
    def test_namespace(self):
        self.assertEqual(d.find(self.objs, "Namespace")["metadata"]["name"], NS)
        for o in self.objs:
            if o["kind"] != "Namespace":
                self.assertEqual(o["metadata"].get("namespace"), NS, o["kind"])

    # -- deployment --------------------------------------------------------
    def test_replicas_and_selector(self):
        self.assertEqual(self.dep["spec"]["replicas"], 3)
        self.assertTrue(d.selector_matches(self.dep["spec"]["selector"], self.labels))

    def test_http_port(self):
        p = port_of(self.c, "http")
        self.assertIsNotNone(p, "no container port named http")
        self.assertEqual((p["containerPort"], p.get("protocol", "TCP")), (8000, "TCP"))

    def test_probes_match_guide(self):
        for kind, (path, period, timeout, failures) in GUIDE_PROBES.items():
            with self.subTest(probe=kind):
                pr = self.c[kind]
                self.assertEqual(pr["httpGet"]["path"], path)
                self.assertEqual(pr["httpGet"]["port"], "http")
                self.assertEqual(pr["periodSeconds"], period)
                self.assertEqual(pr["timeoutSeconds"], timeout)
                self.assertEqual(pr["failureThreshold"], failures)
                self.assertEqual(pr.get("successThreshold", 1), 1)
                self.assertEqual(pr.get("initialDelaySeconds", 0), 0)
                self.assertLess(pr["timeoutSeconds"], pr["periodSeconds"])

    def test_probe_paths_under_base_path(self):
        base = self.hcfg.get("base_path", "/api/v1/health")
        for kind in GUIDE_PROBES:
            self.assertTrue(self.c[kind]["httpGet"]["path"].startswith(base + "/"), kind)

    def test_listen_port_is_container_port(self):
        listen = str(self.hcfg.get("listen", "0.0.0.0:8000"))
        host, _, port = listen.rpartition(":")
        self.assertIn(host, ("0.0.0.0", "[::]", ""), "kubelet probes the pod IP: listen on all addresses")
        self.assertEqual(int(port), port_of(self.c, "http")["containerPort"])

    def test_graceful_shutdown(self):
        self.assertEqual(self.c["lifecycle"]["preStop"]["exec"]["command"], PRESTOP_EXEC)
        pause = prestop_seconds(self, self.c)
        self.assertEqual(pause, PRESTOP_S)
        grace = self.spec["terminationGracePeriodSeconds"]
        self.assertEqual(grace, 30)
        drain = d.duration_s(self.hcfg.get("shutdown", {}).get("drain", "5s"))
        self.assertLess(pause + drain, grace, "preStop + drain must end before SIGKILL")

    def test_security_context(self):
        sc = self.c["securityContext"]
        for k, v in GUIDE_SECURITY.items():
            self.assertEqual(sc.get(k), v, k)
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        self.assertFalse(sc["capabilities"].get("add"))
        self.assertTrue(self.spec["securityContext"]["runAsNonRoot"])
        self.assertFalse(self.spec.get("hostNetwork", False))

    def test_writable_tmp_only(self):
        tmp = [m for m in self.c["volumeMounts"] if m["mountPath"] == "/tmp"]
        self.assertEqual(len(tmp), 1)
        vol = next(v for v in self.spec["volumes"] if v["name"] == tmp[0]["name"])
        self.assertIn("emptyDir", vol)
        for m in self.c["volumeMounts"]:
            if m["mountPath"] != "/tmp":
                self.assertTrue(m.get("readOnly"), m["mountPath"])

    def test_resources(self):
        r = self.c["resources"]
        for k in ("cpu", "memory"):
            self.assertIn(k, r["requests"])
            self.assertIn(k, r["limits"])

        def cpu(q):
            return float(q[:-1]) / 1000 if q.endswith("m") else float(q)

        def mem(q):
            units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
            return float(q[:-2]) * units[q[-2:]] if q[-2:] in units else float(q)
        self.assertLessEqual(cpu(r["requests"]["cpu"]), cpu(r["limits"]["cpu"]))
        self.assertLessEqual(mem(r["requests"]["memory"]), mem(r["limits"]["memory"]))
        self.assertLessEqual(mem(r["limits"]["memory"]), 256 * 2**20, "a small C daemon")

    def test_anti_affinity(self):
        aa = self.spec["affinity"]["podAntiAffinity"]
        terms = [t["podAffinityTerm"] for t in aa.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
        terms += aa.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        self.assertTrue(terms)
        for t in terms:
            self.assertEqual(t["topologyKey"], "kubernetes.io/hostname")
            self.assertTrue(d.selector_matches(t["labelSelector"], self.labels))

    # -- mounts and config wiring ------------------------------------------
    def mount(self, path):
        ms = [m for m in self.c["volumeMounts"] if m["mountPath"] == path]
        self.assertEqual(len(ms), 1, f"one mount at {path}")
        vol = next(v for v in self.spec["volumes"] if v["name"] == ms[0]["name"])
        return ms[0], vol

    def test_configmap_directory_mount(self):
        m, vol = self.mount("/etc/healthd")
        self.assertNotIn("subPath", m, "subPath mounts never receive ConfigMap updates")
        self.assertEqual(vol["configMap"]["name"], self.cm["metadata"]["name"])
        self.assertNotIn("items", vol["configMap"], "all keys, so ${file:/etc/healthd/KEY} works")
        self.assertEqual(self.c.get("args"), ["-c", "/etc/healthd/healthd.yaml"])

    def test_secret_mount(self):
        m, vol = self.mount("/etc/healthd-secrets")
        self.assertEqual(vol["secret"]["secretName"], self.secret["metadata"]["name"])
        self.assertEqual(vol["secret"].get("defaultMode"), 0o440)
        self.assertEqual(self.spec["securityContext"].get("fsGroup"), 1000)
        self.assertFalse(any(o["kind"] == "Secret" for o in self.objs), "no Secret in the base")
        self.assertEqual(self.secret["kind"], "Secret")
        self.assertEqual(self.secret["metadata"].get("namespace"), NS)

    def test_real_secrets_stay_out_of_git(self):
        for path in ("k8s/secrets.yaml", "tests/deploy/node_modules/x"):
            p = subprocess.run(["git", "-C", d.SOURCE_DIR, "check-ignore", "-q", path])
            self.assertEqual(p.returncode, 0, f"{path} is not git-ignored")

    def test_mount_points_do_not_nest(self):
        paths = [m["mountPath"] for m in self.c["volumeMounts"]]
        for a in paths:
            for b in paths:
                if a != b:
                    self.assertFalse(b.startswith(a.rstrip("/") + "/"), f"{b} inside {a}")

    def test_file_references_resolve(self):
        # Commented-out examples are not references.
        text = "\n".join(l for l in self.cm["data"]["healthd.yaml"].splitlines()
                         if not l.lstrip().startswith("#"))
        refs = d.FILE_REF.findall(text)
        self.assertIn("/etc/healthd-secrets/database-url", refs)
        secret_keys = set(self.secret.get("stringData", {})) | set(self.secret.get("data", {}))
        for ref in refs + [self.hcfg.get("details_token_file", "/etc/healthd/healthd.yaml")]:
            dirname, _, key = ref.rpartition("/")
            if dirname == "/etc/healthd":
                self.assertIn(key, self.cm["data"], ref)
            elif dirname == "/etc/healthd-secrets":
                self.assertIn(key, secret_keys, ref)
            else:
                self.fail(f"{ref}: not under a mounted directory")
        env = {e["name"] for e in self.c.get("env", [])}
        for var in d.ENV_REF.findall(text):
            if var != "file":
                self.assertIn(var, env, f"${{{var}}} used but not set in the container env")

    def test_guide_keys_are_wired(self):
        """redis-url, log-level, enable-metrics are read by healthd, not decoration."""
        text = self.cm["data"]["healthd.yaml"]
        env_from_cm = {e["valueFrom"]["configMapKeyRef"]["key"]: e["name"]
                       for e in self.c.get("env", [])
                       if e.get("valueFrom", {}).get("configMapKeyRef", {}).get("name") == self.cm["metadata"]["name"]}
        builtin_env = {"log-level": "HEALTHD_LOG_LEVEL"}
        for key in ("redis-url", "log-level", "enable-metrics"):
            with self.subTest(key=key):
                self.assertIn(key, self.cm["data"])
                by_file = f"${{file:/etc/healthd/{key}}}" in text
                var = env_from_cm.get(key)
                by_env = var is not None and (f"${{{var}" in text or builtin_env.get(key) == var)
                self.assertTrue(by_file or by_env, f"{key} is not used by healthd.yaml")
        self.assertEqual(self.hcfg["log"]["level"], "${file:/etc/healthd/log-level}")
        self.assertEqual(self.hcfg["metrics"], "${file:/etc/healthd/enable-metrics}")
        self.assertIn(self.cm["data"]["log-level"], ("debug", "info", "warn", "error"))
        self.assertIn(self.cm["data"]["enable-metrics"], ("true", "false"))

    def test_checks(self):
        checks = {c["name"]: c for c in self.hcfg["checks"]}
        db = checks["database"]
        self.assertEqual(db["plugin"], "postgres")
        self.assertIs(db.get("critical", True), True)
        self.assertEqual(db["options"]["dsn"], "${file:/etc/healthd-secrets/database-url}")
        redis = [c for c in checks.values() if c["plugin"] == "redis"]
        self.assertEqual(len(redis), 1)
        self.assertEqual(redis[0]["options"]["url"], "${file:/etc/healthd/redis-url}")
        self.assertIn("/opt/healthd/plugins", self.hcfg["plugin_dirs"])
        self.assertIn("/usr/lib/healthd/plugins", self.hcfg["plugin_dirs"])
        for c in checks.values():
            timeout = d.duration_s(c.get("timeout", self.hcfg["defaults"]["timeout"]))
            self.assertLess(timeout, 3, f"{c['name']}: check timeout under the probes' 3 s")

    # -- service, hpa, pdb, networkpolicy ------------------------------------
    def test_service(self):
        svc = d.find(self.objs, "Service", "healthd")
        self.assertTrue(d.selector_matches({"matchLabels": svc["spec"]["selector"]}, self.labels))
        (p,) = svc["spec"]["ports"]
        self.assertEqual((p["name"], p["port"], p["targetPort"]), ("http", 8000, "http"))
        self.assertFalse(svc["spec"].get("publishNotReadyAddresses", False))
        # Monitoring reaches unready pods too: they are the ones to read.
        mon = d.find(self.objs, "Service", "healthd-monitoring")
        self.assertIs(mon["spec"]["publishNotReadyAddresses"], True)
        self.assertEqual(mon["spec"]["selector"], svc["spec"]["selector"])
        self.assertEqual(mon["spec"]["ports"], svc["spec"]["ports"])

    def test_hpa(self):
        hpa = d.find(self.objs, "HorizontalPodAutoscaler")
        self.assertEqual(hpa["apiVersion"], "autoscaling/v2")
        ref = hpa["spec"]["scaleTargetRef"]
        self.assertEqual((ref["apiVersion"], ref["kind"], ref["name"]),
                         ("apps/v1", "Deployment", self.dep["metadata"]["name"]))
        self.assertEqual((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]), (3, 10))
        self.assertEqual(hpa["spec"]["minReplicas"], self.dep["spec"]["replicas"])
        targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["spec"]["metrics"]
                   if m["type"] == "Resource"}
        self.assertEqual(targets, {"cpu": {"type": "Utilization", "averageUtilization": 70},
                                   "memory": {"type": "Utilization", "averageUtilization": 80}})

    def test_pdb(self):
        pdb = d.find(self.objs, "PodDisruptionBudget")
        self.assertEqual(pdb["apiVersion"], "policy/v1")
        self.assertTrue(d.selector_matches(pdb["spec"]["selector"], self.labels))
        s = pdb["spec"]
        if "maxUnavailable" in s:
            self.assertEqual(s["maxUnavailable"], 1)
        else:
            self.assertTrue(0 < s["minAvailable"] < self.dep["spec"]["replicas"], "a drain must be possible")
        # When a critical dependency is down every replica is unready: such
        # pods must not block node drains.
        self.assertEqual(s.get("unhealthyPodEvictionPolicy"), "AlwaysAllow")

    def test_networkpolicy(self):
        np = d.find(self.objs, "NetworkPolicy")
        s = np["spec"]
        self.assertTrue(d.selector_matches(s["podSelector"], self.labels))
        self.assertEqual(sorted(s["policyTypes"]), ["Egress", "Ingress"])
        self.assertTrue(s["ingress"])
        for rule in s["ingress"]:
            self.assertEqual([(p["port"], p.get("protocol", "TCP")) for p in rule["ports"]], [("http", "TCP")])
        egress = set()
        for rule in s["egress"]:
            self.assertTrue(rule.get("ports"), "an egress rule without ports allows everything")
            egress |= {(p["port"], p.get("protocol", "TCP")) for p in rule["ports"]}
        self.assertEqual(egress, {(5432, "TCP"), (6379, "TCP"), (53, "UDP"), (53, "TCP")})

    def test_every_selector_matches_pods(self):
        n = 0
        for o in self.objs:
            sel = None
            if o["kind"] == "Service":
                sel = {"matchLabels": o["spec"]["selector"]}
            elif o["kind"] in ("PodDisruptionBudget", "Deployment"):
                sel = o["spec"]["selector"]
            elif o["kind"] == "NetworkPolicy":
                sel = o["spec"]["podSelector"]
            if sel is not None:
                n += 1
                self.assertTrue(d.selector_matches(sel, self.labels), f"{o['kind']} {o['metadata']['name']}")
        self.assertEqual(n, 5)


class Examples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sidecar = d.render(d.EXAMPLES[0])
        cls.custom = d.render(d.EXAMPLES[1])
        cls.exec_script = d.render(d.EXAMPLES[2])

    @staticmethod
    def pod(objs):
        dep = d.find(objs, "Deployment")
        return dep, dep["spec"]["template"]["spec"], dep["spec"]["template"]["metadata"]["labels"]

    def check_healthd_container(self, objs, c, spec, port):
        for kind, (path, period, timeout, failures) in GUIDE_PROBES.items():
            pr = c[kind]
            self.assertEqual((pr["httpGet"]["path"], pr["httpGet"]["port"], pr["periodSeconds"],
                              pr["timeoutSeconds"], pr["failureThreshold"]),
                             (path, port, period, timeout, failures), kind)
        pause = prestop_seconds(self, c)
        self.assertEqual(pause, PRESTOP_S)
        self.assertEqual(spec["terminationGracePeriodSeconds"], 30)
        for k, v in GUIDE_SECURITY.items():
            self.assertEqual(c["securityContext"].get(k), v, k)
        self.assertEqual(c["securityContext"]["capabilities"]["drop"], ["ALL"])
        m = {m["mountPath"]: m for m in c["volumeMounts"]}
        cfg = next(v for v in spec["volumes"] if v["name"] == m["/etc/healthd"]["name"])
        cm = d.find(objs, "ConfigMap", cfg["configMap"]["name"])
        self.assertNotIn("subPath", m["/etc/healthd"])
        hcfg = d.yaml_docs(cm["data"]["healthd.yaml"])[0]
        drain = d.duration_s(hcfg.get("shutdown", {}).get("drain", "5s"))
        self.assertLess(pause + drain, spec["terminationGracePeriodSeconds"],
                        "preStop + drain must end before SIGKILL")
        return m, hcfg

    def test_sidecar(self):
        dep, spec, labels = self.pod(self.sidecar)
        self.assertTrue(d.selector_matches(dep["spec"]["selector"], labels))
        names = [c["name"] for c in spec["containers"]]
        self.assertEqual(len(names), 2, "an app container beside healthd")
        c = next(c for c in spec["containers"] if c["name"] == "healthd")
        m, cfg = self.check_healthd_container(self.sidecar, c, spec, "health")
        self.assertIn("/etc/healthd-secrets", m)
        app = next(c for c in spec["containers"] if c["name"] != "healthd")
        self.assertNotEqual(port_of(app, "http")["containerPort"], port_of(c, "health")["containerPort"])
        self.assertIn("app", {ch["name"] for ch in cfg["checks"]})

    def test_custom_plugin(self):
        dep, spec, labels = self.pod(self.custom)
        self.assertTrue(d.selector_matches(dep["spec"]["selector"], labels))
        c = next(c for c in spec["containers"] if c["name"] == "healthd")
        m, cfg = self.check_healthd_container(self.custom, c, spec, "http")
        pm = m["/opt/healthd/plugins"]
        self.assertTrue(pm.get("readOnly"))
        vol = next(v for v in spec["volumes"] if v["name"] == pm["name"])
        self.assertIn("emptyDir", vol)
        (init,) = spec["initContainers"]
        im = next(x for x in init["volumeMounts"] if x["name"] == pm["name"])
        # healthd sees the 0755 sub-directory the initContainer makes, not the 0777 emptyDir root.
        target = im["mountPath"].rstrip("/") + "/" + pm.get("subPath", "")
        self.assertIn("install -d -m 0755 " + target.rstrip("/"), " ".join(init["command"]))
        self.assertIn("/opt/healthd/plugins", cfg["plugin_dirs"])

    def test_exec_script(self):
        """A check written as a script: the exec plugin runs it from a
        ConfigMap mounted read-only with the x bit uid 1000 needs."""
        dep, spec, labels = self.pod(self.exec_script)
        self.assertTrue(d.selector_matches(dep["spec"]["selector"], labels))
        c = next(c for c in spec["containers"] if c["name"] == "healthd")
        m, cfg = self.check_healthd_container(self.exec_script, c, spec, "http")
        sm = m["/etc/healthd-scripts"]
        self.assertTrue(sm.get("readOnly"))
        vol = next(v for v in spec["volumes"] if v["name"] == sm["name"])
        self.assertEqual(vol["configMap"]["defaultMode"], 0o555)
        (chk,) = [ch for ch in cfg["checks"] if ch["plugin"] == "exec"]
        self.assertTrue(chk["options"]["command"].startswith("/etc/healthd-scripts/"))
        # A script needs /bin/sh: the tools image, not the default one.
        self.assertTrue(c["image"].endswith("-tools"), c["image"])

    def test_default_image_elsewhere(self):
        """Only the script example needs the tools image."""
        for objs in (self.sidecar, self.custom):
            _, spec, _ = self.pod(objs)
            c = next(c for c in spec["containers"] if c["name"] == "healthd")
            self.assertNotIn("-tools", c["image"])


if __name__ == "__main__":
    unittest.main()
