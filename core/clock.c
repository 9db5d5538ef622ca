/* clock.c — timestamp formatting. */
#include <stdio.h>
#include <time.h>

#include "clock.h"

/* RFC 3339 UTC with milliseconds, the form every timestamp in healthd takes. */
void clock_format(int64_t wall_ms, char *buf, size_t len)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03dZ", (int)(wall_ms % 1000));
}
