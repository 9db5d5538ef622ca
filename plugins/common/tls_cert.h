/*
 * tls_cert.h — a TLS server certificate's expiry, shared by the tcp and http
 * plugins so both take the same options, report the same details and judge
 * by the same thresholds.
 *
 * Only the server's own (leaf) certificate is judged here; an expired
 * intermediate or root is the chain verification's finding (tls_verify).
 */
#ifndef HEALTHD_TLS_CERT_H
#define HEALTHD_TLS_CERT_H

#include <stddef.h>

#include <openssl/x509.h>

#include <healthd/plugin.h>

/* The entries of a plugin's option table. */
#define TLS_CERT_OPTIONS                                                    \
	{"cert_warn_days", "14",                                             \
	 "warn when the server's certificate expires in fewer days than "    \
	 "this (0: never)"},                                                  \
	{"cert_fail_days", "0",                                              \
	 "fail when it expires in fewer days than this; an expired "         \
	 "certificate always fails"}

struct tls_cert_limits {
	long long warn_days, fail_days;
};

struct tls_cert {
	char not_after[32]; /* ISO 8601, UTC: 2030-01-31T12:00:00Z */
	double days_left;   /* negative once expired */
	char subject[256];  /* RFC 2253, non-ASCII escaped */
	char issuer[256];
};

/* cert_warn_days and cert_fail_days; -1 with "KEY: ..." in err. */
int tls_cert_limits(const struct healthd_host *host,
		    const struct healthd_check *check,
		    struct tls_cert_limits *lim, char *err, size_t errlen);

/* Read a certificate, or its PEM text; 0, or -1 when it cannot be read. */
int tls_cert_read(X509 *x, struct tls_cert *out);
int tls_cert_read_pem(const char *pem, struct tls_cert *out);

/* cert_not_after, cert_days_left, cert_subject, cert_issuer. */
void tls_cert_details(const struct healthd_host *host,
		      struct healthd_result *result, const struct tls_cert *c);

/* PASS, WARN or FAIL by the limits, with what was found in `why`
 * ("TLS certificate expires in 2.9 days (...), under cert_warn_days 14"). */
enum healthd_status tls_cert_judge(const struct tls_cert_limits *lim,
				   const struct tls_cert *c, char *why,
				   size_t whylen);

#endif /* HEALTHD_TLS_CERT_H */
