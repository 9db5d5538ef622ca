/* fuzz_frame.c — what a plugin host sends -> the daemon's decoder
 * (frame.c) and the handlers of isolate.c (on_hello, on_created,
 * on_result, on_log, on_load_failed), through host_read() over a real
 * SOCK_SEQPACKET pair.  isolate.c is included: its handlers are static,
 * and this needs no edit to it.  Asserts: no crash or over-read, a frame
 * that does not decode (or is over FRAME_MAX) ends the host as a protocol
 * error, and what a handler took is a string as long as it says. */
#include "../../core/isolate.c"

#include "fuzz.h"

static int pair[2] = {-1, -1};
static unsigned char *buf;
static struct config_check cc = {.name = "chk"};
static struct family fam = {.base = "fz", .path = "/fuzz/fz.so"};
static struct iso_instance inst = {.id = 7, .fam = &fam, .def = &cc};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int size = 4 * FRAME_MAX;

	(void)argc;
	(void)argv;
	log_configure(LOG_ERROR, LOG_JSON);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
		abort();
	setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(pair[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	buf = malloc(FRAME_MAX);
	fam.instances = &inst;
	fam.n_instances = 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	uint8_t mode = fuzz_u8(&in);
	/* A pid no process has (pid_max is at most 2^22): host_kill() of a
	 * broken host must hit nothing. */
	struct phost h = {.fam = &fam, .pid = 0x3FFFFFFF, .sock = pair[0],
			  .out = {-1, -1}, .ended = REASON_NONE,
			  .state = mode & 1 ? HOST_READY : HOST_STARTING};
	struct pending create = {.run = false, .id = 7, .check = "chk"};
	struct pending run = {.run = true, .id = 9, .check = "chk"};
	size_t sent = 0;
	bool oversized = false;

	create.next = &run;
	h.pending = &create;
	fam.current = &h;
	/* Frames: a 16-bit length, then that many bytes (the last takes the
	 * rest).  Mode bit 1: the first is padded past FRAME_MAX. */
	while (in.n && sent < ISOLATE_FRAMES_PER_TURN) {
		size_t len = in.n >= 2 ? (size_t)in.p[0] | (size_t)in.p[1] << 8 : 0;
		const uint8_t *p;

		in.p += in.n >= 2 ? 2 : in.n;
		in.n -= in.n >= 2 ? 2 : in.n;
		len = len < in.n ? len : in.n;
		p = in.p;
		in.p += len;
		in.n -= len;
		if (!sent && (mode & 2)) {
			unsigned char *big = calloc(1, FRAME_MAX + 1);

			memcpy(big, p, len);
			oversized = send(pair[1], big, FRAME_MAX + 1, 0) == FRAME_MAX + 1;
			free(big);
		} else if (send(pair[1], p, len, 0) != (ssize_t)len) {
			break;
		}
		sent++;
	}
	pthread_mutex_lock(&iso.lock);
	host_read(&h, buf);
	pthread_mutex_unlock(&iso.lock);
	if (oversized)
		FUZZ_ASSERT(h.ended == REASON_PROTOCOL);
	/* Whatever host_read() left unread (after a broken frame, or an
	 * empty one, which it takes for the end) goes. */
	while (recv(pair[0], buf, FRAME_MAX, MSG_DONTWAIT | MSG_TRUNC) >= 0)
		;
	/* Both, whichever a frame took off the list. */
	struct pending *both[] = {&create, &run};
	for (size_t i = 0; i < 2; i++) {
		struct pending *p = both[i];

		if (p->done && p->text)
			FUZZ_ASSERT(strlen(p->text) <= FRAME_STR_MAX);
		free(p->text);
		free(p->details);
	}
	if (h.state == HOST_READY && !(mode & 1))
		FUZZ_ASSERT(fam.desc.name && !strcmp(fam.desc.name, "fz"));
	family_forget_specs(&fam);
	free(fam.load_error);
	fam.load_error = NULL;
	fam.crashes = 0;
	return 0;
}
