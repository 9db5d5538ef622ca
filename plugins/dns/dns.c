/*
 * dns.c — the bundled DNS check (c-ares).
 *
 * Each run resolves `name` (A and AAAA by default, like an address lookup;
 * or one of A, AAAA, CNAME, SRV, TXT) against `server` or the system
 * resolver's nameservers (/etc/resolv.conf, as c-ares reads it), and
 * optionally checks that every `expect`ed answer is among the answers.
 *
 * Deadlines: c-ares is asynchronous and starts no thread.  The run drives
 * its sockets with ppoll() bounded by the deadline (nanoseconds, so the
 * deadline holds to well under a millisecond), and at the deadline
 * cancels the queries and destroys the channel: its sockets are closed
 * before check() returns.  c-ares's own per-try timeouts are sized from
 * the time left, so its retries (doubling each round over the servers)
 * end at the deadline rather than long after it or well before it.
 *
 * A channel per run: c-ares 1.18 fixes a channel's timeout when it is
 * created, and only a run knows its deadline.  It also means nothing —
 * socket, server state — lives between runs, concurrent runs of different
 * instances share nothing, and an edited resolv.conf is read again.  The
 * cost is reading resolv.conf once per run.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ares.h>

#include <healthd/plugin.h>

#define DNS_MAX_EXPECT 64
#define DNS_MAX_ANSWERS 256
#define DNS_ANSWERS_MAX_LEN 4000 /* the answers detail, cut beyond */

static const struct {
	const char *name;
	int type;
} dns_types[] = {
	{"A", ns_t_a},         {"AAAA", ns_t_aaaa}, {"CNAME", ns_t_cname},
	{"SRV", ns_t_srv},     {"TXT", ns_t_txt},
};

struct dns {
	const struct healthd_host *host;
	const char *name; /* option strings live until destroy() returns */
	int types[2];     /* ns_t_*: one, or A and AAAA */
	int n_types;
	char type_label[16];
	int has_server;
	struct ares_addr_port_node server;
	int nservers; /* the resolver's, counted in create(): sizes timeouts */
	int attempts;
	int search;
	char *expect[DNS_MAX_EXPECT]; /* normalised: see dns_normalise() */
	size_t n_expect;
};

static const struct healthd_option_spec dns_options[] = {
	{"name", NULL, "the name to resolve, e.g. db.example.com"},
	{"type", "A,AAAA",
	 "A, AAAA, both (A,AAAA: passes when either has answers), CNAME, SRV "
	 "or TXT"},
	{"server", NULL,
	 "the DNS server, IP[:PORT] or [IPv6]:PORT (default: the nameservers of "
	 "/etc/resolv.conf)"},
	{"expect", NULL,
	 "a list: every one must be among the answers (addresses for A/AAAA, "
	 "names for CNAME, TARGET:PORT for SRV, texts for TXT)"},
	{"attempts", "2",
	 "tries per server; the time left is shared among them (each round "
	 "waits twice as long as the one before)"},
	{"search", "false",
	 "true: qualify the name with resolv.conf's search domains (ndots), as "
	 "the system resolver does; false: resolve it as written"},
	{NULL, NULL, NULL},
};

/* ares_library_init() is not thread-safe and create() may run on any
 * thread, next to other instances' runs. */
static pthread_once_t dns_once = PTHREAD_ONCE_INIT;
static int dns_lib_status = ARES_ENOTINITIALIZED;

static void dns_lib_init(void)
{
	dns_lib_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* Resolution time is finer than the deadline clock's milliseconds. */
static int64_t dns_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whole milliseconds since start_ns, cut, not rounded: a run cut at its
 * 300 ms deadline says 300 ms, not 301. */
static long long dns_elapsed_ms(int64_t start_ns)
{
	return (long long)((dns_now_ns() - start_ns) / 1000000);
}

static const char *dns_type_name(int type)
{
	for (size_t i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
		if (dns_types[i].type == type)
			return dns_types[i].name;
	return "?";
}

/* s[0..n) without leading and trailing blanks. */
static void dns_trim(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* A host name as DNS takes it: labels of 1 to 63 printable characters,
 * 253 in all, an optional trailing dot. */
static int dns_valid_name(const char *s, size_t n)
{
	size_t label = 0;

	if (n && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (c <= ' ' || c >= 0x7F || c == ',' || c == '\\') {
			return 0;
		} else if (++label > 63) {
			return 0;
		}
	}
	return 1;
}

/*
 * One expected answer in the form answers take, so a comparison is a
 * string comparison: an address as inet_ntop() writes it ("::1" for
 * "0:0::1"), a name without its trailing dot, SRV as "target:port", TXT
 * as written.  NULL with a message in err when it cannot be one.
 */
static char *dns_normalise(const struct dns *d, const char *s, size_t n,
			   char *err, size_t errlen)
{
	char buf[512], out[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	int type = d->types[0];

	if (n >= sizeof(buf)) {
		snprintf(err, errlen, "expect: an item is too long");
		return NULL;
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (type == ns_t_a || type == ns_t_aaaa) {
		int family = inet_pton(AF_INET, buf, addr) == 1	 ? AF_INET
			     : inet_pton(AF_INET6, buf, addr) == 1 ? AF_INET6
								   : 0;

		if (!family) {
			snprintf(err, errlen, "expect: expected IP addresses "
					      "(type %s)", d->type_label);
			return NULL;
		}
		if ((family == AF_INET && d->n_types == 1 && type != ns_t_a) ||
		    (family == AF_INET6 && d->n_types == 1 && type != ns_t_aaaa)) {
			snprintf(err, errlen, "expect: an %s address can never "
					      "be an answer of type %s",
				 family == AF_INET ? "IPv4" : "IPv6",
				 d->type_label);
			return NULL;
		}
		inet_ntop(family, addr, out, sizeof(out));
		return strdup(out);
	}
	if (type == ns_t_cname) {
		if (!dns_valid_name(buf, n)) {
			snprintf(err, errlen, "expect: expected host names "
					      "(type CNAME)");
			return NULL;
		}
		if (buf[n - 1] == '.')
			buf[n - 1] = '\0';
		return strdup(buf);
	}
	if (type == ns_t_srv) {
		char *colon = strrchr(buf, ':'), *end;
		long port = colon ? strtol(colon + 1, &end, 10) : 0;

		if (!colon || colon[1] < '0' || colon[1] > '9' || *end ||
		    port < 0 || port > 65535 ||
		    !dns_valid_name(buf, (size_t)(colon - buf))) {
			snprintf(err, errlen, "expect: expected TARGET:PORT "
					      "items (type SRV)");
			return NULL;
		}
		*colon = '\0';
		if (colon > buf && colon[-1] == '.')
			colon[-1] = '\0';
		snprintf(out, sizeof(out), ":%ld", port);
		if (strlen(buf) + strlen(out) >= sizeof(buf)) {
			snprintf(err, errlen, "expect: an item is too long");
			return NULL;
		}
		strcat(buf, out);
		return strdup(buf);
	}
	return strdup(buf); /* TXT */
}

static int dns_parse_type(struct dns *d, const char *s, char *err,
			  size_t errlen)
{
	d->n_types = 0;
	while (*s) {
		const char *item = s;
		size_t n = strcspn(s, ","), i;

		s += n + (s[n] == ',');
		dns_trim(&item, &n);
		for (i = 0; i < sizeof(dns_types) / sizeof(dns_types[0]); i++)
			if (strlen(dns_types[i].name) == n &&
			    !strncasecmp(item, dns_types[i].name, n))
				break;
		if (i == sizeof(dns_types) / sizeof(dns_types[0]) ||
		    d->n_types == 2)
			goto bad;
		d->types[d->n_types++] = dns_types[i].type;
	}
	if (d->n_types == 0)
		goto bad;
	if (d->n_types == 2) {
		/* Only A and AAAA go together, reported in that order. */
		if (!((d->types[0] == ns_t_a && d->types[1] == ns_t_aaaa) ||
		      (d->types[0] == ns_t_aaaa && d->types[1] == ns_t_a)))
			goto bad;
		d->types[0] = ns_t_a;
		d->types[1] = ns_t_aaaa;
	}
	snprintf(d->type_label, sizeof(d->type_label), "%s%s%s",
		 dns_type_name(d->types[0]), d->n_types == 2 ? "," : "",
		 d->n_types == 2 ? dns_type_name(d->types[1]) : "");
	return 0;
bad:
	snprintf(err, errlen, "type: expected A, AAAA, both (A,AAAA), CNAME, "
			      "SRV or TXT");
	return -1;
}

/* IP, IP:PORT, IPv6, [IPv6] or [IPv6]:PORT. */
static int dns_parse_server(struct dns *d, const char *s, char *err,
			    size_t errlen)
{
	struct ares_addr_port_node *srv = &d->server;
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL, *colon = strchr(s, ':');
	size_t n;
	long p = 53;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			goto bad;
		n = (size_t)(close - s - 1);
		s++;
		port = close[1] ? close + 2 : NULL;
	} else if (colon && !strchr(colon + 1, ':')) {
		n = (size_t)(colon - s); /* IPv4:PORT */
		port = colon + 1;
	} else {
		n = strlen(s); /* IPv4, or IPv6 without a port */
	}
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, s, n);
	host[n] = '\0';
	if (port) {
		char *end;

		p = strtol(port, &end, 10);
		if (*port < '0' || *port > '9' || *end || p < 1 || p > 65535)
			goto bad;
	}
	if (inet_pton(AF_INET, host, &srv->addr.addr4) == 1)
		srv->family = AF_INET;
	else if (inet_pton(AF_INET6, host, &srv->addr.addr6) == 1)
		srv->family = AF_INET6;
	else
		goto bad;
	srv->udp_port = srv->tcp_port = (int)p;
	srv->next = NULL;
	d->has_server = 1;
	d->nservers = 1;
	return 0;
bad:
	snprintf(err, errlen, "server: expected an IP address, optionally with "
			      ":PORT (IPv6 as [ADDRESS]:PORT)");
	return -1;
}

/* "addr:port,addr:port": the servers a channel uses.  Returns how many. */
static int dns_servers(ares_channel ch, char *out, size_t outlen)
{
	struct ares_addr_port_node *list = NULL;
	size_t used = 0;
	int n = 0;

	out[0] = '\0';
	if (ares_get_servers_ports(ch, &list) != ARES_SUCCESS)
		return 0;
	for (struct ares_addr_port_node *s = list; s; s = s->next, n++) {
		char a[INET6_ADDRSTRLEN];
		int w;

		inet_ntop(s->family, &s->addr, a, sizeof(a));
		w = snprintf(out + used, outlen - used,
			     s->family == AF_INET6 ? "%s[%s]:%d" : "%s%s:%d",
			     n ? "," : "", a, s->udp_port ? s->udp_port : 53);
		if (w < 0 || (size_t)w >= outlen - used)
			out[used] = '\0'; /* the rest does not fit */
		else
			used += (size_t)w;
	}
	ares_free_data(list);
	return n;
}

static void dns_destroy(void *instance)
{
	struct dns *d = instance;

	if (!d)
		return;
	for (size_t i = 0; i < d->n_expect; i++)
		free(d->expect[i]);
	free(d);
}

static int dns_create(const struct healthd_host *host,
		      const struct healthd_check *check, void **instance,
		      char *err, size_t errlen)
{
	const char *type = host->option(check, "type");
	const char *server = host->option(check, "server");
	const char *expect = host->option(check, "expect");
	long long attempts = 2;
	struct dns *d;

	pthread_once(&dns_once, dns_lib_init);
	if (dns_lib_status != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(dns_lib_status));
		return -EIO;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->host = host;
	d->name = host->option(check, "name"); /* required: set */
	if (!dns_valid_name(d->name, strlen(d->name))) {
		snprintf(err, errlen, "name: expected a host name (labels of 1 "
				      "to 63 characters, 253 in all)");
		goto fail;
	}
	host->target(check, "%s", d->name);
	if (dns_parse_type(d, type ? type : "A,AAAA", err, errlen) < 0 ||
	    host->option_bool(check, "search", &d->search, err, errlen) < 0 ||
	    host->option_int(check, "attempts", &attempts, err, errlen) < 0)
		goto fail;
	if (attempts < 1 || attempts > 5) {
		snprintf(err, errlen, "attempts: expected 1 to 5");
		goto fail;
	}
	d->attempts = (int)attempts;
	if (server && server[0]) {
		if (dns_parse_server(d, server, err, errlen) < 0)
			goto fail;
	} else {
		/* How many nameservers resolv.conf names, to share the time
		 * among them; reading it is no network I/O. */
		ares_channel ch;
		char list[512];
		int rc = ares_init(&ch);

		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "c-ares: cannot read the "
					      "resolver configuration: %s",
				 ares_strerror(rc));
			goto fail;
		}
		d->nservers = dns_servers(ch, list, sizeof(list));
		ares_destroy(ch);
		if (d->nservers < 1)
			d->nservers = 1;
	}
	while (expect && *expect) {
		const char *item = expect;
		size_t n = strcspn(expect, ",");

		expect += n + (expect[n] == ',');
		dns_trim(&item, &n);
		if (n == 0) {
			snprintf(err, errlen, "expect: an empty item");
			goto fail;
		}
		if (d->n_expect == DNS_MAX_EXPECT) {
			snprintf(err, errlen, "expect: at most %d items",
				 DNS_MAX_EXPECT);
			goto fail;
		}
		d->expect[d->n_expect] = dns_normalise(d, item, n, err, errlen);
		if (!d->expect[d->n_expect])
			goto fail;
		d->n_expect++;
	}
	*instance = d;
	return 0;
fail:
	dns_destroy(d);
	return -EINVAL;
}

/* --- one run ---------------------------------------------------------- */

struct dns_query {
	const struct dns *d;
	int type;
	int status; /* ARES_*; -1 while in flight */
	int *pending;
	int64_t *done_ns;
	char *answers[DNS_MAX_ANSWERS];
	size_t n;
	char canonical[256]; /* the name the answers are for (A, AAAA) */
};

static void dns_add(struct dns_query *q, const char *s)
{
	if (q->n < DNS_MAX_ANSWERS && (q->answers[q->n] = strdup(s)))
		q->n++;
}

static int dns_parse_addresses(struct dns_query *q, const unsigned char *abuf,
			       int alen)
{
	int family = q->type == ns_t_a ? AF_INET : AF_INET6;
	struct hostent *h = NULL;
	int rc = family == AF_INET ? ares_parse_a_reply(abuf, alen, &h, NULL, NULL)
				   : ares_parse_aaaa_reply(abuf, alen, &h, NULL,
							   NULL);

	if (rc != ARES_SUCCESS || !h) {
		if (h)
			ares_free_hostent(h);
		return rc == ARES_SUCCESS ? ARES_ENODATA : rc;
	}
	for (char **a = h->h_addr_list; a && *a; a++) {
		char text[INET6_ADDRSTRLEN];

		if (inet_ntop(family, *a, text, sizeof(text)))
			dns_add(q, text);
	}
	if (h->h_name)
		snprintf(q->canonical, sizeof(q->canonical), "%s", h->h_name);
	ares_free_hostent(h);
	return q->n ? ARES_SUCCESS : ARES_ENODATA;
}

static unsigned dns_u16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* c-ares 1.18 has no CNAME parser: walk the answer section. */
static int dns_parse_cname(struct dns_query *q, const unsigned char *abuf,
			   int alen)
{
	const unsigned char *p = abuf + NS_HFIXEDSZ, *end = abuf + alen;
	unsigned qd, an;
	char *name;
	long len;

	if (alen < NS_HFIXEDSZ)
		return ARES_EBADRESP;
	qd = dns_u16(abuf + 4);
	an = dns_u16(abuf + 6);
	for (unsigned i = 0; i < qd; i++) {
		if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
			return ARES_EBADRESP;
		ares_free_string(name);
		p += len + NS_QFIXEDSZ;
		if (p > end)
			return ARES_EBADRESP;
	}
	for (unsigned i = 0; i < an; i++) {
		unsigned type, rdlen;

		if (ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
			return ARES_EBADRESP;
		ares_free_string(name);
		p += len;
		if (p + NS_RRFIXEDSZ > end)
			return ARES_EBADRESP;
		type = dns_u16(p);
		rdlen = dns_u16(p + 8);
		p += NS_RRFIXEDSZ;
		if (p + rdlen > end)
			return ARES_EBADRESP;
		if (type == ns_t_cname) {
			if (ares_expand_name(p, abuf, alen, &name, &len) !=
			    ARES_SUCCESS)
				return ARES_EBADRESP;
			dns_add(q, name);
			ares_free_string(name);
		}
		p += rdlen;
	}
	return q->n ? ARES_SUCCESS : ARES_ENODATA;
}

static int dns_parse_srv(struct dns_query *q, const unsigned char *abuf,
			 int alen)
{
	struct ares_srv_reply *list = NULL;
	int rc = ares_parse_srv_reply(abuf, alen, &list);

	for (struct ares_srv_reply *s = list; rc == ARES_SUCCESS && s;
	     s = s->next) {
		char text[300];

		snprintf(text, sizeof(text), "%s:%u", s->host,
			 (unsigned)s->port);
		dns_add(q, text);
	}
	if (list)
		ares_free_data(list);
	return rc != ARES_SUCCESS ? rc : q->n ? ARES_SUCCESS : ARES_ENODATA;
}

/* A record's chunks joined; bytes outside printable ASCII as '?', so the
 * text is one line of valid UTF-8. */
static int dns_parse_txt(struct dns_query *q, const unsigned char *abuf,
			 int alen)
{
	struct ares_txt_ext *list = NULL;
	int rc = ares_parse_txt_reply_ext(abuf, alen, &list);
	char text[1024];
	size_t used = 0;

	for (struct ares_txt_ext *t = list; rc == ARES_SUCCESS && t;
	     t = t->next) {
		if (t->record_start && t != list) {
			text[used] = '\0';
			dns_add(q, text);
			used = 0;
		}
		for (size_t i = 0; i < t->length && used < sizeof(text) - 1; i++)
			text[used++] = t->txt[i] >= 0x20 && t->txt[i] < 0x7F
					       ? (char)t->txt[i]
					       : '?';
	}
	if (rc == ARES_SUCCESS && list) {
		text[used] = '\0';
		dns_add(q, text);
	}
	if (list)
		ares_free_data(list);
	return rc != ARES_SUCCESS ? rc : q->n ? ARES_SUCCESS : ARES_ENODATA;
}

/* Called by c-ares once per query: answered, failed, cancelled at the
 * deadline or destroyed.  abuf lives only during the call. */
static void dns_callback(void *arg, int status, int timeouts,
			 unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;

	(void)timeouts;
	if (q->status != -1)
		return;
	if (status == ARES_SUCCESS && abuf) {
		if (q->type == ns_t_a || q->type == ns_t_aaaa)
			status = dns_parse_addresses(q, abuf, alen);
		else if (q->type == ns_t_cname)
			status = dns_parse_cname(q, abuf, alen);
		else if (q->type == ns_t_srv)
			status = dns_parse_srv(q, abuf, alen);
		else
			status = dns_parse_txt(q, abuf, alen);
	}
	q->status = status;
	*q->done_ns = dns_now_ns();
	(*q->pending)--;
}

/* Drive the channel until every query is done (1) or the deadline (0). */
static int dns_wait(ares_channel ch, const int *pending, int64_t deadline_ms)
{
	const int64_t deadline_ns = deadline_ms * 1000000;

	while (*pending > 0) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd pfd[ARES_GETSOCK_MAXNUM];
		struct timeval tv, *tvp;
		struct timespec ts;
		int64_t wait = deadline_ns - dns_now_ns();
		int bits, n = 0, r;

		if (wait <= 0)
			return 0;
		bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
		/* Not ARES_GETSOCK_WRITABLE(): it shifts 1 into int's sign
		 * bit for the 16th socket. */
		for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			unsigned b = (unsigned)bits;
			short ev = (b & 1u << i ? POLLIN : 0) |
				   (b & 1u << (i + ARES_GETSOCK_MAXNUM) ? POLLOUT
									: 0);

			if (ev)
				pfd[n++] = (struct pollfd){.fd = socks[i],
							   .events = ev};
		}
		/* Wake for c-ares's next timeout (a retry), at the latest at
		 * the deadline.  c-ares counts whole milliseconds, rounded
		 * down: one more, or the wait would spin until it is due. */
		tvp = ares_timeout(ch, NULL, &tv);
		if (tvp) {
			int64_t next = ((int64_t)tvp->tv_sec * 1000000 +
					tvp->tv_usec) * 1000 + 1000000;

			if (next < wait)
				wait = next;
		}
		ts.tv_sec = (time_t)(wait / 1000000000);
		ts.tv_nsec = (long)(wait % 1000000000);
		r = ppoll(pfd, (nfds_t)n, &ts, NULL);
		if (r < 0 && errno != EINTR)
			return 0; /* cannot wait: as good as the deadline */
		if (r <= 0) {
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (int i = 0; i < n; i++) {
			short re = pfd[i].revents;

			if (!re)
				continue;
			ares_process_fd(ch,
					re & (POLLIN | POLLERR | POLLHUP)
						? pfd[i].fd
						: ARES_SOCKET_BAD,
					re & (POLLOUT | POLLERR | POLLHUP)
						? pfd[i].fd
						: ARES_SOCKET_BAD);
		}
	}
	return 1;
}

/* A failed query in our words. */
static void dns_fail(const struct healthd_host *host, const struct dns *d,
		     struct healthd_result *result, const struct dns_query *q,
		     const char *server)
{
	const char *t = dns_type_name(q->type);

	switch (q->status) {
	case ARES_ENOTFOUND:
		host->result(result, HEALTHD_FAIL, "%s: no such name (NXDOMAIN)",
			     d->name);
		break;
	case ARES_ENODATA:
		host->result(result, HEALTHD_FAIL, "%s: no %s records", d->name,
			     d->n_types == 2 ? "A or AAAA" : t);
		break;
	case ARES_ESERVFAIL:
		host->result(result, HEALTHD_FAIL,
			     "%s: the server failed to answer (SERVFAIL, %s)",
			     d->name, t);
		break;
	case ARES_EREFUSED:
		host->result(result, HEALTHD_FAIL,
			     "%s: the server refused the query (REFUSED, %s)",
			     d->name, t);
		break;
	case ARES_ENOTIMP:
		host->result(result, HEALTHD_FAIL,
			     "%s: the server does not implement %s queries "
			     "(NOTIMP)", d->name, t);
		break;
	case ARES_EFORMERR:
		host->result(result, HEALTHD_FAIL,
			     "%s: the server could not read the %s query "
			     "(FORMERR)", d->name, t);
		break;
	case ARES_ECONNREFUSED:
		host->result(result, HEALTHD_FAIL,
			     "%s: connection refused by %s", d->name, server);
		break;
	case ARES_EBADRESP:
		host->result(result, HEALTHD_FAIL, "%s: malformed %s answer",
			     d->name, t);
		break;
	default:
		host->result(result, HEALTHD_FAIL, "%s: %s query failed: %s",
			     d->name, t, ares_strerror(q->status));
		break;
	}
}

/* Is `want` among the answers?  Names compare without regard to case. */
static int dns_has(const struct dns_query *qs, int nq, const char *want)
{
	for (int i = 0; i < nq; i++) {
		int (*cmp)(const char *, const char *) =
			qs[i].type == ns_t_txt ? strcmp : strcasecmp;

		for (size_t j = 0; j < qs[i].n; j++)
			if (!cmp(qs[i].answers[j], want))
				return 1;
	}
	return 0;
}

/* Names compare without regard to case or a trailing dot. */
static int dns_same_name(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	na -= na && a[na - 1] == '.';
	nb -= nb && b[nb - 1] == '.';
	return na == nb && !strncasecmp(a, b, na);
}

/* Append "s" to out (comma-separated), cut with "..." when full. */
static void dns_join(char *out, size_t outlen, const char *s)
{
	size_t used = strlen(out), n = strlen(s) + (used ? 1 : 0);

	if (used >= 3 && !strcmp(out + used - 3, "..."))
		return;
	if (used + n + 4 > outlen) {
		snprintf(out + used, outlen - used, "%s...", used ? "," : "");
		return;
	}
	snprintf(out + used, outlen - used, "%s%s", used ? "," : "", s);
}

static void dns_check(const struct healthd_host *host, void *instance,
		      int64_t deadline_ms, struct healthd_result *result)
{
	const struct dns *d = instance;
	const int64_t start_ms = host->now_ms(), start_ns = dns_now_ns();
	static char lookups[] = "b"; /* DNS only: no /etc/hosts */
	struct dns_query qs[2];
	struct ares_options opt;
	ares_channel ch = NULL;
	char server[512], answers[DNS_ANSWERS_MAX_LEN], missing[512] = "";
	int64_t left = deadline_ms - start_ms, sent_ns, done_ns = 0;
	int pending = 0, rc, n_missing = 0, total = 0, n_late = 0;
	long long per_try;

	host->detail_str(result, "name", d->name);
	host->detail_str(result, "type", d->type_label);
	memset(qs, 0, sizeof(qs));
	if (left <= 0) {
		host->result(result, HEALTHD_FAIL,
			     "timed out after 0 ms resolving %s", d->name);
		return;
	}
	if (dns_lib_status != ARES_SUCCESS) {
		host->result(result, HEALTHD_FAIL, "c-ares: %s",
			     ares_strerror(dns_lib_status));
		return;
	}

	/* Per-try timeout T: c-ares waits T, 2T, 4T ... per round over the
	 * servers, so n servers and k attempts take n * T * (2^k - 1).  A
	 * millisecond over the share: the last try ends just past the
	 * deadline, which cuts it (at a tie c-ares's timer and ours race). */
	per_try = (long long)d->nservers * ((1LL << d->attempts) - 1);
	per_try = left / per_try + 1;
	memset(&opt, 0, sizeof(opt));
	/* NOCHECKRESP: a SERVFAIL or REFUSED answer is reported as it is,
	 * not turned into "connection refused" after a retry. */
	opt.flags = ARES_FLAG_NOCHECKRESP;
	opt.timeout = per_try > INT_MAX ? INT_MAX : (int)per_try;
	opt.tries = d->attempts;
	opt.lookups = lookups;
	rc = ares_init_options(&ch, &opt,
			       ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
				       ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
	if (rc == ARES_SUCCESS && d->has_server) {
		struct ares_addr_port_node srv = d->server;

		rc = ares_set_servers_ports(ch, &srv);
	}
	if (rc != ARES_SUCCESS) {
		host->result(result, HEALTHD_FAIL,
			     "%s: cannot set up the resolver: %s", d->name,
			     ares_strerror(rc));
		if (ch)
			ares_destroy(ch);
		return;
	}
	dns_servers(ch, server, sizeof(server));
	host->detail_str(result, "server", server);

	sent_ns = dns_now_ns();
	for (int i = 0; i < d->n_types; i++) {
		qs[i] = (struct dns_query){.d = d, .type = d->types[i],
					   .status = -1, .pending = &pending,
					   .done_ns = &done_ns};
		pending++;
	}
	/* The callbacks may run inside these calls (a name c-ares refuses). */
	for (int i = 0; i < d->n_types; i++)
		(d->search ? ares_search : ares_query)(ch, d->name, ns_c_in,
							qs[i].type,
							dns_callback, &qs[i]);
	/* At the deadline, cancel what is in flight (called back with
	 * ARES_ECANCELLED); destroying the channel closes its sockets. */
	if (!dns_wait(ch, &pending, deadline_ms))
		ares_cancel(ch);
	ares_destroy(ch);
	for (int i = 0; i < d->n_types; i++)
		if (qs[i].status == ARES_ECANCELLED ||
		    qs[i].status == ARES_ETIMEOUT)
			n_late++;
	if (n_late) {
		/* Say which type went unanswered when the other was not. */
		const char *which = n_late == d->n_types ? ""
				    : qs[0].status == ARES_ECANCELLED ||
						    qs[0].status == ARES_ETIMEOUT
					    ? " (A)"
					    : " (AAAA)";

		host->result(result, HEALTHD_FAIL,
			     "timed out after %lld ms resolving %s%s",
			     dns_elapsed_ms(start_ns), d->name, which);
		goto out;
	}
	host->detail_num(result, "time_ms",
			 (double)((done_ns - sent_ns) / 1000) / 1000.0);

	/* A query that failed fails the run, except "no records of this
	 * type" next to one that had answers (a name with only A records
	 * resolves; so does getaddrinfo()). */
	for (int i = 0; i < d->n_types; i++) {
		if (qs[i].status != ARES_SUCCESS &&
		    qs[i].status != ARES_ENODATA) {
			dns_fail(host, d, result, &qs[i], server);
			goto out;
		}
		total += (int)qs[i].n;
	}
	if (total == 0) {
		dns_fail(host, d, result, &qs[0], server);
		goto out;
	}

	answers[0] = '\0';
	for (int i = 0; i < d->n_types; i++)
		for (size_t j = 0; j < qs[i].n; j++)
			dns_join(answers, sizeof(answers), qs[i].answers[j]);
	host->detail_str(result, "answers", answers);
	host->detail_num(result, "answer_count", total);
	for (int i = 0; i < d->n_types; i++)
		if (qs[i].canonical[0] &&
		    !dns_same_name(qs[i].canonical, d->name)) {
			host->detail_str(result, "canonical_name",
					 qs[i].canonical);
			break;
		}

	for (size_t i = 0; i < d->n_expect; i++)
		if (!dns_has(qs, d->n_types, d->expect[i])) {
			dns_join(missing, sizeof(missing), d->expect[i]);
			n_missing++;
		}
	if (n_missing) {
		host->detail_str(result, "missing", missing);
		host->result(result, HEALTHD_FAIL,
			     "%s: expected %s not among the %s answers (%s)",
			     d->name, missing, d->type_label, answers);
	} else {
		host->result(result, HEALTHD_PASS,
			     "%s %s: %s in %.1f ms", d->name, d->type_label,
			     answers, (double)(done_ns - sent_ns) / 1e6);
	}
out:
	for (int i = 0; i < d->n_types; i++)
		for (size_t j = 0; j < qs[i].n; j++)
			free(qs[i].answers[j]);
}

HEALTHD_PLUGIN_DEFINE(.name = "dns",
		      .description = "DNS: a name resolves (A/AAAA, CNAME, SRV, "
				     "TXT), optionally to the expected answers",
		      .options = dns_options, .create = dns_create,
		      .check = dns_check, .destroy = dns_destroy,
		      .required = (const char *const[]){"name", NULL});
