/*
 * mm_anon: anonymous memory keeps anonymous semantics after restore (in
 * the mm-template flavour too, where it comes from the template).
 *   a 16 MiB MAP_PRIVATE|MAP_ANONYMOUS area filled with a pattern, and a
 *   heap buffer.
 * After restore: the contents are back, /proc/self/maps shows the area
 * with no file and inode 0, smaps counts it as Anonymous, MADV_DONTNEED
 * on part of it reads back zeros, MADV_FREE is accepted (it is refused on
 * file mappings), and the area is still private and writable.
 */
#include "zdtmtst.h"

#include <sys/mman.h>
#include <unistd.h>

#define SZ (16 << 20)

static unsigned long smaps_field(unsigned long start, const char *key)
{
	static char buf[1 << 20];
	char want[64], *p, *line;
	unsigned long v = 0;

	if (test_read_file("/proc/self/smaps", buf, sizeof(buf)) < 0)
		fail("smaps: %m");
	snprintf(want, sizeof(want), "%lx-", start);
	p = strstr(buf, want);
	if (!p)
		fail("no smaps entry for %lx", start);
	line = strstr(p, key);
	if (!line || sscanf(line + strlen(key), " %lu", &v) != 1)
		fail("no %s for %lx", key, start);
	return v;
}

int main(int argc, char **argv)
{
	struct test_vma vmas[512];
	const struct test_vma *v;
	unsigned char *a, *heap;
	int n, i;

	test_init(argc, argv);
	a = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	heap = malloc(1 << 20);
	if (a == MAP_FAILED || !heap)
		fail("mmap: %m");
	test_fill(a, SZ, 0xa11);
	test_fill(heap, 1 << 20, 0xbee);
	test_daemon();
	test_waitsig();

	if (test_check(a, SZ, 0xa11) != TEST_NO_MISMATCH || test_check(heap, 1 << 20, 0xbee) != TEST_NO_MISMATCH)
		fail("contents differ");
	n = test_read_maps(vmas, 512, 1);
	v = test_find_vma(vmas, n, (unsigned long)a);
	if (!v || v->inode || v->path[0] || v->dev_major || v->dev_minor)
		fail("the area is not anonymous in maps: %s", v ? v->path : "(none)");
	if (smaps_field(v->start, "Anonymous:") < SZ / 1024)
		fail("smaps: Anonymous %lu kB < %d kB", smaps_field(v->start, "Anonymous:"), SZ / 1024);
	if (madvise(a, SZ / 2, MADV_DONTNEED))
		fail("MADV_DONTNEED: %m");
	for (i = 0; i < SZ / 2; i += 4096)
		if (a[i] || a[i + 4095])
			fail("byte %d is not zero after MADV_DONTNEED", i);
	if (madvise(a + SZ / 2, 1 << 20, MADV_FREE))
		fail("MADV_FREE: %m");
	memset(a, 0x5a, SZ);
	for (i = 0; i < SZ; i += 4096)
		if (a[i] != 0x5a)
			fail("write lost at %d", i);
	pass();
}
