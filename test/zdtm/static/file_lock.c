/*
 * file_lock: a task holding file locks, which criu refuses to dump
 * (test_dump_fail_refused): an flock() on one file and a POSIX write
 * lock on another.  After the failed dump both locks are still held (its
 * fdinfo still lists them) and it passes.  With ZDTM_DEVICE set it holds
 * /dev/kmsg open instead, a device criu does not know.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

static int has_lock(int fd, const char *kind)
{
	char path[64], buf[4096];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (test_read_file(path, buf, sizeof(buf)) < 0)
		fail("read %s: %m", path);
	return strstr(buf, "lock:") && strstr(buf, kind);
}

int main(int argc, char **argv)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	int a, b;

	test_init(argc, argv);
	if (getenv("ZDTM_DEVICE")) {
		a = TEST_SYS(open("/dev/kmsg", O_RDONLY));
		test_msg("device fd %d", a);
		test_daemon();
		test_waitsig();
		if (fcntl(a, F_GETFD) < 0)
			fail("the device fd is gone");
		pass();
	}
	a = TEST_SYS(open("flocked", O_RDWR | O_CREAT, 0600));
	b = TEST_SYS(open("posix-locked", O_RDWR | O_CREAT, 0600));
	TEST_SYS(flock(a, LOCK_EX));
	TEST_SYS(fcntl(b, F_SETLK, &fl));
	test_msg("locked fds %d %d", a, b);
	test_daemon();
	test_waitsig();
	if (!has_lock(a, "FLOCK") || !has_lock(b, "POSIX"))
		fail("a lock is gone");
	pass();
}
