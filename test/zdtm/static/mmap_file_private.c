/*
 * mmap_file_private: a MAP_PRIVATE mapping of a file the test created (at
 * a non-zero offset), with some pages written (copy-on-write).  After
 * restore the written pages keep the private data, the others show the
 * file, the file itself is unchanged, and pages never written still follow
 * the page cache (a pwrite to the file is visible through the mapping).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define FILE_PAGES 20
#define MAP_OFF 4 /* pages */
#define MAP_PAGES 16

static unsigned char buf[FILE_PAGES * PAGE];

static int cow(int pg)
{
	return pg == 2 || pg == 5 || pg == 9 || pg == 15;
}

int main(int argc, char **argv)
{
	const char *name = "mmap_file_private.data";
	unsigned char *m;
	volatile unsigned char sink = 0;
	size_t off;
	int fd, pg;

	test_init(argc, argv);
	fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("open: %m");
	test_fill(buf, sizeof(buf), 0xf11e);
	if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		fail("write: %m");
	m = mmap(NULL, MAP_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, MAP_OFF * PAGE);
	if (m == MAP_FAILED)
		fail("mmap: %m");
	close(fd);
	for (pg = 0; pg < MAP_PAGES; pg++) {
		if (cow(pg))
			test_fill(m + pg * PAGE, PAGE, 0xc0 + pg);
		else if (pg % 2)
			sink += m[pg * PAGE]; /* read fault: page cache page */
	}

	test_daemon();
	test_waitsig();

	for (pg = 0; pg < MAP_PAGES; pg++) {
		if (cow(pg))
			off = test_check(m + pg * PAGE, PAGE, 0xc0 + pg);
		else
			off = memcmp(m + pg * PAGE, buf + (MAP_OFF + pg) * PAGE, PAGE) ? 0 : TEST_NO_MISMATCH;
		if (off != TEST_NO_MISMATCH)
			fail("mapping page %d (%s) mismatch at %zu", pg, cow(pg) ? "private copy" : "file", off);
	}
	fd = open(name, O_RDWR);
	if (fd < 0)
		fail("reopen: %m");
	{
		static unsigned char now[FILE_PAGES * PAGE];

		if (pread(fd, now, sizeof(now), 0) != (ssize_t)sizeof(now))
			fail("pread: %m");
		if (memcmp(now, buf, sizeof(now)))
			fail("the file was modified through a private mapping");
	}
	/* untouched (not COWed) pages still come from the page cache */
	{
		unsigned char v[8] = "NEWDATA";

		if (pwrite(fd, v, sizeof(v), (MAP_OFF + 3) * PAGE + 100) != sizeof(v))
			fail("pwrite: %m");
		if (memcmp(m + 3 * PAGE + 100, v, sizeof(v)))
			fail("a not-written private page does not follow the file any more");
		if (pwrite(fd, v, sizeof(v), (MAP_OFF + 5) * PAGE + 100) != sizeof(v))
			fail("pwrite: %m");
		if (!memcmp(m + 5 * PAGE + 100, v, sizeof(v)))
			fail("a private (COWed) page follows the file");
	}
	/* writing the mapping must not reach the file */
	m[7 * PAGE] ^= 0xff;
	{
		unsigned char c;

		if (pread(fd, &c, 1, (MAP_OFF + 7) * PAGE) != 1 || c != buf[(MAP_OFF + 7) * PAGE])
			fail("a write to the private mapping reached the file");
	}
	close(fd);
	(void)sink;
	pass();
}
