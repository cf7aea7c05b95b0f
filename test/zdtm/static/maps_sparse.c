/*
 * maps_sparse: a 512 MiB private anonymous mapping where only a few pages
 * were written (and a few only read).  After restore the written pages keep
 * their data, all others read as zero, and the untouched pages have not
 * been populated by the restore.
 */
#include "zdtmtst.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (512UL << 20)
#define PAGE 4096UL
#define NPAGES (SIZE / PAGE)
#define STRIDE 37

static unsigned char vec[NPAGES];

static int touched(size_t pg)
{
	return pg % STRIDE == 0 || pg == NPAGES - 1;
}

static size_t resident(unsigned char *p)
{
	size_t i, n = 0;

	if (mincore(p, SIZE, vec))
		fail("mincore: %m");
	for (i = 0; i < NPAGES; i++)
		n += vec[i] & 1;
	return n;
}

int main(int argc, char **argv)
{
	unsigned char *p;
	volatile unsigned char sink = 0;
	size_t pg, off, ntouched = 0, res_before, res_after;

	test_init(argc, argv);
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		fail("mmap: %m");
	/* no transparent huge pages: we want exactly the pages we touch */
	if (madvise(p, SIZE, MADV_NOHUGEPAGE))
		test_msg("madvise(MADV_NOHUGEPAGE): %m (ignored)");
	for (pg = 0; pg < NPAGES; pg++) {
		if (touched(pg)) {
			test_fill(p + pg * PAGE, PAGE, pg);
			ntouched++;
		} else if (pg % STRIDE == 5) {
			sink += p[pg * PAGE + 7]; /* read-only touch: zero page */
		}
	}
	res_before = resident(p);

	test_daemon();
	test_waitsig();

	res_after = resident(p);
	test_msg("%zu pages touched, resident before %zu, after restore %zu", ntouched, res_before, res_after);
	/* allow some slack, but a fully populated mapping is a bug */
	if (res_after > 2 * res_before + 64)
		fail("restore populated the sparse mapping: %zu resident pages (was %zu)", res_after, res_before);
	for (pg = 0; pg < NPAGES; pg++) {
		unsigned char *q = p + pg * PAGE;

		if (touched(pg)) {
			if ((off = test_check(q, PAGE, pg)) != TEST_NO_MISMATCH)
				fail("touched page %zu mismatch at %zu", pg, off);
		} else {
			const uint64_t *w = (const uint64_t *)q;
			size_t i;

			for (i = 0; i < PAGE / 8; i++)
				if (w[i])
					fail("untouched page %zu is not zero at %zu", pg, i * 8);
		}
	}
	(void)sink;
	pass();
}
