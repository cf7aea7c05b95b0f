/*
 * inherit_fd00: holds only the read end of a pipe owned by the harness
 * (inherited as fd $ZDTM_PIPE_FD; the harness keeps the write end).
 *
 * The harness dumps it, drops that pipe, and restores it with
 * inherit_fd {key "pipe[INODE]"} pointing at the read end of a new pipe of
 * its own, writes $ZDTM_PIPE_MSG into that pipe and closes its write end.
 * After SIGTERM the task must find on the same fd number: a read-only pipe
 * end (as dumped) holding exactly the message, then end of file.  A pipe
 * recreated from the images instead (no writer, nothing in it) fails.
 *
 * Run by test_rpc.py only (SPECIAL_TESTS in test_zdtm.py).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

/* Waits for fd to be readable (data or hangup); fails after 10 s. */
static short wait_readable(int fd, const char *what)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, 10000);

	if (r < 0)
		fail("poll (%s): %m", what);
	if (r == 0)
		fail("fd %d: nothing to read and no end of file after 10 s (%s)", fd, what);
	return p.revents;
}

int main(int argc, char **argv)
{
	const char *fds = getenv("ZDTM_PIPE_FD"), *msg = getenv("ZDTM_PIPE_MSG");
	char buf[256];
	size_t len, got = 0;
	struct stat st;
	ssize_t n;
	int fd, fl;

	test_init(argc, argv);
	if (!fds || !msg)
		fail("ZDTM_PIPE_FD and ZDTM_PIPE_MSG must be set (run by test_rpc.py)");
	fd = atoi(fds);
	len = strlen(msg);
	if (len == 0 || len >= sizeof(buf))
		fail("bad ZDTM_PIPE_MSG length %zu", len);
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		fail("fd %d is not a pipe", fd);
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY)
		fail("fd %d is not a read-only pipe end (flags %#o)", fd, fl);
	test_msg("holding pipe inode %lu as fd %d\n", (unsigned long)st.st_ino, fd);

	test_daemon();
	test_waitsig();

	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		fail("after restore fd %d is not a pipe", fd);
	test_msg("after restore fd %d is pipe inode %lu\n", fd, (unsigned long)st.st_ino);
	fl = fcntl(fd, F_GETFL);
	if ((fl & O_ACCMODE) != O_RDONLY)
		fail("after restore fd %d has access mode %#o, dumped as O_RDONLY (%#o)", fd, fl & O_ACCMODE,
		     O_RDONLY);
	while (got < len) {
		wait_readable(fd, "waiting for the message");
		n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n < 0)
			fail("read: %m");
		if (n == 0)
			break;
		got += n;
	}
	buf[got] = 0;
	if (got != len || memcmp(buf, msg, len))
		fail("read %zu bytes \"%s\" from the pipe, expected \"%s\"", got, buf, msg);
	wait_readable(fd, "waiting for the end of file");
	n = read(fd, buf, sizeof(buf));
	if (n != 0)
		fail("expected end of file after the message, read returned %zd", n);
	pass();
}
