"""Live reconfiguration and drop-in plugins, against the real daemon.

The config lives in a directory laid out exactly as the kubelet's atomic
writer keeps a ConfigMap volume, and is edited the way the kubelet edits it.
Pollers probe the daemon every 5 ms while it reloads.  Every test ends with
SIGTERM and asserts a clean exit with no sanitizer report (the suite also
runs against an ASan+UBSan build).
"""

import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (BASE, BUILD_DIR, SOURCE_DIR, TEST_PLUGIN_DIR, Daemon,
                     check, config_text, free_port)

SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error")
# FILE:LINE:COL: at the start of every config error.
WHERE = r"healthd\.yaml:(\d+):(\d+): "


def conf(checks, port, dirs=None, extra="", threads=2):
    """config_text() with other plugin_dirs or server threads."""
    text = config_text(checks, port, extra)
    if dirs is not None:
        text = re.sub(r"(?m)^plugin_dirs: .*$",
                      "plugin_dirs: " + json.dumps(dirs), text)
    return text.replace("  threads: 2\n", f"  threads: {threads}\n")


def line_of(text, needle):
    """The 1-based number of the first line of text holding needle."""
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in config")


class ConfigMap:
    """A directory kept as the kubelet's atomic writer keeps a ConfigMap
    volume (pkg/volume/util/atomic_writer.go):

        ..2026_11_26_12_00_00.123456789/healthd.yaml   the payload
        ..data -> ..2026_11_26_12_00_00.123456789
        healthd.yaml -> ..data/healthd.yaml

    An update writes a new timestamped directory, points a ..data_tmp
    symlink at it, renames that over ..data, and removes the old one."""

    def __init__(self, root, name="healthd.yaml"):
        self.root = root
        self.name = name
        self.path = os.path.join(root, name)
        os.makedirs(root, mode=0o755, exist_ok=True)

    def write(self, text):
        data = os.path.join(self.root, "..data")
        old = os.readlink(data) if os.path.islink(data) else None
        for _ in range(100):
            ts = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + \
                str(random.randrange(10 ** 8, 10 ** 9))
            try:
                os.mkdir(os.path.join(self.root, ts), 0o755)
                break
            except FileExistsError:
                continue
        payload = os.path.join(self.root, ts, self.name)
        with open(payload, "w") as f:
            f.write(text)
        os.chmod(payload, 0o644)
        tmp = os.path.join(self.root, "..data_tmp")
        os.symlink(ts, tmp)
        os.rename(tmp, data)
        if not os.path.islink(self.path):
            os.symlink(os.path.join("..data", self.name), self.path)
        if old:
            shutil.rmtree(os.path.join(self.root, old))


class Poller:
    """GETs each path in turn, every `every` seconds, on its own thread
    until the with-block ends; keeps every answer that is not a 200."""

    def __init__(self, d, paths, every=0.005):
        self.d = d
        self.paths = paths
        self.every = every
        self.count = 0
        self.bad = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.is_set():
            for path in self.paths:
                try:
                    r = self.d.get(path, timeout=2)
                except OSError as e:
                    self.bad.append((path, repr(e)))
                    continue
                self.count += 1
                if r.status != 200:
                    self.bad.append((path, r.status, r.raw[:300]))
            self.done.wait(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(10)


_disk_build = {}


def build_disk_plugin():
    """Install healthd into a temp prefix with `cmake --install`, build
    examples/plugins/disk out of tree against it with its own Makefile,
    and return (disk.so path, pkg-config include dir).  Built once."""
    if not _disk_build:
        top = tempfile.mkdtemp(prefix="healthd-disk-")
        prefix = os.path.join(top, "prefix")
        subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix],
                       check=True, capture_output=True, timeout=120)
        pcs = glob.glob(os.path.join(prefix, "lib*", "**", "healthd.pc"),
                        recursive=True)
        if len(pcs) != 1:
            raise AssertionError(f"one healthd.pc expected, found {pcs}")
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
        cflags = subprocess.run(["pkg-config", "--cflags", "healthd"],
                                env=env, check=True, capture_output=True,
                                text=True, timeout=30).stdout.split()
        src = os.path.join(top, "disk")
        shutil.copytree(os.path.join(SOURCE_DIR, "examples", "plugins",
                                     "disk"), src,
                        ignore=shutil.ignore_patterns("*.so"))
        r = subprocess.run(["make", "-C", src], env=env, capture_output=True,
                           text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError("make failed:\n" + r.stdout + r.stderr)
        _disk_build.update(top=top, so=os.path.join(src, "disk.so"),
                           includes=[f[2:] for f in cflags
                                     if f.startswith("-I")], prefix=prefix)
    return _disk_build


def tearDownModule():
    if _disk_build:
        shutil.rmtree(_disk_build["top"], ignore_errors=True)


class ReloadCase(unittest.TestCase):
    """Starts daemons whose config is a ConfigMap volume, and helpers."""

    def start(self, checks, extra="", dirs=None):
        d = Daemon(checks=checks)
        self.addCleanup(d.dir.cleanup)
        self.addCleanup(d.stop)
        cm = ConfigMap(os.path.join(d.dir.name, "etc"))
        d.path = cm.path
        d.dirs = dirs
        cm.write(conf(checks, d.port, dirs, extra))
        d.start()
        self.assertEqual(self.body(d)["config"]["generation"], 1)
        return d, cm

    def edit(self, d, cm, checks, extra="", **kw):
        cm.write(conf(checks, d.port, d.dirs, extra, **kw))

    def body(self, d):
        return d.get(BASE + "/").json()

    def wait_generation(self, d, gen, timeout=5):
        """Poll until config.generation reaches gen; the body then."""
        b = d.wait_for(lambda: (lambda b: b if b["config"]["generation"]
                                >= gen else None)(self.body(d)),
                       timeout=timeout, interval=0.005,
                       what=f"config generation {gen}")
        self.assertEqual(b["config"]["generation"], gen)
        self.assertEqual(b["config"]["last_reload"], "ok")
        self.assertIsNone(b["config"]["last_reload_error"])
        return b

    def wait_check(self, d, name, pred, what, timeout=5):
        """Poll until pred(check's JSON) holds; the check's JSON then."""
        return d.wait_for(lambda: (lambda c: c if c and pred(c) else None)(
            self.body(d)["checks"].get(name)), timeout=timeout, what=what)

    def wait_error(self, d, pred, what, timeout=5):
        """Poll until last_reload_error satisfies pred; the body then."""
        b = d.wait_for(lambda: (lambda b: b if b["config"]["last_reload_error"]
                                and pred(b["config"]["last_reload_error"])
                                else None)(self.body(d)),
                       timeout=timeout, what=what)
        self.assertEqual(b["config"]["last_reload"], "error")
        return b

    def log_messages(self, d):
        msgs = []
        for line in d.logs().splitlines():
            try:
                msgs.append(json.loads(line)["msg"])
            except (ValueError, KeyError):
                pass
        return msgs

    def assert_logged(self, d, msg, timeout=5):
        """The log writer is a thread of its own: a line logged before
        the state a test saw may reach the file a moment later."""
        d.wait_for(lambda: msg in self.log_messages(d), timeout=timeout,
                   what=f"log line {msg!r}")

    def stop_clean(self, d):
        """SIGTERM: exit 0 after the drain, no sanitizer report."""
        d.signal(signal.SIGTERM)
        rc = d.proc.wait(15)
        logs = d.logs()
        for report in SANITIZER_REPORTS:
            self.assertNotIn(report, logs)
        self.assertEqual(rc, 0, logs[-3000:])


class ConfigMapUpdate(ReloadCase):
    def test_kubelet_swap_applies_within_2s(self):
        d, cm = self.start([check("db", interval="5s",
                                  options={"message": "v1"})])
        self.assertTrue(os.path.islink(d.path))
        self.assertEqual(os.readlink(d.path), "..data/healthd.yaml")
        for gen, message in ((2, "v2"), (3, "v3")):
            old = os.readlink(os.path.join(cm.root, "..data"))
            self.edit(d, cm, [check("db", interval="5s",
                                    options={"message": message})])
            t0 = time.monotonic()
            # The writer's layout: ..data moved on, the old payload gone.
            self.assertNotEqual(os.readlink(os.path.join(cm.root, "..data")),
                                old)
            self.assertFalse(os.path.exists(os.path.join(cm.root, old)))
            self.assertFalse(os.path.lexists(os.path.join(cm.root,
                                                          "..data_tmp")))
            # A 5 s interval: only the reload's immediate run explains it.
            self.wait_check(d, "db", lambda c: c["message"] == message,
                            what="the new message", timeout=2)
            self.assertLess(time.monotonic() - t0, 2.0)
            b = self.body(d)
            self.assertEqual(b["config"]["generation"], gen)
            self.assertEqual(b["config"]["last_reload"], "ok")
        self.assert_logged(d, f"reloading {d.path} (file changed)")
        self.stop_clean(d)

    def test_changed_critical_check_keeps_its_status(self):
        # The new instance takes 400 ms to report: a drop to pending
        # would show on /checks/db and /ready for that long.
        def db(message):
            return check("db", interval="5s", timeout="1s",
                         options={"mode": "sleep", "sleep_ms": "400",
                                  "message": message})
        d, cm = self.start([db("v1")])
        self.assertEqual(self.body(d)["checks"]["db"]["status"], "pass")
        with Poller(d, [BASE + "/checks/db", BASE + "/ready"]) as p:
            self.edit(d, cm, [db("v2")])
            b = self.wait_generation(d, 2)
            c = b["checks"]["db"]
            self.assertEqual(c["status"], "pass")
            self.assertEqual(c["message"], "v1")  # still the last result
            self.wait_check(d, "db", lambda c: c["message"] == "v2",
                            what="the new instance's result")
        self.assertEqual(p.bad, [])
        self.assertGreater(p.count, 40)
        self.stop_clean(d)

    def test_ready_stays_200_through_50_reloads(self):
        def checks(i):
            cs = [check("db", interval=("200ms", "300ms")[i % 2],
                        timeout="200ms",
                        options={"mode": "sleep", "sleep_ms": "50",
                                 "message": f"m{i}"}),
                  check("cache", interval="100ms", timeout="100ms")]
            if i % 2:
                cs.append(check("extra", critical=False, interval="100ms",
                                timeout="100ms", options={"mode": "fail"}))
            return cs
        d, cm = self.start(checks(0))
        with Poller(d, [BASE + "/ready"]) as ready, \
                Poller(d, [BASE + "/checks/db"]) as db:
            for i in range(1, 51):
                self.edit(d, cm, checks(i))
                b = self.wait_generation(d, i + 1)
                self.assertEqual(b["checks"]["db"]["interval_ms"],
                                 (200, 300)[i % 2])
                self.assertEqual("extra" in b["checks"], bool(i % 2))
            self.wait_check(d, "db", lambda c: c["message"] == "m50",
                            what="the last edit's message")
        self.assertEqual(ready.bad, [])
        self.assertEqual(db.bad, [])
        self.assertGreater(ready.count, 300)
        self.stop_clean(d)


    def test_added_critical_check_does_not_flap_ready(self):
        base = [check("db", interval="1s")]
        d, cm = self.start(base)
        with Poller(d, [BASE + "/ready"]) as ready:
            # A new critical check that takes 300 ms to pass: /ready must
            # not answer 503 while it has said nothing yet.
            self.edit(d, cm, base + [check("queue", interval="5s",
                                           timeout="1s",
                                           options={"mode": "sleep",
                                                    "sleep_ms": "300"})])
            b = self.wait_generation(d, 2)
            self.assertIn("queue", b["checks"])
            self.wait_check(d, "queue", lambda c: c["status"] == "pass",
                            what="the added check's first result")
        self.assertEqual(ready.bad, [])
        # An added critical check that fails counts from its first result.
        self.edit(d, cm, base + [check("broken", interval="5s",
                                       options={"mode": "fail"})])
        self.wait_generation(d, 3)
        d.wait_for(lambda: d.get(BASE + "/ready").status == 503,
                   what="unready once the added check failed")
        self.assertEqual(d.get(BASE + "/ready").json()["failing"], ["broken"])
        self.stop_clean(d)


class InputFiles(ReloadCase):
    def test_file_reference_change_reloads(self):
        """A Secret (or ConfigMap key) read through ${file:...} lives in
        its own volume: a change there reloads as an edit would."""
        with tempfile.TemporaryDirectory() as tmp:
            secret = ConfigMap(os.path.join(tmp, "secrets"), name="token")
            secret.write("v1\n")
            db = [check("db", interval="5s",
                        options={"message": "${file:%s}" % secret.path})]
            d, cm = self.start(db)
            self.assertEqual(self.body(d)["checks"]["db"]["message"], "v1")
            secret.write("v2\n")
            self.wait_check(d, "db", lambda c: c["message"] == "v2",
                            what="the new secret's value", timeout=2)
            self.assertEqual(self.body(d)["config"]["generation"], 2)
            self.stop_clean(d)

    def test_replaced_hung_check_holds_one_worker(self):
        """Editing a check whose run hangs: the new instance waits for the
        old run, so edits never pile hung runs onto every worker.  Inline,
        where a hung run is never ended (a plugin host would be replaced,
        and fine's own run count start again: test_isolation)."""
        def checks(i):
            return [check("stuck", interval="1s", timeout="200ms",
                          isolation="inline",
                          options={"mode": "hang", "message": f"m{i}"}),
                    check("fine", critical=False, interval="200ms",
                          timeout="200ms", isolation="inline")]
        d, cm = self.start(checks(0), extra="workers: 2\n")
        for i in range(1, 4):
            self.edit(d, cm, checks(i), extra="workers: 2\n")
            self.wait_generation(d, i + 1)
        b = self.body(d)
        self.assertIn("runs", b["checks"]["fine"]["details"], b)
        runs = b["checks"]["fine"]["details"]["runs"]
        self.wait_check(d, "fine", lambda c: c["details"]["runs"] >= runs + 3,
                        what="the other check to keep running")
        c = self.body(d)["checks"]["fine"]
        self.assertEqual(c["status"], "pass", c)
        d.stop()


class BrokenEdits(ReloadCase):
    def test_broken_edit_changes_nothing_and_is_reported(self):
        def db(message):
            return check("db", interval="100ms", timeout="100ms",
                         options={"message": message})
        cases = [  # (extra check, its error, the line:col expected)
            ("  - name: extra\n    plugin: [testplug\n",
             r"did not find expected", None),
            (check("extra", plugin="nosuch"),
             r'check "extra": plugin "nosuch": no nosuch\.so in ',
             ("- name: extra", 5)),
            (check("extra", options={"mdoe": "pass"}),
             r'check "extra": option "mdoe" is not known to plugin testplug',
             ("mdoe", 7)),
            (check("extra", options={"mode": "bogus"}),
             r'check "extra": mode: expected pass, warn, fail, sleep, hang or deadline',
             ("- name: extra", 5)),
            (check("extra", interval="2x"),
             r'interval: "2x" is not a duration', ("interval: 2x", 5)),
        ]
        # Edited in place, as an editor would, rather than by a swap.
        d = Daemon(checks=[db("good0")])
        self.addCleanup(d.dir.cleanup)
        self.addCleanup(d.stop)
        os.mkdir(os.path.join(d.dir.name, "etc"))
        d.path = os.path.join(d.dir.name, "etc", "healthd.yaml")
        with open(d.path, "w") as f:
            f.write(conf([db("good0")], d.port))
        d.start()
        gen = 1
        with Poller(d, [BASE + "/ready"]) as ready:
            for i, (extra, error, where) in enumerate(cases):
                good = f"good{i}"
                # The broken config also changes db: none of it may apply.
                text = conf([db("bad"), extra], d.port)
                with open(d.path, "w") as f:
                    f.write(text)
                b = self.wait_error(d, lambda e: True, what=error)
                err = b["config"]["last_reload_error"]
                self.assertRegex(err, "^" + re.escape(d.path) + ":")
                m = re.search(WHERE + error, err)
                self.assertTrue(m, err)
                if where:
                    self.assertEqual((int(m.group(1)), int(m.group(2))),
                                     (line_of(text, where[0]), where[1]), err)
                self.assertEqual(b["config"]["generation"], gen)
                self.assertNotIn("extra", b["checks"])
                runs = b["checks"]["db"]["details"]["runs"]
                c = self.wait_check(d, "db",
                                    lambda c: c["details"]["runs"] > runs + 2,
                                    what="db still running")
                self.assertEqual(c["message"], good)
                self.assertEqual(c["interval_ms"], 100)
                self.assert_logged(
                    d, f"reload failed, keeping generation {gen}: " + err)
                metrics = d.get("/metrics").raw.decode()
                self.assertIn("\nhealthd_config_last_reload_success 0\n",
                              metrics)
                self.assertIn(f"\nhealthd_config_generation {gen}\n", metrics)
                # A good edit applies and clears the error.
                gen += 1
                with open(d.path, "w") as f:
                    f.write(conf([db(f"good{i + 1}")], d.port))
                self.wait_generation(d, gen)
                self.wait_check(d, "db",
                                lambda c: c["message"] == f"good{i + 1}",
                                what="the good edit")
                self.assertIn("\nhealthd_config_last_reload_success 1\n",
                              d.get("/metrics").raw.decode())
        self.assertEqual(ready.bad, [])
        self.stop_clean(d)


class StateAcrossReload(ReloadCase):
    def test_sighup_keeps_unchanged_checks_and_drops_removed(self):
        base = [check("fast", interval="100ms", timeout="100ms"),
                check("slow", interval="10s", timeout="1s")]
        # The config is a symlink into a directory the daemon does not
        # watch: only SIGHUP can make it read an edit.
        d = Daemon(checks=[])
        self.addCleanup(d.dir.cleanup)
        self.addCleanup(d.stop)
        real = os.path.join(d.dir.name, "real", "healthd.yaml")
        os.mkdir(os.path.dirname(real))
        os.mkdir(os.path.join(d.dir.name, "etc"))
        d.path = os.path.join(d.dir.name, "etc", "healthd.yaml")
        os.symlink(real, d.path)
        with open(real, "w") as f:
            f.write(conf(base + [
                check("gone", interval="100ms", timeout="100ms"),
                check("changing", interval="10s", options={"message": "a"})],
                d.port))
        d.start()
        self.wait_check(d, "fast", lambda c: c["consecutive_successes"] >= 3,
                        what="a few runs of fast")
        before = self.body(d)["checks"]
        with open(real, "w") as f:
            f.write(conf(base + [check("changing", interval="10s",
                                       options={"message": "b"})], d.port))
        d.signal(signal.SIGHUP)
        b = self.wait_generation(d, 2)
        self.assertNotIn("gone", b["checks"])
        self.assertEqual(d.get(BASE + "/checks/gone").status, 404)
        self.assert_logged(d, f"reloading {d.path} (SIGHUP)")
        fast, slow = b["checks"]["fast"], b["checks"]["slow"]
        # The same instances (testplug counts its own runs), counters
        # carried on, and slow's 10 s schedule untouched.
        self.assertGreaterEqual(fast["consecutive_successes"],
                                before["fast"]["consecutive_successes"])
        self.assertGreaterEqual(fast["details"]["runs"],
                                before["fast"]["details"]["runs"])
        self.assertEqual(slow["last_run"], before["slow"]["last_run"])
        self.assertEqual(slow["details"]["runs"], 1)
        # The changed check ran at once, well before its 10 s interval.
        c = self.wait_check(d, "changing", lambda c: c["message"] == "b",
                            what="changing's new run", timeout=2)
        self.assertNotEqual(c["last_run"], before["changing"]["last_run"])
        self.assertEqual(c["details"]["runs"], 1)  # a new instance
        n = fast["consecutive_successes"]
        fast = self.wait_check(d, "fast",
                               lambda c: c["consecutive_successes"] > n + 2,
                               what="fast's counter growing")
        self.assertEqual(fast["consecutive_failures"], 0)
        self.assertGreater(fast["details"]["runs"], n)
        # SIGHUP with nothing changed: a new generation, nothing re-run.
        d.signal(signal.SIGHUP)
        b = self.wait_generation(d, 3)
        self.assertEqual(b["checks"]["slow"]["last_run"],
                         before["slow"]["last_run"])
        self.assertEqual(b["checks"]["changing"]["last_run"], c["last_run"])
        self.assertNotIn(f"reloading {d.path} (file changed)",
                         self.log_messages(d))
        self.stop_clean(d)

    def test_restart_settings_are_reported_not_applied(self):
        checks = [check("db", options={"message": "one"})]
        d, cm = self.start(checks)
        other = free_port()
        text = conf([check("db", options={"message": "two"})], other,
                    extra="workers: 3\n", threads=3)
        cm.write(text)
        self.wait_generation(d, 2)
        # What can change live did; what cannot is logged as such.
        self.wait_check(d, "db", lambda c: c["message"] == "two",
                        what="the live part of the edit")
        # The log has its own writer thread: the reload's last line tells
        # that the lines before it are written.
        d.wait_for(lambda: "config generation 2" in d.logs(),
                   what="the reload's log lines")
        msgs = self.log_messages(d)
        self.assertIn("listen changed: takes effect after a restart", msgs)
        self.assertIn("server settings changed: take effect after a restart",
                      msgs)
        self.assertIn("workers changed: takes effect after a restart", msgs)
        self.assertIs(self.body(d)["config"]["restart_required"], True)
        self.assertEqual(d.get(BASE + "/ready").status, 200)
        with socket.socket() as s:
            self.assertNotEqual(s.connect_ex(("127.0.0.1", other)), 0)
        # Back to what runs: nothing pending, and no warning about it.
        n = len(self.log_messages(d))
        self.edit(d, cm, [check("db", options={"message": "three"})])
        b = self.wait_generation(d, 3)
        d.wait_for(lambda: "config generation 3" in d.logs(),
                   what="the reload's log lines")
        self.assertIs(b["config"]["restart_required"], False)
        self.assertFalse([m for m in self.log_messages(d)[n:]
                          if "after a restart" in m])
        self.stop_clean(d)


class RapidReloads(ReloadCase):
    def test_200_reloads_under_probes(self):
        disk_dir = os.path.dirname(build_disk_plugin()["so"])
        dirs = [TEST_PLUGIN_DIR, disk_dir]

        def config(i):
            slow = check("slow", interval="200ms", timeout="200ms",
                         options={"mode": "sleep",
                                  "sleep_ms": ("120", "150")[i % 2],
                                  "message": f"round {i}"})
            steady = check("steady", interval="100ms", timeout="100ms")
            if i % 2:
                return [steady, slow,
                        check("info-a", critical=False, interval="100ms",
                              timeout="100ms", options={"mode": "warn"})]
            return [steady, slow,
                    check("info-disk", plugin="disk", critical=False,
                          interval="100ms", timeout="100ms",
                          options={"path": "/", "warn_below": "0",
                                   "fail_below": "0"}),
                    check("info-b", critical=False, interval="100ms",
                          timeout="100ms", options={"mode": "fail"})]

        d, cm = self.start(config(0), dirs=dirs)
        with Poller(d, [BASE + "/ready", BASE + "/checks/slow"]) as ready, \
                Poller(d, [BASE + "/live", BASE + "/",
                           BASE + "/checks/steady"]) as others:
            for i in range(1, 201):
                # A swap on even rounds, a swap and SIGHUP on odd ones:
                # both are one reload each.
                self.edit(d, cm, config(i))
                if i % 2:
                    d.signal(signal.SIGHUP)
                self.wait_generation(d, i + 1)
            self.wait_check(d, "info-disk", lambda c: c["status"] == "pass",
                            what="the disk check in the last config")
        checks = self.body(d)["checks"]
        self.assertEqual(sorted(checks),
                         ["info-b", "info-disk", "slow", "steady"])
        self.assertEqual(ready.bad, [])
        self.assertEqual(others.bad, [])
        self.assertGreater(ready.count, 200)
        self.assertGreater(others.count, 200)
        self.stop_clean(d)


class DropInPlugins(ReloadCase):
    def test_example_plugin_built_out_of_tree_and_dropped_in(self):
        built = build_disk_plugin()
        # pkg-config pointed into the install, not at some system copy.
        self.assertEqual(len(built["includes"]), 1)
        inc = os.path.realpath(built["includes"][0])
        self.assertTrue(inc.startswith(os.path.realpath(built["prefix"])),
                        inc)
        self.assertTrue(os.path.isfile(os.path.join(inc, "healthd",
                                                    "plugin.h")))
        # The installed runner tries it without a daemon.
        r = subprocess.run([os.path.join(built["prefix"], "bin",
                                         "healthd-plugin-run"),
                            built["so"], "path=/", "warn_below=0",
                            "fail_below=0"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["status"], "pass", r.stdout)
        plugins = tempfile.mkdtemp(prefix="healthd-plugins-")
        self.addCleanup(shutil.rmtree, plugins)
        os.chmod(plugins, 0o755)
        dirs = [TEST_PLUGIN_DIR, plugins]
        db = check("db", interval="100ms", timeout="100ms")

        def disk(**opts):
            return check("data", plugin="disk", critical=False,
                         interval="100ms", timeout="100ms",
                         failure_threshold=1,
                         options=dict({"path": plugins}, **opts))
        d, cm = self.start([db], dirs=dirs)
        with Poller(d, [BASE + "/ready"]) as ready:
            # Named before the file is there: refused, naming the dirs.
            self.edit(d, cm, [db, disk()])
            self.wait_error(d, lambda e: "no disk.so in" in e,
                            what="the missing plugin")
            # Dropped in: the next reload finds it (SIGHUP: the config's
            # content is unchanged).
            dst = os.path.join(plugins, "disk.so")
            shutil.copy(built["so"], dst)
            os.chmod(dst, 0o755)
            d.signal(signal.SIGHUP)
            self.wait_generation(d, 2)
            c = self.wait_check(d, "data", lambda c: c["status"] != "pending",
                                what="the disk check's first run")
            self.assertEqual(c["status"], "pass", c)
            self.assertEqual(c["plugin"], "disk")
            # The path (an option value) stays out of the message.
            self.assertRegex(c["message"],
                             r"^\d+\.\d% free \(\d+(\.\d)? [KMGTP]?i?B of "
                             r"\d+(\.\d)? [KMGTP]?i?B\)$")
            det = c["details"]
            self.assertGreater(det["total_bytes"], 0)
            self.assertLessEqual(det["free_bytes"], det["total_bytes"])
            self.assertAlmostEqual(det["free_percent"], 100.0 *
                                   det["free_bytes"] / det["total_bytes"],
                                   places=3)
            self.assertEqual(d.get(BASE + "/checks/data").status, 200)
            # Bad options are refused by the plugin's create().
            for opts, why in (({"warn_below": "abc"},
                               "warn_below: expected a percentage"),
                              ({"fail_below": "101"},
                               "fail_below: expected a percentage"),
                              ({"warn_below": "5", "fail_below": "10"},
                               "fail_below must not be above warn_below"),
                              ({"path": "relative"},
                               "path: expected an absolute path")):
                self.edit(d, cm, [db, disk(**opts)])
                b = self.wait_error(d, lambda e: why in e, what=why)
                self.assertRegex(b["config"]["last_reload_error"],
                                 WHERE + 'check "data": ' + why)
                self.assertEqual(b["config"]["generation"], 2)
            # Below fail_below: it fails, and says by how much.
            self.edit(d, cm, [db, disk(warn_below="100", fail_below="100")])
            self.wait_generation(d, 3)
            c = self.wait_check(d, "data", lambda c: c["status"] == "fail",
                                what="the disk check failing")
            self.assertIn("% free", c["message"])
            self.assertTrue(c["message"].endswith("below 100%"), c["message"])
            self.assertEqual(d.get(BASE + "/checks/data").status, 503)
            self.assertEqual(self.body(d)["status"], "degraded")
        self.assertEqual(ready.bad, [])
        self.stop_clean(d)

    def test_bad_plugins_refused_on_reload(self):
        bad = tempfile.mkdtemp(prefix="healthd-bad-")
        self.addCleanup(shutil.rmtree, bad)
        os.chmod(bad, 0o755)
        text_so = os.path.join(bad, "x.so")
        with open(text_so, "w") as f:
            f.write("this is a text file, not a shared object\n" * 20)
        testplug = os.path.join(TEST_PLUGIN_DIR, "testplug.so")
        os.mkdir(os.path.join(bad, "ww"), 0o755)
        writable = os.path.join(bad, "ww", "testplug.so")
        shutil.copy(testplug, writable)
        os.chmod(writable, 0o777)
        os.mkdir(os.path.join(bad, "wd"))
        os.chmod(os.path.join(bad, "wd"), 0o777)
        in_writable_dir = os.path.join(bad, "wd", "testplug.so")
        shutil.copy(testplug, in_writable_dir)
        os.chmod(in_writable_dir, 0o755)

        def built(name):
            return os.path.join(TEST_PLUGIN_DIR, name + ".so")
        cases = [  # (plugin as configured, the file named, the reason)
            ("bad_major", built("bad_major"),
             r"ABI version \d+\.\d+ is not supported \(healthd speaks "),
            ("bad_minor", built("bad_minor"),
             r"ABI version \d+\.\d+ is newer than healthd's"),
            ("bad_size", built("bad_size"),
             r"plugin struct is \d+ bytes, ABI version \d+\.\d+ needs at "
             r"least \d+"),
            ("bad_name", built("bad_name"),
             r'the plugin calls itself "\w+", which does not match its file '
             r"name bad_name\.so"),
            ("bad_nocheck", built("bad_nocheck"),
             r'plugin "bad_nocheck" has no check callback'),
            ("bad_nosym", built("bad_nosym"), r'no symbol "healthd_plugin"'),
            (text_so, text_so, r"cannot load: invalid ELF header"),
            (writable, writable,
             r"refused: the file is writable by others \(mode 0777\)"),
            (in_writable_dir, in_writable_dir,
             r"refused: its directory .*/wd is writable by others"),
        ]
        db = check("db", interval="100ms", timeout="100ms",
                   options={"message": "kept"})
        d, cm = self.start([db])
        with Poller(d, [BASE + "/ready"]) as ready:
            for plugin, path, reason in cases:
                self.edit(d, cm, [
                    check("db", interval="100ms", timeout="100ms",
                          options={"message": "replaced"}),
                    check("custom", plugin=plugin, critical=False)])
                b = self.wait_error(d, lambda e: path + ":" in e,
                                    what=f"{plugin} refused")
                err = b["config"]["last_reload_error"]
                self.assertRegex(err, WHERE + 'check "custom": ' +
                                 re.escape(path) + ": " + reason)
                self.assertEqual(b["config"]["generation"], 1)
                self.assertNotIn("custom", b["checks"])
                self.assertEqual(b["checks"]["db"]["message"], "kept")
                self.assert_logged(
                    d, "reload failed, keeping generation 1: " + err)
            runs = self.body(d)["checks"]["db"]["details"]["runs"]
            self.wait_check(d, "db", lambda c: c["details"]["runs"] > runs,
                            what="db still running")
            self.edit(d, cm, [db, check("custom", critical=False)])
            b = self.wait_generation(d, 2)
            self.assertIn("custom", b["checks"])
        self.assertEqual(ready.bad, [])
        self.stop_clean(d)


if __name__ == "__main__":
    unittest.main()
