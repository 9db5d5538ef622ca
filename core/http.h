/*
 * http.h — the probe endpoints over libmicrohttpd.
 *
 * Requests never run checks: they read the published snapshot and queue its
 * bytes.  The owner publishes a new snapshot whenever the state changes.
 */
#ifndef HEALTHD_HTTP_H
#define HEALTHD_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "history.h"
#include "snapshot.h"

struct http;

struct http_settings {
	const char *listen_host; /* NULL/"" for any */
	int listen_port;
	int threads; /* 0: one per usable CPU */
	int max_connections;
	int64_t connection_timeout_ms;
	/* Whether the process is live: called per /live request. */
	bool (*alive)(void *ctx);
	/* A copy of check NAME's history (history_clear() frees it):
	 * 0, or -ENOENT when there is no such check. */
	int (*history)(void *ctx, const char *name, struct history *out);
	void *ctx;
};

/* Listen and serve.  Returns NULL with a message in err. */
struct http *http_start(const struct http_settings *settings,
			struct snapshot *first, char *err, size_t errlen);

/* Replace the snapshot requests are answered from; takes over a reference. */
void http_publish(struct http *h, struct snapshot *s);

/* The port actually bound (for listen port 0). */
int http_port(const struct http *h);

/* Stop accepting, finish what is in flight, free. */
void http_stop(struct http *h);

/*
 * The answer to one request, without libmicrohttpd: the server's handler
 * and the fuzzer (tests/fuzz/fuzz_http.c) call the same function.
 */
#define HTTP_HEADERS_MAX 8192 /* request line and headers: more is a 431 */
#define HTTP_REQUEST_ID_MAX 128

struct http_request {
	const char *method;
	const char *url; /* decoded, control characters left escaped */
	/* A header's value, the first query parameter of that name, or
	 * NULL; and every query parameter of that name until fn says stop. */
	const char *(*header)(void *ctx, const char *name);
	const char *(*query)(void *ctx, const char *name);
	void (*query_each)(void *ctx, const char *name,
			   bool (*fn)(void *arg, const char *value), void *arg);
	void *ctx;
	size_t header_bytes; /* the request line and headers, about */
};

struct http_answer {
	int code;
	const char *content_type;
	const char *text;
	size_t len;
	int owner;             /* who frees text (http.c) */
	struct snapshot *snap; /* a reference, when text is the snapshot's */
	char request_id[HTTP_REQUEST_ID_MAX + 1];
	bool vary_accept;      /* Vary: Accept */
	char csp[256];         /* Content-Security-Policy, "" for none */
};

/* A server that does not listen (http_answer() only); http_free() frees
 * it.  Takes over `first` as http_start() does. */
struct http *http_new(const struct http_settings *settings,
		      struct snapshot *first, char *err, size_t errlen);
void http_free(struct http *h);
/* Fill *a for the request.  Returns 0, or -1 when out of memory;
 * http_answer_clear() releases what *a holds. */
int http_answer(struct http *h, const struct http_request *rq,
		struct http_answer *a);
void http_answer_clear(struct http_answer *a);
/* Decode %HH in place as libmicrohttpd would, but leave a control
 * character (%00 above all: a name would end there) escaped, so it can
 * only ever fail to match.  Returns the new length. */
size_t http_unescape(char *s);

#endif /* HEALTHD_HTTP_H */
