/* vfork_wait: a task ptrace cannot stop. The parent of a vfork child sleeps
 * in the kernel (killable only) until the child execs or exits; this child
 * waits for SIGKILL. Once the harness kills it, the parent reaps it (killed
 * by SIGKILL, as expected) and goes on as any test. Its own tests only
 * (test_dump_fail_timeout, test_rpc_dump_timeout): it can't be dumped while
 * the child lives. */
#include "zdtmtst.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int status;

	test_init(argc, argv);
	test_daemon();
	pid_t child = vfork();
	if (child == 0) {
		/* shares our memory: nothing but raw system calls here */
		for (;;)
			syscall(SYS_pause);
	}
	if (child < 0)
		fail("vfork: %m");
	if (waitpid(child, &status, 0) != child)
		fail("waitpid %d: %m", (int)child);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
		fail("the vfork child ended with status %#x, not SIGKILL", status);
	test_waitsig();
	pass();
}
