/*
 * watch.h — notices edits of the config file, including a ConfigMap volume
 * update: the kubelet writes a new timestamped directory and renames the
 * `..data` symlink over the old one, so the file (a symlink through
 * `..data`) changes without ever being written.  inotify watches the
 * file's directory; the file's content decides whether anything changed.
 */
#ifndef HEALTHD_WATCH_H
#define HEALTHD_WATCH_H

#include <stdbool.h>
#include <stdint.h>

struct watch;

/* Watch the directory of `path`.  Returns NULL (and logs) when inotify is
 * not available: SIGHUP still reloads. */
struct watch *watch_open(const char *path);
void watch_close(struct watch *w);

/* The descriptor to poll for POLLIN. */
int watch_fd(const struct watch *w);

/* Consume pending events; true when one may concern the config file. */
bool watch_read(struct watch *w);

/* True when the file's content differs from the last time this returned
 * true (or from watch_open()); a missing file counts as unchanged, since a
 * ConfigMap swap passes through moments where it does not resolve. */
bool watch_changed(struct watch *w);

#endif /* HEALTHD_WATCH_H */
