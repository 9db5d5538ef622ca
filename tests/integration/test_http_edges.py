"""Requests at the edges of HTTP: names that are not names, headers past the
limit.  Each answer is ours: JSON with our headers, never another check's
and never libmicrohttpd's own page."""

import json
import socket
import unittest

from harness import BASE, Daemon, check


def raw_request(port, head):
    """Send `head` (the request line and headers, without the blank line)
    as bytes, return (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(head + b"\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


class CheckNames(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(checks=[check("a", options={"mode": "pass"}),
                               check("a.b", options={"mode": "pass"})])
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.dir.cleanup()

    def test_control_characters_are_not_names(self):
        # libmicrohttpd decodes %00 into a NUL, where the C string of the
        # name would end: "a%00x" must not answer for "a".
        for name in ("a%00x", "a%00", "a%0a", "a%0d%0aX-Injected:%201",
                     "a%01", "a%7f", "a%00/history", "%00"):
            status, headers, body = raw_request(
                self.d.port, f"GET {BASE}/checks/{name} HTTP/1.1\r\n"
                             f"Host: x".encode())
            self.assertEqual(status, 404, name)
            self.assertEqual(headers["content-type"], "application/json")
            self.assertEqual(json.loads(body)["code"], 404)
            self.assertNotIn("x-injected", headers)

    def test_real_names_still_answer(self):
        self.assertEqual(self.d.get(BASE + "/checks/a").status, 200)
        self.assertEqual(self.d.get(BASE + "/checks/%61").status, 200)
        self.assertEqual(self.d.get(BASE + "/checks/a.b/history").status, 200)

    def test_exclude_with_nul_excludes_nothing(self):
        # ?exclude=a%00x names no check: it must not leave "a" out.
        body = self.d.get(BASE + "/?exclude=a%00x").json()
        self.assertIn("a", body["checks"])


class HeaderLimit(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(checks=[check("db", options={"mode": "pass"})])
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.dir.cleanup()

    def test_headers_over_the_limit_get_our_431(self):
        head = (f"GET {BASE}/ready HTTP/1.1\r\nHost: x\r\n"
                f"X-Request-ID: big-one\r\nCookie: {'c' * 9000}").encode()
        status, headers, body = raw_request(self.d.port, head)
        self.assertEqual(status, 431)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["cache-control"], "no-store")
        self.assertEqual(headers["x-request-id"], "big-one")
        self.assertEqual(json.loads(body)["code"], 431)

    def test_headers_under_the_limit_answered(self):
        head = (f"GET {BASE}/ready HTTP/1.1\r\nHost: x\r\n"
                f"Cookie: {'c' * 7000}").encode()
        status, _, _ = raw_request(self.d.port, head)
        self.assertEqual(status, 200)

    def test_connection_still_serves_after(self):
        raw_request(self.d.port, (f"GET {BASE}/live HTTP/1.1\r\nHost: x\r\n"
                                  f"Cookie: {'c' * 9000}").encode())
        self.assertEqual(self.d.get(BASE + "/live").status, 200)


if __name__ == "__main__":
    unittest.main()
