"""The Dockerfile's three images build with podman (offline base from
debootstrap): the default one (FROM scratch, no shell) within 40 MB, with
every library it needs and the files recorded in tests/deploy/image-files.txt,
runs as the pod would: read-only root, only /tmp writable, uid 1000, no
capabilities; every endpoint answers; the manifests' preStop runs; `podman
stop` exits 0 within the drain.  The tools image runs the exec example's
script and Monitoring Plugins; a plugin built in the sdk image loads in the
default one.

Wraps tests/deploy/image_test.sh.  Needs root and Debian's podman, runc,
debootstrap and curl: missing tools fail the test (they are CI's setup).
Takes 10-15 minutes on 2 CPUs (the first run also debootstraps the base,
cached in /var/cache/healthd-deploy).
"""
import os
import subprocess
import sys
import unittest

SOURCE_DIR = os.environ.get("HEALTHD_SOURCE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCRIPT = os.path.join(SOURCE_DIR, "tests", "deploy", "image_test.sh")


class Image(unittest.TestCase):
    def test_image_builds_runs_and_stops(self):
        p = subprocess.run(["bash", SCRIPT, SOURCE_DIR], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=1500)
        sys.stdout.write(p.stdout)
        self.assertEqual(p.returncode, 0, "image_test.sh failed (output above)")
        self.assertIn("image test: OK", p.stdout)


if __name__ == "__main__":
    unittest.main()
