/*
 * daemon.h — the running daemon: its config, checks, scheduler and server,
 * and the lifecycle around them (start, reload, drain, stop).
 */
#ifndef HEALTHD_DAEMON_H
#define HEALTHD_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

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

#endif /* HEALTHD_DAEMON_H */
