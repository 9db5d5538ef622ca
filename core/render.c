/* render.c — JSON bodies for every endpoint (json-c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "clock.h"
#include "render.h"

#ifndef HEALTHD_VERSION
#define HEALTHD_VERSION "0.0.0"
#endif

static const char *service_name(const struct health_view *v)
{
	return v->service ? v->service : "healthd";
}

static bool excluded(const struct render_exclude *ex, const char *name)
{
	for (size_t i = 0; ex && i < ex->n; i++)
		if (strcmp(ex->names[i], name) == 0)
			return true;
	return false;
}

static char *to_text(json_object *o)
{
	char *s = strdup(json_object_to_json_string_ext(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return s;
}

/* A double with one decimal, printed as written ("1.2", not 1.2000000002). */
static json_object *decimal(double v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.1f", v);
	return json_object_new_double_s(v, buf);
}

/* Of `n` results, the share that passed (or warned), with three
 * decimals; null with no results. */
static json_object *ratio(size_t passing, size_t n)
{
	char buf[32];
	double r;

	if (!n)
		return NULL;
	r = (double)passing / (double)n;
	snprintf(buf, sizeof(buf), "%.3f", r);
	return json_object_new_double_s(r, buf);
}

static json_object *timestamp(int64_t wall_ms)
{
	char buf[32];

	if (!wall_ms)
		return NULL; /* json null */
	clock_format(wall_ms, buf, sizeof(buf));
	return json_object_new_string(buf);
}

/* Keys are literals or names in the view, which outlives the tree, and
 * each is added once: json-c need neither copy nor look them up. */
static void add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add_ex(o, key, v,
				  JSON_C_OBJECT_ADD_KEY_IS_NEW |
					  JSON_C_OBJECT_KEY_IS_CONSTANT);
}

static int raw_text(json_object *o, struct printbuf *pb, int level, int flags)
{
	const char *text = json_object_get_userdata(o);

	(void)level;
	(void)flags;
	return printbuf_memappend(pb, text, (int)strlen(text));
}

/* A node that prints JSON text as it is: details were serialized by
 * json-c when recorded, and the view's copy outlives the tree. */
static json_object *raw(const char *json)
{
	json_object *o = json_object_new_object();

	json_object_set_serializer(o, raw_text, (void *)json, NULL);
	return o;
}

/* Whether a check takes part in the verdict and readiness. */
static bool counted(const struct render_exclude *ex, const struct check_view *c)
{
	return !excluded(ex, c->name) &&
	       !(c->warming && (c->status == STATUS_PENDING ||
				c->status == STATUS_BLOCKED));
}

enum verdict render_verdict(const struct health_view *v,
			    const struct render_exclude *ex)
{
	enum verdict verdict = VERDICT_HEALTHY;

	for (size_t i = 0; i < v->n_checks; i++)
		if (counted(ex, &v->checks[i]))
			verdict = state_verdict_step(verdict, v->checks[i].critical,
						     v->checks[i].status);
	return verdict;
}

/* Names of the critical checks that keep the service unready: the root
 * causes (blocked false), or those blocked by a dependency (true). */
static json_object *blocking_checks(const struct health_view *v,
				    const struct render_exclude *ex,
				    bool blocked)
{
	json_object *list = json_object_new_array();

	for (size_t i = 0; i < v->n_checks; i++) {
		const struct check_view *c = &v->checks[i];
		if (counted(ex, c) && state_blocks_ready(c->critical, c->status) &&
		    (c->status == STATUS_BLOCKED) == blocked)
			json_object_array_add(list, json_object_new_string(c->name));
	}
	return list;
}

bool render_ready_state(const struct health_view *v,
			const struct render_exclude *ex)
{
	if (!v->started || v->draining || v->maintenance)
		return false;
	for (size_t i = 0; i < v->n_checks; i++)
		if (counted(ex, &v->checks[i]) &&
		    state_blocks_ready(v->checks[i].critical, v->checks[i].status))
			return false;
	return true;
}

static json_object *check_object(const struct check_view *c, bool redact)
{
	json_object *o = json_object_new_object();

	add(o, "plugin", json_object_new_string(c->plugin));
	add(o, "isolation", c->isolation ? json_object_new_string(c->isolation) : NULL);
	add(o, "critical", json_object_new_boolean(c->critical));
	add(o, "status", json_object_new_string(state_status_name(c->status)));
	add(o, "last_result",
	    c->last_result == STATUS_PENDING
		    ? NULL
		    : json_object_new_string(state_status_name(c->last_result)));
	if (!redact)
		add(o, "message", render_has_message(c)
					  ? json_object_new_string(c->message)
					  : NULL);
	add(o, "duration_ms", c->last_run ? decimal(c->duration_ms) : NULL);
	add(o, "last_run", timestamp(c->last_run));
	add(o, "last_success", timestamp(c->last_success));
	add(o, "last_failure", timestamp(c->last_failure));
	add(o, "consecutive_failures",
	    json_object_new_int(c->consecutive_failures));
	add(o, "consecutive_successes",
	    json_object_new_int(c->consecutive_successes));
	add(o, "interval_ms", json_object_new_int64(c->interval_ms));
	add(o, "timeout_ms", json_object_new_int64(c->timeout_ms));
	add(o, "last_change", timestamp(c->history.last_change));
	add(o, "transitions", json_object_new_uint64(c->history.transitions));
	add(o, "pass_ratio", ratio(c->history.passing, c->history.window));
	if (!redact)
		add(o, "details", c->details ? raw(c->details)
					      : json_object_new_object());
	return o;
}

static void native_member(json_object *parent, const struct check_view *c,
			  bool redact)
{
	add(parent, c->name, check_object(c, redact));
}

/*
 * The "checks" object of a comprehensive body, printed one check at a
 * time when the body is serialized: each check's tree is built, printed
 * and freed before the next, so a render touches the memory of one check
 * and the text, not a tree of every check (with 1,000 checks a render
 * took 8.5 ms, 2.5 ms so).
 */
struct each_check {
	const struct health_view *v;
	const struct render_exclude *ex;
	bool redact;
	void (*member)(json_object *parent, const struct check_view *c,
		       bool redact);
};

static int each_check_text(json_object *o, struct printbuf *pb, int level,
			   int flags)
{
	const struct each_check *e = json_object_get_userdata(o);
	/* One holder for every check, so its text buffer is reused. */
	json_object *one = json_object_new_object();
	bool first = true;

	(void)level;
	if (!one)
		return -1;
	printbuf_memappend(pb, "{", 1);
	for (size_t i = 0; i < e->v->n_checks; i++) {
		const struct check_view *c = &e->v->checks[i];
		if (excluded(e->ex, c->name))
			continue;
		size_t len = 0;
		e->member(one, c, e->redact);
		const char *text =
			json_object_to_json_string_length(one, flags, &len);
		if (!text || len < 2) { /* out of memory */
			json_object_put(one);
			return -1;
		}
		if (!first)
			printbuf_memappend(pb, ",", 1);
		/* {"NAME":{...}} without its braces */
		printbuf_memappend(pb, text + 1, (int)len - 2);
		json_object_object_foreach(one, key, val) {
			(void)val;
			json_object_object_del(one, key);
			break;
		}
		first = false;
	}
	json_object_put(one);
	return printbuf_memappend(pb, "}", 1);
}

static json_object *each_check(const struct health_view *v,
			       const struct render_exclude *ex, bool redact,
			       void (*member)(json_object *, const struct check_view *,
					      bool))
{
	struct each_check *e = malloc(sizeof(*e));
	json_object *o = json_object_new_object();

	if (!e)
		return o;
	*e = (struct each_check){v, ex, redact, member};
	json_object_set_serializer(o, each_check_text, e,
				   json_object_free_userdata);
	return o;
}

/* null, or why and since when `healthd ctl drain` holds /ready at 503. */
static json_object *maintenance_object(const struct health_view *v)
{
	json_object *o;

	if (!v->maintenance)
		return NULL;
	o = json_object_new_object();
	add(o, "reason", json_object_new_string(
				 v->maintenance_reason ? v->maintenance_reason : ""));
	add(o, "since", timestamp(v->maintenance_since));
	add(o, "until", timestamp(v->maintenance_until));
	return o;
}

static json_object *native_body(const struct health_view *v,
				const struct render_exclude *ex, bool redact,
				enum verdict verdict)
{
	json_object *o = json_object_new_object();
	json_object *cfg = json_object_new_object();
	char uptime[32];

	add(o, "status", json_object_new_string(state_verdict_name(verdict)));
	add(o, "started", json_object_new_boolean(v->started));
	add(o, "ready", json_object_new_boolean(render_ready_state(v, ex)));
	add(o, "draining", json_object_new_boolean(v->draining));
	add(o, "maintenance", maintenance_object(v));
	add(o, "version", json_object_new_string(HEALTHD_VERSION));
	snprintf(uptime, sizeof(uptime), "%.1f", v->uptime_s);
	add(o, "uptime_s", json_object_new_double_s(v->uptime_s, uptime));
	add(cfg, "generation", json_object_new_uint64(v->generation));
	add(cfg, "loaded_at", timestamp(v->loaded_at));
	add(cfg, "last_reload",
	    json_object_new_string(v->last_reload_ok ? "ok" : "error"));
	/* The error names files and option keys: a detail, so redacted too. */
	add(cfg, "last_reload_error",
	    v->last_reload_error && !redact
		    ? json_object_new_string(v->last_reload_error)
		    : NULL);
	add(cfg, "restart_required", json_object_new_boolean(v->restart_required));
	add(o, "config", cfg);
	add(o, "checks", each_check(v, ex, redact, native_member));
	return o;
}

/* The IETF draft's pass / warn / fail for a verdict. */
static const char *ietf_verdict(enum verdict v)
{
	static const enum check_status as_status[] = {
		[VERDICT_HEALTHY] = STATUS_PASS,
		[VERDICT_DEGRADED] = STATUS_WARN,
		[VERDICT_UNHEALTHY] = STATUS_FAIL,
	};

	return state_status_name(as_status[v]);
}

/* One check's: what it does to the verdict, so the two agree (a pending
 * informational check, or one a reload added that has no result yet,
 * changes nothing: pass). */
static const char *ietf_status(const struct check_view *c)
{
	if (!counted(NULL, c))
		return ietf_verdict(VERDICT_HEALTHY);
	return ietf_verdict(state_verdict_step(VERDICT_HEALTHY, c->critical,
					       c->status));
}

/* The IETF body's member for one check: "NAME:status": [{...}]. */
static void ietf_member(json_object *parent, const struct check_view *c,
			bool redact)
{
	json_object *item = json_object_new_object();
	json_object *arr = json_object_new_array();
	char key[300];

	add(item, "componentId", json_object_new_string(c->name));
	add(item, "componentType", json_object_new_string(c->plugin));
	add(item, "status", json_object_new_string(ietf_status(c)));
	if (c->last_run) {
		add(item, "observedValue", decimal(c->duration_ms));
		add(item, "observedUnit", json_object_new_string("ms"));
		add(item, "time", timestamp(c->last_run));
	}
	if (!redact && c->status != STATUS_PASS)
		add(item, "output", json_object_new_string(
					    render_has_message(c) ? c->message
								  : "pending"));
	json_object_array_add(arr, item);
	snprintf(key, sizeof(key), "%s:status", c->name);
	json_object_object_add(parent, key, arr); /* a copy of key */
}

static json_object *ietf_body(const struct health_view *v,
			      const struct render_exclude *ex, bool redact,
			      enum verdict verdict)
{
	json_object *o = json_object_new_object();

	add(o, "status", json_object_new_string(ietf_verdict(verdict)));
	add(o, "version", json_object_new_string("1"));
	add(o, "releaseId", json_object_new_string(HEALTHD_VERSION));
	add(o, "serviceId", json_object_new_string(service_name(v)));
	add(o, "description", json_object_new_string("healthd verdict"));
	add(o, "checks", each_check(v, ex, redact, ietf_member));
	return o;
}

char *render_health(const struct health_view *v, const struct render_exclude *ex,
		    bool redact, enum render_format format, int *code)
{
	enum verdict verdict = render_verdict(v, ex);

	*code = verdict == VERDICT_UNHEALTHY ? 503 : 200;
	return to_text(format == RENDER_HEALTH_JSON
			       ? ietf_body(v, ex, redact, verdict)
			       : native_body(v, ex, redact, verdict));
}

char *render_ready(const struct health_view *v, const struct render_exclude *ex,
		   int *code)
{
	json_object *o = json_object_new_object();
	if (render_ready_state(v, ex)) {
		*code = 200;
		add(o, "status", json_object_new_string("ready"));
		return to_text(o);
	}
	*code = 503;
	add(o, "status", json_object_new_string("not ready"));
	if (v->draining) {
		add(o, "reason", json_object_new_string("draining"));
	} else if (v->maintenance) {
		char *why = NULL;

		if (v->maintenance_reason && *v->maintenance_reason &&
		    asprintf(&why, "maintenance: %s", v->maintenance_reason) < 0)
			why = NULL;
		add(o, "reason", json_object_new_string(why ? why : "maintenance"));
		free(why);
	} else if (!v->started) {
		add(o, "reason", json_object_new_string("starting"));
	} else {
		add(o, "reason", json_object_new_string("critical checks failing"));
	}
	add(o, "draining", json_object_new_boolean(v->draining));
	add(o, "maintenance", json_object_new_boolean(v->maintenance));
	add(o, "failing", blocking_checks(v, ex, false));
	add(o, "blocked", blocking_checks(v, ex, true));
	return to_text(o);
}

char *render_startup(const struct health_view *v, int *code)
{
	json_object *o = json_object_new_object();
	json_object *pending = json_object_new_array();

	*code = v->started ? 200 : 503;
	add(o, "status", json_object_new_string(v->started ? "started" : "starting"));
	for (size_t i = 0; i < v->n_checks; i++)
		if (!v->started && v->checks[i].status == STATUS_PENDING)
			json_object_array_add(
				pending, json_object_new_string(v->checks[i].name));
	add(o, "pending", pending);
	return to_text(o);
}

char *render_live(bool alive, int *code)
{
	json_object *o = json_object_new_object();

	*code = alive ? 200 : 503;
	add(o, "status", json_object_new_string(alive ? "alive" : "stalled"));
	if (!alive)
		add(o, "reason", json_object_new_string(
					 "the check scheduler has made no progress"));
	return to_text(o);
}

char *render_check(const struct check_view *c, bool redact, int *code)
{
	json_object *o = check_object(c, redact);

	*code = c->status == STATUS_PASS || c->status == STATUS_WARN ? 200 : 503;
	add(o, "name", json_object_new_string(c->name));
	return to_text(o);
}

char *render_error(int code, const char *message)
{
	json_object *o = json_object_new_object();

	add(o, "error", json_object_new_string(message));
	add(o, "code", json_object_new_int(code));
	return to_text(o);
}

char *render_history(const char *name, const struct history *h, bool redact,
		     int *code)
{
	json_object *o = json_object_new_object();
	json_object *results = json_object_new_array();
	json_object *changes = json_object_new_array();

	*code = 200;
	add(o, "name", json_object_new_string(name));
	add(o, "size", json_object_new_uint64(h->size));
	add(o, "transitions", json_object_new_uint64(h->transitions));
	add(o, "last_change", timestamp(h->last_change));
	add(o, "pass_ratio", ratio(h->passing, h->results.n));
	for (size_t i = 0; i < h->results.n; i++) {
		const struct history_result *r = history_result_at(h, i);
		json_object *e = json_object_new_object();

		add(e, "time", timestamp(r->at));
		add(e, "status", json_object_new_string(
					 state_status_name((enum check_status)r->status)));
		add(e, "duration_ms", decimal(r->duration_ms));
		if (!redact)
			add(e, "message", json_object_new_string(
						  history_text(r->message)));
		json_object_array_add(results, e);
	}
	for (size_t i = 0; i < h->changes.n; i++) {
		const struct history_change *c = history_change_at(h, i);
		json_object *e = json_object_new_object();

		add(e, "time", timestamp(c->at));
		add(e, "from", json_object_new_string(
				       state_status_name((enum check_status)c->from)));
		add(e, "to", json_object_new_string(
				     state_status_name((enum check_status)c->to)));
		if (!redact)
			add(e, "message", json_object_new_string(
						  history_text(c->message)));
		json_object_array_add(changes, e);
	}
	add(o, "results", results);
	add(o, "changes", changes);
	return to_text(o);
}

void render_view_clear(struct health_view *v)
{
	for (size_t i = 0; i < v->n_checks; i++) {
		free(v->checks[i].name);
		free(v->checks[i].plugin);
		free(v->checks[i].message);
		free(v->checks[i].details);
	}
	free(v->checks);
	free(v->last_reload_error);
	free(v->service);
	free(v->maintenance_reason);
	memset(v, 0, sizeof(*v));
}

/* --- /metrics ----------------------------------------------------------------- */

/* The length of the well-formed UTF-8 character `s` starts with, or 0. */
static size_t utf8_char(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
		 : (s[0] & 0xF0) == 0xE0 ? 3 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	/* No overlong form, surrogate or value past U+10FFFF. */
	if ((n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) ||
			(s[0] == 0xED && s[1] >= 0xA0))) ||
	    (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) ||
			(s[0] == 0xF4 && s[1] >= 0x90))))
		return 0;
	return n;
}

/* Label values escape backslash, quote and newline, and are UTF-8 (the
 * format says so): a byte that is not becomes '?', and a cut falls
 * between characters. */
static void label_escape(char *out, size_t len, const char *in)
{
	const unsigned char *u = (const unsigned char *)in;
	size_t o = 0, n;

	for (; *u; u += n ? n : 1) {
		n = utf8_char(u);
		if (o + (n > 2 ? n : 2) >= len)
			break;
		if (*u == '\\' || *u == '"' || *u == '\n') {
			out[o++] = '\\';
			out[o++] = *u == '\n' ? 'n' : (char)*u;
		} else if (!n) {
			out[o++] = '?';
		} else {
			memcpy(out + o, u, n);
			o += n;
		}
	}
	out[o] = '\0';
}

static double duration_s(const struct check_view *c)
{
	return c->duration_ms / 1000.0;
}

static double runs(const struct check_view *c)
{
	return (double)c->runs;
}

static double failures(const struct check_view *c)
{
	return (double)c->failures;
}

static double transitions(const struct check_view *c)
{
	return (double)c->history.transitions;
}

/* Run durations as a histogram: counts since the check was created. */
static void durations(FILE *f, const struct health_view *v)
{
	static const char m[] = "healthd_check_duration_seconds";

	fprintf(f, "# HELP %s Run durations, timeouts included.\n"
		   "# TYPE %s histogram\n", m, m);
	for (size_t i = 0; i < v->n_checks; i++) {
		const struct duration_histogram *d = &v->checks[i].history.durations;
		char name[512];
		uint64_t cumulative = 0;

		label_escape(name, sizeof(name), v->checks[i].name);
		for (size_t b = 0; b < HISTORY_BUCKETS; b++) {
			cumulative += d->bucket[b];
			fprintf(f, "%s_bucket{check=\"%s\",le=\"%g\"} %llu\n", m,
				name, history_bucket_le[b],
				(unsigned long long)cumulative);
		}
		fprintf(f, "%s_bucket{check=\"%s\",le=\"+Inf\"} %llu\n"
			   "%s_sum{check=\"%s\"} %.15g\n"
			   "%s_count{check=\"%s\"} %llu\n",
			m, name, (unsigned long long)d->count, m, name, d->sum_s, m,
			name, (unsigned long long)d->count);
	}
}

/* One metric with a sample per check, labelled by its name. */
static void per_check(FILE *f, const struct health_view *v, const char *metric,
		      const char *help, const char *type,
		      double (*value)(const struct check_view *))
{
	char name[512];

	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", metric, help, metric, type);
	for (size_t i = 0; i < v->n_checks; i++) {
		label_escape(name, sizeof(name), v->checks[i].name);
		fprintf(f, "%s{check=\"%s\"} %.15g\n", metric, name,
			value(&v->checks[i]));
	}
}

char *render_metrics(const struct health_view *v)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	enum verdict verdict = render_verdict(v, NULL);
	char service[2 * CONFIG_SERVICE_MAX + 1];

	if (!f)
		return NULL;
	fprintf(f, "# HELP healthd_up Always 1 while healthd answers.\n"
		   "# TYPE healthd_up gauge\nhealthd_up 1\n");
	label_escape(service, sizeof(service), service_name(v));
	fprintf(f, "# HELP healthd_info Build information and the service's name.\n"
		   "# TYPE healthd_info gauge\n"
		   "healthd_info{version=\"%s\",service=\"%s\"} 1\n",
		HEALTHD_VERSION, service);
	fprintf(f, "# HELP healthd_uptime_seconds Seconds since healthd started.\n"
		   "# TYPE healthd_uptime_seconds gauge\n"
		   "healthd_uptime_seconds %.1f\n", v->uptime_s);
	fprintf(f, "# HELP healthd_started 1 once every check has a first result.\n"
		   "# TYPE healthd_started gauge\nhealthd_started %d\n",
		v->started);
	fprintf(f, "# HELP healthd_ready 1 when /ready answers 200.\n"
		   "# TYPE healthd_ready gauge\nhealthd_ready %d\n",
		render_ready_state(v, NULL));
	fprintf(f, "# HELP healthd_draining 1 after SIGTERM, until exit.\n"
		   "# TYPE healthd_draining gauge\nhealthd_draining %d\n",
		v->draining);
	fprintf(f, "# HELP healthd_maintenance 1 while drained by healthd ctl drain (/ready answers 503).\n"
		   "# TYPE healthd_maintenance gauge\nhealthd_maintenance %d\n",
		v->maintenance);
	fprintf(f, "# HELP healthd_verdict 1 for the current verdict.\n"
		   "# TYPE healthd_verdict gauge\n");
	for (int i = VERDICT_HEALTHY; i <= VERDICT_UNHEALTHY; i++)
		fprintf(f, "healthd_verdict{verdict=\"%s\"} %d\n",
			state_verdict_name((enum verdict)i), verdict == (enum verdict)i);
	fprintf(f, "# HELP healthd_config_generation Config generation in use.\n"
		   "# TYPE healthd_config_generation gauge\n"
		   "healthd_config_generation %llu\n",
		(unsigned long long)v->generation);
	fprintf(f, "# HELP healthd_config_last_reload_success 0 when the last reload failed (the previous config keeps running).\n"
		   "# TYPE healthd_config_last_reload_success gauge\n"
		   "healthd_config_last_reload_success %d\n",
		v->last_reload_ok);
	fprintf(f, "# HELP healthd_check_status 1 for each check's current status.\n"
		   "# TYPE healthd_check_status gauge\n");
	for (size_t i = 0; i < v->n_checks; i++) {
		const struct check_view *c = &v->checks[i];
		char name[512], plugin[512];
		label_escape(name, sizeof(name), c->name);
		label_escape(plugin, sizeof(plugin), c->plugin);
		for (int s = STATUS_PENDING; s <= STATUS_BLOCKED; s++)
			fprintf(f, "healthd_check_status{check=\"%s\",plugin=\"%s\",critical=\"%s\",status=\"%s\"} %d\n",
				name, plugin, c->critical ? "true" : "false",
				state_status_name((enum check_status)s),
				c->status == (enum check_status)s);
	}
	per_check(f, v, "healthd_check_last_duration_seconds",
		  "Duration of the latest run.", "gauge", duration_s);
	durations(f, v);
	per_check(f, v, "healthd_check_runs_total",
		  "Runs since the check was created.", "counter", runs);
	per_check(f, v, "healthd_check_failures_total",
		  "Failed runs, timeouts included.", "counter", failures);
	per_check(f, v, "healthd_check_transitions_total",
		  "Status changes (after thresholds), the first result's included.",
		  "counter", transitions);
	fprintf(f, "# HELP healthd_check_last_change_timestamp_seconds When the status last changed (Unix time).\n"
		   "# TYPE healthd_check_last_change_timestamp_seconds gauge\n");
	for (size_t i = 0; i < v->n_checks; i++) {
		const struct check_view *c = &v->checks[i];
		char name[512];

		if (!c->history.last_change)
			continue; /* no sample rather than 1970 */
		label_escape(name, sizeof(name), c->name);
		fprintf(f, "healthd_check_last_change_timestamp_seconds{check=\"%s\"} %.3f\n",
			name, (double)c->history.last_change / 1000.0);
	}
	fprintf(f, "# HELP healthd_plugin_hosts Plugin host processes running.\n"
		   "# TYPE healthd_plugin_hosts gauge\n"
		   "healthd_plugin_hosts %d\n", v->plugin_hosts);
	fprintf(f, "# HELP healthd_plugin_host_restarts_total Plugin hosts replaced, by why: crash, timeout (a run hung), memory (isolation_max_rss), protocol.\n"
		   "# TYPE healthd_plugin_host_restarts_total counter\n");
	for (size_t i = 0; i < v->n_restarts; i++) {
		char plugin[512];

		label_escape(plugin, sizeof(plugin), v->restarts[i].plugin);
		fprintf(f, "healthd_plugin_host_restarts_total{plugin=\"%s\",reason=\"%s\"} %llu\n",
			plugin, v->restarts[i].reason,
			(unsigned long long)v->restarts[i].count);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}
