/*
 * shm_anon: MAP_SHARED|MAP_ANONYMOUS memory.  One 4 MiB object is mapped
 * twice (the second mapping made with mremap(old_size = 0), which aliases
 * the same shmem object), partly touched; a second object is separate.
 * After restore the contents are intact, the two aliases still share pages
 * (a write through one is seen through the other), the separate object is
 * still separate, and maps shows both aliases backed by one inode.
 */
#include "zdtmtst.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE (4UL << 20)
#define PAGE 4096UL
#define MAXV 4096

static struct test_vma vmas[MAXV];

int main(int argc, char **argv)
{
	unsigned char *a, *b, *c;
	const struct test_vma *va, *vb, *vc;
	size_t off, pg;
	char s1[512], s2[512];
	int n;

	test_init(argc, argv);
	a = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		fail("mmap: %m");
	b = mremap(a, 0, SIZE, MREMAP_MAYMOVE);
	if (b == MAP_FAILED)
		fail("mremap alias: %m");
	c = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		fail("mmap: %m");
	/* fill the first half through a, and every 4th page of the rest through b */
	test_fill(a, SIZE / 2, 0xa0a0);
	for (pg = SIZE / 2 / PAGE; pg < SIZE / PAGE; pg += 4)
		test_fill(b + pg * PAGE, PAGE, pg);
	test_fill(c, SIZE, 0xc0c0);
	if (test_check(b, SIZE / 2, 0xa0a0) != TEST_NO_MISMATCH)
		fail("alias does not share memory before checkpoint");

	test_daemon();
	test_waitsig();

	if ((off = test_check(a, SIZE / 2, 0xa0a0)) != TEST_NO_MISMATCH)
		fail("a: mismatch at %zu", off);
	if ((off = test_check(b, SIZE / 2, 0xa0a0)) != TEST_NO_MISMATCH)
		fail("b: mismatch at %zu", off);
	for (pg = SIZE / 2 / PAGE; pg < SIZE / PAGE; pg++) {
		size_t i;

		if (pg % 4 == 0) {
			if (test_check(a + pg * PAGE, PAGE, pg) != TEST_NO_MISMATCH)
				fail("a: page %zu mismatch", pg);
			continue;
		}
		for (i = 0; i < PAGE; i++)
			if (a[pg * PAGE + i] || b[pg * PAGE + i])
				fail("untouched shared page %zu not zero", pg);
	}
	if ((off = test_check(c, SIZE, 0xc0c0)) != TEST_NO_MISMATCH)
		fail("c: mismatch at %zu", off);

	n = test_read_maps(vmas, MAXV, 0);
	va = test_find_vma(vmas, n, (unsigned long)a);
	vb = test_find_vma(vmas, n, (unsigned long)b);
	vc = test_find_vma(vmas, n, (unsigned long)c);
	if (!va || !vb || !vc)
		fail("shared mappings missing from maps");
	if (strcmp(va->perms, "rw-s") || strcmp(vb->perms, "rw-s") || strcmp(vc->perms, "rw-s"))
		fail("wrong perms: %s / %s", test_vma_str(va, s1, sizeof(s1)), test_vma_str(vb, s2, sizeof(s2)));
	if (va->inode != vb->inode)
		fail("aliases have different inodes: %s / %s", test_vma_str(va, s1, sizeof(s1)),
		     test_vma_str(vb, s2, sizeof(s2)));
	if (va->inode == vc->inode)
		fail("separate objects share an inode: %s / %s", test_vma_str(va, s1, sizeof(s1)),
		     test_vma_str(vc, s2, sizeof(s2)));

	/* sharing must still work both ways, including untouched pages */
	a[10] = 0x11;
	b[SIZE - 5] = 0x22;
	a[SIZE / 2 + PAGE + 3] = 0x33;
	if (b[10] != 0x11 || a[SIZE - 5] != 0x22 || b[SIZE / 2 + PAGE + 3] != 0x33)
		fail("aliases do not share memory after restore");
	if (c[10] == 0x11 && c[SIZE - 5] == 0x22)
		fail("separate object shares memory with a");
	pass();
}
