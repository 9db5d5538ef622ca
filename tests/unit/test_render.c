/* test_render.c — the JSON bodies: fields, codes, redaction, exclusion. */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "render.h"
#include "unit.h"

static struct check_view checks[2];
static struct health_view view;

static void make_view(enum check_status db, enum check_status extra)
{
	memset(checks, 0, sizeof(checks));
	checks[0] = (struct check_view){
		.name = "db", .plugin = "postgres", .critical = true,
		.status = db, .last_result = db, .message = "SELECT 1 in 1.2 ms",
		.details = "{\"server_version\":\"15.5\"}", .duration_ms = 1.23,
		.last_run = 1764158400000, .last_success = 1764158400000,
		.consecutive_successes = 12, .interval_ms = 5000, .timeout_ms = 2000};
	checks[1] = (struct check_view){
		.name = "extra", .plugin = "http", .critical = false,
		.status = extra, .last_result = extra, .message = "status 500",
		.interval_ms = 10000, .timeout_ms = 3000};
	view = (struct health_view){.started = true, .uptime_s = 12.34,
				    .generation = 3, .loaded_at = 1764158400000,
				    .last_reload_ok = true, .checks = checks,
				    .n_checks = 2};
}

static json_object *parse(char *text)
{
	json_object *o = json_tokener_parse(text);
	free(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	return o;
}

static const char *str(json_object *o, const char *path)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(o, k, &o))
			return NULL;
	return o ? json_object_get_string(o) : "null";
}

static void test_comprehensive(void)
{
	int code;

	make_view(STATUS_PASS, STATUS_FAIL);
	json_object *o = parse(render_health(&view, NULL, false, RENDER_NATIVE, &code));
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_STRING_EQUAL(str(o, "status"), "degraded");
	CU_ASSERT_STRING_EQUAL(str(o, "ready"), "true");
	CU_ASSERT_STRING_EQUAL(str(o, "uptime_s"), "12.3");
	CU_ASSERT_STRING_EQUAL(str(o, "config.generation"), "3");
	CU_ASSERT_STRING_EQUAL(str(o, "config.loaded_at"), "2025-11-26T12:00:00.000Z");
	CU_ASSERT_STRING_EQUAL(str(o, "config.last_reload"), "ok");
	CU_ASSERT_STRING_EQUAL(str(o, "config.last_reload_error"), "null");
	CU_ASSERT_STRING_EQUAL(str(o, "checks.db.message"), "SELECT 1 in 1.2 ms");
	CU_ASSERT_STRING_EQUAL(str(o, "checks.db.duration_ms"), "1.2");
	CU_ASSERT_STRING_EQUAL(str(o, "checks.db.last_failure"), "null");
	CU_ASSERT_STRING_EQUAL(str(o, "checks.db.details.server_version"), "15.5");
	CU_ASSERT_STRING_EQUAL(str(o, "checks.extra.status"), "fail");
	CU_ASSERT_STRING_EQUAL(str(o, "checks.extra.critical"), "false");
	json_object_put(o);
}

static void test_unhealthy_and_exclude(void)
{
	int code;
	const char *names[] = {"db"};
	struct render_exclude ex = {names, 1};

	make_view(STATUS_FAIL, STATUS_PASS);
	json_object *o = parse(render_health(&view, NULL, false, RENDER_NATIVE, &code));
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_STRING_EQUAL(str(o, "status"), "unhealthy");
	json_object_put(o);
	o = parse(render_health(&view, &ex, false, RENDER_NATIVE, &code));
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_PTR_NULL(str(o, "checks.db"));
	json_object_put(o);
	o = parse(render_ready(&view, NULL, &code));
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_STRING_EQUAL(str(o, "reason"), "critical checks failing");
	CU_ASSERT_STRING_EQUAL(json_object_get_string(json_object_array_get_idx(
				       json_object_object_get(o, "failing"), 0)),
			       "db");
	json_object_put(o);
	o = parse(render_ready(&view, &ex, &code));
	CU_ASSERT_EQUAL(code, 200);
	json_object_put(o);
}

static void test_pending_and_draining(void)
{
	int code;

	make_view(STATUS_PENDING, STATUS_PENDING);
	view.started = false;
	json_object *o = parse(render_startup(&view, &code));
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_EQUAL(json_object_array_length(json_object_object_get(o, "pending")), 2);
	json_object_put(o);
	o = parse(render_ready(&view, NULL, &code));
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_STRING_EQUAL(str(o, "reason"), "starting");
	json_object_put(o);
	o = parse(render_check(&checks[0], false, &code));
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_STRING_EQUAL(str(o, "last_result"), "null");
	json_object_put(o);

	make_view(STATUS_PASS, STATUS_PASS);
	view.draining = true;
	o = parse(render_ready(&view, NULL, &code));
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_STRING_EQUAL(str(o, "reason"), "draining");
	json_object_put(o);
	o = parse(render_health(&view, NULL, false, RENDER_NATIVE, &code));
	CU_ASSERT_EQUAL(code, 200); /* the verdict ignores draining */
	CU_ASSERT_STRING_EQUAL(str(o, "ready"), "false");
	json_object_put(o);
}

/* healthd ctl drain: /ready is 503 with the reason, the verdict stays. */
static void test_maintenance(void)
{
	int code;

	make_view(STATUS_PASS, STATUS_PASS);
	view.maintenance = true;
	view.maintenance_reason = "heap dump";
	view.maintenance_since = 1764158400000;
	json_object *o = parse(render_ready(&view, NULL, &code));
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_STRING_EQUAL(str(o, "reason"), "maintenance: heap dump");
	CU_ASSERT_STRING_EQUAL(str(o, "maintenance"), "true");
	json_object_put(o);
	o = parse(render_health(&view, NULL, false, RENDER_NATIVE, &code));
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_STRING_EQUAL(str(o, "ready"), "false");
	CU_ASSERT_STRING_EQUAL(str(o, "maintenance.reason"), "heap dump");
	CU_ASSERT_STRING_EQUAL(str(o, "maintenance.until"), "null");
	json_object_put(o);
	char *m = render_metrics(&view);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "\nhealthd_maintenance 1\n"));
	free(m);

	view.maintenance_reason = "";
	o = parse(render_ready(&view, NULL, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "reason"), "maintenance");
	json_object_put(o);
	view.draining = true; /* the shutdown drain says so first */
	o = parse(render_ready(&view, NULL, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "reason"), "draining");
	json_object_put(o);

	make_view(STATUS_PASS, STATUS_PASS);
	o = parse(render_health(&view, NULL, false, RENDER_NATIVE, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "maintenance"), "null");
	json_object_put(o);
}

static void test_warming_checks_do_not_count(void)
{
	int code;

	make_view(STATUS_PASS, STATUS_PASS);
	checks[1].critical = true;
	checks[1].status = checks[1].last_result = STATUS_PENDING;
	CU_ASSERT_FALSE(render_ready_state(&view, NULL));
	checks[1].warming = true;
	CU_ASSERT_TRUE(render_ready_state(&view, NULL));
	CU_ASSERT_EQUAL(render_verdict(&view, NULL), VERDICT_HEALTHY);
	json_object *o = parse(render_health(&view, NULL, false, RENDER_NATIVE, &code));
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_STRING_EQUAL(str(o, "checks.extra.status"), "pending");
	json_object_put(o);
	/* Once it has a result it counts like any other. */
	checks[1].status = STATUS_FAIL;
	CU_ASSERT_FALSE(render_ready_state(&view, NULL));
	CU_ASSERT_EQUAL(render_verdict(&view, NULL), VERDICT_UNHEALTHY);
}

/* depends_on: /ready names root causes apart from the checks they block;
 * a blocked check shows why, counts as failing, and as little as a
 * warming one when it waits for one. */
static void test_blocked(void)
{
	int code;

	make_view(STATUS_FAIL, STATUS_PASS);
	checks[1].critical = true;
	checks[1].status = STATUS_BLOCKED;
	checks[1].last_result = STATUS_PENDING; /* never ran */
	checks[1].message = "blocked: db is fail";
	json_object *o = parse(render_ready(&view, NULL, &code));
	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_STRING_EQUAL(str(o, "failing"), "[ \"db\" ]");
	CU_ASSERT_STRING_EQUAL(str(o, "blocked"), "[ \"extra\" ]");
	json_object_put(o);
	o = parse(render_health(&view, NULL, false, RENDER_NATIVE, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "checks.extra.status"), "blocked");
	CU_ASSERT_STRING_EQUAL(str(o, "checks.extra.message"), "blocked: db is fail");
	CU_ASSERT_STRING_EQUAL(str(o, "checks.extra.last_result"), "null");
	json_object_put(o);
	o = parse(render_check(&checks[1], false, &code));
	CU_ASSERT_EQUAL(code, 503);
	json_object_put(o);

	/* Informational and blocked: degraded. */
	checks[0].status = STATUS_PASS;
	checks[1].critical = false;
	CU_ASSERT_TRUE(render_ready_state(&view, NULL));
	CU_ASSERT_EQUAL(render_verdict(&view, NULL), VERDICT_DEGRADED);
	o = parse(render_health(&view, NULL, false, RENDER_HEALTH_JSON, &code));
	CU_ASSERT_STRING_EQUAL(
		json_object_get_string(json_object_object_get(json_object_array_get_idx(
			json_object_object_get(json_object_object_get(o, "checks"),
					       "extra:status"), 0), "output")),
		"blocked: db is fail");
	json_object_put(o);
	char *metrics = render_metrics(&view);
	CU_ASSERT_PTR_NOT_NULL(strstr(metrics, "check=\"extra\",plugin=\"http\","
					       "critical=\"false\",status=\"blocked\"} 1"));
	free(metrics);

	/* Blocked by a check a reload added that has no result yet. */
	checks[1].critical = true;
	checks[1].warming = true;
	CU_ASSERT_TRUE(render_ready_state(&view, NULL));
	checks[1].warming = false;
	CU_ASSERT_FALSE(render_ready_state(&view, NULL));
}

static void test_redacted(void)
{
	int code;

	make_view(STATUS_PASS, STATUS_FAIL);
	char *text = render_health(&view, NULL, true, RENDER_NATIVE, &code);
	CU_ASSERT_PTR_NULL(strstr(text, "SELECT 1"));
	CU_ASSERT_PTR_NULL(strstr(text, "15.5"));
	CU_ASSERT_PTR_NULL(strstr(text, "status 500"));
	free(text);
	text = render_health(&view, NULL, true, RENDER_HEALTH_JSON, &code);
	CU_ASSERT_PTR_NULL(strstr(text, "status 500"));
	free(text);
	text = render_check(&checks[0], true, &code);
	CU_ASSERT_PTR_NULL(strstr(text, "SELECT 1"));
	free(text);
}

static void test_health_json(void)
{
	int code;

	make_view(STATUS_PASS, STATUS_FAIL);
	json_object *o = parse(render_health(&view, NULL, false, RENDER_HEALTH_JSON, &code));
	CU_ASSERT_EQUAL(code, 200);
	CU_ASSERT_STRING_EQUAL(str(o, "status"), "warn");
	json_object *arr = json_object_object_get(json_object_object_get(o, "checks"),
						  "extra:status");
	CU_ASSERT_PTR_NOT_NULL_FATAL(arr);
	json_object *item = json_object_array_get_idx(arr, 0);
	CU_ASSERT_STRING_EQUAL(str(item, "status"), "warn");
	CU_ASSERT_STRING_EQUAL(str(item, "output"), "status 500");
	CU_ASSERT_STRING_EQUAL(str(o, "serviceId"), "healthd"); /* the default */
	json_object_put(o);

	/* A pending informational check leaves the verdict alone, and so
	 * its own status: pass, with "pending" said. */
	make_view(STATUS_PASS, STATUS_PENDING);
	o = parse(render_health(&view, NULL, false, RENDER_HEALTH_JSON, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "status"), "pass");
	item = json_object_array_get_idx(
		json_object_object_get(json_object_object_get(o, "checks"),
				       "extra:status"), 0);
	CU_ASSERT_STRING_EQUAL(str(item, "status"), "pass");
	CU_ASSERT_STRING_EQUAL(str(item, "output"), "pending");
	json_object_put(o);
	/* A pending critical one keeps the service unready: fail. */
	checks[1].critical = true;
	o = parse(render_health(&view, NULL, false, RENDER_HEALTH_JSON, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "status"), "fail");
	item = json_object_array_get_idx(
		json_object_object_get(json_object_object_get(o, "checks"),
				       "extra:status"), 0);
	CU_ASSERT_STRING_EQUAL(str(item, "status"), "fail");
	json_object_put(o);

	view.service = "payments \"api\"";
	o = parse(render_health(&view, NULL, false, RENDER_HEALTH_JSON, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "serviceId"), "payments \"api\"");
	json_object_put(o);
	char *text = render_metrics(&view);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_info{version=\"" HEALTHD_VERSION
					    "\",service=\"payments \\\"api\\\"\"} 1\n"));
	free(text);
	view.service = NULL;
}

static void test_live_and_error(void)
{
	int code;
	json_object *o = parse(render_live(false, &code));

	CU_ASSERT_EQUAL(code, 503);
	CU_ASSERT_STRING_EQUAL(str(o, "status"), "stalled");
	json_object_put(o);
	o = parse(render_live(true, &code));
	CU_ASSERT_EQUAL(code, 200);
	json_object_put(o);
	o = parse(render_error(404, "not \"found\""));
	CU_ASSERT_STRING_EQUAL(str(o, "error"), "not \"found\"");
	CU_ASSERT_STRING_EQUAL(str(o, "code"), "404");
	json_object_put(o);
}

static void test_metrics(void)
{
	make_view(STATUS_FAIL, STATUS_PASS);
	checks[0].runs = 1234567;
	checks[0].failures = 3;
	checks[1].name = "we\"ird";
	char *text = render_metrics(&view);

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_ready 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_verdict{verdict=\"unhealthy\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_status{check=\"db\",plugin=\"postgres\",critical=\"true\",status=\"fail\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_runs_total{check=\"db\"} 1234567\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_failures_total{check=\"db\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_last_duration_seconds{check=\"db\"} 0.00123\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "check=\"we\\\"ird\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_config_generation 3\n"));
	free(text);
}

/* The histogram is cumulative per bucket; transitions and the last change
 * follow the history; a check that never changed has no timestamp. */
static void test_metrics_history(void)
{
	struct history h;

	make_view(STATUS_PASS, STATUS_PENDING);
	history_init(&h, 10);
	history_add(&h, 1764158400000, STATUS_PASS, 0.4, "ok", STATUS_PENDING,
		    STATUS_PASS);
	history_add(&h, 1764158401000, STATUS_PASS, 30, "ok", STATUS_PASS,
		    STATUS_PASS);
	history_add(&h, 1764158402500, STATUS_FAIL, 20000, "timed out",
		    STATUS_PASS, STATUS_FAIL);
	history_summarize(&h, &checks[0].history);
	history_clear(&h);
	char *text = render_metrics(&view);

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE healthd_check_duration_seconds histogram\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_duration_seconds_bucket{check=\"db\",le=\"0.001\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_duration_seconds_bucket{check=\"db\",le=\"0.025\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_duration_seconds_bucket{check=\"db\",le=\"0.05\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_duration_seconds_bucket{check=\"db\",le=\"10\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_duration_seconds_bucket{check=\"db\",le=\"+Inf\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_duration_seconds_sum{check=\"db\"} 20.0304\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_duration_seconds_count{check=\"db\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_duration_seconds_count{check=\"extra\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_transitions_total{check=\"db\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "healthd_check_last_change_timestamp_seconds{check=\"db\"} 1764158402.500\n"));
	CU_ASSERT_PTR_NULL(strstr(text, "healthd_check_last_change_timestamp_seconds{check=\"extra\"}"));
	free(text);

	int code;
	json_object *o = parse(render_check(&checks[0], false, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "transitions"), "2");
	CU_ASSERT_STRING_EQUAL(str(o, "pass_ratio"), "0.667");
	CU_ASSERT_STRING_EQUAL(str(o, "last_change"), "2025-11-26T12:00:02.500Z");
	json_object_put(o);
	o = parse(render_check(&checks[1], false, &code));
	CU_ASSERT_STRING_EQUAL(str(o, "pass_ratio"), "null");
	CU_ASSERT_STRING_EQUAL(str(o, "last_change"), "null");
	json_object_put(o);
}

void unit_register(void)
{
	static CU_TestInfo tests[] = {
		{"comprehensive body", test_comprehensive},
		{"unhealthy and exclude", test_unhealthy_and_exclude},
		{"pending and draining", test_pending_and_draining},
		{"maintenance", test_maintenance},
		{"warming checks do not count", test_warming_checks_do_not_count},
		{"blocked checks", test_blocked},
		{"redacted", test_redacted},
		{"health+json", test_health_json},
		{"live and errors", test_live_and_error},
		{"metrics", test_metrics},
		{"metrics and summaries from history", test_metrics_history},
		CU_TEST_INFO_NULL,
	};
	UNIT_SUITE("render", tests);
}
