/*
 * posix_timers: POSIX timers (timer_create) on CLOCK_MONOTONIC and
 * CLOCK_REALTIME delivering RT signals with a sigev_value, one periodic
 * and one armed far in the future (absolute), plus a disarmed one.  After
 * restore timer ids, timer_gettime() results and deliveries are right.
 */
#include "zdtmtst.h"

#include <time.h>

#define SIG (SIGRTMIN + 1)

static volatile sig_atomic_t hits[3];
static volatile sig_atomic_t bad_value;

static void handler(int sig, siginfo_t *si, void *uc)
{
	int v = si->si_value.sival_int;

	(void)sig;
	(void)uc;
	if (si->si_code != SI_TIMER || v < 1000 || v > 1002)
		bad_value = 1;
	else
		hits[v - 1000]++;
}

static long long ts_ns(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

int main(int argc, char **argv)
{
	struct sigevent sev;
	struct sigaction sa;
	struct itimerspec its, cur;
	struct timespec now, d = { 0, 10000000 }, t0, t1;
	timer_t t[3];
	int i, n;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	if (sigaction(SIG, &sa, NULL))
		fail("sigaction: %m");
	for (i = 0; i < 3; i++) {
		memset(&sev, 0, sizeof(sev));
		sev.sigev_notify = SIGEV_SIGNAL;
		sev.sigev_signo = SIG;
		sev.sigev_value.sival_int = 1000 + i;
		if (timer_create(i == 1 ? CLOCK_REALTIME : CLOCK_MONOTONIC, &sev, &t[i]))
			fail("timer_create: %m");
	}
	/* 0: periodic 40 ms */
	its.it_interval.tv_sec = 0;
	its.it_interval.tv_nsec = 40000000;
	its.it_value = its.it_interval;
	if (timer_settime(t[0], 0, &its, NULL))
		fail("timer_settime: %m");
	/* 1: absolute, one hour from now, with a 7 s interval */
	clock_gettime(CLOCK_REALTIME, &now);
	its.it_value.tv_sec = now.tv_sec + 3600;
	its.it_value.tv_nsec = 0;
	its.it_interval.tv_sec = 7;
	its.it_interval.tv_nsec = 0;
	if (timer_settime(t[1], TIMER_ABSTIME, &its, NULL))
		fail("timer_settime: %m");
	/* 2: disarmed */

	test_daemon();
	test_waitsig();

	if (bad_value)
		fail("a timer signal carried a wrong value or si_code");
	if (timer_gettime(t[0], &cur))
		fail("timer_gettime(0): %m");
	if (ts_ns(&cur.it_interval) != 40000000LL || ts_ns(&cur.it_value) <= 0 ||
	    ts_ns(&cur.it_value) > 40000000LL)
		fail("timer 0: interval %lld ns value %lld ns", ts_ns(&cur.it_interval), ts_ns(&cur.it_value));
	if (timer_gettime(t[1], &cur))
		fail("timer_gettime(1): %m");
	clock_gettime(CLOCK_REALTIME, &now);
	if (cur.it_interval.tv_sec != 7 || cur.it_interval.tv_nsec != 0)
		fail("timer 1: interval %lld ns", ts_ns(&cur.it_interval));
	if (ts_ns(&cur.it_value) < 3000LL * 1000000000LL || ts_ns(&cur.it_value) > 3600LL * 1000000000LL)
		fail("timer 1: value %lld ns (expected ~1 hour)", ts_ns(&cur.it_value));
	if (timer_gettime(t[2], &cur))
		fail("timer_gettime(2): %m");
	if (ts_ns(&cur.it_value) || ts_ns(&cur.it_interval))
		fail("timer 2 is armed");
	if (hits[1] || hits[2])
		fail("timers 1/2 fired");

	n = hits[0];
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		nanosleep(&d, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while (ts_ns(&t1) - ts_ns(&t0) < 400000000LL);
	n = hits[0] - n;
	if (n < 4 || n > 12)
		fail("periodic timer fired %d times in 400 ms (40 ms interval)", n);
	for (i = 0; i < 3; i++)
		if (timer_delete(t[i]))
			fail("timer_delete(%d): %m", i);
	pass();
}
