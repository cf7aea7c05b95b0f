/*
 * file_fds: regular file descriptors with different modes and offsets:
 *   A: O_RDWR at offset 12345           D: dup(A) - shares A's offset
 *   B: O_WRONLY|O_APPEND                C: O_RDONLY|O_CLOEXEC at offset 777
 *   E: O_RDWR, then F_SETFL O_NONBLOCK|O_NOATIME
 * After restore F_GETFD, F_GETFL, lseek and /proc/self/fdinfo pos/flags
 * are as before; reads/writes behave (append goes to the end, A and D
 * share the offset, C and A do not).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE (64 * 1024)
#define NFD 5

static unsigned char data[SIZE];

struct fdstate {
	int fd, fdflags, flflags;
	off_t pos;
	char fdinfo_pos[32], fdinfo_flags[32];
};

static void snap(int fd, struct fdstate *s)
{
	char path[64];

	s->fd = fd;
	s->fdflags = fcntl(fd, F_GETFD);
	s->flflags = fcntl(fd, F_GETFL);
	s->pos = lseek(fd, 0, SEEK_CUR);
	if (s->fdflags < 0 || s->flflags < 0 || s->pos < 0)
		fail("fcntl/lseek on %d: %m", fd);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (test_status_field(path, "pos", s->fdinfo_pos, sizeof(s->fdinfo_pos)) ||
	    test_status_field(path, "flags", s->fdinfo_flags, sizeof(s->fdinfo_flags)))
		fail("can't parse %s", path);
}

int main(int argc, char **argv)
{
	const char *name = "file_fds.data";
	struct fdstate before[NFD], after;
	int fds[NFD], i, a, b, c, d, e;
	unsigned char buf[64];
	struct stat st;

	test_init(argc, argv);
	test_fill(data, SIZE, 0xf00d);
	a = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (a < 0)
		fail("open: %m");
	if (write(a, data, SIZE) != SIZE)
		fail("write: %m");
	if (lseek(a, 12345, SEEK_SET) != 12345)
		fail("lseek: %m");
	b = open(name, O_WRONLY | O_APPEND);
	c = open(name, O_RDONLY | O_CLOEXEC);
	d = dup(a);
	e = open(name, O_RDWR);
	if (b < 0 || c < 0 || d < 0 || e < 0)
		fail("open: %m");
	if (lseek(c, 777, SEEK_SET) != 777)
		fail("lseek: %m");
	if (fcntl(e, F_SETFL, O_NONBLOCK | O_NOATIME))
		fail("F_SETFL: %m");
	fds[0] = a, fds[1] = b, fds[2] = c, fds[3] = d, fds[4] = e;
	for (i = 0; i < NFD; i++)
		snap(fds[i], &before[i]);

	test_daemon();
	test_waitsig();

	for (i = 0; i < NFD; i++) {
		snap(fds[i], &after);
		if (after.fdflags != before[i].fdflags)
			fail("fd %d: F_GETFD %#x -> %#x", fds[i], before[i].fdflags, after.fdflags);
		if (after.flflags != before[i].flflags)
			fail("fd %d: F_GETFL %#o -> %#o", fds[i], before[i].flflags, after.flflags);
		if (after.pos != before[i].pos)
			fail("fd %d: offset %lld -> %lld", fds[i], (long long)before[i].pos, (long long)after.pos);
		if (strcmp(after.fdinfo_pos, before[i].fdinfo_pos) || strcmp(after.fdinfo_flags, before[i].fdinfo_flags))
			fail("fd %d: fdinfo pos/flags %s/%s -> %s/%s", fds[i], before[i].fdinfo_pos,
			     before[i].fdinfo_flags, after.fdinfo_pos, after.fdinfo_flags);
	}
	if (!(before[2].fdflags & FD_CLOEXEC) || (before[0].fdflags & FD_CLOEXEC))
		fail("FD_CLOEXEC not as set");
	if ((before[1].flflags & (O_ACCMODE | O_APPEND)) != (O_WRONLY | O_APPEND) ||
	    (before[4].flflags & (O_NONBLOCK | O_NOATIME)) != (O_NONBLOCK | O_NOATIME))
		fail("file status flags not as set");

	/* A and D share one file description, C is separate */
	if (read(a, buf, 10) != 10 || memcmp(buf, data + 12345, 10))
		fail("read via A");
	if (lseek(d, 0, SEEK_CUR) != 12355)
		fail("dup'ed fd does not share the offset any more (%lld)", (long long)lseek(d, 0, SEEK_CUR));
	if (read(c, buf, 10) != 10 || memcmp(buf, data + 777, 10))
		fail("read via C");
	if (lseek(a, 0, SEEK_CUR) != 12355)
		fail("A's offset moved by a read through C");
	/* append goes to the end whatever the offset */
	if (write(b, "APPENDED", 8) != 8)
		fail("append write: %m");
	if (fstat(a, &st) || st.st_size != SIZE + 8)
		fail("file size after append is %lld", (long long)st.st_size);
	if (pread(e, buf, 8, SIZE) != 8 || memcmp(buf, "APPENDED", 8))
		fail("appended data not at the end");
	/* E is read-write */
	if (pwrite(e, "XY", 2, 5) != 2 || pread(c, buf, 2, 5) != 2 || memcmp(buf, "XY", 2))
		fail("write via E");
	if (write(c, "no", 2) >= 0 || errno != EBADF)
		fail("read-only fd C is writable");
	pass();
}
