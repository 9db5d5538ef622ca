/* log.c — one line per event on stderr, JSON or text, safe from any thread.
 *
 * Callers format their line and copy it into a bounded ring; only the "log"
 * thread writes to fd 2, and the lock is never held across that write.  A
 * full ring drops lines and counts them: a stderr nobody reads costs log
 * lines, never a stalled scheduler. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "log.h"

/* About a thousand lines: a burst while the collector is slow, not the
 * backlog of a collector stopped for minutes, stale by the time it reads. */
#define LOG_QUEUE_BYTES (256 * 1024)

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static struct {
	pthread_mutex_t lock; /* everything below; never held across I/O */
	pthread_cond_t wake;  /* the writer: the ring has lines */
	pthread_cond_t empty; /* log_flush: the ring emptied (monotonic clock) */
	enum log_level level;
	enum log_format format;
	bool started;          /* the writer runs; else callers write themselves */
	unsigned long dropped; /* lines lost since the ring was last full */
	size_t head, used;     /* the writer's next byte; bytes queued */
	char ring[LOG_QUEUE_BYTES];
} logger = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.level = LOG_INFO,
	.format = LOG_JSON,
};

static pthread_once_t logger_once = PTHREAD_ONCE_INIT;

void log_configure(enum log_level level, enum log_format format)
{
	pthread_mutex_lock(&logger.lock);
	logger.level = level;
	logger.format = format;
	pthread_mutex_unlock(&logger.lock);
}

int log_level_parse(const char *text, enum log_level *level)
{
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(text, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(text, "warning") == 0) {
		*level = LOG_WARN;
		return 0;
	}
	return -1;
}

/* The whole line with its newline, malloc'd; NULL when out of memory. */
static char *format_line(enum log_format format, enum log_level level,
			 const char *check, const char *msg, size_t *len)
{
	char ts[32], *line = NULL;

	clock_format(clock_wall_ms(), ts, sizeof(ts));
	if (format == LOG_TEXT) {
		int n = asprintf(&line, "%s %-5s %s%s%s\n", ts,
				 level_names[level], check ? check : "",
				 check ? ": " : "", msg);
		*len = n < 0 ? 0 : (size_t)n;
		return n < 0 ? NULL : line;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "level",
			       json_object_new_string(level_names[level]));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	if (check)
		json_object_object_add(o, "check", json_object_new_string(check));
	const char *s = json_object_to_json_string_length(
		o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
	if (s && (line = malloc(*len + 1))) {
		memcpy(line, s, *len);
		line[(*len)++] = '\n';
	}
	json_object_put(o);
	return line;
}

/* Copy a line into the ring, or false when it does not fit.  Lock held. */
static bool ring_put(const char *line, size_t len)
{
	if (len > LOG_QUEUE_BYTES - logger.used)
		return false;
	size_t tail = (logger.head + logger.used) % LOG_QUEUE_BYTES;
	size_t first = len < LOG_QUEUE_BYTES - tail ? len : LOG_QUEUE_BYTES - tail;
	memcpy(logger.ring + tail, line, first);
	memcpy(logger.ring, line + first, len - first);
	logger.used += len;
	pthread_cond_signal(&logger.wake);
	return true;
}

/* Write all of it to fd 2, or give up on an error no retry can mend. */
static void write_all(const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, p, len);
		if (n >= 0) {
			p += n;
			len -= (size_t)n;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			/* Someone set O_NONBLOCK on the shared description. */
			struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
			poll(&pfd, 1, -1);
		} else if (errno != EINTR) {
			return;
		}
	}
}

static void *writer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&logger.lock);
	for (;;) {
		while (!logger.used)
			pthread_cond_wait(&logger.wake, &logger.lock);
		/* Callers only fill free space, so these bytes stay put while
		 * the lock is released. */
		const char *p = logger.ring + logger.head;
		size_t len = LOG_QUEUE_BYTES - logger.head;
		if (len > logger.used)
			len = logger.used;
		pthread_mutex_unlock(&logger.lock);
		write_all(p, len);
		pthread_mutex_lock(&logger.lock);
		logger.head = (logger.head + len) % LOG_QUEUE_BYTES;
		logger.used -= len;
		/* Empty, the ring starts over at its first byte: it then
		 * touches only as many pages as the longest backlog, instead
		 * of its whole 256 KiB as the write position goes round
		 * (resident memory creeping up for minutes). */
		if (!logger.used)
			logger.head = 0;
		if (logger.dropped) {
			/* Callers drop lines until this one marks the gap, so
			 * it sits where the lines went missing. */
			char msg[96], *line;
			size_t n;
			snprintf(msg, sizeof(msg),
				 "log: %lu line%s dropped (stderr blocked)",
				 logger.dropped, logger.dropped == 1 ? "" : "s");
			line = format_line(logger.format, LOG_WARN, NULL, msg, &n);
			if (line && ring_put(line, n))
				logger.dropped = 0;
			free(line);
		}
		if (!logger.used)
			pthread_cond_broadcast(&logger.empty);
	}
	return NULL;
}

static void logger_start(void)
{
	pthread_condattr_t ca;
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&logger.empty, &ca);
	pthread_condattr_destroy(&ca);
	pthread_attr_init(&attr);
	/* Never joined: at exit it may be stuck in write(). */
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Signals belong to the threads that handle them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&t, &attr, writer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc)
		return;
	pthread_setname_np(t, "log");
	pthread_mutex_lock(&logger.lock);
	logger.started = true;
	pthread_mutex_unlock(&logger.lock);
}

void log_vwrite(enum log_level level, const char *check, const char *fmt,
		va_list ap)
{
	char msg[1024], *line;
	size_t len;

	pthread_mutex_lock(&logger.lock);
	bool skip = level < logger.level;
	enum log_format format = logger.format;
	pthread_mutex_unlock(&logger.lock);
	if (skip)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	line = format_line(format, level, check, msg, &len);
	if (!line)
		return;
	pthread_once(&logger_once, logger_start);
	pthread_mutex_lock(&logger.lock);
	if (!logger.started) {
		/* No thread to hand it to: better late than never. */
		pthread_mutex_unlock(&logger.lock);
		write_all(line, len);
	} else {
		if (logger.dropped || !ring_put(line, len))
			logger.dropped++;
		pthread_mutex_unlock(&logger.lock);
	}
	free(line);
}

void log_write(enum log_level level, const char *check, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, check, fmt, ap);
	va_end(ap);
}

void log_flush(int timeout_ms)
{
	struct timespec end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&logger.lock);
	while (logger.started && (logger.used || logger.dropped))
		if (pthread_cond_timedwait(&logger.empty, &logger.lock, &end))
			break;
	pthread_mutex_unlock(&logger.lock);
}
