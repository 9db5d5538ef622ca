/* scheduler.c — the heap of next events, the run queue and the workers. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "scheduler.h"

#define HEAP_NONE ((size_t)-1)
#define HEARTBEAT_MS 1000
/* The owner is told of changes at most every RENDER_MIN_MS: a burst of
 * results costs one snapshot, and snapshots never compete with runs for
 * the lock.  A snapshot copies every check, so with many checks the pause
 * grows with their number (a millisecond per 20 checks, at most
 * RENDER_MAX_MS): copying stays near 20,000 checks a second whatever the
 * count, at the price of bodies up to that much older. */
#define RENDER_MIN_MS 5
#define RENDER_MAX_MS 100
#define RENDER_CHECKS_PER_MS 20
/* A run due within this much (at most a twentieth of its interval) starts
 * with those due now: with a thousand checks a second the scheduler thread
 * wakes a few hundred times, not a thousand.  Deadlines are never early. */
#define START_SLACK_MS 4


struct scheduler {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* the scheduler thread: the heap changed */
	pthread_cond_t work; /* the workers: the queue grew, or stop */
	pthread_cond_t done; /* scheduler_stop(): a worker left or a run ended */

	struct check **checks; /* the running set, one reference each */
	size_t n_checks;

	struct check **heap; /* ordered by check_due() */
	size_t heap_len, heap_cap;

	struct check *queue_head, *queue_tail; /* FIFO of due checks */

	/* Every check's deps then dependents, back to back (check.h). */
	struct check **links;

	struct check **orphans; /* n_workers slots, one reference each */
	int n_orphans;
	uint64_t set_generation; /* bumped by every scheduler_replace() */

	int n_workers, workers_alive, workers_named, runs_in_flight;
	int64_t *busy_until; /* per worker: the deadline of its run, 0 idle */
	bool thread_started, stopping;
	bool dirty;          /* state changed since the last render */
	bool rendering;      /* a thread is in changed() */
	int64_t last_render; /* monotonic ms */
	int64_t wake_at;     /* when the scheduler thread wakes; 0: awake */
	pthread_t thread;
	unsigned int seed;
	int64_t heartbeat; /* atomic */

	scheduler_changed_fn changed;
	void *ctx;
};

static int64_t render_pause(const struct scheduler *s)
{
	int64_t ms = (int64_t)s->n_checks / RENDER_CHECKS_PER_MS;

	return ms < RENDER_MIN_MS ? RENDER_MIN_MS
	       : ms > RENDER_MAX_MS ? RENDER_MAX_MS
				    : ms;
}

/* --- the heap ------------------------------------------------------------ */

/* When a check's next event is due: its next run while idle; the deadline
 * of its run (or of the run it waits for) otherwise, plus the grace a run
 * that returns at its deadline gets to be recorded before its timeout. */
static int64_t check_due(const struct check *c)
{
	switch (c->sched.phase) {
	case PHASE_IDLE:
		return c->sched.next_run;
	case PHASE_QUEUED:
		return c->sched.deadline; /* never started: nothing to wait for */
	default:
		return c->sched.deadline + HEALTHD_DEADLINE_GRACE_MS;
	}
}

static void heap_swap(struct scheduler *s, size_t a, size_t b)
{
	struct check *t = s->heap[a];

	s->heap[a] = s->heap[b];
	s->heap[b] = t;
	s->heap[a]->sched.heap_index = a;
	s->heap[b]->sched.heap_index = b;
}

static void heap_up(struct scheduler *s, size_t i)
{
	while (i > 0 && check_due(s->heap[(i - 1) / 2]) > check_due(s->heap[i])) {
		heap_swap(s, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(struct scheduler *s, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->heap_len && check_due(s->heap[l]) < check_due(s->heap[m]))
			m = l;
		if (r < s->heap_len && check_due(s->heap[r]) < check_due(s->heap[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(s, i, m);
		i = m;
	}
}

/* Whether the first event of the heap is to be handled at `now`. */
static bool heap_due(const struct scheduler *s, int64_t now)
{
	const struct check *c = s->heap[0];
	int64_t slack = 0;

	if (c->sched.phase == PHASE_IDLE) {
		slack = c->def.interval_ms / 20;
		if (slack > START_SLACK_MS)
			slack = START_SLACK_MS;
	}
	return check_due(c) <= now + slack;
}

static bool in_heap(const struct check *c)
{
	return c->sched.heap_index != HEAP_NONE;
}

/* The scheduler thread sleeps until its next event: it is woken only when
 * something is due before that.  Waking a thread is the largest cost of a
 * run (a context switch, dearer still from an idle CPU of a virtual
 * machine).  Lock held. */
static void wake_by(struct scheduler *s, int64_t t)
{
	if (s->wake_at && t < s->wake_at) {
		s->wake_at = t;
		pthread_cond_signal(&s->wake);
	}
}

/* Capacity is reserved in scheduler_replace(), so this cannot fail. */
static void heap_push(struct scheduler *s, struct check *c)
{
	c->sched.heap_index = s->heap_len;
	s->heap[s->heap_len++] = c;
	heap_up(s, c->sched.heap_index);
	if (c->sched.heap_index == 0)
		wake_by(s, check_due(c));
}

static void heap_remove(struct scheduler *s, struct check *c)
{
	size_t i = c->sched.heap_index;

	if (i == HEAP_NONE)
		return;
	c->sched.heap_index = HEAP_NONE;
	if (--s->heap_len == i)
		return;
	s->heap[i] = s->heap[s->heap_len];
	s->heap[i]->sched.heap_index = i;
	heap_down(s, i);
	heap_up(s, i);
}

/* --- recording results ------------------------------------------------------ */

/*
 * The owner is told of changes (changed(), outside the lock) by the first
 * thread to see them once the render pause has passed: the worker that
 * recorded a result, or the scheduler thread when the pause ends later.
 * At a few results a second the worker renders at once and the scheduler
 * thread sleeps on.  Lock held.
 */
static void mark_dirty(struct scheduler *s)
{
	s->dirty = true;
}

/* Whether the caller is to call changed() now (then render_done()). */
static bool render_claim(struct scheduler *s, int64_t now)
{
	if (!s->dirty || s->rendering)
		return false;
	if (now - s->last_render < render_pause(s)) {
		wake_by(s, s->last_render + render_pause(s));
		return false;
	}
	s->dirty = false;
	s->rendering = true;
	s->last_render = now;
	return true;
}

/* Lock held. */
static void render_done(struct scheduler *s)
{
	s->rendering = false;
	if (s->dirty)
		wake_by(s, s->last_render + render_pause(s));
}

/* Record one run's outcome in the check's state.  Lock held; logging
 * never blocks (log.h). */
/* --- depends_on ------------------------------------------------------------- */

/* The first dependency that keeps `c` from running: one that does not pass
 * (it fails, has no result yet, or is blocked itself).  Lock held. */
static struct check *blocker_of(const struct check *c)
{
	for (size_t i = 0; i < c->n_deps; i++) {
		enum check_status st = c->deps[i]->counters.status;
		if (st != STATUS_PASS && st != STATUS_WARN)
			return c->deps[i];
	}
	return NULL;
}

static void block_update(struct scheduler *s, struct check *c);

/* `c`'s status changed: bring the checks that depend on it in line. */
static void dependents_update(struct scheduler *s, struct check *c)
{
	for (size_t i = 0; i < c->n_dependents; i++)
		block_update(s, c->dependents[i]);
}

/*
 * A check is blocked, not run, while a dependency does not pass: its
 * status says which (`blocked: dns is fail`), and only the root cause logs
 * at info level.  Once every dependency passes it runs at once.  A check
 * blocked only by one that has no result yet (warming, pending) counts as
 * little as that one does.  Lock held.
 */
static void block_update(struct scheduler *s, struct check *c)
{
	struct check *b = blocker_of(c);
	enum check_status before = c->counters.status;
	int64_t now = clock_wall_ms();
	char msg[HOST_MESSAGE_MAX] = "every dependency passes";

	if (b) {
		bool warming = b->counters.status != STATUS_FAIL && b->warming;

		snprintf(msg, sizeof(msg), "blocked: %s is %s", b->def.name,
			 state_status_name(b->counters.status));
		if (before == STATUS_BLOCKED && c->warming == warming &&
		    !strcmp(msg, c->message))
			return;
		c->counters.status = STATUS_BLOCKED;
		c->counters.consecutive_failures = 0;
		c->counters.consecutive_successes = 0;
		c->warming = warming;
		snprintf(c->message, sizeof(c->message), "%s", msg);
		free(c->details);
		c->details = NULL;
		log_write(LOG_DEBUG, c->def.name, "%s", msg);
	} else if (before == STATUS_BLOCKED) {
		/* It shows what it last knew until its run says more;
		 * one that never ran is pending again. */
		if (!c->runs)
			c->counters.status = STATUS_PENDING;
		log_write(LOG_DEBUG, c->def.name, "unblocked: %s", msg);
		if (c->sched.phase == PHASE_IDLE && in_heap(c)) {
			heap_remove(s, c);
			c->sched.next_run = clock_mono_ms();
			heap_push(s, c);
		}
	} else {
		return;
	}
	if (c->counters.status != before)
		(void)history_change(&c->history, now, before,
				     c->counters.status, msg);
	mark_dirty(s);
	if (c->counters.status != before || b)
		dependents_update(s, c);
}

/* --- recording results, continued -------------------------------------------- */

static void record(struct scheduler *s, struct check *c,
		   enum healthd_status status, const char *message,
		   json_object *details, double duration_ms)
{
	int64_t now = clock_wall_ms();
	enum check_status before = c->counters.status;

	/* A dependency stopped passing while this ran: what it says now is
	 * a consequence, not news. */
	if (blocker_of(c)) {
		log_write(LOG_DEBUG, c->def.name,
			  "result dropped: blocked by a dependency");
		return;
	}

	if (status == HEALTHD_PASS && c->def.warn_after_ms > 0 &&
	    duration_ms > (double)c->def.warn_after_ms) {
		status = HEALTHD_WARN;
		snprintf(c->message, sizeof(c->message),
			 "slow: %.0f ms, over warn_after %lld ms; %s",
			 duration_ms, (long long)c->def.warn_after_ms, message);
	} else {
		snprintf(c->message, sizeof(c->message), "%s", message);
	}
	free(c->details);
	/* As the bodies print JSON: they splice this text as it is. */
	c->details = details ? strdup(json_object_to_json_string_ext(
				       details, JSON_C_TO_STRING_PLAIN |
						JSON_C_TO_STRING_NOSLASHESCAPE))
			     : NULL;
	c->duration_ms = duration_ms;
	c->last_run = now;
	if (status == HEALTHD_FAIL) {
		c->last_failure = now;
		c->failures++;
	} else
		c->last_success = now;
	c->runs++;
	c->warming = false;
	bool changed = state_apply(&c->counters, status,
				   c->def.failure_threshold,
				   c->def.success_threshold);
	/* Out of memory, the ring misses a run: the counts stay right. */
	(void)history_add(&c->history, now, state_of_result(status),
			  duration_ms, c->message, before, c->counters.status);
	if (changed)
		log_write(status == HEALTHD_FAIL ? LOG_WARN : LOG_INFO,
			  c->def.name, "status %s -> %s: %s",
			  state_status_name(before),
			  state_status_name(c->counters.status), c->message);
	else
		log_write(LOG_DEBUG, c->def.name, "%s in %.1f ms: %s",
			  state_status_name(state_of_result(status)),
			  duration_ms, c->message);
	mark_dirty(s);
	pthread_cond_broadcast(&s->done); /* scheduler_run_now() waits */
	if (changed)
		dependents_update(s, c);
}

/* The run `c` waits for (its own, or its predecessor's) timed out.  Lock
 * held. */
static void record_timeout(struct scheduler *s, struct check *c,
			   const char *why)
{
	char msg[HOST_MESSAGE_MAX];

	/* Named as the plugin said in create(): "postgres db:5432/app: ". */
	snprintf(msg, sizeof(msg), "%s%s%s%stimed out after %lld ms%s",
		 c->handle.target[0] ? c->plugin_name : "",
		 c->handle.target[0] ? " " : "", c->handle.target,
		 c->handle.target[0] ? ": " : "",
		 (long long)c->sched.timeout_ms, why);
	record(s, c, HEALTHD_FAIL, msg, NULL, (double)c->sched.timeout_ms);
}

/* The next run after one that started at `start`: an interval later, with
 * up to ±5 % jitter.  Checks start together (the first results decide
 * /startup), so the second run of each comes anywhere from half an
 * interval to one interval after the first, never later: 10,000 checks
 * every 10 s then spread over the interval instead of running in the
 * first second of every ten. */
static void schedule_next(struct scheduler *s, struct check *c, int64_t start)
{
	int64_t interval = c->def.interval_ms;
	int64_t now = clock_mono_ms();

	c->sched.next_run = start + interval;
	if (!c->sched.spread)
		c->sched.next_run -=
			(int64_t)(rand_r(&s->seed) % (interval / 2 + 1));
	else if (interval / 10 > 0)
		c->sched.next_run += (int64_t)(rand_r(&s->seed) %
					       (interval / 10 + 1)) -
				     interval / 20;
	c->sched.spread = true;
	if (c->sched.next_run < now)
		c->sched.next_run = now;
	c->sched.phase = PHASE_IDLE;
	if (!c->sched.removed)
		heap_push(s, c);
}

/* --- the run queue and the workers ------------------------------------------ */

/* The queue holds a reference on each check in it, handed to the worker
 * that pops it.  A check is in it at most once. */
static void queue_push(struct scheduler *s, struct check *c)
{
	if (c->sched.in_queue)
		return;
	c->sched.in_queue = true;
	c->sched.queue_next = NULL;
	if (s->queue_tail)
		s->queue_tail->sched.queue_next = check_ref(c);
	else
		s->queue_head = check_ref(c);
	s->queue_tail = c;
	pthread_cond_signal(&s->work);
}

static struct check *queue_pop(struct scheduler *s)
{
	struct check *c = s->queue_head;

	s->queue_head = c->sched.queue_next;
	if (!s->queue_head)
		s->queue_tail = NULL;
	c->sched.in_queue = false;
	return c;
}

/* Removed checks whose run is still in flight, so a reload that adds the
 * name back waits for that run instead of starting a second one.  Each
 * holds a worker, so there are at most as many as workers.  Lock held. */
static void orphan_add(struct scheduler *s, struct check *c)
{
	s->orphans[s->n_orphans++] = check_ref(c);
}

static struct check *orphan_take(struct scheduler *s, struct check *c)
{
	for (int i = 0; i < s->n_orphans; i++) {
		if (s->orphans[i] == c) {
			s->orphans[i] = s->orphans[--s->n_orphans];
			return c; /* the caller drops the reference */
		}
	}
	return NULL;
}

static struct check *orphan_named(struct scheduler *s, const char *name)
{
	for (int i = 0; i < s->n_orphans; i++)
		if (!strcmp(s->orphans[i]->def.name, name))
			return s->orphans[i];
	return NULL;
}

/* A check replaced by a reload while its run was in flight: its successor
 * waited for that run to return before running.  Lock held. */
static struct check *release_successor(struct scheduler *s, struct check *c)
{
	struct check *next = c->sched.successor;

	c->sched.successor = NULL;
	if (next && next->sched.phase == PHASE_WAITING) {
		heap_remove(s, next); /* its timeout may still be pending */
		next->sched.phase = PHASE_IDLE;
		next->sched.waits_for = NULL;
		next->sched.next_run = clock_mono_ms();
		if (!next->sched.removed)
			heap_push(s, next);
	}
	return next; /* the caller drops the reference, outside the lock */
}

static void *worker_main(void *arg)
{
	struct scheduler *s = arg;

	pthread_mutex_lock(&s->lock);
	int me = s->workers_named++;
	for (;;) {
		while (!s->queue_head && !s->stopping)
			pthread_cond_wait(&s->work, &s->lock);
		if (s->stopping)
			break;
		struct check *c = queue_pop(s);
		if (c->sched.phase != PHASE_QUEUED || c->sched.removed) {
			/* Timed out while waiting, or dropped by a reload. */
			pthread_mutex_unlock(&s->lock);
			check_unref(c);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		heap_remove(s, c); /* its key grows by the grace */
		c->sched.phase = PHASE_RUNNING;
		heap_push(s, c);
		s->runs_in_flight++;
		int64_t deadline = c->sched.deadline;
		s->busy_until[me] = deadline;
		pthread_mutex_unlock(&s->lock);

		struct healthd_result r;
		host_result_init(&r, &c->handle);
		double t0 = clock_mono_s();
		int64_t start = clock_mono_ms();
		check_run(c, deadline, &r);
		double ms = (clock_mono_s() - t0) * 1000.0;

		pthread_mutex_lock(&s->lock);
		s->runs_in_flight--;
		s->busy_until[me] = 0;
		struct check *orphan = orphan_take(s, c);
		if (c->sched.removed) {
			/* Replaced or removed by a reload: whatever it says
			 * belongs to a definition that no longer exists. */
			heap_remove(s, c);
			log_write(LOG_DEBUG, c->def.name,
				  "run of a replaced definition returned after %.0f ms; result dropped",
				  ms);
		} else if (c->sched.phase == PHASE_LATE) {
			log_write(LOG_WARN, c->def.name,
				  "late run returned after %.0f ms; result dropped",
				  ms);
		} else {
			heap_remove(s, c);
			if (!r.set)
				host_api.result(&r, HEALTHD_FAIL,
						"plugin returned no result");
			record(s, c, r.status, r.message, r.details, ms);
		}
		schedule_next(s, c, start);
		struct check *next = release_successor(s, c);
		bool render = render_claim(s, clock_mono_ms());
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->lock);
		host_result_clear(&r);
		check_unref(next);
		check_unref(orphan);
		check_unref(c);
		if (render)
			s->changed(s->ctx);
		pthread_mutex_lock(&s->lock);
		if (render)
			render_done(s);
	}
	s->workers_alive--;
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* --- the scheduler thread ---------------------------------------------------- */

/* A check's event is due: queue its run, or record its timeout.  Lock
 * held. */
static void scheduler_fire(struct scheduler *s, struct check *c, int64_t now)
{
	heap_remove(s, c);
	switch (c->sched.phase) {
	case PHASE_IDLE:
		if (blocker_of(c)) {
			block_update(s, c);
			schedule_next(s, c, now);
			break;
		}
		c->sched.phase = PHASE_QUEUED;
		c->sched.deadline = now + c->def.timeout_ms;
		c->sched.timeout_ms = c->def.timeout_ms;
		heap_push(s, c);
		queue_push(s, c);
		break;
	case PHASE_QUEUED:
		record_timeout(s, c, " waiting for a free worker");
		schedule_next(s, c, now);
		break;
	case PHASE_RUNNING:
		record_timeout(s, c, "");
		c->sched.phase = PHASE_LATE; /* out of the heap until it returns */
		break;
	case PHASE_WAITING:
		/* The run of the definition this one replaced is past its
		 * deadline: a reload does not hide a hung dependency.  It
		 * still waits for that run to return. */
		record_timeout(s, c, "");
		break;
	case PHASE_LATE:
		break; /* never in the heap */
	}
}

/* Every worker is stuck in a run past its deadline by SCHEDULER_STARVED_MS:
 * no check can run again.  Lock held. */
static bool scheduler_starved(const struct scheduler *s, int64_t now)
{
	int stuck = 0;

	for (int i = 0; i < s->n_workers; i++)
		if (s->busy_until[i] && now - s->busy_until[i] > SCHEDULER_STARVED_MS)
			stuck++;
	return stuck >= s->n_workers;
}

static void *scheduler_main(void *arg)
{
	struct scheduler *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		int64_t now = clock_mono_ms();

		while (s->heap_len && heap_due(s, now))
			scheduler_fire(s, s->heap[0], now);
		if (!scheduler_starved(s, now))
			__atomic_store_n(&s->heartbeat, now, __ATOMIC_RELEASE);
		if (render_claim(s, now)) {
			pthread_mutex_unlock(&s->lock);
			s->changed(s->ctx);
			pthread_mutex_lock(&s->lock);
			render_done(s);
			continue; /* time has passed: look at the heap again */
		}

		int64_t until = now + HEARTBEAT_MS;
		if (s->heap_len && check_due(s->heap[0]) < until)
			until = check_due(s->heap[0]);
		if (s->dirty && !s->rendering &&
		    s->last_render + render_pause(s) < until)
			until = s->last_render + render_pause(s);
		struct timespec ts = clock_timespec(until);
		s->wake_at = until;
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
		s->wake_at = 0;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* --- lifecycle --------------------------------------------------------------- */

struct scheduler *scheduler_new(int workers, scheduler_changed_fn changed,
				void *ctx)
{
	struct scheduler *s = calloc(1, sizeof(*s));
	pthread_condattr_t attr;

	if (!s)
		return NULL;
	s->n_workers = workers > 0 ? workers : 1;
	s->busy_until = calloc((size_t)s->n_workers, sizeof(*s->busy_until));
	s->orphans = calloc((size_t)s->n_workers, sizeof(*s->orphans));
	if (!s->busy_until || !s->orphans) {
		free(s->busy_until);
		free(s->orphans);
		free(s);
		return NULL;
	}
	s->changed = changed;
	s->ctx = ctx;
	s->seed = (unsigned int)clock_wall_ms();
	s->heartbeat = clock_mono_ms();
	pthread_mutex_init(&s->lock, NULL);
	/* Deadlines are monotonic: so are the waits. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &attr);
	pthread_cond_init(&s->done, &attr);
	pthread_condattr_destroy(&attr);
	pthread_cond_init(&s->work, NULL);
	return s;
}

int scheduler_start(struct scheduler *s)
{
	pthread_attr_t attr;
	int rc = 0;

	pthread_attr_init(&attr);
	/* Workers are detached: one stuck in a plugin must not block exit. */
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n_workers && !rc; i++) {
		pthread_t t;
		rc = pthread_create(&t, &attr, worker_main, s);
		if (rc)
			break;
		char name[16]; /* the kernel's limit, with the NUL */
		snprintf(name, sizeof(name), "worker#%d", i % 100000);
		pthread_setname_np(t, name);
		s->workers_alive++;
	}
	pthread_mutex_unlock(&s->lock);
	pthread_attr_destroy(&attr);
	if (rc)
		return -rc; /* scheduler_stop() collects the workers made */
	rc = pthread_create(&s->thread, NULL, scheduler_main, s);
	if (rc)
		return -rc;
	pthread_setname_np(s->thread, "scheduler");
	s->thread_started = true;
	return 0;
}

/* Grow an array of check pointers to hold at least `want`. */
static int grow(struct check ***arr, size_t *cap, size_t want)
{
	if (want <= *cap)
		return 0;
	struct check **n = realloc(*arr, want * sizeof(**arr));
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = want;
	return 0;
}

/* The run a check's successor must wait for: its own, or the one it
 * waits for itself.  NULL when none is in flight. */
static struct check *run_in_flight(const struct check *c)
{
	switch (c->sched.phase) {
	case PHASE_RUNNING:
	case PHASE_LATE:
		return (struct check *)c;
	case PHASE_WAITING:
		return c->sched.waits_for;
	default:
		return NULL;
	}
}

/* Whether the timeout of that run has yet to be recorded on `c`. */
static bool timeout_pending(const struct check *c)
{
	return c->sched.phase == PHASE_RUNNING ||
	       (c->sched.phase == PHASE_WAITING && in_heap(c));
}

/* `c` waits for `in_flight` to return before it runs: two runs of one
 * check never overlap, and a hung run holds one worker however often its
 * check is edited, removed or added back.  With `timeout`, the run's
 * deadline is c's too: its timeout is recorded on c, on time.  Lock held. */
static void wait_for_run(struct scheduler *s, struct check *c,
			 struct check *in_flight, bool timeout)
{
	check_unref(in_flight->sched.successor); /* a newer edit wins */
	in_flight->sched.successor = check_ref(c);
	c->sched.phase = PHASE_WAITING;
	c->sched.waits_for = in_flight;
	c->sched.deadline = in_flight->sched.deadline;
	c->sched.timeout_ms = in_flight->sched.timeout_ms;
	if (timeout)
		heap_push(s, c);
}

/* Point each check of the set at its dependencies and its dependents,
 * within `links` (room for twice the names in every depends_on); `sorted`
 * has room for the set.  Lock held. */
static void links_resolve(struct check **set, size_t n, struct check **sorted,
			  struct check **links)
{
	size_t at = 0;

	memcpy(sorted, set, n * sizeof(*set));
	check_sort_by_name(sorted, n);
	for (size_t i = 0; i < n; i++) {
		set[i]->deps = links + at;
		set[i]->n_deps = 0;
		set[i]->n_dependents = 0;
		at += set[i]->def.n_depends_on;
	}
	for (size_t i = 0; i < n; i++) {
		struct check *c = set[i];
		for (size_t k = 0; k < c->def.n_depends_on; k++) {
			struct check *d = check_find(sorted, n,
						     c->def.depends_on[k].name);
			if (d) { /* always: the config was validated */
				c->deps[c->n_deps++] = d;
				d->n_dependents++;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		set[i]->dependents = links + at;
		at += set[i]->n_dependents;
		set[i]->n_dependents = 0;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < set[i]->n_deps; k++) {
			struct check *d = set[i]->deps[k];
			d->dependents[d->n_dependents++] = set[i];
		}
}

/* A new check takes over from the running one of the same name: status,
 * history, whether it is still warming, and the wait for a run in
 * flight.  Lock held. */
static void take_over(struct scheduler *s, struct check *c, struct check *old,
		      int64_t now)
{
	struct check *in_flight = run_in_flight(old);

	check_inherit(c, old);
	c->warming = old->warming;
	c->sched.next_run = now;
	if (in_flight)
		wait_for_run(s, c, in_flight, timeout_pending(old));
	else
		heap_push(s, c);
}

int scheduler_replace(struct scheduler *s, struct check **checks, size_t n,
		      bool warm)
{
	struct check **old, **set = malloc((n ? n : 1) * sizeof(*set));
	struct check **by_name = NULL, **links, **old_links;
	size_t n_old, n_links = 1;
	int64_t now = clock_mono_ms();

	for (size_t i = 0; i < n; i++)
		n_links += 2 * checks[i]->def.n_depends_on;
	links = malloc(n_links * sizeof(*links));
	pthread_mutex_lock(&s->lock);
	/* The heap holds old and new checks for a moment.  by_name sorts the
	 * old set, then the new one. */
	if (set && links)
		by_name = malloc((s->n_checks > n ? s->n_checks : n ? n : 1) *
				 sizeof(*by_name));
	if (!by_name || grow(&s->heap, &s->heap_cap, s->n_checks + n + 1) < 0) {
		pthread_mutex_unlock(&s->lock);
		free(set);
		free(by_name);
		free(links);
		return -ENOMEM;
	}
	old = s->checks;
	n_old = s->n_checks;
	if (n)
		memcpy(set, checks, n * sizeof(*checks));
	if (n_old)
		memcpy(by_name, old, n_old * sizeof(*old));
	check_sort_by_name(by_name, n_old);
	s->set_generation++;
	for (size_t i = 0; i < n; i++) {
		struct check *c = checks[i];

		c->sched.set_generation = s->set_generation;
		if (c->sched.in_set) {
			check_unref(c); /* the running set keeps its reference */
			continue;
		}
		c->sched.in_set = true;
		c->sched.heap_index = HEAP_NONE;
		c->sched.phase = PHASE_IDLE;
		struct check *pred = check_find(by_name, n_old, c->def.name);
		struct check *orphan = pred ? NULL : orphan_named(s, c->def.name);
		if (pred) {
			take_over(s, c, pred, now);
		} else if (orphan) {
			/* Removed by an earlier reload while its run hung,
			 * and added back: a new check, but not a second run. */
			c->warming = warm;
			wait_for_run(s, c, orphan, true);
		} else {
			c->warming = warm;
			c->sched.next_run = now;
			heap_push(s, c);
		}
	}
	for (size_t j = 0; j < n_old; j++) {
		struct check *c = old[j];

		if (c->sched.set_generation == s->set_generation)
			continue;
		c->sched.in_set = false;
		c->sched.removed = true;
		c->n_deps = c->n_dependents = 0; /* the links go with the set */
		heap_remove(s, c);
		if ((c->sched.phase == PHASE_RUNNING ||
		     c->sched.phase == PHASE_LATE) &&
		    !orphan_named(s, c->def.name))
			orphan_add(s, c);
	}
	s->checks = set;
	s->n_checks = n;
	old_links = s->links;
	s->links = links;
	links_resolve(set, n, by_name, links);
	for (size_t i = 0; i < n; i++)
		block_update(s, set[i]);
	mark_dirty(s);
	wake_by(s, s->last_render + render_pause(s));
	pthread_mutex_unlock(&s->lock);

	/* Outside the lock: the last reference runs the plugin's destroy(). */
	for (size_t j = 0; j < n_old; j++)
		if (old[j]->sched.removed)
			check_unref(old[j]);
	free(old);
	free(by_name);
	free(old_links);
	return 0;
}

void scheduler_lock(struct scheduler *s)
{
	pthread_mutex_lock(&s->lock);
}

void scheduler_unlock(struct scheduler *s)
{
	pthread_mutex_unlock(&s->lock);
}

struct check *const *scheduler_checks(struct scheduler *s, size_t *n)
{
	*n = s->n_checks;
	return s->checks;
}

int64_t scheduler_heartbeat(const struct scheduler *s)
{
	return __atomic_load_n(&s->heartbeat, __ATOMIC_ACQUIRE);
}

bool scheduler_stop(struct scheduler *s, void (*overdue)(void))
{
	int64_t last = 0;

	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->wake);
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->lock);
	if (s->thread_started)
		pthread_join(s->thread, NULL);

	/* Runs in flight get until their deadline and its grace, no
	 * longer: one that returns on time is then destroyed cleanly. */
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n_workers; i++)
		if (s->busy_until[i] &&
		    s->busy_until[i] + HEALTHD_DEADLINE_GRACE_MS > last)
			last = s->busy_until[i] + HEALTHD_DEADLINE_GRACE_MS;
	while (s->workers_alive > 0 && clock_mono_ms() < last) {
		struct timespec ts = clock_timespec(last);
		pthread_cond_timedwait(&s->done, &s->lock, &ts);
	}
	/* Runs still in flight are past it: `overdue` ends those it can
	 * (a plugin host is killed), and their workers return. */
	if (s->runs_in_flight && overdue) {
		pthread_mutex_unlock(&s->lock);
		overdue();
		pthread_mutex_lock(&s->lock);
		last = clock_mono_ms() + 1000;
		while (s->runs_in_flight && clock_mono_ms() < last) {
			struct timespec ts = clock_timespec(last);
			pthread_cond_timedwait(&s->done, &s->lock, &ts);
		}
	}
	/* Idle workers leave at once; give them a moment to do so. */
	int64_t grace = clock_mono_ms() + 100;
	while (s->workers_alive > s->runs_in_flight && clock_mono_ms() < grace) {
		struct timespec ts = clock_timespec(grace);
		pthread_cond_timedwait(&s->done, &s->lock, &ts);
	}
	bool all = s->workers_alive == 0;
	pthread_mutex_unlock(&s->lock);
	return all;
}

void scheduler_free(struct scheduler *s)
{
	if (!s)
		return;
	while (s->queue_head)
		check_unref(queue_pop(s));
	for (size_t i = 0; i < s->n_checks; i++)
		check_unref(s->checks[i]);
	for (int i = 0; i < s->n_orphans; i++)
		check_unref(s->orphans[i]);
	free(s->orphans);
	free(s->checks);
	free(s->links);
	free(s->heap);
	free(s->busy_until);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->done);
	free(s);
}

int scheduler_run_now(struct scheduler *s, const char *name)
{
	struct check *c = NULL;
	int rc = -ENOENT;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_checks && !c; i++)
		if (!strcmp(s->checks[i]->def.name, name))
			c = check_ref(s->checks[i]);
	if (c && c->counters.status == STATUS_BLOCKED)
		rc = -EAGAIN; /* it would not run: its dependency decides */
	else if (c) {
		/* Its run in flight (or one that hung past its deadline, then
		 * the one asked for): its timeout twice, and a margin. */
		int64_t until = clock_mono_ms() + 2 * c->def.timeout_ms +
				SCHEDULER_RUN_NOW_SLACK_MS;
		struct timespec ts = clock_timespec(until);
		uint64_t runs = c->runs;
		bool asked = false;

		rc = 0;
		while (c->runs == runs && !rc) {
			if (c->sched.removed || s->stopping) {
				rc = -ECANCELED;
			} else if (!asked && c->sched.phase == PHASE_IDLE) {
				/* Due now: the scheduler thread queues it.  A
				 * run in flight is waited for instead. */
				heap_remove(s, c);
				c->sched.next_run = clock_mono_ms();
				heap_push(s, c);
				asked = true;
			} else if (pthread_cond_timedwait(&s->done, &s->lock,
							  &ts) == ETIMEDOUT) {
				rc = -ETIMEDOUT;
			}
		}
	}
	pthread_mutex_unlock(&s->lock);
	check_unref(c); /* outside the lock: it may be the last reference */
	return rc;
}
