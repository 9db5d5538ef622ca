/*
 * page.c — the status page (HTML): the comprehensive body for people.
 *
 * One self-contained document: no script, nothing loaded from elsewhere
 * (clusters can be air-gapped), and a Content-Security-Policy (http.c)
 * that allows only the one <style> carrying this request's nonce.  So
 * colours come from classes, never from style="" attributes, and the page
 * reloads itself with <meta http-equiv="refresh">.  Every text a plugin or
 * the config wrote goes through esc(), every name in a link through
 * url_segment().
 *
 * Stable hooks, for tests and anyone scraping the page:
 *   #verdict[data-verdict=healthy|degraded|unhealthy]   the banner
 *   #started, #ready, #draining, #maintenance [data-value=true|false]
 *   tr.check#check-NAME[data-status=pending|pass|warn|fail|blocked]
 *                      [data-critical=true|false]      one row per check
 *     td.name, td.plugin, td.kind ("critical" or "informational"),
 *     td.status, td.message (absent when redacted), td.last-run,
 *     td.duration, td.history > svg.strip > rect.pass|warn|fail (one per
 *     recent result, oldest first), td.history .transitions,
 *     .ratio (its data-ratio, 0 to 1, is absent with no results)
 *   #generation, #loaded-at, #restart-required[data-value],
 *   #last-reload[data-value=ok|error], #reload-error (absent when
 *   redacted or when the last reload worked)
 *   a.json: links to the JSON endpoints
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "page.h"

#ifndef HEALTHD_VERSION
#define HEALTHD_VERSION "0.0.0"
#endif

/* The strip: one bar per result. */
#define BAR_W 6
#define BAR_GAP 2
#define BAR_H 16

static const char style[] =
	":root{color-scheme:light dark;--bg:#f6f7f9;--fg:#1f2328;"
	"--muted:#59636e;--card:#fff;--line:#d1d9e0;--link:#0969da;"
	"--pass:#1a7f37;--warn:#9a6700;--fail:#cf222e;--pending:#6e7781;"
	"--pass-bg:#dafbe1;--warn-bg:#fff8c5;--fail-bg:#ffebe9;"
	"--pending-bg:#eef1f4}\n"
	"@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;"
	"--muted:#9198a1;--card:#151b23;--line:#3d444d;--link:#4493f8;"
	"--pass:#3fb950;--warn:#d29922;--fail:#f85149;--pending:#9198a1;"
	"--pass-bg:#122d1c;--warn-bg:#2e2612;--fail-bg:#3a1519;"
	"--pending-bg:#262c36}}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0 auto;max-width:1200px;padding:16px;background:var(--bg);"
	"color:var(--fg);font:14px/1.45 system-ui,-apple-system,\"Segoe UI\","
	"Roboto,sans-serif}\n"
	"a{color:var(--link)}\n"
	"h1{font-size:22px;margin:0}\n"
	"h2{font-size:16px;margin:24px 0 8px}\n"
	".asof,footer{color:var(--muted);font-size:12px}\n"
	".asof{margin:2px 0 12px}\n"
	"footer{margin-top:24px}\n"
	".banner{display:flex;flex-wrap:wrap;align-items:center;gap:8px 32px;"
	"padding:14px 18px;margin-bottom:20px;border:1px solid;border-left-width:6px;"
	"border-radius:8px}\n"
	".banner .verdict{margin:0;font-size:26px;font-weight:700;"
	"text-transform:capitalize}\n"
	".banner.healthy{background:var(--pass-bg);border-color:var(--pass)}\n"
	".banner.degraded{background:var(--warn-bg);border-color:var(--warn)}\n"
	".banner.unhealthy{background:var(--fail-bg);border-color:var(--fail)}\n"
	".healthy .verdict{color:var(--pass)}.degraded .verdict{color:var(--warn)}"
	".unhealthy .verdict{color:var(--fail)}\n"
	".flags{display:flex;flex-wrap:wrap;gap:6px 20px;margin:0;padding:0;"
	"list-style:none}\n"
	".flags b{font-weight:600}\n"
	".flags [data-value=false] b{color:var(--fail)}"
	"#draining[data-value=true] b,#maintenance[data-value=true] b{color:var(--warn)}"
	"#draining[data-value=false] b{color:inherit}\n"
	"table{width:100%;border-collapse:separate;border-spacing:0;"
	"background:var(--card);border:1px solid var(--line);border-radius:8px}\n"
	"th,td{padding:8px 10px;text-align:left;vertical-align:top;"
	"border-bottom:1px solid var(--line)}\n"
	"tbody tr:last-child td{border-bottom:0}\n"
	"th{color:var(--muted);font-size:12px;font-weight:600;"
	"text-transform:uppercase;letter-spacing:.04em}\n"
	"td.name{font-weight:600;border-left:4px solid var(--pending)}\n"
	"tr[data-status=pass] td.name{border-left-color:var(--pass)}"
	"tr[data-status=warn] td.name{border-left-color:var(--warn)}"
	"tr[data-status=fail] td.name{border-left-color:var(--fail)}\n"
	".badge{display:inline-block;padding:1px 9px;border-radius:999px;"
	"font-size:12px;font-weight:700}\n"
	".badge.pass{color:var(--pass);background:var(--pass-bg)}"
	".badge.warn{color:var(--warn);background:var(--warn-bg)}"
	".badge.fail{color:var(--fail);background:var(--fail-bg)}"
	".badge.pending,.badge.blocked{color:var(--pending);background:var(--pending-bg)}\n"
	".kind.informational,.last,.sub{color:var(--muted)}\n"
	".last,.sub{display:block;font-size:12px}\n"
	"td.message{max-width:36ch;overflow-wrap:anywhere;white-space:pre-wrap;"
	"font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}\n"
	".num{white-space:nowrap;font-variant-numeric:tabular-nums}\n"
	".strip{display:block;margin-bottom:2px}\n"
	".strip rect{fill:var(--pending)}.strip rect.pass{fill:var(--pass)}"
	".strip rect.warn{fill:var(--warn)}.strip rect.fail{fill:var(--fail)}\n"
	"dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;"
	"margin:0;padding:12px 16px;background:var(--card);"
	"border:1px solid var(--line);border-radius:8px}\n"
	"dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}\n"
	"#reload-error{color:var(--fail);font-family:ui-monospace,monospace}\n"
	/* A phone: each check becomes a card of labelled lines. */
	"@media (max-width:640px){body{padding:10px}"
	"table,tbody,tr,td{display:block;width:100%}"
	"table{border:0;background:none}thead{display:none}"
	"tr.check{margin-bottom:12px;background:var(--card);"
	"border:1px solid var(--line);border-radius:8px}"
	"td{display:flex;gap:12px;padding:5px 12px;border:0}"
	"td.name{border-left:0;border-bottom:1px solid var(--line);font-size:16px}"
	"td.message{max-width:none}"
	"td::before{content:attr(data-label);flex:0 0 6.5em;color:var(--muted);"
	"font:600 11px/20px system-ui,sans-serif;text-transform:uppercase}"
	"td.name::before{content:none}"
	"tr[data-status=pass]{border-left:4px solid var(--pass)}"
	"tr[data-status=warn]{border-left:4px solid var(--warn)}"
	"tr[data-status=fail]{border-left:4px solid var(--fail)}}\n";

/* HTML text or attribute value.  C0 controls other than tab and newline
 * become U+FFFD: they are parse errors in HTML and never meant as text. */
static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n')
				fputs("\xef\xbf\xbd", f);
			else
				fputc(*s, f);
		}
	}
}

/* One path segment of a URL: anything but unreserved characters is
 * percent-encoded, which also makes it safe inside an attribute. */
static void url_segment(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || strchr("-._~", ch))
			fputc(ch, f);
		else
			fprintf(f, "%%%02X", ch);
	}
}

/* The start of a link under base_path.  A base path starting "//" (or
 * "/\", which browsers read alike) would name another host: "/." keeps
 * such a link on this one. */
static void href_base(FILE *f, const char *base)
{
	fputs(" href=\"", f);
	if (base[0] == '/' && (base[1] == '/' || base[1] == '\\'))
		fputs("/.", f);
	esc(f, base);
}

/* A span as people say it: "42 s", "3 min", "5 h", "2 d". */
static void span(FILE *f, long long s)
{
	if (s < 120)
		fprintf(f, "%lld s", s);
	else if (s < 2 * 3600)
		fprintf(f, "%lld min", s / 60);
	else if (s < 2 * 86400)
		fprintf(f, "%lld h", s / 3600);
	else
		fprintf(f, "%lld d", s / 86400);
}

/* "3 s ago", counted from the render's `now`, not the snapshot's: the
 * page is rendered per request. */
static void age(FILE *f, int64_t now, int64_t then)
{
	span(f, then < now ? (now - then) / 1000 : 0);
	fputs(" ago", f);
}

/* A wall time as people read it, with the exact one alongside. */
static void when(FILE *f, int64_t now, int64_t then)
{
	char iso[32];

	if (!then) {
		fputs("never", f);
		return;
	}
	clock_format(then, iso, sizeof(iso));
	fprintf(f, "<time datetime=\"%s\" title=\"%s\">", iso, iso);
	age(f, now, then);
	fputs("</time>", f);
}

static const char *status_name(unsigned s)
{
	return state_status_name(s <= STATUS_BLOCKED ? (enum check_status)s
						     : STATUS_FAIL);
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

static const char *true_false(bool b)
{
	return b ? "true" : "false";
}

/* The latest results as bars, oldest on the left; colours come from the
 * stylesheet by class, as the policy forbids style attributes.  Kept
 * terse: with 1,000 checks the strips are most of the page. */
static void strip(FILE *f, const struct history_summary *h)
{
	size_t n = h->n_recent < HISTORY_RECENT ? h->n_recent : HISTORY_RECENT;
	size_t count[STATUS_FAIL + 1] = {0};
	size_t w;

	if (!n)
		return;
	w = n * (BAR_W + BAR_GAP) - BAR_GAP;
	for (size_t i = 0; i < n; i++)
		count[h->recent[i] <= STATUS_FAIL ? h->recent[i] : STATUS_FAIL]++;
	fprintf(f, "<svg class=\"strip\" width=\"%zu\" height=\"%d\" "
		   "viewBox=\"0 0 %zu %d\" role=\"img\"><title>latest %zu "
		   "results, oldest first: %zu pass, %zu warn, %zu fail</title>",
		w, BAR_H, w, BAR_H, n, count[STATUS_PASS], count[STATUS_WARN],
		count[STATUS_FAIL]);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "<rect class=\"%s\" x=\"%zu\" width=\"%d\" "
			   "height=\"%d\"/>",
			status_name(h->recent[i]), i * (BAR_W + BAR_GAP), BAR_W,
			BAR_H);
	fputs("</svg>", f);
}

static void check_row(FILE *f, const struct check_view *c, bool redact,
		      int64_t now, const char *base)
{
	const char *status = state_status_name(c->status);
	const struct history_summary *h = &c->history;

	fputs("<tr class=\"check\" id=\"check-", f);
	esc(f, c->name);
	fprintf(f, "\" data-status=\"%s\" data-critical=\"%s\">\n", status,
		true_false(c->critical));

	fputs("<td class=\"name\" data-label=\"Check\"><a class=\"json\"", f);
	href_base(f, base);
	fputs("/checks/", f);
	url_segment(f, c->name);
	fputs("\">", f);
	esc(f, c->name);
	fputs("</a></td>\n<td class=\"plugin\" data-label=\"Plugin\">", f);
	esc(f, c->plugin);
	fprintf(f, "</td>\n<td class=\"kind %s\" data-label=\"Kind\">%s</td>\n",
		c->critical ? "critical" : "informational",
		c->critical ? "critical" : "informational");

	/* The status is after thresholds; the latest raw result can differ
	 * (one failure below failure_threshold still passes). */
	fprintf(f, "<td class=\"status\" data-label=\"Status\">"
		   "<span class=\"badge %s\">%s</span>",
		status, status);
	if (c->last_result != STATUS_PENDING && c->last_result != c->status)
		fprintf(f, "<span class=\"last\">last run: %s</span>",
			state_status_name(c->last_result));
	fputs("</td>\n", f);

	if (!redact) {
		fputs("<td class=\"message\" data-label=\"Message\">", f);
		if (render_has_message(c))
			esc(f, c->message);
		fputs("</td>\n", f);
	}

	fputs("<td class=\"last-run num\" data-label=\"Last run\">", f);
	when(f, now, c->last_run);
	fputs("</td>\n<td class=\"duration num\" data-label=\"Duration\">", f);
	if (c->last_run)
		fprintf(f, "%.1f ms", c->duration_ms);
	else
		fputs("&ndash;", f);
	fputs("</td>\n", f);

	fputs("<td class=\"history\" data-label=\"History\"><div>", f);
	strip(f, h);
	fprintf(f, "<span class=\"sub\"><span class=\"transitions num\">%llu "
		   "change%s</span> &middot; ",
		(unsigned long long)h->transitions,
		h->transitions == 1 ? "" : "s");
	if (h->window)
		fprintf(f, "<span class=\"ratio num\" data-ratio=\"%.3f\">"
			   "%.1f%% passing</span>",
			(double)h->passing / (double)h->window,
			100.0 * (double)h->passing / (double)h->window);
	else
		fputs("<span class=\"ratio num\">no results</span>", f);
	fputs(" &middot; <a class=\"json\"", f);
	href_base(f, base);
	fputs("/checks/", f);
	url_segment(f, c->name);
	fputs("/history\">history</a></span></div></td>\n</tr>\n", f);
}

static void banner(FILE *f, const struct health_view *v, enum verdict verdict)
{
	const char *name = state_verdict_name(verdict);
	bool ready = render_ready_state(v, NULL);

	fprintf(f, "<section id=\"verdict\" class=\"banner %s\" "
		   "data-verdict=\"%s\" aria-live=\"polite\">\n"
		   "<p class=\"verdict\">%s</p>\n<ul class=\"flags\">\n",
		name, name, name);
	fprintf(f, "<li id=\"started\" data-value=\"%s\">started: <b>%s</b></li>\n",
		true_false(v->started), yes_no(v->started));
	fprintf(f, "<li id=\"ready\" data-value=\"%s\">ready: <b>%s</b></li>\n",
		true_false(ready), yes_no(ready));
	fprintf(f, "<li id=\"draining\" data-value=\"%s\">draining: <b>%s</b></li>\n",
		true_false(v->draining), yes_no(v->draining));
	/* healthd ctl drain; its reason is an operator's, not a detail. */
	fprintf(f, "<li id=\"maintenance\" data-value=\"%s\">maintenance: <b>",
		true_false(v->maintenance));
	if (v->maintenance)
		esc(f, v->maintenance_reason && *v->maintenance_reason
			       ? v->maintenance_reason : "yes");
	else
		fputs("no", f);
	fputs("</b></li>\n", f);
	fputs("<li id=\"uptime\">uptime: <b class=\"num\">", f);
	span(f, v->uptime_s > 0 ? (long long)v->uptime_s : 0);
	fputs("</b></li>\n", f);
	fputs("</ul>\n</section>\n", f);
}

static void config_section(FILE *f, const struct health_view *v, bool redact,
			   int64_t now)
{
	fprintf(f, "<section id=\"config\">\n<h2>Configuration</h2>\n<dl>\n"
		   "<dt>Generation</dt><dd id=\"generation\">%llu</dd>\n"
		   "<dt>Loaded</dt><dd id=\"loaded-at\">",
		(unsigned long long)v->generation);
	when(f, now, v->loaded_at);
	fprintf(f, "</dd>\n<dt>Last reload</dt><dd id=\"last-reload\" "
		   "data-value=\"%s\">%s",
		v->last_reload_ok ? "ok" : "error",
		v->last_reload_ok ? "ok" : "failed; the previous config keeps running");
	/* The error names files and option keys: a detail, so redacted. */
	if (!v->last_reload_ok && v->last_reload_error && !redact) {
		fputs("<br><span id=\"reload-error\">", f);
		esc(f, v->last_reload_error);
		fputs("</span>", f);
	}
	fprintf(f, "</dd>\n<dt>Restart required</dt><dd id=\"restart-required\" "
		   "data-value=\"%s\">%s</dd>\n</dl>\n</section>\n",
		true_false(v->restart_required),
		v->restart_required ? "yes: a changed setting applies only "
				      "after a restart"
				    : "no");
}

char *render_page(const struct health_view *v, bool redact, int64_t now,
		  const char *base_path, const char *nonce, int *code)
{
	const char *service = v->service ? v->service : "healthd";
	enum verdict verdict = render_verdict(v, NULL);
	char *text = NULL;
	size_t len = 0;
	char iso[32];
	FILE *f;

	*code = verdict == VERDICT_UNHEALTHY ? 503 : 200;
	if (!base_path)
		base_path = "";
	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	clock_format(now, iso, sizeof(iso));

	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
		   "<meta charset=\"utf-8\">\n"
		   "<meta name=\"viewport\" content=\"width=device-width, "
		   "initial-scale=1\">\n"
		   "<meta http-equiv=\"refresh\" content=\"%d\">\n"
		   "<meta name=\"robots\" content=\"noindex\">\n<title>%s &ndash; ",
		PAGE_REFRESH_S, state_verdict_name(verdict));
	esc(f, service);
	fputs("</title>\n<style nonce=\"", f);
	esc(f, nonce);
	fprintf(f, "\">\n%s</style>\n</head>\n<body>\n<header>\n<h1>", style);
	esc(f, service);
	fprintf(f, "</h1>\n<p class=\"asof\">as of <time datetime=\"%s\">%s</time>"
		   " &middot; refreshes every %d s</p>\n</header>\n<main>\n",
		iso, iso, PAGE_REFRESH_S);

	banner(f, v, verdict);

	fprintf(f, "<h2>Checks (%zu)</h2>\n<table class=\"checks\">\n"
		   "<thead><tr><th scope=\"col\">Check</th>"
		   "<th scope=\"col\">Plugin</th><th scope=\"col\">Kind</th>"
		   "<th scope=\"col\">Status</th>%s"
		   "<th scope=\"col\">Last run</th><th scope=\"col\">Duration</th>"
		   "<th scope=\"col\">History</th></tr></thead>\n<tbody>\n",
		v->n_checks, redact ? "" : "<th scope=\"col\">Message</th>");
	for (size_t i = 0; i < v->n_checks; i++)
		check_row(f, &v->checks[i], redact, now, base_path);
	if (!v->n_checks)
		fprintf(f, "<tr><td colspan=\"%d\">No checks configured.</td></tr>\n",
			redact ? 7 : 8);
	fputs("</tbody>\n</table>\n", f);

	config_section(f, v, redact, now);

	fputs("</main>\n<footer>healthd " HEALTHD_VERSION " &middot; JSON: "
	      "<a class=\"json\"", f);
	href_base(f, base_path);
	fputs("/?format=json\">", f);
	esc(f, base_path);
	fputs("/</a> (what probes and curl get)</footer>\n</body>\n</html>\n", f);

	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
