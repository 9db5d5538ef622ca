"""The tcp plugin against real listeners on loopback: connect, send/expect,
deadlines (a full accept queue, a peer that never answers, a resolver that
never answers), several addresses per name, and TLS through `openssl
s_server` with certificates made here by the openssl CLI (valid, expiring,
expired, wrong name, unknown CA).

CA and TLSServer are used by test_plugin_http too.
"""

import os
import random
import re
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import servers
from servers import PluginTestCase, free_port, namespaces_usable

SECRET = "tcp-Secr3t-pw-2236"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def openssl(*args, cwd=None):
    subprocess.run(["openssl", *args], check=True, capture_output=True,
                   cwd=cwd, timeout=60)


class CA:
    """A throw-away CA (openssl CLI) issuing certificates for CN=localhost
    with any validity: `openssl ca` takes explicit dates, so an expired
    certificate needs no clock tricks."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="healthd-ca-")
        d = self.dir
        self.cert = os.path.join(d, "ca.pem")
        self.key = os.path.join(d, "leaf.key")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes"]
        openssl("req", "-x509", *ec, "-days", "365",
                "-subj", "/CN=healthd test CA", "-keyout", "ca.key",
                "-out", "ca.pem", cwd=d)
        openssl("req", "-new", *ec, "-subj", "/CN=localhost",
                "-keyout", "leaf.key", "-out", "leaf.csr", cwd=d)
        os.mkdir(os.path.join(d, "db"))
        open(os.path.join(d, "db", "index.txt"), "w").close()
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = test\n[test]\n"
                    "database = db/index.txt\nnew_certs_dir = db\n"
                    "certificate = ca.pem\nprivate_key = ca.key\n"
                    "rand_serial = yes\ndefault_md = sha256\n"
                    "unique_subject = no\npolicy = any\n"
                    "[any]\ncommonName = supplied\n")

    def issue(self, name, days=None, start=None, end=None,
              san="IP:127.0.0.1,DNS:localhost"):
        """A certificate valid for `days` from now, or from `start` to
        `end` (YYYYMMDDHHMMSSZ); returns its path."""
        ext = os.path.join(self.dir, name + ".ext")
        with open(ext, "w") as f:
            f.write(f"[leaf]\nsubjectAltName = {san}\n")
        out = os.path.join(self.dir, name + ".pem")
        when = ["-days", str(days)] if days else ["-startdate", start,
                                                   "-enddate", end]
        openssl("ca", "-batch", "-config", "ca.cnf", "-extfile", ext,
                "-extensions", "leaf", "-notext", "-in", "leaf.csr",
                "-out", out, *when, cwd=self.dir)
        return out

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class TLSServer(servers.Server):
    """`openssl s_server` on 127.0.0.1: -rev (echoes each line reversed)
    or -www (answers GET / with 200 and a status page)."""

    name = "tls"

    def __init__(self, cert, key, mode="-rev"):
        super().__init__()
        self.cert, self.key, self.mode = cert, key, mode

    def start(self):
        self._spawn(["openssl", "s_server", "-accept",
                     f"127.0.0.1:{self.port}", "-cert", self.cert,
                     "-key", self.key, self.mode, "-quiet"],
                    "s_server.log", cwd=self.dir)
        self._wait_listening("openssl s_server to listen")
        return self


class Listener:
    """A TCP server on threads of the test: handler(conn) runs for each
    connection; connections it returns stay open until close()."""

    def __init__(self, handler, host="127.0.0.1", port=0,
                 family=socket.AF_INET):
        self.sock = socket.socket(family)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.held = []
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r or self.stopping:
                continue
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        try:
            if self.handler(conn):
                self.held.append(conn)
                return
        except OSError:
            pass
        conn.close()

    def close(self):
        self.stopping = True
        time.sleep(0.15)
        self.sock.close()
        for c in self.held:
            c.close()


def hold(conn):
    """Accept and never answer."""
    return True


def banner(data, keep_open=False):
    def handler(conn):
        conn.sendall(data)
        return keep_open
    return handler


def echo(conn):
    """Echo every byte until the peer closes."""
    conn.settimeout(10)
    while True:
        d = conn.recv(4096)
        if not d:
            return False
        conn.sendall(d)


def full_backlog(host="127.0.0.1", family=socket.AF_INET, port=0):
    """A listener that never accepts, its queue filled: a new connection's
    SYN is dropped, so connect() hangs (offline, on loopback).  Returns
    (listener, fillers, port); close them all after use."""
    ls = socket.socket(family)
    ls.bind((host, port))
    ls.listen(0)
    addr = ls.getsockname()[:2]
    fillers = []
    for _ in range(16):
        c = socket.socket(family)
        c.setblocking(False)
        c.connect_ex(addr)
        fillers.append(c)
        _, w, _ = select.select([], [c], [], 0.2)
        if not w:
            return ls, fillers, addr[1]
    for s in fillers + [ls]:
        s.close()
    raise unittest.SkipTest("cannot fill a listener's accept queue here")


def close_all(*socks):
    for s in socks:
        s.close()


class TcpPlugin(PluginTestCase):
    plugin = "tcp"

    @classmethod
    def setUpClass(cls):
        cls.ca = CA()
        cls.valid = TLSServer(cls.ca.issue("valid", days=30),
                              cls.ca.key).start()
        cls.expiring = TLSServer(cls.ca.issue("expiring", days=3),
                                 cls.ca.key).start()
        cls.expired = TLSServer(cls.ca.issue("expired",
                                             start="20200101000000Z",
                                             end="20200201000000Z"),
                                cls.ca.key).start()
        cls.silent = Listener(hold)

    @classmethod
    def tearDownClass(cls):
        for s in (cls.valid, cls.expiring, cls.expired):
            s.close()
        cls.silent.close()
        cls.ca.close()

    def tls(self, server, **kw):
        o = {"host": "127.0.0.1", "port": server.port, "tls": "true",
             "ca_file": self.ca.cert}
        o.update(kw)
        return {k: v for k, v in o.items() if v is not None}

    def assert_cert(self, r, days):
        d = r["details"]
        self.assertRegex(d["cert_not_after"], ISO_UTC)
        self.assertAlmostEqual(d["cert_days_left"], days, delta=0.1)
        self.assertEqual(d["cert_subject"], "CN=localhost")
        self.assertEqual(d["cert_issuer"], "CN=healthd test CA")

    # Plain TCP.

    def test_live_port_passes(self):
        r = self.assert_result({"host": "127.0.0.1", "port": self.silent.port},
                               "pass", f"127.0.0.1:{self.silent.port}: "
                               "connected in")
        d = r["details"]
        self.assertEqual(d["server"], f"127.0.0.1:{self.silent.port}")
        self.assertEqual(d["address"], "127.0.0.1")
        self.assertEqual(d["addresses_tried"], 1)
        self.assertGreaterEqual(d["connect_ms"], 0)
        # A name from /etc/hosts.
        self.assert_result({"host": "localhost", "port": self.silent.port},
                           "pass", f"localhost:{self.silent.port}: ")

    def test_closed_port_is_refused(self):
        port = free_port()
        self.assert_result({"host": "127.0.0.1", "port": port}, "fail",
                           f"127.0.0.1:{port}: connection refused")

    def test_ipv6_address(self):
        try:
            ls = Listener(hold, host="::1", family=socket.AF_INET6)
        except OSError:
            self.skipTest("no IPv6 loopback")
        try:
            r = self.assert_result({"host": "::1", "port": ls.port}, "pass",
                                   f"[::1]:{ls.port}: connected")
            self.assertEqual(r["details"]["address"], "::1")
        finally:
            ls.close()

    def test_unknown_name_fails_in_time(self):
        # No network here: NXDOMAIN, a failure or the deadline, never later.
        r = self.assert_result({"host": "no-such-host.invalid", "port": 80},
                               "fail", "no-such-host.invalid:80: ",
                               timeout_ms=1000)
        self.assertTrue(any(w in r["message"] for w in
                            ("host name not", "resolving the host name")), r)
        self.assertLessEqual(r["duration_ms"], 1000 + self.slack_ms)

    def test_full_accept_queue_fails_at_deadline(self):
        ls, fillers, port = full_backlog()
        try:
            self.assert_deadline({"host": "127.0.0.1", "port": port},
                                 f"127.0.0.1:{port}: ", "connecting")
        finally:
            close_all(ls, *fillers)

    def test_silent_peer_fails_at_deadline_when_expecting(self):
        self.assert_deadline({"host": "127.0.0.1", "port": self.silent.port,
                              "expect": "hello"}, "waiting for the answer")
        # The same peer spoken TLS to: it never answers the handshake.
        self.assert_deadline({"host": "127.0.0.1", "port": self.silent.port,
                              "tls": "true"}, "in the TLS handshake")

    def test_send_and_expect(self):
        ls = Listener(echo)
        try:
            # The peer echoes: the secret comes back, but is never shown.
            r, out = self.run_check({"host": "127.0.0.1", "port": ls.port,
                                     "send": f"AUTH {SECRET}\r\n",
                                     "expect": SECRET})
            self.assertEqual(r["status"], "pass", r)
            self.assertIn("answer matched", r["message"])
            self.assertEqual(r["details"]["bytes_received"],
                             len(f"AUTH {SECRET}\r\n"))
            self.assert_no_secret(out, (SECRET,))
            r, out = self.run_check({"host": "127.0.0.1", "port": ls.port,
                                     "send": f"AUTH {SECRET}\n",
                                     "expect_regex": r"^AUTH [a-z]+-S"})
            self.assertEqual(r["status"], "pass", r)
            self.assert_no_secret(out, (SECRET,))
            # An answer that never matches: the deadline, no secret shown.
            r, out = self.run_check({"host": "127.0.0.1", "port": ls.port,
                                     "send": SECRET, "expect": "+OK"},
                                    timeout_ms=300)
            self.assertEqual(r["status"], "fail", r)
            self.assertIn("timed out after", r["message"])
            self.assert_no_secret(out, (SECRET,))
        finally:
            ls.close()

    def test_banner(self):
        ls = Listener(banner(b"SSH-2.0-OpenSSH_9.2\r\n"))
        try:
            self.assert_result({"host": "127.0.0.1", "port": ls.port,
                                "expect": "SSH-2.0-"}, "pass",
                               "answer matched")
            self.assert_result({"host": "127.0.0.1", "port": ls.port,
                                "expect_regex": r"^SSH-2\.0-[A-Za-z]+_[0-9.]+"},
                               "pass")
            r = self.assert_result({"host": "127.0.0.1", "port": ls.port,
                                    "expect": "+PONG"}, "fail",
                                   "server closed the connection after 21 "
                                   "bytes without a match for expect")
            self.assertEqual(r["details"]["bytes_received"], 21)
            self.assert_result({"host": "127.0.0.1", "port": ls.port,
                                "expect_regex": "^OpenSSH"}, "fail",
                               "without a match for expect_regex")
        finally:
            ls.close()

    def test_expect_reads_at_most_4_kib(self):
        ls = Listener(banner(b"x" * 8192 + b"needle", keep_open=True))
        try:
            r = self.assert_result({"host": "127.0.0.1", "port": ls.port,
                                    "expect": "needle"}, "fail",
                                   "the first 4096 bytes received do not "
                                   "match expect")
            self.assertEqual(r["details"]["bytes_received"], 4096)
        finally:
            ls.close()

    # Several addresses per name (a private /etc/hosts or /etc/resolv.conf
    # in a mount namespace of its own).

    def run_with_files(self, files, options, timeout_ms=2000):
        """healthd-plugin-run with `files` ({path: our copy}) bind-mounted
        over the system's, in a private mount namespace."""
        if not namespaces_usable():
            self.skipTest("needs root and unshare for a private /etc")
        r, stderr, _ = servers.run_plugin_with_files(self.plugin, files,
                                                     options, timeout_ms)
        self.assertIsNotNone(r, stderr)
        return r

    def temp_file(self, text):
        f = tempfile.NamedTemporaryFile("w", prefix="healthd-etc-",
                                        delete=False)
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_every_address_is_tried(self):
        hosts = self.temp_file("::1 dual.test\n127.0.0.1 dual.test\n")
        # ::1 comes first and refuses; 127.0.0.1 answers.
        ls = Listener(hold)
        try:
            r = self.run_with_files({"/etc/hosts": hosts},
                                    {"host": "dual.test", "port": ls.port})
            self.assertEqual(r["status"], "pass", r)
            self.assertEqual(r["details"]["addresses_tried"], 2, r)
            self.assertEqual(r["details"]["address"], "127.0.0.1", r)
        finally:
            ls.close()
        # Both refuse.
        port = free_port()
        r = self.run_with_files({"/etc/hosts": hosts},
                                {"host": "dual.test", "port": port})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("connection refused", r["message"])
        self.assertEqual(r["details"]["addresses_tried"], 2, r)

    def test_black_holed_address_does_not_eat_the_deadline(self):
        # ::1 never answers (its queue is full); 127.0.0.1 gets its turn
        # after 250 ms, well within the deadline.
        hosts = self.temp_file("::1 dual.test\n127.0.0.1 dual.test\n")
        for _ in range(20):
            try:
                ls6, fillers, port = full_backlog("::1", socket.AF_INET6)
            except OSError:
                self.skipTest("no IPv6 loopback")
            try:
                ls4 = Listener(hold, port=port)
                break
            except OSError:
                close_all(ls6, *fillers)  # port taken on 127.0.0.1
        else:
            self.skipTest("no port free on both ::1 and 127.0.0.1")
        try:
            r = self.run_with_files({"/etc/hosts": hosts},
                                    {"host": "dual.test", "port": port},
                                    timeout_ms=2000)
            self.assertEqual(r["status"], "pass", r)
            self.assertEqual(r["details"]["address"], "127.0.0.1", r)
            self.assertGreaterEqual(r["details"]["connect_ms"], 240, r)
            self.assertLess(r["duration_ms"], 1500, r)
        finally:
            ls4.close()
            close_all(ls6, *fillers)

    def test_hung_resolver_fails_at_deadline(self):
        # A nameserver that takes queries and never answers.
        if not namespaces_usable():
            self.skipTest("needs root and unshare for a private /etc")
        ns = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.53"
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            dns.bind((ns, 53))
        except OSError as e:
            dns.close()
            self.skipTest(f"cannot bind {ns}:53: {e}")
        conf = self.temp_file(f"nameserver {ns}\n"
                               "options timeout:5 attempts:1\n")
        try:
            r = self.run_with_files({"/etc/resolv.conf": conf},
                                    {"host": "db.example.test", "port": 5432},
                                    timeout_ms=300)
            self.assertEqual(r["status"], "fail", r)
            self.assertIn("db.example.test:5432: timed out after", r["message"])
            self.assertIn("resolving the host name", r["message"])
            self.assertGreaterEqual(r["duration_ms"], 298, r)
            self.assertLessEqual(r["duration_ms"], 300 + self.slack_ms, r)
            # It did ask.
            dns.settimeout(1)
            self.assertTrue(dns.recv(512))
        finally:
            dns.close()

    # TLS and the certificate's expiry.

    def test_tls_valid_certificate(self):
        r = self.assert_result(self.tls(self.valid), "pass", "TLSv1",
                               "TLS certificate expires in 30 days")
        self.assert_cert(r, 30)
        self.assertNotIn("cert_verify_error", r["details"])
        self.assertIn(r["details"]["tls_version"], ("TLSv1.2", "TLSv1.3"))
        # The name verified (and sent as SNI) defaults to host.
        self.assert_result(self.tls(self.valid, host="localhost"), "pass")
        # send/expect over TLS: s_server -rev answers each line reversed.
        r, out = self.run_check(self.tls(self.valid, send=f"{SECRET}\n",
                                         expect=SECRET[::-1]))
        self.assertEqual(r["status"], "pass", r)
        self.assert_no_secret(out, (SECRET, SECRET[::-1]))

    def test_tls_expiring_certificate_warns(self):
        r = self.assert_result(self.tls(self.expiring), "warn",
                               f"127.0.0.1:{self.expiring.port}: TLS "
                               "certificate expires in 3.0 days (",
                               "under cert_warn_days 14")
        self.assert_cert(r, 3)
        self.assertIn(r["details"]["cert_not_after"], r["message"])
        self.assert_result(self.tls(self.expiring, cert_warn_days="2"), "pass")
        self.assert_result(self.tls(self.expiring, cert_warn_days="0"), "pass")
        self.assert_result(self.tls(self.expiring, cert_fail_days="5"), "fail",
                           "under cert_fail_days 5")

    def test_tls_expired_certificate_fails(self):
        r = self.assert_result(self.tls(self.expired), "fail",
                               "TLS certificate not trusted: certificate has "
                               "expired")
        self.assertEqual(r["details"]["cert_not_after"], "2020-02-01T00:00:00Z")
        self.assertLess(r["details"]["cert_days_left"], -365)
        # Not verified, still judged: expired fails whatever the options.
        self.assert_result(self.tls(self.expired, tls_verify="false",
                                    cert_warn_days="0"), "fail",
                           "TLS certificate expired",
                           "days ago (2020-02-01T00:00:00Z)")

    def test_tls_wrong_name(self):
        opts = self.tls(self.valid, server_name="db.example.test")
        r = self.assert_result(opts, "fail",
                               "TLS certificate not trusted: hostname mismatch")
        self.assert_cert(r, 30)
        # Nothing is sent to a server that failed verification.
        opts["send"] = f"{SECRET}\n"
        opts["expect"] = "x"
        r, out = self.run_check(opts)
        self.assertEqual(r["status"], "fail", r)
        self.assertNotIn("bytes_received", r["details"])
        self.assert_no_secret(out, (SECRET,))
        r = self.assert_result(self.tls(self.valid, server_name="db.example.test",
                                        tls_verify="false"), "pass")
        self.assertEqual(r["details"]["cert_verify_error"], "hostname mismatch")

    def test_tls_unknown_ca(self):
        r = self.assert_result(self.tls(self.valid, ca_file=None), "fail",
                               "TLS certificate not trusted: unable to get "
                               "local issuer certificate")
        self.assert_cert(r, 30)
        r = self.assert_result(self.tls(self.valid, ca_file=None,
                                        tls_verify="false"), "pass",
                               "TLS certificate expires in 30 days")
        self.assert_cert(r, 30)
        self.assertIn("cert_verify_error", r["details"])

    def test_tls_to_a_plain_server(self):
        ls = Listener(banner(b"220 smtp.example ESMTP ready\r\n" * 4))
        try:
            self.assert_result({"host": "127.0.0.1", "port": ls.port,
                                "tls": "true"}, "fail",
                               f"127.0.0.1:{ls.port}: TLS handshake failed")
        finally:
            ls.close()

    # Options.

    def test_bad_options_refused(self):
        base = {"host": "127.0.0.1", "port": "443"}

        def opts(**kw):
            o = dict(base, **kw)
            return {k: v for k, v in o.items() if v is not None}
        # Refused by the core (`required`).
        self.assert_refused(opts(host=None), 'option "host" is required')
        self.assert_refused(opts(port=None), 'option "port" is required')
        self.assert_refused(opts(host=""), 'option "host" must not be empty')
        for port in ("0", "65536", "-1", "https", "80x"):
            with self.subTest(port=port):
                self.assert_refused(opts(port=port), "port: expected")
        self.assert_refused(opts(host="db.example.test:5432"),
                            "host: a name or address without the port")
        self.assert_refused(opts(host="[::1]"), "without brackets")
        self.assert_refused(opts(expect="a", expect_regex="b"),
                            "not both")
        self.assert_refused(opts(expect_regex=f"({SECRET}"),
                            "expect_regex: not a valid", secrets=(SECRET,))
        self.assert_refused(opts(server_name="x.example"),
                            "server_name: needs tls: true")
        self.assert_refused(opts(ca_file="/etc/hostname"),
                            "ca_file: needs tls: true")
        self.assert_refused(opts(tls="maybe"), "tls: expected")
        self.assert_refused(opts(tls="true", tls_verify="maybe"), "tls_verify")
        self.assert_refused(opts(tls="true", ca_file="/nonexistent/ca.pem"),
                            "ca_file: cannot read it")
        self.assert_refused(opts(cert_warn_days="-1"), "cert_warn_days")
        self.assert_refused(opts(cert_warn_days="soon"), "cert_warn_days")
        self.assert_refused(opts(cert_warn_days="7", cert_fail_days="10"),
                            "cert_fail_days: must not be over cert_warn_days")
        self.assert_refused(opts(timeout="1s"), "timeout")

    def test_bad_ca_file_path_not_shown(self):
        with tempfile.TemporaryDirectory(prefix="ca-Secr3t-dir-") as d:
            path = os.path.join(d, "ca.pem")
            with open(path, "w") as f:
                f.write("not a certificate\n")
            err = self.assert_refused(self.tls(self.valid, ca_file=path),
                                      "ca_file: not a PEM file",
                                      secrets=("ca-Secr3t-dir-",))
            self.assertNotIn(path, err)

    # The daemon.

    def test_once_never_shows_what_is_sent(self):
        ls = Listener(echo)
        try:
            self.assert_once({"host": "127.0.0.1", "port": ls.port,
                              "send": f"AUTH {SECRET}\r\n", "expect": "AUTH"},
                             0, f"127.0.0.1:{ls.port}: connected",
                             secrets=(SECRET,))
            self.assert_once({"host": "127.0.0.1", "port": ls.port,
                              "send": f"AUTH {SECRET}\r\n",
                              "expect": f"{SECRET}-x"},
                             2, "timed out", secrets=(SECRET,))
        finally:
            ls.close()
        self.assert_check_config_rejects({"host": "127.0.0.1", "port": "0",
                                          "send": SECRET}, "port",
                                         secrets=(SECRET,))
        self.assert_check_config_rejects({"port": "80", "send": SECRET},
                                         '"host"', secrets=(SECRET,))


if __name__ == "__main__":
    unittest.main()
