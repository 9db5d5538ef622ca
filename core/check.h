/*
 * check.h — one configured check at run time: its definition, its plugin
 * instance, its status and history, and its place in the schedule.
 *
 * Ownership: a check holds a copy of its struct config_check (the plugin
 * reads options from it until destroy), a reference on its plugin and the
 * plugin's instance.  Checks are reference-counted: the scheduler's list
 * holds one reference, and a worker holds one while a run is in flight, so
 * a reload that removes a check never destroys an instance in use.
 * Every field below `lock:` is guarded by the scheduler's lock.
 */
#ifndef HEALTHD_CHECK_H
#define HEALTHD_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"
#include "host.h"
#include "loader.h"
#include "state.h"

enum check_phase {
	PHASE_IDLE,    /* waiting for next_run */
	PHASE_QUEUED,  /* handed to the workers, deadline set */
	PHASE_RUNNING, /* check() in progress */
	PHASE_LATE,    /* timed out and published, check() not returned yet */
	PHASE_WAITING, /* replaced a check whose run is in flight: waits for it */
};

struct check {
	struct config_check def; /* deep copy */
	struct plugin *plugin;
	void *instance;
	struct healthd_check handle; /* what the plugin sees */
	int refs;                    /* atomic */

	/* lock: */
	struct check_counters counters;
	char message[HOST_MESSAGE_MAX];
	char *details; /* JSON text of the latest details, or NULL */
	double duration_ms;
	int64_t last_run, last_success, last_failure; /* wall ms, 0: never */
	uint64_t runs, failures;

	enum check_phase phase;
	int64_t next_run; /* monotonic ms */
	int64_t deadline; /* monotonic ms, while queued or running */
	bool removed;     /* dropped by a reload */
	bool warming;     /* added by a reload, no result yet: does not count */
	size_t heap_index;
	struct check *queue_next; /* in the run queue, which holds a reference */
	struct check *successor;  /* replaced while running: starts when this
				   * run returns (a reference) */
	struct check *waits_for;  /* while PHASE_WAITING: whose run */
	bool in_queue;
};

/* Resolve the plugin, validate the options and create the instance.
 * `file` names the config for messages.  Returns 0 or a negative errno code
 * with "FILE:LINE:COL: check "NAME": ..." in err. */
int check_create(const char *file, const struct config_check *cc,
		 char *const *plugin_dirs, size_t n_dirs, struct check **out,
		 char *err, size_t errlen);

struct check *check_ref(struct check *c);
/* The last reference destroys the instance and releases the plugin. */
void check_unref(struct check *c);

/* Take over status and history from the check this one replaces. */
void check_inherit(struct check *c, const struct check *old);

#endif /* HEALTHD_CHECK_H */
