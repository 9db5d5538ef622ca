/* Unit tests for watch.c: the baseline of "changed" is what config_load()
 * read, so an edit made while a config loads is not folded into it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"
#include "watch.h"

static char dir[64], cfg_path[128], input[128], token[128];

/* Replaces `path` with `text` in one rename, as a Secret volume update
 * does. */
static void put(const char *path, const char *text)
{
	char tmp[160];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	CU_ASSERT_EQUAL_FATAL(rename(tmp, path), 0);
}

/* A config reading `input` twice and a details token. */
static struct config *load(void)
{
	char yaml[1024], err[512];
	struct config *cfg = NULL;

	snprintf(dir, sizeof(dir), "/tmp/healthd-test-watch-XXXXXX");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(cfg_path, sizeof(cfg_path), "%s/healthd.yaml", dir);
	snprintf(input, sizeof(input), "%s/sleep", dir);
	snprintf(token, sizeof(token), "%s/token", dir);
	put(input, "10\n");
	put(token, "tok-123\n");
	snprintf(yaml, sizeof(yaml),
		 "details: token\n"
		 "details_token_file: %s\n"
		 "checks:\n"
		 "  - name: s\n"
		 "    plugin: testplug\n"
		 "    options: {sleep_ms: \"${file:%s}\", message: \"${file:%s}\"}\n",
		 token, input, input);
	put(cfg_path, yaml);
	CU_ASSERT_EQUAL(config_load(cfg_path, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->n_inputs, 2);
	return cfg;
}

static void cleanup(struct config *cfg)
{
	config_free(cfg);
	unlink(cfg_path);
	unlink(input);
	unlink(token);
	rmdir(dir);
}

static struct watch *watch(const struct config *cfg)
{
	struct watch *w = watch_open(cfg->path);

	CU_ASSERT_PTR_NOT_NULL_FATAL(w);
	watch_inputs(w, cfg->inputs, cfg->n_inputs, cfg->hash);
	return w;
}

/* Nothing changed since the load: the two hashes fold the same bytes. */
static void test_unchanged(void)
{
	struct config *cfg = load();
	struct watch *w = watch(cfg);

	CU_ASSERT_FALSE(watch_changed(w));
	watch_close(w);
	cleanup(cfg);
}

/* An input rewritten after config_load() read it, before the watch took
 * its baseline: a reload still follows. */
static void test_input_changed_during_load(void)
{
	struct config *cfg = load();
	struct watch *w;

	put(input, "120\n");
	w = watch(cfg);
	CU_ASSERT_TRUE(watch_changed(w));
	CU_ASSERT_FALSE(watch_changed(w)); /* now seen */
	watch_close(w);
	cleanup(cfg);
}

/* The same for the config file itself. */
static void test_config_changed_during_load(void)
{
	struct config *cfg = load();
	struct watch *w;
	FILE *f = fopen(cfg_path, "a");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("# edited\n", f);
	fclose(f);
	w = watch(cfg);
	CU_ASSERT_TRUE(watch_changed(w));
	watch_close(w);
	cleanup(cfg);
}

static CU_TestInfo watch_tests[] = {
	{"unchanged since the load", test_unchanged},
	{"input changed during the load", test_input_changed_during_load},
	{"config changed during the load", test_config_changed_during_load},
	CU_TEST_INFO_NULL,
};

void unit_register(void)
{
	UNIT_SUITE("watch", watch_tests);
}
