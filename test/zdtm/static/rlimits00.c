/*
 * rlimits00: lowered RLIMIT_NOFILE (soft) and RLIMIT_CORE (soft and hard),
 * plus a few others; after restore every resource limit is what it was and
 * the NOFILE limit is really enforced.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#define NLIM RLIM_NLIMITS

int main(int argc, char **argv)
{
	struct rlimit before[NLIM], r;
	int i, fd;

	test_init(argc, argv);

	if (getrlimit(RLIMIT_NOFILE, &r))
		fail("getrlimit: %m");
	r.rlim_cur = 300;
	if (setrlimit(RLIMIT_NOFILE, &r))
		fail("setrlimit NOFILE: %m");
	r.rlim_cur = 4096;
	r.rlim_max = 1 << 20;
	if (setrlimit(RLIMIT_CORE, &r))
		fail("setrlimit CORE: %m");
	if (getrlimit(RLIMIT_STACK, &r))
		fail("getrlimit: %m");
	r.rlim_cur = 6 << 20;
	if (setrlimit(RLIMIT_STACK, &r))
		fail("setrlimit STACK: %m");
	if (getrlimit(RLIMIT_MSGQUEUE, &r))
		fail("getrlimit: %m");
	r.rlim_cur = r.rlim_cur / 2;
	if (setrlimit(RLIMIT_MSGQUEUE, &r))
		fail("setrlimit MSGQUEUE: %m");
	if (getrlimit(RLIMIT_SIGPENDING, &r))
		fail("getrlimit: %m");
	r.rlim_cur = 500;
	if (setrlimit(RLIMIT_SIGPENDING, &r))
		fail("setrlimit SIGPENDING: %m");
	for (i = 0; i < NLIM; i++)
		if (getrlimit(i, &before[i]))
			fail("getrlimit(%d): %m", i);

	test_daemon();
	test_waitsig();

	for (i = 0; i < NLIM; i++) {
		if (getrlimit(i, &r))
			fail("getrlimit(%d): %m", i);
		if (r.rlim_cur != before[i].rlim_cur || r.rlim_max != before[i].rlim_max)
			fail("rlimit %d: %llu/%llu -> %llu/%llu", i, (unsigned long long)before[i].rlim_cur,
			     (unsigned long long)before[i].rlim_max, (unsigned long long)r.rlim_cur,
			     (unsigned long long)r.rlim_max);
	}
	if (before[RLIMIT_NOFILE].rlim_cur != 300 || before[RLIMIT_CORE].rlim_cur != 4096 ||
	    before[RLIMIT_CORE].rlim_max != 1 << 20)
		fail("limits were not set as requested");
	/* the NOFILE limit is enforced: fd 299 is the last usable one */
	fd = fcntl(0, F_DUPFD, 299);
	if (fd != 299)
		fail("F_DUPFD 299: got %d (%m)", fd);
	close(fd);
	if (fcntl(0, F_DUPFD, 300) >= 0)
		fail("F_DUPFD 300 succeeded despite RLIMIT_NOFILE 300");
	pass();
}
