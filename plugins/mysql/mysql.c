/*
 * mysql.c — the bundled MySQL / MariaDB check (libmariadb, which speaks to
 * both).
 *
 * Each run connects (or reuses the kept connection in persistent mode), runs
 * the configured query and `SELECT @@global.read_only`, and compares the
 * server's role with the one expected.  Everything goes through libmariadb's
 * non-blocking API (…_start/…_cont) and waits in poll() until the run's
 * deadline: its own timeouts count whole seconds.  A host name is resolved
 * within the deadline too (plugins/common/resolve.c) and libmariadb is handed
 * the address, except with ssl_mode=verify_identity, whose host name check
 * needs the name: there libmariadb resolves it, with a blocking call.
 *
 * A query still running at the deadline is killed on the server (KILL QUERY
 * over a second, short-lived connection on a detached thread) and the
 * connection is dropped: an abandoned non-blocking call cannot be resumed.
 *
 * The server's messages can repeat the user name or the query, and
 * libmariadb's the host: failures are told in fixed phrases chosen from the
 * error number, never in their text.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysql.h>

#include <healthd/plugin.h>

#include "resolve.h"

enum my_mode { MY_PERSISTENT, MY_CONNECT };
enum my_role { MY_ANY, MY_PRIMARY, MY_REPLICA };
enum my_ssl {
	MY_SSL_UNSET = -1,
	MY_SSL_DISABLED,
	MY_SSL_PREFERRED,
	MY_SSL_REQUIRED,
	MY_SSL_VERIFY_CA,
	MY_SSL_VERIFY_IDENTITY,
};

/* How a step ended. */
enum my_step {
	MY_OK = 0,
	MY_TIMEOUT,  /* the deadline passed */
	MY_BROKEN,   /* the connection failed or was lost */
	MY_REJECTED, /* the server answered the query with an error */
};

/* Where and how to connect: everything parsed from the dsn and the
 * options.  The kill thread gets a copy of its own. */
struct my_conf {
	char *host;   /* name or address; NULL with socket */
	char *socket; /* unix socket path */
	char *user, *password, *db, *charset;
	char *ssl_ca, *ssl_cert, *ssl_key;
	unsigned port;
	int ssl; /* enum my_ssl */
};

struct my {
	const struct healthd_host *host;
	const struct healthd_check *check;
	struct my_conf conf;
	const char *query;
	enum my_mode mode;
	enum my_role role;
	char label[256];           /* host:port/db, for messages */
	MYSQL *conn;               /* the kept connection in persistent mode */
	char addr[NI_MAXHOST];     /* the address conn went to ("" : the name) */
};

static const struct healthd_option_spec my_options[] = {
	{"dsn", NULL,
	 "mysql://user:pw@host:3306/db[?unix_socket=/path&ssl_mode=...] (also "
	 "mariadb://, and SQLAlchemy's mysql+driver:// and mariadb+driver://), "
	 "or key=value pairs: host= port= user= password= dbname= unix_socket= "
	 "ssl_mode= ssl_ca= ssl_cert= ssl_key= charset="},
	{"query", "SELECT 1", "SQL run on every check (one statement)"},
	{"mode", "persistent",
	 "persistent: keep one connection, reconnect after a failure; "
	 "connect: open a connection on every run"},
	{"role", "any",
	 "any | primary | replica: primary when @@global.read_only is OFF, "
	 "replica when ON"},
	{"ssl_mode", NULL,
	 "disabled | preferred | required | verify_ca | verify_identity "
	 "(default: the dsn's, else preferred)"},
	{"ssl_ca", NULL, "PEM file of the CAs to trust (default: the dsn's, "
			 "else the system's for verify_ca and verify_identity)"},
	{"ssl_cert", NULL, "PEM client certificate (default: the dsn's)"},
	{"ssl_key", NULL, "PEM client key (default: the dsn's)"},
	{NULL, NULL, NULL},
};

/* ------------------------------------------------------------------------
 * Library setup
 */

static pthread_once_t my_once = PTHREAD_ONCE_INIT;
static int my_init_rc;

/* mysql_library_init is not thread-safe: once per process, before any
 * connection.  mysql_library_end is never called: a kill thread may still
 * use the library when the process exits, and what init allocated stays
 * reachable.  mysql_thread_init/end are no-ops in libmariadb 3. */
static void my_library_init(void)
{
	my_init_rc = mysql_library_init(0, NULL, NULL);
}

/* ------------------------------------------------------------------------
 * Errors in our words
 */

static const struct {
	unsigned code;
	const char *says;
} my_errors[] = {
	/* server */
	{1040, "too many connections"},
	{1044, "access denied to the database (or it does not exist)"},
	{1045, "access denied"},
	{1046, "no database selected"},
	{1047, "unknown command"},
	{1049, "unknown database"},
	{1053, "server shutting down"},
	{1054, "unknown column"},
	{1064, "syntax error"},
	{1065, "empty query"},
	{1037, "server out of memory"},
	{1041, "server out of resources"},
	{1129, "host blocked after too many connection errors"},
	{1130, "host not allowed to connect"},
	{1142, "permission denied (table)"},
	{1143, "permission denied (column)"},
	{1146, "table does not exist"},
	{1193, "unknown system variable"},
	{1203, "too many connections for this user"},
	{1205, "lock wait timeout"},
	{1213, "deadlock"},
	{1226, "user resource limit reached"},
	{1227, "permission denied (privilege)"},
	{1251, "authentication method not supported"},
	{1290, "the server's options prevent the statement (read-only?)"},
	{1305, "function or procedure does not exist"},
	{1317, "query interrupted"},
	{1370, "permission denied (routine)"},
	{1820, "password expired"},
	{1862, "password expired"},
	{1927, "connection killed"},
	{1969, "statement timeout (max_statement_time)"},
	{3024, "statement timeout (max_execution_time)"},
	{3118, "account locked"},
	{4151, "account locked"},
	/* client */
	{CR_UNKNOWN_HOST, "host name not resolved"},
	{CR_SERVER_GONE_ERROR, "server has gone away"},
	{CR_VERSION_ERROR, "protocol version mismatch"},
	{CR_OUT_OF_MEMORY, "out of memory"},
	{CR_SERVER_LOST, "lost connection to the server"},
	{CR_SERVER_LOST_EXTENDED, "lost connection to the server"},
	{CR_COMMANDS_OUT_OF_SYNC, "commands out of sync"},
	{CR_CANT_READ_CHARSET, "unknown character set"},
	{CR_NET_PACKET_TOO_LARGE, "packet too large"},
	{CR_MALFORMED_PACKET, "malformed packet"},
	{CR_AUTH_PLUGIN_CANNOT_LOAD, "authentication plugin not available"},
	{CR_AUTH_PLUGIN_ERR, "authentication plugin error"},
	{CR_ERR_NET_READ, "could not read from the server"},
	{CR_ERR_NET_WRITE, "could not send to the server"},
};

/* The errno libmariadb puts at the end of "Can't connect ... (%d)". */
static int my_trailing_errno(const char *msg)
{
	size_t n = strlen(msg);
	const char *p;

	if (n < 3 || msg[n - 1] != ')')
		return -1;
	p = msg + n - 2;
	while (p > msg && isdigit((unsigned char)*p))
		p--;
	if (*p != '(' || p == msg + n - 2)
		return -1;
	return atoi(p + 1);
}

/* TLS failures: libmariadb's text holds OpenSSL's, never a credential; it
 * only picks the phrase. */
static const struct {
	const char *needle;
	const char *says;
} my_tls[] = {
	{"does not support", "TLS required but the server does not offer it"},
	{"Validation of SSL server certificate",
	 "TLS: the server certificate does not match the host name"},
	{"expired", "TLS: the server certificate has expired"},
	{"not yet valid", "TLS: the server certificate is not yet valid"},
	{"self-signed", "TLS: the server certificate is not trusted "
			"(self-signed or unknown CA)"},
	{"self signed", "TLS: the server certificate is not trusted "
			"(self-signed or unknown CA)"},
	{"issuer", "TLS: the server certificate is not trusted (unknown CA)"},
	{"certificate verify failed", "TLS: the server certificate is not "
				      "trusted"},
	{"No such file", "TLS: cannot read the CA, certificate or key file"},
	{"system lib", "TLS: cannot read the CA, certificate or key file"},
	{"PEM", "TLS: cannot load the CA, certificate or key file"},
	{"x509", "TLS: cannot load the CA, certificate or key file"},
	{"key values mismatch", "TLS: the client key does not match its "
				"certificate"},
	{"alert", "TLS: the server refused the handshake"},
	{"wrong version number", "TLS negotiation failed (not a TLS answer)"},
};

/* One phrase for the connection's last error, with its number. */
static void my_reason(MYSQL *conn, const char *otherwise, char *why,
		      size_t whylen)
{
	unsigned code = conn ? mysql_errno(conn) : 0;
	const char *msg = conn ? mysql_error(conn) : "";
	int e;

	if (code == 0) {
		snprintf(why, whylen, "%s", otherwise);
		return;
	}
	if (code == CR_CONNECTION_ERROR || code == CR_CONN_HOST_ERROR) {
		e = my_trailing_errno(msg);
		snprintf(why, whylen, "%s",
			 e == ECONNREFUSED ? "connection refused"
			 : e == ENOENT ? "no server socket at that path"
			 : e == EACCES ? "permission denied"
			 : e == ETIMEDOUT ? "connection timed out"
			 : e == EHOSTUNREACH ? "no route to host"
			 : e == ENETUNREACH ? "network unreachable"
			 : e == ECONNRESET ? "connection reset by the server"
					 : "cannot connect");
		return;
	}
	if (code == CR_SSL_CONNECTION_ERROR) {
		for (size_t i = 0; i < sizeof(my_tls) / sizeof(my_tls[0]); i++) {
			if (strstr(msg, my_tls[i].needle)) {
				snprintf(why, whylen, "%s", my_tls[i].says);
				return;
			}
		}
		snprintf(why, whylen, "TLS negotiation failed");
		return;
	}
	for (size_t i = 0; i < sizeof(my_errors) / sizeof(my_errors[0]); i++) {
		if (my_errors[i].code == code) {
			snprintf(why, whylen, "%s (%u)", my_errors[i].says, code);
			return;
		}
	}
	snprintf(why, whylen, "%s error (%u)",
		 code >= 2000 && code < 3000 ? "client"
		 : code >= 5000 && code < 6000 ? "client" : "server", code);
}

/* Client errors (libmariadb's, 2000-2999 and 5000+) say the connection is
 * unusable; server errors answer a query on a live one. */
static int my_is_client_error(unsigned code)
{
	return (code >= 2000 && code < 3000) || (code >= 5000 && code < 6000);
}

/* ------------------------------------------------------------------------
 * Non-blocking calls against a deadline
 */

/*
 * libmariadb 3.3 puts the socket back in blocking mode once TCP is
 * connected and then runs the TLS handshake, and the non-blocking API's
 * TLS reads, with SSL_read() on it: a silent server would block them in
 * read().  O_NONBLOCK, set behind its back (it caches the mode and never
 * sets it again), makes them return: the handshake then waits in
 * my_io_wait() and the reads yield like plain ones.
 */
static void my_nonblock(int fd)
{
	int fl;

	if (fd >= 0 && (fl = fcntl(fd, F_GETFL)) >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* The deadline my_io_wait() ends its waits at (see there); 0: none. */
static _Thread_local int64_t my_io_deadline;

#define MY_WAIT_GONE (-1) /* the deadline passed */
#define MY_WAIT_FAIL (-2) /* poll failed, or no socket */

/*
 * Wait for what libmariadb asked for (MYSQL_WAIT_*), no later than the
 * deadline; returns what happened, for the …_cont call, or MY_WAIT_GONE /
 * MY_WAIT_FAIL.
 */
static int my_wait(const struct healthd_host *host, MYSQL *conn, int status,
		   int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - host->now_ms(), wait = left;
		struct pollfd p = {.fd = (int)mysql_get_socket(conn)};
		int lib = 0, n;

		if (left <= 0)
			return MY_WAIT_GONE;
		if (status & MYSQL_WAIT_TIMEOUT) {
			lib = (int)mysql_get_timeout_value_ms(conn);
			if (lib < wait)
				wait = lib;
		}
		if (status & MYSQL_WAIT_READ)
			p.events |= POLLIN;
		if (status & MYSQL_WAIT_WRITE)
			p.events |= POLLOUT;
		if (status & MYSQL_WAIT_EXCEPT)
			p.events |= POLLPRI;
		if (p.fd < 0 && p.events)
			return MY_WAIT_FAIL;
		my_nonblock(p.fd);
		/* A backstop for a read libmariadb makes before this sees the
		 * socket (the handshake, when the greeting is already there). */
		if (p.fd >= 0) {
			struct timeval tv = {.tv_sec = left / 1000,
					     .tv_usec = (left % 1000) * 1000};

			setsockopt(p.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			setsockopt(p.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		}
		n = poll(&p, p.events ? 1 : 0, wait > INT_MAX ? INT_MAX : (int)wait);
		if (n > 0) {
			int ready = 0;

			if (p.revents & (POLLIN | POLLHUP | POLLERR))
				ready |= MYSQL_WAIT_READ;
			if (p.revents & (POLLOUT | POLLHUP | POLLERR))
				ready |= MYSQL_WAIT_WRITE;
			if (p.revents & POLLPRI)
				ready |= MYSQL_WAIT_EXCEPT;
			/* Only what was asked for counts. */
			ready &= status;
			if (!ready)
				ready = status & (MYSQL_WAIT_READ |
						  MYSQL_WAIT_WRITE);
			return ready;
		}
		if (n == 0 && (status & MYSQL_WAIT_TIMEOUT) && wait == lib)
			return MYSQL_WAIT_TIMEOUT;
		if (n < 0 && errno != EINTR)
			return MY_WAIT_FAIL;
	}
}

/* Drive one non-blocking call: `start` and `cont` are expressions that
 * return libmariadb's wait status, `cont` reading it from `st`.  Leaves st
 * 0 when the call finished, MY_WAIT_GONE or MY_WAIT_FAIL when not. */
#define MY_DRIVE(host, conn, deadline, st, start, cont)                      \
	do {                                                                 \
		(st) = (start);                                              \
		while ((st) > 0) {                                           \
			(st) = my_wait((host), (conn), (st), (deadline));    \
			if ((st) < 0)                                        \
				break;                                       \
			(st) = (cont);                                       \
		}                                                            \
	} while (0)

/*
 * Close a connection whose non-blocking call was abandoned half-way, or
 * that may be stuck: mysql_close() would send COM_QUIT with a blocking
 * write (and TLS's close_notify with write(), which can raise SIGPIPE).
 * An unconnected socket replaces its descriptor first, so every write and
 * read fails at once, without a signal, and the server sees the
 * connection close.
 */
static void my_abandon(MYSQL *conn)
{
	int fd, dead;

	if (!conn)
		return;
	fd = (int)mysql_get_socket(conn);
	if (fd >= 0) {
		dead = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (dead >= 0) {
			dup3(dead, fd, O_CLOEXEC);
			close(dead);
		} else {
			shutdown(fd, SHUT_RDWR);
		}
	}
	/* A deadline long past: any wait of mysql_close() ends at once. */
	my_io_deadline = 1;
	mysql_close(conn);
	my_io_deadline = 0;
}

/*
 * libmariadb 3.3 runs the TLS handshake outside its non-blocking machinery:
 * it waits in its own poll(), bounded only by connect_timeout (whole
 * seconds, none by default).  Its io_wait hook takes that wait over and
 * ends it at the run's deadline, found in my_io_deadline (a thread runs
 * one connect at a time).
 */
static int64_t my_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int my_io_wait(my_socket fd, my_bool is_read, int timeout)
{
	for (;;) {
		struct pollfd p = {.fd = (int)fd,
				   .events = is_read ? POLLIN : POLLOUT};
		int64_t left = my_io_deadline - my_mono_ms();
		int wait = timeout > 0 ? timeout : -1, rc;

		my_nonblock((int)fd);
		if (my_io_deadline) {
			if (left <= 0) {
				errno = ETIMEDOUT;
				return 0;
			}
			if (wait < 0 || left < wait)
				wait = (int)(left > INT_MAX ? INT_MAX : left);
		}
		rc = poll(&p, 1, wait);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc == 0)
			errno = ETIMEDOUT;
		return rc;
	}
}

struct my;
static void my_reap(const struct healthd_host *host, MYSQL *victim,
		    const struct my *m, unsigned long id);

/* A handle with the options of `c`, set up for the non-blocking API. */
static MYSQL *my_new(const struct my_conf *c)
{
	unsigned proto = c->socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
	my_bool yes = 1;
	MYSQL *conn;

	conn = mysql_init(NULL);
	if (!conn)
		return NULL;
	if (mysql_options(conn, MYSQL_OPT_NONBLOCK, 0) ||
	    mysql_options(conn, MYSQL_OPT_PROTOCOL, &proto) ||
	    mysql_optionsv(conn, MARIADB_OPT_IO_WAIT, my_io_wait) ||
	    mysql_optionsv(conn, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name",
			   "healthd"))
		goto fail;
	if (c->charset && mysql_options(conn, MYSQL_SET_CHARSET_NAME, c->charset))
		goto fail;
	if (c->ssl > MY_SSL_DISABLED) {
		const char *ca = c->ssl_ca;
		const char *capath = NULL;

		/* Without a CA file libmariadb verifies no chain: the
		 * system's CAs are the ones to trust. */
		if (!ca && c->ssl >= MY_SSL_VERIFY_CA)
			capath = "/etc/ssl/certs";
		if (mysql_optionsv(conn, MYSQL_OPT_SSL_ENFORCE, &yes) ||
		    (ca && mysql_optionsv(conn, MYSQL_OPT_SSL_CA, ca)) ||
		    (capath && mysql_optionsv(conn, MYSQL_OPT_SSL_CAPATH, capath)) ||
		    (c->ssl_cert &&
		     mysql_optionsv(conn, MYSQL_OPT_SSL_CERT, c->ssl_cert)) ||
		    (c->ssl_key &&
		     mysql_optionsv(conn, MYSQL_OPT_SSL_KEY, c->ssl_key)))
			goto fail;
		if (c->ssl == MY_SSL_VERIFY_IDENTITY &&
		    mysql_optionsv(conn, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &yes))
			goto fail;
	}
	return conn;
fail:
	mysql_close(conn);
	return NULL;
}

/*
 * Connect to `addr` (a numeric address, or NULL: the configured host name
 * or socket).  MY_OK sets *out; MY_BROKEN leaves the failed handle in *out
 * for my_reason() (the caller closes it); MY_TIMEOUT leaves nothing.
 */
static enum my_step my_open(const struct healthd_host *host,
			    const struct my_conf *c, const char *addr,
			    int64_t deadline, MYSQL **out)
{
	MYSQL *conn, *ret = NULL;
	int64_t left;
	unsigned secs;
	int st;

	*out = NULL;
	conn = my_new(c);
	if (!conn)
		return MY_BROKEN;
	/* libmariadb's read and write timeouts (whole seconds, rounded up)
	 * bound what it reads or writes before this code sees the socket.
	 * Not connect_timeout: the TLS handshake takes it for milliseconds. */
	left = deadline - host->now_ms();
	secs = left <= 0 ? 1 : (unsigned)((left + 999) / 1000);
	if (mysql_options(conn, MYSQL_OPT_READ_TIMEOUT, &secs) ||
	    mysql_options(conn, MYSQL_OPT_WRITE_TIMEOUT, &secs)) {
		mysql_close(conn);
		return MY_BROKEN;
	}
	my_io_deadline = deadline;
	MY_DRIVE(host, conn, deadline, st,
		 mysql_real_connect_start(&ret, conn,
					  c->socket ? NULL : addr ? addr : c->host,
					  c->user, c->password, c->db,
					  c->socket ? 0 : c->port, c->socket,
					  0),
		 mysql_real_connect_cont(&ret, conn, st));
	my_io_deadline = 0;
	/* A handshake io_wait ended fails like any other: it was the
	 * deadline. */
	if (st == MY_WAIT_GONE || (!ret && host->now_ms() >= deadline)) {
		my_reap(host, conn, NULL, 0);
		return MY_TIMEOUT;
	}
	*out = conn;
	if (st < 0 || !ret)
		return MY_BROKEN;
	my_nonblock((int)mysql_get_socket(conn));
	return MY_OK;
}

/*
 * Run `sql` and read every row of every result; the first column of the
 * first row is copied into `first` (may be NULL).  MY_REJECTED: the server
 * answered with an error (the connection is fine); MY_BROKEN: it is not.
 */
static enum my_step my_query(const struct healthd_host *host, MYSQL *conn,
			     const char *sql, int64_t deadline, char *first,
			     size_t firstlen, unsigned *code)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	int st, rc = 0, got = 0;

	*code = 0;
	if (first && firstlen)
		first[0] = '\0';
	my_nonblock((int)mysql_get_socket(conn));
	MY_DRIVE(host, conn, deadline, st,
		 mysql_real_query_start(&rc, conn, sql, strlen(sql)),
		 mysql_real_query_cont(&rc, conn, st));
	if (st < 0)
		return st == MY_WAIT_GONE ? MY_TIMEOUT : MY_BROKEN;
	for (;;) {
		if (rc)
			goto failed;
		/* Rows are read one at a time and dropped: a query returning
		 * many costs time, not memory. */
		res = mysql_use_result(conn);
		if (res) {
			for (;;) {
				MY_DRIVE(host, conn, deadline, st,
					 mysql_fetch_row_start(&row, res),
					 mysql_fetch_row_cont(&row, res, st));
				if (st < 0) {
					/* Freed with the connection: freeing
					 * it now would read the rest. */
					return st == MY_WAIT_GONE ? MY_TIMEOUT
								  : MY_BROKEN;
				}
				if (!row)
					break;
				if (!got && first && firstlen &&
				    mysql_num_fields(res) > 0) {
					snprintf(first, firstlen, "%s",
						 row[0] ? row[0] : "NULL");
					got = 1;
				}
			}
			mysql_free_result(res);
			if (mysql_errno(conn))
				goto failed;
		} else if (mysql_field_count(conn) != 0) {
			goto failed;
		}
		if (host->now_ms() >= deadline)
			return MY_TIMEOUT;
		if (!mysql_more_results(conn))
			return MY_OK;
		MY_DRIVE(host, conn, deadline, st,
			 mysql_next_result_start(&rc, conn),
			 mysql_next_result_cont(&rc, conn, st));
		if (st < 0)
			return st == MY_WAIT_GONE ? MY_TIMEOUT : MY_BROKEN;
		if (rc < 0)
			return MY_OK;
	}
failed:
	*code = mysql_errno(conn);
	return *code && !my_is_client_error(*code) ? MY_REJECTED : MY_BROKEN;
}

/* ------------------------------------------------------------------------
 * After the deadline: closing, and killing the query
 */

/*
 * What is left to do once a run is over time goes to a detached thread, so
 * check() returns at its deadline: closing the abandoned connection (with
 * TLS, freeing its SSL context and the CA store loaded into it takes tens
 * of milliseconds) and, when a query was running, KILL QUERY over a
 * connection of its own, which a hung server never completes: bounded by
 * MY_KILL_MS.  The library is linked with -z nodelete so such a thread
 * never outlives the code it runs; the count bounds how many can pile up
 * against a server that stays hung (past it, the work is done inline).
 */
#define MY_MAX_REAPERS 8
#define MY_KILL_MS 2000
static atomic_int my_reapers;
static _Thread_local int my_in_reaper; /* no reaper of a reaper */

struct my_reap {
	const struct healthd_host *host;
	MYSQL *victim;        /* to close (may be NULL) */
	unsigned long id;     /* the thread to KILL QUERY; 0: none */
	struct my_conf conf;  /* how to connect for it */
	char addr[NI_MAXHOST];
};

static void my_conf_free(struct my_conf *c);
static int my_conf_copy(struct my_conf *to, const struct my_conf *from);

static void my_reap_free(struct my_reap *r)
{
	my_conf_free(&r->conf);
	free(r);
}

static void *my_reap_thread(void *arg)
{
	struct my_reap *r = arg;
	int64_t deadline = r->host->now_ms() + MY_KILL_MS;
	char sql[64];
	unsigned code;
	MYSQL *conn;

	my_in_reaper = 1;
	my_abandon(r->victim);
	if (r->id && my_open(r->host, &r->conf, r->addr[0] ? r->addr : NULL,
			     deadline, &conn) == MY_OK) {
		snprintf(sql, sizeof(sql), "KILL QUERY %lu", r->id);
		if (my_query(r->host, conn, sql, deadline, NULL, 0, &code) ==
		    MY_OK)
			mysql_close(conn);
		else
			my_abandon(conn);
	} else if (r->id) {
		my_abandon(conn);
	}
	my_reap_free(r);
	atomic_fetch_sub(&my_reapers, 1);
	return NULL;
}

/* Close `victim` (abandoned half-way) and, when `m` is given, kill thread
 * `id` on its server, off the caller's thread when possible. */
static void my_reap(const struct healthd_host *host, MYSQL *victim,
		    const struct my *m, unsigned long id)
{
	pthread_attr_t attr;
	pthread_t thread;
	struct my_reap *r = NULL;

	if (my_in_reaper)
		goto inline_close;
	if (atomic_fetch_add(&my_reapers, 1) >= MY_MAX_REAPERS)
		goto uncount;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto uncount;
	r->host = host;
	r->victim = victim;
	if (m && id) {
		r->id = id;
		snprintf(r->addr, sizeof(r->addr), "%s", m->addr);
		if (my_conf_copy(&r->conf, &m->conf) != 0)
			goto fail;
	}
	if (pthread_attr_init(&attr) != 0)
		goto fail;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, my_reap_thread, r) != 0) {
		pthread_attr_destroy(&attr);
		goto fail;
	}
	pthread_attr_destroy(&attr);
	return;
fail:
	my_reap_free(r); /* the victim stays ours */
uncount:
	atomic_fetch_sub(&my_reapers, 1);
inline_close:
	my_abandon(victim);
}

/* Forget the kept connection; kill the query it was running when asked
 * to.  `clean`: nothing is pending on it, so it may say goodbye. */
static void my_drop(struct my *m, int clean, int kill)
{
	if (!m->conn)
		return;
	if (clean)
		mysql_close(m->conn);
	else
		my_reap(m->host, m->conn, kill ? m : NULL,
			kill ? mysql_thread_id(m->conn) : 0);
	m->conn = NULL;
}

/* ------------------------------------------------------------------------
 * One run
 */

/* Latency is finer than the deadline clock's milliseconds. */
static double my_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * Connect m->conn, by the addresses the host name resolves to (the next
 * after one that refuses or cannot be reached), or by libmariadb's own
 * resolution (verify_identity) or the socket.
 */
static enum my_step my_connect(struct my *m, int64_t deadline,
			       const char **stage, char *why, size_t whylen)
{
	const struct my_conf *c = &m->conf;
	struct addrinfo *ai = NULL;
	enum my_step st = MY_BROKEN;
	char port[8];
	MYSQL *conn = NULL;

	m->addr[0] = '\0';
	if (c->socket || (c->ssl == MY_SSL_VERIFY_IDENTITY &&
			  !resolve_is_numeric(c->host))) {
		*stage = "connecting";
		st = my_open(m->host, c, NULL, deadline, &conn);
		goto out;
	}
	*stage = "resolving the host name";
	snprintf(port, sizeof(port), "%u", c->port);
	switch (resolve_within(c->host, port, SOCK_STREAM, deadline,
			       m->host->now_ms, &ai, why, whylen)) {
	case RESOLVE_OK:
		break;
	case RESOLVE_TIMEOUT:
		return MY_TIMEOUT;
	default:
		return MY_BROKEN; /* why says it */
	}
	*stage = "connecting";
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		unsigned code;

		if (conn)
			mysql_close(conn);
		conn = NULL;
		resolve_addr_text(a, m->addr, sizeof(m->addr));
		if (!m->addr[0])
			continue;
		st = my_open(m->host, c, m->addr, deadline, &conn);
		if (st != MY_BROKEN || !conn)
			break;
		code = mysql_errno(conn);
		if (code != CR_CONN_HOST_ERROR && code != CR_CONNECTION_ERROR)
			break;
	}
	freeaddrinfo(ai);
out:
	if (st == MY_OK) {
		m->conn = conn;
		return MY_OK;
	}
	if (st == MY_BROKEN)
		my_reason(conn, "connection failed", why, whylen);
	if (conn)
		mysql_close(conn);
	return st;
}

struct my_probe {
	double latency_ms;
	int read_only;
	unsigned code; /* the error of a rejected query */
	int role_query; /* the rejected query was ours, not the user's */
};

static enum my_step my_probe(struct my *m, int64_t deadline,
			     struct my_probe *p)
{
	double t0 = my_now();
	enum my_step st;
	char ro[16];

	p->role_query = 0;
	st = my_query(m->host, m->conn, m->query, deadline, NULL, 0, &p->code);
	if (st != MY_OK)
		return st;
	p->latency_ms = my_now() - t0;
	p->role_query = 1;
	st = my_query(m->host, m->conn, "SELECT @@global.read_only", deadline,
		      ro, sizeof(ro), &p->code);
	if (st != MY_OK)
		return st;
	p->read_only = strcmp(ro, "0") != 0 && strcasecmp(ro, "OFF") != 0 &&
		       ro[0] != '\0';
	return MY_OK;
}

static void my_check(const struct healthd_host *host, void *instance,
		     int64_t deadline_ms, struct healthd_result *result)
{
	struct my *m = instance;
	int64_t start = host->now_ms();
	struct my_probe probe = {0};
	const char *stage = "connecting";
	const char *version, *role, *tls = NULL;
	char why[256] = "";
	enum my_step st;
	int reused = 0;
	unsigned status = 0;

	host->detail_str(result, "server", m->label);
	if (my_init_rc != 0) {
		host->result(result, HEALTHD_FAIL,
			     "mysql %s: client library failed to initialize",
			     m->label);
		return;
	}
	if (m->conn) {
		reused = 1;
	} else {
		st = my_connect(m, deadline_ms, &stage, why, sizeof(why));
		if (st != MY_OK)
			goto fail;
		host->detail_num(result, "connect_ms",
				 (double)(host->now_ms() - start));
	}

	stage = "waiting for the query";
	st = my_probe(m, deadline_ms, &probe);
	/* A kept connection the server closed since the last run (a restart,
	 * wait_timeout, KILL) is not the server's current state: reconnect
	 * once. */
	if (reused && st == MY_BROKEN && host->now_ms() < deadline_ms) {
		my_drop(m, 0, 0);
		st = my_connect(m, deadline_ms, &stage, why, sizeof(why));
		if (st != MY_OK)
			goto fail;
		stage = "waiting for the query";
		st = my_probe(m, deadline_ms, &probe);
	}
	if (st != MY_OK)
		goto fail;

	/* ssl_mode required or verify_ca: libmariadb falls back to plain
	 * text when the server offers no TLS; this mode does not. */
	if (m->conf.ssl == MY_SSL_REQUIRED || m->conf.ssl == MY_SSL_VERIFY_CA) {
		if (!mysql_get_ssl_cipher(m->conn)) {
			snprintf(why, sizeof(why), "TLS required but the server "
						   "does not offer it");
			st = MY_REJECTED;
			goto fail;
		}
	}
	version = mysql_get_server_info(m->conn);
	role = probe.read_only ? "replica" : "primary";
	if (version)
		host->detail_str(result, "server_version", version);
	host->detail_bool(result, "read_only", probe.read_only);
	host->detail_str(result, "role", role);
	host->detail_num(result, "latency_ms", probe.latency_ms);
	if (mysql_get_ssl_cipher(m->conn))
		mariadb_get_infov(m->conn, MARIADB_CONNECTION_TLS_VERSION, &tls);
	host->detail_bool(result, "tls", mysql_get_ssl_cipher(m->conn) != NULL);
	if (tls)
		host->detail_str(result, "tls_version", tls);
	if ((m->role == MY_PRIMARY && probe.read_only) ||
	    (m->role == MY_REPLICA && !probe.read_only))
		host->result(result, HEALTHD_FAIL,
			     "mysql %s: role is %s (read_only %s), expected %s",
			     m->label, role, probe.read_only ? "ON" : "OFF",
			     probe.read_only ? "primary" : "replica");
	else
		host->result(result, HEALTHD_PASS,
			     "mysql %s: query ok in %.1f ms (%s, %s)", m->label,
			     probe.latency_ms, role,
			     version ? version : "unknown version");
	/* A connection left inside a transaction would carry its locks and
	 * snapshot into the next run. */
	mariadb_get_infov(m->conn, MARIADB_CONNECTION_SERVER_STATUS, &status);
	if (m->mode == MY_CONNECT || (status & SERVER_STATUS_IN_TRANS))
		my_drop(m, 1, 0);
	return;
fail:
	if (st == MY_TIMEOUT) {
		host->result(result, HEALTHD_FAIL,
			     "mysql %s: timed out after %lld ms %s", m->label,
			     (long long)(host->now_ms() - start), stage);
	} else if (st == MY_REJECTED && probe.code) {
		my_reason(m->conn, "error", why, sizeof(why));
		host->result(result, HEALTHD_FAIL, "mysql %s: %s failed: %s",
			     m->label, probe.role_query ? "read_only query"
							: "query", why);
	} else {
		if (!why[0])
			my_reason(m->conn, "connection lost", why, sizeof(why));
		host->result(result, HEALTHD_FAIL, "mysql %s: %s", m->label,
			     why);
	}
	/* A query still running at the deadline is killed on the server:
	 * otherwise it runs on (SLEEP, a lock wait) after the connection is
	 * gone, as the server notices a closed client only when it writes. */
	if (st == MY_TIMEOUT)
		my_drop(m, 0, m->conn != NULL);
	else if (st != MY_REJECTED || m->mode == MY_CONNECT)
		my_drop(m, st == MY_REJECTED, 0);
}

/* ------------------------------------------------------------------------
 * Options
 */

static void my_wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void my_conf_free(struct my_conf *c)
{
	my_wipe_free(c->host);
	my_wipe_free(c->socket);
	my_wipe_free(c->user);
	my_wipe_free(c->password);
	my_wipe_free(c->db);
	my_wipe_free(c->charset);
	my_wipe_free(c->ssl_ca);
	my_wipe_free(c->ssl_cert);
	my_wipe_free(c->ssl_key);
	memset(c, 0, sizeof(*c));
}

static int my_dup(char **to, const char *from)
{
	*to = NULL;
	if (!from)
		return 0;
	*to = strdup(from);
	return *to ? 0 : -1;
}

static int my_conf_copy(struct my_conf *to, const struct my_conf *from)
{
	memset(to, 0, sizeof(*to));
	to->port = from->port;
	to->ssl = from->ssl;
	if (my_dup(&to->host, from->host) || my_dup(&to->socket, from->socket) ||
	    my_dup(&to->user, from->user) ||
	    my_dup(&to->password, from->password) ||
	    my_dup(&to->db, from->db) || my_dup(&to->charset, from->charset) ||
	    my_dup(&to->ssl_ca, from->ssl_ca) ||
	    my_dup(&to->ssl_cert, from->ssl_cert) ||
	    my_dup(&to->ssl_key, from->ssl_key)) {
		my_conf_free(to);
		return -1;
	}
	return 0;
}

static void my_destroy(void *instance)
{
	struct my *m = instance;
	int64_t until;

	if (!m)
		return;
	my_drop(m, 1, 0);
	/* A process about to exit (--once, plugin_run) would end a kill
	 * before it reaches the server, leaving the query running, and pull
	 * OpenSSL from under a closing connection: wait for those in flight,
	 * at most as long as one may take.  destroy() has no deadline. */
	until = m->host->now_ms() + MY_KILL_MS + 500;
	while (atomic_load(&my_reapers) > 0 && m->host->now_ms() < until) {
		struct timespec ts = {0, 5 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	my_conf_free(&m->conf);
	free(m);
}

static int my_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* [s, s + n) percent-decoded into a new string; -1 on a bad escape or %00,
 * -2 out of memory. */
static int my_decode(const char *s, size_t n, char **out)
{
	char *o = malloc(n + 1);
	size_t j = 0;

	*out = NULL;
	if (!o)
		return -2;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int a = i + 1 < n ? my_hex((unsigned char)s[i + 1]) : -1;
			int b = i + 2 < n ? my_hex((unsigned char)s[i + 2]) : -1;
			int h = a >= 0 && b >= 0 ? a * 16 + b : -1;

			if (h <= 0) {
				explicit_bzero(o, j);
				free(o);
				return -1;
			}
			o[j++] = (char)h;
			i += 2;
		} else {
			o[j++] = s[i];
		}
	}
	o[j] = '\0';
	*out = o;
	return 0;
}

#define MY_SPECIAL ((size_t)-1)

/* Set one dsn field by its key, taking `value`; 1 when the key is
 * unknown, 2 for port and ssl_mode (the caller parses them). */
static int my_set(struct my_conf *c, const char *key, size_t klen,
		  char *value)
{
	static const struct {
		const char *key;
		size_t off;
	} fields[] = {
		{"host", offsetof(struct my_conf, host)},
		{"user", offsetof(struct my_conf, user)},
		{"password", offsetof(struct my_conf, password)},
		{"dbname", offsetof(struct my_conf, db)},
		{"database", offsetof(struct my_conf, db)},
		{"unix_socket", offsetof(struct my_conf, socket)},
		{"socket", offsetof(struct my_conf, socket)},
		{"charset", offsetof(struct my_conf, charset)},
		{"ssl_ca", offsetof(struct my_conf, ssl_ca)},
		{"ssl_cert", offsetof(struct my_conf, ssl_cert)},
		{"ssl_key", offsetof(struct my_conf, ssl_key)},
		/* parsed by the caller */
		{"port", MY_SPECIAL},
		{"ssl_mode", MY_SPECIAL},
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char **slot;

		if (strlen(fields[i].key) != klen ||
		    strncmp(fields[i].key, key, klen) != 0)
			continue;
		if (fields[i].off == MY_SPECIAL)
			return 2;
		slot = (char **)((char *)c + fields[i].off);
		my_wipe_free(*slot);
		*slot = value;
		return 0;
	}
	return 1;
}

static int my_ssl_mode(const char *s)
{
	static const char *const names[] = {"disabled", "preferred", "required",
					    "verify_ca", "verify_identity"};

	for (int i = 0; i < 5; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	return MY_SSL_UNSET;
}

/* A port number 1-65535, all digits. */
static int my_port(const char *s, unsigned *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* One key=value: takes ownership of value. */
static int my_pair(struct my_conf *c, const char *key, size_t klen,
		   char *value, char *err, size_t errlen)
{
	int r = my_set(c, key, klen, value);

	if (r == 0)
		return 0;
	if (r == 2 && klen == 4) { /* port */
		if (my_port(value, &c->port) != 0) {
			snprintf(err, errlen, "dsn: the port must be a number "
					      "from 1 to 65535");
			my_wipe_free(value);
			return -EINVAL;
		}
	} else if (r == 2) { /* ssl_mode */
		c->ssl = my_ssl_mode(value);
		if (c->ssl == MY_SSL_UNSET) {
			snprintf(err, errlen,
				 "dsn: ssl_mode: expected disabled, preferred, "
				 "required, verify_ca or verify_identity");
			my_wipe_free(value);
			return -EINVAL;
		}
	} else {
		/* Not named: a misplaced space turns part of a password
		 * into a key. */
		snprintf(err, errlen,
			 "dsn: unknown key (expected host, port, user, "
			 "password, dbname, unix_socket, ssl_mode, ssl_ca, "
			 "ssl_cert, ssl_key, charset)");
		my_wipe_free(value);
		return -EINVAL;
	}
	my_wipe_free(value);
	return 0;
}

/* The scheme's length with "://", or 0: mysql://, mariadb://, and
 * SQLAlchemy's mysql+driver://, mariadb+driver://. */
static size_t my_scheme(const char *dsn)
{
	static const char *const names[] = {"mysql", "mariadb"};

	for (int i = 0; i < 2; i++) {
		size_t n = strlen(names[i]);
		const char *p = dsn + n;

		if (strncasecmp(dsn, names[i], n) != 0)
			continue;
		if (*p == '+') {
			p++;
			while (isalnum((unsigned char)*p) || *p == '_')
				p++;
			if (p == dsn + n + 1)
				return 0;
		}
		if (!strncmp(p, "://", 3))
			return (size_t)(p + 3 - dsn);
	}
	return 0;
}

static int my_parse_url(struct my_conf *c, const char *dsn, size_t skip,
			char *err, size_t errlen)
{
	const char *p = dsn + skip, *end, *hp, *colon;
	char *v;
	int r;

	/* The userinfo ends at the first '@' or '/': a password holding an
	 * unencoded '@' or '/' would leave its tail in the host or database,
	 * which every message shows. */
	end = p + strcspn(p, "@/?");
	if (*end == '@') {
		const char *sep = memchr(p, ':', (size_t)(end - p));
		const char *uend = sep ? sep : end;

		if ((r = my_decode(p, (size_t)(uend - p), &v)) != 0)
			goto bad_escape;
		if (v[0])
			c->user = v;
		else
			free(v);
		if (sep) {
			if ((r = my_decode(sep + 1, (size_t)(end - sep - 1),
					   &v)) != 0)
				goto bad_escape;
			c->password = v;
		}
		p = end + 1;
	}
	end = p + strcspn(p, "?");
	if (memchr(p, '@', (size_t)(end - p))) {
		snprintf(err, errlen,
			 "dsn: an '@' that does not end user:password@; "
			 "percent-encode '@', '/' and '?' in the user name and "
			 "password (%%40, %%2F, %%3F)");
		return -EINVAL;
	}
	hp = p;
	end = p + strcspn(p, "/?");
	if (*hp == '[') {
		const char *close = memchr(hp, ']', (size_t)(end - hp));

		if (!close) {
			snprintf(err, errlen, "dsn: bad [IPv6 address]");
			return -EINVAL;
		}
		if (close > hp + 1 && !(c->host = strndup(hp + 1,
						  (size_t)(close - hp - 1))))
			return -ENOMEM;
		colon = close + 1 < end && close[1] == ':' ? close + 1 : NULL;
		if (close + 1 < end && !colon) {
			snprintf(err, errlen, "dsn: bad [IPv6 address]");
			return -EINVAL;
		}
	} else {
		colon = memchr(hp, ':', (size_t)(end - hp));
		if ((colon ? colon : end) > hp &&
		    !(c->host = strndup(hp, (size_t)((colon ? colon : end) - hp))))
			return -ENOMEM;
	}
	if (colon) {
		char port[8];
		size_t n = (size_t)(end - colon - 1);

		if (n == 0 || n >= sizeof(port)) {
			snprintf(err, errlen, "dsn: the port must be a number "
					      "from 1 to 65535");
			return -EINVAL;
		}
		memcpy(port, colon + 1, n);
		port[n] = '\0';
		if (my_port(port, &c->port) != 0) {
			snprintf(err, errlen, "dsn: the port must be a number "
					      "from 1 to 65535");
			return -EINVAL;
		}
	}
	p = end;
	if (*p == '/') {
		p++;
		end = p + strcspn(p, "?");
		if (end > p) {
			if ((r = my_decode(p, (size_t)(end - p), &v)) != 0)
				goto bad_escape;
			c->db = v;
		}
		p = end;
	}
	if (*p == '?') {
		p++;
		while (*p) {
			const char *amp = p + strcspn(p, "&");
			const char *eq = memchr(p, '=', (size_t)(amp - p));

			if (amp == p) {
				p++;
				continue;
			}
			if (!eq) {
				snprintf(err, errlen, "dsn: a query parameter is "
						      "not key=value");
				return -EINVAL;
			}
			if ((r = my_decode(eq + 1, (size_t)(amp - eq - 1),
					   &v)) != 0)
				goto bad_escape;
			r = my_pair(c, p, (size_t)(eq - p), v, err, errlen);
			if (r)
				return r;
			p = *amp ? amp + 1 : amp;
		}
	}
	return 0;
bad_escape:
	if (r == -2)
		return -ENOMEM;
	snprintf(err, errlen, "dsn: invalid percent-encoded token");
	return -EINVAL;
}

/* host=... user=... password='...': values may be single-quoted, with \'
 * and \\ inside. */
static int my_parse_kv(struct my_conf *c, const char *dsn, char *err,
		       size_t errlen)
{
	const char *p = dsn;

	for (;;) {
		const char *key;
		size_t klen;
		char *v;
		size_t n = 0;
		int r;

		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			return 0;
		key = p;
		while (isalnum((unsigned char)*p) || *p == '_')
			p++;
		klen = (size_t)(p - key);
		while (isspace((unsigned char)*p))
			p++;
		if (!klen || *p != '=') {
			snprintf(err, errlen, "dsn: not a mysql:// URL or a "
					      "list of key=value");
			return -EINVAL;
		}
		p++;
		while (isspace((unsigned char)*p))
			p++;
		v = malloc(strlen(p) + 1);
		if (!v)
			return -ENOMEM;
		if (*p == '\'') {
			p++;
			for (;;) {
				if (!*p) {
					explicit_bzero(v, n);
					free(v);
					snprintf(err, errlen, "dsn: unterminated "
							      "quoted string");
					return -EINVAL;
				}
				if (*p == '\'')
					break;
				if (*p == '\\' && p[1])
					p++;
				v[n++] = *p++;
			}
			p++;
		} else {
			while (*p && !isspace((unsigned char)*p)) {
				if (*p == '\\' && p[1])
					p++;
				v[n++] = *p++;
			}
		}
		v[n] = '\0';
		r = my_pair(c, key, klen, v, err, errlen);
		if (r)
			return r;
	}
}

/* An option overrides what the dsn said; a copy is kept. */
static int my_override(char **slot, const char *value)
{
	if (!value || !value[0])
		return 0;
	my_wipe_free(*slot);
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

static int my_create(const struct healthd_host *host,
		     const struct healthd_check *check, void **instance,
		     char *err, size_t errlen)
{
	const char *dsn = host->option(check, "dsn");
	const char *mode = host->option(check, "mode");
	const char *role = host->option(check, "role");
	const char *query = host->option(check, "query");
	const char *ssl = host->option(check, "ssl_mode");
	struct my_conf *c;
	struct my *m;
	size_t skip;
	int rc = -EINVAL;

	pthread_once(&my_once, my_library_init);
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->host = host;
	m->check = check;
	c = &m->conf;
	c->ssl = MY_SSL_UNSET;
	if (!query || !query[0]) {
		snprintf(err, errlen, "query: must not be empty");
		goto out;
	}
	m->query = query;
	if (!strcmp(mode, "persistent")) {
		m->mode = MY_PERSISTENT;
	} else if (!strcmp(mode, "connect")) {
		m->mode = MY_CONNECT;
	} else {
		snprintf(err, errlen, "mode: expected persistent or connect");
		goto out;
	}
	if (!strcmp(role, "any")) {
		m->role = MY_ANY;
	} else if (!strcmp(role, "primary")) {
		m->role = MY_PRIMARY;
	} else if (!strcmp(role, "replica")) {
		m->role = MY_REPLICA;
	} else {
		snprintf(err, errlen, "role: expected any, primary or replica");
		goto out;
	}
	if (!dsn || !dsn[0]) {
		snprintf(err, errlen, "dsn: must not be empty");
		goto out;
	}
	skip = my_scheme(dsn);
	if (skip)
		rc = my_parse_url(c, dsn, skip, err, errlen);
	else if (strstr(dsn, "://"))
		snprintf(err, errlen, "dsn: expected mysql://, mariadb:// or "
				      "mysql+driver:// (SQLAlchemy)");
	else
		rc = my_parse_kv(c, dsn, err, errlen);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (ssl && ssl[0]) {
		c->ssl = my_ssl_mode(ssl);
		if (c->ssl == MY_SSL_UNSET) {
			snprintf(err, errlen,
				 "ssl_mode: expected disabled, preferred, "
				 "required, verify_ca or verify_identity");
			goto out;
		}
	}
	if (c->ssl == MY_SSL_UNSET)
		c->ssl = MY_SSL_PREFERRED;
	if (my_override(&c->ssl_ca, host->option(check, "ssl_ca")) ||
	    my_override(&c->ssl_cert, host->option(check, "ssl_cert")) ||
	    my_override(&c->ssl_key, host->option(check, "ssl_key"))) {
		rc = -ENOMEM;
		goto out;
	}
	if (!c->ssl_cert != !c->ssl_key) {
		snprintf(err, errlen, "ssl_cert and ssl_key: set both or neither");
		goto out;
	}
	if (c->socket && c->socket[0] != '/') {
		snprintf(err, errlen, "dsn: unix_socket must be an absolute path");
		goto out;
	}
	if (c->socket && c->ssl >= MY_SSL_REQUIRED) {
		snprintf(err, errlen, "ssl_mode: a unix socket has no TLS; use "
				      "disabled or preferred");
		goto out;
	}
	if (!c->socket && !c->host) {
		snprintf(err, errlen, "dsn: a host (or unix_socket) is required");
		goto out;
	}
	if (!c->port)
		c->port = 3306;
	if (c->socket)
		snprintf(m->label, sizeof(m->label), "unix(%s)/%s", c->socket,
			 c->db ? c->db : "");
	else
		snprintf(m->label, sizeof(m->label), "%s%s%s:%u%s%s",
			 strchr(c->host, ':') ? "[" : "", c->host,
			 strchr(c->host, ':') ? "]" : "", c->port,
			 c->db ? "/" : "", c->db ? c->db : "");
	host->target(check, "%s", m->label);
	*instance = m;
	rc = 0;
out:
	if (rc)
		my_destroy(m);
	return rc;
}

HEALTHD_PLUGIN_DEFINE(.name = "mysql",
		      .description = "MySQL / MariaDB: connect, run a query, "
				     "check the role",
		      .options = my_options, .create = my_create,
		      .check = my_check, .destroy = my_destroy,
		      .required = (const char *const[]){"dsn", NULL});
