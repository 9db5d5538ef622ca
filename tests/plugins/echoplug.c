/*
 * echoplug.c — a careless plugin for the redaction tests: create() refuses
 * every configuration and quotes its `value` option in the error.
 */
#include <errno.h>
#include <stdio.h>

#include <healthd/plugin.h>

static const struct healthd_option_spec echoplug_options[] = {
	{"value", "", "quoted back in create()'s error"},
	{NULL, NULL, NULL},
};

static int echoplug_create(const struct healthd_host *host,
			   const struct healthd_check *check, void **instance,
			   char *err, size_t errlen)
{
	(void)instance;
	snprintf(err, errlen, "value: \"%s\" is not accepted",
		 host->option(check, "value"));
	return -EINVAL;
}

static void echoplug_check(const struct healthd_host *host, void *instance,
			   int64_t deadline_ms, struct healthd_result *result)
{
	(void)instance;
	(void)deadline_ms;
	host->result(result, HEALTHD_FAIL, "never created");
}

static void echoplug_destroy(void *instance)
{
	(void)instance;
}

HEALTHD_PLUGIN_DEFINE(.name = "echoplug",
		      .description = "quotes an option in create()'s error",
		      .options = echoplug_options, .create = echoplug_create,
		      .check = echoplug_check, .destroy = echoplug_destroy);
