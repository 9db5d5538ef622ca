/* cpus.c — CPU affinity and the cgroup v2 quota. */
#include <sched.h>
#include <stdio.h>

#include "cpus.h"

/* Read "quota period" from cgroup v2's cpu.max: "max" means no quota. */
static int cgroup_cpus(void)
{
	FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
	long long quota, period;
	int n = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lld %lld", &quota, &period) == 2 && period > 0)
		n = (int)((quota + period - 1) / period);
	fclose(f);
	return n;
}

int cpus_usable(void)
{
	cpu_set_t set;
	int n = 1, quota;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	quota = cgroup_cpus();
	if (quota > 0 && quota < n)
		n = quota;
	return n > 0 ? n : 1;
}
