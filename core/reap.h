/*
 * reap.h — reaping children nobody else waits for.
 *
 * A plugin may leave children behind (one it forgot to wait for, or, once
 * its plugin host is killed, grandchildren reparented to healthd as PID 1
 * of a container).  Each would stay a zombie.  A child is reaped here only
 * after it has been a zombie for REAP_GRACE_MS: a plugin that waits for
 * its own child does so long before, and keeps its exit status.
 */
#ifndef HEALTHD_REAP_H
#define HEALTHD_REAP_H

#include <stdbool.h>
#include <sys/types.h>

#define REAP_GRACE_MS 2000
#define REAP_SWEEP_MS 1000 /* how often callers sweep */

/* Reap what is due.  `skip`, if set, names children the caller reaps
 * itself (plugin hosts): the sweep stops at one of those this time.  Call
 * from one thread. */
void reap_sweep(bool (*skip)(pid_t pid, void *ctx), void *ctx);

#endif /* HEALTHD_REAP_H */
