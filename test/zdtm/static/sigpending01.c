/*
 * sigpending01: SIGCONT blocked and pending (from kill()) in a task that
 * ignores SIGSEGV and has SIGILL blocked and pending too, with a SIGFPE
 * handler and a second thread. The restore can't stop its threads on a
 * SIGSEGV or SIGILL of its own (that would change the ignored action or
 * deliver the pending one), and a SIGSTOP would make the kernel discard the
 * pending SIGCONT: they stop on a SIGFPE, which the handler never sees.
 * After restore: SIGSEGV still ignored, the SIGFPE handler still there and
 * never run, SIGCONT and SIGILL still blocked and pending; unblocking them
 * runs their handlers once each with the kill()'s siginfo.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t cont_hits, ill_hits, info_ok = 1, fpe_hits;
static pid_t me;

static void on_pending(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGCONT)
		cont_hits++;
	else
		ill_hits++;
	if (si->si_code != SI_USER || si->si_pid != me)
		info_ok = 0;
}

static void on_fpe(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	fpe_hits++;
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
	handle(SIGCONT, on_pending);
	handle(SIGILL, on_pending);
	handle(SIGFPE, on_fpe);
	if (signal(SIGSEGV, SIG_IGN) == SIG_ERR)
		fail("signal(SIGSEGV): %m");
	sigemptyset(&set);
	sigaddset(&set, SIGCONT);
	sigaddset(&set, SIGILL);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		fail("sigprocmask: %m");
	if (pthread_create(&th, NULL, idle, NULL))
		fail("pthread_create");
	if (kill(me, SIGCONT) || kill(me, SIGILL))
		fail("kill: %m");

	test_daemon();
	test_waitsig();

	if (sigaction(SIGSEGV, NULL, &now) || now.sa_handler != SIG_IGN)
		fail("SIGSEGV is no longer ignored");
	if (sigaction(SIGFPE, NULL, &now) || now.sa_sigaction != on_fpe || !(now.sa_flags & SA_SIGINFO))
		fail("SIGFPE's handler is %p, flags %#x", (void *)now.sa_sigaction, now.sa_flags);
	if (fpe_hits)
		fail("the SIGFPE handler ran %d times", fpe_hits);
	if (sigpending(&pending) || !sigismember(&pending, SIGCONT) || !sigismember(&pending, SIGILL))
		fail("SIGCONT or SIGILL is no longer pending");
	if (sigprocmask(SIG_BLOCK, NULL, &set) || !sigismember(&set, SIGCONT) || !sigismember(&set, SIGILL))
		fail("SIGCONT or SIGILL is no longer blocked");
	if (cont_hits || ill_hits)
		fail("a handler ran before its signal was unblocked");
	sigemptyset(&set);
	sigaddset(&set, SIGCONT);
	sigaddset(&set, SIGILL);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (cont_hits != 1 || ill_hits != 1 || !info_ok)
		fail("handlers: SIGCONT %d, SIGILL %d hits, siginfo ok %d", cont_hits, ill_hits, info_ok);
	pass();
}
