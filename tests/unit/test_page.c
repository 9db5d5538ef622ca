/* test_page.c — the status page: escaping, redaction, the history strip,
 * codes. */
#include <stdlib.h>
#include <string.h>

#include "page.h"
#include "unit.h"

#define NOW 1764158460000 /* 2025-11-26T12:01:00Z */
#define NONCE "0123456789abcdef0123456789abcdef"

static const char evil_script[] = "<script>alert(1)</script>";
static const char evil_img[] = "\"><img src=x onerror=alert(1)>";

static struct check_view checks[3];
static struct health_view view;

static void make_view(enum check_status db, enum check_status extra)
{
	memset(checks, 0, sizeof(checks));
	checks[0] = (struct check_view){
		.name = "db", .plugin = "postgres", .critical = true,
		.status = db, .last_result = db, .message = "SELECT 1 in 1.2 ms",
		.duration_ms = 1.23, .last_run = NOW - 3000,
		.interval_ms = 5000, .timeout_ms = 2000,
		.history = {.transitions = 2, .window = 4, .passing = 3,
			    .recent = {STATUS_PASS, STATUS_WARN, STATUS_FAIL,
				       STATUS_PASS},
			    .n_recent = 4}};
	checks[1] = (struct check_view){
		.name = "extra", .plugin = "http", .critical = false,
		.status = extra, .last_result = extra, .message = "status 500",
		.last_run = NOW - 150000, .interval_ms = 10000,
		.timeout_ms = 3000};
	checks[2] = (struct check_view){
		.name = "new", .plugin = "file", .critical = true,
		.status = STATUS_PENDING, .last_result = STATUS_PENDING,
		.warming = true};
	view = (struct health_view){.started = true, .uptime_s = 61,
				    .generation = 3, .loaded_at = NOW - 60000,
				    .last_reload_ok = true, .checks = checks,
				    .n_checks = 3};
}

static char *page(bool redact, int *code)
{
	char *text = render_page(&view, redact, NOW, "/api/v1/health", NONCE,
				 code);

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	return text;
}

static size_t count(const char *text, const char *needle)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The text between the start of the row of check `name` and its end. */
static char *row(const char *text, const char *name)
{
	char open[64];
	const char *start, *end;

	snprintf(open, sizeof(open), "<tr class=\"check\" id=\"check-%s\"", name);
	start = strstr(text, open);
	if (!start)
		return NULL;
	end = strstr(start, "</tr>");
	return end ? strndup(start, (size_t)(end - start)) : NULL;
}

static void test_document(void)
{
	int code;
	char *text;

	make_view(STATUS_PASS, STATUS_WARN);
	text = page(false, &code);
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_EQUAL(strncmp(text, "<!DOCTYPE html>", 15), 0);
	CU_ASSERT_EQUAL(count(text, "<style"), 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<style nonce=\"" NONCE "\">"));
	CU_ASSERT_PTR_NULL(strstr(text, "<script"));
	CU_ASSERT_PTR_NULL(strstr(text, " style="));
	/* Nothing loaded from elsewhere. */
	CU_ASSERT_PTR_NULL(strstr(text, " src="));
	CU_ASSERT_PTR_NULL(strstr(text, "<link"));
	CU_ASSERT_PTR_NULL(strstr(text, "url("));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<meta http-equiv=\"refresh\" content=\"5\">"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "prefers-color-scheme:dark"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<h1>healthd</h1>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "id=\"verdict\" class=\"banner degraded\" data-verdict=\"degraded\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<li id=\"ready\" data-value=\"true\">"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<dd id=\"generation\">3</dd>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "uptime: <b class=\"num\">61 s</b>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "href=\"/api/v1/health/?format=json\""));
	CU_ASSERT_PTR_NULL(strstr(text, "id=\"reload-error\""));

	char *db = row(text, "db");
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_PTR_NOT_NULL(strstr(db, "data-status=\"pass\" data-critical=\"true\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, ">postgres</td>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, ">critical</td>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, "<td class=\"message\" data-label=\"Message\">SELECT 1 in 1.2 ms</td>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, ">3 s ago</time>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, "1.2 ms"));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, "href=\"/api/v1/health/checks/db\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, "href=\"/api/v1/health/checks/db/history\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, ">2 changes</span>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(db, "data-ratio=\"0.750\""));
	free(db);

	char *extra = row(text, "extra");
	CU_ASSERT_PTR_NOT_NULL_FATAL(extra);
	CU_ASSERT_PTR_NOT_NULL(strstr(extra, "data-status=\"warn\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(extra, ">informational</td>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(extra, ">2 min ago</time>"));
	CU_ASSERT_PTR_NULL(strstr(extra, "<svg")); /* no results, no strip */
	free(extra);

	char *fresh = row(text, "new");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fresh);
	CU_ASSERT_PTR_NOT_NULL(strstr(fresh, "data-status=\"pending\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(fresh, ">never</td>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fresh, "<td class=\"message\" data-label=\"Message\"></td>"));
	free(fresh);
	free(text);
}

static void test_strip(void)
{
	int code;
	char *text, *db;

	make_view(STATUS_PASS, STATUS_PASS);
	text = page(false, &code);
	db = row(text, "db");
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(count(db, "<svg"), 1);
	CU_ASSERT_EQUAL(count(db, "<rect "), 4);
	CU_ASSERT_PTR_NOT_NULL(strstr(db, "<title>latest 4 results, oldest first: 2 pass, 1 warn, 1 fail</title>"));
	/* Oldest first, a class per status. */
	const char *p = strstr(db, "<rect class=\"pass\" x=\"0\"");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	p = strstr(p, "<rect class=\"warn\" x=\"8\"");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	p = strstr(p, "<rect class=\"fail\" x=\"16\"");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_PTR_NOT_NULL(strstr(p, "<rect class=\"pass\" x=\"24\""));
	free(db);
	free(text);

	/* A full strip. */
	checks[0].history.n_recent = HISTORY_RECENT;
	for (size_t i = 0; i < HISTORY_RECENT; i++)
		checks[0].history.recent[i] = i % 2 ? STATUS_FAIL : STATUS_PASS;
	text = page(false, &code);
	db = row(text, "db");
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(count(db, "<rect "), HISTORY_RECENT);
	CU_ASSERT_EQUAL(count(db, "<rect class=\"fail\""), HISTORY_RECENT / 2);
	CU_ASSERT_EQUAL(count(db, "<rect class=\"pass\""), HISTORY_RECENT / 2);
	free(db);
	free(text);
}

static void test_escaping(void)
{
	static char name[64], message[128], plugin[64], service[64], error[128];
	int code;
	char *text;

	make_view(STATUS_FAIL, STATUS_PASS);
	snprintf(name, sizeof(name), "%s", evil_img);
	snprintf(message, sizeof(message), "%s%s", evil_script, evil_img);
	snprintf(plugin, sizeof(plugin), "%s", evil_script);
	snprintf(service, sizeof(service), "%s'", evil_img);
	snprintf(error, sizeof(error), "%s%s", evil_script, evil_img);
	checks[1].name = name;
	checks[1].message = message;
	checks[1].plugin = plugin;
	view.service = service;
	view.last_reload_ok = false;
	view.last_reload_error = error;
	text = render_page(&view, false, NOW, "/a\"<b>", NONCE, &code);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NULL(strstr(text, "<script"));
	CU_ASSERT_PTR_NULL(strstr(text, "<img"));
	CU_ASSERT_PTR_NULL(strstr(text, "<b>/"));
	CU_ASSERT_PTR_NULL(strstr(text, "'>"));
	/* No quote from the data ends an attribute early. */
	CU_ASSERT_PTR_NULL(strstr(text, "\"\">"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "&lt;script&gt;alert(1)&lt;/script&gt;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<h1>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&#39;</h1>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<td class=\"plugin\" data-label=\"Plugin\">&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "id=\"check-&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<td class=\"message\" data-label=\"Message\">&lt;script&gt;"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<span id=\"reload-error\">&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img"));
	/* Names in links are percent-encoded, the base path escaped. */
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "href=\"/a&quot;&lt;b&gt;/checks/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "href=\"/a&quot;&lt;b&gt;/?format=json\""));
	free(text);

	/* A control character is not passed through. */
	snprintf(message, sizeof(message), "a\033[31mb");
	text = page(false, &code);
	CU_ASSERT_PTR_NULL(strchr(text, '\033'));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "a\xef\xbf\xbd[31mb"));
	free(text);
}

static void test_links_stay_on_this_host(void)
{
	int code;
	char *text;

	make_view(STATUS_PASS, STATUS_PASS);
	text = render_page(&view, false, NOW, "//evil.example", NONCE, &code);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NULL(strstr(text, "href=\"//"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "href=\"/.//evil.example/checks/db\""));
	free(text);
	text = render_page(&view, false, NOW, "", NONCE, &code);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "href=\"/checks/db\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "href=\"/?format=json\""));
	free(text);
}

static void test_redacted(void)
{
	int code;
	char *text;

	make_view(STATUS_PASS, STATUS_FAIL);
	view.last_reload_ok = false;
	view.last_reload_error = "checks[1].options.url: secret.example";
	text = page(true, &code);
	CU_ASSERT_PTR_NULL(strstr(text, "class=\"message\""));
	CU_ASSERT_PTR_NULL(strstr(text, ">Message</th>"));
	CU_ASSERT_PTR_NULL(strstr(text, "SELECT 1"));
	CU_ASSERT_PTR_NULL(strstr(text, "status 500"));
	CU_ASSERT_PTR_NULL(strstr(text, "id=\"reload-error\""));
	CU_ASSERT_PTR_NULL(strstr(text, "secret.example"));
	/* That the reload failed is no detail. */
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "id=\"last-reload\" data-value=\"error\""));
	/* Everything else still shows. */
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "id=\"check-db\" data-status=\"pass\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "id=\"check-extra\" data-status=\"fail\""));
	CU_ASSERT_EQUAL(count(text, "<rect "), 4);
	free(text);

	text = page(false, &code);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<span id=\"reload-error\">checks[1].options.url: secret.example</span>"));
	CU_ASSERT_EQUAL(count(text, "<td class=\"message\""), 3);
	free(text);
}

static void test_codes(void)
{
	int code;
	char *text;

	make_view(STATUS_FAIL, STATUS_PASS);
	text = page(false, &code);
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "data-verdict=\"unhealthy\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<li id=\"ready\" data-value=\"false\">"));
	free(text);

	make_view(STATUS_PASS, STATUS_FAIL); /* informational: degraded */
	text = page(false, &code);
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "data-verdict=\"degraded\""));
	free(text);

	make_view(STATUS_PASS, STATUS_PASS);
	view.draining = true;
	text = page(false, &code);
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "data-verdict=\"healthy\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<li id=\"draining\" data-value=\"true\">"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<li id=\"ready\" data-value=\"false\">"));
	free(text);

	/* healthd ctl drain, its reason escaped. */
	view.draining = false;
	view.maintenance = true;
	view.maintenance_reason = (char *)evil_script;
	text = page(false, &code);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<li id=\"maintenance\" data-value=\"true\">"
					    "maintenance: <b>&lt;script&gt;"));
	CU_ASSERT_PTR_NULL(strstr(text, evil_script));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<li id=\"ready\" data-value=\"false\">"));
	free(text);

	/* A blocked check: its badge, and why it is blocked. */
	make_view(STATUS_FAIL, STATUS_PASS);
	checks[1].status = STATUS_BLOCKED;
	checks[1].last_result = STATUS_PENDING;
	checks[1].message = "blocked: db is fail";
	text = page(false, &code);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "data-status=\"blocked\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "<span class=\"badge blocked\">blocked</span>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, ">blocked: db is fail<"));
	free(text);

	view.n_checks = 0;
	text = page(false, &code);
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "No checks configured."));
	free(text);
}

static void test_ages(void)
{
	static const struct {
		int64_t ago_ms;
		const char *text;
	} ages[] = {
		{0, ">0 s ago<"},         {119999, ">119 s ago<"},
		{120000, ">2 min ago<"},  {7199999, ">119 min ago<"},
		{7200000, ">2 h ago<"},   {3 * 86400000LL, ">3 d ago<"},
		{-5000, ">0 s ago<"}, /* a clock stepped back */
	};
	int code;

	for (size_t i = 0; i < sizeof(ages) / sizeof(*ages); i++) {
		make_view(STATUS_PASS, STATUS_PASS);
		view.loaded_at = NOW - ages[i].ago_ms;
		char *text = page(false, &code);
		char *dd = strstr(text, "<dd id=\"loaded-at\">");
		CU_ASSERT_PTR_NOT_NULL_FATAL(dd);
		CU_ASSERT_PTR_NOT_NULL(strstr(dd, ages[i].text));
		CU_ASSERT(strstr(dd, ages[i].text) < strstr(dd, "</dd>"));
		free(text);
	}
}

void unit_register(void)
{
	static CU_TestInfo tests[] = {
		{"document", test_document},
		{"history strip", test_strip},
		{"escaping", test_escaping},
		{"links stay on this host", test_links_stay_on_this_host},
		{"redacted", test_redacted},
		{"codes", test_codes},
		{"ages", test_ages},
		CU_TEST_INFO_NULL,
	};
	UNIT_SUITE("page", tests);
}
