/* test_history.c — the rings of results and changes, and their counts. */
#include <stdio.h>
#include <string.h>

#include "history.h"
#include "unit.h"

#define T0 1764158400000LL

/* Feed runs "ppfw..." one second apart; the status after thresholds is
 * taken as the raw one (thresholds are state.c's business). */
static void feed(struct history *h, const char *runs, const char *message)
{
	for (size_t i = 0; runs[i]; i++) {
		enum check_status s = runs[i] == 'p'   ? STATUS_PASS
				      : runs[i] == 'w' ? STATUS_WARN
						       : STATUS_FAIL;
		enum check_status before = STATUS_PENDING;
		if (h->results.n)
			before = history_result_at(h, h->results.n - 1)->status;
		CU_ASSERT_EQUAL(history_add(h, T0 + (int64_t)h->durations.count * 1000,
					    s, 2.0, message, before, s), 0);
	}
}

static void test_ring_bounds(void)
{
	struct history h;
	char msg[32];

	history_init(&h, 5);
	for (int i = 0; i < 12; i++) {
		snprintf(msg, sizeof(msg), "run %d", i);
		feed(&h, i % 4 == 3 ? "f" : "p", msg);
	}
	CU_ASSERT_EQUAL(h.results.n, 5);
	CU_ASSERT(h.results.cap <= 5);
	/* The newest five, oldest first: runs 7..11. */
	CU_ASSERT_STRING_EQUAL(history_text(history_result_at(&h, 0)->message), "run 7");
	CU_ASSERT_STRING_EQUAL(history_text(history_result_at(&h, 4)->message), "run 11");
	CU_ASSERT_EQUAL(history_result_at(&h, 0)->at, T0 + 7000);
	CU_ASSERT_EQUAL(history_result_at(&h, 0)->status, STATUS_FAIL);
	CU_ASSERT_EQUAL(h.passing, 3); /* f p p p f */
	/* The first result, and every run unlike the one before: runs 0, 3,
	 * 4, 7, 8 and 11, of which the ring keeps the newest five. */
	CU_ASSERT_EQUAL(h.transitions, 6);
	CU_ASSERT_EQUAL(h.changes.n, 5);
	const struct history_change *c = history_change_at(&h, 0);
	CU_ASSERT_EQUAL(c->from, STATUS_PASS);
	CU_ASSERT_EQUAL(c->to, STATUS_FAIL);
	CU_ASSERT_EQUAL(c->at, T0 + 3000);
	CU_ASSERT_STRING_EQUAL(history_text(c->message), "run 3");
	c = history_change_at(&h, 4);
	CU_ASSERT_EQUAL(c->to, STATUS_FAIL);
	CU_ASSERT_STRING_EQUAL(history_text(c->message), "run 11");
	CU_ASSERT_EQUAL(h.last_change, T0 + 11000);
	CU_ASSERT_EQUAL(h.durations.count, 12);
	history_clear(&h);
}

static void test_repeated_message_stored_once(void)
{
	struct history h;

	history_init(&h, 4);
	feed(&h, "ppp", "PONG");
	CU_ASSERT_PTR_EQUAL(history_result_at(&h, 0)->message,
			    history_result_at(&h, 2)->message);
	/* The change made by the first run shares it too. */
	CU_ASSERT_PTR_EQUAL(history_change_at(&h, 0)->message,
			    history_result_at(&h, 0)->message);
	feed(&h, "ppp", "PONG"); /* evicts shared entries: no double free */
	feed(&h, "f", "down");
	CU_ASSERT_STRING_EQUAL(history_text(history_result_at(&h, 3)->message), "down");
	history_clear(&h);
}

static void test_size_zero_keeps_counts(void)
{
	struct history h;

	history_init(&h, 0);
	feed(&h, "pfp", "x");
	CU_ASSERT_EQUAL(h.results.n, 0);
	CU_ASSERT_EQUAL(h.changes.n, 0);
	CU_ASSERT_EQUAL(h.transitions, 3);
	CU_ASSERT_EQUAL(h.durations.count, 3);
	history_clear(&h);
}

static void test_take_and_resize(void)
{
	struct history old, h;
	struct history_summary sum;

	history_init(&old, 10);
	feed(&old, "pppppppfff", "m"); /* wrapped once over below */
	feed(&old, "pp", "n");
	history_init(&h, 4);
	history_take(&h, &old);
	CU_ASSERT_EQUAL(old.results.n, 0);
	CU_ASSERT_EQUAL(h.size, 4);
	CU_ASSERT_EQUAL(h.results.n, 4);
	CU_ASSERT_EQUAL(h.passing, 2); /* the newest four: f f p p */
	CU_ASSERT_STRING_EQUAL(history_text(history_result_at(&h, 3)->message), "n");
	CU_ASSERT_EQUAL(h.transitions, 3);
	CU_ASSERT_EQUAL(h.durations.count, 12);
	/* Grows again, in order, after taking a wrapped ring. */
	struct history big;
	history_init(&big, 20);
	history_take(&big, &h);
	feed(&big, "fffffffff", "o");
	CU_ASSERT_EQUAL(big.results.n, 13);
	CU_ASSERT_STRING_EQUAL(history_text(history_result_at(&big, 3)->message), "n");
	CU_ASSERT_STRING_EQUAL(history_text(history_result_at(&big, 4)->message), "o");
	history_summarize(&big, &sum);
	CU_ASSERT_EQUAL(sum.window, 13);
	CU_ASSERT_EQUAL(sum.passing, 2);
	CU_ASSERT_EQUAL(sum.n_recent, 13);
	CU_ASSERT_EQUAL(sum.recent[12], STATUS_FAIL);
	CU_ASSERT_EQUAL(sum.recent[2], STATUS_PASS);
	history_clear(&big);
	history_clear(&old);
	history_clear(&h);
}

static void test_copy_owns_its_messages(void)
{
	struct history h, copy;

	history_init(&h, 3);
	feed(&h, "pfpf", "a");
	CU_ASSERT_EQUAL(history_copy(&copy, &h), 0);
	history_clear(&h);
	CU_ASSERT_EQUAL(copy.results.n, 3);
	CU_ASSERT_STRING_EQUAL(history_text(history_result_at(&copy, 0)->message), "a");
	CU_ASSERT_EQUAL(copy.passing, 1);
	history_clear(&copy);
}

void unit_register(void)
{
	static CU_TestInfo tests[] = {
		{"ring bounds", test_ring_bounds},
		{"a repeated message is stored once", test_repeated_message_stored_once},
		{"size 0 keeps the counts", test_size_zero_keeps_counts},
		{"a reload takes the history, resized", test_take_and_resize},
		{"a copy owns its messages", test_copy_owns_its_messages},
		CU_TEST_INFO_NULL,
	};
	UNIT_SUITE("history", tests);
}
