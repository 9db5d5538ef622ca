/* test_log.c — the asynchronous logger: order, formats, a blocked stderr. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "unit.h"

/* Reads a pipe to its end in the background. */
struct reader {
	int fd;
	char *buf;
	size_t len;
	pthread_t thread;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	size_t cap = 0;
	ssize_t n;

	do {
		if (cap - r->len < 65536)
			r->buf = realloc(r->buf, cap += 1 << 20);
		n = read(r->fd, r->buf + r->len, cap - r->len - 1);
		if (n > 0)
			r->len += (size_t)n;
	} while (n > 0);
	r->buf[r->len] = '\0';
	return NULL;
}

static void test_text_lines_in_order(void)
{
	char path[] = "/tmp/healthd-test-log-XXXXXX", line[128], want[64];
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	int n = 0;

	CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
	unlink(path);
	dup2(fd, STDERR_FILENO);
	log_configure(LOG_INFO, LOG_TEXT);
	log_debug("below the level");
	for (int i = 0; i < 1000; i++)
		log_write(LOG_INFO, i % 2 ? "db" : NULL, "line %d", i);
	log_flush(5000);
	dup2(saved, STDERR_FILENO);
	close(saved);

	FILE *f = fdopen(fd, "r");
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		/* "2026-...Z info  db: line 1" */
		snprintf(want, sizeof(want), "info  %sline %d\n",
			 n % 2 ? "db: " : "", n);
		CU_ASSERT_STRING_EQUAL(strchr(line, ' ') + 1, want);
		n++;
	}
	CU_ASSERT_EQUAL(n, 1000);
	fclose(f);
}

static void test_blocked_stderr_drops_and_says_so(void)
{
	int p[2], saved = dup(STDERR_FILENO);
	char msg[200];
	const int lines = 10000;

	CU_ASSERT_FATAL(pipe(p) == 0 && saved >= 0);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	log_configure(LOG_INFO, LOG_JSON);
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';

	/* Nobody reads: 2 MB of lines must not block the caller. */
	int64_t worst = 0, t0 = clock_mono_ms();
	for (int i = 0; i < lines; i++) {
		int64_t t = clock_mono_ms();
		log_info("n=%d %s", i, msg);
		if (clock_mono_ms() - t > worst)
			worst = clock_mono_ms() - t;
	}
	CU_ASSERT(worst < 100);
	t0 = clock_mono_ms();
	log_flush(200); /* gives up */
	CU_ASSERT(clock_mono_ms() - t0 >= 200);
	CU_ASSERT(clock_mono_ms() - t0 < 2000);

	struct reader r = {.fd = p[0]};
	pthread_create(&r.thread, NULL, reader_main, &r);
	log_flush(10000);
	dup2(saved, STDERR_FILENO); /* the reader sees the end */
	close(saved);
	pthread_join(r.thread, NULL);
	close(p[0]);

	/* Whole lines in order, each gap marked by the count of the lines it
	 * lost (the writer may get a turn while the loop still runs, so
	 * there can be several), the last line a mark: nothing else. */
	int kept = 0, last = -1, marks = 0;
	unsigned long dropped = 0, n;
	bool mark_last = false;
	char *line = r.buf, *nl;
	for (; (nl = strchr(line, '\n')); line = nl + 1) {
		int i;

		*nl = '\0';
		if (sscanf(line, "{\"ts\":\"%*[^\"]\",\"level\":\"info\",\"msg\":\"n=%d x",
			   &i) == 1) {
			CU_ASSERT(i > last);
			last = i;
			kept++;
			mark_last = false;
			continue;
		}
		CU_ASSERT_FATAL(sscanf(line, "{\"ts\":\"%*[^\"]\",\"level\":\"warn\","
				       "\"msg\":\"log: %lu lines dropped (stderr blocked)\"}",
				       &n) == 1);
		dropped += n;
		marks++;
		mark_last = true;
	}
	CU_ASSERT(kept > 0);
	CU_ASSERT(marks > 0);
	CU_ASSERT(mark_last);
	CU_ASSERT_EQUAL(kept + dropped, (unsigned long)lines);
	free(r.buf);
}

void unit_register(void)
{
	static CU_TestInfo tests[] = {
		{"text lines in order", test_text_lines_in_order},
		{"blocked stderr drops and says so",
		 test_blocked_stderr_drops_and_says_so},
		CU_TEST_INFO_NULL,
	};
	UNIT_SUITE("log", tests);
}
