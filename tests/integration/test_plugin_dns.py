"""The dns plugin against a real DNS server (dnsmasq on 127.0.0.1), a server
that never answers, and through the whole daemon (a plugin host)."""

import os
import re
import socket
import time
import unittest

import harness
import servers
from servers import PluginTestCase

RECORDS = [
    "host-record=app.test,10.0.0.1,::1",
    "host-record=v4.test,10.0.0.2",        # A only: AAAA is "no records"
    "host-record=pool.test,10.0.1.1",
    "host-record=pool.test,10.0.1.2",
    "cname=alias.test,app.test",
    "srv-host=_pg._tcp.test,db.test,5432",
    "txt-record=app.test,v=spf1 -all",
]


def silent_udp_socket():
    """A UDP socket bound on loopback that nobody reads: a DNS server that
    never answers (and sends no ICMP "port unreachable" either)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def resolv_conf_servers():
    """The nameservers of /etc/resolv.conf as c-ares lists them."""
    found = []
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                w = line.split()
                if len(w) >= 2 and w[0] == "nameserver":
                    found.append(f"[{w[1]}]:53" if ":" in w[1]
                                 else f"{w[1]}:53")
    except OSError:
        pass
    return found or ["127.0.0.1:53"]


class DnsPlugin(PluginTestCase):
    plugin = "dns"
    timeout_ms = 3000  # generous: a pass never waits for it

    @classmethod
    def setUpClass(cls):
        cls.dns = servers.start_dnsmasq(RECORDS)
        cls.silent = silent_udp_socket()
        cls.silent_addr = "127.0.0.1:%d" % cls.silent.getsockname()[1]

    @classmethod
    def tearDownClass(cls):
        cls.silent.close()
        cls.dns.close()

    def opts(self, name, **kw):
        o = {"name": name, "server": self.dns.address}
        o.update(kw)
        return o

    # --- answers ---

    def test_a_and_aaaa_by_default(self):
        r = self.assert_result(self.opts("app.test"), "pass", "app.test",
                               "10.0.0.1,::1")
        d = r["details"]
        self.assertEqual(d["name"], "app.test")
        self.assertEqual(d["type"], "A,AAAA")
        self.assertEqual(d["server"], self.dns.address)
        self.assertEqual(d["answers"], "10.0.0.1,::1")
        self.assertEqual(d["answer_count"], 2)
        self.assertGreaterEqual(d["time_ms"], 0)
        self.assertLess(d["time_ms"], r["duration_ms"] + 0.01)
        # A name with A records only resolves, as in getaddrinfo().
        r = self.assert_result(self.opts("v4.test"), "pass", "10.0.0.2")
        self.assertEqual(r["details"]["answers"], "10.0.0.2")

    def test_one_type(self):
        r = self.assert_result(self.opts("app.test", type="A"), "pass")
        self.assertEqual(r["details"]["answers"], "10.0.0.1")
        self.assertEqual(r["details"]["type"], "A")
        r = self.assert_result(self.opts("app.test", type="aaaa"), "pass")
        self.assertEqual(r["details"]["answers"], "::1")
        # The list form of the default, in either order.
        r = self.assert_result(self.opts("app.test", type="AAAA, A"), "pass")
        self.assertEqual(r["details"]["type"], "A,AAAA")

    def test_no_answer_of_that_type_fails(self):
        self.assert_result(self.opts("v4.test", type="AAAA"), "fail",
                           "v4.test: no AAAA records")
        self.assert_result(self.opts("app.test", type="SRV"), "fail",
                           "app.test: no SRV records")

    def test_nxdomain_fails(self):
        r = self.assert_result(self.opts("nope.test"), "fail")
        self.assertEqual(r["message"], "nope.test: no such name (NXDOMAIN)")
        self.assert_result(self.opts("nope.test", type="TXT"), "fail",
                           "nope.test: no such name (NXDOMAIN)")

    def test_server_errors_are_told(self):
        # dnsmasq has no upstream: a name outside its domain is REFUSED.
        self.assert_result(self.opts("example.org", type="A"), "fail",
                           "example.org: the server refused the query "
                           "(REFUSED, A)")
        # Nothing listens there: ICMP port unreachable, at once.
        port = servers.free_port()
        self.assert_result({"name": "app.test",
                            "server": f"127.0.0.1:{port}"}, "fail",
                           f"connection refused by 127.0.0.1:{port}")
        self.assertLess(self.wall_ms, 2500)

    def test_cname_srv_txt(self):
        r = self.assert_result(self.opts("alias.test", type="CNAME",
                                         expect="app.test."), "pass")
        self.assertEqual(r["details"]["answers"], "app.test")
        # An address lookup follows the CNAME and says where it led.
        r = self.assert_result(self.opts("alias.test"), "pass", "10.0.0.1")
        self.assertEqual(r["details"]["canonical_name"], "app.test")
        r = self.assert_result(self.opts("_pg._tcp.test", type="SRV",
                                         expect="DB.test:5432"), "pass")
        self.assertEqual(r["details"]["answers"], "db.test:5432")
        self.assert_result(self.opts("_pg._tcp.test", type="SRV",
                                     expect="db.test:5433"), "fail",
                           "expected db.test:5433 not among the SRV answers")
        r = self.assert_result(self.opts("app.test", type="TXT",
                                         expect="v=spf1 -all"), "pass")
        self.assertEqual(r["details"]["answers"], "v=spf1 -all")

    # --- expect ---

    def test_expect_every_address(self):
        # Every expected address must be among the answers; written any
        # way inet_pton() reads it, with blanks after the commas.
        self.assert_result(self.opts("app.test", expect="10.0.0.1, 0:0::1"),
                           "pass")
        self.assert_result(self.opts("pool.test", expect="10.0.1.2"), "pass")
        r = self.assert_result(self.opts("pool.test",
                                         expect="10.0.1.1,10.0.1.2"), "pass")
        self.assertEqual(sorted(r["details"]["answers"].split(",")),
                         ["10.0.1.1", "10.0.1.2"])

    def test_expect_mismatch_fails_naming_what_is_missing(self):
        r = self.assert_result(self.opts("app.test", expect="10.0.0.9"),
                               "fail")
        self.assertEqual(r["message"], "app.test: expected 10.0.0.9 not among "
                                       "the A,AAAA answers (10.0.0.1,::1)")
        self.assertEqual(r["details"]["missing"], "10.0.0.9")
        self.assertEqual(r["details"]["answers"], "10.0.0.1,::1")
        # One present, one missing: still a failure.
        r = self.assert_result(self.opts("pool.test",
                                         expect="10.0.1.1,10.0.1.3,10.0.1.4"),
                               "fail", "expected 10.0.1.3,10.0.1.4 not among")
        self.assertEqual(r["details"]["missing"], "10.0.1.3,10.0.1.4")

    # --- deadlines ---

    def test_server_that_never_answers_fails_at_the_deadline(self):
        for attempts in ("1", "2", "5"):
            r = self.assert_deadline({"name": "app.test",
                                      "server": self.silent_addr,
                                      "attempts": attempts},
                                     "resolving app.test", timeout_ms=300)
            self.assertRegex(r["message"],
                             r"^timed out after \d+ ms resolving app\.test$")
            said = int(r["message"].split()[3])
            self.assertGreaterEqual(said, 298, r)
            self.assertLessEqual(said, 300 + self.slack_ms, r)
            self.assertEqual(r["details"]["server"], self.silent_addr)
            self.assertNotIn("answers", r["details"])

    def test_hung_dnsmasq_fails_at_the_deadline(self):
        self.dns.pause()  # SIGSTOP: the socket queues queries, none answered
        try:
            self.assert_deadline(self.opts("app.test", type="SRV"),
                                 "resolving app.test", timeout_ms=400)
        finally:
            self.dns.resume()
        self.assert_result(self.opts("app.test"), "pass")

    # --- defaults and options ---

    def test_default_server_is_the_system_resolver(self):
        # Whatever the sandbox's resolver says about a reserved name, the
        # run names resolv.conf's servers and keeps its deadline.
        r, _ = self.run_check({"name": "healthd-test.invalid"}, timeout_ms=300)
        self.assertEqual(r["details"]["server"],
                         ",".join(resolv_conf_servers()))
        self.assertLessEqual(r["duration_ms"], 300 + self.slack_ms)

    def test_search_resolves_a_name_written_absolute(self):
        # A trailing dot is never qualified, whatever resolv.conf's search
        # and ndots are.
        r = self.assert_result(self.opts("app.test.", search="true"), "pass",
                               "10.0.0.1")
        self.assertNotIn("canonical_name", r["details"])  # same name

    def test_server_forms(self):
        port = self.dns.port
        self.assert_result({"name": "app.test", "server": f"127.0.0.1:{port}"},
                           "pass")
        # IPv6 forms parse (nothing listens on ::1 there: refused, or no
        # IPv6 at all: a failure either way, told at once).
        r = self.assert_result({"name": "app.test", "server": f"[::1]:{port}"},
                               "fail")
        self.assertEqual(r["details"]["server"], f"[::1]:{port}")
        r = self.assert_result({"name": "app.test", "server": "::1"}, "fail")
        self.assertEqual(r["details"]["server"], "[::1]:53")

    def test_bad_options_are_refused_with_what_is_expected(self):
        self.assert_refused({}, 'option "name" is required')
        self.assert_refused({"name": "a..b"}, "name: expected a host name")
        self.assert_refused({"name": "x" * 64 + ".test"},
                            "name: expected a host name")
        self.assert_refused({"name": "app.test", "type": "MX"},
                            "type: expected A, AAAA, both (A,AAAA), CNAME, "
                            "SRV or TXT")
        self.assert_refused({"name": "app.test", "type": "A,SRV"},
                            "type: expected")
        self.assert_refused({"name": "app.test", "server": "dns.example"},
                            "server: expected an IP address")
        self.assert_refused({"name": "app.test", "server": "10.0.0.1:0"},
                            "server: expected an IP address")
        self.assert_refused({"name": "app.test", "expect": "db.example"},
                            "expect: expected IP addresses")
        self.assert_refused({"name": "app.test", "type": "A",
                             "expect": "::1"},
                            "expect: an IPv6 address can never be an answer "
                            "of type A")
        self.assert_refused({"name": "app.test", "expect": "10.0.0.1,,"},
                            "expect: an empty item")
        self.assert_refused({"name": "x.test", "type": "SRV",
                             "expect": "db.test"},
                            "expect: expected TARGET:PORT")
        self.assert_refused({"name": "app.test", "attempts": "0"},
                            "attempts: expected 1 to 5")
        self.assert_refused({"name": "app.test", "attempts": "two"},
                            "attempts: expected")
        self.assert_refused({"name": "app.test", "search": "maybe"},
                            "search: expected")
        self.assert_check_config_rejects({"name": "app.test", "type": "PTR"},
                                         "type: expected")

    # --- the whole daemon ---

    def test_through_the_daemon_in_a_plugin_host(self):
        checks = [
            harness.check("dns-ok", plugin="dns", interval="1s",
                          timeout="1s", options=self.opts("app.test",
                                                          expect="10.0.0.1")),
            # The same plugin loaded into the daemon itself, beside the host.
            harness.check("dns-inline", plugin="dns", interval="1s",
                          timeout="1s", isolation="inline",
                          options=self.opts("alias.test", type="CNAME")),
            harness.check("dns-hung", plugin="dns", critical=False,
                          interval="250ms", timeout="200ms",
                          options={"name": "app.test",
                                   "server": self.silent_addr}),
        ]
        with harness.Daemon(checks=checks) as d:
            def body(name):
                return d.get(harness.BASE + f"/checks/{name}").json()

            def passed(name):
                return d.wait_for(lambda: body(name)["status"] == "pass",
                                  what=f"{name} to pass") and body(name)

            ok = passed("dns-ok")
            self.assertEqual(ok["details"]["answers"], "10.0.0.1,::1")
            self.assertEqual(ok["details"]["server"], self.dns.address)
            self.assertEqual(passed("dns-inline")["details"]["answers"],
                             "app.test")

            hosts = descendants(d.proc.pid)
            self.assertEqual(len(hosts), 1, "one plugin host for dns")
            host = hosts[0]

            def runs():
                m = re.search(r'healthd_check_runs_total\{check="dns-hung"\} '
                              r'(\d+)', d.get("/metrics").raw.decode())
                return int(m.group(1)) if m else 0

            seen = {}  # dns-hung's results: last_run -> message

            def sample(seconds):
                """The most threads and descriptors the host had."""
                top = (0, 0)
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    u = usage(host)
                    top = (max(top[0], u[0]), max(top[1], u[1]))
                    b = body("dns-hung")
                    if b.get("last_run"):
                        seen[b["last_run"]] = b.get("message", "")
                    time.sleep(0.02)
                return top

            d.wait_for(lambda: runs() >= 3, what="3 runs of dns-hung")
            before = sample(1.0)
            first = runs()
            d.wait_for(lambda: runs() >= first + 12, timeout=20,
                       what="12 more runs of dns-hung")
            after = sample(1.0)
            # A leak would grow with every run; a run in flight may hold a
            # thread and a socket while it is sampled.
            self.assertLessEqual(after[0], before[0] + 2, (before, after))
            self.assertLessEqual(after[1], before[1] + 2, (before, after))

            # The plugin gave up at its deadline itself: the daemon kept
            # its message (it arrived within the grace), not its own
            # ("timed out after 200 ms").  Most runs, as a noisy machine
            # may delay one past the grace.
            hung = body("dns-hung")
            self.assertEqual(hung["status"], "fail")
            self.assertEqual(hung["details"]["server"], self.silent_addr)
            for m in seen.values():
                self.assertRegex(m, r"^timed out after \d+ ms", seen)
            # (The deadline counts from when the run was queued: the
            # plugin may see a millisecond or two less.)
            own = [m for m in seen.values()
                   if re.fullmatch(r"timed out after (19\d|2[012]\d) ms "
                                   r"resolving app\.test", m)]
            self.assertGreaterEqual(len(own) * 2, len(seen), seen)
            self.assertGreaterEqual(len(seen), 4, seen)
            metrics = d.get("/metrics").raw.decode()
            self.assertNotRegex(metrics, r'healthd_plugin_host_restarts_total'
                                         r'\{plugin="dns"[^}]*\} [1-9]')
            self.assertEqual(body("dns-ok")["status"], "pass")
            self.assertEqual(descendants(d.proc.pid), hosts, "host replaced")


def descendants(pid):
    """PIDs of every live process below pid, sorted."""
    parent = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parent[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found += kids
        todo += kids
    return sorted(found)


def usage(pid):
    """(threads, descriptors) of a process."""
    return (len(os.listdir(f"/proc/{pid}/task")),
            len(os.listdir(f"/proc/{pid}/fd")))


if __name__ == "__main__":
    unittest.main()
