/* A main() for a fuzz harness outside libFuzzer: runs LLVMFuzzerTestOneInput once on every file of the folders
 * given (a seed corpus, the regression inputs of crashes once found; a missing folder is skipped). A crash, an
 * abort or a sanitizer report fails the test, as it would stop a fuzzing run. Prints how many inputs ran. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_file(const char *path)
{
    uint8_t *buf;
    size_t n;
    if (yt_read_file(path, &buf, &n) != 0) {
        fprintf(stderr, "%s: %s\n", path, yt_last_error());
        return -1;
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int run_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) abort();
            names = grown;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (run_file(path) != 0) rc = -1;
        else ++*count;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int count = 0, rc = 0;
    for (int i = 1; i < argc; i++)
        if (run_dir(argv[i], &count) != 0) rc = 1;
    printf("%d inputs ran without a finding\n", count);
    if (count == 0) {
        fprintf(stderr, "no inputs in the folders given: the seed corpus is missing\n");
        return 1;
    }
    return rc;
}
