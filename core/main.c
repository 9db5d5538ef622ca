/* main.c — the command line: run, --check-config, --once, plugins,
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

#include "config.h"
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
		"       healthd -c FILE --check-config    validate and exit: 0 valid, 2 invalid\n"
		"       healthd -c FILE --once [--json]   run every check once and print;\n"
		"                                         exit 0 healthy, 1 degraded, 2 unhealthy, 3 error\n"
		"       healthd plugins [DIR...]          list the plugins found (default: the\n"
		"                                         default plugin_dirs), their options\n"
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
		if (o->default_value)
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

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"check-config", no_argument, NULL, 'C'},
		{"once", no_argument, NULL, 'o'},
		{"json", no_argument, NULL, 'j'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = getenv("HEALTHD_CONFIG");
	bool check_only = false, once = false, json = false;
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
	if (optind < argc || (json && !once) || (check_only && once)) {
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
		rc = daemon_check_config(path, err, sizeof(err));
		log_flush(LOG_FLUSH_MS); /* its lines before the verdict */
		if (rc < 0)
			fprintf(stderr, "%s\n", err);
		else
			printf("%s: valid\n", path);
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
