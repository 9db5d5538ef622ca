/*
 * daemon.h — the running daemon: its config, checks, scheduler and server,
 * and the lifecycle around them (start, reload, drain, stop).
 */
#ifndef HEALTHD_DAEMON_H
#define HEALTHD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

struct daemon;

/* Load the config, create every check and start the scheduler; with
 * `serve`, also listen.  Returns NULL with a message in err. */
struct daemon *daemon_new(const char *config_path, bool serve, char *err,
			  size_t errlen);

/* Serve until SIGTERM/SIGINT and the drain; reload on SIGHUP.  Returns the
 * exit code. */
int daemon_run(struct daemon *d);

/* Wait until every check has a first result (at most until the longest
 * timeout has passed), then print the verdict; returns 0 healthy,
 * 1 degraded, 2 unhealthy. */
int daemon_once(struct daemon *d, bool json);

/* Stop everything and free it.  Returns false when a plugin is still inside
 * check() past its deadline: then its instance and the loaded plugins are
 * left alone, and the caller should exit without unloading them. */
bool daemon_free(struct daemon *d);

/* Validate a config whole: parse it, load its plugins and create (then
 * destroy) every check, going on past errors.  Returns 0, or -1 with every
 * problem found in `problems`. */
int daemon_check_config(const char *config_path,
			struct config_problems *problems);

/* --- for the control socket (control.c) --- */

struct health_view;

/* A copy of the state as the bodies show it; render_view_clear() it.
 * Returns 0 or -ENOMEM. */
int daemon_control_view(struct daemon *d, struct health_view *v);

/* --once's table: a line per check, then the verdict. */
void daemon_print_table(FILE *f, const struct health_view *v);

/* Run a check now and wait for its result: scheduler_run_now(). */
int daemon_control_run(struct daemon *d, const char *name);

/* Drain (on: /ready answers 503, "maintenance: REASON", for for_ms or
 * with 0 until undrained) or undrain.  Returns whether it was drained
 * before, or -ENOMEM. */
int daemon_control_maintenance(struct daemon *d, bool on, const char *reason,
			       int64_t for_ms);

/* Reload now, on the thread SIGHUP reloads on.  Returns 0, or -1 with the
 * error (the running config kept); *generation is the one running. */
int daemon_control_reload(struct daemon *d, uint64_t *generation, char *err,
			  size_t errlen);

#endif /* HEALTHD_DAEMON_H */
