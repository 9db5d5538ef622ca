/* fuzz_render.c — arbitrary check names, plugins, messages, details and
 * counts -> every body (render.c, page.c).  Details take the way they take
 * in the daemon: a plugin host's JSON text read by json-c (isolate.c),
 * printed again (scheduler.c).  Asserts: every JSON body parses strictly,
 * /metrics is valid exposition text, the page's tags are its own (no '<'
 * from an input), and valid UTF-8 in gives valid UTF-8 out. */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "history.h"
#include "isolate.h"
#include "page.h"
#include "render.h"

/* Details as the daemon keeps them (isolate_run(), then record()). */
static char *details_of(const char *text)
{
	json_object *d = isolate_details(text);
	char *out = NULL;

	if (d)
		out = strdup(json_object_to_json_string_ext(
			d, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(d);
	return out;
}

/* A measured value: finite, like the clock's. */
static double measured(struct fuzz_in *in)
{
	return (double)fuzz_u32(in) / 1000.0;
}

static bool ok_utf8(const char *s)
{
	return !s || fuzz_utf8_ok(s, strlen(s));
}

/* The page's own tags only, each closed before the next opens. */
static void assert_page(const char *page)
{
	static const char *const tags[] = {
		"!DOCTYPE", "a", "b", "body", "br", "dd", "div", "dl", "dt",
		"footer", "h1", "h2", "head", "header", "html", "li", "main",
		"meta", "p", "rect", "section", "span", "style", "svg", "table",
		"tbody", "td", "th", "thead", "time", "title", "tr", "ul"};

	for (const char *p = strchr(page, '<'); p; p = strchr(p + 1, '<')) {
		const char *name = p + 1 + (p[1] == '/');
		size_t n = strcspn(name, " >\n");
		const char *close = strchr(p, '>');
		bool known = false;

		for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
			known |= strlen(tags[i]) == n && !strncmp(tags[i], name, n);
		if (!known)
			fprintf(stderr, "unknown tag: %.40s\n", p);
		FUZZ_ASSERT(known && close);
		FUZZ_ASSERT(!memchr(p + 1, '<', (size_t)(close - p - 1)));
		/* Attribute values stay quoted: quotes pair up in a tag. */
		size_t quotes = 0;
		for (const char *q = p; q < close; q++)
			quotes += *q == '"';
		FUZZ_ASSERT(quotes % 2 == 0);
	}
}

static void check_json(char *text, bool utf8)
{
	FUZZ_ASSERT(text);
	fuzz_assert_json(text, strlen(text));
	if (utf8)
		FUZZ_ASSERT(fuzz_utf8_ok(text, strlen(text)));
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct health_view v = {.n_checks = fuzz_u8(&in) % 5};
	struct history hist;
	bool utf8 = true;
	int code;
	char *text;
	uint8_t flags = fuzz_u8(&in);

	v.started = flags & 1;
	v.draining = flags & 2;
	v.last_reload_ok = flags & 4;
	v.restart_required = flags & 8;
	v.uptime_s = measured(&in);
	v.generation = fuzz_u32(&in);
	v.loaded_at = (int64_t)fuzz_u32(&in) * 1000;
	v.plugin_hosts = (int)fuzz_u8(&in);
	v.service = fuzz_str(&in);
	if (strlen(v.service) > 128) /* the config's limit */
		v.service[128] = '\0';
	if (!v.service[0]) {
		free(v.service);
		v.service = NULL;
	}
	v.last_reload_error = v.last_reload_ok ? NULL : fuzz_str(&in);
	utf8 &= ok_utf8(v.service) && ok_utf8(v.last_reload_error);
	v.n_restarts = fuzz_u8(&in) % 3;
	for (size_t i = 0; i < v.n_restarts; i++) {
		char *p = fuzz_str(&in);

		snprintf(v.restarts[i].plugin, sizeof(v.restarts[i].plugin), "%.40s", p);
		utf8 &= ok_utf8(v.restarts[i].plugin);
		free(p);
		v.restarts[i].reason = "crash";
		v.restarts[i].count = fuzz_u32(&in);
	}
	v.checks = calloc(v.n_checks ? v.n_checks : 1, sizeof(*v.checks));
	for (size_t i = 0; i < v.n_checks; i++) {
		struct check_view *c = &v.checks[i];
		uint8_t f = fuzz_u8(&in);
		char *d;

		c->name = fuzz_str(&in);
		c->plugin = fuzz_str(&in);
		c->message = fuzz_str(&in);
		d = fuzz_str(&in);
		c->details = details_of(d);
		free(d);
		utf8 &= ok_utf8(c->name) && ok_utf8(c->plugin) &&
			ok_utf8(c->message) && ok_utf8(c->details);
		c->critical = f & 1;
		c->status = (f >> 1) % 5; /* STATUS_BLOCKED too */
		c->last_result = (f >> 3) % 4;
		c->warming = f & 0x20;
		c->duration_ms = measured(&in);
		c->last_run = (int64_t)fuzz_u32(&in) * 1000;
		c->last_success = (int64_t)fuzz_u32(&in);
		c->last_failure = (int64_t)fuzz_u32(&in);
		c->consecutive_failures = (int)fuzz_u8(&in);
		c->consecutive_successes = (int)fuzz_u8(&in);
		c->interval_ms = fuzz_u32(&in);
		c->timeout_ms = fuzz_u32(&in);
		c->runs = fuzz_u32(&in);
		c->failures = fuzz_u32(&in);
		c->isolation = f & 0x40 ? "process" : "inline";
		c->history.transitions = fuzz_u32(&in);
		c->history.last_change = (int64_t)fuzz_u32(&in) * 7;
		c->history.window = fuzz_u8(&in);
		c->history.passing = c->history.window ? fuzz_u8(&in) % (c->history.window + 1) : 0;
		c->history.n_recent = fuzz_u8(&in) % (HISTORY_RECENT + 1);
		for (size_t k = 0; k < c->history.n_recent; k++)
			c->history.recent[k] = fuzz_u8(&in) % 4;
		for (size_t k = 0; k < HISTORY_BUCKETS; k++) {
			c->history.durations.bucket[k] = fuzz_u8(&in);
			c->history.durations.count += c->history.durations.bucket[k];
		}
		c->history.durations.sum_s = measured(&in);
	}

	for (int redact = 0; redact < 2; redact++) {
		check_json(render_health(&v, NULL, redact, RENDER_NATIVE, &code), utf8);
		check_json(render_health(&v, NULL, redact, RENDER_HEALTH_JSON, &code), utf8);
		for (size_t i = 0; i < v.n_checks; i++)
			check_json(render_check(&v.checks[i], redact, &code), utf8);
		text = render_page(&v, redact, 5000000, "/api/v1/health", "n0nce", &code);
		FUZZ_ASSERT(text);
		assert_page(text);
		if (utf8)
			FUZZ_ASSERT(fuzz_utf8_ok(text, strlen(text)));
		free(text);
	}
	if (v.n_checks) {
		const char *names[1] = {v.checks[0].name};
		struct render_exclude ex = {names, 1};

		check_json(render_ready(&v, &ex, &code), utf8);
		check_json(render_health(&v, &ex, false, RENDER_NATIVE, &code), utf8);
	}
	check_json(render_ready(&v, NULL, &code), utf8);
	check_json(render_startup(&v, &code), utf8);
	text = render_metrics(&v);
	FUZZ_ASSERT(text);
	fuzz_assert_metrics(text, strlen(text));
	free(text);

	/* A history of the checks' messages. */
	history_init(&hist, 3);
	for (size_t i = 0; i < v.n_checks; i++)
		history_add(&hist, (int64_t)i * 1000, v.checks[i].last_result,
			    v.checks[i].duration_ms, v.checks[i].message,
			    v.checks[i].status, v.checks[i].last_result);
	for (int redact = 0; redact < 2; redact++)
		check_json(render_history(v.n_checks ? v.checks[0].name : "x",
					  &hist, redact, &code), utf8);
	history_clear(&hist);
	render_view_clear(&v);
	return 0;
}
