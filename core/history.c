/* history.c — a check's rings of results and status changes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

const double history_bucket_le[HISTORY_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.25,  0.5,    1,     2.5,  5,     10,
};

/* Rings grow from this many entries, doubling up to their size. */
#define RING_FIRST 8

/* Shared between the rings and the copies HTTP threads render from, which
 * are freed outside the scheduler's lock: the count is atomic. */
struct history_text {
	int refs;
	char text[];
};

static struct history_text *text_new(const char *s)
{
	size_t len = strlen(s);
	struct history_text *t = malloc(sizeof(*t) + len + 1);

	if (!t)
		return NULL;
	t->refs = 1;
	memcpy(t->text, s, len + 1);
	return t;
}

static struct history_text *text_ref(struct history_text *t)
{
	if (t)
		__atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
	return t;
}

static void text_unref(struct history_text *t)
{
	if (t && __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(t);
}

const char *history_text(const struct history_text *t)
{
	return t ? t->text : "";
}

void history_init(struct history *h, size_t size)
{
	memset(h, 0, sizeof(*h));
	h->size = size;
}

/* The slot of the i-th oldest entry. */
static void *ring_at(const struct history_ring *r, size_t i, size_t item)
{
	return (char *)r->items + ((r->start + i) % r->cap) * item;
}

/*
 * A slot for a new entry, at the newest end: the ring grows until it holds
 * `size` entries, then the oldest is overwritten (*evicted points at it
 * first, so its message can be released).  Growth happens only before the
 * first wrap, so the entries are in order in memory then.  NULL when out
 * of memory or size is 0.
 */
static void *ring_push(struct history_ring *r, size_t size, size_t item,
		       void **evicted)
{
	*evicted = NULL;
	if (!size)
		return NULL;
	if (r->n == r->cap && r->cap < size) {
		size_t cap = r->cap ? r->cap * 2 : RING_FIRST;
		void *items;

		if (cap > size)
			cap = size;
		if (!(items = realloc(r->items, cap * item)))
			return NULL;
		r->items = items;
		r->cap = cap;
	}
	if (r->n < r->cap)
		return ring_at(r, r->n++, item);
	*evicted = ring_at(r, 0, item);
	r->start = (r->start + 1) % r->cap;
	return *evicted;
}

static bool passing(uint8_t status)
{
	return status == STATUS_PASS || status == STATUS_WARN;
}

static void histogram_add(struct duration_histogram *d, double seconds)
{
	size_t i = 0;

	while (i < HISTORY_BUCKETS && seconds > history_bucket_le[i])
		i++;
	if (i < HISTORY_BUCKETS)
		d->bucket[i]++;
	d->count++;
	d->sum_s += seconds;
}

/* The ring of changes gets one more, sharing `text`. */
static void change_push(struct history *h, int64_t at, enum check_status from,
			enum check_status to, struct history_text *text)
{
	struct history_change *gone,
		*c = ring_push(&h->changes, h->size, sizeof(*c), (void **)&gone);

	if (!c)
		return; /* out of memory: the counts stay right */
	if (gone)
		text_unref(gone->message);
	*c = (struct history_change){at, (uint8_t)from, (uint8_t)to,
				     text_ref(text)};
}

int history_add(struct history *h, int64_t at, enum check_status raw,
		double duration_ms, const char *message,
		enum check_status from, enum check_status to)
{
	struct history_text *text = NULL;
	struct history_result *r, *old;

	histogram_add(&h->durations, duration_ms / 1000.0);
	if (from != to) {
		h->transitions++;
		h->last_change = at;
	}
	if (!h->size)
		return 0;
	/* Run after run a check says the same: keep the text once. */
	if (h->results.n) {
		const struct history_result *newest =
			history_result_at(h, h->results.n - 1);
		if (strcmp(history_text(newest->message), message) == 0)
			text = text_ref(newest->message);
	}
	if (!text && !(text = text_new(message)))
		return -ENOMEM;

	r = ring_push(&h->results, h->size, sizeof(*r), (void **)&old);
	if (!r) {
		text_unref(text);
		return -ENOMEM;
	}
	if (old) {
		h->passing -= passing(old->status);
		text_unref(old->message);
	}
	*r = (struct history_result){at, (float)duration_ms, (uint8_t)raw,
				     text_ref(text)};
	h->passing += passing(r->status);

	if (from != to)
		change_push(h, at, from, to, text);
	text_unref(text);
	return 0;
}

int history_change(struct history *h, int64_t at, enum check_status from,
		   enum check_status to, const char *message)
{
	struct history_text *text;

	h->transitions++;
	h->last_change = at;
	if (!h->size)
		return 0;
	if (!(text = text_new(message)))
		return -ENOMEM;
	change_push(h, at, from, to, text);
	text_unref(text);
	return 0;
}

const struct history_result *history_result_at(const struct history *h,
					       size_t i)
{
	return ring_at(&h->results, i, sizeof(struct history_result));
}

const struct history_change *history_change_at(const struct history *h,
					       size_t i)
{
	return ring_at(&h->changes, i, sizeof(struct history_change));
}

void history_summarize(const struct history *h, struct history_summary *out)
{
	size_t n = h->results.n;

	out->transitions = h->transitions;
	out->last_change = h->last_change;
	out->window = n;
	out->passing = h->passing;
	out->n_recent = n < HISTORY_RECENT ? n : HISTORY_RECENT;
	for (size_t i = 0; i < out->n_recent; i++)
		out->recent[i] = history_result_at(h, n - out->n_recent + i)->status;
	out->durations = h->durations;
}

/* Copy the newest `keep` entries of `src` into a new ring of `dst`,
 * referencing their messages. */
static int ring_copy(struct history_ring *dst, const struct history_ring *src,
		     size_t keep, size_t item, size_t text_offset)
{
	size_t n = src->n < keep ? src->n : keep;

	memset(dst, 0, sizeof(*dst));
	if (!n)
		return 0;
	if (!(dst->items = malloc(n * item)))
		return -ENOMEM;
	dst->cap = dst->n = n;
	for (size_t i = 0; i < n; i++) {
		char *to = (char *)dst->items + i * item;
		memcpy(to, ring_at(src, src->n - n + i, item), item);
		text_ref(*(struct history_text **)(to + text_offset));
	}
	return 0;
}

static void ring_clear(struct history_ring *r, size_t item, size_t text_offset)
{
	for (size_t i = 0; i < r->n; i++)
		text_unref(*(struct history_text **)((char *)ring_at(r, i, item) +
						    text_offset));
	free(r->items);
	memset(r, 0, sizeof(*r));
}

#define RESULT_TEXT offsetof(struct history_result, message)
#define CHANGE_TEXT offsetof(struct history_change, message)

static size_t count_passing(const struct history *h)
{
	size_t n = 0;

	for (size_t i = 0; i < h->results.n; i++)
		n += passing(history_result_at(h, i)->status);
	return n;
}

int history_copy(struct history *dst, const struct history *src)
{
	*dst = *src;
	if (ring_copy(&dst->results, &src->results, src->size,
		      sizeof(struct history_result), RESULT_TEXT) < 0 ||
	    ring_copy(&dst->changes, &src->changes, src->size,
		      sizeof(struct history_change), CHANGE_TEXT) < 0) {
		ring_clear(&dst->results, sizeof(struct history_result),
			   RESULT_TEXT);
		memset(&dst->changes, 0, sizeof(dst->changes));
		return -ENOMEM;
	}
	dst->passing = count_passing(dst);
	return 0;
}

void history_take(struct history *h, struct history *from)
{
	struct history taken;
	size_t size = h->size;

	/* A copy keeps the newest `size` entries, in order from the start
	 * of new rings (which then grow as history_add() expects). */
	from->size = size;
	if (history_copy(&taken, from) < 0) {
		history_init(&taken, size);
		taken.transitions = from->transitions;
		taken.last_change = from->last_change;
		taken.durations = from->durations;
	}
	history_clear(from);
	history_clear(h);
	*h = taken;
}

void history_clear(struct history *h)
{
	ring_clear(&h->results, sizeof(struct history_result), RESULT_TEXT);
	ring_clear(&h->changes, sizeof(struct history_change), CHANGE_TEXT);
}
