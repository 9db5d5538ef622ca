"""schema/healthd.schema.json: every config shipped with healthd is valid
against it, and it knows the keys healthd knows (no more, no fewer)."""

import glob
import json
import os
import re
import tempfile
import unittest

import jsonschema
import yaml

from harness import SOURCE_DIR, run

SCHEMA = os.path.join(SOURCE_DIR, "schema", "healthd.schema.json")


def shipped_configs():
    """(where, parsed YAML) of every healthd.yaml the repo ships."""
    out = []
    examples = sorted(glob.glob(os.path.join(SOURCE_DIR, "examples", "*.yaml")))
    for path in examples + [os.path.join(SOURCE_DIR, "docker", "healthd.yaml")]:
        with open(path) as f:
            out.append((os.path.relpath(path, SOURCE_DIR), yaml.safe_load(f)))
    with open(os.path.join(SOURCE_DIR, "k8s", "configmap.yaml")) as f:
        for doc in yaml.safe_load_all(f):
            if doc and doc.get("kind") == "ConfigMap" and \
                    "healthd.yaml" in doc.get("data", {}):
                out.append(("k8s/configmap.yaml",
                            yaml.safe_load(doc["data"]["healthd.yaml"])))
    # The reference config: the first yaml block of the configuration
    # docs, and README's tour.
    for rel in ("docs/configuration.md", "README.md"):
        with open(os.path.join(SOURCE_DIR, rel)) as f:
            block = re.search(r"```yaml\n(.*?listen:.*?)```", f.read(), re.S)
        out.append((rel, yaml.safe_load(block.group(1))))
    return out


class Schema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA) as f:
            cls.schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(cls.schema)
        cls.validator = jsonschema.Draft202012Validator(cls.schema)

    def errors(self, doc):
        return [e.message for e in self.validator.iter_errors(doc)]

    def test_shipped_configs_are_valid(self):
        configs = shipped_configs()
        where = [w for w, _ in configs]
        for must in ("examples/healthd.yaml", "examples/exec.yaml",
                     "docker/healthd.yaml", "k8s/configmap.yaml",
                     "docs/configuration.md", "README.md"):
            self.assertIn(must, where)
        for where, doc in configs:
            self.assertEqual(self.errors(doc), [], where)

    def test_mistakes_healthd_refuses_are_refused(self):
        ok = {"checks": [{"name": "db", "plugin": "postgres",
                          "interval": "5s", "options": {"dsn": "x"}}]}
        self.assertEqual(self.errors(ok), [])
        for bad in ({"lsten": ":8000"},
                    {"checks": [{"name": "DB", "plugin": "postgres"}]},
                    {"checks": [{"name": "db"}]},
                    {"checks": [{"name": "db", "plugin": "p",
                                 "interval": "5 s"}]},
                    {"checks": [{"name": "db", "plugin": "p",
                                 "critical": "maybe"}]},
                    {"defaults": {"isolation": "thread"}},
                    {"workers": 0}):
            self.assertNotEqual(self.errors(bad), [], bad)
            # healthd refuses each one too.
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
                yaml.safe_dump(bad, f)
                f.flush()
                r = run(["-c", f.name, "--check-config"])
            self.assertEqual(r.returncode, 2, (bad, r.stdout, r.stderr))

    def test_expansions_are_accepted_anywhere(self):
        doc = {"details": "${DETAILS}", "workers": "${WORKERS}",
               "defaults": {"interval": "${INTERVAL:-10s}"},
               "checks": [{"name": "db", "plugin": "p",
                           "critical": "${CRITICAL}"}]}
        self.assertEqual(self.errors(doc), [])

    def test_keys_match_healthds(self):
        """healthd lists the keys it knows when one is unknown: the schema
        must know the same ones, section by section."""
        props = self.schema["properties"]
        sections = {
            "": (props, "nosuch: 1\n"),
            "log.": (props["log"]["properties"], "log: {nosuch: 1}\n"),
            "server.": (props["server"]["properties"],
                        "server: {nosuch: 1}\n"),
            "shutdown.": (props["shutdown"]["properties"],
                          "shutdown: {nosuch: 1}\n"),
            "control.": (props["control"]["properties"],
                         "control: {nosuch: 1}\n"),
            "defaults.": (props["defaults"]["properties"],
                          "defaults: {nosuch: 1}\n"),
            "check": (props["checks"]["items"]["properties"],
                      "checks: [{name: a, plugin: p, nosuch: 1}]\n"),
        }
        for where, (known, text) in sections.items():
            with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
                f.write(text)
                f.flush()
                r = run(["-c", f.name, "--check-config"])
            m = re.search(r"expected one of: ([a-z_, ]+)", r.stderr)
            self.assertIsNotNone(m, (where, r.stderr))
            self.assertEqual(sorted(m.group(1).split(", ")), sorted(known),
                             where)


if __name__ == "__main__":
    unittest.main()
