/*
 * history.h — what a check did lately: a ring of its latest results, a
 * ring of its latest status changes, and counts kept since it was created
 * (transitions, a histogram of run durations).
 *
 * Memory is bounded whatever the run rate: both rings hold at most `size`
 * entries (the check's `history` setting), grow only as results arrive,
 * and a message repeated run after run is stored once (rings share it).
 * Not thread-safe: the scheduler's lock guards a check's history.
 */
#ifndef HEALTHD_HISTORY_H
#define HEALTHD_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

/* Upper bounds (seconds) of the duration histogram's buckets: from 1 ms,
 * a cache on loopback, to 10 s, past any sensible timeout.  +Inf follows. */
#define HISTORY_BUCKETS 13
extern const double history_bucket_le[HISTORY_BUCKETS];

/* The status page's strip: this many latest results. */
#define HISTORY_RECENT 30

struct history_text; /* a shared, reference-counted message */

struct history_result {
	int64_t at; /* wall ms */
	float duration_ms;
	uint8_t status; /* enum check_status, raw: pass, warn or fail */
	struct history_text *message;
};

struct history_change {
	int64_t at; /* wall ms */
	uint8_t from, to; /* enum check_status, after thresholds */
	struct history_text *message; /* of the result that made it */
};

struct history_ring {
	void *items;  /* history_result or history_change */
	size_t cap;   /* allocated */
	size_t start; /* oldest */
	size_t n;
};

struct duration_histogram {
	uint64_t bucket[HISTORY_BUCKETS]; /* per bucket, not cumulative */
	uint64_t count;
	double sum_s;
};

struct history {
	size_t size; /* the most entries either ring keeps; 0: none */
	struct history_ring results, changes;
	size_t passing; /* results in the ring that pass or warn */
	uint64_t transitions; /* since the check was created */
	int64_t last_change;  /* wall ms, 0: never */
	struct duration_histogram durations;
};

/* A summary cheap enough to copy into every snapshot. */
struct history_summary {
	uint64_t transitions;
	int64_t last_change; /* wall ms, 0: never */
	size_t window;       /* results in the ring */
	size_t passing;      /* of those, passing or warning */
	uint8_t recent[HISTORY_RECENT]; /* statuses, oldest first */
	size_t n_recent;
	struct duration_histogram durations;
};

void history_init(struct history *h, size_t size);

/* Record one run (raw status, as the thresholds saw it) and, when the
 * status after thresholds changed, the change.  Returns 0 or -ENOMEM (the
 * counts are kept, the rings miss the entry). */
int history_add(struct history *h, int64_t at, enum check_status raw,
		double duration_ms, const char *message,
		enum check_status from, enum check_status to);

/* Record a status change that no run made (a check blocked by a
 * dependency, or no longer).  Returns 0 or -ENOMEM (counts kept). */
int history_change(struct history *h, int64_t at, enum check_status from,
		   enum check_status to, const char *message);

/* Move `from`'s history into `h` (a reload replacing a check of the same
 * name), keeping the newest `h->size` entries; `from` is left empty. */
void history_take(struct history *h, struct history *from);

void history_summarize(const struct history *h, struct history_summary *out);

/* The i-th oldest entry (i < ring.n), and a message's text. */
const struct history_result *history_result_at(const struct history *h,
					       size_t i);
const struct history_change *history_change_at(const struct history *h,
					       size_t i);
const char *history_text(const struct history_text *t);

/* A deep copy that owns its messages, for rendering outside the lock;
 * history_clear() frees it.  Returns 0 or -ENOMEM. */
int history_copy(struct history *dst, const struct history *src);
void history_clear(struct history *h);

#endif /* HEALTHD_HISTORY_H */
