"""The redis plugin against a real Redis 7 (a master and its replica)."""

import socketserver
import threading
import unittest

from servers import PluginTestCase, Redis

PASSWORD = "redis-Secr3t-pw-1234"
APP_PW = "app-Secr3t-pw-5678"
PING_PW = "ping-Secr3t-pw-9012"
WRONG = "Wr0ng-redis-Passw0rd"
USER = "usr-Secr3t-77"


class FakeRedis:
    """A RESP server on 127.0.0.1 answering each command with a canned
    reply (bytes, by upper-case command name); AUTH is accepted."""

    def __init__(self, replies):
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while True:
                    line = self.rfile.readline()
                    if not line.startswith(b"*"):
                        return
                    args = []
                    for _ in range(int(line[1:])):
                        n = int(self.rfile.readline()[1:])
                        args.append(self.rfile.read(n + 2)[:-2])
                    cmd = args[0].decode().upper()
                    self.wfile.write(outer.replies.get(cmd, b"+OK\r\n"))

        self.replies = replies
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class RedisPlugin(PluginTestCase):
    plugin = "redis"

    @classmethod
    def setUpClass(cls):
        cls.master = Redis(password=PASSWORD, maxmemory="64mb", acl_users={
            "app": APP_PW,
            # may PING but not INFO
            "pinger": (PING_PW, "~* -@all +ping"),
        }).start()
        cls.replica = Redis(replica_of=cls.master).start()
        cls.secrets = (PASSWORD, APP_PW, PING_PW, WRONG)

    @classmethod
    def tearDownClass(cls):
        cls.replica.close()
        cls.master.close()

    def test_pass_legacy_password(self):
        r, out = self.run_check({"url": self.master.url})
        self.assertEqual(r["status"], "pass", r)
        self.assertIn(f"127.0.0.1:{self.master.port}/0: PONG", r["message"])
        d = r["details"]
        self.assertTrue(d["redis_version"].startswith("7."), d)
        self.assertEqual(d["role"], "master")
        self.assertEqual(d["maxmemory"], 64 * 1024 * 1024)
        self.assertGreater(d["used_memory"], 0)
        self.assertGreaterEqual(d["latency_ms"], 0)
        self.assert_no_secret(out, self.secrets)

    def test_pass_acl_user_and_db(self):
        r = self.assert_result({"url": self.master.url_for("app", APP_PW, 5)},
                               "pass", "/5: PONG")
        self.assertEqual(r["details"]["server"],
                         f"127.0.0.1:{self.master.port}/5")
        # What the core names in its own timeout messages: no credential.
        self.assertEqual(r["target"], f"127.0.0.1:{self.master.port}/5")

    def test_percent_encoded_password(self):
        with Redis(password="p@ss:w/rd%") as r:
            self.assert_result({"url": r.url_for(None, "p%40ss%3Aw%2Frd%25")},
                               "pass")

    def test_unix_socket(self):
        self.assert_result({"url": f"unix://:{PASSWORD}@{self.master.socket}?db=2"},
                           "pass", f"unix:{self.master.socket}/2")

    def test_select_out_of_range(self):
        self.assert_result({"url": self.master.url_for(None, PASSWORD, 999)},
                           "fail", "SELECT refused", "out of range")

    def test_wrong_password(self):
        for url in (self.master.url_for(None, WRONG),
                    self.master.url_for("app", WRONG)):
            r, out = self.run_check({"url": url})
            self.assertEqual(r["status"], "fail", r)
            self.assertIn("authentication failed", r["message"])
            self.assert_no_secret(out, self.secrets)
        self.assert_result({"url": self.master.url_for()}, "fail",
                           "authentication required")

    def test_role(self):
        self.assert_result({"url": self.master.url, "role": "master"}, "pass")
        self.assert_result({"url": self.master.url, "role": "replica"}, "fail",
                           "role is master, expected replica")
        r = self.assert_result({"url": self.replica.url, "role": "replica"},
                               "pass", "replica")
        self.assertEqual(r["details"]["role"], "replica")
        self.assert_result({"url": self.replica.url, "role": "master"}, "fail",
                           "role is replica, expected master")

    def test_max_memory_ratio(self):
        r = self.assert_result({"url": self.master.url,
                                "max_memory_ratio": "0.0001"}, "warn",
                               "of maxmemory, above max_memory_ratio")
        self.assertGreater(r["details"]["memory_ratio"], 0.0001)
        self.assert_result({"url": self.master.url, "max_memory_ratio": "0.99"},
                           "pass")
        # No maxmemory: nothing to compare with, said so.
        self.assert_result({"url": self.replica.url,
                            "max_memory_ratio": "0.5"}, "pass", "no maxmemory")

    def test_user_without_info(self):
        url = self.master.url_for("pinger", PING_PW)
        self.assert_result({"url": url}, "pass", "PONG")
        self.assert_result({"url": url, "role": "master"}, "fail",
                           "INFO refused", "NOPERM")

    def test_error_replies_never_shown(self):
        # Redis 7.2 names the user in NOPERM; other servers and proxies may
        # repeat arguments.  Only the error code is shown.
        secrets = self.secrets + (USER, "Rpl-Secr3t")
        with FakeRedis({
                "PING": b"+PONG\r\n",
                "INFO": f"-NOPERM User {USER} has no permissions to run "
                        f"the 'info' command\r\n".encode(),
                "SELECT": b"-ERR Rpl-Secr3t was not expected\r\n"}) as f:
            base = f"redis://{USER}:{APP_PW}@127.0.0.1:{f.port}"
            r, out = self.run_check({"url": base + "/0", "role": "master"})
            self.assertEqual(r["status"], "fail", r)
            self.assertIn("INFO refused", r["message"])
            self.assertIn("NOPERM", r["message"])
            self.assert_no_secret(out, secrets)
            r, out = self.run_check({"url": base + "/3"})
            self.assertEqual(r["status"], "fail", r)
            self.assertIn("SELECT refused: error ERR", r["message"])
            self.assert_no_secret(out, secrets)
            self.assert_once({"url": base + "/0", "role": "master"}, 2,
                             "NOPERM", secrets=secrets)
            f.replies["PING"] = f"-{USER} Rpl-Secr3t\r\n".encode()
            r, out = self.run_check({"url": base + "/0"})
            self.assertIn("PING: unexpected reply", r["message"])
            self.assert_no_secret(out, secrets)

    def test_server_stopped(self):
        with Redis() as r:
            self.assert_result({"url": r.url}, "pass")
            r.stop()
            self.assert_result({"url": r.url}, "fail", "connection refused")

    def test_hung_server_fails_at_deadline(self):
        self.master.pause()
        try:
            self.assert_deadline({"url": self.master.url}, "waiting for AUTH")
            self.assert_deadline({"url": self.master.url}, timeout_ms=700)
        finally:
            self.master.resume()
        self.assert_result({"url": self.master.url}, "pass")

    def test_bad_options_refused(self):
        s = self.secrets
        self.assert_refused({}, "url")
        self.assert_refused({"url": f"http://:{WRONG}@h:6379"}, "redis://",
                            secrets=s)
        self.assert_refused({"url": f"rediss://:{WRONG}@h:6379"}, "TLS",
                            secrets=s)
        self.assert_refused({"url": f"redis://:{WRONG}@h:99999/0"}, "port",
                            secrets=s)
        self.assert_refused({"url": f"redis://:{WRONG}@h:6379/zero"},
                            "database", secrets=s)
        self.assert_refused({"url": f"redis://u:{WRONG}%G1@h"},
                            "percent-encoding", secrets=s)
        self.assert_refused({"url": f"redis://:{WRONG}@h/0?x=1"}, "query",
                            secrets=s)
        self.assert_refused({"url": self.master.url, "role": "primary"},
                            "role", "any, master or replica", secrets=s)
        for ratio in ("1.5", "0", "-0.1", "abc", "nan", "0.9x"):
            self.assert_refused({"url": self.master.url,
                                 "max_memory_ratio": ratio},
                                "max_memory_ratio", secrets=s)
        self.assert_refused({"url": self.master.url, "password": WRONG},
                            "password", secrets=s)

    # The daemon.

    def test_check_config_rejects_bad_options(self):
        self.assert_check_config_rejects(
            {"url": self.master.url, "max_memory_ratio": "2"},
            "max_memory_ratio", secrets=self.secrets)
        self.assert_check_config_rejects({"url": f"rediss://:{WRONG}@h"},
                                         "url", secrets=self.secrets)

    def test_once_never_prints_the_password(self):
        self.assert_once({"url": self.master.url}, 0, "PONG",
                         secrets=self.secrets)
        self.assert_once({"url": self.master.url_for("app", WRONG)}, 2,
                         "authentication failed", secrets=self.secrets)


if __name__ == "__main__":
    unittest.main()
