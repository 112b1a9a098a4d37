#ifndef COMMON_VEC_H_
#define COMMON_VEC_H_

/* The one growable array: capacity doubles (from 16) until it holds what
 * is asked. For an array `T *p` with `size_t cap`:
 *
 *     if (VEC_RESERVE(p, cap, n + 1) != 0) return ERR_NOMEM;
 *     p[n++] = x;
 *
 * On failure the array is left as it was. */

#include <stddef.h>

/* *@pp points to an array of *@cap elements of @size bytes. */
int vec_reserve(void *pp, size_t *cap, size_t want, size_t size);

#define VEC_RESERVE(p, cap, want) vec_reserve(&(p), &(cap), (want), sizeof *(p))

#endif /* COMMON_VEC_H_ */
