/*
 * isolate.h — the daemon's side of plugin host processes.
 *
 * A check with `isolation: process` has its instance in a plugin host:
 * healthd re-executed (plughost.h) to load one plugin file and run its
 * instances on threads of its own.  One host per plugin file serves every
 * check of that plugin.  The daemon never maps that plugin's code; it
 * talks to the host over a socket (frame.h) and treats whatever the host
 * says as untrusted.  A supervisor thread reads every host's frames,
 * stdout and stderr, notices exits (pidfd) and enforces time limits:
 *
 *   - a crash (signal or exit) fails the runs in flight in that host at
 *     once ("plugin NAME crashed: SIGSEGV"); the next run starts a fresh
 *     host; one that keeps crashing is restarted with exponential backoff,
 *     and during the backoff its checks fail at once, saying so;
 *   - a run still in check() ISOLATE_KILL_AFTER_MS past its deadline makes
 *     its host retire: new work goes to a fresh host, and the old one is
 *     killed (its process group) once its other runs are done or overdue;
 *   - create() has ISOLATE_CREATE_MS; past it, or on a crash, the check is
 *     refused like any bad plugin;
 *   - a host whose resident size passes its checks' isolation_max_rss is
 *     replaced between runs;
 *   - a frame that breaks the protocol kills the host;
 *   - stdout, stderr and the plugin's own log lines become log lines
 *     naming the plugin (secrets redacted), cut to ISOLATE_LINE_MAX bytes,
 *     at most ISOLATE_LINES_PER_S a second each.
 *
 * Hosts die with the daemon (PR_SET_PDEATHSIG), inherit no descriptor but
 * their socket and pipes, and show as "healthd: plugin NAME" in ps.
 */
#ifndef HEALTHD_ISOLATE_H
#define HEALTHD_ISOLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <healthd/plugin.h>

#include "config.h"

#define ISOLATE_KILL_AFTER_MS 1000
#define ISOLATE_CREATE_MS 5000
#define ISOLATE_LINE_MAX 512
#define ISOLATE_LINES_PER_S 20
#define ISOLATE_CLOSE_MS 1000 /* a host asked to exit, before it is killed */
#define ISOLATE_FRAMES_PER_TURN 64 /* read from one host before the next */

struct iso_instance;

/* Start the supervisor (once per process).  Returns 0 or -errno. */
int isolate_start(void);
/* Close every host and wait for it; kill what does not exit in time. */
void isolate_stop(void);
/* Kill the hosts that have runs in flight, so their workers return (the
 * daemon is stopping and their deadlines have passed). */
void isolate_kill_running(void);

/* Make an instance of cc's plugin (found in `dirs`) in its plugin host,
 * started if need be.  Returns 0 and *out, or a negative code with
 * "FILE:LINE:COL: check "NAME": why" in err (create()'s own message
 * redacted with `handle`). */
int isolate_create(const char *file, const struct config_check *cc,
		   const struct healthd_check *handle, char *const *dirs,
		   size_t n_dirs, struct iso_instance **out, char *err,
		   size_t errlen);

/* The name the plugin declares. */
const char *isolate_plugin_name(const struct iso_instance *inst);
/* What the plugin's create() said the check talks to, or "". */
const char *isolate_target(const struct iso_instance *inst);

/* Whether the plugin file the instance came from is still what `dirs`
 * lead to (a rebuilt .so renamed over it is not). */
bool isolate_current(const struct iso_instance *inst, const char *name,
		     char *const *dirs, size_t n_dirs);

/* Run once: blocks until the host answers, dies or is killed.  Fills
 * `result` as check() would have. */
void isolate_run(struct iso_instance *inst, int64_t deadline,
		 struct healthd_result *result);

/* The details a host sent (JSON text) as a run's: an object, with NaN
 * and Infinity (json-c reads them, JSON has none) made null; NULL when
 * the text is not an object. */
struct json_object *isolate_details(const char *text);

/* Free the instance (never while a run of it is in flight). */
void isolate_destroy(struct iso_instance *inst);

/* For /metrics: host restarts by plugin and reason, and hosts running. */
struct isolate_restarts {
	char plugin[64];
	const char *reason; /* crash, timeout, memory, protocol */
	uint64_t count;
};
size_t isolate_metrics(struct isolate_restarts *out, size_t max,
		       int *hosts_running);

#endif /* HEALTHD_ISOLATE_H */
