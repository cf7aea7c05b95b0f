/*
 * itimer_virt: ITIMER_VIRTUAL and ITIMER_PROF are armed (with values far
 * larger than the CPU time the test uses while sleeping).  After restore
 * the intervals are the same, the remaining values did not grow (by more
 * than a tick) and are still positive, and burning CPU makes SIGVTALRM
 * and SIGPROF fire.
 */
#include "zdtmtst.h"

#include <sys/time.h>
#include <time.h>

#define TICK_SLACK_US 10000

static volatile sig_atomic_t vt_hits, prof_hits;

static void handler(int sig)
{
	if (sig == SIGVTALRM)
		vt_hits++;
	else if (sig == SIGPROF)
		prof_hits++;
}

static long long tv_us(const struct timeval *t)
{
	return (long long)t->tv_sec * 1000000LL + t->tv_usec;
}

static void arm(int which, long value_us, long interval_us)
{
	struct itimerval it;

	it.it_value.tv_sec = value_us / 1000000;
	it.it_value.tv_usec = value_us % 1000000;
	it.it_interval.tv_sec = interval_us / 1000000;
	it.it_interval.tv_usec = interval_us % 1000000;
	if (setitimer(which, &it, NULL))
		fail("setitimer(%d): %m", which);
}

int main(int argc, char **argv)
{
	struct itimerval vb, pb, va, pa;
	struct sigaction sa;
	struct timespec t0, t1;
	volatile unsigned long spin = 0;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGVTALRM, &sa, NULL) || sigaction(SIGPROF, &sa, NULL))
		fail("sigaction: %m");
	arm(ITIMER_VIRTUAL, 300000, 20000);
	arm(ITIMER_PROF, 400000, 30000);
	if (getitimer(ITIMER_VIRTUAL, &vb) || getitimer(ITIMER_PROF, &pb))
		fail("getitimer: %m");

	test_daemon();
	test_waitsig();

	if (getitimer(ITIMER_VIRTUAL, &va) || getitimer(ITIMER_PROF, &pa))
		fail("getitimer: %m");
	if (tv_us(&va.it_interval) != 20000 || tv_us(&pa.it_interval) != 30000)
		fail("intervals: virtual %lld us, prof %lld us", tv_us(&va.it_interval), tv_us(&pa.it_interval));
	/*
	 * The kernel adds one tick to a CPU timer's value when it is armed, so
	 * re-arming it on restore may add one tick (<= 10 ms); more than that
	 * means the value was not restored.
	 */
	if (tv_us(&va.it_value) <= 0 || tv_us(&va.it_value) > tv_us(&vb.it_value) + TICK_SLACK_US)
		fail("virtual timer value %lld us (was %lld us)", tv_us(&va.it_value), tv_us(&vb.it_value));
	if (tv_us(&pa.it_value) <= 0 || tv_us(&pa.it_value) > tv_us(&pb.it_value) + TICK_SLACK_US)
		fail("prof timer value %lld us (was %lld us)", tv_us(&pa.it_value), tv_us(&pb.it_value));
	if (vt_hits || prof_hits)
		fail("timers fired while sleeping: vt %d prof %d", vt_hits, prof_hits);

	/* burn user CPU until both fired a few times (at most 10 s wall) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (vt_hits < 3 || prof_hits < 3) {
		for (int i = 0; i < 100000; i++)
			spin++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 10)
			fail("timers did not fire: vt %d prof %d after 10 s", vt_hits, prof_hits);
	}
	pass();
}
