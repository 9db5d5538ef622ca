/*
 * snapshot.h — the state as of one change, and the response bodies made of
 * it.
 *
 * A snapshot is built when the state changes and reference-counted: the
 * HTTP threads take a reference per request and queue a body's bytes
 * without copying.  The probe bodies (/startup, /ready) are rendered when
 * it is built, so a probe costs the HTTP server's work alone.  The others
 * (the comprehensive body, /checks/NAME, /metrics) are rendered the first
 * time a request asks for them, then kept with the snapshot: results cost
 * no rendering, and requests at most one render per body and state.
 * Bodies that depend on the request (?exclude=) are rendered from the view.
 */
#ifndef HEALTHD_SNAPSHOT_H
#define HEALTHD_SNAPSHOT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "render.h"

struct body {
	char *text;
	size_t len;
	int code;
};

/* Fill a body from a renderer's text and the code it set.  The code is
 * passed by address and read here, after the renderer has run: C leaves
 * the order of evaluating arguments open. */
void body_set(struct body *b, char *text, const int *code);

enum snapshot_detail {
	SNAPSHOT_PUBLIC,   /* messages and details shown */
	SNAPSHOT_REDACTED, /* left out */
};

#define SNAPSHOT_EXCLUDED_MAX 4

struct snapshot {
	int refs; /* atomic */
	/* The config's serving settings, so a reload swaps them with the
	 * bodies in one step. */
	char *base_path;
	size_t base_len;
	enum config_details details;
	char *token; /* the details token: wiped when freed */
	bool metrics_on;

	struct health_view view; /* checks sorted by name */
	struct body startup, ready;

	/* Rendered on demand (code 0: not yet), under `lock`. */
	pthread_mutex_t lock;
	struct body metrics;
	struct body health[2][2]; /* [snapshot_detail][render_format] */
	struct body (*checks)[2]; /* per view check: [snapshot_detail] */
	/* Bodies of requests with ?exclude= (a probe that leaves a check out
	 * asks the same every time): the latest few, by request. */
	struct excluded {
		char *key; /* what was asked, names NUL-separated */
		size_t key_len;
		struct body body;
	} excluded[SNAPSHOT_EXCLUDED_MAX];
	size_t n_excluded;
};

/* Take over the view's contents and render the probe bodies.  Returns
 * NULL when out of memory. */
struct snapshot *snapshot_build(struct health_view *view, const struct config *cfg);

/* The comprehensive body. */
const struct body *snapshot_health(struct snapshot *s,
				   enum snapshot_detail detail,
				   enum render_format format);
/* /metrics, or NULL when metrics are off. */
const struct body *snapshot_metrics(struct snapshot *s);
/* /ready (ready) or the comprehensive body with checks left out, kept for
 * the next request that leaves out the same ones in the same order.  NULL
 * when SNAPSHOT_EXCLUDED_MAX others are kept already (or out of memory):
 * the caller renders one for the request alone. */
const struct body *snapshot_excluded(struct snapshot *s, bool ready,
				     const struct render_exclude *ex,
				     enum snapshot_detail detail,
				     enum render_format format);
/* The body of /checks/NAME, or NULL for an unknown check. */
const struct body *snapshot_check(struct snapshot *s, const char *name,
				  enum snapshot_detail detail);

struct snapshot *snapshot_ref(struct snapshot *s);
void snapshot_unref(struct snapshot *s);

#endif /* HEALTHD_SNAPSHOT_H */
