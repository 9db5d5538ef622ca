"""Secrets against the real daemon: whatever a plugin reports (results,
create() errors) is redacted of every ${...} expansion of its check's
options before anything is cut short, wherever it shows: /checks/NAME, the
comprehensive body, config.last_reload_error and the log.
"""

import os
import signal
import unittest

from harness import BASE, Daemon, check, config_text, run
from servers import HTTPServer

SECRET = "hunter2-topsecret"
ENV = {"SECRET": SECRET, "PW": SECRET}


SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error")


class Secrets(unittest.TestCase):
    def stop_clean(self, d):
        """SIGTERM: exit 0 after the drain, no sanitizer report."""
        d.signal(signal.SIGTERM)
        rc = d.proc.wait(15)
        for report in SANITIZER_REPORTS:
            self.assertNotIn(report, d.logs())
        self.assertEqual(rc, 0, d.logs()[-3000:])

    def assertNoSecret(self, text, where):
        """Not the secret, nor any 4-byte or longer prefix of it."""
        for n in range(len(SECRET), 3, -1):
            self.assertNotIn(SECRET[:n], text, f"{where} leaks {SECRET[:n]!r}")

    def body(self, d):
        return d.get(BASE + "/").json()

    def wait_result(self, d, name, pred=lambda c: True, what="a result"):
        """The check's JSON once it has a result satisfying pred."""
        return d.wait_for(lambda: (lambda c: c if c["last_result"] != "pending"
                                   and pred(c) else None)(
            self.body(d)["checks"][name]), timeout=10, what=f"{name}: {what}")

    def reload(self, d, checks):
        """Rewrite the config, SIGHUP, and wait for the reload's outcome."""
        gen = self.body(d)["config"]["generation"]
        with open(d.path, "w") as f:
            f.write(config_text(checks, d.port))
        d.signal(signal.SIGHUP)
        return d.wait_for(lambda: (lambda b: b if b["config"]["generation"] > gen
                                   or b["config"]["last_reload_error"]
                                   else None)(self.body(d)),
                          timeout=10, what="the reload")

    def test_url_from_the_environment_shows_but_for_its_credentials(self):
        """url: ${PAYMENTS_URL} names the target in messages; its
        userinfo and token-like query values stay hidden."""
        with HTTPServer() as web:
            target = f"127.0.0.1:{web.port}/status/503"
            env = dict(ENV, PAYMENTS_URL=f"http://svc:{SECRET}@{target}"
                                         f"?api_token={SECRET}&region=eu")
            checks = [check("payments", plugin="http", interval="200ms",
                            timeout="150ms", options={"url": "${PAYMENTS_URL}"})]
            with Daemon(checks=checks, env=env) as d:
                c = self.wait_result(d, "payments")
                self.assertEqual(c["message"], f"GET http://{target}: "
                                 "unexpected status 503 (not in expect_status)")
                self.assertNoSecret(d.get(BASE + "/").raw.decode(), "the body")
                self.stop_clean(d)
                self.assertNoSecret(d.logs(), "the log")

    def test_message_cut_after_redaction(self):
        # The secret starts a few bytes before the 255-byte cut, or across
        # it: redacting after the cut would leak its head.
        offsets = range(236, 256)
        checks = [check(f"cut{at}", options={
            "secret": "${SECRET}", "mode": "fail",
            "message": "x" * at + SECRET}) for at in offsets]
        with Daemon(checks=checks, env=ENV) as d:
            for at in offsets:
                c = self.wait_result(d, f"cut{at}")
                if at <= 252:
                    self.assertEqual(c["message"], "x" * at + "***")
                self.assertNoSecret(d.get(BASE + f"/checks/cut{at}").raw.decode(),
                                    f"/checks/cut{at}")
            self.assertNoSecret(d.get(BASE + "/").raw.decode(), "the body")
            self.assertNoSecret(
                d.get(BASE + "/", {"Accept": "application/health+json"})
                .raw.decode(), "the health+json body")
            self.assertNoSecret(d.logs(), "the log")
            self.stop_clean(d)

    def test_create_error_redacted(self):
        # echoplug's create() quotes its option: a careless plugin.
        bad = [check("echo", plugin="echoplug",
                     options={"value": "key=${SECRET}"})]
        with Daemon(checks=[check("ok")], env=ENV) as d:
            b = self.reload(d, bad)
            err = b["config"]["last_reload_error"]
            self.assertIsNotNone(err)
            self.assertIn('check "echo": value: "key=***" is not accepted', err)
            self.assertNoSecret(err, "last_reload_error")
            d.wait_logged("key=***")
            self.assertNoSecret(d.logs(), "the log")
            # --check-config says the same.
            r = run(["-c", d.path, "--check-config"], env=ENV)
            self.assertEqual(r.returncode, 2)
            self.assertIn("key=***", r.stderr)
            self.assertNoSecret(r.stdout + r.stderr, "--check-config")
            self.stop_clean(d)

    def test_expansion_inside_a_value(self):
        # Only the password came from ${...}: it alone is hidden.
        checks = [check("dsn", options={
            "secret": "postgresql://u:${PW}@db/app", "mode": "fail",
            "message": f"dial postgresql://u:{SECRET}@db/app: "
                       f"password {SECRET} refused"})]
        with Daemon(checks=checks, env=ENV) as d:
            c = self.wait_result(d, "dsn")
            self.assertEqual(c["message"], "dial postgresql://u:***@db/app: "
                                           "password *** refused")
            self.assertNoSecret(d.get(BASE + "/checks/dsn").raw.decode(),
                                "/checks/dsn")
            self.assertNoSecret(d.logs(), "the log")
            self.stop_clean(d)

    def test_literal_moved_into_expansion_recreates(self):
        # The same value typed out, then from ${SECRET}: only the latter is
        # redacted, so the reload must not keep the old instance.
        def checks(secret):
            return [check("db", options={"secret": secret, "mode": "fail",
                                         "message": f"token={SECRET}"})]

        with Daemon(checks=checks(SECRET), env=ENV) as d:
            c = self.wait_result(d, "db")
            self.assertEqual(c["message"], f"token={SECRET}")  # typed: shown
            b = self.reload(d, checks("${SECRET}"))
            self.assertEqual(b["config"]["generation"], 2)
            self.wait_result(d, "db", lambda c: c["message"] == "token=***",
                             "the message redacted")
            self.stop_clean(d)


if __name__ == "__main__":
    unittest.main()
