/* clock.h — the two clocks healthd uses: monotonic for deadlines and
 * schedules, wall time for the timestamps users read. */
#ifndef HEALTHD_CLOCK_H
#define HEALTHD_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

static inline int64_t clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline double clock_mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A monotonic ms instant, for pthread_cond_timedwait() on a condition
 * variable set to CLOCK_MONOTONIC. */
static inline struct timespec clock_timespec(int64_t ms)
{
	return (struct timespec){.tv_sec = ms / 1000,
				 .tv_nsec = (ms % 1000) * 1000000};
}

/* "2026-11-26T12:00:00.000Z"; buf needs 32 bytes. */
void clock_format(int64_t wall_ms, char *buf, size_t len);

#endif /* HEALTHD_CLOCK_H */
