/*
 * snapshot.h — every response body, rendered once when the state changes.
 *
 * A snapshot is immutable once built and reference-counted: the HTTP
 * threads take a reference per request and queue its bytes without copying,
 * so a probe costs the HTTP server's work alone.  Bodies that depend on the
 * request (?exclude=) are rendered from the snapshot's view.
 */
#ifndef HEALTHD_SNAPSHOT_H
#define HEALTHD_SNAPSHOT_H

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

struct snapshot {
	int refs; /* atomic */
	/* The config's serving settings, so a reload swaps them with the
	 * bodies in one step. */
	char *base_path;
	size_t base_len;
	enum config_details details;
	char *token; /* the details token: wiped when freed */

	struct health_view view; /* checks sorted by name */
	struct body startup, ready;
	struct body metrics; /* text NULL when metrics are off */
	struct body health[2][2]; /* [snapshot_detail][render_format] */
	struct body (*checks)[2]; /* per view check: [snapshot_detail] */
};

/* Render every body the config's `details` setting can serve; takes over
 * the view's contents.  Returns NULL when out of memory. */
struct snapshot *snapshot_build(struct health_view *view, const struct config *cfg);

/* The body of /checks/NAME, or NULL for an unknown check. */
const struct body *snapshot_check(const struct snapshot *s, const char *name,
				  enum snapshot_detail detail);

struct snapshot *snapshot_ref(struct snapshot *s);
void snapshot_unref(struct snapshot *s);

#endif /* HEALTHD_SNAPSHOT_H */
