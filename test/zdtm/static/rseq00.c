/*
 * rseq00: glibc (2.35+) registers an rseq area for every thread.  After
 * restore the registration must still be in place for every thread:
 *   - re-registering the same area with the same length and signature
 *     fails with EBUSY (the kernel's "already registered" answer; an
 *     unregistered thread would succeed instead),
 *   - the kernel keeps updating cpu_id: pinning the thread to each allowed
 *     CPU in turn makes rseq->cpu_id follow,
 *   - cpu_id agrees with getcpu() and rseq_cs is clear.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <sched.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

struct rseq_abi {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
} __attribute__((aligned(32)));

static unsigned int reg_len;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, go;
static char thread_err[256];

static volatile struct rseq_abi *area(void)
{
	return (volatile struct rseq_abi *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

/*
 * 0 if the area is registered with exactly (area, len, RSEQ_SIG): the kernel
 * then answers EBUSY.  1 if it was not registered at all (our registration
 * succeeded; it is undone again), -errno for other errors (e.g. EINVAL when
 * registered with other parameters).
 */
static int registered(unsigned int len)
{
	long r = syscall(SYS_rseq, area(), len, 0, RSEQ_SIG);

	if (r == 0) {
		syscall(SYS_rseq, area(), len, 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG);
		return 1;
	}
	return errno == EBUSY ? 0 : -errno;
}

static const char *check(const char *who)
{
	static __thread char msg[256];
	cpu_set_t saved, one;
	unsigned int cpu, node;
	int c, tries;

	int reg = registered(reg_len);

	if (reg) {
		snprintf(msg, sizeof(msg), "%s: rseq area %p (len %u) is %s", who, (void *)area(), reg_len,
			 reg > 0 ? "not registered" : "registered with other parameters (or rseq fails)");
		return msg;
	}
	if (area()->rseq_cs) {
		snprintf(msg, sizeof(msg), "%s: rseq_cs is %#llx", who, (unsigned long long)area()->rseq_cs);
		return msg;
	}
	for (tries = 0; tries < 100; tries++) {
		if (syscall(SYS_getcpu, &cpu, &node, NULL))
			return "getcpu failed";
		if (area()->cpu_id == cpu)
			break;
	}
	if (tries == 100) {
		snprintf(msg, sizeof(msg), "%s: rseq cpu_id %u, getcpu %u", who, area()->cpu_id, cpu);
		return msg;
	}
	if (sched_getaffinity(0, sizeof(saved), &saved))
		return "sched_getaffinity failed";
	for (c = 0; c < CPU_SETSIZE; c++) {
		if (!CPU_ISSET(c, &saved))
			continue;
		CPU_ZERO(&one);
		CPU_SET(c, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			return "sched_setaffinity failed";
		sched_yield();
		if (area()->cpu_id != (uint32_t)c || area()->cpu_id_start != (uint32_t)c) {
			snprintf(msg, sizeof(msg), "%s: pinned to cpu %d, rseq says cpu_id %u cpu_id_start %u", who, c,
				 area()->cpu_id, area()->cpu_id_start);
			sched_setaffinity(0, sizeof(saved), &saved);
			return msg;
		}
	}
	sched_setaffinity(0, sizeof(saved), &saved);
	return NULL;
}

static void *worker(void *arg)
{
	const char *e;

	(void)arg;
	if ((e = check("thread before checkpoint")))
		snprintf(thread_err, sizeof(thread_err), "%s", e);
	pthread_mutex_lock(&mu);
	ready = 1;
	pthread_cond_broadcast(&cv);
	while (!go)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	if (!thread_err[0] && (e = check("thread")))
		snprintf(thread_err, sizeof(thread_err), "%s", e);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *e;
	pthread_t t;

	test_init(argc, argv);
	if (__rseq_size == 0)
		fail("glibc did not register rseq (disabled by GLIBC_TUNABLES?)");
	/* find the length glibc registered with */
	if (registered(__rseq_size) == 0)
		reg_len = __rseq_size;
	else if (registered(32) == 0)
		reg_len = 32;
	else
		fail("can't find the rseq registration length (__rseq_size %u)", __rseq_size);
	test_msg("rseq offset %td, size %u, registered length %u", __rseq_offset, __rseq_size, reg_len);
	if ((e = check("main before checkpoint")))
		fail("%s", e);
	if (pthread_create(&t, NULL, worker, NULL))
		fail("pthread_create");
	pthread_mutex_lock(&mu);
	while (!ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	test_daemon();
	test_waitsig();

	if ((e = check("main")))
		fail("%s", e);
	pthread_mutex_lock(&mu);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(t, NULL);
	if (thread_err[0])
		fail("%s", thread_err);
	if (sched_getcpu() < 0)
		fail("sched_getcpu: %m");
	pass();
}
