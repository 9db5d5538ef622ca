/*
 * curl_pool.c — libcurl's set-up, pooled easy handles and CA stores for
 * the http and grpc plugins (see curl_pool.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "curl_pool.h"

static pthread_once_t curl_pool_once = PTHREAD_ONCE_INIT;
static CURLcode curl_pool_init_rc;

static void curl_pool_global_init(void)
{
	curl_pool_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode curl_pool_init(void)
{
	pthread_once(&curl_pool_once, curl_pool_global_init);
	return curl_pool_init_rc;
}

static struct {
	pthread_mutex_t lock;
	CURL *idle[CURL_POOL_MAX];
	size_t n;
} curl_pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

CURL *curl_pool_get(void)
{
	CURL *e = NULL;

	pthread_mutex_lock(&curl_pool.lock);
	if (curl_pool.n)
		e = curl_pool.idle[--curl_pool.n];
	pthread_mutex_unlock(&curl_pool.lock);
	if (!e)
		return curl_easy_init();
	curl_easy_reset(e);
	return e;
}

void curl_pool_put(CURL *e)
{
	pthread_mutex_lock(&curl_pool.lock);
	if (curl_pool.n < CURL_POOL_MAX) {
		curl_pool.idle[curl_pool.n++] = e;
		e = NULL;
	}
	pthread_mutex_unlock(&curl_pool.lock);
	curl_easy_cleanup(e);
}

/* When the plugin is unloaded. */
__attribute__((destructor)) static void curl_pool_free(void)
{
	pthread_mutex_lock(&curl_pool.lock);
	while (curl_pool.n)
		curl_easy_cleanup(curl_pool.idle[--curl_pool.n]);
	pthread_mutex_unlock(&curl_pool.lock);
}

/* The system's CAs, read once per process and shared by every check. */
static pthread_mutex_t curl_pool_store_lock = PTHREAD_MUTEX_INITIALIZER;
static X509_STORE *curl_pool_system_store;

static X509_STORE *curl_pool_store_new(void)
{
	X509_STORE *s = X509_STORE_new();

	/* As curl does: a certificate of ca_file ends a chain, even an
	 * intermediate one. */
	if (s)
		X509_STORE_set_flags(s, X509_V_FLAG_PARTIAL_CHAIN);
	return s;
}

X509_STORE *curl_pool_store(const char *ca_file)
{
	X509_STORE *s = NULL;

	if (!ca_file) {
		pthread_mutex_lock(&curl_pool_store_lock);
		if (!curl_pool_system_store) {
			curl_pool_system_store = curl_pool_store_new();
			if (curl_pool_system_store &&
			    !X509_STORE_set_default_paths(
				    curl_pool_system_store)) {
				X509_STORE_free(curl_pool_system_store);
				curl_pool_system_store = NULL;
			}
		}
		if (curl_pool_system_store &&
		    X509_STORE_up_ref(curl_pool_system_store))
			s = curl_pool_system_store;
		pthread_mutex_unlock(&curl_pool_store_lock);
	} else {
		s = curl_pool_store_new();
		if (s && !X509_STORE_load_file(s, ca_file)) {
			X509_STORE_free(s);
			s = NULL;
		}
	}
	ERR_clear_error();
	return s;
}

__attribute__((destructor)) static void curl_pool_store_free(void)
{
	pthread_mutex_lock(&curl_pool_store_lock);
	X509_STORE_free(curl_pool_system_store);
	curl_pool_system_store = NULL;
	pthread_mutex_unlock(&curl_pool_store_lock);
}

/* Each connection's SSL_CTX gets the store read in create(). */
static CURLcode curl_pool_ssl_ctx(CURL *e, void *ssl_ctx, void *store)
{
	(void)e;
	SSL_CTX_set1_cert_store(ssl_ctx, store);
	return CURLE_OK;
}

void curl_pool_use_store(CURL *e, X509_STORE *store)
{
	/* Nothing for curl to read: the store is ready. */
	curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
	curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, curl_pool_ssl_ctx);
	curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, store);
}

int curl_pool_peer_cert(CURL *e, struct tls_cert *out)
{
	struct curl_certinfo *ci = NULL;

	if (curl_easy_getinfo(e, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci ||
	    ci->num_of_certs < 1)
		return -1;
	for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next)
		if (!strncmp(l->data, "Cert:", 5))
			return tls_cert_read_pem(l->data + 5, out);
	return -1;
}

void curl_pool_reason(CURL *e, CURLcode rc, const char *tls_text, char *why,
		      size_t whylen)
{
	long oserr = 0;

	curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		if (oserr == ECONNREFUSED)
			snprintf(why, whylen, "connection refused");
		else if (oserr)
			snprintf(why, whylen, "could not connect: %s",
				 strerror((int)oserr));
		else
			snprintf(why, whylen, "could not connect");
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		snprintf(why, whylen, "could not resolve the host name");
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(why, whylen, "TLS certificate not trusted: %s",
			 tls_text);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		snprintf(why, whylen, "TLS handshake failed: %s", tls_text);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		/* curl's text names the file: an option value. */
		snprintf(why, whylen, "cannot use ca_file (not a PEM file of "
				      "CA certificates?)");
		break;
	default:
		/* curl's own text may quote the url or a redirect's: its fixed
		 * text for the code, and the system's for the errno. */
		if (oserr)
			snprintf(why, whylen, "%s: %s", curl_easy_strerror(rc),
				 strerror((int)oserr));
		else
			snprintf(why, whylen, "%s", curl_easy_strerror(rc));
		break;
	}
}
