/* test_snapshot.c — bodies rendered on first request, kept per snapshot,
 * and the same as the renderers make. */
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "unit.h"

/* A snapshot of three checks (the view is heap-allocated: the snapshot
 * takes it over and frees it). */
static struct snapshot *make(void)
{
	static const char *const names[] = {"db", "cache", "api"};
	struct config cfg = {.base_path = "/api/v1/health", .metrics = true,
			     .details = DETAILS_PUBLIC};
	struct health_view v = {.started = true, .generation = 1,
				.last_reload_ok = true, .n_checks = 3};

	v.checks = calloc(3, sizeof(*v.checks));
	for (int i = 0; i < 3; i++)
		v.checks[i] = (struct check_view){
			.name = strdup(names[i]), .plugin = strdup("testplug"),
			.critical = i != 2, .status = i == 1 ? STATUS_FAIL : STATUS_PASS,
			.last_result = i == 1 ? STATUS_FAIL : STATUS_PASS,
			.message = strdup("m"), .interval_ms = 1000,
			.timeout_ms = 500, .isolation = "process"};
	struct snapshot *s = snapshot_build(&v, &cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

static void test_rendered_once_on_demand(void)
{
	struct snapshot *s = make();
	int code;

	/* Only the probe bodies exist after the build. */
	CU_ASSERT_PTR_NOT_NULL(s->ready.text);
	CU_ASSERT_PTR_NOT_NULL(s->startup.text);
	CU_ASSERT_EQUAL(s->health[SNAPSHOT_PUBLIC][RENDER_NATIVE].code, 0);
	CU_ASSERT_EQUAL(s->metrics.code, 0);

	const struct body *b = snapshot_health(s, SNAPSHOT_PUBLIC, RENDER_NATIVE);
	CU_ASSERT_EQUAL(b->code, 503); /* cache is critical and failing */
	CU_ASSERT_PTR_EQUAL(snapshot_health(s, SNAPSHOT_PUBLIC, RENDER_NATIVE), b);
	char *want = render_health(&s->view, NULL, false, RENDER_NATIVE, &code);
	CU_ASSERT_STRING_EQUAL(b->text, want);
	free(want);

	const struct body *m = snapshot_metrics(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_PTR_EQUAL(snapshot_metrics(s), m);
	CU_ASSERT_PTR_NOT_NULL(strstr(m->text, "healthd_check_status"));

	const struct body *c = snapshot_check(s, "cache", SNAPSHOT_REDACTED);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(c->code, 503);
	CU_ASSERT_PTR_EQUAL(snapshot_check(s, "cache", SNAPSHOT_REDACTED), c);
	CU_ASSERT_PTR_NULL(strstr(c->text, "\"message\""));
	CU_ASSERT_PTR_NULL(snapshot_check(s, "nope", SNAPSHOT_PUBLIC));
	snapshot_unref(s);
}

static void test_excluded_kept_by_request(void)
{
	struct snapshot *s = make();
	const char *cache[] = {"cache"}, *api[] = {"api"};
	struct render_exclude ex = {.names = cache, .n = 1};
	int code;

	const struct body *r = snapshot_excluded(s, true, &ex, SNAPSHOT_PUBLIC,
						 RENDER_NATIVE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->code, 200); /* the failing check left out */
	CU_ASSERT_PTR_EQUAL(snapshot_excluded(s, true, &ex, SNAPSHOT_PUBLIC,
					      RENDER_NATIVE), r);
	char *want = render_ready(&s->view, &ex, &code);
	CU_ASSERT_STRING_EQUAL(r->text, want);
	free(want);

	/* Another kind, detail or set of names is another body. */
	const struct body *h = snapshot_excluded(s, false, &ex, SNAPSHOT_PUBLIC,
						 RENDER_NATIVE);
	CU_ASSERT_PTR_NOT_EQUAL(h, r);
	CU_ASSERT_EQUAL(h->code, 200);
	struct render_exclude ex2 = {.names = api, .n = 1};
	const struct body *r2 = snapshot_excluded(s, true, &ex2, SNAPSHOT_PUBLIC,
						  RENDER_NATIVE);
	CU_ASSERT_PTR_NOT_EQUAL(r2, r);
	CU_ASSERT_EQUAL(r2->code, 503);
	CU_ASSERT_PTR_NOT_NULL(snapshot_excluded(s, false, &ex, SNAPSHOT_REDACTED,
						 RENDER_NATIVE));
	/* Full: the caller renders for the request alone. */
	CU_ASSERT_PTR_NULL(snapshot_excluded(s, false, &ex2, SNAPSHOT_PUBLIC,
					     RENDER_HEALTH_JSON));
	CU_ASSERT_PTR_EQUAL(snapshot_excluded(s, true, &ex, SNAPSHOT_PUBLIC,
					      RENDER_NATIVE), r);
	snapshot_unref(s);
}

static CU_TestInfo snapshot_tests[] = {
	{"bodies rendered once, on demand", test_rendered_once_on_demand},
	{"?exclude= bodies kept by request", test_excluded_kept_by_request},
	CU_TEST_INFO_NULL,
};

void unit_register(void)
{
	UNIT_SUITE("snapshot", snapshot_tests);
}
