/*
 * control.h — the daemon's end of `healthd ctl`: a Unix socket
 * (control.socket) that takes one JSON request per connection and answers
 * one JSON object (docs/ctl.md has the protocol).
 *
 * Served by a thread of its own, never by the HTTP server's, so nothing
 * said here can slow a probe.  Bounded: CONTROL_REQUEST_MAX bytes a
 * request, CONTROL_READ_MS to send it, CONTROL_CLIENTS_MAX at a time (each
 * in a thread: `run` waits for a check).  Only peers of the daemon's own
 * user, or root, are served (SO_PEERCRED), on top of the socket's 0600.
 */
#ifndef HEALTHD_CONTROL_H
#define HEALTHD_CONTROL_H

#include <stddef.h>

#define CONTROL_VERSION 1
#define CONTROL_REQUEST_MAX 4096
#define CONTROL_READ_MS 2000
#define CONTROL_WRITE_MS 5000
#define CONTROL_CLIENTS_MAX 4
/* `drain --reason`: it goes to /ready's body and the log. */
#define CONTROL_REASON_MAX 200
/* `drain --for`: a year at most. */
#define CONTROL_FOR_MAX_MS (366LL * 24 * 3600 * 1000)

struct control;
struct daemon;

/* Bind `path` (its directory made 0700 if missing; a stale socket
 * replaced; anything else there left alone) and serve `d`.  Returns NULL
 * with a message naming the path in err. */
struct control *control_start(const char *path, struct daemon *d, char *err,
			      size_t errlen);

/* Stop serving, wait for the requests in progress, remove the socket. */
void control_stop(struct control *c);

#endif /* HEALTHD_CONTROL_H */
