/*
 * http.c — the bundled HTTP(S) check (libcurl).
 *
 * Each run makes one request on a fresh connection (like the kubelet's
 * probes), with curl's timeouts taken from the time left before the deadline,
 * and compares the status and, optionally, the body.  At most HTTP_BODY_CAP
 * bytes of the body are read: a bigger answer is cut there and judged on
 * what was read, and kept only when `expect_body` needs it.
 *
 * Easy handles are kept in a small pool across runs (curl_pool.c):
 * curl_easy_perform() makes a multi handle (with a socket pair) for each new
 * easy handle, and that was a third of a run's cost.  No connection or DNS
 * answer outlives a run.  The system's CA certificates are read once, in
 * create(), as the grpc plugin does: curl would otherwise parse the whole
 * bundle at every handshake, which overshoots deadlines under load.
 *
 * The url may carry user:password, a query string and a fragment (tokens
 * live there), so messages and the `url` detail name the target as
 * scheme://host:port/path only.  curl's error text is shown only for TLS
 * failures and only when it quotes no url, path or credential; every other
 * failure is told by curl's fixed text for its code.
 *
 * Over https the server's certificate is reported and its expiry judged as
 * the tcp plugin does (tls_cert.c), from the PEM text CURLOPT_CERTINFO gives
 * for the last connection of the run.  A certificate that fails
 * verification fails the handshake first, with curl's reason.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include <healthd/plugin.h>

#include "curl_pool.h"
#include "tls_cert.h"

#define HTTP_BODY_CAP (64 * 1024)
#define HTTP_MAX_RANGES 32
#define HTTP_MAX_REDIRS 10

struct http_range {
	long lo, hi;
};

struct http {
	const struct healthd_host *host;
	const struct healthd_check *check;
	const char *url;
	int head;
	struct http_range ranges[HTTP_MAX_RANGES];
	size_t n_ranges;
	const char *expect_body;
	struct curl_slist *headers;
	int tls_verify;
	const char *ca_file;
	X509_STORE *store; /* the system's CAs, when verified without ca_file */
	int follow;
	struct tls_cert_limits cert_limits;
	char *user;     /* from the url (curl_free): never to be shown */
	char *password; /* from the url (curl_free): never to be shown */
	char label[512]; /* scheme://host:port/path */
	/* check() never runs twice at once on an instance.  The body is kept
	 * (up to HTTP_BODY_CAP, allocated by the run) only for expect_body. */
	char *body;
	size_t body_len;
	int truncated;
};

static const struct healthd_option_spec http_options[] = {
	{"url", NULL, "http:// or https:// URL to request"},
	{"method", "GET", "GET | HEAD"},
	{"expect_status", "200-399",
	 "accepted status codes: a list of codes and ranges, e.g. 200,204,300-399"},
	{"expect_body", NULL,
	 "text the body must contain (within its first 64 KiB); needs GET"},
	{"headers.", NULL, "request headers, e.g. headers: {Accept: text/plain}"},
	{"tls_verify", "true", "verify the server's certificate and name"},
	{"ca_file", NULL, "PEM file of CA certificates to trust instead of the system's"},
	{"follow_redirects", "false",
	 "follow redirects (up to 10); otherwise a 3xx is the answer judged"},
	TLS_CERT_OPTIONS,
	{NULL, NULL, NULL},
};

static size_t http_write(char *data, size_t size, size_t n, void *arg)
{
	struct http *h = arg;
	size_t len = size * n;
	size_t room = HTTP_BODY_CAP - h->body_len;
	size_t keep = len > room ? room : len;

	if (h->expect_body) {
		if (!h->body && !(h->body = malloc(HTTP_BODY_CAP)))
			return 0;
		memcpy(h->body + h->body_len, data, keep);
	}
	h->body_len += keep;
	if (keep < len) {
		/* Stop reading: returning less than was given ends the
		 * transfer. */
		h->truncated = 1;
		return 0;
	}
	return len;
}

static int http_status_ok(const struct http *h, long code)
{
	for (size_t i = 0; i < h->n_ranges; i++)
		if (code >= h->ranges[i].lo && code <= h->ranges[i].hi)
			return 1;
	return 0;
}

/*
 * curl's error text for a TLS failure ("SSL certificate problem: ..."), if
 * it cannot show the url, a file name or a credential; otherwise curl's fixed
 * text for the code.
 */
static const char *http_tls_text(const struct http *h, const char *text,
				 CURLcode rc)
{
	if (!text[0] || strpbrk(text, "/@?#%\"") ||
	    (h->user && h->user[0] && strstr(text, h->user)) ||
	    (h->password && h->password[0] && strstr(text, h->password)))
		return curl_easy_strerror(rc);
	return text;
}

static void http_reason(const struct http *h, CURL *e, CURLcode rc,
			const char *errbuf, char *why, size_t whylen)
{
	switch (rc) {
	case CURLE_TOO_MANY_REDIRECTS:
		snprintf(why, whylen, "more than %d redirects", HTTP_MAX_REDIRS);
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(why, whylen, "redirected to a scheme other than http(s)");
		break;
	case CURLE_GOT_NOTHING:
		snprintf(why, whylen, "server closed the connection without "
				      "answering");
		break;
	default:
		/* What http and grpc tell alike. */
		curl_pool_reason(e, rc, http_tls_text(h, errbuf, rc), why,
				 whylen);
		break;
	}
}

static void http_check(const struct healthd_host *host, void *instance,
		       int64_t deadline_ms, struct healthd_result *result)
{
	struct http *h = instance;
	int64_t start = host->now_ms(), left = deadline_ms - start;
	char errbuf[CURL_ERROR_SIZE] = "", why[300], cert_why[200] = "";
	enum healthd_status cert_st = HEALTHD_PASS;
	struct tls_cert cert;
	const char *method = h->head ? "HEAD" : "GET";
	curl_off_t total_us = 0;
	long code = 0, redirects = 0;
	CURLcode rc;
	CURL *e;

	host->detail_str(result, "url", h->label);
	if (left <= 0) {
		host->result(result, HEALTHD_FAIL, "%s %s: timed out after 0 ms",
			     method, h->label);
		return;
	}
	e = curl_pool_get();
	if (!e) {
		host->result(result, HEALTHD_FAIL, "%s %s: out of memory", method,
			     h->label);
		return;
	}
	h->body_len = 0;
	h->truncated = 0;
	curl_easy_setopt(e, CURLOPT_URL, h->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
	/* Every run proves a new connection can be made, as the kubelet does. */
	curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	curl_easy_setopt(e, CURLOPT_DNS_CACHE_TIMEOUT, 0L);
	/* A pooled handle keeps TLS sessions: every run does the full
	 * handshake and certificate check, as a new client would. */
	curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "healthd");
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	if (h->headers)
		curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
	if (h->head)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (h->follow) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)HTTP_MAX_REDIRS);
	}
	if (!h->tls_verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (h->store)
		curl_pool_use_store(e, h->store);
	else if (h->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
	/* Only TLS connections have certificates to keep. */
	curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);

	rc = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total_us);
	curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &redirects);

	if (rc == CURLE_WRITE_ERROR && h->truncated)
		rc = CURLE_OK; /* we stopped reading at the cap */
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		host->result(result, HEALTHD_FAIL, "%s %s: timed out after %lld ms",
			     method, h->label,
			     (long long)(host->now_ms() - start));
		goto out;
	}
	if (rc != CURLE_OK) {
		http_reason(h, e, rc, errbuf, why, sizeof(why));
		host->result(result, HEALTHD_FAIL, "%s %s: %s", method, h->label,
			     why);
		goto out;
	}

	host->detail_num(result, "status_code", (double)code);
	host->detail_num(result, "latency_ms", (double)total_us / 1000.0);
	host->detail_num(result, "redirects", (double)redirects);
	host->detail_num(result, "body_bytes", (double)h->body_len);
	host->detail_bool(result, "body_truncated", h->truncated);
	if (curl_pool_peer_cert(e, &cert) == 0) {
		tls_cert_details(host, result, &cert);
		cert_st = tls_cert_judge(&h->cert_limits, &cert, cert_why,
					 sizeof(cert_why));
	}
	if (!http_status_ok(h, code))
		host->result(result, HEALTHD_FAIL,
			     "%s %s: unexpected status %ld (not in expect_status)",
			     method, h->label, code);
	else if (h->expect_body &&
		 (!h->body || !memmem(h->body, h->body_len, h->expect_body,
				      strlen(h->expect_body))))
		host->result(result, HEALTHD_FAIL,
			     "%s %s: status %ld but the body does not contain "
			     "expect_body%s",
			     method, h->label, code,
			     h->truncated ? " (within its first 64 KiB)" : "");
	else if (cert_st != HEALTHD_PASS)
		host->result(result, cert_st, "%s %s: status %ld, but %s", method,
			     h->label, code, cert_why);
	else
		host->result(result, HEALTHD_PASS, "%s %s: status %ld in %.1f ms", method,
			     h->label, code, (double)total_us / 1000.0);
out:
	free(h->body);
	h->body = NULL;
	curl_pool_put(e);
}

static void http_destroy(void *instance)
{
	struct http *h = instance;

	if (!h)
		return;
	curl_slist_free_all(h->headers);
	X509_STORE_free(h->store);
	curl_free(h->user);
	curl_free(h->password);
	free(h);
}

/* "200-299, 304" into ranges; -1 when it is not that. */
static int http_parse_status(struct http *h, const char *s)
{
	h->n_ranges = 0;
	for (;;) {
		char *end;
		long lo, hi;

		while (*s == ' ')
			s++;
		if (*s < '0' || *s > '9')
			return -1;
		lo = hi = strtol(s, &end, 10);
		s = end;
		while (*s == ' ')
			s++;
		if (*s == '-') {
			s++;
			while (*s == ' ')
				s++;
			if (*s < '0' || *s > '9')
				return -1;
			hi = strtol(s, &end, 10);
			s = end;
			while (*s == ' ')
				s++;
		}
		if (lo < 100 || hi > 599 || lo > hi ||
		    h->n_ranges == HTTP_MAX_RANGES)
			return -1;
		h->ranges[h->n_ranges].lo = lo;
		h->ranges[h->n_ranges++].hi = hi;
		if (!*s)
			return 0;
		if (*s++ != ',')
			return -1;
	}
}

/* Check the url and keep what messages may show of it.  Errors never
 * quote it. */
static int http_parse_url(struct http *h, const char *url, char *err,
			  size_t errlen)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	const char *auth, *end, *at;
	CURLU *u = curl_url();
	CURLUcode uc;
	int rc = -EINVAL;

	if (!u)
		return -ENOMEM;
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		snprintf(err, errlen, "url: not a valid URL (%s)",
			 curl_url_strerror(uc));
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
		snprintf(err, errlen, "url: expected an http:// or https:// URL");
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
		snprintf(err, errlen, "url: no host");
		goto fail;
	}
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		    CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
		snprintf(err, errlen, "url: not a valid URL");
		goto fail;
	}
	/* Kept only to make sure curl's error text does not repeat them. */
	if (curl_url_get(u, CURLUPART_USER, &h->user, CURLU_URLDECODE) !=
	    CURLUE_OK)
		h->user = NULL;
	if (curl_url_get(u, CURLUPART_PASSWORD, &h->password,
			 CURLU_URLDECODE) != CURLUE_OK)
		h->password = NULL;
	/* curl ends the authority at the first '/', '?' or '#': a
	 * user:password holding one, not percent-encoded, is cut there and
	 * lands in the host and port, or leaves its tail (and the real host)
	 * in the path; messages show both.  Refused: an '@' in the path of a
	 * url without user:password@, and an '@' before the first '/' other
	 * than the one that ends user:password@. */
	auth = strstr(url, "://");
	auth = auth ? auth + 3 : url;
	end = auth + strcspn(auth, "/");
	at = memchr(auth, '@', (size_t)(end - auth));
	if (at && (h->user || h->password))
		at = memchr(at + 1, '@', (size_t)(end - at - 1));
	if (at || (!h->user && !h->password && strchr(path, '@'))) {
		snprintf(err, errlen, "url: an '@' that does not end "
				      "user:password@; percent-encode '/', '?' "
				      "and '#' in the user name and password "
				      "(%%2F, %%3F, %%23) or '@' in the path and "
				      "query (%%40)");
		goto fail;
	}
	/* The query and the fragment are left out: tokens live there. */
	snprintf(h->label, sizeof(h->label), "%s://%s:%s%s", scheme, host, port,
		 path);
	rc = 0;
fail:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

static int http_create(const struct healthd_host *host,
		       const struct healthd_check *check, void **instance,
		       char *err, size_t errlen)
{
	const char *url = host->option(check, "url");
	const char *method = host->option(check, "method");
	const char *status = host->option(check, "expect_status");
	const char *key, *value;
	struct http *h;
	size_t pos = 0;
	int rc = -EINVAL;
	CURLcode init_rc = curl_pool_init();

	if (init_rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl failed to initialise: %s",
			 curl_easy_strerror(init_rc));
		return -EIO;
	}
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->host = host;
	h->check = check;

	rc = http_parse_url(h, url, err, errlen); /* url: required, set */
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc < 0)
		goto fail;
	host->target(check, "%s", h->label);
	rc = -EINVAL;
	h->url = url;

	if (!strcmp(method, "GET")) {
		h->head = 0;
	} else if (!strcmp(method, "HEAD")) {
		h->head = 1;
	} else {
		snprintf(err, errlen, "method: expected GET or HEAD");
		goto fail;
	}
	if (http_parse_status(h, status) < 0) {
		snprintf(err, errlen,
			 "expect_status: expected status codes (100-599) and "
			 "ranges separated by commas, e.g. 200-299,304");
		goto fail;
	}
	h->expect_body = host->option(check, "expect_body");
	if (h->expect_body && !h->expect_body[0])
		h->expect_body = NULL;
	if (h->expect_body && h->head) {
		snprintf(err, errlen, "expect_body: needs method GET (HEAD "
				      "answers have no body)");
		goto fail;
	}
	/* Both have defaults: never unset. */
	if (host->option_bool(check, "tls_verify", &h->tls_verify, err,
			      errlen) < 0 ||
	    host->option_bool(check, "follow_redirects", &h->follow, err,
			      errlen) < 0 ||
	    tls_cert_limits(host, check, &h->cert_limits, err, errlen) < 0)
		goto fail;
	h->ca_file = host->option(check, "ca_file");
	if (h->ca_file && access(h->ca_file, R_OK) != 0) {
		snprintf(err, errlen, "ca_file: cannot read it (%s)",
			 strerror(errno));
		goto fail;
	}
	/* An https url, or a redirect, may need them.  Without the store
	 * (it could not be read) curl reads the CAs itself, as before; a
	 * ca_file stays curl's to read (and to report on). */
	if (h->tls_verify && !h->ca_file &&
	    (!strncmp(h->label, "https:", 6) || h->follow))
		h->store = curl_pool_store(NULL);

	while (host->option_next(check, "headers.", &pos, &key, &value)) {
		struct curl_slist *l;
		char *line;
		size_t n;

		if (!key[0] || strpbrk(key, ":\r\n \t")) {
			snprintf(err, errlen, "headers: a header name must be a "
					      "single token without ':'");
			goto fail;
		}
		if (strpbrk(value, "\r\n")) {
			/* The name is not a secret; the value may be. */
			snprintf(err, errlen, "headers.%s: a value may not hold "
					      "a line break", key);
			goto fail;
		}
		/* "Name;" is how curl sends a header with an empty value. */
		n = strlen(key) + strlen(value) + 3;
		line = malloc(n);
		if (!line) {
			rc = -ENOMEM;
			goto fail;
		}
		if (value[0])
			snprintf(line, n, "%s: %s", key, value);
		else
			snprintf(line, n, "%s;", key);
		l = curl_slist_append(h->headers, line);
		free(line);
		if (!l) {
			rc = -ENOMEM;
			goto fail;
		}
		h->headers = l;
	}
	*instance = h;
	return 0;
fail:
	http_destroy(h);
	return rc;
}

HEALTHD_PLUGIN_DEFINE(.name = "http",
		      .description = "HTTP(S): status code and body of one request",
		      .options = http_options, .create = http_create,
		      .check = http_check, .destroy = http_destroy,
		      .required = (const char *const[]){"url", NULL});
