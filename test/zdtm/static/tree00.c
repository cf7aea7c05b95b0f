/*
 * tree00: a process tree: the root with two children, one of which has two
 * children of its own.  Each process keeps a heap buffer filled with a
 * pattern seeded by its PID.  After restore every process checks its PID,
 * its parent's PID (but the root, which is adopted by whoever restores it)
 * and its buffer, and each parent collects its children.
 */
#include "zdtmtst.h"

#include <unistd.h>

#define BUF (1 << 20)

struct self {
	pid_t pid, ppid;
	unsigned char *buf;
};

static void setup(struct self *s)
{
	s->pid = getpid();
	s->ppid = getppid();
	s->buf = malloc(BUF);
	if (!s->buf)
		fail("malloc: %m");
	test_fill(s->buf, BUF, (uint64_t)s->pid);
}

static void check(const struct self *s, int root)
{
	size_t off;

	if (getpid() != s->pid || (!root && getppid() != s->ppid))
		fail("pid/ppid %d/%d, was %d/%d", getpid(), getppid(), s->pid, s->ppid);
	off = test_check(s->buf, BUF, (uint64_t)s->pid);
	if (off != TEST_NO_MISMATCH)
		fail("process %d: memory differs at %zu", s->pid, off);
}

static void leaf(void *arg)
{
	struct self s;

	(void)arg;
	setup(&s);
	test_waitsig();
	check(&s, 0);
}

static void middle(void *arg)
{
	struct self s;
	pid_t kids[2];

	(void)arg;
	setup(&s);
	kids[0] = test_fork(leaf, NULL);
	kids[1] = test_fork(leaf, NULL);
	test_waitsig();
	check(&s, 0);
	test_finish_child(kids[0]);
	test_finish_child(kids[1]);
}

int main(int argc, char **argv)
{
	struct self s;
	pid_t a, b;

	test_init(argc, argv);
	setup(&s);
	a = test_fork(middle, NULL);
	b = test_fork(leaf, NULL);
	usleep(100000);
	test_daemon();
	test_waitsig();
	check(&s, 1);
	test_finish_child(a);
	test_finish_child(b);
	pass();
}
