/* fuzz_exec.c — a command's stdout -> the exec plugin's message and
 * performance data (exec_output(), plugins/exec/exec.c, included: the
 * parser is static and the file is not edited for this).  Asserts: the
 * message is one line of well-formed UTF-8, the details are a JSON object
 * that parses strictly, at most 32 metrics are recorded. */
#include "../../plugins/exec/exec.c"

#include "config.h"
#include "fuzz.h"
#include "host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_check cc = {.name = "exec"};
	struct healthd_check check;
	struct healthd_result result;
	struct exec_perf perf = {.host = &host_api, .result = &result};
	char message[EXEC_MESSAGE_MAX * 4 + 1];
	bool truncated = size && data[0] & 1;
	char *out;

	if (size > EXEC_OUTPUT_CAP + 1)
		return 0;
	/* An exact copy past the flag byte: ASan sees any read beyond it. */
	size -= size > 0;
	out = malloc(size ? size : 1);
	memcpy(out, data + (data != NULL && size ? 1 : 0), size);
	host_check_init(&check, &cc, NULL);
	host_result_init(&result, &check);
	exec_output(&perf, out, size, truncated, message, sizeof(message));
	FUZZ_ASSERT(strlen(message) < sizeof(message));
	FUZZ_ASSERT(fuzz_utf8_ok(message, strlen(message)));
	for (const char *p = message; *p; p++)
		FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7F);
	FUZZ_ASSERT(perf.recorded <= EXEC_PERF_MAX);
	fuzz_assert_details(result.details);
	host_result_clear(&result);
	free(out);
	return 0;
}
