/* state.c — thresholds and the verdict table (docs/semantics.md). */
#include "state.h"

enum check_status state_of_result(enum healthd_status raw)
{
	switch (raw) {
	case HEALTHD_PASS:
		return STATUS_PASS;
	case HEALTHD_WARN:
		return STATUS_WARN;
	default:
		return STATUS_FAIL;
	}
}

bool state_apply(struct check_counters *c, enum healthd_status raw,
		 int failure_threshold, int success_threshold)
{
	enum check_status result = state_of_result(raw);
	enum check_status before = c->status;

	c->last_result = result;
	if (result == STATUS_FAIL) {
		c->consecutive_failures++;
		c->consecutive_successes = 0;
	} else {
		c->consecutive_successes++;
		c->consecutive_failures = 0;
	}

	if (before == STATUS_PENDING || before == STATUS_BLOCKED)
		c->status = result;
	else if (result == STATUS_FAIL) {
		if (c->consecutive_failures >= failure_threshold)
			c->status = STATUS_FAIL;
	} else if (before != STATUS_FAIL ||
		   c->consecutive_successes >= success_threshold) {
		/* Passing: pass and warn follow the latest run. */
		c->status = result;
	}
	return c->status != before;
}

enum verdict state_verdict_step(enum verdict v, bool critical,
				enum check_status status)
{
	enum verdict mine = VERDICT_HEALTHY;

	if (state_blocks_ready(critical, status))
		mine = VERDICT_UNHEALTHY;
	else if (status == STATUS_FAIL || status == STATUS_WARN ||
		 status == STATUS_BLOCKED)
		mine = VERDICT_DEGRADED;
	/* An informational check that is still pending changes nothing. */
	return mine > v ? mine : v;
}

/* The one table of status names: raw results, statuses and the IETF
 * body's pass / warn / fail all print through it. */
const char *state_status_name(enum check_status s)
{
	static const char *const names[] = {"pending", "pass", "warn", "fail",
					      "blocked"};
	return names[s];
}

const char *state_verdict_name(enum verdict v)
{
	static const char *const names[] = {"healthy", "degraded", "unhealthy"};
	return names[v];
}
