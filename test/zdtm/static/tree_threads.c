/*
 * tree_threads: a root and two children, each running three threads.
 * Every thread keeps its TID and a thread-local value; after restore each
 * thread finds both unchanged, in every process.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <unistd.h>

#define NTHREADS 3

static __thread uint64_t tls_value;

struct thr {
	pthread_t th;
	pid_t tid;
	uint64_t want;
	volatile int ready;
	int bad;
};

static void *thread_fn(void *arg)
{
	struct thr *t = arg;

	t->tid = test_gettid();
	tls_value = t->want;
	t->ready = 1;
	while (!test_stop)
		usleep(1000);
	if (test_gettid() != t->tid || tls_value != t->want)
		t->bad = 1;
	return NULL;
}

static void run_threads(struct thr *t)
{
	int i;

	for (i = 0; i < NTHREADS; i++) {
		t[i].want = test_mix64((uint64_t)getpid() * 16 + (uint64_t)i);
		if (pthread_create(&t[i].th, NULL, thread_fn, &t[i]))
			fail("pthread_create");
	}
	for (i = 0; i < NTHREADS; i++)
		while (!t[i].ready)
			usleep(1000);
}

static void check_threads(struct thr *t)
{
	int i;

	for (i = 0; i < NTHREADS; i++) {
		pthread_join(t[i].th, NULL);
		if (t[i].bad)
			fail("process %d thread %d: tid or TLS changed", getpid(), t[i].tid);
	}
}

static void child(void *arg)
{
	struct thr t[NTHREADS] = {};

	(void)arg;
	run_threads(t);
	test_waitsig();
	check_threads(t);
}

int main(int argc, char **argv)
{
	struct thr t[NTHREADS] = {};
	pid_t a, b;

	test_init(argc, argv);
	a = test_fork(child, NULL);
	b = test_fork(child, NULL);
	run_threads(t);
	usleep(100000);
	test_daemon();
	test_waitsig();
	check_threads(t);
	test_finish_child(a);
	test_finish_child(b);
	pass();
}
