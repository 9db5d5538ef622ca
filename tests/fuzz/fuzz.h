/* fuzz.h — what the fuzz targets share: taking typed values off the input,
 * and the checks of what they produce.  Header-only: each target is one
 * file. */
#ifndef HEALTHD_FUZZ_H
#define HEALTHD_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/* A failed invariant is a crash libFuzzer keeps. */
#define FUZZ_ASSERT(cond)                                                     \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: invariant failed: %s\n",      \
				__FILE__, __LINE__, #cond);                   \
			abort();                                              \
		}                                                             \
	} while (0)

struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4 && in->n; i++, in->p++, in->n--)
		v |= (uint32_t)in->p[0] << (8 * i);
	return v;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = in->n ? in->p[0] : 0;

	if (in->n) {
		in->p++;
		in->n--;
	}
	return v;
}

/* A malloc'd string: the bytes up to the next '\n' (NUL bytes end it
 * early, as a C string would), or the rest. */
static inline char *fuzz_str(struct fuzz_in *in)
{
	const uint8_t *nl = memchr(in->p, '\n', in->n);
	size_t len = nl ? (size_t)(nl - in->p) : in->n;
	char *s = malloc(len + 1);

	memcpy(s, in->p, len);
	s[len] = '\0';
	in->p += len + (nl != NULL);
	in->n -= len + (nl != NULL);
	return s;
}

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, surrogates or
 * values past U+10FFFF). */
static inline bool fuzz_utf8_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		unsigned c = u[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
			   : (c >> 3) == 30 ? 4 : 0;
		uint32_t cp;

		if (!len || i + len > n)
			return false;
		cp = len == 1 ? c : c & (0x7F >> len);
		for (size_t k = 1; k < len; k++) {
			if ((u[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (u[i + k] & 0x3F);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

/* A strict JSON grammar check (RFC 8259): json-c's reader takes NaN,
 * Infinity and single quotes even in strict mode, and those are what a
 * client's parser refuses.  Depth-bounded.  Returns the end, or NULL. */
static const char *fuzz_json_value(const char *p, const char *end, int depth);

static inline const char *fuzz_json_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static inline const char *fuzz_json_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"')
			return p + 1;
		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			if (++p >= end)
				return NULL;
			if (*p == 'u') {
				for (int i = 0; i < 4; i++)
					if (++p >= end || !strchr("0123456789abcdefABCDEF", *p) || !*p)
						return NULL;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		}
	}
	return NULL;
}

static inline const char *fuzz_json_number(const char *p, const char *end)
{
	const char *d;

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (p < end && *p == '.') {
		for (d = ++p; p < end && *p >= '0' && *p <= '9'; p++)
			;
		if (p == d)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		for (d = p; p < end && *p >= '0' && *p <= '9'; p++)
			;
		if (p == d)
			return NULL;
	}
	return p;
}

static const char *fuzz_json_value(const char *p, const char *end, int depth)
{
	p = fuzz_json_ws(p, end);
	if (p >= end || depth > 64)
		return NULL;
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';

		p = fuzz_json_ws(p + 1, end);
		if (p < end && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				p = fuzz_json_ws(p, end);
				if (p >= end || *p != '"' ||
				    !(p = fuzz_json_string(p, end)))
					return NULL;
				p = fuzz_json_ws(p, end);
				if (p >= end || *p++ != ':')
					return NULL;
			}
			if (!(p = fuzz_json_value(p, end, depth + 1)))
				return NULL;
			p = fuzz_json_ws(p, end);
			if (p < end && *p == ',') {
				p++;
				continue;
			}
			return p < end && *p == close ? p + 1 : NULL;
		}
	}
	if (*p == '"')
		return fuzz_json_string(p, end);
	if (end - p >= 4 && (!memcmp(p, "true", 4) || !memcmp(p, "null", 4)))
		return p + 4;
	if (end - p >= 5 && !memcmp(p, "false", 5))
		return p + 5;
	return fuzz_json_number(p, end);
}

/* The whole text is one JSON value: json-c reads it, and so would a strict
 * reader. */
static inline void fuzz_assert_json(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	const char *end = fuzz_json_value(text, text + len, 0);
	bool ok = o && end && fuzz_json_ws(end, text + len) == text + len;

	if (!ok)
		fprintf(stderr, "not JSON: %.*s\n", (int)(len > 2000 ? 2000 : len),
			text);
	FUZZ_ASSERT(ok);
	json_object_put(o);
	json_tokener_free(tok);
}

/* Details a plugin reported print as the bodies print them: valid JSON. */
static inline void fuzz_assert_details(json_object *details)
{
	if (!details)
		return;
	const char *text = json_object_to_json_string_ext(
		details, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	fuzz_assert_json(text, strlen(text));
}

/* Prometheus text format 0.0.4, line by line: "# HELP name text",
 * "# TYPE name type", or "name{label="value",...} value" with label values
 * escaped (\\, \", \n only) and well-formed UTF-8.  Every line ends in
 * '\n'. */
static inline bool fuzz_metric_name(const char **p, bool colon)
{
	const char *s = *p;

	if (!(**p == '_' || (**p >= 'a' && **p <= 'z') ||
	      (**p >= 'A' && **p <= 'Z') || (colon && **p == ':')))
		return false;
	while (**p == '_' || (**p >= 'a' && **p <= 'z') ||
	       (**p >= 'A' && **p <= 'Z') || (**p >= '0' && **p <= '9') ||
	       (colon && **p == ':'))
		(*p)++;
	return *p > s;
}

static inline bool fuzz_metrics_line(const char *p, const char *end)
{
	if (*p == '#') {
		if (!strncmp(p, "# HELP ", 7))
			p += 7;
		else if (!strncmp(p, "# TYPE ", 7))
			p += 7;
		else
			return false;
		if (!fuzz_metric_name(&p, true) || *p != ' ')
			return false;
		return fuzz_utf8_ok(p, (size_t)(end - p));
	}
	if (!fuzz_metric_name(&p, true))
		return false;
	if (*p == '{') {
		p++;
		while (*p != '}') {
			const char *v;

			if (!fuzz_metric_name(&p, false) || *p++ != '=' || *p++ != '"')
				return false;
			for (v = p; p < end && *p != '"'; p++)
				if (*p == '\\' && (++p >= end || !strchr("\\\"n", *p) || !*p))
					return false;
			if (p >= end || !fuzz_utf8_ok(v, (size_t)(p - v)))
				return false;
			p++;
			if (*p == ',')
				p++;
			else if (*p != '}')
				return false;
		}
		p++;
	}
	if (*p++ != ' ')
		return false;
	if (!strncmp(p, "+Inf", 4) || !strncmp(p, "-Inf", 4) || !strncmp(p, "NaN", 3))
		return p + (*p == 'N' ? 3 : 4) == end;
	char *num_end;
	strtod(p, &num_end);
	return num_end > p && num_end == end && !strchr(" \t", *p);
}

static inline void fuzz_assert_metrics(const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	FUZZ_ASSERT(len > 0 && text[len - 1] == '\n');
	FUZZ_ASSERT(!memchr(text, '\0', len));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		bool ok = fuzz_metrics_line(p, nl);

		if (!ok)
			fprintf(stderr, "bad metrics line: %.*s\n", (int)(nl - p), p);
		FUZZ_ASSERT(ok);
		p = nl + 1;
	}
}

#endif /* HEALTHD_FUZZ_H */
