/*
 * healthd/plugin.h — the one header a healthd check plugin includes.
 *
 * A plugin is a shared object named NAME.so that exports exactly one symbol,
 * `healthd_plugin`, a const struct healthd_plugin filled by
 * HEALTHD_PLUGIN_DEFINE().  The core reads the version fields first and
 * refuses the plugin before touching anything else when they do not match.
 *
 * ABI rules
 *   - HEALTHD_ABI_MAJOR changes when an existing field changes meaning, type or
 *     place.  The core loads only plugins of its own major.
 *   - HEALTHD_ABI_MINOR grows when fields are appended to struct
 *     healthd_plugin or struct healthd_host.  Structs only ever grow at the
 *     end.  The core loads plugins whose minor is not newer than its own and
 *     reads appended plugin fields only when `size` says they are there; a
 *     plugin reads appended host functions only when host->abi_minor says so.
 *
 * Changelog
 *   1.0  first version.
 *   1.1  host: option_bool, option_duration_ms, option_int, option_size.
 *   1.2  plugin: `required`, the options a check must set.
 *        host: target, what a check talks to, for the core's messages.
 *
 * Ownership
 *   - The core owns the struct healthd_check handle and everything the host
 *     functions return; option strings stay valid until destroy() returns.
 *   - The plugin owns its instance (the void * create() returns) and frees it
 *     in destroy().  The core calls destroy() exactly once per successful
 *     create(), never while check() runs on that instance.
 *
 * Threads
 *   - create() and destroy() may run on any thread, including while check()
 *     runs on another instance of the same plugin: plugin-wide state needs
 *     its own locking.
 *   - check() is never called twice at once on the same instance.
 *
 * Deadlines
 *   - check() receives an absolute deadline on host->now_ms()'s clock
 *     (CLOCK_MONOTONIC, milliseconds) and must return by it.  Use non-blocking
 *     I/O or timeouts taken from the time left.  A result that arrives by
 *     deadline_ms + HEALTHD_DEADLINE_GRACE_MS is recorded as the plugin
 *     reported it, so a plugin that gives up at the deadline keeps its own
 *     message ("timed out after 2000 ms connecting to db:5432").  At that
 *     moment a run still inside check() is recorded as failed ("timed out
 *     after N ms"); its late result is discarded and the check does not run
 *     again until check() has returned.  At shutdown, runs in flight get
 *     the same time before instances are destroyed.
 *
 * Secrets
 *   - Option values may hold credentials.  Never put an option value into a
 *     message, a detail, a log line or a create() error; report host, port
 *     and database names only.
 */
#ifndef HEALTHD_PLUGIN_H
#define HEALTHD_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HEALTHD_ABI_MAJOR 1
#define HEALTHD_ABI_MINOR 2

/* How long past deadline_ms the core still takes a run's result. */
#define HEALTHD_DEADLINE_GRACE_MS 20

/* The name of the symbol every plugin exports. */
#define HEALTHD_PLUGIN_SYMBOL "healthd_plugin"

#if defined(__GNUC__)
#define HEALTHD_EXPORT __attribute__((visibility("default")))
#define HEALTHD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define HEALTHD_EXPORT
#define HEALTHD_PRINTF(f, a)
#endif

/* The raw result of one run. */
enum healthd_status {
	HEALTHD_PASS = 0,
	HEALTHD_WARN = 1,
	HEALTHD_FAIL = 2,
};

enum healthd_log_level {
	HEALTHD_LOG_DEBUG = 0,
	HEALTHD_LOG_INFO = 1,
	HEALTHD_LOG_WARN = 2,
	HEALTHD_LOG_ERROR = 3,
};

/* Opaque handles owned by the core. */
struct healthd_check;   /* one configured check: its name and options */
struct healthd_result;  /* the result of one run, filled by check() */

/*
 * One option a plugin accepts.  The core rejects options a plugin does not
 * declare, so `--check-config` catches typos.  A name ending in '.' declares
 * a map: `headers: {Accept: text/plain}` arrives as the option
 * "headers.Accept".  A list arrives as one comma-separated string.
 */
struct healthd_option_spec {
	const char *name;
	const char *default_value; /* NULL: no default */
	const char *help;
};

/*
 * Functions the core hands to the plugin.  Every pointer is non-NULL.
 * The table lives as long as the plugin is loaded.
 */
struct healthd_host {
	uint32_t abi_major;
	uint32_t abi_minor;
	uint32_t size;

	/* CLOCK_MONOTONIC in milliseconds: the clock of every deadline. */
	int64_t (*now_ms)(void);

	/* The check's configured name (for messages and logs). */
	const char *(*name)(const struct healthd_check *check);

	/* An option's value after expansion, its declared default when it is
	 * not set, or NULL. */
	const char *(*option)(const struct healthd_check *check, const char *key);

	/* Walk the options whose key starts with `prefix` (a map).  Start with
	 * *pos = 0; returns 1 and sets *key (without the prefix) and *value
	 * while there are more, then 0. */
	int (*option_next)(const struct healthd_check *check, const char *prefix,
			   size_t *pos, const char **key, const char **value);

	/* A log line carrying the check's name.  Never log an option value. */
	void (*log)(const struct healthd_check *check, enum healthd_log_level level,
		    const char *fmt, ...) HEALTHD_PRINTF(3, 4);

	/* Set the run's status and its one-line message (truncated at 255
	 * bytes).  A run that sets nothing is published as a failure. */
	void (*result)(struct healthd_result *result, enum healthd_status status,
		       const char *fmt, ...) HEALTHD_PRINTF(3, 4);

	/* Add details to the run's result; keys are copied. */
	void (*detail_str)(struct healthd_result *result, const char *key,
			   const char *value);
	void (*detail_num)(struct healthd_result *result, const char *key,
			   double value);
	void (*detail_bool)(struct healthd_result *result, const char *key,
			    int value);

	/* --- since ABI 1.1 ---------------------------------------------------
	 * An option (or its default) parsed exactly as healthd parses its own
	 * settings, so users write one syntax everywhere: booleans true/false,
	 * yes/no, on/off in any case (and 1/0); durations "500ms", "2s",
	 * "1.5m", "1h"; whole numbers; sizes in bytes or with KiB, MiB, GiB.
	 * Each returns 0 and sets *out; 1 when the option is not set and has
	 * no default (*out untouched); -1 when it is malformed, with
	 * "KEY: expected ..." in err (never the value: it may be a secret),
	 * ready to return from create(). */
	int (*option_bool)(const struct healthd_check *check, const char *key,
			   int *out, char *err, size_t errlen);
	int (*option_duration_ms)(const struct healthd_check *check,
				  const char *key, int64_t *out, char *err,
				  size_t errlen);
	int (*option_int)(const struct healthd_check *check, const char *key,
			  long long *out, char *err, size_t errlen);
	int (*option_size)(const struct healthd_check *check, const char *key,
			   int64_t *out, char *err, size_t errlen);

	/* --- since ABI 1.2 ---------------------------------------------------
	 * Say, from create(), what the check talks to ("db:5432/app", a URL
	 * without its credentials): the core names it in the messages it
	 * writes itself, "postgres db:5432/app: timed out after 2000 ms".
	 * Cut at 127 bytes, redacted like messages; never an option value
	 * that may be secret. */
	void (*target)(const struct healthd_check *check, const char *fmt, ...)
		HEALTHD_PRINTF(2, 3);
};

struct healthd_plugin {
	/* Version fields first: they protect the rest. */
	uint32_t abi_major;
	uint32_t abi_minor;
	uint32_t size; /* sizeof(struct healthd_plugin) as the plugin saw it */

	const char *name;        /* must equal the file name without ".so" */
	const char *description; /* one line */
	const struct healthd_option_spec *options; /* ends with {NULL}; may be NULL */

	/*
	 * Validate the check's options and make an instance.  Return 0 and set
	 * *instance, or a negative errno-style code with a message in err
	 * (what was expected, never an option's value).  May block briefly
	 * but should not do network I/O: --check-config calls it too.
	 */
	int (*create)(const struct healthd_host *host,
		      const struct healthd_check *check, void **instance,
		      char *err, size_t errlen);

	/* Run the check once; fill `result` through host->result() and the
	 * detail functions; return by deadline_ms (see "Deadlines"). */
	void (*check)(const struct healthd_host *host, void *instance,
		      int64_t deadline_ms, struct healthd_result *result);

	/* Free the instance. */
	void (*destroy)(void *instance);

	/* --- since ABI 1.2 ---------------------------------------------------
	 * The options a check must set, ending with NULL; may be NULL.  The
	 * core refuses a check without one before create() runs, naming the
	 * option and its help, and `healthd plugins` marks them:
	 *   .required = (const char *const[]){"dsn", NULL}, */
	const char *const *required;
};

/*
 * Define the plugin's entry symbol.  Use designated initializers:
 *
 *   HEALTHD_PLUGIN_DEFINE(.name = "disk", .description = "free space",
 *                         .options = disk_options, .create = disk_create,
 *                         .check = disk_check, .destroy = disk_destroy);
 */
#define HEALTHD_PLUGIN_DEFINE(...)                                           \
	HEALTHD_EXPORT extern const struct healthd_plugin healthd_plugin;    \
	const struct healthd_plugin healthd_plugin = {                       \
		.abi_major = HEALTHD_ABI_MAJOR,                              \
		.abi_minor = HEALTHD_ABI_MINOR,                              \
		.size = sizeof(struct healthd_plugin),                       \
		__VA_ARGS__                                                  \
	}

#ifdef __cplusplus
}
#endif

#endif /* HEALTHD_PLUGIN_H */
