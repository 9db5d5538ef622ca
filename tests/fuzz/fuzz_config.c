/* fuzz_config.c — healthd.yaml bytes -> parse, validate and expand
 * (config_load_text), with a fake environment and fake files: nothing is
 * read from the disk.  Asserts: a result or a message naming the file,
 * and no secret an expansion produced ever in a message. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

/* Secrets as the config can reach them: a file's content, a variable. */
#define FILE_SECRET "f1le-S3cret-Qx"
#define ENV_SECRET "3nv-S3cret-Wz"
#define URL_PASSWORD "pAss-W0rd-Yk"

static const struct {
	const char *path, *content;
} files[] = {
	{"/etc/healthd-secrets/token", FILE_SECRET "\n"},
	{"/etc/healthd-secrets/dsn", "postgresql://app:" URL_PASSWORD "@db/app"},
	{"/etc/healthd/empty", ""},
	{"/etc/healthd/nul", "a\0b"},
};

/* A memfd holding the file: a regular file that is not on the disk. */
static int fake_open(const char *path)
{
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (strcmp(path, files[i].path) != 0)
			continue;
		int fd = memfd_create("fuzz", MFD_CLOEXEC);
		size_t n = strcmp(path, "/etc/healthd/nul") ? strlen(files[i].content) : 3;

		if (fd >= 0 && write(fd, files[i].content, n) == (ssize_t)n &&
		    lseek(fd, 0, SEEK_SET) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!strcmp(path, "/etc/healthd/big")) {
		int fd = memfd_create("fuzz", MFD_CLOEXEC);

		if (fd >= 0 && ftruncate(fd, 1 << 20) == 0)
			return fd; /* a MiB of NULs: too large */
		if (fd >= 0)
			close(fd);
		return -1;
	}
	errno = ENOENT;
	return -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	config_set_open(fake_open);
	setenv("TOKEN", ENV_SECRET, 1);
	setenv("DB_URL", "postgresql://app:" URL_PASSWORD "@db/app?sslmode=require", 1);
	setenv("HOST", "db.internal", 1);
	setenv("EMPTY", "", 1);
	setenv("PORT", "8080", 1);
	unsetenv("HEALTHD_LOG_LEVEL");
	unsetenv("HEALTHD_LISTEN");
	log_configure(LOG_ERROR, LOG_JSON);
	return 0;
}

static bool has(const uint8_t *data, size_t size, const char *s)
{
	return memmem(data, size, s, strlen(s)) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char err[2048];
	int rc;

	if (size > 64 * 1024)
		return 0; /* the file limit is the loader's, not this path's */
	err[0] = 'x';
	err[1] = '\0';
	rc = config_load_text("fuzz.yaml", (const char *)data, size, &cfg, err,
			      sizeof(err));
	FUZZ_ASSERT(rc == 0 || rc == -1);
	if (rc == 0) {
		FUZZ_ASSERT(cfg);
		for (size_t i = 0; i < cfg->n_checks; i++) {
			struct config_check copy;

			FUZZ_ASSERT(config_check_equal(&cfg->checks[i],
						       &cfg->checks[i]));
			if (config_check_copy(&copy, &cfg->checks[i]) == 0) {
				FUZZ_ASSERT(config_check_equal(&copy, &cfg->checks[i]));
				config_check_clear(&copy);
			}
		}
		config_free(cfg);
		return 0;
	}
	FUZZ_ASSERT(!cfg);
	FUZZ_ASSERT(err[0] && strncmp(err, "fuzz.yaml", 9) == 0);
	FUZZ_ASSERT(fuzz_utf8_ok(err, strlen(err)) ||
		    !fuzz_utf8_ok((const char *)data, size));
	/* Unless the file itself says it. */
	if (!has(data, size, FILE_SECRET))
		FUZZ_ASSERT(!strstr(err, FILE_SECRET));
	if (!has(data, size, ENV_SECRET))
		FUZZ_ASSERT(!strstr(err, ENV_SECRET));
	if (!has(data, size, URL_PASSWORD))
		FUZZ_ASSERT(!strstr(err, URL_PASSWORD));
	return 0;
}
