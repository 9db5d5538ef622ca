"""The file plugin: a heartbeat file's existence, age and size."""

import os
import tempfile
import time
import unittest

from servers import PluginTestCase


class FilePlugin(PluginTestCase):
    plugin = "file"

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="healthd-file-")
        self.path = os.path.join(self.dir.name, "heartbeat")

    def tearDown(self):
        self.dir.cleanup()

    def touch(self, age_s=0, size=0):
        with open(self.path, "wb") as f:
            f.write(b"x" * size)
        t = time.time() - age_s
        os.utime(self.path, (t, t))

    def test_fresh_file_passes_with_age_and_size(self):
        self.touch(age_s=2, size=10)
        r = self.assert_result({"path": self.path, "max_age": "30s"}, "pass",
                               "last modified", "10 bytes")
        self.assertTrue(r["details"]["exists"])
        self.assertEqual(r["details"]["size_bytes"], 10)
        self.assertGreaterEqual(r["details"]["age_s"], 1.9)
        self.assertLess(r["details"]["age_s"], 30)

    def test_stale_heartbeat_fails_and_warns(self):
        self.touch(age_s=60)
        self.assert_result({"path": self.path, "max_age": "30s"}, "fail",
                           "over max_age 30.0 s")
        self.assert_result({"path": self.path, "max_age": "2m",
                            "warn_age": "45s"}, "warn", "over warn_age 45.0 s")
        # The core's duration syntax: fractions and minutes.
        self.assert_result({"path": self.path, "max_age": "1.5m"}, "pass")

    def test_missing_file_fails(self):
        self.assert_result({"path": self.path}, "fail", "does not exist")
        self.assert_result({"path": self.path + "/below"}, "fail",
                           "does not exist")

    def test_flag_file_must_be_absent(self):
        self.assert_result({"path": self.path, "exists": "no"}, "pass",
                           "absent")
        self.touch()
        self.assert_result({"path": self.path, "exists": "off"}, "fail",
                           "exists (expected absent)")
        # Below a regular file nothing can exist: absent too (ENOTDIR).
        self.assert_result({"path": self.path + "/below", "exists": "no"},
                           "pass", "absent")

    def test_size_bounds(self):
        self.touch(size=0)
        self.assert_result({"path": self.path, "min_size": "1"}, "fail",
                           "0 bytes, under min_size 1")
        self.touch(size=2048)
        self.assert_result({"path": self.path, "max_size": "1KiB"}, "fail",
                           "2048 bytes, over max_size 1024")
        self.assert_result({"path": self.path, "min_size": "1KiB",
                            "max_size": "4KiB"}, "pass")

    def test_stat_error_is_not_missing(self):
        # A symlink loop: stat() fails with ELOOP, not ENOENT.
        other = os.path.join(self.dir.name, "other")
        os.symlink(other, self.path)
        os.symlink(self.path, other)
        self.assert_result({"path": self.path}, "fail", "cannot stat the file",
                           "symbolic links")

    def test_messages_never_show_the_path(self):
        self.touch(age_s=60)
        for opts in ({"path": self.path, "max_age": "1s"},
                     {"path": self.path, "exists": "false"},
                     {"path": self.path + "x"}):
            result, output = self.run_check(opts)
            self.assertNotIn(self.dir.name, result["message"], result)

    def test_bad_options_are_refused_with_what_is_expected(self):
        # Required options are the core's business (ABI 1.2): set, and
        # not empty.
        self.assert_refused({}, 'option "path" is required (the file to check)')
        self.assert_refused({"path": ""}, 'option "path" must not be empty')
        self.assert_refused({"path": self.path, "max_age": "30x"},
                            "max_age: expected a duration")
        self.assert_refused({"path": self.path, "exists": "maybe"},
                            "exists: expected true, false, yes, no, on or off")
        self.assert_refused({"path": self.path, "min_size": "big"},
                            "min_size: expected a size")
        self.assert_refused({"path": self.path, "max_age": "10s",
                             "warn_age": "20s"},
                            "warn_age: must be shorter than max_age")
        self.assert_refused({"path": self.path, "min_size": "2KiB",
                             "max_size": "1KiB"}, "min_size: must not be over")
        self.assert_refused({"path": self.path, "exists": "false",
                             "max_age": "1s"}, "exists: false checks absence")


if __name__ == "__main__":
    unittest.main()
