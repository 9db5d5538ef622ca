/* test_state.c — the threshold rules and the verdict table (docs/semantics.md). */
#include "state.h"
#include "unit.h"

/* Feed a string of raw results ("ppfw...") and return the final status. */
static struct check_counters feed(const char *runs, int fail_th, int ok_th)
{
	struct check_counters c = {STATUS_PENDING, STATUS_PENDING, 0, 0};

	for (; *runs; runs++)
		state_apply(&c, *runs == 'p'   ? HEALTHD_PASS
				: *runs == 'w' ? HEALTHD_WARN
					       : HEALTHD_FAIL,
			    fail_th, ok_th);
	return c;
}

static void test_first_result_taken_directly(void)
{
	CU_ASSERT_EQUAL(feed("f", 3, 1).status, STATUS_FAIL);
	CU_ASSERT_EQUAL(feed("p", 3, 1).status, STATUS_PASS);
	CU_ASSERT_EQUAL(feed("w", 3, 1).status, STATUS_WARN);
	CU_ASSERT_EQUAL(feed("", 3, 1).status, STATUS_PENDING);
}

/* The first result after a check was blocked is taken directly too. */
static void test_after_blocked(void)
{
	struct check_counters c = {STATUS_BLOCKED, STATUS_PASS, 0, 0};

	CU_ASSERT_TRUE(state_apply(&c, HEALTHD_FAIL, 3, 2));
	CU_ASSERT_EQUAL(c.status, STATUS_FAIL);
	c.status = STATUS_BLOCKED;
	CU_ASSERT_TRUE(state_apply(&c, HEALTHD_PASS, 3, 2));
	CU_ASSERT_EQUAL(c.status, STATUS_PASS);
}

static void test_failure_threshold(void)
{
	CU_ASSERT_EQUAL(feed("pf", 3, 1).status, STATUS_PASS);
	CU_ASSERT_EQUAL(feed("pff", 3, 1).status, STATUS_PASS);
	CU_ASSERT_EQUAL(feed("pfff", 3, 1).status, STATUS_FAIL);
	/* A pass in between resets the count. */
	CU_ASSERT_EQUAL(feed("pffpff", 3, 1).status, STATUS_PASS);
	CU_ASSERT_EQUAL(feed("pf", 1, 1).status, STATUS_FAIL);
	struct check_counters c = feed("pff", 3, 1);
	CU_ASSERT_EQUAL(c.last_result, STATUS_FAIL);
	CU_ASSERT_EQUAL(c.consecutive_failures, 2);
	CU_ASSERT_EQUAL(c.consecutive_successes, 0);
}

static void test_success_threshold(void)
{
	CU_ASSERT_EQUAL(feed("fp", 3, 2).status, STATUS_FAIL);
	CU_ASSERT_EQUAL(feed("fpp", 3, 2).status, STATUS_PASS);
	CU_ASSERT_EQUAL(feed("fpfp", 3, 2).status, STATUS_FAIL);
	/* warn counts as passing, and the status follows it. */
	CU_ASSERT_EQUAL(feed("fpw", 3, 2).status, STATUS_WARN);
	CU_ASSERT_EQUAL(feed("fw", 3, 1).status, STATUS_WARN);
	CU_ASSERT_EQUAL(feed("pw", 3, 1).status, STATUS_WARN);
	CU_ASSERT_EQUAL(feed("pwp", 3, 1).status, STATUS_PASS);
}

static void test_apply_reports_changes(void)
{
	struct check_counters c = {STATUS_PENDING, STATUS_PENDING, 0, 0};

	CU_ASSERT_TRUE(state_apply(&c, HEALTHD_PASS, 2, 1));
	CU_ASSERT_FALSE(state_apply(&c, HEALTHD_PASS, 2, 1));
	CU_ASSERT_FALSE(state_apply(&c, HEALTHD_FAIL, 2, 1));
	CU_ASSERT_TRUE(state_apply(&c, HEALTHD_FAIL, 2, 1));
	CU_ASSERT_FALSE(state_apply(&c, HEALTHD_FAIL, 2, 1));
	CU_ASSERT_EQUAL(c.consecutive_failures, 3);
	CU_ASSERT_TRUE(state_apply(&c, HEALTHD_WARN, 2, 1));
}

struct row {
	bool critical;
	enum check_status status;
};

static enum verdict verdict_of(const struct row *rows, int n)
{
	enum verdict v = VERDICT_HEALTHY;

	for (int i = 0; i < n; i++)
		v = state_verdict_step(v, rows[i].critical, rows[i].status);
	return v;
}

static void test_verdict_table(void)
{
	static const struct {
		struct row rows[2];
		enum verdict want;
	} table[] = {
		{{{true, STATUS_PASS}, {false, STATUS_PASS}}, VERDICT_HEALTHY},
		{{{true, STATUS_FAIL}, {false, STATUS_PASS}}, VERDICT_UNHEALTHY},
		{{{true, STATUS_PENDING}, {false, STATUS_PASS}}, VERDICT_UNHEALTHY},
		{{{true, STATUS_PASS}, {false, STATUS_FAIL}}, VERDICT_DEGRADED},
		{{{true, STATUS_WARN}, {false, STATUS_PASS}}, VERDICT_DEGRADED},
		{{{true, STATUS_PASS}, {false, STATUS_WARN}}, VERDICT_DEGRADED},
		{{{true, STATUS_FAIL}, {false, STATUS_FAIL}}, VERDICT_UNHEALTHY},
		{{{true, STATUS_WARN}, {true, STATUS_FAIL}}, VERDICT_UNHEALTHY},
		/* An informational check still pending changes nothing. */
		{{{true, STATUS_PASS}, {false, STATUS_PENDING}}, VERDICT_HEALTHY},
		/* Blocked counts as failing does. */
		{{{true, STATUS_BLOCKED}, {false, STATUS_PASS}}, VERDICT_UNHEALTHY},
		{{{true, STATUS_PASS}, {false, STATUS_BLOCKED}}, VERDICT_DEGRADED},
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		CU_ASSERT_EQUAL(verdict_of(table[i].rows, 2), table[i].want);
	CU_ASSERT_EQUAL(verdict_of(NULL, 0), VERDICT_HEALTHY);
}

static void test_blocks_ready(void)
{
	CU_ASSERT_TRUE(state_blocks_ready(true, STATUS_FAIL));
	CU_ASSERT_TRUE(state_blocks_ready(true, STATUS_PENDING));
	CU_ASSERT_FALSE(state_blocks_ready(true, STATUS_WARN));
	CU_ASSERT_FALSE(state_blocks_ready(false, STATUS_FAIL));
	CU_ASSERT_TRUE(state_blocks_ready(true, STATUS_BLOCKED));
	CU_ASSERT_FALSE(state_blocks_ready(false, STATUS_BLOCKED));
	CU_ASSERT_STRING_EQUAL(state_status_name(STATUS_BLOCKED), "blocked");
	CU_ASSERT_STRING_EQUAL(state_status_name(STATUS_WARN), "warn");
	CU_ASSERT_STRING_EQUAL(state_verdict_name(VERDICT_DEGRADED), "degraded");
}

void unit_register(void)
{
	static CU_TestInfo tests[] = {
		{"first result taken directly", test_first_result_taken_directly},
		{"first result after blocked taken directly", test_after_blocked},
		{"failure threshold", test_failure_threshold},
		{"success threshold", test_success_threshold},
		{"apply reports changes", test_apply_reports_changes},
		{"verdict table", test_verdict_table},
		{"blocks ready", test_blocks_ready},
		CU_TEST_INFO_NULL,
	};
	UNIT_SUITE("state", tests);
}
