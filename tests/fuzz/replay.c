/*
 * Replay driver: calls LLVMFuzzerTestOneInput once on every regular file
 * of the directories (or files) given, so builds without libFuzzer (gcc,
 * the ASan build) run each corpus through its target.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	unsigned long files = 0, failed = 0;
	int i;

	for (i = 1; i < argc; i++) {
		struct stat st;
		struct dirent *e;
		char **names = NULL;
		size_t n = 0, k;
		DIR *d;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
			failed++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			files++;
			failed += run_file(argv[i]) < 0;
			continue;
		}
		if (!(d = opendir(argv[i]))) {
			failed++;
			continue;
		}
		while ((e = readdir(d))) {
			char **nn;

			if (e->d_name[0] == '.')
				continue;
			if (!(nn = realloc(names, (n + 1) * sizeof(*names))) ||
			    !(nn[n] = malloc(strlen(argv[i]) + strlen(e->d_name) + 2))) {
				fprintf(stderr, "replay: out of memory\n");
				return 2;
			}
			names = nn;
			sprintf(names[n++], "%s/%s", argv[i], e->d_name);
		}
		closedir(d);
		qsort(names, n, sizeof(*names), cmp_names);
		for (k = 0; k < n; k++) {
			if (stat(names[k], &st) == 0 && S_ISREG(st.st_mode)) {
				files++;
				failed += run_file(names[k]) < 0;
			}
			free(names[k]);
		}
		free(names);
	}
	printf("%lu checks, %lu failures\n", files, failed);
	return failed ? 1 : 0;
}
