/* isolate.c — plugin host processes, supervised (see isolate.h). */
#include "isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "frame.h"
#include "host.h"
#include "loader.h"
#include "log.h"
#include "plughost.h"
#include "reap.h"

extern char **environ;

/* Why the daemon ended a host, for /metrics and messages.  REASON_NONE:
 * it died on its own (a crash); REASON_CLOSED: it was no longer needed. */
enum reason {
	REASON_CRASH,
	REASON_TIMEOUT,
	REASON_MEMORY,
	REASON_PROTOCOL,
	REASON_N,
	REASON_NONE = REASON_N,
	REASON_CLOSED,
	REASON_STOP,
};
static const char *const reason_names[REASON_N] = {"crash", "timeout",
						    "memory", "protocol"};

/* A create or a run a worker waits for; on that worker's stack. */
struct pending {
	bool run;         /* else a create */
	uint64_t id;      /* the run's id, or the instance's for a create */
	const char *check;
	int64_t kill_at;  /* monotonic ms: past it, the host is ended */
	bool overdue, done;
	bool ok;          /* created, or a RESULT arrived */
	bool set;         /* the RESULT's: the plugin set a result */
	uint32_t status;
	char *text;       /* create()'s error, the message, or how the host died */
	char *details;    /* JSON text, or NULL */
	struct pending *next;
};

enum host_state { HOST_STARTING, HOST_READY, HOST_RETIRING };

struct phost {
	struct family *fam;
	pid_t pid;
	int sock, pidfd, out[2]; /* stdout, stderr: -1 once closed */
	enum host_state state;
	enum reason ended; /* REASON_NONE unless the daemon ended it */
	int64_t closing_since; /* monotonic ms: asked to exit, or 0 */
	int64_t rss_checked;   /* monotonic ms */
	int64_t started_at;    /* monotonic ms */
	bool sock_eof;         /* the host closed its end: nothing more to read */
	struct pending *pending;
	char line[2][ISOLATE_LINE_MAX + 1];
	size_t line_len[2];
	bool line_cut[2];
	int64_t window; /* output rate limit: this second's start */
	int lines[3];
	uint64_t suppressed[3];
	struct phost *next;
};

/* Everything about one plugin file (by path, device, inode and mtime: a
 * rebuilt file renamed over it is another family). */
struct family {
	char *path, *base;
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	/* From the latest HELLO: the daemon's copy of the plugin's table. */
	struct healthd_plugin desc;
	struct healthd_option_spec *specs;
	size_t n_specs;
	const char **required; /* names in specs, NULL-terminated */
	char *load_error;
	struct phost *current; /* where new work goes; NULL: none yet */
	bool want_host;        /* a worker waits for the supervisor to start one */
	int n_hosts;           /* alive, current or retiring */
	int crashes;           /* in a row */
	uint64_t start_deaths; /* hosts that died before they were ready */
	int64_t backoff_until;
	char last_death[128];
	int64_t max_rss;
	struct iso_instance *instances;
	size_t n_instances;
	struct family *next;
};

/* Host restarts by plugin name and reason, for /metrics: counters outlive
 * the families (a rebuilt plugin file is a new family of the same name). */
struct restarts {
	char plugin[64];
	uint64_t n[REASON_N];
};

struct iso_instance {
	uint64_t id;
	struct family *fam;
	const struct config_check *def;
	struct phost *host; /* where it exists, NULL: nowhere yet */
	char target[HOST_TARGET_MAX]; /* what create() said it talks to */
	struct iso_instance *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* pendings done, hosts ready or gone */
	pthread_t thread;
	bool started, stopping;
	int wake; /* eventfd: the supervisor has new work */
	struct family *families;
	struct phost *hosts;
	uint64_t next_id;
	struct restarts *restarts;
	size_t n_restarts;
} iso = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = -1};

static void wake_supervisor(void)
{
	uint64_t one = 1;

	if (write(iso.wake, &one, sizeof(one)) < 0)
		return; /* the counter is full: it is awake anyway */
}

/* The plugin's name: the loader makes the name it declares equal the
 * file's, and HELLO is checked for it. */
static const char *fam_name(const struct family *f)
{
	return f->base;
}

static void count_restart(const struct family *f, enum reason why)
{
	struct restarts *r = NULL;

	for (size_t i = 0; i < iso.n_restarts && !r; i++)
		if (!strcmp(iso.restarts[i].plugin, fam_name(f)))
			r = &iso.restarts[i];
	if (!r) {
		struct restarts *n = realloc(iso.restarts, (iso.n_restarts + 1) *
							   sizeof(*n));
		if (!n)
			return; /* a counter short: not worth failing for */
		iso.restarts = n;
		r = &n[iso.n_restarts++];
		memset(r, 0, sizeof(*r));
		snprintf(r->plugin, sizeof(r->plugin), "%s", fam_name(f));
	}
	r->n[why]++;
}

/* The daemon ends a host for `why`: the first reason given is the one
 * counted and told.  Lock held. */
static void host_end(struct phost *h, enum reason why)
{
	if (h->ended != REASON_NONE)
		return;
	h->ended = why;
	if (why < REASON_N)
		count_restart(h->fam, why);
}

/* --- hosts: start, end, reap ------------------------------------------------ */

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Start a host for `f`.  Supervisor thread (PR_SET_PDEATHSIG follows the
 * thread that forks), lock held. */
static void host_spawn(struct family *f)
{
	int sv[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	char argv0[96], env_path[PATH_MAX + 32], env_parent[64];
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	struct phost *h = calloc(1, sizeof(*h));
	size_t n_env = 0;
	char **envp;
	pid_t pid;
	int rc = ENOMEM;

	for (char **e = environ; *e; e++)
		n_env++;
	envp = calloc(n_env + 3, sizeof(*envp));
	if (!h || !envp)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		rc = errno;
		goto fail;
	}
	snprintf(argv0, sizeof(argv0), "healthd: plugin %s", f->base);
	snprintf(env_path, sizeof(env_path), PLUGHOST_ENV "=%s", f->path);
	snprintf(env_parent, sizeof(env_parent), PLUGHOST_ENV_PARENT "=%ld",
		 (long)getpid());
	n_env = 0;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, PLUGHOST_ENV, strlen(PLUGHOST_ENV)) != 0)
			envp[n_env++] = *e;
	envp[n_env++] = env_path;
	envp[n_env++] = env_parent;

	/* stdout, stderr, then the socket: in that order no dup2 overwrites
	 * a descriptor still to be copied.  Nothing else is inherited. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawn_file_actions_adddup2(&fa, sv[1], PLUGHOST_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, PLUGHOST_FD + 1);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setpgroup(&attr, 0); /* its own group: killed whole */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
						POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETPGROUP);
	char *argv[] = {argv0, NULL};
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc != 0)
		goto fail;
	close(sv[1]);
	close(out[1]);
	close(err[1]);
	free(envp);
	h->fam = f;
	h->pid = pid;
	h->sock = sv[0];
	h->out[0] = out[0];
	h->out[1] = err[0];
	h->pidfd = pidfd_open_(pid);
	if (h->pidfd < 0) {
		/* Its exit could not be seen: end it now rather than wait
		 * on it forever. */
		rc = errno;
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(sv[0]);
		close(out[0]);
		close(err[0]);
		sv[0] = out[0] = err[0] = -1;
		sv[1] = out[1] = err[1] = -1;
		envp = NULL;
		goto fail;
	}
	h->ended = REASON_NONE;
	h->started_at = clock_mono_ms();
	fcntl(h->out[0], F_SETFL, O_NONBLOCK);
	fcntl(h->out[1], F_SETFL, O_NONBLOCK);
	h->next = iso.hosts;
	iso.hosts = h;
	f->current = h;
	f->n_hosts++;
	log_debug("plugin %s: host started (pid %d)", f->base, (int)pid);
	return;
fail:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	free(envp);
	free(h);
	snprintf(f->last_death, sizeof(f->last_death),
		 "could not start a plugin host: %s", strerror(rc));
	f->start_deaths++;
	f->crashes++;
	f->backoff_until = clock_mono_ms() + 1000;
	log_error("plugin %s: %s", f->base, f->last_death);
	pthread_cond_broadcast(&iso.cond);
}

/* End a host: SIGKILL to its process group, so whatever the plugin
 * started goes too.  Lock held. */
static void host_kill(struct phost *h, enum reason why)
{
	host_end(h, why);
	kill(-h->pid, SIGKILL);
	kill(h->pid, SIGKILL); /* should it have left its group */
}

/* Ask a host to exit: it destroys its instances when its socket closes.
 * It is killed if it has not gone ISOLATE_CLOSE_MS later.  Lock held. */
static void host_close(struct phost *h, int64_t now)
{
	if (h->closing_since)
		return;
	h->closing_since = now;
	shutdown(h->sock, SHUT_WR);
}

/* No new work goes to it; it is ended once its runs are done.  Lock
 * held. */
static void host_retire(struct phost *h, enum reason why)
{
	host_end(h, why);
	if (h->state == HOST_RETIRING)
		return;
	h->state = HOST_RETIRING;
	if (h->fam->current == h)
		h->fam->current = NULL;
	pthread_cond_broadcast(&iso.cond);
}

static void pending_finish(struct pending *p, bool ok, const char *text)
{
	p->done = true;
	p->ok = ok;
	if (!p->text && text)
		p->text = strdup(text);
}

static void family_forget_specs(struct family *f);

/* A family no check uses and no host serves is forgotten.  Lock held. */
static void family_release(struct family *f)
{
	if (f->n_instances || f->n_hosts)
		return;
	for (struct family **p = &iso.families; *p; p = &(*p)->next) {
		if (*p == f) {
			*p = f->next;
			break;
		}
	}
	family_forget_specs(f);
	free(f->path);
	free(f->base);
	free(f->load_error);
	free(f);
}

/* The host exited: fail what it was doing, say how once, and start the
 * backoff if it crashed.  Lock held. */
static void host_gone(struct phost *h, const siginfo_t *si)
{
	struct family *f = h->fam;
	char how[96], msg[160];
	int failed = 0;

	if (si->si_code == CLD_EXITED)
		snprintf(how, sizeof(how), "exited with status %d", si->si_status);
	else
		snprintf(how, sizeof(how), "crashed: SIG%s",
			 sigabbrev_np(si->si_status) ? sigabbrev_np(si->si_status)
						     : "?");
	switch (h->ended) {
	case REASON_NONE:
		snprintf(msg, sizeof(msg), "plugin %s %s", fam_name(f), how);
		break;
	case REASON_TIMEOUT:
		snprintf(msg, sizeof(msg),
			 "plugin %s: host stopped, a run hung past its deadline",
			 fam_name(f));
		break;
	case REASON_PROTOCOL:
		snprintf(msg, sizeof(msg),
			 "plugin %s broke the host protocol; host stopped",
			 fam_name(f));
		break;
	default:
		snprintf(msg, sizeof(msg), "plugin %s: host stopped", fam_name(f));
		break;
	}
	while (h->pending) {
		struct pending *p = h->pending;

		h->pending = p->next;
		pending_finish(p, false, msg);
		failed++;
	}
	for (struct iso_instance *i = f->instances; i; i = i->next)
		if (i->host == h)
			i->host = NULL;
	if (f->current == h)
		f->current = NULL;
	f->n_hosts--;
	if (h->state == HOST_STARTING)
		f->start_deaths++;
	if (h->ended == REASON_NONE || h->state == HOST_STARTING) {
		if (h->ended == REASON_NONE)
			count_restart(f, REASON_CRASH);
		f->crashes++;
		snprintf(f->last_death, sizeof(f->last_death), "%s",
			 h->ended == REASON_NONE ? how : "hung");
		/* The first crash costs nothing more: the next run starts a
		 * fresh host.  Then 0.5 s, 1 s, 2 s ... up to 30 s. */
		if (f->crashes > 1) {
			int64_t wait = 500LL << (f->crashes - 2 < 6 ? f->crashes - 2 : 6);
			f->backoff_until = clock_mono_ms() + (wait < 30000 ? wait : 30000);
		}
		if (h->ended != REASON_NONE)
			; /* told when it was ended */
		else if (failed)
			log_warn("%s (host pid %d); %d run%s failed", msg,
				 (int)h->pid, failed, failed == 1 ? "" : "s");
		else
			log_warn("%s (host pid %d)", msg, (int)h->pid);
	} else if (h->ended == REASON_PROTOCOL || h->ended == REASON_TIMEOUT) {
		snprintf(f->last_death, sizeof(f->last_death), "%s",
			 h->ended == REASON_PROTOCOL ? "broke the host protocol"
						     : "hung");
	}
	close(h->sock);
	close(h->pidfd);
	for (int i = 0; i < 2; i++)
		if (h->out[i] >= 0)
			close(h->out[i]);
	for (struct phost **p = &iso.hosts; *p; p = &(*p)->next) {
		if (*p == h) {
			*p = h->next;
			break;
		}
	}
	free(h);
	family_release(f);
	pthread_cond_broadcast(&iso.cond);
}

/* --- output ------------------------------------------------------------------ */

/* Whatever a plugin prints may hold what its options hold. */
static void redact_family(const struct family *f, char *text)
{
	for (const struct iso_instance *i = f->instances; i; i = i->next) {
		struct healthd_check hc;

		host_check_init(&hc, i->def, NULL);
		host_redact(&hc, text);
	}
}

/* Within the rate limit: true and counted, else the line is suppressed
 * (and counted as such).  stream: 0 stdout, 1 stderr, 2 the plugin's log
 * lines.  Lock held. */
static bool output_allowed(struct phost *h, int stream, int64_t now)
{
	static const char *const names[] = {"stdout", "stderr", "log"};

	if (now - h->window >= 1000) {
		for (int s = 0; s < 3; s++) {
			if (h->suppressed[s])
				log_warn("plugin %s: %llu lines of %s suppressed",
					 fam_name(h->fam),
					 (unsigned long long)h->suppressed[s],
					 names[s]);
			h->lines[s] = 0;
			h->suppressed[s] = 0;
		}
		h->window = now;
	}
	if (h->lines[stream]++ < ISOLATE_LINES_PER_S)
		return true;
	h->suppressed[stream]++;
	return false;
}

static void output_line(struct phost *h, int stream, int64_t now)
{
	static const char *const names[] = {"stdout", "stderr"};

	h->line[stream][h->line_len[stream]] = '\0';
	if (output_allowed(h, stream, now)) {
		redact_family(h->fam, h->line[stream]);
		log_write(LOG_INFO, NULL, "plugin %s %s: %s%s", fam_name(h->fam),
			  names[stream], h->line[stream],
			  h->line_cut[stream] ? " [cut]" : "");
	}
	h->line_len[stream] = 0;
	h->line_cut[stream] = false;
}

/* Lines of a host's stdout or stderr into the log.  Lock held. */
static void host_output(struct phost *h, int stream)
{
	char buf[4096];
	int64_t now = clock_mono_ms();
	ssize_t n = -1;

	/* At most 64 KiB a turn: the rest waits for the next. */
	for (int reads = 0; reads < 16 &&
			    (n = read(h->out[stream], buf, sizeof(buf))) > 0;
	     reads++) {
		for (ssize_t i = 0; i < n; i++) {
			unsigned char ch = (unsigned char)buf[i];

			if (ch == '\n') {
				output_line(h, stream, now);
			} else if (h->line_len[stream] < ISOLATE_LINE_MAX) {
				h->line[stream][h->line_len[stream]++] =
					ch < 0x20 || ch == 0x7F ? ' ' : (char)ch;
			} else {
				h->line_cut[stream] = true;
			}
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		if (h->line_len[stream])
			output_line(h, stream, now);
		close(h->out[stream]);
		h->out[stream] = -1;
	}
}

/* --- frames ------------------------------------------------------------------ */

static int send_frame(struct phost *h, struct frame_out *f)
{
	size_t n = frame_end(f);

	if (!n)
		return -EMSGSIZE;
	/* Never blocks: a host that does not read its socket is broken. */
	if (send(h->sock, f->buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n)
		return -errno;
	return 0;
}

static struct pending *pending_take(struct phost *h, bool run, uint64_t id)
{
	for (struct pending **p = &h->pending; *p; p = &(*p)->next) {
		if ((*p)->run == run && (*p)->id == id) {
			struct pending *found = *p;

			*p = found->next;
			return found;
		}
	}
	return NULL;
}

static void family_forget_specs(struct family *f)
{
	for (size_t i = 0; i < f->n_specs; i++) {
		free((char *)f->specs[i].name);
		free((char *)f->specs[i].default_value);
		free((char *)f->specs[i].help);
	}
	free(f->specs);
	free(f->required);
	f->required = NULL;
	free((char *)f->desc.name);
	free((char *)f->desc.description);
	f->specs = NULL;
	f->n_specs = 0;
	memset(&f->desc, 0, sizeof(f->desc));
}

static int on_hello(struct phost *h, struct frame_in *in)
{
	struct family *f = h->fam;
	char *name = frame_get_str(in), *description = frame_get_str(in);
	uint32_t n = frame_get_u32(in);
	struct healthd_option_spec *specs;
	const char **required;
	size_t n_required = 0;

	if (in->failed || h->state != HOST_STARTING || !name || n > 1024 ||
	    strcmp(name, f->base) != 0 ||
	    !(specs = calloc(n + 1, sizeof(*specs)))) {
		free(name);
		free(description);
		return -1;
	}
	if (!(required = calloc(n + 1, sizeof(*required)))) {
		free(specs);
		free(name);
		free(description);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		specs[i].name = frame_get_str(in);
		specs[i].default_value = frame_get_str(in);
		specs[i].help = frame_get_str(in);
		if (frame_get_u32(in) && specs[i].name)
			required[n_required++] = specs[i].name;
	}
	family_forget_specs(f);
	f->specs = specs;
	f->n_specs = n;
	f->required = required;
	/* The daemon's copy speaks the daemon's version, whatever the
	 * plugin's: every field is filled in. */
	f->desc.abi_major = HEALTHD_ABI_MAJOR;
	f->desc.abi_minor = HEALTHD_ABI_MINOR;
	f->desc.size = sizeof(f->desc);
	f->desc.required = required;
	f->desc.name = name;
	f->desc.description = description;
	f->desc.options = specs;
	for (uint32_t i = 0; i < n; i++)
		if (!specs[i].name)
			return -1;
	if (frame_done(in) < 0)
		return -1;
	h->state = HOST_READY;
	return 0;
}

static int on_load_failed(struct phost *h, struct frame_in *in)
{
	char *why = frame_get_str(in);

	if (frame_done(in) < 0 || !why || h->state != HOST_STARTING) {
		free(why);
		return -1;
	}
	free(h->fam->load_error);
	h->fam->load_error = why;
	host_retire(h, REASON_CLOSED);
	return 0;
}

static int on_created(struct phost *h, struct frame_in *in)
{
	uint64_t id = frame_get_u64(in);
	uint32_t failed = frame_get_u32(in);
	char *why = frame_get_str(in);
	struct pending *p = frame_done(in) == 0 ? pending_take(h, false, id) : NULL;

	if (!p) {
		free(why);
		return -1;
	}
	p->text = why;
	pending_finish(p, failed == 0, NULL);
	return 0;
}

/* The host's resident size, or 0. */
static int64_t host_rss(const struct phost *h)
{
	char path[64];
	long long size, resident = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/statm", (int)h->pid);
	if (!(fp = fopen(path, "r")))
		return 0;
	if (fscanf(fp, "%lld %lld", &size, &resident) != 2)
		resident = 0;
	fclose(fp);
	return resident * sysconf(_SC_PAGESIZE);
}

static int on_result(struct phost *h, struct frame_in *in)
{
	uint64_t id = frame_get_u64(in);
	uint32_t set = frame_get_u32(in), status = frame_get_u32(in);
	char *message = frame_get_str(in), *details = frame_get_str(in);
	struct pending *p = frame_done(in) == 0 ? pending_take(h, true, id) : NULL;

	if (!p || status > HEALTHD_FAIL) {
		free(message);
		free(details);
		return -1;
	}
	p->set = set != 0;
	p->status = status;
	p->text = message;
	p->details = details;
	pending_finish(p, true, NULL);
	h->fam->crashes = 0; /* it works */

	/* At most once a second: reading /proc costs more than a run. */
	int64_t now = clock_mono_ms(), rss = 0;
	if (now - h->rss_checked >= 1000) {
		h->rss_checked = now;
		rss = host_rss(h);
	}
	if (h->fam->max_rss > 0 && rss > h->fam->max_rss &&
	    h->state == HOST_READY) {
		log_warn("plugin %s: host (pid %d) uses %lld MiB, over "
			 "isolation_max_rss %lld MiB: replacing it",
			 fam_name(h->fam), (int)h->pid, (long long)(rss >> 20),
			 (long long)(h->fam->max_rss >> 20));
		host_retire(h, REASON_MEMORY);
	}
	return 0;
}

static int on_log(struct phost *h, struct frame_in *in)
{
	uint64_t id = frame_get_u64(in);
	uint32_t level = frame_get_u32(in);
	char *text = frame_get_str(in);
	const char *check = NULL;

	if (frame_done(in) < 0 || !text || level > HEALTHD_LOG_ERROR) {
		free(text);
		return -1;
	}
	for (struct iso_instance *i = h->fam->instances; i; i = i->next)
		if (i->id == id)
			check = i->def->name;
	for (char *c = text; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
	if (output_allowed(h, 2, clock_mono_ms())) {
		redact_family(h->fam, text);
		log_write((enum log_level)level, check, "%s", text);
	}
	free(text);
	return 0;
}

/* Read what the host sent.  Lock held. */
static void host_read(struct phost *h, unsigned char *buf)
{
	/* Nothing it sent after a broken frame is believed; and a host that
	 * floods gets a turn like the others, not the supervisor. */
	for (int frames = 0; frames < ISOLATE_FRAMES_PER_TURN &&
			     h->ended != REASON_PROTOCOL; frames++) {
		ssize_t n = recv(h->sock, buf, FRAME_MAX, MSG_DONTWAIT | MSG_TRUNC);
		struct frame_in in;
		int rc = -1;

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			h->sock_eof = true; /* it closed: its exit tells the rest */
		if (n <= 0)
			return;
		if ((size_t)n <= FRAME_MAX && frame_parse(&in, buf, (size_t)n) == 0) {
			switch (in.type) {
			case FRAME_HELLO:
				rc = on_hello(h, &in);
				break;
			case FRAME_LOAD_FAILED:
				rc = on_load_failed(h, &in);
				break;
			case FRAME_CREATED:
				rc = on_created(h, &in);
				break;
			case FRAME_RESULT:
				rc = on_result(h, &in);
				break;
			case FRAME_LOG:
				rc = on_log(h, &in);
				break;
			default:
				break;
			}
		}
		if (rc < 0) {
			log_warn("plugin %s: host (pid %d) sent a malformed frame; stopping it",
				 fam_name(h->fam), (int)h->pid);
			host_retire(h, REASON_PROTOCOL);
			host_kill(h, REASON_PROTOCOL);
			return;
		}
		pthread_cond_broadcast(&iso.cond);
	}
}

/* --- the supervisor thread --------------------------------------------------- */

/* Deadlines: retire a host whose run hangs, fail a create past its time,
 * and end a retiring host once nothing in it is still on time.  Returns
 * the next moment to look again.  Lock held. */
static int64_t check_times(int64_t now)
{
	int64_t next = now + REAP_SWEEP_MS;

	for (struct phost *h = iso.hosts; h; h = h->next) {
		bool on_time = false;

		/* A plugin that never finishes loading (a constructor that
		 * hangs) is ended like a create() that hangs. */
		if (h->state == HOST_STARTING &&
		    now - h->started_at >= ISOLATE_CREATE_MS) {
			log_warn("plugin %s: not loaded within %d ms; stopping its host (pid %d)",
				 fam_name(h->fam), ISOLATE_CREATE_MS, (int)h->pid);
			host_retire(h, REASON_TIMEOUT);
			host_kill(h, REASON_TIMEOUT);
		} else if (h->state == HOST_STARTING &&
			   h->started_at + ISOLATE_CREATE_MS < next) {
			next = h->started_at + ISOLATE_CREATE_MS;
		}
		for (struct pending *p = h->pending; p; p = p->next) {
			if (now < p->kill_at) {
				on_time = true;
				if (p->kill_at < next)
					next = p->kill_at;
				continue;
			}
			if (p->overdue)
				continue;
			p->overdue = true;
			if (p->run)
				log_warn("plugin %s: a run of check %s is still in check() %d ms past its deadline; replacing its host (pid %d)",
					 fam_name(h->fam), p->check,
					 ISOLATE_KILL_AFTER_MS, (int)h->pid);
			else
				log_warn("plugin %s: create() for check %s did not return in time; replacing its host (pid %d)",
					 fam_name(h->fam), p->check, (int)h->pid);
			host_retire(h, REASON_TIMEOUT);
		}
		if (h->state != HOST_RETIRING || on_time)
			continue;
		/* Nothing in it is on time any more: what it still runs is
		 * overdue, whatever it was retired for. */
		if (h->pending || h->ended == REASON_TIMEOUT ||
		    h->ended == REASON_PROTOCOL)
			host_kill(h, REASON_TIMEOUT);
		else
			host_close(h, now);
		if (h->closing_since) {
			if (now - h->closing_since >= ISOLATE_CLOSE_MS)
				host_kill(h, h->ended);
			else if (h->closing_since + ISOLATE_CLOSE_MS < next)
				next = h->closing_since + ISOLATE_CLOSE_MS;
		}
	}
	return next;
}

static bool is_host(pid_t pid, void *ctx)
{
	(void)ctx;
	for (struct phost *h = iso.hosts; h; h = h->next)
		if (h->pid == pid)
			return true;
	return false;
}

static void *supervisor_main(void *arg)
{
	unsigned char *buf = malloc(FRAME_MAX);
	struct pollfd *pfd = NULL;
	struct phost **who = NULL;
	size_t cap = 0;

	(void)arg;
	pthread_mutex_lock(&iso.lock);
	while (!iso.stopping || iso.hosts) {
		int64_t now = clock_mono_ms();

		for (struct family *f = iso.families; f; f = f->next) {
			if (f->want_host && !f->current && !iso.stopping &&
			    now >= f->backoff_until && !f->load_error)
				host_spawn(f);
			f->want_host = false;
		}
		int64_t next = check_times(now);
		reap_sweep(is_host, NULL);

		size_t n = 1;
		for (struct phost *h = iso.hosts; h; h = h->next)
			n += 4;
		if (n > cap) {
			struct pollfd *np = realloc(pfd, n * sizeof(*pfd));
			struct phost **nw = np ? realloc(who, n * sizeof(*who)) : NULL;
			if (np)
				pfd = np;
			if (nw)
				who = nw;
			if (!np || !nw) {
				pthread_mutex_unlock(&iso.lock);
				usleep(100000);
				pthread_mutex_lock(&iso.lock);
				continue;
			}
			cap = n;
		}
		n = 0;
		pfd[n] = (struct pollfd){.fd = iso.wake, .events = POLLIN};
		who[n++] = NULL;
		for (struct phost *h = iso.hosts; h; h = h->next) {
			int fds[4] = {h->pidfd, h->sock_eof ? -1 : h->sock,
				      h->out[0], h->out[1]};
			for (int i = 0; i < 4; i++) {
				pfd[n] = (struct pollfd){.fd = fds[i], .events = POLLIN};
				who[n++] = h;
			}
		}
		pthread_mutex_unlock(&iso.lock);
		poll(pfd, n, (int)(next > now ? next - now : 0));
		pthread_mutex_lock(&iso.lock);

		if (pfd[0].revents) {
			uint64_t v;
			if (read(iso.wake, &v, sizeof(v)) < 0)
				v = 0;
		}
		/* Hosts only leave the list here, so `who` is still valid;
		 * each host's four slots are in order: pidfd last to act. */
		for (size_t i = 1; i < n; i += 4) {
			struct phost *h = who[i];

			if (pfd[i + 1].revents & POLLIN)
				host_read(h, buf);
			for (int s = 0; s < 2; s++)
				if (pfd[i + 2 + s].revents && h->out[s] >= 0)
					host_output(h, s);
			if (pfd[i].revents & POLLIN) {
				siginfo_t si = {0};

				/* What the plugin started goes with it; its
				 * group cannot be reused before the reaping. */
				kill(-h->pid, SIGKILL);
				if (waitid((idtype_t)P_PIDFD, (id_t)h->pidfd, &si,
					   WEXITED | WNOHANG) == 0 && si.si_pid) {
					for (int s = 0; s < 2; s++)
						if (h->out[s] >= 0)
							host_output(h, s);
					host_gone(h, &si);
				}
			}
		}
	}
	pthread_mutex_unlock(&iso.lock);
	free(pfd);
	free(who);
	free(buf);
	return NULL;
}

/* --- the workers' side ------------------------------------------------------- */

/* A host of `f` ready for work, started if need be, by `until`.  NULL with
 * the reason in why.  Lock held. */
static struct phost *host_for(struct family *f, int64_t until, char *why,
			      size_t len)
{
	uint64_t start_deaths = f->start_deaths;

	for (;;) {
		int64_t now = clock_mono_ms();
		struct phost *h = f->current;

		if (h && h->state == HOST_READY)
			return h;
		if (f->load_error) {
			snprintf(why, len, "%s", f->load_error);
			return NULL;
		}
		if (f->start_deaths != start_deaths) {
			snprintf(why, len, "plugin %s %s while loading",
				 fam_name(f), f->last_death);
			return NULL;
		}
		if (!h && now < f->backoff_until) {
			snprintf(why, len,
				 "plugin %s %s %d times in a row; next try in %.1f s",
				 fam_name(f), f->last_death, f->crashes,
				 (double)(f->backoff_until - now) / 1000.0);
			return NULL;
		}
		if (now >= until || iso.stopping) {
			snprintf(why, len, "plugin %s: its host did not start in time",
				 fam_name(f));
			return NULL;
		}
		if (!h) {
			f->want_host = true;
			wake_supervisor();
		}
		struct timespec ts = clock_timespec(until);
		pthread_cond_timedwait(&iso.cond, &iso.lock, &ts);
	}
}

/* Send `f` as the start of `p` and wait for the answer.  Lock held. */
static void exchange(struct phost *h, struct frame_out *f, struct pending *p)
{
	int rc = send_frame(h, f);

	if (rc == -EMSGSIZE) {
		pending_finish(p, false,
			       "options too large for a plugin host (isolation: inline takes them)");
		return;
	}
	if (rc == -EAGAIN || rc == -EWOULDBLOCK) {
		/* Its socket is full: it does not read what it is sent. */
		pending_finish(p, false, "plugin host not answering");
		host_retire(h, REASON_PROTOCOL);
		return;
	}
	if (rc < 0) {
		/* It is exiting: its exit says why. */
		pending_finish(p, false, "plugin host ended");
		return;
	}
	p->next = h->pending;
	h->pending = p;
	while (!p->done)
		pthread_cond_wait(&iso.cond, &iso.lock);
}

/* Make `inst` in `h` within `limit` ms.  Returns 0, or -1 with why.
 * Lock held. */
static int create_in(struct phost *h, struct iso_instance *inst,
		     int64_t limit, char *why, size_t len)
{
	struct frame_out fo, *f = &fo;
	const struct config_check *cc = inst->def;
	struct pending p = {.run = false, .id = inst->id,
			    .kill_at = clock_mono_ms() + limit, .check = cc->name};

	frame_begin(f, FRAME_CREATE);
	frame_u64(f, inst->id);
	frame_str(f, cc->name);
	frame_u32(f, (uint32_t)cc->n_options);
	for (size_t i = 0; i < cc->n_options; i++) {
		const struct config_option *o = &cc->options[i];

		frame_str(f, o->key);
		frame_str(f, o->value);
		frame_u32(f, (uint32_t)o->n_secrets);
		for (size_t j = 0; j < o->n_secrets; j++)
			frame_str(f, o->secrets[j]);
	}
	exchange(h, f, &p);
	frame_clear(f); /* wiped: it held the options */
	if (p.overdue)
		snprintf(why, len, "plugin %s: create() did not return within %lld ms",
			 fam_name(inst->fam), (long long)limit);
	else if (!p.ok)
		snprintf(why, len, "%s", p.text && *p.text ? p.text
					 : "plugin refused its options");
	/* Made again in a new host, an instance says the same: its first
	 * word stands (the scheduler reads it unlocked). */
	else if (!inst->target[0])
		snprintf(inst->target, sizeof(inst->target), "%s",
			 p.text ? p.text : "");
	free(p.text);
	if (!p.ok)
		return -1;
	inst->host = h;
	return 0;
}

int isolate_create(const char *file, const struct config_check *cc,
		   const struct healthd_check *handle, char *const *dirs,
		   size_t n_dirs, struct iso_instance **out, char *err,
		   size_t errlen)
{
	char path[PATH_MAX], real[PATH_MAX], why[1024];
	struct iso_instance *inst = NULL;
	struct family *f;
	struct stat st;
	char *base = NULL;
	int rc;

	*out = NULL;
	rc = loader_locate(cc->plugin, dirs, n_dirs, path, real, &base, why,
			   sizeof(why));
	if (rc == 0 && stat(real, &st) < 0) {
		rc = -errno;
		snprintf(why, sizeof(why), "%.900s: %s", real, strerror(errno));
	}
	if (rc < 0)
		goto fail;

	pthread_mutex_lock(&iso.lock);
	for (f = iso.families; f; f = f->next)
		if (!strcmp(f->path, real) && f->dev == st.st_dev &&
		    f->ino == st.st_ino && f->mtime.tv_sec == st.st_mtim.tv_sec &&
		    f->mtime.tv_nsec == st.st_mtim.tv_nsec)
			break;
	if (!f && (f = calloc(1, sizeof(*f)))) {
		f->path = strdup(real);
		f->base = base;
		base = NULL;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->mtime = st.st_mtim;
		f->next = iso.families;
		iso.families = f;
	}
	if (f && f->load_error && !f->current) {
		/* A load that failed is tried again: what it missed (a
		 * library) may be there now. */
		free(f->load_error);
		f->load_error = NULL;
	}
	if (!f || !f->path || !(inst = calloc(1, sizeof(*inst)))) {
		pthread_mutex_unlock(&iso.lock);
		snprintf(why, sizeof(why), "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	inst->id = ++iso.next_id;
	inst->fam = f;
	inst->def = cc;
	inst->next = f->instances;
	f->instances = inst;
	f->n_instances++;
	if (cc->max_rss > f->max_rss)
		f->max_rss = cc->max_rss;

	int64_t until = clock_mono_ms() + ISOLATE_CREATE_MS;
	struct phost *h = host_for(f, until, why, sizeof(why));
	if (!h) {
		rc = -ENOEXEC;
	} else if ((rc = host_check_options(file, cc, &f->desc, err, errlen)) < 0) {
		pthread_mutex_unlock(&iso.lock);
		isolate_destroy(inst);
		free(base);
		return rc;
	} else if (create_in(h, inst, ISOLATE_CREATE_MS, why, sizeof(why)) < 0) {
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&iso.lock);
	if (rc < 0) {
		isolate_destroy(inst);
		goto fail;
	}
	*out = inst;
	free(base);
	return 0;
fail:
	free(base);
	host_redact(handle, why);
	snprintf(err, errlen, "%s:%d:%d: check \"%s\": %s", file, cc->line,
		 cc->col, cc->name, why);
	return rc < 0 ? rc : -EINVAL;
}

const char *isolate_target(const struct iso_instance *inst)
{
	return inst->target;
}

const char *isolate_plugin_name(const struct iso_instance *inst)
{
	return fam_name(inst->fam);
}

bool isolate_current(const struct iso_instance *inst, const char *name,
		     char *const *dirs, size_t n_dirs)
{
	char path[PATH_MAX], real[PATH_MAX], why[256];
	char *base = NULL;
	struct stat st;
	const struct family *f = inst->fam;
	bool same = loader_locate(name, dirs, n_dirs, path, real, &base, why,
				  sizeof(why)) == 0 &&
		    stat(real, &st) == 0 && !strcmp(real, f->path) &&
		    st.st_dev == f->dev && st.st_ino == f->ino &&
		    st.st_mtim.tv_sec == f->mtime.tv_sec &&
		    st.st_mtim.tv_nsec == f->mtime.tv_nsec;

	free(base);
	return same;
}

/* json-c reads NaN and Infinity, which JSON has not: they become null,
 * as host->detail_num() makes them. */
static void finite_only(json_object *o)
{
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, v) {
			if (json_object_is_type(v, json_type_double) &&
			    !isfinite(json_object_get_double(v)))
				json_object_object_add(o, key, NULL);
			else
				finite_only(v);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			json_object *v = json_object_array_get_idx(o, i);

			if (json_object_is_type(v, json_type_double) &&
			    !isfinite(json_object_get_double(v)))
				json_object_array_put_idx(o, i, NULL);
			else
				finite_only(v);
		}
	}
}

json_object *isolate_details(const char *text)
{
	json_object *d = json_tokener_parse(text);

	if (!d || !json_object_is_type(d, json_type_object)) {
		json_object_put(d);
		return NULL;
	}
	finite_only(d);
	return d;
}

void isolate_run(struct iso_instance *inst, int64_t deadline,
		 struct healthd_result *result)
{
	struct family *f = inst->fam;
	struct pending p = {.run = true, .kill_at = deadline + ISOLATE_KILL_AFTER_MS,
			    .check = inst->def->name};
	struct frame_out fr;
	char why[512];

	pthread_mutex_lock(&iso.lock);
	struct phost *h = host_for(f, deadline, why, sizeof(why));
	if (h && inst->host != h && clock_mono_ms() >= deadline) {
		snprintf(why, sizeof(why), "timed out waiting for a plugin host");
		h = NULL;
	}
	/* In a fresh host the instance is made again, with create()'s own
	 * time: a slow create() must not look like a hung one. */
	if (h && inst->host != h &&
	    create_in(h, inst, ISOLATE_CREATE_MS, why, sizeof(why)) < 0)
		h = NULL;
	if (h) {
		p.id = ++iso.next_id;
		frame_begin(&fr, FRAME_RUN);
		frame_u64(&fr, p.id);
		frame_u64(&fr, inst->id);
		frame_i64(&fr, deadline);
		exchange(h, &fr, &p);
		frame_clear(&fr);
	}
	pthread_mutex_unlock(&iso.lock);

	if (!h) {
		host_api.result(result, HEALTHD_FAIL, "%s", why);
	} else if (!p.ok) {
		host_api.result(result, HEALTHD_FAIL, "%s",
				p.text ? p.text : "plugin host failed");
	} else if (p.set) {
		host_api.result(result, (enum healthd_status)p.status, "%s",
				p.text ? p.text : "");
		result->details = p.details ? isolate_details(p.details) : NULL;
	}
	free(p.text);
	free(p.details);
}

void isolate_destroy(struct iso_instance *inst)
{
	struct family *f;

	if (!inst)
		return;
	f = inst->fam;
	pthread_mutex_lock(&iso.lock);
	if (inst->host) {
		struct frame_out fr;

		frame_begin(&fr, FRAME_DESTROY);
		frame_u64(&fr, inst->id);
		send_frame(inst->host, &fr);
		frame_clear(&fr);
	}
	for (struct iso_instance **i = &f->instances; *i; i = &(*i)->next) {
		if (*i == inst) {
			*i = inst->next;
			break;
		}
	}
	/* A plugin no check uses any more: its host exits. */
	if (--f->n_instances == 0 && f->current)
		host_retire(f->current, REASON_CLOSED);
	family_release(f);
	wake_supervisor();
	pthread_mutex_unlock(&iso.lock);
	free(inst);
}

/* --- start, stop, metrics ----------------------------------------------------- */

int isolate_start(void)
{
	pthread_condattr_t ca;
	int rc;

	if (iso.started)
		return 0;
	iso.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (iso.wake < 0)
		return -errno;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&iso.cond, &ca);
	pthread_condattr_destroy(&ca);
	iso.stopping = false;
	rc = pthread_create(&iso.thread, NULL, supervisor_main, NULL);
	if (rc) {
		close(iso.wake);
		iso.wake = -1;
		return -rc;
	}
	pthread_setname_np(iso.thread, "plugin-hosts");
	iso.started = true;
	return 0;
}

void isolate_kill_running(void)
{
	pthread_mutex_lock(&iso.lock);
	for (struct phost *h = iso.hosts; h; h = h->next)
		if (h->pending)
			host_kill(h, REASON_STOP);
	pthread_mutex_unlock(&iso.lock);
}

void isolate_stop(void)
{
	if (!iso.started)
		return;
	pthread_mutex_lock(&iso.lock);
	iso.stopping = true;
	/* Asked nicely first: a host exits when its socket closes. */
	for (struct phost *h = iso.hosts; h; h = h->next) {
		if (h->ended == REASON_NONE)
			h->ended = REASON_STOP;
		host_close(h, clock_mono_ms());
	}
	wake_supervisor();
	int64_t until = clock_mono_ms() + 1000;
	while (iso.hosts && clock_mono_ms() < until) {
		struct timespec ts = clock_timespec(until);
		pthread_cond_timedwait(&iso.cond, &iso.lock, &ts);
	}
	for (struct phost *h = iso.hosts; h; h = h->next)
		host_kill(h, REASON_STOP);
	pthread_mutex_unlock(&iso.lock);
	wake_supervisor();
	pthread_join(iso.thread, NULL);
	iso.started = false;
	while (iso.families) {
		struct family *f = iso.families;

		iso.families = f->next;
		family_forget_specs(f);
		free(f->path);
		free(f->base);
		free(f->load_error);
		free(f);
	}
	free(iso.restarts);
	iso.restarts = NULL;
	iso.n_restarts = 0;
	close(iso.wake);
	iso.wake = -1;
	pthread_cond_destroy(&iso.cond);
}

size_t isolate_metrics(struct isolate_restarts *out, size_t max,
		       int *hosts_running)
{
	size_t n = 0;

	*hosts_running = 0;
	pthread_mutex_lock(&iso.lock);
	for (struct phost *h = iso.hosts; h; h = h->next)
		(*hosts_running)++;
	for (size_t i = 0; i < iso.n_restarts; i++) {
		for (int r = 0; r < REASON_N && n < max; r++) {
			if (!iso.restarts[i].n[r])
				continue;
			snprintf(out[n].plugin, sizeof(out[n].plugin), "%s",
				 iso.restarts[i].plugin);
			out[n].reason = reason_names[r];
			out[n].count = iso.restarts[i].n[r];
			n++;
		}
	}
	pthread_mutex_unlock(&iso.lock);
	return n;
}
