/*
 * log.h — structured logs on stderr: one JSON object per line
 * ({"ts":..., "level":..., "msg":..., "check":...}) or plain text.
 *
 * Asynchronous: a line is queued and a "log" thread writes it, because the
 * scheduler logs with its lock held and a stderr pipe nobody reads would
 * block it.  A full queue drops lines and says how many once it can.
 */
#ifndef HEALTHD_LOG_H
#define HEALTHD_LOG_H

#include <stdarg.h>

#include <healthd/plugin.h>

enum log_level {
	LOG_DEBUG = HEALTHD_LOG_DEBUG,
	LOG_INFO = HEALTHD_LOG_INFO,
	LOG_WARN = HEALTHD_LOG_WARN,
	LOG_ERROR = HEALTHD_LOG_ERROR,
};

enum log_format {
	LOG_JSON,
	LOG_TEXT,
};

void log_configure(enum log_level level, enum log_format format);

/* "debug" ... "error" -> level; returns 0 or -1. */
int log_level_parse(const char *text, enum log_level *level);

/* One line; `check` may be NULL.  Safe from any thread. */
void log_write(enum log_level level, const char *check, const char *fmt, ...)
	HEALTHD_PRINTF(3, 4);
void log_vwrite(enum log_level level, const char *check, const char *fmt,
		va_list ap);

/* Wait until every queued line is written, or timeout_ms passed (stderr
 * may be blocked for good).  Call it before the process exits. */
void log_flush(int timeout_ms);

#define log_debug(...) log_write(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, NULL, __VA_ARGS__)

#endif /* HEALTHD_LOG_H */
