/*
 * postgres.c — the bundled PostgreSQL check (libpq).
 *
 * Each run connects (or reuses the kept connection in persistent mode), runs
 * the configured query and `SELECT pg_is_in_recovery()`, and compares the
 * server's role with the one expected.  All I/O is non-blocking and waits in
 * poll() until the run's deadline: libpq's connect_timeout counts whole
 * seconds, which is not enough.
 *
 * libpq's messages can quote parts of the connection string and the
 * server's can repeat the user name or the query, so none of their text
 * reaches a result, a log line or a create() error: failures are told in
 * fixed phrases chosen from the message or the SQLSTATE.
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

#include <netdb.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include <healthd/plugin.h>

#include "resolve.h"

#define PG_MAX_ATTEMPTS 16 /* addresses tried per run */
#define PG_STAGGER_MS 250  /* next address after this long unconnected */

enum pg_mode { PG_PERSISTENT, PG_CONNECT };
enum pg_role { PG_ANY, PG_PRIMARY, PG_REPLICA };

/* How a step ended. */
enum pg_step {
	PG_OK = 0,
	PG_TIMEOUT,  /* the deadline passed */
	PG_BROKEN,   /* the connection failed or was lost */
	PG_REJECTED, /* the server answered the query with an error */
	PG_UNEXPECTED, /* a result the plugin cannot use (COPY ...): the
			* connection is left mid-command */
};

struct pg {
	const struct healthd_host *host;
	const struct healthd_check *check;
	char **keys; /* NULL-terminated, for PQconnectStartParams */
	char **vals;
	size_t nkeys; /* slots in keys and vals */
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

/* Free what PQconninfoParse or PQconndefaults returned: the values hold the
 * password (the dsn's or $PGPASSWORD), and libpq frees them as they are. */
static void pg_conninfo_free(PQconninfoOption *opts)
{
	if (!opts)
		return;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val)
			explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
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
 * libpq's messages quote the pieces of the connection string they complain
 * about, and the server's may repeat the user name or parts of the query:
 * none of that text is ever shown.  A failure is described by a fixed phrase
 * chosen from the message (libpq's own messages are not translated: the
 * process keeps the C locale) or from the SQLSTATE, which the server sends
 * instead of its text (PQERRORS_SQLSTATE).  The only words taken from a
 * message are libpq keywords, and only after they are found in libpq's list.
 */

/* SQLSTATEs and classes (the first two characters) in our words. */
static const struct {
	const char *code;
	const char *says;
} pg_states[] = {
	{"28P01", "authentication failed"},
	{"28000", "not authorized (pg_hba.conf, or a role that does not exist "
		  "or may not log in)"},
	{"3D000", "database does not exist"},
	{"42501", "permission denied"},
	{"53300", "too many connections"},
	{"57P03", "server cannot accept connections now (starting up, shutting "
		  "down or in recovery)"},
	{"57P01", "connection terminated by the server (administrator command "
		  "or shutdown)"},
	{"57P02", "connection terminated by the server (crash recovery)"},
	{"57P04", "database dropped"},
	{"57014", "query cancelled (statement_timeout or a cancel request)"},
	{"25P03", "idle-in-transaction timeout"},
	{"25006", "read-only transaction"},
	{"42601", "syntax error"},
	{"42P01", "table does not exist"},
	{"42703", "column does not exist"},
	{"42883", "function does not exist"},
	{"3F000", "schema does not exist"},
	{"22P02", "invalid input syntax"},
	{"40001", "serialization failure"},
	{"40P01", "deadlock detected"},
	{"55P03", "lock not available"},
	{"08P01", "protocol violation"},
	{"08", "connection exception"},
	{"0A", "feature not supported"},
	{"21", "cardinality violation"},
	{"22", "data exception"},
	{"23", "integrity constraint violation"},
	{"25", "invalid transaction state"},
	{"28", "invalid authorization"},
	{"3D", "invalid catalog name"},
	{"3F", "invalid schema name"},
	{"40", "transaction rollback"},
	{"42", "syntax error or access rule violation"},
	{"53", "insufficient resources"},
	{"54", "program limit exceeded"},
	{"55", "object not in prerequisite state"},
	{"57", "operator intervention"},
	{"58", "system error"},
	{"P0", "PL/pgSQL error"},
	{"XX", "internal error"},
};

static const char *pg_state_says(const char *state)
{
	for (size_t i = 0; i < sizeof(pg_states) / sizeof(pg_states[0]); i++)
		if (!strncmp(state, pg_states[i].code,
			     strlen(pg_states[i].code)))
			return pg_states[i].says;
	return "error";
}

/* Five characters of [0-9A-Z]: what a SQLSTATE looks like. */
static int pg_is_state(const char *s)
{
	for (int i = 0; i < 5; i++)
		if (!isdigit((unsigned char)s[i]) &&
		    !(s[i] >= 'A' && s[i] <= 'Z'))
			return 0;
	return 1;
}

/*
 * The SQLSTATE of a server error in a libpq message: with PQERRORS_SQLSTATE
 * the server's part reads "SEVERITY:  XXXXX\n".  Copied into state[6].
 */
static int pg_msg_state(const char *msg, char state[6])
{
	for (const char *p = msg; (p = strstr(p, ":  ")); p++) {
		const char *s = p + 3;

		if (pg_is_state(s) && (s[5] == '\n' || s[5] == '\0')) {
			memcpy(state, s, 5);
			state[5] = '\0';
			return 1;
		}
	}
	return 0;
}

/* libpq's own (client-side) messages, and server text seen without a
 * SQLSTATE; first match wins.  Matched with the quoted parts left out, so a
 * host name cannot look like one of them. */
static const struct {
	const char *needle;
	const char *says;
} pg_known[] = {
	{"out of memory", "out of memory"},
	/* TLS (sslmode, sslrootcert, sslcert, sslkey): before the errno
	 * phrases below, which these messages end with.  The file names they
	 * quote are never shown. */
	{"server does not support SSL", "TLS: the server does not support "
					"SSL, but sslmode requires it"},
	{"certificate verify failed", "TLS: certificate verify failed (not "
				      "issued by a CA in sslrootcert)"},
	{"could not read root certificate file",
	 "TLS: sslrootcert file unreadable or not PEM"},
	{"root certificate file", "TLS: sslrootcert file not found (needed "
				  "by sslmode verify-ca and verify-full)"},
	{"could not open certificate file", "TLS: sslcert file unreadable"},
	{"could not read certificate file", "TLS: sslcert file not PEM"},
	{"certificate present, but not private key",
	 "TLS: sslkey file not found"},
	{"has group or world access", "TLS: sslkey file readable by others "
				      "(chmod 0600)"},
	{"could not load private key file",
	 "TLS: sslkey file unreadable or not a key"},
	{"does not match private key", "TLS: sslcert does not match sslkey"},
	{"alert unknown ca", "TLS: the server rejected the client certificate "
			     "(unknown CA)"},
	{"alert certificate required", "TLS: the server requires a client "
				       "certificate (sslcert)"},
	{"alert bad certificate", "TLS: the server rejected the client "
				  "certificate"},
	{"timeout expired", "timed out (connect_timeout)"},
	{"no password supplied", "authentication failed (no password supplied)"},
	{"SCRAM", "authentication failed (SCRAM exchange)"},
	{"authentication failed", "authentication failed"},
	{"Connection refused", "connection refused"},
	{"could not translate host name", "host name not resolved"},
	{"could not parse network address", "hostaddr is not a numeric address"},
	{"Unix-domain socket path", "unusable unix socket path"},
	{"No such file or directory", "no server socket at that path"},
	{"Permission denied", "permission denied"},
	{"No route to host", "no route to host"},
	{"Network is unreachable", "network unreachable"},
	{"Connection timed out", "connection timed out"},
	{"Connection reset by peer", "connection reset by the server"},
	{"server closed the connection", "server closed the connection"},
	{"invalid port number", "invalid port number"},
	{"could not match", "the numbers of hosts, hostaddrs and ports differ"},
	{"requirepeer", "the server's user does not match requirepeer"},
	{"definition of service", "service not found in the service file"},
	{"service file", "service file missing or unreadable"},
	{"does not match host name", "TLS: the server certificate does not "
				     "match the host name"},
	{"SSL protocol version", "invalid SSL protocol version"},
	{"certificate", "TLS: server certificate problem"},
	{"SSL", "TLS negotiation failed"},
	{"pg_hba.conf", "connection rejected by pg_hba.conf"},
	{"too many clients", "too many connections"},
	{"the database system is", "server cannot accept connections now"},
	{"unexpected message from server", "protocol error during startup"},
	{"expected authentication request", "protocol error during startup"},
	{"no connection to the server", "no connection to the server"},
	{"another command is already in progress", "connection busy"},
	{"could not send data to server", "could not send to the server"},
	{"could not receive data from server", "could not read from the server"},
};

/* A libpq keyword found in [name, name + n), as libpq spells it (not as the
 * message did), or NULL. */
static const char *pg_keyword(const char *name, size_t n, char *out,
			      size_t outlen)
{
	PQconninfoOption *all = PQconndefaults();
	const char *found = NULL;

	if (!all)
		return NULL;
	for (const PQconninfoOption *o = all; o->keyword; o++) {
		if (strlen(o->keyword) == n && !strncmp(o->keyword, name, n) &&
		    n < outlen) {
			snprintf(out, outlen, "%s", o->keyword);
			found = out;
			break;
		}
	}
	pg_conninfo_free(all);
	return found;
}

/* msg without what it quotes ("..." becomes ""), to match phrases in; it
 * is never shown. */
static void pg_unquoted(const char *msg, char *out, size_t outlen)
{
	size_t o = 0;
	int quoted = 0;

	for (; *msg && o + 1 < outlen; msg++) {
		if (*msg == '"') {
			quoted = !quoted;
			out[o++] = '"';
		} else if (!quoted) {
			out[o++] = *msg;
		}
	}
	out[o] = '\0';
}

/*
 * One line that says why libpq or the server failed, from fixed phrases
 * only; `otherwise` when nothing is recognized.
 */
static void pg_reason(const char *msg, const char *otherwise, char *out,
		      size_t outlen)
{
	char state[6], kw[64], bare[1024];
	const char *p, *q;

	if (!msg)
		msg = "";
	if (pg_msg_state(msg, state)) {
		snprintf(out, outlen, "%s (%s)", pg_state_says(state), state);
		return;
	}
	/* 'invalid %s value: "%s"' names a keyword, then quotes its value. */
	if (!strncmp(msg, "invalid ", 8) && (q = strstr(msg, " value: ")) &&
	    q > msg + 8 && pg_keyword(msg + 8, (size_t)(q - msg - 8), kw, sizeof(kw))) {
		snprintf(out, outlen, "invalid %s value", kw);
		return;
	}
	/* 'invalid integer value "%s" for connection option "%s"' */
	if (strstr(msg, "invalid integer value")) {
		q = strrchr(msg, '"');
		p = q ? q : msg;
		while (p > msg && p[-1] != '"')
			p--;
		if (q && p > msg &&
		    pg_keyword(p, (size_t)(q - p), kw, sizeof(kw)))
			snprintf(out, outlen, "invalid integer value for %s", kw);
		else
			snprintf(out, outlen, "invalid integer value for an option");
		return;
	}
	pg_unquoted(msg, bare, sizeof(bare));
	for (size_t i = 0; i < sizeof(pg_known) / sizeof(pg_known[0]); i++) {
		if (strstr(bare, pg_known[i].needle)) {
			snprintf(out, outlen, "%s", pg_known[i].says);
			return;
		}
	}
	if (strstr(bare, "does not exist")) {
		snprintf(out, outlen, "%s",
			 strstr(bare, "database") ? "database does not exist"
						  : "role does not exist");
		return;
	}
	snprintf(out, outlen, "%s", otherwise);
}

/* Options that libpq does not know, and what to say about them. */
static const struct {
	const char *name;
	const char *hint;
} pg_unknown[] = {
	{"database", "use dbname"},
	{"db", "use dbname"},
	{"username", "use user"},
	{"pass", "use password"},
	{"pwd", "use password"},
	{"server", "use host"},
	{"hostname", "use host"},
	{"ssl", "use sslmode"},
	{"timeout", "use connect_timeout"},
	{"load_balance_hosts", "needs a newer libpq"},
	{"require_auth", "needs a newer libpq"},
	{"sslcertmode", "needs a newer libpq"},
	{"sslnegotiation", "needs a newer libpq"},
	{"min_protocol_version", "needs a newer libpq"},
	{"max_protocol_version", "needs a newer libpq"},
};

/*
 * Why PQconninfoParse refused the dsn, from fixed phrases only.  An unknown
 * option is named only when it is one of pg_unknown.
 */
static void pg_parse_reason(const char *msg, char *out, size_t outlen)
{
	/* How libpq's messages begin (what follows may quote the dsn). */
	static const struct {
		const char *start;
		const char *says;
	} parse[] = {
		{"invalid percent-encoded token", "invalid percent-encoded token"},
		{"forbidden value %00", "invalid percent-encoded token (%00)"},
		{"unterminated quoted string", "unterminated quoted string"},
		{"missing \"=\" after", "missing \"=\" after a keyword"},
		{"extra key/value separator",
		 "a URI query parameter is not key=value"},
		{"missing key/value separator",
		 "a URI query parameter is not key=value"},
		{"end of string reached when looking for matching \"]\"",
		 "bad [IPv6 address] in the URI"},
		{"IPv6 host address may not be empty",
		 "bad [IPv6 address] in the URI"},
		{"unexpected character", "unexpected character in the URI"},
		{"invalid URI", "invalid URI"},
		{"connection info string size exceeds",
		 "connection string too long"},
		{"out of memory", "out of memory"},
	};
	const char *what = NULL, *p, *q;
	static const char opt[] = "invalid connection option \"";
	static const char param[] = "invalid URI query parameter: \"";

	if (!msg)
		msg = "";
	if (!strncmp(msg, opt, sizeof(opt) - 1))
		what = "unknown connection option";
	else if (!strncmp(msg, param, sizeof(param) - 1))
		what = "unknown URI query parameter";
	if (what) {
		p = strchr(msg, '"') + 1;
		q = strrchr(msg, '"');
		for (size_t i = 0; q > p && i < sizeof(pg_unknown) /
						      sizeof(pg_unknown[0]); i++) {
			if (strlen(pg_unknown[i].name) == (size_t)(q - p) &&
			    !strncmp(p, pg_unknown[i].name, (size_t)(q - p))) {
				snprintf(out, outlen, "%s %s: %s", what,
					 pg_unknown[i].name, pg_unknown[i].hint);
				return;
			}
		}
		snprintf(out, outlen, "%s", what);
		return;
	}
	for (size_t i = 0; i < sizeof(parse) / sizeof(parse[0]); i++) {
		if (!strncmp(msg, parse[i].start, strlen(parse[i].start))) {
			snprintf(out, outlen, "%s", parse[i].says);
			return;
		}
	}
	snprintf(out, outlen, "invalid connection string");
}

/* Server notices go to the log at debug level, never to stderr. */
static void pg_notice(void *arg, const char *message)
{
	const struct pg *pg = arg;
	char state[6];

	if (pg_msg_state(message ? message : "", state))
		pg->host->log(pg->check, HEALTHD_LOG_DEBUG,
			      "server notice: %s (%s)", pg_state_says(state),
			      state);
	else
		pg->host->log(pg->check, HEALTHD_LOG_DEBUG, "server notice");
}

/* ---- connecting ----------------------------------------------------------- */

/*
 * One connection attempt: a single host (its name kept for TLS, SNI,
 * .pgpass and authentication), hostaddr (one of its addresses, or empty
 * when libpq needs no lookup) and port.
 */
struct pg_target {
	const char *host, *hostaddr, *port; /* NULL: not given */
	char addr[NI_MAXHOST];
};

/* The i-th element of a comma-separated list, in buf; NULL past the end. */
static const char *pg_list_at(const char *list, size_t i, char *buf,
			      size_t len)
{
	const char *p = list, *e;

	for (; i > 0; i--) {
		p = strchr(p, ',');
		if (!p)
			return NULL;
		p++;
	}
	e = strchr(p, ',');
	if (!e)
		e = p + strlen(p);
	snprintf(buf, len, "%.*s", (int)(e - p), p);
	return buf;
}

static size_t pg_list_len(const char *list)
{
	size_t n = 1;

	for (; *list; list++)
		n += *list == ',';
	return n;
}

static const char *pg_key(const struct pg *pg, const char *key)
{
	for (size_t i = 0; pg->keys[i]; i++)
		if (!strcmp(pg->keys[i], key))
			return pg->vals[i];
	return NULL;
}

/*
 * The run's attempts, in libpq's order: each host of the dsn, a name
 * expanded into one attempt per address, resolved within the deadline
 * (libpq's own lookup blocks).  Unix sockets, numeric addresses and a
 * hostaddr given in the dsn need no lookup.  A dsn libpq would refuse
 * (lists of different lengths) is one attempt with the dsn as it is, for
 * libpq's own complaint.  Returns how many attempts; 0 with why when none
 * is left (every name failed), *timed_out when the deadline passed.
 */
struct pg_plan {
	struct pg_target t[PG_MAX_ATTEMPTS];
	size_t n;
	char lists[3][1024]; /* host, hostaddr, port elements, NUL-separated */
};

static size_t pg_plan(const struct pg *pg, int64_t deadline,
		      struct pg_plan *plan, char *why, size_t whylen)
{
	const char *hosts = pg_key(pg, "host"), *addrs = pg_key(pg, "hostaddr");
	const char *ports = pg_key(pg, "port");
	size_t nh, np, off[3] = {0, 0, 0};
	char h[NI_MAXHOST], a[NI_MAXHOST], p[32];
	int failed = 0;

	plan->n = 0;
	why[0] = '\0';
	nh = hosts ? pg_list_len(hosts) : addrs ? pg_list_len(addrs) : 0;
	np = ports ? pg_list_len(ports) : 1;
	if (nh == 0 || (hosts && addrs && pg_list_len(addrs) != nh) ||
	    (np != 1 && np != nh) || nh > PG_MAX_ATTEMPTS)
		goto as_is;
	for (size_t i = 0; i < nh && plan->n < PG_MAX_ATTEMPTS; i++) {
		const char *hi = hosts ? pg_list_at(hosts, i, h, sizeof(h)) : NULL;
		const char *ai = addrs ? pg_list_at(addrs, i, a, sizeof(a)) : NULL;
		const char *pi = ports ? pg_list_at(ports, np == 1 ? 0 : i, p,
						    sizeof(p))
				       : NULL;
		const char *v[3] = {hi, ai, pi};
		struct addrinfo *res = NULL;
		char *at[3];
		char one[256]; /* as the caller's why */
		int dup;

		/* Copies that outlive h, a, p. */
		for (int k = 0; k < 3; k++) {
			size_t n = v[k] ? strlen(v[k]) + 1 : 0;

			at[k] = NULL;
			if (!v[k])
				continue;
			if (off[k] + n > sizeof(plan->lists[k]))
				goto as_is;
			at[k] = memcpy(plan->lists[k] + off[k], v[k], n);
			off[k] += n;
		}
		if (!hi || !*hi || (ai && *ai) || hi[0] == '/' || hi[0] == '@' ||
		    resolve_is_numeric(hi)) {
			plan->t[plan->n++] = (struct pg_target){
				.host = at[0], .hostaddr = at[1], .port = at[2]};
			continue;
		}
		switch (resolve_within(hi, NULL, SOCK_STREAM, deadline,
				       pg->host->now_ms, &res, one,
				       sizeof(one))) {
		case RESOLVE_OK:
			break;
		case RESOLVE_TIMEOUT:
			snprintf(why, whylen, "%s", one);
			plan->n = 0;
			return 0;
		default:
			/* libpq goes on with the next host: so do we. */
			if (!failed++)
				snprintf(why, whylen, "%s", one);
			continue;
		}
		for (const struct addrinfo *ai2 = res;
		     ai2 && plan->n < PG_MAX_ATTEMPTS; ai2 = ai2->ai_next) {
			struct pg_target *t = &plan->t[plan->n];

			*t = (struct pg_target){.host = at[0], .port = at[2]};
			resolve_addr_text(ai2, t->addr, sizeof(t->addr));
			if (!t->addr[0])
				continue;
			/* getaddrinfo repeats an address per protocol. */
			dup = 0;
			for (size_t j = 0; j < plan->n; j++)
				dup |= plan->t[j].host == t->host &&
				       !strcmp(plan->t[j].addr, t->addr);
			if (dup)
				continue;
			t->hostaddr = t->addr;
			plan->n++;
		}
		freeaddrinfo(res);
	}
	return plan->n;
as_is:
	plan->t[0] = (struct pg_target){.host = hosts, .hostaddr = addrs,
					.port = ports};
	plan->n = 1;
	return 1;
}

/* An attempt's conninfo: the dsn's with host, hostaddr and port replaced. */
static PGconn *pg_start(const struct pg *pg, const struct pg_target *t)
{
	const char **k = calloc(pg->nkeys + 4, sizeof(char *));
	const char **v = calloc(pg->nkeys + 4, sizeof(char *));
	PGconn *conn = NULL;
	size_t n = 0;

	if (!k || !v)
		goto out;
	for (size_t i = 0; pg->keys[i]; i++) {
		if (!strcmp(pg->keys[i], "host") ||
		    !strcmp(pg->keys[i], "hostaddr") ||
		    !strcmp(pg->keys[i], "port"))
			continue;
		k[n] = pg->keys[i];
		v[n++] = pg->vals[i];
	}
	if (t->host)
		k[n] = "host", v[n++] = t->host;
	if (t->hostaddr)
		k[n] = "hostaddr", v[n++] = t->hostaddr;
	if (t->port)
		k[n] = "port", v[n++] = t->port;
	conn = PQconnectStartParams(k, v, 0);
out:
	free(k);
	free(v);
	return conn;
}

/* libpq's messages of the failed attempts, for pg_reason (never shown). */
static void pg_gather(char *all, size_t len, PGconn *conn)
{
	size_t used = strlen(all);

	snprintf(all + used, len - used, "%s\n",
		 conn ? PQerrorMessage(conn) : "out of memory");
}

/*
 * Connect within the deadline.  Attempts start in order, the next when
 * none is in flight or the newest has waited PG_STAGGER_MS for its TCP
 * connection, the earlier ones still in flight (as the tcp plugin does):
 * one black-holed address does not eat the deadline.  The first attempt
 * to complete (TLS and authentication included) wins.
 */
static enum pg_step pg_connect(struct pg *pg, int64_t deadline, char *why,
			       size_t whylen, struct healthd_result *result,
			       const char **stage)
{
	struct pg_plan *plan = calloc(1, sizeof(*plan));
	struct {
		PGconn *conn;
		PostgresPollingStatusType st;
		int64_t started;
	} on[PG_MAX_ATTEMPTS];
	char all[2048] = "";
	size_t next = 0, n = 0, tried = 0;
	enum pg_step ret = PG_BROKEN;
	PGconn *won = NULL;

	*stage = "connecting";
	if (!plan) {
		snprintf(why, whylen, "out of memory");
		return PG_BROKEN;
	}
	if (pg_plan(pg, deadline, plan, why, whylen) == 0)
		goto out;
	why[0] = '\0';
	for (;;) {
		int64_t now = pg->host->now_ms(), wait;
		struct pollfd pfd[PG_MAX_ATTEMPTS];
		int newest_waits = n > 0 &&
				   PQstatus(on[n - 1].conn) == CONNECTION_STARTED;

		if (now >= deadline) {
			ret = PG_TIMEOUT;
			break;
		}
		if (next < plan->n &&
		    (n == 0 ||
		     (newest_waits && now - on[n - 1].started >= PG_STAGGER_MS))) {
			PGconn *c = pg_start(pg, &plan->t[next++]);

			tried++;
			if (!c || PQstatus(c) == CONNECTION_BAD) {
				pg_gather(all, sizeof(all), c);
				PQfinish(c);
				continue;
			}
			/* The server's errors then carry their SQLSTATE
			 * instead of text that may repeat the user name.  No
			 * answer has been read yet: libpq has at most sent the
			 * startup packet. */
			PQsetErrorVerbosity(c, PQERRORS_SQLSTATE);
			/* libpq's own processor prints notices to stderr. */
			PQsetNoticeProcessor(c, pg_notice, pg);
			/* Before the first PQconnectPoll, wait as if it said
			 * WRITING. */
			on[n].conn = c;
			on[n].st = PGRES_POLLING_WRITING;
			on[n++].started = now;
			continue;
		}
		if (n == 0)
			break; /* every attempt failed */
		wait = deadline - now;
		if (next < plan->n && newest_waits &&
		    on[n - 1].started + PG_STAGGER_MS - now < wait)
			wait = on[n - 1].started + PG_STAGGER_MS - now;
		/* The socket may change between calls (sslmode=prefer's
		 * retry without TLS). */
		for (size_t i = 0; i < n; i++)
			pfd[i] = (struct pollfd){
				.fd = PQsocket(on[i].conn),
				.events = on[i].st == PGRES_POLLING_READING
						  ? POLLIN
						  : POLLOUT};
		if (poll(pfd, (nfds_t)n, wait < 0 ? 0 : (int)wait) < 0 &&
		    errno != EINTR) {
			snprintf(why, whylen, "poll failed");
			break;
		}
		for (size_t i = 0; i < n && !won; i++) {
			if (!pfd[i].revents && pfd[i].fd >= 0)
				continue;
			on[i].st = pfd[i].fd >= 0 ? PQconnectPoll(on[i].conn)
						  : PGRES_POLLING_FAILED;
			if (on[i].st == PGRES_POLLING_OK) {
				won = on[i].conn;
				on[i] = on[--n];
			} else if (on[i].st == PGRES_POLLING_FAILED) {
				pg_gather(all, sizeof(all), on[i].conn);
				PQfinish(on[i].conn);
				/* Keep the order: the newest stays last. */
				memmove(&on[i], &on[i + 1],
					(n - i - 1) * sizeof(on[0]));
				n--;
				i--;
			}
		}
		if (won)
			break;
	}
	if (ret == PG_TIMEOUT && n > 0) {
		/* Say where the most advanced attempt was stuck. */
		ConnStatusType cs = CONNECTION_STARTED;

		for (size_t i = 0; i < n; i++)
			if (PQstatus(on[i].conn) != CONNECTION_STARTED)
				cs = PQstatus(on[i].conn);
		*stage = cs == CONNECTION_STARTED ? "connecting"
			 : cs == CONNECTION_SSL_STARTUP
			       ? "connecting (in the TLS handshake)"
			       : "connecting (waiting for the server to "
				 "authenticate)";
	}
	for (size_t i = 0; i < n; i++)
		PQfinish(on[i].conn);
	if (won) {
		/* Non-blocking so that sending never waits past the
		 * deadline. */
		if (PQsetnonblocking(won, 1) != 0) {
			pg_gather(all, sizeof(all), won);
			PQfinish(won);
			won = NULL;
		} else {
			const char *addr = PQhostaddr(won);

			if (addr && *addr)
				pg->host->detail_str(result, "address", addr);
			pg->conn = won;
			ret = PG_OK;
		}
	}
	if (tried)
		pg->host->detail_num(result, "addresses_tried", (double)tried);
	if (ret == PG_BROKEN && all[0]) {
		/* A name that did not resolve says so when libpq's messages
		 * say nothing known. */
		char otherwise[300];

		snprintf(otherwise, sizeof(otherwise), "%s",
			 why[0] ? why : "connection failed");
		pg_reason(all, otherwise, why, whylen);
	}
	else if (ret == PG_BROKEN && !why[0])
		snprintf(why, whylen, "connection failed");
out:
	explicit_bzero(all, sizeof(all));
	free(plan);
	return ret;
}

/* Wait for input or the deadline, and read it. */
static enum pg_step pg_read(struct pg *pg, int64_t deadline, char *why,
			    size_t whylen)
{
	int r = pg_wait(pg, PQsocket(pg->conn), POLLIN, deadline);

	if (r == 0)
		return PG_TIMEOUT;
	if (r < 0 || !PQconsumeInput(pg->conn)) {
		pg_reason(PQerrorMessage(pg->conn), "connection lost", why,
			  whylen);
		return PG_BROKEN;
	}
	return PG_OK;
}

/*
 * Why a result that is neither rows, a command's completion nor an error
 * ends the run, in our words.  COPY is the one a query can ask for.
 */
static void pg_unexpected(ExecStatusType rs, char *why, size_t whylen)
{
	switch (rs) {
	case PGRES_COPY_IN:
	case PGRES_COPY_OUT:
	case PGRES_COPY_BOTH:
		snprintf(why, whylen, "query returned an unexpected result "
				      "(COPY): use a query that returns rows");
		break;
	case PGRES_BAD_RESPONSE:
		snprintf(why, whylen, "query returned an unexpected result "
				      "(bad response from the server)");
		break;
	default:
		snprintf(why, whylen, "query returned an unexpected result "
				      "(status %d)", (int)rs);
		break;
	}
}

/*
 * Run `sql` on the connection and keep its last result (or its first
 * error) in *out: PGRES_TUPLES_OK, _COMMAND_OK, _EMPTY_QUERY or
 * _FATAL_ERROR.  Any other result ends the run with PG_UNEXPECTED.
 */
static enum pg_step pg_query(struct pg *pg, const char *sql, int64_t deadline,
			     PGresult **out, char *why, size_t whylen)
{
	PGresult *keep = NULL, *res;
	ExecStatusType rs;
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
			/* Results that are ready need no wait: the deadline
			 * still holds. */
			if (pg->host->now_ms() >= deadline) {
				PQclear(keep);
				return PG_TIMEOUT;
			}
			res = PQgetResult(pg->conn);
			if (!res)
				goto done;
			rs = PQresultStatus(res);
			if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK &&
			    rs != PGRES_EMPTY_QUERY && rs != PGRES_FATAL_ERROR) {
				/* In COPY state libpq hands out the same result
				 * again and never NULL: reading on would spin. */
				pg_unexpected(rs, why, whylen);
				PQclear(res);
				PQclear(keep);
				return PG_UNEXPECTED;
			}
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
	pg_reason(PQerrorMessage(pg->conn), "connection lost", why, whylen);
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

	st = pg_query(pg, pg->query, deadline, &res, why, whylen);
	if (st != PG_OK)
		return st;
	probe->latency_ms = pg_now() - t0;
	if (PQresultStatus(res) == PGRES_FATAL_ERROR)
		goto rejected;
	PQclear(res);

	st = pg_query(pg, "SELECT pg_is_in_recovery()", deadline, &res, why,
		      whylen);
	if (st != PG_OK)
		return st;
	if (PQresultStatus(res) == PGRES_FATAL_ERROR)
		goto rejected;
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) != 1) {
		snprintf(why, whylen, "pg_is_in_recovery() gave no answer");
		PQclear(res);
		return PG_REJECTED;
	}
	probe->in_recovery = PQgetvalue(res, 0, 0)[0] == 't';
	PQclear(res);
	return PG_OK;
rejected: {
	/* The server's text may quote the query (an option) or name the
	 * user: only the SQLSTATE is shown. */
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state && strlen(state) == 5 && pg_is_state(state))
		snprintf(why, whylen, "query failed: %s (%s)",
			 pg_state_says(state), state);
	else
		snprintf(why, whylen, "query failed: %s",
			 PQstatus(pg->conn) == CONNECTION_BAD ? "connection lost"
							      : "error");
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
		st = pg_connect(pg, deadline_ms, why, sizeof(why), result,
				&stage);
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
		st = pg_connect(pg, deadline_ms, why, sizeof(why), result,
				&stage);
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
	/* PG_UNEXPECTED leaves the connection mid-command (COPY): dropped
	 * too, so the next run starts clean. */
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
	/* vals hold the password (and a dsn may hide one anywhere). */
	for (size_t i = 0; i < pg->nkeys; i++) {
		free(pg->keys[i]);
		if (pg->vals[i])
			explicit_bzero(pg->vals[i], strlen(pg->vals[i]));
		free(pg->vals[i]);
	}
	free(pg->keys);
	free(pg->vals);
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

/*
 * libpq ends a URI's user:password@ at the first '@' or '/': a password
 * holding either, not percent-encoded, leaves its tail in the host, port or
 * database, which every message shows.  Such a URI is refused: an '@' after
 * the user:password@ libpq found, or without one, before the query string.
 */
static int pg_uri_ambiguous(const char *dsn)
{
	const char *p, *end;

	if (!strncmp(dsn, "postgresql://", 13))
		p = dsn + 13;
	else if (!strncmp(dsn, "postgres://", 11))
		p = dsn + 11;
	else
		return 0;
	end = p + strcspn(p, "@/");
	if (*end == '@')
		p = end + 1;
	end = p + strcspn(p, "?");
	return memchr(p, '@', (size_t)(end - p)) != NULL;
}

/* Port numbers, comma-separated (an empty one is the default): the label
 * shows them, so nothing else may hide there. */
static int pg_ports_ok(const char *s)
{
	for (; *s; s++)
		if (!isdigit((unsigned char)*s) && *s != ',')
			return 0;
	return 1;
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
	if (!query || !query[0]) {
		snprintf(err, errlen, "query: must not be empty");
		goto out;
	}
	pg->query = query;
	if (!strcmp(mode, "persistent")) {
		pg->mode = PG_PERSISTENT;
	} else if (!strcmp(mode, "connect")) {
		pg->mode = PG_CONNECT;
	} else {
		snprintf(err, errlen, "mode: expected persistent or connect");
		goto out;
	}
	if (!strcmp(role, "any")) {
		pg->role = PG_ANY;
	} else if (!strcmp(role, "primary")) {
		pg->role = PG_PRIMARY;
	} else if (!strcmp(role, "replica")) {
		pg->role = PG_REPLICA;
	} else {
		snprintf(err, errlen, "role: expected any, primary or replica");
		goto out;
	}

	conninfo = pg_strip_driver(dsn);
	if (!conninfo) {
		rc = -ENOMEM;
		goto out;
	}
	if (pg_uri_ambiguous(conninfo)) {
		snprintf(err, errlen,
			 "dsn: an '@' that does not end user:password@; "
			 "percent-encode '@' and '/' in the user name and "
			 "password (%%40, %%2F)");
		goto out;
	}
	opts = PQconninfoParse(conninfo, &perr);
	if (!opts) {
		char why[256];

		if (perr)
			pg_parse_reason(perr, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "out of memory");
		snprintf(err, errlen,
			 "dsn: not a valid libpq conninfo string or postgresql:// "
			 "URI (%s)", why);
		goto out;
	}

	for (const PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val)
			n++;
	/* +1 for fallback_application_name, +1 for the terminator */
	pg->keys = calloc(n + 2, sizeof(char *));
	pg->vals = calloc(n + 2, sizeof(char *));
	if (!pg->keys || !pg->vals) {
		rc = -ENOMEM;
		goto out;
	}
	pg->nkeys = n + 2;
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		pg->keys[i] = strdup(o->keyword);
		pg->vals[i] = strdup(o->val);
		if (!pg->keys[i] || !pg->vals[i++]) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (!pg_opt(opts, "fallback_application_name")) {
		pg->keys[i] = strdup("fallback_application_name");
		pg->vals[i] = strdup("healthd");
		if (!pg->keys[i] || !pg->vals[i]) {
			rc = -ENOMEM;
			goto out;
		}
	}

	h = pg_opt(opts, "host");
	if (!h)
		h = pg_opt(opts, "hostaddr");
	port = pg_opt(opts, "port");
	db = pg_opt(opts, "dbname");
	if (port && !pg_ports_ok(port)) {
		snprintf(err, errlen, "dsn: the port must be a number (or "
				      "numbers separated by commas)");
		goto out;
	}
	snprintf(pg->label, sizeof(pg->label), "%s:%s%s%s",
		 h ? h : "local socket", port ? port : "5432", db ? "/" : "",
		 db ? db : "");
	host->target(check, "%s", pg->label);
	*instance = pg;
	rc = 0;
out:
	/* Each holds the password: the dsn, its parsed values, and libpq's
	 * complaint about it, which may quote it. */
	pg_conninfo_free(opts);
	if (perr)
		explicit_bzero(perr, strlen(perr));
	PQfreemem(perr);
	if (conninfo)
		explicit_bzero(conninfo, strlen(conninfo));
	free(conninfo);
	if (rc)
		pg_destroy(pg);
	return rc;
}

HEALTHD_PLUGIN_DEFINE(.name = "postgres",
		      .description = "PostgreSQL: connect, run a query, check the role",
		      .options = pg_options, .create = pg_create,
		      .check = pg_check, .destroy = pg_destroy,
		      .required = (const char *const[]){"dsn", NULL});
