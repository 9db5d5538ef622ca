/* fuzz_http.c — method, URL (query included) and headers -> the answer
 * (http_answer(), what the libmicrohttpd handler sends).  Asserts: a
 * documented status, JSON bodies that parse, valid /metrics, no CR or LF
 * in a header value, HTML only when asked for, and a check's answer only
 * for that check's exact name. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "snapshot.h"

#define BASE "/api/v1/health"

static const char *const names[] = {"a", "cache", "db", "db.replica"};
static struct http *servers[3]; /* details: public, hidden, token */

static bool alive(void *ctx)
{
	(void)ctx;
	return true;
}

static int history(void *ctx, const char *name, struct history *out)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) != 0)
			continue;
		history_init(out, 4);
		history_add(out, 1000, STATUS_PASS, 1.5, "ok", STATUS_PENDING,
			    STATUS_PASS);
		history_add(out, 2000, STATUS_FAIL, 2.5, "<b>\"down\"</b>\x01",
			    STATUS_PASS, STATUS_FAIL);
		return 0;
	}
	return -ENOENT;
}

static struct http *server(const char *details)
{
	char yaml[512], err[1024];
	struct config *cfg;
	struct health_view v = {.started = true, .generation = 1,
				.last_reload_ok = true};
	struct http_settings hs = {.alive = alive, .history = history};
	struct http *h;

	snprintf(yaml, sizeof(yaml), "base_path: " BASE "\ndetails: %s\n%s",
		 details,
		 strcmp(details, "token") ? ""
					   : "details_token_file: /fuzz/token\n");
	if (config_load_text("fuzz.yaml", yaml, strlen(yaml), &cfg, err,
			     sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		abort();
	}
	v.n_checks = sizeof(names) / sizeof(names[0]);
	v.checks = calloc(v.n_checks, sizeof(*v.checks));
	for (size_t i = 0; i < v.n_checks; i++) {
		struct check_view *c = &v.checks[i];

		c->name = strdup(names[i]);
		c->plugin = strdup("testplug");
		c->critical = i % 2 == 0;
		c->status = c->last_result = i == 1 ? STATUS_FAIL : STATUS_PASS;
		c->message = strdup("<script>\"x\"</script> \xc3\xa9");
		c->details = strdup("{\"n\":1,\"s\":\"<\\u0000>\"}");
		c->isolation = "process";
		c->last_run = 1000;
	}
	h = http_new(&hs, snapshot_build(&v, cfg), err, sizeof(err));
	config_free(cfg);
	if (!h)
		abort();
	return h;
}

/* The token file: a memfd, as in fuzz_config.c. */
static int fake_open(const char *path)
{
	if (!strcmp(path, "/fuzz/token")) {
		int fd = memfd_create("token", MFD_CLOEXEC);

		if (fd >= 0 && write(fd, "tok3n\n", 6) == 6 && lseek(fd, 0, SEEK_SET) == 0)
			return fd;
	}
	errno = ENOENT;
	return -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_configure(LOG_ERROR, LOG_JSON);
	config_set_open(fake_open);
	servers[0] = server("public");
	servers[1] = server("hidden");
	servers[2] = server("token");
	return 0;
}

/* The request, parsed from the input as libmicrohttpd would hand it over. */
#define FIELDS_MAX 64
struct request {
	char *headers[FIELDS_MAX][2], *args[FIELDS_MAX][2];
	size_t n_headers, n_args;
};

static const char *find(char *(*list)[2], size_t n, const char *name,
			bool nocase)
{
	for (size_t i = 0; i < n; i++)
		if (nocase ? !strcasecmp(list[i][0], name) : !strcmp(list[i][0], name))
			return list[i][1];
	return NULL;
}

static const char *header(void *ctx, const char *name)
{
	struct request *r = ctx;

	return find(r->headers, r->n_headers, name, true);
}

static const char *query(void *ctx, const char *name)
{
	struct request *r = ctx;

	return find(r->args, r->n_args, name, false);
}

static void query_each(void *ctx, const char *name,
		       bool (*fn)(void *arg, const char *value), void *arg)
{
	struct request *r = ctx;

	for (size_t i = 0; i < r->n_args; i++)
		if (!strcmp(r->args[i][0], name) && !fn(arg, r->args[i][1]))
			return;
}

/* "k=v&k2=v2": '+' is a space, then %HH, as libmicrohttpd does. */
static void parse_query(struct request *r, char *q)
{
	for (char *save = NULL, *kv = strtok_r(q, "&", &save);
	     kv && r->n_args < FIELDS_MAX; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '=');

		if (eq)
			*eq++ = '\0';
		for (char *p = kv; *p; p++)
			if (*p == '+')
				*p = ' ';
		for (char *p = eq; p && *p; p++)
			if (*p == '+')
				*p = ' ';
		http_unescape(kv);
		if (eq)
			http_unescape(eq);
		r->args[r->n_args][0] = kv;
		r->args[r->n_args++][1] = eq;
	}
}

static bool value_ok(const char *v)
{
	return v && !strpbrk(v, "\r\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct http *h = servers[fuzz_u8(&in) % 3];
	char *method = fuzz_str(&in), *url = fuzz_str(&in), *path, *q;
	char *lines[FIELDS_MAX];
	struct request r = {.n_headers = 0};
	struct http_request rq = {.method = method, .header = header,
				  .query = query, .query_each = query_each,
				  .ctx = &r};
	struct http_answer a;
	size_t n_lines = 0;
	bool html_asked;

	rq.header_bytes = strlen(method) + strlen(url) + 12;
	while (in.n && n_lines < FIELDS_MAX) {
		char *line = lines[n_lines++] = fuzz_str(&in), *colon;

		rq.header_bytes += strlen(line) + 2;
		if (!(colon = strchr(line, ':')))
			continue;
		*colon++ = '\0';
		colon += strspn(colon, " \t");
		r.headers[r.n_headers][0] = line;
		r.headers[r.n_headers++][1] = colon;
	}
	path = strdup(url);
	if ((q = strchr(path, '?'))) {
		*q++ = '\0';
		parse_query(&r, q);
	}
	http_unescape(path);
	rq.url = path;

	FUZZ_ASSERT(http_answer(h, &rq, &a) == 0);
	FUZZ_ASSERT(a.code == 200 || a.code == 400 || a.code == 404 ||
		    a.code == 405 || a.code == 431 || a.code == 503);
	FUZZ_ASSERT(a.text && a.len == strlen(a.text));
	FUZZ_ASSERT(value_ok(a.content_type) && value_ok(a.request_id) &&
		    value_ok(a.csp));
	FUZZ_ASSERT(a.request_id[0]);
	for (const char *p = a.request_id; *p; p++)
		FUZZ_ASSERT(*p > ' ' && *p <= '~');
	if (a.code == 405)
		FUZZ_ASSERT(strcmp(method, "GET") && strcmp(method, "HEAD"));
	if (!strcmp(a.content_type, "application/json") ||
	    !strcmp(a.content_type, "application/health+json"))
		fuzz_assert_json(a.text, a.len);
	else if (!strncmp(a.content_type, "text/plain", 10))
		fuzz_assert_metrics(a.text, a.len);
	else
		FUZZ_ASSERT(!strncmp(a.content_type, "text/html", 9));
	/* HTML only to a client that lists it, and never past ?format=json. */
	html_asked = header(&r, "Accept") &&
		     strcasestr(header(&r, "Accept"), "text/html") &&
		     !(query(&r, "format") && !strcmp(query(&r, "format"), "json"));
	if (!strncmp(a.content_type, "text/html", 9)) {
		FUZZ_ASSERT(html_asked && a.csp[0] && a.vary_accept);
		FUZZ_ASSERT(!strstr(a.text, "<script>"));
	}
	/* A check answers only for its own name: never "a" for "a%00x". */
	if (!strncmp(path, BASE "/checks/", sizeof(BASE "/checks/") - 1) &&
	    (a.code == 200 || a.code == 503)) {
		const char *name = path + sizeof(BASE "/checks/") - 1;
		size_t len = strcspn(name, "/");
		bool known = false;

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			known |= strlen(names[i]) == len &&
				 !strncmp(names[i], name, len);
		FUZZ_ASSERT(known && (!name[len] || !strcmp(name + len, "/history")));
	}
	http_answer_clear(&a);
	for (size_t i = 0; i < n_lines; i++)
		free(lines[i]);
	free(path);
	free(method);
	free(url);
	return 0;
}
