/* ctl.c — `healthd ctl`: one request to the daemon's control socket, its
 * answer printed for people or, with --json, as it came. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config.h"
#include "control.h"
#include "ctl.h"

/* How long the client waits for an answer: the daemon bounds each
 * command itself (run: twice the check's timeout); this is a backstop. */
#define CTL_ANSWER_S 600
/* An answer larger than this is not one (status with many checks is a
 * few MiB at most). */
#define CTL_ANSWER_MAX (64 * 1024 * 1024)

static void ctl_usage(FILE *out, const char *default_config)
{
	fprintf(out,
		"usage: healthd ctl [--socket PATH] [-c FILE] [--json] COMMAND\n"
		"  status                  the checks and the verdict; exit 0 healthy,\n"
		"                          1 degraded, 2 unhealthy\n"
		"  run CHECK               run a check now (or wait for its run in\n"
		"                          flight), print its result; exit 0 pass or warn, 1 fail\n"
		"  drain [--reason TEXT] [--for DURATION]\n"
		"                          /ready answers 503 until undrain (or for DURATION)\n"
		"  undrain                 /ready follows the checks again\n"
		"  reload                  reload the config now; exit 2 when it is refused\n"
		"\n"
		"The socket is --socket, else control.socket in the config (-c, else\n"
		"$HEALTHD_CONFIG, else %s), else " CONFIG_CONTROL_SOCKET_DEFAULT ".\n"
		"Exit 2: bad usage or a refused command; 3: no daemon answers on the socket.\n",
		default_config);
}

/* control.socket of the config: -c (then it must load), else
 * $HEALTHD_CONFIG or the default one when it loads, else the default
 * socket.  Returns 0, or an exit code. */
static int socket_from_config(const char *config, const char *default_config,
			      char *out, size_t len)
{
	bool given = config != NULL;
	struct config *cfg;
	char err[1024];

	if (!config)
		config = getenv("HEALTHD_CONFIG");
	if (!config || !*config)
		config = default_config;
	snprintf(out, len, "%s", CONFIG_CONTROL_SOCKET_DEFAULT);
	if (!given && access(config, F_OK) < 0)
		return 0;
	if (config_load(config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "healthd ctl: %s\n", err);
		if (given)
			return CTL_EXIT_REFUSED;
		fprintf(stderr, "healthd ctl: trying %s\n", out);
		return 0;
	}
	snprintf(out, len, "%s", cfg->control_socket);
	config_free(cfg);
	if (!*out) {
		fprintf(stderr, "healthd ctl: %s turns the control socket off "
				"(control.socket: \"\")\n", config);
		return CTL_EXIT_UNREACHABLE;
	}
	return 0;
}

static bool send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return true;
}

/* Send the request, read the answer to the end.  Returns the answer, or
 * NULL having said why. */
static json_object *exchange(const char *path, json_object *req)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = CTL_ANSWER_S};
	size_t len = 0, cap = 0;
	char *buf = NULL;
	json_object *answer = NULL;
	bool timed_out = false;
	int fd;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "healthd ctl: cannot connect to %s: %s (is healthd "
				"running, with its control.socket there?)\n",
			path, strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	const char *text = json_object_to_json_string_ext(
		req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	/* A daemon that refuses us (busy, another user) answers without
	 * reading: the answer is still there to read. */
	if (send_all(fd, text, strlen(text)))
		send_all(fd, "\n", 1);
	for (;;) {
		if (len + 1 >= cap) { /* room for the NUL */
			char *more = cap < CTL_ANSWER_MAX ? realloc(buf, cap + 65536)
							  : NULL;
			if (!more)
				break;
			buf = more;
			cap += 65536;
		}
		ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
		if (r < 0 && errno == EINTR)
			continue;
		timed_out = r < 0 && errno == EAGAIN;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (buf) {
		buf[len] = '\0';
		answer = json_tokener_parse(buf);
	}
	if (!answer)
		fprintf(stderr, "healthd ctl: no answer from %s%s\n", path,
			timed_out ? ": timed out" : "");
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return answer;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v = json_object_object_get(o, key);

	return v ? json_object_get_string(v) : "";
}

/* The exit code of an answer that says ok, and with `human` its lines
 * for people. */
static int print_answer(const char *cmd, json_object *a, const char *for_text,
			bool human)
{
	if (!strcmp(cmd, "status")) {
		const char *v = str(a, "verdict");
		if (human)
			fputs(str(a, "table"), stdout);
		return !strcmp(v, "healthy") ? 0 : !strcmp(v, "degraded") ? 1 : 2;
	}
	if (!strcmp(cmd, "run")) {
		json_object *c = json_object_object_get(a, "check");
		if (human)
			printf("%s: %s in %s ms: %s\nstatus: %s\n", str(c, "name"),
			       str(c, "last_result"), str(c, "duration_ms"),
			       str(c, "message"), str(c, "status"));
		return !strcmp(str(c, "last_result"), "fail");
	}
	if (!human)
		return 0;
	if (!strcmp(cmd, "drain")) {
		printf("drained: /ready answers 503 %s%s\n",
		       for_text ? "for " : "until undrained",
		       for_text ? for_text : "");
	} else if (!strcmp(cmd, "undrain")) {
		printf("%s\n", json_object_get_boolean(json_object_object_get(
				       a, "was_drained"))
				       ? "undrained"
				       : "was not drained");
	} else {
		printf("ok, generation %s\n", str(a, "generation"));
	}
	return 0;
}

int ctl_main(int argc, char **argv, const char *default_config)
{
	static const struct option options[] = {
		{"socket", required_argument, NULL, 's'},
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"reason", required_argument, NULL, 'r'},
		{"for", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = NULL, *config = NULL, *reason = NULL, *for_text = NULL;
	char path[CONFIG_SOCKET_PATH_MAX + 1];
	bool json = false;
	int64_t for_ms = 0;
	int opt, rc;

	while ((opt = getopt_long(argc, argv, "s:c:h", options, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'r':
			reason = optarg;
			break;
		case 'f':
			for_text = optarg;
			if (config_parse_duration(optarg, &for_ms) < 0 || !for_ms) {
				fprintf(stderr, "healthd ctl: --for \"%s\": not a "
						"duration over 0 (" CONFIG_DURATION_SYNTAX ")\n",
					optarg);
				return CTL_EXIT_REFUSED;
			}
			break;
		case 'h':
			ctl_usage(stdout, default_config);
			return 0;
		default:
			ctl_usage(stderr, default_config);
			return CTL_EXIT_REFUSED;
		}
	}
	const char *cmd = optind < argc ? argv[optind] : "";
	int n_args = !strcmp(cmd, "run") ? 1 : 0;
	bool known = !strcmp(cmd, "status") || !strcmp(cmd, "run") ||
		     !strcmp(cmd, "drain") || !strcmp(cmd, "undrain") ||
		     !strcmp(cmd, "reload");
	if (!known || argc - optind - 1 != n_args ||
	    ((reason || for_text) && strcmp(cmd, "drain") != 0)) {
		ctl_usage(stderr, default_config);
		return CTL_EXIT_REFUSED;
	}
	if (sock && strlen(sock) > CONFIG_SOCKET_PATH_MAX) {
		fprintf(stderr, "healthd ctl: --socket: longer than %d bytes\n",
			CONFIG_SOCKET_PATH_MAX);
		return CTL_EXIT_REFUSED;
	}
	if (sock)
		snprintf(path, sizeof(path), "%s", sock);
	else if ((rc = socket_from_config(config, default_config, path,
					  sizeof(path))) != 0)
		return rc;

	json_object *req = json_object_new_object();
	json_object_object_add(req, "v", json_object_new_int(CONTROL_VERSION));
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (n_args)
		json_object_object_add(req, "check",
				       json_object_new_string(argv[optind + 1]));
	if (reason)
		json_object_object_add(req, "reason", json_object_new_string(reason));
	if (for_ms)
		json_object_object_add(req, "for_ms", json_object_new_int64(for_ms));
	json_object *answer = exchange(path, req);
	json_object_put(req);
	if (!answer)
		return CTL_EXIT_UNREACHABLE;
	bool ok = json_object_get_boolean(json_object_object_get(answer, "ok"));
	if (json)
		printf("%s\n", json_object_to_json_string_ext(
				       answer, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	else if (!ok)
		fprintf(stderr, "healthd ctl: %s: %s\n", cmd, str(answer, "error"));
	rc = ok ? print_answer(cmd, answer, for_text, !json) : CTL_EXIT_REFUSED;
	json_object_put(answer);
	return rc;
}
