/*
 * redis.c — the bundled Redis check: plain TCP, TLS (rediss://) or a unix
 * socket.
 *
 * Each run connects, authenticates (an ACL user or the legacy password),
 * selects the database, sends PING and reads INFO for the role, version and
 * memory.  The connection is ours — a non-blocking socket, with OpenSSL on
 * top for rediss:// — and hiredis only formats commands and parses replies
 * (redisReader works over any transport), so one code path serves every
 * kind of URL and Debian's hiredis 0.14, which has no TLS, is enough.
 *
 * Every step is bounded by the run's deadline:
 *   - host names are resolved with the shared resolve_within() (NSS:
 *     /etc/hosts, DNS with the search list) without blocking past it;
 *   - every address is tried in the resolver's order: a new attempt starts
 *     when the previous one failed or after CONN_STAGGER_MS without an
 *     answer, the earlier ones still in flight, so a black-holed first
 *     address does not eat the deadline; the first to connect wins;
 *   - the TLS handshake, every send and every reply wait on poll() against
 *     the deadline, so a hung server costs the time left and no more.
 *
 * TLS: SNI and certificate verification use the URL's host name (an
 * address is verified as an address and sent no SNI).  The handshake itself
 * never fails on verification: the chain and name are judged right after
 * it, so the certificate's expiry is reported even with tls_verify: false,
 * and no credential is sent to a server that failed verification.
 *
 * Failures are told in fixed phrases: an error reply may name the user
 * (Redis 7.2: "NOPERM User app has no permissions ...") or repeat a
 * command's arguments, so only its error code is taken from it; OpenSSL's
 * reasons are its fixed texts.  Nothing of the URL but host, port and
 * database is ever shown, nor the content of a key or certificate file.
 *
 * The plugin host leaves SIGPIPE at its default: every write is a send()
 * with MSG_NOSIGNAL, OpenSSL's included (conn.c).
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <healthd/plugin.h>

#include "conn.h"
#include "resolve.h"
#include "tls_cert.h"

#define RD_REPLY_MAX (1 << 20)  /* bytes read for one reply, at most */

enum rd_role { RD_ANY, RD_MASTER, RD_REPLICA };

enum rd_step {
	RD_OK = 0,
	RD_TIMEOUT, /* the deadline passed; the stage is in the message */
	RD_BROKEN,  /* the connection failed or was lost; why says how */
	RD_ERROR,   /* the server answered with an error */
};

struct rd {
	const struct healthd_host *host;
	const struct healthd_check *check;
	char *host_name; /* NULL for a unix socket */
	int port;
	char port_text[8];
	char *path; /* unix socket path */
	char *user;
	char *password;
	long db;
	enum rd_role role;
	double max_ratio; /* 0: not checked */
	char label[300];  /* host:port/db or the socket path, for messages */
	/* rediss:// */
	int tls, verify, has_cert, name_is_ip;
	SSL_CTX *ctx;
	struct tls_cert_limits lim;
};

/* One run's connection. */
struct rd_conn {
	const struct rd *rd;
	struct conn conn;
	redisReader *reader;
	int asked_cert; /* the server asked for a client certificate */
	int replies;    /* replies received so far */
};

static const struct healthd_option_spec rd_options[] = {
	{"url", NULL,
	 "redis://[user:password@]host[:port][/db], rediss://... for TLS "
	 "(port 6379 by default for both), or "
	 "unix://[user:password@]/path[?db=N]"},
	{"role", "any", "any | master | replica: the role INFO must report"},
	{"max_memory_ratio", NULL,
	 "warn when used_memory / maxmemory is above this ratio (0 to 1)"},
	{"tls_verify", "true",
	 "rediss://: fail when the certificate chain or the host name does "
	 "not verify; false still reports the certificate and judges its "
	 "expiry"},
	{"ca_file", NULL,
	 "rediss://: PEM file of CA certificates to trust instead of the "
	 "system's"},
	{"cert_file", NULL,
	 "rediss://: PEM client certificate (and chain), for servers that "
	 "require one"},
	{"key_file", NULL,
	 "rediss://: the unencrypted PEM private key of cert_file (default: "
	 "read from cert_file)"},
	TLS_CERT_OPTIONS,
	{NULL, NULL, NULL},
};

/* ---- connecting ---------------------------------------------------------- */

static void rd_connect_reason(int err, char *why, size_t whylen)
{
	if (err == ECONNREFUSED)
		snprintf(why, whylen, "connection refused");
	else if (err == ENOENT)
		snprintf(why, whylen, "connection failed: no such socket");
	else if (err)
		snprintf(why, whylen, "connection failed: %s", strerror(err));
	else
		snprintf(why, whylen, "connection failed");
}

/* conn.c connects; redis keeps its own phrases.  Sets c->conn.fd, *won
 * and *tried. */
static enum rd_step rd_connect(struct rd_conn *c, const struct addrinfo *res,
			       const struct addrinfo **won, int *tried,
			       char *why, size_t whylen)
{
	int err;

	switch (conn_connect(&c->conn, res, won, tried, &err)) {
	case CONN_OK:
		return RD_OK;
	case CONN_TIMEOUT:
		return RD_TIMEOUT;
	default:
		rd_connect_reason(err, why, whylen);
		return RD_BROKEN;
	}
}

/* ---- TLS ----------------------------------------------------------------- */

/* Called when the server asks for a client certificate: remember it, to
 * tell why the server then gives up on us. */
static int rd_cert_asked(SSL *ssl, void *arg)
{
	(void)ssl;
	((struct rd_conn *)arg)->asked_cert = 1;
	return 1; /* go on, with cert_file's certificate or none */
}

/* Encrypted keys are not supported: never prompt on a terminal. */
static int rd_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Alerts a server sends about the client's certificate. */
static int rd_refused_cert(int reason)
{
	switch (reason) {
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		return 1;
	default:
		return 0;
	}
}

/*
 * Why a TLS call failed, in fixed words: ours for what a probe needs to
 * tell (a client certificate missing or refused), else `what` and
 * OpenSSL's reason text, or the system's.
 */
static void rd_ssl_reason(const struct rd_conn *c, const char *what,
			  int sslerr, char *why, size_t whylen)
{
	unsigned long e = ERR_peek_last_error();
	int reason = e ? ERR_GET_REASON(e) : 0;
	const char *text = e ? ERR_reason_error_string(e) : NULL;
	/* In TLS 1.3 the server judges our certificate after the handshake:
	 * its verdict is the end of the connection before the first reply. */
	int first = c->asked_cert && !c->replies &&
		    SSL_is_init_finished(c->conn.ssl);

	if (!c->rd->has_cert &&
	    (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
	     (c->asked_cert && !SSL_is_init_finished(c->conn.ssl)) || first))
		snprintf(why, whylen, "the server requires a client "
				      "certificate (set cert_file and "
				      "key_file)");
	else if (c->rd->has_cert && c->asked_cert && rd_refused_cert(reason))
		snprintf(why, whylen, "the server refused the client "
				      "certificate: %s", text ? text : "alert");
	else if (c->rd->has_cert && first && !text)
		snprintf(why, whylen, "the server closed the connection right "
				      "after the TLS handshake (was the client "
				      "certificate refused?)");
	else if (text)
		snprintf(why, whylen, "%s: %s", what, text);
	else if (sslerr == SSL_ERROR_SYSCALL && errno)
		snprintf(why, whylen, "%s: %s", what, strerror(errno));
	else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN)
		snprintf(why, whylen, "%s: server closed the connection", what);
	else
		snprintf(why, whylen, "%s", what);
	ERR_clear_error();
}

/*
 * A write failed on a closed connection: the server may have said why (a
 * TLS alert about our certificate) before it closed.  Read that, without
 * waiting, to report it rather than "connection reset".
 */
static void rd_ssl_last_word(const struct rd_conn *c, int *sslerr)
{
	char byte;
	int n, e;

	ERR_clear_error();
	n = SSL_read(c->conn.ssl, &byte, 1);
	e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(c->conn.ssl, n);
	if (e == SSL_ERROR_SSL)
		*sslerr = e; /* its reason is on the error queue */
	else
		ERR_clear_error();
}

/* conn.c's outcome in redis's words: RD_OK to go on; CONN_FAILED (with
 * TLS) says errno with `what`. */
static enum rd_step rd_ssl_step(const struct rd_conn *c, enum conn_step st,
				int sslerr, const char *what, char *why,
				size_t whylen)
{
	switch (st) {
	case CONN_OK:
		return RD_OK;
	case CONN_TIMEOUT:
		return RD_TIMEOUT;
	case CONN_TLS_FAILED:
		rd_ssl_reason(c, what, sslerr, why, whylen);
		return RD_BROKEN;
	default:
		snprintf(why, whylen, "%s: %s", what, strerror(errno));
		return RD_BROKEN;
	}
}

static enum rd_step rd_handshake(struct rd_conn *c, char *why, size_t whylen)
{
	const struct rd *rd = c->rd;
	int e = SSL_ERROR_NONE;

	if (conn_tls_start(&c->conn, rd->ctx, rd->host_name, rd->name_is_ip) <
	    0) {
		snprintf(why, whylen, "cannot set up TLS (out of memory?)");
		return RD_BROKEN;
	}
	SSL_set_cert_cb(c->conn.ssl, rd_cert_asked, c);
	return rd_ssl_step(c, conn_tls_handshake(&c->conn, &e), e,
			   "TLS handshake failed", why, whylen);
}

/*
 * Read, report and judge the server's certificate: FAIL when tls_verify
 * refuses it, when it has expired or is under cert_fail_days; WARN under
 * cert_warn_days.  `why` says what was found.
 */
static enum healthd_status rd_cert(const struct rd_conn *c,
				   struct healthd_result *result, char *why,
				   size_t whylen)
{
	const struct rd *rd = c->rd;

	return conn_tls_cert(&c->conn, rd->host, result, rd->verify, &rd->lim,
			     "TLS certificate verify failed", why, whylen);
}

/* ---- commands ------------------------------------------------------------ */

/* The connection ended under a plain read or write: err 0 at the end of
 * the stream. */
static enum rd_step rd_lost(const struct rd_conn *c, int err, char *why,
			    size_t whylen)
{
	if (err && err != ECONNRESET && err != EPIPE)
		snprintf(why, whylen, "connection lost: %s", strerror(err));
	else
		/* A TLS port closes on the first plain command. */
		snprintf(why, whylen, "server closed the connection%s",
			 !c->replies && !c->conn.ssl && !c->rd->path
				 ? " before answering (a TLS port? use "
				   "rediss://)"
				 : "");
	return RD_BROKEN;
}

static enum rd_step rd_send(const struct rd_conn *c, const char *p,
			    size_t left, char *why, size_t whylen)
{
	int e = SSL_ERROR_NONE;
	enum conn_step st = conn_send(&c->conn, p, left, &e);

	if (st == CONN_FAILED && !c->conn.ssl)
		return rd_lost(c, errno, why, whylen);
	if (st == CONN_TLS_FAILED && e == SSL_ERROR_SYSCALL)
		rd_ssl_last_word(c, &e);
	return rd_ssl_step(c, st, e, "sending failed", why, whylen);
}

/* Read what has come (waiting for it until the deadline) into the reply
 * reader; *got says how much. */
static enum rd_step rd_read(const struct rd_conn *c, size_t *got, char *why,
			    size_t whylen)
{
	char buf[16384];
	int e = SSL_ERROR_NONE;
	enum conn_step st = conn_recv(&c->conn, buf, sizeof(buf), got, &e);
	enum rd_step rst;

	if (st == CONN_EOF && c->conn.ssl) {
		if (!c->asked_cert) {
			snprintf(why, whylen, "server closed the "
					      "connection");
			return RD_BROKEN;
		}
		/* Maybe our certificate's verdict: rd_ssl_reason() tells. */
		st = CONN_TLS_FAILED;
	}
	if (st == CONN_EOF)
		return rd_lost(c, 0, why, whylen);
	if (st == CONN_FAILED && !c->conn.ssl)
		return rd_lost(c, errno, why, whylen);
	rst = rd_ssl_step(c, st, e, "receiving failed", why, whylen);
	if (rst != RD_OK)
		return rst;
	if (redisReaderFeed(c->reader, buf, *got) != REDIS_OK) {
		snprintf(why, whylen, "out of memory");
		return RD_BROKEN;
	}
	return RD_OK;
}

/* Send one command and wait for its reply until the deadline. */
static enum rd_step rd_command(struct rd_conn *c, redisReply **out,
			       int argc, const char **argv, char *why,
			       size_t whylen)
{
	size_t lens[4], total = 0;
	char *cmd = NULL;
	void *reply = NULL;
	enum rd_step st;
	int len;

	*out = NULL;
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	if (len < 0) {
		snprintf(why, whylen, "out of memory");
		return RD_BROKEN;
	}
	st = rd_send(c, cmd, (size_t)len, why, whylen);
	/* AUTH's text holds the password. */
	explicit_bzero(cmd, (size_t)len);
	redisFreeCommand(cmd);
	if (st != RD_OK)
		return st;
	for (;;) {
		size_t got = 0;

		if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
			snprintf(why, whylen, "protocol error (is it a Redis "
					      "server?)");
			return RD_BROKEN;
		}
		if (reply)
			break;
		if (total > RD_REPLY_MAX) {
			snprintf(why, whylen, "reply larger than %d KiB",
				 RD_REPLY_MAX / 1024);
			return RD_BROKEN;
		}
		st = rd_read(c, &got, why, whylen);
		if (st != RD_OK)
			return st;
		total += got;
	}
	c->replies++;
	*out = reply;
	return ((redisReply *)reply)->type == REDIS_REPLY_ERROR ? RD_ERROR
								 : RD_OK;
}

static void rd_close(struct rd_conn *c)
{
	conn_close(&c->conn);
	if (c->reader)
		redisReaderFree(c->reader);
	c->reader = NULL;
}

/* Error replies in our words, by how they begin. */
static const struct {
	const char *start;
	const char *says;
} rd_replies[] = {
	{"NOAUTH", "authentication required"},
	{"WRONGPASS", "authentication failed"},
	{"NOPERM", "not permitted by the user's ACL (NOPERM)"},
	{"BUSY", "server is busy running a script (BUSY)"},
	{"MASTERDOWN", "the replica's link with its master is down (MASTERDOWN)"},
	{"MISCONF", "server cannot persist its data (MISCONF)"},
	{"READONLY", "read-only replica (READONLY)"},
	{"ERR DB index is out of range", "database index out of range"},
	{"ERR invalid DB index", "invalid database index"},
	{"ERR SELECT is not allowed in cluster mode",
	 "SELECT is not allowed in cluster mode"},
	{"ERR unknown command", "unknown command"},
};

/* An error reply in our words; from its text only its code (the leading
 * capitals, e.g. ERR) is ever shown. */
static void rd_reply_reason(const char *what, const redisReply *r, char *why,
			    size_t whylen)
{
	const char *s = r->type == REDIS_REPLY_ERROR && r->str ? r->str : "";
	size_t n = 0;

	if (!strncmp(s, "LOADING", 7)) {
		snprintf(why, whylen, "server is loading its dataset");
		return;
	}
	for (size_t i = 0; i < sizeof(rd_replies) / sizeof(rd_replies[0]); i++) {
		if (!strncmp(s, rd_replies[i].start,
			     strlen(rd_replies[i].start))) {
			snprintf(why, whylen, "%s refused: %s", what,
				 rd_replies[i].says);
			return;
		}
	}
	while (s[n] >= 'A' && s[n] <= 'Z' && n < 20)
		n++;
	if (n && (s[n] == ' ' || s[n] == '\0'))
		snprintf(why, whylen, "%s refused: error %.*s", what, (int)n, s);
	else
		snprintf(why, whylen, "%s: unexpected reply", what);
}

/* The value of `key` in an INFO reply, or NULL. */
static const char *rd_info(const char *info, const char *key, char *out,
			   size_t outlen)
{
	size_t klen = strlen(key);

	for (const char *p = info; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			size_t n = strcspn(p + klen + 1, "\r\n");

			if (n >= outlen)
				n = outlen - 1;
			memcpy(out, p + klen + 1, n);
			out[n] = '\0';
			return out;
		}
	}
	return NULL;
}

enum rd_stage {
	RS_RESOLVE, RS_CONNECT, RS_TLS, RS_AUTH, RS_SELECT, RS_PING, RS_INFO,
};

static const char *rd_stage_name[] = {
	"resolving the host name", "connecting", "in the TLS handshake",
	"waiting for AUTH", "waiting for SELECT", "waiting for PING",
	"waiting for INFO",
};

/* Resolve (or build the unix address) and connect; with rediss://, the
 * handshake and the certificate's verdict in *cert_st and cert_why. */
static enum rd_step rd_open(struct rd_conn *c, struct healthd_result *result,
			    enum rd_stage *stage,
			    enum healthd_status *cert_st, char *cert_why,
			    size_t cert_whylen, char *why, size_t whylen)
{
	const struct rd *rd = c->rd;
	const struct healthd_host *host = rd->host;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct addrinfo unix_ai = {.ai_family = AF_UNIX,
				   .ai_socktype = SOCK_STREAM,
				   .ai_addr = (struct sockaddr *)&sun,
				   .ai_addrlen = sizeof(sun)};
	const struct addrinfo *won;
	struct addrinfo *res = NULL;
	char addr[NI_MAXHOST];
	enum rd_step st;
	double t0 = conn_now();
	int tried = 0;

	*stage = RS_RESOLVE;
	if (rd->path) {
		/* Its length was checked by create(). */
		memcpy(sun.sun_path, rd->path, strlen(rd->path) + 1);
	} else {
		/* Its words on failure: "could not resolve NAME (timed out
		 * after N ms)", "NAME: name does not exist"... */
		if (resolve_within(rd->host_name, rd->port_text, SOCK_STREAM,
				   c->conn.deadline, host->now_ms, &res, why,
				   whylen) != RESOLVE_OK)
			return RD_BROKEN;
		host->detail_num(result, "resolve_ms", conn_now() - t0);
	}
	*stage = RS_CONNECT;
	st = rd_connect(c, res ? res : &unix_ai, &won, &tried, why, whylen);
	if (res) {
		host->detail_num(result, "addresses_tried", tried);
		if (st == RD_OK)
			host->detail_str(result, "address",
					 resolve_addr_text(won, addr,
							   sizeof(addr)));
		freeaddrinfo(res);
	}
	if (st != RD_OK)
		return st;
	c->reader = redisReaderCreate();
	if (!c->reader) {
		snprintf(why, whylen, "out of memory");
		return RD_BROKEN;
	}
	if (!rd->tls)
		return RD_OK;

	*stage = RS_TLS;
	t0 = conn_now();
	st = rd_handshake(c, why, whylen);
	if (st != RD_OK)
		return st;
	host->detail_str(result, "tls_version", SSL_get_version(c->conn.ssl));
	host->detail_num(result, "tls_handshake_ms", conn_now() - t0);
	*cert_st = rd_cert(c, result, cert_why, cert_whylen);
	if (*cert_st == HEALTHD_FAIL) {
		/* No credential goes to a server that failed. */
		snprintf(why, whylen, "%s", cert_why);
		return RD_BROKEN;
	}
	return RD_OK;
}

static void rd_check(const struct healthd_host *host, void *instance,
		     int64_t deadline_ms, struct healthd_result *result)
{
	struct rd *rd = instance;
	struct rd_conn c = {.rd = rd,
			    .conn = CONN_INIT(deadline_ms, host->now_ms)};
	int64_t start = host->now_ms();
	redisReply *reply = NULL;
	enum rd_stage stage = RS_RESOLVE;
	enum healthd_status cert_st = HEALTHD_PASS, status;
	char why[256] = "", cert_why[200] = "", msg[256];
	char version[64], role[32], num[32], dbs[24];
	double latency = 0, used = 0, maxmem = 0, t0;
	int have_info = 0;
	enum rd_step st;

	host->detail_str(result, "server", rd->label);
	st = rd_open(&c, result, &stage, &cert_st, cert_why, sizeof(cert_why),
		     why, sizeof(why));
	if (st != RD_OK)
		goto fail;

	if (rd->password) {
		const char *argv[] = {"AUTH", rd->user ? rd->user : rd->password,
				      rd->password};

		stage = RS_AUTH;
		st = rd_command(&c, &reply, rd->user ? 3 : 2, argv, why,
				sizeof(why));
		if (st == RD_ERROR) {
			/* Redis names neither the user nor the password here;
			 * say it in our words all the same. */
			snprintf(why, sizeof(why), "authentication failed%s",
				 reply->str && strstr(reply->str,
						      "without any password")
					 ? " (the server has no password set)"
					 : "");
			goto fail;
		}
		if (st != RD_OK)
			goto fail;
		freeReplyObject(reply);
		reply = NULL;
	}

	if (rd->db) {
		const char *argv[] = {"SELECT", dbs};

		snprintf(dbs, sizeof(dbs), "%ld", rd->db);
		stage = RS_SELECT;
		st = rd_command(&c, &reply, 2, argv, why, sizeof(why));
		if (st == RD_ERROR)
			rd_reply_reason("SELECT", reply, why, sizeof(why));
		if (st != RD_OK)
			goto fail;
		freeReplyObject(reply);
		reply = NULL;
	}

	{
		const char *argv[] = {"PING"};

		stage = RS_PING;
		t0 = conn_now();
		st = rd_command(&c, &reply, 1, argv, why, sizeof(why));
		latency = conn_now() - t0;
		if (st == RD_ERROR)
			rd_reply_reason("PING", reply, why, sizeof(why));
		if (st != RD_OK)
			goto fail;
		if (reply->type != REDIS_REPLY_STATUS ||
		    strcmp(reply->str, "PONG") != 0) {
			snprintf(why, sizeof(why), "PING: unexpected reply");
			goto fail;
		}
		freeReplyObject(reply);
		reply = NULL;
		host->detail_num(result, "latency_ms", latency);
	}

	{
		const char *argv[] = {"INFO"};

		stage = RS_INFO;
		st = rd_command(&c, &reply, 1, argv, why, sizeof(why));
		if (st == RD_ERROR)
			rd_reply_reason("INFO", reply, why, sizeof(why));
		if (st == RD_TIMEOUT || st == RD_BROKEN)
			goto fail;
		/* A user whose ACL denies INFO can still be checked by PING,
		 * unless the check needs what INFO says. */
		have_info = st == RD_OK && reply->type == REDIS_REPLY_STRING;
		if (!have_info && (rd->role != RD_ANY || rd->max_ratio > 0)) {
			if (st == RD_OK)
				snprintf(why, sizeof(why), "INFO: unexpected reply");
			st = RD_ERROR;
			goto fail;
		}
	}

	strcpy(role, "unknown");
	strcpy(version, "unknown version");
	if (have_info) {
		rd_info(reply->str, "redis_version", version, sizeof(version));
		host->detail_str(result, "redis_version", version);
		if (rd_info(reply->str, "role", role, sizeof(role)) &&
		    !strcmp(role, "slave"))
			strcpy(role, "replica");
		host->detail_str(result, "role", role);
		if (rd_info(reply->str, "used_memory", num, sizeof(num))) {
			used = strtod(num, NULL);
			host->detail_num(result, "used_memory", used);
		}
		if (rd_info(reply->str, "maxmemory", num, sizeof(num))) {
			maxmem = strtod(num, NULL);
			host->detail_num(result, "maxmemory", maxmem);
		}
		if (maxmem > 0)
			host->detail_num(result, "memory_ratio", used / maxmem);
	}

	status = HEALTHD_PASS;
	if ((rd->role == RD_MASTER && strcmp(role, "master") != 0) ||
	    (rd->role == RD_REPLICA && strcmp(role, "replica") != 0)) {
		status = HEALTHD_FAIL;
		snprintf(msg, sizeof(msg), "role is %s, expected %s", role,
			 rd->role == RD_MASTER ? "master" : "replica");
	} else if (rd->max_ratio > 0 && maxmem > 0 &&
		   used / maxmem > rd->max_ratio) {
		status = HEALTHD_WARN;
		snprintf(msg, sizeof(msg), "used memory is %.1f%% of maxmemory, "
					   "above max_memory_ratio",
			 100.0 * used / maxmem);
	} else {
		snprintf(msg, sizeof(msg), "PONG in %.1f ms (%s, %s%s%s%s)",
			 latency, role, version, c.conn.ssl ? ", " : "",
			 c.conn.ssl ? SSL_get_version(c.conn.ssl) : "",
			 rd->max_ratio > 0 && maxmem <= 0
				 ? "; no maxmemory set, ratio not checked"
				 : "");
	}
	/* A certificate near its end makes a pass a warn, and says so. */
	if (cert_st == HEALTHD_WARN && status != HEALTHD_FAIL) {
		status = HEALTHD_WARN;
		host->result(result, status, "redis %s: %s; %s", rd->label, msg,
			     cert_why);
	} else {
		host->result(result, status, "redis %s: %s", rd->label, msg);
	}
	goto done;
fail:
	if (st == RD_TIMEOUT)
		host->result(result, HEALTHD_FAIL,
			     "redis %s: timed out after %lld ms %s", rd->label,
			     (long long)(host->now_ms() - start),
			     rd_stage_name[stage]);
	else
		host->result(result, HEALTHD_FAIL, "redis %s: %s", rd->label,
			     why);
done:
	if (reply)
		freeReplyObject(reply);
	rd_close(&c);
}

static void rd_destroy(void *instance)
{
	struct rd *rd = instance;

	if (!rd)
		return;
	free(rd->host_name);
	free(rd->path);
	free(rd->user);
	if (rd->password) {
		/* Do not leave the password in freed memory. */
		explicit_bzero(rd->password, strlen(rd->password));
		free(rd->password);
	}
	SSL_CTX_free(rd->ctx);
	free(rd);
}

static int rd_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A percent-decoded copy of s[0..n), or NULL (out of memory, bad escape,
 * or an embedded NUL). */
static char *rd_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? rd_hex(s[i + 1]) : -1;
			int lo = hi >= 0 ? rd_hex(s[i + 2]) : -1;

			if (lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* A non-negative decimal number no larger than max, or -1. */
static long rd_number(const char *s, size_t n, long max)
{
	long v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v <= max ? v : -1;
}

/*
 * Parse the url into rd.  Errors say what was expected and never quote the
 * url: it may hold the password.  Returns 0, -EINVAL or -ENOMEM.
 */
static int rd_parse_url(struct rd *rd, const char *url, char *err,
			size_t errlen)
{
	const char *p, *at, *end, *q;
	int is_unix;

	if (!strncmp(url, "redis://", 8)) {
		is_unix = 0;
		p = url + 8;
	} else if (!strncmp(url, "rediss://", 9)) {
		is_unix = 0;
		rd->tls = 1;
		p = url + 9;
	} else if (!strncmp(url, "unix://", 7)) {
		is_unix = 1;
		p = url + 7;
	} else {
		snprintf(err, errlen, "url: expected redis://[user:password@]"
				      "host[:port][/db], rediss://... (TLS) "
				      "or unix:///path");
		return -EINVAL;
	}

	/* user:password@ — the last '@': a password may hold one. */
	at = strrchr(p, '@');
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));

		if (colon) {
			if (colon > p) {
				rd->user = rd_decode(p, (size_t)(colon - p));
				if (!rd->user)
					goto bad_userinfo;
			}
			rd->password = rd_decode(colon + 1, (size_t)(at - colon - 1));
		} else {
			/* Like redis-cli: a lone userinfo is the password. */
			rd->password = rd_decode(p, (size_t)(at - p));
		}
		if (!rd->password)
			goto bad_userinfo;
		if (!rd->password[0]) {
			free(rd->password);
			rd->password = NULL;
			if (rd->user) {
				snprintf(err, errlen, "url: a user needs a password");
				return -EINVAL;
			}
		}
		p = at + 1;
	}

	if (is_unix) {
		end = p + strcspn(p, "?");
		if (*p != '/' || end == p + 1) {
			snprintf(err, errlen, "url: expected unix:///path/to/socket");
			return -EINVAL;
		}
		if ((size_t)(end - p) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(err, errlen, "url: the socket path is longer "
					      "than %zu bytes",
				 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			return -EINVAL;
		}
		rd->path = strndup(p, (size_t)(end - p));
		if (!rd->path)
			return -ENOMEM;
		q = *end ? end + 1 : NULL;
		if (q) {
			if (strncmp(q, "db=", 3) != 0 ||
			    (rd->db = rd_number(q + 3, strlen(q + 3), 1000000)) < 0) {
				snprintf(err, errlen, "url: the only query parameter "
						      "of unix:// is db=N");
				return -EINVAL;
			}
		}
		snprintf(rd->label, sizeof(rd->label), "unix:%s/%ld", rd->path,
			 rd->db);
		return 0;
	}

	/* host: a name, an IPv4 address, or [an IPv6 address] */
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end || end == p + 1) {
			snprintf(err, errlen, "url: unterminated [IPv6 address]");
			return -EINVAL;
		}
		rd->host_name = strndup(p + 1, (size_t)(end - p - 1));
		end++;
	} else {
		end = p + strcspn(p, ":/?");
		if (end == p) {
			snprintf(err, errlen, "url: no host");
			return -EINVAL;
		}
		rd->host_name = strndup(p, (size_t)(end - p));
	}
	if (!rd->host_name)
		return -ENOMEM;
	if (strlen(rd->host_name) >= NI_MAXHOST) {
		snprintf(err, errlen, "url: the host name is longer than %d "
				      "characters", NI_MAXHOST - 1);
		return -EINVAL;
	}
	p = end;
	rd->port = 6379;
	if (*p == ':') {
		end = p + 1 + strcspn(p + 1, "/?");
		rd->port = (int)rd_number(p + 1, (size_t)(end - p - 1), 65535);
		if (rd->port <= 0) {
			snprintf(err, errlen, "url: the port must be 1 to 65535");
			return -EINVAL;
		}
		p = end;
	}
	if (*p == '/') {
		end = p + 1 + strcspn(p + 1, "?");
		if (end > p + 1 &&
		    (rd->db = rd_number(p + 1, (size_t)(end - p - 1), 1000000)) < 0) {
			snprintf(err, errlen, "url: the database must be a number");
			return -EINVAL;
		}
		p = end;
	}
	if (*p) {
		snprintf(err, errlen, "url: query parameters are not supported");
		return -EINVAL;
	}
	snprintf(rd->port_text, sizeof(rd->port_text), "%d", rd->port);
	snprintf(rd->label, sizeof(rd->label),
		 strchr(rd->host_name, ':') ? "[%s]:%d/%ld" : "%s:%d/%ld",
		 rd->host_name, rd->port, rd->db);
	return 0;
bad_userinfo:
	snprintf(err, errlen, "url: bad percent-encoding in user:password");
	return -EINVAL;
}

/* The TLS context of a rediss:// check: CAs, client certificate. */
static int rd_create_tls(struct rd *rd, char *err, size_t errlen)
{
	const struct healthd_host *host = rd->host;
	const char *ca_file = host->option(rd->check, "ca_file");
	const char *cert_file = host->option(rd->check, "cert_file");
	const char *key_file = host->option(rd->check, "key_file");
	int rc;

	if (host->option_bool(rd->check, "tls_verify", &rd->verify, err,
			      errlen) < 0 ||
	    tls_cert_limits(host, rd->check, &rd->lim, err, errlen) < 0)
		return -EINVAL;
	if (key_file && key_file[0] && !(cert_file && cert_file[0])) {
		snprintf(err, errlen, "key_file: needs cert_file");
		return -EINVAL;
	}
	rc = conn_tls_ctx(&rd->ctx, ca_file, err, errlen);
	if (rc < 0)
		return rc;
	SSL_CTX_set_default_passwd_cb(rd->ctx, rd_no_passphrase);
	rd->name_is_ip = resolve_is_numeric(rd->host_name);
	if (!(cert_file && cert_file[0]))
		return 0;
	if (!key_file || !key_file[0])
		key_file = cert_file;
	if (access(cert_file, R_OK) != 0) {
		snprintf(err, errlen, "cert_file: cannot read it (%s)",
			 strerror(errno));
		return -EINVAL;
	}
	if (access(key_file, R_OK) != 0) {
		snprintf(err, errlen, "key_file: cannot read it (%s)",
			 strerror(errno));
		return -EINVAL;
	}
	if (SSL_CTX_use_certificate_chain_file(rd->ctx, cert_file) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "cert_file: not a PEM certificate");
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(rd->ctx, key_file,
					SSL_FILETYPE_PEM) != 1) {
		unsigned long e = ERR_peek_last_error();

		ERR_clear_error();
		if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
		    (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
		     ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH))
			snprintf(err, errlen, "key_file: not the key of "
					      "cert_file");
		else
			snprintf(err, errlen, "key_file: not an unencrypted "
					      "PEM private key");
		return -EINVAL;
	}
	if (SSL_CTX_check_private_key(rd->ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "key_file: not the key of cert_file");
		return -EINVAL;
	}
	rd->has_cert = 1;
	return 0;
}

static int rd_create(const struct healthd_host *host,
		     const struct healthd_check *check, void **instance,
		     char *err, size_t errlen)
{
	/* url is `required`: the core refused the check without it. */
	const char *url = host->option(check, "url");
	const char *role = host->option(check, "role");
	const char *ratio = host->option(check, "max_memory_ratio");
	static const char *const tls_only[] = {"ca_file", "cert_file",
					       "key_file"};
	struct rd *rd;
	int rc = -EINVAL;

	rd = calloc(1, sizeof(*rd));
	if (!rd) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rd->host = host;
	rd->check = check;
	rc = rd_parse_url(rd, url, err, errlen);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc < 0)
		goto fail;
	host->target(check, "%s", rd->label);
	rc = -EINVAL;
	if (!strcmp(role, "any")) {
		rd->role = RD_ANY;
	} else if (!strcmp(role, "master")) {
		rd->role = RD_MASTER;
	} else if (!strcmp(role, "replica")) {
		rd->role = RD_REPLICA;
	} else {
		snprintf(err, errlen, "role: expected any, master or replica");
		goto fail;
	}
	if (ratio) {
		char *end;

		rd->max_ratio = strtod(ratio, &end);
		if (end == ratio || *end || !isfinite(rd->max_ratio) ||
		    rd->max_ratio <= 0 || rd->max_ratio > 1) {
			snprintf(err, errlen, "max_memory_ratio: expected a number "
					      "above 0 and at most 1 (e.g. 0.9)");
			goto fail;
		}
	}
	if (rd->tls) {
		rc = rd_create_tls(rd, err, errlen);
		if (rc < 0)
			goto fail;
	} else {
		for (size_t i = 0; i < sizeof(tls_only) / sizeof(tls_only[0]);
		     i++) {
			const char *v = host->option(check, tls_only[i]);

			if (v && v[0]) {
				snprintf(err, errlen, "%s: needs a rediss:// "
						      "url", tls_only[i]);
				goto fail;
			}
		}
	}
	*instance = rd;
	return 0;
fail:
	rd_destroy(rd);
	return rc;
}

HEALTHD_PLUGIN_DEFINE(.name = "redis",
		      .description = "Redis: PING, role and memory; TLS with "
				     "certificate expiry",
		      .options = rd_options, .create = rd_create,
		      .check = rd_check, .destroy = rd_destroy,
		      .required = (const char *const[]){"url", NULL});
