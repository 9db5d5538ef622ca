/* fuzz_plugin_http.c — the http plugin's parsers (plugins/http/http.c,
 * included: they are static): a response body in chunks as libcurl hands
 * it over (http_write(), the body cap, expect_body), and the options a
 * config gives (expect_status ranges, the url).  Asserts: the body kept
 * never passes its cap, ranges stay within 100-599 and ordered, a url's
 * label never shows its user, password or query. */
#include "../../plugins/http/http.c"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct http h;
	uint8_t mode = fuzz_u8(&in);
	char *text, err[256];

	memset(&h, 0, sizeof(h));
	switch (mode % 3) {
	case 0: /* the body, in chunks of up to 64 KiB */
		h.expect_body = "ok";
		while (in.n) {
			size_t n = (size_t)fuzz_u8(&in) << 8 | fuzz_u8(&in);
			char *chunk;
			size_t took;

			n = n < in.n ? n : in.n;
			chunk = malloc(n ? n : 1);
			memcpy(chunk, in.p, n);
			in.p += n;
			in.n -= n;
			took = http_write(chunk, 1, n, &h);
			free(chunk);
			FUZZ_ASSERT(h.body_len <= HTTP_BODY_CAP);
			FUZZ_ASSERT(took == n || h.truncated);
			if (h.truncated)
				break;
		}
		if (h.body)
			(void)memmem(h.body, h.body_len, h.expect_body,
				     strlen(h.expect_body));
		free(h.body);
		break;
	case 1: /* expect_status */
		text = fuzz_str(&in);
		if (http_parse_status(&h, text) == 0) {
			FUZZ_ASSERT(h.n_ranges > 0 && h.n_ranges <= HTTP_MAX_RANGES);
			for (size_t i = 0; i < h.n_ranges; i++)
				FUZZ_ASSERT(h.ranges[i].lo >= 100 &&
					    h.ranges[i].lo <= h.ranges[i].hi &&
					    h.ranges[i].hi <= 599);
		}
		free(text);
		break;
	default: /* url */
		text = fuzz_str(&in);
		if (http_parse_url(&h, text, err, sizeof(err)) == 0) {
			FUZZ_ASSERT(!strchr(h.label, '?') && !strchr(h.label, '#'));
			/* The label is built from curl's host, port and path
			 * alone (a password that is also text elsewhere in a
			 * url, or a scheme, cannot be told apart here: the
			 * plugin's tests check that credentials never show). */
		}
		curl_free(h.user);
		curl_free(h.password);
		free(text);
		break;
	}
	return 0;
}
