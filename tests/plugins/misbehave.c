/*
 * misbehave.c — a plugin that does, on purpose, what a buggy custom plugin
 * does, for the plugin host tests.
 *
 * `check` picks what check() does: pass, segv (dereference NULL), abort,
 * exit (exit(3)), hang (never return, deadline ignored), fork_hang (start a
 * child that ignores SIGTERM, then hang), orphan (start a child that
 * outlives the run and is never waited for), leak (4 MiB more per run,
 * touched), print (1 MiB to stdout and to stderr), garbage (write junk
 * into the plugin host's protocol socket, fd 3).  `create` picks what
 * create() does: ok, segv or hang.  `pidfile`, when set, gets the pid of a
 * child fork_hang or orphan started.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <healthd/plugin.h>

struct misbehave {
	const char *check;
	const char *pidfile;
	long runs;
};

static const struct healthd_option_spec misbehave_options[] = {
	{"check", "pass", "what check() does"},
	{"create", "ok", "what create() does: ok, segv or hang"},
	{"pidfile", NULL, "where a started child's pid is written"},
	{NULL, NULL, NULL},
};

static void misbehave_crash(void)
{
	volatile int *nowhere = NULL;

	*nowhere = 1;
}

static int misbehave_create(const struct healthd_host *host,
			    const struct healthd_check *check, void **instance,
			    char *err, size_t errlen)
{
	const char *create = host->option(check, "create");
	struct misbehave *m;

	if (!strcmp(create, "segv"))
		misbehave_crash();
	if (!strcmp(create, "hang"))
		for (;;)
			pause();
	if (!(m = calloc(1, sizeof(*m)))) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->check = host->option(check, "check");
	m->pidfile = host->option(check, "pidfile");
	*instance = m;
	return 0;
}

static void misbehave_note_child(const struct misbehave *m, pid_t pid)
{
	FILE *f = m->pidfile ? fopen(m->pidfile, "w") : NULL;

	if (f) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
}

static void misbehave_check(const struct healthd_host *host, void *instance,
			    int64_t deadline_ms, struct healthd_result *result)
{
	struct misbehave *m = instance;
	const char *what = m->check;

	(void)deadline_ms;
	m->runs++;
	if (!strcmp(what, "segv")) {
		misbehave_crash();
	} else if (!strcmp(what, "abort")) {
		abort();
	} else if (!strcmp(what, "exit")) {
		exit(3);
	} else if (!strcmp(what, "hang")) {
		for (;;)
			pause();
	} else if (!strcmp(what, "fork_hang") || !strcmp(what, "orphan")) {
		pid_t pid = fork();

		if (pid == 0) {
			signal(SIGTERM, SIG_IGN);
			if (!strcmp(what, "orphan"))
				_exit(0); /* a zombie nobody waits for */
			for (;;)
				pause();
		}
		misbehave_note_child(m, pid);
		if (!strcmp(what, "fork_hang"))
			for (;;)
				pause();
	} else if (!strcmp(what, "leak")) {
		char *p = malloc(4 << 20);

		if (p)
			memset(p, 1, 4 << 20); /* resident, not just reserved */
	} else if (!strcmp(what, "print")) {
		static char line[1024];

		memset(line, 'x', sizeof(line) - 1);
		line[sizeof(line) - 1] = '\n';
		for (int i = 0; i < 1024; i++) {
			fwrite(line, 1, sizeof(line), stdout);
			fwrite(line, 1, sizeof(line), stderr);
		}
		fflush(stdout);
	} else if (!strcmp(what, "garbage")) {
		static const char junk[] = "\x01\x00\xff\xff garbage, not a frame";

		if (send(3, junk, sizeof(junk), MSG_NOSIGNAL) < 0)
			host->log(NULL, HEALTHD_LOG_WARN, "no socket to spoil");
	}
	host->result(result, HEALTHD_PASS, "misbehave: %s survived", what);
	host->detail_num(result, "runs", (double)m->runs);
}

static void misbehave_destroy(void *instance)
{
	free(instance);
}

HEALTHD_PLUGIN_DEFINE(.name = "misbehave",
		      .description = "misbehaves on purpose, for healthd's tests",
		      .options = misbehave_options, .create = misbehave_create,
		      .check = misbehave_check, .destroy = misbehave_destroy);
