/*
 * sigpending00: pending signals survive the checkpoint.
 *   - SIGUSR1 raised (thread-directed) at the blocked main thread
 *   - SIGHUP sent with kill() (process-wide, shared pending)
 *   - SIGCONT sent with kill(), blocked too (a stop signal sent to the
 *     task would discard it: the restore must not use one)
 *   - three queued instances of a blocked RT signal with distinct values
 *   - SIGUSR2 sent with tgkill() to a thread that blocks it
 * After restore: sigpending() shows them in the right threads, and
 * unblocking delivers them (with the right siginfo, RT ones in order).
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RTSIG (SIGRTMIN + 2)

static volatile sig_atomic_t usr1_hits, hup_hits, cont_hits, usr2_hits, rt_hits, usr2_tid_ok, usr1_code, usr2_code;
static volatile int rt_vals[8];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int thread_ready, go;
static pid_t thread_tid;
static char thread_err[256];

static void handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig == SIGUSR1) {
		usr1_hits++;
		usr1_code = si->si_code;
	} else if (sig == SIGHUP) {
		hup_hits++;
	} else if (sig == SIGCONT) {
		cont_hits++;
	} else if (sig == SIGUSR2) {
		usr2_hits++;
		usr2_code = si->si_code;
		usr2_tid_ok = test_gettid() == thread_tid && si->si_pid == getpid();
	} else if (sig == RTSIG) {
		if (rt_hits < 8)
			rt_vals[rt_hits] = si->si_value.sival_int;
		rt_hits++;
	}
}

static void *worker(void *arg)
{
	sigset_t all, pend, usr2;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	pthread_mutex_lock(&mu);
	thread_tid = test_gettid();
	thread_ready = 1;
	pthread_cond_broadcast(&cv);
	while (!go)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	/* after restore: SIGUSR2 must be pending for this thread */
	sigpending(&pend);
	if (!sigismember(&pend, SIGUSR2)) {
		snprintf(thread_err, sizeof(thread_err), "SIGUSR2 is not pending in the thread");
		return NULL;
	}
	if (usr2_hits) {
		snprintf(thread_err, sizeof(thread_err), "SIGUSR2 delivered while blocked");
		return NULL;
	}
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	pthread_sigmask(SIG_UNBLOCK, &usr2, NULL); /* delivered here */
	if (usr2_hits != 1)
		snprintf(thread_err, sizeof(thread_err), "SIGUSR2 handler ran %d times", usr2_hits);
	else if (!usr2_tid_ok || usr2_code != SI_TKILL)
		snprintf(thread_err, sizeof(thread_err), "SIGUSR2: wrong thread or siginfo (code %d)", usr2_code);
	return NULL;
}

static int is_pending(const sigset_t *s, int sig)
{
	return sigismember(s, sig) == 1;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t block, pend;
	pthread_t t;
	union sigval v;
	int i, sigs[] = { SIGUSR1, SIGUSR2, SIGHUP, RTSIG, SIGCONT };
	char val[64];

	test_init(argc, argv);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	for (i = 0; i < 5; i++)
		if (sigaction(sigs[i], &sa, NULL))
			fail("sigaction: %m");
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, RTSIG);
	sigaddset(&block, SIGCONT);
	if (sigprocmask(SIG_BLOCK, &block, NULL))
		fail("sigprocmask: %m");

	if (pthread_create(&t, NULL, worker, NULL))
		fail("pthread_create");
	pthread_mutex_lock(&mu);
	while (!thread_ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	if (raise(SIGUSR1))
		fail("raise: %m");
	if (kill(getpid(), SIGHUP) || kill(getpid(), SIGCONT))
		fail("kill: %m");
	for (i = 0; i < 3; i++) {
		v.sival_int = 100 + i;
		if (sigqueue(getpid(), RTSIG, v))
			fail("sigqueue: %m");
	}
	if (syscall(SYS_tgkill, getpid(), thread_tid, SIGUSR2))
		fail("tgkill: %m");

	sigpending(&pend);
	if (!is_pending(&pend, SIGUSR1) || !is_pending(&pend, SIGHUP) || !is_pending(&pend, RTSIG) ||
	    !is_pending(&pend, SIGCONT) || is_pending(&pend, SIGUSR2))
		fail("unexpected pending set before checkpoint");

	test_daemon();
	test_waitsig();

	if (usr1_hits || hup_hits || cont_hits || rt_hits || usr2_hits)
		fail("blocked signals were delivered: usr1 %d hup %d cont %d rt %d usr2 %d", usr1_hits, hup_hits,
		     cont_hits, rt_hits, usr2_hits);
	sigpending(&pend);
	if (!is_pending(&pend, SIGUSR1))
		fail("SIGUSR1 is not pending after restore");
	if (!is_pending(&pend, SIGHUP))
		fail("SIGHUP (shared) is not pending after restore");
	if (!is_pending(&pend, SIGCONT))
		fail("SIGCONT is not pending after restore");
	if (!is_pending(&pend, RTSIG))
		fail("RT signal is not pending after restore");
	if (is_pending(&pend, SIGUSR2))
		fail("SIGUSR2 is pending in the main thread (was sent to another thread)");
	/* SigPnd = thread-private, ShdPnd = shared */
	if (test_status_field("/proc/self/status", "ShdPnd", val, sizeof(val)))
		fail("no ShdPnd");
	{
		unsigned long long shd = strtoull(val, NULL, 16);

		if (!(shd & (1ULL << (SIGHUP - 1))) || !(shd & (1ULL << (RTSIG - 1))))
			fail("ShdPnd %#llx lacks SIGHUP/RT", shd);
		if (shd & (1ULL << (SIGUSR1 - 1)))
			fail("SIGUSR1 became process-wide (ShdPnd %#llx)", shd);
	}

	if (sigprocmask(SIG_UNBLOCK, &block, NULL))
		fail("sigprocmask: %m");
	if (usr1_hits != 1 || usr1_code != SI_TKILL)
		fail("SIGUSR1: %d deliveries, si_code %d", usr1_hits, usr1_code);
	if (hup_hits != 1)
		fail("SIGHUP: %d deliveries", hup_hits);
	if (cont_hits != 1)
		fail("SIGCONT: %d deliveries", cont_hits);
	if (rt_hits != 3)
		fail("RT signal: %d deliveries, expected 3", rt_hits);
	for (i = 0; i < 3; i++)
		if (rt_vals[i] != 100 + i)
			fail("RT signal #%d carried %d, expected %d", i, rt_vals[i], 100 + i);

	pthread_mutex_lock(&mu);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(t, NULL);
	if (thread_err[0])
		fail("%s", thread_err);
	pass();
}
