/*
 * mmap_file_shared: a MAP_SHARED mapping of a file written through the
 * mapping before the checkpoint.  After restore the mapping and the file
 * agree, writes through the mapping reach the file and writes to the file
 * are visible in the mapping.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096UL
#define NPAGES 32

static unsigned char fbuf[NPAGES * PAGE];

int main(int argc, char **argv)
{
	const char *name = "mmap_file_shared.data";
	unsigned char *m, v[16];
	struct stat st1, st2;
	int fd, pg;

	test_init(argc, argv);
	fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		fail("open: %m");
	if (ftruncate(fd, NPAGES * PAGE))
		fail("ftruncate: %m");
	m = mmap(NULL, NPAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		fail("mmap: %m");
	if (fstat(fd, &st1))
		fail("fstat: %m");
	close(fd);
	for (pg = 0; pg < NPAGES; pg += 3)
		test_fill(m + pg * PAGE, PAGE, 0x5ead + pg);

	test_daemon();
	test_waitsig();

	fd = open(name, O_RDWR);
	if (fd < 0)
		fail("reopen: %m");
	if (fstat(fd, &st2))
		fail("fstat: %m");
	if (st1.st_ino != st2.st_ino || st2.st_size != NPAGES * PAGE)
		fail("file replaced or resized (ino %lu -> %lu, size %ld)", (unsigned long)st1.st_ino,
		     (unsigned long)st2.st_ino, (long)st2.st_size);
	if (pread(fd, fbuf, sizeof(fbuf), 0) != (ssize_t)sizeof(fbuf))
		fail("pread: %m");
	for (pg = 0; pg < NPAGES; pg++) {
		size_t i;

		if (pg % 3 == 0) {
			if (test_check(fbuf + pg * PAGE, PAGE, 0x5ead + pg) != TEST_NO_MISMATCH)
				fail("file page %d lost the data written through the mapping", pg);
		} else {
			for (i = 0; i < PAGE; i++)
				if (fbuf[pg * PAGE + i])
					fail("file page %d is not zero", pg);
		}
	}
	if (memcmp(fbuf, m, sizeof(fbuf)))
		fail("mapping and file differ");

	memcpy(v, "after-restore-1", 16);
	memcpy(m + 4 * PAGE + 10, v, 16);
	if (pread(fd, fbuf, 16, 4 * PAGE + 10) != 16 || memcmp(fbuf, v, 16))
		fail("a write through the mapping did not reach the file");
	memcpy(v, "after-restore-2", 16);
	if (pwrite(fd, v, 16, 9 * PAGE + 20) != 16)
		fail("pwrite: %m");
	if (memcmp(m + 9 * PAGE + 20, v, 16))
		fail("a write to the file is not visible in the mapping");
	if (msync(m, NPAGES * PAGE, MS_SYNC))
		fail("msync: %m");
	close(fd);
	pass();
}
