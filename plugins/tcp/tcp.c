/*
 * tcp.c — the bundled TCP check: connect to host:port, optionally speak
 * TLS (and judge the certificate's expiry), send a few bytes and look for an
 * expected answer in the first bytes received.
 *
 * Every step is bounded by the run's deadline:
 *   - names are resolved with getaddrinfo_a() and gai_suspend(), so the
 *     system's resolver (NSS: /etc/hosts, DNS with the search list) is used
 *     as by every other client, without blocking past the deadline.  A
 *     lookup still running then cannot be stopped: it is left to glibc's
 *     helper thread and freed by a later run once it ends (resolve.c);
 *   - every address is tried, IPv6 too: a new attempt starts when the
 *     previous one failed or after TCP_STAGGER_MS without an answer, the
 *     earlier ones still in flight (RFC 8305's "happy eyeballs", simplified),
 *     so one black-holed address does not eat the whole deadline;
 *   - connect, the TLS handshake, send and receive are non-blocking, each
 *     wait a poll() against the deadline.
 *
 * With TLS the handshake never fails on verification: the chain and name
 * are verified all the same and judged afterwards, so the certificate's
 * details are reported even when it is not trusted, and nothing is sent to
 * a server that failed verification.
 *
 * The plugin host leaves SIGPIPE at its default: every write is a send()
 * with MSG_NOSIGNAL, OpenSSL's included (conn.c).
 *
 * Messages name host:port only.  `send` may hold a secret and `expect` may
 * repeat it: neither, nor the bytes received, is ever shown.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <healthd/plugin.h>

#include "conn.h"
#include "resolve.h"
#include "tls_cert.h"

#define TCP_READ_CAP 4096    /* expect is looked for in this much */

struct tcp {
	const struct healthd_host *host;
	const struct healthd_check *check;
	const char *host_name;
	char port[8];
	char label[300]; /* host:port or [v6]:port, for messages */
	const char *send;
	const char *expect;
	regex_t re;
	int has_re;
	char *buf; /* TCP_READ_CAP + 1, when something is expected */
	int tls, verify;
	const char *server_name; /* SNI and the name verified */
	int name_is_ip;
	SSL_CTX *ctx;
	struct tls_cert_limits lim;
};

/* One run's connection. */
struct tcp_run {
	const struct tcp *t;
	struct conn c;
};

enum tcp_step {
	TCP_OK = 0,
	TCP_TIMEOUT, /* the deadline passed; the stage is in the message */
	TCP_FAILED,  /* why says what */
};

static const struct healthd_option_spec tcp_options[] = {
	{"host", NULL,
	 "host name or address to connect to; every address it resolves to "
	 "is tried, IPv6 too"},
	{"port", NULL, "TCP port, 1-65535"},
	{"send", NULL, "bytes to send once connected (never shown)"},
	{"expect", NULL,
	 "text the answer must contain, within its first 4 KiB"},
	{"expect_regex", NULL,
	 "POSIX extended regular expression the answer must match, within its "
	 "first 4 KiB (^ is its start)"},
	{"tls", "false",
	 "speak TLS once connected: handshake, verification, certificate "
	 "expiry"},
	{"server_name", NULL,
	 "the name sent as SNI and verified in the certificate (default: host)"},
	{"tls_verify", "true",
	 "fail when the certificate chain or name does not verify; false still "
	 "reports the certificate and judges its expiry"},
	{"ca_file", NULL,
	 "PEM file of CA certificates to trust instead of the system's"},
	TLS_CERT_OPTIONS,
	{NULL, NULL, NULL},
};

/* ---- name resolution ---------------------------------------------------- */

/* resolve.c does the work; tcp keeps its own phrases. */
static enum tcp_step tcp_resolve(const struct tcp *t, int64_t deadline,
				 struct addrinfo **res, char *why,
				 size_t whylen)
{
	switch (resolve_within(t->host_name, t->port, SOCK_STREAM, deadline,
			       t->host->now_ms, res, why, whylen)) {
	case RESOLVE_OK:
		return TCP_OK;
	case RESOLVE_TIMEOUT:
		return TCP_TIMEOUT;
	case RESOLVE_NONAME:
		snprintf(why, whylen, "host name not found");
		return TCP_FAILED;
	case RESOLVE_AGAIN:
		snprintf(why, whylen, "host name not resolved: temporary "
				      "failure in name resolution");
		return TCP_FAILED;
	default:
		return TCP_FAILED; /* why says what */
	}
}

/* ---- connecting ---------------------------------------------------------- */

static void tcp_connect_reason(int err, char *why, size_t whylen)
{
	if (err == ECONNREFUSED)
		snprintf(why, whylen, "connection refused");
	else if (err)
		snprintf(why, whylen, "could not connect: %s", strerror(err));
	else
		snprintf(why, whylen, "could not connect");
}

/* conn.c connects; tcp keeps its own phrases and the address text. */
static enum tcp_step tcp_connect(struct tcp_run *r, const struct addrinfo *res,
				 char *addr, size_t addrlen, int *tried,
				 char *why, size_t whylen)
{
	const struct addrinfo *won;
	int err;

	switch (conn_connect(&r->c, res, &won, tried, &err)) {
	case CONN_OK:
		break;
	case CONN_TIMEOUT:
		return TCP_TIMEOUT;
	default:
		tcp_connect_reason(err, why, whylen);
		return TCP_FAILED;
	}
	if (getnameinfo(won->ai_addr, won->ai_addrlen, addr, (socklen_t)addrlen,
			NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(addr, addrlen, "?");
	return TCP_OK;
}

/* ---- TLS ----------------------------------------------------------------- */

/* OpenSSL's reason for the last failure, in its fixed words (no option
 * value can be in them), or the system's. */
static void tcp_ssl_reason(const char *what, int sslerr, char *why,
			   size_t whylen)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	if (reason)
		snprintf(why, whylen, "%s: %s", what, reason);
	else if (sslerr == SSL_ERROR_SYSCALL && errno)
		snprintf(why, whylen, "%s: %s", what, strerror(errno));
	else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
		snprintf(why, whylen, "%s: server closed the connection", what);
	else
		snprintf(why, whylen, "%s", what);
	ERR_clear_error();
}

/* conn.c's outcome in tcp's words: TCP_OK to go on.  CONN_FAILED says
 * errno with `what`, as tcp always has, TLS or not. */
static enum tcp_step tcp_ssl_step(enum conn_step st, int sslerr,
				  const char *what, char *why, size_t whylen)
{
	switch (st) {
	case CONN_OK:
		return TCP_OK;
	case CONN_TIMEOUT:
		return TCP_TIMEOUT;
	case CONN_TLS_FAILED:
		tcp_ssl_reason(what, sslerr, why, whylen);
		return TCP_FAILED;
	default:
		snprintf(why, whylen, "%s: %s", what, strerror(errno));
		return TCP_FAILED;
	}
}

static enum tcp_step tcp_handshake(struct tcp_run *r, char *why,
				   size_t whylen)
{
	const struct tcp *t = r->t;
	int e = SSL_ERROR_NONE;

	if (conn_tls_start(&r->c, t->ctx, t->server_name, t->name_is_ip) < 0) {
		snprintf(why, whylen, "cannot set up TLS (out of memory?)");
		return TCP_FAILED;
	}
	return tcp_ssl_step(conn_tls_handshake(&r->c, &e), e,
			    "TLS handshake failed", why, whylen);
}

/* ---- send and expect ----------------------------------------------------- */

static enum tcp_step tcp_send(const struct tcp_run *r, char *why,
			      size_t whylen)
{
	const char *p = r->t->send;
	int e = SSL_ERROR_NONE;
	enum conn_step st = conn_send(&r->c, p, strlen(p), &e);

	return tcp_ssl_step(st, e, "sending failed", why, whylen);
}

static int tcp_matches(const struct tcp *t, size_t len)
{
	regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)len};

	if (t->has_re)
		return regexec(&t->re, t->buf, 1, &m, REG_STARTEND) == 0;
	return memmem(t->buf, len, t->expect, strlen(t->expect)) != NULL;
}

/* Read until expect matches, the end of the stream, TCP_READ_CAP bytes or
 * the deadline.  *len says how much was read. */
static enum tcp_step tcp_expect(const struct tcp_run *r, size_t *len,
				char *why, size_t whylen)
{
	const struct tcp *t = r->t;
	int eof = 0;

	*len = 0;
	while (*len < TCP_READ_CAP && !eof) {
		size_t got = 0;
		int e = SSL_ERROR_NONE;
		enum conn_step cs = conn_recv(&r->c, t->buf + *len,
					      TCP_READ_CAP - *len, &got, &e);

		if (cs == CONN_EOF)
			eof = 1;
		else if (cs != CONN_OK)
			return tcp_ssl_step(cs, e, "receiving failed", why,
					    whylen);
		*len += got;
		t->buf[*len] = '\0';
		if (tcp_matches(t, *len))
			return TCP_OK;
	}
	if (eof)
		snprintf(why, whylen, "server closed the connection after %zu "
				      "bytes without a match for %s",
			 *len, t->has_re ? "expect_regex" : "expect");
	else
		snprintf(why, whylen, "the first %d bytes received do not match "
				      "%s",
			 TCP_READ_CAP, t->has_re ? "expect_regex" : "expect");
	return TCP_FAILED;
}

/* ---- the check ----------------------------------------------------------- */

/* Read, report and judge the peer's certificate; FAIL when tls_verify
 * refuses it or it has expired. */
static enum healthd_status tcp_cert(const struct tcp_run *r,
				    struct healthd_result *result, char *why,
				    size_t whylen)
{
	const struct tcp *t = r->t;

	return conn_tls_cert(&r->c, t->host, result, t->verify, &t->lim,
			     "TLS certificate not trusted", why, whylen);
}

static const char *tcp_stage_name[] = {
	"resolving the host name", "connecting", "in the TLS handshake",
	"sending", "waiting for the answer",
};

enum tcp_stage { TS_RESOLVE, TS_CONNECT, TS_TLS, TS_SEND, TS_EXPECT };

static void tcp_check(const struct healthd_host *host, void *instance,
		      int64_t deadline_ms, struct healthd_result *result)
{
	struct tcp *t = instance;
	struct tcp_run r = {.t = t,
			    .c = CONN_INIT(deadline_ms, host->now_ms)};
	int64_t start = host->now_ms();
	struct addrinfo *res = NULL;
	char why[300] = "", cert_why[200] = "", addr[NI_MAXHOST];
	enum healthd_status cert_st = HEALTHD_PASS;
	enum tcp_stage stage = TS_RESOLVE;
	enum tcp_step st;
	double t0 = conn_now(), t1, connect_ms, tls_ms = 0;
	size_t got = 0;
	int tried = 0;

	host->detail_str(result, "server", t->label);
	st = tcp_resolve(t, deadline_ms, &res, why, sizeof(why));
	if (st != TCP_OK)
		goto out;
	t1 = conn_now();
	host->detail_num(result, "resolve_ms", t1 - t0);
	stage = TS_CONNECT;
	st = tcp_connect(&r, res, addr, sizeof(addr), &tried, why, sizeof(why));
	freeaddrinfo(res);
	host->detail_num(result, "addresses_tried", tried);
	if (st != TCP_OK)
		goto out;
	connect_ms = conn_now() - t1;
	host->detail_str(result, "address", addr);
	host->detail_num(result, "connect_ms", connect_ms);

	if (t->tls) {
		t1 = conn_now();
		stage = TS_TLS;
		st = tcp_handshake(&r, why, sizeof(why));
		if (st != TCP_OK)
			goto out;
		tls_ms = conn_now() - t1;
		host->detail_str(result, "tls_version", SSL_get_version(r.c.ssl));
		host->detail_num(result, "tls_handshake_ms", tls_ms);
		cert_st = tcp_cert(&r, result, cert_why, sizeof(cert_why));
		if (cert_st == HEALTHD_FAIL) {
			/* Nothing is sent to a server that failed. */
			host->result(result, HEALTHD_FAIL, "%s: %s", t->label,
				     cert_why);
			goto done;
		}
	}
	if (t->send) {
		stage = TS_SEND;
		st = tcp_send(&r, why, sizeof(why));
		if (st != TCP_OK)
			goto out;
	}
	if (t->buf) {
		stage = TS_EXPECT;
		st = tcp_expect(&r, &got, why, sizeof(why));
		host->detail_num(result, "bytes_received", (double)got);
		if (st != TCP_OK)
			goto out;
	}
	host->detail_num(result, "latency_ms", conn_now() - t0);
	if (cert_st != HEALTHD_PASS)
		host->result(result, cert_st, "%s: %s", t->label, cert_why);
	else if (t->tls)
		host->result(result, HEALTHD_PASS,
			     "%s: connected in %.1f ms, %s in %.1f ms%s, %s",
			     t->label, connect_ms, SSL_get_version(r.c.ssl),
			     tls_ms, t->buf ? ", answer matched" : "",
			     cert_why);
	else
		host->result(result, HEALTHD_PASS, "%s: connected in %.1f ms%s",
			     t->label, connect_ms,
			     t->buf ? ", answer matched" : "");
	goto done;
out:
	if (st == TCP_TIMEOUT)
		host->result(result, HEALTHD_FAIL,
			     "%s: timed out after %lld ms %s", t->label,
			     (long long)(host->now_ms() - start),
			     tcp_stage_name[stage]);
	else
		host->result(result, HEALTHD_FAIL, "%s: %s", t->label, why);
done:
	conn_close(&r.c);
}

static void tcp_destroy(void *instance)
{
	struct tcp *t = instance;

	if (!t)
		return;
	if (t->has_re)
		regfree(&t->re);
	SSL_CTX_free(t->ctx);
	free(t->buf);
	free(t);
}

static int tcp_is_ip(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int tcp_create_tls(struct tcp *t, char *err, size_t errlen)
{
	const char *ca_file = t->host->option(t->check, "ca_file");

	return conn_tls_ctx(&t->ctx, ca_file, err, errlen);
}

static int tcp_create(const struct healthd_host *host,
		      const struct healthd_check *check, void **instance,
		      char *err, size_t errlen)
{
	const char *re = host->option(check, "expect_regex");
	const char *ca_file = host->option(check, "ca_file");
	struct tcp *t = calloc(1, sizeof(*t));
	long long port = 0;
	int rc = -EINVAL;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->host = host;
	t->check = check;
	/* host and port are `required`: the core refused the check without
	 * them (a core older than ABI 1.2 refuses this plugin). */
	t->host_name = host->option(check, "host");
	if (strlen(t->host_name) >= NI_MAXHOST) {
		snprintf(err, errlen, "host: longer than %d characters",
			 NI_MAXHOST - 1);
		goto fail;
	}
	if (strchr(t->host_name, ':') && !tcp_is_ip(t->host_name)) {
		snprintf(err, errlen, "host: a name or address without the "
				      "port (set port) and an IPv6 address "
				      "without brackets");
		goto fail;
	}
	rc = host->option_int(check, "port", &port, err, errlen);
	if (rc != 0) {
		rc = -EINVAL;
		goto fail;
	}
	rc = -EINVAL;
	if (port < 1 || port > 65535) {
		snprintf(err, errlen, "port: expected 1-65535");
		goto fail;
	}
	snprintf(t->port, sizeof(t->port), "%lld", port);
	snprintf(t->label, sizeof(t->label),
		 strchr(t->host_name, ':') ? "[%s]:%s" : "%s:%s", t->host_name,
		 t->port);
	host->target(check, "%s", t->label);

	t->send = host->option(check, "send");
	if (t->send && !t->send[0])
		t->send = NULL;
	t->expect = host->option(check, "expect");
	if (t->expect && !t->expect[0])
		t->expect = NULL;
	if (re && !re[0])
		re = NULL;
	if (t->expect && re) {
		snprintf(err, errlen, "expect_regex: set expect or "
				      "expect_regex, not both");
		goto fail;
	}
	if (re) {
		/* regerror() would quote nothing of it, but be sure. */
		if (regcomp(&t->re, re, REG_EXTENDED | REG_NOSUB) != 0) {
			snprintf(err, errlen, "expect_regex: not a valid POSIX "
					      "extended regular expression");
			goto fail;
		}
		t->has_re = 1;
	}
	if ((t->expect || t->has_re) && !(t->buf = malloc(TCP_READ_CAP + 1))) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}

	if (host->option_bool(check, "tls", &t->tls, err, errlen) < 0 ||
	    host->option_bool(check, "tls_verify", &t->verify, err,
			      errlen) < 0 ||
	    tls_cert_limits(host, check, &t->lim, err, errlen) < 0)
		goto fail;
	t->server_name = host->option(check, "server_name");
	if (t->server_name && !t->server_name[0])
		t->server_name = NULL;
	if (!t->tls && (t->server_name || ca_file)) {
		snprintf(err, errlen, "%s: needs tls: true",
			 t->server_name ? "server_name" : "ca_file");
		goto fail;
	}
	if (t->tls) {
		if (!t->server_name)
			t->server_name = t->host_name;
		t->name_is_ip = tcp_is_ip(t->server_name);
		rc = tcp_create_tls(t, err, errlen);
		if (rc < 0)
			goto fail;
	}
	*instance = t;
	return 0;
fail:
	tcp_destroy(t);
	return rc;
}

HEALTHD_PLUGIN_DEFINE(.name = "tcp",
		      .description = "TCP: connect, optional TLS with certificate "
				     "expiry, send and expect",
		      .options = tcp_options, .create = tcp_create,
		      .check = tcp_check, .destroy = tcp_destroy,
		      .required = (const char *const[]){"host", "port", NULL});
