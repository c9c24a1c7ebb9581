/* fuzz_env.c — libFuzzer harness: `.env` line parsing (kmenv_parse_line), each line of the
 * input as the loader reads it (cut at '\n', NUL-terminated). */
#include "env.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char  *text = malloc(size + 1);
    char  *line, *save = NULL;

    memcpy(text, data, size);
    text[size] = '\0';
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char  *key = NULL, *val = NULL;
        kmerr  err = { 0 };

        if (kmenv_parse_line(line, "fuzz:1", &key, &val, &err) == KM_OK && key) {
            /* a parsed pair is usable text */
            (void)strlen(key);
            (void)strlen(val);
        }
        free(key);
        free(val);
        kmerr_clear(&err);
    }
    free(text);
    return 0;
}
