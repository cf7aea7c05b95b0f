/*
 * tree_unsupp: a tree whose shape criu refuses to dump, chosen by
 * ZDTM_TREE_UNSUPP:
 *   files:   a child made with clone(CLONE_FILES) shares the root's fd table;
 *   session: a child moved to a new session after forking a grandchild,
 *            which stays in the old one (a session it did not inherit);
 *   group:   a child led a process group, forked a grandchild into it and
 *            left it: the group has no leader.
 * The dump must fail and leave every process as it was; the root then
 * checks that its children are alive and passes.
 */
#include "zdtmtst.h"

#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

static char stack[65536] __attribute__((aligned(16)));

static int sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static void leaf(void *arg)
{
	(void)arg;
	for (;;)
		pause();
}

static void new_session_later(void *arg)
{
	(void)arg;
	test_fork(leaf, NULL);
	if (setsid() < 0)
		fail("setsid: %m");
	for (;;)
		pause();
}

static void leave_group(void *arg)
{
	pid_t pgid = *(pid_t *)arg;

	if (setpgid(0, 0) < 0)
		fail("setpgid: %m");
	test_fork(leaf, NULL);
	if (setpgid(0, pgid) < 0)
		fail("setpgid back: %m");
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	const char *kind = getenv("ZDTM_TREE_UNSUPP");
	pid_t child, pgid;

	test_init(argc, argv);
	if (!kind)
		fail("ZDTM_TREE_UNSUPP is not set");
	pgid = getpgid(0);
	if (!strcmp(kind, "files"))
		child = clone(sleeper, stack + sizeof(stack), CLONE_FILES | SIGCHLD, NULL);
	else if (!strcmp(kind, "session"))
		child = test_fork(new_session_later, NULL);
	else if (!strcmp(kind, "group"))
		child = test_fork(leave_group, &pgid);
	else
		fail("unknown kind %s", kind);
	if (child < 0)
		fail("clone: %m");
	usleep(200000);
	test_daemon();
	test_waitsig();
	if (kill(child, 0) < 0)
		fail("child %d is gone: %m", child);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	pass();
}
