"""The configs the deployment ships are accepted by the daemon itself.

`healthd --check-config` on: the ConfigMap's healthd.yaml (k8s/configmap.yaml),
the sidecar example's, and the image's default (docker/healthd.yaml), as
shipped: the ConfigMap's keys become files in a temp dir as kubelet would
write them under /etc/healthd, secrets.example.yaml's keys under
/etc/healthd-secrets, and `--map-path` reads the mounts from there and the
plugins from the build — what a CI job does with its own manifests.

The exec example (k8s/examples/exec-script.yaml) also gets its scripts
ConfigMap written as kubelet writes it, with the volume's defaultMode, and is
run once: its script, as shipped, passes on a fresh heartbeat and fails on a
stale one through the exec plugin.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.environ.get("HEALTHD_SOURCE_DIR") or
                                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                                "tests", "deploy"))
import deploytest as d  # noqa: E402

HEALTHD = os.environ.get("HEALTHD_BIN") or os.path.join(d.SOURCE_DIR, "build", "healthd")
PLUGINS = os.environ.get("HEALTHD_PLUGIN_DIR") or os.path.join(d.SOURCE_DIR, "build", "plugins")
EXEC_EXAMPLE = next(p for p in d.EXAMPLES if os.path.basename(p) == "exec-script.yaml")
SCRIPTS_DIR = "/etc/healthd-scripts"


def materialize(tmp, configmap, secret=None, rewrite=False):
    """Write a ConfigMap (and Secret) as kubelet mounts them; return
    healthd.yaml's path and the --map-path arguments that find them.  With
    `rewrite`, healthd.yaml's mount paths are rewritten to the temp dir
    instead, for a daemon to run on it (only --check-config maps paths)."""
    cfg, sec, opt = (os.path.join(tmp, x) for x in ("etc-healthd", "etc-healthd-secrets", "opt-plugins"))
    for p in (cfg, sec, opt):
        os.makedirs(p, mode=0o755, exist_ok=True)
        os.chmod(p, 0o755)
    maps = {"/etc/healthd": cfg, "/etc/healthd-secrets": sec,
            "/usr/lib/healthd/plugins": PLUGINS, "/opt/healthd/plugins": opt}

    def remap(text):
        return (text.replace("/etc/healthd-secrets/", sec + "/")
                    .replace("/etc/healthd/", cfg + "/")
                    .replace("/usr/lib/healthd/plugins", PLUGINS)
                    .replace("/opt/healthd/plugins", opt))
    for key, value in configmap.get("data", {}).items():
        with open(os.path.join(cfg, key), "w") as f:
            f.write(remap(value) if rewrite and key == "healthd.yaml" else value)
    if secret:
        for key, value in secret.get("stringData", {}).items():
            with open(os.path.join(sec, key), "w") as f:
                f.write(value)
            os.chmod(os.path.join(sec, key), 0o440)
    return (os.path.join(cfg, "healthd.yaml"),
            [a for k, v in maps.items() for a in ("--map-path", f"{k}={v}")])


class Config(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(HEALTHD, os.X_OK):
            raise AssertionError(f"{HEALTHD}: no daemon (set HEALTHD_BIN or build first)")
        with open(d.SECRETS_EXAMPLE) as f:
            cls.secret = d.yaml_docs(f.read())[0]

    def check_config(self, mounted):
        path, maps = mounted
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHD_")}
        p = subprocess.run([HEALTHD, "-c", path, "--check-config"] + maps,
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, 0, f"--check-config {path}: exit {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def test_configmap_healthd_yaml(self):
        cm = d.find(d.render(d.K8S_DIR), "ConfigMap", "healthd-config")
        with tempfile.TemporaryDirectory() as tmp:
            p = self.check_config(materialize(tmp, cm, self.secret))
            out = p.stdout + p.stderr
            for value in self.secret["stringData"].values():
                self.assertNotIn(value, out, "a secret value was printed")

    def test_sidecar_example_healthd_yaml(self):
        cm = d.find(d.render(d.EXAMPLES[0]), "ConfigMap")
        with tempfile.TemporaryDirectory() as tmp:
            self.check_config(materialize(tmp, cm, self.secret))

    def test_image_default_config(self):
        with open(os.path.join(d.SOURCE_DIR, "docker", "healthd.yaml")) as f:
            cm = {"data": {"healthd.yaml": f.read()}}
        with tempfile.TemporaryDirectory() as tmp:
            self.check_config(materialize(tmp, cm))

    # -- the exec example: a script from a ConfigMap -------------------------
    def exec_example(self, tmp, mode=None, rewrite=False, worker=None):
        """k8s/examples/exec-script.yaml mounted in tmp: the config
        ConfigMap by materialize(), the scripts ConfigMap's keys as files
        with the volume's defaultMode (or `mode`).  --map-path maps what the
        core reads (${file:}, plugin_dirs), not a plugin's options, so the
        script path in exec's `command` is rewritten to the temp copy (and
        the worker's directory to `worker`).  Returns materialize()'s pair
        and the check."""
        objs = d.render(EXEC_EXAMPLE)
        spec = d.find(objs, "Deployment")["spec"]["template"]["spec"]
        c = next(c for c in spec["containers"] if c["name"] == "healthd")
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        mount = mounts[SCRIPTS_DIR]
        self.assertTrue(mount.get("readOnly"))
        self.assertNotIn("subPath", mount, "subPath mounts never receive ConfigMap updates")
        vol = volumes[mount["name"]]["configMap"]
        self.assertEqual(vol.get("defaultMode"), 0o555, "scripts must be executable by uid 1000")
        scripts = d.find(objs, "ConfigMap", vol["name"])
        cm = d.find(objs, "ConfigMap", volumes[mounts["/etc/healthd"]["name"]]["configMap"]["name"])
        sdir = os.path.join(tmp, "etc-healthd-scripts")
        os.makedirs(sdir, mode=0o755)
        for key, value in scripts["data"].items():
            self.assertTrue(value.startswith("#!/bin/sh\n"), f"{key}: exec runs it with no shell")
            with open(os.path.join(sdir, key), "w") as f:
                f.write(value)
            os.chmod(os.path.join(sdir, key), vol.get("defaultMode", 0o644) if mode is None else mode)
        path, maps = materialize(tmp, cm, rewrite=rewrite)
        with open(path) as f:
            text = f.read()
        (check,) = [ch for ch in d.yaml_docs(text)[0]["checks"] if ch["plugin"] == "exec"]
        program = check["options"]["command"].split()[0]
        self.assertEqual(os.path.dirname(program), SCRIPTS_DIR)
        self.assertIn(os.path.basename(program), scripts["data"], "the command runs a script of the ConfigMap")
        text = text.replace(SCRIPTS_DIR + "/", sdir + "/")
        if worker:
            self.assertIn(" /run/worker ", check["options"]["command"])
            text = text.replace(" /run/worker ", f" {worker} ")
        with open(path, "w") as f:
            f.write(text)
        return (path, maps), check

    def test_exec_example_healthd_yaml(self):
        with tempfile.TemporaryDirectory() as tmp:
            mounted, _ = self.exec_example(tmp)
            self.check_config(mounted)
        # Without the defaultMode, ConfigMap files are 0644: refused.
        with tempfile.TemporaryDirectory() as tmp:
            (path, maps), _ = self.exec_example(tmp, mode=0o644)
            env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHD_")}
            p = subprocess.run([HEALTHD, "-c", path, "--check-config"] + maps,
                               capture_output=True, text=True, timeout=30, env=env)
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("the program is not executable", p.stderr)

    def test_exec_example_script_runs(self):
        """The script as shipped, through exec and the daemon (--once):
        OK on a fresh heartbeat, a warning past the backlog, CRITICAL when
        the heartbeat is stale."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTHD_")}
        with tempfile.TemporaryDirectory() as tmp:
            worker = os.path.join(tmp, "run-worker")
            os.makedirs(os.path.join(worker, "queue"))
            (path, _), check = self.exec_example(tmp, rewrite=True, worker=worker)
            _, max_age, max_backlog = check["options"]["command"].split()[-3:]
            heartbeat = os.path.join(worker, "heartbeat")

            def once(want_rc):
                p = subprocess.run([HEALTHD, "-c", path, "--once", "--json"],
                                   capture_output=True, text=True, timeout=30, env=env)
                self.assertEqual(p.returncode, want_rc, p.stdout + p.stderr)
                return json.loads(p.stdout)["checks"][check["name"]]

            with open(heartbeat, "w"):
                pass
            r = once(0)
            self.assertEqual(r["status"], "pass", r)
            self.assertRegex(r["message"], r"^OK - last heartbeat \d+s ago, 0 jobs queued$")
            self.assertEqual((r["details"]["exit_status"], r["details"]["perfdata.backlog"]), (0, 0))
            self.assertNotIn("perfdata_skipped", r["details"])
            for i in range(int(max_backlog) + 1):
                open(os.path.join(worker, "queue", f"job-{i}"), "w").close()
            r = once(1)
            self.assertEqual((r["status"], r["details"]["exit_status"]), ("warn", 1), r)
            old = time.time() - int(max_age) - 30
            os.utime(heartbeat, (old, old))
            r = once(2)
            self.assertEqual(r["status"], "fail", r)
            self.assertTrue(r["message"].startswith("CRITICAL - last heartbeat"), r["message"])
            os.unlink(heartbeat)
            r = once(2)
            self.assertIn("heartbeat is missing", r["message"])


if __name__ == "__main__":
    unittest.main()
