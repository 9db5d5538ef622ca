/* frame.c — encoding and bounded decoding of host protocol frames. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#define FRAME_ABSENT 0xFFFFFFFFu

static void put(struct frame_out *f, const void *p, size_t n)
{
	if (f->failed || n > FRAME_MAX - f->len) {
		f->failed = true;
		return;
	}
	if (n > f->cap - f->len) {
		size_t cap = f->cap * 2 > f->len + n ? f->cap * 2 : f->len + n;
		unsigned char *b = malloc(cap);

		if (!b) {
			f->failed = true;
			return;
		}
		memcpy(b, f->buf, f->len);
		frame_clear(f);
		f->buf = b;
		f->cap = cap;
	}
	memcpy(f->buf + f->len, p, n);
	f->len += n;
}

void frame_clear(struct frame_out *f)
{
	explicit_bzero(f->buf, f->cap);
	if (f->buf != f->small)
		free(f->buf);
	f->buf = f->small;
	f->cap = sizeof(f->small);
}

static void put_le(struct frame_out *f, uint64_t v, size_t n)
{
	unsigned char b[8];

	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	put(f, b, n);
}

void frame_begin(struct frame_out *f, enum frame_type type)
{
	f->buf = f->small;
	f->cap = sizeof(f->small);
	f->len = 0;
	f->failed = false;
	put_le(f, FRAME_VERSION, 2);
	put_le(f, (uint64_t)type, 2);
	put_le(f, 0, 4); /* the payload's length, set by frame_end() */
}

void frame_u32(struct frame_out *f, uint32_t v)
{
	put_le(f, v, 4);
}

void frame_u64(struct frame_out *f, uint64_t v)
{
	put_le(f, v, 8);
}

void frame_i64(struct frame_out *f, int64_t v)
{
	put_le(f, (uint64_t)v, 8);
}

void frame_str(struct frame_out *f, const char *s)
{
	size_t n;

	if (!s) {
		put_le(f, FRAME_ABSENT, 4);
		return;
	}
	n = strlen(s);
	if (n > FRAME_STR_MAX) {
		f->failed = true; /* never cut: a value must arrive whole */
		return;
	}
	put_le(f, n, 4);
	put(f, s, n);
}

size_t frame_end(struct frame_out *f)
{
	uint32_t payload = (uint32_t)(f->len - FRAME_HEADER);

	if (f->failed)
		return 0;
	for (size_t i = 0; i < 4; i++)
		f->buf[4 + i] = (unsigned char)(payload >> (8 * i));
	return f->len;
}

static uint64_t get_le(struct frame_in *f, size_t n)
{
	uint64_t v = 0;

	if (f->failed || n > f->len - f->pos) {
		f->failed = true;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)f->p[f->pos + i] << (8 * i);
	f->pos += n;
	return v;
}

int frame_parse(struct frame_in *f, const void *buf, size_t len)
{
	f->p = buf;
	f->len = len;
	f->pos = 0;
	f->failed = false;
	if (len < FRAME_HEADER || len > FRAME_MAX)
		return -1;
	uint64_t version = get_le(f, 2), type = get_le(f, 2);
	uint64_t payload = get_le(f, 4);
	if (version != FRAME_VERSION || type < FRAME_HELLO || type > FRAME_LOG ||
	    payload != len - FRAME_HEADER)
		return -1;
	f->type = (enum frame_type)type;
	return 0;
}

uint32_t frame_get_u32(struct frame_in *f)
{
	return (uint32_t)get_le(f, 4);
}

uint64_t frame_get_u64(struct frame_in *f)
{
	return get_le(f, 8);
}

int64_t frame_get_i64(struct frame_in *f)
{
	return (int64_t)get_le(f, 8);
}

char *frame_get_str(struct frame_in *f)
{
	uint32_t n = frame_get_u32(f);
	char *s;

	if (f->failed || n == FRAME_ABSENT)
		return NULL;
	if (n > FRAME_STR_MAX || n > f->len - f->pos ||
	    memchr(f->p + f->pos, '\0', n)) {
		f->failed = true;
		return NULL;
	}
	s = malloc((size_t)n + 1);
	if (!s) {
		f->failed = true;
		return NULL;
	}
	memcpy(s, f->p + f->pos, n);
	s[n] = '\0';
	f->pos += n;
	return s;
}

int frame_done(const struct frame_in *f)
{
	return f->failed || f->pos != f->len ? -1 : 0;
}
