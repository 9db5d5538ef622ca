"""Plugin hosts: a plugin that crashes, hangs, leaks, prints or breaks the
protocol costs its own checks, never the daemon.

Each case runs a critical check of a well-behaved plugin (testplug) beside
an informational check of misbehave (tests/plugins/misbehave.c), probes
/live and /ready every 100 ms while it misbehaves, then removes it and
waits for the daemon's threads, descriptors and child processes to come
back to what they were.  The log must stay one JSON object per line.
"""

import json
import os
import re
import shutil
import signal
import tempfile
import time
import unittest

from harness import (BASE, TEST_PLUGIN_DIR, Daemon, check, config_text,
                     free_port, run)

from test_runs import Reloadable


def proc_stat(pid):
    """(state, ppid, pgid) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2])
    except (OSError, IndexError):
        return None


def descendants(pid):
    """Every process below pid (zombies included), as {pid: state}."""
    kids = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                kids.setdefault(st[1], []).append((int(name), st[0]))
    found, todo = {}, [pid]
    while todo:
        for child, state in kids.get(todo.pop(), []):
            found[child] = state
            todo.append(child)
    return found


def usage(pid):
    """What must come back to its baseline: threads, descriptors, and the
    processes below the daemon."""
    return (len(os.listdir(f"/proc/{pid}/task")),
            len(os.listdir(f"/proc/{pid}/fd")), len(descendants(pid)))


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] != "Z"


GOOD = check("good", interval="200ms", timeout="150ms")

# Under AddressSanitizer a plugin host's SIGSEGV would be ASan's report and
# abort(): let the signal be what the daemon sees, as in a release build.
CRASH_ENV = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
             ":handle_segv=0:handle_abort=0"}


def bad(what, interval="500ms", timeout="300ms", **kw):
    opts = {"check": what}
    opts.update(kw.pop("options", {}))
    return check("bad", plugin="misbehave", critical=False, interval=interval,
                 timeout=timeout, options=opts, **kw)


class Misbehaving(unittest.TestCase):
    def misbehave(self, bad_check, seconds=3.0):
        """Run bad_check beside GOOD; return (messages seen, the daemon's
        log, the metrics text) once it is removed and everything it used
        is back."""
        with Reloadable(checks=[GOOD], env=CRASH_ENV) as d:
            time.sleep(0.5)
            baseline = usage(d.proc.pid)
            d.rewrite(GOOD, bad_check)
            d.wait_generation(2)
            messages, runs = [], set()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                self.assertEqual(d.get(BASE + "/live").status, 200)
                self.assertEqual(d.get(BASE + "/ready").status, 200,
                                 d.logs()[-3000:])
                body = d.check_body("bad")
                if body.get("message"):
                    messages.append(body["message"])
                runs.add(body.get("last_run"))
                time.sleep(0.1)
            self.assertGreaterEqual(len(runs - {None}), 2,
                                    "the check was not retried on schedule")
            self.assertEqual(d.check_body("good")["status"], "pass")
            metrics = d.get("/metrics").raw.decode()
            d.rewrite(GOOD)
            d.wait_generation(3)
            d.wait_for(lambda: usage(d.proc.pid) == baseline, timeout=10,
                       interval=0.1,
                       what=f"threads, fds, processes back to {baseline}")
            d.assert_clean_exit(self)
            logs = d.logs()
        for line in logs.splitlines():
            json.loads(line)  # one JSON object per line, whatever was printed
        return messages, logs, metrics

    def assert_said(self, messages, pattern):
        self.assertTrue(any(re.search(pattern, m) for m in messages),
                        f"no message like {pattern!r} in {set(messages)}")

    def test_segv(self):
        messages, logs, metrics = self.misbehave(bad("segv"))
        self.assert_said(messages, r"^plugin misbehave crashed: SIGSEGV$")
        # Crashing again and again: restarted with a growing backoff,
        # during which the check fails at once, saying so.
        self.assert_said(messages, r"crashed: SIGSEGV \d+ times in a row; "
                                   r"next try in \d+\.\d s")
        self.assertRegex(logs, r'"plugin misbehave crashed: SIGSEGV '
                               r'\(host pid \d+\); 1 run failed"')
        self.assertRegex(metrics, r'healthd_plugin_host_restarts_total'
                                  r'\{plugin="misbehave",reason="crash"\} [1-9]')

    def test_abort(self):
        messages, _, _ = self.misbehave(bad("abort"))
        self.assert_said(messages, r"^plugin misbehave crashed: SIGABRT$")

    def test_exit(self):
        messages, _, _ = self.misbehave(bad("exit"))
        self.assert_said(messages, r"^plugin misbehave exited with status 3$")

    def test_hang(self):
        messages, logs, metrics = self.misbehave(bad("hang"), seconds=4.0)
        self.assert_said(messages, r"^timed out after 300 ms$")
        self.assertIn("a run of check bad is still in check() 1000 ms past "
                      "its deadline; replacing its host", logs)
        self.assertRegex(metrics, r'healthd_plugin_host_restarts_total'
                                  r'\{plugin="misbehave",reason="timeout"\} [1-9]')

    def test_fork_hang_kills_the_child_too(self):
        """The child ignores SIGTERM: the host's process group is killed."""
        with tempfile.TemporaryDirectory() as tmp:
            pidfile = os.path.join(tmp, "child")
            messages, _, _ = self.misbehave(
                bad("fork_hang", options={"pidfile": pidfile}), seconds=4.0)
            with open(pidfile) as f:
                self.assertFalse(alive(int(f.read())))
        self.assert_said(messages, r"^timed out after 300 ms$")

    def test_leak_replaces_the_host(self):
        messages, logs, metrics = self.misbehave(
            bad("leak", interval="200ms", timeout="150ms",
                isolation_max_rss="48MiB"), seconds=4.0)
        self.assert_said(messages, r"^misbehave: leak survived$")
        self.assertRegex(logs, r"plugin misbehave: host \(pid \d+\) uses \d+ "
                               r"MiB, over isolation_max_rss 48 MiB")
        self.assertRegex(metrics, r'healthd_plugin_host_restarts_total'
                                  r'\{plugin="misbehave",reason="memory"\} [1-9]')

    def test_print_is_logged_cut_and_limited(self):
        messages, logs, _ = self.misbehave(bad("print", interval="1s"))
        self.assert_said(messages, r"^misbehave: print survived$")
        self.assertRegex(logs, r'"plugin misbehave stdout: x{512} \[cut\]"')
        self.assertRegex(logs, r'"plugin misbehave stderr: x{512} \[cut\]"')
        self.assertRegex(logs, r"plugin misbehave: \d+ lines of stdout "
                               r"suppressed")
        self.assertLess(len(logs), 200_000)

    def test_garbage_on_the_protocol_socket(self):
        messages, logs, metrics = self.misbehave(bad("garbage"))
        self.assert_said(messages, r"^plugin misbehave broke the host "
                                   r"protocol; host stopped$")
        self.assertIn("sent a malformed frame; stopping it", logs)
        self.assertRegex(metrics, r'healthd_plugin_host_restarts_total'
                                  r'\{plugin="misbehave",reason="protocol"\} [1-9]')


class Create(unittest.TestCase):
    def test_crash_in_create_is_refused(self):
        with Reloadable(checks=[GOOD], env=CRASH_ENV) as d:
            cfg = config_text([GOOD, bad("pass", options={"create": "segv"})],
                              d.port)
            path = os.path.join(d.dir.name, "bad.yaml")
            with open(path, "w") as f:
                f.write(cfg)
            r = run(["-c", path, "--check-config"], env=CRASH_ENV)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertRegex(r.stderr, r'bad\.yaml:\d+:\d+: check "bad": '
                                       r"plugin misbehave crashed: SIGSEGV")
            d.rewrite(GOOD, bad("pass", options={"create": "segv"}))
            d.wait_for(lambda: d.get(BASE + "/").json()["config"]
                       ["last_reload"] == "error", what="the refused reload")
            body = d.get(BASE + "/").json()
            self.assertEqual(body["config"]["generation"], 1)
            self.assertIn("plugin misbehave crashed: SIGSEGV",
                          body["config"]["last_reload_error"])
            self.assertEqual(list(body["checks"]), ["good"])
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            d.assert_clean_exit(self)

    def test_hang_in_create_is_refused(self):
        with Reloadable(checks=[GOOD]) as d:
            d.rewrite(GOOD, bad("pass", options={"create": "hang"}))
            d.wait_for(lambda: d.get(BASE + "/").json()["config"]
                       ["last_reload"] == "error", timeout=15,
                       what="the refused reload")
            err = d.get(BASE + "/").json()["config"]["last_reload_error"]
            self.assertRegex(err, r'check "bad": plugin misbehave: create\(\) '
                                  r"did not return within 5000 ms")
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            d.wait_for(lambda: len(descendants(d.proc.pid)) == 1,
                       what="the hung host gone")
            d.assert_clean_exit(self)


class Replace(unittest.TestCase):
    def test_new_build_is_picked_up_and_a_refused_one_changes_nothing(self):
        """A plugin file replaced by renaming a new build over it is loaded
        by a fresh host at the next reload; a build the loader refuses
        leaves the running one running."""
        with tempfile.TemporaryDirectory() as dropin:
            target = os.path.join(dropin, "misbehave.so")

            def drop(src):
                shutil.copy(os.path.join(TEST_PLUGIN_DIR, src), target + ".new")
                os.rename(target + ".new", target)

            drop("misbehave.so")
            port = free_port()
            text = config_text([GOOD, bad("pass", interval="200ms",
                                                timeout="150ms")], port)
            text = re.sub(r"(?m)^plugin_dirs: .*$", "plugin_dirs: " +
                          json.dumps([dropin, TEST_PLUGIN_DIR]), text)
            with Reloadable(config=text, port=port) as d:
                def host():
                    return d.check_body("bad").get("details", {}).get("runs")
                d.wait_for(lambda: (host() or 0) >= 3, what="runs")
                drop("bad_major.so")  # another ABI: refused
                d.signal(signal.SIGHUP)
                d.wait_for(lambda: d.get(BASE + "/").json()["config"]
                           ["last_reload"] == "error", what="the refusal")
                self.assertIn("ABI version", d.get(BASE + "/").json()
                              ["config"]["last_reload_error"])
                runs = host()
                d.wait_for(lambda: host() > runs, what="the old build running")
                drop("misbehave.so")  # a new inode: a new build
                d.signal(signal.SIGHUP)
                d.wait_generation(2)
                # The fresh host's instance counts its runs from 1 again.
                d.wait_for(lambda: host() is not None and host() < runs,
                           what="the new build's runs")
                d.assert_clean_exit(self)


    def test_reload_missing_a_plugin_is_retried_when_it_appears(self):
        with tempfile.TemporaryDirectory() as dropin:
            port = free_port()
            good = check("good", plugin=os.path.join(TEST_PLUGIN_DIR,
                                                     "testplug.so"))
            text = re.sub(r"(?m)^plugin_dirs: .*$", "plugin_dirs: " +
                          json.dumps([dropin]), config_text([good], port))
            with Reloadable(config=text, port=port) as d:
                d.rewrite(good, bad("pass"))
                d.wait_for(lambda: d.get(BASE + "/").json()["config"]
                           ["last_reload"] == "error", what="the refusal")
                self.assertIn('no misbehave.so in ' + dropin,
                              d.get(BASE + "/").json()["config"]
                              ["last_reload_error"])
                shutil.copy(os.path.join(TEST_PLUGIN_DIR, "misbehave.so"),
                            os.path.join(dropin, ".misbehave.so.tmp"))
                os.rename(os.path.join(dropin, ".misbehave.so.tmp"),
                          os.path.join(dropin, "misbehave.so"))
                d.wait_generation(2)  # no SIGHUP: the file's arrival
                d.wait_logged("retrying the failed reload")
                d.wait_for(lambda: d.check_body("bad").get("status") == "pass",
                           what="the new check")
                d.assert_clean_exit(self)


class Hygiene(unittest.TestCase):
    def hosts(self, d):
        return {pid for pid, state in descendants(d.proc.pid).items()
                if proc_stat(pid)[1] == d.proc.pid}

    def test_host_is_named_and_inherits_nothing(self):
        with Daemon(checks=[GOOD]) as d:
            (host,) = self.hosts(d)
            with open(f"/proc/{host}/cmdline", "rb") as f:
                self.assertEqual(f.read(), b"healthd: plugin testplug\0")
            self.assertEqual(sorted(os.listdir(f"/proc/{host}/fd")),
                             ["0", "1", "2", "3"])
            self.assertEqual(proc_stat(host)[2], host)  # its own group
            body = d.get(BASE + "/").json()
            self.assertEqual(body["checks"]["good"]["isolation"], "process")

    def test_inline_runs_in_the_daemon(self):
        with Daemon(checks=[check("good", isolation="inline")]) as d:
            self.assertEqual(self.hosts(d), set())
            body = d.get(BASE + "/").json()
            self.assertEqual(body["checks"]["good"]["isolation"], "inline")
            self.assertEqual(body["checks"]["good"]["status"], "pass")

    def test_sigkill_of_the_daemon_leaves_no_host(self):
        d = Daemon(checks=[GOOD, bad("pass")])
        with d:
            hosts = self.hosts(d)
            self.assertEqual(len(hosts), 2)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait(5)
            deadline = time.monotonic() + 5
            while any(alive(h) for h in hosts) and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertFalse([h for h in hosts if alive(h)])

    def test_orphaned_child_is_reaped(self):
        """A plugin that starts a child and never waits for it leaves no
        zombie: its host reaps it after a grace."""
        with Reloadable(checks=[GOOD]) as d:
            pidfile = os.path.join(d.dir.name, "child")
            d.rewrite(GOOD, bad("orphan", interval="10s", timeout="1s",
                                options={"pidfile": pidfile}))
            d.wait_for(lambda: os.path.exists(pidfile), what="the child")
            time.sleep(0.2)
            with open(pidfile) as f:
                child = int(f.read())
            d.wait_for(lambda: proc_stat(child) is None, timeout=6,
                       interval=0.1, what="the zombie to be reaped")
            d.assert_clean_exit(self)


if __name__ == "__main__":
    unittest.main()
