/*
 * nnp00: no_new_privs, which is per thread.  A thread made before the main
 * thread sets it has it clear, one made after inherits it.  After restore
 * each thread reads its own flag (prctl and /proc/self/task/TID/status),
 * as before the checkpoint: a restore that lost it would let the task gain
 * privileges through execve() again.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>

static pthread_barrier_t bar;
static char errs[3][256];

static void check(int idx, int want)
{
	char path[64], val[16];
	int got = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)test_gettid());
	if (got != want)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: no_new_privs %d, expected %d", idx, got, want);
	else if (test_status_field(path, "NoNewPrivs", val, sizeof(val)) || atoi(val) != want)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: NoNewPrivs '%s', expected %d", idx, val, want);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg, want = idx == 1;

	check(idx, want);
	pthread_barrier_wait(&bar);
	test_gate_wait();
	check(idx, want);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[2]; /* made before and after the flag is set */
	int i;

	test_init(argc, argv);
	pthread_barrier_init(&bar, NULL, 3);
	test_threads_start(&t[0], 1, worker);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		fail("PR_SET_NO_NEW_PRIVS: %m");
	if (pthread_create(&t[1], NULL, worker, (void *)1L))
		fail("pthread_create");
	pthread_barrier_wait(&bar);
	for (i = 0; i < 2; i++)
		if (errs[i][0])
			fail("before checkpoint: %s", errs[i]);

	test_daemon();
	test_waitsig();

	check(2, 1);
	test_threads_finish(t, 2);
	for (i = 0; i < 3; i++)
		if (errs[i][0])
			fail("%s", errs[i]);
	pass();
}
