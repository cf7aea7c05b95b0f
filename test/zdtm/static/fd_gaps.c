/*
 * fd_gaps: open descriptors at sparse numbers: 3 (a file), 10 (pipe read
 * end), 100 (pipe write end), 1000 (dup of 3, sharing its offset), and
 * nothing else.  After restore exactly these fds are open (0-2 aside) and
 * refer to the right objects.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXFD 1100

int main(int argc, char **argv)
{
	struct rlimit rl;
	int fd, p[2], i;
	char buf[16];

	test_init(argc, argv);
	if (getrlimit(RLIMIT_NOFILE, &rl))
		fail("getrlimit: %m");
	if (rl.rlim_cur < MAXFD + 1) {
		rl.rlim_cur = rl.rlim_max < MAXFD + 1 ? rl.rlim_max : MAXFD + 1;
		if (setrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < 1001)
			fail("can't raise RLIMIT_NOFILE to %d", MAXFD + 1);
	}
	for (i = 3; i < MAXFD; i++)
		close(i);
	fd = open("fd_gaps.data", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd != 3)
		fail("file got fd %d, expected 3", fd);
	if (write(fd, "0123456789abcdef", 16) != 16 || lseek(fd, 4, SEEK_SET) != 4)
		fail("write: %m");
	if (pipe(p))
		fail("pipe: %m");
	if (dup2(p[0], 10) != 10 || dup2(p[1], 100) != 100 || dup2(3, 1000) != 1000)
		fail("dup2: %m");
	close(p[0]);
	close(p[1]);
	if (write(100, "gap", 3) != 3)
		fail("write pipe: %m");

	test_daemon();
	test_waitsig();

	for (i = 0; i < MAXFD; i++) {
		int open_now = fcntl(i, F_GETFD) != -1;
		int expected = i <= 3 || i == 10 || i == 100 || i == 1000;

		if (i <= 2)
			continue;
		if (open_now != expected)
			fail("fd %d is %s", i, open_now ? "open but should not be" : "closed but should be open");
	}
	if (read(10, buf, 3) != 3 || memcmp(buf, "gap", 3))
		fail("pipe 10/100 data");
	if (read(1000, buf, 4) != 4 || memcmp(buf, "4567", 4))
		fail("fd 1000 offset/data");
	if (lseek(3, 0, SEEK_CUR) != 8)
		fail("fd 3 does not share the offset with fd 1000");
	if (write(100, "ok", 2) != 2 || read(10, buf, 2) != 2 || memcmp(buf, "ok", 2))
		fail("pipe 100 -> 10 does not work");
	pass();
}
