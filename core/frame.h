/*
 * frame.h — the plugin host protocol: what the daemon and a plugin host
 * process say to each other over their SOCK_SEQPACKET socket.
 *
 * One frame per message: a header (protocol version, type, payload
 * length) and a payload of fields in a fixed order per type — unsigned
 * and signed integers, little-endian, and strings as a 32-bit length and
 * bytes.  Every size is bounded (FRAME_MAX, FRAME_STR_MAX); a reader
 * checks each field against what is left and fails on the first that
 * does not fit, so a broken or hostile host is detected, never trusted.
 *
 *   host -> daemon   HELLO       the plugin loaded: name, option specs (each
 *                                with whether it is required)
 *                    LOAD_FAILED why the plugin was refused
 *                    CREATED     create()'s outcome for an instance
 *                    RESULT      one run's status, message, details (JSON)
 *                    LOG         a plugin's log line
 *   daemon -> host   CREATE      make an instance: check name, options
 *                    RUN         run an instance once, by a deadline
 *                    DESTROY     free an instance
 */
#ifndef HEALTHD_FRAME_H
#define HEALTHD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_VERSION 1
#define FRAME_MAX (160 * 1024)   /* header and payload */
#define FRAME_STR_MAX (64 * 1024) /* one string: an option value may be a
				   * whole ${file:} input */
#define FRAME_HEADER 8

enum frame_type {
	FRAME_HELLO = 1,
	FRAME_LOAD_FAILED,
	FRAME_CREATE,
	FRAME_CREATED,
	FRAME_RUN,
	FRAME_RESULT,
	FRAME_DESTROY,
	FRAME_LOG,
};

/* A frame being written: fields are appended; `failed` once one did not
 * fit in FRAME_MAX (or memory ran out), and stays so.  Most frames fit in
 * `small`; a larger one is moved to the heap. */
struct frame_out {
	unsigned char *buf;
	size_t len, cap;
	bool failed;
	unsigned char small[1024];
};

/* Start a frame in `f` (a fresh one, or one frame_clear() ended). */
void frame_begin(struct frame_out *f, enum frame_type type);
/* Wipe (a CREATE carries secrets) and free what the frame holds; call it
 * once each frame is sent. */
void frame_clear(struct frame_out *f);
void frame_u32(struct frame_out *f, uint32_t v);
void frame_u64(struct frame_out *f, uint64_t v);
void frame_i64(struct frame_out *f, int64_t v);
/* NULL is written as absent (length 0xFFFFFFFF); a string longer than
 * FRAME_STR_MAX fails the frame. */
void frame_str(struct frame_out *f, const char *s);
/* Finish the header; returns the frame's length, or 0 when it failed. */
size_t frame_end(struct frame_out *f);

/* A frame being read. */
struct frame_in {
	const unsigned char *p;
	size_t len, pos;
	enum frame_type type;
	bool failed;
};

/* Check the header of the `len` bytes received.  Returns 0, or -1 when the
 * version, type or length is wrong. */
int frame_parse(struct frame_in *f, const void *buf, size_t len);
uint32_t frame_get_u32(struct frame_in *f);
uint64_t frame_get_u64(struct frame_in *f);
int64_t frame_get_i64(struct frame_in *f);
/* A malloc'd copy (NUL-terminated; a string holding NUL fails), or NULL
 * when absent or failed: check f->failed to tell them apart. */
char *frame_get_str(struct frame_in *f);
/* 0 when every field was read and nothing is left over, else -1. */
int frame_done(const struct frame_in *f);

#endif /* HEALTHD_FRAME_H */
