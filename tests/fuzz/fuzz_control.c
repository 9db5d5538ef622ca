/* fuzz_control.c — a request on the control socket (what `healthd ctl` or
 * anything else of the daemon's user sends) -> request_parse() of
 * control.c, included: it is static, and this needs no edit to it.
 * Asserts: no crash or over-read, a request taken is a JSON object of
 * protocol version 1 naming its command, and one refused says why. */
#include "../../core/control.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024] = "";
	json_object *req;

	/* The reader never hands over more. */
	if (size > CONTROL_REQUEST_MAX)
		return 0;
	const struct command *cmd = request_parse((const char *)data, size, &req,
						  err, sizeof(err));
	if (cmd) {
		FUZZ_ASSERT(json_object_is_type(req, json_type_object));
		FUZZ_ASSERT(json_object_get_int(json_object_object_get(req, "v")) ==
			    CONTROL_VERSION);
		FUZZ_ASSERT(!strcmp(json_object_get_string(
					    json_object_object_get(req, "cmd")),
				    cmd->name));
	} else {
		FUZZ_ASSERT(err[0] != '\0');
	}
	json_object_put(req);
	return 0;
}
