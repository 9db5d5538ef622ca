/*
 * hash.h — the content hash of the config and the files it reads: FNV-1a,
 * one file after another, each as a byte saying whether it could be read,
 * then its bytes.  config.c folds the bytes it loaded, watch.c those there
 * now; one fold keeps the two comparable.
 */
#ifndef HEALTHD_HASH_H
#define HEALTHD_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASH_INIT 1469598103934665603ULL /* FNV-1a offset basis */

/* Fold `n` bytes into h. */
static inline uint64_t hash_bytes(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL; /* FNV prime */
	return h;
}

/* Start a file: a missing one hashes apart from an empty one.  Its bytes,
 * if any, follow with hash_bytes(). */
static inline uint64_t hash_file_start(uint64_t h, bool exists)
{
	unsigned char b = exists;

	return hash_bytes(h, &b, 1);
}

#endif /* HEALTHD_HASH_H */
