/*
 * file.c — the bundled file check: a heartbeat for workers with no HTTP to
 * probe.  The worker touches a file as it makes progress; the check fails
 * when the file is missing, older than `max_age` or out of its size bounds.
 *
 * One stat() per run.  A path on a hung network filesystem can block it
 * past the deadline: plugin hosts (isolation: process, the default) are
 * there for that.  Messages never show the path (an option value, which
 * may come from ${...}); they say what was found against which option.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <healthd/plugin.h>

struct file {
	const char *path;
	int exists; /* 1: must exist; 0: must not (a flag file) */
	int64_t max_age_ms, warn_age_ms; /* 0: not checked */
	int64_t min_size, max_size;      /* -1: not checked */
};

static const struct healthd_option_spec file_options[] = {
	{"path", NULL, "the file to check"},
	{"exists", "true",
	 "true: the file must exist; false: it must not (a flag file whose "
	 "presence means trouble)"},
	{"max_age", NULL,
	 "fail when the file was last modified longer ago than this, e.g. 30s"},
	{"warn_age", NULL, "warn when it was last modified longer ago than this"},
	{"min_size", NULL, "fail when smaller, e.g. 1 (not empty) or 4KiB"},
	{"max_size", NULL, "fail when larger, e.g. 100MiB"},
	{NULL, NULL, NULL},
};

/* An optional size option; -1 when unset.  Returns -1 on a bad value. */
static int file_size_option(const struct healthd_host *host,
			    const struct healthd_check *check, const char *key,
			    int64_t *out, char *err, size_t errlen)
{
	int rc = host->option_size(check, key, out, err, errlen);

	if (rc == 1)
		*out = -1;
	return rc < 0 ? -1 : 0;
}

static int file_create(const struct healthd_host *host,
		       const struct healthd_check *check, void **instance,
		       char *err, size_t errlen)
{
	struct file *f = calloc(1, sizeof(*f));

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	f->path = host->option(check, "path"); /* required: set */
	if (host->option_bool(check, "exists", &f->exists, err, errlen) < 0 ||
	    host->option_duration_ms(check, "max_age", &f->max_age_ms, err,
				     errlen) < 0 ||
	    host->option_duration_ms(check, "warn_age", &f->warn_age_ms, err,
				     errlen) < 0 ||
	    file_size_option(host, check, "min_size", &f->min_size, err,
			     errlen) < 0 ||
	    file_size_option(host, check, "max_size", &f->max_size, err,
			     errlen) < 0)
		goto fail;
	if (f->max_age_ms && f->warn_age_ms && f->warn_age_ms >= f->max_age_ms) {
		snprintf(err, errlen, "warn_age: must be shorter than max_age");
		goto fail;
	}
	if (f->min_size >= 0 && f->max_size >= 0 && f->min_size > f->max_size) {
		snprintf(err, errlen, "min_size: must not be over max_size");
		goto fail;
	}
	if (!f->exists && (f->max_age_ms || f->warn_age_ms ||
			   f->min_size >= 0 || f->max_size >= 0)) {
		snprintf(err, errlen, "exists: false checks absence only (no "
				      "max_age, warn_age, min_size, max_size)");
		goto fail;
	}
	*instance = f;
	return 0;
fail:
	free(f);
	return -EINVAL;
}

static double file_seconds(int64_t ms)
{
	return (double)ms / 1000.0;
}

static void file_check(const struct healthd_host *host, void *instance,
		       int64_t deadline_ms, struct healthd_result *result)
{
	struct file *f = instance;
	struct timespec now;
	struct stat st;
	int64_t age_ms;

	(void)deadline_ms; /* one stat(): see the top of the file */
	if (stat(f->path, &st) != 0) {
		int e = errno;

		host->detail_bool(result, "exists", 0);
		if ((e == ENOENT || e == ENOTDIR) && !f->exists)
			host->result(result, HEALTHD_PASS, "file absent, as expected");
		else if (e == ENOENT || e == ENOTDIR)
			host->result(result, HEALTHD_FAIL, "file does not exist");
		else
			host->result(result, HEALTHD_FAIL, "cannot stat the file: %s",
				     strerror(e));
		return;
	}
	host->detail_bool(result, "exists", 1);
	if (!f->exists) {
		host->result(result, HEALTHD_FAIL, "file exists (expected absent)");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	age_ms = ((int64_t)now.tv_sec - (int64_t)st.st_mtim.tv_sec) * 1000 +
		 ((long)now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;
	if (age_ms < 0)
		age_ms = 0; /* modified "in the future": a clock skew */
	host->detail_num(result, "age_s", file_seconds(age_ms));
	host->detail_num(result, "size_bytes", (double)st.st_size);

	if (f->max_age_ms && age_ms > f->max_age_ms)
		host->result(result, HEALTHD_FAIL,
			     "file last modified %.1f s ago, over max_age %.1f s",
			     file_seconds(age_ms), file_seconds(f->max_age_ms));
	else if (f->min_size >= 0 && st.st_size < f->min_size)
		host->result(result, HEALTHD_FAIL,
			     "file is %lld bytes, under min_size %lld",
			     (long long)st.st_size, (long long)f->min_size);
	else if (f->max_size >= 0 && st.st_size > f->max_size)
		host->result(result, HEALTHD_FAIL,
			     "file is %lld bytes, over max_size %lld",
			     (long long)st.st_size, (long long)f->max_size);
	else if (f->warn_age_ms && age_ms > f->warn_age_ms)
		host->result(result, HEALTHD_WARN,
			     "file last modified %.1f s ago, over warn_age %.1f s",
			     file_seconds(age_ms), file_seconds(f->warn_age_ms));
	else
		host->result(result, HEALTHD_PASS,
			     "file last modified %.1f s ago, %lld bytes",
			     file_seconds(age_ms), (long long)st.st_size);
}

static void file_destroy(void *instance)
{
	free(instance);
}

HEALTHD_PLUGIN_DEFINE(.name = "file",
		      .description = "a file: exists, age (a heartbeat), size",
		      .options = file_options, .create = file_create,
		      .check = file_check, .destroy = file_destroy,
		      .required = (const char *const[]){"path", NULL});
