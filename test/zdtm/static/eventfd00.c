/*
 * eventfd00: eventfds with a counter: one EFD_NONBLOCK (counter 142), one
 * EFD_SEMAPHORE|EFD_CLOEXEC (counter 5).  After restore the counters
 * (/proc/self/fdinfo eventfd-count and read()) and flags are the same and
 * the semaphore mode works.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

static unsigned long long fdinfo_count(int fd)
{
	char path[64], val[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (test_status_field(path, "eventfd-count", val, sizeof(val)))
		fail("no eventfd-count in %s", path);
	return strtoull(val, NULL, 16);
}

int main(int argc, char **argv)
{
	int e1, e2, fl1, fl2, fd1, fd2, i;
	uint64_t v = 100;

	test_init(argc, argv);
	e1 = eventfd(42, EFD_NONBLOCK);
	e2 = eventfd(5, EFD_SEMAPHORE | EFD_CLOEXEC);
	if (e1 < 0 || e2 < 0)
		fail("eventfd: %m");
	if (write(e1, &v, 8) != 8)
		fail("write: %m");
	fl1 = fcntl(e1, F_GETFL);
	fl2 = fcntl(e2, F_GETFL);
	fd1 = fcntl(e1, F_GETFD);
	fd2 = fcntl(e2, F_GETFD);

	test_daemon();
	test_waitsig();

	if (fcntl(e1, F_GETFL) != fl1 || fcntl(e2, F_GETFL) != fl2 || fcntl(e1, F_GETFD) != fd1 ||
	    fcntl(e2, F_GETFD) != fd2)
		fail("flags changed");
	if (!(fl1 & O_NONBLOCK) || !(fd2 & FD_CLOEXEC))
		fail("flags were not set");
	if (fdinfo_count(e1) != 142 || fdinfo_count(e2) != 5)
		fail("counters %llu/%llu, expected 142/5", fdinfo_count(e1), fdinfo_count(e2));
	if (read(e1, &v, 8) != 8 || v != 142)
		fail("read e1: %llu", (unsigned long long)v);
	if (read(e1, &v, 8) != -1 || errno != EAGAIN)
		fail("e1 is not non-blocking/empty");
	for (i = 0; i < 5; i++)
		if (read(e2, &v, 8) != 8 || v != 1)
			fail("semaphore read %d gave %llu", i, (unsigned long long)v);
	if (fdinfo_count(e2) != 0)
		fail("semaphore counter is %llu after 5 reads", fdinfo_count(e2));
	v = 7;
	if (write(e2, &v, 8) != 8 || read(e2, &v, 8) != 8 || v != 1)
		fail("semaphore mode lost");
	pass();
}
