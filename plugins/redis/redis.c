/*
 * redis.c — the bundled Redis check (hiredis).
 *
 * Each run connects, authenticates (an ACL user or the legacy password),
 * selects the database, sends PING and reads INFO for the role, version and
 * memory.  The context is non-blocking and every wait is a poll() bounded by
 * the run's deadline, so a hung server costs the time left and no more.
 *
 * Failures are told in fixed phrases: an error reply may name the user
 * (Redis 7.2: "NOPERM User app has no permissions ...") or repeat a
 * command's arguments, so only its error code is taken from it.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include <healthd/plugin.h>

enum rd_role { RD_ANY, RD_MASTER, RD_REPLICA };

enum rd_step {
	RD_OK = 0,
	RD_TIMEOUT, /* the deadline passed */
	RD_BROKEN,  /* the connection failed or was lost */
	RD_ERROR,   /* the server answered with an error */
};

struct rd {
	const struct healthd_host *host;
	const struct healthd_check *check;
	char *host_name; /* NULL for a unix socket */
	int port;
	char *path; /* unix socket path */
	char *user;
	char *password;
	long db;
	enum rd_role role;
	double max_ratio; /* 0: not checked */
	char label[300];  /* host:port/db or the socket path, for messages */
};

static const struct healthd_option_spec rd_options[] = {
	{"url", NULL,
	 "redis://[user:password@]host[:port][/db] or "
	 "unix://[user:password@]/path[?db=N]"},
	{"role", "any", "any | master | replica: the role INFO must report"},
	{"max_memory_ratio", NULL,
	 "warn when used_memory / maxmemory is above this ratio (0 to 1)"},
	{NULL, NULL, NULL},
};

/* Latency is finer than the deadline clock's milliseconds. */
static double rd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wait until fd is ready for `events` or the deadline: 1 ready, 0 timed
 * out, -1 error. */
static int rd_wait(const struct rd *rd, int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - rd->host->now_ms();
		struct pollfd p = {.fd = fd, .events = events};
		int n;

		if (left <= 0)
			return 0;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* The errno whose strerror() ends `text` (hiredis's I/O errors are
 * "[prefix: ]strerror"), or 0. */
static int rd_errno_of(const char *text)
{
	size_t n = strlen(text);

	for (int e = 1; e < 200; e++) {
		const char *s = strerror(e);
		size_t m = strlen(s);

		if (m && m <= n && !strcmp(text + n - m, s) &&
		    strncmp(s, "Unknown error", 13) != 0)
			return e;
	}
	return 0;
}

/* A connection error in our words: `err` from getsockopt, or what hiredis
 * recorded in c.  No text of hiredis's is shown as it is. */
static void rd_io_reason(int err, const redisContext *c, char *why,
			 size_t whylen)
{
	static const int gai[] = {EAI_NONAME, EAI_AGAIN, EAI_FAIL, EAI_SERVICE,
				  EAI_FAMILY, EAI_MEMORY};

	if (!err && c && c->err == REDIS_ERR_IO)
		err = rd_errno_of(c->errstr);
	if (err == ECONNREFUSED) {
		snprintf(why, whylen, "connection refused");
	} else if (err) {
		snprintf(why, whylen, "connection failed: %s", strerror(err));
	} else if (c && c->err == REDIS_ERR_EOF) {
		snprintf(why, whylen, "server closed the connection");
	} else if (c && c->err == REDIS_ERR_PROTOCOL) {
		snprintf(why, whylen, "protocol error (is it a Redis server?)");
	} else if (c && c->err == REDIS_ERR_OOM) {
		snprintf(why, whylen, "out of memory");
	} else {
		snprintf(why, whylen, "connection failed");
		for (size_t i = 0; c && c->err == REDIS_ERR_OTHER &&
				   i < sizeof(gai) / sizeof(gai[0]); i++)
			if (!strcmp(c->errstr, gai_strerror(gai[i])))
				snprintf(why, whylen, "host name not resolved: %s",
					 gai_strerror(gai[i]));
	}
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

/* Send one command and wait for its reply until the deadline. */
static enum rd_step rd_command(const struct rd *rd, redisContext *c,
			       int64_t deadline, redisReply **out, int argc,
			       const char **argv, char *why, size_t whylen)
{
	size_t lens[4];
	void *reply = NULL;
	int done = 0;

	*out = NULL;
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	if (redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK)
		goto broken;
	while (!done) {
		if (redisBufferWrite(c, &done) != REDIS_OK)
			goto broken;
		if (!done) {
			int r = rd_wait(rd, c->fd, POLLOUT, deadline);

			if (r == 0)
				return RD_TIMEOUT;
			if (r < 0)
				goto broken;
		}
	}
	for (;;) {
		int r;

		if (redisGetReplyFromReader(c, &reply) != REDIS_OK)
			goto broken;
		if (reply)
			break;
		r = rd_wait(rd, c->fd, POLLIN, deadline);
		if (r == 0)
			return RD_TIMEOUT;
		if (r < 0 || redisBufferRead(c) != REDIS_OK)
			goto broken;
	}
	*out = reply;
	return ((redisReply *)reply)->type == REDIS_REPLY_ERROR ? RD_ERROR
								 : RD_OK;
broken:
	rd_io_reason(0, c, why, whylen);
	return RD_BROKEN;
}

static enum rd_step rd_connect(const struct rd *rd, int64_t deadline,
			       redisContext **out, char *why, size_t whylen)
{
	redisContext *c;
	socklen_t len = sizeof(int);
	int err = 0, r;

	*out = NULL;
	c = rd->path ? redisConnectUnixNonBlock(rd->path)
		     : redisConnectNonBlock(rd->host_name, rd->port);
	if (!c) {
		snprintf(why, whylen, "out of memory");
		return RD_BROKEN;
	}
	if (c->err)
		goto broken;
	r = rd_wait(rd, c->fd, POLLOUT, deadline);
	if (r == 0) {
		redisFree(c);
		return RD_TIMEOUT;
	}
	if (r < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		rd_io_reason(err, NULL, why, whylen);
		redisFree(c);
		return RD_BROKEN;
	}
	*out = c;
	return RD_OK;
broken:
	rd_io_reason(0, c, why, whylen);
	redisFree(c);
	return RD_BROKEN;
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

static void rd_check(const struct healthd_host *host, void *instance,
		     int64_t deadline_ms, struct healthd_result *result)
{
	struct rd *rd = instance;
	int64_t start = host->now_ms();
	redisContext *c = NULL;
	redisReply *reply = NULL;
	const char *stage = "connecting";
	char why[256] = "", version[64], role[32], num[32], dbs[24];
	double latency = 0, used = 0, maxmem = 0, t0;
	int have_info = 0;
	enum rd_step st;

	host->detail_str(result, "server", rd->label);
	st = rd_connect(rd, deadline_ms, &c, why, sizeof(why));
	if (st != RD_OK)
		goto fail;

	if (rd->password) {
		const char *argv[] = {"AUTH", rd->user ? rd->user : rd->password,
				      rd->password};

		stage = "waiting for AUTH";
		st = rd_command(rd, c, deadline_ms, &reply, rd->user ? 3 : 2,
				argv, why, sizeof(why));
		if (st == RD_ERROR) {
			/* Redis names neither the user nor the password here;
			 * say it in our words all the same. */
			snprintf(why, sizeof(why), "authentication failed%s",
				 strstr(reply->str, "without any password")
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
		stage = "waiting for SELECT";
		st = rd_command(rd, c, deadline_ms, &reply, 2, argv, why,
				sizeof(why));
		if (st == RD_ERROR)
			rd_reply_reason("SELECT", reply, why, sizeof(why));
		if (st != RD_OK)
			goto fail;
		freeReplyObject(reply);
		reply = NULL;
	}

	{
		const char *argv[] = {"PING"};

		stage = "waiting for PING";
		t0 = rd_now();
		st = rd_command(rd, c, deadline_ms, &reply, 1, argv, why,
				sizeof(why));
		latency = rd_now() - t0;
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

		stage = "waiting for INFO";
		st = rd_command(rd, c, deadline_ms, &reply, 1, argv, why,
				sizeof(why));
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

	if ((rd->role == RD_MASTER && strcmp(role, "master") != 0) ||
	    (rd->role == RD_REPLICA && strcmp(role, "replica") != 0))
		host->result(result, HEALTHD_FAIL,
			     "redis %s: role is %s, expected %s", rd->label, role,
			     rd->role == RD_MASTER ? "master" : "replica");
	else if (rd->max_ratio > 0 && maxmem > 0 && used / maxmem > rd->max_ratio)
		host->result(result, HEALTHD_WARN,
			     "redis %s: used memory is %.1f%% of maxmemory, "
			     "above max_memory_ratio",
			     rd->label, 100.0 * used / maxmem);
	else if (rd->max_ratio > 0 && maxmem <= 0)
		host->result(result, HEALTHD_PASS,
			     "redis %s: PONG in %.1f ms (%s, %s; no maxmemory "
			     "set, ratio not checked)",
			     rd->label, latency, role, version);
	else
		host->result(result, HEALTHD_PASS,
			     "redis %s: PONG in %.1f ms (%s, %s)", rd->label,
			     latency, role, version);
	freeReplyObject(reply);
	redisFree(c);
	return;
fail:
	if (st == RD_TIMEOUT)
		host->result(result, HEALTHD_FAIL,
			     "redis %s: timed out after %lld ms %s", rd->label,
			     (long long)(host->now_ms() - start), stage);
	else
		host->result(result, HEALTHD_FAIL, "redis %s: %s", rd->label,
			     why);
	if (reply)
		freeReplyObject(reply);
	if (c)
		redisFree(c);
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
		memset(rd->password, 0, strlen(rd->password));
		free(rd->password);
	}
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
	} else if (!strncmp(url, "unix://", 7)) {
		is_unix = 1;
	} else if (!strncmp(url, "rediss://", 9)) {
		snprintf(err, errlen, "url: rediss:// (TLS) is not supported by "
				      "this build's hiredis");
		return -EINVAL;
	} else {
		snprintf(err, errlen, "url: expected redis://[user:password@]"
				      "host[:port][/db] or unix:///path");
		return -EINVAL;
	}
	p = url + (is_unix ? 7 : 8);

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
	snprintf(rd->label, sizeof(rd->label),
		 strchr(rd->host_name, ':') ? "[%s]:%d/%ld" : "%s:%d/%ld",
		 rd->host_name, rd->port, rd->db);
	return 0;
bad_userinfo:
	snprintf(err, errlen, "url: bad percent-encoding in user:password");
	return -EINVAL;
}

static int rd_create(const struct healthd_host *host,
		     const struct healthd_check *check, void **instance,
		     char *err, size_t errlen)
{
	const char *url = host->option(check, "url");
	const char *role = host->option(check, "role");
	const char *ratio = host->option(check, "max_memory_ratio");
	struct rd *rd;
	int rc = -EINVAL;

	rd = calloc(1, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
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
	*instance = rd;
	return 0;
fail:
	rd_destroy(rd);
	return rc;
}

HEALTHD_PLUGIN_DEFINE(.name = "redis",
		      .description = "Redis: PING, role and memory",
		      .options = rd_options, .create = rd_create,
		      .check = rd_check, .destroy = rd_destroy,
		      .required = (const char *const[]){"url", NULL});
