/*
 * test_loader.c — plugin loading (loader.c) and the host table (host.c),
 * against the plugins in tests/plugins.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"
#include "loader.h"
#include "unit.h"

#ifndef TEST_PLUGIN_DIR
#error "TEST_PLUGIN_DIR must name the directory of the built test plugins"
#endif

static char *plugin_dirs[] = {"/nonexistent/healthd", TEST_PLUGIN_DIR};

/* Open `name` expecting a refusal whose message holds every `want`. */
static void expect_refused(const char *name, const char *want1,
			   const char *want2)
{
	struct plugin *p = (struct plugin *)1;
	char err[1024] = "";
	int rc = loader_open(name, plugin_dirs, 2, &p, err, sizeof(err));

	CU_ASSERT(rc < 0);
	CU_ASSERT_PTR_NULL(p);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fprintf(stderr, "\n  unexpected message for %s: %s\n", name, err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want1));
	if (want2)
		CU_ASSERT_PTR_NOT_NULL(strstr(err, want2));
}

static void test_open_shared(void)
{
	struct plugin *a = NULL, *b = NULL, *c = NULL;
	char err[512] = "";

	CU_ASSERT_EQUAL_FATAL(loader_open("testplug", plugin_dirs, 2, &a, err,
					  sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(a->desc->name, "testplug");
	CU_ASSERT_EQUAL(a->refs, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(a->path, "/testplug.so"));

	/* By name and by path: one file, one struct plugin. */
	CU_ASSERT_EQUAL_FATAL(loader_open(TEST_PLUGIN_DIR "/testplug.so", NULL,
					  0, &b, err, sizeof(err)), 0);
	CU_ASSERT_PTR_EQUAL(a, b);
	CU_ASSERT_EQUAL(a->refs, 2);

	loader_release(b);
	CU_ASSERT_EQUAL(a->refs, 1);
	loader_release(a);

	CU_ASSERT_EQUAL_FATAL(loader_open("testplug", plugin_dirs, 2, &c, err,
					  sizeof(err)), 0);
	CU_ASSERT_EQUAL(c->refs, 1);
	loader_release(c);
	loader_release(NULL);
}

/* Reloads open and release on their own thread: the cache must hold. */
static void *open_release_loop(void *arg)
{
	struct plugin *first = arg, *p;
	char err[512];
	long bad = 0;

	for (int i = 0; i < 200; i++) {
		if (loader_open("testplug", plugin_dirs, 2, &p, err, sizeof(err)) != 0 ||
		    p != first)
			bad++;
		else
			loader_release(p);
	}
	return (void *)bad;
}

static void test_open_threads(void)
{
	pthread_t t[4];
	struct plugin *p;
	char err[512];
	void *bad;

	CU_ASSERT_EQUAL_FATAL(loader_open("testplug", plugin_dirs, 2, &p, err,
					  sizeof(err)), 0);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, open_release_loop, p);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], &bad);
		CU_ASSERT_PTR_NULL(bad);
	}
	CU_ASSERT_EQUAL(p->refs, 1);
	loader_release(p);
}

static void test_run_testplug(void)
{
	struct config_option opts[] = {
		{.key = "mode", .value = "warn"},
		{.key = "message", .value = "slow\nbut fine"},
	};
	struct config_check cc = {.name = "t", .options = opts, .n_options = 2};
	struct healthd_check check;
	struct healthd_result r;
	struct plugin *p;
	void *inst;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(loader_open("testplug", plugin_dirs, 2, &p, err,
					  sizeof(err)), 0);
	host_check_init(&check, &cc, p->desc->options);
	CU_ASSERT_EQUAL_FATAL(p->desc->create(&host_api, &check, &inst, err,
					      sizeof(err)), 0);
	for (int i = 0; i < 2; i++) {
		host_result_init(&r, NULL);
		p->desc->check(&host_api, inst, host_api.now_ms() + 1000, &r);
		CU_ASSERT(r.set);
		CU_ASSERT_EQUAL(r.status, HEALTHD_WARN);
		CU_ASSERT_STRING_EQUAL(r.message, "slow but fine");
		CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(r.details,
			JSON_C_TO_STRING_PLAIN),
			i ? "{\"mode\":\"warn\",\"runs\":2}"
			  : "{\"mode\":\"warn\",\"runs\":1}");
		host_result_clear(&r);
	}
	p->desc->destroy(inst);

	/* create() refuses an unknown mode without echoing it. */
	opts[0].value = "sometimes";
	CU_ASSERT(p->desc->create(&host_api, &check, &inst, err, sizeof(err)) < 0);
	CU_ASSERT_PTR_NULL(strstr(err, "sometimes"));
	loader_release(p);
}

static void test_refusals(void)
{
	char want[128];

	/* The bad plugins declare one more than ours. */
	snprintf(want, sizeof(want),
		 "ABI version %d.%d is not supported (healthd speaks %d.%d)",
		 HEALTHD_ABI_MAJOR + 1, HEALTHD_ABI_MINOR, HEALTHD_ABI_MAJOR,
		 HEALTHD_ABI_MINOR);
	expect_refused("bad_major", TEST_PLUGIN_DIR "/bad_major.so: ", want);
	snprintf(want, sizeof(want), "ABI version %d.%d is newer than healthd's %d.%d",
		 HEALTHD_ABI_MAJOR, HEALTHD_ABI_MINOR + 1, HEALTHD_ABI_MAJOR,
		 HEALTHD_ABI_MINOR);
	expect_refused("bad_minor", TEST_PLUGIN_DIR "/bad_minor.so: ", want);
	expect_refused("bad_size", TEST_PLUGIN_DIR "/bad_size.so: ",
		       "plugin struct is");
	expect_refused("bad_name", TEST_PLUGIN_DIR "/bad_name.so: ",
		       "calls itself \"not_bad_name\", which does not match its file name bad_name.so");
	expect_refused("bad_nocheck", TEST_PLUGIN_DIR "/bad_nocheck.so: ",
		       "has no check callback");
	expect_refused("bad_nosym", TEST_PLUGIN_DIR "/bad_nosym.so: ",
		       "no symbol \"healthd_plugin\"");
	expect_refused("", "plugin name is empty", NULL);
	expect_refused(TEST_PLUGIN_DIR "/testplug", "named NAME.so", NULL);
	expect_refused("/nonexistent/x.so", "/nonexistent/x.so: No such file", NULL);
}

static void test_not_found(void)
{
	char *dirs[] = {"/a", "/b"};
	struct plugin *p;
	char err[512];

	CU_ASSERT_EQUAL(loader_open("disk", dirs, 2, &p, err, sizeof(err)),
			-ENOENT);
	CU_ASSERT_STRING_EQUAL(err, "plugin \"disk\": no disk.so in /a, /b");
}

/* A private copy of testplug.so in a fresh directory. */
static int copy_testplug(char *dir, char *file)
{
	char buf[65536];
	ssize_t n;
	int in, out, rc = -1;

	strcpy(dir, "/tmp/healthd-test-loader-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	sprintf(file, "%s/testplug.so", dir);
	in = open(TEST_PLUGIN_DIR "/testplug.so", O_RDONLY);
	out = open(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (in < 0 || out < 0)
		goto done;
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n)
			goto done;
	rc = n == 0 ? 0 : -1;
done:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return rc;
}

static void test_writable_refused(void)
{
	char dir[64], file[PATH_MAX], err[512];
	char *dirs[1];
	struct plugin *p;

	CU_ASSERT_EQUAL_FATAL(copy_testplug(dir, file), 0);
	dirs[0] = dir;

	chmod(file, 0646);
	CU_ASSERT_EQUAL(loader_open("testplug", dirs, 1, &p, err, sizeof(err)),
			-EPERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, file));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "the file is writable by others (mode 0646)"));

	chmod(file, 0644);
	chmod(dir, 0757);
	CU_ASSERT_EQUAL(loader_open(file, NULL, 0, &p, err, sizeof(err)), -EPERM);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "its directory"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "is writable by others (mode 0757)"));

	chmod(dir, 0755);
	CU_ASSERT_EQUAL(loader_open(file, NULL, 0, &p, err, sizeof(err)), 0);
	if (p)
		loader_release(p);

	/* Not a shared object: libltdl's reason, after the file's name. */
	char notso[PATH_MAX];
	FILE *f;

	sprintf(notso, "%s/notso.so", dir);
	f = fopen(notso, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("not an ELF file\n", f);
	fclose(f);
	CU_ASSERT(loader_open(notso, NULL, 0, &p, err, sizeof(err)) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, notso));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot load"));

	/* A directory named like a plugin is not one. */
	sprintf(notso, "%s/dir.so", dir);
	mkdir(notso, 0755);
	CU_ASSERT(loader_open(notso, NULL, 0, &p, err, sizeof(err)) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
	rmdir(notso);

	sprintf(notso, "%s/notso.so", dir);
	unlink(notso);
	unlink(file);
	rmdir(dir);
}

static const struct healthd_option_spec pg_spec[] = {
	{"dsn", NULL, ""},
	{"query", "SELECT 1", ""},
	{"mode", NULL, ""},
	{"role", NULL, ""},
	{"headers.", NULL, ""},
	{NULL, NULL, NULL},
};

static const struct healthd_plugin pg_plugin = {
	.abi_major = HEALTHD_ABI_MAJOR,
	.abi_minor = HEALTHD_ABI_MINOR,
	.size = sizeof(struct healthd_plugin),
	.name = "postgres",
	.options = pg_spec,
};

static void test_check_options(void)
{
	struct config_option opts[] = {
		{.key = "dsn", .value = "postgres://u:hunter2@db/x", .line = 6, .col = 7},
		{.key = "headers.Accept", .value = "text/plain", .line = 7, .col = 9},
		{.key = "qeury", .value = "hunter2", .line = 8, .col = 7},
	};
	struct config_check cc = {.name = "db", .options = opts, .n_options = 2};
	char err[512] = "";

	CU_ASSERT_EQUAL(host_check_options("healthd.yaml", &cc, &pg_plugin, err,
					   sizeof(err)), 0);

	cc.n_options = 3;
	CU_ASSERT_EQUAL(host_check_options("healthd.yaml", &cc, &pg_plugin, err,
					   sizeof(err)), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err,
		"healthd.yaml:8:7: check \"db\": option \"qeury\" is not known to plugin postgres (known: dsn, query, mode, role, headers.*)");
	CU_ASSERT_PTR_NULL(strstr(err, "hunter2"));

	/* A map key needs its map; a scalar where a map belongs says so. */
	opts[2].key = "headers";
	CU_ASSERT_EQUAL(host_check_options("healthd.yaml", &cc, &pg_plugin, err,
					   sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "must be a map"));
	opts[2].key = "headers.";
	CU_ASSERT_EQUAL(host_check_options("healthd.yaml", &cc, &pg_plugin, err,
					   sizeof(err)), -EINVAL);
	opts[2].key = "headersX";
	CU_ASSERT_EQUAL(host_check_options("healthd.yaml", &cc, &pg_plugin, err,
					   sizeof(err)), -EINVAL);

	/* A plugin that declares nothing takes nothing. */
	struct healthd_plugin bare = pg_plugin;
	bare.options = NULL;
	cc.n_options = 1;
	opts[0].line = 0;
	CU_ASSERT_EQUAL(host_check_options("run", &cc, &bare, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err,
		"run: check \"db\": option \"dsn\" is not known to plugin postgres (known: none)");
}

static void test_options(void)
{
	struct config_option opts[] = {
		{.key = "dsn", .value = "host=db"},
		{.key = "headers.Accept", .value = "text/plain"},
		{.key = "headers.X-Id", .value = "7"},
	};
	struct config_check cc = {.name = "db", .options = opts, .n_options = 3};
	struct healthd_check check;
	const char *key, *value;
	size_t pos = 0;

	host_check_init(&check, &cc, pg_spec);
	CU_ASSERT_STRING_EQUAL(host_api.name(&check), "db");
	CU_ASSERT_STRING_EQUAL(host_api.option(&check, "dsn"), "host=db");
	CU_ASSERT_STRING_EQUAL(host_api.option(&check, "query"), "SELECT 1");
	CU_ASSERT_PTR_NULL(host_api.option(&check, "mode"));
	CU_ASSERT_PTR_NULL(host_api.option(&check, "nope"));

	CU_ASSERT_EQUAL(host_api.option_next(&check, "headers.", &pos, &key, &value), 1);
	CU_ASSERT_STRING_EQUAL(key, "Accept");
	CU_ASSERT_STRING_EQUAL(value, "text/plain");
	CU_ASSERT_EQUAL(host_api.option_next(&check, "headers.", &pos, &key, &value), 1);
	CU_ASSERT_STRING_EQUAL(key, "X-Id");
	CU_ASSERT_EQUAL(host_api.option_next(&check, "headers.", &pos, &key, &value), 0);
	CU_ASSERT_EQUAL(host_api.option_next(&check, "headers.", &pos, &key, &value), 0);

	int64_t a = host_api.now_ms();
	usleep(20000);
	CU_ASSERT(host_api.now_ms() - a >= 19);
}

static void test_result(void)
{
	struct healthd_result r;
	char big[600];

	host_result_init(&r, NULL);
	CU_ASSERT(!r.set);
	CU_ASSERT_EQUAL(r.status, HEALTHD_FAIL);

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	host_api.result(&r, HEALTHD_PASS, "%s", big);
	CU_ASSERT(r.set);
	CU_ASSERT_EQUAL(r.status, HEALTHD_PASS);
	CU_ASSERT_EQUAL(strlen(r.message), 255);

	host_api.result(&r, HEALTHD_WARN, "line one\nline two\r\tend%c", 0x7f);
	CU_ASSERT_EQUAL(r.status, HEALTHD_WARN);
	CU_ASSERT_STRING_EQUAL(r.message, "line one line two  end ");

	/* A cut never leaves half a UTF-8 character: 254 bytes then "é". */
	memset(big, 'a', 254);
	strcpy(big + 254, "\xc3\xa9");
	host_api.result(&r, HEALTHD_PASS, "%s", big);
	CU_ASSERT_EQUAL(strlen(r.message), 254);

	host_api.result(&r, (enum healthd_status)7, "odd");
	CU_ASSERT_EQUAL(r.status, HEALTHD_FAIL);

	host_api.detail_str(&r, "version", "15.5");
	host_api.detail_num(&r, "lag", 1.5);
	host_api.detail_bool(&r, "in_recovery", 7);
	host_api.detail_num(&r, "bad", 0.0 / 0.0);
	host_api.detail_str(&r, "version", "16.1");
	CU_ASSERT_STRING_EQUAL(json_object_to_json_string_ext(r.details,
		JSON_C_TO_STRING_PLAIN),
		"{\"version\":\"16.1\",\"lag\":1.5,\"in_recovery\":true,\"bad\":null}");
	host_result_clear(&r);
	CU_ASSERT_PTR_NULL(r.details);
	CU_ASSERT(!r.set);
}

static CU_TestInfo loader_tests[] = {
	{"open, share and release", test_open_shared},
	{"open and release from threads", test_open_threads},
	{"run testplug", test_run_testplug},
	{"bad plugins refused", test_refusals},
	{"not found lists the dirs", test_not_found},
	{"writable by others refused", test_writable_refused},
	CU_TEST_INFO_NULL,
};

static void test_redact(void)
{
	char *dsn[] = {"postgres://u:hunter22@h/db"}, *port[] = {"543"},
	     *pw[] = {"hunter22"};
	struct config_option opts[] = {
		{.key = "dsn", .value = dsn[0], .secrets = dsn, .n_secrets = 1},
		{.key = "query", .value = "SELECT 1"},
		{.key = "port", .value = port[0], .secrets = port,
		 .n_secrets = 1}, /* too short */
		{.key = "pw", .value = pw[0], .secrets = pw, .n_secrets = 1},
	};
	struct config_check cc = {.name = "db", .options = opts, .n_options = 4};
	struct healthd_check check;
	struct healthd_result r;
	char text[128] = "dial postgres://u:hunter22@h/db (hunter22) SELECT 1 :543";

	host_check_init(&check, &cc, NULL);
	host_redact(&check, text);
	CU_ASSERT_STRING_EQUAL(text, "dial *** (***) SELECT 1 :543");
	host_result_init(&r, &check);
	host_api.result(&r, HEALTHD_FAIL, "auth failed for %s", "hunter22");
	CU_ASSERT_STRING_EQUAL(r.message, "auth failed for ***");
	host_api.detail_str(&r, "why", "pw=hunter22;");
	CU_ASSERT_STRING_EQUAL(json_object_get_string(
				       json_object_object_get(r.details, "why")),
			       "pw=***;");
	host_result_clear(&r);
}

static CU_TestInfo host_tests[] = {
	{"expanded values redacted", test_redact},
	{"unknown options rejected", test_check_options},
	{"options, defaults and maps", test_options},
	{"result and details", test_result},
	CU_TEST_INFO_NULL,
};

static int loader_suite_init(void)
{
	return loader_init();
}

static int loader_suite_clean(void)
{
	loader_exit();
	return 0;
}

void unit_register(void)
{
	CU_pSuite s = CU_add_suite("loader", loader_suite_init, loader_suite_clean);

	for (CU_TestInfo *t = loader_tests; t->pName; t++)
		CU_add_test(s, t->pName, t->pTestFunc);
	UNIT_SUITE("host", host_tests);
}
