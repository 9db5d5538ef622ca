/*
 * plughost.h — the plugin host process: healthd re-executed to load one
 * plugin file and run its instances, so that a plugin that crashes, hangs,
 * leaks or prints costs only this process (see isolate.h for the daemon's
 * side).
 *
 * The daemon starts it with the socket to talk on as fd 3, stdout and
 * stderr as pipes it logs, and in the environment HEALTHD_PLUGIN_HOST (the
 * plugin file) and HEALTHD_PLUGIN_HOST_PARENT (the daemon's pid); argv[0]
 * is "healthd: plugin NAME", which is what `ps` shows.
 */
#ifndef HEALTHD_PLUGHOST_H
#define HEALTHD_PLUGHOST_H

#define PLUGHOST_ENV "HEALTHD_PLUGIN_HOST"
#define PLUGHOST_ENV_PARENT "HEALTHD_PLUGIN_HOST_PARENT"
#define PLUGHOST_FD 3

/* Serve the daemon until it closes the socket.  Returns the exit status. */
int plughost_main(void);

#endif /* HEALTHD_PLUGHOST_H */
