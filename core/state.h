/*
 * state.h — a check's status under Kubernetes-style thresholds, and the
 * verdict over all checks.  Pure functions: the scheduler feeds them, the
 * unit tests drive them through the whole table.
 */
#ifndef HEALTHD_STATE_H
#define HEALTHD_STATE_H

#include <stdbool.h>

#include <healthd/plugin.h>

enum check_status {
	STATUS_PENDING,
	STATUS_PASS,
	STATUS_WARN,
	STATUS_FAIL,
	STATUS_BLOCKED, /* not run: a dependency is not passing (depends_on) */
};

enum verdict {
	VERDICT_HEALTHY,
	VERDICT_DEGRADED,
	VERDICT_UNHEALTHY,
};

struct check_counters {
	enum check_status status;      /* after thresholds */
	enum check_status last_result; /* the latest raw result */
	int consecutive_failures;
	int consecutive_successes;
};

/* A plugin's raw result as a status (anything unknown is a failure). */
enum check_status state_of_result(enum healthd_status raw);

/* Apply one raw result.  The first result is taken directly (so is the
 * first after a check was blocked: not running broke its streak); after that the
 * status becomes fail after failure_threshold consecutive failures and
 * leaves fail after success_threshold consecutive passes (warn passes).
 * Returns true when the status changed. */
bool state_apply(struct check_counters *c, enum healthd_status raw,
		 int failure_threshold, int success_threshold);

/* Fold one check into a verdict; start from VERDICT_HEALTHY. */
enum verdict state_verdict_step(enum verdict v, bool critical,
				enum check_status status);

/* Whether a check keeps the service from being ready. */
static inline bool state_blocks_ready(bool critical, enum check_status s)
{
	return critical && s != STATUS_PASS && s != STATUS_WARN;
}

const char *state_status_name(enum check_status s);  /* "pass" ... */
const char *state_verdict_name(enum verdict v);      /* "healthy" ... */

#endif /* HEALTHD_STATE_H */
