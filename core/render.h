/*
 * render.h — the JSON bodies healthd answers with, built from a plain view
 * of the daemon's state.  Pure: no locks, no globals; the caller owns every
 * returned string (free()).
 */
#ifndef HEALTHD_RENDER_H
#define HEALTHD_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "isolate.h"
#include "state.h"

/* Plugin host restarts listed in /metrics (plugins x reasons). */
#define RENDER_RESTARTS_MAX 64

struct check_view {
	char *name;
	char *plugin;
	bool critical;
	enum check_status status;
	enum check_status last_result;
	char *message;
	char *details; /* JSON object text, or NULL */
	double duration_ms;
	int64_t last_run, last_success, last_failure; /* wall ms, 0: never */
	int consecutive_failures;
	int consecutive_successes;
	int64_t interval_ms, timeout_ms;
	uint64_t runs;
	uint64_t failures; /* failed runs since the check was created */
	bool warming; /* added by a reload, no result yet: left out of verdicts */
	const char *isolation; /* "process" or "inline"; static */
	struct history_summary history;
};

struct health_view {
	char *service; /* NULL: "healthd" */
	bool started;
	bool draining;
	/* `healthd ctl drain`: /ready answers 503 until undrained or until. */
	bool maintenance;
	char *maintenance_reason; /* "" when none was given */
	int64_t maintenance_since, maintenance_until; /* wall ms; until 0: none */
	double uptime_s;
	uint64_t generation;
	int64_t loaded_at; /* wall ms */
	bool last_reload_ok;
	char *last_reload_error; /* NULL when the last reload worked */
	bool restart_required;   /* the config changes a setting only a restart applies */
	struct check_view *checks;
	size_t n_checks;
	struct isolate_restarts restarts[RENDER_RESTARTS_MAX];
	size_t n_restarts;
	int plugin_hosts; /* running */
};

enum render_format {
	RENDER_NATIVE,      /* the comprehensive body (docs/endpoints.md) */
	RENDER_HEALTH_JSON, /* IETF draft "Health Check Response Format" */
};

/* A name list; a check named in it is left out of the answer. */
struct render_exclude {
	const char *const *names;
	size_t n;
};

/* Whether the check has a message to show: a result, or why it is
 * blocked. */
static inline bool render_has_message(const struct check_view *c)
{
	return c->last_result != STATUS_PENDING || c->status == STATUS_BLOCKED;
}

/* Every renderer returns a malloc'd body and sets *code to the HTTP status. */
char *render_health(const struct health_view *v, const struct render_exclude *ex,
		    bool redact, enum render_format format, int *code);
char *render_ready(const struct health_view *v, const struct render_exclude *ex,
		   int *code);
char *render_startup(const struct health_view *v, int *code);
char *render_live(bool alive, int *code);
char *render_check(const struct check_view *c, bool redact, int *code);
char *render_error(int code, const char *message);
/* /checks/NAME/history: the rings of `h`, oldest first. */
char *render_history(const char *name, const struct history *h, bool redact,
		     int *code);

/* Prometheus text exposition format (version 0.0.4). */
char *render_metrics(const struct health_view *v);

/* The verdict over the checks not excluded. */
enum verdict render_verdict(const struct health_view *v,
			    const struct render_exclude *ex);
bool render_ready_state(const struct health_view *v,
			const struct render_exclude *ex);

void render_view_clear(struct health_view *v);

#endif /* HEALTHD_RENDER_H */
