/*
 * loader.h — finds, opens and vets plugin shared objects (libltdl).
 *
 * A plugin is looked up as exactly NAME.so in each plugin dir in order, or
 * taken from a path (a name containing '/').  Before the core touches the
 * plugin's struct it checks: a regular file, neither it nor its directory
 * writable by others, the symbol present, abi_major equal to ours, abi_minor
 * not newer, size large enough for the fields of its version, the name equal
 * to the file's, create/check/destroy non-NULL.  A refusal names the file,
 * both versions where relevant, and the reason.
 *
 * Loaded plugins are shared and reference-counted: opening the same file
 * twice returns the same struct plugin, so a reload that keeps a plugin does
 * not unload it.
 */
#ifndef HEALTHD_LOADER_H
#define HEALTHD_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <healthd/plugin.h>

struct plugin {
	char *path; /* resolved file path */
	const struct healthd_plugin *desc;
	void *handle; /* lt_dlhandle */
	int refs;
};

/* Once per process, before any loader_open(); loader_exit() at the end. */
int loader_init(void);
void loader_exit(void);

/* Open `name` (NAME or a path to a .so) searching `dirs`.  Returns 0 with a
 * new reference in *out, or a negative errno code with a message in err. */
int loader_open(const char *name, char *const *dirs, size_t n_dirs,
		struct plugin **out, char *err, size_t errlen);

/* Find and vet the file `name` names, as loader_open() does, without
 * loading it: the path as found and its resolved form (PATH_MAX bytes
 * each), and in *base (malloc'd) the name the plugin must declare.  A
 * plugin host loads the file; the daemon never maps its code. */
int loader_locate(const char *name, char *const *dirs, size_t n_dirs,
		  char *path, char *real, char **base, char *err, size_t errlen);

/* The plugin's required options (NULL-terminated), when its version has
 * the field; NULL otherwise.  And whether `option` is one of them. */
const char *const *loader_required(const struct healthd_plugin *d);
bool loader_is_required(const struct healthd_plugin *d, const char *option);

/* Drop a reference; the last one unloads the file. */
void loader_release(struct plugin *plugin);

#endif /* HEALTHD_LOADER_H */
