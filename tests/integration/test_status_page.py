"""The status page in a real browser: headless Chromium (Debian's chromium).

healthd answers {base_path}/ with an HTML page when the request's Accept
lists text/html before any JSON type, as a browser's does.  These tests load
that page in Chromium, read the DOM it built (--dump-dom), take screenshots
at desktop and phone sizes (kept in $HEALTHD_BUILD_DIR/artifacts/), and
check the HTTP side with http.client: the headers, the CSP nonce, and that
probes and curl still get JSON.

The page's hooks (core/page.c): #verdict[data-verdict], #started, #ready,
#draining [data-value], tr.check#check-NAME[data-status][data-critical] with
td.name, td.plugin, td.kind, td.status, td.message, td.history > svg.strip >
rect.pass|warn|fail; #last-reload, #reload-error.
"""

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import unittest
import zlib
from html.parser import HTMLParser

from harness import BASE, BUILD_DIR, Daemon, check

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_TIMEOUT = 60
ARTIFACTS = os.path.join(BUILD_DIR or tempfile.gettempdir(), "artifacts")
DESKTOP = (1280, 900)
PHONE = (390, 844)

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'


# --- the browser --------------------------------------------------------------

def chromium(url, *flags):
    """Run headless Chromium on url; returns (stdout, stderr).  It gets a
    profile and HOME of its own, and is killed, its children with it, when
    it overruns CHROMIUM_TIMEOUT."""
    # Not a skip: the build variant that runs this test (label "once")
    # must have the browser (scripts/deps.sh installs it).
    if not CHROMIUM:
        raise AssertionError("chromium is not installed "
                             "(apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="healthd-chromium-") as home:
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--hide-scrollbars",
                "--mute-audio", "--enable-logging=stderr", "--v=0",
                f"--user-data-dir={os.path.join(home, 'profile')}",
                *flags, url]
        env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home,
                   XDG_CACHE_HOME=home)
        p = subprocess.Popen(args, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=home,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=CHROMIUM_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise AssertionError(f"chromium took over {CHROMIUM_TIMEOUT} s "
                                 f"on {url}")
        finally:
            try:  # helpers it left behind
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if p.returncode != 0:
            raise AssertionError(f"chromium exited {p.returncode} on {url}:\n"
                                 + err.decode(errors="replace")[-4000:])
        return out.decode(errors="replace"), err.decode(errors="replace")


def dump_dom(url):
    out, err = chromium(url, "--dump-dom")
    return Dom(out), err


def screenshot(url, path, size, *flags):
    if os.path.exists(path):
        os.unlink(path)
    _, err = chromium(url, f"--screenshot={path}",
                      f"--window-size={size[0]},{size[1]}", *flags)
    return err


# --- the DOM Chromium built ---------------------------------------------------

class Node:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []

    def text(self):
        return "".join(c if isinstance(c, str) else c.text()
                       for c in self.children)

    def classes(self):
        return (self.attrs.get("class") or "").split()

    def walk(self):
        for c in self.children:
            if isinstance(c, Node):
                yield c
                yield from c.walk()

    def find_all(self, tag=None, cls=None, **attrs):
        return [n for n in self.walk()
                if (tag is None or n.tag == tag)
                and (cls is None or cls in n.classes())
                and all(n.attrs.get(k.replace("_", "-")) == v
                        for k, v in attrs.items())]

    def find(self, tag=None, cls=None, **attrs):
        found = self.find_all(tag, cls, **attrs)
        return found[0] if found else None

    def by_id(self, ident):
        return next((n for n in self.walk() if n.attrs.get("id") == ident),
                    None)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}


class Builder(HTMLParser):
    """Builds the tree of Nodes for the serialized DOM."""

    def __init__(self, root):
        super().__init__(convert_charrefs=True)
        self.cur = root

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.children.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n.parent is not None and n.tag != tag:
            n = n.parent
        if n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.children.append(data)


def Dom(text):
    """The DOM Chromium serialized, as a tree of Nodes; .source is the
    text."""
    root = Node("#document", {}, None)
    b = Builder(root)
    b.feed(text)
    b.close()
    root.source = text
    return root


# --- screenshots --------------------------------------------------------------

def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path + " is no PNG"
    return struct.unpack(">II", head[16:24])


def png_colours(path):
    """The set of (r, g, b) in an 8-bit RGB or RGBA PNG (what Chromium
    writes), decoded by hand: no imaging library is needed."""
    with open(path, "rb") as f:
        data = f.read()
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6), (depth, ctype)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xff
            elif f == 2:
                line[i] = (line[i] + b) & 0xff
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 0xff
        for x in range(0, stride, bpp):
            colours.add(bytes(line[x:x + 3]))
        prev = line
    return {tuple(c) for c in colours}


def rgb(hexcolour):
    return tuple(bytes.fromhex(hexcolour.lstrip("#")))


# --- the tests ----------------------------------------------------------------

def html_get(d, path=BASE + "/", headers=None):
    h = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,"
                   "*/*;q=0.8"}
    h.update(headers or {})
    return d.get(path, h)


def json_string(s):
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(s)


def wait_status(d, name, status, timeout=15):
    d.wait_for(lambda: d.check_status(name) == status, timeout=timeout,
               what=f"{name} to be {status}")


class StatusPage(unittest.TestCase):
    """One daemon: a passing critical check, a warning and a failing
    informational one (so: degraded), and a critical one the test switches
    through testplug's control file."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="healthd-page-")
        cls.control = os.path.join(cls.tmp.name, "payments.control")
        with open(cls.control, "w") as f:
            f.write("pass\n")
        cls.d = Daemon(checks=[
            check("api", options={"mode": "pass",
                                  "message": "GET /healthz: 200 in 12 ms"}),
            check("queue", critical=False,
                  options={"mode": "warn",
                           "message": "backlog 1204 messages (warn above 1000)"}),
            check("cache", critical=False,
                  options={"mode": "fail",
                           "message": "connection refused (127.0.0.1:6379)"}),
            check("payments", options={"control": cls.control}),
        ], extra='service: "shop-frontend"\n')
        cls.d.start()
        cls.url = f"http://127.0.0.1:{cls.d.port}{BASE}/"
        try:
            # Two runs each, so every strip has bars and every row an age.
            cls.d.wait_for(lambda: all(
                c["details"].get("runs", 0) >= 2
                for c in cls.d.get(BASE + "/").json()["checks"].values()),
                what="two runs of each check")
        except BaseException:  # tearDownClass does not run
            cls.tearDownClass()
            raise
        os.makedirs(ARTIFACTS, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        cls.d.dir.cleanup()
        cls.tmp.cleanup()

    def set_payments(self, mode):
        with open(self.control + ".tmp", "w") as f:
            f.write(mode + "\n")
        os.replace(self.control + ".tmp", self.control)

    def rows(self, dom):
        return {r.attrs["id"][len("check-"):]: r
                for r in dom.find_all("tr", cls="check")}

    def test_dom(self):
        dom, err = dump_dom(self.url)
        self.assertIn("shop-frontend", dom.find("title").text())
        self.assertEqual(dom.find("h1").text(), "shop-frontend")
        banner = dom.by_id("verdict")
        self.assertEqual(banner.attrs["data-verdict"], "degraded")
        self.assertIn("degraded", banner.text())
        self.assertEqual(dom.by_id("started").attrs["data-value"], "true")
        self.assertEqual(dom.by_id("ready").attrs["data-value"], "true")
        self.assertEqual(dom.by_id("draining").attrs["data-value"], "false")
        self.assertEqual(dom.by_id("generation").text(), "1")
        self.assertEqual(dom.by_id("last-reload").attrs["data-value"], "ok")
        self.assertIsNone(dom.by_id("reload-error"))

        rows = self.rows(dom)
        self.assertEqual(sorted(rows), ["api", "cache", "payments", "queue"])
        want = {"api": ("pass", "critical", "GET /healthz: 200 in 12 ms"),
                "queue": ("warn", "informational",
                          "backlog 1204 messages (warn above 1000)"),
                "cache": ("fail", "informational",
                          "connection refused (127.0.0.1:6379)"),
                "payments": ("pass", "critical", "testplug: pass")}
        for name, (status, kind, message) in want.items():
            r = rows[name]
            self.assertEqual(r.attrs["data-status"], status, name)
            self.assertEqual(r.find(cls="name").text().strip(), name)
            self.assertEqual(r.find(cls="plugin").text(), "testplug")
            self.assertEqual(r.find(cls="kind").text(), kind)
            self.assertEqual(r.attrs["data-critical"],
                             "true" if kind == "critical" else "false")
            badge = r.find(cls="status").find(cls="badge")
            self.assertEqual(badge.text(), status)
            self.assertIn(status, badge.classes())
            self.assertEqual(r.find(cls="message").text(), message)
            self.assertRegex(r.find(cls="last-run").text(),
                             r"^\d+ (s|min) ago$")
            self.assertRegex(r.find(cls="duration").text(), r"^\d+\.\d ms$")
            # Every check has run: its strip has a bar per result, each
            # of its own status (the stubs here never change outcome).
            bars = r.find_all("rect")
            self.assertGreaterEqual(len(bars), 1, name + ": no strip")
            self.assertLessEqual(len(bars), 30)
            self.assertEqual(bars[-1].classes(), [status], name)
            if name != "payments":  # the one another test switches
                for b in bars:
                    self.assertEqual(b.classes(), [status], name)
            self.assertRegex(r.find(cls="ratio").text(), r"% passing$")
            links = [a.attrs["href"] for a in r.find_all("a")]
            self.assertIn(f"{BASE}/checks/{name}", links)
            self.assertIn(f"{BASE}/checks/{name}/history", links)
        # Nothing from elsewhere, no script.
        self.assertEqual(dom.find_all("script"), [])
        self.assertEqual(dom.find_all("link"), [])
        self.assertEqual(len(dom.find_all("style")), 1)
        refresh = dom.find("meta", http_equiv="refresh")
        self.assertEqual(refresh.attrs["content"], "5")
        # The policy let the one style in: the console (which Chromium
        # logs to stderr) has no "... violates the following Content
        # Security Policy directive", nor anything else.
        self.assertNotIn("Content Security Policy", err)
        self.assertEqual(re.findall(r":CONSOLE[^\n]*", err), [])

    def test_links_answer_json(self):
        dom, _ = dump_dom(self.url)
        for a in dom.find_all("a", cls="json"):
            r = self.d.get(a.attrs["href"])
            self.assertIn(r.status, (200, 503), a.attrs["href"])
            self.assertTrue(r.headers["content-type"].startswith(
                "application/json"), a.attrs["href"])
            r.json()

    def test_change_shows_after_reload(self):
        dom, _ = dump_dom(self.url)
        self.assertEqual(self.rows(dom)["payments"].attrs["data-status"],
                         "pass")
        self.set_payments("fail")
        try:
            wait_status(self.d, "payments", "fail")
            dom, _ = dump_dom(self.url)
            row = self.rows(dom)["payments"]
            self.assertEqual(row.attrs["data-status"], "fail")
            self.assertEqual(row.find(cls="badge").text(), "fail")
            self.assertEqual(row.find(cls="message").text(), "testplug: fail")
            self.assertIn("fail", [b.classes()[0] for b in row.find_all("rect")])
            self.assertEqual(dom.by_id("verdict").attrs["data-verdict"],
                             "unhealthy")
            self.assertEqual(dom.by_id("ready").attrs["data-value"], "false")
            self.assertEqual(html_get(self.d).status, 503)
        finally:
            self.set_payments("pass")
            wait_status(self.d, "payments", "pass")
        dom, _ = dump_dom(self.url)
        self.assertEqual(dom.by_id("verdict").attrs["data-verdict"],
                         "degraded")

    def test_headers_and_nonce(self):
        r = html_get(self.d)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(r.headers["x-content-type-options"], "nosniff")
        self.assertIn("Accept", r.headers["vary"])
        self.assertEqual(r.headers["cache-control"], "no-store")
        csp = r.headers["content-security-policy"]
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)
        directives = {d.split()[0]: d.split()[1:] for d in
                      (p.strip() for p in csp.split(";")) if d}
        self.assertEqual(directives["default-src"], ["'none'"])
        self.assertNotIn("script-src", directives)
        m = re.fullmatch(r"'nonce-([A-Za-z0-9+/=_-]{16,})'",
                         " ".join(directives["style-src"]))
        self.assertTrue(m, csp)
        nonce = m.group(1)
        body = r.raw.decode()
        styles = re.findall(r"<style\b([^>]*)>", body)
        self.assertEqual(styles, [f' nonce="{nonce}"'])
        self.assertNotIn("<script", body)
        self.assertIsNone(re.search(r"\sstyle=", body))
        # A nonce is good for one response only.
        again = html_get(self.d).headers["content-security-policy"]
        self.assertNotEqual(again, csp)
        # HEAD: the same headers, no body.
        h = self.d.request("HEAD", BASE + "/",
                           {"Accept": "text/html"})
        self.assertEqual(h.headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(h.raw, b"")

    def test_probes_and_curl_get_json(self):
        for accept in (None, "*/*", "application/json",
                       "application/json, text/html",
                       "text/plain, */*;q=0.1", "text/html;q=0"):
            headers = {"Accept": accept} if accept is not None else {}
            r = self.d.get(BASE + "/", headers)
            self.assertEqual(r.headers["content-type"], "application/json",
                             accept)
            self.assertEqual(r.json()["status"], "degraded", accept)
            self.assertNotIn("content-security-policy", r.headers)
        r = self.d.get(BASE + "/", {"Accept": "application/health+json, text/html"})
        self.assertEqual(r.headers["content-type"], "application/health+json")
        for accept in ("text/html", "text/html, application/json",
                       "application/xhtml+xml, text/html;q=0.9",
                       "TEXT/HTML", "application/x-ndjson, text/html"):
            r = self.d.get(BASE + "/", {"Accept": accept})
            self.assertTrue(r.headers["content-type"].startswith("text/html"),
                            accept)
        # The page's JSON link: a browser that follows it gets JSON, never
        # sniffed into HTML.
        r = html_get(self.d, BASE + "/?format=json")
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.headers["x-content-type-options"], "nosniff")
        self.assertEqual(r.json()["status"], "degraded")
        # Only the comprehensive endpoint has a page.
        for path in ("/ready", "/live", "/startup", "/checks/api"):
            r = html_get(self.d, BASE + path)
            self.assertEqual(r.headers["content-type"], "application/json",
                             path)

    def test_screenshots(self):
        desktop = os.path.join(ARTIFACTS, "status-page-desktop.png")
        phone = os.path.join(ARTIFACTS, "status-page-phone.png")
        dark = os.path.join(ARTIFACTS, "status-page-dark.png")
        screenshot(self.url, desktop, DESKTOP)
        screenshot(self.url, phone, PHONE)
        screenshot(self.url, dark, DESKTOP, "--force-dark-mode",
                   "--blink-settings=preferredColorScheme=0")
        for path, size in ((desktop, DESKTOP), (phone, PHONE), (dark, DESKTOP)):
            self.assertTrue(os.path.exists(path), path)
            self.assertGreater(os.path.getsize(path), 10_000, path)
            self.assertEqual(png_size(path), size, path)
        # The stylesheet applied (a policy refusing it would leave black on
        # white): the page background, the degraded banner, the status
        # colours of badges and strips.
        light = png_colours(desktop)
        for name, colour in (("background", "#f6f7f9"),
                             ("banner", "#fff8c5"), ("pass", "#1a7f37"),
                             ("fail", "#cf222e"), ("warn", "#9a6700")):
            self.assertIn(rgb(colour), light, name)
        self.assertIn(rgb("#f6f7f9"), png_colours(phone))
        night = png_colours(dark)
        for name, colour in (("background", "#0d1117"),
                             ("pass", "#3fb950"), ("fail", "#f85149")):
            self.assertIn(rgb(colour), night, name)


class Escaping(unittest.TestCase):
    def test_markup_in_messages_is_text(self):
        message = f"upstream said {XSS_SCRIPT} and {XSS_IMG}"
        service = f"shop {XSS_IMG}"
        with Daemon(checks=[check("evil", critical=False,
                                  options={"mode": "warn",
                                           "message": message})],
                    extra=f"service: {json_string(service)}\n") as d:
            url = f"http://127.0.0.1:{d.port}{BASE}/"
            dom, _ = dump_dom(url)
            self.assertEqual(dom.find_all("script"), [])
            self.assertEqual(dom.find_all("img"), [])
            self.assertEqual(dom.find_all(onerror="alert(1)"), [])
            row = dom.by_id("check-evil")
            self.assertEqual(row.find(cls="message").text(), message)
            self.assertEqual(dom.find("h1").text(), service)
            self.assertIn(service, dom.find("title").text())
            # The banner and the row are where they should be: nothing
            # broke out of an attribute or an element.
            self.assertEqual(dom.by_id("verdict").attrs["data-verdict"],
                             "degraded")
            self.assertEqual(row.attrs["data-status"], "warn")


class Details(unittest.TestCase):
    def assert_no_message(self, d, secret):
        dom, _ = dump_dom(f"http://127.0.0.1:{d.port}{BASE}/")
        row = dom.by_id("check-db")
        self.assertEqual(row.attrs["data-status"], "pass")
        self.assertEqual(row.find(cls="plugin").text(), "testplug")
        self.assertIsNone(row.find(cls="message"))
        self.assertNotIn(secret, dom.source)
        self.assertIsNone(dom.by_id("reload-error"))

    def test_hidden(self):
        with Daemon(checks=[check("db", options={"message": "m-hidden-1"})],
                    extra="details: hidden\n") as d:
            self.assert_no_message(d, "m-hidden-1")
            r = html_get(d, headers={"Authorization": "Bearer anything"})
            self.assertNotIn(b"m-hidden-1", r.raw)

    def test_token(self):
        with tempfile.TemporaryDirectory() as tmp:
            token = os.path.join(tmp, "token")
            with open(token, "w") as f:
                f.write("s3cret-token\n")
            with Daemon(checks=[check("db", options={"message": "m-token-1"})],
                        extra=f"details: token\ndetails_token_file: {token}\n"
                        ) as d:
                # A browser sends no token.
                self.assert_no_message(d, "m-token-1")
                r = html_get(d, headers={"Authorization": "Bearer wrong"})
                self.assertNotIn(b"m-token-1", r.raw)
                r = html_get(d, headers={"Authorization": "Bearer s3cret-token"})
                self.assertTrue(r.headers["content-type"].startswith("text/html"))
                self.assertIn(b'<td class="message" data-label="Message">'
                              b'm-token-1</td>', r.raw)


class ReloadError(unittest.TestCase):
    def test_reload_error_shows_escaped(self):
        with Daemon(checks=[check("db")]) as d:
            with open(d.path) as f:
                good = f.read()
            # A check name the config refuses, quoted into the error.
            with open(d.path, "w") as f:
                f.write(good.replace("name: db", f"name: {json_string(XSS_IMG)}"))
            d.signal(signal.SIGHUP)
            d.wait_for(lambda: d.get(BASE + "/").json()["config"]
                       ["last_reload"] == "error", what="the reload to fail")
            dom, _ = dump_dom(f"http://127.0.0.1:{d.port}{BASE}/")
            self.assertEqual(dom.by_id("last-reload").attrs["data-value"],
                             "error")
            err = dom.by_id("reload-error")
            self.assertIsNotNone(err)
            want = d.get(BASE + "/").json()["config"]["last_reload_error"]
            self.assertEqual(err.text(), want)
            self.assertIn("<img src=x onerror=alert(1)>", err.text())
            self.assertEqual(dom.find_all("img"), [])
            self.assertIsNotNone(dom.by_id("check-db"))


if __name__ == "__main__":
    unittest.main()
