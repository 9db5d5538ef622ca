/*
 * host.c — the table of core functions every plugin receives, the option
 * store behind struct healthd_check, and the result a run fills.
 */
#include "host.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "loader.h"
#include "log.h"

static const char *host_name(const struct healthd_check *check)
{
	return check->name;
}

/* A spec entry ending in '.' declares a map: it takes "prefix.anything". */
static int host_spec_matches(const char *spec, const char *key)
{
	size_t n = strlen(spec);

	if (n && spec[n - 1] == '.')
		return !strncmp(spec, key, n) && key[n] != '\0';
	return !strcmp(spec, key);
}

static const char *host_option(const struct healthd_check *check,
			       const char *key)
{
	if (!key)
		return NULL;
	for (size_t i = 0; i < check->n_options; i++)
		if (!strcmp(check->options[i].key, key))
			return check->options[i].value;
	for (const struct healthd_option_spec *s = check->spec; s && s->name; s++)
		if (!strcmp(s->name, key))
			return s->default_value;
	return NULL;
}

static int host_option_next(const struct healthd_check *check,
			    const char *prefix, size_t *pos, const char **key,
			    const char **value)
{
	size_t n = prefix ? strlen(prefix) : 0;

	for (size_t i = *pos; i < check->n_options; i++) {
		const struct config_option *o = &check->options[i];

		if (strncmp(o->key, prefix ? prefix : "", n) != 0)
			continue;
		*pos = i + 1;
		*key = o->key + n;
		*value = o->value;
		return 1;
	}
	*pos = check->n_options;
	return 0;
}

/*
 * Options parsed as the core parses its own settings (config.h).  0 and
 * *out; 1 when the option is unset with no default; -1 with "KEY: what is
 * expected" in err, never the value (it may come from a Secret).
 */
static int host_option_parsed(const struct healthd_check *check,
			      const char *key, int parsed, const char *expected,
			      char *err, size_t errlen)
{
	if (!host_option(check, key))
		return 1;
	if (parsed == 0)
		return 0;
	snprintf(err, errlen, "%s: expected %s", key, expected);
	return -1;
}

static int host_option_bool(const struct healthd_check *check, const char *key,
			    int *out, char *err, size_t errlen)
{
	const char *v = host_option(check, key);
	bool b = false;
	int rc = host_option_parsed(check, key, v ? config_parse_bool(v, &b) : 0,
				    CONFIG_BOOL_SYNTAX, err, errlen);

	if (rc == 0)
		*out = b;
	return rc;
}

/* An option parsed into an int64_t by `parse` (a config.h parser). */
static int host_option_i64(const struct healthd_check *check, const char *key,
			   int (*parse)(const char *, int64_t *),
			   const char *expected, int64_t *out, char *err,
			   size_t errlen)
{
	const char *v = host_option(check, key);
	int64_t n = 0;
	int rc = host_option_parsed(check, key, v ? parse(v, &n) : 0, expected,
				    err, errlen);

	if (rc == 0)
		*out = n;
	return rc;
}

static int host_option_duration_ms(const struct healthd_check *check,
				   const char *key, int64_t *out, char *err,
				   size_t errlen)
{
	return host_option_i64(check, key, config_parse_duration,
			       "a duration (" CONFIG_DURATION_SYNTAX ")", out,
			       err, errlen);
}

static int host_option_int(const struct healthd_check *check, const char *key,
			   long long *out, char *err, size_t errlen)
{
	const char *v = host_option(check, key);
	long long n = 0;
	int rc = host_option_parsed(check, key, v ? config_parse_int(v, &n) : 0,
				    "a whole number", err, errlen);

	if (rc == 0)
		*out = n;
	return rc;
}

static int host_option_size(const struct healthd_check *check, const char *key,
			    int64_t *out, char *err, size_t errlen)
{
	return host_option_i64(check, key, config_parse_size,
			       "a size in bytes (" CONFIG_SIZE_SYNTAX ")", out,
			       err, errlen);
}

#define REDACTED "***"

/* The length of the longest secret of `check` that `at` starts with, or 0.
 * Longest: a secret holding another is hidden whole. */
static size_t host_secret_at(const struct healthd_check *check, const char *at)
{
	size_t best = 0;

	for (size_t i = 0; i < check->n_options; i++) {
		const struct config_option *o = &check->options[i];

		for (size_t j = 0; j < o->n_secrets; j++) {
			const char *s = o->secrets[j];
			size_t n;

			if (*s != *at)
				continue;
			n = strlen(s);
			/* Never shorter than REDACTED: text only shrinks. */
			if (n > best && n >= CONFIG_SECRET_MIN &&
			    !strncmp(at, s, n))
				best = n;
		}
	}
	return best;
}

void host_redact(const struct healthd_check *check, char *text)
{
	char *w = text;
	const char *r = text;

	if (!check)
		return;
	while (*r) {
		size_t n = host_secret_at(check, r);

		if (n) {
			memcpy(w, REDACTED, sizeof(REDACTED) - 1);
			w += sizeof(REDACTED) - 1;
			r += n;
		} else {
			*w++ = *r++;
		}
	}
	/* The bytes left behind held the end of the original. */
	explicit_bzero(w, (size_t)(r - w) + 1);
}

/* Cut a truncated UTF-8 string back to the last whole character, so the
 * message stays valid wherever it is rendered. */
static void host_utf8_trim(char *s, size_t len)
{
	size_t start = len, need;

	while (start > 0 && ((unsigned char)s[start - 1] & 0xC0) == 0x80 &&
	       len - start < 3)
		start--;
	if (start == 0)
		return;
	unsigned char lead = (unsigned char)s[start - 1];
	if (lead < 0xC0)
		return; /* ASCII, or stray continuation bytes: leave as is */
	need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
	if (len - (start - 1) < need)
		s[start - 1] = '\0';
}

/* What a plugin formatted, redacted whole and only then cut to fit `out`
 * (whole UTF-8 characters): a secret across the cut is found too. */
static void host_format(const struct healthd_check *check, char *out,
			size_t outlen, const char *fmt, va_list ap)
{
	char *full = NULL;
	int n = vasprintf(&full, fmt, ap);

	out[0] = '\0';
	if (n < 0)
		return; /* out of memory: nothing rather than unredacted */
	host_redact(check, full);
	n = snprintf(out, outlen, "%s", full);
	if ((size_t)n >= outlen)
		host_utf8_trim(out, outlen - 1);
	config_secret_free(full);
}

/* Where plugins' log lines go: the daemon's log, or in a plugin host the
 * socket to the daemon. */
static host_log_sink_fn host_log_sink;

void host_set_log_sink(host_log_sink_fn sink)
{
	host_log_sink = sink;
}

static void host_log(const struct healthd_check *check,
		     enum healthd_log_level level, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	/* A plugin built against a later header might pass a level we do
	 * not know: keep the line rather than drop it. */
	if ((int)level < HEALTHD_LOG_DEBUG || (int)level > HEALTHD_LOG_ERROR)
		level = HEALTHD_LOG_ERROR;
	va_start(ap, fmt);
	host_format(check, line, sizeof(line), fmt, ap);
	va_end(ap);
	if (host_log_sink)
		host_log_sink(check, level, line);
	else
		log_write((enum log_level)level, check ? check->name : NULL,
			  "%s", line);
}

/* The handle is the core's: a plugin sees it const so it cannot change
 * the options, but its target is its own to say. */
static void host_target(const struct healthd_check *check, const char *fmt,
			...)
{
	struct healthd_check *c = (struct healthd_check *)check;
	va_list ap;

	va_start(ap, fmt);
	host_format(check, c->target, sizeof(c->target), fmt, ap);
	va_end(ap);
}

static void host_result(struct healthd_result *result,
			enum healthd_status status, const char *fmt, ...)
{
	va_list ap;

	if ((int)status < HEALTHD_PASS || (int)status > HEALTHD_FAIL)
		status = HEALTHD_FAIL;
	result->status = status;
	result->set = true;

	va_start(ap, fmt);
	host_format(result->check, result->message, sizeof(result->message),
		    fmt, ap);
	va_end(ap);

	/* One line: probes, logs and text formats all expect it. */
	for (char *p = result->message; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = ' ';
}

static void host_detail(struct healthd_result *result, const char *key,
			json_object *value)
{
	if (!key) {
		json_object_put(value);
		return;
	}
	if (!result->details)
		result->details = json_object_new_object();
	/* json-c copies the key. */
	if (!result->details ||
	    json_object_object_add(result->details, key, value) != 0)
		json_object_put(value);
}

static void host_detail_str(struct healthd_result *result, const char *key,
			    const char *value)
{
	char *copy = value ? strdup(value) : NULL;

	if (copy)
		host_redact(result->check, copy); /* only ever shrinks */
	host_detail(result, key, copy ? json_object_new_string(copy) : NULL);
	free(copy);
}

static void host_detail_num(struct healthd_result *result, const char *key,
			    double value)
{
	json_object *v = NULL;

	/* Whole numbers print as integers ("runs": 3, not 3.0); JSON has no
	 * NaN or infinity, so those become null. */
	if (isfinite(value) && value == trunc(value) && fabs(value) < 0x1p53)
		v = json_object_new_int64((int64_t)value);
	else if (isfinite(value))
		v = json_object_new_double(value);
	host_detail(result, key, v);
}

static void host_detail_bool(struct healthd_result *result, const char *key,
			     int value)
{
	host_detail(result, key, json_object_new_boolean(value != 0));
}

const struct healthd_host host_api = {
	.abi_major = HEALTHD_ABI_MAJOR,
	.abi_minor = HEALTHD_ABI_MINOR,
	.size = sizeof(struct healthd_host),
	.now_ms = clock_mono_ms,
	.name = host_name,
	.option = host_option,
	.option_next = host_option_next,
	.log = host_log,
	.result = host_result,
	.detail_str = host_detail_str,
	.detail_num = host_detail_num,
	.detail_bool = host_detail_bool,
	.option_bool = host_option_bool,
	.option_duration_ms = host_option_duration_ms,
	.option_int = host_option_int,
	.option_size = host_option_size,
	.target = host_target,
};

void host_check_init(struct healthd_check *check, const struct config_check *cc,
		     const struct healthd_option_spec *spec)
{
	check->name = cc->name;
	check->options = cc->options;
	check->n_options = cc->n_options;
	check->spec = spec;
	check->target[0] = '\0';
}

/* "dsn, query, headers.*" or "none" into buf. */
static void host_known(const struct healthd_option_spec *spec, char *buf,
		       size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (const struct healthd_option_spec *s = spec; s && s->name; s++) {
		size_t n = strlen(s->name);
		int w = snprintf(buf + off, len - off, "%s%s%s", off ? ", " : "",
				 s->name, n && s->name[n - 1] == '.' ? "*" : "");

		if (w < 0 || (size_t)w >= len - off)
			return;
		off += (size_t)w;
	}
	if (!off)
		snprintf(buf, len, "none");
}

int host_check_options(const char *file, const struct config_check *cc,
		       const struct healthd_plugin *plugin, char *err,
		       size_t errlen)
{
	const struct healthd_option_spec *spec = plugin->options;

	for (size_t i = 0; i < cc->n_options; i++) {
		const struct config_option *o = &cc->options[i];
		const struct healthd_option_spec *s;
		char where[64] = "";
		char known[512];
		bool is_map = false;

		for (s = spec; s && s->name; s++) {
			size_t n = strlen(s->name);

			if (host_spec_matches(s->name, o->key))
				break;
			if (n && s->name[n - 1] == '.' &&
			    !strncmp(s->name, o->key, n - 1) && !o->key[n - 1])
				is_map = true;
		}
		if (s && s->name)
			continue;

		/* Only the key is named: the value may be a secret. */
		if (o->line > 0)
			snprintf(where, sizeof(where), ":%d:%d", o->line, o->col);
		if (is_map) {
			snprintf(err, errlen,
				 "%s%s: check \"%s\": option \"%s\" of plugin %s must be a map",
				 file, where, cc->name, o->key, plugin->name);
		} else {
			host_known(spec, known, sizeof(known));
			snprintf(err, errlen,
				 "%s%s: check \"%s\": option \"%s\" is not known to plugin %s (known: %s)",
				 file, where, cc->name, o->key, plugin->name,
				 known);
		}
		return -EINVAL;
	}
	/* Required: set, and not to "" (what an unset ${VAR} with an empty
	 * default gives). */
	for (const char *const *r = loader_required(plugin); r && *r; r++) {
		const struct config_option *o = NULL;
		const struct healthd_option_spec *s;

		for (size_t i = 0; i < cc->n_options && !o; i++)
			if (!strcmp(cc->options[i].key, *r))
				o = &cc->options[i];
		if (o && o->value[0])
			continue;
		for (s = spec; s && s->name && strcmp(s->name, *r); s++)
			;
		if (o)
			snprintf(err, errlen,
				 "%s:%d:%d: check \"%s\": option \"%s\" must not be empty",
				 file, o->line, o->col, cc->name, *r);
		else
			snprintf(err, errlen,
				 "%s:%d:%d: check \"%s\": option \"%s\" is required%s%s",
				 file, cc->line, cc->col, cc->name, *r,
				 s && s->name && s->help ? " (" : "",
				 s && s->name && s->help ? s->help : "");
		if (!o && s && s->name && s->help)
			snprintf(err + strlen(err), errlen - strlen(err), ")");
		return -EINVAL;
	}
	return 0;
}

void host_result_init(struct healthd_result *result,
		      const struct healthd_check *check)
{
	result->check = check;
	result->status = HEALTHD_FAIL;
	result->set = false;
	result->message[0] = '\0';
	result->details = NULL;
}

void host_result_clear(struct healthd_result *result)
{
	json_object_put(result->details);
	host_result_init(result, result->check);
}
