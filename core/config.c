/*
 * config.c — healthd.yaml into struct config (see config.h).
 *
 * libyaml's events are first gathered into a small tree whose nodes keep
 * their marks, so every later check can name FILE:LINE:COL.  Each value is
 * expanded (${VAR}, ${file:...}) just before it is converted.  Messages quote
 * only what the user typed in the file, never what an expansion produced.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "hash.h"

#define CONFIG_FILE_MAX (64 * 1024) /* ${file:} and details_token_file */
#define CONFIG_DEPTH_MAX 32         /* YAML nesting; the schema needs 5 */
#define CONFIG_QUOTE_MAX 64         /* characters of a value quoted back */
#define CONFIG_THREADS_MAX 1024     /* server.threads and workers */

/* --- messages ------------------------------------------------------------ */

struct ctx {
	const char *path;
	char *err;
	size_t errlen;
	struct config *cfg; /* records the files expansions read */
	struct config_option *opt; /* the option being loaded: records what
				    * its expansions produced */
	/* Set: a validation, which goes on past an error and lists each. */
	struct config_problems *problems;
};

static void ctx_vfail(struct ctx *c, int line, int col, const char *fmt,
		      va_list ap)
{
	char msg[1024], text[1400];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (line > 0)
		snprintf(text, sizeof(text), "%s:%d:%d: %s", c->path, line, col,
			 msg);
	else
		snprintf(text, sizeof(text), "%s: %s", c->path, msg);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s", text);
	if (c->problems)
		(void)config_problems_add(c->problems, c->path, text);
}

/* A load stops at the first error; a validation goes on to report every
 * one it can.  Records a step's failure in *rc; true when to stop. */
static bool stop_at(const struct ctx *c, int step, int *rc)
{
	if (step < 0)
		*rc = -1;
	return step < 0 && !c->problems;
}

/* "FILE:LINE:COL: msg" (or "FILE: msg" for line 0); always returns -1. */
static int ctx_fail_at(struct ctx *c, int line, int col, const char *fmt, ...)
	HEALTHD_PRINTF(4, 5);
static int ctx_fail_at(struct ctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctx_vfail(c, line, col, fmt, ap);
	va_end(ap);
	return -1;
}

static int ctx_oom(struct ctx *c)
{
	return ctx_fail_at(c, 0, 0, "out of memory");
}

/* `s` in double quotes, escaped and cut short, for a message.  Only ever
 * called on text the user typed. */
static void quote(char *buf, size_t len, const char *s)
{
	size_t o = 0, chars = 0;

	buf[o++] = '"';
	for (; *s && o + 8 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		/* Cut between characters, not inside a UTF-8 sequence. */
		if ((ch & 0xc0) != 0x80 && chars++ == CONFIG_QUOTE_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

#define QUOTE_SIZE (CONFIG_QUOTE_MAX * 4 + 16)

/* --- the YAML tree ------------------------------------------------------- */

enum node_type {
	NODE_NULL, /* `key:` or `~`: nothing written */
	NODE_SCALAR,
	NODE_LIST,
	NODE_MAP,
};

struct node {
	enum node_type type;
	char *text;         /* scalars: as written */
	int line, col;      /* 1-based */
	struct node **kids; /* list items; map keys and values alternate */
	size_t n, cap;
};

static void node_free(struct node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		node_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static int node_add(struct node *parent, struct node *kid)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct node **k = realloc(parent->kids, cap * sizeof(*k));

		if (!k)
			return -1;
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = kid;
	return 0;
}

static const char *node_kind(const struct node *n)
{
	switch (n->type) {
	case NODE_NULL:
		return "nothing";
	case NODE_SCALAR:
		return "a single value";
	case NODE_LIST:
		return "a list";
	case NODE_MAP:
		return "a mapping";
	}
	return "?";
}

static int yaml_fail(struct ctx *c, const yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR)
		return ctx_oom(c);
	if (p->error == YAML_READER_ERROR)
		return ctx_fail_at(c, 0, 0, "%s at byte %zu",
				   p->problem ? p->problem : "cannot read",
				   p->problem_offset);
	if (p->context)
		return ctx_fail_at(c, (int)p->problem_mark.line + 1,
				   (int)p->problem_mark.column + 1,
				   "%s (%s at line %d)",
				   p->problem ? p->problem : "invalid YAML", p->context,
				   (int)p->context_mark.line + 1);
	return ctx_fail_at(c, (int)p->problem_mark.line + 1,
			   (int)p->problem_mark.column + 1, "%s",
			   p->problem ? p->problem : "invalid YAML");
}

static int yaml_next(struct ctx *c, yaml_parser_t *p, yaml_event_t *ev)
{
	if (!yaml_parser_parse(p, ev))
		return yaml_fail(c, p);
	return 0;
}

static int is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    !ev->data.scalar.plain_implicit)
		return 0;
	return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* One node from its first event, which this takes over and deletes. */
static int tree_node(struct ctx *c, yaml_parser_t *p, yaml_event_t *ev,
		     int depth, struct node **out)
{
	struct node *n = calloc(1, sizeof(*n));
	yaml_event_type_t type = ev->type, end;

	*out = NULL;
	if (!n) {
		yaml_event_delete(ev);
		return ctx_oom(c);
	}
	n->line = (int)ev->start_mark.line + 1;
	n->col = (int)ev->start_mark.column + 1;
	if (type == YAML_SCALAR_EVENT) {
		size_t len = ev->data.scalar.length;

		n->type = is_null(ev) ? NODE_NULL : NODE_SCALAR;
		if (memchr(ev->data.scalar.value, '\0', len)) {
			yaml_event_delete(ev);
			ctx_fail_at(c, n->line, n->col,
				    "a value contains a NUL character");
			goto fail;
		}
		n->text = strndup((const char *)ev->data.scalar.value, len);
		yaml_event_delete(ev);
		if (!n->text) {
			ctx_oom(c);
			goto fail;
		}
		*out = n;
		return 0;
	}
	if (type == YAML_ALIAS_EVENT) {
		ctx_fail_at(c, n->line, n->col,
			    "aliases (*%s) are not supported; write the value out",
			    (const char *)ev->data.alias.anchor);
		yaml_event_delete(ev);
		goto fail;
	}
	yaml_event_delete(ev);
	if (type == YAML_SEQUENCE_START_EVENT) {
		n->type = NODE_LIST;
		end = YAML_SEQUENCE_END_EVENT;
	} else if (type == YAML_MAPPING_START_EVENT) {
		n->type = NODE_MAP;
		end = YAML_MAPPING_END_EVENT;
	} else {
		ctx_fail_at(c, n->line, n->col, "unexpected YAML structure");
		goto fail;
	}
	if (depth >= CONFIG_DEPTH_MAX) {
		ctx_fail_at(c, n->line, n->col, "nested too deeply");
		goto fail;
	}
	for (;;) {
		yaml_event_t kev;
		struct node *kid;

		if (yaml_next(c, p, &kev) < 0)
			goto fail;
		if (kev.type == end) {
			yaml_event_delete(&kev);
			break;
		}
		if (tree_node(c, p, &kev, depth + 1, &kid) < 0)
			goto fail;
		if (node_add(n, kid) < 0) {
			node_free(kid);
			ctx_oom(c);
			goto fail;
		}
	}
	*out = n;
	return 0;
fail:
	node_free(n);
	return -1;
}

/* The file's one document as a tree; *root stays NULL for an empty file. */
static int tree_load(struct ctx *c, const char *text, size_t len,
		     struct node **root)
{
	yaml_parser_t p;
	yaml_event_t ev;
	int rc = -1;

	*root = NULL;
	if (!yaml_parser_initialize(&p))
		return ctx_oom(c);
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (yaml_next(c, &p, &ev) < 0) /* stream start */
		goto out;
	yaml_event_delete(&ev);
	if (yaml_next(c, &p, &ev) < 0)
		goto out;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		rc = 0;
		goto out;
	}
	yaml_event_delete(&ev); /* document start */
	if (yaml_next(c, &p, &ev) < 0 || tree_node(c, &p, &ev, 0, root) < 0)
		goto out;
	if (yaml_next(c, &p, &ev) < 0) /* document end */
		goto out;
	yaml_event_delete(&ev);
	if (yaml_next(c, &p, &ev) < 0)
		goto out;
	if (ev.type != YAML_STREAM_END_EVENT) {
		ctx_fail_at(c, (int)ev.start_mark.line + 1,
			    (int)ev.start_mark.column + 1,
			    "a second YAML document; healthd.yaml holds one");
		yaml_event_delete(&ev);
		goto out;
	}
	yaml_event_delete(&ev);
	rc = 0;
out:
	if (rc < 0) {
		node_free(*root);
		*root = NULL;
	}
	yaml_parser_delete(&p);
	return rc;
}

/* --- expansion ----------------------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		/* Not realloc(): it would leave the old block, which may hold
		 * an expanded secret, unwiped. */
		p = malloc(cap);
		if (!p)
			return -1;
		if (b->p) {
			memcpy(p, b->p, b->len + 1);
			explicit_bzero(b->p, b->cap);
			free(b->p);
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Wipes as well as frees: the buffer may hold an expanded secret. */
static void buf_free(struct buf *b)
{
	if (b->p)
		explicit_bzero(b->p, b->cap);
	free(b->p);
	b->p = NULL;
}

/* --check-config --map-path: set once, before any thread starts. */
#define PATH_MAPS_MAX 16
static struct path_map {
	char *from, *to;
} path_maps[PATH_MAPS_MAX];
static size_t n_path_maps;

int config_add_path_map(const char *spec)
{
	const char *eq = strchr(spec, '=');
	struct path_map *m = &path_maps[n_path_maps];

	if (!eq || spec[0] != '/' || !eq[1] || n_path_maps == PATH_MAPS_MAX)
		return -1;
	m->from = strndup(spec, (size_t)(eq - spec));
	m->to = strdup(eq + 1);
	if (!m->from || !m->to) {
		free(m->from);
		free(m->to);
		return -1;
	}
	/* "/etc/healthd/" and "/etc/healthd" map the same. */
	for (size_t n = strlen(m->from); n > 1 && m->from[n - 1] == '/'; n--)
		m->from[n - 1] = '\0';
	n_path_maps++;
	return 0;
}

const char *config_map_path(const char *path, char *buf, size_t len)
{
	for (size_t i = 0; i < n_path_maps; i++) {
		size_t n = strlen(path_maps[i].from);
		if (strncmp(path, path_maps[i].from, n) == 0 &&
		    (path[n] == '/' || path[n] == '\0')) {
			snprintf(buf, len, "%s%s", path_maps[i].to, path + n);
			return buf;
		}
	}
	return path;
}

static int (*read_hook)(const char *path);

void config_set_open(int (*open_file)(const char *path))
{
	read_hook = open_file;
}

/* A small regular text file, whole, with one trailing newline dropped.
 * Its bytes as read are folded into *hash unless it is NULL.  Messages name
 * the path (and where it was mapped to), never the content. */
static int read_small_file(const char *path, struct buf *out, uint64_t *hash,
			   char *err, size_t errlen)
{
	char eb[128], chunk[4096], mapped[PATH_MAX], shown[PATH_MAX + 64];
	const char *from = config_map_path(path, mapped, sizeof(mapped));
	struct stat st;
	ssize_t got;
	int fd;

	if (from != path) {
		snprintf(shown, sizeof(shown), "%s (mapped to %s)", path, from);
		path = shown;
	}
	/* O_NONBLOCK: opening a FIFO must not hang a reload. */
	fd = read_hook ? read_hook(from)
		       : open(from, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
			strerror_r(errno, eb, sizeof(eb)));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read %s: not a regular file", path);
		goto fail;
	}
	while ((got = read(fd, chunk, sizeof(chunk))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			snprintf(err, errlen, "cannot read %s: %s", path,
				strerror_r(errno, eb, sizeof(eb)));
			goto fail;
		}
		if (out->len + (size_t)got > CONFIG_FILE_MAX) {
			snprintf(err, errlen, "%s is larger than %d KiB", path,
				CONFIG_FILE_MAX / 1024);
			goto fail;
		}
		if (memchr(chunk, '\0', (size_t)got)) {
			snprintf(err, errlen, "%s contains a NUL byte", path);
			goto fail;
		}
		if (buf_add(out, chunk, (size_t)got) < 0) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	if (!out->p && buf_add(out, "", 0) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (hash)
		*hash = hash_bytes(hash_file_start(*hash, true), out->p, out->len);
	if (out->len && out->p[out->len - 1] == '\n') {
		out->len--;
		if (out->len && out->p[out->len - 1] == '\r')
			out->len--;
	}
	out->p[out->len] = '\0';
	return 0;
fail:
	explicit_bzero(chunk, sizeof(chunk));
	close(fd);
	return -1;
}

static int is_name_char(char ch, int first)
{
	return ch == '_' || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z') || (!first && ch >= '0' && ch <= '9');
}

/* Remember a file the config read; true when it is new to the list.  A
 * failure only costs a reload. */
static bool input_add(struct config *cfg, const char *path)
{
	uint64_t *h;
	char **n;

	if (!cfg)
		return false;
	for (size_t i = 0; i < cfg->n_inputs; i++)
		if (!strcmp(cfg->inputs[i], path))
			return false;
	h = realloc(cfg->input_hashes, (cfg->n_inputs + 1) * sizeof(*h));
	if (h)
		cfg->input_hashes = h;
	n = realloc(cfg->inputs, (cfg->n_inputs + 1) * sizeof(*n));
	if (!h || !n)
		return false;
	cfg->inputs = n;
	if (!(n[cfg->n_inputs] = strdup(path)))
		return false;
	h[cfg->n_inputs] = HASH_INIT;
	cfg->n_inputs++;
	return true;
}

/* read_small_file() for a file the config reads besides itself (cfg may be
 * NULL): remembered, and its bytes as read this first time folded into
 * cfg->hash in the order of cfg->inputs, as the watch hashes them. */
static int input_read(struct config *cfg, const char *path, struct buf *out,
		      char *err, size_t errlen)
{
	bool first = input_add(cfg, path);
	int rc = read_small_file(path, out, first ? &cfg->hash : NULL, err,
				 errlen);

	if (rc == 0 && first)
		cfg->input_hashes[cfg->n_inputs - 1] =
			hash_bytes(HASH_INIT, out->p, out->len);
	return rc;
}

/* Append ", s" (or s, first) to the list in out, cut at len. */
static void list_add(char *out, size_t len, const char *s)
{
	size_t at = strlen(out);

	snprintf(out + at, len - at, "%s%s", at ? ", " : "", s);
}

void config_changed_files(const struct config *old, const struct config *cfg,
			  char *out, size_t len)
{
	out[0] = '\0';
	if (old->file_hash != cfg->file_hash)
		list_add(out, len, cfg->path);
	for (size_t i = 0; i < cfg->n_inputs; i++) {
		size_t j = 0;
		while (j < old->n_inputs && strcmp(old->inputs[j], cfg->inputs[i]))
			j++;
		if (j == old->n_inputs ||
		    old->input_hashes[j] != cfg->input_hashes[i])
			list_add(out, len, cfg->inputs[i]);
	}
	for (size_t j = 0; j < old->n_inputs; j++) {
		size_t i = 0;
		while (i < cfg->n_inputs && strcmp(old->inputs[j], cfg->inputs[i]))
			i++;
		if (i == cfg->n_inputs)
			list_add(out, len, old->inputs[j]);
	}
}

void config_secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

/* Record what one ${...} produced on the option `o` (NULL: none). */
static int secret_add(struct config_option *o, const char *s, size_t n)
{
	char **v, *copy;

	if (!o || n < CONFIG_SECRET_MIN)
		return 0;
	for (size_t i = 0; i < o->n_secrets; i++)
		if (!strncmp(o->secrets[i], s, n) && !o->secrets[i][n])
			return 0;
	if (!(copy = strndup(s, n)))
		return -1;
	v = realloc(o->secrets, (o->n_secrets + 1) * sizeof(*v));
	if (!v) {
		config_secret_free(copy);
		return -1;
	}
	o->secrets = v;
	v[o->n_secrets++] = copy;
	return 0;
}

/* How ${...} marks what it produced: by its kind, or as the user said. */
enum expand_as { EXPAND_PLAIN, EXPAND_SECRET, EXPAND_PUBLIC };

/* Percent-decoded `s`, as a client decodes userinfo and query values
 * before use (and may print them so).  Needs n + 1 bytes at out. */
static size_t url_decode(char *out, const char *s, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		long c = 0;

		if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			char hex[3] = {s[i + 1], s[i + 2], '\0'};
			c = strtol(hex, NULL, 16);
		}
		if (c > 0) { /* %00 stays as written: a needle is a C string */
			out[o++] = (char)c;
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return o;
}

/* A secret as written and as the client reads it: `read` writes that
 * form into out (n + 1 bytes) and returns its length. */
static int secret_add_as_read(struct config_option *o, const char *s,
			      size_t n,
			      size_t (*read)(char *out, const char *s, size_t n))
{
	char *plain = malloc(n + 1);
	int rc;

	if (!plain)
		return -1;
	rc = secret_add(o, s, n);
	if (rc == 0)
		rc = secret_add(o, plain, read(plain, s, n));
	explicit_bzero(plain, n + 1);
	free(plain);
	return rc;
}

/* Query parameters (and conninfo keys) whose values are credentials. */
static bool secret_key(const char *k, size_t n)
{
	static const char *const words[] = {
		"pass", "pwd", "secret", "token", "key", "auth", "sig",
		"credential", "session", "cookie",
	};

	for (size_t w = 0; w < sizeof(words) / sizeof(*words); w++) {
		size_t m = strlen(words[w]);
		for (size_t i = 0; i + m <= n; i++)
			if (!strncasecmp(k + i, words[w], m))
				return true;
	}
	return false;
}

/* `v` is scheme://[userinfo@]host[:port][/path][?query][#fragment]: its
 * userinfo and the values of credential-like query parameters are secrets;
 * scheme, host, port and path are not.  Returns 1 when v is a URL. */
static int secret_add_url(struct config_option *o, const char *v, size_t n)
{
	size_t i = 0, auth, end, q;

	while (i < n && (isalnum((unsigned char)v[i]) || strchr("+.-", v[i])))
		i++;
	if (i == 0 || !isalpha((unsigned char)v[0]) || n - i < 3 ||
	    memcmp(v + i, "://", 3))
		return 0;
	auth = i + 3;
	end = auth;
	while (end < n && !strchr("/?#", v[end]))
		end++;
	/* A password with an unencoded '/', '?' or '#' ends the authority
	 * early, and clients split such a URL in ways of their own: not taken
	 * apart, a secret whole. */
	if (memchr(v + end, '@', n - end))
		return 0;
	for (size_t at = end; at > auth; at--) {
		if (v[at - 1] == '@') { /* userinfo: user[:password] */
			size_t info = at - 1 - auth;
			const char *colon = memchr(v + auth, ':', info);
			size_t user = colon ? (size_t)(colon - (v + auth)) : info;

			/* Whole too: parts under CONFIG_SECRET_MIN are not. */
			if (secret_add_as_read(o, v + auth, info, url_decode) < 0 ||
			    secret_add_as_read(o, v + auth, user, url_decode) < 0 ||
			    (colon && secret_add_as_read(o, colon + 1,
							 info - user - 1,
							 url_decode) < 0))
				return -1;
			break;
		}
	}
	q = end;
	while (q < n && v[q] != '?' && v[q] != '#')
		q++;
	if (q < n && v[q] == '?') {
		size_t p = q + 1;
		while (p < n && v[p] != '#') {
			size_t amp = p, eq;
			while (amp < n && v[amp] != '&' && v[amp] != '#')
				amp++;
			for (eq = p; eq < amp && v[eq] != '='; eq++)
				;
			if (eq < amp && secret_key(v + p, eq - p) &&
			    secret_add_as_read(o, v + eq + 1, amp - eq - 1,
					       url_decode) < 0)
				return -1;
			p = amp + (amp < n && v[amp] == '&');
		}
	}
	return 1;
}

/* A quoted conninfo value as libpq reads it: a backslash escapes the
 * next byte. */
static size_t conninfo_unescape(char *out, const char *s, size_t n)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\\' && i + 1 < n)
			i++;
		out[m++] = s[i];
	}
	out[m] = '\0';
	return m;
}

/* `v` is a libpq conninfo ("host=db user=app password=..."): the values of
 * credential-like keys are secrets.  Returns 1 when v is one. */
static int secret_add_conninfo(struct config_option *o, const char *v,
			       size_t n)
{
	static const char *const known[] = {"host", "hostaddr", "port",
					    "dbname", "user"};
	bool is_conninfo = false;

	for (int pass = 0; pass < 2; pass++) {
		size_t i = 0;
		while (i < n) {
			size_t k = i, val, e;
			while (i < n && isspace((unsigned char)v[i]))
				i++;
			if (i == n)
				break;
			for (k = i; k < n && (isalnum((unsigned char)v[k]) ||
					      v[k] == '_'); k++)
				;
			if (k == i || k >= n || v[k] != '=')
				return 0; /* not key=value: not a conninfo */
			val = k + 1;
			if (val < n && v[val] == '\'') {
				for (e = ++val; e < n && v[e] != '\''; e++)
					if (v[e] == '\\')
						e++;
			} else {
				for (e = val; e < n && !isspace((unsigned char)v[e]); e++)
					;
			}
			if (e > n)
				e = n;
			for (size_t w = 0; w < sizeof(known) / sizeof(*known); w++)
				if (k - i == strlen(known[w]) &&
				    !strncmp(v + i, known[w], k - i))
					is_conninfo = true;
			if (pass == 1 && secret_key(v + i, k - i) &&
			    secret_add_as_read(o, v + val, e - val,
					       conninfo_unescape) < 0)
				return -1;
			i = e + (e < n && v[e] == '\'');
		}
		if (!is_conninfo)
			return 0;
	}
	return 1;
}

/* What an environment variable gave an option: a URL or a conninfo shows
 * but for its credentials; anything else is a secret whole (it may be a
 * token).  ${secret:NAME} makes it a secret whole, ${public:NAME} none. */
static int secret_add_env(struct config_option *o, const char *v, size_t n,
			  enum expand_as as)
{
	int rc;

	if (as == EXPAND_PUBLIC)
		return 0;
	if (as == EXPAND_SECRET)
		return secret_add(o, v, n);
	if ((rc = secret_add_url(o, v, n)) != 0 ||
	    (rc = secret_add_conninfo(o, v, n)) != 0)
		return rc < 0 ? -1 : 0;
	return secret_add(o, v, n);
}

/* One reference: `ref` is the text between "${" and "}".  What it produced
 * becomes a secret of `opt` (may be NULL): a file's content whole, an
 * environment variable's as secret_add_env() says. */
static int expand_ref(struct buf *b, const char *ref, size_t len, char *err,
		      size_t errlen, struct config *rec,
		      struct config_option *opt)
{
	enum expand_as as = EXPAND_PLAIN;
	struct buf file = {0};
	char name[256];
	const char *value;
	size_t n = 0;
	int rc;

	if (len >= 5 && !strncmp(ref, "file:", 5)) {
		char *path = strndup(ref + 5, len - 5);

		if (!path) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (!*path) {
			snprintf(err, errlen, "${file:} needs a path");
			rc = -1;
		} else {
			rc = input_read(rec, path, &file, err, errlen);
		}
		if (rc == 0 && (buf_add(b, file.p, file.len) < 0 ||
				secret_add(opt, file.p, file.len) < 0)) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
		buf_free(&file);
		free(path);
		return rc;
	}
	if (len >= 7 && !strncmp(ref, "secret:", 7)) {
		as = EXPAND_SECRET;
		ref += 7;
		len -= 7;
	} else if (len >= 7 && !strncmp(ref, "public:", 7)) {
		as = EXPAND_PUBLIC;
		ref += 7;
		len -= 7;
	}
	while (n < len && is_name_char(ref[n], n == 0))
		n++;
	if (n == 0 || n >= sizeof(name) ||
	    (n < len && (len - n < 2 || ref[n] != ':' || ref[n + 1] != '-'))) {
		/* Only the name part is shown: a default may be sensitive. */
		snprintf(err, errlen,
			"bad reference \"${%.*s\": expected ${NAME}, "
			"${NAME:-default}, ${secret:NAME}, ${public:NAME} or "
			"${file:/path}",
			(int)(n < 64 ? n : 64), ref);
		return -1;
	}
	memcpy(name, ref, n);
	name[n] = '\0';
	value = getenv(name);
	if (n < len && (!value || !*value)) { /* ${NAME:-default}, like sh */
		value = ref + n + 2;
		len -= n + 2;
		if (memmem(value, len, "${", 2)) {
			snprintf(err, errlen,
				"${%s:-...}: a default cannot hold another ${...}",
				name);
			return -1;
		}
	} else if (value) {
		len = strlen(value);
	} else {
		snprintf(err, errlen, "variable %s is not set", name);
		return -1;
	}
	if (buf_add(b, value, len) < 0 ||
	    secret_add_env(opt, value, len, as) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int expand(const char *in, char **out, char *err, size_t errlen,
		  struct config *rec, struct config_option *opt)
{
	struct buf b = {0};
	const char *s = in;

	*out = NULL;
	if (buf_add(&b, "", 0) < 0)
		goto oom;
	while (*s) {
		const char *end;
		size_t plain = strcspn(s, "$");

		if (plain) {
			if (buf_add(&b, s, plain) < 0)
				goto oom;
			s += plain;
			continue;
		}
		if (s[1] != '{') {
			/* "$$" is one '$'; a '$' before anything else is kept. */
			if (buf_add(&b, "$", 1) < 0)
				goto oom;
			s += s[1] == '$' ? 2 : 1;
			continue;
		}
		end = strchr(s + 2, '}');
		if (!end) {
			snprintf(err, errlen,
				"unterminated \"${\" (missing \"}\"); "
				"write $$ for a literal $");
			goto fail;
		}
		if (expand_ref(&b, s + 2, (size_t)(end - s - 2), err, errlen,
			       rec, opt) < 0)
			goto fail;
		s = end + 1;
	}
	*out = b.p;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	buf_free(&b);
	return -1;
}

int config_expand(const char *in, char **out, char *err, size_t errlen)
{
	return expand(in, out, err, errlen, NULL, NULL);
}

/* --- value parsers ------------------------------------------------------- */

int config_parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; text && i < sizeof(yes) / sizeof(*yes); i++) {
		if (!strcasecmp(text, yes[i]) || !strcasecmp(text, no[i])) {
			*out = !strcasecmp(text, yes[i]);
			return 0;
		}
	}
	return -1;
}

int config_parse_size(const char *text, int64_t *bytes)
{
	static const struct {
		const char *unit;
		int64_t scale;
	} units[] = {{"KiB", 1024}, {"MiB", 1024 * 1024},
		     {"GiB", 1024 * 1024 * 1024}, {"", 1}};
	char *end;

	if (!text || *text < '0' || *text > '9')
		return -1;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (errno || v <= 0 || v > INT64_MAX / units[i].scale)
			return -1;
		*bytes = v * units[i].scale;
		return 0;
	}
	return -1;
}

int config_parse_int(const char *text, long long *out)
{
	const char *digits = text && *text == '-' ? text + 1 : text;
	char *end;

	if (!digits || *digits < '0' || *digits > '9')
		return -1;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int config_parse_duration(const char *text, int64_t *ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	uint64_t whole = 0, frac = 0, scale = 1;
	const char *s = text;

	if (!s || *s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		whole = whole * 10 + (uint64_t)(*s - '0');
		if (whole > 1000000000000ULL) /* keeps whole * 1h in int64 */
			return -1;
	}
	if (*s == '.') {
		if (*++s < '0' || *s > '9')
			return -1;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (scale < 1000000000ULL) { /* finer is noise */
				frac = frac * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
		}
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (!strcmp(s, units[i].unit)) {
			uint64_t u = units[i].ms;

			*ms = (int64_t)(whole * u + (frac * u + scale / 2) / scale);
			return 0;
		}
	}
	return -1;
}

/* "[host]:port", "host:port" or ":port"; *host is "" for every address. */
static int listen_parse(const char *text, char **host, int *port)
{
	const char *h = text, *p, *bad = " \t\r\n/[]";
	size_t hlen;
	long v = 0;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || close == text + 1 || close[1] != ':')
			return -1;
		h = text + 1;
		hlen = (size_t)(close - h);
		p = close + 2;
	} else {
		const char *colon = strrchr(text, ':');

		/* An IPv6 address needs its brackets. */
		if (!colon || memchr(text, ':', (size_t)(colon - text)))
			return -1;
		hlen = (size_t)(colon - text);
		p = colon + 1;
	}
	for (size_t i = 0; i < hlen; i++)
		if (strchr(bad, h[i]) || (unsigned char)h[i] < 0x20)
			return -1;
	if (!*p || strlen(p) > 5)
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*host = strndup(h, hlen);
	if (!*host)
		return -1;
	*port = (int)v;
	return 0;
}

static int set_listen(struct config *cfg, const char *text)
{
	char *copy, *host;
	int port;

	if (listen_parse(text, &host, &port) < 0)
		return -1;
	copy = strdup(text);
	if (!copy) {
		free(host);
		return -1;
	}
	free(cfg->listen);
	free(cfg->listen_host);
	cfg->listen = copy;
	cfg->listen_host = host;
	cfg->listen_port = port;
	return 0;
}

static int is_check_name(const char *s)
{
	if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
		return 0;
	return s[strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_.-")] == '\0';
}

/* --- fields -------------------------------------------------------------- */

/* One value in the tree and where to point when it is wrong: the key for
 * a mapping value (as in "healthd.yaml:14:5: timeout: ..."), the item
 * itself in a list. */
struct at {
	const struct node *key; /* NULL for list items */
	const struct node *val;
	const char *label; /* "timeout", "server.threads" */
};

static const struct node *at_pos(const struct at *a)
{
	return a->key ? a->key : a->val;
}

static int at_fail(struct ctx *c, const struct at *a, const char *fmt, ...)
	HEALTHD_PRINTF(3, 4);
static int at_fail(struct ctx *c, const struct at *a, const char *fmt, ...)
{
	const struct node *n = at_pos(a);
	char msg[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return ctx_fail_at(c, n->line, n->col, "%s: %s", a->label, msg);
}

/* `label: "as typed" PROBLEM`.  The text quoted is the file's, before
 * expansion, so an expanded secret never reaches the message. */
static int at_bad(struct ctx *c, const struct at *a, const char *fmt, ...)
	HEALTHD_PRINTF(3, 4);
static int at_bad(struct ctx *c, const struct at *a, const char *fmt, ...)
{
	char q[QUOTE_SIZE], msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	quote(q, sizeof(q), a->val->text);
	return at_fail(c, a, "%s%s %s", q,
		       strstr(a->val->text, "${") ? " (after expansion)" : "",
		       msg);
}

/* The value of `name` in `map` into *a; 0 when absent. */
static int map_get(const struct node *map, const char *name,
		   const char *label, struct at *a)
{
	a->key = a->val = NULL;
	a->label = label;
	if (!map || map->type != NODE_MAP)
		return 0;
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		if (map->kids[i]->type == NODE_SCALAR &&
		    !strcmp(map->kids[i]->text, name)) {
			a->key = map->kids[i];
			a->val = map->kids[i + 1];
			return 1;
		}
	}
	return 0;
}

/* Every key of `map` is a known, unique scalar.  `where` ends the unknown
 * key message: "" or " in check \"db\"". */
static int map_check_keys(struct ctx *c, const struct node *map,
			  const char *const *known, const char *where)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct node *k = map->kids[i];
		char q[QUOTE_SIZE], list[512] = "";
		size_t j;

		if (k->type != NODE_SCALAR)
			return ctx_fail_at(c, k->line, k->col,
					   "expected a key%s, found %s", where,
					   node_kind(k));
		for (j = 0; known[j] && strcmp(known[j], k->text); j++)
			;
		if (!known[j]) {
			for (j = 0; known[j]; j++) {
				if (j)
					strncat(list, ", ",
						sizeof(list) - strlen(list) - 1);
				strncat(list, known[j],
					sizeof(list) - strlen(list) - 1);
			}
			quote(q, sizeof(q), k->text);
			return ctx_fail_at(c, k->line, k->col,
					   "unknown key %s%s; expected one of: %s",
					   q, where, list);
		}
		for (j = 0; j < i; j += 2)
			if (!strcmp(map->kids[j]->text, k->text))
				return ctx_fail_at(
					c, k->line, k->col,
					"key \"%s\"%s appears twice (first at line %d)",
					k->text, where, map->kids[j]->line);
	}
	return 0;
}

/* A section such as `log:`; *sec is NULL when absent or empty. */
static int section(struct ctx *c, const struct node *root, const char *name,
		   const char *const *known, const struct node **sec)
{
	char where[64];
	struct at a;

	*sec = NULL;
	if (!map_get(root, name, name, &a) || a.val->type == NODE_NULL)
		return 0;
	if (a.val->type != NODE_MAP)
		return at_fail(c, &a, "expected a mapping, found %s",
			       node_kind(a.val));
	snprintf(where, sizeof(where), " in %s", name);
	if (map_check_keys(c, a.val, known, where) < 0)
		return -1;
	*sec = a.val;
	return 0;
}

/* A scalar's expanded text (malloc'd). */
static int field_text(struct ctx *c, const struct at *a, const char *what,
		      char **out)
{
	char eb[512];

	*out = NULL;
	if (a->val->type != NODE_SCALAR)
		return at_fail(c, a, "expected %s, found %s", what,
			       node_kind(a->val));
	if (expand(a->val->text, out, eb, sizeof(eb), c->cfg, c->opt) < 0)
		return at_fail(c, a, "%s", eb);
	return 0;
}

/* Replaces *out on success. */
static int field_string(struct ctx *c, const struct at *a, char **out)
{
	char *s;

	if (field_text(c, a, "a string", &s) < 0)
		return -1;
	free(*out);
	*out = s;
	return 0;
}

static int field_bool(struct ctx *c, const struct at *a, bool *out)
{
	char *s;
	int rc = 0;

	if (field_text(c, a, "true or false", &s) < 0)
		return -1;
	if (config_parse_bool(s, out) < 0)
		rc = at_bad(c, a, "is not a boolean (expected " CONFIG_BOOL_SYNTAX ")");
	config_secret_free(s);
	return rc;
}

static int field_int(struct ctx *c, const struct at *a, int min, int max,
		     int *out)
{
	char *s;
	long long v;
	int rc = 0;

	if (field_text(c, a, "an integer", &s) < 0)
		return -1;
	if (config_parse_int(s, &v) < 0)
		rc = at_bad(c, a, "is not an integer");
	else if ((v < min || v > max) && max == INT_MAX)
		rc = at_bad(c, a, "is out of range (expected at least %d)", min);
	else if (v < min || v > max)
		rc = at_bad(c, a, "is out of range (expected %d to %d)", min,
			    max);
	else
		*out = (int)v;
	config_secret_free(s);
	return rc;
}

static int field_duration(struct ctx *c, const struct at *a, bool zero_ok,
			  int64_t *out)
{
	char *s;
	int64_t v;
	int rc = 0;

	if (field_text(c, a, "a duration", &s) < 0)
		return -1;
	if (config_parse_duration(s, &v) < 0)
		rc = at_bad(c, a, "is not a duration (" CONFIG_DURATION_SYNTAX ")");
	else if (!zero_ok && v == 0)
		rc = at_bad(c, a, "must be greater than 0");
	else
		*out = v;
	config_secret_free(s);
	return rc;
}

static int field_size(struct ctx *c, const struct at *a, int64_t *out)
{
	char *s;
	int rc = 0;

	if (field_text(c, a, "a size", &s) < 0)
		return -1;
	if (config_parse_size(s, out) < 0)
		rc = at_bad(c, a, "is not a size (" CONFIG_SIZE_SYNTAX ")");
	config_secret_free(s);
	return rc;
}

/* One of `names` (NULL-terminated); *out is its index. */
static int field_enum(struct ctx *c, const struct at *a,
		      const char *const *names, int *out)
{
	char expected[128] = "", *s;
	int rc = -1;

	for (int i = 0; names[i]; i++)
		snprintf(expected + strlen(expected),
			 sizeof(expected) - strlen(expected), "%s%s",
			 i ? ", " : "", names[i]);
	if (field_text(c, a, "a single value", &s) < 0)
		return -1;
	for (int i = 0; names[i]; i++) {
		if (!strcmp(s, names[i])) {
			*out = i;
			rc = 0;
		}
	}
	if (rc < 0)
		at_bad(c, a, "is not valid (expected one of: %s)", expected);
	config_secret_free(s);
	return rc;
}

/* --- checks -------------------------------------------------------------- */

/* What `defaults:` sets and a check may override. */
struct inherited {
	int64_t interval_ms, timeout_ms;
	int failure_threshold, success_threshold;
	int isolation; /* enum config_isolation */
	int64_t max_rss;
	int history;
};

static const char *const isolation_names[] = {"process", "inline", NULL};

static void option_clear(struct config_option *o)
{
	free(o->key);
	config_secret_free(o->value);
	for (size_t i = 0; i < o->n_secrets; i++)
		config_secret_free(o->secrets[i]);
	free(o->secrets);
}

/* Takes over *opt whatever happens. */
static int option_add(struct ctx *c, struct config_check *chk,
		      struct config_option *opt)
{
	struct config_option *o;

	for (size_t i = 0; i < chk->n_options; i++) {
		if (!strcmp(chk->options[i].key, opt->key)) {
			ctx_fail_at(c, opt->line, opt->col,
				    "options: key \"%s\" appears twice (first at line %d)",
				    opt->key, chk->options[i].line);
			goto fail;
		}
	}
	o = realloc(chk->options, (chk->n_options + 1) * sizeof(*o));
	if (!o) {
		ctx_oom(c);
		goto fail;
	}
	chk->options = o;
	chk->options[chk->n_options++] = *opt;
	return 0;
fail:
	option_clear(opt);
	return -1;
}

/* A list of single values as one comma-joined string. */
static int option_join(struct ctx *c, const struct at *a, char **out)
{
	struct buf b = {0};
	char *item = NULL;

	if (buf_add(&b, "", 0) < 0)
		goto oom;
	for (size_t i = 0; i < a->val->n; i++) {
		struct at ia = {a->key, a->val->kids[i], a->label};

		if (field_text(c, &ia, "single values in the list", &item) < 0)
			goto fail;
		if ((i && buf_add(&b, ",", 1) < 0) ||
		    buf_add(&b, item, strlen(item)) < 0)
			goto oom;
		config_secret_free(item);
		item = NULL;
	}
	*out = b.p;
	return 0;
oom:
	ctx_oom(c);
fail:
	config_secret_free(item);
	buf_free(&b);
	return -1;
}

#define OPTIONS_PREFIX_LEN (sizeof("options.") - 1)

/* options: values, lists of values, and one level of mapping whose keys
 * join their parent's with a dot ("headers.Accept"). */
static int options_load(struct ctx *c, struct config_check *chk,
			const struct node *map, const char *prefix)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct node *k = map->kids[i], *v = map->kids[i + 1];
		char label[300];
		struct at a = {k, v, label};
		struct config_option o = {.line = k->line, .col = k->col};
		int n, rc;

		if (k->type != NODE_SCALAR)
			return ctx_fail_at(c, k->line, k->col,
					   "options: expected a key, found %s",
					   node_kind(k));
		n = snprintf(label, sizeof(label), "options.%s%s%s",
			     prefix ? prefix : "", prefix ? "." : "", k->text);
		if (n < 0 || (size_t)n >= sizeof(label) || !*k->text)
			return ctx_fail_at(c, k->line, k->col,
					   "options: a key must have 1 to 200 characters");
		if (v->type == NODE_MAP) {
			if (prefix)
				return at_fail(c, &a,
					       "nested too deeply (an option holds a value, "
					       "a list, or a mapping of values)");
			if (options_load(c, chk, v, label + OPTIONS_PREFIX_LEN) < 0)
				return -1;
			continue;
		}
		c->opt = &o; /* collects what the value's ${...} produce */
		if (v->type == NODE_NULL)
			rc = (o.value = strdup("")) ? 0 : ctx_oom(c);
		else if (v->type == NODE_LIST)
			rc = option_join(c, &a, &o.value);
		else
			rc = field_text(c, &a, "", &o.value);
		c->opt = NULL;
		if (rc == 0 && !(o.key = strdup(label + OPTIONS_PREFIX_LEN)))
			rc = ctx_oom(c);
		if (rc < 0) {
			option_clear(&o);
			return -1;
		}
		if (option_add(c, chk, &o) < 0)
			return -1;
	}
	return 0;
}

static const char *const check_keys[] = {
	"name", "plugin", "critical", "interval", "timeout", "warn_after",
	"failure_threshold", "success_threshold", "isolation",
	"isolation_max_rss", "history", "options", "depends_on", NULL,
};

/* interval, timeout, the thresholds and the isolation of `map` (the
 * defaults section or one check) over what *t holds; `prefix` starts each
 * label. */
static int inherited_load(struct ctx *c, const struct node *map,
		       const char *prefix, struct inherited *t)
{
	char l_int[48], l_tmo[48], l_fail[48], l_succ[48];
	struct at interval, timeout, a;

	snprintf(l_int, sizeof(l_int), "%sinterval", prefix);
	snprintf(l_tmo, sizeof(l_tmo), "%stimeout", prefix);
	snprintf(l_fail, sizeof(l_fail), "%sfailure_threshold", prefix);
	snprintf(l_succ, sizeof(l_succ), "%ssuccess_threshold", prefix);
	if (map_get(map, "interval", l_int, &interval) &&
	    field_duration(c, &interval, false, &t->interval_ms) < 0)
		return -1;
	if (map_get(map, "timeout", l_tmo, &timeout) &&
	    field_duration(c, &timeout, false, &t->timeout_ms) < 0)
		return -1;
	/* Point at whichever of the two this map sets; with neither set the
	 * inherited pair was checked already. */
	if (t->timeout_ms > t->interval_ms && timeout.val)
		return at_bad(c, &timeout,
			      "is longer than the interval; the timeout must not "
			      "exceed the interval");
	if (t->timeout_ms > t->interval_ms)
		return at_bad(c, &interval,
			      "is shorter than the timeout; the timeout must not "
			      "exceed the interval");
	if (map_get(map, "failure_threshold", l_fail, &a) &&
	    field_int(c, &a, 1, INT_MAX, &t->failure_threshold) < 0)
		return -1;
	if (map_get(map, "success_threshold", l_succ, &a) &&
	    field_int(c, &a, 1, INT_MAX, &t->success_threshold) < 0)
		return -1;
	snprintf(l_fail, sizeof(l_fail), "%sisolation", prefix);
	if (map_get(map, "isolation", l_fail, &a) &&
	    field_enum(c, &a, isolation_names, &t->isolation) < 0)
		return -1;
	snprintf(l_fail, sizeof(l_fail), "%sisolation_max_rss", prefix);
	if (map_get(map, "isolation_max_rss", l_fail, &a) &&
	    field_size(c, &a, &t->max_rss) < 0)
		return -1;
	snprintf(l_fail, sizeof(l_fail), "%shistory", prefix);
	if (map_get(map, "history", l_fail, &a) &&
	    field_int(c, &a, 0, CONFIG_HISTORY_MAX, &t->history) < 0)
		return -1;
	return 0;
}

/* depends_on: a list of check names, each once, not the check's own.
 * Whether they exist and make no cycle is seen once every check is
 * loaded (deps_check()). */
static int depends_load(struct ctx *c, const struct at *a,
			struct config_check *chk)
{
	const struct node *list = a->val;

	if (list->type == NODE_NULL)
		return 0;
	if (list->type != NODE_LIST)
		return at_fail(c, a, "expected a list of check names, found %s",
			       node_kind(list));
	if (list->n && !(chk->depends_on = calloc(list->n, sizeof(*chk->depends_on))))
		return ctx_oom(c);
	for (size_t i = 0; i < list->n; i++) {
		struct at ia = {NULL, list->kids[i], a->label};
		struct config_dep *d = &chk->depends_on[chk->n_depends_on];

		if (field_text(c, &ia, "a check name", &d->name) < 0)
			return -1;
		chk->n_depends_on++;
		d->line = ia.val->line;
		d->col = ia.val->col;
		if (!is_check_name(d->name))
			return at_bad(c, &ia, "is not a valid check name (expected [a-z0-9][a-z0-9_.-]*)");
		if (!strcmp(d->name, chk->name))
			return at_bad(c, &ia, "is the check itself: a check cannot depend on itself");
		for (size_t j = 0; j + 1 < chk->n_depends_on; j++)
			if (!strcmp(chk->depends_on[j].name, d->name))
				return at_bad(c, &ia, "is listed twice");
	}
	return 0;
}

static int check_load(struct ctx *c, const struct node *map, size_t idx,
		      struct config *cfg, const struct inherited *d,
		      struct hsearch_data *names)
{
	struct config_check *chk = &cfg->checks[idx];
	struct inherited t = *d;
	struct at name, a;
	char where[128];

	if (map->type != NODE_MAP)
		return ctx_fail_at(c, map->line, map->col,
				   "check #%zu: expected a mapping, found %s",
				   idx + 1, node_kind(map));
	chk->line = map->line;
	chk->col = map->col;
	chk->critical = true;

	if (!map_get(map, "name", "name", &name))
		return ctx_fail_at(c, map->line, map->col,
				   "check #%zu: name is required", idx + 1);
	if (field_string(c, &name, &chk->name) < 0)
		return -1;
	if (!is_check_name(chk->name))
		return at_bad(c, &name,
			      "is not a valid check name (expected [a-z0-9][a-z0-9_.-]*)");
	/* Names seen so far, in a hash table: a reload of thousands of
	 * checks stays linear. */
	ENTRY seen = {.key = chk->name, .data = chk}, *first;
	if (!hsearch_r(seen, ENTER, &first, names))
		return ctx_oom(c);
	if (first->data != chk)
		return ctx_fail_at(c, name.key->line, name.key->col,
				   "check \"%s\" is defined twice (first at line %d)",
				   chk->name,
				   ((struct config_check *)first->data)->line);
	snprintf(where, sizeof(where), " in check \"%s\"", chk->name);
	if (map_check_keys(c, map, check_keys, where) < 0)
		return -1;

	if (!map_get(map, "plugin", "plugin", &a))
		return ctx_fail_at(c, map->line, map->col,
				   "check \"%s\": plugin is required "
				   "(a plugin name or a path to a .so)",
				   chk->name);
	if (field_string(c, &a, &chk->plugin) < 0)
		return -1;
	if (!*chk->plugin)
		return at_fail(c, &a, "must not be empty");
	if (map_get(map, "critical", "critical", &a) &&
	    field_bool(c, &a, &chk->critical) < 0)
		return -1;
	if (inherited_load(c, map, "", &t) < 0)
		return -1;
	chk->interval_ms = t.interval_ms;
	chk->timeout_ms = t.timeout_ms;
	chk->failure_threshold = t.failure_threshold;
	chk->success_threshold = t.success_threshold;
	chk->isolation = (enum config_isolation)t.isolation;
	chk->max_rss = t.max_rss;
	chk->history = t.history;
	if (map_get(map, "warn_after", "warn_after", &a)) {
		if (field_duration(c, &a, true, &chk->warn_after_ms) < 0)
			return -1;
		if (chk->warn_after_ms >= chk->timeout_ms)
			return at_bad(c, &a, "must be shorter than the timeout");
	}
	if (map_get(map, "options", "options", &a) && a.val->type != NODE_NULL) {
		if (a.val->type != NODE_MAP)
			return at_fail(c, &a, "expected a mapping, found %s",
				       node_kind(a.val));
		if (options_load(c, chk, a.val, NULL) < 0)
			return -1;
	}
	if (map_get(map, "depends_on", "depends_on", &a) &&
	    depends_load(c, &a, chk) < 0)
		return -1;
	return 0;
}

/* Walking depends_on from one check: the checks on the way (to name a
 * cycle) and what is known of each. */
struct dep_walk {
	struct ctx *c;
	struct config *cfg;
	struct hsearch_data *names;
	const bool *failed; /* checks already reported: not walked into */
	enum { DEP_NEW, DEP_ON_PATH, DEP_DONE } *mark;
	int *depth;  /* DEP_DONE: the longest chain below, in checks */
	size_t *path;
	size_t n_path;
};

static size_t dep_index(struct dep_walk *w, const char *name)
{
	ENTRY e = {.key = (char *)name}, *found;

	if (!hsearch_r(e, FIND, &found, w->names))
		return SIZE_MAX;
	return (size_t)((struct config_check *)found->data - w->cfg->checks);
}

/* Depth first from check i: every name exists and no chain comes back
 * to a check on it.  Returns 0 or -1 (reported at the name that closes
 * the cycle, or names no check). */
static int dep_visit(struct dep_walk *w, size_t i)
{
	struct config_check *chk = &w->cfg->checks[i];
	int rc = 0, deepest = 0;

	w->mark[i] = DEP_ON_PATH;
	w->path[w->n_path++] = i;
	for (size_t k = 0; k < chk->n_depends_on; k++) {
		const struct config_dep *d = &chk->depends_on[k];
		size_t j = dep_index(w, d->name);

		if (j == SIZE_MAX) {
			ctx_fail_at(w->c, d->line, d->col,
				    "check \"%s\": depends_on: no check is named \"%s\"",
				    chk->name, d->name);
			rc = -1;
			continue;
		}
		if (w->failed[j])
			continue;
		if (w->mark[j] == DEP_ON_PATH) {
			char cycle[768];
			size_t len = 0, from = w->n_path;

			while (from > 0 && w->path[from - 1] != j)
				from--;
			for (size_t p = from - 1; p < w->n_path && len < sizeof(cycle); p++)
				len += (size_t)snprintf(cycle + len, sizeof(cycle) - len,
							"%s -> ", w->cfg->checks[w->path[p]].name);
			if (len < sizeof(cycle))
				snprintf(cycle + len, sizeof(cycle) - len, "%s", d->name);
			ctx_fail_at(w->c, d->line, d->col,
				    "check \"%s\": depends_on: a cycle: %s",
				    chk->name, cycle);
			rc = -1;
			continue;
		}
		/* The walk recurses once per check of a chain: bound it. */
		if (w->mark[j] == DEP_NEW && w->n_path >= CONFIG_DEPENDS_DEPTH_MAX) {
			ctx_fail_at(w->c, d->line, d->col,
				    "check \"%s\": depends_on: a chain of more than %d checks",
				    chk->name, CONFIG_DEPENDS_DEPTH_MAX);
			rc = -1;
			break;
		}
		if (w->mark[j] == DEP_NEW && dep_visit(w, j) < 0) {
			rc = -1;
			if (!w->c->problems)
				break;
		}
		if (w->depth[j] > deepest)
			deepest = w->depth[j];
		if (rc < 0 && !w->c->problems)
			break;
	}
	w->n_path--;
	w->mark[i] = DEP_DONE;
	w->depth[i] = deepest + 1;
	return rc;
}

/* Every check's depends_on names checks that exist, in no cycle; the
 * longest chain goes to cfg->dependency_depth.  Checks that failed are
 * neither checked nor followed. */
static int deps_check(struct ctx *c, struct config *cfg,
		      struct hsearch_data *names, const bool *failed)
{
	size_t n = cfg->n_checks;
	struct dep_walk w = {c, cfg, names, failed, calloc(n, sizeof(*w.mark)),
			     calloc(n, sizeof(int)), calloc(n, sizeof(size_t)), 0};
	int rc = 0;

	for (size_t i = 0; i < n && w.mark && w.depth && w.path; i++) {
		if (w.mark[i] != DEP_NEW || failed[i])
			continue;
		if (dep_visit(&w, i) < 0) {
			rc = -1;
			if (!c->problems)
				break;
		}
	}
	if (!w.mark || !w.depth || !w.path)
		rc = ctx_oom(c);
	for (size_t i = 0; i < n && w.depth; i++)
		if (w.depth[i] - 1 > cfg->dependency_depth)
			cfg->dependency_depth = w.depth[i] - 1;
	free(w.mark);
	free(w.depth);
	free(w.path);
	return rc;
}

static const char *const defaults_keys[] = {
	"interval", "timeout", "failure_threshold", "success_threshold",
	"isolation", "isolation_max_rss", "history", NULL,
};

static int defaults_load(struct ctx *c, const struct node *root,
			 struct inherited *d)
{
	const struct node *sec;

	d->interval_ms = 10000;
	d->timeout_ms = 3000;
	d->failure_threshold = 3;
	d->success_threshold = 1;
	d->isolation = ISOLATION_PROCESS;
	d->max_rss = CONFIG_MAX_RSS_DEFAULT;
	d->history = CONFIG_HISTORY_DEFAULT;
	if (section(c, root, "defaults", defaults_keys, &sec) < 0)
		return -1;
	return inherited_load(c, sec, "defaults.", d);
}

/* Leave out the checks a validation found errors in. */
static void checks_drop_failed(struct config *cfg, const bool *failed)
{
	size_t kept = 0;

	for (size_t i = 0; i < cfg->n_checks; i++) {
		if (failed[i])
			config_check_clear(&cfg->checks[i]);
		else
			cfg->checks[kept++] = cfg->checks[i];
	}
	cfg->n_checks = kept;
}

static int checks_load(struct ctx *c, const struct node *root,
		       struct config *cfg)
{
	struct inherited d;
	struct at a;

	if (defaults_load(c, root, &d) < 0)
		return -1;
	if (!map_get(root, "checks", "checks", &a) || a.val->type == NODE_NULL)
		return 0;
	if (a.val->type != NODE_LIST)
		return at_fail(c, &a, "expected a list of checks, found %s",
			       node_kind(a.val));
	if (!a.val->n)
		return 0;
	cfg->checks = calloc(a.val->n, sizeof(*cfg->checks));
	if (!cfg->checks)
		return ctx_oom(c);
	cfg->n_checks = a.val->n;
	struct hsearch_data names = {0};
	if (!hcreate_r(a.val->n * 2, &names))
		return ctx_oom(c);
	/* Validating, a check with an error is left out and the others go
	 * on; its name stays taken, so a duplicate is still reported. */
	bool *failed = calloc(a.val->n, sizeof(*failed));
	int rc = failed ? 0 : ctx_oom(c);
	for (size_t i = 0; i < a.val->n && failed; i++) {
		if (check_load(c, a.val->kids[i], i, cfg, &d, &names) == 0)
			continue;
		rc = -1;
		failed[i] = true;
		if (!c->problems)
			break;
	}
	if (failed && (rc == 0 || c->problems) &&
	    deps_check(c, cfg, &names, failed) < 0)
		rc = -1;
	hdestroy_r(&names);
	if (rc < 0 && c->problems && failed)
		checks_drop_failed(cfg, failed);
	free(failed);
	return rc;
}

/* --- the rest of the file ------------------------------------------------ */

static const char *const top_keys[] = {
	"listen", "base_path", "service", "metrics", "log", "plugin_dirs", "server",
	"workers", "details", "details_token_file", "shutdown", "control",
	"defaults", "checks", NULL,
};
static const char *const log_keys[] = {"level", "format", NULL};
static const char *const server_keys[] = {
	"threads", "max_connections", "connection_timeout", NULL,
};
static const char *const shutdown_keys[] = {"drain", NULL};
static const char *const control_keys[] = {"socket", NULL};
static const char *const format_names[] = {"json", "text", NULL};
static const char *const details_names[] = {"public", "token", "hidden", NULL};

static void strings_free(char **dirs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
}

static int plugin_dirs_load(struct ctx *c, const struct at *a,
			    struct config *cfg)
{
	const struct node *list = a->val;
	char **dirs = NULL;
	size_t n = 0;

	if (list->type != NODE_NULL && list->type != NODE_LIST)
		return at_fail(c, a, "expected a list of directories, found %s",
			       node_kind(list));
	if (list->n && !(dirs = calloc(list->n, sizeof(*dirs))))
		return ctx_oom(c);
	for (; n < list->n; n++) {
		struct at ia = {NULL, list->kids[n], a->label};

		if (field_text(c, &ia, "a directory", &dirs[n]) < 0)
			goto fail;
		if (!*dirs[n]) {
			at_fail(c, &ia, "a directory must not be empty");
			n++;
			goto fail;
		}
	}
	strings_free(cfg->plugin_dirs, cfg->n_plugin_dirs);
	cfg->plugin_dirs = dirs;
	cfg->n_plugin_dirs = n;
	return 0;
fail:
	strings_free(dirs, n);
	return -1;
}

static int listen_load(struct ctx *c, const struct at *a, struct config *cfg)
{
	char *s;
	int rc = 0;

	if (field_text(c, a, "an address", &s) < 0)
		return -1;
	if (set_listen(cfg, s) < 0)
		rc = at_bad(c, a,
			    "is not an address (expected [host]:port with port "
			    "1-65535, e.g. \":8000\" or \"[::]:8000\")");
	config_secret_free(s);
	return rc;
}

static int base_path_load(struct ctx *c, const struct at *a,
			  struct config *cfg)
{
	char *s;
	size_t n;

	if (field_text(c, a, "a path", &s) < 0)
		return -1;
	if (s[0] != '/' || s[strcspn(s, " \t\r\n?#")]) {
		config_secret_free(s);
		return at_bad(c, a,
			      "is not a URL path (expected one starting with '/', "
			      "without spaces, '?' or '#')");
	}
	for (n = strlen(s); n && s[n - 1] == '/'; n--)
		s[n - 1] = '\0';
	free(cfg->base_path);
	cfg->base_path = s;
	return 0;
}

/* A name for people and label values: printable, short. */
static int service_load(struct ctx *c, const struct at *a, struct config *cfg)
{
	char *s;
	size_t n;

	if (field_text(c, a, "a name", &s) < 0)
		return -1;
	n = strlen(s);
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			n = 0;
	}
	if (n == 0 || n > CONFIG_SERVICE_MAX) {
		config_secret_free(s);
		return at_bad(c, a, "is not a service name (1 to %d printable "
				    "characters)", CONFIG_SERVICE_MAX);
	}
	free(cfg->service);
	cfg->service = s;
	return 0;
}

static int log_load(struct ctx *c, const struct node *root, struct config *cfg)
{
	const struct node *sec;
	struct at a;
	char *s;
	int v;

	if (section(c, root, "log", log_keys, &sec) < 0)
		return -1;
	if (map_get(sec, "level", "log.level", &a)) {
		if (field_text(c, &a, "a log level", &s) < 0)
			return -1;
		v = log_level_parse(s, &cfg->log_level);
		config_secret_free(s);
		if (v < 0)
			return at_bad(c, &a, "is not valid (expected one of: "
					     "debug, info, warn, error)");
	}
	if (map_get(sec, "format", "log.format", &a)) {
		if (field_enum(c, &a, format_names, &v) < 0)
			return -1;
		cfg->log_format = v ? LOG_TEXT : LOG_JSON;
	}
	return 0;
}

static int server_load(struct ctx *c, const struct node *root,
		       struct config *cfg)
{
	const struct node *sec;
	struct at a;

	if (section(c, root, "server", server_keys, &sec) < 0)
		return -1;
	if (map_get(sec, "threads", "server.threads", &a) &&
	    field_int(c, &a, 0, CONFIG_THREADS_MAX, &cfg->server_threads) < 0)
		return -1;
	if (map_get(sec, "max_connections", "server.max_connections", &a) &&
	    field_int(c, &a, 1, INT_MAX, &cfg->max_connections) < 0)
		return -1;
	if (map_get(sec, "connection_timeout", "server.connection_timeout", &a) &&
	    field_duration(c, &a, false, &cfg->connection_timeout_ms) < 0)
		return -1;
	if (section(c, root, "shutdown", shutdown_keys, &sec) < 0)
		return -1;
	if (map_get(sec, "drain", "shutdown.drain", &a) &&
	    field_duration(c, &a, true, &cfg->drain_ms) < 0)
		return -1;
	if (map_get(root, "workers", "workers", &a) &&
	    field_int(c, &a, 1, CONFIG_THREADS_MAX, &cfg->workers) < 0)
		return -1;
	return 0;
}

/* control.socket: "" (off) or an absolute path that fits a sockaddr_un. */
static int control_load(struct ctx *c, const struct node *root,
			struct config *cfg)
{
	const struct node *sec;
	struct at a;
	char *s;

	if (section(c, root, "control", control_keys, &sec) < 0)
		return -1;
	if (!map_get(sec, "socket", "control.socket", &a))
		return 0;
	if (field_text(c, &a, "a socket path", &s) < 0)
		return -1;
	if (*s && (s[0] != '/' || strlen(s) > CONFIG_SOCKET_PATH_MAX)) {
		free(s);
		return at_bad(c, &a, "is not a socket path (expected an absolute "
				     "path of at most %d bytes, or \"\" for none)",
			      CONFIG_SOCKET_PATH_MAX);
	}
	free(cfg->control_socket);
	cfg->control_socket = s;
	return 0;
}

/* details, and the token read now so a missing secret fails the load. */
static int details_load(struct ctx *c, const struct node *root,
			struct config *cfg)
{
	struct buf token = {0};
	struct at a, file;
	char eb[512], *path = NULL;
	bool expanded;
	int v;

	if (map_get(root, "details", "details", &a)) {
		if (field_enum(c, &a, details_names, &v) < 0)
			return -1;
		cfg->details = (enum config_details)v;
	}
	if (!map_get(root, "details_token_file", "details_token_file", &file)) {
		if (cfg->details == DETAILS_TOKEN)
			return at_fail(c, &a,
				       "token needs details_token_file (a file "
				       "holding the bearer token)");
		return 0;
	}
	if (field_text(c, &file, "a file path", &path) < 0)
		return -1;
	/* Only read when used: a stale path must not block other modes. */
	if (cfg->details != DETAILS_TOKEN) {
		free(path);
		return 0;
	}
	/* A path an expansion made may hold a secret: such a path is named
	 * as typed (fuzz_config found it in the message). */
	expanded = strstr(file.val->text, "${") != NULL;
	if (input_read(c->cfg, path, &token, eb, sizeof(eb)) < 0) {
		if (expanded)
			at_bad(c, &file, "cannot be read");
		else
			at_fail(c, &file, "%s", eb);
		goto fail;
	}
	if (!token.len) {
		if (expanded)
			at_bad(c, &file, "is empty");
		else
			at_fail(c, &file, "%s is empty", path);
		goto fail;
	}
	cfg->details_token = token.p;
	free(path);
	return 0;
fail:
	buf_free(&token);
	free(path);
	return -1;
}

static int root_load(struct ctx *c, const struct node *root,
		     struct config *cfg)
{
	struct at a;

	if (!root || root->type == NODE_NULL)
		return 0;
	if (root->type != NODE_MAP)
		return ctx_fail_at(c, root->line, root->col,
				   "expected a mapping of settings, found %s",
				   node_kind(root));
	int rc = 0;

	if (stop_at(c, map_check_keys(c, root, top_keys, ""), &rc))
		return -1;
	if (map_get(root, "listen", "listen", &a) &&
	    stop_at(c, listen_load(c, &a, cfg), &rc))
		return -1;
	if (map_get(root, "base_path", "base_path", &a) &&
	    stop_at(c, base_path_load(c, &a, cfg), &rc))
		return -1;
	if (map_get(root, "service", "service", &a) &&
	    stop_at(c, service_load(c, &a, cfg), &rc))
		return -1;
	if (map_get(root, "metrics", "metrics", &a) &&
	    stop_at(c, field_bool(c, &a, &cfg->metrics), &rc))
		return -1;
	if (stop_at(c, log_load(c, root, cfg), &rc))
		return -1;
	if (map_get(root, "plugin_dirs", "plugin_dirs", &a) &&
	    stop_at(c, plugin_dirs_load(c, &a, cfg), &rc))
		return -1;
	if (stop_at(c, server_load(c, root, cfg), &rc) ||
	    stop_at(c, details_load(c, root, cfg), &rc) ||
	    stop_at(c, control_load(c, root, cfg), &rc) ||
	    stop_at(c, checks_load(c, root, cfg), &rc))
		return -1;
	return rc;
}

char *const config_default_plugin_dirs[CONFIG_DEFAULT_PLUGIN_DIRS] = {
	HEALTHD_DEFAULT_PLUGIN_DIR,
	"/opt/healthd/plugins",
};

static int defaults_set(struct config *cfg, const char *path)
{
	char *const *dirs = config_default_plugin_dirs;

	cfg->path = strdup(path);
	cfg->base_path = strdup("/api/v1/health");
	cfg->service = strdup("healthd");
	cfg->control_socket = strdup(CONFIG_CONTROL_SOCKET_DEFAULT);
	cfg->plugin_dirs = calloc(CONFIG_DEFAULT_PLUGIN_DIRS,
				  sizeof(*cfg->plugin_dirs));
	if (!cfg->path || !cfg->base_path || !cfg->service ||
	    !cfg->control_socket || !cfg->plugin_dirs)
		return -1;
	for (; cfg->n_plugin_dirs < CONFIG_DEFAULT_PLUGIN_DIRS;
	     cfg->n_plugin_dirs++) {
		cfg->plugin_dirs[cfg->n_plugin_dirs] =
			strdup(dirs[cfg->n_plugin_dirs]);
		if (!cfg->plugin_dirs[cfg->n_plugin_dirs])
			return -1;
	}
	cfg->metrics = true;
	cfg->log_level = LOG_INFO;
	cfg->log_format = LOG_JSON;
	cfg->server_threads = 0;
	cfg->max_connections = 512;
	cfg->connection_timeout_ms = 10000;
	cfg->workers = 4;
	cfg->details = DETAILS_PUBLIC;
	cfg->drain_ms = 5000;
	return set_listen(cfg, "0.0.0.0:8000");
}

/* HEALTHD_LOG_LEVEL and HEALTHD_LISTEN win over the file; empty is unset. */
static int env_apply(struct ctx *c, struct config *cfg)
{
	const char *v = getenv("HEALTHD_LOG_LEVEL");
	char q[QUOTE_SIZE];

	if (v && *v && log_level_parse(v, &cfg->log_level) < 0) {
		quote(q, sizeof(q), v);
		snprintf(c->err, c->errlen,
			"HEALTHD_LOG_LEVEL: %s is not valid (expected one of: "
			"debug, info, warn, error)", q);
		return -1;
	}
	v = getenv("HEALTHD_LISTEN");
	if (v && *v && set_listen(cfg, v) < 0) {
		quote(q, sizeof(q), v);
		snprintf(c->err, c->errlen,
			"HEALTHD_LISTEN: %s is not an address (expected "
			"[host]:port with port 1-65535, e.g. \":8000\" or "
			"\"[::]:8000\")", q);
		return -1;
	}
	return 0;
}

/* The config file, whole: the very bytes parsed are the ones hashed. */
static int config_read(struct ctx *c, struct buf *text)
{
	char eb[128], chunk[4096];
	struct stat st;
	size_t n;
	int rc = 0;
	FILE *f = fopen(c->path, "re");

	if (!f)
		return ctx_fail_at(c, 0, 0, "cannot read: %s",
				   strerror_r(errno, eb, sizeof(eb)));
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode))
		rc = ctx_fail_at(c, 0, 0, "cannot read: is a directory");
	if (rc == 0 && buf_add(text, "", 0) < 0)
		rc = ctx_oom(c);
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_add(text, chunk, n) < 0)
			rc = ctx_oom(c);
	if (rc == 0 && ferror(f))
		rc = ctx_fail_at(c, 0, 0, "cannot read: %s",
				 strerror_r(errno, eb, sizeof(eb)));
	explicit_bzero(chunk, sizeof(chunk));
	fclose(f);
	return rc;
}

/* Load `path` into *out, or `data` as if read from it; `c` says whether
 * to stop at the first error. */
static int load(struct ctx *c, const char *path, const char *data,
		size_t len, struct config **out)
{
	struct config *cfg = NULL;
	struct node *root = NULL;
	struct buf text = {0};
	int rc;

	*out = NULL;
	snprintf(c->err, c->errlen, "%s", "");
	if (data)
		rc = buf_add(&text, "", 0) < 0 || buf_add(&text, data, len) < 0
			     ? ctx_oom(c)
			     : 0;
	else
		rc = config_read(c, &text);
	if (rc < 0 || tree_load(c, text.p, text.len, &root) < 0)
		goto fail;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || defaults_set(cfg, path) < 0) {
		ctx_oom(c);
		goto fail;
	}
	/* The inputs follow, as root_load() reads them. */
	cfg->hash = hash_bytes(hash_file_start(HASH_INIT, true), text.p,
			       text.len);
	cfg->file_hash = hash_bytes(HASH_INIT, text.p, text.len);
	buf_free(&text);
	c->cfg = cfg;
	rc = root_load(c, root, cfg);
	if (rc == 0 || c->problems) {
		if (env_apply(c, cfg) < 0) {
			rc = -1;
			/* Not the file's: no place in it. */
			if (c->problems)
				(void)config_problems_add(c->problems, NULL,
							  c->err);
		}
	}
	if (rc < 0 && !c->problems)
		goto fail;
	node_free(root);
	*out = cfg;
	return 0;
fail:
	buf_free(&text);
	node_free(root);
	config_free(cfg);
	return -1;
}

int config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct ctx c = {.path = path, .err = err, .errlen = errlen};

	return load(&c, path, NULL, 0, out);
}

int config_load_text(const char *path, const char *text, size_t len,
		     struct config **out, char *err, size_t errlen)
{
	struct ctx c = {.path = path, .err = err, .errlen = errlen};

	return load(&c, path, text, len, out);
}

int config_load_all(const char *path, struct config **out,
		    struct config_problems *problems)
{
	char err[1400];
	struct ctx c = {.path = path, .err = err, .errlen = sizeof(err),
			.problems = problems};

	return load(&c, path, NULL, 0, out);
}

int config_problems_add(struct config_problems *p, const char *file,
			const char *text)
{
	struct config_problem *list =
		realloc(p->list, (p->n + 1) * sizeof(*p->list));
	size_t flen = file ? strlen(file) : 0;
	const char *message = text;
	int line = 0, col = 0, used = 0;

	if (!list)
		return -ENOMEM;
	p->list = list;
	/* "FILE:LINE:COL: message" or "FILE: message": the parts, for
	 * --check-config --json. */
	if (file && !strncmp(text, file, flen) && text[flen] == ':') {
		if (sscanf(text + flen, ":%d:%d: %n", &line, &col, &used) == 2 &&
		    used)
			message = text + flen + used;
		else if (text[flen + 1] == ' ')
			message = text + flen + 2;
		if (message == text)
			line = col = 0;
	}
	list[p->n] = (struct config_problem){strdup(text), strdup(message),
					      line, col};
	if (!list[p->n].text || !list[p->n].message) {
		free(list[p->n].text);
		free(list[p->n].message);
		return -ENOMEM;
	}
	p->n++;
	return 0;
}

static int problem_cmp(const void *a, const void *b)
{
	const struct config_problem *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x < y ? -1 : x > y; /* found first, said first */
}

void config_problems_sort(struct config_problems *p)
{
	if (p->n > 1)
		qsort(p->list, p->n, sizeof(*p->list), problem_cmp);
}

void config_problems_free(struct config_problems *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->list[i].text);
		free(p->list[i].message);
	}
	free(p->list);
	memset(p, 0, sizeof(*p));
}

void config_check_clear(struct config_check *chk)
{
	for (size_t i = 0; i < chk->n_options; i++)
		option_clear(&chk->options[i]);
	free(chk->options);
	for (size_t i = 0; i < chk->n_depends_on; i++)
		free(chk->depends_on[i].name);
	free(chk->depends_on);
	free(chk->name);
	free(chk->plugin);
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_checks; i++)
		config_check_clear(&cfg->checks[i]);
	free(cfg->checks);
	strings_free(cfg->plugin_dirs, cfg->n_plugin_dirs);
	strings_free(cfg->inputs, cfg->n_inputs);
	free(cfg->input_hashes);
	config_secret_free(cfg->details_token);
	free(cfg->path);
	free(cfg->listen);
	free(cfg->listen_host);
	free(cfg->base_path);
	free(cfg->service);
	free(cfg->control_socket);
	free(cfg);
}

static const struct config_option *option_find(const struct config_check *chk,
					       const char *key)
{
	for (size_t i = 0; i < chk->n_options; i++)
		if (!strcmp(chk->options[i].key, key))
			return &chk->options[i];
	return NULL;
}

/* Same value and the same secrets (none twice, so equal counts and every
 * one of `a` in `b` make equal sets): redacted the same way. */
static int option_equal(const struct config_option *a,
			const struct config_option *b)
{
	if (strcmp(a->value, b->value) || a->n_secrets != b->n_secrets)
		return 0;
	for (size_t i = 0; i < a->n_secrets; i++) {
		size_t j = 0;

		while (j < b->n_secrets && strcmp(a->secrets[i], b->secrets[j]))
			j++;
		if (j == b->n_secrets)
			return 0;
	}
	return 1;
}

int config_check_equal(const struct config_check *a,
		       const struct config_check *b)
{
	if (!a || !b || strcmp(a->plugin, b->plugin) ||
	    a->critical != b->critical || a->interval_ms != b->interval_ms ||
	    a->timeout_ms != b->timeout_ms ||
	    a->warn_after_ms != b->warn_after_ms ||
	    a->failure_threshold != b->failure_threshold ||
	    a->success_threshold != b->success_threshold ||
	    a->isolation != b->isolation || a->max_rss != b->max_rss ||
	    a->history != b->history ||
	    a->n_options != b->n_options ||
	    a->n_depends_on != b->n_depends_on)
		return 0;
	for (size_t i = 0; i < a->n_depends_on; i++)
		if (strcmp(a->depends_on[i].name, b->depends_on[i].name))
			return 0;
	/* Keys are unique within a check, so equal counts and every key of
	 * `a` found in `b`, equal, make equal sets. */
	for (size_t i = 0; i < a->n_options; i++) {
		const struct config_option *o = option_find(b, a->options[i].key);

		if (!o || !option_equal(&a->options[i], o))
			return 0;
	}
	return 1;
}

int config_check_copy(struct config_check *dst, const struct config_check *src)
{
	*dst = *src;
	dst->name = strdup(src->name);
	dst->plugin = strdup(src->plugin);
	dst->options = calloc(src->n_options ? src->n_options : 1,
			      sizeof(*dst->options));
	dst->n_options = 0;
	dst->depends_on = calloc(src->n_depends_on ? src->n_depends_on : 1,
				 sizeof(*dst->depends_on));
	dst->n_depends_on = 0;
	if (!dst->name || !dst->plugin || !dst->options || !dst->depends_on)
		goto fail;
	for (size_t i = 0; i < src->n_depends_on; i++) {
		dst->depends_on[i] = src->depends_on[i];
		dst->depends_on[i].name = strdup(src->depends_on[i].name);
		dst->n_depends_on++;
		if (!dst->depends_on[i].name)
			goto fail;
	}
	for (size_t i = 0; i < src->n_options; i++) {
		const struct config_option *so = &src->options[i];
		struct config_option *o = &dst->options[i];

		*o = (struct config_option){.key = strdup(so->key),
					    .value = strdup(so->value),
					    .line = so->line, .col = so->col};
		dst->n_options++;
		if (!o->key || !o->value)
			goto fail;
		for (size_t j = 0; j < so->n_secrets; j++)
			if (secret_add(o, so->secrets[j],
				       strlen(so->secrets[j])) < 0)
				goto fail;
	}
	return 0;
fail:
	config_check_clear(dst);
	memset(dst, 0, sizeof(*dst));
	return -ENOMEM;
}
