/*
 * mmap_file_replaced: two MAP_PRIVATE mappings of a file the test created,
 * one read-only and never written (like a library's text), one writable
 * with a page written (like its data).  After restore both map the file
 * found at the path then, which the harness may have replaced by another
 * file of the same size since the dump: the pages never written show that
 * file's content, the written page the private data of the dump.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096UL
#define FILE_PAGES 8
#define RO_PAGES 4 /* pages 0..3, read-only */
#define RW_PAGES 4 /* pages 4..7, writable */
#define WRITTEN 1  /* page of the writable mapping written */

static unsigned char now[FILE_PAGES * PAGE];

/* The inode a mapping maps, by its map_files entry. */
static ino_t mapped_ino(const void *m, size_t len)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m, (unsigned long)m + len);
	TEST_SYS(stat(path, &st));
	return st.st_ino;
}

int main(int argc, char **argv)
{
	const char *name = "mmap_file_replaced.data";
	unsigned char *ro, *rw;
	volatile unsigned char sink = 0;
	struct stat st;
	size_t off;
	int fd, pg;

	test_init(argc, argv);
	fd = TEST_SYS(open(name, O_RDWR | O_CREAT | O_TRUNC, 0644));
	test_fill(now, sizeof(now), 0xf11e);
	TEST_CHECK(write(fd, now, sizeof(now)) == (ssize_t)sizeof(now), "write: %m");
	ro = mmap(NULL, RO_PAGES * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
	rw = mmap(NULL, RW_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, RO_PAGES * PAGE);
	if (ro == MAP_FAILED || rw == MAP_FAILED)
		fail("mmap: %m");
	close(fd);
	for (pg = 0; pg < RO_PAGES; pg++)
		sink += ro[pg * PAGE];
	test_fill(rw + WRITTEN * PAGE, PAGE, 0xc0);

	test_daemon();
	test_waitsig();

	fd = TEST_SYS(open(name, O_RDONLY));
	TEST_SYS(fstat(fd, &st));
	TEST_CHECK(pread(fd, now, sizeof(now), 0) == (ssize_t)sizeof(now), "pread: %m");
	close(fd);
	if (mapped_ino(ro, RO_PAGES * PAGE) != st.st_ino || mapped_ino(rw, RW_PAGES * PAGE) != st.st_ino)
		fail("the mappings map inodes %lu and %lu, %s is inode %lu",
		     (unsigned long)mapped_ino(ro, RO_PAGES * PAGE), (unsigned long)mapped_ino(rw, RW_PAGES * PAGE),
		     name, (unsigned long)st.st_ino);
	if (memcmp(ro, now, RO_PAGES * PAGE))
		fail("the read-only mapping does not show the file at %s", name);
	for (pg = 0; pg < RW_PAGES; pg++) {
		if (pg == WRITTEN)
			off = test_check(rw + pg * PAGE, PAGE, 0xc0);
		else
			off = memcmp(rw + pg * PAGE, now + (RO_PAGES + pg) * PAGE, PAGE) ? 0 : TEST_NO_MISMATCH;
		if (off != TEST_NO_MISMATCH)
			fail("writable mapping page %d (%s) mismatch at %zu", pg, pg == WRITTEN ? "written" : "file",
			     off);
	}
	(void)sink;
	pass();
}
