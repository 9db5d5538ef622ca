"""The redis plugin against a real Redis 7 (a master and its replica; TLS
servers with certificates made here by the openssl CLI, one requiring
client certificates), and host names resolved within the deadline through
a dnsmasq or a nameserver that never answers (a private /etc/resolv.conf,
as root)."""

import os
import socket
import socketserver
import tempfile
import threading
import unittest

import servers
from servers import PluginTestCase, Redis
from test_plugin_tcp import CA, Listener, close_all, full_backlog, hold

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
        self.assert_refused({"url": f"ftp://:{WRONG}@h:6379"}, "rediss://",
                            secrets=s)
        # TLS options need a rediss:// url.
        for key in ("ca_file", "cert_file", "key_file"):
            self.assert_refused({"url": self.master.url, key: "/etc/hostname"},
                                f"{key}: needs a rediss:// url", secrets=s)
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
        self.assert_check_config_rejects({"url": f"rediss://:{WRONG}@h",
                                          "tls_verify": "maybe"},
                                         "tls_verify", secrets=self.secrets)

    def test_once_never_prints_the_password(self):
        self.assert_once({"url": self.master.url}, 0, "PONG",
                         secrets=self.secrets)
        self.assert_once({"url": self.master.url_for("app", WRONG)}, 2,
                         "authentication failed", secrets=self.secrets)


class RedisTLS(PluginTestCase):
    """rediss:// against Redis 7's own TLS (port 0, tls-port only)."""

    plugin = "redis"

    @classmethod
    def setUpClass(cls):
        cls.ca = CA()
        cls.other = CA()  # a CA nobody trusts
        # Valid for the name redis.test and the address, not "localhost".
        cert = cls.ca.issue("server", days=30,
                            san="DNS:redis.test,IP:127.0.0.1")
        tls = {"cert": cert, "key": cls.ca.key, "ca": cls.ca.cert}
        cls.srv = Redis(password=PASSWORD, acl_users={"app": APP_PW},
                        tls=dict(tls, auth_clients="no")).start()
        cls.mtls = Redis(password=PASSWORD,
                         tls=dict(tls, auth_clients="yes")).start()
        # Client certificates: one of our CA, one of the other.
        cls.client_cert = cls.ca.issue("client", days=30)
        cls.rogue_cert = cls.other.issue("rogue", days=30)
        cls.secrets = (PASSWORD, APP_PW, WRONG)
        with open(cls.ca.key) as f:  # the key's base64, never shown
            cls.key_text = f.read().split("-----")[2].split()[0]

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        cls.mtls.close()
        cls.ca.close()
        cls.other.close()

    def tls(self, url, **kw):
        o = {"url": url, "ca_file": self.ca.cert}
        o.update(kw)
        return {k: v for k, v in o.items() if v is not None}

    def check(self, options, status, *words, timeout_ms=None):
        """assert_result, and no secret anywhere in the output."""
        r, out = self.run_check(options, timeout_ms)
        self.assertEqual(r["status"], status, r)
        for w in words:
            self.assertIn(w, r["message"], r)
        self.assert_no_secret(out, self.secrets + (self.key_text,))
        return r

    def test_pass_with_our_ca(self):
        r = self.check(self.tls(self.srv.url), "pass",
                       f"127.0.0.1:{self.srv.port}/0: PONG", "TLSv1.3")
        d = r["details"]
        self.assertEqual(d["tls_version"], "TLSv1.3")
        self.assertEqual(d["role"], "master")
        self.assertEqual(d["address"], "127.0.0.1")
        self.assertEqual(d["cert_subject"], "CN=localhost")
        self.assertEqual(d["cert_issuer"], "CN=healthd test CA")
        self.assertAlmostEqual(d["cert_days_left"], 30, delta=0.1)
        self.assertNotIn("cert_verify_error", d)
        self.assertEqual(r["target"], f"127.0.0.1:{self.srv.port}/0")

    def test_acl_user_over_tls(self):
        self.check(self.tls(self.srv.url_for("app", APP_PW, 3)), "pass",
                   "/3: PONG")
        self.check(self.tls(self.srv.url_for("app", WRONG)), "fail",
                   "authentication failed")
        self.check(self.tls(self.srv.url_for(None, WRONG)), "fail",
                   "authentication failed")

    def test_untrusted_certificate_gets_no_password(self):
        self.srv.command("ACL", "LOG", "RESET")
        # The other CA; then no ca_file: the system's CAs do not know ours.
        for ca in (self.other.cert, None):
            # Redis sends its chain: our CA comes, untrusted.
            r = self.check(self.tls(self.srv.url_for("app", WRONG),
                                    ca_file=ca), "fail",
                           "TLS certificate verify failed: self-signed "
                           "certificate in certificate chain")
            self.assertIn("cert_verify_error", r["details"])
            self.assertNotIn("latency_ms", r["details"])
        # The wrong password never reached the server: no failed AUTH.
        self.assertNotIn(b"auth", self.srv.command("ACL", "LOG"))
        self.check(self.tls(self.srv.url_for("app", WRONG)), "fail",
                   "authentication failed")
        self.assertIn(b"auth", self.srv.command("ACL", "LOG"))

    def test_hostname_mismatch(self):
        # "localhost" resolves to 127.0.0.1 but is not in the certificate.
        url = self.srv.url_for(None, PASSWORD, host="localhost")
        r = self.check(self.tls(url), "fail",
                       f"localhost:{self.srv.port}/0: TLS certificate verify "
                       "failed: hostname mismatch")
        self.assertEqual(r["details"]["cert_verify_error"], "hostname mismatch")

    def test_tls_verify_false(self):
        url = self.srv.url_for(None, PASSWORD, host="localhost")
        r = self.check(self.tls(url, ca_file=self.other.cert,
                                tls_verify="false"), "pass", "PONG")
        self.assertIn("cert_verify_error", r["details"])
        self.assertAlmostEqual(r["details"]["cert_days_left"], 30, delta=0.1)

    def test_certificate_expiry_warns(self):
        r = self.check(self.tls(self.srv.url, cert_warn_days="60"), "warn",
                       "PONG", "TLS certificate expires in",
                       "under cert_warn_days 60")
        self.assertEqual(r["details"]["role"], "master")
        self.check(self.tls(self.srv.url, cert_warn_days="60",
                            cert_fail_days="45"), "fail",
                   "under cert_fail_days 45")

    def test_client_certificate(self):
        self.check(self.tls(self.mtls.url), "fail",
                   "the server requires a client certificate")
        self.check(self.tls(self.mtls.url, cert_file=self.client_cert,
                            key_file=self.ca.key), "pass", "PONG")
        # The key may be in the certificate's file.
        both = os.path.join(self.ca.dir, "client+key.pem")
        with open(both, "w") as f, open(self.client_cert) as c, \
                open(self.ca.key) as k:
            f.write(c.read() + k.read())
        self.check(self.tls(self.mtls.url, cert_file=both), "pass", "PONG")
        self.check(self.tls(self.mtls.url, cert_file=self.rogue_cert,
                            key_file=self.other.key), "fail",
                   "the server refused the client certificate")

    def test_tls_and_plain_mixed_up(self):
        self.check(self.tls(self.srv.url.replace("rediss:", "redis:"),
                            ca_file=None), "fail",
                   "server closed the connection before answering (a TLS "
                   "port? use rediss://)")
        # A plain Redis waits for the end of a line that never comes.
        with Redis() as plain:
            self.assert_deadline(self.tls(plain.url.replace("redis:",
                                                            "rediss:")),
                                 "in the TLS handshake")

    def test_handshake_stalls_fails_at_deadline(self):
        ls = Listener(hold)
        try:
            self.assert_deadline(
                self.tls(f"rediss://:{PASSWORD}@127.0.0.1:{ls.port}"),
                f"127.0.0.1:{ls.port}/0: ", "in the TLS handshake")
        finally:
            ls.close()

    def test_bad_tls_options_refused(self):
        url = self.srv.url
        s = self.secrets + (self.key_text,)
        with tempfile.TemporaryDirectory(prefix="tls-Secr3t-dir-") as d:
            bad = os.path.join(d, "bad.pem")
            with open(bad, "w") as f:
                f.write("not PEM\n")
            missing = os.path.join(d, "missing.pem")
            s += ("tls-Secr3t-dir-",)
            for opts, words in [
                    ({"tls_verify": "maybe"}, ["tls_verify"]),
                    ({"cert_warn_days": "-1"}, ["cert_warn_days"]),
                    ({"ca_file": missing}, ["ca_file: cannot read it"]),
                    ({"ca_file": bad}, ["ca_file: not a PEM file"]),
                    ({"key_file": self.ca.key}, ["key_file: needs cert_file"]),
                    ({"cert_file": missing, "key_file": self.ca.key},
                     ["cert_file: cannot read it"]),
                    ({"cert_file": self.client_cert, "key_file": missing},
                     ["key_file: cannot read it"]),
                    ({"cert_file": bad, "key_file": self.ca.key},
                     ["cert_file: not a PEM certificate"]),
                    # no key in the file: the certificate alone
                    ({"cert_file": self.client_cert},
                     ["key_file: not an unencrypted PEM private key"]),
                    ({"cert_file": self.client_cert,
                      "key_file": self.other.key},
                     ["key_file: not the key of cert_file"])]:
                with self.subTest(opts=opts):
                    self.assert_refused(self.tls(url, **opts), *words,
                                        secrets=s)
            # An encrypted key is refused, never prompted for.
            enc = os.path.join(d, "enc.key")
            servers.subprocess.run(
                ["openssl", "pkey", "-in", self.ca.key, "-aes256",
                 "-passout", f"pass:{WRONG}", "-out", enc], check=True,
                capture_output=True, timeout=30)
            self.assert_refused(self.tls(url, cert_file=self.client_cert,
                                         key_file=enc),
                                "key_file: not an unencrypted", secrets=s)

    def test_once_never_prints_the_password(self):
        self.assert_once(self.tls(self.srv.url_for("app", APP_PW)), 0, "PONG",
                         secrets=self.secrets + (self.key_text,))
        self.assert_once(self.tls(self.srv.url_for("app", WRONG)), 2,
                         "authentication failed",
                         secrets=self.secrets + (self.key_text,))


class RedisResolve(PluginTestCase):
    """Host names resolved within the deadline: a dnsmasq (through a relay
    on port 53, as /etc/resolv.conf has no port) in a private mount
    namespace, or a nameserver that never answers."""

    plugin = "redis"

    @classmethod
    def setUpClass(cls):
        if not servers.namespaces_usable():
            raise unittest.SkipTest("needs root and unshare for a private "
                                    "/etc/resolv.conf")
        cls.ca = CA()
        cert = cls.ca.issue("server", days=30, san="DNS:redis.test")
        cls.srv = Redis(password=PASSWORD, tls={
            "cert": cert, "key": cls.ca.key, "ca": cls.ca.cert}).start()
        # ::1 first (glibc sorts it before IPv4), 127.0.0.1 second.
        cls.dns = servers.start_dnsmasq(
            ["host-record=redis.test,127.0.0.1,::1"])
        cls.relay = servers.dns_relay(("127.0.0.1", cls.dns.port))
        f = tempfile.NamedTemporaryFile("w", prefix="healthd-resolv-",
                                        delete=False)
        f.write(cls.relay.resolv_conf)
        f.close()
        cls.resolv_conf = f.name

    @classmethod
    def tearDownClass(cls):
        os.unlink(cls.resolv_conf)
        cls.relay.close()
        cls.dns.close()
        cls.srv.close()
        cls.ca.close()

    def run_ns(self, options, resolv_conf=None, timeout_ms=2000):
        r, stderr, _ = servers.run_plugin_with_files(
            self.plugin, {"/etc/resolv.conf": resolv_conf or self.resolv_conf},
            options, timeout_ms)
        self.assertIsNotNone(r, stderr)
        self.assert_no_secret(stderr + str(r), (PASSWORD,))
        return r

    def test_black_holed_first_address(self):
        # ::1 never answers (its accept queue is full) on the server's
        # port; 127.0.0.1 gets its turn after 250 ms.  The certificate
        # is verified against the name, not the address.
        try:
            ls6, fillers, _ = full_backlog("::1", socket.AF_INET6,
                                           port=self.srv.port)
        except OSError:
            self.skipTest("no IPv6 loopback")
        try:
            r = self.run_ns({"url": f"rediss://:{PASSWORD}@redis.test:"
                                    f"{self.srv.port}",
                             "ca_file": self.ca.cert})
        finally:
            close_all(ls6, *fillers)
        self.assertEqual(r["status"], "pass", r)
        self.assertIn(f"redis.test:{self.srv.port}/0: PONG", r["message"])
        d = r["details"]
        self.assertEqual(d["addresses_tried"], 2, r)
        self.assertEqual(d["address"], "127.0.0.1", r)
        self.assertLess(r["duration_ms"], 1500, r)
        self.assertGreaterEqual(r["duration_ms"], 240, r)

    def test_name_does_not_exist(self):
        r = self.run_ns({"url": f"redis://:{PASSWORD}@nope.test:6379"})
        self.assertEqual(r["status"], "fail", r)
        self.assertEqual(r["message"],
                         "redis nope.test:6379/0: nope.test: name does not "
                         "exist")

    def test_resolver_never_answers(self):
        with servers.dns_relay() as mute:
            conf = os.path.join(self.ca.dir, "resolv-mute.conf")
            with open(conf, "w") as f:
                f.write(mute.resolv_conf)
            r = self.run_ns({"url": f"rediss://:{PASSWORD}@db.example.test",
                             "ca_file": self.ca.cert}, conf, timeout_ms=300)
            self.assertEqual(r["status"], "fail", r)
            self.assertIn("db.example.test:6379/0: could not resolve "
                          "db.example.test (timed out after", r["message"])
            self.assertGreaterEqual(r["duration_ms"], 298, r)
            self.assertLessEqual(r["duration_ms"], 300 + self.slack_ms, r)
            self.assertGreater(mute.queries, 0)  # it did ask


if __name__ == "__main__":
    unittest.main()
