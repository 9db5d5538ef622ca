"""`healthd sleep SECONDS`: the preStop pause of k8s/ in an image with no
shell.  It waits the time given and exits 0; SIGTERM ends it early, 0 too;
a bad argument is an error on stderr and exit 2."""
import signal
import subprocess
import time
import unittest

from harness import BIN


class Sleep(unittest.TestCase):
    def test_waits_then_exits_0(self):
        t0 = time.monotonic()
        p = subprocess.run([BIN, "sleep", "1"], capture_output=True, text=True, timeout=10)
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual((p.stdout, p.stderr), ("", ""))
        self.assertGreaterEqual(took, 1.0)
        self.assertLess(took, 2.0)

    def test_fractions_and_zero(self):
        for arg, low in (("0", 0.0), ("0.3", 0.3), ("1.", 1.0)):
            with self.subTest(arg=arg):
                t0 = time.monotonic()
                p = subprocess.run([BIN, "sleep", arg], capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertGreaterEqual(time.monotonic() - t0, low)

    def test_sigterm_ends_it_with_0(self):
        p = subprocess.Popen([BIN, "sleep", "30"], stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=5)
        self.assertEqual(p.returncode, 0, err)
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_other_signals_do_not_end_it(self):
        p = subprocess.Popen([BIN, "sleep", "1.2"])
        time.sleep(0.3)
        p.send_signal(signal.SIGWINCH)  # ignored by default; interrupts nothing
        t0 = time.monotonic()
        self.assertEqual(p.wait(timeout=5), 0)
        self.assertGreater(time.monotonic() - t0, 0.5)

    def test_bad_argument_exit_2(self):
        for args, msg in (([], "usage: healthd sleep SECONDS"),
                          (["1", "2"], "usage: healthd sleep SECONDS"),
                          (["abc"], "'abc' is not a number of seconds"),
                          (["-1"], "'-1' is not a number of seconds"),
                          ([""], "'' is not a number of seconds"),
                          (["1e3"], "'1e3' is not a number of seconds"),
                          (["15s"], "'15s' is not a number of seconds"),
                          (["86401"], "'86401' is not a number of seconds")):
            with self.subTest(args=args):
                t0 = time.monotonic()
                p = subprocess.run([BIN, "sleep", *args], capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 2)
                self.assertIn(msg, p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertLess(time.monotonic() - t0, 1.0)


if __name__ == "__main__":
    unittest.main()
