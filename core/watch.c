/* watch.c — inotify on the config's directories, and a content hash. */
#include <errno.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "hash.h"
#include "log.h"
#include "watch.h"

#define WATCH_EVENTS (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | \
		      IN_ATTRIB | IN_MODIFY)

struct watch {
	int fd;
	char **paths; /* [0]: the config file; then its inputs */
	size_t n;
	uint64_t hash;
};

/* A file's bytes folded into h (see hash.h); *exists false when it cannot
 * be read (which changes the hash too). */
static uint64_t hash_file(uint64_t h, const char *path, bool *exists)
{
	unsigned char buf[4096];
	size_t n;
	FILE *f = fopen(path, "rb");

	*exists = f != NULL;
	h = hash_file_start(h, *exists);
	if (!f)
		return h;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		h = hash_bytes(h, buf, n);
	fclose(f);
	return h;
}

/* The config file, then its inputs in config_load()'s order: the order
 * struct config's hash folds them in. */
static uint64_t hash_all(const struct watch *w, bool *config_exists)
{
	uint64_t h = HASH_INIT;
	bool exists;

	*config_exists = false;
	for (size_t i = 0; i < w->n; i++) {
		h = hash_file(h, w->paths[i], &exists);
		if (i == 0)
			*config_exists = exists;
	}
	return h;
}

/* Watch the directory holding `path`. */
static int watch_dir_of(struct watch *w, const char *path)
{
	char *copy = strdup(path);
	int rc = -1;

	if (copy && inotify_add_watch(w->fd, dirname(copy), WATCH_EVENTS) >= 0)
		rc = 0;
	else
		log_warn("cannot watch the directory of %s: %s; reload with SIGHUP",
			 path, strerror(errno));
	free(copy);
	return rc;
}

void watch_dirs(struct watch *w, char *const *dirs, size_t n)
{
	for (size_t i = 0; w && i < n; i++)
		if (inotify_add_watch(w->fd, dirs[i], WATCH_EVENTS) < 0)
			log_debug("cannot watch %s: %s", dirs[i], strerror(errno));
}

static void paths_free(struct watch *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->paths[i]);
	free(w->paths);
	w->paths = NULL;
	w->n = 0;
}

struct watch *watch_open(const char *path)
{
	struct watch *w = calloc(1, sizeof(*w));
	bool exists;

	if (!w || !(w->paths = calloc(1, sizeof(*w->paths))) ||
	    !(w->paths[0] = strdup(path)))
		goto fail;
	w->n = 1;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		log_warn("inotify: %s; reload with SIGHUP", strerror(errno));
		goto fail;
	}
	if (watch_dir_of(w, path) < 0) {
		close(w->fd);
		goto fail;
	}
	w->hash = hash_all(w, &exists);
	return w;
fail:
	if (w)
		paths_free(w);
	free(w);
	return NULL;
}

void watch_inputs(struct watch *w, char *const *paths, size_t n,
		  uint64_t loaded)
{
	char **p;

	if (!w)
		return;
	p = realloc(w->paths, (1 + n) * sizeof(*p));
	if (!p)
		return; /* keep watching the config alone */
	w->paths = p;
	for (size_t i = 1; i < w->n; i++)
		free(w->paths[i]);
	w->n = 1;
	for (size_t i = 0; i < n; i++) {
		if (!(w->paths[w->n] = strdup(paths[i])))
			break;
		w->n++;
		/* Adding a directory twice is harmless: inotify keeps one. */
		watch_dir_of(w, paths[i]);
	}
	/* Not hashed again: an edit made since the load read the files must
	 * still count as a change. */
	w->hash = loaded;
}

void watch_close(struct watch *w)
{
	if (!w)
		return;
	close(w->fd);
	paths_free(w);
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

	/* Any event in the directories may concern a file (through a
	 * symlink chain), so no name filter: the hash decides. */
	while (read(w->fd, buf, sizeof(buf)) > 0)
		any = true;
	return any;
}

bool watch_changed(struct watch *w)
{
	bool config_exists;
	uint64_t h = hash_all(w, &config_exists);

	if (!config_exists || h == w->hash)
		return false;
	w->hash = h;
	return true;
}
