"""The exec plugin: Monitoring Plugins (Debian's monitoring-plugins-basic)
and scripts, through healthd-plugin-run and once through the daemon."""

import json
import os
import random
import shlex
import socket
import subprocess
import tempfile
import time
import unittest

import harness
import servers
from servers import PluginTestCase, free_port

NAGIOS = "/usr/lib/nagios/plugins"
SECRET = "exec-Secr3t-env-2718"


def check_plugin(name):
    """A Monitoring Plugin's path.  Missing is a failure, not a skip: a
    skip would hide a CI image without them."""
    path = os.path.join(NAGIOS, name)
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} missing: apt-get install "
                             "monitoring-plugins-basic")
    return path


def token():
    """A sleep duration no other process uses: finds what a run left."""
    return f"1000.{random.randrange(10**8, 10**9)}"


def processes_with(text):
    """(pid, state) of the processes whose command line holds `text`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd:
            found.append((int(pid), state))
    return found


def children(ppid):
    """(pid, state) of the processes whose parent is ppid."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ppid:
            out.append((int(pid), fields[0]))
    return out


def run_plugin_with(options, timeout_ms=2000, env=None, pass_fds=()):
    """servers.run_plugin with more in healthd-plugin-run's environment
    and descriptors it inherits (a child must get neither)."""
    args = [servers.PLUGIN_RUN, "exec", "--timeout-ms", str(timeout_ms)]
    if servers.PLUGIN_DIR:
        args += ["--dir", servers.PLUGIN_DIR]
    args += [f"{k}={v}" for k, v in options.items()]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30,
                       env=dict(servers.CLEAN_ENV, **(env or {})),
                       pass_fds=pass_fds)
    if p.returncode != 0:
        raise AssertionError(f"healthd-plugin-run exited {p.returncode}: "
                             f"{p.stdout}{p.stderr}")
    return json.loads(p.stdout)


def wait_gone(text, timeout=3.0):
    """True once no live process holds `text` (SIGKILL is not instant)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p, s in processes_with(text) if s != "Z"]:
            return True
        time.sleep(0.02)
    return False


class ExecPlugin(PluginTestCase):
    plugin = "exec"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="healthd-exec-")
        cls.dir = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def script(self, body, name=None, mode=0o755):
        """A /bin/sh script in the temp dir; returns its path."""
        path = os.path.join(self.dir, name or f"s{random.randrange(10**9)}.sh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, mode)
        return path

    def sh(self, body):
        """The command running `body` through sh -c."""
        return "sh -c " + shlex.quote(body)

    # --- Monitoring Plugins --------------------------------------------------

    def test_check_dummy_every_exit_code(self):
        dummy = check_plugin("check_dummy")
        for code, status, text in ((0, "pass", "OK: all good"),
                                   (1, "warn", "WARNING: all good"),
                                   (2, "fail", "CRITICAL: all good"),
                                   (3, "fail", "UNKNOWN: all good")):
            r = self.assert_result({"command": f"{dummy} {code} 'all good'"},
                                   status)
            self.assertEqual(r["message"], text, r)
            self.assertEqual(r["details"]["exit_status"], code, r)
        # By name: searched in the command's PATH, which has no nagios
        # directory unless env.PATH says so.
        self.assert_refused({"command": "check_dummy 0"}, "not found in",
                            "PATH")
        self.assert_result({"command": "check_dummy 0 found",
                            "env.PATH": NAGIOS}, "pass", "OK: found")

    def test_check_tcp_live_and_closed_port(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            port = s.getsockname()[1]
            r = self.assert_result(
                {"command": f"{check_plugin('check_tcp')} -H 127.0.0.1 "
                            f"-p {port} -w 2 -c 3"},
                "pass", "TCP OK", f"port {port}")
        d = r["details"]
        self.assertGreaterEqual(d["perfdata.time"], 0)
        self.assertEqual(d["perfdata.time_uom"], "s")
        self.assertEqual(d["perfdata.time_warn"], 2)
        self.assertEqual(d["perfdata.time_crit"], 3)
        self.assertEqual(d["perfdata.time_min"], 0)
        closed = free_port()
        r = self.assert_result(
            {"command": f"{check_plugin('check_tcp')} -H 127.0.0.1 -p {closed}"},
            "fail", "Connection refused")
        self.assertEqual(r["details"]["exit_status"], 2)

    def test_check_disk(self):
        disk = check_plugin("check_disk")
        r = self.assert_result({"command": f"{disk} -w 0% -c 0% -p /"},
                               "pass", "DISK OK")
        d = r["details"]
        self.assertIn("perfdata./", d, r)
        self.assertGreater(d["perfdata./_max"], 0)
        self.assertIn(d["perfdata./_uom"], ("B", "KB", "MB", "MiB", "GB"))
        # Under 100 % free: always critical.
        self.assert_result({"command": f"{disk} -w 100% -c 100% -p /"},
                           "fail", "DISK CRITICAL")

    def test_check_procs(self):
        procs = check_plugin("check_procs")
        r = self.assert_result({"command": procs}, "pass", "PROCS OK")
        self.assertGreater(r["details"]["perfdata.procs"], 0)
        r = self.assert_result(
            {"command": f"{procs} -C healthd-no-such-proc -c 1:"},
            "fail", "PROCS CRITICAL", "0 processes")
        # "procs=0;;1:;0;": no warn, a range as crit, min, no max.
        d = r["details"]
        self.assertEqual(d["perfdata.procs"], 0)
        self.assertEqual(d["perfdata.procs_crit"], "1:")
        self.assertEqual(d["perfdata.procs_min"], 0)
        self.assertNotIn("perfdata.procs_warn", d)
        self.assertNotIn("perfdata.procs_max", d)

    # --- exit statuses and signals ------------------------------------------

    def test_every_exit_code_of_a_script(self):
        for code, status, message in (
                (0, "pass", "text 0"), (1, "warn", "text 1"),
                (2, "fail", "text 2"), (3, "fail", "UNKNOWN: text 3"),
                (4, "fail", "exit status 4: text 4"),
                (7, "fail", "exit status 7: text 7"),
                (255, "fail", "exit status 255: text 255")):
            r = self.assert_result(
                {"command": self.sh(f"echo 'text {code}'; exit {code}")}, status)
            self.assertEqual(r["message"], message, r)
            self.assertEqual(r["details"]["exit_status"], code, r)
        # A plugin that says UNKNOWN itself is not told twice.
        r = self.assert_result({"command": self.sh("echo 'DISK UNKNOWN - bad "
                                                   "arguments'; exit 3")},
                               "fail")
        self.assertEqual(r["message"], "DISK UNKNOWN - bad arguments")

    def test_no_output(self):
        for code, status in ((0, "pass"), (1, "warn"), (2, "fail")):
            r = self.assert_result({"command": self.sh(f"exit {code}")},
                                   status)
            self.assertEqual(r["message"], f"exit status {code}, no output")
        self.assert_result({"command": self.sh("exit 3")}, "fail",
                           "UNKNOWN: exit status 3, no output")
        self.assert_result({"command": self.sh("exit 9")}, "fail",
                           "exit status 9, no output")
        # Only perfdata: no text either.
        r = self.assert_result({"command": self.sh("echo '| t=1s'")}, "pass",
                               "exit status 0, no output")
        self.assertEqual(r["details"]["perfdata.t"], 1)

    def test_stderr_is_the_message_when_stdout_is_empty(self):
        r = self.assert_result(
            {"command": self.sh("echo 'cannot reach db' >&2; exit 2")},
            "fail")
        self.assertEqual(r["message"],
                         "exit status 2, no output; stderr: cannot reach db")
        # A command sh cannot find: 127 and sh's own words.
        self.assert_result({"command": self.sh("healthd-no-such-command")},
                           "fail", "exit status 127, no output; stderr:",
                           "not found")
        # stdout wins when there is some.
        r = self.assert_result(
            {"command": self.sh("echo noise >&2; echo 'OK - fine'")}, "pass")
        self.assertEqual(r["message"], "OK - fine")

    def test_signal_death(self):
        r = self.assert_result({"command": self.sh("kill -SEGV $$")}, "fail")
        # "killed by SIGSEGV (core dumped), no output" where cores are on.
        self.assertTrue(r["message"].startswith("killed by SIGSEGV"), r)
        self.assertTrue(r["message"].endswith(", no output"), r)
        self.assertEqual(r["details"]["signal"], "SIGSEGV")
        self.assertNotIn("exit_status", r["details"])
        r = self.assert_result(
            {"command": self.sh("echo 'half done'; kill -TERM $$")}, "fail")
        self.assertEqual(r["message"], "killed by SIGTERM: half done")

    def test_signals_are_reset_in_the_child(self):
        # healthd ignores SIGPIPE and its threads block SIGTERM, SIGINT and
        # SIGHUP: the command starts with none blocked and none ignored
        # (of 1-31: glibc's posix_spawn leaves its two internal real-time
        # signals ignored, and a new glibc process sets them itself).
        r = self.assert_result({"command": self.sh(
            "grep -E '^Sig(Blk|Ign)' /proc/self/status | tr '\\n' ' '")},
            "pass")
        masks = dict(w.split() for w in
                     r["message"].replace("Sig", "\nSig").split("\n")[1:])
        self.assertEqual(int(masks["SigBlk:"], 16), 0, r)
        self.assertEqual(int(masks["SigIgn:"], 16) & 0x7FFFFFFF, 0, r)
        # Writing to a closed pipe kills it (default SIGPIPE), no hang.
        self.assert_result({"command": self.sh("yes | head -c 10 >/dev/null; "
                                               "echo done")}, "pass", "done")

    def test_no_descriptor_leaks_into_the_child(self):
        # Only 0, 1, 2 in the shell (ls, a simple command, lists them),
        # though healthd-plugin-run holds an inheritable descriptor.
        rfd, wfd = os.pipe()
        os.set_inheritable(wfd, True)
        try:
            r = run_plugin_with({"command": self.sh("ls -m /proc/$$/fd")},
                                pass_fds=(wfd,))
        finally:
            os.close(rfd)
            os.close(wfd)
        self.assertEqual(r["message"], "0, 1, 2", r)
        r = self.assert_result({"command": self.sh(
            "readlink /proc/$$/fd/0; readlink /proc/$$/fd/1")}, "pass")
        self.assertEqual(r["message"], "/dev/null")

    # --- output ---------------------------------------------------------------

    def test_message_is_the_first_line_before_the_bar_trimmed(self):
        r = self.assert_result({"command": self.sh(
            "printf '   OK - trimmed   |x=1\\nsecond line\\n'")}, "pass")
        self.assertEqual(r["message"], "OK - trimmed")
        # No trailing newline, CRLF.
        r = self.assert_result({"command": self.sh(
            "printf 'OK no newline|t=2s'")}, "pass")
        self.assertEqual(r["message"], "OK no newline")
        self.assertEqual(r["details"]["perfdata.t"], 2)
        r = self.assert_result({"command": self.sh(
            "printf 'OK crlf\\r\\nmore\\r\\n'")}, "pass")
        self.assertEqual(r["message"], "OK crlf")

    def test_long_message_is_cut_to_whole_characters(self):
        r = self.assert_result({"command": self.sh(
            "printf 'OK '; i=0; while [ $i -lt 300 ]; do printf '\\303\\251'; "
            "i=$((i+1)); done; echo")}, "pass")
        msg = r["message"]
        self.assertTrue(msg.startswith("OK éé"), msg)
        self.assertLessEqual(len(msg.encode()), 255)
        self.assertNotIn("\ufffd", msg)

    def test_perfdata_edge_cases(self):
        path = self.script(r"""
printf '%s\n' "OK - perf | time=0.0012s;0.5;1;0;10 'disk free'=42%;80:;90:;; 'it''s'=3c bad=U worse=U;1;2 x=abc noequals =5 big=1.5e3ms;@1:2;~:5 neg=-3.5;;;-10;0"
printf '%s\n' "long text 1" "long text 2 | load1=0.5;1;2;0 load5=0.25KB"
printf '%s\n' "load15=1.0 'in''complete=3"
""")
        r = self.assert_result({"command": path}, "pass")
        self.assertEqual(r["message"], "OK - perf")
        d = r["details"]
        self.assertEqual(d["perfdata.time"], 0.0012)
        self.assertEqual(d["perfdata.time_uom"], "s")
        self.assertEqual(d["perfdata.time_warn"], 0.5)
        self.assertEqual(d["perfdata.time_crit"], 1)
        self.assertEqual(d["perfdata.time_min"], 0)
        self.assertEqual(d["perfdata.time_max"], 10)
        self.assertEqual(d["perfdata.disk free"], 42)
        self.assertEqual(d["perfdata.disk free_uom"], "%")
        self.assertEqual(d["perfdata.disk free_warn"], "80:")
        self.assertEqual(d["perfdata.disk free_crit"], "90:")
        self.assertNotIn("perfdata.disk free_min", d)
        self.assertEqual(d["perfdata.it's"], 3)
        self.assertEqual(d["perfdata.it's_uom"], "c")
        self.assertEqual(d["perfdata.big"], 1500)
        self.assertEqual(d["perfdata.big_uom"], "ms")
        self.assertEqual(d["perfdata.big_warn"], "@1:2")
        self.assertEqual(d["perfdata.big_crit"], "~:5")
        self.assertEqual(d["perfdata.neg"], -3.5)
        self.assertEqual(d["perfdata.neg_min"], -10)
        self.assertEqual(d["perfdata.neg_max"], 0)
        # The long output's perfdata: after a later line's '|', and every
        # line after it.
        self.assertEqual(d["perfdata.load1"], 0.5)
        self.assertEqual(d["perfdata.load1_min"], 0)
        self.assertEqual(d["perfdata.load5"], 0.25)
        self.assertEqual(d["perfdata.load5_uom"], "KB")
        self.assertEqual(d["perfdata.load15"], 1)
        # U (unknown), no number, no '=', no label, an open quote: skipped.
        for k in ("perfdata.bad", "perfdata.worse", "perfdata.x",
                  "perfdata.noequals", "perfdata."):
            self.assertNotIn(k, d)
        self.assertEqual(d["perfdata_skipped"], 6, d)
        self.assertFalse([k for k in d if "long text" in k], d)

    def test_perfdata_is_capped(self):
        metrics = " ".join(f"m{i}={i}" for i in range(100))
        r = self.assert_result({"command": self.sh(f"echo 'OK | {metrics}'")},
                               "pass")
        d = r["details"]
        self.assertEqual(len([k for k in d if k.startswith("perfdata.")]), 32)
        self.assertEqual(d["perfdata_skipped"], 68)

    def test_10_mib_of_output_is_capped_without_a_hang(self):
        # One 10 MiB line, then the status: everything is read (the exit
        # status arrives), only 64 KiB kept.
        r = self.assert_result({"command": self.sh(
            "head -c 10485760 /dev/zero | tr '\\0' x; echo; exit 1")},
            "warn", timeout_ms=10000)
        d = r["details"]
        self.assertTrue(d["output_truncated"])
        self.assertEqual(d["output_bytes"], 10 * 1024 * 1024 + 1)
        self.assertEqual(r["message"], "x" * len(r["message"]))
        self.assertLessEqual(len(r["message"]), 255)
        self.assertLess(r["duration_ms"], 9000)
        # Many lines with perfdata after the cap: never parsed half.
        r = self.assert_result({"command": self.sh(
            "echo 'OK | a=1'; yes 'filler | b=2' | head -c 10485760; "
            "echo 'last | c=3'")}, "pass", timeout_ms=10000)
        self.assertEqual(r["message"], "OK")
        self.assertEqual(r["details"]["perfdata.a"], 1)
        self.assertNotIn("perfdata.c", r["details"])
        # Output that never ends: the deadline still holds.
        self.assert_deadline({"command": "yes"}, "killed process group",
                             timeout_ms=500)

    def test_binary_output_gives_a_printable_utf8_message(self):
        # Bytes that are not UTF-8, control characters, an escape
        # sequence, a NUL, a valid euro sign, then random bytes.
        r = self.assert_result({"command": self.sh(
            "printf 'A\\200\\377\\303\\050B\\001\\033[31mC\\000D \\342\\202\\254 E'; "
            "head -c 2000 /dev/urandom")}, "pass")
        msg = r["message"]  # run_plugin decoded it as strict UTF-8
        self.assertTrue(msg.startswith("A???(B  [31mC D € E"), msg)
        self.assertFalse([c for c in msg if ord(c) < 0x20 or ord(c) == 0x7F],
                         msg)
        self.assertLessEqual(len(msg.encode()), 255)
        # A perfdata label that is not UTF-8 either.
        r = self.assert_result({"command": self.sh(
            "printf 'OK | \\377lab\\001el=1\\n'")}, "pass")
        self.assertEqual(r["details"]["perfdata.?lab el"], 1, r)

    # --- deadline, process group, zombies ---------------------------------------

    def test_hung_script_and_its_children_are_killed_at_the_deadline(self):
        t = token()
        path = self.script(f"sleep {t} &\nsleep {t}\necho never\n")
        self.assert_deadline({"command": path}, "killed process group",
                             timeout_ms=300)
        self.assertTrue(wait_gone(t), processes_with(t))

    def test_what_a_command_leaves_running_is_killed_when_it_exits(self):
        t = token()
        r = self.assert_result({"command": self.sh(
            f"sleep {t} & echo 'OK - left one'")}, "pass", "OK - left one")
        self.assertLess(r["duration_ms"], 1000)
        self.assertTrue(wait_gone(t), processes_with(t))

    def test_a_detached_process_holding_stdout_does_not_hold_the_result(self):
        # setsid: out of the group, so not killed; it keeps the pipe open.
        t = token()
        try:
            r = self.assert_result({"command": self.sh(
                f"setsid sleep {t} & echo 'OK - detached'")}, "pass",
                "OK - detached", timeout_ms=3000)
            self.assertLess(r["duration_ms"], 1500)
        finally:
            for pid, _ in processes_with(t):
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass

    # --- create(): refusals ------------------------------------------------------

    def test_missing_or_unusable_command_is_refused(self):
        missing = os.path.join(self.dir, "no-such-check")
        self.assert_refused({"command": missing}, "command: program not found",
                            secrets=(missing,))
        self.assert_refused({"command": "healthd-no-such-check -x"},
                            "command: program not found in the command's PATH")
        plain = self.script("echo hi\n", mode=0o644)
        self.assert_refused({"command": plain},
                            "command: the program is not executable",
                            secrets=(plain,))
        self.assert_refused({"command": self.dir},
                            "command: the program is a directory")
        self.assert_refused({}, '"command" is required')
        self.assert_refused({"command": "   "}, "command: required")
        self.assert_refused({"command": "sh -c 'echo"}, "' is not closed")
        self.assert_refused({"command": 'sh -c "echo'}, '" is not closed')
        self.assert_refused({"command": "sh -c echo\\"}, "lone backslash")
        # A YAML list arrives comma-joined: the error says so.
        self.assert_refused({"command": "check_tcp,-H,db"},
                            "comma-joined string")
        self.assert_refused({"command": "true", "cwd": "relative/dir"},
                            "cwd: expected an absolute path")
        self.assert_refused({"command": "true", "cwd": missing},
                            "cwd: not a directory", secrets=(missing,))

    def test_check_config_shows_create_errors(self):
        missing = os.path.join(self.dir, "no-such-check")
        self.assert_check_config_rejects({"command": missing},
                                         "program not found",
                                         secrets=(missing,))
        # A variable name cannot hold '=' (only YAML can write one).
        self.assert_check_config_rejects({"command": "true", "env.A=B": "x"},
                                         "env.A=B: a variable name must not")
        p = self.daemon_run({"command": "true"}, "--check-config")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_words_are_split_like_sh_without_a_shell(self):
        path = self.script('for a in "$@"; do printf "[%s]" "$a"; done; echo\n')
        cmd = (f"{path} 'a b' \"c \\\"d\\\" \\$e\" f\\ g '' 100,20% "
               "'$HOME' *")
        r = self.assert_result({"command": cmd}, "pass")
        self.assertEqual(r["message"],
                         '[a b][c "d" $e][f g][][100,20%][$HOME][*]')

    # --- environment and working directory ------------------------------------------

    def test_environment_is_minimal_plus_env(self):
        probe = self.sh('echo "s=${HEALTHD_EXEC_SECRET:-unset} '
                        'path=$PATH lang=$LANG foo=$FOO n=$(env | '
                        'grep -cv -e ^PWD= -e ^SHLVL= -e ^_=)"')
        env = {"HEALTHD_EXEC_SECRET": SECRET}
        r = run_plugin_with({"command": probe}, env=env)
        self.assertEqual(
            r["message"],
            "s=unset path=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
            "/usr/bin:/sbin:/bin lang=C.UTF-8 foo= n=2")
        r = run_plugin_with({"command": probe, "env.FOO": "bar baz",
                             "env.LANG": "C"}, env=env)
        self.assertEqual(
            r["message"],
            "s=unset path=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
            "/usr/bin:/sbin:/bin lang=C foo=bar baz n=3")
        # Only when listed does the command see it.
        r = run_plugin_with({"command": probe,
                             "env.HEALTHD_EXEC_SECRET": SECRET}, env=env)
        self.assertIn(f"s={SECRET}", r["message"])

    def test_working_directory(self):
        r = self.assert_result({"command": "pwd"}, "pass")
        self.assertEqual(r["message"], "/")
        r = self.assert_result({"command": "pwd", "cwd": self.dir}, "pass")
        self.assertEqual(r["message"], os.path.realpath(self.dir))
        # A relative program is taken from cwd.
        self.script("echo 'OK - relative'\n", name="rel.sh")
        self.assert_result({"command": "./rel.sh", "cwd": self.dir}, "pass",
                           "OK - relative")

    def test_option_values_never_show_in_create_errors(self):
        self.assert_refused({"command": f"/nonexistent/{SECRET} x"},
                            "program not found", secrets=(SECRET,))
        self.assert_refused({"command": f"true '{SECRET}"}, "is not closed",
                            secrets=(SECRET,))


class ExecThroughTheDaemon(unittest.TestCase):
    """The plugin host path (isolation: process, the default) and inline."""

    def test_daemon_runs_exec_checks(self):
        t = token()

        def entry(name, command, extra=""):
            return "\n".join([
                f"  - name: {name}", "    plugin: exec",
                "    interval: 1s", "    timeout: 1s"] +
                ([extra] if extra else []) + [
                "    options:", f"      command: {json.dumps(command)}",
                "      env:", "        FOO: from-env"])

        # $$ is a literal $ for healthd's own ${...} expansion.
        probe = ("sh -c 'echo \"OK s=$${HEALTHD_EXEC_SECRET:-unset} "
                 "foo=$$FOO | n=7s;1;2\"'")
        hung_cmd = f'sh -c "sleep {t} & sleep {t}"'
        hung = "\n".join([
            "  - name: hung", "    plugin: exec", "    critical: false",
            "    interval: 60s", "    timeout: 500ms",
            "    options:",
            f"      command: {json.dumps(hung_cmd)}"])
        # The plugin host's socket is inheritable there (dup2'd): not in
        # the command.
        fds = "sh -c 'ls -m /proc/$$$$/fd'"
        checks = [entry("probe", probe), entry("fds", fds),
                  entry("inline", "sh -c 'echo \"WARNING: inline warn\"; "
                        "exit 1'", "    isolation: inline"),
                  hung]
        with harness.Daemon(checks=checks, env={"HEALTHD_EXEC_SECRET": SECRET},
                            wait_started=False) as d:
            def body():
                return d.get(harness.BASE + "/").json()

            def first(name):
                """The check's state once it has a result."""
                return d.wait_for(
                    lambda: (lambda c: c if c["status"] != "pending"
                             else None)(body()["checks"][name]),
                    what=f"{name}'s first result")

            c = first("probe")
            self.assertEqual(c["status"], "pass", c)
            self.assertEqual(c["message"], "OK s=unset foo=from-env", c)
            self.assertEqual(c["details"]["perfdata.n"], 7)
            self.assertEqual(c["details"]["perfdata.n_uom"], "s")
            self.assertEqual(c["isolation"], "process")

            c = first("fds")
            self.assertEqual(c["message"], "0, 1, 2", c)

            c = first("inline")
            self.assertEqual(c["status"], "warn", c)
            self.assertEqual(c["message"], "WARNING: inline warn", c)
            self.assertEqual(c["isolation"], "inline")

            # The plugin's own words ("...; killed process group") when its
            # result beats the core's 20 ms grace, which a loaded machine
            # may not give: healthd-plugin-run asserts the deadline.
            c = first("hung")
            self.assertEqual(c["status"], "fail", c)
            self.assertIn("timed out after", c["message"], c)
            # Its next run is 30 s away at least: nothing of it may remain,
            # no zombie under the plugin host or the daemon (inline).
            self.assertTrue(wait_gone(t), processes_with(t))
            hosts = [p for p, s in processes_with("healthd: plugin exec")
                     if p in dict(children(d.proc.pid))]
            self.assertEqual(len(hosts), 1, processes_with("healthd: plugin"))
            # Let a few 1 s runs of the other checks come and go.
            time.sleep(2.5)
            for parent in (hosts[0], d.proc.pid):
                zombies = [p for p, s in children(parent) if s == "Z"]
                self.assertEqual(zombies, [], (parent, children(parent)))
            self.assertNotIn(SECRET, json.dumps(body()))
            self.assertNotIn(SECRET, d.logs())


if __name__ == "__main__":
    unittest.main()
