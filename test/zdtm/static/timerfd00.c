/*
 * timerfd00: three timerfds: a periodic CLOCK_MONOTONIC one (100 ms) that
 * has expired a few times without being read, a one-shot CLOCK_REALTIME one
 * armed an hour ahead (TFD_TIMER_ABSTIME, TFD_NONBLOCK), and a disarmed
 * one. After restore: the pending expiration is still there (read() gives
 * at least the count fdinfo showed before), the far timer still has about an hour
 * left, the disarmed one is still disarmed, flags are the same, and the
 * periodic one keeps firing.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static unsigned long long fdinfo_ticks(int fd)
{
	char path[64], val[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (test_status_field(path, "ticks", val, sizeof(val)))
		fail("no ticks in %s", path);
	return strtoull(val, NULL, 10);
}

int main(int argc, char **argv)
{
	struct itimerspec per = {{0, 100000000}, {0, 100000000}}, far, cur;
	struct timespec now;
	int t1, t2, t3, fl2;
	unsigned long long ticks_before;
	uint64_t v;

	test_init(argc, argv);
	t1 = timerfd_create(CLOCK_MONOTONIC, 0);
	t2 = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	t3 = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (t1 < 0 || t2 < 0 || t3 < 0)
		fail("timerfd_create: %m");
	if (timerfd_settime(t1, 0, &per, NULL))
		fail("settime t1: %m");
	clock_gettime(CLOCK_REALTIME, &now);
	memset(&far, 0, sizeof(far));
	far.it_value.tv_sec = now.tv_sec + 3600;
	if (timerfd_settime(t2, TFD_TIMER_ABSTIME, &far, NULL))
		fail("settime t2: %m");
	usleep(350000); /* expired, left unread: fdinfo counts 1 until read() forwards it */
	ticks_before = fdinfo_ticks(t1);
	if (ticks_before < 1)
		fail("only %llu expirations before the checkpoint", ticks_before);
	fl2 = fcntl(t2, F_GETFL);

	test_daemon();
	test_waitsig();

	if (fdinfo_ticks(t1) < ticks_before)
		fail("pending expirations went from %llu to %llu", ticks_before, fdinfo_ticks(t1));
	if (read(t1, &v, 8) != 8 || v < ticks_before)
		fail("read t1 gave %llu, expected >= %llu", (unsigned long long)v, ticks_before);
	if (read(t1, &v, 8) != 8 || v < 1)
		fail("periodic timer stopped firing");
	if (timerfd_gettime(t2, &cur))
		fail("gettime t2: %m");
	if (cur.it_value.tv_sec < 3000 || cur.it_value.tv_sec > 3600)
		fail("far timer has %ld s left, expected about 3600", (long)cur.it_value.tv_sec);
	if (fcntl(t2, F_GETFL) != fl2 || !(fl2 & O_NONBLOCK))
		fail("t2 flags changed");
	if (read(t2, &v, 8) != -1 || errno != EAGAIN)
		fail("far timer is not pending-free and non-blocking");
	if (timerfd_gettime(t3, &cur))
		fail("gettime t3: %m");
	if (cur.it_value.tv_sec || cur.it_value.tv_nsec)
		fail("disarmed timer is armed after restore");
	if (!(fcntl(t3, F_GETFD) & FD_CLOEXEC))
		fail("t3 lost FD_CLOEXEC");
	pass();
	return 0;
}
