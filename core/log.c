/* log.c — one line per event on stderr, JSON or text, safe from any thread. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>

#include "clock.h"
#include "log.h"

static const char *const level_names[] = {"debug", "info", "warn", "error"};

static struct {
	enum log_level level;
	enum log_format format;
	pthread_mutex_t lock;
} logger = {LOG_INFO, LOG_JSON, PTHREAD_MUTEX_INITIALIZER};

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

const char *log_level_name(enum log_level level)
{
	return level_names[level];
}

void log_vwrite(enum log_level level, const char *check, const char *fmt,
		va_list ap)
{
	char msg[1024], ts[32];

	pthread_mutex_lock(&logger.lock);
	if (level < logger.level) {
		pthread_mutex_unlock(&logger.lock);
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_format(clock_wall_ms(), ts, sizeof(ts));
	if (logger.format == LOG_TEXT) {
		fprintf(stderr, "%s %-5s %s%s%s\n", ts, level_names[level],
			check ? check : "", check ? ": " : "", msg);
	} else {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "ts", json_object_new_string(ts));
		json_object_object_add(o, "level",
				       json_object_new_string(level_names[level]));
		json_object_object_add(o, "msg", json_object_new_string(msg));
		if (check)
			json_object_object_add(o, "check",
					       json_object_new_string(check));
		fprintf(stderr, "%s\n",
			json_object_to_json_string_ext(
				o, JSON_C_TO_STRING_PLAIN |
					   JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
	}
	fflush(stderr);
	pthread_mutex_unlock(&logger.lock);
}

void log_write(enum log_level level, const char *check, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, check, fmt, ap);
	va_end(ap);
}
