/*
 * exec.c — the bundled exec check: runs a program that speaks the Nagios /
 * Monitoring Plugins API (check_tcp, check_disk, your own scripts) and maps
 * its exit status and output to a result.
 *
 *   exit 0 pass, 1 warn, 2 fail, 3 fail ("UNKNOWN: ..."), any other status
 *   or a signal: fail saying which.  The message is the first line of
 *   stdout, before its '|'; the performance data after the '|' of the first
 *   line and of the long output become details.
 *
 * The command is one string split into words as sh splits them (quotes,
 * backslashes), but no shell runs: healthd hands a YAML list to a plugin as
 * one comma-joined string, which cannot carry arguments holding commas
 * (check_ping -w 100,20%), so a list cannot be faithful and is not the
 * syntax.  The program is resolved at create() (searching the PATH the
 * command will get), so --check-config catches a missing one; it is never
 * run there.
 *
 * Each run: posix_spawn (the daemon and plugin hosts are threaded: no
 * fork), stdin /dev/null, stdout and stderr to O_CLOEXEC pipes, every other
 * descriptor closed, signal mask and dispositions reset (healthd blocks and
 * ignores some), in a process group of its own, with a minimal environment
 * (PATH, LANG) plus `env`, never healthd's own.  Output is read with poll()
 * against the deadline; past the caps it is read and dropped, so the
 * command never blocks on a full pipe.  At the deadline the whole group is
 * killed (SIGKILL) and the child reaped.  When the command exits first,
 * what it left running in its group is killed too: a check leaves nothing
 * behind.
 *
 * Reaping: we wait for our own pid only.  The plugin host (and healthd as
 * PID 1) sweep zombies with waitid(P_ALL, WNOWAIT) and reap one only after
 * it has been a zombie for 2 s (core/reap.c); we reap ours as soon as it
 * exits (a pidfd wakes poll()), so the sweep never takes it from us.  The
 * group is killed before the leader is reaped: until then its pid, and so
 * the group id, cannot be reused.
 *
 * Option values (the command line and env values may hold credentials)
 * never appear in messages, details or create() errors.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <healthd/plugin.h>

#define EXEC_OUTPUT_CAP (64 * 1024) /* stdout kept and parsed */
#define EXEC_STDERR_CAP 4096        /* stderr kept (its first line is used) */
#define EXEC_SCRATCH 16384          /* what is read past a cap goes here */
#define EXEC_READ_BURST (256 * 1024) /* per wake: the deadline is checked */
#define EXEC_SLICE_MS 10   /* exit polling when there is no pidfd */
#define EXEC_DRAIN_MS 100  /* after the exit: output still to come */
#define EXEC_REAP_MS 10    /* after SIGKILL: wait this long to reap */
#define EXEC_MESSAGE_MAX 240 /* bytes of the command's own text */
#define EXEC_PERF_MAX 32     /* metrics made details */
#define EXEC_LABEL_MAX 64    /* bytes of a label in a detail key */
#define EXEC_UOM_MAX 16
#define EXEC_RANGE_MAX 32
#define EXEC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define EXEC_DEFAULT_LANG "C.UTF-8"

struct exec {
	const struct healthd_check *check; /* for log lines */
	char *words;   /* the command split, NUL after each word */
	size_t words_size;
	char **argv;   /* into words, NULL-terminated */
	char *program; /* argv[0] resolved: the path posix_spawn runs */
	char **envp;   /* "KEY=VALUE", each malloc'd; NULL-terminated */
	size_t n_env;
	char *cwd;
	/* check() never runs twice at once on an instance: one set of
	 * buffers per instance. */
	char *out, *err, *scratch;
};

static const struct healthd_option_spec exec_options[] = {
	{"command", NULL,
	 "the program and its arguments as one string, split into words as "
	 "sh does ('single', \"double\" quotes, backslash); no shell runs "
	 "(no $VAR, globs, pipes or redirections: write sh -c '...' for "
	 "those); a name without '/' is searched in the command's PATH"},
	{"env.", NULL,
	 "variables of the command's environment, e.g. env: {PGPASSWORD: "
	 "...}; it gets only PATH=" EXEC_DEFAULT_PATH " and LANG="
	 EXEC_DEFAULT_LANG " besides these (which may replace them)"},
	{"cwd", "/", "the command's working directory (an absolute path)"},
	{NULL, NULL, NULL},
};

/* --- text ----------------------------------------------------------------- */

static bool exec_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

/* s[0..*n) without the white space around it. */
static const char *exec_trim(const char *s, size_t *n)
{
	while (*n && exec_space(*s)) {
		s++;
		(*n)--;
	}
	while (*n && exec_space(s[*n - 1]))
		(*n)--;
	return s;
}

/* The length of the valid UTF-8 sequence (2 to 4 bytes) at s, or 0. */
static size_t exec_utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xBF;
	size_t len;

	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	/* No overlong forms, surrogates or code points past U+10FFFF. */
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if (s[k] < 0x80 || s[k] > 0xBF)
			return 0;
	return len;
}

/*
 * Copy s[0..n) into out (outsize > 0) as printable, valid UTF-8: control
 * characters become spaces, bytes that are not UTF-8 '?'.  Whole characters
 * only, at most outsize - 1 bytes; trailing spaces dropped.  Whatever a
 * command prints ends in JSON, logs and HTML.  Returns the length.
 */
static size_t exec_clean(const char *s, size_t n, char *out, size_t outsize)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0;

	while (i < n) {
		size_t len = u[i] < 0x80 ? 1 : exec_utf8_len(u + i, n - i);

		if (o + (len ? len : 1) >= outsize)
			break;
		if (len == 0) {
			out[o++] = '?';
			i++;
		} else if (len == 1) {
			out[o++] = (u[i] < 0x20 || u[i] == 0x7F) ? ' ' : s[i];
			i++;
		} else {
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
		}
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	return o;
}

/*
 * Split `s` into words as sh does, with no expansion: white space separates
 * words; '...' is literal; in "..." a backslash escapes $ ` " \ and a
 * newline only; elsewhere a backslash escapes the next character (a
 * backslash-newline is removed).  Words go to buf (strlen(s) + 1 bytes),
 * each NUL-terminated, pointers to argv (strlen(s) / 2 + 2 slots).
 * Returns the number of words, or -1 with err set.
 */
static int exec_split(const char *s, char *buf, char **argv, char *err,
		      size_t errlen)
{
	char *w = buf;
	int n = 0;

	for (;;) {
		while (exec_space(*s))
			s++;
		if (!*s)
			break;
		argv[n++] = w;
		while (*s && !exec_space(*s)) {
			if (*s == '\'') {
				const char *end = strchr(s + 1, '\'');

				if (!end) {
					snprintf(err, errlen, "command: a ' is not closed");
					return -1;
				}
				memcpy(w, s + 1, (size_t)(end - s - 1));
				w += end - s - 1;
				s = end + 1;
			} else if (*s == '"') {
				for (s++; *s && *s != '"'; s++) {
					if (*s == '\\' && s[1] == '\n')
						s++; /* a line continuation */
					else if (*s == '\\' && s[1] && strchr("$`\"\\", s[1]))
						*w++ = *++s;
					else
						*w++ = *s;
				}
				if (!*s) {
					snprintf(err, errlen, "command: a \" is not closed");
					return -1;
				}
				s++;
			} else if (*s == '\\') {
				if (!s[1]) {
					snprintf(err, errlen,
						 "command: ends with a lone backslash");
					return -1;
				}
				if (s[1] != '\n')
					*w++ = s[1];
				s += 2;
			} else {
				*w++ = *s++;
			}
		}
		*w++ = '\0';
	}
	argv[n] = NULL;
	return n;
}

/* --- create --------------------------------------------------------------- */

static void exec_wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void exec_destroy(void *instance)
{
	struct exec *e = instance;

	if (!e)
		return;
	if (e->words) {
		explicit_bzero(e->words, e->words_size);
		free(e->words);
	}
	free(e->argv);
	free(e->program);
	for (size_t i = 0; e->envp && i < e->n_env; i++)
		exec_wipe_free(e->envp[i]);
	free(e->envp);
	free(e->cwd);
	free(e->out);
	free(e->err);
	free(e->scratch);
	free(e);
}

/* Set KEY=VALUE in the command's environment, replacing KEY if set. */
static int exec_setenv(struct exec *e, const char *key, const char *value)
{
	size_t klen = strlen(key);
	char *entry;

	if (asprintf(&entry, "%s=%s", key, value) < 0)
		return -1;
	for (size_t i = 0; i < e->n_env; i++) {
		if (!strncmp(e->envp[i], key, klen) && e->envp[i][klen] == '=') {
			exec_wipe_free(e->envp[i]);
			e->envp[i] = entry;
			return 0;
		}
	}
	char **grown = realloc(e->envp, (e->n_env + 2) * sizeof(*grown));
	if (!grown) {
		exec_wipe_free(entry);
		return -1;
	}
	e->envp = grown;
	e->envp[e->n_env++] = entry;
	e->envp[e->n_env] = NULL;
	return 0;
}

static const char *exec_getenv(const struct exec *e, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < e->n_env; i++)
		if (!strncmp(e->envp[i], key, klen) && e->envp[i][klen] == '=')
			return e->envp[i] + klen + 1;
	return NULL;
}

/* 0 when `path` is a regular file this process may execute, else why. */
static int exec_runnable(const char *path)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno;
	if (S_ISDIR(st.st_mode))
		return EISDIR;
	if (!S_ISREG(st.st_mode))
		return EACCES;
	return access(path, X_OK) == 0 ? 0 : errno;
}

/* `name` as an absolute path: relative ones are taken from cwd. */
static char *exec_join(const char *cwd, const char *dir, const char *name)
{
	char *p = NULL;
	int n;

	if (dir && dir[0] == '/')
		n = asprintf(&p, "%s/%s", dir, name);
	else if (dir && dir[0])
		n = asprintf(&p, "%s/%s/%s", cwd, dir, name);
	else if (name[0] == '/')
		n = asprintf(&p, "%s", name);
	else
		n = asprintf(&p, "%s/%s", cwd, name); /* "" in PATH: cwd */
	return n < 0 ? NULL : p;
}

/*
 * argv[0] to the file posix_spawn will run, as execvp would find it in the
 * command's PATH (from its environment, not healthd's): the first
 * executable file, and when there is none, EACCES if one was found that is
 * not executable.  Returns 0 or an errno.
 */
static int exec_resolve(struct exec *e)
{
	const char *name = e->argv[0], *path;
	int best = ENOENT;

	if (!name[0])
		return ENOENT;
	if (strchr(name, '/'))
		return (e->program = exec_join(e->cwd, NULL, name))
			       ? exec_runnable(e->program)
			       : ENOMEM;
	path = exec_getenv(e, "PATH");
	for (const char *p = path ? path : ""; p;) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		char *dir = strndup(p, len), *file;
		int rc;

		if (!dir || !(file = exec_join(e->cwd, dir, name))) {
			free(dir);
			return ENOMEM;
		}
		free(dir);
		rc = exec_runnable(file);
		if (rc == 0) {
			e->program = file;
			return 0;
		}
		free(file);
		if (rc == EACCES || rc == EISDIR)
			best = EACCES;
		p = colon ? colon + 1 : NULL;
	}
	return best;
}

static int exec_create(const struct healthd_host *host,
		       const struct healthd_check *check, void **instance,
		       char *err, size_t errlen)
{
	struct exec *e = calloc(1, sizeof(*e));
	const char *command = host->option(check, "command");
	const char *cwd = host->option(check, "cwd"), *key, *value;
	struct stat st;
	size_t pos = 0;
	int rc;

	if (!e)
		goto oom;
	e->check = check;
	if (!command) /* the core checks `required`: an older core may not */
		command = "";
	e->words_size = strlen(command) + 1;
	if (!(e->words = calloc(1, e->words_size)) ||
	    !(e->argv = calloc(e->words_size / 2 + 2, sizeof(*e->argv))))
		goto oom;
	rc = exec_split(command, e->words, e->argv, err, errlen);
	if (rc < 0)
		goto fail;
	if (rc == 0) {
		snprintf(err, errlen, "command: required (the program to run "
				      "and its arguments, as one string)");
		goto fail;
	}

	if (!cwd || cwd[0] != '/') {
		snprintf(err, errlen, "cwd: expected an absolute path");
		goto fail;
	}
	if (stat(cwd, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "cwd: not a directory");
		goto fail;
	}
	if (!(e->cwd = strdup(cwd)))
		goto oom;

	if (exec_setenv(e, "PATH", EXEC_DEFAULT_PATH) < 0 ||
	    exec_setenv(e, "LANG", EXEC_DEFAULT_LANG) < 0)
		goto oom;
	while (host->option_next(check, "env.", &pos, &key, &value)) {
		/* The key is no secret; the value may be one. */
		if (!key[0] || strchr(key, '=')) {
			snprintf(err, errlen, "env.%.64s: a variable name must "
					      "not be empty or hold '='", key);
			goto fail;
		}
		if (exec_setenv(e, key, value) < 0)
			goto oom;
	}

	rc = exec_resolve(e);
	if (rc == ENOMEM)
		goto oom;
	if (rc) {
		const char *hint = "";

		if (rc == ENOENT && strchr(command, ','))
			hint = " (a YAML list reaches the plugin as one "
			       "comma-joined string: write the command as one "
			       "string, e.g. \"check_tcp -H db -p 5432\")";
		if (rc == ENOENT && !strchr(e->argv[0], '/'))
			snprintf(err, errlen, "command: program not found in "
					      "the command's PATH (default "
					      "%s, or env.PATH)%s",
				 EXEC_DEFAULT_PATH, hint);
		else if (rc == ENOENT)
			snprintf(err, errlen, "command: program not found%s",
				 hint);
		else if (rc == EACCES)
			snprintf(err, errlen, "command: the program is not "
					      "executable (no execute "
					      "permission, or not a regular "
					      "file)");
		else if (rc == EISDIR)
			snprintf(err, errlen, "command: the program is a "
					      "directory");
		else
			snprintf(err, errlen, "command: cannot use the "
					      "program: %s", strerror(rc));
		goto fail;
	}
	if (!(e->out = malloc(EXEC_OUTPUT_CAP + 1)) ||
	    !(e->err = malloc(EXEC_STDERR_CAP + 1)) ||
	    !(e->scratch = malloc(EXEC_SCRATCH)))
		goto oom;
	*instance = e;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	exec_destroy(e);
	return -ENOMEM;
fail:
	exec_destroy(e);
	return -EINVAL;
}

/* --- a run ---------------------------------------------------------------- */

struct exec_stream {
	int fd;       /* -1 once at end of file */
	char *buf;    /* the first `cap` bytes */
	size_t cap, len;
	size_t total; /* every byte read */
};

/* A pipe whose ends are O_CLOEXEC and above 2, so the dup2 onto 0-2 in
 * the child never overwrites one still to be copied. */
static int exec_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (p[i] <= 2) {
			int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);

			if (fd < 0) {
				close(p[0]);
				close(p[1]);
				return -1;
			}
			close(p[i]);
			p[i] = fd;
		}
	}
	return 0;
}

static int exec_spawn(const struct exec *e, int out, int err, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
		return rc;
	if ((rc = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	sigemptyset(&none);
	sigfillset(&all);
	/* stdin /dev/null, stdout and stderr the pipes, nothing else open. */
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, out, 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, err, 2);
	if (!rc)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (!rc)
		rc = posix_spawn_file_actions_addchdir_np(&fa, e->cwd);
	/* healthd's threads block signals and it ignores SIGPIPE: the
	 * command starts with an empty mask and default dispositions. */
	if (!rc)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&attr, &all);
	/* A group of its own, led by the child: killed whole. */
	if (!rc)
		rc = posix_spawnattr_setpgroup(&attr, 0);
	if (!rc)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
							     POSIX_SPAWN_SETSIGDEF |
							     POSIX_SPAWN_SETPGROUP);
	if (!rc)
		rc = posix_spawn(pid, e->program, &fa, &attr, e->argv, e->envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

/* Read what is there, up to EXEC_READ_BURST: bytes past the cap are
 * dropped; end of file (or an error) closes the stream. */
static void exec_read(struct exec_stream *s, char *scratch)
{
	size_t burst = 0;

	while (s->fd >= 0 && burst < EXEC_READ_BURST) {
		bool keep = s->len < s->cap;
		char *dst = keep ? s->buf + s->len : scratch;
		size_t room = keep ? s->cap - s->len : EXEC_SCRATCH;
		ssize_t n = read(s->fd, dst, room);

		if (n > 0) {
			if (keep)
				s->len += (size_t)n;
			s->total += (size_t)n;
			burst += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && errno == EAGAIN) {
			return;
		} else {
			close(s->fd);
			s->fd = -1;
		}
	}
}

/* The child has exited (a zombie, not reaped yet)? */
static bool exec_exited(pid_t pid)
{
	siginfo_t si = {0};

	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       si.si_pid == pid;
}

/* Reap the killed child, waiting at most EXEC_REAP_MS: one stuck in the
 * kernel is left to the sweep of core/reap.c. */
static bool exec_reap(const struct healthd_host *host, pid_t pid, int pidfd)
{
	int64_t until = host->now_ms() + EXEC_REAP_MS;

	for (;;) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return r == pid;
		if (host->now_ms() >= until)
			return false;
		if (pidfd >= 0) {
			struct pollfd p = {.fd = pidfd, .events = POLLIN};

			poll(&p, 1, 1);
		} else {
			nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
		}
	}
}

/* Nanoseconds until now_ms() reaches `ms` (its clock is CLOCK_MONOTONIC,
 * cut to whole ms), 0 if it has: a whole-ms poll() would wake up to 1 ms
 * past a deadline. */
static int64_t exec_until(int64_t ms)
{
	struct timespec t;
	int64_t left;

	clock_gettime(CLOCK_MONOTONIC, &t);
	left = ms * 1000000 - ((int64_t)t.tv_sec * 1000000000 + t.tv_nsec);
	return left > 0 ? left : 0;
}

/* --- performance data ----------------------------------------------------- */

struct exec_perf {
	const struct healthd_host *host;
	struct healthd_result *result;
	int recorded, skipped;
};

/* The length of the number that s[0..n) starts with
 * ([-+]digits[.digits][e[-+]digits], a digit somewhere), or 0. */
static size_t exec_number_len(const char *s, size_t n)
{
	size_t i = 0, digits = 0;

	if (i < n && (s[i] == '-' || s[i] == '+'))
		i++;
	for (; i < n && isdigit((unsigned char)s[i]); i++)
		digits++;
	if (i < n && s[i] == '.')
		for (i++; i < n && isdigit((unsigned char)s[i]); i++)
			digits++;
	if (!digits)
		return 0;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;

		if (j < n && (s[j] == '-' || s[j] == '+'))
			j++;
		if (j < n && isdigit((unsigned char)s[j])) {
			while (j < n && isdigit((unsigned char)s[j]))
				j++;
			i = j;
		}
	}
	return i;
}

/* The number s[0..n) starts with; *len its length.  -1 when there is none
 * or it is not finite. */
static int exec_number(const char *s, size_t n, double *out, size_t *len)
{
	char buf[64];
	size_t l = exec_number_len(s, n);
	double v;

	if (!l || l >= sizeof(buf))
		return -1;
	memcpy(buf, s, l);
	buf[l] = '\0';
	v = strtod(buf, NULL); /* healthd keeps the C locale: '.' */
	if (!isfinite(v))
		return -1;
	*out = v;
	*len = l;
	return 0;
}

/* A unit: up to EXEC_UOM_MAX bytes, not starting like a number, no
 * control characters ("s", "ms", "%", "B", "KB", "c", ...). */
static bool exec_uom_ok(const char *s, size_t n)
{
	if (n > EXEC_UOM_MAX || (n && strchr("+-.0123456789", s[0])))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F)
			return false;
	return true;
}

/* warn or crit: a plain number as a number, a range ("10:20", "~:5",
 * "@1:3", "5:") as its text. */
static void exec_perf_range(struct exec_perf *p, const char *key,
			    const char *s, size_t n)
{
	char text[EXEC_RANGE_MAX + 1];
	double v;
	size_t l;

	if (!n)
		return;
	if (exec_number(s, n, &v, &l) == 0 && l == n) {
		p->host->detail_num(p->result, key, v);
		return;
	}
	if (n > EXEC_RANGE_MAX)
		return;
	/* The field is not NUL-terminated: look at its n bytes only. */
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr("0123456789.+-eE~@:", s[i]))
			return; /* not a range: left out */
	memcpy(text, s, n);
	text[n] = '\0';
	p->host->detail_str(p->result, key, text);
}

/* min or max: a number, optionally followed by the unit. */
static void exec_perf_bound(struct exec_perf *p, const char *key,
			    const char *s, size_t n)
{
	double v;
	size_t l;

	if (n && exec_number(s, n, &v, &l) == 0 && exec_uom_ok(s + l, n - l))
		p->host->detail_num(p->result, key, v);
}

/* One metric: label (raw, unquoted) and its data "value[UOM];w;c;min;max". */
static void exec_perf_metric(struct exec_perf *p, const char *label,
			     size_t label_len, const char *data, size_t n)
{
	const char *field[5] = {0};
	size_t flen[5] = {0}, nf = 0;
	char name[EXEC_LABEL_MAX + 1], key[EXEC_LABEL_MAX + 32];
	char uom[EXEC_UOM_MAX * 3 + 1];
	double value;
	size_t l;

	for (size_t i = 0, start = 0; i <= n && nf < 5; i++) {
		if (i == n || data[i] == ';') {
			field[nf] = data + start;
			flen[nf++] = i - start;
			start = i + 1;
		}
	}
	/* "U": the value is unknown; anything that is not a number with a
	 * unit is malformed: both left out. */
	if (exec_number(field[0], flen[0], &value, &l) < 0 ||
	    !exec_uom_ok(field[0] + l, flen[0] - l) ||
	    !exec_clean(label, label_len, name, sizeof(name))) {
		p->skipped++;
		return;
	}
	if (p->recorded >= EXEC_PERF_MAX) {
		p->skipped++;
		return;
	}
	p->recorded++;
	snprintf(key, sizeof(key), "perfdata.%s", name);
	p->host->detail_num(p->result, key, value);
	if (flen[0] > l) {
		exec_clean(field[0] + l, flen[0] - l, uom, sizeof(uom));
		snprintf(key, sizeof(key), "perfdata.%s_uom", name);
		p->host->detail_str(p->result, key, uom);
	}
	static const char *const suffix[] = {NULL, "warn", "crit", "min", "max"};
	for (size_t f = 1; f < nf; f++) {
		snprintf(key, sizeof(key), "perfdata.%s_%s", name, suffix[f]);
		if (f <= 2)
			exec_perf_range(p, key, field[f], flen[f]);
		else
			exec_perf_bound(p, key, field[f], flen[f]);
	}
}

/*
 * Performance data s[0..n): space-separated 'label'=value[UOM];[warn];
 * [crit];[min];[max].  A label is quoted when it holds spaces, '=' or '
 * (written ''); an entry that does not parse is skipped up to the next
 * white space.
 */
static void exec_perfdata(struct exec_perf *p, const char *s, size_t n)
{
	char label[256];
	size_t i = 0;

	while (i < n) {
		size_t ll = 0, start;
		bool ok = true;

		while (i < n && exec_space(s[i]))
			i++;
		if (i >= n)
			break;
		if (s[i] == '\'') {
			bool closed = false;

			for (i++; i < n; i++) {
				if (s[i] == '\'' && i + 1 < n && s[i + 1] == '\'') {
					i++; /* '' is a quote */
				} else if (s[i] == '\'') {
					i++;
					closed = true;
					break;
				}
				if (ll < sizeof(label))
					label[ll++] = s[i];
			}
			if (!closed) {
				p->skipped++;
				return; /* the rest is inside the quote */
			}
			ok = i < n && s[i] == '=';
		} else {
			for (; i < n && s[i] != '=' && !exec_space(s[i]); i++)
				if (ll < sizeof(label))
					label[ll++] = s[i];
			ok = i < n && s[i] == '=';
		}
		if (!ok || !ll) {
			p->skipped++;
			while (i < n && !exec_space(s[i]))
				i++;
			continue;
		}
		start = ++i;
		while (i < n && !exec_space(s[i]))
			i++;
		exec_perf_metric(p, label, ll, s + start, i - start);
	}
}

/*
 * The output's message and performance data (Nagios 3 and later):
 *
 *   TEXT | PERFDATA
 *   LONG TEXT LINE
 *   LONG TEXT LINE | PERFDATA
 *   PERFDATA
 *
 * The message is the first line before its '|'; the performance data is
 * what follows that '|', and, from the first '|' of a later line, the rest
 * of that line and every line after it.
 */
static void exec_output(struct exec_perf *p, const char *out, size_t n,
			bool truncated, char *message, size_t msglen)
{
	const char *nl = memchr(out, '\n', n), *bar, *text;
	size_t first = nl ? (size_t)(nl - out) : n, tl, pn = n;

	bar = memchr(out, '|', first);
	tl = bar ? (size_t)(bar - out) : first;
	text = exec_trim(out, &tl);
	if (tl > EXEC_MESSAGE_MAX * 4)
		tl = EXEC_MESSAGE_MAX * 4; /* cleaned below to whole characters */
	exec_clean(text, tl, message, msglen);

	/* Cut at the cap, the last entry may be cut: parse up to the last
	 * white space. */
	if (truncated)
		while (pn && !exec_space(out[pn - 1]))
			pn--;
	if (bar && (size_t)(bar - out) < pn)
		exec_perfdata(p, bar + 1,
			      (first < pn ? first : pn) - (size_t)(bar + 1 - out));
	if (first + 1 < pn) {
		const char *rest = out + first + 1;
		const char *lbar = memchr(rest, '|', pn - first - 1);

		if (lbar)
			exec_perfdata(p, lbar + 1, (size_t)(out + pn - lbar - 1));
	}
}

/* --- the check ------------------------------------------------------------ */

/* The first line of stderr, cleaned, or "". */
static void exec_stderr_line(const struct exec_stream *s, char *line,
			     size_t linelen)
{
	const char *nl = memchr(s->buf, '\n', s->len);
	size_t n = nl ? (size_t)(nl - s->buf) : s->len;
	const char *t = exec_trim(s->buf, &n);

	exec_clean(t, n, line, linelen);
}

static void exec_report(const struct healthd_host *host,
			struct healthd_result *result, int wstatus,
			const char *text, const char *errline)
{
	char what[48];
	int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;

	if (code >= 0 && code <= 2) {
		enum healthd_status st = code == 0   ? HEALTHD_PASS
					 : code == 1 ? HEALTHD_WARN
						     : HEALTHD_FAIL;
		if (text[0])
			host->result(result, st, "%s", text);
		else if (errline[0])
			host->result(result, st, "exit status %d, no output; "
						 "stderr: %s", code, errline);
		else
			host->result(result, st, "exit status %d, no output",
				     code);
		return;
	}
	if (code == 3) {
		/* Plugins often say it themselves ("DISK UNKNOWN: ..."). */
		if (text[0])
			host->result(result, HEALTHD_FAIL, "%s%s",
				     strstr(text, "UNKNOWN") ? "" : "UNKNOWN: ",
				     text);
		else if (errline[0])
			host->result(result, HEALTHD_FAIL, "UNKNOWN: exit status "
							   "3, no output; stderr: %s",
				     errline);
		else
			host->result(result, HEALTHD_FAIL,
				     "UNKNOWN: exit status 3, no output");
		return;
	}
	if (code >= 0) {
		snprintf(what, sizeof(what), "exit status %d", code);
	} else {
		int sig = WTERMSIG(wstatus);
		const char *abbrev = sigabbrev_np(sig);

		if (abbrev)
			snprintf(what, sizeof(what), "killed by SIG%s%s", abbrev,
				 WCOREDUMP(wstatus) ? " (core dumped)" : "");
		else
			snprintf(what, sizeof(what), "killed by signal %d", sig);
	}
	if (text[0])
		host->result(result, HEALTHD_FAIL, "%s: %s", what, text);
	else if (errline[0])
		host->result(result, HEALTHD_FAIL, "%s, no output; stderr: %s",
			     what, errline);
	else
		host->result(result, HEALTHD_FAIL, "%s, no output", what);
}

static void exec_check(const struct healthd_host *host, void *instance,
		       int64_t deadline_ms, struct healthd_result *result)
{
	struct exec *e = instance;
	struct exec_stream out = {.fd = -1, .buf = e->out, .cap = EXEC_OUTPUT_CAP};
	struct exec_stream err = {.fd = -1, .buf = e->err, .cap = EXEC_STDERR_CAP};
	int po[2] = {-1, -1}, pe[2] = {-1, -1}, pidfd, wstatus = 0, rc;
	int64_t start = host->now_ms(), drain_until = 0;
	bool exited = false, reaped = true;
	pid_t pid;

	if (start >= deadline_ms) {
		host->result(result, HEALTHD_FAIL,
			     "timed out before the command started");
		return;
	}
	if (exec_pipe(po) < 0 || exec_pipe(pe) < 0) {
		rc = errno;
		for (int i = 0; i < 2; i++) {
			if (po[i] >= 0)
				close(po[i]);
			if (pe[i] >= 0)
				close(pe[i]);
		}
		host->result(result, HEALTHD_FAIL, "cannot make a pipe: %s",
			     strerror(rc));
		return;
	}
	rc = exec_spawn(e, po[1], pe[1], &pid);
	close(po[1]);
	close(pe[1]);
	if (rc != 0) {
		close(po[0]);
		close(pe[0]);
		host->result(result, HEALTHD_FAIL, "cannot run the program: %s",
			     strerror(rc));
		return;
	}
	out.fd = po[0];
	err.fd = pe[0];
	fcntl(out.fd, F_SETFL, O_NONBLOCK);
	fcntl(err.fd, F_SETFL, O_NONBLOCK);
	/* Its exit wakes poll(); without pidfds, poll in slices. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	for (;;) {
		struct pollfd pfd[3];
		nfds_t n = 0;
		int64_t now, wait;

		exec_read(&out, e->scratch);
		exec_read(&err, e->scratch);
		if (!exited && exec_exited(pid)) {
			/* Not reaped yet, so the group id is still ours:
			 * what the command left running goes with it. */
			pid_t r;

			kill(-pid, SIGKILL);
			do
				r = waitpid(pid, &wstatus, 0);
			while (r < 0 && errno == EINTR);
			if (r != pid) {
				/* Never happens: the sweep of core/reap.c
				 * waits 2 s for a zombie.  Be clear if it did. */
				host->result(result, HEALTHD_FAIL,
					     "the command's exit status was "
					     "lost (reaped elsewhere)");
				goto done;
			}
			exited = true;
			now = host->now_ms();
			drain_until = now + EXEC_DRAIN_MS < deadline_ms
					      ? now + EXEC_DRAIN_MS
					      : deadline_ms;
			continue; /* read what it wrote before exiting */
		}
		now = host->now_ms();
		if (exited && ((out.fd < 0 && err.fd < 0) || now >= drain_until))
			break;
		if (!exited && now >= deadline_ms) {
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL); /* in case it left its group */
			reaped = exec_reap(host, pid, pidfd);
			host->result(result, HEALTHD_FAIL,
				     "timed out after %lld ms; killed process group",
				     (long long)(deadline_ms - start));
			/* A loaded machine can take that long: healthd's
			 * sweep (core/reap.c) reaps it within seconds. */
			if (!reaped)
				host->log(e->check, HEALTHD_LOG_DEBUG,
					  "the command did not exit within %d ms "
					  "of SIGKILL; it is reaped later",
					  EXEC_REAP_MS);
			goto done;
		}
		if (out.fd >= 0)
			pfd[n++] = (struct pollfd){.fd = out.fd, .events = POLLIN};
		if (err.fd >= 0)
			pfd[n++] = (struct pollfd){.fd = err.fd, .events = POLLIN};
		if (!exited && pidfd >= 0)
			pfd[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		wait = exec_until(exited ? drain_until : deadline_ms);
		if (!exited && pidfd < 0 && wait > EXEC_SLICE_MS * 1000000LL)
			wait = EXEC_SLICE_MS * 1000000LL;
		ppoll(pfd, n,
		      &(struct timespec){.tv_sec = wait / 1000000000,
					 .tv_nsec = wait % 1000000000},
		      NULL);
	}

	char message[EXEC_MESSAGE_MAX + 1], errline[EXEC_MESSAGE_MAX + 1] = "";
	struct exec_perf perf = {.host = host, .result = result};
	bool truncated = out.total > out.len;

	exec_output(&perf, out.buf, out.len, truncated, message, sizeof(message));
	if (!message[0])
		exec_stderr_line(&err, errline, sizeof(errline));
	exec_report(host, result, wstatus, message, errline);
	if (WIFEXITED(wstatus))
		host->detail_num(result, "exit_status", WEXITSTATUS(wstatus));
	else if (WIFSIGNALED(wstatus) && sigabbrev_np(WTERMSIG(wstatus))) {
		char sig[32];

		snprintf(sig, sizeof(sig), "SIG%s", sigabbrev_np(WTERMSIG(wstatus)));
		host->detail_str(result, "signal", sig);
	}
	if (truncated) {
		host->detail_bool(result, "output_truncated", 1);
		host->detail_num(result, "output_bytes", (double)out.total);
	}
	if (perf.skipped)
		host->detail_num(result, "perfdata_skipped", perf.skipped);
done:
	if (out.fd >= 0)
		close(out.fd);
	if (err.fd >= 0)
		close(err.fd);
	if (pidfd >= 0)
		close(pidfd);
}

HEALTHD_PLUGIN_DEFINE(.name = "exec",
		      .description = "a program speaking the Nagios plugin API "
				     "(exit 0 pass, 1 warn, 2 fail, 3 unknown)",
		      .options = exec_options, .create = exec_create,
		      .check = exec_check, .destroy = exec_destroy,
		      .required = (const char *const[]){"command", NULL});
