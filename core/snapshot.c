/* snapshot.c — build, look up and release pre-rendered responses. */
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"

void body_set(struct body *b, char *text, const int *code)
{
	b->text = text;
	b->len = text ? strlen(text) : 0;
	b->code = *code;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct check_view *)a)->name,
		      ((const struct check_view *)b)->name);
}

struct snapshot *snapshot_build(struct health_view *view, const struct config *cfg)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	unsigned variants;
	int code;

	if (!s)
		return NULL;
	s->checks = calloc(view->n_checks ? view->n_checks : 1, sizeof(*s->checks));
	s->base_path = strdup(cfg->base_path);
	s->token = cfg->details_token ? strdup(cfg->details_token) : NULL;
	if (!s->checks || !s->base_path ||
	    (cfg->details_token && !s->token)) {
		free(s->checks);
		free(s->base_path);
		config_secret_free(s->token);
		free(s);
		return NULL;
	}
	s->base_len = strlen(s->base_path);
	s->details = cfg->details;
	variants = cfg->details == DETAILS_PUBLIC   ? 1u << SNAPSHOT_PUBLIC
		   : cfg->details == DETAILS_HIDDEN ? 1u << SNAPSHOT_REDACTED
						    : 3u;
	s->refs = 1;
	s->view = *view;
	memset(view, 0, sizeof(*view));
	qsort(s->view.checks, s->view.n_checks, sizeof(*s->view.checks), by_name);

	body_set(&s->startup, render_startup(&s->view, &code), &code);
	body_set(&s->ready, render_ready(&s->view, NULL, &code), &code);
	code = 200;
	if (cfg->metrics)
		body_set(&s->metrics, render_metrics(&s->view), &code);
	for (int d = 0; d < 2; d++) {
		if (!(variants & (1u << d)))
			continue;
		for (int f = 0; f < 2; f++)
			body_set(&s->health[d][f],
				 render_health(&s->view, NULL, d == SNAPSHOT_REDACTED,
					       (enum render_format)f, &code),
				 &code);
		for (size_t i = 0; i < s->view.n_checks; i++)
			body_set(&s->checks[i][d],
				 render_check(&s->view.checks[i],
					      d == SNAPSHOT_REDACTED, &code),
				 &code);
	}
	return s;
}

const struct body *snapshot_check(const struct snapshot *s, const char *name,
				  enum snapshot_detail detail)
{
	struct check_view key = {.name = (char *)name};
	const struct check_view *found =
		bsearch(&key, s->view.checks, s->view.n_checks,
			sizeof(*s->view.checks), by_name);

	if (!found)
		return NULL;
	return &s->checks[found - s->view.checks][detail];
}

struct snapshot *snapshot_ref(struct snapshot *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

void snapshot_unref(struct snapshot *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(s->startup.text);
	free(s->ready.text);
	free(s->metrics.text);
	for (int d = 0; d < 2; d++) {
		for (int f = 0; f < 2; f++)
			free(s->health[d][f].text);
		for (size_t i = 0; i < s->view.n_checks; i++)
			free(s->checks[i][d].text);
	}
	free(s->checks);
	free(s->base_path);
	config_secret_free(s->token);
	render_view_clear(&s->view);
	free(s);
}
