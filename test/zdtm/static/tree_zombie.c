/*
 * tree_zombie: zombies.  The root has three children that ended before the
 * dump and were never reaped (exit 7, exit 0, killed by SIGUSR1) and a live
 * child with a zombie of its own (exit 3).  After restore the zombies are
 * still zombies with their PIDs, wait() returns their exact status, and no
 * parent got a SIGCHLD it had not had before the dump.
 */
#include "zdtmtst.h"

#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t sigchld;

static void on_sigchld(int sig)
{
	(void)sig;
	sigchld++;
}

static void count_sigchld(void)
{
	struct sigaction sa = {.sa_handler = on_sigchld};

	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL))
		fail("sigaction: %m");
}

static pid_t zombie(int code, int sig)
{
	siginfo_t si;
	pid_t pid = fork();

	if (pid < 0)
		fail("fork: %m");
	if (pid == 0) {
		if (sig) {
			signal(sig, SIG_DFL);
			raise(sig);
		}
		_exit(code);
	}
	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) < 0)
		if (errno != EINTR)
			fail("waitid: %m");
	return pid;
}

static void check_zombie(pid_t pid, int status)
{
	char path[64], buf[512], *p;
	int st;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (test_read_file(path, buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')) || p[2] != 'Z')
		fail("%d is not a zombie any more: %s", pid, buf);
	if (waitpid(pid, &st, WNOHANG) != pid)
		fail("waitpid(%d): %m", pid);
	if (st != status)
		fail("zombie %d: status 0x%x, expected 0x%x", pid, st, status);
}

static void parent_of_zombie(void *arg)
{
	pid_t z;
	int before;

	(void)arg;
	count_sigchld();
	z = zombie(3, 0);
	while (!sigchld)
		usleep(1000);
	before = sigchld;
	test_waitsig();
	if (sigchld != before)
		fail("got %d SIGCHLD since the dump", sigchld - before);
	check_zombie(z, 3 << 8);
}

int main(int argc, char **argv)
{
	pid_t z[3], live;
	int before;

	test_init(argc, argv);
	count_sigchld();
	z[0] = zombie(7, 0);
	z[1] = zombie(0, 0);
	z[2] = zombie(0, SIGUSR1);
	live = test_fork(parent_of_zombie, NULL);
	while (sigchld < 3)
		usleep(1000);
	usleep(100000);
	before = sigchld;
	test_daemon();
	test_waitsig();
	if (sigchld != before)
		fail("got %d SIGCHLD since the dump", sigchld - before);
	check_zombie(z[0], 7 << 8);
	check_zombie(z[1], 0);
	check_zombie(z[2], SIGUSR1);
	test_finish_child(live);
	pass();
}
