/*
 * tree_shm: memory shared between processes of a tree.
 *   shared: 4 MiB MAP_SHARED|MAP_ANONYMOUS made before fork, a pattern in
 *           the first half (written by the root) and in the second half
 *           (written by the child after the fork);
 *   memfd:  a memfd mapped MAP_SHARED by both, written by both;
 *   priv:   MAP_PRIVATE anonymous memory, changed by the child after fork:
 *           each process keeps its own contents.
 * After restore both check everything, the child writes a marker in each
 * shared area and the root sees it: the memory is still shared.
 */
#include "zdtmtst.h"

#include <sys/mman.h>
#include <unistd.h>

#define SZ (4 << 20)

static unsigned char *shared, *mfd, *priv;

static void check_common(void)
{
	size_t off;

	if ((off = test_check(shared, SZ / 2, 1)) != TEST_NO_MISMATCH ||
	    (off = test_check(shared + SZ / 2, SZ / 2, 2)) != TEST_NO_MISMATCH)
		fail("process %d: shared memory differs at %zu", getpid(), off);
	if ((off = test_check(mfd, SZ / 4, 3)) != TEST_NO_MISMATCH ||
	    (off = test_check(mfd + SZ / 4, SZ / 4, 4)) != TEST_NO_MISMATCH)
		fail("process %d: memfd memory differs at %zu", getpid(), off);
}

static void child(void *arg)
{
	(void)arg;
	test_fill(shared + SZ / 2, SZ / 2, 2);
	test_fill(mfd + SZ / 4, SZ / 4, 4);
	test_fill(priv, SZ, 6);
	test_waitsig();
	check_common();
	if (test_check(priv, SZ, 6) != TEST_NO_MISMATCH)
		fail("child's private memory differs");
	shared[12345] ^= 0xff;
	mfd[54321] ^= 0xff;
}

int main(int argc, char **argv)
{
	int fd;
	pid_t c;

	test_init(argc, argv);
	shared = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	priv = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fd = memfd_create("tree_shm", 0);
	if (fd < 0 || ftruncate(fd, SZ / 2) < 0)
		fail("memfd: %m");
	mfd = mmap(NULL, SZ / 2, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (shared == MAP_FAILED || priv == MAP_FAILED || mfd == MAP_FAILED)
		fail("mmap: %m");
	close(fd);
	test_fill(shared, SZ / 2, 1);
	test_fill(mfd, SZ / 4, 3);
	test_fill(priv, SZ, 5);
	c = test_fork(child, NULL);
	usleep(200000);
	test_daemon();
	test_waitsig();
	check_common();
	if (test_check(priv, SZ, 5) != TEST_NO_MISMATCH)
		fail("root's private memory differs");
	test_finish_child(c);
	if (test_check(shared, SZ / 2, 1) == TEST_NO_MISMATCH || test_check(mfd, SZ / 4, 3) == TEST_NO_MISMATCH)
		fail("the child's writes after restore are not visible: memory not shared");
	pass();
}
