/*
 * itimer_real: an ITIMER_REAL with a 50 ms interval is armed before the
 * checkpoint.  After restore getitimer() reports the same interval and a
 * sane remaining value, and SIGALRM keeps firing periodically.
 */
#include "zdtmtst.h"

#include <sys/time.h>
#include <time.h>

#define INTERVAL_US 50000

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

static long long tv_us(const struct timeval *t)
{
	return (long long)t->tv_sec * 1000000LL + t->tv_usec;
}

int main(int argc, char **argv)
{
	struct itimerval it, cur;
	struct sigaction sa;
	struct timespec t0, t1, d = { 0, 10000000 };
	int start, fired;
	long long el;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGALRM, &sa, NULL))
		fail("sigaction: %m");
	it.it_interval.tv_sec = 0;
	it.it_interval.tv_usec = INTERVAL_US;
	it.it_value = it.it_interval;
	if (setitimer(ITIMER_REAL, &it, NULL))
		fail("setitimer: %m");

	test_daemon();
	test_waitsig(); /* SIGALRMs interrupt sigsuspend; it loops */

	if (getitimer(ITIMER_REAL, &cur))
		fail("getitimer: %m");
	if (tv_us(&cur.it_interval) != INTERVAL_US)
		fail("interval is %lld us, expected %d", tv_us(&cur.it_interval), INTERVAL_US);
	if (tv_us(&cur.it_value) <= 0 || tv_us(&cur.it_value) > INTERVAL_US)
		fail("remaining value is %lld us", tv_us(&cur.it_value));

	start = alarms;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		nanosleep(&d, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		el = (t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000;
	} while (el < 500000);
	fired = alarms - start;
	/* ~10 expected in 500 ms; allow for a loaded machine */
	if (fired < 4 || fired > 12)
		fail("SIGALRM fired %d times in %lld us with a %d us interval", fired, el, INTERVAL_US);
	test_msg("%d alarms before, %d in the last %lld us", start, fired, el);
	pass();
}
