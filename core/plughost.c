/* plughost.c — a plugin host process: loads one plugin, makes instances
 * and runs checks for the daemon (see plughost.h, frame.h). */
#include "plughost.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "frame.h"
#include "host.h"
#include "loader.h"
#include "reap.h"

/* One instance: the options it was made from, the handle the plugin
 * sees, and the plugin's own instance. */
struct hinst {
	uint64_t id;
	struct config_check def;
	struct healthd_check handle;
	void *instance;
	int running; /* runs in flight (lock) */
	struct hinst *next;
};

struct run {
	struct hinst *inst;
	uint64_t run_id;
	int64_t deadline;
};

static struct {
	int fd;
	struct plugin *plugin;
	pthread_mutex_t lock; /* the instances and the socket's writes */
	struct hinst *instances;
} ph = {.fd = PLUGHOST_FD, .lock = PTHREAD_MUTEX_INITIALIZER};

/* The daemon reads frames whole: one send per frame, never interleaved. */
static void send_frame(struct frame_out *f)
{
	size_t n = frame_end(f);

	if (!n)
		return; /* cannot happen for what the host sends: bounded */
	pthread_mutex_lock(&ph.lock);
	ssize_t w = send(ph.fd, f->buf, n, MSG_NOSIGNAL);
	pthread_mutex_unlock(&ph.lock);
	if (w < 0)
		_exit(0); /* the daemon is gone */
}

static void log_sink(const struct healthd_check *check,
		     enum healthd_log_level level, const char *line)
{
	struct frame_out fo, *f = &fo;
	const struct hinst *h =
		check ? (const struct hinst *)((const char *)check -
					       offsetof(struct hinst, handle))
		      : NULL;

	frame_begin(f, FRAME_LOG);
	frame_u64(f, h ? h->id : 0);
	frame_u32(f, (uint32_t)level);
	frame_str(f, line);
	send_frame(f);
	frame_clear(f);
}

static void hello(const char *path)
{
	char err[1024];
	struct frame_out fo, *f = &fo;

	if (loader_open(path, NULL, 0, &ph.plugin, err, sizeof(err)) < 0) {
		frame_begin(f, FRAME_LOAD_FAILED);
		frame_str(f, err);
		send_frame(f);
		_exit(0);
	}
	const struct healthd_plugin *d = ph.plugin->desc;
	uint32_t n = 0;
	for (const struct healthd_option_spec *s = d->options; s && s->name; s++)
		n++;
	frame_begin(f, FRAME_HELLO);
	frame_str(f, d->name);
	frame_str(f, d->description);
	frame_u32(f, n);
	for (const struct healthd_option_spec *s = d->options; s && s->name; s++) {
		frame_str(f, s->name);
		frame_str(f, s->default_value);
		frame_str(f, s->help);
		frame_u32(f, loader_is_required(d, s->name));
	}
	if (!frame_end(f)) {
		frame_clear(f);
		frame_begin(f, FRAME_LOAD_FAILED);
		frame_str(f, "the plugin's option table is too large");
	}
	send_frame(f);
	frame_clear(f);
}

static struct hinst *find(uint64_t id)
{
	struct hinst *h;

	pthread_mutex_lock(&ph.lock);
	for (h = ph.instances; h && h->id != id; h = h->next)
		;
	pthread_mutex_unlock(&ph.lock);
	return h;
}

static void unlink_inst(struct hinst *h)
{
	pthread_mutex_lock(&ph.lock);
	for (struct hinst **p = &ph.instances; *p; p = &(*p)->next) {
		if (*p == h) {
			*p = h->next;
			break;
		}
	}
	pthread_mutex_unlock(&ph.lock);
	config_check_clear(&h->def);
	free(h);
}

/* create() on a thread of its own: one that hangs does not stop runs of
 * other instances; the daemon kills the host when its time is up. */
static void *create_main(void *arg)
{
	struct hinst *h = arg;
	char why[512] = "";
	int rc = ph.plugin->desc->create(&host_api, &h->handle, &h->instance,
					 why, sizeof(why));
	struct frame_out fo, *f = &fo;

	host_redact(&h->handle, why);
	frame_begin(f, FRAME_CREATED);
	frame_u64(f, h->id);
	frame_u32(f, rc < 0 ? 1 : 0);
	/* Refused: why; made: what it talks to (host->target()). */
	frame_str(f, rc < 0 ? why : h->handle.target);
	if (rc < 0)
		unlink_inst(h);
	send_frame(f);
	frame_clear(f);
	return NULL;
}

static void *run_main(void *arg)
{
	struct run *run = arg;
	struct healthd_result r;
	struct frame_out fo, *f = &fo;

	host_result_init(&r, &run->inst->handle);
	ph.plugin->desc->check(&host_api, run->inst->instance, run->deadline,
			       &r);
	frame_begin(f, FRAME_RESULT);
	frame_u64(f, run->run_id);
	frame_u32(f, r.set);
	frame_u32(f, (uint32_t)r.status);
	frame_str(f, r.message);
	frame_str(f, r.details ? json_object_to_json_string_ext(
					 r.details, JSON_C_TO_STRING_PLAIN)
			       : NULL);
	if (!frame_end(f)) { /* details too large: the result without them */
		frame_clear(f);
		frame_begin(f, FRAME_RESULT);
		frame_u64(f, run->run_id);
		frame_u32(f, r.set);
		frame_u32(f, (uint32_t)r.status);
		frame_str(f, r.message);
		frame_str(f, NULL);
	}
	/* Done with the instance before the daemon hears of it: a DESTROY
	 * may follow the result at once. */
	pthread_mutex_lock(&ph.lock);
	run->inst->running--;
	pthread_mutex_unlock(&ph.lock);
	send_frame(f);
	frame_clear(f);
	host_result_clear(&r);
	free(run);
	return NULL;
}

/* Creates and runs go to a pool of threads, grown when none is idle: a
 * hung run keeps its thread (the daemon replaces the whole host), the
 * others reuse theirs instead of paying for a thread per run. */
struct job {
	void *(*fn)(void *);
	void *arg;
	struct job *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct job *head, *tail;
	int idle, queued;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER};

static void *pool_main(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		pool.idle++;
		while (!pool.head)
			pthread_cond_wait(&pool.more, &pool.lock);
		pool.idle--;
		struct job *j = pool.head;
		pool.head = j->next;
		if (!pool.head)
			pool.tail = NULL;
		pool.queued--;
		pthread_mutex_unlock(&pool.lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&pool.lock);
	}
	return NULL;
}

static void spawn(void *(*fn)(void *), void *arg)
{
	struct job *j = malloc(sizeof(*j));
	pthread_attr_t attr;
	pthread_t t;

	if (!j)
		_exit(71); /* the daemon reports the exit and starts afresh */
	*j = (struct job){.fn = fn, .arg = arg};
	pthread_mutex_lock(&pool.lock);
	if (pool.tail)
		pool.tail->next = j;
	else
		pool.head = j;
	pool.tail = j;
	pool.queued++;
	bool grow = pool.idle < pool.queued;
	pthread_cond_signal(&pool.more);
	pthread_mutex_unlock(&pool.lock);
	if (!grow)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, pool_main, NULL) != 0)
		_exit(71);
	pthread_attr_destroy(&attr);
}

/* CREATE: id, check name, options (key, value, secrets). */
static int on_create(struct frame_in *in)
{
	struct hinst *h = calloc(1, sizeof(*h));
	uint32_t n;

	if (!h)
		return -1;
	h->id = frame_get_u64(in);
	h->def.name = frame_get_str(in);
	n = frame_get_u32(in);
	if (in->failed || !h->def.name || n > 4096 ||
	    !(h->def.options = calloc(n ? n : 1, sizeof(*h->def.options))))
		goto fail;
	for (uint32_t i = 0; i < n; i++) {
		struct config_option *o = &h->def.options[i];
		uint32_t k;

		h->def.n_options++;
		o->key = frame_get_str(in);
		o->value = frame_get_str(in);
		k = frame_get_u32(in);
		if (in->failed || !o->key || !o->value || k > 256 ||
		    !(o->secrets = calloc(k ? k : 1, sizeof(*o->secrets))))
			goto fail;
		for (o->n_secrets = 0; o->n_secrets < k; o->n_secrets++)
			if (!(o->secrets[o->n_secrets] = frame_get_str(in)))
				goto fail;
	}
	if (frame_done(in) < 0)
		goto fail;
	host_check_init(&h->handle, &h->def, ph.plugin->desc->options);
	pthread_mutex_lock(&ph.lock);
	h->next = ph.instances;
	ph.instances = h;
	pthread_mutex_unlock(&ph.lock);
	spawn(create_main, h);
	return 0;
fail:
	config_check_clear(&h->def);
	free(h);
	return -1;
}

/* RUN: run id, instance id, deadline. */
static int on_run(struct frame_in *in)
{
	struct run *run = calloc(1, sizeof(*run));

	if (!run)
		return -1;
	run->run_id = frame_get_u64(in);
	run->inst = find(frame_get_u64(in));
	run->deadline = frame_get_i64(in);
	if (frame_done(in) < 0 || !run->inst) {
		free(run);
		return -1;
	}
	pthread_mutex_lock(&ph.lock);
	run->inst->running++;
	pthread_mutex_unlock(&ph.lock);
	spawn(run_main, run);
	return 0;
}

/* DESTROY: instance id.  The daemon sends it only when no run of the
 * instance is in flight. */
static int on_destroy(struct frame_in *in)
{
	struct hinst *h = find(frame_get_u64(in));

	if (frame_done(in) < 0 || !h)
		return -1;
	ph.plugin->desc->destroy(h->instance);
	unlink_inst(h);
	return 0;
}

/* The daemon closed the socket: destroy what is not running (a plugin
 * closes its connections cleanly) and leave. */
static void leave(void)
{
	for (;;) {
		struct hinst *h;

		/* One at a time, without the lock: destroy() may log. */
		pthread_mutex_lock(&ph.lock);
		for (h = ph.instances; h && (h->running || !h->instance);
		     h = h->next)
			;
		pthread_mutex_unlock(&ph.lock);
		if (!h)
			_exit(0);
		ph.plugin->desc->destroy(h->instance);
		unlink_inst(h);
	}
}

int plughost_main(void)
{
	const char *path = getenv(PLUGHOST_ENV);
	const char *parent = getenv(PLUGHOST_ENV_PARENT);
	unsigned char *buf;

	/* One malloc arena for the pool: otherwise each thread added the
	 * first time an outage hangs more runs at once than ever before
	 * gets an arena of its own, some 70-140 KiB more resident for good
	 * (the pool never shrinks), where a shared one costs only its
	 * stack.  The threads mostly wait on peers: little contention. */
	mallopt(M_ARENA_MAX, 1);
	buf = malloc(FRAME_MAX);

	/* Die with the daemon, even if it died before this line. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* A peer that resets a connection a plugin writes to (hiredis writes
	 * with write()) fails that run, not the host. */
	signal(SIGPIPE, SIG_IGN);
	/* The socket to the daemon came through exec: no child a plugin
	 * starts may inherit it. */
	fcntl(ph.fd, F_SETFD, FD_CLOEXEC);
	if (!path || !parent || getppid() != (pid_t)atol(parent) || !buf)
		return 1;
	char *plugin = strdup(path);
	unsetenv(PLUGHOST_ENV);
	unsetenv(PLUGHOST_ENV_PARENT);
	if (!plugin || loader_init() < 0)
		return 1;
	host_set_log_sink(log_sink);
	hello(plugin);
	free(plugin);

	int64_t swept = clock_mono_ms();
	for (;;) {
		struct pollfd p = {.fd = ph.fd, .events = POLLIN};
		int64_t now = clock_mono_ms();

		/* Reap children the plugin left every REAP_SWEEP_MS, busy or
		 * not: a host sent a frame more often than that (the exec
		 * plugin's, with a few checks) would otherwise never sweep,
		 * and each command killed at its deadline but not reaped in
		 * time by the plugin would stay a zombie. */
		if (now - swept >= REAP_SWEEP_MS) {
			reap_sweep(NULL, NULL);
			swept = now;
		}
		if (poll(&p, 1, (int)(swept + REAP_SWEEP_MS - now)) == 0 ||
		    (p.revents & POLLIN) == 0) {
			if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
				leave();
			continue;
		}
		ssize_t n = recv(ph.fd, buf, FRAME_MAX, MSG_TRUNC);
		if (n == 0 || (n < 0 && errno != EINTR))
			leave();
		if (n < 0)
			continue;
		struct frame_in in;
		int rc = -1;
		if ((size_t)n <= FRAME_MAX && frame_parse(&in, buf, (size_t)n) == 0) {
			switch (in.type) {
			case FRAME_CREATE:
				rc = on_create(&in);
				break;
			case FRAME_RUN:
				rc = on_run(&in);
				break;
			case FRAME_DESTROY:
				rc = on_destroy(&in);
				break;
			default:
				break;
			}
		}
		if (rc < 0)
			_exit(2); /* the daemon never sends this: stop */
	}
}
