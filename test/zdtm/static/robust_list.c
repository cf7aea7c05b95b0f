/*
 * robust_list: glibc registers a robust futex list head per thread; the
 * registration (get_robust_list: head pointer and length) of every thread
 * must be the same after restore.  Functional check: a thread holds a
 * robust mutex across the checkpoint and then exits without unlocking it;
 * the kernel walks its robust list at exit, so the next locker gets
 * EOWNERDEAD.
 */
#include "zdtmtst.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NTHR 3

struct th {
	pthread_t t;
	pid_t tid;
	void *head;
	size_t len;
};

static struct th th[NTHR + 1];
static pthread_mutex_t robust;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, go;

static void get_rl(pid_t tid, void **head, size_t *len)
{
	if (syscall(SYS_get_robust_list, tid, head, len))
		fail("get_robust_list(%d): %m", (int)tid);
}

static void *worker(void *arg)
{
	struct th *me = arg;

	if (me == &th[0] && pthread_mutex_lock(&robust))
		fail("lock robust mutex");
	pthread_mutex_lock(&mu);
	me->tid = test_gettid();
	ready++;
	pthread_cond_broadcast(&cv);
	while (!go)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL; /* thread 0 exits still owning the robust mutex */
}

int main(int argc, char **argv)
{
	pthread_mutexattr_t a;
	void *head;
	size_t len;
	int i, r;

	test_init(argc, argv);
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_PRIVATE);
	if (pthread_mutex_init(&robust, &a))
		fail("pthread_mutex_init");
	for (i = 0; i < NTHR; i++)
		if (pthread_create(&th[i].t, NULL, worker, &th[i]))
			fail("pthread_create");
	pthread_mutex_lock(&mu);
	while (ready < NTHR)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	th[NTHR].tid = test_gettid();
	for (i = 0; i <= NTHR; i++) {
		get_rl(th[i].tid, &th[i].head, &th[i].len);
		if (!th[i].head || !th[i].len)
			fail("thread %d has no robust list registered", i);
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i <= NTHR; i++) {
		get_rl(th[i].tid, &head, &len);
		if (head != th[i].head || len != th[i].len)
			fail("thread %d: robust list %p/%zu -> %p/%zu", i, th[i].head, th[i].len, head, len);
	}
	pthread_mutex_lock(&mu);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (i = 0; i < NTHR; i++)
		pthread_join(th[i].t, NULL);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 5;
		r = pthread_mutex_timedlock(&robust, &ts);
	}
	if (r != EOWNERDEAD)
		fail("locking the mutex of a dead owner returned %d (%s), expected EOWNERDEAD", r, strerror(r));
	pthread_mutex_consistent(&robust);
	pthread_mutex_unlock(&robust);
	pass();
}
