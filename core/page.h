/*
 * page.h — the status page: the comprehensive body as one self-contained
 * HTML document for people (no script, no external asset; it refreshes
 * itself).  Pure, like render.h: the caller owns the returned string.
 */
#ifndef HEALTHD_PAGE_H
#define HEALTHD_PAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "render.h"

/* How often the page reloads itself, in seconds. */
#define PAGE_REFRESH_S 5

/* The page for `v` as of `now` (wall ms; ages are counted from it).  With
 * `redact`, no message, detail or reload error appears.  `base_path` links
 * the JSON endpoints; `nonce` is the Content-Security-Policy nonce of the
 * page's one <style> element.  Sets *code as the comprehensive body does
 * (503 when unhealthy).  NULL when out of memory. */
char *render_page(const struct health_view *v, bool redact, int64_t now,
		  const char *base_path, const char *nonce, int *code);

#endif /* HEALTHD_PAGE_H */
