/* Unit tests for host.c: what a plugin reports is redacted before it is cut
 * short, every ${...} expansion of an option is looked for, and create()'s
 * errors are redacted too. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "host.h"
#include "isolate.h"
#include "loader.h"
#include "log.h"
#include "unit.h"

#define SECRET "hunter2-topsecret"

static char err[1024];

/* The config `yaml`, loaded with T_SECRET=SECRET and T_PW=SECRET. */
static struct config *load(const char *yaml)
{
	char path[] = "/tmp/healthd-test-host-XXXXXX";
	struct config *cfg = NULL;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml));
	close(fd);
	setenv("T_SECRET", SECRET, 1);
	setenv("T_PW", SECRET, 1);
	if (config_load(path, &cfg, err, sizeof(err)) < 0)
		fprintf(stderr, "\nunexpected error: %s\n", err);
	unsetenv("T_SECRET");
	unsetenv("T_PW");
	unlink(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	return cfg;
}

/* No 4-byte or longer prefix of the secret in `text`. */
static void assert_no_prefix(const char *text)
{
	char prefix[sizeof(SECRET)];

	for (size_t n = sizeof(SECRET) - 1; n >= 4; n--) {
		memcpy(prefix, SECRET, n);
		prefix[n] = '\0';
		if (strstr(text, prefix)) {
			fprintf(stderr, "\nleaked \"%s\"\n", prefix);
			CU_FAIL("a prefix of the secret leaked");
			return;
		}
	}
}

static const char *const secret_yaml =
	"checks:\n"
	"  - name: db\n"
	"    plugin: p\n"
	"    options:\n"
	"      secret: ${T_SECRET}\n"
	"      dsn: postgresql://u:${T_PW}@db/app\n"
	"      query: SELECT 1\n";

/* A secret straddling the message's 255-byte cut. */
static void test_result_cut(void)
{
	struct config *cfg = load(secret_yaml);
	struct healthd_check check;
	struct healthd_result r;
	char pad[300];

	host_check_init(&check, &cfg->checks[0], NULL);
	for (size_t at = 240; at < HOST_MESSAGE_MAX; at++) {
		memset(pad, 'x', at);
		pad[at] = '\0';
		host_result_init(&r, &check);
		host_api.result(&r, HEALTHD_FAIL, "%s%s\n", pad, SECRET);
		assert_no_prefix(r.message);
		CU_ASSERT(strlen(r.message) < HOST_MESSAGE_MAX);
		if (at + 3 < HOST_MESSAGE_MAX) {
			CU_ASSERT_PTR_NOT_NULL(strstr(r.message, "***"));
		}
		host_result_clear(&r);
	}
	/* Still cut between UTF-8 characters, and kept on one line. */
	host_result_init(&r, &check);
	char wide[401] = "";
	for (int i = 0; i < 200; i++)
		strcat(wide, "\xc3\xa9");
	host_api.result(&r, HEALTHD_FAIL, "%s\r\n", wide);
	CU_ASSERT_EQUAL(strlen(r.message), 254);
	host_api.result(&r, HEALTHD_FAIL, "a\nb %s\tc", SECRET);
	CU_ASSERT_STRING_EQUAL(r.message, "a b *** c");
	host_result_clear(&r);
	config_free(cfg);
}

/* A log line is redacted before it is cut to 1024 bytes as well. */
static void test_log_cut(void)
{
	struct config *cfg = load(secret_yaml);
	struct healthd_check check;
	char path[] = "/tmp/healthd-test-host-log-XXXXXX";
	char line[2048], pad[1100];
	int fd = mkstemp(path), saved = dup(2);
	FILE *f;
	size_t n;

	CU_ASSERT_FATAL(fd >= 0 && saved >= 0);
	host_check_init(&check, &cfg->checks[0], NULL);
	log_configure(LOG_DEBUG, LOG_TEXT);
	fflush(stderr);
	dup2(fd, 2);
	for (size_t at = 1010; at < 1024; at++) {
		memset(pad, 'x', at);
		pad[at] = '\0';
		host_api.log(&check, HEALTHD_LOG_ERROR, "%s%s", pad, SECRET);
	}
	log_flush(2000); /* lines are written by the log's own thread */
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log_configure(LOG_INFO, LOG_JSON);
	f = fdopen(fd, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	rewind(f);
	for (n = 0; fgets(line, sizeof(line), f); n++)
		assert_no_prefix(line);
	CU_ASSERT_EQUAL(n, 14);
	fclose(f);
	unlink(path);
	config_free(cfg);
}

/* Each ${...} of a value is looked for on its own: the password inside a
 * DSN is hidden wherever it shows, the rest of the DSN is not. */
static void test_expansion_inside_value(void)
{
	struct config *cfg = load("checks:\n"
				  "  - name: db\n"
				  "    plugin: p\n"
				  "    options: {dsn: \"postgresql://u:${T_PW}@db/app\"}\n");
	struct healthd_check check;
	struct healthd_result r;

	host_check_init(&check, &cfg->checks[0], NULL);
	host_result_init(&r, &check);
	host_api.result(&r, HEALTHD_FAIL, "dial %s: password %s refused",
			"postgresql://u:" SECRET "@db/app", SECRET);
	CU_ASSERT_STRING_EQUAL(r.message,
			       "dial postgresql://u:***@db/app: password *** refused");
	host_api.detail_str(&r, "user", "u:" SECRET "@");
	CU_ASSERT_STRING_EQUAL(json_object_get_string(
				       json_object_object_get(r.details, "user")),
			       "u:***@");
	host_result_clear(&r);
	config_free(cfg);
}

/* The directory the test plugins are built in, next to this test. */
static void plugin_dir(char *dir, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	CU_ASSERT_FATAL(n > 0);
	exe[n] = '\0';
	snprintf(dir, len, "%s/plugins", dirname(exe));
}

/* check_create() must fail, its error redacted. */
static void create_error(struct config *cfg)
{
	char dir[PATH_MAX], *dirs[] = {dir};
	struct check *c = NULL;

	plugin_dir(dir, sizeof(dir));
	err[0] = '\0';
	CU_ASSERT_EQUAL(check_create("healthd.yaml", &cfg->checks[0], dirs, 1,
				     &c, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_STRING_EQUAL(err, "healthd.yaml:2:5: check \"echo\": "
				    "value: \"key=***\" is not accepted");
	assert_no_prefix(err);
	config_free(cfg);
}

/* A plugin quoting an expanded option in create()'s error, in a plugin
 * host and inline. */
static void test_create_error(void)
{
	for (int isolation = ISOLATION_PROCESS; isolation <= ISOLATION_INLINE;
	     isolation++) {
		struct config *cfg = load("checks:\n"
					  "  - name: echo\n"
					  "    plugin: echoplug\n"
					  "    options: {value: \"key=${T_SECRET}\"}\n");

		cfg->checks[0].isolation = (enum config_isolation)isolation;
		create_error(cfg);
	}
}


/* option_bool() and the rest: the core's syntax, defaults, unset options,
 * and errors that name the key but never the value (it may be a secret). */
static void test_typed_options(void)
{
	static const struct healthd_option_spec spec[] = {
		{"on", NULL, ""}, {"wait", NULL, ""}, {"n", NULL, ""},
		{"cap", NULL, ""}, {"dflt", "1.5m", ""}, {"unset", NULL, ""},
		{"bad", NULL, ""}, {NULL, NULL, NULL},
	};
	struct config *cfg = load("checks:\n"
				  "  - name: db\n"
				  "    plugin: p\n"
				  "    options:\n"
				  "      on: YES\n"
				  "      wait: 250ms\n"
				  "      n: \"-3\"\n"
				  "      cap: 2MiB\n"
				  "      bad: ${T_SECRET}\n");
	struct healthd_check check;
	int b = -1;
	int64_t v = -1;
	long long n = 0;

	host_check_init(&check, &cfg->checks[0], spec);
	CU_ASSERT_EQUAL(host_api.option_bool(&check, "on", &b, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(b, 1);
	CU_ASSERT_EQUAL(host_api.option_duration_ms(&check, "wait", &v, err,
						    sizeof(err)), 0);
	CU_ASSERT_EQUAL(v, 250);
	CU_ASSERT_EQUAL(host_api.option_duration_ms(&check, "dflt", &v, err,
						    sizeof(err)), 0);
	CU_ASSERT_EQUAL(v, 90000); /* the declared default, parsed */
	CU_ASSERT_EQUAL(host_api.option_int(&check, "n", &n, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(n, -3);
	CU_ASSERT_EQUAL(host_api.option_size(&check, "cap", &v, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(v, 2 * 1024 * 1024);

	v = 7;
	CU_ASSERT_EQUAL(host_api.option_size(&check, "unset", &v, err,
					     sizeof(err)), 1);
	CU_ASSERT_EQUAL(v, 7); /* untouched */

	CU_ASSERT_EQUAL(host_api.option_bool(&check, "bad", &b, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "bad: expected true, false, yes, no, on or off");
	CU_ASSERT_EQUAL(host_api.option_duration_ms(&check, "bad", &v, err,
						    sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "bad: expected a duration (use ms, s, m, h)");
	assert_no_prefix(err);
	CU_ASSERT_EQUAL(host_api.option_int(&check, "wait", &n, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "wait: expected a whole number");
	config_free(cfg);
}


static CU_TestInfo host_tests[] = {
	{"result redacted before the cut", test_result_cut},
	{"log line redacted before the cut", test_log_cut},
	{"each expansion of a value redacted", test_expansion_inside_value},
	{"create() errors redacted", test_create_error},
	{"typed options parse as the core's settings", test_typed_options},
	CU_TEST_INFO_NULL,
};

/* check_create() runs plugins in plugin hosts by default: the supervisor
 * starts this binary again as the host (cunit_main.c serves as one). */
static int host_suite_init(void)
{
	return loader_init() || isolate_start();
}

static int host_suite_clean(void)
{
	isolate_stop();
	loader_exit();
	return 0;
}

void unit_register(void)
{
	CU_pSuite s = CU_add_suite("host", host_suite_init, host_suite_clean);

	for (CU_TestInfo *t = host_tests; t->pName; t++)
		CU_add_test(s, t->pName, t->pTestFunc);
}
