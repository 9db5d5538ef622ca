/* control.c — the daemon's end of `healthd ctl`: the socket, its bounds,
 * and the commands. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "clock.h"
#include "control.h"
#include "daemon.h"
#include "log.h"
#include "render.h"

struct client {
	struct control *ctl;
	pthread_t thread;
	int fd;    /* -1 once its thread closed it */
	bool busy; /* a thread serves it */
	bool done; /* that thread is over: to be joined */
};

struct control {
	char *path;
	dev_t dev; /* of the socket file: removed only if still ours */
	ino_t ino;
	int fd, stop_fd;
	pthread_t thread;
	struct daemon *d;
	uid_t uid;
	pthread_mutex_t lock; /* the clients' fd, busy and done */
	struct client clients[CONTROL_CLIENTS_MAX];
};

/* --- the commands ------------------------------------------------------------ */

/* Each fills `answer` and returns 0, or returns -1 with why in err. */
typedef int (*command_fn)(struct daemon *d, json_object *req,
			  json_object *answer, char *err, size_t errlen);

static void add(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

/* A body a renderer made, as a JSON value of the answer. */
static json_object *parsed(char *text)
{
	json_object *o = text ? json_tokener_parse(text) : NULL;

	free(text);
	return o;
}

static int oom(char *err, size_t errlen)
{
	snprintf(err, errlen, "out of memory");
	return -1;
}

static int cmd_status(struct daemon *d, json_object *req, json_object *answer,
		      char *err, size_t errlen)
{
	struct health_view v;
	char *table = NULL;
	size_t len = 0;
	int code;

	(void)req;
	if (daemon_control_view(d, &v) < 0)
		return oom(err, errlen);
	FILE *f = open_memstream(&table, &len);
	if (f) {
		daemon_print_table(f, &v);
		if (fclose(f) != 0) {
			free(table);
			table = NULL;
		}
	}
	add(answer, "verdict", json_object_new_string(
				       state_verdict_name(render_verdict(&v, NULL))));
	add(answer, "table", table ? json_object_new_string(table) : NULL);
	add(answer, "health",
	    parsed(render_health(&v, NULL, false, RENDER_NATIVE, &code)));
	free(table);
	render_view_clear(&v);
	return 0;
}

static int cmd_run(struct daemon *d, json_object *req, json_object *answer,
		   char *err, size_t errlen)
{
	const char *name = json_object_get_string(
		json_object_object_get(req, "check"));
	struct health_view v;
	int code, rc = daemon_control_run(d, name);

	if (rc == -ENOENT)
		snprintf(err, errlen, "unknown check \"%s\"", name);
	else if (rc == -EAGAIN)
		snprintf(err, errlen, "check \"%s\" is blocked by a dependency: "
				      "not run", name);
	else if (rc == -ECANCELED)
		snprintf(err, errlen, "check \"%s\" was replaced by a reload, or "
				      "healthd is stopping", name);
	else if (rc < 0)
		snprintf(err, errlen, "check \"%s\" gave no result in time", name);
	if (rc < 0)
		return -1;
	if (daemon_control_view(d, &v) < 0)
		return oom(err, errlen);
	for (size_t i = 0; i < v.n_checks; i++)
		if (!strcmp(v.checks[i].name, name))
			add(answer, "check",
			    parsed(render_check(&v.checks[i], false, &code)));
	render_view_clear(&v);
	return 0;
}

/* drain's reason goes to bodies and the log: one printable line. */
static bool reason_ok(const char *s)
{
	if (strlen(s) > CONTROL_REASON_MAX)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int cmd_drain(struct daemon *d, json_object *req, json_object *answer,
		     char *err, size_t errlen)
{
	json_object *r = json_object_object_get(req, "reason");
	json_object *f = json_object_object_get(req, "for_ms");
	const char *reason = r ? json_object_get_string(r) : "";
	int64_t for_ms = f ? json_object_get_int64(f) : 0;

	if (!reason_ok(reason)) {
		snprintf(err, errlen, "reason: at most %d bytes on one line, "
				      "without control characters",
			 CONTROL_REASON_MAX);
		return -1;
	}
	if (f && (for_ms < 1 || for_ms > CONTROL_FOR_MAX_MS)) {
		snprintf(err, errlen, "for_ms: from 1 to %lld",
			 (long long)CONTROL_FOR_MAX_MS);
		return -1;
	}
	int was = daemon_control_maintenance(d, true, reason, for_ms);
	if (was < 0)
		return oom(err, errlen);
	add(answer, "was_drained", json_object_new_boolean(was));
	return 0;
}

static int cmd_undrain(struct daemon *d, json_object *req,
		       json_object *answer, char *err, size_t errlen)
{
	(void)req;
	(void)err;
	(void)errlen;
	add(answer, "was_drained", json_object_new_boolean(
					   daemon_control_maintenance(d, false, "", 0)));
	return 0;
}

static int cmd_reload(struct daemon *d, json_object *req, json_object *answer,
		      char *err, size_t errlen)
{
	uint64_t generation;
	int rc = daemon_control_reload(d, &generation, err, errlen);

	(void)req;
	add(answer, "generation", json_object_new_uint64(generation));
	return rc;
}

/* A command, and the keys its request may carry besides v and cmd, with
 * their types. */
static const struct command {
	const char *name;
	command_fn fn;
	struct arg {
		const char *key;
		json_type type;
		bool required;
	} args[2];
} commands[] = {
	{"status", cmd_status, {{NULL, json_type_null, false}}},
	{"run", cmd_run, {{"check", json_type_string, true}}},
	{"drain", cmd_drain,
	 {{"reason", json_type_string, false}, {"for_ms", json_type_int, false}}},
	{"undrain", cmd_undrain, {{NULL, json_type_null, false}}},
	{"reload", cmd_reload, {{NULL, json_type_null, false}}},
};

static const struct arg *arg_find(const struct command *cmd, const char *key)
{
	for (size_t i = 0; i < 2 && cmd->args[i].key; i++)
		if (!strcmp(cmd->args[i].key, key))
			return &cmd->args[i];
	return NULL;
}

/* The command a request asks for, its keys checked; NULL with why. */
static const struct command *request_check(json_object *req, char *err,
					   size_t errlen)
{
	json_object *v = json_object_object_get(req, "v");
	json_object *name = json_object_object_get(req, "cmd");
	const struct command *cmd = NULL;

	if (!v || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) != CONTROL_VERSION) {
		snprintf(err, errlen, "\"v\": this healthd speaks protocol version %d",
			 CONTROL_VERSION);
		return NULL;
	}
	for (size_t i = 0; name && i < sizeof(commands) / sizeof(*commands); i++)
		if (json_object_is_type(name, json_type_string) &&
		    !strcmp(json_object_get_string(name), commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		snprintf(err, errlen, "\"cmd\": expected status, run, drain, "
				      "undrain or reload");
		return NULL;
	}
	json_object_object_foreach(req, key, val) {
		const struct arg *a = arg_find(cmd, key);

		if (!strcmp(key, "v") || !strcmp(key, "cmd"))
			continue;
		if (!a) {
			snprintf(err, errlen, "unknown key \"%s\" for %s", key,
				 cmd->name);
			return NULL;
		}
		if (!json_object_is_type(val, a->type) ||
		    (a->type == json_type_string &&
		     strlen(json_object_get_string(val)) !=
			     (size_t)json_object_get_string_len(val))) {
			snprintf(err, errlen, "\"%s\": expected %s", key,
				 json_type_to_name(a->type));
			return NULL;
		}
	}
	for (size_t i = 0; i < 2 && cmd->args[i].key; i++)
		if (cmd->args[i].required &&
		    !json_object_object_get(req, cmd->args[i].key)) {
			snprintf(err, errlen, "\"%s\": required for %s",
				 cmd->args[i].key, cmd->name);
			return NULL;
		}
	return cmd;
}

/* One request's text parsed and checked: its command, or NULL with why in
 * err.  *req is the parsed request, or NULL (json_object_put() it). */
static const struct command *request_parse(const char *text, size_t len,
					   json_object **req, char *err,
					   size_t errlen)
{
	json_tokener *tok = json_tokener_new();

	*req = NULL;
	if (!tok) {
		oom(err, errlen);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
					    JSON_TOKENER_VALIDATE_UTF8);
	*req = json_tokener_parse_ex(tok, text, (int)len);
	bool whole = *req && json_tokener_get_parse_end(tok) == len &&
		     json_object_is_type(*req, json_type_object);
	json_tokener_free(tok);
	if (!whole) {
		snprintf(err, errlen, "bad request: expected one JSON object, "
				      "such as {\"v\":%d,\"cmd\":\"status\"}",
			 CONTROL_VERSION);
		return NULL;
	}
	return request_check(*req, err, errlen);
}

/* One request's text to its answer; NULL when out of memory. */
static json_object *answer_for(struct daemon *d, const char *text, size_t len)
{
	json_object *answer = json_object_new_object();
	json_object *req;
	char err[1024] = "";
	int rc = -1;

	if (!answer)
		return NULL;
	const struct command *cmd = request_parse(text, len, &req, err,
						  sizeof(err));
	add(answer, "v", json_object_new_int(CONTROL_VERSION));
	if (cmd)
		rc = cmd->fn(d, req, answer, err, sizeof(err));
	add(answer, "ok", json_object_new_boolean(rc == 0));
	if (rc < 0)
		add(answer, "error", json_object_new_string(err));
	json_object_put(req);
	return answer;
}

/* --- the connections ----------------------------------------------------------- */

/* Wait for `events` on fd until `deadline` (monotonic ms); false when
 * it passed. */
static bool io_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int64_t left = deadline - clock_mono_ms();

	return left > 0 && poll(&p, 1, (int)left) > 0;
}

/* The request: bytes up to a newline or the end of what the client sends,
 * within CONTROL_READ_MS.  Returns its length, or -1 with why in err. */
static ssize_t request_read(int fd, char *buf, char *err, size_t errlen)
{
	int64_t deadline = clock_mono_ms() + CONTROL_READ_MS;
	size_t n = 0;

	for (;;) {
		if (!io_wait(fd, POLLIN, deadline)) {
			snprintf(err, errlen, "no request within %d ms",
				 CONTROL_READ_MS);
			return -1;
		}
		/* One byte more than allowed tells "too large" apart. */
		ssize_t r = recv(fd, buf + n, CONTROL_REQUEST_MAX + 1 - n,
				 MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r < 0) {
			snprintf(err, errlen, "reading the request: %s",
				 strerror(errno));
			return -1;
		}
		n += (size_t)r;
		if (n > CONTROL_REQUEST_MAX) {
			snprintf(err, errlen, "request too large (at most %d bytes)",
				 CONTROL_REQUEST_MAX);
			return -1;
		}
		if (r == 0 || memchr(buf + n - (size_t)r, '\n', (size_t)r))
			return (ssize_t)n;
	}
}

/* The answer and a newline, within CONTROL_WRITE_MS; a client gone or
 * too slow to read just misses it. */
static void answer_send(int fd, json_object *answer)
{
	size_t len, off = 0;
	const char *text = json_object_to_json_string_length(
		answer, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
		&len);
	int64_t deadline = clock_mono_ms() + CONTROL_WRITE_MS;

	while (text && off <= len && io_wait(fd, POLLOUT, deadline)) {
		ssize_t w = off < len ? send(fd, text + off, len - off,
					     MSG_NOSIGNAL | MSG_DONTWAIT)
				      : send(fd, "\n", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno != EINTR && errno != EAGAIN)
			return;
		if (w > 0)
			off += off < len ? (size_t)w : 1;
	}
}

/* An error answered without a request read. */
static void refuse(int fd, const char *why)
{
	json_object *answer = json_object_new_object();

	add(answer, "v", json_object_new_int(CONTROL_VERSION));
	add(answer, "ok", json_object_new_boolean(false));
	add(answer, "error", json_object_new_string(why));
	answer_send(fd, answer);
	json_object_put(answer);
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	char buf[CONTROL_REQUEST_MAX + 1], err[128];
	ssize_t n = request_read(cl->fd, buf, err, sizeof(err));

	if (n < 0) {
		refuse(cl->fd, err);
	} else {
		json_object *answer = answer_for(cl->ctl->d, buf, (size_t)n);

		if (answer)
			answer_send(cl->fd, answer);
		else
			refuse(cl->fd, "out of memory");
		json_object_put(answer);
	}
	pthread_mutex_lock(&cl->ctl->lock);
	close(cl->fd);
	cl->fd = -1;
	cl->done = true;
	pthread_mutex_unlock(&cl->ctl->lock);
	return NULL;
}

/* Join the client threads that are over; with `all`, wait for every one.
 * Returns a free slot, or NULL. */
static struct client *clients_reap(struct control *c, bool all)
{
	struct client *free_slot = NULL;

	for (int i = 0; i < CONTROL_CLIENTS_MAX; i++) {
		struct client *cl = &c->clients[i];

		pthread_mutex_lock(&c->lock);
		bool join = cl->busy && (cl->done || all);
		pthread_mutex_unlock(&c->lock);
		if (join) {
			pthread_join(cl->thread, NULL);
			cl->busy = false;
		}
		if (!cl->busy && !free_slot)
			free_slot = cl;
	}
	return free_slot;
}

/* Serve a connection in a thread of its own, if its peer may talk to us
 * and a slot is free. */
static void client_start(struct control *c, int fd)
{
	struct ucred peer = {.uid = (uid_t)-1};
	socklen_t len = sizeof(peer);
	char why[128];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) < 0 ||
	    (peer.uid != c->uid && peer.uid != 0)) {
		snprintf(why, sizeof(why), "refused: uid %u is neither healthd's "
					   "user (uid %u) nor root",
			 (unsigned)peer.uid, (unsigned)c->uid);
		log_warn("control socket: %s", why);
		refuse(fd, why);
		close(fd);
		return;
	}
	struct client *cl = clients_reap(c, false);
	if (!cl) {
		snprintf(why, sizeof(why), "busy: %d requests in progress, try "
					   "again", CONTROL_CLIENTS_MAX);
		refuse(fd, why);
		close(fd);
		return;
	}
	*cl = (struct client){.ctl = c, .fd = fd, .busy = true};
	if (pthread_create(&cl->thread, NULL, client_main, cl) != 0) {
		cl->busy = false;
		refuse(fd, "out of threads");
		close(fd);
	}
}

static void *control_main(void *arg)
{
	struct control *c = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
				      {.fd = c->stop_fd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			client_start(c, fd);
		else if (errno == EMFILE || errno == ENFILE)
			poll(NULL, 0, 100); /* a moment for descriptors to free */
	}
	return NULL;
}

/* --- the socket ---------------------------------------------------------------- */

/* Whether something listens on the socket file at `path`: 1, 0 (stale), or
 * -1 when that cannot be told. */
static int socket_in_use(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = -1;

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
		rc = 1;
	else if (errno == ECONNREFUSED)
		rc = 0;
	close(fd);
	return rc;
}

/* "control socket PATH: WHAT" and errno's text, when `sys`.  Returns -1. */
static int path_fail(char *err, size_t errlen, const char *path,
		     const char *what, bool sys)
{
	snprintf(err, errlen, "control socket %s: %s%s%s", path, what,
		 sys ? ": " : "", sys ? strerror(errno) : "");
	return -1;
}

/* Make the directory (0700) when missing, and clear the way: a stale
 * socket goes, anything else stays. */
static int path_prepare(const struct sockaddr_un *addr, char *err,
			size_t errlen)
{
	const char *path = addr->sun_path;
	char dir[sizeof(addr->sun_path)];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return path_fail(err, errlen, path,
					 "cannot create its directory", true);
	}
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : path_fail(err, errlen, path, "lstat", true);
	if (!S_ISSOCK(st.st_mode))
		return path_fail(err, errlen, path,
				 "exists and is not a socket; not removing it",
				 false);
	int used = socket_in_use(addr);
	if (used > 0)
		return path_fail(err, errlen, path,
				 "another process listens on it (a second healthd?)",
				 false);
	if (used < 0)
		return path_fail(err, errlen, path,
				 "cannot tell whether it is in use", false);
	if (unlink(path) < 0 && errno != ENOENT)
		return path_fail(err, errlen, path, "cannot remove the stale socket",
				 true);
	return 0;
}

struct control *control_start(const char *path, struct daemon *d, char *err,
			      size_t errlen)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct control *c = calloc(1, sizeof(*c));
	struct stat st;

	if (!c || !(c->path = strdup(path))) {
		free(c);
		path_fail(err, errlen, path, "out of memory", false);
		return NULL;
	}
	c->d = d;
	c->uid = geteuid();
	c->stop_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		path_fail(err, errlen, path, "socket", true);
		goto fail;
	}
	if (path_prepare(&addr, err, errlen) < 0)
		goto fail;
	/* Created 0600: no moment in which another user could connect. */
	mode_t mask = umask(0177);
	int rc = bind(c->fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(mask);
	if (rc < 0 || listen(c->fd, 2 * CONTROL_CLIENTS_MAX) < 0 ||
	    lstat(path, &st) < 0) {
		path_fail(err, errlen, path, "cannot listen", true);
		goto fail;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	if ((c->stop_fd = eventfd(0, EFD_CLOEXEC)) < 0 ||
	    pthread_create(&c->thread, NULL, control_main, c) != 0) {
		path_fail(err, errlen, path, "cannot start its thread", false);
		unlink(path);
		goto fail;
	}
	pthread_setname_np(c->thread, "control");
	log_info("control socket %s: healthd ctl talks to this daemon here", path);
	return c;
fail:
	if (c->fd >= 0)
		close(c->fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c);
	return NULL;
}

void control_stop(struct control *c)
{
	uint64_t one = 1;
	struct stat st;

	if (!c)
		return;
	if (write(c->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(c->thread, NULL);
	/* Clients still reading or writing are cut off; one waiting for a
	 * run waits no longer than that run's deadline allows. */
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < CONTROL_CLIENTS_MAX; i++)
		if (c->clients[i].busy && c->clients[i].fd >= 0)
			shutdown(c->clients[i].fd, SHUT_RDWR);
	pthread_mutex_unlock(&c->lock);
	clients_reap(c, true);
	/* Another daemon may have taken the path over since. */
	if (lstat(c->path, &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino)
		unlink(c->path);
	close(c->fd);
	close(c->stop_fd);
	pthread_mutex_destroy(&c->lock);
	free(c->path);
	free(c);
}
