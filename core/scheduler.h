/*
 * scheduler.h — runs checks in the background.
 *
 * One scheduler thread keeps the checks in a heap ordered by their next
 * event: the next run of an idle check, or the deadline of a queued or
 * running one.  Due checks go to a FIFO served by a fixed pool of worker
 * threads.  At a run's deadline the scheduler thread publishes a timeout
 * failure itself, so a plugin that never returns cannot delay any answer;
 * that check is not queued again until its late run returns.
 *
 * After changes of the checks' state the scheduler thread calls `changed`
 * (without the lock, at most every few milliseconds, once for a burst), so
 * the owner renders new responses; it takes the lock itself to read them.
 */
#ifndef HEALTHD_SCHEDULER_H
#define HEALTHD_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

struct scheduler;

typedef void (*scheduler_changed_fn)(void *ctx);

/* Returns NULL on allocation failure. */
struct scheduler *scheduler_new(int workers, scheduler_changed_fn changed,
				void *ctx);

/* Start the scheduler thread and the workers.  Returns 0 or -errno. */
int scheduler_start(struct scheduler *s);

/*
 * Make `checks` the running set; takes over one reference of each.
 * A pointer already running stays as it is (state, schedule, history);
 * a new check that has the name of a running one inherits its status and
 * history, and every new check runs at once.  With `warm`, a check with a
 * new name is "warming" until its first result: a reload that adds a check
 * does not make a ready service unready before the check has said anything.
 * A new check whose predecessor's run is still in flight waits for that run
 * to return.  Checks no longer listed are stopped; an in-flight run finishes
 * before its instance is destroyed.  Returns 0, or -ENOMEM having changed
 * nothing (the references are still the caller's).
 */
int scheduler_replace(struct scheduler *s, struct check **checks, size_t n,
		      bool warm);

/* The running set, for rendering; call with the lock held. */
void scheduler_lock(struct scheduler *s);
void scheduler_unlock(struct scheduler *s);
struct check *const *scheduler_checks(struct scheduler *s, size_t *n);

/* Monotonic ms of the scheduler's latest round of progress.  Goes stale
 * when the scheduler thread stalls, or when every worker has been stuck in
 * a run for SCHEDULER_STARVED_MS past its deadline. */
int64_t scheduler_heartbeat(const struct scheduler *s);
#define SCHEDULER_STARVED_MS 60000

/*
 * Run the check `name` now and wait for the result (then read it under the
 * lock): a run already queued or in flight is waited for instead of
 * starting a second one.  Waits at most twice the check's timeout and
 * SCHEDULER_RUN_NOW_SLACK_MS.  Returns 0; -ENOENT for an unknown check;
 * -EAGAIN when it is blocked by a dependency (it would not run);
 * -ECANCELED when a reload replaced or removed it, or the scheduler
 * stops; -ETIMEDOUT.
 */
int scheduler_run_now(struct scheduler *s, const char *name);
#define SCHEDULER_RUN_NOW_SLACK_MS 2000

/*
 * Stop starting runs and wait until the runs in flight have returned or
 * reached their deadlines (and the grace); then `overdue`, if set, is
 * called to end the runs still in flight, and they get a second more.
 * Returns true when every worker has exited; false when a plugin is still
 * inside check() (its instance must then be left alone).  Then
 * scheduler_free() releases what is safe to release.
 */
bool scheduler_stop(struct scheduler *s, void (*overdue)(void));
void scheduler_free(struct scheduler *s);

#endif /* HEALTHD_SCHEDULER_H */
