"""healthd ctl: every command against a running daemon, the socket's
guards (other users, a file in the way, stale sockets, garbage, silent
clients) and maintenance during the shutdown drain."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import BASE, BIN, Daemon, check

NOBODY = 65534


class Ctl(unittest.TestCase):
    def setUp(self):
        # Short and apart from the daemon's own dir: a socket path has
        # at most 107 bytes.
        self.tmp = tempfile.mkdtemp(prefix="healthd-ctl-")
        self.sock = os.path.join(self.tmp, "run", "ctl.sock")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self, checks, extra="", sock=None, **kw):
        sock = self.sock if sock is None else sock
        return Daemon(checks=checks,
                      extra=f"control: {{socket: {json.dumps(sock)}}}\n" + extra,
                      **kw)

    def ctl(self, *args, sock=None, user=None, timeout=60):
        kw = dict(user=user, group=user, extra_groups=[]) if user else {}
        binary = BIN
        if user:
            # Another user may not reach the build tree (a clone in a
            # private temp dir): a copy it can run, in self.tmp.
            binary = os.path.join(self.tmp, "healthd")
            if not os.path.exists(binary):
                shutil.copy(BIN, binary)
                os.chmod(binary, 0o755)
        return subprocess.run(
            [binary, "ctl", "--socket", sock or self.sock] + list(args),
            capture_output=True, text=True, timeout=timeout, **kw)

    def ctl_json(self, *args):
        r = self.ctl("--json", *args)
        return r.returncode, json.loads(r.stdout)

    def raw(self, data, timeout=10):
        """Bytes straight to the socket; the answer as parsed JSON."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(self.sock)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out = b""
            try:
                while chunk := s.recv(65536):
                    out += chunk
            except ConnectionResetError:
                # It answered and closed with bytes of ours unread.
                self.assertTrue(out)
        return json.loads(out)

    def control_file(self, text):
        path = os.path.join(self.tmp, "mode")
        with open(path, "w") as f:
            f.write(text + "\n")
        return path

    # --- commands ---------------------------------------------------------

    def test_status_exits_by_verdict(self):
        mode = self.control_file("pass")
        checks = [check("db", interval="1h", failure_threshold=1,
                        options={"control": mode}),
                  check("cache", critical=False, interval="1h",
                        failure_threshold=1, options={"control": mode})]
        with self.daemon(checks):
            r = self.ctl("status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"(?m)^db +pass +testplug: pass$")
            self.assertRegex(r.stdout, r"(?m)^cache +pass +\(informational\) ")
            self.assertTrue(r.stdout.endswith("verdict: healthy\n"), r.stdout)

            self.control_file("fail")
            self.assertEqual(self.ctl("run", "cache").returncode, 1)
            r = self.ctl("status")
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("verdict: degraded", r.stdout)

            self.assertEqual(self.ctl("run", "db").returncode, 1)
            rc, answer = self.ctl_json("status")
            self.assertEqual(rc, 2)
            self.assertEqual(answer["verdict"], "unhealthy")
            self.assertEqual(answer["health"]["checks"]["db"]["status"], "fail")
            self.assertEqual(answer["v"], 1)

    def test_run_gives_a_fresh_result(self):
        with self.daemon([check("db", interval="1h")]) as d:
            before = d.get(BASE + "/checks/db").json()
            self.assertEqual(before["details"]["runs"], 1)
            r = self.ctl("run", "db")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r"^db: pass in [0-9.]+ ms: testplug: pass\n"
                                       r"status: pass\n$")
            rc, answer = self.ctl_json("run", "db")
            self.assertEqual(rc, 0)
            self.assertEqual(answer["check"]["details"]["runs"], 3)
            self.assertNotEqual(answer["check"]["last_run"], before["last_run"])
            # What the endpoints say too.
            self.assertEqual(d.get(BASE + "/checks/db").json()["details"]["runs"], 3)

            r = self.ctl("run", "nosuch")
            self.assertEqual(r.returncode, 2)
            self.assertIn('unknown check "nosuch"', r.stderr)

    def test_run_waits_for_the_run_in_flight(self):
        """Two at once get the same run: a run in flight is waited for,
        never doubled."""
        checks = [check("slow", interval="1h", timeout="3s",
                        options={"mode": "sleep", "sleep_ms": 1000})]
        with self.daemon(checks):
            out = []

            def one():
                out.append(self.ctl_json("run", "slow"))
            threads = [threading.Thread(target=one) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual([rc for rc, _ in out], [0, 0])
            runs = {a["check"]["details"]["runs"] for _, a in out}
            self.assertEqual(runs, {2})

    def test_drain_and_undrain(self):
        with self.daemon([check("db")]) as d:
            r = self.ctl("drain", "--reason", "heap dump")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "drained: /ready answers 503 until undrained\n")
            ready = d.get(BASE + "/ready")
            self.assertEqual(ready.status, 503)
            self.assertEqual(ready.json()["reason"], "maintenance: heap dump")
            self.assertTrue(ready.json()["maintenance"])
            self.assertEqual(d.get(BASE + "/live").status, 200)
            self.assertEqual(d.get(BASE + "/startup").status, 200)
            body = d.get(BASE + "/").json()
            self.assertFalse(body["ready"])
            self.assertEqual(body["status"], "healthy")
            self.assertEqual(body["maintenance"]["reason"], "heap dump")
            self.assertIsNone(body["maintenance"]["until"])
            self.assertIsNotNone(body["maintenance"]["since"])
            metrics = d.get("/metrics").raw.decode()
            self.assertIn("# TYPE healthd_maintenance gauge\nhealthd_maintenance 1\n",
                          metrics)
            self.assertIn("healthd_ready 0\n", metrics)
            d.wait_logged("maintenance: /ready answers 503 until undrained; "
                          "reason: heap dump")

            r = self.ctl("undrain")
            self.assertEqual((r.returncode, r.stdout), (0, "undrained\n"))
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            self.assertIsNone(d.get(BASE + "/").json()["maintenance"])
            self.assertIn("healthd_maintenance 0\n", d.get("/metrics").raw.decode())
            d.wait_logged("maintenance over: undrained")
            r = self.ctl("undrain")
            self.assertEqual((r.returncode, r.stdout), (0, "was not drained\n"))

            # Without a reason, /ready says maintenance alone.
            self.assertEqual(self.ctl("drain").returncode, 0)
            self.assertEqual(d.get(BASE + "/ready").json()["reason"], "maintenance")

    def test_drain_for_expires(self):
        with self.daemon([check("db")]) as d:
            r = self.ctl("drain", "--for", "1s", "--reason", "deploy")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "drained: /ready answers 503 for 1s\n")
            self.assertEqual(d.get(BASE + "/ready").status, 503)
            self.assertIsNotNone(d.get(BASE + "/").json()["maintenance"]["until"])
            d.wait_for(lambda: d.get(BASE + "/ready").status == 200, timeout=5,
                       what="the drain to expire")
            d.wait_logged("maintenance over: expired")

    def test_drain_refuses_bad_arguments(self):
        with self.daemon([check("db")]) as d:
            for args in (["--for", "0s"], ["--for", "soon"]):
                r = self.ctl("drain", *args)
                self.assertEqual(r.returncode, 2, args)
                self.assertIn("--for", r.stderr)
            r = self.ctl("drain", "--reason", "two\nlines")
            self.assertEqual(r.returncode, 2)
            self.assertIn("without control characters", r.stderr)
            r = self.ctl("drain", "--reason", "x" * 201)
            self.assertEqual(r.returncode, 2)
            self.assertEqual(self.ctl("status", "--reason", "x").returncode, 2)
            self.assertEqual(self.ctl("bogus").returncode, 2)
            self.assertEqual(self.ctl("run").returncode, 2)
            self.assertEqual(d.get(BASE + "/ready").status, 200)

    def test_reload(self):
        with self.daemon([check("db")]) as d:
            r = self.ctl("reload")
            self.assertEqual((r.returncode, r.stdout), (0, "ok, generation 2\n"))
            d.wait_logged("(healthd ctl)")

            with open(d.path) as f:
                good = f.read()
            with open(d.path, "w") as f:
                f.write(good.replace("interval: 1s", "interval: 2x"))
            r = self.ctl("reload")
            self.assertEqual(r.returncode, 2)
            self.assertRegex(r.stderr, "^healthd ctl: reload: " + d.path +
                             r':\d+:\d+: interval: "2x" is not a duration')
            rc, answer = self.ctl_json("reload")
            self.assertEqual((rc, answer["ok"], answer["generation"]), (2, False, 2))
            body = d.get(BASE + "/").json()
            self.assertEqual(body["config"]["generation"], 2)
            self.assertEqual(body["config"]["last_reload"], "error")
            self.assertEqual(body["checks"]["db"]["interval_ms"], 1000)
            self.assertEqual(d.get(BASE + "/ready").status, 200)

    # --- the socket -------------------------------------------------------

    def test_socket_is_private_and_removed_on_exit(self):
        with self.daemon([check("db")]) as d:
            self.assertEqual(os.stat(self.sock).st_mode & 0o777, 0o600)
            self.assertEqual(os.stat(os.path.dirname(self.sock)).st_mode & 0o777,
                             0o700)
            d.signal(signal.SIGTERM)
            self.assertEqual(d.proc.wait(10), 0)
            self.assertFalse(os.path.exists(self.sock))

    def test_another_user_is_refused(self):
        os.chmod(self.tmp, 0o755)
        with self.daemon([check("db")]) as d:
            r = self.ctl("status", user=NOBODY)
            self.assertEqual(r.returncode, 3)
            self.assertIn(f"cannot connect to {self.sock}: Permission denied",
                          r.stderr)
            # Past the file modes, the daemon itself says no.
            os.chmod(os.path.dirname(self.sock), 0o755)
            os.chmod(self.sock, 0o666)
            r = self.ctl("drain", user=NOBODY)
            self.assertEqual(r.returncode, 2)
            self.assertIn("refused: uid 65534 is neither healthd's user", r.stderr)
            d.wait_logged("refused: uid 65534")
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            self.assertEqual(self.ctl("status").returncode, 0)

    def test_a_file_in_the_way_is_left_alone(self):
        os.makedirs(os.path.dirname(self.sock))
        with open(self.sock, "w") as f:
            f.write("precious\n")
        with self.daemon([check("db")]) as d:
            d.wait_logged(f"control socket {self.sock}: exists and is not a "
                          "socket; not removing it")
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            r = self.ctl("status")
            self.assertEqual(r.returncode, 3)
            self.assertIn(self.sock, r.stderr)
        with open(self.sock) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_a_stale_socket_is_replaced_a_live_one_is_not(self):
        os.makedirs(os.path.dirname(self.sock))
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(self.sock)
        stale.close()  # the file stays, nothing listens
        with self.daemon([check("db")]):
            self.assertEqual(self.ctl("status").returncode, 0)
            with self.daemon([check("other")]) as second:
                second.wait_logged("another process listens on it")
                r = self.ctl("status")
                self.assertEqual(r.returncode, 0)
                self.assertRegex(r.stdout, r"(?m)^db ")

    def test_no_daemon(self):
        r = self.ctl("status")
        self.assertEqual(r.returncode, 3)
        self.assertIn(f"cannot connect to {self.sock}: No such file or directory",
                      r.stderr)
        # Turned off in the config: ctl says so, the daemon has no socket.
        with self.daemon([check("db")], sock="") as d:
            r = subprocess.run([BIN, "ctl", "-c", d.path, "status"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 3)
            self.assertIn("turns the control socket off", r.stderr)
            self.assertFalse(os.path.exists(self.sock))
        # -c finds the socket in the config.
        with self.daemon([check("db")]) as d:
            r = subprocess.run([BIN, "ctl", "-c", d.path, "status"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)

    def test_garbage_and_oversized_requests(self):
        with self.daemon([check("db")]) as d:
            cases = [
                (b"garbage\n", "bad request"),
                (b"\xff\xfe{}\n", "bad request"),
                (b"[1, 2]\n", "bad request"),
                (b'{"v": 1, "cmd": "status"} trailing\n', "bad request"),
                (b'{"cmd": "status"}\n', "protocol version 1"),
                (b'{"v": 2, "cmd": "status"}\n', "protocol version 1"),
                (b'{"v": 1, "cmd": "shutdown"}\n', '"cmd": expected'),
                (b'{"v": 1, "cmd": "run"}\n', '"check": required'),
                (b'{"v": 1, "cmd": "run", "check": 5}\n', '"check": expected string'),
                (b'{"v": 1, "cmd": "run", "check": "db\\u0000x"}\n', '"check": expected'),
                (b'{"v": 1, "cmd": "status", "x": 1}\n', 'unknown key "x"'),
                (b'{"v": 1, "cmd": "drain", "for_ms": -5}\n', "for_ms"),
                (b"", "bad request"),
                (b"{" * 5000, "request too large (at most 4096 bytes)"),
                (b'{"v":1,"cmd":"status"}' + b" " * 5000, "request too large"),
            ]
            for data, error in cases:
                answer = self.raw(data)
                self.assertFalse(answer["ok"], data[:40])
                self.assertIn(error, answer["error"], data[:40])
            self.assertTrue(self.raw(b'{"v":1,"cmd":"status"}')["ok"])
            self.assertEqual(d.get(BASE + "/live").status, 200)
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            self.assertEqual(self.ctl("status").returncode, 0)

    def test_silent_clients_block_nobody(self):
        with self.daemon([check("db")]) as d:
            silent = []
            for _ in range(4):  # every slot taken
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                silent.append(s)
            time.sleep(0.2)
            busy = self.ctl("status")
            self.assertEqual(busy.returncode, 2)
            self.assertIn("busy", busy.stderr)
            self.assertEqual(d.get(BASE + "/ready").status, 200)
            # Each is answered and let go after 2 s.
            for s in silent:
                s.settimeout(10)
                answer = json.loads(s.recv(65536))
                self.assertIn("no request within 2000 ms", answer["error"])
                s.close()
            t0 = time.monotonic()
            one = socket.socket(socket.AF_UNIX)
            one.connect(self.sock)
            r = self.ctl("status")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertLess(time.monotonic() - t0, 1.5)
            one.close()

    def test_maintenance_during_the_shutdown_drain(self):
        with self.daemon([check("db")], extra="") as d:
            with open(d.path) as f:
                text = f.read().replace("drain: 1s", "drain: 3s")
            with open(d.path, "w") as f:
                f.write(text)
            self.assertEqual(self.ctl("reload").returncode, 0)
            d.signal(signal.SIGTERM)
            d.wait_for(lambda: d.get(BASE + "/ready").status == 503,
                       what="the shutdown drain")
            self.assertEqual(self.ctl("drain", "--reason", "late").returncode, 0)
            self.assertEqual(self.ctl("undrain").returncode, 0)
            ready = d.get(BASE + "/ready")
            self.assertEqual((ready.status, ready.json()["reason"]), (503, "draining"))
            r = self.ctl("reload")
            self.assertEqual(r.returncode, 2)
            self.assertIn("shutting down: not reloading", r.stderr)
            self.assertEqual(d.proc.wait(10), 0)


if __name__ == "__main__":
    unittest.main()
