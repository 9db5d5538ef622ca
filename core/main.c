/* main.c — the command line: run, --check-config, --once, plugins, sleep,
 * --version. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "config.h"
#include "ctl.h"
#include "daemon.h"
#include "loader.h"
#include "log.h"
#include "plughost.h"

#define DEFAULT_CONFIG "/etc/healthd/healthd.yaml"
/* How long exit waits for queued log lines: stderr may never drain. */
#define LOG_FLUSH_MS 2000

static void usage(FILE *out)
{
	fprintf(out,
		"usage: healthd [-c FILE]                 run the daemon\n"
		"       healthd -c FILE --check-config [--json] [--map-path FROM=TO]...\n"
		"                                         validate and exit: 0 valid, 2 invalid;\n"
		"                                         every error found, as text or JSON; files\n"
		"                                         under FROM (${file:}, plugin_dirs) read from TO\n"
		"       healthd -c FILE --once [--json]   run every check once and print;\n"
		"                                         exit 0 healthy, 1 degraded, 2 unhealthy, 3 error\n"
		"       healthd plugins [DIR...]          list the plugins found (default: the\n"
		"                                         default plugin_dirs), their options\n"
		"       healthd sleep SECONDS             wait, then exit 0 (SIGTERM ends it, 0 too):\n"
		"                                         a preStop pause with no shell\n"
		"       healthd ctl [--socket PATH] [-c FILE] [--json] status | run CHECK |\n"
		"           drain [--reason TEXT] [--for DURATION] | undrain | reload\n"
		"                                         talk to the running daemon over its\n"
		"                                         control socket (healthd ctl --help)\n"
		"       healthd --version | --help\n"
		"\n"
		"The config path defaults to $HEALTHD_CONFIG, then " DEFAULT_CONFIG ".\n"
		"HEALTHD_LOG_LEVEL and HEALTHD_LISTEN override log.level and listen.\n");
}

static int so_file(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 3 && !strcmp(e->d_name + n - 3, ".so");
}

/* One plugin: its description, then each option with its default and
 * help.  A file the loader refuses is listed with the reason.  Returns 0,
 * or -1 when refused. */
static int list_plugin(const char *dir, const char *file)
{
	char path[4096], err[1024];
	struct plugin *p;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (loader_open(path, NULL, 0, &p, err, sizeof(err)) < 0) {
		printf("  %s: refused: %s\n", file, err);
		return -1;
	}
	printf("  %s — %s\n", p->desc->name,
	       p->desc->description ? p->desc->description : "");
	for (const struct healthd_option_spec *o = p->desc->options;
	     o && o->name; o++) {
		printf("      %-18s %s", o->name, o->help ? o->help : "");
		if (loader_is_required(p->desc, o->name))
			printf(" [required]");
		else if (o->default_value)
			printf(" [default: %s]", o->default_value);
		printf("\n");
	}
	loader_release(p);
	return 0;
}

/* `healthd plugins [DIR...]`: 0, or 1 when a file was refused or a
 * directory cannot be read (a default one may well not exist). */
static int list_plugins(char *const *dirs, size_t n, bool defaults)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		struct dirent **files;
		int k = scandir(dirs[i], &files, so_file, alphasort);

		printf("%s:\n", dirs[i]);
		if (k < 0 && defaults && errno == ENOENT) {
			printf("  (no such directory)\n");
			continue;
		}
		if (k < 0) {
			printf("  cannot read it: %s\n", strerror(errno));
			rc = 1;
			continue;
		}
		for (int j = 0; j < k; j++) {
			if (list_plugin(dirs[i], files[j]->d_name) < 0)
				rc = 1;
			free(files[j]);
		}
		free(files);
	}
	return rc;
}

/* The log thread writes lines later: let them out before exiting. */
static int flushed(int rc)
{
	log_flush(LOG_FLUSH_MS);
	return rc;
}

/* --check-config's verdict: "PATH: valid", or each problem on stderr as
 * FILE:LINE:COL: message; with --json one object on stdout, for CI. */
static void print_problems(const char *path,
			   const struct config_problems *problems, bool json)
{
	if (!json) {
		if (!problems->n)
			printf("%s: valid\n", path);
		for (size_t i = 0; i < problems->n; i++)
			fprintf(stderr, "%s\n", problems->list[i].text);
		return;
	}
	json_object *o = json_object_new_object();
	json_object *list = json_object_new_array();

	json_object_object_add(o, "config", json_object_new_string(path));
	json_object_object_add(o, "valid", json_object_new_boolean(!problems->n));
	for (size_t i = 0; i < problems->n; i++) {
		const struct config_problem *p = &problems->list[i];
		json_object *e = json_object_new_object();
		bool placed = p->line > 0;

		json_object_object_add(e, "file", json_object_new_string(path));
		json_object_object_add(e, "line",
				       placed ? json_object_new_int(p->line) : NULL);
		json_object_object_add(e, "column",
				       placed ? json_object_new_int(p->col) : NULL);
		json_object_object_add(e, "message",
				       json_object_new_string(p->message));
		json_object_array_add(list, e);
	}
	json_object_object_add(o, "errors", list);
	printf("%s\n", json_object_to_json_string_ext(
			       o, JSON_C_TO_STRING_PLAIN |
					  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* `healthd sleep SECONDS`: a Kubernetes preStop pause in an image with no
 * shell.  SIGTERM or SIGINT (the kubelet giving up on the hook) ends it
 * early, still 0.  Exit 2 on a bad argument. */
static int sleep_main(int argc, char **argv)
{
	const char *arg = argv[argc == 2 ? 1 : 0];
	char *end;
	double s;

	if (argc != 2) {
		fprintf(stderr, "usage: healthd sleep SECONDS\n");
		return 2;
	}
	errno = 0;
	s = strtod(arg, &end);
	if (!*arg || *end || errno || !(s >= 0 && s <= 86400) ||
	    strspn(arg, "0123456789.") != strlen(arg)) {
		fprintf(stderr, "healthd sleep: '%s' is not a number of seconds "
				"from 0 to 86400\n", arg);
		return 2;
	}

	sigset_t set;
	int64_t until = clock_mono_ms() + (int64_t)(s * 1000 + 0.5), left;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	/* sigtimedwait() returns early (EINTR) on other handled signals. */
	while ((left = until - clock_mono_ms()) > 0) {
		struct timespec ts = clock_timespec(left);

		if (sigtimedwait(&set, NULL, &ts) >= 0 || errno != EINTR)
			break;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'C'},
		{"once", no_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'j'},
		{"map-path", required_argument, NULL, 'm'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = getenv("HEALTHD_CONFIG");
	bool check_only = false, once = false, json = false, mapped = false;
	char err[1024];
	int opt, rc;

	/* A plugin host: healthd started by itself (plughost.h). */
	if (getenv(PLUGHOST_ENV))
		return plughost_main();
	/* Descriptors 0-2 open, so no socket or pipe of ours lands on them
	 * (a plugin host gets its pipes there). */
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			return 1;

	if (argc > 1 && !strcmp(argv[1], "sleep"))
		return sleep_main(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1, DEFAULT_CONFIG);

	while ((opt = getopt_long(argc, argv, "c:hV", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		case 'o':
			once = true;
			break;
		case 'j':
			json = true;
			break;
		case 'm':
			if (config_add_path_map(optarg) < 0) {
				fprintf(stderr, "--map-path %s: expected FROM=TO "
						"with an absolute FROM\n", optarg);
				return 2;
			}
			mapped = true;
			break;
		case 'V':
			printf("healthd %s (plugin ABI %d.%d)\n", HEALTHD_VERSION,
			       HEALTHD_ABI_MAJOR, HEALTHD_ABI_MINOR);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "plugins") && !check_only &&
	    !once && !json) {
		bool given = optind + 1 < argc;

		if (loader_init() < 0)
			return 1;
		rc = list_plugins(given ? argv + optind + 1
					: config_default_plugin_dirs,
				  given ? (size_t)(argc - optind - 1)
					: CONFIG_DEFAULT_PLUGIN_DIRS,
				  !given);
		loader_exit();
		return flushed(rc);
	}
	if (optind < argc || (json && !once && !check_only) ||
	    (check_only && once) || (mapped && !check_only)) {
		usage(stderr);
		return 2;
	}
	if (!path || !*path)
		path = DEFAULT_CONFIG;

	/* Signals arrive through the daemon's signalfd: block them before any
	 * thread starts, so every thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (!check_only && !once)
		pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (loader_init() < 0) {
		log_error("cannot initialise the plugin loader");
		return flushed(check_only ? 2 : 3);
	}
	if (check_only) {
		struct config_problems problems = {0};

		rc = daemon_check_config(path, &problems);
		log_flush(LOG_FLUSH_MS); /* its lines before the verdict */
		print_problems(path, &problems, json);
		config_problems_free(&problems);
		loader_exit();
		return flushed(rc < 0 ? 2 : 0);
	}

	struct daemon *d = daemon_new(path, !once, err, sizeof(err));
	if (!d) {
		log_error("%s", err);
		loader_exit();
		return flushed(once ? 3 : 1);
	}
	rc = once ? daemon_once(d, json) : daemon_run(d);
	if (!daemon_free(d)) {
		/* A plugin still runs: unloading it would pull its code away. */
		fflush(NULL);
		_exit(flushed(rc));
	}
	loader_exit();
	return flushed(rc);
}
