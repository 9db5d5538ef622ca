"""The Deployment's probes, replayed as the kubelet runs them, against healthd
started with the ConfigMap's own healthd.yaml and real PostgreSQL and Redis.

What is read from the rendered manifest (`kubectl kustomize k8s`, through
tests/deploy): the three probes (path, named port, period, timeout, success
and failure thresholds, initial delay, Kubernetes' defaults where a field is
left out), the container's args and mounts, the ConfigMap.  The ConfigMap's
files and a Secret (database-url in the guide's SQLAlchemy form
postgresql+asyncpg://user:pw@127.0.0.1:PORT/db, details-token) are written
into a temp dir by test_deploy_config.materialize(); redis-url is the only
ConfigMap value replaced (the in-cluster service name becomes the test's
Redis).  healthd listens on a free 127.0.0.1 port through HEALTHD_LISTEN, in
place of the container port the probes name.

The replay follows kubelet's prober (pkg/kubelet/prober/worker.go, 1.30):
one worker per probe type, each on its own ticker of periodSeconds from the
container's start, probing at once then on every tick (late ticks dropped);
nothing before initialDelaySeconds; liveness and readiness do nothing until
the startup probe has succeeded, and the startup probe stops after that; a
result is set only after successThreshold / failureThreshold identical
results in a row; readiness starts as Failure; a liveness or startup Failure
means a container restart (recorded here, and the test fails).  Each probe is
an HTTP GET on a new connection (Connection: close, no keep-alive) with
User-Agent: kube-probe/1.30 and Accept: */*; success is a status 200-399
answered within timeoutSeconds.  (kubelet may also run a readiness probe
early, on a pod status sync after startup; the ticker-only replay is the
slower of the two, so the bounds below hold for both.)

Timings are REAL (no time scaling): the whole run takes about 100 s.

Scenario: start -> started -> Ready; PostgreSQL hung (SIGSTOP, pause()) ->
unready, liveness keeps passing -> resumed -> Ready; PostgreSQL stopped (fast
shutdown) -> unready, liveness keeps passing -> started again -> Ready.
"""
import http.client
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("HEALTHD_SOURCE_DIR") or
                                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                                "tests", "deploy"))
import deploytest as d  # noqa: E402
import servers  # noqa: E402
from test_deploy_config import HEALTHD, materialize  # noqa: E402

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
# Kubernetes' defaults for fields a probe leaves out (core/v1 Probe).
PROBE_DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
                  "successThreshold": 1, "failureThreshold": 3}
USER_AGENT = "kube-probe/1.30"
CONFIG_MOUNT, SECRET_MOUNT = "/etc/healthd", "/etc/healthd-secrets"  # what materialize() remaps
# healthd's scheduler (docs/semantics.md, Lifecycle; core/scheduler.c: the next
# run is interval +-5 % after the previous run's start): the slowest cadence.
JITTER = 1.05
# Our own latency on top of every bound: thread wake-ups, an HTTP round trip
# on loopback, a sanitizer build.
SLACK = 1.0


class Probe:
    """One of the container's probes, read from the rendered Deployment."""

    def __init__(self, kind, spec, container):
        self.kind = kind
        s = dict(PROBE_DEFAULTS, **spec)
        get = spec["httpGet"]
        self.path = get["path"]
        assert get.get("scheme", "HTTP") == "HTTP" and "host" not in get, get
        port = get["port"]
        if isinstance(port, str):  # a named port: the container's port of that name
            named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
            assert len(named) == 1, f"{kind}: port {port!r} names {len(named)} container ports"
            port = named[0]
        self.port = port
        self.headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
        self.initial = s["initialDelaySeconds"]
        self.period = s["periodSeconds"]
        self.timeout = s["timeoutSeconds"]
        self.success = s["successThreshold"]
        self.failure = s["failureThreshold"]

    def __repr__(self):
        return (f"{self.kind}(GET :{self.port}{self.path} every {self.period}s, timeout {self.timeout}s, "
                f"success {self.success}, failure {self.failure}, initial {self.initial}s)")


def http_probe(port, probe):
    """kubelet's HTTP probe: (success, what happened)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", **probe.headers, "Connection": "close"}
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=probe.timeout)
    try:
        conn.request("GET", probe.path, headers=headers)
        r = conn.getresponse()
        r.read(10 * 1024)  # kubelet reads at most 10 KiB of the body
        took = time.monotonic() - t0
        if took > probe.timeout:
            return False, f"timeout ({took:.2f}s)"
        return 200 <= r.status < 400, f"HTTP {r.status}"
    except (OSError, http.client.HTTPException) as e:
        return False, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


class Kubelet:
    """The three probe workers of one container, on real time."""

    def __init__(self, probes, port):
        self.probes = probes
        self.port = port
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.events = []        # (t, kind, ok, detail): every probe sent
        self.transitions = []   # (t, what, value): results set by the workers
        self.started_at = None  # startup result Success
        self.ready = False      # readiness result (initially Failure)
        self.restarts = []      # (t, kind): liveness/startup failureThreshold reached
        self.errors = []
        self.threads = [threading.Thread(target=self.worker, args=(p,), daemon=True) for p in probes.values()]

    def start(self):
        self.t0 = time.monotonic()  # the container's start
        for t in self.threads:
            t.start()

    def now(self):
        return time.monotonic() - self.t0

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def worker(self, p):
        try:
            last, run, on_hold, k = None, 0, False, 0
            while not self.stop_ev.is_set():
                if not on_hold:
                    last, run, on_hold = self.do_probe(p, last, run)
                # the ticker: the next multiple of the period, missed ticks dropped
                k = max(k + 1, math.floor(self.now() / p.period) + 1)
                self.stop_ev.wait(max(0.0, k * p.period - self.now()))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(f"{p.kind}: {e!r}")

    def do_probe(self, p, last, run):
        with self.lock:
            started = self.started_at is not None
        if (p.kind == "startupProbe") == started:  # startup stops once started; the others wait for it
            return last, run, False
        if self.now() < p.initial:
            return last, run, False
        t = self.now()
        ok, detail = http_probe(self.port, p)
        with self.lock:
            self.events.append((t, p.kind, ok, detail))
            if ok == last:
                run += 1
            else:
                last, run = ok, 1
            if run < (p.success if ok else p.failure):
                return last, run, False
            if p.kind == "readinessProbe":
                if ok != self.ready:
                    self.transitions.append((self.now(), "ready", ok))
                self.ready = ok
            elif ok:  # startup succeeded (liveness Success changes nothing)
                if p.kind == "startupProbe":
                    self.started_at = self.now()
                    self.transitions.append((self.started_at, "started", True))
            else:  # liveness/startup Failure: kubelet kills the container, probing holds
                self.restarts.append((self.now(), p.kind))
                self.transitions.append((self.now(), "restart", p.kind))
                return last, 0, True
        return last, run, False

    def probes_since(self, kind, t):
        with self.lock:
            return [e for e in self.events if e[1] == kind and e[0] >= t]

    def ready_changes_since(self, t):
        with self.lock:
            return [x for x in self.transitions if x[1] == "ready" and x[0] >= t]

    def timeline(self):
        with self.lock:
            ev = [f"  {t:7.2f}s {k:15} {'ok  ' if ok else 'FAIL'} {det}" for t, k, ok, det in self.events]
            tr = [f"  {t:7.2f}s -> {w} {v}" for t, w, v in self.transitions]
        return "probes:\n" + "\n".join(ev) + "\nresults:\n" + "\n".join(tr)


class ProbeContract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(HEALTHD, os.X_OK):
            raise AssertionError(f"{HEALTHD}: no daemon (set HEALTHD_BIN or build first)")
        objs = d.render(d.K8S_DIR)
        dep = d.find(objs, "Deployment", "healthd")
        cls.cm = d.find(objs, "ConfigMap", "healthd-config")
        pod = dep["spec"]["template"]["spec"]
        cls.container = next(c for c in pod["containers"] if c["name"] == "healthd")
        cls.volumes = pod["volumes"]
        cls.probes = {k: Probe(k, cls.container[k], cls.container) for k in PROBES}
        cls.hcfg = d.yaml_docs(cls.cm["data"]["healthd.yaml"])[0]

    def check_timing(self, name):
        """(interval, timeout, failure_threshold, success_threshold) of a check, in seconds."""
        c = next(c for c in self.hcfg["checks"] if c["name"] == name)
        dflt = self.hcfg.get("defaults", {})

        def get(key, fallback):
            return c.get(key, dflt.get(key, fallback))
        # healthd's defaults where neither the check nor `defaults:` says.
        return (d.duration_s(get("interval", "10s")), d.duration_s(get("timeout", "3s")),
                int(get("failure_threshold", 3)), int(get("success_threshold", 1)))

    def config_path_in_pod(self):
        """healthd's -c from the container's args, checked against the mounts materialize() remaps."""
        args = self.container.get("args", [])
        self.assertIn("-c", args)
        path = args[args.index("-c") + 1]
        mounts = {m["name"]: m["mountPath"] for m in self.container["volumeMounts"]}
        by_source = {}
        for v in self.volumes:
            if "configMap" in v:
                by_source[v["configMap"]["name"]] = mounts[v["name"]]
            if "secret" in v:
                by_source[v["secret"]["secretName"]] = mounts[v["name"]]
        self.assertEqual(by_source.get(self.cm["metadata"]["name"]), CONFIG_MOUNT)
        self.assertEqual(by_source.get("healthd-secrets"), SECRET_MOUNT)
        self.assertEqual(os.path.dirname(path), CONFIG_MOUNT)
        return os.path.basename(path)

    def test_probe_contract(self):
        P = self.probes
        st, lv, rd = P["startupProbe"], P["livenessProbe"], P["readinessProbe"]
        # The probes' port is the port healthd.yaml listens on in the pod.
        listen_port = int(str(self.hcfg["listen"]).rsplit(":", 1)[1])
        for p in P.values():
            self.assertEqual(p.port, listen_port, p)
        config_name = self.config_path_in_pod()
        # The critical check that follows PostgreSQL: the one reading the Secret's database-url.
        db = next(c for c in self.hcfg["checks"]
                  if c["plugin"] == "postgres" and f"{SECRET_MOUNT}/database-url" in str(c["options"]))
        self.assertTrue(db.get("critical", True), "the database check must decide readiness")
        interval, timeout, fail_thr, succ_thr = self.check_timing(db["name"])

        # --- the bounds (seconds) ------------------------------------------
        # Start: the startup probe must succeed before failureThreshold
        # failures in a row, i.e. within periodSeconds x failureThreshold.
        startup_budget = st.period * st.failure
        # Ready after started: the next readiness ticks, successThreshold of them.
        ready_after_start = rd.period * rd.success + SLACK
        # Unready after PostgreSQL stops/hangs at t: the check's failure_threshold
        # runs each start <= interval x 1.05 after the previous one and the last
        # fails by its timeout -> the check is `fail`, /ready 503, by
        # t + failure_threshold x interval x 1.05 + timeout; the kubelet's next
        # readiness probe comes within a period and it needs failureThreshold in
        # a row -> + periodSeconds x failureThreshold.
        unready_bound = fail_thr * interval * JITTER + timeout + rd.period * rd.failure + SLACK
        # Ready again after PostgreSQL is back at t: success_threshold passing
        # runs (<= interval x 1.05 apart, the last done within its timeout), then
        # successThreshold readiness probes, a period apart.
        recover_bound = succ_thr * interval * JITTER + timeout + rd.period * rd.success + SLACK
        # Liveness: keep each outage up until it has had failureThreshold probes.
        liveness_window = lv.period * lv.failure + lv.timeout + SLACK
        print(f"\n{st}\n{lv}\n{rd}\ncheck {db['name']}: interval {interval}s timeout {timeout}s "
              f"failure_threshold {fail_thr} success_threshold {succ_thr}\n"
              f"bounds: startup < {startup_budget}s, ready <= started + {ready_after_start}s, "
              f"unready <= {unready_bound:.2f}s, ready again <= {recover_bound:.2f}s", file=sys.stderr)

        with tempfile.TemporaryDirectory(prefix="healthd-probes-") as tmp, \
                servers.Postgres() as pg, servers.Redis() as redis:
            cm = {"data": dict(self.cm["data"], **{"redis-url": redis.url})}
            db_url = f"postgresql+asyncpg://{pg.user}:{pg.password}@127.0.0.1:{pg.port}/{pg.dbname}"
            secret = {"stringData": {"database-url": db_url, "details-token": "probe-test-token"}}
            config = os.path.join(os.path.dirname(materialize(tmp, cm, secret, rewrite=True)[0]),
                                  config_name)
            port = servers.free_port()
            env = {k: v for k, v in servers.CLEAN_ENV.items() if not k.startswith("HEALTHD_")}
            env["HEALTHD_LISTEN"] = f"127.0.0.1:{port}"
            log_path = os.path.join(tmp, "healthd.log")
            with open(log_path, "wb") as log:
                proc = subprocess.Popen([HEALTHD, "-c", config], env=env, stdin=subprocess.DEVNULL,
                                        stdout=log, stderr=log)
            kubelet = Kubelet(P, port)
            kubelet.start()
            try:
                self.scenario(kubelet, proc, pg, startup_budget, ready_after_start, unready_bound,
                              recover_bound, liveness_window)
            except BaseException:
                with open(log_path, errors="replace") as f:
                    print("healthd log (tail):\n" + "".join(f.readlines()[-60:]), file=sys.stderr)
                raise
            finally:
                kubelet.stop()
                print(kubelet.timeline(), file=sys.stderr)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                proc.wait(10)
            with open(log_path, errors="replace") as f:
                logs = f.read()
            for value in (pg.password, db_url, "probe-test-token"):
                self.assertNotIn(value, logs, "a secret was logged")

    def wait(self, kubelet, proc, pred, limit, what):
        """Poll pred() until true, at most `limit` seconds; returns the kubelet time it became true."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.assertEqual(kubelet.errors, [])
            self.assertEqual(kubelet.restarts, [], f"the kubelet would restart the container\n{kubelet.timeline()}")
            self.assertIsNone(proc.poll(), f"healthd exited {proc.returncode}")
            if pred():
                return kubelet.now()
            time.sleep(0.05)
        self.fail(f"not within {limit:.2f}s: {what}\n{kubelet.timeline()}")

    def scenario(self, kubelet, proc, pg, startup_budget, ready_after_start, unready_bound,
                 recover_bound, liveness_window):
        lv = self.probes["livenessProbe"]
        # 1. The pod starts: started before the startup budget runs out.
        self.wait(kubelet, proc, lambda: kubelet.started_at is not None,
                  startup_budget + SLACK, "startup probe success")
        started = kubelet.started_at
        self.assertLess(started, startup_budget)
        early = [e for e in kubelet.events if e[1] != "startupProbe" and e[0] < started]
        self.assertEqual(early, [], "liveness/readiness probed before startup succeeded")
        # 2. ... and becomes Ready.
        self.wait(kubelet, proc, lambda: kubelet.ready, ready_after_start + SLACK, "Ready after startup")
        ready = kubelet.ready_changes_since(started)[0][0]
        self.assertLessEqual(ready - started, ready_after_start)
        print(f"started at {started:.2f}s, Ready at {ready:.2f}s", file=sys.stderr)

        # 3. PostgreSQL hangs, then stops: unready within the budget, never restarted, Ready again.
        for how, down, up in (("hung (SIGSTOP)", pg.pause, pg.resume),
                              ("stopped", pg.stop, pg.start)):
            self.assertTrue(kubelet.ready, f"not Ready before PostgreSQL {how}")
            t_down = kubelet.now()
            down()
            t_unready = self.wait(kubelet, proc, lambda: not kubelet.ready, unready_bound,
                                  f"unready after PostgreSQL {how}")
            # the time readiness was set to Failure, not when we noticed
            t_unready = kubelet.ready_changes_since(t_down)[0][0]
            self.assertLessEqual(t_unready - t_down, unready_bound)
            # Keep it down until liveness had failureThreshold chances to fail.
            self.wait(kubelet, proc, lambda: len(kubelet.probes_since("livenessProbe", t_down)) >= lv.failure,
                      liveness_window, f"{lv.failure} liveness probes while PostgreSQL {how}")
            self.assertEqual(kubelet.ready_changes_since(t_down)[1:], [], "readiness flapped during the outage")
            t_up_call = kubelet.now()
            up()
            t_up = kubelet.now()
            self.wait(kubelet, proc, lambda: kubelet.ready, recover_bound, f"Ready after PostgreSQL {how} ended")
            # (a restarted server may be seen before start() returns: look from the call)
            t_ready = kubelet.ready_changes_since(t_up_call)[0][0]
            self.assertLessEqual(t_ready - t_up, recover_bound)
            print(f"PostgreSQL {how} at {t_down:.2f}s: unready after {t_unready - t_down:.2f}s "
                  f"(bound {unready_bound:.2f}s); back at {t_up:.2f}s (call took {t_up - t_up_call:.2f}s), "
                  f"Ready again after {t_ready - t_up:.2f}s (bound {recover_bound:.2f}s)", file=sys.stderr)

        # 4. Liveness: never reached failureThreshold (no restart) — in fact it never failed.
        self.assertEqual(kubelet.restarts, [], "the kubelet would have restarted the container")
        live = [e for e in kubelet.events if e[1] == "livenessProbe"]
        self.assertGreaterEqual(len(live), 2 * lv.failure)
        self.assertEqual([e for e in live if not e[2]], [], "a liveness probe failed")


if __name__ == "__main__":
    unittest.main()
