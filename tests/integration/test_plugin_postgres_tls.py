"""The postgres plugin in Kubernetes conditions: host names resolved within
the deadline (a nameserver of our own: dnsmasq behind a private
/etc/resolv.conf in a mount namespace) and TLS (sslmode, sslrootcert,
sslcert, sslkey) against a real PostgreSQL 15 with ssl=on."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import harness
import servers
from servers import (PluginTestCase, Postgres, dns_relay, namespaces_usable,
                     run_plugin_with_files, start_dnsmasq)


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


class PKI:
    """Throw-away CAs and certificates (openssl CLI): `ca` issues the
    server's (localhost, 127.0.0.1, pg.test) and the client's (CN=NAME);
    `other` is a CA that issued nothing the server has."""

    def __init__(self, client_cn):
        self.dir = tempfile.mkdtemp(prefix="healthd-pgtls-")
        d = self.dir
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes"]
        for ca in ("ca", "other"):
            openssl("req", "-x509", *ec, "-days", "30", "-subj",
                    f"/CN=healthd {ca} CA", "-keyout", f"{ca}.key", "-out",
                    f"{ca}.pem", cwd=d)
        self.ca, self.other = self.path("ca.pem"), self.path("other.pem")
        self.server_cert, self.server_key = self.issue(
            "server", "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:pg.test")
        self.client_cert, self.client_key = self.issue("client", client_cn)
        os.chmod(self.client_key, 0o600)

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, cn, ext=None):
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={cn}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=self.dir)
        extra = []
        if ext:
            with open(self.path(f"{name}.ext"), "w") as f:
                f.write(ext + "\n")
            extra = ["-extfile", f"{name}.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
                "-CAkey", "ca.key", "-CAcreateserial", "-days", "30",
                "-out", f"{name}.pem", *extra, cwd=self.dir)
        return self.path(f"{name}.pem"), self.path(f"{name}.key")

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def full_backlog(host, family, port):
    """A listener on host:port that never accepts, its queue filled: a new
    connection's SYN is dropped (a black hole, offline, on loopback).
    Returns the sockets to close."""
    ls = socket.socket(family)
    ls.bind((host, port))
    ls.listen(0)
    socks = [ls]
    for _ in range(16):
        c = socket.socket(family)
        c.setblocking(False)
        c.connect_ex((host, port))
        socks.append(c)
        if not __import__("select").select([], [c], [], 0.2)[1]:
            return socks
    for s in socks:
        s.close()
    raise unittest.SkipTest("cannot fill a listener's accept queue here")


class NamespacedDaemon(harness.Daemon):
    """harness.Daemon with files bind-mounted over the system's (a private
    /etc/resolv.conf) in a mount namespace of its own."""

    def __init__(self, files, **kw):
        super().__init__(**kw)
        self.files = files

    def start(self):
        mounts = "".join(f'mount --bind "{src}" "{dst}" && '
                         for dst, src in self.files.items())
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", mounts + 'exec "$@"', "sh",
             harness.BIN, "-c", self.path], env=self.env,
            stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("healthd exited:\n" + self.logs())
            try:
                if self.get(harness.BASE + "/startup").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("healthd did not start:\n" + self.logs())


class PostgresTLS(PluginTestCase):
    plugin = "postgres"
    timeout_ms = 3000

    @classmethod
    def setUpClass(cls):
        cls.pki = PKI("pgcert")
        try:
            cls.pg = Postgres(ssl={"cert": cls.pki.server_cert,
                                   "key": cls.pki.server_key,
                                   "ca": cls.pki.ca,
                                   "cert_user": "pgcert"}).start()
            cls.plain = Postgres().start()
        except BaseException:
            cls.pki.close()
            raise
        pki = cls.pki
        # Never in any output: the password, and the paths of the key files
        # (and of the other TLS files: none is shown).
        cls.secrets = (cls.pg.password, pki.client_key, pki.server_key,
                       pki.dir)

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()
        cls.plain.close()
        cls.pki.close()

    def check(self, dsn, status, *words, timeout_ms=None):
        r, out = self.run_check({"dsn": dsn}, timeout_ms)
        self.assertEqual(r["status"], status, r)
        for w in words:
            self.assertIn(w, r["message"], r)
        self.assert_no_secret(out, self.secrets)
        return r

    # sslmode, sslrootcert, sslcert and sslkey are libpq's own keys: they
    # pass through the dsn (and URI query parameters) as they are.

    def test_sslmodes_pass(self):
        pg, ca = self.pg, self.pki.ca
        for mode in ("disable", "allow", "prefer", "require"):
            with self.subTest(sslmode=mode):
                self.check(pg.dsn_with(sslmode=mode), "pass", "query ok")
        with self.subTest("verify-ca"):
            self.check(pg.dsn_with(sslmode="verify-ca", sslrootcert=ca),
                       "pass")
        with self.subTest("verify-full by name and by address"):
            self.check(pg.dsn_with(host="localhost", sslmode="verify-full",
                                   sslrootcert=ca), "pass")
            self.check(pg.dsn_with(sslmode="verify-full", sslrootcert=ca),
                       "pass")
        with self.subTest("URI"):
            self.check(pg.url + f"?sslmode=verify-full&sslrootcert={ca}",
                       "pass")

    def test_sslmodes_fail(self):
        pg = self.pg
        with self.subTest("verify-ca, another CA"):
            self.check(pg.dsn_with(sslmode="verify-ca",
                                   sslrootcert=self.pki.other), "fail",
                       "TLS: certificate verify failed")
        with self.subTest("verify-full, a name not in the certificate"):
            # The name is kept while the address is given: it is verified.
            self.check(pg.dsn_with(host="db.example.test", hostaddr="127.0.0.1",
                                   sslmode="verify-full",
                                   sslrootcert=self.pki.ca), "fail",
                       "TLS: the server certificate does not match the host "
                       "name")
        with self.subTest("verify-ca, no sslrootcert file"):
            self.check(pg.dsn_with(sslmode="verify-ca",
                                   sslrootcert=self.pki.path("missing.pem")),
                       "fail", "TLS: sslrootcert file not found")
        with self.subTest("a server without SSL"):
            self.check(self.plain.dsn_with(sslmode="require"), "fail",
                       "TLS: the server does not support SSL, but sslmode "
                       "requires it")
            self.check(self.plain.dsn_with(sslmode="prefer"), "pass")

    def test_client_certificate(self):
        pki, pg = self.pki, self.pg
        cert = dict(host="localhost", user="pgcert", password=None,
                    sslmode="verify-full", sslrootcert=pki.ca)
        self.check(pg.dsn_with(sslcert=pki.client_cert,
                               sslkey=pki.client_key, **cert), "pass")
        # No certificate: pg_hba's `cert` line refuses, by SQLSTATE.
        self.check(pg.dsn_with(sslcert=pki.path("none.pem"),
                               sslkey=pki.path("none.key"), **cert), "fail",
                   "not authorized")
        # A key others may read: libpq refuses it; its path is not shown.
        loose = pki.path("loose.key")
        shutil.copyfile(pki.client_key, loose)
        os.chmod(loose, 0o644)
        self.check(pg.dsn_with(sslcert=pki.client_cert, sslkey=loose, **cert),
                   "fail", "TLS: sslkey file readable by others")
        # A certificate without its key.
        self.check(pg.dsn_with(sslcert=pki.client_cert,
                               sslkey=pki.path("none.key"), **cert),
                   "fail", "TLS: sslkey file not found")

    def test_tls_handshake_stall_fails_at_deadline(self):
        # Accepts, never answers the SSLRequest.
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        try:
            r = self.assert_deadline(
                {"dsn": f"host=127.0.0.1 port={ls.getsockname()[1]} "
                        f"user=u password={self.pg.password} "
                        "sslmode=require", "mode": "connect"},
                "in the TLS handshake")
            self.assert_no_secret(str(r), self.secrets)
        finally:
            ls.close()

    # Host names, resolved within the deadline by a nameserver of our own.

    def in_namespace(self, files, options, timeout_ms=2000):
        if not namespaces_usable():
            self.skipTest("needs root and unshare for a private resolv.conf")
        r, err, wall = run_plugin_with_files(self.plugin, files, options,
                                             timeout_ms)
        self.assertIsNotNone(r, err)
        self.assert_no_secret(str(r) + err, self.secrets)
        return r

    def resolv_conf(self, relay):
        f = tempfile.NamedTemporaryFile("w", prefix="healthd-resolv-",
                                        delete=False)
        f.write(relay.resolv_conf)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return {"/etc/resolv.conf": f.name,
                # NSS files first: an empty hosts file so DNS answers.
                "/etc/hosts": self.empty_hosts()}

    def empty_hosts(self):
        f = tempfile.NamedTemporaryFile("w", prefix="healthd-hosts-",
                                        delete=False)
        f.write("127.0.0.1 localhost\n")
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def dns(self):
        if not namespaces_usable():
            self.skipTest("needs root and unshare for a private resolv.conf")
        if not shutil.which("dnsmasq") and not os.path.exists(
                "/usr/sbin/dnsmasq"):
            self.skipTest("no dnsmasq")
        # ::1 first (glibc sorts IPv6 first): the black hole.
        d = start_dnsmasq(["host-record=pg.test,127.0.0.1,::1",
                           "host-record=other.test,127.0.0.1",
                           "host-record=two.test,127.0.0.1"])
        self.addCleanup(d.close)
        relay = dns_relay(("127.0.0.1", d.port))
        self.addCleanup(relay.close)
        return self.resolv_conf(relay)

    def test_names_resolved_within_the_deadline(self):
        files = self.dns()
        pg, ca = self.pg, self.pki.ca
        try:
            hole = full_backlog("::1", socket.AF_INET6, pg.port)
        except OSError:
            self.skipTest("no IPv6 loopback")
        try:
            # ::1 drops the SYN; 127.0.0.1 gets its turn after 250 ms, and
            # the name is the one verified.
            r = self.in_namespace(files, {"dsn": pg.dsn_with(
                host="pg.test", sslmode="verify-full", sslrootcert=ca)})
            self.assertEqual(r["status"], "pass", r)
            self.assertEqual(r["details"]["address"], "127.0.0.1", r)
            self.assertEqual(r["details"]["addresses_tried"], 2, r)
            self.assertLess(r["duration_ms"], 1500, r)
        finally:
            for s in hole:
                s.close()
        # Same name, URI form, several hosts: one that does not exist, then
        # ours.
        r = self.in_namespace(files, {"dsn": f"postgresql://{pg.user}:"
                                      f"{pg.password}@missing.test:{pg.port},"
                                      f"two.test:{pg.port}/{pg.dbname}"})
        self.assertEqual(r["status"], "pass", r)
        r = self.in_namespace(files, {"dsn": pg.dsn_with(
            host="missing.test,two.test")})
        self.assertEqual(r["status"], "pass", r)
        # A name that is not in the certificate.
        r = self.in_namespace(files, {"dsn": pg.dsn_with(
            host="other.test", sslmode="verify-full", sslrootcert=ca)})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("does not match the host name", r["message"])
        # NXDOMAIN.
        r = self.in_namespace(files, {"dsn": pg.dsn_with(host="missing.test")})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("missing.test: name does not exist", r["message"])

    def test_resolver_that_never_answers_fails_at_deadline(self):
        if not namespaces_usable():
            self.skipTest("needs root and unshare for a private resolv.conf")
        relay = dns_relay()
        self.addCleanup(relay.close)
        files = self.resolv_conf(relay)
        r = self.in_namespace(files, {"dsn": self.pg.dsn_with(
            host="pg.test")}, timeout_ms=300)
        self.assertEqual(r["status"], "fail", r)
        self.assertIn("could not resolve pg.test (timed out after",
                      r["message"])
        self.assertGreaterEqual(r["duration_ms"], 298, r)
        self.assertLessEqual(r["duration_ms"], 300 + self.slack_ms, r)
        self.assertGreater(relay.queries, 0)
        # Through the daemon: every run ends at its deadline and the next
        # comes on schedule (the lookups left running do not hold it).
        checks = [harness.check("db", plugin="postgres", interval="300ms",
                                timeout="200ms", failure_threshold=1,
                                options={"dsn": self.pg.dsn_with(
                                    host="pg.test"), "mode": "connect"})]
        with NamespacedDaemon(files, checks=checks) as d:
            runs = {}

            def enough():
                c = d.get(harness.BASE + "/checks/db").json()
                if "could not resolve" in (c.get("message") or ""):
                    runs[c["last_run"]] = c
                return len(runs) >= 4
            t0 = time.monotonic()
            d.wait_for(enough, timeout=10, what="four runs")
            self.assertLess(time.monotonic() - t0, 4, runs)
            for c in runs.values():
                self.assertIn("timed out after", c["message"])
            self.assert_no_secret(str(runs) + d.logs(), self.secrets)


if __name__ == "__main__":
    unittest.main()
