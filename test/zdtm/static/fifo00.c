/*
 * fifo00: a FIFO created with mkfifo in the test's directory, opened
 * O_RDWR (so the open does not block) plus a second O_RDONLY|O_NONBLOCK
 * fd, with data buffered.  After restore both fds refer to the FIFO at the
 * same path, and the data reads back exactly.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEN 30000

static unsigned char data[LEN], rbuf[LEN];

int main(int argc, char **argv)
{
	const char *name = "fifo00.fifo";
	char path[64], l1[PATH_MAX], l2[PATH_MAX];
	struct stat s1, s2;
	int rw, ro, fl_rw, fl_ro;
	size_t off = 0;
	ssize_t n;

	test_init(argc, argv);
	if (mkfifo(name, 0600))
		fail("mkfifo: %m");
	rw = open(name, O_RDWR);
	ro = open(name, O_RDONLY | O_NONBLOCK);
	if (rw < 0 || ro < 0)
		fail("open fifo: %m");
	test_fill(data, LEN, 0xf1f0);
	if (write(rw, data, LEN) != LEN)
		fail("write: %m");
	if (fstat(rw, &s1))
		fail("fstat: %m");
	fl_rw = fcntl(rw, F_GETFL);
	fl_ro = fcntl(ro, F_GETFL);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", rw);
	n = readlink(path, l1, sizeof(l1) - 1);
	if (n < 0)
		fail("readlink: %m");
	l1[n] = 0;

	test_daemon();
	test_waitsig();

	if (fstat(rw, &s2) || !S_ISFIFO(s2.st_mode) || s2.st_ino != s1.st_ino || s2.st_dev != s1.st_dev)
		fail("fd is not the same FIFO");
	if (fstat(ro, &s2) || s2.st_ino != s1.st_ino)
		fail("second fd is not the same FIFO");
	if (fcntl(rw, F_GETFL) != fl_rw || fcntl(ro, F_GETFL) != fl_ro)
		fail("flags %#o/%#o -> %#o/%#o", fl_rw, fl_ro, fcntl(rw, F_GETFL), fcntl(ro, F_GETFL));
	n = readlink(path, l2, sizeof(l2) - 1);
	if (n < 0)
		fail("readlink: %m");
	l2[n] = 0;
	if (strcmp(l1, l2))
		fail("fd link %s -> %s", l1, l2);
	while (off < LEN) {
		n = read(ro, rbuf + off, LEN - off);
		if (n <= 0)
			fail("read at %zu: %zd %m", off, n);
		off += (size_t)n;
	}
	if (memcmp(rbuf, data, LEN))
		fail("FIFO data differs");
	if (read(ro, rbuf, 1) != -1 || errno != EAGAIN)
		fail("extra data in the FIFO");
	if (write(rw, "ping", 4) != 4 || read(ro, rbuf, 4) != 4 || memcmp(rbuf, "ping", 4))
		fail("FIFO does not work");
	pass();
}
