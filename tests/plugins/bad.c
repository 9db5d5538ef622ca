/*
 * bad.c — plugins the loader must refuse.  CMakeLists.txt builds it once per
 * defect, defining PLUGIN_NAME (the file's name) and one of BAD_MAJOR,
 * BAD_MINOR, BAD_SIZE, BAD_NAME, BAD_NOCHECK or BAD_NOSYM.  The struct is
 * written by hand: HEALTHD_PLUGIN_DEFINE would fill in the right versions.
 */
#include <stddef.h>

#include <healthd/plugin.h>

#ifdef BAD_NOSYM

/* A shared object with some other entry point. */
HEALTHD_EXPORT int not_a_healthd_plugin(void);
int not_a_healthd_plugin(void)
{
	return 0;
}

#else

static int bad_create(const struct healthd_host *host,
		      const struct healthd_check *check, void **instance,
		      char *err, size_t errlen)
{
	(void)host, (void)check, (void)err, (void)errlen;
	*instance = NULL;
	return 0;
}

/* Not static: BAD_NOCHECK leaves it unused. */
void bad_check(const struct healthd_host *host, void *instance,
	       int64_t deadline_ms, struct healthd_result *result);
void bad_check(const struct healthd_host *host, void *instance,
	       int64_t deadline_ms, struct healthd_result *result)
{
	(void)deadline_ms, (void)instance;
	host->result(result, HEALTHD_PASS, "bad plugin ran");
}

static void bad_destroy(void *instance)
{
	(void)instance;
}

HEALTHD_EXPORT extern const struct healthd_plugin healthd_plugin;
const struct healthd_plugin healthd_plugin = {
#ifdef BAD_MAJOR
	.abi_major = HEALTHD_ABI_MAJOR + 1,
#else
	.abi_major = HEALTHD_ABI_MAJOR,
#endif
#ifdef BAD_MINOR
	.abi_minor = HEALTHD_ABI_MINOR + 1,
#else
	.abi_minor = HEALTHD_ABI_MINOR,
#endif
#ifdef BAD_SIZE
	.size = offsetof(struct healthd_plugin, destroy),
#else
	.size = sizeof(struct healthd_plugin),
#endif
#ifdef BAD_NAME
	.name = "not_" PLUGIN_NAME,
#else
	.name = PLUGIN_NAME,
#endif
	.description = "refused by the loader",
	.create = bad_create,
#ifndef BAD_NOCHECK
	.check = bad_check,
#endif
	.destroy = bad_destroy,
};

#endif
