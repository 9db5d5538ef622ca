/*
 * grpc.c — the bundled gRPC health check (libcurl over HTTP/2).
 *
 * One unary call of grpc.health.v1.Health/Check per run, on a fresh
 * connection (like the kubelet's grpc probe): HTTP/2 with prior knowledge
 * over cleartext (h2c), or TLS with ALPN h2.  gRPC needs no library of its
 * own for this: the request is HealthCheckRequest{string service = 1} and
 * the answer HealthCheckResponse{ServingStatus status = 1}, each framed as
 * one gRPC message (a 0 compressed flag, a 4-byte big-endian length, the
 * protobuf), encoded and decoded here by hand.
 *
 * libcurl hands HTTP/2 trailers to the header callback after the headers
 * (7.88 does), so grpc-status is read there, whether it comes in the
 * trailers or in a trailers-only answer.  grpc-message is server text that
 * may quote anything the server saw, metadata included: it is never shown;
 * the status is told by its code's name.
 *
 * Easy handles are pooled across runs as in the http plugin (curl_pool.c);
 * no connection outlives a run.  The CA certificates are read once, in
 * create(), into an X509_STORE handed to each connection
 * (CURLOPT_SSL_CTX_FUNCTION): curl would otherwise parse the whole system
 * bundle at every handshake, which blocks for hundreds of milliseconds on a
 * loaded machine and cannot be cut short by its timeouts.  Metadata values (tokens) are sent as headers and never
 * shown; curl's verbose output stays off.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include <healthd/plugin.h>

#include "curl_pool.h"
#include "tls_cert.h"

#define GRPC_PATH "/grpc.health.v1.Health/Check"
#define GRPC_BODY_CAP 1024     /* a HealthCheckResponse is a few bytes */
#define GRPC_SERVICE_MAX 512

static const char *const grpc_code_names[] = {
	"OK",                  "CANCELLED",         "UNKNOWN",
	"INVALID_ARGUMENT",    "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS",      "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION", "ABORTED",           "OUT_OF_RANGE",
	"UNIMPLEMENTED",       "INTERNAL",          "UNAVAILABLE",
	"DATA_LOSS",           "UNAUTHENTICATED",
};
#define GRPC_N_CODES (sizeof(grpc_code_names) / sizeof(grpc_code_names[0]))

static const char *const grpc_serving_names[] = {
	"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN",
};

struct grpc {
	const struct healthd_host *host;
	const struct healthd_check *check;
	char url[640];           /* http(s)://server_name:port/...Check */
	struct curl_slist *connect_to; /* server_name:port -> host:port */
	struct curl_slist *headers;    /* fixed headers, then metadata */
	unsigned char *request;  /* the framed HealthCheckRequest */
	size_t request_len;
	int tls, tls_verify;
	const char *ca_file, *cert_file, *key_file;
	X509_STORE *store;       /* the CAs trusted, when tls_verify */
	struct tls_cert_limits cert_limits;
	char address[300];       /* host:port, for the `address` detail */
	char label[400];         /* grpc(s)://host:port [service NAME] */
	const char *service;
	/* Of the current run; check() never runs twice at once. */
	int grpc_status;         /* -1: none seen */
	int ctype_seen, ctype_ok, http1;
	unsigned char body[GRPC_BODY_CAP];
	size_t body_len;
	int body_over;
};

static const struct healthd_option_spec grpc_options[] = {
	{"address", NULL,
	 "host:port or [IPv6]:port of the gRPC server (every address the host "
	 "resolves to is tried)"},
	{"service", "",
	 "the service name to ask about; empty: the server as a whole"},
	{"tls", "false",
	 "TLS (ALPN h2); otherwise cleartext HTTP/2 with prior knowledge (h2c)"},
	{"server_name", NULL,
	 "name sent as SNI and :authority, and verified; default the host of "
	 "address"},
	{"tls_verify", "true", "verify the server's certificate and name"},
	{"ca_file", NULL, "PEM file of CA certificates to trust instead of the system's"},
	{"cert_file", NULL, "PEM client certificate (mutual TLS)"},
	{"key_file", NULL, "PEM key of cert_file; default cert_file itself"},
	{"metadata.", NULL,
	 "request metadata (headers), e.g. metadata: {authorization: "
	 "\"Bearer ${TOKEN}\"}; values are never shown"},
	TLS_CERT_OPTIONS,
	{NULL, NULL, NULL},
};

/* "name: value\r\n" with the name compared without case; the value
 * trimmed into out, or -1. */
static int grpc_header_value(const char *line, size_t len, const char *name,
			     char *out, size_t outlen)
{
	size_t n = strlen(name), i = n + 1, j;

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return -1;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	j = len;
	while (j > i && isspace((unsigned char)line[j - 1]))
		j--;
	if (j - i >= outlen)
		j = i + outlen - 1;
	memcpy(out, line + i, j - i);
	out[j - i] = '\0';
	return 0;
}

/* Headers and, after them, the trailers. */
static size_t grpc_on_header(char *data, size_t size, size_t n, void *arg)
{
	struct grpc *g = arg;
	size_t len = size * n;
	char v[64];

	if (len >= 7 && !strncmp(data, "HTTP/1.", 7)) {
		/* TLS without ALPN h2: no gRPC server; stop here. */
		g->http1 = 1;
		return 0;
	}
	if (!grpc_header_value(data, len, "grpc-status", v, sizeof(v))) {
		char *end;
		long code = strtol(v, &end, 10);

		g->grpc_status = (v[0] >= '0' && v[0] <= '9' && !*end &&
				  code >= 0 && code < 1000) ? (int)code : 999;
	} else if (!g->ctype_seen &&
		   !grpc_header_value(data, len, "content-type", v, sizeof(v))) {
		g->ctype_seen = 1;
		g->ctype_ok = !strncasecmp(v, "application/grpc", 16) &&
			      (!v[16] || v[16] == '+' || v[16] == ';');
	}
	return len;
}

static size_t grpc_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct grpc *g = arg;
	size_t len = size * n;

	if (len > GRPC_BODY_CAP - g->body_len) {
		g->body_over = 1;
		return 0;
	}
	memcpy(g->body + g->body_len, data, len);
	g->body_len += len;
	return len;
}

static int grpc_varint(const unsigned char **p, const unsigned char *end,
		       unsigned long long *out)
{
	unsigned long long v = 0;

	for (int shift = 0; shift < 64; shift += 7) {
		if (*p == end)
			return -1;
		v |= (unsigned long long)(**p & 0x7f) << shift;
		if (!(*(*p)++ & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1;
}

/*
 * The ServingStatus of a HealthCheckResponse (0, proto3's default, when the
 * field is absent); -1 when it is not a protobuf message.  Unknown fields
 * are skipped, as protobuf readers do.
 */
static long long grpc_parse_response(const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len;
	unsigned long long tag, v, status = 0;

	while (p < end) {
		if (grpc_varint(&p, end, &tag) < 0 || (tag >> 3) == 0)
			return -1;
		switch (tag & 7) {
		case 0:
			if (grpc_varint(&p, end, &v) < 0)
				return -1;
			if ((tag >> 3) == 1)
				status = v;
			break;
		case 1:
			if (end - p < 8)
				return -1;
			p += 8;
			break;
		case 2:
			if (grpc_varint(&p, end, &v) < 0 ||
			    v > (unsigned long long)(end - p))
				return -1;
			p += v;
			break;
		case 5:
			if (end - p < 4)
				return -1;
			p += 4;
			break;
		default:
			return -1;
		}
	}
	/* An enum is an int32; larger values are not ours to name. */
	return status > 0x7fffffff ? 0x7fffffff : (long long)status;
}

/* curl's error text for a TLS failure, if it cannot show a file name; its
 * fixed text for the code otherwise. */
static const char *grpc_tls_text(const char *text, CURLcode rc)
{
	if (!text[0] || strpbrk(text, "/@?#%\""))
		return curl_easy_strerror(rc);
	return text;
}

static void grpc_reason(const struct grpc *g, CURL *e, CURLcode rc,
			long code, const char *errbuf, char *why, size_t whylen)
{
	switch (rc) {
	case CURLE_SSL_CERTPROBLEM:
		snprintf(why, whylen, "cannot use cert_file and key_file (not "
				      "PEM, or a key that does not match?)");
		break;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		/* Over TLS, a server refusing the client's certificate says so
		 * with an alert after the handshake. */
		if (g->tls && strstr(errbuf, "alert")) {
			snprintf(why, whylen, "TLS: %s",
				 grpc_tls_text(errbuf, rc));
			break;
		}
		/* fall through */
	case CURLE_HTTP2_STREAM:
		/*
		 * libcurl 7.88 sends the request's DATA after its HEADERS;
		 * a server that decides on the headers alone (an unknown
		 * method) answers trailers-only and resets the stream
		 * before reading it, and curl then drops that answer and
		 * fails sending, with no error text.  The status is lost;
		 * say what it most likely was.
		 */
		if (code == 0 && !errbuf[0]) {
			snprintf(why, whylen, "the server ended the call before "
				 "reading the request, most likely UNIMPLEMENTED "
				 "(no grpc.health.v1.Health service); libcurl "
				 "could not read its status");
			break;
		}
		/* fall through */
	case CURLE_HTTP2:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_WEIRD_SERVER_REPLY:
		if (code == 0 && g->tls) {
			/* A server that wants a client certificate (or not
			 * this one) ends the connection right after the
			 * handshake, often without an alert. */
			snprintf(why, whylen, "no answer after the TLS "
				 "handshake: the server hung up (%s)",
				 g->cert_file ? "did it refuse the client "
						"certificate?"
					      : "does it require a client "
						"certificate, cert_file?");
			break;
		}
		if (code == 0) {
			/* An HTTP/1 server takes the h2 preface for a bad
			 * request and answers in HTTP/1 or hangs up; a TLS
			 * server hangs up on it. */
			snprintf(why, whylen, "no HTTP/2 answer: not a gRPC "
				 "server, or one that needs tls: true (%s)",
				 curl_easy_strerror(rc));
			break;
		}
		/* fall through */
	default:
		/* What http and grpc tell alike. */
		curl_pool_reason(e, rc, grpc_tls_text(errbuf, rc), why,
				 whylen);
		break;
	}
}

static const char *grpc_code_name(int code)
{
	return code >= 0 && (size_t)code < GRPC_N_CODES ? grpc_code_names[code]
							 : NULL;
}

/*
 * Judge what came back; returns the status with the message in `why`.
 * Fixed phrases only: nothing the server wrote is repeated.
 */
static enum healthd_status grpc_judge(const struct healthd_host *host,
				      struct healthd_result *result,
				      struct grpc *g, long code, double ms,
				      char *why, size_t whylen)
{
	const char *name;
	unsigned long long mlen;
	long long st;

	if (g->http1) {
		snprintf(why, whylen, "the server did not negotiate HTTP/2 (ALPN "
				      "h2): not a gRPC server");
		return HEALTHD_FAIL;
	}
	host->detail_num(result, "http_status", (double)code);
	if (code != 200 && g->grpc_status < 0) {
		snprintf(why, whylen, "HTTP status %ld without grpc-status: not "
				      "a gRPC answer", code);
		return HEALTHD_FAIL;
	}
	if (g->grpc_status < 0) {
		snprintf(why, whylen, "no grpc-status in the answer%s",
			 g->ctype_ok ? "" : " (content-type is not "
					    "application/grpc): not a gRPC "
					    "server");
		return HEALTHD_FAIL;
	}
	name = grpc_code_name(g->grpc_status);
	if (name)
		host->detail_str(result, "grpc_status", name);
	else
		host->detail_num(result, "grpc_status", g->grpc_status);
	if (g->grpc_status == 5) {
		snprintf(why, whylen, "service unknown to the server (NOT_FOUND)");
		return HEALTHD_FAIL;
	}
	if (g->grpc_status == 12) {
		snprintf(why, whylen, "UNIMPLEMENTED: the server has no "
				      "grpc.health.v1.Health service");
		return HEALTHD_FAIL;
	}
	if (g->grpc_status != 0) {
		if (name)
			snprintf(why, whylen, "Health/Check returned %s", name);
		else
			snprintf(why, whylen, "Health/Check returned grpc-status %d",
				 g->grpc_status);
		return HEALTHD_FAIL;
	}
	if (!g->ctype_ok) {
		snprintf(why, whylen, "content-type is not application/grpc");
		return HEALTHD_FAIL;
	}
	/* Exactly one length-prefixed message. */
	if (g->body_len == 0) {
		snprintf(why, whylen, "OK without a HealthCheckResponse");
		return HEALTHD_FAIL;
	}
	if (g->body_len < 5) {
		snprintf(why, whylen, "malformed answer (a cut gRPC message)");
		return HEALTHD_FAIL;
	}
	if (g->body[0] != 0) {
		snprintf(why, whylen, "compressed answer, which was not asked for");
		return HEALTHD_FAIL;
	}
	mlen = (unsigned long long)g->body[1] << 24 | (unsigned long long)g->body[2] << 16 |
	       (unsigned long long)g->body[3] << 8 | g->body[4];
	if (mlen != g->body_len - 5) {
		snprintf(why, whylen, "malformed answer (%s)",
			 mlen > g->body_len - 5 ? "a cut gRPC message"
						: "more than one message");
		return HEALTHD_FAIL;
	}
	st = grpc_parse_response(g->body + 5, (size_t)mlen);
	if (st < 0) {
		snprintf(why, whylen, "malformed HealthCheckResponse");
		return HEALTHD_FAIL;
	}
	if (st > 3) {
		host->detail_num(result, "serving_status", (double)st);
		snprintf(why, whylen, "unknown serving status %lld", st);
		return HEALTHD_FAIL;
	}
	host->detail_str(result, "serving_status", grpc_serving_names[st]);
	if (st == 1) {
		snprintf(why, whylen, "SERVING in %.1f ms", ms);
		return HEALTHD_PASS;
	}
	snprintf(why, whylen, "%s", grpc_serving_names[st]);
	return HEALTHD_FAIL;
}

static void grpc_check(const struct healthd_host *host, void *instance,
		       int64_t deadline_ms, struct healthd_result *result)
{
	struct grpc *g = instance;
	int64_t start = host->now_ms(), left = deadline_ms - start;
	char errbuf[CURL_ERROR_SIZE] = "", why[300], cert_why[200] = "";
	char timeout_hdr[40];
	enum healthd_status st, cert_st = HEALTHD_PASS;
	struct curl_slist *first = NULL;
	struct tls_cert cert;
	curl_off_t total_us = 0;
	long code = 0;
	CURLcode rc;
	CURL *e;

	host->detail_str(result, "address", g->address);
	host->detail_str(result, "service", g->service);
	host->detail_bool(result, "tls", g->tls);
	if (left <= 0) {
		host->result(result, HEALTHD_FAIL, "%s: timed out after 0 ms",
			     g->label);
		return;
	}
	/* The server stops working on the call when we stop waiting. */
	if (left <= 99999999)
		snprintf(timeout_hdr, sizeof(timeout_hdr), "grpc-timeout: %lldm",
			 (long long)left);
	else
		snprintf(timeout_hdr, sizeof(timeout_hdr), "grpc-timeout: %lldS",
			 (long long)(left / 1000));
	e = curl_pool_get();
	first = curl_slist_append(NULL, timeout_hdr);
	if (!e || !first) {
		host->result(result, HEALTHD_FAIL, "%s: out of memory", g->label);
		goto out;
	}
	/* The per-run header in front of the instance's list, unlinked
	 * before it is freed. */
	first->next = g->headers;
	g->grpc_status = -1;
	g->ctype_seen = g->ctype_ok = g->http1 = 0;
	g->body_len = 0;
	g->body_over = 0;

	curl_easy_setopt(e, CURLOPT_URL, g->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 g->tls ? (long)CURL_HTTP_VERSION_2TLS
				: (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
	/* Every run proves a new connection can be made, as the kubelet does. */
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	if (g->connect_to)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, g->connect_to);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, g->request);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)g->request_len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, first);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "healthd");
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, grpc_on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, g);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, grpc_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, g);
	if (g->tls) {
		/* HTTP/2 over TLS needs 1.2 or later (RFC 7540 9.2). */
		curl_easy_setopt(e, CURLOPT_SSLVERSION,
				 (long)CURL_SSLVERSION_TLSv1_2);
		if (!g->tls_verify) {
			curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
		}
		if (g->store)
			curl_pool_use_store(e, g->store);
		if (g->cert_file) {
			curl_easy_setopt(e, CURLOPT_SSLCERT, g->cert_file);
			curl_easy_setopt(e, CURLOPT_SSLKEY, g->key_file);
		}
		curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
	}

	rc = curl_easy_perform(e);
	first->next = NULL;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total_us);

	if (g->tls && curl_pool_peer_cert(e, &cert) == 0) {
		tls_cert_details(host, result, &cert);
		cert_st = tls_cert_judge(&g->cert_limits, &cert, cert_why,
					 sizeof(cert_why));
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		host->result(result, HEALTHD_FAIL, "%s: timed out after %lld ms",
			     g->label, (long long)(host->now_ms() - start));
		goto out;
	}
	if (rc == CURLE_WRITE_ERROR && g->body_over) {
		host->result(result, HEALTHD_FAIL, "%s: answer over %d bytes: "
			     "not a HealthCheckResponse", g->label,
			     GRPC_BODY_CAP);
		goto out;
	}
	/* A server may reset the stream right after its trailers (the
	 * "early server closure" of the gRPC spec): the answer stands. */
	if (rc != CURLE_OK && g->grpc_status < 0 &&
	    !(rc == CURLE_WRITE_ERROR && g->http1)) {
		grpc_reason(g, e, rc, code, errbuf, why, sizeof(why));
		host->result(result, HEALTHD_FAIL, "%s: %s", g->label, why);
		goto out;
	}
	host->detail_num(result, "latency_ms", (double)total_us / 1000.0);
	st = grpc_judge(host, result, g, code, (double)total_us / 1000.0, why,
			sizeof(why));
	if (st == HEALTHD_PASS && cert_st != HEALTHD_PASS)
		host->result(result, cert_st, "%s: SERVING, but %s", g->label,
			     cert_why);
	else
		host->result(result, st, "%s: %s", g->label, why);
out:
	curl_slist_free_all(first);
	if (e)
		curl_pool_put(e);
}

static void grpc_destroy(void *instance)
{
	struct grpc *g = instance;

	if (!g)
		return;
	curl_slist_free_all(g->headers);
	curl_slist_free_all(g->connect_to);
	X509_STORE_free(g->store);
	free(g->request);
	free(g);
}

/* A host name or IPv4 address: letters, digits, '.', '-', '_'. */
static int grpc_host_ok(const char *s, size_t n)
{
	if (!n || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(".-_", s[i]))
			return 0;
	return 1;
}

/* "host:port" or "[IPv6]:port" into host (brackets kept for IPv6) and
 * port; -1 when it is not that. */
static int grpc_parse_address(const char *a, char *host, size_t hostlen,
			      long *port)
{
	const char *colon, *p;
	char *end;
	size_t n;

	if (a[0] == '[') {
		const char *close = strchr(a, ']');

		if (!close || close[1] != ':')
			return -1;
		n = (size_t)(close - a) + 1;
		for (p = a + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return -1;
		if (n < 3)
			return -1;
		colon = close + 1;
	} else {
		colon = strrchr(a, ':');
		if (!colon)
			return -1;
		n = (size_t)(colon - a);
		if (!grpc_host_ok(a, n))
			return -1;
	}
	if (n >= hostlen || colon[1] < '0' || colon[1] > '9')
		return -1;
	errno = 0;
	*port = strtol(colon + 1, &end, 10);
	if (errno || *end || *port < 1 || *port > 65535)
		return -1;
	memcpy(host, a, n);
	host[n] = '\0';
	return 0;
}

/* A protobuf varint into out; returns its length. */
static size_t grpc_put_varint(unsigned char *out, unsigned long long v)
{
	size_t n = 0;

	do {
		out[n] = v & 0x7f;
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	return n;
}

/* HealthCheckRequest{service}, framed as one gRPC message. */
static int grpc_build_request(struct grpc *g, const char *service)
{
	size_t slen = strlen(service), n = 5;
	unsigned char *r = malloc(5 + 1 + 10 + slen);

	if (!r)
		return -ENOMEM;
	/* proto3 leaves a field at its default (the empty string) out. */
	if (slen) {
		r[n++] = 0x0a; /* field 1, length-delimited */
		n += grpc_put_varint(r + n, slen);
		memcpy(r + n, service, slen);
		n += slen;
	}
	r[0] = 0; /* not compressed */
	r[1] = (unsigned char)((n - 5) >> 24);
	r[2] = (unsigned char)((n - 5) >> 16);
	r[3] = (unsigned char)((n - 5) >> 8);
	r[4] = (unsigned char)(n - 5);
	g->request = r;
	g->request_len = n;
	return 0;
}

/* Headers that gRPC or HTTP/2 reserve, which metadata may not set. */
static int grpc_reserved(const char *name)
{
	static const char *const names[] = {
		"content-type", "te", "content-length", "host", "connection",
		"keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
		"expect", NULL,
	};

	if (!strncmp(name, "grpc-", 5))
		return 1;
	for (size_t i = 0; names[i]; i++)
		if (!strcmp(name, names[i]))
			return 1;
	return 0;
}

static int grpc_add_header(struct grpc *g, const char *line)
{
	struct curl_slist *l = curl_slist_append(g->headers, line);

	if (!l)
		return -ENOMEM;
	g->headers = l;
	return 0;
}

/* metadata.NAME into headers; names lowercased, as HTTP/2 wants. */
static int grpc_parse_metadata(struct grpc *g, char *err, size_t errlen)
{
	const struct healthd_host *host = g->host;
	const char *key, *value;
	size_t pos = 0;

	while (host->option_next(g->check, "metadata.", &pos, &key, &value)) {
		char name[128], *line;
		size_t klen = strlen(key), n;
		int rc;

		if (!klen || klen >= sizeof(name)) {
			snprintf(err, errlen, "metadata: a key must be 1 to %zu "
					      "characters", sizeof(name) - 1);
			return -EINVAL;
		}
		for (size_t i = 0; i <= klen; i++)
			name[i] = (char)tolower((unsigned char)key[i]);
		if (strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-_.") !=
		    klen) {
			snprintf(err, errlen, "metadata: a key may hold only "
					      "letters, digits, '-', '_' and '.'");
			return -EINVAL;
		}
		if (grpc_reserved(name)) {
			snprintf(err, errlen, "metadata.%s: reserved by gRPC or "
					      "HTTP/2", name);
			return -EINVAL;
		}
		for (const char *p = value; *p; p++)
			if (*p < 0x20 || *p > 0x7e) {
				/* The key is not a secret; the value may be. */
				snprintf(err, errlen, "metadata.%s: a value may "
						      "hold only printable "
						      "ASCII", name);
				return -EINVAL;
			}
		/* "name;" is how curl sends a header with an empty value. */
		n = klen + strlen(value) + 3;
		line = malloc(n);
		if (!line)
			return -ENOMEM;
		if (value[0])
			snprintf(line, n, "%s: %s", name, value);
		else
			snprintf(line, n, "%s;", name);
		rc = grpc_add_header(g, line);
		/* The copy held the value: wipe it. */
		memset(line, 0, n);
		free(line);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int grpc_file_option(struct grpc *g, const char *key,
			    const char **out, char *err, size_t errlen)
{
	*out = g->host->option(g->check, key);
	if (*out && !(*out)[0])
		*out = NULL;
	if (*out && access(*out, R_OK) != 0) {
		snprintf(err, errlen, "%s: cannot read it (%s)", key,
			 strerror(errno));
		return -EINVAL;
	}
	if (*out && !g->tls) {
		snprintf(err, errlen, "%s: needs tls: true", key);
		return -EINVAL;
	}
	return 0;
}

static int grpc_create(const struct healthd_host *host,
		       const struct healthd_check *check, void **instance,
		       char *err, size_t errlen)
{
	static const char *const fixed[] = {
		"Content-Type: application/grpc",
		"TE: trailers",
		"Accept:", /* curl's default Accept: is no gRPC header */
		"Expect:",
		NULL,
	};
	const char *address = host->option(check, "address");
	const char *service = host->option(check, "service");
	const char *server_name = host->option(check, "server_name");
	char hostpart[256], sni[256];
	struct grpc *g;
	long port;
	int rc = -EINVAL;
	CURLcode init_rc = curl_pool_init();

	if (init_rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl failed to initialise: %s",
			 curl_easy_strerror(init_rc));
		return -EIO;
	}
	if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2)) {
		snprintf(err, errlen, "libcurl was built without HTTP/2");
		return -ENOTSUP;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->host = host;
	g->check = check;

	/* address: required, so set. */
	if (grpc_parse_address(address, hostpart, sizeof(hostpart), &port) < 0) {
		snprintf(err, errlen, "address: expected host:port or "
				      "[IPv6]:port, port 1-65535");
		goto fail;
	}
	if (!service)
		service = "";
	if (strlen(service) > GRPC_SERVICE_MAX) {
		snprintf(err, errlen, "service: at most %d bytes",
			 GRPC_SERVICE_MAX);
		goto fail;
	}
	for (const char *p = service; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "service: control characters "
					      "are not allowed");
			goto fail;
		}
	g->service = service;
	if (host->option_bool(check, "tls", &g->tls, err, errlen) < 0 ||
	    host->option_bool(check, "tls_verify", &g->tls_verify, err,
			      errlen) < 0 ||
	    tls_cert_limits(host, check, &g->cert_limits, err, errlen) < 0)
		goto fail;
	if (grpc_file_option(g, "ca_file", &g->ca_file, err, errlen) < 0 ||
	    grpc_file_option(g, "cert_file", &g->cert_file, err, errlen) < 0 ||
	    grpc_file_option(g, "key_file", &g->key_file, err, errlen) < 0)
		goto fail;
	if (g->key_file && !g->cert_file) {
		snprintf(err, errlen, "key_file: needs cert_file");
		goto fail;
	}
	if (g->cert_file && !g->key_file)
		g->key_file = g->cert_file;
	if (g->tls && g->tls_verify && !(g->store = curl_pool_store(g->ca_file))) {
		if (g->ca_file)
			snprintf(err, errlen, "ca_file: not a PEM file of CA "
					      "certificates");
		else
			snprintf(err, errlen, "cannot read the system's CA "
					      "certificates");
		goto fail;
	}

	if (server_name && server_name[0]) {
		if (!grpc_host_ok(server_name, strlen(server_name))) {
			snprintf(err, errlen, "server_name: expected a host name");
			goto fail;
		}
		snprintf(sni, sizeof(sni), "%s", server_name);
		/* Ask for server_name, connect to address. */
		snprintf(g->url, sizeof(g->url), "%s:%ld:%s:%ld", sni, port,
			 hostpart, port);
		g->connect_to = curl_slist_append(NULL, g->url);
		if (!g->connect_to) {
			rc = -ENOMEM;
			goto fail;
		}
	} else {
		snprintf(sni, sizeof(sni), "%s", hostpart);
	}
	snprintf(g->url, sizeof(g->url), "%s://%s:%ld%s",
		 g->tls ? "https" : "http", sni, port, GRPC_PATH);
	snprintf(g->address, sizeof(g->address), "%s:%ld", hostpart, port);
	if (service[0])
		snprintf(g->label, sizeof(g->label), "%s://%s service %s",
			 g->tls ? "grpcs" : "grpc", g->address, service);
	else
		snprintf(g->label, sizeof(g->label), "%s://%s",
			 g->tls ? "grpcs" : "grpc", g->address);
	host->target(check, "%s", g->label);

	for (size_t i = 0; fixed[i]; i++)
		if ((rc = grpc_add_header(g, fixed[i])) < 0)
			goto fail;
	if ((rc = grpc_parse_metadata(g, err, errlen)) < 0 ||
	    (rc = grpc_build_request(g, service)) < 0)
		goto fail;
	*instance = g;
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	grpc_destroy(g);
	return rc;
}

HEALTHD_PLUGIN_DEFINE(.name = "grpc",
		      .description = "gRPC: grpc.health.v1.Health/Check over "
				     "HTTP/2 (h2c or TLS)",
		      .options = grpc_options, .create = grpc_create,
		      .check = grpc_check, .destroy = grpc_destroy,
		      .required = (const char *const[]){"address", NULL});
