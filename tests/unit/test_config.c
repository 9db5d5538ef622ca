/* Unit tests for config.c: parsing, defaults, messages, expansion, secrets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

#define SECRET "s3cr3t-Value-42"

static char tmp_path[64];
static char err[1024];

/* Writes `text` to a fresh temp file; returns its path (static). */
static const char *tmp_file(const char *text)
{
	int fd;

	strcpy(tmp_path, "/tmp/healthd-test-config-XXXXXX");
	fd = mkstemp(tmp_path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	return tmp_path;
}

static void clear_env(void)
{
	unsetenv("HEALTHD_LOG_LEVEL");
	unsetenv("HEALTHD_LISTEN");
}

/* Loads `yaml`, which must be valid. */
static struct config *load_ok(const char *yaml)
{
	struct config *cfg = NULL;
	const char *path = tmp_file(yaml);
	int rc = config_load(path, &cfg, err, sizeof(err));

	unlink(path);
	if (rc != 0)
		fprintf(stderr, "\nunexpected error: %s\n", err);
	CU_ASSERT_EQUAL(rc, 0);
	return cfg;
}

/* Loads `yaml`, which must fail with "PATH:" + `want` exactly. */
static void load_err(const char *yaml, const char *want)
{
	struct config *cfg = (struct config *)1;
	const char *path = tmp_file(yaml);
	char full[1024];
	int rc = config_load(path, &cfg, err, sizeof(err));

	snprintf(full, sizeof(full), "%s:%s", path, want);
	unlink(path);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_PTR_NULL(cfg);
	if (strcmp(err, full))
		fprintf(stderr, "\nwant: %s\ngot:  %s\n", full, err);
	CU_ASSERT_STRING_EQUAL(err, full);
}

/* A file holding `text` for ${file:} and details_token_file. */
static void secret_file(char *path, size_t len, const char *text)
{
	snprintf(path, len, "%s", tmp_file(text));
}

static const char *opt(const struct config_check *chk, const char *key)
{
	for (size_t i = 0; i < chk->n_options; i++)
		if (!strcmp(chk->options[i].key, key))
			return chk->options[i].value;
	return NULL;
}

static void test_full(void)
{
	char dsn[64], token[64], yaml[2048];
	struct config *cfg;
	const struct config_check *c;

	clear_env();
	secret_file(dsn, sizeof(dsn), "postgres://u:p@db/app\n");
	secret_file(token, sizeof(token), "tok-123\n");
	setenv("TEST_REDIS_URL", "redis://cache:6379", 1);
	snprintf(yaml, sizeof(yaml),
		 "listen: \"[::1]:9000\"\n"
		 "base_path: /health/\n"
		 "metrics: false\n"
		 "log:\n"
		 "  level: debug\n"
		 "  format: text\n"
		 "plugin_dirs: [/a, /b, /c]\n"
		 "server:\n"
		 "  threads: 2\n"
		 "  max_connections: 64\n"
		 "  connection_timeout: 1.5s\n"
		 "workers: 8\n"
		 "details: token\n"
		 "details_token_file: %s\n"
		 "shutdown:\n"
		 "  drain: 0s\n"
		 "defaults:\n"
		 "  interval: 20s\n"
		 "  timeout: 4s\n"
		 "  failure_threshold: 5\n"
		 "  success_threshold: 2\n"
		 "  history: 7\n"
		 "checks:\n"
		 "  - name: database\n"
		 "    plugin: postgres\n"
		 "    critical: true\n"
		 "    interval: 5s\n"
		 "    timeout: 2s\n"
		 "    warn_after: 500ms\n"
		 "    failure_threshold: 1\n"
		 "    success_threshold: 3\n"
		 "    history: 0\n"
		 "    options:\n"
		 "      dsn: ${file:%s}\n"
		 "      query: SELECT 1\n"
		 "  - name: cache\n"
		 "    plugin: redis\n"
		 "    options: { url: \"${TEST_REDIS_URL}\" }\n"
		 "  - name: payments-api\n"
		 "    plugin: /opt/healthd/plugins/http.so\n"
		 "    critical: false\n"
		 "    options: { url: \"http://payments:8080/healthz\", expect_status: \"200-299\" }\n",
		 token, dsn);
	cfg = load_ok(yaml);
	unlink(dsn);
	unlink(token);
	unsetenv("TEST_REDIS_URL");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(cfg->listen, "[::1]:9000");
	CU_ASSERT_STRING_EQUAL(cfg->listen_host, "::1");
	CU_ASSERT_EQUAL(cfg->listen_port, 9000);
	CU_ASSERT_STRING_EQUAL(cfg->base_path, "/health");
	CU_ASSERT_FALSE(cfg->metrics);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_DEBUG);
	CU_ASSERT_EQUAL(cfg->log_format, LOG_TEXT);
	CU_ASSERT_EQUAL_FATAL(cfg->n_plugin_dirs, 3);
	CU_ASSERT_STRING_EQUAL(cfg->plugin_dirs[0], "/a");
	CU_ASSERT_STRING_EQUAL(cfg->plugin_dirs[2], "/c");
	CU_ASSERT_EQUAL(cfg->server_threads, 2);
	CU_ASSERT_EQUAL(cfg->max_connections, 64);
	CU_ASSERT_EQUAL(cfg->connection_timeout_ms, 1500);
	CU_ASSERT_EQUAL(cfg->workers, 8);
	CU_ASSERT_EQUAL(cfg->details, DETAILS_TOKEN);
	CU_ASSERT_STRING_EQUAL(cfg->details_token, "tok-123");
	CU_ASSERT_EQUAL(cfg->drain_ms, 0);
	CU_ASSERT_EQUAL_FATAL(cfg->n_checks, 3);

	c = &cfg->checks[0];
	CU_ASSERT_STRING_EQUAL(c->name, "database");
	CU_ASSERT_STRING_EQUAL(c->plugin, "postgres");
	CU_ASSERT_TRUE(c->critical);
	CU_ASSERT_EQUAL(c->interval_ms, 5000);
	CU_ASSERT_EQUAL(c->timeout_ms, 2000);
	CU_ASSERT_EQUAL(c->warn_after_ms, 500);
	CU_ASSERT_EQUAL(c->failure_threshold, 1);
	CU_ASSERT_EQUAL(c->success_threshold, 3);
	CU_ASSERT_EQUAL(c->history, 0);
	CU_ASSERT_EQUAL(c->line, 24);
	CU_ASSERT_EQUAL(c->col, 5);
	CU_ASSERT_EQUAL_FATAL(c->n_options, 2);
	CU_ASSERT_STRING_EQUAL(opt(c, "dsn"), "postgres://u:p@db/app");
	CU_ASSERT_STRING_EQUAL(opt(c, "query"), "SELECT 1");
	CU_ASSERT_EQUAL(c->options[0].line, 34);
	CU_ASSERT_EQUAL(c->options[0].col, 7);

	c = &cfg->checks[1];
	CU_ASSERT_STRING_EQUAL(c->name, "cache");
	CU_ASSERT_STRING_EQUAL(opt(c, "url"), "redis://cache:6379");
	/* Inherited from defaults. */
	CU_ASSERT_EQUAL(c->interval_ms, 20000);
	CU_ASSERT_EQUAL(c->timeout_ms, 4000);
	CU_ASSERT_EQUAL(c->failure_threshold, 5);
	CU_ASSERT_EQUAL(c->success_threshold, 2);
	CU_ASSERT_EQUAL(c->history, 7);
	CU_ASSERT_EQUAL(c->warn_after_ms, 0);
	CU_ASSERT_TRUE(c->critical);

	c = &cfg->checks[2];
	CU_ASSERT_STRING_EQUAL(c->name, "payments-api");
	CU_ASSERT_FALSE(c->critical);
	CU_ASSERT_STRING_EQUAL(c->plugin, "/opt/healthd/plugins/http.so");
	CU_ASSERT_STRING_EQUAL(opt(c, "expect_status"), "200-299");
	config_free(cfg);
}

static void assert_defaults(const struct config *cfg)
{
	CU_ASSERT_STRING_EQUAL(cfg->listen, "0.0.0.0:8000");
	CU_ASSERT_STRING_EQUAL(cfg->listen_host, "0.0.0.0");
	CU_ASSERT_EQUAL(cfg->listen_port, 8000);
	CU_ASSERT_STRING_EQUAL(cfg->base_path, "/api/v1/health");
	CU_ASSERT_TRUE(cfg->metrics);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_INFO);
	CU_ASSERT_EQUAL(cfg->log_format, LOG_JSON);
	CU_ASSERT_EQUAL_FATAL(cfg->n_plugin_dirs, 2);
	CU_ASSERT_STRING_EQUAL(cfg->plugin_dirs[0], HEALTHD_DEFAULT_PLUGIN_DIR);
	CU_ASSERT_STRING_EQUAL(cfg->plugin_dirs[1], "/opt/healthd/plugins");
	CU_ASSERT_EQUAL(cfg->server_threads, 0);
	CU_ASSERT_EQUAL(cfg->max_connections, 512);
	CU_ASSERT_EQUAL(cfg->connection_timeout_ms, 10000);
	CU_ASSERT_EQUAL(cfg->workers, 4);
	CU_ASSERT_EQUAL(cfg->details, DETAILS_PUBLIC);
	CU_ASSERT_PTR_NULL(cfg->details_token);
	CU_ASSERT_EQUAL(cfg->drain_ms, 5000);
	CU_ASSERT_STRING_EQUAL(cfg->control_socket, CONFIG_CONTROL_SOCKET_DEFAULT);
}

static void test_defaults(void)
{
	static const char *const empty[] = {
		"", "# only a comment\n", "---\n", "checks: []\n", "checks:\n",
		"log:\nserver: {}\n",
	};
	struct config *cfg;

	clear_env();
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		cfg = load_ok(empty[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		assert_defaults(cfg);
		CU_ASSERT_EQUAL(cfg->n_checks, 0);
		config_free(cfg);
	}

	cfg = load_ok("checks:\n  - name: a\n    plugin: p\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	assert_defaults(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->n_checks, 1);
	CU_ASSERT_STRING_EQUAL(cfg->checks[0].name, "a");
	CU_ASSERT_TRUE(cfg->checks[0].critical);
	CU_ASSERT_EQUAL(cfg->checks[0].interval_ms, 10000);
	CU_ASSERT_EQUAL(cfg->checks[0].timeout_ms, 3000);
	CU_ASSERT_EQUAL(cfg->checks[0].warn_after_ms, 0);
	CU_ASSERT_EQUAL(cfg->checks[0].failure_threshold, 3);
	CU_ASSERT_EQUAL(cfg->checks[0].success_threshold, 1);
	CU_ASSERT_EQUAL(cfg->checks[0].history, CONFIG_HISTORY_DEFAULT);
	CU_ASSERT_EQUAL(cfg->checks[0].n_options, 0);
	config_free(cfg);
	config_free(NULL);
}

static void test_listen_and_base_path(void)
{
	static const struct {
		const char *yaml, *host;
		int port;
	} ok[] = {
		{"listen: \":8000\"\n", "", 8000},
		{"listen: 0.0.0.0:1\n", "0.0.0.0", 1},
		{"listen: \"[::]:65535\"\n", "::", 65535},
		{"listen: localhost:80\n", "localhost", 80},
	};
	static const struct {
		const char *yaml, *base;
	} bases[] = {
		{"base_path: /\n", ""},
		{"base_path: /x/y//\n", "/x/y"},
		{"base_path: /api/v1/health\n", "/api/v1/health"},
	};
	static const char *const bad[] = {
		"8000", ":0", ":65536", "host:", "::1:80", "[::1]80", "[]:80",
		":80x", "a b:80",
	};
	char yaml[128], want[256];
	struct config *cfg;

	clear_env();
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cfg = load_ok(ok[i].yaml);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		CU_ASSERT_STRING_EQUAL(cfg->listen_host, ok[i].host);
		CU_ASSERT_EQUAL(cfg->listen_port, ok[i].port);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		cfg = load_ok(bases[i].yaml);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		CU_ASSERT_STRING_EQUAL(cfg->base_path, bases[i].base);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(yaml, sizeof(yaml), "\nlisten: \"%s\"\n", bad[i]);
		snprintf(want, sizeof(want),
			 "2:1: listen: \"%s\" is not an address (expected "
			 "[host]:port with port 1-65535, e.g. \":8000\" or "
			 "\"[::]:8000\")", bad[i]);
		load_err(yaml, want);
	}
	load_err("base_path: api\n",
		 "1:1: base_path: \"api\" is not a URL path (expected one "
		 "starting with '/', without spaces, '?' or '#')");
}

static void test_errors(void)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		/* unknown keys */
		{"listen: \":80\"\nlsten: x\n",
		 "2:1: unknown key \"lsten\"; expected one of: listen, base_path, "
		 "service, metrics, log, plugin_dirs, server, workers, details, "
		 "details_token_file, shutdown, control, defaults, checks"},
		{"checks:\n  - name: db\n    plugin: pg\n    intervl: 5s\n",
		 "4:5: unknown key \"intervl\" in check \"db\"; expected one of: "
		 "name, plugin, critical, interval, timeout, warn_after, "
		 "failure_threshold, success_threshold, isolation, isolation_max_rss, "
		 "history, options, depends_on"},
		{"log:\n  lvl: debug\n",
		 "2:3: unknown key \"lvl\" in log; expected one of: level, format"},
		{"server:\n  threads: 1\n  threads: 2\n",
		 "3:3: key \"threads\" in server appears twice (first at line 2)"},
		/* durations */
		{"checks:\n  - name: db\n    plugin: pg\n    timeout: 2x\n",
		 "4:5: timeout: \"2x\" is not a duration (use ms, s, m, h)"},
		{"defaults:\n  interval: 5\n",
		 "2:3: defaults.interval: \"5\" is not a duration (use ms, s, m, h)"},
		{"shutdown:\n  drain: \"\"\n",
		 "2:3: shutdown.drain: \"\" is not a duration (use ms, s, m, h)"},
		{"checks:\n  - name: db\n    plugin: pg\n    interval: 0s\n",
		 "4:5: interval: \"0s\" must be greater than 0"},
		{"server:\n  connection_timeout: [1s]\n",
		 "2:3: server.connection_timeout: expected a duration, found a list"},
		/* enums and bools */
		{"log:\n  level: verbose\n",
		 "2:3: log.level: \"verbose\" is not valid (expected one of: "
		 "debug, info, warn, error)"},
		{"log: {format: yaml}\n",
		 "1:7: log.format: \"yaml\" is not valid (expected one of: json, text)"},
		{"details: secret\n",
		 "1:1: details: \"secret\" is not valid (expected one of: public, "
		 "token, hidden)"},
		{"service: \"\"\n",
		 "1:1: service: \"\" is not a service name (1 to 128 printable "
		 "characters)"},
		{"service: \"a\\tb\"\n",
		 "1:1: service: \"a\\x09b\" is not a service name (1 to 128 printable "
		 "characters)"},
		{"metrics: maybe\n",
		 "1:1: metrics: \"maybe\" is not a boolean (expected true, "
		 "false, yes, no, on or off)"},
		{"checks:\n  - name: db\n    plugin: pg\n    critical: 2\n",
		 "4:5: critical: \"2\" is not a boolean (expected true, false, "
		 "yes, no, on or off)"},
		/* integers */
		{"server:\n  threads: -1\n",
		 "2:3: server.threads: \"-1\" is out of range (expected 0 to 1024)"},
		{"workers: 0\n",
		 "1:1: workers: \"0\" is out of range (expected 1 to 1024)"},
		{"server: {max_connections: 1.5}\n",
		 "1:10: server.max_connections: \"1.5\" is not an integer"},
		{"checks:\n  - name: db\n    plugin: pg\n    failure_threshold: 0\n",
		 "4:5: failure_threshold: \"0\" is out of range (expected at least 1)"},
		{"defaults:\n  success_threshold: +2\n",
		 "2:3: defaults.success_threshold: \"+2\" is not an integer"},
		{"defaults:\n  history: 10001\n",
		 "2:3: defaults.history: \"10001\" is out of range (expected 0 to 10000)"},
		{"checks:\n  - name: db\n    plugin: pg\n    history: -1\n",
		 "4:5: history: \"-1\" is out of range (expected 0 to 10000)"},
		/* checks */
		{"checks:\n  - name: Database\n    plugin: pg\n",
		 "2:5: name: \"Database\" is not a valid check name (expected "
		 "[a-z0-9][a-z0-9_.-]*)"},
		{"checks:\n  - name: -db\n    plugin: pg\n",
		 "2:5: name: \"-db\" is not a valid check name (expected "
		 "[a-z0-9][a-z0-9_.-]*)"},
		{"checks:\n  - name: db\n    plugin: pg\n  - name: x\n    plugin: pg\n"
		 "  - plugin: pg\n    name: db\n",
		 "7:5: check \"db\" is defined twice (first at line 2)"},
		{"checks:\n  - name: db\n    critical: false\n",
		 "2:5: check \"db\": plugin is required (a plugin name or a path "
		 "to a .so)"},
		{"checks:\n  - plugin: pg\n",
		 "2:5: check #1: name is required"},
		{"checks:\n  - name: db\n    plugin: \"\"\n",
		 "3:5: plugin: must not be empty"},
		{"checks:\n  - db\n",
		 "2:5: check #1: expected a mapping, found a single value"},
		{"checks: db\n",
		 "1:1: checks: expected a list of checks, found a single value"},
		{"checks:\n  - name: db\n    plugin: pg\n    interval: 5s\n    timeout: 6s\n",
		 "5:5: timeout: \"6s\" is longer than the interval; the timeout "
		 "must not exceed the interval"},
		{"checks:\n  - name: db\n    plugin: pg\n    interval: 2s\n",
		 "4:5: interval: \"2s\" is shorter than the timeout; the timeout "
		 "must not exceed the interval"},
		{"defaults:\n  timeout: 11s\n",
		 "2:3: defaults.timeout: \"11s\" is longer than the interval; the "
		 "timeout must not exceed the interval"},
		{"checks:\n  - name: db\n    plugin: pg\n    warn_after: 3s\n",
		 "4:5: warn_after: \"3s\" must be shorter than the timeout"},
		/* types and structure */
		{"plugin_dirs: /usr/lib\n",
		 "1:1: plugin_dirs: expected a list of directories, found a "
		 "single value"},
		{"plugin_dirs:\n  - /a\n  - [b]\n",
		 "3:5: plugin_dirs: expected a directory, found a list"},
		{"log: debug\n", "1:1: log: expected a mapping, found a single value"},
		{"control: {socket: ctl.sock}\n",
		 "1:11: control.socket: \"ctl.sock\" is not a socket path (expected "
		 "an absolute path of at most 107 bytes, or \"\" for none)"},
		{"control: {sock: /x}\n",
		 "1:11: unknown key \"sock\" in control; expected one of: socket"},
		{"base_path:\n", "1:1: base_path: expected a path, found nothing"},
		{"- a\n- b\n", "1:1: expected a mapping of settings, found a list"},
		{"checks:\n  - name: db\n    plugin: pg\n    options: [a]\n",
		 "4:5: options: expected a mapping, found a list"},
		{"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		 "      a:\n        b:\n          c: d\n",
		 "6:9: options.a.b: nested too deeply (an option holds a value, a "
		 "list, or a mapping of values)"},
		{"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		 "      codes: [200, [3]]\n",
		 "5:7: options.codes: expected single values in the list, found a list"},
		{"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		 "      headers.Accept: a\n      headers: {Accept: b}\n",
		 "6:17: options: key \"headers.Accept\" appears twice (first at line 5)"},
		{"x: &a 1\ny: *a\n",
		 "2:4: aliases (*a) are not supported; write the value out"},
		{"listen: \":80\"\n---\nlisten: \":81\"\n",
		 "2:1: a second YAML document; healthd.yaml holds one"},
		/* details */
		{"details: token\n",
		 "1:1: details: token needs details_token_file (a file holding "
		 "the bearer token)"},
		{"details: token\ndetails_token_file: /nonexistent/healthd/token\n",
		 "2:1: details_token_file: cannot read /nonexistent/healthd/token: "
		 "No such file or directory"},
		/* expansion */
		{"\nlisten: ${HEALTHD_TEST_UNSET}\n",
		 "2:1: listen: variable HEALTHD_TEST_UNSET is not set"},
		{"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		 "      dsn: ${file:/nonexistent/dsn}\n",
		 "5:7: options.dsn: cannot read /nonexistent/dsn: No such file or "
		 "directory"},
		{"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		 "      dsn: \"x${A\"\n",
		 "5:7: options.dsn: unterminated \"${\" (missing \"}\"); write $$ "
		 "for a literal $"},
	};

	clear_env();
	unsetenv("HEALTHD_TEST_UNSET");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		load_err(cases[i].yaml, cases[i].want);
}

static void test_yaml_syntax(void)
{
	struct config *cfg = NULL;
	const char *path = tmp_file("listen: \":80\"\nlog:\n  level: [debug\n");
	char want[128];
	int rc = config_load(path, &cfg, err, sizeof(err));

	unlink(path);
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_PTR_NULL(cfg);
	snprintf(want, sizeof(want), "%s:4:1: ", path);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "flow sequence"));

	path = tmp_file("a: b: c\n");
	rc = config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	CU_ASSERT_EQUAL(rc, -1);
	snprintf(want, sizeof(want), "%s:1:5: mapping values are not allowed",
		 path);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);

	rc = config_load("/nonexistent/healthd.yaml", &cfg, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, -1);
	CU_ASSERT_STRING_EQUAL(err, "/nonexistent/healthd.yaml: cannot read: "
				    "No such file or directory");
}

static void expect_expand(const char *in, const char *want)
{
	char *out = NULL;
	int rc = config_expand(in, &out, err, sizeof(err));

	CU_ASSERT_EQUAL(rc, 0);
	if (rc == 0) {
		CU_ASSERT_STRING_EQUAL(out, want);
	} else {
		fprintf(stderr, "\n%s: %s\n", in, err);
	}
	free(out);
}

static void expect_expand_err(const char *in, const char *want)
{
	char *out = (char *)1;

	CU_ASSERT_EQUAL(config_expand(in, &out, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NULL(out);
	if (strcmp(err, want))
		fprintf(stderr, "\nwant: %s\ngot:  %s\n", want, err);
	CU_ASSERT_STRING_EQUAL(err, want);
}

static void test_expand(void)
{
	char path[64], in[128], big[70 * 1024];
	int fd;

	setenv("T_SET", "value", 1);
	setenv("T_EMPTY", "", 1);
	unsetenv("T_UNSET");
	expect_expand("", "");
	expect_expand("plain text", "plain text");
	expect_expand("${T_SET}", "value");
	expect_expand("a-${T_SET}-b${T_SET}", "a-value-bvalue");
	expect_expand("${T_EMPTY}", "");
	expect_expand("${T_UNSET:-dflt}", "dflt");
	expect_expand("${T_EMPTY:-dflt}", "dflt");
	expect_expand("${T_SET:-dflt}", "value");
	expect_expand("${T_UNSET:-}", "");
	expect_expand("${T_UNSET:-a:b}c", "a:bc");
	expect_expand("$$", "$");
	expect_expand("p$$w$$${T_SET}", "p$w$value");
	expect_expand("$${T_SET}", "${T_SET}");
	expect_expand("cost $5", "cost $5");
	expect_expand("end$", "end$");

	secret_file(path, sizeof(path), "line1\nline2\n\n");
	snprintf(in, sizeof(in), "[${file:%s}]", path);
	expect_expand(in, "[line1\nline2\n]");
	unlink(path);
	secret_file(path, sizeof(path), "crlf\r\n");
	snprintf(in, sizeof(in), "${file:%s}", path);
	expect_expand(in, "crlf");
	unlink(path);
	secret_file(path, sizeof(path), "");
	snprintf(in, sizeof(in), "${file:%s}", path);
	expect_expand(in, "");
	unlink(path);

	expect_expand_err("${T_UNSET}", "variable T_UNSET is not set");
	expect_expand_err("a${T_SET", "unterminated \"${\" (missing \"}\"); "
				      "write $$ for a literal $");
#define EXPECTED_REFS                                                        \
	"expected ${NAME}, ${NAME:-default}, ${secret:NAME}, ${public:NAME} "  \
	"or ${file:/path}"
	expect_expand_err("${}", "bad reference \"${\": " EXPECTED_REFS);
	expect_expand_err("${T_SET-x}", "bad reference \"${T_SET\": " EXPECTED_REFS);
	expect_expand_err("${1X}", "bad reference \"${\": " EXPECTED_REFS);
	expect_expand_err("${secret:}", "bad reference \"${\": " EXPECTED_REFS);
	expect_expand_err("${file:}", "${file:} needs a path");
	expect_expand_err("${file:/nonexistent/x}",
			  "cannot read /nonexistent/x: No such file or directory");
	expect_expand_err("${file:/tmp}", "cannot read /tmp: not a regular file");
	expect_expand_err("${T_UNSET:-${T_SET}}",
			  "${T_UNSET:-...}: a default cannot hold another ${...}");

	/* NUL bytes and files over 64 KiB are refused, naming the path. */
	strcpy(path, "/tmp/healthd-test-config-XXXXXX");
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT(write(fd, "ab\0cd", 5) == 5);
	close(fd);
	snprintf(in, sizeof(in), "${file:%s}", path);
	snprintf(big, sizeof(big), "%s contains a NUL byte", path);
	expect_expand_err(in, big);
	unlink(path);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	secret_file(path, sizeof(path), big);
	snprintf(in, sizeof(in), "${file:%s}", path);
	snprintf(big, sizeof(big), "%s is larger than 64 KiB", path);
	expect_expand_err(in, big);
	unlink(path);
	unsetenv("T_SET");
	unsetenv("T_EMPTY");
}

static void test_env_overrides(void)
{
	const char *yaml = "listen: \":9000\"\nlog:\n  level: error\n";
	struct config *cfg;
	const char *path;

	clear_env();
	setenv("HEALTHD_LOG_LEVEL", "debug", 1);
	setenv("HEALTHD_LISTEN", "[::]:7000", 1);
	cfg = load_ok(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_DEBUG);
	CU_ASSERT_STRING_EQUAL(cfg->listen, "[::]:7000");
	CU_ASSERT_STRING_EQUAL(cfg->listen_host, "::");
	CU_ASSERT_EQUAL(cfg->listen_port, 7000);
	config_free(cfg);

	/* Empty counts as unset. */
	setenv("HEALTHD_LOG_LEVEL", "", 1);
	setenv("HEALTHD_LISTEN", "", 1);
	cfg = load_ok(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_ERROR);
	CU_ASSERT_EQUAL(cfg->listen_port, 9000);
	config_free(cfg);

	setenv("HEALTHD_LOG_LEVEL", "loud", 1);
	path = tmp_file(yaml);
	CU_ASSERT_EQUAL(config_load(path, &cfg, err, sizeof(err)), -1);
	CU_ASSERT_STRING_EQUAL(err, "HEALTHD_LOG_LEVEL: \"loud\" is not valid "
				    "(expected one of: debug, info, warn, error)");
	unsetenv("HEALTHD_LOG_LEVEL");
	setenv("HEALTHD_LISTEN", "7000", 1);
	CU_ASSERT_EQUAL(config_load(path, &cfg, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "HEALTHD_LISTEN: \"7000\" is not an address"));
	unlink(path);
	clear_env();
}

static void test_options(void)
{
	const char *yaml =
		"checks:\n"
		"  - name: web\n"
		"    plugin: http\n"
		"    options:\n"
		"      url: http://x/\n"
		"      expect_status: [200, 204]\n"
		"      headers: {Accept: text/plain, X-Token: \"${T_TOKEN}\"}\n"
		"      tls_verify: false\n"
		"      empty:\n"
		"      nothing: []\n"
		"      ports:\n"
		"        - 1\n"
		"        - ${T_PORT:-2}\n"
		"      nested:\n"
		"        list: [a, b]\n";
	const struct config_check *c;
	struct config *cfg;

	clear_env();
	setenv("T_TOKEN", "abc", 1);
	cfg = load_ok(yaml);
	unsetenv("T_TOKEN");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->n_checks, 1);
	c = &cfg->checks[0];
	CU_ASSERT_EQUAL(c->n_options, 9);
	CU_ASSERT_STRING_EQUAL(opt(c, "url"), "http://x/");
	CU_ASSERT_STRING_EQUAL(opt(c, "expect_status"), "200,204");
	CU_ASSERT_STRING_EQUAL(opt(c, "headers.Accept"), "text/plain");
	CU_ASSERT_STRING_EQUAL(opt(c, "headers.X-Token"), "abc");
	CU_ASSERT_STRING_EQUAL(opt(c, "tls_verify"), "false");
	CU_ASSERT_STRING_EQUAL(opt(c, "empty"), "");
	CU_ASSERT_STRING_EQUAL(opt(c, "nothing"), "");
	CU_ASSERT_STRING_EQUAL(opt(c, "ports"), "1,2");
	CU_ASSERT_STRING_EQUAL(opt(c, "nested.list"), "a,b");
	CU_ASSERT_PTR_NULL(opt(c, "headers"));
	/* Positions are the keys'. */
	CU_ASSERT_EQUAL(c->options[0].line, 5);
	CU_ASSERT_EQUAL(c->options[0].col, 7);
	CU_ASSERT_STRING_EQUAL(c->options[2].key, "headers.Accept");
	CU_ASSERT_EQUAL(c->options[2].line, 7);
	CU_ASSERT_EQUAL(c->options[2].col, 17);
	config_free(cfg);
}

static void test_token_file(void)
{
	char token[64], yaml[256], want[256];
	struct config *cfg;

	clear_env();
	secret_file(token, sizeof(token), SECRET "\n");
	snprintf(yaml, sizeof(yaml),
		 "details: token\ndetails_token_file: %s\n", token);
	cfg = load_ok(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(cfg->details_token, SECRET);
	config_free(cfg);

	/* Not read unless details: token. */
	snprintf(yaml, sizeof(yaml),
		 "details: hidden\ndetails_token_file: /nonexistent/t\n");
	cfg = load_ok(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->details, DETAILS_HIDDEN);
	CU_ASSERT_PTR_NULL(cfg->details_token);
	config_free(cfg);
	unlink(token);

	/* A file holding only a newline is empty. */
	secret_file(token, sizeof(token), "\n");
	snprintf(yaml, sizeof(yaml),
		 "details: token\ndetails_token_file: %s\n", token);
	snprintf(want, sizeof(want), "2:1: details_token_file: %s is empty",
		 token);
	load_err(yaml, want);
	unlink(token);
}

/* A secret reaching a field that fails must not be quoted back. */
static void test_secrets(void)
{
	static const char *const yaml[] = {
		"checks:\n  - name: db\n    plugin: pg\n    timeout: ${SECRET_VAL}\n",
		"listen: \"${SECRET_VAL}\"\n",
		"metrics: ${SECRET_VAL}\n",
		"log: {level: \"${SECRET_VAL}\"}\n",
		"details: ${SECRET_VAL}\n",
		"workers: ${SECRET_VAL}\n",
		"base_path: ${SECRET_VAL}\n",
		"checks:\n  - name: ${SECRET_VAL}\n    plugin: pg\n",
		"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		"      dsn: ${SECRET_VAL}\n      x: ${UNSET_FOR_TEST}\n",
		"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		"      dsn: ${SECRET_VAL}\n      dsn: again\n",
		"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		"      dsn: \"${SECRET_VAL}\"\n    interval: 1x\n",
		"checks:\n  - name: db\n    plugin: pg\n    options:\n"
		"      dsn: \"${SECRET_VAL:-" "x}\"\n      bad: ${SECRET_VAL x}\n",
	};
	struct config *cfg;

	clear_env();
	setenv("SECRET_VAL", SECRET, 1);
	unsetenv("UNSET_FOR_TEST");
	for (size_t i = 0; i < sizeof(yaml) / sizeof(yaml[0]); i++) {
		const char *path = tmp_file(yaml[i]);

		CU_ASSERT_EQUAL(config_load(path, &cfg, err, sizeof(err)), -1);
		unlink(path);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
		if (strstr(err, SECRET))
			fprintf(stderr, "\nleaked: %s\n", err);
		CU_ASSERT_PTR_NULL(strstr(err, SECRET));
		CU_ASSERT_PTR_NULL(strstr(err, "s3cr3t"));
	}
	/* The message says the value came out of an expansion. */
	load_err("checks:\n  - name: db\n    plugin: pg\n    timeout: ${SECRET_VAL}\n",
		 "4:5: timeout: \"${SECRET_VAL}\" (after expansion) is not a "
		 "duration (use ms, s, m, h)");
	unsetenv("SECRET_VAL");
}

static void test_check_equal(void)
{
	const char *yaml =
		"checks:\n"
		"  - {name: a, plugin: p, options: {x: '1', y: '2'}}\n"
		"  - {name: b, plugin: p, options: {y: '2', x: '1'}}\n"
		"  - {name: c, plugin: p, options: {x: '1', y: '3'}}\n"
		"  - {name: d, plugin: p, options: {x: '1'}}\n"
		"  - {name: e, plugin: q, options: {x: '1', y: '2'}}\n"
		"  - {name: f, plugin: p, critical: false, options: {x: '1', y: '2'}}\n"
		"  - {name: g, plugin: p, interval: 9s, options: {x: '1', y: '2'}}\n"
		"  - {name: h, plugin: p, timeout: 1s, options: {x: '1', y: '2'}}\n"
		"  - {name: i, plugin: p, warn_after: 1s, options: {x: '1', y: '2'}}\n"
		"  - {name: j, plugin: p, failure_threshold: 1, options: {x: '1', y: '2'}}\n"
		"  - {name: k, plugin: p, success_threshold: 2, options: {x: '1', y: '2'}}\n"
		"  - {name: l, plugin: p, options: {x: '1', z: '2'}}\n";
	struct config *cfg;

	clear_env();
	cfg = load_ok(yaml);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->n_checks, 12);
	CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[0], &cfg->checks[0]), 1);
	/* Option order and position do not matter. */
	CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[0], &cfg->checks[1]), 1);
	CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[1], &cfg->checks[0]), 1);
	for (size_t i = 2; i < cfg->n_checks; i++) {
		CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[0], &cfg->checks[i]), 0);
		CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[i], &cfg->checks[0]), 0);
	}
	config_free(cfg);
}

/* The same value typed out or coming from ${...} behaves differently (only
 * the latter is redacted), so a reload must not keep the old instance. */
static void test_check_equal_expansions(void)
{
	const char *yaml =
		"checks:\n"
		"  - {name: a, plugin: p, options: {pw: hunter2-topsecret}}\n"
		"  - {name: b, plugin: p, options: {pw: \"${T_PW}\"}}\n"
		"  - {name: c, plugin: p, options: {pw: \"${T_PW_TOO}\"}}\n"
		"  - {name: d, plugin: p, options: {pw: \"hunter2-${T_TOP}\"}}\n";
	struct config *cfg;

	clear_env();
	setenv("T_PW", "hunter2-topsecret", 1);
	setenv("T_PW_TOO", "hunter2-topsecret", 1);
	setenv("T_TOP", "topsecret", 1);
	cfg = load_ok(yaml);
	unsetenv("T_PW");
	unsetenv("T_PW_TOO");
	unsetenv("T_TOP");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->n_checks, 4);
	CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[0], &cfg->checks[1]), 0);
	CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[1], &cfg->checks[0]), 0);
	/* Another variable with the same value hides the same bytes. */
	CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[1], &cfg->checks[2]), 1);
	/* Half typed, half expanded hides less. */
	CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[1], &cfg->checks[3]), 0);
	CU_ASSERT_EQUAL(config_check_equal(&cfg->checks[3], &cfg->checks[1]), 0);
	config_free(cfg);
}

static bool has_secret(const struct config_option *o, const char *s)
{
	for (size_t i = 0; i < o->n_secrets; i++)
		if (!strcmp(o->secrets[i], s))
			return true;
	return false;
}

/* Every ${...} of an option value is a needle of its own; short ones are
 * too common to hunt for; copies keep them. */
static void test_option_secrets(void)
{
	char file[64], yaml[1024];
	struct config *cfg;
	struct config_check copy;
	const struct config_option *o;

	clear_env();
	secret_file(file, sizeof(file), "from-a-file\n");
	setenv("T_PW", "hunter2-topsecret", 1);
	setenv("T_SHORT", "abc", 1);
	unsetenv("T_UNSET");
	snprintf(yaml, sizeof(yaml),
		 "checks:\n"
		 "  - name: db\n"
		 "    plugin: p\n"
		 "    options:\n"
		 "      dsn: postgresql://u:${T_PW}@db/app\n"
		 "      two: \"${T_UNSET:-a-default}/${file:%s}/${T_PW}\"\n"
		 "      short: ${T_SHORT}\n"
		 "      list: [x, \"${T_PW}\"]\n"
		 "      map: {k: \"${file:%s}\"}\n"
		 "      plain: hunter2-topsecret\n",
		 file, file);
	cfg = load_ok(yaml);
	unlink(file);
	unsetenv("T_PW");
	unsetenv("T_SHORT");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->checks[0].n_options, 6);
	o = &cfg->checks[0].options[0];
	CU_ASSERT_STRING_EQUAL(o->value, "postgresql://u:hunter2-topsecret@db/app");
	CU_ASSERT_EQUAL(o->n_secrets, 1);
	CU_ASSERT(has_secret(o, "hunter2-topsecret"));
	o = &cfg->checks[0].options[1];
	CU_ASSERT_EQUAL(o->n_secrets, 3);
	CU_ASSERT(has_secret(o, "a-default"));
	CU_ASSERT(has_secret(o, "from-a-file"));
	CU_ASSERT(has_secret(o, "hunter2-topsecret"));
	CU_ASSERT_EQUAL(cfg->checks[0].options[2].n_secrets, 0);
	o = &cfg->checks[0].options[3];
	CU_ASSERT_STRING_EQUAL(o->value, "x,hunter2-topsecret");
	CU_ASSERT_EQUAL(o->n_secrets, 1);
	CU_ASSERT(has_secret(o, "hunter2-topsecret"));
	o = &cfg->checks[0].options[4];
	CU_ASSERT_STRING_EQUAL(o->key, "map.k");
	CU_ASSERT_EQUAL(o->n_secrets, 1);
	CU_ASSERT(has_secret(o, "from-a-file"));
	CU_ASSERT_EQUAL(cfg->checks[0].options[5].n_secrets, 0);

	CU_ASSERT_EQUAL_FATAL(config_check_copy(&copy, &cfg->checks[0]), 0);
	CU_ASSERT_EQUAL(copy.options[1].n_secrets, 3);
	CU_ASSERT(has_secret(&copy.options[1], "from-a-file"));
	CU_ASSERT_PTR_NOT_EQUAL(copy.options[1].secrets,
				cfg->checks[0].options[1].secrets);
	CU_ASSERT_EQUAL(config_check_equal(&copy, &cfg->checks[0]), 1);
	config_check_clear(&copy);
	config_free(cfg);
}

static void test_durations(void)
{
	static const struct {
		const char *text;
		int64_t ms;
	} ok[] = {
		{"0ms", 0}, {"0s", 0}, {"1ms", 1}, {"500ms", 500},
		{"2s", 2000}, {"1.5s", 1500}, {"0.25s", 250}, {"1.5m", 90000},
		{"1m", 60000}, {"1h", 3600000}, {"0.5h", 1800000},
		{"10.0005s", 10001}, {"1.4ms", 1}, {"007s", 7000},
		{"24h", 86400000},
	};
	static const char *const bad[] = {
		"", "5", "2x", "s", "-1s", "+1s", "1.s", ".5s", "1 s", " 1s",
		"1s ", "1S", "1sec", "1e3ms", "1,5s", "1.5.5s", "1ms2",
		"99999999999999h", "1d",
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = -1;
		CU_ASSERT_EQUAL(config_parse_duration(ok[i].text, &ms), 0);
		if (ms != ok[i].ms)
			fprintf(stderr, "\n%s: %lld\n", ok[i].text, (long long)ms);
		CU_ASSERT_EQUAL(ms, ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (config_parse_duration(bad[i], &ms) == 0)
			fprintf(stderr, "\naccepted: \"%s\"\n", bad[i]);
		CU_ASSERT_EQUAL(config_parse_duration(bad[i], &ms), -1);
	}
}

/* An environment variable holding a URL or a conninfo hides only its
 * credentials, so messages can still name scheme, host, port and path;
 * ${secret:} and ${public:} say otherwise. */
static void test_secret_parts(void)
{
	struct config *cfg;
	const struct config_option *o;

	clear_env();
	setenv("T_URL", "https://svc-user:pa%73sword@payments:8443/health"
			"?region=eu&api_token=tok-12345#frag", 1);
	setenv("T_DSN", "host=db port=5432 user=app password='se cret' "
			"dbname=app", 1);
	setenv("T_PATH", "/var/lib/data", 1);
	cfg = load_ok("checks:\n"
		      "  - name: db\n"
		      "    plugin: p\n"
		      "    options:\n"
		      "      url: ${T_URL}\n"
		      "      dsn: ${T_DSN}\n"
		      "      path: ${T_PATH}\n"
		      "      forced: ${secret:T_URL}\n"
		      "      shown: ${public:T_PATH}\n");
	unsetenv("T_URL");
	unsetenv("T_DSN");
	unsetenv("T_PATH");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	o = &cfg->checks[0].options[0];
	CU_ASSERT(has_secret(o, "svc-user"));
	CU_ASSERT(has_secret(o, "pa%73sword"));
	CU_ASSERT(has_secret(o, "password")); /* as a client decodes it */
	CU_ASSERT(has_secret(o, "tok-12345"));
	CU_ASSERT(has_secret(o, "svc-user:pa%73sword"));
	for (size_t i = 0; i < o->n_secrets; i++) /* not host, path or region */
		CU_ASSERT(!strstr(o->secrets[i], "payments") &&
			  !strstr(o->secrets[i], "health") &&
			  !strstr(o->secrets[i], "eu"));
	o = &cfg->checks[0].options[1];
	CU_ASSERT(has_secret(o, "se cret"));
	CU_ASSERT_EQUAL(o->n_secrets, 1);
	/* Neither a URL nor a conninfo: it may be a token, a secret whole. */
	o = &cfg->checks[0].options[2];
	CU_ASSERT(has_secret(o, "/var/lib/data"));
	o = &cfg->checks[0].options[3];
	CU_ASSERT_EQUAL(o->n_secrets, 1);
	CU_ASSERT(has_secret(o, "https://svc-user:pa%73sword@payments:8443/health"
				"?region=eu&api_token=tok-12345#frag"));
	CU_ASSERT_EQUAL(cfg->checks[0].options[4].n_secrets, 0);
	config_free(cfg);

	/* What a client might split otherwise, or quote, or cut short. */
	setenv("T_HASH", "postgres://app:s3cr#t@db/x", 1);
	setenv("T_SHORT", "redis://ab:cd@cache:6379/0?key=ab%00cdef", 1);
	setenv("T_QUOTED", "host=db password='p\\'w0rd'", 1);
	cfg = load_ok("checks:\n"
		      "  - name: db\n"
		      "    plugin: p\n"
		      "    options:\n"
		      "      hash: ${T_HASH}\n"
		      "      short: ${T_SHORT}\n"
		      "      quoted: ${T_QUOTED}\n");
	unsetenv("T_HASH");
	unsetenv("T_SHORT");
	unsetenv("T_QUOTED");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	o = &cfg->checks[0].options[0];
	CU_ASSERT_EQUAL(o->n_secrets, 1);
	CU_ASSERT(has_secret(o, "postgres://app:s3cr#t@db/x"));
	o = &cfg->checks[0].options[1];
	CU_ASSERT(has_secret(o, "ab:cd")); /* user and password: too short alone */
	CU_ASSERT(has_secret(o, "ab%00cdef")); /* %00 is not decoded */
	CU_ASSERT_EQUAL(o->n_secrets, 2);
	o = &cfg->checks[0].options[2];
	CU_ASSERT(has_secret(o, "p\\'w0rd"));
	CU_ASSERT(has_secret(o, "p'w0rd"));
	config_free(cfg);
}

/* The value parsers plugins get too: one syntax for the core and them. */
static void test_value_parsers(void)
{
	static const char *const yes[] = {"true", "True", "YES", "on", "1"};
	static const char *const no[] = {"false", "FALSE", "no", "Off", "0"};
	static const char *const not_bool[] = {"", "y", "n", "2", "truee", " on"};
	bool b;
	int64_t bytes;
	long long n;

	for (size_t i = 0; i < 5; i++) {
		b = false;
		CU_ASSERT_EQUAL(config_parse_bool(yes[i], &b), 0);
		CU_ASSERT_TRUE(b);
		CU_ASSERT_EQUAL(config_parse_bool(no[i], &b), 0);
		CU_ASSERT_FALSE(b);
	}
	for (size_t i = 0; i < sizeof(not_bool) / sizeof(*not_bool); i++)
		CU_ASSERT_EQUAL(config_parse_bool(not_bool[i], &b), -1);

	CU_ASSERT_EQUAL(config_parse_size("4096", &bytes), 0);
	CU_ASSERT_EQUAL(bytes, 4096);
	CU_ASSERT_EQUAL(config_parse_size("24MiB", &bytes), 0);
	CU_ASSERT_EQUAL(bytes, 24 * 1024 * 1024);
	CU_ASSERT_EQUAL(config_parse_size("0", &bytes), -1);
	CU_ASSERT_EQUAL(config_parse_size("-1KiB", &bytes), -1);
	CU_ASSERT_EQUAL(config_parse_size("1 MiB", &bytes), -1);
	CU_ASSERT_EQUAL(config_parse_size("9999999999GiB", &bytes), -1);

	CU_ASSERT_EQUAL(config_parse_int("-42", &n), 0);
	CU_ASSERT_EQUAL(n, -42);
	CU_ASSERT_EQUAL(config_parse_int("+7", &n), -1);
	CU_ASSERT_EQUAL(config_parse_int("7x", &n), -1);
	CU_ASSERT_EQUAL(config_parse_int("", &n), -1);
	CU_ASSERT_EQUAL(config_parse_int("99999999999999999999", &n), -1);

	/* The config's own booleans take the same forms. */
	struct config *cfg = load_ok("metrics: yes\nservice: payments\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_TRUE(cfg->metrics);
	CU_ASSERT_STRING_EQUAL(cfg->service, "payments");
	config_free(cfg);
}

/* isolation and isolation_max_rss: defaults, overrides, errors, equality. */
static void test_isolation(void)
{
	struct config *cfg;

	clear_env();
	cfg = load_ok("defaults:\n  isolation: inline\n  isolation_max_rss: 64MiB\n"
		      "checks:\n"
		      "  - {name: a, plugin: p}\n"
		      "  - {name: b, plugin: p, isolation: process, isolation_max_rss: 1GiB}\n"
		      "  - {name: c, plugin: p, isolation_max_rss: 4096}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->checks[0].isolation, ISOLATION_INLINE);
	CU_ASSERT_EQUAL(cfg->checks[0].max_rss, 64LL << 20);
	CU_ASSERT_EQUAL(cfg->checks[1].isolation, ISOLATION_PROCESS);
	CU_ASSERT_EQUAL(cfg->checks[1].max_rss, 1LL << 30);
	CU_ASSERT_EQUAL(cfg->checks[2].max_rss, 4096);
	/* Moving a check between modes replaces its instance. */
	CU_ASSERT_FALSE(config_check_equal(&cfg->checks[0], &cfg->checks[1]));
	config_free(cfg);

	cfg = load_ok("checks:\n  - {name: a, plugin: p}\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->checks[0].isolation, ISOLATION_PROCESS);
	CU_ASSERT_EQUAL(cfg->checks[0].max_rss, CONFIG_MAX_RSS_DEFAULT);
	config_free(cfg);

	load_err("checks:\n  - {name: a, plugin: p, isolation: thread}\n",
		 "2:26: isolation: \"thread\" is not valid (expected one of: process, inline)");
	load_err("defaults:\n  isolation_max_rss: 12XB\n",
		 "2:3: defaults.isolation_max_rss: \"12XB\" is not a size (use KiB, MiB or GiB, e.g. 256MiB)");
	load_err("defaults:\n  isolation_max_rss: 0\n",
		 "2:3: defaults.isolation_max_rss: \"0\" is not a size (use KiB, MiB or GiB, e.g. 256MiB)");
}

/* A validation goes on past errors: each is listed with its place, the
 * checks without errors are loaded, a YAML syntax error ends it. */
static void test_load_all(void)
{
	struct config_problems problems = {0};
	struct config *cfg = NULL;
	const char *path = tmp_file(
		"workers: 0\n"
		"lsten: 1\n"
		"checks:\n"
		"  - {name: a, plugin: p, timeout: 2x}\n"
		"  - {name: b, plugin: p}\n"
		"  - {name: a, plugin: p}\n"
		"  - {name: c, plugin: p, history: -1}\n");

	CU_ASSERT_EQUAL(config_load_all(path, &cfg, &problems), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->n_checks, 1);
	CU_ASSERT_STRING_EQUAL(cfg->checks[0].name, "b");
	config_free(cfg);
	config_problems_sort(&problems);
	CU_ASSERT_EQUAL_FATAL(problems.n, 5);
	CU_ASSERT_EQUAL(problems.list[0].line, 1);
	CU_ASSERT_STRING_EQUAL(problems.list[0].message,
			       "workers: \"0\" is out of range (expected 1 to 1024)");
	CU_ASSERT_EQUAL(problems.list[1].line, 2);
	CU_ASSERT_EQUAL(problems.list[2].line, 4);
	CU_ASSERT_EQUAL(problems.list[2].col, 26); /* the key */
	CU_ASSERT_STRING_EQUAL(problems.list[3].message,
			       "check \"a\" is defined twice (first at line 4)");
	CU_ASSERT_EQUAL(problems.list[4].line, 7);
	CU_ASSERT(strncmp(problems.list[4].text, path, strlen(path)) == 0);
	config_problems_free(&problems);
	unlink(path);

	path = tmp_file("checks: [\n");
	CU_ASSERT_EQUAL(config_load_all(path, &cfg, &problems), -1);
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_EQUAL(problems.n, 1);
	config_problems_free(&problems);
	unlink(path);
}

static void test_depends_on(void)
{
	struct config *cfg = load_ok(
		"checks:\n"
		"  - {name: api, plugin: p, depends_on: [db, cache]}\n"
		"  - {name: db, plugin: p, depends_on: [dns]}\n"
		"  - {name: cache, plugin: p, depends_on: [dns]}\n"
		"  - {name: dns, plugin: p, depends_on: []}\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->checks[0].n_depends_on, 2);
	CU_ASSERT_STRING_EQUAL(cfg->checks[0].depends_on[1].name, "cache");
	CU_ASSERT_EQUAL(cfg->checks[0].depends_on[1].line, 2);
	CU_ASSERT_EQUAL(cfg->checks[0].depends_on[1].col, 45);
	CU_ASSERT_EQUAL(cfg->checks[3].n_depends_on, 0);
	CU_ASSERT_EQUAL(cfg->dependency_depth, 2); /* api -> db -> dns */

	/* A copy compares equal; another list does not. */
	struct config_check copy;
	CU_ASSERT_EQUAL_FATAL(config_check_copy(&copy, &cfg->checks[0]), 0);
	CU_ASSERT(config_check_equal(&copy, &cfg->checks[0]));
	CU_ASSERT(!config_check_equal(&copy, &cfg->checks[1]));
	free(copy.depends_on[1].name);
	copy.depends_on[1].name = strdup("dns");
	CU_ASSERT(!config_check_equal(&copy, &cfg->checks[0]));
	config_check_clear(&copy);
	config_free(cfg);

	load_err("checks:\n"
		 "  - {name: a, plugin: p, depends_on: [b]}\n"
		 "  - {name: b, plugin: p, depends_on: [c]}\n"
		 "  - {name: c, plugin: p, depends_on: [a]}\n",
		 "4:39: check \"c\": depends_on: a cycle: a -> b -> c -> a");
	load_err("checks:\n"
		 "  - {name: a, plugin: p, depends_on: [nope]}\n",
		 "2:39: check \"a\": depends_on: no check is named \"nope\"");
	load_err("checks:\n"
		 "  - {name: a, plugin: p, depends_on: [a]}\n",
		 "2:39: depends_on: \"a\" is the check itself: a check cannot depend on itself");
	load_err("checks:\n"
		 "  - {name: a, plugin: p, depends_on: [b, b]}\n"
		 "  - {name: b, plugin: p}\n",
		 "2:42: depends_on: \"b\" is listed twice");
	load_err("checks:\n"
		 "  - {name: a, plugin: p, depends_on: b}\n",
		 "2:26: depends_on: expected a list of check names, found a single value");
	load_err("checks:\n"
		 "  - {name: a, plugin: p, depends_on: [B!]}\n",
		 "2:39: depends_on: \"B!\" is not a valid check name (expected [a-z0-9][a-z0-9_.-]*)");

	/* Chains are bounded: c0 needs c1, which needs c2, ... */
	int last = CONFIG_DEPENDS_DEPTH_MAX + 1;
	char *chain = malloc(64 * ((size_t)last + 1) + 16);
	size_t len = (size_t)sprintf(chain, "checks:\n");
	for (int i = 0; i < last; i++)
		len += (size_t)sprintf(chain + len,
				       "  - {name: c%d, plugin: p, depends_on: [c%d]}\n",
				       i, i + 1);
	sprintf(chain + len, "  - {name: c%d, plugin: p}\n", last);
	cfg = NULL;
	const char *chain_path = tmp_file(chain);
	CU_ASSERT_EQUAL(config_load(chain_path, &cfg, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "depends_on: a chain of more than 256 checks"));
	unlink(chain_path);
	free(chain);

	/* A validation reports each cycle and unknown name once. */
	struct config_problems problems = {0};
	const char *path = tmp_file(
		"checks:\n"
		"  - {name: a, plugin: p, depends_on: [b, x]}\n"
		"  - {name: b, plugin: p, depends_on: [a]}\n"
		"  - {name: c, plugin: p, depends_on: [c]}\n"
		"  - {name: d, plugin: p, depends_on: [c]}\n");
	cfg = NULL;
	CU_ASSERT_EQUAL(config_load_all(path, &cfg, &problems), 0);
	config_free(cfg);
	config_problems_sort(&problems);
	CU_ASSERT_EQUAL_FATAL(problems.n, 3);
	CU_ASSERT_STRING_EQUAL(problems.list[0].message,
			       "check \"a\": depends_on: no check is named \"x\"");
	CU_ASSERT_STRING_EQUAL(problems.list[1].message,
			       "check \"b\": depends_on: a cycle: a -> b -> a");
	CU_ASSERT_EQUAL(problems.list[2].line, 4);
	config_problems_free(&problems);
	unlink(path);
}

static CU_TestInfo config_tests[] = {
	{"depends_on", test_depends_on},
	{"every error, in a validation", test_load_all},
	{"full config", test_full},
	{"defaults", test_defaults},
	{"listen and base_path", test_listen_and_base_path},
	{"errors name file:line:col", test_errors},
	{"yaml syntax errors", test_yaml_syntax},
	{"expansion", test_expand},
	{"environment overrides", test_env_overrides},
	{"options flattening", test_options},
	{"details token file", test_token_file},
	{"secrets stay out of messages", test_secrets},
	{"check equality", test_check_equal},
	{"check equality sees expansions", test_check_equal_expansions},
	{"each expansion of an option is a secret", test_option_secrets},
	{"durations", test_durations},
	{"URL and conninfo credentials are the secrets", test_secret_parts},
	{"booleans, sizes and integers", test_value_parsers},
	{"isolation", test_isolation},
	CU_TEST_INFO_NULL,
};

void unit_register(void)
{
	UNIT_SUITE("config", config_tests);
}
