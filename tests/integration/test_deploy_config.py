"""The configs the deployment ships are accepted by the daemon itself.

`healthd --check-config` on: the ConfigMap's healthd.yaml (k8s/configmap.yaml),
the sidecar example's, and the image's default (docker/healthd.yaml), as
shipped: the ConfigMap's keys become files in a temp dir as kubelet would
write them under /etc/healthd, secrets.example.yaml's keys under
/etc/healthd-secrets, and `--map-path` reads the mounts from there and the
plugins from the build — what a CI job does with its own manifests.
"""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.environ.get("HEALTHD_SOURCE_DIR") or
                                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."),
                                "tests", "deploy"))
import deploytest as d  # noqa: E402

HEALTHD = os.environ.get("HEALTHD_BIN") or os.path.join(d.SOURCE_DIR, "build", "healthd")
PLUGINS = os.environ.get("HEALTHD_PLUGIN_DIR") or os.path.join(d.SOURCE_DIR, "build", "plugins")


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


if __name__ == "__main__":
    unittest.main()
