/*
 * vdso00: the vDSO must still work after restore: clock_gettime (several
 * clocks), gettimeofday and time via libc (which go through the vDSO) must
 * agree with the real system calls and time must move forward.  The vDSO
 * image named by AT_SYSINFO_EHDR must be a mapped ELF object ([vdso]).
 */
#include "zdtmtst.h"

#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAXV 4096

static struct test_vma vmas[MAXV];

static const struct {
	clockid_t id;
	const char *name;
} clocks[] = {
	{ CLOCK_REALTIME, "REALTIME" },
	{ CLOCK_MONOTONIC, "MONOTONIC" },
	{ CLOCK_BOOTTIME, "BOOTTIME" },
	{ CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW" },
	{ CLOCK_REALTIME_COARSE, "REALTIME_COARSE" },
	{ CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE" },
};
#define NCLK (sizeof(clocks) / sizeof(clocks[0]))

static long long ns(const struct timespec *t)
{
	return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

static void check_clocks(struct timespec *prev, const char *when)
{
	unsigned i;

	for (i = 0; i < NCLK; i++) {
		struct timespec v, s, v2;
		long long d;

		if (clock_gettime(clocks[i].id, &v))
			fail("%s: clock_gettime(%s): %m", when, clocks[i].name);
		if (syscall(SYS_clock_gettime, clocks[i].id, &s))
			fail("%s: SYS_clock_gettime(%s): %m", when, clocks[i].name);
		if (clock_gettime(clocks[i].id, &v2))
			fail("%s: clock_gettime(%s): %m", when, clocks[i].name);
		/* vdso and syscall must agree (coarse clocks tick at HZ) */
		d = ns(&s) - ns(&v);
		if (d < -50000000LL || ns(&v2) - ns(&s) < -50000000LL)
			fail("%s: %s: vdso %lld.%09ld vs syscall %lld.%09ld", when, clocks[i].name, (long long)v.tv_sec,
			     v.tv_nsec, (long long)s.tv_sec, s.tv_nsec);
		if (ns(&v2) - ns(&v) > 2000000000LL)
			fail("%s: %s: time jumps", when, clocks[i].name);
		if (prev) {
			if (ns(&v) < ns(&prev[i]))
				fail("%s: %s went backwards: %lld -> %lld", when, clocks[i].name, ns(&prev[i]), ns(&v));
			prev[i] = v;
		}
	}
}

int main(int argc, char **argv)
{
	struct timespec prev[NCLK], res;
	struct timeval tv, stv;
	time_t t0, t1;
	unsigned long ehdr;
	const struct test_vma *v;
	unsigned i;
	int n;
	char b[512];

	test_init(argc, argv);
	ehdr = getauxval(AT_SYSINFO_EHDR);
	if (!ehdr)
		fail("no AT_SYSINFO_EHDR");
	for (i = 0; i < NCLK; i++)
		if (clock_gettime(clocks[i].id, &prev[i]))
			fail("clock_gettime: %m");
	check_clocks(NULL, "before");
	t0 = time(NULL);

	test_daemon();
	test_waitsig();

	n = test_read_maps(vmas, MAXV, 0);
	v = test_find_vma(vmas, n, ehdr);
	if (!v || strcmp(v->path, "[vdso]"))
		fail("AT_SYSINFO_EHDR %#lx is not the [vdso] mapping (%s)", ehdr,
		     v ? test_vma_str(v, b, sizeof(b)) : "unmapped");
	if (memcmp((void *)ehdr, "\177ELF", 4))
		fail("no ELF header at the vdso address");

	for (i = 0; i < 1000; i++)
		check_clocks(prev, "after");

	if (gettimeofday(&tv, NULL))
		fail("gettimeofday: %m");
	if (syscall(SYS_gettimeofday, &stv, NULL))
		fail("SYS_gettimeofday: %m");
	if (stv.tv_sec - tv.tv_sec > 1 || stv.tv_sec < tv.tv_sec)
		fail("gettimeofday %ld vs syscall %ld", (long)tv.tv_sec, (long)stv.tv_sec);
	t1 = time(NULL);
	if (t1 < t0 || t1 > (time_t)syscall(SYS_time, NULL) || (time_t)syscall(SYS_time, NULL) - t1 > 1)
		fail("time(): %ld before, %ld now, syscall %ld", (long)t0, (long)t1, (long)syscall(SYS_time, NULL));
	if (clock_getres(CLOCK_MONOTONIC, &res) || res.tv_sec != 0 || res.tv_nsec <= 0)
		fail("clock_getres");
	/* time keeps moving */
	{
		struct timespec a, b2, d = { 0, 20000000 };

		clock_gettime(CLOCK_MONOTONIC, &a);
		nanosleep(&d, NULL);
		clock_gettime(CLOCK_MONOTONIC, &b2);
		if (ns(&b2) - ns(&a) < 19000000LL)
			fail("CLOCK_MONOTONIC does not advance: %lld ns over a 20ms sleep", ns(&b2) - ns(&a));
	}
	pass();
}
