/*
 * dev_fds: fds on character devices: /dev/null (O_RDWR), /dev/zero
 * (O_RDONLY), /dev/urandom (O_RDONLY|O_NONBLOCK), /dev/full (O_WRONLY,
 * FD_CLOEXEC).  After restore each fd is the same device (st_rdev), has
 * the same flags and behaves like that device.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const struct {
	const char *path;
	int flags;
	unsigned maj, min;
} devs[] = {
	{ "/dev/null", O_RDWR, 1, 3 },
	{ "/dev/zero", O_RDONLY, 1, 5 },
	{ "/dev/urandom", O_RDONLY | O_NONBLOCK, 1, 9 },
	{ "/dev/full", O_WRONLY | O_CLOEXEC, 1, 7 },
};
#define ND (sizeof(devs) / sizeof(devs[0]))

int main(int argc, char **argv)
{
	int fd[ND], fl[ND], fdfl[ND];
	unsigned char buf[256];
	struct stat st;
	unsigned i, j, nz;

	test_init(argc, argv);
	for (i = 0; i < ND; i++) {
		fd[i] = open(devs[i].path, devs[i].flags);
		if (fd[i] < 0)
			fail("open %s: %m", devs[i].path);
		fl[i] = fcntl(fd[i], F_GETFL);
		fdfl[i] = fcntl(fd[i], F_GETFD);
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < ND; i++) {
		if (fstat(fd[i], &st))
			fail("fstat %s: %m", devs[i].path);
		if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != devs[i].maj || minor(st.st_rdev) != devs[i].min)
			fail("fd %d is not %s (rdev %u:%u)", fd[i], devs[i].path, major(st.st_rdev), minor(st.st_rdev));
		if (fcntl(fd[i], F_GETFL) != fl[i] || fcntl(fd[i], F_GETFD) != fdfl[i])
			fail("%s: flags %#o/%d -> %#o/%d", devs[i].path, fl[i], fdfl[i], fcntl(fd[i], F_GETFL),
			     fcntl(fd[i], F_GETFD));
	}
	/* /dev/null */
	if (read(fd[0], buf, sizeof(buf)) != 0)
		fail("/dev/null read is not EOF");
	if (write(fd[0], buf, sizeof(buf)) != sizeof(buf))
		fail("/dev/null write: %m");
	/* /dev/zero */
	memset(buf, 0xff, sizeof(buf));
	if (read(fd[1], buf, sizeof(buf)) != sizeof(buf))
		fail("/dev/zero read: %m");
	for (i = 0; i < sizeof(buf); i++)
		if (buf[i])
			fail("/dev/zero gave non-zero");
	/* /dev/urandom: 4 reads must not all be zero / equal */
	for (j = 0, nz = 0; j < 4; j++) {
		if (read(fd[2], buf, 64) != 64)
			fail("/dev/urandom read: %m");
		for (i = 0; i < 64; i++)
			nz += buf[i] != 0;
	}
	if (nz < 200)
		fail("/dev/urandom gives suspicious data (%u non-zero bytes of 256)", nz);
	/* /dev/full */
	if (write(fd[3], "x", 1) != -1 || errno != ENOSPC)
		fail("/dev/full write did not fail with ENOSPC");
	pass();
}
