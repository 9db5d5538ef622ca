/*
 * disk.c — a healthd check plugin: free space on the filesystem holding
 * `path`, from statvfs().
 *
 * The starting point for a custom plugin: it includes only
 * <healthd/plugin.h>, declares its options in a table, validates them in
 * create() and reports through the host functions it is handed.
 *
 *   checks:
 *     - name: data-disk
 *       plugin: disk
 *       options: { path: /data, warn_below: "10", fail_below: "5" }
 */
#define _POSIX_C_SOURCE 200809L /* statvfs */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <healthd/plugin.h>

struct disk {
	const char *path;  /* the host's option string: valid until destroy() */
	double warn_below; /* percent free */
	double fail_below;
};

static const struct healthd_option_spec disk_options[] = {
	{"path", "/", "a path on the filesystem to watch"},
	{"warn_below", "10", "warn when less than this percentage is free"},
	{"fail_below", "5", "fail when less than this percentage is free"},
	{NULL, NULL, NULL},
};

/* "12.5" or "12.5%" into *pct, 0 to 100.  Returns 0 or -1. */
static int disk_parse_percent(const char *text, double *pct)
{
	char *end;

	errno = 0;
	*pct = strtod(text, &end);
	if (end != text && *end == '%')
		end++;
	if (errno || end == text || *end || !isfinite(*pct) || *pct < 0 ||
	    *pct > 100)
		return -1;
	return 0;
}

static int disk_create(const struct healthd_host *host,
		       const struct healthd_check *check, void **instance,
		       char *err, size_t errlen)
{
	struct disk *d = calloc(1, sizeof(*d));

	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->path = host->option(check, "path");
	if (d->path[0] != '/') {
		snprintf(err, errlen, "path: expected an absolute path");
		goto fail;
	}
	if (disk_parse_percent(host->option(check, "warn_below"),
			       &d->warn_below) != 0) {
		snprintf(err, errlen,
			 "warn_below: expected a percentage from 0 to 100, like \"10\"");
		goto fail;
	}
	if (disk_parse_percent(host->option(check, "fail_below"),
			       &d->fail_below) != 0) {
		snprintf(err, errlen,
			 "fail_below: expected a percentage from 0 to 100, like \"5\"");
		goto fail;
	}
	if (d->fail_below > d->warn_below) {
		snprintf(err, errlen,
			 "fail_below must not be above warn_below (both are percentages free)");
		goto fail;
	}
	*instance = d;
	return 0;

fail:
	free(d);
	return -EINVAL;
}

/* A byte count for people: "4.1 GiB". */
static void disk_human(char *buf, size_t len, double bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	size_t u = 0;

	while (bytes >= 1024 && u + 1 < sizeof(units) / sizeof(*units)) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

/* Messages never show the path: an option value may come from ${...} (a
 * secret to healthd, so masked), and the check's name says which disk it
 * is.  statvfs() cannot take a deadline; on a hung network mount the core
 * publishes the timeout at the deadline and waits for this to return. */
static void disk_check(const struct healthd_host *host, void *instance,
		       int64_t deadline_ms, struct healthd_result *result)
{
	struct disk *d = instance;
	struct statvfs st;
	char free_text[32], total_text[32];

	(void)deadline_ms;
	if (statvfs(d->path, &st) != 0) {
		host->result(result, HEALTHD_FAIL, "statvfs: %s", strerror(errno));
		return;
	}
	/* f_bavail: what an unprivileged writer (the service) may still use. */
	double total = (double)st.f_blocks * (double)st.f_frsize;
	double avail = (double)st.f_bavail * (double)st.f_frsize;
	if (total <= 0) {
		host->result(result, HEALTHD_FAIL,
			     "the filesystem reports no size");
		return;
	}
	double pct = avail / total * 100.0;

	disk_human(free_text, sizeof(free_text), avail);
	disk_human(total_text, sizeof(total_text), total);
	if (pct < d->fail_below)
		host->result(result, HEALTHD_FAIL,
			     "%.1f%% free (%s of %s), below %g%%", pct,
			     free_text, total_text, d->fail_below);
	else if (pct < d->warn_below)
		host->result(result, HEALTHD_WARN,
			     "%.1f%% free (%s of %s), below %g%%", pct,
			     free_text, total_text, d->warn_below);
	else
		host->result(result, HEALTHD_PASS, "%.1f%% free (%s of %s)",
			     pct, free_text, total_text);
	host->detail_num(result, "free_bytes", avail);
	host->detail_num(result, "total_bytes", total);
	host->detail_num(result, "free_percent", pct);
}

static void disk_destroy(void *instance)
{
	free(instance);
}

HEALTHD_PLUGIN_DEFINE(.name = "disk",
		      .description = "free space on a filesystem (statvfs)",
		      .options = disk_options, .create = disk_create,
		      .check = disk_check, .destroy = disk_destroy);
