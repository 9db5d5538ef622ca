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
/* Results are rendered at most this often: a burst of them costs one
 * render, and rendering never competes with runs for the lock. */
#define RENDER_MIN_MS 5

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

	int n_workers, workers_alive, workers_named, runs_in_flight;
	int64_t *busy_until; /* per worker: the deadline of its run, 0 idle */
	bool thread_started, stopping;
	bool dirty;          /* state changed since the last render */
	int64_t last_render; /* monotonic ms */
	pthread_t thread;
	unsigned int seed;
	int64_t heartbeat; /* atomic */

	scheduler_changed_fn changed;
	void *ctx;
};

static struct timespec timespec_of(int64_t ms)
{
	return (struct timespec){.tv_sec = ms / 1000,
				 .tv_nsec = (ms % 1000) * 1000000};
}

/* --- the heap ------------------------------------------------------------ */

static int64_t check_due(const struct check *c)
{
	return c->phase == PHASE_IDLE ? c->next_run : c->deadline;
}

static void heap_swap(struct scheduler *s, size_t a, size_t b)
{
	struct check *t = s->heap[a];

	s->heap[a] = s->heap[b];
	s->heap[b] = t;
	s->heap[a]->heap_index = a;
	s->heap[b]->heap_index = b;
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

/* Capacity is reserved in scheduler_replace(), so this cannot fail. */
static void heap_push(struct scheduler *s, struct check *c)
{
	c->heap_index = s->heap_len;
	s->heap[s->heap_len++] = c;
	heap_up(s, c->heap_index);
	pthread_cond_signal(&s->wake);
}

static void heap_remove(struct scheduler *s, struct check *c)
{
	size_t i = c->heap_index;

	if (i == HEAP_NONE)
		return;
	c->heap_index = HEAP_NONE;
	if (--s->heap_len == i)
		return;
	s->heap[i] = s->heap[s->heap_len];
	s->heap[i]->heap_index = i;
	heap_down(s, i);
	heap_up(s, i);
}

/* --- publishing results ---------------------------------------------------- */

/* The scheduler thread renders soon, outside the lock.  Lock held. */
static void mark_dirty(struct scheduler *s)
{
	s->dirty = true;
	pthread_cond_signal(&s->wake);
}

static const char *const raw_names[] = {"pass", "warn", "fail"};

/* Record one run's outcome and tell the owner.  Lock held. */
static void publish(struct scheduler *s, struct check *c,
		    enum healthd_status status, const char *message,
		    json_object *details, double duration_ms)
{
	int64_t now = clock_wall_ms();
	enum check_status before = c->counters.status;

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
	c->details = details ? strdup(json_object_to_json_string_ext(
				       details, JSON_C_TO_STRING_PLAIN))
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
	if (state_apply(&c->counters, status, c->def.failure_threshold,
			c->def.success_threshold))
		log_write(status == HEALTHD_FAIL ? LOG_WARN : LOG_INFO,
			  c->def.name, "status %s -> %s: %s",
			  state_status_name(before),
			  state_status_name(c->counters.status), c->message);
	else
		log_write(LOG_DEBUG, c->def.name, "%s in %.1f ms: %s",
			  raw_names[status], duration_ms, c->message);
	mark_dirty(s);
}

/* The next run after one that started at `start`: an interval later, with
 * up to ±5 % jitter so checks sharing an interval spread out. */
static void schedule_next(struct scheduler *s, struct check *c, int64_t start)
{
	int64_t interval = c->def.interval_ms;
	int64_t jitter = interval / 10;
	int64_t now = clock_mono_ms();

	c->next_run = start + interval;
	if (jitter > 0)
		c->next_run += (int64_t)(rand_r(&s->seed) % (jitter + 1)) - jitter / 2;
	if (c->next_run < now)
		c->next_run = now;
	c->phase = PHASE_IDLE;
	if (!c->removed)
		heap_push(s, c);
}

/* --- the run queue and the workers ------------------------------------------ */

/* The queue holds a reference on each check in it, handed to the worker
 * that pops it.  A check is in it at most once. */
static void queue_push(struct scheduler *s, struct check *c)
{
	if (c->in_queue)
		return;
	c->in_queue = true;
	c->queue_next = NULL;
	if (s->queue_tail)
		s->queue_tail->queue_next = check_ref(c);
	else
		s->queue_head = check_ref(c);
	s->queue_tail = c;
	pthread_cond_signal(&s->work);
}

static struct check *queue_pop(struct scheduler *s)
{
	struct check *c = s->queue_head;

	s->queue_head = c->queue_next;
	if (!s->queue_head)
		s->queue_tail = NULL;
	c->in_queue = false;
	return c;
}

/* A check replaced by a reload while its run was in flight: its successor
 * waited for that run to return before running.  Lock held. */
static struct check *release_successor(struct scheduler *s, struct check *c)
{
	struct check *next = c->successor;

	c->successor = NULL;
	if (next && next->phase == PHASE_WAITING) {
		next->phase = PHASE_IDLE;
		next->waits_for = NULL;
		next->next_run = clock_mono_ms();
		if (!next->removed)
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
		if (c->phase != PHASE_QUEUED || c->removed) {
			/* Timed out while waiting, or dropped by a reload. */
			pthread_mutex_unlock(&s->lock);
			check_unref(c);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		c->phase = PHASE_RUNNING;
		s->runs_in_flight++;
		int64_t deadline = c->deadline;
		s->busy_until[me] = deadline;
		pthread_mutex_unlock(&s->lock);

		struct healthd_result r;
		host_result_init(&r, &c->handle);
		double t0 = clock_mono_s();
		int64_t start = clock_mono_ms();
		c->plugin->desc->check(&host_api, c->instance, deadline, &r);
		double ms = (clock_mono_s() - t0) * 1000.0;

		pthread_mutex_lock(&s->lock);
		s->runs_in_flight--;
		s->busy_until[me] = 0;
		if (c->phase == PHASE_LATE) {
			log_write(LOG_WARN, c->def.name,
				  "late run returned after %.0f ms; result dropped",
				  ms);
		} else {
			heap_remove(s, c);
			if (!r.set)
				host_api.result(&r, HEALTHD_FAIL,
						"plugin returned no result");
			publish(s, c, r.status, r.message, r.details, ms);
		}
		schedule_next(s, c, start);
		struct check *next = release_successor(s, c);
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->lock);
		host_result_clear(&r);
		check_unref(next);
		check_unref(c);
		pthread_mutex_lock(&s->lock);
	}
	s->workers_alive--;
	pthread_cond_broadcast(&s->done);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* --- the scheduler thread ---------------------------------------------------- */

/* A check's event is due: queue its run, or publish its timeout.  Lock held. */
static void scheduler_fire(struct scheduler *s, struct check *c, int64_t now)
{
	char msg[HOST_MESSAGE_MAX];

	heap_remove(s, c);
	switch (c->phase) {
	case PHASE_IDLE:
		c->phase = PHASE_QUEUED;
		c->deadline = now + c->def.timeout_ms;
		heap_push(s, c);
		queue_push(s, c);
		break;
	case PHASE_QUEUED:
		snprintf(msg, sizeof(msg),
			 "timed out after %lld ms waiting for a free worker",
			 (long long)c->def.timeout_ms);
		publish(s, c, HEALTHD_FAIL, msg, NULL, (double)c->def.timeout_ms);
		schedule_next(s, c, now);
		break;
	case PHASE_RUNNING:
		snprintf(msg, sizeof(msg), "timed out after %lld ms",
			 (long long)c->def.timeout_ms);
		publish(s, c, HEALTHD_FAIL, msg, NULL, (double)c->def.timeout_ms);
		c->phase = PHASE_LATE; /* out of the heap until it returns */
		break;
	case PHASE_LATE:
	case PHASE_WAITING:
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

		while (s->heap_len && check_due(s->heap[0]) <= now)
			scheduler_fire(s, s->heap[0], now);
		if (!scheduler_starved(s, now))
			__atomic_store_n(&s->heartbeat, now, __ATOMIC_RELEASE);
		if (s->dirty && now - s->last_render >= RENDER_MIN_MS) {
			s->dirty = false;
			s->last_render = now;
			pthread_mutex_unlock(&s->lock);
			s->changed(s->ctx);
			pthread_mutex_lock(&s->lock);
			continue; /* time has passed: look at the heap again */
		}

		int64_t until = now + HEARTBEAT_MS;
		if (s->heap_len && check_due(s->heap[0]) < until)
			until = check_due(s->heap[0]);
		if (s->dirty && s->last_render + RENDER_MIN_MS < until)
			until = s->last_render + RENDER_MIN_MS;
		struct timespec ts = timespec_of(until);
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
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
	if (!s->busy_until) {
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

static bool contains(struct check **arr, size_t n, const struct check *c)
{
	for (size_t i = 0; i < n; i++)
		if (arr[i] == c)
			return true;
	return false;
}

/* A new check takes over from the running one of the same name.  If that
 * one's run is still in flight (or it is itself waiting for one), the new
 * one waits for that run to return: two runs of one check never overlap,
 * and a hung run holds one worker however often its check is edited.
 * Lock held. */
static void take_over(struct scheduler *s, struct check *c, struct check *old,
		      int64_t now)
{
	struct check *in_flight = old->phase == PHASE_WAITING ? old->waits_for
				  : old->phase == PHASE_RUNNING ||
					  old->phase == PHASE_LATE
					? old
					: NULL;

	check_inherit(c, old);
	c->warming = false;
	c->next_run = now;
	if (!in_flight) {
		heap_push(s, c);
		return;
	}
	check_unref(in_flight->successor); /* a newer edit wins */
	in_flight->successor = check_ref(c);
	c->phase = PHASE_WAITING;
	c->waits_for = in_flight;
}

int scheduler_replace(struct scheduler *s, struct check **checks, size_t n,
		      bool warm)
{
	struct check **old, **set = malloc((n ? n : 1) * sizeof(*set));
	size_t n_old;
	int64_t now = clock_mono_ms();

	pthread_mutex_lock(&s->lock);
	/* The heap holds old and new checks for a moment. */
	if (!set || grow(&s->heap, &s->heap_cap, s->n_checks + n + 1) < 0) {
		pthread_mutex_unlock(&s->lock);
		free(set);
		return -ENOMEM;
	}
	memcpy(set, checks, n * sizeof(*checks));
	old = s->checks;
	n_old = s->n_checks;
	for (size_t i = 0; i < n; i++) {
		struct check *c = checks[i];
		if (contains(old, n_old, c)) {
			check_unref(c); /* the running set keeps its reference */
			continue;
		}
		struct check *pred = NULL;
		for (size_t j = 0; j < n_old && !pred; j++)
			if (strcmp(old[j]->def.name, c->def.name) == 0)
				pred = old[j];
		c->heap_index = HEAP_NONE;
		c->phase = PHASE_IDLE;
		if (pred) {
			take_over(s, c, pred, now);
		} else {
			c->warming = warm;
			c->next_run = now;
			heap_push(s, c);
		}
	}
	for (size_t j = 0; j < n_old; j++) {
		if (contains(checks, n, old[j]))
			continue;
		old[j]->removed = true;
		heap_remove(s, old[j]);
	}
	s->checks = set;
	s->n_checks = n;
	mark_dirty(s);
	pthread_mutex_unlock(&s->lock);

	/* Outside the lock: the last reference runs the plugin's destroy(). */
	for (size_t j = 0; j < n_old; j++)
		if (old[j]->removed)
			check_unref(old[j]);
	free(old);
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

bool scheduler_stop(struct scheduler *s)
{
	int64_t last = 0;

	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->wake);
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->lock);
	if (s->thread_started)
		pthread_join(s->thread, NULL);

	/* Runs in flight get until their deadline, no longer. */
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n_workers; i++)
		if (s->busy_until[i] > last)
			last = s->busy_until[i];
	while (s->workers_alive > 0 && clock_mono_ms() < last) {
		struct timespec ts = timespec_of(last);
		pthread_cond_timedwait(&s->done, &s->lock, &ts);
	}
	/* Idle workers leave at once; give them a moment to do so. */
	int64_t grace = clock_mono_ms() + 100;
	while (s->workers_alive > s->runs_in_flight && clock_mono_ms() < grace) {
		struct timespec ts = timespec_of(grace);
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
	free(s->checks);
	free(s->heap);
	free(s->busy_until);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->done);
	free(s);
}
