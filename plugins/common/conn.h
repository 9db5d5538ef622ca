/*
 * conn.h — a plugin's own TCP (or unix socket) connection, optionally with
 * TLS, every step bounded by the run's deadline.
 *
 *   - conn_connect(): the first of the resolver's addresses to answer, a
 *     new attempt when the previous one failed or after CONN_STAGGER_MS
 *     unanswered, the earlier ones still in flight (RFC 8305's "happy
 *     eyeballs", simplified), so one black-holed address does not eat the
 *     deadline;
 *   - conn_tls_start() and conn_tls_handshake(): OpenSSL over that socket
 *     through a BIO whose writes are send(MSG_NOSIGNAL) (the plugin host
 *     leaves SIGPIPE at its default); the handshake never fails on
 *     verification, conn_tls_cert() judges the chain and name after it.
 *
 * The words of failures stay the plugin's: these return what happened
 * (an errno, an SSL_get_error() code) and the plugin phrases it.
 */
#ifndef HEALTHD_CONN_H
#define HEALTHD_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <netdb.h>
#include <openssl/ssl.h>

#include <healthd/plugin.h>

#include "tls_cert.h"

#define CONN_MAX_ADDRS 16   /* addresses tried per run */
#define CONN_STAGGER_MS 250 /* next address after this long unanswered */

/* One run's connection. */
struct conn {
	int fd;   /* -1: none */
	SSL *ssl; /* NULL: plain */
	int64_t deadline;
	int64_t (*now_ms)(void); /* the deadline's clock (host->now_ms) */
};

#define CONN_INIT(deadline_ms, clock)                                       \
	{.fd = -1, .deadline = (deadline_ms), .now_ms = (clock)}

enum conn_step {
	CONN_OK = 0,
	CONN_TIMEOUT,    /* the deadline passed */
	CONN_FAILED,     /* a system call failed: errno (or *err) says why */
	CONN_TLS_FAILED, /* OpenSSL failed: its error queue and sslerr */
	CONN_EOF,        /* conn_recv(): the peer closed (TLS: close_notify) */
};

/* Milliseconds on a monotonic clock: latency is finer than the deadline
 * clock's milliseconds. */
double conn_now(void);

/* 1 for the errors after which a non-blocking call is tried again. */
int conn_again(int e);

/* Wait until the socket is ready for `events` (POLLIN, POLLOUT) or the
 * deadline: 1 ready, 0 timed out, -1 error (errno). */
int conn_wait(const struct conn *c, short events);

/*
 * Connect to the first of `res` (at most CONN_MAX_ADDRS) that answers,
 * within the deadline: sets c->fd, *won and *tried; CONN_FAILED with the
 * last attempt's errno in *err (0: none known).
 */
enum conn_step conn_connect(struct conn *c, const struct addrinfo *res,
			    const struct addrinfo **won, int *tried,
			    int *err);

/*
 * A client context for conn_tls_start(): verification deferred to
 * conn_tls_cert(), a close without close_notify taken as the end of the
 * stream, the CAs of ca_file (when set) or the system's.  0, or -ENOMEM,
 * -EINVAL ("ca_file: ...") or -EIO with err set; *ctx is the caller's to
 * free either way.
 */
int conn_tls_ctx(SSL_CTX **ctx, const char *ca_file, char *err,
		 size_t errlen);

/* TLS over c->fd, to be verified as `name` (an address: verified as one,
 * and sent no SNI): 0, or -1 when out of memory (OpenSSL's errors
 * cleared). */
int conn_tls_start(struct conn *c, SSL_CTX *ctx, const char *name,
		   int name_is_ip);

/* Wait for what OpenSSL asked for (sslerr, from SSL_get_error()): CONN_OK
 * to call it again; CONN_TLS_FAILED when it asked for nothing to wait for
 * (errno untouched), CONN_FAILED when poll() failed. */
enum conn_step conn_tls_wait(const struct conn *c, int sslerr);

/* The handshake, within the deadline; *sslerr for CONN_TLS_FAILED. */
enum conn_step conn_tls_handshake(struct conn *c, int *sslerr);

/*
 * Send all of p[0..len) within the deadline, through TLS when c->ssl.
 * CONN_FAILED: errno (send() or poll()); CONN_TLS_FAILED: *sslerr, the
 * error queue left for the caller to read.
 */
enum conn_step conn_send(const struct conn *c, const char *p, size_t len,
			 int *sslerr);

/*
 * Receive what has come, waiting for it until the deadline: CONN_OK with
 * *got > 0, CONN_EOF when the peer closed (*sslerr SSL_ERROR_ZERO_RETURN
 * with TLS), else as conn_send().
 */
enum conn_step conn_recv(const struct conn *c, char *buf, size_t len,
			 size_t *got, int *sslerr);

/*
 * Read, report (tls_cert_details(), cert_verify_error) and judge the
 * peer's certificate: FAIL when it was sent none, when `verify` and it
 * does not verify ("UNTRUSTED: reason" in why), or by tls_cert_judge().
 */
enum healthd_status conn_tls_cert(const struct conn *c,
				  const struct healthd_host *host,
				  struct healthd_result *result, int verify,
				  const struct tls_cert_limits *lim,
				  const char *untrusted, char *why,
				  size_t whylen);

/* close_notify if it fits in the socket buffer (no waiting), then close. */
void conn_close(struct conn *c);

#endif
