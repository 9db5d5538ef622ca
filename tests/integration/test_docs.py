"""The documentation: man pages built and installed, links that lead
somewhere, nothing cited from outside the repository, and every message the
docs quote still written by the code."""
import glob
import os
import re
import subprocess
import tempfile
import unittest

from harness import SOURCE_DIR

BUILD_DIR = os.environ.get("HEALTHD_BUILD_DIR") or os.path.join(SOURCE_DIR, "build")
DOCS = [os.path.join(SOURCE_DIR, "README.md")] + sorted(
    glob.glob(os.path.join(SOURCE_DIR, "docs", "*.md")))
CONV = r"%[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|z|j|t)?[diouxXeEfgGcsp]"
# Code spans that are commands or C, not messages.
COMMANDS = {"healthd", "healthd-plugin-run", "kubectl", "promtool", "make", "man",
            "curl", "podman", "cmake", "bash", "sh", "cc", "apt-get", "npm",
            "git", "sudo", "python3", "scdoc", "describe"}
# Phrases that come from libc (strerror) or OpenSSL (verify errors) rather
# than from our sources.
EXTERNAL = ("Address already in use", "No such file or directory",
            "Connection refused", "Permission denied", "hostname mismatch")


def code_literals():
    """Every C string literal of the daemon and the bundled plugins,
    adjacent ones joined, escapes undone."""
    out = []
    for path in glob.glob(os.path.join(SOURCE_DIR, "core", "*.[ch]")) + \
            glob.glob(os.path.join(SOURCE_DIR, "plugins", "*", "*.[ch]")):
        with open(path) as f:
            src = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
        for m in re.finditer(r'"(?:[^"\\\n]|\\.)*"(?:\s*"(?:[^"\\\n]|\\.)*")*', src):
            text = "".join(re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(0)))
            out.append(text.replace('\\"', '"').replace("\\\\", "\\"))
    return out


def word_pairs(literals):
    """Adjacent lowercase words of the literals' fixed text; '*' stands for
    what a conversion (%s, %d...) prints, and for what a message (a literal
    of several words) is joined to at either end."""
    pairs = set()
    for lit in literals:
        end = ["*"] if " " in lit.strip() else []
        tokens = list(end)
        for part in re.split("(" + CONV + ")", lit):
            if re.fullmatch(CONV, part):
                tokens.append("*")
            else:
                tokens += [w if re.fullmatch(r"[a-z]+", w) else None
                           for w in re.findall(r"[A-Za-z]+|[^A-Za-z\s]", part)]
        tokens += end
        for a, b in zip(tokens, tokens[1:]):
            if a and b:
                pairs.add((a, b))
    return pairs


def quoted_spans(path):
    with open(path) as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    for m in re.finditer(r"`([^`]+)`", text.replace("\n", " ")):
        yield re.sub(r" +", " ", m.group(1))


class Docs(unittest.TestCase):
    def test_man_pages_build_and_install(self):
        for page in ("healthd.8", "healthd.yaml.5"):
            path = os.path.join(BUILD_DIR, "man", page)
            self.assertTrue(os.path.exists(path), f"{path}: not built (scdoc?)")
            with open(path) as f:
                roff = f.read()
            self.assertRegex(roff, r'\.TH "?' + re.escape(page.rsplit(".", 1)[0]))
            self.assertIn("SEE ALSO", roff)
        with tempfile.TemporaryDirectory() as prefix:
            r = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for rel in ("share/man/man8/healthd.8", "share/man/man5/healthd.yaml.5"):
                self.assertTrue(os.path.exists(os.path.join(prefix, rel)), rel)

    def test_links_lead_somewhere(self):
        for path in DOCS:
            with open(path) as f:
                text = f.read()
            for target in re.findall(r"\]\(([^)\s]+)\)", text):
                if re.match(r"[a-z]+:", target):
                    continue
                file, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) \
                    if file else path
                self.assertTrue(os.path.exists(dest), f"{path}: {target}")
                if anchor and dest.endswith(".md"):
                    with open(dest) as f:
                        heads = [re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                                 for h in re.findall(r"^#+ (.*)$", f.read(), re.M)]
                    self.assertIn(anchor, heads, f"{path}: {target}")

    def test_nothing_cited_from_outside_the_repository(self):
        for path in DOCS + glob.glob(os.path.join(SOURCE_DIR, "k8s", "**", "*.yaml"),
                                     recursive=True):
            with open(path) as f:
                text = f.read()
            self.assertNotIn("../shared", text, path)
            self.assertNotIn("DESIGN.md", text, path)

    def test_quoted_messages_are_the_codes(self):
        """A message the docs quote (a code span with words in it) is made of
        the code's words: every two adjacent lowercase words of it stand
        side by side in a string literal of core/ or plugins/ (or one of them
        next to a %s, %d...).  A reworded message fails here until the docs
        follow."""
        pairs = word_pairs(code_literals())
        stale = []
        for path in DOCS:
            for span in quoted_spans(path):
                first = span.split(" ")[0]
                if first in COMMANDS or "->" in span or "const " in span or \
                        re.search(r"\w=\S", span):  # settings, conninfo
                    continue
                for phrase in EXTERNAL:
                    span = span.replace(phrase, "")
                for run in re.findall(r"\b[a-z]+(?: [a-z]+)+\b", span):
                    words = run.split(" ")
                    for a, b in zip(words, words[1:]):
                        if not ({(a, b), (a, "*"), ("*", b)} & pairs):
                            stale.append(f"{os.path.relpath(path, SOURCE_DIR)}: "
                                         f"`{span}`: \"{a} {b}\"")
        self.assertEqual(stale, [], "\n".join(stale))


if __name__ == "__main__":
    unittest.main()
