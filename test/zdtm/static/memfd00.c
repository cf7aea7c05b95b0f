/*
 * memfd00: a sealed memfd ("zdtm-memfd": F_SEAL_SHRINK|F_SEAL_GROW) of
 * 2 MiB with data in its first pages and at 1 MiB (a hole between), two
 * open file descriptions with their own offsets, a MAP_SHARED mapping and
 * a MAP_PRIVATE mapping with a page changed copy-on-write. After restore:
 * name, size, seals, contents (hole still zero), offsets, the shared
 * mapping still aliases the file, the private page keeps its own data.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE (2UL << 20)
#define PAGE 4096UL

int main(int argc, char **argv)
{
	char path[64], link[256], buf[PAGE];
	unsigned char *shr, *prv;
	struct stat st;
	int fd, fd2, seals;
	ssize_t n;

	test_init(argc, argv);
	fd = memfd_create("zdtm-memfd", MFD_ALLOW_SEALING);
	if (fd < 0)
		fail("memfd_create: %m");
	if (ftruncate(fd, SIZE))
		fail("ftruncate: %m");
	shr = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	prv = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (shr == MAP_FAILED || prv == MAP_FAILED)
		fail("mmap: %m");
	test_fill(shr, 3 * PAGE, 0x3131);
	test_fill(shr + (1UL << 20), PAGE, 0x4242);
	test_fill(prv + PAGE, PAGE, 0x5353); /* private copy of page 1 */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		fail("F_ADD_SEALS: %m");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, O_RDONLY);
	if (fd2 < 0)
		fail("reopen: %m");
	if (lseek(fd, 12345, SEEK_SET) != 12345 || lseek(fd2, PAGE, SEEK_SET) != (off_t)PAGE)
		fail("lseek: %m");

	test_daemon();
	test_waitsig();

	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		fail("readlink: %m");
	link[n] = 0;
	if (strcmp(link, "/memfd:zdtm-memfd (deleted)"))
		fail("fd link is %s", link);
	if (fstat(fd, &st) || st.st_size != (off_t)SIZE)
		fail("size %lld", (long long)st.st_size);
	seals = fcntl(fd, F_GET_SEALS);
	if (seals != (F_SEAL_SHRINK | F_SEAL_GROW))
		fail("seals 0x%x", seals);
	if (lseek(fd, 0, SEEK_CUR) != 12345 || lseek(fd2, 0, SEEK_CUR) != (off_t)PAGE)
		fail("offsets lost");
	if (fcntl(fd2, F_GETFL) & O_ACCMODE)
		fail("second fd is not read-only any more");
	if (pread(fd, buf, PAGE, 0) != (ssize_t)PAGE || test_check(buf, PAGE, 0x3131) != TEST_NO_MISMATCH)
		fail("memfd contents lost at 0");
	if (test_check(shr, 3 * PAGE, 0x3131) != TEST_NO_MISMATCH)
		fail("shared mapping contents lost");
	if (test_check(shr + (1UL << 20), PAGE, 0x4242) != TEST_NO_MISMATCH)
		fail("contents at 1 MiB lost");
	if (shr[512 * 1024] || shr[SIZE - 1])
		fail("hole is not zero");
	if (test_check(prv + PAGE, PAGE, 0x5353) != TEST_NO_MISMATCH)
		fail("private copy-on-write page lost");
	/* clean private pages read the file */
	if (memcmp(prv + 2 * PAGE, shr + 2 * PAGE, PAGE) || memcmp(prv + (1UL << 20), shr + (1UL << 20), PAGE))
		fail("private mapping does not see the file");
	shr[100] = 0x77;
	if (pread(fd2, buf, 200, 0) != 200 || buf[100] != 0x77)
		fail("shared mapping no longer writes the memfd");
	if (ftruncate(fd, SIZE / 2) == 0)
		fail("F_SEAL_SHRINK not enforced");
	pass();
	return 0;
}
