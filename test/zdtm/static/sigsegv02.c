/*
 * sigsegv02: SIGSEGV blocked with one pending from kill(): a state a
 * restore's stop on a fault of its own would change (see
 * rst_args::unmap_self), so the restore stops this task the other way.
 * After it SIGSEGV is still blocked and pending with its handler, and
 * unblocking it runs the handler once with the kill()'s siginfo.
 */
#include "zdtmtst.h"

#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t hits, info_ok;
static pid_t me;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	hits++;
	info_ok = sig == SIGSEGV && si->si_code == SI_USER && si->si_pid == me;
}

int main(int argc, char **argv)
{
	struct sigaction sa, now;
	sigset_t set, pending;

	test_init(argc, argv);
	me = getpid();
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(SIGSEGV, &sa, NULL))
		fail("sigaction(SIGSEGV): %m");
	sigemptyset(&set);
	sigaddset(&set, SIGSEGV);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		fail("sigprocmask: %m");
	if (kill(me, SIGSEGV))
		fail("kill: %m");

	test_daemon();
	test_waitsig();

	if (sigaction(SIGSEGV, NULL, &now) || now.sa_sigaction != on_segv || !(now.sa_flags & SA_SIGINFO))
		fail("SIGSEGV's handler is %p, flags %#x", (void *)now.sa_sigaction, now.sa_flags);
	if (sigpending(&pending) || !sigismember(&pending, SIGSEGV))
		fail("SIGSEGV is no longer pending");
	if (sigprocmask(SIG_BLOCK, NULL, &set) || !sigismember(&set, SIGSEGV))
		fail("SIGSEGV is no longer blocked");
	if (hits)
		fail("the SIGSEGV handler ran before it was unblocked");
	sigemptyset(&set);
	sigaddset(&set, SIGSEGV);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (hits != 1 || !info_ok)
		fail("SIGSEGV handler: %d hits, siginfo ok %d", hits, info_ok);
	pass();
}
