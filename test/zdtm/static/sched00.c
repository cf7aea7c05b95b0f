/*
 * sched00: scheduling policy, priority and nice value per thread, and the
 * process's oom_score_adj.  The main thread runs SCHED_OTHER at nice 5, one
 * thread SCHED_BATCH at nice 3, one SCHED_IDLE with SCHED_RESET_ON_FORK, one
 * SCHED_FIFO at priority 7 (where real-time scheduling is allowed here);
 * oom_score_adj is 321.  After restore each thread finds its own settings.
 * With ZDTM_SCHED_DEADLINE set, the main thread runs SCHED_DEADLINE
 * instead, which criu refuses to dump (the test then just passes).
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTHR 3

struct want {
	int policy, prio, nice;
};

static struct want wants[NTHR + 1] = {
	{ SCHED_BATCH, 0, 3 },
	{ SCHED_IDLE | SCHED_RESET_ON_FORK, 0, 0 },
	{ SCHED_FIFO, 7, 0 },
	{ SCHED_OTHER, 0, 5 },
};
static int have_rt = 1;
static pthread_barrier_t bar;
static char errs[NTHR + 1][256];

static void set(int idx)
{
	struct sched_param sp = { .sched_priority = wants[idx].prio };

	if (sched_setscheduler(0, wants[idx].policy, &sp)) {
		if (wants[idx].policy == SCHED_FIFO) {
			have_rt = 0; /* no real-time budget here: checked as SCHED_OTHER */
			wants[idx].policy = SCHED_OTHER;
			wants[idx].prio = 0;
		} else {
			snprintf(errs[idx], sizeof(errs[idx]), "thread %d: sched_setscheduler: %m", idx);
		}
	}
	if (setpriority(PRIO_PROCESS, test_gettid(), wants[idx].nice))
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: setpriority: %m", idx);
}

static void check(int idx)
{
	struct sched_param sp;
	int policy = sched_getscheduler(0), nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, test_gettid());
	if (errs[idx][0])
		return;
	if (policy != wants[idx].policy || sched_getparam(0, &sp) || sp.sched_priority != wants[idx].prio ||
	    errno || (policy != SCHED_FIFO && nice != wants[idx].nice))
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: policy %#x prio %d nice %d, expected %#x %d %d", idx,
			 policy, sp.sched_priority, nice, wants[idx].policy, wants[idx].prio, wants[idx].nice);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;

	set(idx);
	check(idx);
	pthread_barrier_wait(&bar);
	test_gate_wait();
	check(idx);
	return NULL;
}

static int oom_adj(void)
{
	char buf[32];

	if (test_read_file("/proc/self/oom_score_adj", buf, sizeof(buf)) < 0)
		fail("can't read oom_score_adj");
	return atoi(buf);
}

int main(int argc, char **argv)
{
	pthread_t t[NTHR];
	FILE *f;
	int i;

	test_init(argc, argv);
	pthread_barrier_init(&bar, NULL, NTHR + 1);
	test_threads_start(t, NTHR, worker);
	set(NTHR);
	check(NTHR);
	if (getenv("ZDTM_SCHED_DEADLINE")) {
		/* struct sched_attr: size, policy, flags, nice, priority, runtime, deadline, period */
		uint64_t attr[7] = { 48ULL | (6ULL << 32), 0, 0, 1000000, 10000000, 10000000, 0 };

		if (syscall(SYS_sched_setattr, 0, attr, 0))
			fail("sched_setattr(SCHED_DEADLINE): %m");
		test_daemon();
		test_waitsig();
		pass();
	}
	f = fopen("/proc/self/oom_score_adj", "w");
	if (!f || fprintf(f, "321\n") < 0 || fclose(f))
		fail("can't write oom_score_adj");
	pthread_barrier_wait(&bar);
	for (i = 0; i <= NTHR; i++)
		if (errs[i][0])
			fail("before checkpoint: %s", errs[i]);
	if (!have_rt)
		test_msg("no real-time scheduling here: SCHED_FIFO not tested");

	test_daemon();
	test_waitsig();

	check(NTHR);
	if (oom_adj() != 321)
		fail("oom_score_adj is %d, expected 321", oom_adj());
	test_threads_finish(t, NTHR);
	for (i = 0; i <= NTHR; i++)
		if (errs[i][0])
			fail("%s", errs[i]);
	pass();
}
