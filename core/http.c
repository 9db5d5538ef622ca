/* http.c — routing probe requests to pre-rendered bodies (libmicrohttpd). */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "clock.h"
#include "cpus.h"
#include "http.h"
#include "log.h"
#include "page.h"
#include "render.h"

#define EXCLUDE_MAX 64
/* Per-connection memory: the request line and headers must fit.  Probes
 * send a few hundred bytes; HTTP_HEADERS_MAX (8 KiB) leaves room for a
 * long bearer token and proxy headers.  libmicrohttpd clears the pool per
 * request, so it is kept small (bench/README.md), but twice that: a request
 * over our limit still fits and gets our 431, with our headers, rather than
 * libmicrohttpd's own page (which a request past the pool still gets). */
#define HTTP_CONNECTION_MEMORY (3 * HTTP_HEADERS_MAX)
/* How long a stopping server waits for requests in flight. */
#define HTTP_FINISH_MS 1000

struct http {
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock; /* guards `current` */
	struct snapshot *current;
	struct body not_found, not_allowed, live[2];
	bool (*alive)(void *ctx);
	int (*history)(void *ctx, const char *name, struct history *out);
	void *ctx;
	uint32_t id_prefix;
	uint64_t id_counter; /* atomic */
};

static struct snapshot *http_acquire(struct http *h)
{
	pthread_mutex_lock(&h->lock);
	struct snapshot *s = snapshot_ref(h->current);
	pthread_mutex_unlock(&h->lock);
	return s;
}

void http_publish(struct http *h, struct snapshot *s)
{
	pthread_mutex_lock(&h->lock);
	struct snapshot *old = h->current;
	h->current = s;
	pthread_mutex_unlock(&h->lock);
	snapshot_unref(old);
}

static void release_snapshot(void *cls)
{
	snapshot_unref(cls);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Who owns a response's bytes. */
enum owner {
	OWNER_HTTP,     /* struct http, for its whole life */
	OWNER_SNAPSHOT, /* the snapshot: the response holds a reference */
	OWNER_RESPONSE, /* malloc'd for this request */
};

static void answer_body(struct http_answer *a, struct snapshot *snap,
			const char *text, size_t len, int code,
			const char *content_type)
{
	a->owner = snap ? OWNER_SNAPSHOT : OWNER_HTTP;
	a->snap = snap ? snapshot_ref(snap) : NULL;
	a->text = text;
	a->len = len;
	a->code = code;
	a->content_type = content_type;
}

static void answer_stored(struct http_answer *a, struct snapshot *snap,
			  const struct body *b, const char *content_type)
{
	answer_body(a, snap, b->text, b->len, b->code, content_type);
}

/* `code` is read only here, after the renderer that sets it has run.
 * Returns -1 when the renderer ran out of memory. */
static int answer_text(struct http_answer *a, char *text, const int *code,
		       const char *content_type)
{
	if (!text)
		return -1;
	a->owner = OWNER_RESPONSE;
	a->text = text;
	a->len = strlen(text);
	a->code = *code;
	a->content_type = content_type;
	return 0;
}

/* Constant time in the token's length, so a probe of the token learns
 * nothing from timing. */
static bool token_matches(const char *given, const char *want)
{
	size_t gl = strlen(given), wl = strlen(want);
	unsigned char diff = gl != wl;

	for (size_t i = 0; i < wl; i++)
		diff |= (unsigned char)want[i] ^ (unsigned char)(i < gl ? given[i] : 0);
	return diff == 0;
}

static enum snapshot_detail detail_for(const struct snapshot *s,
				       const struct http_request *rq)
{
	const char *auth;

	switch (s->details) {
	case DETAILS_PUBLIC:
		return SNAPSHOT_PUBLIC;
	case DETAILS_HIDDEN:
		return SNAPSHOT_REDACTED;
	default:
		auth = rq->header(rq->ctx, MHD_HTTP_HEADER_AUTHORIZATION);
		if (auth && s->token && strncasecmp(auth, "Bearer ", 7) == 0 &&
		    token_matches(auth + 7, s->token))
			return SNAPSHOT_PUBLIC;
		return SNAPSHOT_REDACTED;
	}
}

struct excludes {
	const char *names[EXCLUDE_MAX];
	size_t n;
	bool too_many;
};

static bool collect_exclude(void *arg, const char *value)
{
	struct excludes *ex = arg;

	if (!value)
		return true;
	if (ex->n == EXCLUDE_MAX) {
		ex->too_many = true;
		return false;
	}
	ex->names[ex->n++] = value;
	return true;
}

enum answer { ANSWER_JSON, ANSWER_HEALTH_JSON, ANSWER_HTML };

/* The first of two places in a string, either possibly NULL. */
static const char *first_of(const char *a, const char *b)
{
	return !a || (b && b < a) ? b : a;
}

/* What the comprehensive endpoint answers: ?format=json asks for JSON (the
 * status page links it); then the IETF format when asked for by name, the
 * status page when text/html comes before any JSON type (a browser), and
 * JSON otherwise: the kubelet, curl and Prometheus send star-slash-star or
 * nothing.  Quality values are not weighed; a type refused with q=0 is not
 * taken. */
static enum answer negotiate(const struct http_request *rq)
{
	const char *accept = rq->header(rq->ctx, MHD_HTTP_HEADER_ACCEPT);
	const char *format = rq->query(rq->ctx, "format");
	const char *html, *json, *end;

	if (format && !strcmp(format, "json"))
		return ANSWER_JSON;
	if (!accept)
		return ANSWER_JSON;
	if (strcasestr(accept, "application/health+json"))
		return ANSWER_HEALTH_JSON;
	html = strcasestr(accept, "text/html");
	json = first_of(strcasestr(accept, "application/json"),
			strcasestr(accept, "+json"));
	if (!html || (json && json < html))
		return ANSWER_JSON;
	end = html + strcspn(html, ",");
	for (const char *p = html; p < end; p++)
		if (strncmp(p, "q=0", 3) == 0 &&
		    strspn(p + 3, ".0") == strcspn(p + 3, ", \t"))
			return ANSWER_JSON;
	return ANSWER_HTML;
}

static const char json_type[] = "application/json";
static const char html_type[] = "text/html; charset=utf-8";
static const char health_json_type[] = "application/health+json";
static const char metrics_type[] = "text/plain; version=0.0.4; charset=utf-8";

static int answer_error(struct http_answer *a, int code, const char *what)
{
	return answer_text(a, render_error(code, what), &code, json_type);
}

/* The status page is rendered per request: it counts ages from now, and
 * its Content-Security-Policy allows one <style> by a nonce of its own. */
static int answer_page(struct http *h, struct http_answer *a,
		       struct snapshot *s, bool redact)
{
	unsigned char rnd[16];
	char nonce[2 * sizeof(rnd) + 1];
	int code;
	char *text;

	/* Never block an HTTP thread on the entropy pool (early boot): the
	 * nonce is a second line of defence behind escaping, so the clock
	 * and a counter do then. */
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		uint64_t x = (uint64_t)clock_mono_ms() ^ h->id_prefix,
			 y = __atomic_add_fetch(&h->id_counter, 1, __ATOMIC_RELAXED);
		memcpy(rnd, &x, sizeof(x));
		memcpy(rnd + sizeof(x), &y, sizeof(y));
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
	snprintf(a->csp, sizeof(a->csp),
		 "default-src 'none'; style-src 'nonce-%s'; base-uri 'none'; "
		 "form-action 'none'; frame-ancestors 'none'",
		 nonce);
	a->vary_accept = true;
	text = render_page(&s->view, redact, clock_wall_ms(), s->base_path,
			   nonce, &code);
	return answer_text(a, text, &code, html_type);
}

/* A check's name as a path holds no control character: libmicrohttpd
 * decodes the path, and "a%00x" must not answer for "a" (the unescape
 * callback keeps such escapes; this is the second line). */
static bool name_ok(const char *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7F)
			return false;
	return len > 0;
}

static int answer_check(struct http_answer *a, struct snapshot *s,
			const struct http_request *rq, const char *name)
{
	const struct body *b = name_ok(name, strlen(name))
				       ? snapshot_check(s, name, detail_for(s, rq))
				       : NULL;

	if (!b)
		return answer_error(a, 404, "no such check");
	answer_stored(a, s, b, json_type);
	return 0;
}

/* NAME/history: copied from the check under the scheduler's lock, and
 * rendered per request (results arrive between snapshots). */
static int answer_history(struct http *h, struct http_answer *a,
			  struct snapshot *s, const struct http_request *rq,
			  const char *path)
{
	const char *slash = strchr(path, '/');
	size_t len = (size_t)(slash - path);
	char name[512];
	struct history hist;
	int code;
	char *text;

	if (strcmp(slash, "/history") != 0 || len >= sizeof(name) ||
	    !name_ok(path, len))
		return answer_error(a, 404, "not found");
	memcpy(name, path, len);
	name[len] = '\0';
	if (h->history(h->ctx, name, &hist) < 0)
		return answer_error(a, 404, "no such check");
	text = render_history(name, &hist, detail_for(s, rq) == SNAPSHOT_REDACTED,
			      &code);
	history_clear(&hist);
	return answer_text(a, text, &code, json_type);
}

/* Answer a path under base_path: "" or "/", "/startup", "/live", "/ready",
 * "/checks/NAME", "/checks/NAME/history".  Returns 1 for an unknown
 * path, else as http_answer(). */
static int route(struct http *h, struct http_answer *a, struct snapshot *s,
		 const struct http_request *rq, const char *rest,
		 bool get_or_head)
{
	struct excludes ex = {.n = 0};
	struct render_exclude rex;
	const struct body *b;
	int code;

	enum { ROOT, STARTUP, LIVE, READY, CHECK, HISTORY } what;
	if (!*rest || strcmp(rest, "/") == 0)
		what = ROOT;
	else if (strcmp(rest, "/startup") == 0)
		what = STARTUP;
	else if (strcmp(rest, "/live") == 0)
		what = LIVE;
	else if (strcmp(rest, "/ready") == 0)
		what = READY;
	else if (strncmp(rest, "/checks/", 8) == 0 && rest[8] &&
		 rest[8] != '/') /* a name has no '/': NAME or NAME/history */
		what = strchr(rest + 8, '/') ? HISTORY : CHECK;
	else
		return 1;
	if (!get_or_head) {
		answer_stored(a, NULL, &h->not_allowed, json_type);
		return 0;
	}

	if (what == ROOT || what == READY) {
		rq->query_each(rq->ctx, "exclude", collect_exclude, &ex);
		rex.names = ex.names;
		rex.n = ex.n;
		if (ex.too_many)
			return answer_error(a, 400, "too many exclude parameters");
	}
	switch (what) {
	case STARTUP:
		answer_stored(a, s, &s->startup, json_type);
		break;
	case LIVE:
		answer_stored(a, NULL, &h->live[h->alive(h->ctx)], json_type);
		break;
	case READY:
		b = ex.n ? snapshot_excluded(s, true, &rex, SNAPSHOT_PUBLIC,
					     RENDER_NATIVE)
			 : &s->ready;
		if (b)
			answer_stored(a, s, b, json_type);
		else
			return answer_text(a, render_ready(&s->view, &rex, &code),
					   &code, json_type);
		break;
	case ROOT: {
		enum snapshot_detail d = detail_for(s, rq);
		enum answer an = negotiate(rq);
		enum render_format f = an == ANSWER_HEALTH_JSON ? RENDER_HEALTH_JSON
								: RENDER_NATIVE;
		const char *type = f == RENDER_HEALTH_JSON ? health_json_type
							   : json_type;

		if (an == ANSWER_HTML)
			return answer_page(h, a, s, d == SNAPSHOT_REDACTED);
		a->vary_accept = true;
		b = ex.n ? snapshot_excluded(s, false, &rex, d, f)
			 : snapshot_health(s, d, f);
		if (b)
			answer_stored(a, s, b, type);
		else
			return answer_text(a, render_health(&s->view, &rex,
							    d == SNAPSHOT_REDACTED,
							    f, &code),
					   &code, type);
		break;
	}
	case CHECK:
		return answer_check(a, s, rq, rest + 8);
	case HISTORY:
		return answer_history(h, a, s, rq, rest + 8);
	}
	return 0;
}

/* The request's own X-Request-ID when it is short and printable (so it
 * cannot inject headers or bloat responses), else a generated one. */
static void request_id(struct http *h, const struct http_request *rq,
		       struct http_answer *a)
{
	const char *id = rq->header(rq->ctx, "X-Request-ID");
	size_t n = 0;

	while (id && id[n] && n <= HTTP_REQUEST_ID_MAX && id[n] > ' ' &&
	       id[n] <= '~')
		n++;
	if (id && n > 0 && n <= HTTP_REQUEST_ID_MAX && !id[n]) {
		memcpy(a->request_id, id, n + 1);
		return;
	}
	uint64_t c = __atomic_add_fetch(&h->id_counter, 1, __ATOMIC_RELAXED);
	snprintf(a->request_id, sizeof(a->request_id), "%08x-%012llx",
		 h->id_prefix, (unsigned long long)c);
}

int http_answer(struct http *h, const struct http_request *rq,
		struct http_answer *a)
{
	struct snapshot *s;
	bool get_or_head = strcmp(rq->method, MHD_HTTP_METHOD_GET) == 0 ||
			   strcmp(rq->method, MHD_HTTP_METHOD_HEAD) == 0;
	int rc = 1;

	memset(a, 0, sizeof(*a));
	request_id(h, rq, a);
	/* The pool holds more than this, so that a request past it gets our
	 * answer with our headers rather than libmicrohttpd's page. */
	if (rq->header_bytes > HTTP_HEADERS_MAX)
		return answer_error(a, 431, "request headers too large");
	s = http_acquire(h);
	if (strcmp(rq->url, "/metrics") == 0 && s->metrics_on) {
		if (get_or_head)
			answer_stored(a, s, snapshot_metrics(s), metrics_type);
		else
			answer_stored(a, NULL, &h->not_allowed, json_type);
		rc = 0;
	} else if (strncmp(rq->url, s->base_path, s->base_len) == 0 &&
		   (rq->url[s->base_len] == '\0' || rq->url[s->base_len] == '/')) {
		rc = route(h, a, s, rq, rq->url + s->base_len, get_or_head);
	}
	snapshot_unref(s);
	if (rc == 1) {
		answer_stored(a, NULL, &h->not_found, json_type);
		rc = 0;
	}
	return rc;
}

void http_answer_clear(struct http_answer *a)
{
	if (a->owner == OWNER_SNAPSHOT)
		snapshot_unref(a->snap);
	else if (a->owner == OWNER_RESPONSE)
		free((void *)a->text);
	a->snap = NULL;
	a->text = NULL;
	a->owner = OWNER_HTTP;
}

/* --- libmicrohttpd ------------------------------------------------------- */

static const char *mhd_header(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

static const char *mhd_query(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
}

struct query_each {
	const char *name;
	bool (*fn)(void *arg, const char *value);
	void *arg;
};

static enum MHD_Result query_one(void *cls, enum MHD_ValueKind kind,
				 const char *key, const char *value)
{
	struct query_each *q = cls;

	(void)kind;
	if (strcmp(key, q->name) != 0)
		return MHD_YES;
	return q->fn(q->arg, value) ? MHD_YES : MHD_NO;
}

static void mhd_query_each(void *ctx, const char *name,
			   bool (*fn)(void *arg, const char *value), void *arg)
{
	struct query_each q = {.name = name, .fn = fn, .arg = arg};

	MHD_get_connection_values(ctx, MHD_GET_ARGUMENT_KIND, query_one, &q);
}

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind,
				    const char *key, const char *value)
{
	(void)kind;
	/* "Key: value\r\n" */
	*(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

size_t http_unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		int hi, lo;

		if (r[0] == '%' && (hi = hexval(r[1])) >= 0 &&
		    (lo = hexval(r[2])) >= 0) {
			unsigned char ch = (unsigned char)(hi << 4 | lo);

			if (ch >= 0x20 && ch != 0x7F) {
				*w++ = (char)ch;
				r += 2;
				continue;
			}
		}
		*w++ = *r;
	}
	*w = '\0';
	return (size_t)(w - s);
}

static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
	(void)cls;
	(void)conn;
	return http_unescape(s);
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn,
				   const char *url, const char *method,
				   const char *version, const char *upload_data,
				   size_t *upload_data_size, void **con_cls)
{
	static int seen;
	struct http *h = cls;
	struct http_request rq = {
		.method = method, .url = url, .header = mhd_header,
		.query = mhd_query, .query_each = mhd_query_each, .ctx = conn,
		.header_bytes = strlen(method) + strlen(url) + strlen(version) + 4,
	};
	struct http_answer a;
	struct MHD_Response *r;
	enum MHD_Result ret;

	(void)upload_data;
	/* Queue on the second call: libmicrohttpd answers "Connection: close"
	 * to a response queued on the first, which ends keep-alive. */
	if (!*con_cls) {
		*con_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* a body is never wanted: discard it */
		return MHD_YES;
	}
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header,
				  &rq.header_bytes);
	if (http_answer(h, &rq, &a) < 0)
		return MHD_NO;
	if (a.owner == OWNER_SNAPSHOT)
		r = MHD_create_response_from_buffer_with_free_callback_cls(
			a.len, (void *)a.text, release_snapshot, a.snap);
	else
		r = MHD_create_response_from_buffer(
			a.len, (void *)a.text,
			a.owner == OWNER_HTTP ? MHD_RESPMEM_PERSISTENT
					      : MHD_RESPMEM_MUST_FREE);
	if (!r) {
		http_answer_clear(&a);
		return MHD_NO;
	}
	/* The response owns the bytes now. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a.content_type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Request-ID", a.request_id);
	if (a.code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	/* Bodies carry what plugins say: never sniffed into HTML. */
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (a.vary_accept)
		MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
	if (a.csp[0]) {
		MHD_add_response_header(r, "Content-Security-Policy", a.csp);
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	}
	ret = MHD_queue_response(conn, (unsigned int)a.code, r);
	MHD_destroy_response(r);
	return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_write(LOG_WARN, NULL, "http: %s", msg);
}

void http_free(struct http *h)
{
	free(h->not_found.text);
	free(h->not_allowed.text);
	free(h->live[0].text);
	free(h->live[1].text);
	snapshot_unref(h->current);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

struct http *http_new(const struct http_settings *cfg, struct snapshot *first,
		      char *err, size_t errlen)
{
	struct http *h = calloc(1, sizeof(*h));
	int code = 404;

	if (!h) {
		snapshot_unref(first);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	h->current = first;
	h->alive = cfg->alive;
	h->history = cfg->history;
	h->ctx = cfg->ctx;
	h->id_prefix = (uint32_t)(clock_wall_ms() ^ ((uint64_t)getpid() << 16));
	body_set(&h->not_found, render_error(404, "not found"), &code);
	code = 405;
	body_set(&h->not_allowed,
		 render_error(405, "method not allowed; use GET or HEAD"), &code);
	body_set(&h->live[0], render_live(false, &code), &code);
	body_set(&h->live[1], render_live(true, &code), &code);
	if (!h->not_found.text || !h->not_allowed.text || !h->live[0].text ||
	    !h->live[1].text) {
		snprintf(err, errlen, "out of memory");
		http_free(h);
		return NULL;
	}
	return h;
}

struct http *http_start(const struct http_settings *cfg, struct snapshot *first,
			char *err, size_t errlen)
{
	struct http *h = http_new(cfg, first, err, errlen);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai = NULL, *use;
	char port[16];
	int rc, threads;
	/* TURBO: no shutdown() before close and an optimistic first read,
	 * which saves four system calls per new connection (the kubelet
	 * opens one per probe). */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			     MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_TURBO;

	if (!h)
		return NULL;
	snprintf(port, sizeof(port), "%d", cfg->listen_port);
	rc = getaddrinfo(cfg->listen_host && *cfg->listen_host ? cfg->listen_host
							       : NULL,
			 port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "listen address \"%s\": %s",
			 cfg->listen_host ? cfg->listen_host : "", gai_strerror(rc));
		goto fail;
	}
	/* Every address: prefer the IPv4 wildcard, as "0.0.0.0" would. */
	use = ai;
	for (struct addrinfo *p = ai; p; p = p->ai_next)
		if (p->ai_family == AF_INET) {
			use = p;
			break;
		}
	if (cfg->listen_host && *cfg->listen_host)
		use = ai;
	if (use->ai_family == AF_INET6) {
		const struct in6_addr *a =
			&((const struct sockaddr_in6 *)use->ai_addr)->sin6_addr;
		/* "[::]" means every address, IPv4 included. */
		flags |= IN6_IS_ADDR_UNSPECIFIED(a) ? MHD_USE_DUAL_STACK
						    : MHD_USE_IPv6;
	}

	threads = cfg->threads > 0 ? cfg->threads : cpus_usable();
	struct MHD_OptionItem opts[] = {
		/* The logger first, so no option's message escapes it. */
		{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
		{MHD_OPTION_SOCK_ADDR, 0, use->ai_addr},
		{MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT,
		 (intptr_t)((cfg->connection_timeout_ms + 999) / 1000), NULL},
		{MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY, NULL},
		{MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
		/* One thread needs no pool: its polling thread serves. */
		{threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
		 threads, NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, http_handle, h,
				  MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(err, errlen, "cannot listen on port %d: %s",
			 cfg->listen_port, strerror(errno));
		goto fail;
	}
	freeaddrinfo(ai);
	log_info("listening on port %d with %d HTTP thread%s", http_port(h),
		 threads, threads == 1 ? "" : "s");
	return h;
fail:
	if (ai)
		freeaddrinfo(ai);
	http_free(h);
	return NULL;
}

int http_port(const struct http *h)
{
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	return info ? info->port : 0;
}

void http_stop(struct http *h)
{
	if (!h)
		return;
	/* Stop accepting, let requests in flight finish, then stop. */
	MHD_socket fd = MHD_quiesce_daemon(h->mhd);
	int64_t until = clock_mono_ms() + HTTP_FINISH_MS;
	const union MHD_DaemonInfo *info;
	while ((info = MHD_get_daemon_info(h->mhd,
					   MHD_DAEMON_INFO_CURRENT_CONNECTIONS)) &&
	       info->num_connections > 0 && clock_mono_ms() < until)
		usleep(10000);
	MHD_stop_daemon(h->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	http_free(h);
}
