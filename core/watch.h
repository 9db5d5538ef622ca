/*
 * watch.h — notices edits of the config file and of the files it reads
 * (${file:...}, the details token), including Kubernetes volume updates:
 * the kubelet writes a new timestamped directory and renames the `..data`
 * symlink over the old one, so a file (a symlink through `..data`) changes
 * without ever being written.  inotify watches the files' directories; the
 * files' contents decide whether anything changed.
 */
#ifndef HEALTHD_WATCH_H
#define HEALTHD_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct watch;

/* Watch the directory of the config file `path`.  Returns NULL (and logs)
 * when inotify is not available: SIGHUP still reloads. */
struct watch *watch_open(const char *path);
void watch_close(struct watch *w);

/* The files the loaded config read besides itself: their directories are
 * watched too, and their contents are part of what "changed" compares.
 * `loaded` is struct config's hash of the bytes the load read: the baseline,
 * so an edit made while the config loaded is still a change. */
void watch_inputs(struct watch *w, char *const *paths, size_t n,
		  uint64_t loaded);

/* Also watch these directories (plugin_dirs): a plugin file dropped in
 * makes an event, so a reload that failed for it is tried again.  A
 * directory that does not exist is skipped. */
void watch_dirs(struct watch *w, char *const *dirs, size_t n);

/* The descriptor to poll for POLLIN. */
int watch_fd(const struct watch *w);

/* Consume pending events; true when there were any. */
bool watch_read(struct watch *w);

/* True when the contents differ from the last time this returned true (or
 * from watch_open()/watch_inputs()); a missing config file counts as
 * unchanged, since a volume swap passes through moments where it does not
 * resolve. */
bool watch_changed(struct watch *w);

#endif /* HEALTHD_WATCH_H */
