#!/usr/bin/env python3
"""Run healthd on examples/healthd.yaml against real local servers.

usage: scripts/demo.py BUILD_DIR   (scripts/demo.sh builds, then calls this)
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import servers  # noqa: E402  (the test harness's real servers)


def main():
    build = os.path.abspath(sys.argv[1])
    port = int(os.environ.get("DEMO_PORT", "8000"))
    seconds = float(os.environ.get("DEMO_SECONDS", "0"))
    with servers.Postgres() as pg, servers.Redis(password="demo-redis-pw") as rd, \
            servers.HTTPServer() as api:
        env = dict(os.environ,
                   HEALTHD_PLUGIN_DIR=os.path.join(build, "plugins"),
                   HEALTHD_LISTEN=f"127.0.0.1:{port}",
                   DATABASE_URL=pg.url, REDIS_URL=rd.url,
                   PAYMENTS_URL=api.url("/ok"))
        config = os.path.join(ROOT, "examples", "healthd.yaml")
        daemon = subprocess.Popen([os.path.join(build, "healthd"), "-c", config],
                                  env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            servers.wait_until(lambda: ready(base), 15, "healthd to be ready")
            print(f"""
healthd is up (PostgreSQL on {pg.port}, Redis on {rd.port}, HTTP on {api.port}).
Try:
  curl -i {base}/api/v1/health/startup
  curl -i {base}/api/v1/health/live
  curl -i {base}/api/v1/health/ready
  curl -s {base}/api/v1/health/ | python3 -m json.tool
  curl -s -H 'Accept: application/health+json' {base}/api/v1/health/
  curl -i {base}/api/v1/health/checks/database
  curl -s {base}/metrics
Then freeze Redis (kill -STOP {rd.pid}) and watch /ready turn 503 after 3
timed-out runs (about 15 s); kill -CONT {rd.pid} brings it back.
Ctrl-C ends the demo.
""", flush=True)
            if seconds:
                time.sleep(seconds)
            else:
                signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(15)
    return 0


def ready(base):
    try:
        with urllib.request.urlopen(base + "/api/v1/health/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
