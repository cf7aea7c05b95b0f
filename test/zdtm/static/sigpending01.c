/*
 * sigpending01: SIGCONT blocked and pending (from kill()) in a task that
 * ignores SIGSEGV, with a SIGILL handler and a second thread. The restore
 * can't stop its threads on a SIGSEGV of its own (that would change the
 * ignored action), and a SIGSTOP would make the kernel discard the pending
 * SIGCONT: they stop on a SIGILL, which the handler never sees.
 * After restore: SIGSEGV still ignored, the SIGILL handler still there and
 * never run, SIGCONT still blocked and pending; unblocking it runs its
 * handler once with the kill()'s siginfo.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t cont_hits, cont_info_ok, ill_hits;
static pid_t me;

static void on_cont(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	cont_hits++;
	cont_info_ok = sig == SIGCONT && si->si_code == SI_USER && si->si_pid == me;
}

static void on_ill(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	ill_hits++;
}

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO;
	if (sigaction(sig, &sa, NULL))
		fail("sigaction(%d): %m", sig);
}

int main(int argc, char **argv)
{
	struct sigaction now;
	sigset_t set, pending;
	pthread_t th;

	test_init(argc, argv);
	me = getpid();
	handle(SIGCONT, on_cont);
	handle(SIGILL, on_ill);
	if (signal(SIGSEGV, SIG_IGN) == SIG_ERR)
		fail("signal(SIGSEGV): %m");
	sigemptyset(&set);
	sigaddset(&set, SIGCONT);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		fail("sigprocmask: %m");
	if (pthread_create(&th, NULL, idle, NULL))
		fail("pthread_create");
	if (kill(me, SIGCONT))
		fail("kill: %m");

	test_daemon();
	test_waitsig();

	if (sigaction(SIGSEGV, NULL, &now) || now.sa_handler != SIG_IGN)
		fail("SIGSEGV is no longer ignored");
	if (sigaction(SIGILL, NULL, &now) || now.sa_sigaction != on_ill || !(now.sa_flags & SA_SIGINFO))
		fail("SIGILL's handler is %p, flags %#x", (void *)now.sa_sigaction, now.sa_flags);
	if (ill_hits)
		fail("the SIGILL handler ran %d times", ill_hits);
	if (sigpending(&pending) || !sigismember(&pending, SIGCONT))
		fail("SIGCONT is no longer pending");
	if (sigprocmask(SIG_BLOCK, NULL, &set) || !sigismember(&set, SIGCONT))
		fail("SIGCONT is no longer blocked");
	if (cont_hits)
		fail("the SIGCONT handler ran before it was unblocked");
	sigemptyset(&set);
	sigaddset(&set, SIGCONT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (cont_hits != 1 || !cont_info_ok)
		fail("SIGCONT handler: %d hits, siginfo ok %d", cont_hits, cont_info_ok);
	pass();
}
