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
#include "history.h"
#include "host.h"
#include "isolate.h"
#include "loader.h"
#include "state.h"

enum check_phase {
	PHASE_IDLE,    /* in the heap at next_run */
	PHASE_QUEUED,  /* in the run queue; in the heap at its deadline */
	PHASE_RUNNING, /* check() in progress; in the heap at its deadline */
	PHASE_LATE,    /* timed out and recorded, check() not returned yet */
	PHASE_WAITING, /* replaced a check whose run is in flight: waits for
			* it; in the heap at that run's deadline until its
			* timeout is recorded here */
};

/* What only the scheduler reads and writes (under its lock). */
struct check_sched {
	enum check_phase phase;
	int64_t next_run;   /* monotonic ms, while idle */
	int64_t deadline;   /* monotonic ms, of the run in flight or awaited */
	int64_t timeout_ms; /* of that run, for its message */
	size_t heap_index;
	uint64_t set_generation; /* the scheduler's, while in the running set */
	bool in_set;             /* in the running set */
	bool removed;            /* dropped by a reload: results are dropped */
	bool in_queue;
	bool spread;              /* its runs are spread over the interval */
	struct check *queue_next; /* in the run queue, which holds a reference */
	struct check *successor;  /* replaced while running: starts when this
				   * run returns (a reference) */
	struct check *waits_for;  /* while PHASE_WAITING: whose run */
};

struct check {
	struct config_check def; /* deep copy */
	struct plugin *plugin;       /* inline: the plugin, loaded here */
	void *instance;              /* inline: its instance */
	struct iso_instance *iso;    /* process: the instance in its host */
	char *plugin_name;           /* as the plugin declares it */
	struct healthd_check handle; /* what an inline plugin sees; redaction */
	int refs;                    /* atomic */

	/* lock: */
	struct check_counters counters;
	char message[HOST_MESSAGE_MAX];
	char *details; /* JSON text of the latest details, or NULL */
	double duration_ms;
	int64_t last_run, last_success, last_failure; /* wall ms, 0: never */
	uint64_t runs, failures;
	bool warming; /* added by a reload, no result yet: does not count */
	struct history history;
	struct check_sched sched;
	/* depends_on within the running set, resolved by the scheduler (its
	 * arrays): the checks this one waits for, and those waiting for it. */
	struct check **deps, **dependents;
	size_t n_deps, n_dependents;
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

/* Run once, inline or in the plugin's host; fills `r` as check() does. */
void check_run(struct check *c, int64_t deadline, struct healthd_result *r);

/* Whether the plugin file `dirs` lead to is still the one the check's
 * instance came from (a rebuilt plugin, renamed over the old file, is
 * picked up by a reload).  Inline plugins stay loaded: always true. */
bool check_plugin_current(const struct check *c, char *const *dirs,
			  size_t n_dirs);

/* Take over status and history from the check this one replaces (its
 * history moves: `old` records nothing more). */
void check_inherit(struct check *c, struct check *old);

/* Sort by name, and find a name in a sorted array (NULL if absent): a
 * reload matches thousands of checks by name in O(n log n). */
void check_sort_by_name(struct check **checks, size_t n);
struct check *check_find(struct check *const *sorted, size_t n,
			 const char *name);

#endif /* HEALTHD_CHECK_H */
