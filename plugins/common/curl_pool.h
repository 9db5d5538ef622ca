/*
 * curl_pool.h — what the libcurl plugins (http, grpc) share: libcurl's
 * global set-up, a small pool of easy handles, CA stores read once, the
 * server certificate curl kept of a transfer, and why a transfer failed.
 *
 * Easy handles are kept across runs: curl_easy_perform() makes a multi
 * handle (with a socket pair) for each new easy handle, and that was a
 * third of a run's cost.  A pooled handle is reset before it is handed out.
 *
 * CA stores: curl would otherwise parse the whole system bundle at every
 * handshake, which blocks for hundreds of milliseconds on a loaded machine
 * and cannot be cut short by its timeouts.  The system's store is read once
 * per process; a ca_file's once per check.
 *
 * Each plugin links its own copy: the pool and the system store are per
 * plugin, freed when it is unloaded.
 */
#ifndef HEALTHD_CURL_POOL_H
#define HEALTHD_CURL_POOL_H

#include <curl/curl.h>
#include <openssl/x509.h>

#include "tls_cert.h"

#define CURL_POOL_MAX 8 /* idle easy handles kept */

/* curl_global_init(), once per process and never undone (its cleanup is
 * not thread-safe): CURLE_OK or its failure. */
CURLcode curl_pool_init(void);

/* A reset pooled handle or a new one; NULL when out of memory. */
CURL *curl_pool_get(void);

/* Back to the pool (or cleaned up when it is full). */
void curl_pool_put(CURL *e);

/* The CAs of ca_file, or the system's (OpenSSL's default paths, which
 * SSL_CERT_FILE and SSL_CERT_DIR override) when ca_file is NULL; NULL when
 * ca_file holds no certificate.  The caller owns a reference
 * (X509_STORE_free). */
X509_STORE *curl_pool_store(const char *ca_file);

/* Have each TLS connection of e trust `store` (which must outlive the
 * transfer), with nothing for curl to read. */
void curl_pool_use_store(CURL *e, X509_STORE *store);

/* The server certificate of the transfer's last TLS connection, from the
 * PEM text curl keeps with CURLOPT_CERTINFO: 0, or -1 when there was none
 * (or it could not be read). */
int curl_pool_peer_cert(CURL *e, struct tls_cert *out);

/*
 * Why the transfer failed, for what both plugins tell alike (connecting,
 * resolving, TLS, ca_file) and otherwise curl's fixed text for rc and the
 * system's for the errno: curl's own text may quote the url.  tls_text is
 * what to show of curl's text for a TLS failure (the plugin filters it).
 */
void curl_pool_reason(CURL *e, CURLcode rc, const char *tls_text, char *why,
		      size_t whylen);

#endif
