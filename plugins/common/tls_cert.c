/*
 * tls_cert.c — see tls_cert.h.  OpenSSL's libcrypto reads the certificate;
 * the tcp plugin hands it the peer's X509, the http plugin the PEM text curl
 * gives with CURLOPT_CERTINFO, so both show the same text for the same
 * certificate.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "tls_cert.h"

/* Days are whole numbers; a year of slack above any real certificate. */
#define TLS_CERT_MAX_DAYS 3650

int tls_cert_limits(const struct healthd_host *host,
		    const struct healthd_check *check,
		    struct tls_cert_limits *lim, char *err, size_t errlen)
{
	/* Both have defaults: never unset. */
	if (host->option_int(check, "cert_warn_days", &lim->warn_days, err,
			     errlen) < 0 ||
	    host->option_int(check, "cert_fail_days", &lim->fail_days, err,
			     errlen) < 0)
		return -1;
	if (lim->warn_days < 0 || lim->warn_days > TLS_CERT_MAX_DAYS) {
		snprintf(err, errlen, "cert_warn_days: expected 0 to %d",
			 TLS_CERT_MAX_DAYS);
		return -1;
	}
	if (lim->fail_days < 0 || lim->fail_days > TLS_CERT_MAX_DAYS) {
		snprintf(err, errlen, "cert_fail_days: expected 0 to %d",
			 TLS_CERT_MAX_DAYS);
		return -1;
	}
	if (lim->warn_days && lim->fail_days > lim->warn_days) {
		snprintf(err, errlen, "cert_fail_days: must not be over "
				      "cert_warn_days");
		return -1;
	}
	return 0;
}

/* A name as RFC 2253 text; escapes keep it printable ASCII. */
static void tls_cert_name(const X509_NAME *name, char *out, size_t outlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	out[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0)
		n = BIO_read(b, out, (int)outlen - 1);
	out[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

int tls_cert_read(X509 *x, struct tls_cert *out)
{
	const ASN1_TIME *na = x ? X509_get0_notAfter(x) : NULL;
	int days = 0, secs = 0;
	struct tm tm;

	if (!na || !ASN1_TIME_to_tm(na, &tm) ||
	    !ASN1_TIME_diff(&days, &secs, NULL, na))
		return -1;
	strftime(out->not_after, sizeof(out->not_after), "%Y-%m-%dT%H:%M:%SZ",
		 &tm);
	/* ASN1_TIME_diff gives both parts with the same sign. */
	out->days_left = (double)days + (double)secs / 86400.0;
	tls_cert_name(X509_get_subject_name(x), out->subject,
		      sizeof(out->subject));
	tls_cert_name(X509_get_issuer_name(x), out->issuer,
		      sizeof(out->issuer));
	return 0;
}

int tls_cert_read_pem(const char *pem, struct tls_cert *out)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	int rc = tls_cert_read(x, out);

	X509_free(x);
	BIO_free(b);
	return rc;
}

/* Days to two decimals: finer says nothing, coarser hides the last day. */
static double tls_cert_round(double days)
{
	return (double)(long long)(days * 100.0 + (days < 0 ? -0.5 : 0.5)) /
	       100.0;
}

void tls_cert_details(const struct healthd_host *host,
		      struct healthd_result *result, const struct tls_cert *c)
{
	host->detail_str(result, "cert_not_after", c->not_after);
	host->detail_num(result, "cert_days_left", tls_cert_round(c->days_left));
	host->detail_str(result, "cert_subject", c->subject);
	host->detail_str(result, "cert_issuer", c->issuer);
}

enum healthd_status tls_cert_judge(const struct tls_cert_limits *lim,
				   const struct tls_cert *c, char *why,
				   size_t whylen)
{
	if (c->days_left < 0) {
		snprintf(why, whylen, "TLS certificate expired %.1f days ago (%s)",
			 -c->days_left, c->not_after);
		return HEALTHD_FAIL;
	}
	if (c->days_left < (double)lim->fail_days) {
		snprintf(why, whylen, "TLS certificate expires in %.1f days (%s), "
				      "under cert_fail_days %lld",
			 c->days_left, c->not_after, lim->fail_days);
		return HEALTHD_FAIL;
	}
	if (c->days_left < (double)lim->warn_days) {
		snprintf(why, whylen, "TLS certificate expires in %.1f days (%s), "
				      "under cert_warn_days %lld",
			 c->days_left, c->not_after, lim->warn_days);
		return HEALTHD_WARN;
	}
	snprintf(why, whylen, "TLS certificate expires in %.0f days",
		 c->days_left);
	return HEALTHD_PASS;
}
