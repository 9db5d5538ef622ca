/* watch.c — inotify on the config file's directory, and a content hash. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "watch.h"

struct watch {
	int fd;
	char *path;
	uint64_t hash;
	bool exists;
};

/* FNV-1a over the file's bytes; *exists false when it cannot be read. */
static uint64_t watch_hash(const char *path, bool *exists)
{
	uint64_t h = 1469598103934665603ULL;
	unsigned char buf[4096];
	size_t n;
	FILE *f = fopen(path, "rb");

	*exists = f != NULL;
	if (!f)
		return 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		for (size_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 1099511628211ULL;
	fclose(f);
	return h;
}

struct watch *watch_open(const char *path)
{
	struct watch *w = calloc(1, sizeof(*w));
	char *copy = strdup(path);

	if (!w || !copy)
		goto fail;
	w->path = strdup(path);
	if (!w->path)
		goto fail;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		log_warn("inotify: %s; reload with SIGHUP", strerror(errno));
		goto fail;
	}
	const char *dir = dirname(copy);
	if (inotify_add_watch(w->fd, dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
				      IN_DELETE | IN_ATTRIB | IN_MODIFY) < 0) {
		log_warn("cannot watch %s: %s; reload with SIGHUP", dir,
			 strerror(errno));
		close(w->fd);
		goto fail;
	}
	w->hash = watch_hash(path, &w->exists);
	free(copy);
	return w;
fail:
	free(copy);
	if (w)
		free(w->path);
	free(w);
	return NULL;
}

void watch_close(struct watch *w)
{
	if (!w)
		return;
	close(w->fd);
	free(w->path);
	free(w);
}

int watch_fd(const struct watch *w)
{
	return w->fd;
}

bool watch_read(struct watch *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;

	/* Any event in the directory may concern the file (through a
	 * symlink chain), so no name filter: the hash decides. */
	while (read(w->fd, buf, sizeof(buf)) > 0)
		any = true;
	return any;
}

bool watch_changed(struct watch *w)
{
	bool exists;
	uint64_t h = watch_hash(w->path, &exists);

	if (!exists || (w->exists && h == w->hash))
		return false;
	w->hash = h;
	w->exists = true;
	return true;
}
