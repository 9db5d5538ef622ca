"""The mysql plugin against a real MariaDB (Debian's mariadb-server), started
once for the suite on 127.0.0.1 with TLS (certificates from the CA helper of
test_plugin_tcp) and a unix socket."""

import time
import unittest

import harness
from servers import MariaDB, PluginTestCase
from test_plugin_tcp import CA

WRONG = "Wr0ng-my-Passw0rd-77"


class MySQLPlugin(PluginTestCase):
    plugin = "mysql"

    @classmethod
    def setUpClass(cls):
        cls.ca = CA()
        # DNS:localhost only: 127.0.0.1 passes verify_ca, not
        # verify_identity.
        cert = cls.ca.issue("server", days=2, san="DNS:localhost")
        try:
            cls.db = MariaDB(tls=(cert, cls.ca.key)).start()
            # Rights on app_* but no such database: the server says
            # "unknown database" (without rights it says access denied).
            cls.db.sql(f"GRANT ALL ON `app\\_%`.* TO "
                       f"'{cls.db.user}'@'127.0.0.1'")
        except BaseException:
            cls.ca.close()
            raise
        cls.secrets = (cls.db.password, WRONG)

    @classmethod
    def tearDownClass(cls):
        cls.db.close()
        cls.ca.close()

    def url(self, scheme="mysql", query=""):
        d = self.db
        return (f"{scheme}://{d.user}:{d.password}@127.0.0.1:{d.port}/"
                f"{d.dbname}{query}")

    def test_pass_url_keyvalue_and_sqlalchemy_forms(self):
        target = f"127.0.0.1:{self.db.port}/app"
        for dsn in (self.db.url, self.db.dsn, self.url("mariadb"),
                    self.url("mysql+pymysql"), self.url("mysql+mysqldb"),
                    self.url("mariadb+mariadbconnector"),
                    self.db.dsn_with(password=f"'{self.db.password}'")):
            with self.subTest(dsn=dsn[:14]):
                r, out = self.run_check({"dsn": dsn})
                self.assertEqual(r["status"], "pass", r)
                self.assertIn(f"mysql {target}: query ok", r["message"])
                self.assertEqual(r["target"], target)
                d = r["details"]
                self.assertIn("MariaDB", d["server_version"])
                self.assertIs(d["read_only"], False)
                self.assertEqual(d["role"], "primary")
                self.assert_no_secret(out, self.secrets)

    def test_connect_mode_and_custom_query(self):
        for mode in ("connect", "persistent"):
            self.assert_result({"dsn": self.db.url, "mode": mode, "query":
                                "SELECT COUNT(*) FROM information_schema."
                                "TABLES"}, "pass", "query ok")

    def test_query_error_text_never_shown(self):
        secret = "Qry-Secr3t-4242"
        r, out = self.run_check({"dsn": self.db.url,
                                 "query": f"SELECT * FROM `{secret}`"})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("query failed: table does not exist (1146)",
                      r["message"])
        self.assert_no_secret(out, self.secrets + (secret,))
        self.assert_result({"dsn": self.db.url, "query": "SELEC 1"}, "fail",
                           "query failed: syntax error (1064)")

    def test_wrong_password_never_printed(self):
        r, out = self.run_check({"dsn": self.db.dsn_with(password=WRONG)})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("access denied (1045)", r["message"])
        self.assert_no_secret(out, self.secrets)
        self.assert_once({"dsn": self.db.dsn_with(password=WRONG)}, 2,
                         "access denied", secrets=self.secrets)

    def test_unknown_database(self):
        self.assert_result({"dsn": self.db.dsn_with(dbname="app_missing")},
                           "fail", "unknown database (1049)")

    def test_server_stopped_then_back(self):
        self.assert_result({"dsn": self.db.url}, "pass")
        self.db.stop()
        try:
            self.assert_result({"dsn": self.db.url}, "fail",
                               "connection refused")
        finally:
            self.db.start()
        self.assert_result({"dsn": self.db.url}, "pass")

    def test_hung_server_fails_at_deadline(self):
        self.db.pause()
        try:
            for mode in ("connect", "persistent"):
                with self.subTest(mode=mode):
                    self.assert_deadline({"dsn": self.db.url, "mode": mode},
                                         "connecting")
        finally:
            self.db.resume()
        self.assert_result({"dsn": self.db.url}, "pass")

    def test_slow_query_killed_on_the_server(self):
        # TLS off: without ssl_ca, libmariadb loads the system CA bundle
        # into every TLS connection, CPU time no deadline can cut (up to
        # a second here under ASan on a loaded machine).
        self.assert_deadline({"dsn": self.db.url, "ssl_mode": "disabled",
                              "query": "SELECT SLEEP(10) /* healthd-slow */"},
                             "waiting for the query", timeout_ms=500)
        sql = ("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
               "INFO LIKE '%healthd-slow%' AND ID <> CONNECTION_ID()")
        deadline = time.monotonic() + 5
        while self.db.sql(sql) != "0" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.db.sql(sql), "0")
        self.assert_result({"dsn": self.db.url, "ssl_mode": "disabled"},
                           "pass")

    def test_role_read_only(self):
        self.assert_result({"dsn": self.db.url, "role": "primary"}, "pass")
        self.assert_result({"dsn": self.db.url, "role": "replica"}, "fail",
                           "role is primary", "expected replica")
        self.db.sql("SET GLOBAL read_only=1")
        try:
            r = self.assert_result({"dsn": self.db.url, "role": "replica"},
                                   "pass", "replica")
            self.assertIs(r["details"]["read_only"], True)
            self.assert_result({"dsn": self.db.url, "role": "primary"},
                               "fail", "role is replica", "expected primary")
        finally:
            self.db.sql("SET GLOBAL read_only=0")

    def test_tls(self):
        ca = self.ca.cert
        local = (f"mysql://{self.db.user}:{self.db.password}@localhost:"
                 f"{self.db.port}/app")
        cases = [
            ({"ssl_mode": "disabled"}, "pass", None, False),
            ({}, "pass", None, True),                    # preferred
            ({"ssl_mode": "required"}, "pass", None, True),
            ({"ssl_mode": "verify_ca", "ssl_ca": ca}, "pass", None, True),
            ({"dsn": self.url(query=f"?ssl_mode=verify_ca&ssl_ca={ca}")},
             "pass", None, True),
            ({"dsn": local, "ssl_mode": "verify_identity", "ssl_ca": ca},
             "pass", None, True),
            ({"ssl_mode": "verify_identity", "ssl_ca": ca}, "fail",
             "does not match the host name", None),
            ({"ssl_mode": "verify_ca"}, "fail", "not trusted", None),
            ({"ssl_mode": "verify_ca", "ssl_ca": "/nonexistent/ca.pem"},
             "fail", "TLS: cannot", None),
        ]
        for extra, status, words, tls in cases:
            options = {"dsn": self.db.url, **extra}
            with self.subTest(extra=extra):
                r, out = self.run_check(options)
                self.assertEqual(r["status"], status, r)
                if words:
                    self.assertIn(words, r["message"])
                if tls is not None:
                    self.assertIs(r["details"]["tls"], tls, r)
                self.assert_no_secret(out, self.secrets)

    def test_unix_socket(self):
        d = self.db
        for dsn in (f"mysql://{d.user}:{d.password}@/app?unix_socket="
                    f"{d.socket}",
                    f"user={d.user} password={d.password} dbname=app "
                    f"unix_socket={d.socket}"):
            with self.subTest(dsn=dsn[:6]):
                r = self.assert_result({"dsn": dsn}, "pass", "query ok")
                self.assertEqual(r["target"], f"unix({d.socket})/app")
        self.assert_result({"dsn": f"mysql://{d.user}@/app?unix_socket="
                                   f"{d.dir}/none.sock"}, "fail",
                           "no server socket at that path")

    def test_bad_options_refused(self):
        url = self.db.url
        self.assert_refused({}, "dsn")
        self.assert_refused({"dsn": url, "mode": "sometimes"}, "mode")
        self.assert_refused({"dsn": url, "role": "boss"}, "role",
                            "any, primary or replica")
        self.assert_refused({"dsn": url, "query": ""}, "query")
        self.assert_refused({"dsn": url, "ssl_mode": "maybe"}, "ssl_mode")
        self.assert_refused({"dsn": f"postgresql://u:{WRONG}@h/db"}, "dsn",
                            secrets=self.secrets)
        # A space in an unquoted password: its tail reads as a key.
        self.assert_refused({"dsn": "host=h password=ab Key1Secr3t=1"},
                            "dsn", "unknown key", secrets=("Key1Secr3t",))
        self.assert_refused({"dsn": f"host=h password='{WRONG}"}, "dsn",
                            "unterminated", secrets=self.secrets)
        self.assert_refused({"dsn": f"mysql://u:{WRONG}%zz@h/db"}, "dsn",
                            "percent-encoded", secrets=self.secrets)
        self.assert_refused({"dsn": "mysql://u@h:Prt-Secr3t/db"}, "port",
                            secrets=("Prt-Secr3t",))
        # An unencoded '@' or '/' in the password would show its tail.
        for dsn in (f"mysql://u:p@{WRONG}@h/db", f"mysql://u:p/{WRONG}@h/db"):
            self.assert_refused({"dsn": dsn}, "dsn", "%40",
                                secrets=self.secrets)
        self.assert_check_config_rejects({"dsn": url, "role": "boss"},
                                         "role", secrets=self.secrets)

    def test_daemon_persistent_reconnects_and_hides_the_password(self):
        # The daemon, with process isolation (the default).
        checks = [harness.check("db", plugin="mysql", interval="300ms",
                                timeout="300ms", failure_threshold=1,
                                isolation="process",
                                options={"dsn": self.db.url,
                                         "mode": "persistent",
                                         "ssl_mode": "disabled"})]
        with harness.Daemon(checks=checks) as d:
            def status():
                return d.get(harness.BASE + "/checks/db").status

            def runs_after(n):
                seen = set()

                def more():
                    seen.add(d.get(harness.BASE + "/").json()["checks"]
                             ["db"]["last_run"])
                    return len(seen) >= n
                return more
            d.wait_for(lambda: status() == 200, what="first pass")
            # The kept connection is killed between runs: the next run
            # reconnects at once instead of failing.
            ids = self.db.sql("SELECT ID FROM information_schema.PROCESSLIST "
                              f"WHERE USER = '{self.db.user}'").split()
            self.assertEqual(len(ids), 1, ids)
            self.db.sql(f"KILL CONNECTION {ids[0]}")
            d.wait_for(runs_after(3), what="runs after the kill")
            self.assertIsNone(d.get(harness.BASE + "/").json()["checks"]
                              ["db"]["last_failure"])
            # A restart: the kept connection is gone, a new one is made.
            self.db.stop()
            d.wait_for(lambda: status() == 503, what="fail when stopped")
            self.db.start()
            d.wait_for(lambda: status() == 200, what="reconnected")
            out = d.get(harness.BASE + "/").raw.decode()
            out += d.get("/metrics").raw.decode()
            self.assertIn('"isolation": "process"', out.replace('":"', '": "'))
            self.assert_no_secret(out + d.logs(), (self.db.password,))


if __name__ == "__main__":
    unittest.main()
