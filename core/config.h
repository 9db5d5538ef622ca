/*
 * config.h — healthd.yaml parsed, expanded and validated into plain structs.
 *
 * config_load() reads the whole file with libyaml and either returns a
 * complete struct config or fails with one message of the form
 * "FILE:LINE:COL: what was wrong, what was expected".  Messages never carry
 * a value that came from an expansion or from a plugin option.
 */
#ifndef HEALTHD_CONFIG_H
#define HEALTHD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum config_details {
	DETAILS_PUBLIC,
	DETAILS_TOKEN,
	DETAILS_HIDDEN,
};

/* Shorter expansions are too common to hunt for in what plugins report. */
#define CONFIG_SECRET_MIN 4

/* One plugin option, after expansion.  A map under options arrives as
 * "map.key" entries; a list as one comma-separated value. */
struct config_option {
	char *key;
	char *value; /* secret: never print */
	/* The secrets ${...} put in the value (a file's content; the
	 * credentials of a URL or conninfo from the environment, or the whole
	 * value; see docs/configuration.md, Secrets), CONFIG_SECRET_MIN bytes or longer, no
	 * duplicates: the core redacts every one from whatever a plugin
	 * reports.  Wiped when freed. */
	char **secrets;
	size_t n_secrets;
	int line, col; /* of the key, 1-based */
};

enum config_isolation {
	ISOLATION_PROCESS, /* in a plugin host process (isolate.h) */
	ISOLATION_INLINE,  /* in the daemon itself */
};

/* History kept per check (history.h): a few minutes at common intervals,
 * a few KiB per check. */
#define CONFIG_HISTORY_DEFAULT 100
#define CONFIG_HISTORY_MAX 10000

/* A plugin host past this resident size is replaced between runs. */
#define CONFIG_MAX_RSS_DEFAULT (256LL * 1024 * 1024)

/* The longest chain of depends_on (checks that wait for one another). */
#define CONFIG_DEPENDS_DEPTH_MAX 256

/* One name in a check's depends_on, and where it is written. */
struct config_dep {
	char *name;
	int line, col;
};

struct config_check {
	char *name;   /* [a-z0-9][a-z0-9_.-]*, unique */
	char *plugin; /* NAME or a path to a .so */
	bool critical;
	int64_t interval_ms;
	int64_t timeout_ms;
	int64_t warn_after_ms; /* 0: off */
	int failure_threshold;
	int success_threshold;
	enum config_isolation isolation;
	int64_t max_rss; /* bytes, of its plugin host */
	int history;     /* latest results (and changes) kept */
	struct config_option *options;
	size_t n_options;
	/* Checks that must pass before this one runs: existing, no cycle. */
	struct config_dep *depends_on;
	size_t n_depends_on;
	int line, col; /* of the check's mapping, 1-based */
};

#define CONFIG_SERVICE_MAX 128 /* bytes of `service` */

/* control.socket: where `healthd ctl` finds the daemon.  /tmp is writable
 * with a read-only root filesystem (an emptyDir in the manifests). */
#define CONFIG_CONTROL_SOCKET_DEFAULT "/tmp/healthd/ctl.sock"
#define CONFIG_SOCKET_PATH_MAX 107 /* sun_path, less its NUL */

/* plugin_dirs when the config sets none. */
#define CONFIG_DEFAULT_PLUGIN_DIRS 2
extern char *const config_default_plugin_dirs[CONFIG_DEFAULT_PLUGIN_DIRS];

struct config {
	char *path; /* as given */

	char *listen;      /* as written, e.g. "0.0.0.0:8000", "[::]:8000" */
	char *listen_host; /* NULL or "" for every address; IPv6 without [] */
	int listen_port;

	char *base_path; /* starts with '/', no trailing '/' ("" allowed for "/") */
	char *service;   /* the service's name: IETF serviceId, healthd_info */
	bool metrics;
	enum log_level log_level;
	enum log_format log_format;

	char **plugin_dirs;
	size_t n_plugin_dirs;

	int server_threads; /* 0: one per usable CPU */
	int max_connections;
	int64_t connection_timeout_ms;
	int workers;

	enum config_details details;
	char *details_token; /* content of details_token_file; secret */

	int64_t drain_ms;

	char *control_socket; /* `healthd ctl`'s socket; "": none */

	struct config_check *checks;
	size_t n_checks;
	int dependency_depth; /* checks in the longest depends_on chain, less one */

	/* Files the config read besides itself (${file:...}, the details
	 * token), so a change of any of them reloads it. */
	char **inputs;
	uint64_t *input_hashes; /* each one's bytes as read (hash.h) */
	size_t n_inputs;
	/* The bytes this load read, the config file's then each input's (see
	 * hash.h): the watch's baseline, so an edit made while loading is
	 * still a change. */
	uint64_t hash;
	uint64_t file_hash; /* the config file's bytes alone */
};

/* Which of the files behind `cfg` differ from those behind `old` (the
 * config file, and inputs added, gone or whose bytes changed): their paths,
 * comma-separated, into out; "" when none did. */
void config_changed_files(const struct config *old, const struct config *cfg,
			  char *out, size_t len);

/* Load and validate a config file.  Applies HEALTHD_LOG_LEVEL and
 * HEALTHD_LISTEN.  Returns 0 and *out, or -1 with a message in err. */
int config_load(const char *path, struct config **out, char *err, size_t errlen);

/* config_load() of `text` as if read from `path` (which names it in
 * messages): the fuzzer's way in (tests/fuzz/fuzz_config.c). */
int config_load_text(const char *path, const char *text, size_t len,
		     struct config **out, char *err, size_t errlen);
/* Open the files ${file:} and details_token_file read with `open_file`
 * (a descriptor, or -1 with errno) rather than open(2); NULL: open(2).
 * For the fuzzer, which must never touch the disk; set before loading. */
void config_set_open(int (*open_file)(const char *path));

/* What a validation found (--check-config): every error it could. */
struct config_problem {
	char *text;    /* "FILE:LINE:COL: message", as config_load() says it */
	char *message; /* the message alone */
	int line, col; /* 0 when the problem has no place in the file */
};

struct config_problems {
	struct config_problem *list;
	size_t n;
};

/* Add one; `text` is split at "FILE:LINE:COL: " (or "FILE: ") when it
 * starts so.  Returns 0 or -ENOMEM. */
int config_problems_add(struct config_problems *p, const char *file,
			const char *text);
/* In the file's order (those without a place first). */
void config_problems_sort(struct config_problems *p);
void config_problems_free(struct config_problems *p);

/* Load as config_load() does, but go on past errors to find every one it
 * can (a check with an error is left out, the rest is loaded).  Returns 0
 * and *out when the file could be read and parsed, whatever the problems
 * (then *out is not fit to run); -1 when not, with that problem listed. */
int config_load_all(const char *path, struct config **out,
		    struct config_problems *problems);

/* Read files under FROM from TO instead (--check-config --map-path
 * FROM=TO): a config written for a container's mounts is checked on a
 * laptop.  `spec` is "FROM=TO" with absolute FROM; -1 when it is not. */
int config_add_path_map(const char *spec);
/* The path a file is read from: `path` itself, or mapped into buf. */
const char *config_map_path(const char *path, char *buf, size_t len);
void config_free(struct config *cfg);

/* The value parsers of the config's settings, which plugins get too
 * (plugin.h, option_bool() and the rest): one syntax everywhere.  Each
 * returns 0 or -1; the CONFIG_*_SYNTAX text says what is accepted. */
#define CONFIG_BOOL_SYNTAX "true, false, yes, no, on or off"
#define CONFIG_DURATION_SYNTAX "use ms, s, m, h"
#define CONFIG_SIZE_SYNTAX "use KiB, MiB or GiB, e.g. 256MiB"
/* true/false, yes/no, on/off in any case (YAML's forms), 1/0. */
int config_parse_bool(const char *text, bool *out);
/* "500ms", "2s", "1.5m", "1h" -> milliseconds. */
int config_parse_duration(const char *text, int64_t *ms);
/* Bytes, or a number with KiB, MiB or GiB: greater than 0. */
int config_parse_size(const char *text, int64_t *bytes);
/* A whole decimal number, '-' allowed before it. */
int config_parse_int(const char *text, long long *out);

/* Expand ${VAR}, ${VAR:-default} and ${file:/path} in `in`.  Returns 0 and a
 * malloc'd *out, or -1 with a message in err that names the variable or
 * file but never a value. */
int config_expand(const char *in, char **out, char *err, size_t errlen);

/* Deep copy of one check into *dst; config_check_clear() frees it.
 * Returns 0 or -ENOMEM. */
int config_check_copy(struct config_check *dst, const struct config_check *src);
void config_check_clear(struct config_check *cc);

/* 1 when two checks would behave the same (same plugin, settings, options
 * and secrets to redact), so a reload can keep the running one. */
int config_check_equal(const struct config_check *a,
		       const struct config_check *b);

/* Wipe a string that may hold a secret, then free it; NULL is fine. */
void config_secret_free(char *s);

#endif /* HEALTHD_CONFIG_H */
