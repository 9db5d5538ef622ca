/*
 * host.h — the core's side of the plugin ABI: the struct healthd_host table
 * handed to every plugin, the option store behind struct healthd_check, and
 * the result a run fills.
 */
#ifndef HEALTHD_HOST_H
#define HEALTHD_HOST_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include <healthd/plugin.h>

#include "config.h"

#define HOST_TARGET_MAX 128

/* The handle a plugin sees for one configured check.  Points into the
 * struct config_check it was made from, which must outlive it. */
struct healthd_check {
	const char *name;
	const struct config_option *options;
	size_t n_options;
	const struct healthd_option_spec *spec; /* the plugin's, may be NULL */
	char target[HOST_TARGET_MAX]; /* host->target(): "" until said */
};

#define HOST_MESSAGE_MAX 256

struct healthd_result {
	const struct healthd_check *check; /* whose run: for redaction */
	enum healthd_status status;
	bool set; /* host->result() was called */
	char message[HOST_MESSAGE_MAX];
	json_object *details; /* NULL or an object; owned */
};

/* The table every plugin receives. */
extern const struct healthd_host host_api;

/* Fill `check` from a config check and a plugin's option spec. */
void host_check_init(struct healthd_check *check, const struct config_check *cc,
		     const struct healthd_option_spec *spec);

/* Reject options the plugin does not declare:
 * "FILE:LINE:COL: check "db": option "qeury" is not known to plugin
 * postgres (known: dsn, query, mode, role)".  Returns 0 or -EINVAL. */
int host_check_options(const char *file, const struct config_check *cc,
		       const struct healthd_plugin *plugin, char *err,
		       size_t errlen);

void host_result_init(struct healthd_result *result,
		      const struct healthd_check *check);
void host_result_clear(struct healthd_result *result); /* frees details */

/* Plugins' log lines, formatted and redacted, go to the daemon's log
 * unless a sink is set (a plugin host sends them to the daemon). */
typedef void (*host_log_sink_fn)(const struct healthd_check *check,
				 enum healthd_log_level level, const char *line);
void host_set_log_sink(host_log_sink_fn sink);

/* Replace, in place, every secret of `check`'s options (config.h,
 * struct config_option) with "***":
 * whatever a plugin reports, a secret handed to it through the config is
 * not printed.  Where secrets overlap, the longest wins. */
void host_redact(const struct healthd_check *check, char *text);

#endif /* HEALTHD_HOST_H */
