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

#define REQUEST_ID_MAX 128
#define EXCLUDE_MAX 64
/* Per-connection memory: the request line and headers must fit.  Probes
 * send a few hundred bytes; 8 KiB leaves room for a long bearer token and
 * proxy headers, and libmicrohttpd clears the pool per request, so it is
 * not made larger than that (bench/README.md). */
#define HTTP_CONNECTION_MEMORY 8192
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

/* A client's X-Request-ID is echoed only when it is short and printable, so
 * it cannot inject headers or bloat responses. */
static bool request_id_ok(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (n >= REQUEST_ID_MAX || id[n] <= ' ' || id[n] > '~')
			return false;
	return n > 0;
}

/* Who owns a body's bytes. */
enum owner {
	OWNER_SNAPSHOT, /* the snapshot: the response holds a reference */
	OWNER_HTTP,     /* struct http, for its whole life */
	OWNER_RESPONSE, /* malloc'd for this request; MHD frees it */
};

/* Headers beyond those every response gets. */
struct extra {
	bool vary_accept; /* the body depends on Accept */
	const char *csp;  /* an HTML page's Content-Security-Policy */
};

static enum MHD_Result reply_ex(struct http *h, struct MHD_Connection *conn,
				struct snapshot *snap, enum owner owner,
				const char *text, size_t len, int code,
				const char *content_type, const struct extra *x)
{
	struct MHD_Response *r;
	char generated[32];
	const char *id;
	enum MHD_Result ret;

	if (owner == OWNER_SNAPSHOT)
		r = MHD_create_response_from_buffer_with_free_callback_cls(
			len, (void *)text, release_snapshot, snapshot_ref(snap));
	else
		r = MHD_create_response_from_buffer(
			len, (void *)text,
			owner == OWNER_HTTP ? MHD_RESPMEM_PERSISTENT
					    : MHD_RESPMEM_MUST_FREE);
	if (!r) {
		if (owner == OWNER_SNAPSHOT)
			snapshot_unref(snap);
		else if (owner == OWNER_RESPONSE)
			free((void *)text);
		return MHD_NO;
	}
	id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-ID");
	if (!id || !request_id_ok(id)) {
		uint64_t n = __atomic_add_fetch(&h->id_counter, 1, __ATOMIC_RELAXED);
		snprintf(generated, sizeof(generated), "%08x-%012llx",
			 h->id_prefix, (unsigned long long)n);
		id = generated;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Request-ID", id);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	/* Bodies carry what plugins say: never sniffed into HTML. */
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (x && x->vary_accept)
		MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
	if (x && x->csp) {
		MHD_add_response_header(r, "Content-Security-Policy", x->csp);
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	}
	ret = MHD_queue_response(conn, (unsigned int)code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply(struct http *h, struct MHD_Connection *conn,
			     struct snapshot *snap, enum owner owner,
			     const char *text, size_t len, int code,
			     const char *content_type)
{
	return reply_ex(h, conn, snap, owner, text, len, code, content_type,
			NULL);
}

static enum MHD_Result reply_body(struct http *h, struct MHD_Connection *conn,
				  struct snapshot *snap, const struct body *b,
				  const char *content_type)
{
	return reply(h, conn, snap, snap ? OWNER_SNAPSHOT : OWNER_HTTP, b->text,
		     b->len, b->code, content_type);
}

/* `code` is read only here, after the renderer that sets it has run. */
static enum MHD_Result reply_text(struct http *h, struct MHD_Connection *conn,
				  char *text, const int *code,
				  const char *content_type)
{
	if (!text)
		return MHD_NO;
	return reply(h, conn, NULL, OWNER_RESPONSE, text, strlen(text), *code,
		     content_type);
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
				       struct MHD_Connection *conn)
{
	const char *auth;

	switch (s->details) {
	case DETAILS_PUBLIC:
		return SNAPSHOT_PUBLIC;
	case DETAILS_HIDDEN:
		return SNAPSHOT_REDACTED;
	default:
		auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						   MHD_HTTP_HEADER_AUTHORIZATION);
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

static enum MHD_Result collect_exclude(void *cls, enum MHD_ValueKind kind,
				       const char *key, const char *value)
{
	struct excludes *ex = cls;

	(void)kind;
	if (strcmp(key, "exclude") != 0 || !value)
		return MHD_YES;
	if (ex->n == EXCLUDE_MAX) {
		ex->too_many = true;
		return MHD_NO;
	}
	ex->names[ex->n++] = value;
	return MHD_YES;
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
static enum answer negotiate(struct MHD_Connection *conn)
{
	const char *accept =
		MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	const char *format =
		MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format");
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

static enum MHD_Result reply_not_found(struct http *h,
				       struct MHD_Connection *conn,
				       const char *what)
{
	int code = 404;

	return reply_text(h, conn, render_error(404, what), &code, json_type);
}

/* The status page is rendered per request: it counts ages from now, and
 * its Content-Security-Policy allows one <style> by a nonce of its own. */
static enum MHD_Result reply_page(struct http *h, struct MHD_Connection *conn,
				  struct snapshot *s, bool redact)
{
	unsigned char rnd[16];
	char nonce[2 * sizeof(rnd) + 1], csp[256];
	struct extra x = {.vary_accept = true, .csp = csp};
	int code;
	char *text;

	/* Never block an HTTP thread on the entropy pool (early boot): the
	 * nonce is a second line of defence behind escaping, so the clock
	 * and a counter do then. */
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		uint64_t a = (uint64_t)clock_mono_ms() ^ h->id_prefix,
			 b = __atomic_add_fetch(&h->id_counter, 1, __ATOMIC_RELAXED);
		memcpy(rnd, &a, sizeof(a));
		memcpy(rnd + sizeof(a), &b, sizeof(b));
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
	snprintf(csp, sizeof(csp),
		 "default-src 'none'; style-src 'nonce-%s'; base-uri 'none'; "
		 "form-action 'none'; frame-ancestors 'none'",
		 nonce);
	text = render_page(&s->view, redact, clock_wall_ms(), s->base_path,
			   nonce, &code);
	if (!text)
		return MHD_NO;
	return reply_ex(h, conn, NULL, OWNER_RESPONSE, text, strlen(text), code,
			html_type, &x);
}

static enum MHD_Result reply_check(struct http *h, struct MHD_Connection *conn,
				   struct snapshot *s, const char *name)
{
	const struct body *b = snapshot_check(s, name, detail_for(s, conn));

	if (!b)
		return reply_not_found(h, conn, "no such check");
	return reply_body(h, conn, s, b, json_type);
}

/* NAME/history: copied from the check under the scheduler's lock, and
 * rendered per request (results arrive between snapshots). */
static enum MHD_Result reply_history(struct http *h, struct MHD_Connection *conn,
				     struct snapshot *s, const char *path)
{
	const char *slash = strchr(path, '/');
	char name[512];
	struct history hist;
	int code;
	char *text;

	if (strcmp(slash, "/history") != 0 || (size_t)(slash - path) >= sizeof(name))
		return reply_not_found(h, conn, "not found");
	memcpy(name, path, (size_t)(slash - path));
	name[slash - path] = '\0';
	if (h->history(h->ctx, name, &hist) < 0)
		return reply_not_found(h, conn, "no such check");
	text = render_history(name, &hist, detail_for(s, conn) == SNAPSHOT_REDACTED,
			      &code);
	history_clear(&hist);
	return reply_text(h, conn, text, &code, json_type);
}

/* Answer a path under base_path: "" or "/", "/startup", "/live", "/ready",
 * "/checks/NAME", "/checks/NAME/history".  Returns -1 for an unknown
 * path. */
static int route(struct http *h, struct MHD_Connection *conn,
		 struct snapshot *s, const char *rest, bool get_or_head,
		 enum MHD_Result *ret)
{
	struct excludes ex = {.n = 0};
	struct render_exclude rex;
	const struct body *b;
	int code;

	enum { ROOT, STARTUP, LIVE, READY, CHECK, HISTORY } what;
	char *text;
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
		return -1;
	if (!get_or_head) {
		*ret = reply_body(h, conn, NULL, &h->not_allowed, json_type);
		return 0;
	}

	if (what == ROOT || what == READY) {
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND,
					  collect_exclude, &ex);
		rex.names = ex.names;
		rex.n = ex.n;
		if (ex.too_many) {
			code = 400;
			*ret = reply_text(h, conn,
					  render_error(400, "too many exclude parameters"),
					  &code, json_type);
			return 0;
		}
	}
	switch (what) {
	case STARTUP:
		*ret = reply_body(h, conn, s, &s->startup, json_type);
		break;
	case LIVE:
		*ret = reply_body(h, conn, NULL, &h->live[h->alive(h->ctx)],
				  json_type);
		break;
	case READY:
		b = ex.n ? snapshot_excluded(s, true, &rex, SNAPSHOT_PUBLIC,
					     RENDER_NATIVE)
			 : &s->ready;
		if (b)
			*ret = reply_body(h, conn, s, b, json_type);
		else
			*ret = reply_text(h, conn, render_ready(&s->view, &rex, &code),
					  &code, json_type);
		break;
	case ROOT: {
		enum snapshot_detail d = detail_for(s, conn);
		enum answer a = negotiate(conn);
		enum render_format f = a == ANSWER_HEALTH_JSON ? RENDER_HEALTH_JSON
							       : RENDER_NATIVE;
		const char *type = f == RENDER_HEALTH_JSON ? health_json_type
							   : json_type;
		struct extra x = {.vary_accept = true};

		if (a == ANSWER_HTML) {
			*ret = reply_page(h, conn, s, d == SNAPSHOT_REDACTED);
			break;
		}
		b = ex.n ? snapshot_excluded(s, false, &rex, d, f)
			 : snapshot_health(s, d, f);
		if (b)
			*ret = reply_ex(h, conn, s, OWNER_SNAPSHOT, b->text,
					b->len, b->code, type, &x);
		else if ((text = render_health(&s->view, &rex,
					       d == SNAPSHOT_REDACTED, f, &code)))
			*ret = reply_ex(h, conn, NULL, OWNER_RESPONSE, text,
					strlen(text), code, type, &x);
		break;
	}
	case CHECK:
		*ret = reply_check(h, conn, s, rest + 8);
		break;
	case HISTORY:
		*ret = reply_history(h, conn, s, rest + 8);
		break;
	}
	return 0;
}

static enum MHD_Result http_handle(void *cls, struct MHD_Connection *conn,
				   const char *url, const char *method,
				   const char *version, const char *upload_data,
				   size_t *upload_data_size, void **con_cls)
{
	static int seen;
	struct http *h = cls;
	struct snapshot *s;
	enum MHD_Result ret = MHD_NO;
	bool get_or_head;

	(void)version;
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
	get_or_head = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		      strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	s = http_acquire(h);
	if (strcmp(url, "/metrics") == 0 && s->metrics_on) {
		ret = get_or_head ? reply_body(h, conn, s, snapshot_metrics(s),
					       metrics_type)
				  : reply_body(h, conn, NULL, &h->not_allowed,
					       json_type);
		snapshot_unref(s);
		return ret;
	}
	if (strncmp(url, s->base_path, s->base_len) == 0 &&
	    (url[s->base_len] == '\0' || url[s->base_len] == '/') &&
	    route(h, conn, s, url + s->base_len, get_or_head, &ret) == 0) {
		snapshot_unref(s);
		return ret;
	}
	snapshot_unref(s);
	return reply_body(h, conn, NULL, &h->not_found, json_type);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_write(LOG_WARN, NULL, "http: %s", msg);
}

static void http_free(struct http *h)
{
	free(h->not_found.text);
	free(h->not_allowed.text);
	free(h->live[0].text);
	free(h->live[1].text);
	snapshot_unref(h->current);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

struct http *http_start(const struct http_settings *cfg, struct snapshot *first,
			char *err, size_t errlen)
{
	struct http *h = calloc(1, sizeof(*h));
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
	int code = 404;
	body_set(&h->not_found, render_error(404, "not found"), &code);
	code = 405;
	body_set(&h->not_allowed,
		 render_error(405, "method not allowed; use GET or HEAD"), &code);
	body_set(&h->live[0], render_live(false, &code), &code);
	body_set(&h->live[1], render_live(true, &code), &code);
	if (!h->not_found.text || !h->not_allowed.text || !h->live[0].text ||
	    !h->live[1].text) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

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
