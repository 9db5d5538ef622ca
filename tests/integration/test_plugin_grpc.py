"""The grpc plugin against real gRPC servers (Debian's python3-grpcio).

grpc_health_server.py serves grpc.health.v1.Health/Check (or nothing, for
UNIMPLEMENTED), over h2c or TLS (with client certificates for mutual
TLS), records the metadata each call brings, and puts server text in its
error answers, which must never be shown.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from servers import (CLEAN_ENV, HTTPServer, PluginTestCase, Server,
                     free_port)
from test_plugin_tcp import CA

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_SCRIPT = os.path.join(HERE, "grpc_health_server.py")
SERVER_TEXT = "srv-msg-Secr3t-8080"  # in every grpc-message of the server
TOKEN = "Bearer grpc-tok-Secr3t-2718"
SECRET = "grpc-Secr3t-pw-1414"
STATUSES = {"": "SERVING", "db": "NOT_SERVING", "legacy": "SERVICE_UNKNOWN",
            "blank": "UNKNOWN"}


def grpc_python():
    """A Python that has grpcio: this one, or Debian's (python3-grpcio)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe) and subprocess.run(
                [exe, "-c", "import grpc"], capture_output=True,
                timeout=60).returncode == 0:
            return exe
    return None


PYTHON = grpc_python()


class GrpcServer(Server):
    """grpc_health_server.py on 127.0.0.1:port, in its own process."""

    name = "grpc"

    def __init__(self, statuses=None, tls=None, client_ca=None,
                 health=True):
        super().__init__()
        self.record = os.path.join(self.dir, "calls.jsonl")
        self.args = ["--status", json.dumps(statuses or STATUSES),
                     "--record", self.record]
        if tls:
            self.args += ["--tls", *tls]
        if client_ca:
            self.args += ["--client-ca", client_ca]
        if not health:
            self.args.append("--no-health")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def spawn(self):
        self._spawn([PYTHON, SERVER_SCRIPT, "--port", str(self.port),
                     *self.args], "grpc.log", cwd=self.dir, env=CLEAN_ENV)
        return self

    def start(self):
        self.spawn()
        self._wait_listening("the gRPC server to listen")
        return self

    def calls(self):
        """The calls recorded so far: dicts of service, metadata (a list
        of [key, value]) and time_remaining (seconds, from grpc-timeout)."""
        try:
            with open(self.record) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []


@unittest.skipUnless(PYTHON, "python3-grpcio is not installed")
class GrpcPlugin(PluginTestCase):
    plugin = "grpc"

    @classmethod
    def setUpClass(cls):
        cls.ca = CA()
        cls.cert = cls.ca.issue("grpc", days=30)
        tls = (cls.cert, cls.ca.key)
        cls.plain = GrpcServer()
        cls.tls = GrpcServer(tls=tls)
        cls.mtls = GrpcServer(tls=tls, client_ca=cls.ca.cert)
        cls.bare = GrpcServer(health=False)
        cls.grpc_servers = (cls.plain, cls.tls, cls.mtls, cls.bare)
        cls.http = HTTPServer()
        cls.mute = socket.create_server(("127.0.0.1", 0), backlog=128)
        try:
            # Started together: each takes a while to import grpc.
            for s in cls.grpc_servers:
                s.spawn()
            for s in cls.grpc_servers:
                s._wait_listening("the gRPC server to listen")
            cls.http.start()
        except BaseException:
            cls.tearDownClass()
            raise
        cls.secrets = (TOKEN, "grpc-tok-Secr3t", SECRET, SERVER_TEXT)

    @classmethod
    def tearDownClass(cls):
        for s in cls.grpc_servers:
            s.close()
        cls.http.close()
        cls.mute.close()
        cls.ca.close()

    def opts(self, server, **kw):
        o = {"address": server.address}
        if server in (self.tls, self.mtls):
            o.update(tls="true", ca_file=self.ca.cert)
        o.update(kw)
        return {k: v for k, v in o.items() if v is not None}

    def check_clean(self, options, status, *words, timeout_ms=None):
        """assert_result, and nothing secret in any output."""
        r, out = self.run_check(options, timeout_ms)
        self.assertEqual(r["status"], status, r)
        for w in words:
            self.assertIn(w, r["message"], r)
        self.assert_no_secret(out, self.secrets)
        return r

    # Serving statuses.

    def test_serving(self):
        r = self.check_clean(self.opts(self.plain), "pass",
                             f"grpc://{self.plain.address}: SERVING in ")
        d = r["details"]
        self.assertEqual(d["serving_status"], "SERVING")
        self.assertEqual(d["grpc_status"], "OK")
        self.assertEqual(d["address"], self.plain.address)
        self.assertEqual(d["service"], "")
        self.assertIs(d["tls"], False)
        self.assertGreaterEqual(d["latency_ms"], 0)
        self.assertNotIn("cert_not_after", d)
        self.assertEqual(r["target"], f"grpc://{self.plain.address}")

    def test_per_service_status(self):
        # "" SERVING while "db" is NOT_SERVING.
        self.check_clean(self.opts(self.plain, service=""), "pass")
        r = self.check_clean(self.opts(self.plain, service="db"), "fail",
                             f"grpc://{self.plain.address} service db: "
                             "NOT_SERVING")
        self.assertEqual(r["details"]["serving_status"], "NOT_SERVING")
        self.assertEqual(r["details"]["service"], "db")
        calls = [c["service"] for c in self.plain.calls()]
        self.assertIn("db", calls)

    def test_service_unknown_and_unknown(self):
        r = self.check_clean(self.opts(self.plain, service="legacy"), "fail",
                             "service legacy: SERVICE_UNKNOWN")
        self.assertEqual(r["details"]["serving_status"], "SERVICE_UNKNOWN")
        # UNKNOWN is 0, proto3's default: an empty HealthCheckResponse.
        self.check_clean(self.opts(self.plain, service="blank"), "fail",
                         "service blank: UNKNOWN")
        # A service the server does not know: NOT_FOUND (grpc's health
        # servicer answers so), without the server's text.
        r = self.check_clean(self.opts(self.plain, service="payments"),
                             "fail", "service payments: service unknown to "
                             "the server (NOT_FOUND)")
        self.assertEqual(r["details"]["grpc_status"], "NOT_FOUND")

    def test_error_status_named_server_text_never_shown(self):
        for code in ("UNAVAILABLE", "PERMISSION_DENIED", "DEADLINE_EXCEEDED",
                     "UNAUTHENTICATED", "INTERNAL"):
            with self.subTest(code=code):
                r = self.check_clean(
                    self.opts(self.plain, service=f"abort:{code}"), "fail",
                    f"Health/Check returned {code}")
                self.assertEqual(r["details"]["grpc_status"], code)

    def test_unimplemented(self):
        # grpcio answers an unknown method on its headers alone and resets
        # the stream; libcurl 7.88 then sometimes drops the answer (see
        # grpc.c), and the plugin names the likely status.
        for _ in range(3):
            r = self.check_clean(self.opts(self.bare), "fail",
                                 "UNIMPLEMENTED",
                                 "grpc.health.v1.Health service")
            if "grpc_status" in r["details"]:
                self.assertEqual(r["details"]["grpc_status"], "UNIMPLEMENTED")

    # Metadata and grpc-timeout.

    def test_metadata_sent_and_never_shown(self):
        before = len(self.plain.calls())
        for service, status in (("", "pass"), ("db", "fail"),
                                ("abort:UNAUTHENTICATED", "fail")):
            self.check_clean([("address", self.plain.address),
                              ("service", service),
                              ("metadata.Authorization", TOKEN),
                              ("metadata.x-tenant", "t-42")], status,
                             timeout_ms=1500)
        calls = self.plain.calls()[before:]
        self.assertEqual(len(calls), 3, calls)
        for c in calls:
            md = dict(c["metadata"])
            # HTTP/2 header names are lowercase.
            self.assertEqual(md.get("authorization"), TOKEN, c)
            self.assertEqual(md.get("x-tenant"), "t-42", c)
            self.assertEqual(md.get("user-agent"), "healthd", c)
            # grpc-timeout: the time left, under the run's 1500 ms.
            self.assertGreater(c["time_remaining"], 0.5, c)
            self.assertLessEqual(c["time_remaining"], 1.5, c)
        # Over TLS too.
        r = self.check_clean([*self.opts(self.tls).items(),
                              ("metadata.authorization", TOKEN)], "pass")
        self.assertEqual(dict(self.tls.calls()[-1]["metadata"])
                         .get("authorization"), TOKEN, r)

    def test_metadata_refused_without_showing_values(self):
        a = self.plain.address
        for key in ("grpc-timeout", "Content-Type", "te", "host", "bad key",
                    "x:y"):
            with self.subTest(key=key):
                self.assert_refused([("address", a), (f"metadata.{key}", SECRET)],
                                    "metadata", secrets=self.secrets)
        self.assert_refused([("address", a),
                             ("metadata.authorization", f"{SECRET}\x01")],
                            "metadata.authorization", "printable ASCII",
                            secrets=self.secrets)

    # TLS.

    def test_tls(self):
        r = self.check_clean(self.opts(self.tls), "pass",
                             f"grpcs://{self.tls.address}: SERVING")
        d = r["details"]
        self.assertIs(d["tls"], True)
        self.assertAlmostEqual(d["cert_days_left"], 30, delta=0.1)
        self.assertEqual(d["cert_subject"], "CN=localhost")
        self.assertEqual(d["cert_issuer"], "CN=healthd test CA")
        # The per-service status over TLS.
        self.check_clean(self.opts(self.tls, service="db"), "fail",
                         "NOT_SERVING")
        # Not trusted without the CA; accepted unverified.
        self.check_clean(self.opts(self.tls, ca_file=None), "fail",
                         "TLS certificate not trusted")
        self.check_clean(self.opts(self.tls, ca_file=None,
                                   tls_verify="false"), "pass")
        # server_name: SNI, :authority and the name verified.
        self.check_clean(self.opts(self.tls, server_name="localhost"), "pass")
        self.check_clean(self.opts(self.tls, server_name="db.example"),
                         "fail", "TLS")
        # The certificate's expiry judged as the tcp and http plugins do.
        self.check_clean(self.opts(self.tls, cert_warn_days="40"), "warn",
                         "SERVING, but TLS certificate expires in",
                         "under cert_warn_days 40")

    def test_tls_and_cleartext_mixed_up(self):
        # h2c to a TLS server; TLS to an h2c server.
        self.check_clean(self.opts(self.tls, tls=None, ca_file=None), "fail",
                         "no HTTP/2 answer", "needs tls: true")
        self.check_clean(self.opts(self.plain, tls="true"), "fail", "TLS")

    def test_mutual_tls(self):
        self.check_clean(self.opts(self.mtls), "fail",
                         "no answer after the TLS handshake",
                         "require a client certificate")
        self.check_clean(self.opts(self.mtls, cert_file=self.cert,
                                   key_file=self.ca.key), "pass", "SERVING")
        # One PEM file holding both.
        both = os.path.join(self.ca.dir, "both.pem")
        with open(both, "w") as f:
            for p in (self.cert, self.ca.key):
                with open(p) as src:
                    f.write(src.read())
        self.check_clean(self.opts(self.mtls, cert_file=both), "pass")
        # A key that is no PEM key: curl's text names the file.
        with tempfile.TemporaryDirectory(prefix="key-Secr3t-dir-") as d:
            bad = os.path.join(d, "key.pem")
            with open(bad, "w") as f:
                f.write("not a key\n")
            r, out = self.run_check(self.opts(self.mtls, cert_file=self.cert,
                                              key_file=bad))
            self.assertEqual(r["status"], "fail", r)
            self.assertIn("cannot use cert_file and key_file", r["message"])
            self.assert_no_secret(out, ("key-Secr3t-dir-",))

    # Servers that are no gRPC server, or do not answer.

    def test_never_answers_fails_at_deadline(self):
        a = f"127.0.0.1:{self.mute.getsockname()[1]}"
        self.assert_deadline({"address": a})
        self.assert_deadline({"address": a, "tls": "true"})
        self.plain.pause()
        try:
            self.assert_deadline(self.opts(self.plain), timeout_ms=400)
        finally:
            self.plain.resume()
        self.check_clean(self.opts(self.plain), "pass")

    def test_http1_server(self):
        self.check_clean({"address": f"127.0.0.1:{self.http.port}"}, "fail",
                         "no HTTP/2 answer: not a gRPC server")

    def test_connection_refused(self):
        self.check_clean({"address": f"127.0.0.1:{free_port()}"}, "fail",
                         "connection refused")

    def test_bad_options_refused(self):
        a = self.plain.address
        self.assert_refused({}, "address")
        for bad in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":50051",
                    "h:port", "[::1]", "::1:50051", f"grpc://{SECRET}@h:1",
                    f"{SECRET}/x:1"):
            with self.subTest(address=bad):
                self.assert_refused({"address": bad}, "address",
                                    secrets=self.secrets)
        self.assert_refused({"address": a, "tls": "maybe"}, "tls")
        self.assert_refused({"address": a, "ca_file": self.ca.cert},
                            "ca_file: needs tls: true")
        self.assert_refused({"address": a, "tls": "true",
                             "ca_file": "/nonexistent/ca.pem"}, "ca_file")
        self.assert_refused({"address": a, "tls": "true",
                             "key_file": self.ca.key}, "key_file: needs cert_file")
        self.assert_refused({"address": a, "service": "a\nb"}, "service")
        self.assert_refused({"address": a, "server_name": "a b"},
                            "server_name")
        self.assert_refused({"address": a, "timeout": "1"}, "timeout")

    def test_ipv6_address_accepted(self):
        # Parsed and named; nothing listens there.
        r, _ = self.run_check({"address": f"[::1]:{free_port()}"})
        self.assertEqual(r["status"], "fail", r)
        self.assertIn(f"grpc://[::1]:", r["message"])

    # The daemon.

    def test_check_config_rejects_bad_options(self):
        self.assert_check_config_rejects(
            [("address", f"{SECRET}:1:2")], "address", secrets=self.secrets)

    def test_once(self):
        opts = [("address", self.plain.address),
                ("metadata.authorization", TOKEN)]
        self.assert_once(opts, 0, "SERVING", secrets=self.secrets)
        self.assert_once(opts + [("service", "abort:UNAVAILABLE")], 2,
                         "UNAVAILABLE", secrets=self.secrets)

    def test_daemon(self):
        """Three checks through the daemon, the token from ${...}: the
        server gets it; no page, metric or log line shows it."""
        def entry(name, address, extra=(), timeout="1s"):
            return "\n".join([
                f"  - name: {name}", "    plugin: grpc",
                "    interval: 1s", f"    timeout: {timeout}",
                "    failure_threshold: 1", "    options:",
                f"      address: {json.dumps(address)}", *extra,
                "      metadata:",
                '        authorization: "Bearer ${GRPC_TOKEN}"'])
        token = TOKEN.split(" ", 1)[1]
        mute = f"127.0.0.1:{self.mute.getsockname()[1]}"
        checks = [entry("serving", self.plain.address),
                  entry("db", self.plain.address, ['      service: "db"']),
                  entry("tls", self.tls.address,
                        ["      tls: true",
                         f"      ca_file: {json.dumps(self.ca.cert)}",
                         '      service: "abort:UNAVAILABLE"']),
                  entry("mute", mute, timeout="300ms")]
        before = len(self.plain.calls())
        with harness.Daemon(checks=checks, env={"GRPC_TOKEN": token},
                            wait_started=False) as d:
            def checks_now():
                return d.get(harness.BASE + "/").json()["checks"]

            def all_done():
                c = checks_now()
                return c if all(c[n]["status"] != "pending" and
                                c[n]["message"] for n in c) else None
            c = d.wait_for(all_done, what="a result for every check")
            self.assertEqual(c["serving"]["status"], "pass", c)
            self.assertIn("SERVING", c["serving"]["message"])
            self.assertEqual(c["db"]["status"], "fail", c)
            self.assertIn("service db: NOT_SERVING", c["db"]["message"])
            self.assertEqual(c["tls"]["status"], "fail", c)
            self.assertIn("Health/Check returned UNAVAILABLE",
                          c["tls"]["message"])
            self.assertEqual(c["mute"]["status"], "fail", c)
            self.assertIn(f"grpc://{mute}", c["mute"]["message"])
            self.assertIn("timed out after", c["mute"]["message"])
            out = d.get(harness.BASE + "/").raw.decode()
            for n in c:
                out += d.get(f"{harness.BASE}/checks/{n}").raw.decode()
            out += d.get("/metrics").raw.decode()
            time.sleep(0.3)
            out += d.logs()
        self.assert_no_secret(out, self.secrets + (token,))
        calls = self.plain.calls()[before:]
        self.assertTrue(calls)
        for call in calls:
            self.assertEqual(dict(call["metadata"]).get("authorization"),
                             TOKEN, call)


if __name__ == "__main__":
    unittest.main()
