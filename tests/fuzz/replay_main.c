/* replay_main.c — runs every file named, or in a directory named, through
 * a fuzz target once: the gcc builds (no libFuzzer) replay each target's
 * seed corpus and past crashes as a unit test (fuzz.replay.TARGET). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) < 0 || !(buf = malloc((size_t)n + 1)) ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "cannot read %s\n", path);
		free(buf);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	/* An exact-size copy, so ASan sees any read past the input. */
	uint8_t *exact = malloc(n ? (size_t)n : 1);
	memcpy(exact, buf, (size_t)n);
	free(buf);
	LLVMFuzzerTestOneInput(exact, (size_t)n);
	free(exact);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	int files = 0, failed = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct dirent **list;
		struct stat st;
		int n;

		if (argv[i][0] == '-')
			continue; /* a libFuzzer flag */
		if (stat(argv[i], &st) < 0)
			continue; /* no regressions yet */
		if (!S_ISDIR(st.st_mode)) {
			failed += run_file(argv[i]) < 0;
			files++;
			continue;
		}
		if ((n = scandir(argv[i], &list, NULL, by_name)) < 0)
			continue;
		for (int j = 0; j < n; j++) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", argv[i],
				 list[j]->d_name);
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
			    list[j]->d_name[0] != '.') {
				failed += run_file(path) < 0;
				files++;
			}
			free(list[j]);
		}
		free(list);
	}
	printf("%d inputs replayed\n", files);
	return failed ? 1 : 0;
}
