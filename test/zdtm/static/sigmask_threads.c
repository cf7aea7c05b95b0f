/*
 * sigmask_threads: every thread has its own blocked-signal mask (the main
 * thread too, and it is checkpointed while inside sigsuspend, which
 * temporarily replaces its mask).  After restore each thread checks its
 * mask with pthread_sigmask and /proc/self/task/TID/status SigBlk.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHR 5

static pthread_barrier_t bar;
static char errs[NTHR + 1][256];

static unsigned long long want_mask(int idx)
{
	unsigned long long m = 0;
	int s;

	for (s = 1; s <= 64; s++) {
		if (s == SIGKILL || s == SIGSTOP || s == SIGTERM || s == 32 || s == 33)
			continue;
		if (test_mix64(((uint64_t)idx << 8) + (uint64_t)s) & 1)
			m |= 1ULL << (s - 1);
	}
	return m;
}

static void set_mask(int idx)
{
	sigset_t set;
	unsigned long long m = want_mask(idx);
	int s;

	sigemptyset(&set);
	for (s = 1; s <= 64; s++)
		if (m & (1ULL << (s - 1)))
			sigaddset(&set, s);
	if (pthread_sigmask(SIG_SETMASK, &set, NULL))
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: pthread_sigmask failed", idx);
}

static void check_mask(int idx, pid_t tid)
{
	unsigned long long m = 0, want = want_mask(idx), proc;
	char path[64], val[64];
	sigset_t cur;
	int s;

	if (errs[idx][0])
		return;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	for (s = 1; s <= 64; s++)
		if (sigismember(&cur, s) == 1)
			m |= 1ULL << (s - 1);
	if (m != want) {
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: blocked mask %#llx, expected %#llx", idx, m, want);
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	if (test_status_field(path, "SigBlk", val, sizeof(val))) {
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: can't read SigBlk", idx);
		return;
	}
	proc = strtoull(val, NULL, 16);
	if (proc != want)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: SigBlk %#llx, expected %#llx", idx, proc, want);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;

	set_mask(idx);
	pthread_barrier_wait(&bar);
	test_gate_wait();
	check_mask(idx, test_gettid());
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[NTHR];
	int i;

	test_init(argc, argv);
	pthread_barrier_init(&bar, NULL, NTHR + 1);
	test_threads_start(t, NTHR, worker);
	set_mask(NTHR);
	pthread_barrier_wait(&bar);
	check_mask(NTHR, test_gettid());
	if (errs[NTHR][0])
		fail("before checkpoint: %s", errs[NTHR]);

	test_daemon();
	test_waitsig(); /* sleeps in sigsuspend: the kernel keeps our mask aside */

	check_mask(NTHR, test_gettid());
	test_threads_finish(t, NTHR);
	for (i = 0; i <= NTHR; i++)
		if (errs[i][0])
			fail("%s", errs[i]);
	pass();
}
