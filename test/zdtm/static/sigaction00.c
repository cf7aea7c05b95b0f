/*
 * sigaction00: signal dispositions.  SA_SIGINFO|SA_RESTART handlers with
 * sa_mask, a SA_RESETHAND|SA_NODEFER handler, SIG_IGN for some signals, an
 * RT signal handler, a SIGTRAP handler (the restore's own stops must not
 * reset it).  After restore every signal's disposition (handler,
 * flags, mask, restorer) is what it was, and the handlers really work:
 * raised signals run them with the right siginfo and blocked mask, SIG_IGN
 * signals are ignored and SA_RESETHAND resets the disposition.
 */
#include "zdtmtst.h"

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* the kernel's view, read with the raw system call (covers 32/33 too) */
struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

static struct ksigaction before[_NSIG];
static volatile sig_atomic_t usr1_hits, usr2_hits, rt_hits, usr1_mask_ok, usr1_info_ok, rt_value;

static void usr1_handler(int sig, siginfo_t *si, void *uc)
{
	sigset_t cur;

	(void)uc;
	usr1_hits++;
	usr1_info_ok = sig == SIGUSR1 && si->si_signo == SIGUSR1 && si->si_code == SI_TKILL && si->si_pid == getpid();
	sigprocmask(SIG_BLOCK, NULL, &cur);
	/* SIGUSR1 itself (no SA_NODEFER) and sa_mask are blocked in the handler */
	usr1_mask_ok = sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGUSR2) && sigismember(&cur, SIGWINCH) &&
		       !sigismember(&cur, SIGINT);
}

static void usr2_handler(int sig)
{
	(void)sig;
	usr2_hits++;
}

static void rt_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGRTMIN + 4) {
		rt_hits++;
		rt_value = si->si_value.sival_int;
	}
}

static void kget(int s, struct ksigaction *ka)
{
	memset(ka, 0, sizeof(*ka));
	if (syscall(SYS_rt_sigaction, s, NULL, ka, sizeof(ka->mask)))
		fail("rt_sigaction(%d) query: %m", s);
}

static void get_all(struct ksigaction *sa)
{
	int s;

	for (s = 1; s < _NSIG; s++)
		kget(s, &sa[s]);
}

static int same(const struct ksigaction *a, const struct ksigaction *b)
{
	return a->handler == b->handler && a->flags == b->flags && a->restorer == b->restorer &&
	       a->mask == b->mask;
}

static void install(int sig, void *h, int flags, const int *mask)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (; mask && *mask; mask++)
		sigaddset(&sa.sa_mask, *mask);
	if (flags & SA_SIGINFO)
		sa.sa_sigaction = h;
	else
		sa.sa_handler = h;
	sa.sa_flags = flags;
	if (sigaction(sig, &sa, NULL))
		fail("sigaction(%d): %m", sig);
}

int main(int argc, char **argv)
{
	static const int usr1_mask[] = { SIGUSR2, SIGWINCH, 0 };
	int rt_mask[] = { SIGRTMIN + 5, SIGUSR1, 0 };
	struct sigaction now;
	struct ksigaction know;
	union sigval v;
	int s;

	test_init(argc, argv);

	install(SIGUSR1, usr1_handler, SA_SIGINFO | SA_RESTART, usr1_mask);
	install(SIGUSR2, usr2_handler, SA_RESETHAND | SA_NODEFER, NULL);
	install(SIGRTMIN + 4, rt_handler, SA_SIGINFO | SA_RESTART | SA_ONSTACK, rt_mask);
	install(SIGHUP, SIG_IGN, 0, NULL);
	install(SIGPIPE, SIG_IGN, 0, NULL);
	install(SIGWINCH, SIG_IGN, SA_RESTART, NULL);
	install(SIGRTMAX - 1, SIG_IGN, 0, NULL);
	install(SIGCHLD, SIG_DFL, SA_NOCLDSTOP, NULL);
	install(SIGTRAP, rt_handler, SA_SIGINFO | SA_RESTART, NULL);
	get_all(before);

	test_daemon();
	test_waitsig();

	for (s = 1; s < _NSIG; s++) {
		kget(s, &know);
		if (!same(&know, &before[s]))
			fail("signal %d (%s): handler %p flags %#lx restorer %p mask %#lx -> "
			     "handler %p flags %#lx restorer %p mask %#lx",
			     s, strsignal(s), before[s].handler, before[s].flags, before[s].restorer, before[s].mask,
			     know.handler, know.flags, know.restorer, know.mask);
	}

	raise(SIGUSR1);
	if (usr1_hits != 1 || !usr1_info_ok || !usr1_mask_ok)
		fail("SIGUSR1 handler: hits %d, siginfo ok %d, mask ok %d", usr1_hits, usr1_info_ok, usr1_mask_ok);
	raise(SIGUSR2);
	if (usr2_hits != 1)
		fail("SIGUSR2 handler did not run");
	if (sigaction(SIGUSR2, NULL, &now) || now.sa_handler != SIG_DFL)
		fail("SA_RESETHAND did not reset SIGUSR2");
	raise(SIGHUP); /* ignored: we must survive */
	raise(SIGPIPE);
	raise(SIGWINCH);
	raise(SIGRTMAX - 1);
	v.sival_int = 4242;
	if (sigqueue(getpid(), SIGRTMIN + 4, v))
		fail("sigqueue: %m");
	if (rt_hits != 1 || rt_value != 4242)
		fail("RT handler: hits %d value %d", rt_hits, rt_value);
	pass();
}
