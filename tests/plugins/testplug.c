/*
 * testplug.c — the integration tests' controllable check.
 *
 * mode pass|warn|fail reports that status (after sleep_ms), sleep sleeps
 * sleep_ms and passes, hang never returns, deadline waits until the
 * deadline and then fails, as a plugin whose dependency does not answer
 * does.  sleep and hang ignore the deadline on purpose: they stand in for
 * plugins that overrun.  A control file, read on every run, overrides mode
 * so a test can change the outcome of a running daemon; a missing file
 * means pass.  destroy_file, when set, gets a line when the instance is
 * destroyed.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <healthd/plugin.h>

enum testplug_mode { TP_PASS, TP_WARN, TP_FAIL, TP_SLEEP, TP_HANG, TP_DEADLINE };

static const char *const testplug_modes[] = {"pass",  "warn", "fail",
					     "sleep", "hang", "deadline"};

struct testplug {
	enum testplug_mode mode;
	long sleep_ms;
	const char *message; /* NULL: a default one */
	const char *control; /* NULL: no control file */
	const char *destroy_file;
	long runs;
};

static const struct healthd_option_spec testplug_options[] = {
	{"mode", "pass", "pass, warn, fail, sleep, hang or deadline"},
	{"sleep_ms", "0", "sleep this long before reporting"},
	{"message", NULL, "the result's message"},
	{"control", NULL, "file whose first line overrides mode on every run"},
	{"target", NULL, "what the check says it talks to (host->target())"},
	{"secret", NULL, "accepted and ignored"},
	{"destroy_file", NULL, "file that gets a line when the instance is destroyed"},
	{NULL, NULL, NULL},
};

static int testplug_parse_mode(const char *text, enum testplug_mode *mode)
{
	for (size_t i = 0; i < sizeof(testplug_modes) / sizeof(*testplug_modes); i++) {
		if (!strcmp(text, testplug_modes[i])) {
			*mode = (enum testplug_mode)i;
			return 0;
		}
	}
	return -1;
}

static int testplug_parse_ms(const char *text, long *ms)
{
	char *end;

	errno = 0;
	*ms = strtol(text, &end, 10);
	return errno || end == text || *end || *ms < 0 ? -1 : 0;
}

static void testplug_sleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	if (ms <= 0)
		return; /* nanosleep(0) still yields the CPU */
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int testplug_create(const struct healthd_host *host,
			   const struct healthd_check *check, void **instance,
			   char *err, size_t errlen)
{
	struct testplug *t = calloc(1, sizeof(*t));

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (testplug_parse_mode(host->option(check, "mode"), &t->mode) != 0) {
		snprintf(err, errlen,
			 "mode: expected pass, warn, fail, sleep, hang or deadline");
		goto fail;
	}
	if (testplug_parse_ms(host->option(check, "sleep_ms"), &t->sleep_ms) != 0) {
		snprintf(err, errlen,
			 "sleep_ms: expected a non-negative number of milliseconds");
		goto fail;
	}
	t->message = host->option(check, "message");
	t->control = host->option(check, "control");
	t->destroy_file = host->option(check, "destroy_file");
	if (host->option(check, "target"))
		host->target(check, "%s", host->option(check, "target"));
	*instance = t;
	return 0;

fail:
	free(t);
	return -EINVAL;
}

/* The control file's first line: "pass", "warn", "fail", "sleep MS" or
 * "hang".  Returns 0, or -1 when the line is none of them. */
static int testplug_read_control(const char *path, enum testplug_mode *mode,
				 long *sleep_ms)
{
	char line[128], word[16];
	long ms = 0;
	FILE *f = fopen(path, "r");

	*mode = TP_PASS;
	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return 0;
	}
	fclose(f);
	int n = sscanf(line, "%15s %ld", word, &ms);
	if (n < 1 || testplug_parse_mode(word, mode) != 0 ||
	    (n == 2 && (*mode != TP_SLEEP || ms < 0)))
		return -1;
	if (*mode == TP_SLEEP && n == 2)
		*sleep_ms = ms;
	return 0;
}

static void testplug_check(const struct healthd_host *host, void *instance,
			   int64_t deadline_ms, struct healthd_result *result)
{
	struct testplug *t = instance;
	enum testplug_mode mode = t->mode;
	long sleep_ms = t->sleep_ms;

	t->runs++;
	if (t->control &&
	    testplug_read_control(t->control, &mode, &sleep_ms) != 0) {
		host->result(result, HEALTHD_FAIL,
			     "control file: expected pass, warn, fail, sleep MS or hang");
		goto details;
	}

	if (mode == TP_HANG)
		for (;;)
			testplug_sleep(1000);
	if (mode == TP_DEADLINE) {
		int64_t left = deadline_ms - host->now_ms();

		testplug_sleep(left > 0 ? (long)left : 0);
		host->result(result, HEALTHD_FAIL,
			     "testplug: no answer by the deadline");
		goto details;
	}
	testplug_sleep(sleep_ms);

	enum healthd_status status = mode == TP_WARN   ? HEALTHD_WARN
				     : mode == TP_FAIL ? HEALTHD_FAIL
						       : HEALTHD_PASS;
	if (t->message)
		host->result(result, status, "%s", t->message);
	else
		host->result(result, status, "testplug: %s", testplug_modes[mode]);

details:
	host->detail_str(result, "mode", testplug_modes[mode]);
	host->detail_num(result, "runs", (double)t->runs);
}

static void testplug_destroy(void *instance)
{
	struct testplug *t = instance;
	FILE *f = t->destroy_file ? fopen(t->destroy_file, "a") : NULL;

	if (f) {
		fprintf(f, "destroyed after %ld runs\n", t->runs);
		fclose(f);
	}
	free(t);
}

HEALTHD_PLUGIN_DEFINE(.name = "testplug",
		      .description = "controllable check for healthd's tests",
		      .options = testplug_options, .create = testplug_create,
		      .check = testplug_check, .destroy = testplug_destroy);
