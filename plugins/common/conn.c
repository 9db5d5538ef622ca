/*
 * conn.c — connecting within a deadline, and TLS over that socket (see
 * conn.h).  Shared by the tcp and redis plugins.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "conn.h"

double conn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int conn_left(const struct conn *c)
{
	int64_t left = c->deadline - c->now_ms();

	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

int conn_again(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

int conn_wait(const struct conn *c, short events)
{
	for (;;) {
		int left = conn_left(c);
		struct pollfd p = {.fd = c->fd, .events = events};
		int n;

		if (left == 0)
			return 0;
		n = poll(&p, 1, left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/* ---- connecting ---------------------------------------------------------- */

/*
 * Try the addresses in the resolver's order, a new attempt whenever none is
 * in flight or the latest has gone CONN_STAGGER_MS unanswered; the first to
 * connect wins.
 */
enum conn_step conn_connect(struct conn *c, const struct addrinfo *res,
			    const struct addrinfo **won, int *tried, int *err)
{
	struct pollfd pfd[CONN_MAX_ADDRS];
	const struct addrinfo *on[CONN_MAX_ADDRS];
	const struct addrinfo *next = res;
	int64_t started = 0;
	int n = 0, timed_out = 0;

	*tried = 0;
	*won = NULL;
	*err = 0;
	for (;;) {
		int64_t now = c->now_ms();
		int wait;

		if (now >= c->deadline) {
			timed_out = 1;
			break;
		}
		while (next && *tried < CONN_MAX_ADDRS &&
		       (n == 0 || now - started >= CONN_STAGGER_MS)) {
			const struct addrinfo *ai = next;
			int fd = socket(ai->ai_family,
					SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

			next = ai->ai_next;
			++*tried;
			if (fd < 0) {
				*err = errno;
				continue;
			}
			if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
				c->fd = fd;
				*won = ai;
				goto done;
			}
			if (errno != EINPROGRESS) {
				/* e.g. ENETUNREACH (no IPv6 route), or EAGAIN
				 * from a unix socket whose queue is full */
				*err = errno;
				close(fd);
				continue;
			}
			pfd[n] = (struct pollfd){.fd = fd, .events = POLLOUT};
			on[n++] = ai;
			started = now;
		}
		if (n == 0)
			break; /* every address failed */
		wait = conn_left(c);
		if (next && *tried < CONN_MAX_ADDRS &&
		    started + CONN_STAGGER_MS - now < wait)
			wait = (int)(started + CONN_STAGGER_MS - now);
		if (poll(pfd, (nfds_t)n, wait < 0 ? 0 : wait) < 0 &&
		    errno != EINTR) {
			*err = errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			int e = 0;
			socklen_t len = sizeof(e);

			if (!pfd[i].revents)
				continue;
			if (getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &e,
				       &len) < 0)
				e = errno;
			if (!e && (pfd[i].revents & POLLOUT)) {
				c->fd = pfd[i].fd;
				*won = on[i];
				pfd[i] = pfd[--n];
				goto done;
			}
			*err = e ? e : ECONNRESET;
			close(pfd[i].fd);
			pfd[i] = pfd[--n];
			on[i] = on[n];
			i--;
		}
	}
	for (int i = 0; i < n; i++)
		close(pfd[i].fd);
	return timed_out ? CONN_TIMEOUT : CONN_FAILED;
done:
	for (int i = 0; i < n; i++)
		close(pfd[i].fd);
	return CONN_OK;
}

/* ---- TLS ----------------------------------------------------------------- */

/*
 * A socket BIO whose writes cannot raise SIGPIPE (OpenSSL's own uses
 * write()).  The descriptor stays the run's to close.
 */
static BIO_METHOD *conn_bio_method;
static pthread_once_t conn_bio_once = PTHREAD_ONCE_INIT;

static int conn_bio_write(BIO *b, const char *data, int len)
{
	ssize_t n = send(*(int *)BIO_get_data(b), data, (size_t)len,
			 MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n < 0 && conn_again(errno))
		BIO_set_retry_write(b);
	return (int)n;
}

static int conn_bio_read(BIO *b, char *data, int len)
{
	ssize_t n = recv(*(int *)BIO_get_data(b), data, (size_t)len, 0);

	BIO_clear_retry_flags(b);
	if (n < 0 && conn_again(errno))
		BIO_set_retry_read(b);
	return (int)n;
}

static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	const int *fdp = BIO_get_data(b);
	int fd = fdp ? *fdp : -1;

	(void)num;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = fd;
		return fd;
	default:
		return 0;
	}
}

static int conn_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void conn_bio_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "healthd socket");

	if (m && BIO_meth_set_write(m, conn_bio_write) &&
	    BIO_meth_set_read(m, conn_bio_read) &&
	    BIO_meth_set_ctrl(m, conn_bio_ctrl) &&
	    BIO_meth_set_create(m, conn_bio_create)) {
		conn_bio_method = m;
		return;
	}
	BIO_meth_free(m);
}

__attribute__((destructor)) static void conn_bio_free(void)
{
	BIO_meth_free(conn_bio_method);
}

int conn_tls_ctx(SSL_CTX **ctx, const char *ca_file, char *err,
		 size_t errlen)
{
	pthread_once(&conn_bio_once, conn_bio_init);
	*ctx = SSL_CTX_new(TLS_client_method());
	if (!*ctx || !conn_bio_method) {
		snprintf(err, errlen, "cannot set up TLS (out of memory?)");
		ERR_clear_error();
		return -ENOMEM;
	}
	/* Verified all the same, and judged after the handshake. */
	SSL_CTX_set_verify(*ctx, SSL_VERIFY_NONE, NULL);
	/* A server that closes without close_notify has still answered. */
	SSL_CTX_set_options(*ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (ca_file && ca_file[0]) {
		if (access(ca_file, R_OK) != 0) {
			snprintf(err, errlen, "ca_file: cannot read it (%s)",
				 strerror(errno));
			return -EINVAL;
		}
		if (SSL_CTX_load_verify_locations(*ctx, ca_file, NULL) != 1) {
			ERR_clear_error();
			snprintf(err, errlen, "ca_file: not a PEM file of CA "
					      "certificates");
			return -EINVAL;
		}
	} else if (SSL_CTX_set_default_verify_paths(*ctx) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "cannot load the system's CA "
				      "certificates");
		return -EIO;
	}
	return 0;
}

int conn_tls_start(struct conn *c, SSL_CTX *ctx, const char *name,
		   int name_is_ip)
{
	X509_VERIFY_PARAM *param;
	BIO *bio;

	if (!conn_bio_method || !(c->ssl = SSL_new(ctx)) ||
	    !(bio = BIO_new(conn_bio_method))) {
		ERR_clear_error();
		return -1;
	}
	BIO_set_data(bio, &c->fd);
	SSL_set_bio(c->ssl, bio, bio);
	SSL_set_connect_state(c->ssl);
	/* RFC 6066: no address in SNI. */
	if (!name_is_ip)
		SSL_set_tlsext_host_name(c->ssl, name);
	param = SSL_get0_param(c->ssl);
	if (name_is_ip) {
		X509_VERIFY_PARAM_set1_ip_asc(param, name);
	} else {
		X509_VERIFY_PARAM_set_hostflags(
			param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		X509_VERIFY_PARAM_set1_host(param, name, 0);
	}
	return 0;
}

enum conn_step conn_tls_wait(const struct conn *c, int sslerr)
{
	int w;

	if (sslerr != SSL_ERROR_WANT_READ && sslerr != SSL_ERROR_WANT_WRITE)
		return CONN_TLS_FAILED;
	w = conn_wait(c, sslerr == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
	if (w == 0)
		return CONN_TIMEOUT;
	return w < 0 ? CONN_FAILED : CONN_OK;
}

enum conn_step conn_tls_handshake(struct conn *c, int *sslerr)
{
	for (;;) {
		enum conn_step st;
		int rc;

		ERR_clear_error();
		rc = SSL_do_handshake(c->ssl);
		if (rc == 1)
			return CONN_OK;
		*sslerr = SSL_get_error(c->ssl, rc);
		st = conn_tls_wait(c, *sslerr);
		if (st != CONN_OK)
			return st;
	}
}

enum conn_step conn_send(const struct conn *c, const char *p, size_t len,
			 int *sslerr)
{
	while (len) {
		if (c->ssl) {
			enum conn_step st;
			int n;

			ERR_clear_error();
			n = SSL_write(c->ssl, p,
				      len > INT_MAX ? INT_MAX : (int)len);
			if (n > 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			*sslerr = SSL_get_error(c->ssl, n);
			st = conn_tls_wait(c, *sslerr);
			if (st != CONN_OK)
				return st;
		} else {
			ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
			int w;

			if (n >= 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			if (!conn_again(errno))
				return CONN_FAILED;
			w = conn_wait(c, POLLOUT);
			if (w == 0)
				return CONN_TIMEOUT;
			if (w < 0)
				return CONN_FAILED;
		}
	}
	return CONN_OK;
}

enum conn_step conn_recv(const struct conn *c, char *buf, size_t len,
			 size_t *got, int *sslerr)
{
	*got = 0;
	for (;;) {
		if (c->ssl) {
			enum conn_step st;
			int n;

			ERR_clear_error();
			n = SSL_read(c->ssl, buf,
				     len > INT_MAX ? INT_MAX : (int)len);
			if (n > 0) {
				*got = (size_t)n;
				return CONN_OK;
			}
			*sslerr = SSL_get_error(c->ssl, n);
			if (*sslerr == SSL_ERROR_ZERO_RETURN)
				return CONN_EOF;
			st = conn_tls_wait(c, *sslerr);
			if (st != CONN_OK)
				return st;
		} else {
			ssize_t n = recv(c->fd, buf, len, 0);
			int w;

			if (n > 0) {
				*got = (size_t)n;
				return CONN_OK;
			}
			if (n == 0)
				return CONN_EOF;
			if (!conn_again(errno))
				return CONN_FAILED;
			w = conn_wait(c, POLLIN);
			if (w == 0)
				return CONN_TIMEOUT;
			if (w < 0)
				return CONN_FAILED;
		}
	}
}

enum healthd_status conn_tls_cert(const struct conn *c,
				  const struct healthd_host *host,
				  struct healthd_result *result, int verify,
				  const struct tls_cert_limits *lim,
				  const char *untrusted, char *why,
				  size_t whylen)
{
	X509 *x = SSL_get1_peer_certificate(c->ssl);
	long v = SSL_get_verify_result(c->ssl);
	struct tls_cert cert;

	if (!x || tls_cert_read(x, &cert) < 0) {
		X509_free(x);
		snprintf(why, whylen, "%s", x ? "cannot read the server's TLS "
						"certificate"
					      : "the server sent no TLS "
						"certificate");
		return HEALTHD_FAIL;
	}
	X509_free(x);
	tls_cert_details(host, result, &cert);
	if (v != X509_V_OK) {
		const char *text = X509_verify_cert_error_string(v);

		host->detail_str(result, "cert_verify_error", text);
		if (verify) {
			snprintf(why, whylen, "%s: %s", untrusted, text);
			return HEALTHD_FAIL;
		}
	}
	return tls_cert_judge(lim, &cert, why, whylen);
}

void conn_close(struct conn *c)
{
	if (c->ssl) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
