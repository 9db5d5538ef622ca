"""The postgres plugin against a real PostgreSQL 15 (and one in recovery)."""

import subprocess
import time
import unittest
import urllib.parse

import harness
from servers import PluginTestCase, Postgres, run_plugin

WRONG = "Wr0ng-pg-Passw0rd-99"
# A password libpq cannot parse: a '"' (libpq quotes the token it refuses)
# and a bad percent-escape.  Every piece of it is a secret.
QUOTED = 'ab"Qt-Secr3t-tail%zz'
QUOTED_PARTS = ("Qt-Secr3t", "Secr3t-tail", '"Qt', "tail%zz")


class PostgresPlugin(PluginTestCase):
    plugin = "postgres"

    @classmethod
    def setUpClass(cls):
        cls.pg = Postgres().start()
        cls.standby = Postgres(standby=True).start()
        cls.secrets = (cls.pg.password, WRONG)

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()
        cls.standby.close()

    def test_pass_conninfo(self):
        r = self.assert_result({"dsn": self.pg.dsn}, "pass", "query ok",
                               f"127.0.0.1:{self.pg.port}/app", "primary")
        d = r["details"]
        self.assertTrue(d["server_version"].startswith("15."), d)
        self.assertIs(d["in_recovery"], False)
        self.assertEqual(d["role"], "primary")
        self.assertGreaterEqual(d["latency_ms"], 0)
        # What the core names in its own timeout messages.
        self.assertEqual(r["target"], f"127.0.0.1:{self.pg.port}/app")

    def test_pass_uri_and_sqlalchemy_forms(self):
        url = self.pg.url
        for dsn in (url, url.replace("postgresql://", "postgres://"),
                    url.replace("postgresql://", "postgresql+asyncpg://"),
                    url.replace("postgresql://", "postgresql+psycopg2://")):
            with self.subTest(dsn=dsn.split(":")[0]):
                r, out = self.run_check({"dsn": dsn})
                self.assertEqual(r["status"], "pass", r)
                self.assert_no_secret(out, self.secrets)

    def test_connect_mode_and_custom_query(self):
        self.assert_result({"dsn": self.pg.dsn, "mode": "connect",
                            "query": "SELECT count(*) FROM pg_class"},
                           "pass", "query ok")

    def test_query_error(self):
        r = self.assert_result({"dsn": self.pg.dsn,
                                "query": "SELECT * FROM no_such_table"},
                               "fail", "query failed", "table does not exist",
                               "42P01")
        # The server's text quotes the query (an option): not shown.
        self.assertNotIn("no_such_table", r["message"])

    def test_query_text_never_shown(self):
        # The server's message repeats the literal: only the SQLSTATE is told.
        secret = "Qry-Secr3t-4242"
        for mode in ("connect", "persistent"):
            with self.subTest(mode=mode):
                r, out = self.run_check({"dsn": self.pg.dsn, "mode": mode,
                                         "query": f"SELECT '{secret}'::int"})
                self.assertEqual(r["status"], "fail", r)
                self.assertIn("query failed: invalid input syntax (22P02)",
                              r["message"])
                self.assert_no_secret(out, self.secrets + (secret,))
        self.assert_once({"dsn": self.pg.dsn, "query": f"SELECT '{secret}'::int"},
                         2, "22P02", secrets=self.secrets + (secret,))

    def test_role(self):
        self.assert_result({"dsn": self.pg.dsn, "role": "primary"}, "pass")
        self.assert_result({"dsn": self.pg.dsn, "role": "replica"}, "fail",
                           "role is primary, expected replica")
        r = self.assert_result({"dsn": self.standby.dsn, "role": "replica"},
                               "pass", "replica")
        self.assertIs(r["details"]["in_recovery"], True)
        self.assert_result({"dsn": self.standby.dsn, "role": "primary"},
                           "fail", "role is replica, expected primary")

    def test_wrong_password(self):
        r, out = self.run_check({"dsn": self.pg.dsn_with(password=WRONG)})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("authentication failed", r["message"])
        self.assert_no_secret(out, self.secrets)
        r, out = self.run_check({"dsn": self.pg.dsn_with(password=None)})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("authentication failed", r["message"])

    def test_wrong_database_and_user(self):
        self.assert_result({"dsn": self.pg.dsn_with(dbname="nope")}, "fail",
                           "database does not exist", "3D000")
        r, out = self.run_check({"dsn": self.pg.dsn_with(user="Usr-Secr3t-1")})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("authentication failed (28P01)", r["message"])
        # The server names the user in its text; the message does not.
        self.assert_no_secret(out, self.secrets + ("Usr-Secr3t-1",))

    def test_server_stopped_then_back(self):
        with Postgres() as pg:
            self.assert_result({"dsn": pg.dsn}, "pass")
            pg.stop()
            self.assert_result({"dsn": pg.dsn}, "fail", "connection refused")
            pg.start()
            self.assert_result({"dsn": pg.dsn}, "pass")

    def test_hung_server_fails_at_deadline(self):
        self.pg.pause()
        try:
            for mode in ("connect", "persistent"):
                with self.subTest(mode=mode):
                    self.assert_deadline({"dsn": self.pg.dsn, "mode": mode},
                                         "connecting")
        finally:
            self.pg.resume()
        self.assert_result({"dsn": self.pg.dsn}, "pass")

    def test_slow_query_fails_at_deadline_and_is_cancelled(self):
        self.assert_deadline({"dsn": self.pg.dsn, "query":
                              "SELECT pg_sleep(30) /* healthd-slow */"},
                             "waiting for the query", timeout_ms=500)
        # PQcancel reached the server: the query does not go on running.
        sql = ("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
               "'%healthd-slow%' AND pid <> pg_backend_pid()")
        deadline = time.monotonic() + 5
        while self.pg.psql(sql) != "0" and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.pg.psql(sql), "0")

    def test_copy_and_unexpected_results_fail_promptly(self):
        # libpq hands out a COPY result again and again without blocking:
        # once, the result loop spun on it past the deadline, forever.
        cases = ("COPY (SELECT 1) TO STDOUT",
                 "CREATE TEMP TABLE t (x int); COPY t FROM STDIN")
        for mode in ("connect", "persistent"):
            for query in cases:
                with self.subTest(mode=mode, query=query[-12:]):
                    try:
                        r, err, wall_ms = run_plugin(
                            self.plugin, {"dsn": self.pg.dsn, "mode": mode,
                                          "query": query},
                            timeout_ms=1000, wall_timeout=10)
                    except subprocess.TimeoutExpired:
                        self.fail("healthd-plugin-run still running 10 s after "
                                  "a 1 s deadline")
                    self.assertIsNotNone(r, err)
                    self.assertEqual(r["status"], "fail", r)
                    self.assertIn("query returned an unexpected result "
                                  "(COPY)", r["message"])
                    self.assertLess(r["duration_ms"], 1000, r)
                    self.assertLess(wall_ms, 3000)
                    self.assert_no_secret(r["message"] + err,
                                          self.secrets + ("STDOUT", "STDIN"))

    def test_daemon_copy_query_fails_and_runs_again(self):
        # Through the daemon, in persistent mode: every run ends with the
        # phrase (a stuck run is published as a timeout, and the check never
        # runs again).
        checks = [harness.check("db", plugin="postgres", interval="200ms",
                                timeout="200ms", failure_threshold=1,
                                options={"dsn": self.pg.url,
                                         "mode": "persistent",
                                         "query": "COPY (SELECT 1) TO "
                                                  "STDOUT"})]
        with harness.Daemon(checks=checks) as d:
            seen = set()

            def runs():
                c = d.get(harness.BASE + "/checks/db").json()
                if "unexpected result (COPY)" in (c.get("message") or ""):
                    seen.add(c["last_run"])
                return len(seen) >= 3
            d.wait_for(runs, timeout=10, what="three runs ending in COPY")
            out = d.get(harness.BASE + "/checks/db").raw.decode()
            self.assert_no_secret(out + d.logs(), (self.pg.password,))

    def test_bad_options_refused(self):
        dsn = self.pg.dsn
        self.assert_refused({}, "dsn")
        self.assert_refused({"dsn": dsn, "mode": "sometimes"}, "mode",
                            "persistent or connect")
        self.assert_refused({"dsn": dsn, "role": "boss"}, "role",
                            "any, primary or replica")
        self.assert_refused({"dsn": dsn, "query": ""}, "query")
        self.assert_refused({"dsn": dsn, "database": "x"}, "database")
        # libpq quotes the part it cannot parse: that part is not shown.
        self.assert_refused({"dsn": f"host=h password='{WRONG}"}, "dsn",
                            "unterminated quoted string", secrets=self.secrets)
        self.assert_refused({"dsn": f"host=h password {WRONG}"}, "dsn",
                            secrets=self.secrets)
        self.assert_refused({"dsn": f"postgresql://u:{WRONG}%zz@h/db"}, "dsn",
                            "percent-encoded", secrets=self.secrets)
        self.assert_refused({"dsn": "host=h port=Prt-Secr3t"}, "port",
                            secrets=("Prt-Secr3t",))

    def test_quote_in_password_never_shown(self):
        # libpq quotes the token it refuses; a '"' inside it once ended the
        # hiding early and printed the rest of the password.
        secrets = self.secrets + (QUOTED,) + QUOTED_PARTS
        cases = [
            ({"dsn": f"postgresql://u:{QUOTED}@h/db"}, "percent-encoded"),
            ({"dsn": f"postgresql://u:{QUOTED}@h/db?sslmode=disable"},
             "percent-encoded"),
            # conninfo: the part after the space is taken for a keyword
            ({"dsn": 'host=h password=x"y Qt"Secr3t-tail%zz'},
             'missing "=" after a keyword'),
            ({"dsn": 'host=h password=x Qt"Secr3t-tail=1'},
             "unknown connection option"),
            ({"dsn": 'postgresql://u@h/db?ab"Qt-Secr3t-tail=1'},
             "unknown URI query parameter"),
            ({"dsn": f"postgresql://u@h/db?x={QUOTED}?y"},
             "percent-encoded"),
        ]
        for options, words in cases:
            with self.subTest(dsn=options["dsn"][:14]):
                err = self.assert_refused(options, "dsn", words,
                                          secrets=secrets)
                self.assertNotIn('"..."', err)
                self.assert_check_config_rejects(options, "dsn", words,
                                                 secrets=secrets)

    def test_unencoded_at_or_slash_in_password_refused(self):
        # libpq ends user:password@ at the first '@' or '/': the rest of
        # the password would land in the host, port or database, which
        # every message shows.
        port = self.pg.port
        for dsn in (f"postgresql://healthd:12/Pw-Secr3t@127.0.0.1:{port}/app",
                    f"postgresql://healthd:p@Pw-Secr3t@127.0.0.1:{port}/app",
                    f"postgres://healthd:Pw/Secr3t@127.0.0.1:{port}/app"):
            with self.subTest(dsn=dsn[:20]):
                self.assert_refused({"dsn": dsn}, "dsn", "%2F",
                                    secrets=("Pw-Secr3t", "Pw/Secr3t", "Secr3t"))
                self.assert_check_config_rejects(
                    {"dsn": dsn}, "dsn", "%40",
                    secrets=("Pw-Secr3t", "Pw/Secr3t", "Secr3t"))
        # Percent-encoded, such a password works (and is not shown).
        pw = 'p/w@Enc-Secr3t"%'
        self.pg.psql(f"DROP ROLE IF EXISTS enc; CREATE ROLE enc LOGIN "
                     f"PASSWORD '{pw}'")
        enc = urllib.parse.quote(pw, safe="")
        r, out = self.run_check({"dsn": f"postgresql://enc:{enc}@127.0.0.1:"
                                        f"{port}/app"})
        self.assertEqual(r["status"], "pass", r)
        self.assert_no_secret(out, (pw, enc, "Enc-Secr3t"))

    # The daemon: --check-config, --once and a running daemon.

    def test_check_config_rejects_bad_options(self):
        self.assert_check_config_rejects({"dsn": self.pg.dsn, "role": "boss"},
                                         "role", secrets=self.secrets)
        self.assert_check_config_rejects(
            {"dsn": f"postgresql://u:{WRONG}%zz@h/db"}, "dsn",
            secrets=self.secrets)
        self.assert_check_config_rejects({"dsn": self.pg.dsn, "port": "1"},
                                         "port", secrets=self.secrets)

    def test_once_never_prints_the_password(self):
        self.assert_once({"dsn": self.pg.dsn}, 0, "query ok",
                         secrets=self.secrets)
        self.assert_once({"dsn": self.pg.dsn_with(password=WRONG)}, 2,
                         "authentication failed", secrets=self.secrets)

    def test_daemon_persistent_reconnects_and_hides_the_password(self):
        with Postgres() as pg:
            # A timeout roomy enough for a loaded machine under ASan: the
            # point is that a dead kept connection costs no failed run.
            checks = [harness.check("db", plugin="postgres", interval="600ms",
                                    timeout="600ms", failure_threshold=1,
                                    options={"dsn": pg.url, "mode": "persistent"})]
            with harness.Daemon(checks=checks) as d:
                # /checks/db: 200 when the check passes, 503 when it fails.
                def status():
                    return d.get(harness.BASE + "/checks/db").status
                d.wait_for(lambda: status() == 200, what="first pass")
                # The kept connection dies between runs: the next run
                # reconnects at once instead of failing.
                self.assertEqual(pg.psql(
                    "SELECT count(pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE application_name = 'healthd'"), "1")
                seen = set()
                def after_kill():
                    seen.add(d.get(harness.BASE + "/").json()["checks"]["db"]
                             ["last_run"])
                    return len(seen) >= 3
                d.wait_for(after_kill, what="two runs after the kill")
                self.assertIsNone(
                    d.get(harness.BASE + "/").json()["checks"]["db"]["last_failure"])
                pg.stop()
                d.wait_for(lambda: status() == 503, what="fail when stopped")
                pg.start()
                d.wait_for(lambda: status() == 200, what="reconnected")
                pg.pause()
                d.wait_for(lambda: status() == 503, what="fail when hung")
                pg.resume()
                d.wait_for(lambda: status() == 200, what="back after hang")
                out = d.get(harness.BASE + "/").raw.decode()
                out += d.get(harness.BASE + "/checks/db").raw.decode()
                out += d.get("/metrics").raw.decode()
                self.assert_no_secret(out + d.logs(), (pg.password,))


if __name__ == "__main__":
    unittest.main()
