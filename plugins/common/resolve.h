/*
 * resolve.h — host name resolution bounded by a check's deadline, shared by
 * the plugins that connect somewhere (tcp, postgres, redis).
 *
 * Names go through the system's resolver (NSS: /etc/hosts, DNS with the
 * search list) with getaddrinfo_a() and gai_suspend(), so nothing blocks
 * past the deadline.  A lookup still running at the deadline cannot be
 * stopped: it is parked (left to glibc's helper thread) and freed by a
 * later call once it has ended, at most RESOLVE_PARKED_MAX at a time.
 * Numeric addresses are converted at once, with no thread.
 *
 * Link with resolve.c (and libanl where libc lacks getaddrinfo_a).  Each
 * plugin gets its own copy; the functions are hidden like the rest.
 */
#ifndef HEALTHD_RESOLVE_H
#define HEALTHD_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#include <netdb.h>

#define RESOLVE_PARKED_MAX 32 /* lookups past their deadline still running */

enum resolve_status {
	RESOLVE_OK = 0,
	RESOLVE_TIMEOUT, /* the deadline passed (the lookup is parked) */
	RESOLVE_NONAME,  /* the name does not exist, or has no address */
	RESOLVE_AGAIN,   /* temporary failure: no answer, SERVFAIL... */
	RESOLVE_FAILED,  /* anything else: too many parked, out of memory... */
};

/*
 * Resolve `host` (a name or a numeric IPv4/IPv6 address) for `port` (a
 * number as text, or NULL) and `socktype` (SOCK_STREAM; 0 for any), any
 * family, within the time left before `deadline_ms` on now_ms()'s clock
 * (CLOCK_MONOTONIC milliseconds: pass host->now_ms).
 *
 * RESOLVE_OK: *out holds the addresses in the resolver's order (release
 * with freeaddrinfo()).  Otherwise *out is NULL and `why` (may be NULL)
 * holds one of these, never anything but the name and fixed text:
 *   "could not resolve NAME (timed out after N ms)"      RESOLVE_TIMEOUT
 *   "NAME: name does not exist"                          RESOLVE_NONAME
 *   "could not resolve NAME: temporary failure in name resolution"
 *                                                        RESOLVE_AGAIN
 *   "could not resolve NAME: ..." (system error text)    RESOLVE_FAILED
 * N is measured from the call.  Thread-safe.
 */
enum resolve_status resolve_within(const char *host, const char *port,
				   int socktype, int64_t deadline_ms,
				   int64_t (*now_ms)(void),
				   struct addrinfo **out, char *why,
				   size_t len);

/* 1 when `host` is a numeric IPv4 or IPv6 address (no lookup needed). */
int resolve_is_numeric(const char *host);

/* The numeric text of an address ("192.0.2.1", "2001:db8::1"); `buf` of
 * at least NI_MAXHOST bytes.  Returns buf, "" on failure. */
const char *resolve_addr_text(const struct addrinfo *ai, char *buf,
			      size_t len);

#endif
