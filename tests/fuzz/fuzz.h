#ifndef TESTS_FUZZ_FUZZ_H_
#define TESTS_FUZZ_FUZZ_H_

/* Shared by the fuzz targets: a broken invariant is a crash that names
 * its line (libFuzzer then saves the input). */

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_FAIL()                                                            \
    do {                                                                       \
        fprintf(stderr, "%s:%d: fuzz invariant broken\n", __FILE__, __LINE__); \
        abort();                                                               \
    } while (0)

#endif /* TESTS_FUZZ_FUZZ_H_ */
