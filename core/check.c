/* check.c — a check's plugin instance and its reference count. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"

/* The plugin loaded here and its instance made here. */
static int check_create_inline(struct check *c, const char *file,
			       char *const *plugin_dirs, size_t n_dirs,
			       char *err, size_t errlen)
{
	const struct config_check *cc = &c->def;
	char why[512];
	int rc;

	rc = loader_open(cc->plugin, plugin_dirs, n_dirs, &c->plugin, why,
			 sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "%s:%d:%d: check \"%s\": %s", file,
			 cc->line, cc->col, cc->name, why);
		return rc;
	}
	rc = host_check_options(file, cc, c->plugin->desc, err, errlen);
	if (rc < 0)
		return rc;
	host_check_init(&c->handle, cc, c->plugin->desc->options);
	why[0] = '\0';
	rc = c->plugin->desc->create(&host_api, &c->handle, &c->instance, why,
				     sizeof(why));
	if (rc < 0) {
		/* Logged and shown in the body: a plugin quoting an option
		 * must not print a secret. */
		host_redact(&c->handle, why);
		snprintf(err, errlen, "%s:%d:%d: check \"%s\": %s", file,
			 cc->line, cc->col, cc->name,
			 why[0] ? why : "plugin refused its options");
		c->instance = NULL;
		return rc;
	}
	return 0;
}

int check_create(const char *file, const struct config_check *cc,
		 char *const *plugin_dirs, size_t n_dirs, struct check **out,
		 char *err, size_t errlen)
{
	int rc;
	struct check *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->refs = 1;
	c->counters.status = STATUS_PENDING;
	c->counters.last_result = STATUS_PENDING;
	history_init(&c->history, (size_t)cc->history);
	rc = config_check_copy(&c->def, cc);
	if (rc < 0)
		goto fail;
	if (cc->isolation == ISOLATION_INLINE) {
		rc = check_create_inline(c, file, plugin_dirs, n_dirs, err,
					 errlen);
		if (rc == 0)
			c->plugin_name = strdup(c->plugin->desc->name);
	} else {
		/* The handle serves redaction only: the plugin's own is in
		 * its host. */
		host_check_init(&c->handle, &c->def, NULL);
		rc = isolate_create(file, &c->def, &c->handle, plugin_dirs,
				    n_dirs, &c->iso, err, errlen);
		if (rc == 0) {
			c->plugin_name = strdup(isolate_plugin_name(c->iso));
			snprintf(c->handle.target, sizeof(c->handle.target),
				 "%s", isolate_target(c->iso));
		}
	}
	if (rc == 0 && !c->plugin_name) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
	}
	if (rc < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	if (c->instance)
		c->plugin->desc->destroy(c->instance);
	if (c->plugin)
		loader_release(c->plugin);
	isolate_destroy(c->iso);
	free(c->plugin_name);
	config_check_clear(&c->def);
	free(c);
	return rc < 0 ? rc : -EINVAL;
}

void check_run(struct check *c, int64_t deadline, struct healthd_result *r)
{
	if (c->iso)
		isolate_run(c->iso, deadline, r);
	else
		c->plugin->desc->check(&host_api, c->instance, deadline, r);
}

bool check_plugin_current(const struct check *c, char *const *dirs,
			  size_t n_dirs)
{
	return !c->iso || isolate_current(c->iso, c->def.plugin, dirs, n_dirs);
}

struct check *check_ref(struct check *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void check_unref(struct check *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	check_unref(c->sched.successor);
	if (c->iso) {
		isolate_destroy(c->iso);
	} else {
		c->plugin->desc->destroy(c->instance);
		loader_release(c->plugin);
	}
	free(c->plugin_name);
	config_check_clear(&c->def);
	free(c->details);
	history_clear(&c->history);
	free(c);
}

void check_inherit(struct check *c, struct check *old)
{
	c->counters = old->counters;
	memcpy(c->message, old->message, sizeof(c->message));
	free(c->details);
	c->details = old->details ? strdup(old->details) : NULL;
	c->duration_ms = old->duration_ms;
	c->last_run = old->last_run;
	c->last_success = old->last_success;
	c->last_failure = old->last_failure;
	c->runs = old->runs;
	c->failures = old->failures;
	history_take(&c->history, &old->history);
}

static int check_cmp_name(const void *a, const void *b)
{
	return strcmp((*(struct check *const *)a)->def.name,
		      (*(struct check *const *)b)->def.name);
}

void check_sort_by_name(struct check **checks, size_t n)
{
	if (n > 1)
		qsort(checks, n, sizeof(*checks), check_cmp_name);
}

struct check *check_find(struct check *const *sorted, size_t n,
			 const char *name)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(name, sorted[mid]->def.name);

		if (cmp == 0)
			return sorted[mid];
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
