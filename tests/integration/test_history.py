"""Per-check history: /checks/NAME/history, the summaries in the bodies,
and what a reload keeps (docs/monitoring.md)."""
import datetime
import os
import signal
import tempfile
import unittest

from harness import BASE, Daemon, check, config_text


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def when(ts):
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))


class History(unittest.TestCase):
    def history(self, d, name, headers=None):
        r = d.get(BASE + f"/checks/{name}/history", headers=headers)
        self.assertEqual(r.status, 200, r.raw)
        self.assertEqual(r.headers["content-type"], "application/json")
        return r.json()

    def test_ring_bounds_and_transitions(self):
        with tempfile.TemporaryDirectory() as tmp:
            ctl = os.path.join(tmp, "ctl")
            write(ctl, "pass\n")
            with Daemon(checks=[check("db", interval="50ms", timeout="50ms",
                                      failure_threshold=2, history=6,
                                      options={"control": ctl})]) as d:
                d.wait_for(lambda: len(self.history(d, "db")["results"]) == 6,
                           what="a full ring")
                write(ctl, "fail\n")
                d.wait_for(lambda: d.check_status("db") == "fail",
                           what="status fail")
                write(ctl, "warn\n")
                d.wait_for(lambda: d.check_status("db") == "warn",
                           what="status warn")
                # Many more runs: the rings stay at six.
                runs = d.get(BASE + "/checks/db").json()["details"]["runs"]
                d.wait_for(lambda: d.get(BASE + "/checks/db").json()
                           ["details"]["runs"] >= runs + 10, what="ten runs")
                h = self.history(d, "db")
                self.assertEqual(h["name"], "db")
                self.assertEqual(h["size"], 6)
                self.assertEqual(len(h["results"]), 6)
                times = [when(r["time"]) for r in h["results"]]
                self.assertEqual(times, sorted(times))  # oldest first
                newest = h["results"][-1]
                self.assertEqual(newest["status"], "warn")
                self.assertEqual(newest["message"], "testplug: warn")
                self.assertIsInstance(newest["duration_ms"], float)
                # pending -> pass, pass -> fail (after two failures),
                # fail -> warn: each with the message of the run that
                # made it, in order.
                changes = [(c["from"], c["to"], c["message"])
                           for c in h["changes"]]
                self.assertEqual(changes, [
                    ("pending", "pass", "testplug: pass"),
                    ("pass", "fail", "testplug: fail"),
                    ("fail", "warn", "testplug: warn")])
                self.assertEqual(h["transitions"], 3)
                self.assertEqual(h["last_change"], h["changes"][-1]["time"])
                self.assertEqual(h["pass_ratio"], 1.0)  # six warns
                # The change to fail came with the second failed run,
                # which is in the results no more; the change's time is
                # after the first failure's.
                fail_at = when(h["changes"][1]["time"])
                warn_at = when(h["changes"][2]["time"])
                self.assertLess(fail_at, warn_at)
                self.assertLessEqual(warn_at, times[-1])
                # The summaries in the bodies agree.
                c = d.get(BASE + "/").json()["checks"]["db"]
                self.assertEqual(c["transitions"], 3)
                self.assertEqual(c["last_change"], h["last_change"])
                self.assertEqual(c["pass_ratio"], 1.0)
                c = d.get(BASE + "/checks/db").json()
                self.assertEqual(c["transitions"], 3)
                metrics = d.get("/metrics").raw.decode()
                self.assertIn('healthd_check_transitions_total{check="db"} 3\n',
                              metrics)

    def test_unknown_check_and_paths(self):
        with Daemon(checks=[check("db")]) as d:
            self.assertEqual(d.get(BASE + "/checks/nope/history").status, 404)
            self.assertEqual(d.get(BASE + "/checks/db/other").status, 404)
            self.assertEqual(d.get(BASE + "/checks/db/history/x").status, 404)
            self.assertEqual(d.get(BASE + "/checks//history").status, 404)
            r = d.request("POST", BASE + "/checks/db/history")
            self.assertEqual(r.status, 405)

    def test_details_mode_hides_messages(self):
        with tempfile.TemporaryDirectory() as tmp:
            token = os.path.join(tmp, "token")
            write(token, "s3cret-token\n")
            for extra, headers, shown in [
                    ("details: hidden\n", None, False),
                    (f"details: token\ndetails_token_file: {token}\n", None,
                     False),
                    (f"details: token\ndetails_token_file: {token}\n",
                     {"Authorization": "Bearer s3cret-token"}, True)]:
                with Daemon(checks=[check("db", options={
                        "mode": "fail", "message": "db at 10.0.0.7 down"})],
                        extra=extra) as d:
                    h = self.history(d, "db", headers)
                    self.assertEqual(h["results"][0]["status"], "fail")
                    self.assertEqual(len(h["changes"]), 1)
                    self.assertEqual("message" in h["results"][0], shown)
                    self.assertEqual("message" in h["changes"][0], shown)
                    self.assertEqual("10.0.0.7" in d.get(
                        BASE + "/checks/db/history", headers=headers
                    ).raw.decode(), shown)

    def test_reload_keeps_changed_and_drops_removed(self):
        with Daemon(checks=[check("kept", interval="100ms", timeout="100ms"),
                            check("changed", interval="100ms",
                                  timeout="100ms",
                                  options={"message": "before"}),
                            check("removed", interval="100ms",
                                  timeout="100ms")]) as d:
            d.wait_for(lambda: all(len(self.history(d, n)["results"]) >= 3
                                   for n in ("kept", "changed", "removed")),
                       what="three runs each")
            before = {n: self.history(d, n) for n in ("kept", "changed")}
            write(d.path, config_text([
                check("kept", interval="100ms", timeout="100ms"),
                check("changed", interval="100ms", timeout="100ms",
                      history=4, options={"message": "after"})], d.port))
            d.signal(signal.SIGHUP)
            d.wait_for(lambda: d.get(BASE + "/").json()["config"]
                       ["generation"] == 2, what="generation 2")
            self.assertEqual(d.get(BASE + "/checks/removed/history").status,
                             404)
            d.wait_for(lambda: self.history(d, "changed")["results"][-1]
                       ["message"] == "after", what="a run of the new one")
            # The same instance: its results from before are still there.
            h = self.history(d, "kept")
            self.assertEqual(h["results"][:len(before["kept"]["results"])],
                             before["kept"]["results"])
            self.assertEqual(h["transitions"], 1)
            # A new instance with the old one's history, in a ring of the
            # new size: the change its first run made, then new runs.
            h = self.history(d, "changed")
            self.assertEqual(h["size"], 4)
            self.assertLessEqual(len(h["results"]), 4)
            self.assertEqual(h["changes"], before["changed"]["changes"])
            self.assertEqual(h["changes"][0]["message"], "before")
            self.assertEqual(h["transitions"], 1)


if __name__ == "__main__":
    unittest.main()
