/*
 * ctl.h — `healthd ctl`: the client of the daemon's control socket
 * (control.h), for operators (kubectl exec) and scripts (--json).
 */
#ifndef HEALTHD_CTL_H
#define HEALTHD_CTL_H

/* Exit codes besides a command's own (status: 0, 1, 2 by verdict). */
#define CTL_EXIT_REFUSED 2     /* bad usage, or the daemon said no */
#define CTL_EXIT_UNREACHABLE 3 /* no daemon answers on the socket */

/* `healthd ctl ARGS...`: argv[0] is "ctl".  `default_config` is the
 * config read for control.socket when neither -c nor $HEALTHD_CONFIG
 * names one.  Returns the exit code. */
int ctl_main(int argc, char **argv, const char *default_config);

#endif /* HEALTHD_CTL_H */
