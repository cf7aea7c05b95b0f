/*
 * tls_threads: every thread (and the main thread) keeps its own values in
 * __thread variables (initialised .tdata, zeroed .tbss and a large array)
 * and a pthread key; after restore each thread checks its own copies.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define NTHR 6

static __thread unsigned long tls_init = 0x1122334455667788UL;
static __thread unsigned long tls_zero;
static __thread unsigned char tls_buf[8192];
static __thread int tls_idx = -1;
static pthread_key_t key;

static pthread_barrier_t bar_ready;
static char errs[NTHR + 1][256];
static void *addrs[NTHR + 1];

static void setup(int idx)
{
	tls_idx = idx;
	if (tls_init != 0x1122334455667788UL || tls_zero != 0)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: bad initial TLS values", idx);
	tls_init ^= test_mix64((uint64_t)idx);
	tls_zero = 1000 + (unsigned long)idx;
	test_fill(tls_buf, sizeof(tls_buf), 0x715 + (uint64_t)idx);
	pthread_setspecific(key, (void *)(0xabc000UL + (unsigned long)idx));
	addrs[idx] = &tls_zero;
}

static void verify(int idx)
{
	size_t off;

	if (errs[idx][0])
		return;
	if (tls_idx != idx)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: tls_idx is %d", idx, tls_idx);
	else if (tls_init != (0x1122334455667788UL ^ test_mix64((uint64_t)idx)))
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: tls_init is %#lx", idx, tls_init);
	else if (tls_zero != 1000 + (unsigned long)idx)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: tls_zero is %lu", idx, tls_zero);
	else if ((off = test_check(tls_buf, sizeof(tls_buf), 0x715 + (uint64_t)idx)) != TEST_NO_MISMATCH)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: tls_buf mismatch at %zu", idx, off);
	else if (pthread_getspecific(key) != (void *)(0xabc000UL + (unsigned long)idx))
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: pthread key value %p", idx, pthread_getspecific(key));
	else if (addrs[idx] != &tls_zero)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: TLS block moved", idx);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;

	setup(idx);
	pthread_barrier_wait(&bar_ready);
	test_gate_wait();
	verify(idx);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[NTHR];
	int i;

	test_init(argc, argv);
	if (pthread_key_create(&key, NULL))
		fail("pthread_key_create");
	pthread_barrier_init(&bar_ready, NULL, NTHR + 1);
	test_threads_start(t, NTHR, worker);
	setup(NTHR);
	pthread_barrier_wait(&bar_ready);
	for (i = 0; i <= NTHR; i++)
		for (int j = 0; j < i; j++)
			if (addrs[i] == addrs[j])
				fail("threads %d and %d share TLS", i, j);

	test_daemon();
	test_waitsig();

	verify(NTHR);
	test_threads_finish(t, NTHR);
	for (i = 0; i <= NTHR; i++)
		if (errs[i][0])
			fail("%s", errs[i]);
	pass();
}
