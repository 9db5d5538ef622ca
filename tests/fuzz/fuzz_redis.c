/* fuzz_redis.c — a server's INFO reply -> the redis plugin's INFO parser
 * (rd_info(), plugins/redis/redis.c, included: static, and the file is not
 * edited for this), for the keys the check reads.  Asserts: a value found
 * is one line, NUL-terminated within its buffer, and the details it makes
 * are a JSON object that parses strictly. */
#include "../../plugins/redis/redis.c"

#include "config.h"
#include "fuzz.h"
#include "host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"redis_version", "role",
					   "used_memory", "maxmemory", "r"};
	struct config_check cc = {.name = "redis"};
	struct healthd_check check;
	struct healthd_result result;
	char *info = malloc(size + 1);

	/* hiredis hands the bulk string NUL-terminated. */
	memcpy(info, data, size);
	info[size] = '\0';
	host_check_init(&check, &cc, NULL);
	host_result_init(&result, &check);
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		char out[64];
		const char *v = rd_info(info, keys[k], out, sizeof(out));

		if (!v)
			continue;
		FUZZ_ASSERT(v == out && strlen(out) < sizeof(out));
		FUZZ_ASSERT(!strpbrk(out, "\r\n"));
		if (k < 2)
			host_api.detail_str(&result, keys[k], out);
		else
			host_api.detail_num(&result, keys[k], strtod(out, NULL));
	}
	fuzz_assert_details(result.details);
	host_result_clear(&result);
	free(info);
	return 0;
}
