/*
 * fsbase: the FS base (glibc's TLS / thread pointer) and a GS base set by
 * the test with arch_prctl(ARCH_SET_GS) must survive, per thread.
 * Checked with ARCH_GET_FS/GS, with %fs:0 (the TCB self pointer) and by
 * reading data through %gs.
 */
#include "zdtmtst.h"

#include <asm/prctl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTHR 3

struct gsblock {
	unsigned long magic;
	unsigned long idx;
	unsigned long pad[6];
};

static struct gsblock blocks[NTHR + 1];
static unsigned long fs_before[NTHR + 1];
static char errs[NTHR + 1][256];
static pthread_barrier_t bar;

static unsigned long get_base(int code)
{
	unsigned long v = 0;

	if (syscall(SYS_arch_prctl, code, &v))
		return (unsigned long)-1;
	return v;
}

static void setup(int idx)
{
	blocks[idx].magic = 0x6d6167696367735fUL ^ (unsigned long)idx;
	blocks[idx].idx = (unsigned long)idx;
	if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)&blocks[idx]))
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: ARCH_SET_GS: %m", idx);
	fs_before[idx] = get_base(ARCH_GET_FS);
}

static void verify(int idx)
{
	unsigned long fs = get_base(ARCH_GET_FS), gs = get_base(ARCH_GET_GS), self, m, i;

	if (errs[idx][0])
		return;
	asm volatile("mov %%fs:0, %0" : "=r"(self));
	asm volatile("mov %%gs:0, %0" : "=r"(m));
	asm volatile("mov %%gs:8, %0" : "=r"(i));
	if (fs != fs_before[idx])
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: fs base %#lx -> %#lx", idx, fs_before[idx], fs);
	else if (self != fs || fs != (unsigned long)pthread_self())
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: %%fs:0 %#lx, fs base %#lx, pthread_self %#lx", idx,
			 self, fs, (unsigned long)pthread_self());
	else if (gs != (unsigned long)&blocks[idx])
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: gs base %#lx, expected %p", idx, gs,
			 (void *)&blocks[idx]);
	else if (m != blocks[idx].magic || i != (unsigned long)idx)
		snprintf(errs[idx], sizeof(errs[idx]), "thread %d: data read via %%gs: %#lx %lu", idx, m, i);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;

	setup(idx);
	pthread_barrier_wait(&bar);
	test_gate_wait();
	verify(idx);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[NTHR];
	int i;

	test_init(argc, argv);
	pthread_barrier_init(&bar, NULL, NTHR + 1);
	test_threads_start(t, NTHR, worker);
	setup(NTHR);
	pthread_barrier_wait(&bar);
	verify(NTHR);
	if (errs[NTHR][0])
		fail("before checkpoint: %s", errs[NTHR]);

	test_daemon();
	test_waitsig();

	verify(NTHR);
	test_threads_finish(t, NTHR);
	for (i = 0; i <= NTHR; i++)
		if (errs[i][0])
			fail("%s", errs[i]);
	pass();
}
