/* cpus.h — how many CPUs this process may really use, for sizing threads. */
#ifndef HEALTHD_CPUS_H
#define HEALTHD_CPUS_H

/* The CPU affinity mask, capped by a cgroup v2 CPU quota (a container's
 * `resources.limits.cpu`); at least 1. */
int cpus_usable(void);

#endif /* HEALTHD_CPUS_H */
