/* daemon.c — config, checks, scheduler and server tied together. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "control.h"
#include "daemon.h"
#include "http.h"
#include "log.h"
#include "render.h"
#include "scheduler.h"
#include "snapshot.h"
#include "watch.h"

/* /live fails when the scheduler has not made progress for this long. */
#define LIVE_STALL_MS 5000
/* How often bodies are re-rendered when nothing changes (uptime). */
#define REFRESH_MS 1000
/* A burst of file events (an editor's save, a ConfigMap swap) becomes one
 * reload this long after the last event. */
#define DEBOUNCE_MS 150
/* ...but a directory that never goes quiet still reloads this often. */
#define DEBOUNCE_MAX_MS 1000

/* What only a restart can change: the values the process started with. */
struct fixed_settings {
	char *listen;
	int threads, max_connections, workers;
	int64_t connection_timeout_ms;
	char *control_socket;
};

struct daemon {
	char *config_path;
	bool serve; /* listen (not --once) */
	struct fixed_settings fixed;
	struct scheduler *sched;
	struct watch *watch;
	int64_t started_at; /* monotonic ms */

	/* Renders are serialised by `publish`, so a newer view is never
	 * overtaken by an older one; `cfg` and `http` change only under it
	 * (taken before the scheduler's lock). */
	pthread_mutex_t publish;
	pthread_cond_t settled; /* --once: results arrived (with `publish`) */
	struct config *cfg;
	struct http *http;
	struct control *control;

	/* `healthd ctl reload`: asked by a control thread, done by
	 * daemon_run()'s (the one that reloads), under `ctl`. */
	pthread_mutex_t ctl;
	pthread_cond_t ctl_done;
	int wake_fd; /* eventfd: daemon_run() has a request or a new timer */
	uint64_t reloads_asked, reloads_done;
	int reload_rc;
	char reload_err[1024];
	uint64_t reload_generation;
	bool ctl_closed; /* daemon_run() is over: nothing more is reloaded */

	/* Guarded by the scheduler's lock: */
	bool started, draining;
	bool restart_required; /* the config asks for a fixed setting to change */
	uint64_t generation;
	int64_t loaded_at;
	char *last_reload_error;
	struct snapshot *pending; /* built before the server exists */
	/* `healthd ctl drain` (not kept across restarts): */
	bool maintenance;
	char *maint_reason;
	int64_t maint_since, maint_until; /* wall ms; until 0: none */
	int64_t maint_end;                /* monotonic ms; 0: none */
};

/* --- views and snapshots ----------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A plain copy of the state, for rendering.  Scheduler lock held. */
static int daemon_view(struct daemon *d, struct health_view *v)
{
	size_t n;
	struct check *const *checks = scheduler_checks(d->sched, &n);

	memset(v, 0, sizeof(*v));
	v->checks = calloc(n ? n : 1, sizeof(*v->checks));
	if (!v->checks)
		return -ENOMEM;
	v->n_checks = n;
	v->started = d->started;
	v->draining = d->draining;
	v->maintenance = d->maintenance;
	v->maintenance_since = d->maint_since;
	v->maintenance_until = d->maint_until;
	v->uptime_s = (double)(clock_mono_ms() - d->started_at) / 1000.0;
	v->generation = d->generation;
	v->loaded_at = d->loaded_at;
	v->last_reload_ok = !d->last_reload_error;
	v->last_reload_error = dup_or_null(d->last_reload_error);
	v->service = dup_or_null(d->cfg->service);
	v->maintenance_reason = dup_or_null(d->maint_reason);
	v->restart_required = d->restart_required;
	v->n_restarts = isolate_metrics(v->restarts, RENDER_RESTARTS_MAX,
					&v->plugin_hosts);
	for (size_t i = 0; i < n; i++) {
		const struct check *c = checks[i];
		struct check_view *cv = &v->checks[i];
		cv->name = strdup(c->def.name);
		cv->plugin = strdup(c->plugin_name);
		cv->isolation = c->iso ? "process" : "inline";
		cv->critical = c->def.critical;
		cv->status = c->counters.status;
		cv->last_result = c->counters.last_result;
		cv->message = strdup(c->message);
		cv->details = dup_or_null(c->details);
		cv->duration_ms = c->duration_ms;
		cv->last_run = c->last_run;
		cv->last_success = c->last_success;
		cv->last_failure = c->last_failure;
		cv->consecutive_failures = c->counters.consecutive_failures;
		cv->consecutive_successes = c->counters.consecutive_successes;
		cv->interval_ms = c->def.interval_ms;
		cv->timeout_ms = c->def.timeout_ms;
		cv->warming = c->warming;
		cv->runs = c->runs;
		cv->failures = c->failures;
		history_summarize(&c->history, &cv->history);
		if (!cv->name || !cv->plugin || !cv->message) {
			render_view_clear(v);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Started: listening (the server exists) and every check has a first
 * result.  Latched: a check added by a later reload does not make the
 * service "start" again.  Both locks held. */
static void daemon_update_started(struct daemon *d)
{
	size_t n;
	struct check *const *checks = scheduler_checks(d->sched, &n);

	if (d->started || !d->http)
		return;
	for (size_t i = 0; i < n; i++)
		if (checks[i]->counters.status == STATUS_PENDING)
			return;
	d->started = true;
	log_info("started: every check has a first result");
}

/* Render every body from a copy of the state, outside the scheduler's
 * lock, and hand them to the server. */
static void daemon_publish(struct daemon *d)
{
	struct health_view v;
	struct snapshot *s = NULL;
	int rc;

	pthread_mutex_lock(&d->publish);
	scheduler_lock(d->sched);
	daemon_update_started(d);
	rc = daemon_view(d, &v);
	scheduler_unlock(d->sched);
	if (rc == 0 && !(s = snapshot_build(&v, d->cfg)))
		render_view_clear(&v);
	if (!s) {
		log_error("out of memory rendering responses; serving the last ones");
	} else if (d->http) {
		http_publish(d->http, s);
	} else {
		snapshot_unref(d->pending);
		d->pending = s;
	}
	pthread_mutex_unlock(&d->publish);
}

/* The scheduler's `changed` callback. */
static void daemon_changed(void *ctx)
{
	struct daemon *d = ctx;

	if (d->serve) {
		daemon_publish(d);
		return;
	}
	pthread_mutex_lock(&d->publish);
	pthread_cond_broadcast(&d->settled);
	pthread_mutex_unlock(&d->publish);
}

/* For /checks/NAME/history: a copy, so rendering holds no lock. */
static int daemon_history(void *ctx, const char *name, struct history *out)
{
	struct daemon *d = ctx;
	size_t n;
	int rc = -ENOENT;

	scheduler_lock(d->sched);
	struct check *const *checks = scheduler_checks(d->sched, &n);
	for (size_t i = 0; i < n && rc == -ENOENT; i++)
		if (strcmp(checks[i]->def.name, name) == 0)
			rc = history_copy(out, &checks[i]->history);
	scheduler_unlock(d->sched);
	return rc;
}

static bool daemon_alive(void *ctx)
{
	struct daemon *d = ctx;

	return clock_mono_ms() - scheduler_heartbeat(d->sched) < LIVE_STALL_MS;
}

/* --- checks from a config ------------------------------------------------------ */

static void checks_free(struct check **checks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_unref(checks[i]);
	free(checks);
}

/* One check per config entry: a running check whose definition is unchanged
 * is kept (a new reference), every other one is created.  `running` is
 * sorted by name.  Returns 0 and *out, or a negative code with the first
 * error in err. */
static int checks_build(const struct config *cfg, struct check *const *running,
			size_t n_running, struct check ***out, char *err,
			size_t errlen)
{
	struct check **checks = calloc(cfg->n_checks ? cfg->n_checks : 1,
				       sizeof(*checks));
	int rc = 0;

	if (!checks)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_checks; i++) {
		const struct config_check *cc = &cfg->checks[i];
		struct check *same = check_find(running, n_running, cc->name);

		if (same && config_check_equal(&same->def, cc) &&
		    check_plugin_current(same, cfg->plugin_dirs,
					 cfg->n_plugin_dirs)) {
			checks[i] = check_ref(same);
			continue;
		}
		rc = check_create(cfg->path, cc, cfg->plugin_dirs,
				  cfg->n_plugin_dirs, &checks[i], err, errlen);
		if (rc < 0) {
			checks_free(checks, i);
			return rc;
		}
	}
	*out = checks;
	return 0;
}

int daemon_check_config(const char *config_path,
			struct config_problems *problems)
{
	struct config *cfg;
	char err[1024], mapped[PATH_MAX];

	if (config_load_all(config_path, &cfg, problems) < 0)
		return -1;
	/* Plugins are searched where --map-path says, like ${file:}. */
	for (size_t i = 0; i < cfg->n_plugin_dirs; i++) {
		const char *dir = config_map_path(cfg->plugin_dirs[i], mapped,
						  sizeof(mapped));
		char *copy = dir == mapped ? strdup(mapped) : NULL;

		if (copy) {
			free(cfg->plugin_dirs[i]);
			cfg->plugin_dirs[i] = copy;
		}
	}
	if (isolate_start() < 0) {
		config_problems_add(problems, NULL,
				    "cannot start the plugin host supervisor");
		config_free(cfg);
		return -1;
	}
	/* Every check that parsed: its plugin found, its options accepted,
	 * its instance created (then destroyed). */
	for (size_t i = 0; i < cfg->n_checks; i++) {
		const struct config_check *cc = &cfg->checks[i];
		struct check *c;

		if (check_create(cfg->path, cc, cfg->plugin_dirs,
				 cfg->n_plugin_dirs, &c, err, sizeof(err)) < 0)
			config_problems_add(problems, cfg->path, err);
		else
			check_unref(c);
	}
	isolate_stop();
	config_free(cfg);
	config_problems_sort(problems);
	return problems->n ? -1 : 0;
}

/* --- start ------------------------------------------------------------------- */

struct daemon *daemon_new(const char *config_path, bool serve, char *err,
			  size_t errlen)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct check **checks = NULL;

	if (!d)
		goto oom;
	pthread_mutex_init(&d->publish, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->settled, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&d->ctl, NULL);
	pthread_cond_init(&d->ctl_done, NULL);
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->wake_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	d->serve = serve;
	d->started_at = clock_mono_ms();
	if (!(d->config_path = strdup(config_path)))
		goto oom;
	if (config_load(config_path, &d->cfg, err, errlen) < 0)
		goto fail;
	log_configure(d->cfg->log_level, d->cfg->log_format);
	d->generation = 1;
	d->loaded_at = clock_wall_ms();
	d->fixed = (struct fixed_settings){
		.listen = strdup(d->cfg->listen),
		.threads = d->cfg->server_threads,
		.max_connections = d->cfg->max_connections,
		.workers = d->cfg->workers,
		.connection_timeout_ms = d->cfg->connection_timeout_ms,
		.control_socket = strdup(d->cfg->control_socket),
	};
	if (!d->fixed.listen || !d->fixed.control_socket ||
	    !(d->sched = scheduler_new(d->cfg->workers, daemon_changed, d)))
		goto oom;
	if (isolate_start() < 0) {
		snprintf(err, errlen, "cannot start the plugin host supervisor");
		goto fail;
	}
	if (checks_build(d->cfg, NULL, 0, &checks, err, errlen) < 0)
		goto fail;
	if (scheduler_replace(d->sched, checks, d->cfg->n_checks, false) < 0) {
		checks_free(checks, d->cfg->n_checks);
		goto oom;
	}
	free(checks); /* the scheduler took the references */

	if (serve) {
		struct http_settings hs = {
			.listen_host = d->cfg->listen_host,
			.listen_port = d->cfg->listen_port,
			.threads = d->cfg->server_threads,
			.max_connections = d->cfg->max_connections,
			.connection_timeout_ms = d->cfg->connection_timeout_ms,
			.alive = daemon_alive,
			.history = daemon_history,
			.ctx = d,
		};
		daemon_publish(d); /* the first bodies, before any request */
		pthread_mutex_lock(&d->publish);
		struct snapshot *first = d->pending;
		d->pending = NULL;
		pthread_mutex_unlock(&d->publish);
		if (!first)
			goto oom;
		struct http *h = http_start(&hs, first, err, errlen);
		if (!h)
			goto fail;
		pthread_mutex_lock(&d->publish);
		d->http = h;
		pthread_mutex_unlock(&d->publish);
		/* A probe does not need it: without it healthd still serves. */
		char cerr[512];
		if (*d->cfg->control_socket &&
		    !(d->control = control_start(d->cfg->control_socket, d, cerr,
						 sizeof(cerr))))
			log_error("%s; healthd ctl cannot reach this daemon", cerr);
	}
	if (scheduler_start(d->sched) < 0) {
		snprintf(err, errlen, "cannot start the scheduler threads");
		goto fail;
	}
	log_info("healthd %s: %zu check%s from %s", HEALTHD_VERSION,
		 d->cfg->n_checks, d->cfg->n_checks == 1 ? "" : "s", config_path);
	return d;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	daemon_free(d);
	return NULL;
}

/* --- reload ---------------------------------------------------------------------- */

/* Settings only a restart can change: compared with what runs, and
 * reported on every reload that asks for them, never silently dropped. */
static bool daemon_report_restart(const struct daemon *d, const struct config *cfg)
{
	const struct fixed_settings *f = &d->fixed;
	bool differs = false;

	/* Values stay out of the message: they may come from ${...}. */
	if (strcmp(f->listen, cfg->listen) != 0) {
		log_warn("listen changed: takes effect after a restart");
		differs = true;
	}
	if (f->threads != cfg->server_threads ||
	    f->max_connections != cfg->max_connections ||
	    f->connection_timeout_ms != cfg->connection_timeout_ms) {
		log_warn("server settings changed: take effect after a restart");
		differs = true;
	}
	if (f->workers != cfg->workers) {
		log_warn("workers changed: takes effect after a restart");
		differs = true;
	}
	if (strcmp(f->control_socket, cfg->control_socket) != 0) {
		log_warn("control.socket changed: takes effect after a restart");
		differs = true;
	}
	return differs;
}

/* New references on the running checks, sorted by name (the set only
 * changes on this thread, but creating instances must not hold the
 * scheduler's lock). */
static struct check **running_checks(struct daemon *d, size_t *n)
{
	struct check **copy;

	scheduler_lock(d->sched);
	struct check *const *running = scheduler_checks(d->sched, n);
	copy = malloc((*n ? *n : 1) * sizeof(*copy));
	for (size_t i = 0; copy && i < *n; i++)
		copy[i] = check_ref(running[i]);
	scheduler_unlock(d->sched);
	if (copy)
		check_sort_by_name(copy, *n);
	return copy;
}

/* What a reload does to the checks, for its log line: "added: a, b;
 * changed: c; removed: d" (at most RELOAD_NAMES names each), or "no check
 * changed".  `running` is sorted by name.  NULL when out of memory. */
#define RELOAD_NAMES 10
static char *reload_summary(struct check *const *running, size_t n_running,
			    struct check **checks, size_t n)
{
	struct check **sorted = malloc((n ? n : 1) * sizeof(*sorted));
	const char *what[] = {"added", "changed", "removed"};
	size_t count[3] = {0};
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (!sorted || !(f = open_memstream(&text, &len))) {
		free(sorted);
		return NULL;
	}
	if (n)
		memcpy(sorted, checks, n * sizeof(*sorted));
	check_sort_by_name(sorted, n);
	for (int k = 0; k < 3; k++) {
		size_t m = k == 2 ? n_running : n;

		for (size_t i = 0; i < m; i++) {
			struct check *c = k == 2 ? running[i] : sorted[i];
			struct check *was = check_find(running, n_running,
						       c->def.name);
			bool hit = k == 0   ? !was
				   : k == 1 ? was && was != c
					    : !check_find(sorted, n, c->def.name);

			if (!hit)
				continue;
			if (count[k] == 0)
				fprintf(f, "%s%s: ", ftell(f) > 0 ? "; " : "",
					what[k]);
			if (count[k] < RELOAD_NAMES)
				fprintf(f, "%s%s", count[k] ? ", " : "",
					c->def.name);
			count[k]++;
		}
		if (count[k] > RELOAD_NAMES)
			fprintf(f, " and %zu more", count[k] - RELOAD_NAMES);
	}
	if (!count[0] && !count[1] && !count[2])
		fprintf(f, "no check changed");
	free(sorted);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Parse, validate and build everything first; swap only when all of it
 * worked, so a bad edit changes nothing.  Returns 0, or -1 with the error
 * in last_reload_error. */
static int daemon_reload(struct daemon *d, const char *why)
{
	char err[1024], files[1024];
	struct config *cfg = NULL, *old;
	struct check **checks = NULL, **running;
	size_t n_running;
	char *summary;
	int rc;

	log_info("reloading %s (%s)", d->config_path, why);
	if (config_load(d->config_path, &cfg, err, sizeof(err)) < 0)
		goto fail;
	if (!(running = running_checks(d, &n_running)))
		goto oom;
	rc = checks_build(cfg, running, n_running, &checks, err, sizeof(err));
	summary = rc < 0 ? NULL
			 : reload_summary(running, n_running, checks, cfg->n_checks);
	checks_free(running, n_running);
	if (rc < 0)
		goto fail;
	if (scheduler_replace(d->sched, checks, cfg->n_checks, true) < 0) {
		checks_free(checks, cfg->n_checks);
		free(summary);
		goto oom;
	}
	free(checks); /* the scheduler took the references */

	bool restart = daemon_report_restart(d, cfg);
	log_configure(cfg->log_level, cfg->log_format);
	pthread_mutex_lock(&d->publish);
	scheduler_lock(d->sched);
	old = d->cfg;
	d->cfg = cfg;
	d->restart_required = restart;
	d->generation++;
	d->loaded_at = clock_wall_ms();
	free(d->last_reload_error);
	d->last_reload_error = NULL;
	scheduler_unlock(d->sched);
	pthread_mutex_unlock(&d->publish);
	config_changed_files(old, cfg, files, sizeof(files));
	config_free(old);
	watch_inputs(d->watch, cfg->inputs, cfg->n_inputs, cfg->hash);
	watch_dirs(d->watch, cfg->plugin_dirs, cfg->n_plugin_dirs);
	log_info("config generation %llu: %zu check%s (%s); %s%s",
		 (unsigned long long)d->generation, cfg->n_checks,
		 cfg->n_checks == 1 ? "" : "s", summary ? summary : "?",
		 files[0] ? "files changed: " : "no file changed", files);
	free(summary);
	daemon_publish(d);
	return 0;
oom:
	snprintf(err, sizeof(err), "out of memory");
fail:
	config_free(cfg);
	log_error("reload failed, keeping generation %llu: %s",
		  (unsigned long long)d->generation, err);
	scheduler_lock(d->sched);
	free(d->last_reload_error);
	d->last_reload_error = strdup(err);
	scheduler_unlock(d->sched);
	daemon_publish(d);
	return -1;
}

/* --- healthd ctl ------------------------------------------------------------------- */

int daemon_control_view(struct daemon *d, struct health_view *v)
{
	scheduler_lock(d->sched);
	int rc = daemon_view(d, v);
	scheduler_unlock(d->sched);
	return rc;
}

void daemon_print_table(FILE *f, const struct health_view *v)
{
	for (size_t i = 0; i < v->n_checks; i++)
		fprintf(f, "%-24s %-8s %s%s\n", v->checks[i].name,
			state_status_name(v->checks[i].status),
			v->checks[i].critical ? "" : "(informational) ",
			v->checks[i].message);
	fprintf(f, "verdict: %s\n",
		state_verdict_name(render_verdict(v, NULL)));
}

int daemon_control_run(struct daemon *d, const char *name)
{
	return scheduler_run_now(d->sched, name);
}

/* daemon_run() recomputes its timers, and looks at requests. */
static void daemon_wake(struct daemon *d)
{
	uint64_t one = 1;

	if (write(d->wake_fd, &one, sizeof(one)) < 0)
		log_debug("eventfd: %s", strerror(errno)); /* already due */
}

int daemon_control_maintenance(struct daemon *d, bool on, const char *reason,
			       int64_t for_ms)
{
	char *copy = on ? strdup(reason) : NULL;

	if (on && !copy)
		return -ENOMEM;
	scheduler_lock(d->sched);
	bool was = d->maintenance;
	free(d->maint_reason);
	d->maint_reason = copy;
	d->maintenance = on;
	d->maint_since = on ? clock_wall_ms() : 0;
	d->maint_until = on && for_ms ? d->maint_since + for_ms : 0;
	d->maint_end = on && for_ms ? clock_mono_ms() + for_ms : 0;
	scheduler_unlock(d->sched);
	if (on) {
		char span[64] = "until undrained";

		if (for_ms)
			snprintf(span, sizeof(span), "for %lld ms",
				 (long long)for_ms);
		log_info("maintenance: /ready answers 503 %s; reason: %s", span,
			 *reason ? reason : "none given");
	} else if (was) {
		log_info("maintenance over: undrained; /ready follows the checks again");
	}
	daemon_wake(d);
	daemon_publish(d);
	return was;
}

/* When `drain --for` runs out (monotonic ms), or 0. */
static int64_t daemon_maintenance_end(struct daemon *d)
{
	scheduler_lock(d->sched);
	int64_t end = d->maintenance ? d->maint_end : 0;
	scheduler_unlock(d->sched);
	return end;
}

int daemon_control_reload(struct daemon *d, uint64_t *generation, char *err,
			  size_t errlen)
{
	pthread_mutex_lock(&d->ctl);
	uint64_t ticket = ++d->reloads_asked;
	daemon_wake(d);
	while (d->reloads_done < ticket && !d->ctl_closed)
		pthread_cond_wait(&d->ctl_done, &d->ctl);
	bool done = d->reloads_done >= ticket;
	int rc = done ? d->reload_rc : -1;
	snprintf(err, errlen, "%s",
		 done ? d->reload_err : "healthd is stopping: not reloading");
	*generation = d->reload_generation;
	pthread_mutex_unlock(&d->ctl);
	return rc;
}

/* daemon_run()'s share of healthd ctl: the reloads asked (one reload
 * answers every request made before it; none once the shutdown drain has
 * begun, as for SIGHUP), and the end of `drain --for`. */
static void daemon_control_due(struct daemon *d, int64_t now, bool draining)
{
	uint64_t n;
	int rc = -1;
	const char *err = "shutting down: not reloading";

	if (read(d->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_debug("eventfd: %s", strerror(errno));
	scheduler_lock(d->sched);
	bool expired = d->maintenance && d->maint_end && now >= d->maint_end;
	if (expired) {
		d->maintenance = false;
		free(d->maint_reason);
		d->maint_reason = NULL;
	}
	scheduler_unlock(d->sched);
	if (expired) {
		log_info("maintenance over: expired; /ready follows the checks again");
		daemon_publish(d);
	}
	pthread_mutex_lock(&d->ctl);
	uint64_t asked = d->reloads_asked;
	pthread_mutex_unlock(&d->ctl);
	if (asked == d->reloads_done) /* only this thread writes it */
		return;
	if (!draining) {
		if (d->watch)
			watch_changed(d->watch); /* now seen */
		rc = daemon_reload(d, "healthd ctl");
		if (rc < 0) /* only this thread writes last_reload_error */
			err = d->last_reload_error ? d->last_reload_error
						   : "out of memory";
	}
	pthread_mutex_lock(&d->ctl);
	d->reload_rc = rc;
	snprintf(d->reload_err, sizeof(d->reload_err), "%s", rc < 0 ? err : "");
	d->reload_generation = d->generation;
	d->reloads_done = asked;
	pthread_cond_broadcast(&d->ctl_done);
	pthread_mutex_unlock(&d->ctl);
}

/* --- run and stop ------------------------------------------------------------------ */

int daemon_run(struct daemon *d)
{
	sigset_t set;
	int sfd;
	int64_t drain_end = 0, reload_at = 0, burst_start = 0;
	int64_t next_refresh = clock_mono_ms() + REFRESH_MS;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return 1;
	}
	d->watch = watch_open(d->config_path);
	watch_inputs(d->watch, d->cfg->inputs, d->cfg->n_inputs, d->cfg->hash);
	watch_dirs(d->watch, d->cfg->plugin_dirs, d->cfg->n_plugin_dirs);
	for (;;) {
		int64_t now = clock_mono_ms();
		int64_t until = next_refresh;
		if (drain_end && drain_end < until)
			until = drain_end;
		if (reload_at && reload_at < until)
			until = reload_at;
		int64_t maint_end = daemon_maintenance_end(d);
		if (maint_end && maint_end < until)
			until = maint_end;
		struct pollfd p[3] = {{.fd = sfd, .events = POLLIN},
				      {.fd = d->watch ? watch_fd(d->watch) : -1,
				       .events = POLLIN},
				      {.fd = d->wake_fd, .events = POLLIN}};
		poll(p, 3, until > now ? (int)(until - now) : 0);

		struct signalfd_siginfo si;
		if ((p[0].revents & POLLIN) &&
		    read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP && drain_end) {
				log_info("SIGHUP while draining: not reloading");
			} else if (si.ssi_signo == SIGHUP) {
				if (d->watch)
					watch_changed(d->watch); /* now seen */
				daemon_reload(d, "SIGHUP");
			} else if (drain_end) {
				log_warn("second signal %s: exiting at once",
					 strsignal((int)si.ssi_signo));
				log_flush(500);
				_exit(128 + (int)si.ssi_signo);
			} else {
				log_info("%s: draining for %lld ms; /ready answers 503",
					 strsignal((int)si.ssi_signo),
					 (long long)d->cfg->drain_ms);
				scheduler_lock(d->sched);
				d->draining = true;
				scheduler_unlock(d->sched);
				daemon_publish(d);
				drain_end = clock_mono_ms() + d->cfg->drain_ms;
			}
		}
		now = clock_mono_ms();
		daemon_control_due(d, now, drain_end != 0);
		if ((p[1].revents & POLLIN) && watch_read(d->watch)) {
			if (!reload_at)
				burst_start = now;
			reload_at = now + DEBOUNCE_MS;
			if (reload_at > burst_start + DEBOUNCE_MAX_MS)
				reload_at = burst_start + DEBOUNCE_MAX_MS;
		}
		if (reload_at && now >= reload_at) {
			reload_at = 0;
			/* A reload that failed is tried again on any event: a
			 * plugin it missed may have been dropped in.  Only this
			 * thread writes last_reload_error. */
			bool changed = watch_changed(d->watch);
			if ((changed || d->last_reload_error) && !drain_end)
				daemon_reload(d, changed ? "file changed"
						 : "retrying the failed reload");
		}
		if (drain_end && now >= drain_end)
			break;
		if (now >= next_refresh) {
			daemon_publish(d);
			next_refresh = now + REFRESH_MS;
		}
	}
	close(sfd);
	/* From here a second SIGTERM or SIGINT ends the process at once, as
	 * it did during the drain; SIGHUP, whose default would end it too,
	 * is ignored. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_IGN);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	log_info("drained; stopping");
	return 0;
}

int daemon_once(struct daemon *d, bool json)
{
	int64_t longest = 0, until;
	struct health_view v;
	size_t n;
	bool all;
	int rc;

	scheduler_lock(d->sched);
	struct check *const *checks = scheduler_checks(d->sched, &n);
	for (size_t i = 0; i < n; i++)
		if (checks[i]->def.timeout_ms > longest)
			longest = checks[i]->def.timeout_ms;
	scheduler_unlock(d->sched);
	/* Timeouts are recorded at the deadline: this is only a backstop.
	 * A check runs once those it depends on have passed. */
	until = clock_mono_ms() + longest * (1 + d->cfg->dependency_depth) + 1000;
	pthread_mutex_lock(&d->publish);
	for (;;) {
		scheduler_lock(d->sched);
		checks = scheduler_checks(d->sched, &n);
		all = true;
		for (size_t i = 0; i < n && all; i++)
			all = checks[i]->counters.status != STATUS_PENDING;
		if (all || clock_mono_ms() >= until)
			break;
		scheduler_unlock(d->sched);
		struct timespec ts = clock_timespec(until);
		pthread_cond_timedwait(&d->settled, &d->publish, &ts);
	}
	d->started = all;
	rc = daemon_view(d, &v);
	scheduler_unlock(d->sched);
	pthread_mutex_unlock(&d->publish);
	if (rc < 0)
		return 3;

	int code;
	enum verdict verdict = render_verdict(&v, NULL);
	if (json) {
		char *text = render_health(&v, NULL, false, RENDER_NATIVE, &code);
		printf("%s\n", text ? text : "{}");
		free(text);
	} else {
		daemon_print_table(stdout, &v);
	}
	fflush(stdout);
	render_view_clear(&v);
	return (int)verdict;
}

bool daemon_free(struct daemon *d)
{
	if (!d)
		return true;
	/* Renders check `http` under the same lock: none publishes into a
	 * server being stopped. */
	pthread_mutex_lock(&d->publish);
	struct http *h = d->http;
	d->http = NULL;
	pthread_mutex_unlock(&d->publish);
	http_stop(h);
	/* A reload asked from now on is answered at once. */
	pthread_mutex_lock(&d->ctl);
	d->ctl_closed = true;
	pthread_cond_broadcast(&d->ctl_done);
	pthread_mutex_unlock(&d->ctl);
	control_stop(d->control);
	if (d->sched && !scheduler_stop(d->sched, isolate_kill_running)) {
		/* A plugin is still inside check(): its instance, plugin and
		 * config must stay; the process is about to exit. */
		log_warn("a check is still running past its deadline; leaving it");
		return false;
	}
	scheduler_free(d->sched);
	isolate_stop();
	snapshot_unref(d->pending);
	config_free(d->cfg);
	free(d->last_reload_error);
	free(d->fixed.listen);
	free(d->fixed.control_socket);
	free(d->maint_reason);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	pthread_mutex_destroy(&d->ctl);
	pthread_cond_destroy(&d->ctl_done);
	free(d->config_path);
	watch_close(d->watch);
	pthread_mutex_destroy(&d->publish);
	pthread_cond_destroy(&d->settled);
	free(d);
	return true;
}
