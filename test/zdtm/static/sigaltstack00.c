/*
 * sigaltstack00: the main thread and a second thread each have their own
 * alternate signal stack.  After restore sigaltstack() reports the same
 * ss_sp/ss_size/ss_flags, and an SA_ONSTACK handler really runs on it
 * (in each thread).
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SSZ (128 * 1024)

static void *stacks[2];
static volatile unsigned long handler_sp;
static volatile int handler_flags, handler_hits;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, go;
static char thread_err[256];

static void handler(int sig)
{
	stack_t cur;
	volatile char here;

	(void)sig;
	handler_sp = (unsigned long)&here;
	if (sigaltstack(NULL, &cur) == 0)
		handler_flags = cur.ss_flags;
	handler_hits++;
}

static const char *check(int idx)
{
	static __thread char msg[256];
	stack_t ss;
	int hits = handler_hits;

	if (sigaltstack(NULL, &ss))
		return "sigaltstack query failed";
	if (ss.ss_sp != stacks[idx] || ss.ss_size != SSZ || ss.ss_flags != 0) {
		snprintf(msg, sizeof(msg), "altstack %d: sp %p size %zu flags %d, expected %p %d 0", idx, ss.ss_sp,
			 ss.ss_size, ss.ss_flags, stacks[idx], SSZ);
		return msg;
	}
	syscall(SYS_tgkill, getpid(), test_gettid(), SIGUSR1);
	if (handler_hits != hits + 1)
		return "handler did not run";
	if (handler_sp < (unsigned long)stacks[idx] || handler_sp >= (unsigned long)stacks[idx] + SSZ) {
		snprintf(msg, sizeof(msg), "handler ran at %#lx, not on the alternate stack %p", handler_sp,
			 stacks[idx]);
		return msg;
	}
	if (handler_flags != SS_ONSTACK) {
		snprintf(msg, sizeof(msg), "ss_flags in the handler are %d", handler_flags);
		return msg;
	}
	return NULL;
}

static void set_stack(int idx)
{
	stack_t ss;

	stacks[idx] = mmap(NULL, SSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stacks[idx] == MAP_FAILED)
		fail("mmap: %m");
	ss.ss_sp = stacks[idx];
	ss.ss_size = SSZ;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL))
		fail("sigaltstack: %m");
}

static void *worker(void *arg)
{
	const char *e;

	(void)arg;
	set_stack(1);
	pthread_mutex_lock(&mu);
	ready = 1;
	pthread_cond_broadcast(&cv);
	while (!go)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	e = check(1);
	if (e)
		snprintf(thread_err, sizeof(thread_err), "thread: %s", e);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	pthread_t t;
	const char *e;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_ONSTACK;
	if (sigaction(SIGUSR1, &sa, NULL))
		fail("sigaction: %m");
	set_stack(0);
	if (pthread_create(&t, NULL, worker, NULL))
		fail("pthread_create");
	pthread_mutex_lock(&mu);
	while (!ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	if ((e = check(0)))
		fail("before checkpoint: %s", e);

	test_daemon();
	test_waitsig();

	if ((e = check(0)))
		fail("main: %s", e);
	pthread_mutex_lock(&mu);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(t, NULL);
	if (thread_err[0])
		fail("%s", thread_err);
	pass();
}
