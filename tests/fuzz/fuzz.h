/*
 * The fuzz targets: each file defines LLVMFuzzerTestOneInput (and maybe
 * LLVMFuzzerInitialize). Built twice: with libFuzzer (-Dfuzz=enabled, clang)
 * and as a plain program with replay.c's main, which runs the committed
 * corpus and regression inputs as a normal test.
 */
#ifndef IB_TESTS_FUZZ_H
#define IB_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated copy of the input (the parsers of C strings stop at the first NUL). */
static inline char *ib_fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A property the target checks failed: report it as libFuzzer reports a crash. */
#define IB_FUZZ_CHECK(cond)                                                                        \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
