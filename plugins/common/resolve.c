/*
 * resolve.c — see resolve.h.  Moved from the tcp plugin.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* getaddrinfo_a */
#endif

#include "resolve.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct resolve_lookup {
	struct gaicb cb; /* first: glibc holds a pointer to it */
	struct addrinfo hints;
	char name[NI_MAXHOST];
	char port[8];
	struct resolve_lookup *next;
};

/* Lookups that outlived their call: glibc still writes into them. */
static struct {
	pthread_mutex_t lock;
	struct resolve_lookup *head;
	size_t n;
} parked = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void lookup_free(struct resolve_lookup *l)
{
	if (l->cb.ar_result)
		freeaddrinfo(l->cb.ar_result);
	free(l);
}

/* Free the parked lookups that have ended; how many still run. */
static size_t parked_reap(void)
{
	struct resolve_lookup **p, *l;
	size_t n;

	pthread_mutex_lock(&parked.lock);
	for (p = &parked.head; (l = *p);) {
		if (gai_error(&l->cb) != EAI_INPROGRESS) {
			*p = l->next;
			parked.n--;
			lookup_free(l);
		} else {
			p = &l->next;
		}
	}
	n = parked.n;
	pthread_mutex_unlock(&parked.lock);
	return n;
}

static void park(struct resolve_lookup *l)
{
	pthread_mutex_lock(&parked.lock);
	l->next = parked.head;
	parked.head = l;
	parked.n++;
	pthread_mutex_unlock(&parked.lock);
}

/* When the plugin is unloaded: lookups still running stay allocated,
 * glibc's thread writes into them and calls nothing of ours. */
__attribute__((destructor)) static void parked_free(void)
{
	parked_reap();
}

static enum resolve_status failure(int rc, const char *host, char *why,
				   size_t len)
{
	if (rc == EAI_NONAME || rc == EAI_NODATA
#ifdef EAI_ADDRFAMILY
	    || rc == EAI_ADDRFAMILY
#endif
	) {
		if (why)
			snprintf(why, len, "%s: name does not exist", host);
		return RESOLVE_NONAME;
	}
	if (rc == EAI_AGAIN) {
		if (why)
			snprintf(why, len, "could not resolve %s: temporary "
					   "failure in name resolution", host);
		return RESOLVE_AGAIN;
	}
	if (why)
		snprintf(why, len, "could not resolve %s: %s", host,
			 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	return RESOLVE_FAILED;
}

int resolve_is_numeric(const char *host)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_flags = AI_NUMERICHOST};
	struct addrinfo *res = NULL;

	if (!host || !*host || getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	freeaddrinfo(res);
	return 1;
}

const char *resolve_addr_text(const struct addrinfo *ai, char *buf,
			      size_t len)
{
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, (socklen_t)len,
			NULL, 0, NI_NUMERICHOST) != 0 && len)
		buf[0] = '\0';
	return buf;
}

enum resolve_status resolve_within(const char *host, const char *port,
				   int socktype, int64_t deadline_ms,
				   int64_t (*now_ms)(void),
				   struct addrinfo **out, char *why,
				   size_t len)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = socktype,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	int64_t start = now_ms();
	struct gaicb *list[1];
	struct resolve_lookup *l;
	int rc;

	*out = NULL;
	if (why && len)
		why[0] = '\0';
	/* An address needs no lookup and no thread. */
	if (getaddrinfo(host, port, &hints, out) == 0)
		return RESOLVE_OK;
	*out = NULL;
	if (!*host || strlen(host) >= NI_MAXHOST ||
	    (port && strlen(port) >= sizeof(l->port)))
		return failure(EAI_NONAME, host, why, len);
	if (parked_reap() >= RESOLVE_PARKED_MAX) {
		if (why)
			snprintf(why, len, "could not resolve %s: %d earlier "
					   "lookups are still running",
				 host, RESOLVE_PARKED_MAX);
		return RESOLVE_FAILED;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		if (why)
			snprintf(why, len, "could not resolve %s: out of memory",
				 host);
		return RESOLVE_FAILED;
	}
	snprintf(l->name, sizeof(l->name), "%s", host);
	if (port)
		snprintf(l->port, sizeof(l->port), "%s", port);
	l->hints = hints;
	l->hints.ai_flags = AI_NUMERICSERV;
	l->cb.ar_name = l->name;
	l->cb.ar_service = port ? l->port : NULL;
	l->cb.ar_request = &l->hints;
	list[0] = &l->cb;
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc != 0) {
		free(l);
		return failure(rc, host, why, len);
	}
	while ((rc = gai_error(&l->cb)) == EAI_INPROGRESS) {
		int64_t left = deadline_ms - now_ms();
		struct timespec ts;

		if (left <= 0) {
			if (gai_cancel(&l->cb) == EAI_NOTCANCELED)
				park(l);
			else
				lookup_free(l); /* never started, or done */
			if (why)
				snprintf(why, len, "could not resolve %s "
						   "(timed out after %lld ms)",
					 host, (long long)(now_ms() - start));
			return RESOLVE_TIMEOUT;
		}
		if (left > INT_MAX)
			left = INT_MAX;
		ts.tv_sec = (time_t)(left / 1000);
		ts.tv_nsec = (long)(left % 1000) * 1000000;
		gai_suspend((const struct gaicb *const *)list, 1, &ts);
	}
	if (rc != 0) {
		lookup_free(l);
		return failure(rc, host, why, len);
	}
	*out = l->cb.ar_result;
	l->cb.ar_result = NULL;
	lookup_free(l);
	return RESOLVE_OK;
}
