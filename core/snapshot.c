/* snapshot.c — build, look up and release pre-rendered responses. */
#include <stdio.h>
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
	s->metrics_on = cfg->metrics;
	s->refs = 1;
	pthread_mutex_init(&s->lock, NULL);
	s->view = *view;
	memset(view, 0, sizeof(*view));
	qsort(s->view.checks, s->view.n_checks, sizeof(*s->view.checks), by_name);

	body_set(&s->startup, render_startup(&s->view, &code), &code);
	body_set(&s->ready, render_ready(&s->view, NULL, &code), &code);
	return s;
}

const struct body *snapshot_health(struct snapshot *s,
				   enum snapshot_detail detail,
				   enum render_format format)
{
	struct body *b = &s->health[detail][format];
	int code;

	pthread_mutex_lock(&s->lock);
	if (!b->code)
		body_set(b, render_health(&s->view, NULL,
					  detail == SNAPSHOT_REDACTED, format,
					  &code),
			 &code);
	pthread_mutex_unlock(&s->lock);
	return b;
}

const struct body *snapshot_metrics(struct snapshot *s)
{
	int code = 200;

	if (!s->metrics_on)
		return NULL;
	pthread_mutex_lock(&s->lock);
	if (!s->metrics.code)
		body_set(&s->metrics, render_metrics(&s->view), &code);
	pthread_mutex_unlock(&s->lock);
	return &s->metrics;
}

const struct body *snapshot_excluded(struct snapshot *s, bool ready,
				     const struct render_exclude *ex,
				     enum snapshot_detail detail,
				     enum render_format format)
{
	struct excluded *e = NULL;
	char *key = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&key, &len);
	int code;

	if (!f)
		return NULL;
	fprintf(f, "%d %d %d", ready, (int)detail, (int)format);
	for (size_t i = 0; i < ex->n; i++)
		fprintf(f, "%c%s", '\0', ex->names[i]);
	if (fclose(f) != 0) {
		free(key);
		return NULL;
	}
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_excluded && !e; i++)
		if (s->excluded[i].key_len == len &&
		    !memcmp(s->excluded[i].key, key, len))
			e = &s->excluded[i];
	/* Bodies are never replaced while the snapshot lives: a response
	 * may still be sending one. */
	if (!e && s->n_excluded < SNAPSHOT_EXCLUDED_MAX) {
		e = &s->excluded[s->n_excluded++];
		e->key = key;
		e->key_len = len;
		key = NULL;
		body_set(&e->body,
			 ready ? render_ready(&s->view, ex, &code)
			       : render_health(&s->view, ex,
					       detail == SNAPSHOT_REDACTED, format,
					       &code),
			 &code);
	}
	pthread_mutex_unlock(&s->lock);
	free(key);
	return e ? &e->body : NULL;
}

const struct body *snapshot_check(struct snapshot *s, const char *name,
				  enum snapshot_detail detail)
{
	struct check_view key = {.name = (char *)name};
	const struct check_view *found =
		bsearch(&key, s->view.checks, s->view.n_checks,
			sizeof(*s->view.checks), by_name);
	struct body *b;
	int code;

	if (!found)
		return NULL;
	b = &s->checks[found - s->view.checks][detail];
	pthread_mutex_lock(&s->lock);
	if (!b->code)
		body_set(b, render_check(found, detail == SNAPSHOT_REDACTED, &code),
			 &code);
	pthread_mutex_unlock(&s->lock);
	return b;
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
	for (size_t i = 0; i < s->n_excluded; i++) {
		free(s->excluded[i].key);
		free(s->excluded[i].body.text);
	}
	free(s->checks);
	free(s->base_path);
	config_secret_free(s->token);
	render_view_clear(&s->view);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
