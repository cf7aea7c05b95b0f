/*
 * sigsegv00: a single-threaded task with handlers for the faults a restore
 * could use to stop it (SIGSEGV with SA_SIGINFO|SA_NODEFER and a mask,
 * SIGBUS), SIGTRAP ignored and SIGUSR2 blocked.  The restore may stop such
 * a task on a fault of its own (see rst_args::unmap_self); after it every
 * disposition and the blocked mask are what they were, nothing is pending,
 * and a raised SIGSEGV runs the handler with the right siginfo.
 */
#include "zdtmtst.h"

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ksigaction {
	void *handler;
	unsigned long flags;
	void *restorer;
	unsigned long mask;
};

static volatile sig_atomic_t hits, info_ok;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	hits++;
	info_ok = sig == SIGSEGV && si->si_code == SI_TKILL && si->si_pid == getpid();
}

static void on_bus(int sig)
{
	(void)sig;
}

static void kget(int s, struct ksigaction *ka)
{
	memset(ka, 0, sizeof(*ka));
	if (syscall(SYS_rt_sigaction, s, NULL, ka, sizeof(ka->mask)))
		fail("rt_sigaction(%d) query: %m", s);
}

int main(int argc, char **argv)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGTRAP };
	struct ksigaction before[3], now;
	struct sigaction sa;
	sigset_t set, pending;
	unsigned i;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGWINCH);
	if (sigaction(SIGSEGV, &sa, NULL))
		fail("sigaction(SIGSEGV): %m");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_bus;
	if (sigaction(SIGBUS, &sa, NULL))
		fail("sigaction(SIGBUS): %m");
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGTRAP, &sa, NULL))
		fail("sigaction(SIGTRAP): %m");
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		fail("sigprocmask: %m");
	for (i = 0; i < 3; i++)
		kget(sigs[i], &before[i]);

	test_daemon();
	test_waitsig();

	for (i = 0; i < 3; i++) {
		kget(sigs[i], &now);
		if (memcmp(&now, &before[i], sizeof(now)))
			fail("signal %d (%s): handler %p flags %#lx mask %#lx -> handler %p flags %#lx mask %#lx",
			     sigs[i], strsignal(sigs[i]), before[i].handler, before[i].flags, before[i].mask,
			     now.handler, now.flags, now.mask);
	}
	if (sigprocmask(SIG_BLOCK, NULL, &set) || !sigismember(&set, SIGUSR2) || sigismember(&set, SIGSEGV))
		fail("blocked mask: SIGUSR2 %d, SIGSEGV %d", sigismember(&set, SIGUSR2), sigismember(&set, SIGSEGV));
	if (sigpending(&pending))
		fail("sigpending: %m");
	for (i = 1; i < 32; i++)
		if (sigismember(&pending, i))
			fail("signal %u (%s) is pending", i, strsignal(i));
	raise(SIGSEGV);
	if (hits != 1 || !info_ok)
		fail("SIGSEGV handler: %d hits, siginfo ok %d", hits, info_ok);
	pass();
}
