"""The http plugin against real HTTP and HTTPS (self-signed) servers."""

import os
import tempfile
import unittest

import harness
from servers import HTTPServer, PluginTestCase, free_port
from test_plugin_tcp import CA, ISO_UTC, TLSServer

SECRET = "http-Secr3t-pw-3141"
TOKEN = "Bearer tok-Secr3t-2718"
QTOKEN = "qtok-Secr3t-1618"


class HttpPlugin(PluginTestCase):
    plugin = "http"

    @classmethod
    def setUpClass(cls):
        cls.http = HTTPServer().start()
        cls.https = HTTPServer(tls=True).start()
        cls.secrets = (SECRET, TOKEN, "tok-Secr3t", QTOKEN)

    @classmethod
    def tearDownClass(cls):
        cls.http.close()
        cls.https.close()

    def test_pass(self):
        r = self.assert_result({"url": self.http.url("/ok")}, "pass",
                               "GET", f"127.0.0.1:{self.http.port}/ok",
                               "status 200")
        d = r["details"]
        self.assertEqual(d["status_code"], 200)
        self.assertEqual(d["body_bytes"], len("ok: all good\n"))
        self.assertGreaterEqual(d["latency_ms"], 0)

    def test_head(self):
        r = self.assert_result({"url": self.http.url("/ok"), "method": "HEAD"},
                               "pass", "HEAD")
        self.assertEqual(r["details"]["body_bytes"], 0)

    def test_status(self):
        self.assert_result({"url": self.http.url("/status/500")}, "fail",
                           "unexpected status 500")
        self.assert_result({"url": self.http.url("/status/404")}, "fail",
                           "unexpected status 404")
        self.assert_result({"url": self.http.url("/status/500"),
                            "expect_status": "200, 500-503"}, "pass")
        self.assert_result({"url": self.http.url("/ok"),
                            "expect_status": "204"}, "fail",
                           "unexpected status 200")

    def test_body(self):
        self.assert_result({"url": self.http.url("/ok"),
                            "expect_body": "all good"}, "pass")
        self.assert_result({"url": self.http.url("/ok"),
                            "expect_body": "all bad"}, "fail",
                           "does not contain expect_body")

    def test_response_size_is_capped(self):
        r = self.assert_result({"url": self.http.url("/big"),
                                "expect_body": "BEGIN"}, "pass")
        self.assertEqual(r["details"]["body_bytes"], 64 * 1024)
        self.assertIs(r["details"]["body_truncated"], True)
        self.assert_result({"url": self.http.url("/big"), "expect_body": "END"},
                           "fail", "within its first 64 KiB")

    def test_redirects(self):
        url = self.http.url("/redirect")
        # Not followed: the 302 is the answer (200-399 accepts it).
        r = self.assert_result({"url": url}, "pass", "status 302")
        self.assertEqual(r["details"]["redirects"], 0)
        self.assert_result({"url": url, "expect_status": "200"}, "fail",
                           "unexpected status 302")
        r = self.assert_result({"url": url, "follow_redirects": "true",
                                "expect_status": "200",
                                "expect_body": "all good"}, "pass",
                               "status 200")
        self.assertEqual(r["details"]["redirects"], 1)
        self.assert_result({"url": self.http.url("/redirect-loop"),
                            "follow_redirects": "true"}, "fail",
                           "more than 10 redirects")

    def test_tls(self):
        url = self.https.url("/ok")
        self.assert_result({"url": url}, "fail", "TLS certificate not trusted",
                           "self-signed")
        # The test server's certificate lasts 2 days: under the default
        # cert_warn_days 14 (HttpsCertificate covers that).
        self.assert_result({"url": url, "ca_file": self.https.ca_file,
                            "cert_warn_days": "0"}, "pass",
                           "https://127.0.0.1")
        self.assert_result({"url": url, "tls_verify": "false",
                            "cert_warn_days": "0"}, "pass")
        # Plain HTTP spoken to a TLS server is no answer.
        self.assert_result({"url": self.https.url("/ok").replace("https", "http")},
                           "fail")

    def test_headers_are_sent_and_not_shown(self):
        r, out = self.run_check([("url", self.http.url("/headers")),
                                 ("headers.Authorization", TOKEN),
                                 ("headers.X-Probe", "healthd-test"),
                                 ("expect_body", '"X-Probe": "healthd-test"')])
        self.assertEqual(r["status"], "pass", r)
        self.assert_no_secret(out, self.secrets)

    def test_credentials_in_url_are_not_shown(self):
        url = f"http://probe:{SECRET}@127.0.0.1:{self.http.port}/status/500?token={SECRET}"
        r, out = self.run_check({"url": url})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn(f"http://127.0.0.1:{self.http.port}/status/500",
                      r["message"])
        self.assert_no_secret(out, self.secrets + ("probe:",))
        r, out = self.run_check({"url": f"http://probe:{SECRET}@127.0.0.1:"
                                        f"{free_port()}/ok"})
        self.assertIn("connection refused", r["message"])
        self.assert_no_secret(out, self.secrets + ("probe:",))

    def test_query_fragment_and_userinfo_never_shown(self):
        # Messages and the `url` detail: scheme://host:port/path only.
        port = self.http.port
        secrets = self.secrets + ("probe", "token=", "#")
        for path, status in (("/status/500", "fail"), ("/ok", "pass")):
            with self.subTest(path=path):
                url = (f"http://probe:{SECRET}@127.0.0.1:{port}{path}"
                       f"?token={QTOKEN}&x=1#frag-{QTOKEN}")
                r, out = self.run_check({"url": url})
                self.assertEqual(r["status"], status, r)
                label = f"http://127.0.0.1:{port}{path}"
                self.assertEqual(r["details"]["url"], label)
                self.assertIn(f"GET {label}: ", r["message"])
                self.assert_no_secret(out, secrets)
                self.assert_once({"url": url}, 0 if status == "pass" else 2,
                                 label, secrets=secrets)
        # A query right after the port; a failure to connect.
        for url, words in (
                (f"http://probe:{SECRET}@127.0.0.1:{port}?token={QTOKEN}",
                 f"http://127.0.0.1:{port}/: "),
                (f"http://probe:{SECRET}@127.0.0.1:{free_port()}/x"
                 f"?token={QTOKEN}", "/x: connection refused")):
            r, out = self.run_check({"url": url})
            self.assertIn(words, r["message"])
            self.assert_no_secret(out, secrets)

    def test_unencoded_slash_in_password_refused(self):
        # curl ends the authority at the first '/': the rest of such a
        # password, and the real host, would land in the path shown.
        url = f"http://probe:12/{SECRET}@127.0.0.1:{self.http.port}/ok"
        self.assert_refused({"url": url}, "url", "%2F", secrets=self.secrets)
        self.assert_check_config_rejects({"url": url}, "url", "%2F",
                                         secrets=self.secrets)
        # Percent-encoded it is accepted and not shown.
        r, out = self.run_check({"url": url.replace("12/", "12%2F")})
        self.assertEqual(r["status"], "pass", r)
        self.assert_no_secret(out, self.secrets + ("probe",))

    def test_unencoded_query_or_fragment_mark_in_userinfo_refused(self):
        # curl ends the authority at the first '?' or '#' too: a user name
        # or password holding one lands in the host and port shown.
        port = self.http.port
        secrets = self.secrets + ("Usr-Secr3t", "Tok-Secr3t")
        for url in (f"http://Usr-Secr3t:1#{SECRET}@127.0.0.1:{port}/ok",
                    f"http://Tok-Secr3t?x@127.0.0.1:{port}/ok",
                    f"http://Tok-Secr3t#@127.0.0.1:{port}/ok",
                    f"http://probe@Tok-Secr3t:1?{SECRET}@127.0.0.1:{port}/ok"):
            with self.subTest(url=url[:16]):
                self.assert_refused({"url": url}, "url", "%3F", "%23",
                                    secrets=secrets)
                self.assert_check_config_rejects({"url": url}, "url", "%23",
                                                 secrets=secrets)
        # Percent-encoded it is accepted and not shown; an '@' in the query
        # after the path is no user:password@.
        r, out = self.run_check({"url": f"http://Usr-Secr3t:1%23{SECRET}@"
                                        f"127.0.0.1:{port}/ok"})
        self.assertEqual(r["status"], "pass", r)
        self.assert_no_secret(out, secrets)
        self.assert_result({"url": f"http://127.0.0.1:{port}/ok?who=a@b"},
                           "pass", f"http://127.0.0.1:{port}/ok: ")

    def test_bad_ca_file_path_not_shown(self):
        # curl's text for a CA file it cannot use names the file.
        with tempfile.TemporaryDirectory(prefix="ca-Secr3t-dir-") as d:
            path = os.path.join(d, "ca.pem")
            with open(path, "w") as f:
                f.write("not a certificate\n")
            r, out = self.run_check({"url": self.https.url("/ok"),
                                     "ca_file": path})
            self.assertEqual(r["status"], "fail", r)
            self.assertIn("cannot use ca_file", r["message"])
            self.assert_no_secret(out, ("ca-Secr3t-dir-", path))

    def test_server_stopped(self):
        with HTTPServer() as h:
            self.assert_result({"url": h.url("/ok")}, "pass")
            h.stop()
            self.assert_result({"url": h.url("/ok")}, "fail",
                               "connection refused")

    def test_hung_server_fails_at_deadline(self):
        self.assert_deadline({"url": self.http.url("/hang")})
        self.http.pause()
        try:
            self.assert_deadline({"url": self.http.url("/ok")})
        finally:
            self.http.resume()
        self.https.pause()
        try:
            self.assert_deadline({"url": self.https.url("/ok"),
                                  "ca_file": self.https.ca_file})
        finally:
            self.https.resume()
        self.assert_result({"url": self.http.url("/ok")}, "pass")

    def test_bad_options_refused(self):
        url = self.http.url("/ok")
        s = self.secrets
        self.assert_refused({}, "url")
        self.assert_refused({"url": f"ftp://u:{SECRET}@h/"}, "http://",
                            secrets=s)
        self.assert_refused({"url": f"http://u:{SECRET}@"}, "url", secrets=s)
        self.assert_refused({"url": "not a url"}, "url")
        self.assert_refused({"url": url, "method": "POST"}, "GET or HEAD")
        for status in ("abc", "99", "600", "300-200", "200-", "200,,300", ""):
            with self.subTest(expect_status=status):
                self.assert_refused({"url": url, "expect_status": status},
                                    "expect_status")
        self.assert_refused({"url": url, "method": "HEAD",
                             "expect_body": "x"}, "expect_body")
        self.assert_refused({"url": url, "tls_verify": "maybe"}, "tls_verify")
        self.assert_refused({"url": url, "follow_redirects": "sometimes"},
                            "follow_redirects")
        self.assert_refused({"url": url, "ca_file": "/nonexistent/ca.pem"},
                            "ca_file")
        self.assert_refused([("url", url), ("headers.X-Bad", f"{SECRET}\r\nX: y")],
                            "headers.X-Bad", "line break", secrets=s)
        self.assert_refused({"url": url, "timeout": "1"}, "timeout")

    # The daemon.

    def test_check_config_rejects_bad_options(self):
        self.assert_check_config_rejects(
            {"url": f"http://u:{SECRET}@127.0.0.1/", "expect_status": "2xx"},
            "expect_status", secrets=self.secrets)
        self.assert_check_config_rejects({"url": f"gopher://u:{SECRET}@h/"},
                                         "url", secrets=self.secrets)

    def test_daemon_never_shows_userinfo_query_or_fragment(self):
        # /checks/NAME (message and details) and the daemon's log show
        # scheme://host:port/path only: an unexpected status, a timeout.
        port = self.http.port
        base = f"http://Usr-Secr3t:{SECRET}@127.0.0.1:{port}"
        tail = (f"?token={QTOKEN}&X-Amz-Signature=Sig-Secr3t"
                f"#frag-Frg-Secr3t")
        paths = {"status": "/status/500", "hang": "/hang"}
        checks = [harness.check(name, plugin="http", interval="300ms",
                                timeout="300ms", failure_threshold=1,
                                options={"url": base + path + tail})
                  for name, path in paths.items()]
        secrets = self.secrets + ("Usr-Secr3t", "Sig-Secr3t", "Frg-Secr3t",
                                  "token=", "X-Amz", "#frag")
        with harness.Daemon(checks=checks) as d:
            def body(name):
                return d.get(f"{harness.BASE}/checks/{name}")

            def both_failed_in_the_plugin():
                return ("unexpected status 500" in
                        (body("status").json()["message"] or "") and
                        "GET http" in (body("hang").json()["message"] or ""))
            d.wait_for(both_failed_in_the_plugin,
                       what="a plugin result for both checks")
            out = ""
            for name, path in paths.items():
                b = body(name)
                label = f"http://127.0.0.1:{port}{path}"
                self.assertEqual(b.json()["details"]["url"], label)
                self.assertIn(f"GET {label}: ", b.json()["message"])
                out += b.raw.decode()
            self.assertIn("timed out after", body("hang").json()["message"])
            out += d.get(harness.BASE + "/").raw.decode()
            out += d.get("/metrics").raw.decode()
            logs = d.logs()
            self.assertIn(f"GET http://127.0.0.1:{port}/status/500: ", logs)
            self.assert_no_secret(out + logs, secrets)

    def test_once_never_prints_the_password(self):
        base = f"http://probe:{SECRET}@127.0.0.1:{self.http.port}"
        self.assert_once({"url": base + "/ok"}, 0, "status 200",
                         secrets=self.secrets)
        self.assert_once({"url": base + "/status/500"}, 2,
                         "unexpected status 500", secrets=self.secrets)


class HttpsCertificate(PluginTestCase):
    """The server certificate's details and expiry over https, as the tcp
    plugin reports them (shared code, same options)."""

    plugin = "http"

    @classmethod
    def setUpClass(cls):
        cls.ca = CA()
        # openssl s_server -www: 200 and a status page for GET /.
        cls.expiring = TLSServer(cls.ca.issue("expiring", days=3), cls.ca.key,
                                 "-www").start()
        cls.expired = TLSServer(cls.ca.issue("expired",
                                             start="20200101000000Z",
                                             end="20200201000000Z"),
                                cls.ca.key, "-www").start()

    @classmethod
    def tearDownClass(cls):
        cls.expiring.close()
        cls.expired.close()
        cls.ca.close()

    def opts(self, server, **kw):
        o = {"url": f"https://127.0.0.1:{server.port}/",
             "ca_file": self.ca.cert}
        o.update(kw)
        return {k: v for k, v in o.items() if v is not None}

    def test_expiring_certificate_warns_with_details(self):
        r = self.assert_result(self.opts(self.expiring), "warn",
                               f"GET https://127.0.0.1:{self.expiring.port}/: "
                               "status 200, but TLS certificate expires in "
                               "3.0 days (", "under cert_warn_days 14")
        d = r["details"]
        self.assertEqual(d["status_code"], 200)
        self.assertRegex(d["cert_not_after"], ISO_UTC)
        self.assertIn(d["cert_not_after"], r["message"])
        self.assertAlmostEqual(d["cert_days_left"], 3, delta=0.1)
        self.assertEqual(d["cert_subject"], "CN=localhost")
        self.assertEqual(d["cert_issuer"], "CN=healthd test CA")
        # The thresholds, as in the tcp plugin.
        r = self.assert_result(self.opts(self.expiring, cert_warn_days="2"),
                               "pass", "status 200")
        self.assertAlmostEqual(r["details"]["cert_days_left"], 3, delta=0.1)
        self.assert_result(self.opts(self.expiring, cert_fail_days="4"),
                           "fail", "status 200, but TLS certificate expires",
                           "under cert_fail_days 4")
        # Not verified, still reported and judged.
        self.assert_result(self.opts(self.expiring, ca_file=None,
                                     tls_verify="false"), "warn",
                           "under cert_warn_days 14")

    def test_status_failure_comes_first(self):
        # A wrong status is the message; the certificate is still reported.
        r = self.assert_result(self.opts(self.expiring, expect_status="204"),
                               "fail", "unexpected status 200")
        self.assertIn("cert_days_left", r["details"])

    def test_expired_certificate_fails(self):
        # Verified: the handshake fails, with curl's reason.
        self.assert_result(self.opts(self.expired), "fail",
                           "TLS certificate not trusted",
                           "certificate has expired")
        r = self.assert_result(self.opts(self.expired, tls_verify="false"),
                               "fail", "status 200, but TLS certificate "
                               "expired", "(2020-02-01T00:00:00Z)")
        self.assertEqual(r["details"]["cert_not_after"], "2020-02-01T00:00:00Z")
        self.assertLess(r["details"]["cert_days_left"], -365)

    def test_plain_http_has_no_certificate(self):
        with HTTPServer() as h:
            r = self.assert_result({"url": h.url("/ok")}, "pass")
            self.assertNotIn("cert_not_after", r["details"])

    def test_bad_thresholds_refused(self):
        url = f"https://127.0.0.1:{self.expiring.port}/"
        self.assert_refused({"url": url, "cert_warn_days": "-3"},
                            "cert_warn_days")
        self.assert_refused({"url": url, "cert_fail_days": "2w"},
                            "cert_fail_days")
        self.assert_refused({"url": url, "cert_warn_days": "3",
                             "cert_fail_days": "7"},
                            "cert_fail_days: must not be over cert_warn_days")


if __name__ == "__main__":
    unittest.main()
