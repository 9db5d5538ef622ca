/*
 * library_loop.c — the reference for bench/plugins_vs_library.py: the round
 * trip a bundled plugin makes, done N times in a loop with the plain
 * library, and the CPU it took (user + system) per round trip.
 *
 *   library_loop http URL N    libcurl GET on a new connection each time
 *   library_loop postgres DSN N   libpq "SELECT 1" and "SELECT
 *                                 pg_is_in_recovery()" on one connection
 *   library_loop redis HOST PORT N   hiredis PING then INFO, a new
 *                                   connection each time
 *
 * With -g GAP_US first, it sleeps that long between round trips, so the
 * loop runs at a check's pace and pays, like healthd, for waking up.
 * Prints "cpu_us_per_op X".  Exits 1 when a round trip fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>

static double cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	(void)data;
	(void)arg;
	return size * n;
}

static useconds_t gap_us;

static void pause_between(void)
{
	if (gap_us)
		usleep(gap_us);
}

static int http(const char *url, long n)
{
	CURL *e = curl_easy_init();

	for (long i = 0; i < n; i++) {
		long code = 0;
		curl_easy_setopt(e, CURLOPT_URL, url);
		curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
		if (curl_easy_perform(e) != CURLE_OK)
			return 1;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
		if (code != 200)
			return 1;
		pause_between();
	}
	curl_easy_cleanup(e);
	return 0;
}

static int postgres(const char *dsn, long n)
{
	PGconn *c = PQconnectdb(dsn);

	if (PQstatus(c) != CONNECTION_OK)
		return 1;
	for (long i = 0; i < n; i++) {
		PGresult *one = PQexec(c, "SELECT 1");
		PGresult *rec = PQexec(c, "SELECT pg_is_in_recovery()");
		int ok = PQresultStatus(one) == PGRES_TUPLES_OK &&
			 PQresultStatus(rec) == PGRES_TUPLES_OK;
		PQclear(one);
		PQclear(rec);
		if (!ok)
			return 1;
		pause_between();
	}
	PQfinish(c);
	return 0;
}

static int redis(const char *host, int port, long n)
{
	for (long i = 0; i < n; i++) {
		redisContext *c = redisConnect(host, port);
		redisReply *pong, *info;
		int ok;

		if (!c || c->err)
			return 1;
		pong = redisCommand(c, "PING");
		info = pong ? redisCommand(c, "INFO") : NULL;
		ok = info && info->type == REDIS_REPLY_STRING;
		freeReplyObject(pong);
		freeReplyObject(info);
		redisFree(c);
		if (!ok)
			return 1;
		pause_between();
	}
	return 0;
}

int main(int argc, char **argv)
{
	double t0;
	long n;
	int rc;

	if (argc > 2 && !strcmp(argv[1], "-g")) {
		gap_us = (useconds_t)atol(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: library_loop [-g GAP_US] http URL N | "
				"postgres DSN N | redis HOST PORT N\n");
		return 2;
	}
	n = atol(argv[argc - 1]);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	t0 = cpu_us();
	if (!strcmp(argv[1], "http"))
		rc = http(argv[2], n);
	else if (!strcmp(argv[1], "postgres"))
		rc = postgres(argv[2], n);
	else
		rc = redis(argv[2], atoi(argv[3]), n);
	if (rc)
		return 1;
	printf("cpu_us_per_op %.1f\n", (cpu_us() - t0) / (double)n);
	return 0;
}
