/*
 * loader.c — finds, vets and shares plugin shared objects (see loader.h).
 */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

#define LOADER_SUFFIX ".so"

/* The smallest struct healthd_plugin each minor version may declare: the end
 * of the last field that minor added.  A new minor appends a row. */
#define LOADER_END_OF(field)                                                 \
	(offsetof(struct healthd_plugin, field) +                            \
	 sizeof(((struct healthd_plugin *)0)->field))
static const size_t loader_min_size[HEALTHD_ABI_MINOR + 1] = {
	[0] = LOADER_END_OF(destroy),
	[1] = LOADER_END_OF(destroy), /* 1.1 added host functions only */
	[2] = LOADER_END_OF(required),
};

const char *const *loader_required(const struct healthd_plugin *d)
{
	return d->abi_minor >= 2 && d->size >= LOADER_END_OF(required)
		       ? d->required
		       : NULL;
}

bool loader_is_required(const struct healthd_plugin *d, const char *option)
{
	for (const char *const *r = loader_required(d); r && *r; r++)
		if (!strcmp(*r, option))
			return true;
	return false;
}

/* Every plugin currently loaded, keyed by resolved path.  Reloads open and
 * release plugins on their own thread, hence the mutex; it also serialises
 * libltdl, whose error state is global. */
static pthread_mutex_t loader_lock = PTHREAD_MUTEX_INITIALIZER;
static struct plugin **loader_cache;
static size_t loader_n_cache;

int loader_init(void)
{
	if (lt_dlinit() != 0) {
		log_error("cannot initialise libltdl: %s", lt_dlerror());
		return -EIO;
	}
	return 0;
}

void loader_exit(void)
{
	pthread_mutex_lock(&loader_lock);
	/* References still held here are a caller's bug; the files go with
	 * lt_dlexit() anyway, so free their records rather than leak them. */
	for (size_t i = 0; i < loader_n_cache; i++) {
		log_warn("plugin %s still referenced at exit", loader_cache[i]->path);
		free(loader_cache[i]->path);
		free(loader_cache[i]);
	}
	free(loader_cache);
	loader_cache = NULL;
	loader_n_cache = 0;
	lt_dlexit();
	pthread_mutex_unlock(&loader_lock);
}

/* dir/NAME.so into buf; -ENAMETOOLONG when it does not fit. */
static int loader_join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s" LOADER_SUFFIX, dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Where `name` lives: the path itself, or the first dir holding NAME.so.
 * Sets *base to the name the plugin must declare (malloc'd). */
static int loader_find(const char *name, char *const *dirs, size_t n_dirs,
		       char *path, size_t pathlen, char **base, char *err,
		       size_t errlen)
{
	struct stat st;
	size_t n;

	if (!*name) {
		snprintf(err, errlen, "plugin name is empty");
		return -EINVAL;
	}

	if (strchr(name, '/')) {
		const char *file = strrchr(name, '/') + 1;

		n = strlen(file);
		if (n <= strlen(LOADER_SUFFIX) ||
		    strcmp(file + n - strlen(LOADER_SUFFIX), LOADER_SUFFIX)) {
			snprintf(err, errlen,
				   "%s: a plugin file is named NAME" LOADER_SUFFIX,
				   name);
			return -EINVAL;
		}
		if (strlen(name) >= pathlen) {
			snprintf(err, errlen, "%s: path too long", name);
			return -ENAMETOOLONG;
		}
		strcpy(path, name);
		*base = strndup(file, n - strlen(LOADER_SUFFIX));
		return *base ? 0 : -ENOMEM;
	}

	for (size_t i = 0; i < n_dirs; i++) {
		if (loader_join(path, pathlen, dirs[i], name) != 0) {
			snprintf(err, errlen, "%s/%s" LOADER_SUFFIX ": path too long",
				   dirs[i], name);
			return -ENAMETOOLONG;
		}
		if (stat(path, &st) == 0) {
			*base = strdup(name);
			return *base ? 0 : -ENOMEM;
		}
		/* A missing dir or file means "look further"; anything else
		 * (permissions, loops) is worth telling rather than skipping. */
		if (errno != ENOENT && errno != ENOTDIR) {
			int e = errno;

			snprintf(err, errlen, "%s: %s", path, strerror(e));
			return -e;
		}
	}

	/* plugin "disk": no disk.so in /a, /b */
	int off = snprintf(err, errlen, "plugin \"%s\": no %s" LOADER_SUFFIX " in ",
			   name, name);
	if (!n_dirs && off >= 0 && (size_t)off < errlen)
		off += snprintf(err + off, errlen - off, "(no plugin_dirs)");
	for (size_t i = 0; i < n_dirs && off >= 0 && (size_t)off < errlen; i++)
		off += snprintf(err + off, errlen - off, "%s%s", i ? ", " : "",
				dirs[i]);
	return -ENOENT;
}

/* The directory part of `path` into buf (which holds PATH_MAX). */
static void loader_dirname(const char *path, char *buf)
{
	const char *slash = strrchr(path, '/');

	if (!slash) {
		strcpy(buf, ".");
	} else if (slash == path) {
		strcpy(buf, "/");
	} else {
		memcpy(buf, path, (size_t)(slash - path));
		buf[slash - path] = '\0';
	}
}

/* The file must be a regular file (after symlinks) and neither it nor the
 * directories it is reached through may be writable by others. */
static int loader_check_file(const char *path, const char *real, char *err,
			     size_t errlen)
{
	char dirs[2][PATH_MAX];
	struct stat st;

	if (stat(path, &st) != 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & S_IWOTH) {
		snprintf(err, errlen,
			   "%s: refused: the file is writable by others (mode %04o)",
			   path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}

	/* The directory of the name as found and that of the final target
	 * (a ConfigMap's ..data symlink leads elsewhere): either would let
	 * someone else swap the code. */
	loader_dirname(path, dirs[0]);
	loader_dirname(real, dirs[1]);
	for (size_t i = 0; i < 2; i++) {
		if (i == 1 && !strcmp(dirs[0], dirs[1]))
			break;
		if (stat(dirs[i], &st) != 0) {
			int e = errno;

			snprintf(err, errlen, "%s: %s: %s", path, dirs[i],
				   strerror(e));
			return -e;
		}
		if (st.st_mode & S_IWOTH) {
			snprintf(err, errlen,
				   "%s: refused: its directory %s is writable by others (mode %04o)",
				   path, dirs[i], (unsigned)(st.st_mode & 07777));
			return -EPERM;
		}
	}
	return 0;
}

/* The name check, also done on a cache hit: two file names may lead to one
 * file, and each must match the plugin's own name. */
static int loader_check_name(const char *path, const struct healthd_plugin *d,
			     const char *base, char *err, size_t errlen)
{
	if (!d->name) {
		snprintf(err, errlen, "%s: the plugin declares no name", path);
		return -EINVAL;
	}
	if (strcmp(d->name, base) != 0) {
		snprintf(err, errlen,
			   "%s: the plugin calls itself \"%s\", which does not match its file name %s" LOADER_SUFFIX,
			   path, d->name, base);
		return -EINVAL;
	}
	return 0;
}

/* Version fields first: nothing past `size` is read until they pass. */
static int loader_vet(const char *path, const struct healthd_plugin *d,
		      const char *base, char *err, size_t errlen)
{
	int rc;

	if (d->abi_major != HEALTHD_ABI_MAJOR) {
		snprintf(err, errlen,
			   "%s: ABI version %u.%u is not supported (healthd speaks %d.%d)",
			   path, (unsigned)d->abi_major, (unsigned)d->abi_minor,
			   HEALTHD_ABI_MAJOR, HEALTHD_ABI_MINOR);
		return -ENOTSUP;
	}
	if (d->abi_minor > HEALTHD_ABI_MINOR) {
		snprintf(err, errlen,
			   "%s: ABI version %u.%u is newer than healthd's %d.%d (upgrade healthd or rebuild the plugin against its header)",
			   path, (unsigned)d->abi_major, (unsigned)d->abi_minor,
			   HEALTHD_ABI_MAJOR, HEALTHD_ABI_MINOR);
		return -ENOTSUP;
	}
	if (d->size < loader_min_size[d->abi_minor]) {
		snprintf(err, errlen,
			   "%s: plugin struct is %u bytes, ABI version %u.%u needs at least %zu",
			   path, (unsigned)d->size, (unsigned)d->abi_major,
			   (unsigned)d->abi_minor, loader_min_size[d->abi_minor]);
		return -EINVAL;
	}
	rc = loader_check_name(path, d, base, err, errlen);
	if (rc != 0)
		return rc;

	const char *missing = !d->create ? "create"
			      : !d->check ? "check"
			      : !d->destroy ? "destroy"
					    : NULL;
	if (missing) {
		snprintf(err, errlen,
			   "%s: plugin \"%s\" has no %s callback (create, check and destroy are required)",
			   path, d->name, missing);
		return -EINVAL;
	}
	return 0;
}

/* Why `real` does not load.  libltdl reports every dlopen() failure as
 * "file not found", even for a file that exists but is no ELF object or lacks
 * a library it needs; the system loader's own words say which.  Its message
 * starts with the path, which the caller already names. */
static const char *loader_why(const char *real, const char *lt_reason)
{
	void *h = dlopen(real, RTLD_LAZY | RTLD_LOCAL);
	const char *why;
	size_t n = strlen(real);

	if (h) {
		dlclose(h);
		return lt_reason ? lt_reason : "unknown error";
	}
	why = dlerror();
	if (!why)
		return lt_reason ? lt_reason : "unknown error";
	if (!strncmp(why, real, n) && !strncmp(why + n, ": ", 2))
		why += n + 2;
	return why;
}

/* Open and vet a file not in the cache.  Called with loader_lock held. */
static int loader_load(const char *path, const char *real, const char *base,
		       struct plugin **out, char *err, size_t errlen)
{
	struct plugin *p = NULL;
	struct plugin **cache;
	lt_dladvise advise = NULL;
	lt_dlhandle h = NULL;
	const struct healthd_plugin *d;
	int rc;

	if (lt_dladvise_init(&advise) != 0 || lt_dladvise_local(&advise) != 0) {
		snprintf(err, errlen, "%s: %s", path, lt_dlerror());
		rc = -ENOMEM;
		goto fail;
	}
	h = lt_dlopenadvise(real, advise);
	if (!h) {
		snprintf(err, errlen, "%s: cannot load: %s", path,
			   loader_why(real, lt_dlerror()));
		rc = -ENOEXEC;
		goto fail;
	}
	d = lt_dlsym(h, HEALTHD_PLUGIN_SYMBOL);
	if (!d) {
		snprintf(err, errlen,
			   "%s: no symbol \"" HEALTHD_PLUGIN_SYMBOL "\" (is it a healthd plugin? define it with HEALTHD_PLUGIN_DEFINE)",
			   path);
		rc = -ENOEXEC;
		goto fail;
	}
	rc = loader_vet(path, d, base, err, errlen);
	if (rc != 0)
		goto fail;

	p = calloc(1, sizeof(*p));
	cache = realloc(loader_cache, (loader_n_cache + 1) * sizeof(*cache));
	if (!p || !cache || !(p->path = strdup(real))) {
		if (cache)
			loader_cache = cache;
		snprintf(err, errlen, "%s: out of memory", path);
		rc = -ENOMEM;
		goto fail;
	}
	p->desc = d;
	p->handle = h;
	p->refs = 1;
	loader_cache = cache;
	loader_cache[loader_n_cache++] = p;
	lt_dladvise_destroy(&advise);
	*out = p;
	return 0;

fail:
	if (p)
		free(p->path);
	free(p);
	if (h)
		lt_dlclose(h);
	if (advise)
		lt_dladvise_destroy(&advise);
	return rc;
}

int loader_locate(const char *name, char *const *dirs, size_t n_dirs,
		  char *path, char *real, char **base, char *err, size_t errlen)
{
	int rc;

	*base = NULL;
	rc = loader_find(name, dirs, n_dirs, path, PATH_MAX, base, err, errlen);
	if (rc == 0 && !realpath(path, real)) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	}
	if (rc == 0)
		rc = loader_check_file(path, real, err, errlen);
	if (rc != 0) {
		free(*base);
		*base = NULL;
	}
	return rc;
}

int loader_open(const char *name, char *const *dirs, size_t n_dirs,
		struct plugin **out, char *err, size_t errlen)
{
	char path[PATH_MAX], real[PATH_MAX];
	char *base = NULL;
	int rc;

	*out = NULL;
	rc = loader_locate(name, dirs, n_dirs, path, real, &base, err, errlen);
	if (rc != 0)
		goto out;

	pthread_mutex_lock(&loader_lock);
	for (size_t i = 0; i < loader_n_cache; i++) {
		struct plugin *p = loader_cache[i];

		if (strcmp(p->path, real) != 0)
			continue;
		rc = loader_check_name(path, p->desc, base, err, errlen);
		if (rc == 0) {
			p->refs++;
			*out = p;
		}
		pthread_mutex_unlock(&loader_lock);
		goto out;
	}
	rc = loader_load(path, real, base, out, err, errlen);
	pthread_mutex_unlock(&loader_lock);
out:
	free(base);
	return rc;
}

void loader_release(struct plugin *plugin)
{
	if (!plugin)
		return;
	pthread_mutex_lock(&loader_lock);
	if (--plugin->refs > 0) {
		pthread_mutex_unlock(&loader_lock);
		return;
	}
	for (size_t i = 0; i < loader_n_cache; i++) {
		if (loader_cache[i] == plugin) {
			loader_cache[i] = loader_cache[--loader_n_cache];
			break;
		}
	}
	lt_dlclose(plugin->handle);
	pthread_mutex_unlock(&loader_lock);
	free(plugin->path);
	free(plugin);
}
