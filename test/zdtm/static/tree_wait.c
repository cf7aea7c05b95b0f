/*
 * tree_wait: a parent asleep in wait().  W forks G and waits for it; G
 * waits for a byte on a pipe whose write end the root holds.  After restore
 * the root writes; G exits 42, W's wait4() (restarted) returns that status
 * and W exits 0 if it got it.
 */
#include "zdtmtst.h"

#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int pipefd[2];

static void grandchild(void *arg)
{
	char c;

	(void)arg;
	close(pipefd[1]);
	if (read(pipefd[0], &c, 1) != 1 || c != 'g')
		_exit(1);
	_exit(42);
}

static void waiter(void *arg)
{
	int status;
	pid_t g;

	(void)arg;
	g = test_fork(grandchild, NULL);
	close(pipefd[0]);
	close(pipefd[1]);
	if (waitpid(g, &status, 0) != g)
		fail("waitpid: %m");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 42)
		fail("grandchild status 0x%x", status);
	_exit(0);
}

/* Until w sleeps in wait4 (syscall 61). */
static void wait_in_wait4(pid_t w)
{
	char path[64], buf[128];

	snprintf(path, sizeof(path), "/proc/%d/syscall", w);
	for (int i = 0; i < 5000; i++) {
		if (test_read_file(path, buf, sizeof(buf)) > 0 && !strncmp(buf, "61 ", 3))
			return;
		usleep(1000);
	}
	fail("%d does not sleep in wait4: %s", w, buf);
}

int main(int argc, char **argv)
{
	int status;
	pid_t w;

	test_init(argc, argv);
	if (pipe(pipefd))
		fail("pipe: %m");
	w = test_fork(waiter, NULL);
	close(pipefd[0]);
	wait_in_wait4(w);
	test_daemon();
	test_waitsig();
	wait_in_wait4(w);
	if (write(pipefd[1], "g", 1) != 1)
		fail("write: %m");
	if (waitpid(w, &status, 0) != w)
		fail("waitpid: %m");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("waiter failed: status 0x%x", status);
	pass();
}
