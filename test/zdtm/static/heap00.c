/*
 * heap00: malloc'd data of many sizes (brk heap and mmap'd chunks), holes
 * from free(), and a region grown with sbrk() directly.  After restore the
 * data, the program break and further heap growth must all be correct.
 */
#include "zdtmtst.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NCHUNKS 20000

static unsigned char *chunks[NCHUNKS];
static size_t sizes[NCHUNKS];

int main(int argc, char **argv)
{
	unsigned char *big, *brk_area;
	void *brk_before, *brk_after;
	size_t i, off;
	const size_t big_size = 8 << 20, sbrk_size = 256 << 10;

	test_init(argc, argv);
	/* keep the brk heap from being trimmed behind our back */
	mallopt(M_TRIM_THRESHOLD, 512 << 20);

	for (i = 0; i < NCHUNKS; i++) {
		sizes[i] = 1 + test_mix64(i) % 3000;
		chunks[i] = malloc(sizes[i]);
		if (!chunks[i])
			fail("malloc(%zu) failed", sizes[i]);
		test_fill(chunks[i], sizes[i], i * 7919);
	}
	/* punch holes: free every third chunk */
	for (i = 0; i < NCHUNKS; i += 3) {
		free(chunks[i]);
		chunks[i] = NULL;
	}
	big = malloc(big_size); /* above the mmap threshold: own mapping */
	if (!big)
		fail("malloc(big) failed");
	test_fill(big, big_size, 0xb16b16);

	/* grow the break by hand (malloc copes with a foreign sbrk) */
	brk_area = sbrk((intptr_t)sbrk_size);
	if (brk_area == (void *)-1)
		fail("sbrk: %m");
	test_fill(brk_area, sbrk_size, 0x5b4c);
	brk_before = sbrk(0);

	test_daemon();
	test_waitsig();

	brk_after = sbrk(0);
	if (brk_after != brk_before)
		fail("program break moved: %p -> %p", brk_before, brk_after);
	if ((off = test_check(brk_area, sbrk_size, 0x5b4c)) != TEST_NO_MISMATCH)
		fail("sbrk area mismatch at offset %zu", off);
	if ((off = test_check(big, big_size, 0xb16b16)) != TEST_NO_MISMATCH)
		fail("big chunk mismatch at offset %zu", off);
	for (i = 0; i < NCHUNKS; i++) {
		if (!chunks[i])
			continue;
		if ((off = test_check(chunks[i], sizes[i], i * 7919)) != TEST_NO_MISMATCH)
			fail("chunk %zu (size %zu) mismatch at offset %zu", i, sizes[i], off);
	}

	/* the heap must still be usable: brk grows and allocator works */
	brk_area = sbrk(1 << 20);
	if (brk_area == (void *)-1)
		fail("sbrk after restore: %m");
	if (brk_area != brk_before)
		fail("sbrk returned %p, expected old break %p", brk_area, brk_before);
	memset(brk_area, 0x5a, 1 << 20);
	for (i = 0; i < NCHUNKS; i++) {
		free(chunks[i]);
		chunks[i] = malloc(sizes[i] * 2);
		if (!chunks[i])
			fail("malloc after restore failed");
		memset(chunks[i], 0xa5, sizes[i] * 2);
	}
	free(big);
	pass();
}
