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

#endif /* HEALTHD_HTTP_H */
