"""Logging never stalls the daemon.

healthd logs from its scheduler and workers; a log collector that stops
reading stderr must cost log lines, never probes, runs or timeouts.  The
daemon here runs with stderr on a pipe that the test leaves unread until the
pipe and the logger's queue are full.
"""

import array
import fcntl
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import termios
import threading
import time
import unittest

from harness import BASE, BIN, Daemon, check, config_text, free_port, run

# A 64 KiB pipe is full when its 16 pages are taken; a write only merges
# into the last page what fits, so "full" can be well under 64 KiB.
PIPE_HALF = 32 * 1024
DROPPED = re.compile(r"^log: \d+ lines? dropped \(stderr blocked\)$")


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def pending(pipe):
    """Bytes written to the pipe and not read yet."""
    n = array.array("i", [0])
    fcntl.ioctl(pipe.fileno(), termios.FIONREAD, n)
    return n[0]


def json_lines(text):
    """Every line of a JSON log, parsed: a torn line fails the test."""
    return [json.loads(line) for line in text.splitlines() if line]


class BlockedStderr(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="healthd-test-")
        self.addCleanup(self.tmp.cleanup)
        self.port = free_port()

    def get(self, path, timeout=2):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def start(self, checks, extra=""):
        path = os.path.join(self.tmp.name, "healthd.yaml")
        write(path, config_text(checks, self.port, extra))
        proc = subprocess.Popen([BIN, "-c", path], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        self.addCleanup(proc.stderr.close)
        self.addCleanup(lambda: proc.poll() is None and
                        (proc.kill(), proc.wait(10)))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), "healthd exited")
            try:
                if self.get(BASE + "/startup")[0] == 200:
                    return proc
            except OSError:
                pass
            time.sleep(0.01)
        self.fail("healthd did not start")

    def test_unread_stderr_never_stalls_the_daemon(self):
        stuck_ctl = os.path.join(self.tmp.name, "stuck")
        write(stuck_ctl, "pass\n")
        # Ten checks logging a long debug line every 20 ms fill the pipe
        # and the logger's queue within seconds.
        noisy = [check(f"noisy{i}", critical=False, interval="20ms",
                       timeout="20ms", options={"message": "x" * 200})
                 for i in range(10)]
        stuck = check("stuck", interval="1s", timeout="200ms",
                      failure_threshold=1, options={"control": stuck_ctl})
        # Inline: the hung run keeps its worker, as in a daemon whose
        # threads are all busy (plugin hosts are test_isolation's).
        proc = self.start(noisy + [stuck], extra="workers: 4\n"
                          "defaults:\n  isolation: inline\n")

        # Full: over half of it taken and no byte more for a second, while
        # the checks would log hundreds of lines.
        deadline = time.monotonic() + 20
        full, since = 0, time.monotonic()
        while time.monotonic() - since < 1:
            self.assertLess(time.monotonic(), deadline, "the pipe never filled")
            now = pending(proc.stderr)
            if now != full or now < PIPE_HALF:
                full, since = now, time.monotonic()
            time.sleep(0.05)
        # From now on every write to stderr blocks.  A run that hangs must
        # still be timed out, and published, by the scheduler.
        write(stuck_ctl, "hang\n")

        t0 = time.monotonic()
        last_run, runs, timed_out = None, 0, False
        next_run_check = t0 + 1
        while time.monotonic() - t0 < 10:
            try:
                status, _ = self.get(BASE + "/live")
            except OSError as e:
                self.fail(f"/live after {time.monotonic() - t0:.1f} s: {e!r}")
            self.assertEqual(status, 200,
                             f"/live after {time.monotonic() - t0:.1f} s")
            if time.monotonic() >= next_run_check:
                status, raw = self.get(BASE + "/checks/noisy0")
                c = json.loads(raw)
                self.assertGreater(c["last_run"], last_run or "",
                                   "no run recorded for a second")
                self.assertGreater(c["details"]["runs"], runs)
                last_run, runs = c["last_run"], c["details"]["runs"]
                next_run_check = time.monotonic() + 1
            if not timed_out:
                status, raw = self.get(BASE + "/checks/stuck")
                timed_out = (json.loads(raw).get("message")
                             == "timed out after 200 ms")
            time.sleep(0.05)
        self.assertTrue(timed_out, "the hung run's timeout was not published")
        self.assertGreaterEqual(pending(proc.stderr), full,
                                "someone read the pipe")

        # Read the log now; the daemon drains and exits as usual.
        out = []
        reader = threading.Thread(target=lambda: out.append(
            proc.stderr.read()))
        reader.start()
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0)
        reader.join(15)
        self.assertFalse(reader.is_alive(), "stderr still open")
        lines = json_lines(out[0].decode())
        drops = [l for l in lines if DROPPED.match(l["msg"])]
        self.assertTrue(drops, "no dropped-lines warning")
        self.assertEqual(drops[0]["level"], "warn")
        msgs = [l["msg"] for l in lines]
        self.assertIn("drained; stopping", msgs)
        self.assertLess(msgs.index(drops[0]["msg"]),
                        msgs.index("drained; stopping"))


class Order(unittest.TestCase):
    def test_file_log_complete_and_in_order(self):
        with Daemon(checks=[check(f"c{i}", interval="50ms", timeout="50ms")
                            for i in range(3)]) as d:
            time.sleep(0.5)
            d.signal(signal.SIGTERM)
            self.assertEqual(d.proc.wait(10), 0, d.logs())
            msgs = [l["msg"] for l in json_lines(d.logs())]
        want = ["listening on port", "healthd 0.1.0: 3 checks from",
                "started: every check has a first result", "Terminated: draining",
                "drained; stopping"]
        at = [next((i for i, m in enumerate(msgs) if m.startswith(w)), -1)
              for w in want]
        self.assertNotIn(-1, at, msgs)
        self.assertEqual(at, sorted(at), msgs)
        self.assertFalse([m for m in msgs if DROPPED.match(m)])

    def test_check_config_and_once_print_their_log(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "healthd.yaml")
            write(path, config_text([check("db")], free_port()))
            r = run(["-c", path, "--once"])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue([l for l in json_lines(r.stderr)
                             if l.get("check") == "db"], r.stderr)
            write(path, config_text([check("db", options={"mode": "nope"})],
                                    free_port()))
            r = run(["-c", path, "--check-config"])
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("mode: expected pass", r.stderr)


if __name__ == "__main__":
    unittest.main()
