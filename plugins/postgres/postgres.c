/*
 * postgres.c — the bundled PostgreSQL check (libpq).
 *
 * Each run connects (or reuses the kept connection in persistent mode), runs
 * the configured query and `SELECT pg_is_in_recovery()`, and compares the
 * server's role with the one expected.  All I/O is non-blocking and waits in
 * poll() until the run's deadline: libpq's connect_timeout counts whole
 * seconds, which is not enough.
 *
 * libpq's messages can quote parts of the connection string, so they are
 * classified and sanitized before they reach a result: a message never
 * carries a credential.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <healthd/plugin.h>

enum pg_mode { PG_PERSISTENT, PG_CONNECT };
enum pg_role { PG_ANY, PG_PRIMARY, PG_REPLICA };

/* How a step ended. */
enum pg_step {
	PG_OK = 0,
	PG_TIMEOUT,  /* the deadline passed */
	PG_BROKEN,   /* the connection failed or was lost */
	PG_REJECTED, /* the server answered the query with an error */
};

struct pg {
	const struct healthd_host *host;
	const struct healthd_check *check;
	char **keys; /* NULL-terminated, for PQconnectStartParams */
	char **vals;
	size_t nkeys; /* slots in keys and vals */
	char *password; /* only to make sure no message repeats it */
	const char *query;
	enum pg_mode mode;
	enum pg_role role;
	char label[256]; /* host:port/database, for messages */
	PGconn *conn;    /* the kept connection in persistent mode */
};

static const struct healthd_option_spec pg_options[] = {
	{"dsn", NULL,
	 "libpq conninfo string or URI (postgresql://user:pw@host:5432/db); "
	 "the SQLAlchemy form postgresql+driver://... is accepted"},
	{"query", "SELECT 1", "SQL run on every check"},
	{"mode", "persistent",
	 "persistent: keep one connection, reconnect after a failure; "
	 "connect: open a connection on every run"},
	{"role", "any",
	 "any | primary | replica: the role pg_is_in_recovery() must report"},
	{NULL, NULL, NULL},
};

/*
 * A cancel request is a new connection that waits for the server to close
 * it: against a hung server it never returns.  It runs on a detached thread
 * so check() can return at its deadline; the library is linked with
 * -z nodelete so such a thread never outlives the code it runs.  The count
 * bounds how many can pile up against a server that stays hung.
 */
#define PG_MAX_CANCELS 8
#define PG_CANCEL_GRACE_MS 200
static atomic_int pg_cancels;

static void *pg_cancel_thread(void *arg)
{
	PGcancel *cancel = arg;
	char err[256];

	PQcancel(cancel, err, sizeof(err));
	PQfreeCancel(cancel);
	atomic_fetch_sub(&pg_cancels, 1);
	return NULL;
}

static void pg_send_cancel(PGconn *conn)
{
	pthread_attr_t attr;
	pthread_t thread;
	PGcancel *cancel;

	if (atomic_fetch_add(&pg_cancels, 1) >= PG_MAX_CANCELS)
		goto fail;
	cancel = PQgetCancel(conn);
	if (!cancel)
		goto fail;
	if (pthread_attr_init(&attr) != 0) {
		PQfreeCancel(cancel);
		goto fail;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, pg_cancel_thread, cancel) != 0) {
		PQfreeCancel(cancel);
		pthread_attr_destroy(&attr);
		goto fail;
	}
	pthread_attr_destroy(&attr);
	return;
fail:
	atomic_fetch_sub(&pg_cancels, 1);
}

/* Forget the connection; cancel what it was running when asked to. */
static void pg_drop(struct pg *pg, int cancel)
{
	if (!pg->conn)
		return;
	if (cancel && PQstatus(pg->conn) == CONNECTION_OK &&
	    PQtransactionStatus(pg->conn) == PQTRANS_ACTIVE)
		pg_send_cancel(pg->conn);
	PQfinish(pg->conn);
	pg->conn = NULL;
}

/* Wait until fd is ready for `events` or the deadline: 1 ready, 0 timed
 * out, -1 error. */
static int pg_wait(const struct pg *pg, int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - pg->host->now_ms();
		struct pollfd p = {.fd = fd, .events = events};
		int n;

		if (left <= 0)
			return 0;
		if (fd < 0)
			return -1;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * Replace every "quoted" part of a libpq message: libpq quotes the pieces of
 * the connection string it complains about, and those may be a password.
 * One-character delimiters it names ("=", "]") are kept.
 */
static void pg_unquote(const char *in, char *out, size_t outlen)
{
	static const char hidden[] = "\"...\"";
	size_t o = 0;

	while (*in && o + sizeof(hidden) < outlen) {
		const char *end;

		if (*in != '"') {
			out[o++] = *in++;
			continue;
		}
		end = strchr(in + 1, '"');
		if (!end)
			break;
		if (end - in == 2 && strchr("=]:/", in[1])) {
			memcpy(out + o, in, 3);
			o += 3;
		} else {
			memcpy(out + o, hidden, sizeof(hidden) - 1);
			o += sizeof(hidden) - 1;
		}
		in = end + 1;
	}
	out[o] = '\0';
}

/* Known libpq and server messages, and what to say instead. */
static const struct {
	const char *needle;
	const char *says;
} pg_known[] = {
	{"password authentication failed", "authentication failed"},
	{"authentication failed", "authentication failed"},
	{"no password supplied", "authentication failed (no password supplied)"},
	{"Connection refused", "connection refused"},
	{"could not translate host name", "host name not resolved"},
	{"pg_hba.conf", "connection rejected by pg_hba.conf"},
	{"No route to host", "no route to host"},
	{"Network is unreachable", "network unreachable"},
	{"Connection reset by peer", "connection reset by the server"},
	{"server closed the connection", "server closed the connection"},
	{"the database system is starting up", "server is starting up"},
	{"the database system is shutting down", "server is shutting down"},
	{"the database system is in recovery mode", "server is in recovery mode"},
	{"too many clients", "too many connections"},
	{"SSL", "TLS negotiation failed"},
};

/*
 * One line that says why libpq failed, without a credential: a known cause
 * in our words, otherwise the message's first line with quoted parts
 * replaced, and nothing at all if it still holds the password.
 */
static void pg_reason(const struct pg *pg, const char *msg, char *out,
		      size_t outlen)
{
	char line[512];
	const char *p;
	size_t n;

	if (!msg)
		msg = "";
	for (size_t i = 0; i < sizeof(pg_known) / sizeof(pg_known[0]); i++) {
		if (strstr(msg, pg_known[i].needle)) {
			snprintf(out, outlen, "%s", pg_known[i].says);
			return;
		}
	}
	if (strstr(msg, "does not exist")) {
		snprintf(out, outlen, "%s",
			 strstr(msg, "database") ? "database does not exist"
						 : "role does not exist");
		return;
	}
	/* "connection to server at "h", port 5432 failed: FATAL:  why" */
	p = msg;
	for (const char *f; (f = strstr(p, "failed: ")) && f < p + strcspn(p, "\n");)
		p = f + strlen("failed: ");
	if (!strncmp(p, "FATAL:  ", 8) || !strncmp(p, "ERROR:  ", 8))
		p += 8;
	n = strcspn(p, "\n");
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, p, n);
	line[n] = '\0';
	pg_unquote(line, out, outlen);
	if (!out[0] || (pg->password && pg->password[0] &&
			strstr(out, pg->password)))
		snprintf(out, outlen, "connection failed");
}

/* Server notices go to the log at debug level, never to stderr. */
static void pg_notice(void *arg, const char *message)
{
	const struct pg *pg = arg;
	char why[256];

	pg_reason(pg, message, why, sizeof(why));
	pg->host->log(pg->check, HEALTHD_LOG_DEBUG, "server notice: %s", why);
}

static enum pg_step pg_connect(struct pg *pg, int64_t deadline, char *why,
			       size_t whylen)
{
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *conn;

	conn = PQconnectStartParams((const char *const *)pg->keys,
				    (const char *const *)pg->vals, 0);
	if (!conn) {
		snprintf(why, whylen, "out of memory");
		return PG_BROKEN;
	}
	if (PQstatus(conn) == CONNECTION_BAD)
		goto fail;
	/* libpq's loop: before the first PQconnectPoll, wait as if it said
	 * WRITING.  The socket may change between calls (several hosts). */
	while (st != PGRES_POLLING_OK) {
		int r;

		if (st == PGRES_POLLING_FAILED)
			goto fail;
		r = pg_wait(pg, PQsocket(conn),
			    st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
			    deadline);
		if (r == 0) {
			PQfinish(conn);
			return PG_TIMEOUT;
		}
		if (r < 0)
			goto fail;
		st = PQconnectPoll(conn);
	}
	/* Non-blocking so that sending never waits past the deadline. */
	if (PQsetnonblocking(conn, 1) != 0)
		goto fail;
	PQsetNoticeProcessor(conn, pg_notice, pg);
	pg->conn = conn;
	return PG_OK;
fail:
	pg_reason(pg, PQerrorMessage(conn), why, whylen);
	PQfinish(conn);
	return PG_BROKEN;
}

/* Wait for input or the deadline, and read it. */
static enum pg_step pg_read(struct pg *pg, int64_t deadline, char *why,
			    size_t whylen)
{
	int r = pg_wait(pg, PQsocket(pg->conn), POLLIN, deadline);

	if (r == 0)
		return PG_TIMEOUT;
	if (r < 0 || !PQconsumeInput(pg->conn)) {
		pg_reason(pg, PQerrorMessage(pg->conn), why, whylen);
		return PG_BROKEN;
	}
	return PG_OK;
}

/*
 * Run `sql` on the connection and keep its last result (or its first
 * error) in *out.
 */
static enum pg_step pg_query(struct pg *pg, const char *sql, int64_t deadline,
			     PGresult **out, char *why, size_t whylen)
{
	PGresult *keep = NULL, *res;
	enum pg_step st;
	int f;

	*out = NULL;
	if (!PQsendQuery(pg->conn, sql))
		goto broken;
	while ((f = PQflush(pg->conn)) != 0) {
		if (f < 0)
			goto broken;
		/* libpq: when the socket is readable, consume, then flush. */
		switch (pg_wait(pg, PQsocket(pg->conn), POLLIN | POLLOUT,
				deadline)) {
		case 0:
			return PG_TIMEOUT;
		case -1:
			goto broken;
		}
		if (!PQconsumeInput(pg->conn))
			goto broken;
	}
	for (;;) {
		while (!PQisBusy(pg->conn)) {
			res = PQgetResult(pg->conn);
			if (!res)
				goto done;
			if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
				PQclear(res);
				continue;
			}
			PQclear(keep);
			keep = res;
		}
		st = pg_read(pg, deadline, why, whylen);
		if (st != PG_OK) {
			PQclear(keep);
			return st;
		}
	}
done:
	if (!keep)
		goto broken;
	*out = keep;
	return PG_OK;
broken:
	PQclear(keep);
	pg_reason(pg, PQerrorMessage(pg->conn), why, whylen);
	return PG_BROKEN;
}

/* The outcome of the queries of one run. */
struct pg_probe {
	double latency_ms;
	int in_recovery;
};

/* Latency is finer than the deadline clock's milliseconds. */
static double pg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static enum pg_step pg_probe(struct pg *pg, int64_t deadline,
			     struct pg_probe *probe, char *why, size_t whylen)
{
	double t0 = pg_now();
	enum pg_step st;
	PGresult *res;
	ExecStatusType rs;

	st = pg_query(pg, pg->query, deadline, &res, why, whylen);
	if (st != PG_OK)
		return st;
	probe->latency_ms = pg_now() - t0;
	rs = PQresultStatus(res);
	if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK &&
	    rs != PGRES_EMPTY_QUERY)
		goto rejected;
	PQclear(res);

	st = pg_query(pg, "SELECT pg_is_in_recovery()", deadline, &res, why,
		      whylen);
	if (st != PG_OK)
		return st;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto rejected;
	if (PQntuples(res) != 1 || PQnfields(res) != 1) {
		snprintf(why, whylen, "pg_is_in_recovery() gave no answer");
		PQclear(res);
		return PG_REJECTED;
	}
	probe->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return PG_OK;
rejected: {
	ExecStatusType why_rs = PQresultStatus(res);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (primary && !(pg->password && pg->password[0] &&
			 strstr(primary, pg->password)))
		snprintf(why, whylen, "query failed: %s (%s)", primary,
			 state ? state : "no SQLSTATE");
	else
		snprintf(why, whylen, "query failed (%s)",
			 why_rs == PGRES_FATAL_ERROR ? (state ? state : "error")
						     : PQresStatus(why_rs));
	PQclear(res);
	return PG_REJECTED;
}
}

static void pg_check(const struct healthd_host *host, void *instance,
		     int64_t deadline_ms, struct healthd_result *result)
{
	struct pg *pg = instance;
	int64_t start = host->now_ms();
	struct pg_probe probe = {0};
	const char *stage = "connecting";
	const char *version, *role;
	char why[256] = "";
	enum pg_step st;
	int reused = 0;

	host->detail_str(result, "server", pg->label);
	if (pg->conn && PQstatus(pg->conn) != CONNECTION_OK)
		pg_drop(pg, 0);
	if (pg->conn) {
		reused = 1;
	} else {
		st = pg_connect(pg, deadline_ms, why, sizeof(why));
		if (st != PG_OK)
			goto fail;
		host->detail_num(result, "connect_ms",
				 (double)(host->now_ms() - start));
	}

	stage = "waiting for the query";
	st = pg_probe(pg, deadline_ms, &probe, why, sizeof(why));
	/* A kept connection the server closed since the last run (a restart,
	 * an idle timeout, a terminated backend) is not the server's current
	 * state: reconnect once. */
	if (reused && host->now_ms() < deadline_ms &&
	    (st == PG_BROKEN ||
	     (st == PG_REJECTED && PQstatus(pg->conn) == CONNECTION_BAD))) {
		pg_drop(pg, 0);
		stage = "connecting";
		st = pg_connect(pg, deadline_ms, why, sizeof(why));
		if (st != PG_OK)
			goto fail;
		stage = "waiting for the query";
		st = pg_probe(pg, deadline_ms, &probe, why, sizeof(why));
	}
	if (st != PG_OK)
		goto fail;

	version = PQparameterStatus(pg->conn, "server_version");
	role = probe.in_recovery ? "replica" : "primary";
	if (version)
		host->detail_str(result, "server_version", version);
	host->detail_bool(result, "in_recovery", probe.in_recovery);
	host->detail_str(result, "role", role);
	host->detail_num(result, "latency_ms", probe.latency_ms);
	if ((pg->role == PG_PRIMARY && probe.in_recovery) ||
	    (pg->role == PG_REPLICA && !probe.in_recovery))
		host->result(result, HEALTHD_FAIL,
			     "postgres %s: role is %s, expected %s", pg->label,
			     role, probe.in_recovery ? "primary" : "replica");
	else
		host->result(result, HEALTHD_PASS,
			     "postgres %s: query ok in %.1f ms (%s, %s)",
			     pg->label, probe.latency_ms, role,
			     version ? version : "unknown version");
	/* A connection left inside a transaction would carry state into the
	 * next run. */
	if (pg->mode == PG_CONNECT ||
	    PQtransactionStatus(pg->conn) != PQTRANS_IDLE)
		pg_drop(pg, 0);
	return;
fail:
	if (st == PG_TIMEOUT)
		host->result(result, HEALTHD_FAIL,
			     "postgres %s: timed out after %lld ms %s",
			     pg->label, (long long)(host->now_ms() - start),
			     stage);
	else
		host->result(result, HEALTHD_FAIL, "postgres %s: %s", pg->label,
			     why);
	if (st != PG_REJECTED || pg->mode == PG_CONNECT ||
	    (pg->conn && PQtransactionStatus(pg->conn) != PQTRANS_IDLE))
		pg_drop(pg, st == PG_TIMEOUT);
}

static void pg_destroy(void *instance)
{
	struct pg *pg = instance;
	int64_t until;

	if (!pg)
		return;
	pg_drop(pg, 0);
	/* A process about to exit (--once, plugin_run) would kill a cancel
	 * request before it reaches the server, leaving the query running:
	 * give those in flight a moment.  Not bounded by a deadline, as
	 * destroy() has none, but short. */
	until = pg->host->now_ms() + PG_CANCEL_GRACE_MS;
	while (atomic_load(&pg_cancels) > 0 && pg->host->now_ms() < until) {
		struct timespec ts = {0, 5 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; i < pg->nkeys; i++) {
		free(pg->keys[i]);
		free(pg->vals[i]);
	}
	free(pg->keys);
	free(pg->vals);
	free(pg->password);
	free(pg);
}

/* postgresql+asyncpg://... (SQLAlchemy) becomes postgresql://... */
static char *pg_strip_driver(const char *dsn)
{
	const char *plus, *sep;
	size_t n;
	char *out;

	if (strncmp(dsn, "postgresql+", 11) != 0 &&
	    strncmp(dsn, "postgres+", 9) != 0)
		return strdup(dsn);
	plus = strchr(dsn, '+');
	sep = strstr(plus, "://");
	if (!sep)
		return strdup(dsn);
	for (const char *c = plus + 1; c < sep; c++)
		if (!isalnum((unsigned char)*c) && *c != '_')
			return strdup(dsn);
	n = strlen(sep);
	out = malloc((size_t)(plus - dsn) + n + 1);
	if (!out)
		return NULL;
	memcpy(out, dsn, (size_t)(plus - dsn));
	memcpy(out + (plus - dsn), sep, n + 1);
	return out;
}

static const char *pg_opt(const PQconninfoOption *opts, const char *key)
{
	for (; opts->keyword; opts++)
		if (!strcmp(opts->keyword, key))
			return opts->val && opts->val[0] ? opts->val : NULL;
	return NULL;
}

static int pg_create(const struct healthd_host *host,
		     const struct healthd_check *check, void **instance,
		     char *err, size_t errlen)
{
	const char *dsn = host->option(check, "dsn");
	const char *mode = host->option(check, "mode");
	const char *role = host->option(check, "role");
	const char *query = host->option(check, "query");
	PQconninfoOption *opts = NULL;
	char *conninfo = NULL, *perr = NULL;
	const char *h, *port, *db;
	struct pg *pg;
	size_t n = 0, i = 0;
	int rc = -EINVAL;

	pg = calloc(1, sizeof(*pg));
	if (!pg)
		return -ENOMEM;
	pg->host = host;
	pg->check = check;
	if (!dsn || !dsn[0]) {
		snprintf(err, errlen, "dsn: required (a libpq conninfo string or "
				      "postgresql:// URI)");
		goto fail;
	}
	if (!query || !query[0]) {
		snprintf(err, errlen, "query: must not be empty");
		goto fail;
	}
	pg->query = query;
	if (!strcmp(mode, "persistent")) {
		pg->mode = PG_PERSISTENT;
	} else if (!strcmp(mode, "connect")) {
		pg->mode = PG_CONNECT;
	} else {
		snprintf(err, errlen, "mode: expected persistent or connect");
		goto fail;
	}
	if (!strcmp(role, "any")) {
		pg->role = PG_ANY;
	} else if (!strcmp(role, "primary")) {
		pg->role = PG_PRIMARY;
	} else if (!strcmp(role, "replica")) {
		pg->role = PG_REPLICA;
	} else {
		snprintf(err, errlen, "role: expected any, primary or replica");
		goto fail;
	}

	conninfo = pg_strip_driver(dsn);
	if (!conninfo) {
		rc = -ENOMEM;
		goto fail;
	}
	opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		char why[256];

		if (perr) {
			pg_reason(pg, perr, why, sizeof(why));
			/* pg_reason ends lines at '\n'; drop libpq's own. */
			why[strcspn(why, "\n")] = '\0';
		} else {
			snprintf(why, sizeof(why), "out of memory");
		}
		snprintf(err, errlen,
			 "dsn: not a valid libpq conninfo string or postgresql:// "
			 "URI (%s)", why);
		goto fail;
	}

	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val)
			n++;
	/* +1 for fallback_application_name, +1 for the terminator */
	pg->keys = calloc(n + 2, sizeof(char *));
	pg->vals = calloc(n + 2, sizeof(char *));
	if (!pg->keys || !pg->vals) {
		rc = -ENOMEM;
		goto fail;
	}
	pg->nkeys = n + 2;
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		pg->keys[i] = strdup(o->keyword);
		pg->vals[i] = strdup(o->val);
		if (!pg->keys[i] || !pg->vals[i++]) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (!pg_opt(opts, "fallback_application_name")) {
		pg->keys[i] = strdup("fallback_application_name");
		pg->vals[i] = strdup("healthd");
		if (!pg->keys[i] || !pg->vals[i]) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (pg_opt(opts, "password")) {
		pg->password = strdup(pg_opt(opts, "password"));
		if (!pg->password) {
			rc = -ENOMEM;
			goto fail;
		}
	}

	h = pg_opt(opts, "host");
	if (!h)
		h = pg_opt(opts, "hostaddr");
	port = pg_opt(opts, "port");
	db = pg_opt(opts, "dbname");
	snprintf(pg->label, sizeof(pg->label), "%s:%s%s%s",
		 h ? h : "local socket", port ? port : "5432", db ? "/" : "",
		 db ? db : "");

	PQconninfoFree(opts);
	PQfreemem(perr);
	free(conninfo);
	*instance = pg;
	return 0;
fail:
	if (opts)
		PQconninfoFree(opts);
	PQfreemem(perr);
	free(conninfo);
	pg_destroy(pg);
	return rc;
}

HEALTHD_PLUGIN_DEFINE(.name = "postgres",
		      .description = "PostgreSQL: connect, run a query, check the role",
		      .options = pg_options, .create = pg_create,
		      .check = pg_check, .destroy = pg_destroy);
