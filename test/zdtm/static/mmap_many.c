/*
 * mmap_many: hundreds of small anonymous VMAs (1..3 pages, separated by
 * unmapped holes) with different protections and private/shared flags.
 * After restore every VMA has the same bounds and protections and its data
 * (PROT_NONE ones included, checked after making them readable).
 */
#include "zdtmtst.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define NVMA 600
#define SLOT 4 /* pages per slot: vma + hole */
#define MAXV 8192

static struct test_vma vmas[MAXV];

static const struct {
	int prot;
	int shared;
	const char *perms;
} kinds[] = {
	{ PROT_READ, 0, "r--p" },
	{ PROT_READ | PROT_WRITE, 0, "rw-p" },
	{ PROT_NONE, 0, "---p" },
	{ PROT_READ | PROT_EXEC, 0, "r-xp" },
	{ PROT_READ | PROT_WRITE, 1, "rw-s" },
	{ PROT_WRITE, 0, "-w-p" },
	{ PROT_READ, 1, "r--s" },
	{ PROT_READ | PROT_WRITE | PROT_EXEC, 0, "rwxp" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static size_t vma_pages(int i)
{
	return 1 + (size_t)(i % 3);
}

int main(int argc, char **argv)
{
	unsigned char *base;
	int i, n;
	char b[512];

	test_init(argc, argv);

	base = mmap(NULL, NVMA * SLOT * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		fail("mmap reservation: %m");
	if (munmap(base, NVMA * SLOT * PAGE))
		fail("munmap: %m");
	for (i = 0; i < NVMA; i++) {
		unsigned char *a = base + (size_t)i * SLOT * PAGE, *m;
		size_t len = vma_pages(i) * PAGE;
		int k = i % NKINDS;

		m = mmap(a, len, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_ANONYMOUS | (kinds[k].shared ? MAP_SHARED : MAP_PRIVATE), -1, 0);
		if (m != a)
			fail("mmap #%d: %m", i);
		/* every third vma stays partly untouched */
		test_fill(m, i % 3 == 2 ? PAGE : len, (uint64_t)i << 20);
		if (mprotect(m, len, kinds[k].prot))
			fail("mprotect #%d: %m", i);
	}

	test_daemon();
	test_waitsig();

	n = test_read_maps(vmas, MAXV, 0);
	for (i = 0; i < NVMA; i++) {
		unsigned char *a = base + (size_t)i * SLOT * PAGE;
		size_t len = vma_pages(i) * PAGE;
		const struct test_vma *v = test_find_vma(vmas, n, (unsigned long)a);
		int k = i % NKINDS;

		if (!v)
			fail("vma #%d at %p is gone", i, a);
		if (v->start != (unsigned long)a || v->end != (unsigned long)(a + len))
			fail("vma #%d: expected %p-%p, got %s", i, a, a + len, test_vma_str(v, b, sizeof(b)));
		if (strcmp(v->perms, kinds[k].perms))
			fail("vma #%d: expected %s, got %s", i, kinds[k].perms, test_vma_str(v, b, sizeof(b)));
		if (test_find_vma(vmas, n, (unsigned long)(a + len)))
			fail("hole after vma #%d is mapped", i);
	}
	for (i = 0; i < NVMA; i++) {
		unsigned char *a = base + (size_t)i * SLOT * PAGE;
		size_t len = vma_pages(i) * PAGE, off, j;
		int k = i % NKINDS;

		if (!(kinds[k].prot & PROT_READ) && mprotect(a, len, PROT_READ))
			fail("mprotect #%d: %m", i);
		if ((off = test_check(a, i % 3 == 2 ? PAGE : len, (uint64_t)i << 20)) != TEST_NO_MISMATCH)
			fail("vma #%d (%s) mismatch at %zu", i, kinds[k].perms, off);
		for (j = i % 3 == 2 ? PAGE : len; j < len; j++)
			if (a[j])
				fail("vma #%d untouched page not zero", i);
	}
	pass();
}
