/*
 * healthd-plugin-run — load one plugin the way healthd does and run its
 * check once.
 *
 *   healthd-plugin-run PATH_OR_NAME [--dir DIR]... [--timeout-ms N] [key=value ...]
 *
 * Prints {"status":...,"message":...,"details":{...},"duration_ms":N} and
 * exits 0; a plugin refused, bad options or a failed create() print the
 * reason on stderr and exit 2.  The check runs on this thread, so an overrun
 * is measured, not cut short.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "clock.h"
#include "config.h"
#include "host.h"
#include "loader.h"

static const char *const run_status_names[] = {"pass", "warn", "fail"};

static void run_usage(void)
{
	fprintf(stderr, "usage: healthd-plugin-run PATH_OR_NAME [--dir DIR]... "
			"[--timeout-ms N] [key=value ...]\n");
}

static void run_print(const struct healthd_check *check,
		      const struct healthd_result *r, double duration_ms)
{
	json_object *o = json_object_new_object();
	char ms[32];

	json_object_object_add(o, "status",
			       json_object_new_string(run_status_names[r->status]));
	json_object_object_add(o, "message",
			       json_object_new_string(r->set ? r->message
							     : "the check set no result"));
	json_object_object_add(o, "details",
			       r->details ? json_object_get(r->details)
					  : json_object_new_object());
	snprintf(ms, sizeof(ms), "%.3f", duration_ms);
	json_object_object_add(o, "duration_ms",
			       json_object_new_double_s(duration_ms, ms));
	/* What create() said the check talks to (host->target()). */
	json_object_object_add(o, "target",
			       json_object_new_string(check->target));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int main(int argc, char **argv)
{
	char *dirs_default[] = {HEALTHD_DEFAULT_PLUGIN_DIR};
	char **dirs = calloc((size_t)argc, sizeof(*dirs));
	struct config_option *opts = calloc((size_t)argc, sizeof(*opts));
	struct config_check cc = {.name = "run", .critical = true};
	size_t n_dirs = 0;
	long timeout_ms = 3000;
	struct plugin *plugin = NULL;
	struct healthd_check check;
	struct healthd_result result;
	void *instance = NULL;
	char err[1024] = "";
	int rc = 2;

	host_result_init(&result, NULL); /* no redaction: plugin tests see what a plugin prints */
	/* As in the daemon and its plugin hosts: a peer that resets a
	 * connection fails the run, not the process. */
	signal(SIGPIPE, SIG_IGN);
	if (!dirs || !opts || loader_init() != 0)
		goto fail;
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dirs[n_dirs++] = argv[++i];
		} else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) {
			char *end;

			timeout_ms = strtol(argv[++i], &end, 10);
			if (*end || timeout_ms <= 0) {
				fprintf(stderr, "plugin_run: --timeout-ms: expected a positive number\n");
				goto fail;
			}
		} else if (!strncmp(argv[i], "--", 2) && !eq) {
			run_usage();
			goto fail;
		} else if (!cc.plugin && !eq) {
			cc.plugin = argv[i];
		} else if (eq && eq != argv[i]) {
			*eq = '\0';
			opts[cc.n_options++] = (struct config_option){
				.key = argv[i], .value = eq + 1};
		} else {
			run_usage();
			goto fail;
		}
	}
	if (!cc.plugin) {
		run_usage();
		goto fail;
	}
	cc.options = opts;
	cc.timeout_ms = timeout_ms;

	if (loader_open(cc.plugin, n_dirs ? dirs : dirs_default,
			n_dirs ? n_dirs : 1, &plugin, err, sizeof(err)) != 0 ||
	    host_check_options("plugin_run", &cc, plugin->desc, err,
			       sizeof(err)) != 0)
		goto fail;
	host_check_init(&check, &cc, plugin->desc->options);
	if (plugin->desc->create(&host_api, &check, &instance, err,
				 sizeof(err)) != 0) {
		/* The plugin's words, prefixed with whose they are. */
		fprintf(stderr, "check \"run\": plugin %s: %s\n",
			plugin->desc->name, err);
		err[0] = '\0';
		goto fail;
	}

	double start = clock_mono_s() * 1e3;
	plugin->desc->check(&host_api, instance, host_api.now_ms() + timeout_ms,
			    &result);
	run_print(&check, &result, clock_mono_s() * 1e3 - start);
	plugin->desc->destroy(instance);
	rc = 0;

fail:
	if (rc && err[0])
		fprintf(stderr, "%s\n", err);
	host_result_clear(&result);
	loader_release(plugin);
	loader_exit();
	free(opts);
	free(dirs);
	return rc;
}
