/*
 * unlinked_fd: a file is written (with a hole in it), kept open at some
 * offset and unlinked.  After restore the fd still reads the same contents,
 * fstat says st_nlink == 0 with the same size, the /proc/self/fd link is
 * the old path + " (deleted)", and the name did not reappear.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define PART (200 * 1024)
#define HOLE_AT (1024 * 1024)

static unsigned char a[PART], b[PART], r[PART];

int main(int argc, char **argv)
{
	const char *name = "unlinked_fd.data";
	char path[64], link1[PATH_MAX], link2[PATH_MAX];
	struct stat st1, st2;
	int fd;
	ssize_t n;
	size_t i;

	test_init(argc, argv);
	test_fill(a, PART, 0xdead);
	test_fill(b, PART, 0xbeef);
	fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		fail("open: %m");
	if (write(fd, a, PART) != PART || pwrite(fd, b, PART, HOLE_AT) != PART)
		fail("write: %m");
	if (lseek(fd, 4321, SEEK_SET) != 4321)
		fail("lseek: %m");
	if (unlink(name))
		fail("unlink: %m");
	if (fstat(fd, &st1))
		fail("fstat: %m");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link1, sizeof(link1) - 1);
	if (n < 0)
		fail("readlink: %m");
	link1[n] = 0;

	test_daemon();
	test_waitsig();

	if (fstat(fd, &st2))
		fail("fstat after restore: %m");
	if (st2.st_nlink != 0)
		fail("st_nlink is %lu, the file is linked somewhere", (unsigned long)st2.st_nlink);
	if (st2.st_size != st1.st_size || (st2.st_mode & 07777) != (st1.st_mode & 07777))
		fail("size/mode: %lld/%o -> %lld/%o", (long long)st1.st_size, st1.st_mode & 07777,
		     (long long)st2.st_size, st2.st_mode & 07777);
	n = readlink(path, link2, sizeof(link2) - 1);
	if (n < 0)
		fail("readlink: %m");
	link2[n] = 0;
	if (strcmp(link1, link2))
		fail("fd link: '%s' -> '%s'", link1, link2);
	if (n < 10 || strcmp(link2 + n - 10, " (deleted)"))
		fail("fd link '%s' does not end with ' (deleted)'", link2);
	if (!access(name, F_OK))
		fail("the unlinked file reappeared as %s", name);
	if (lseek(fd, 0, SEEK_CUR) != 4321)
		fail("offset is %lld", (long long)lseek(fd, 0, SEEK_CUR));
	if (pread(fd, r, PART, 0) != PART || memcmp(r, a, PART))
		fail("first part differs");
	if (pread(fd, r, PART, HOLE_AT) != PART || memcmp(r, b, PART))
		fail("part after the hole differs");
	{
		static unsigned char hole[HOLE_AT - PART];

		if (pread(fd, hole, sizeof(hole), PART) != (ssize_t)sizeof(hole))
			fail("pread hole: %m");
		for (i = 0; i < sizeof(hole); i++)
			if (hole[i])
				fail("hole is not zero at %zu", PART + i);
	}
	/* still writable */
	if (pwrite(fd, "z", 1, 0) != 1)
		fail("pwrite: %m");
	pass();
}
