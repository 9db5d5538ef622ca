/* reap.c — zombies reaped after a grace (see reap.h). */
#include "reap.h"

#include <stdint.h>
#include <sys/wait.h>

#include "clock.h"
#include "log.h"

/* The zombie waitid() shows first, and since when: children are listed
 * oldest first, so one at a time is enough. */
static pid_t reap_head;
static int64_t reap_since;

void reap_sweep(bool (*skip)(pid_t pid, void *ctx), void *ctx)
{
	for (;;) {
		siginfo_t si = {0};
		int64_t now = clock_mono_ms();

		if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
		    si.si_pid == 0)
			return;
		if (skip && skip(si.si_pid, ctx))
			return;
		if (si.si_pid != reap_head) {
			reap_head = si.si_pid;
			reap_since = now;
		}
		if (now - reap_since < REAP_GRACE_MS)
			return;
		waitpid(si.si_pid, NULL, WNOHANG);
		log_debug("reaped process %d, left by a plugin", (int)si.si_pid);
		reap_head = 0;
	}
}
