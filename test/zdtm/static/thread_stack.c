/*
 * thread_stack: threads with default stacks, with a custom stack and guard
 * size, and with a user-provided mmap'd stack with a hand-made PROT_NONE
 * guard page.  Each thread keeps data on its stack while blocked in a
 * futex (pthread_cond_wait).  After restore each thread finds its stack
 * data intact and its guard area still PROT_NONE at the same place.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NTHR 4
#define PAGE 4096UL
#define MAXV 4096

static struct test_vma vmas[MAXV];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, go;

struct thr {
	pthread_t t;
	int idx;
	unsigned long stack_addr; /* address of a stack variable */
	unsigned long guard_start, guard_end;
	volatile unsigned long frames;
	char err[256];
};

static struct thr thr[NTHR];

static __attribute__((noinline)) int deep(struct thr *t, int depth)
{
	volatile unsigned char local[512];
	int i, r = 0;

	for (i = 0; i < (int)sizeof(local); i++)
		local[i] = (unsigned char)(t->idx * 31 + depth * 7 + i);
	if (depth < 32) {
		r = deep(t, depth + 1);
	} else {
		pthread_mutex_lock(&mu);
		ready++;
		pthread_cond_broadcast(&cv);
		while (!go)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
	}
	for (i = 0; i < (int)sizeof(local); i++)
		if (local[i] != (unsigned char)(t->idx * 31 + depth * 7 + i)) {
			snprintf(t->err, sizeof(t->err), "thread %d frame %d byte %d corrupted", t->idx, depth, i);
			return -1000;
		}
	t->frames++;
	return r + 1;
}

static void *worker(void *arg)
{
	struct thr *t = arg;
	unsigned char big[32768];
	int r;

	t->stack_addr = (unsigned long)big;
	test_fill(big, sizeof(big), 0x57ac + t->idx);
	r = deep(t, 0);
	if (r != 33 && !t->err[0])
		snprintf(t->err, sizeof(t->err), "thread %d: recursion returned %d", t->idx, r);
	if (test_check(big, sizeof(big), 0x57ac + t->idx) != TEST_NO_MISMATCH && !t->err[0])
		snprintf(t->err, sizeof(t->err), "thread %d: big stack buffer corrupted", t->idx);
	return NULL;
}

/* the PROT_NONE vma directly below the stack vma that contains addr */
static void find_guard(unsigned long addr, unsigned long *gs, unsigned long *ge, int idx)
{
	int n = test_read_maps(vmas, MAXV, 0), i;
	char b[512];

	for (i = 0; i < n; i++)
		if (vmas[i].start <= addr && addr < vmas[i].end)
			break;
	if (i == n)
		fail("thread %d: stack address %#lx not mapped", idx, addr);
	if (strcmp(vmas[i].perms, "rw-p"))
		fail("thread %d: stack vma is %s", idx, test_vma_str(&vmas[i], b, sizeof(b)));
	if (i == 0 || vmas[i - 1].end != vmas[i].start || strcmp(vmas[i - 1].perms, "---p"))
		fail("thread %d: no guard below the stack vma %s", idx, test_vma_str(&vmas[i], b, sizeof(b)));
	*gs = vmas[i - 1].start;
	*ge = vmas[i - 1].end;
}

int main(int argc, char **argv)
{
	pthread_attr_t attr;
	unsigned char *ustack;
	const size_t ustack_size = 512 * 1024;
	int i;

	test_init(argc, argv);

	ustack = mmap(NULL, ustack_size + PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ustack == MAP_FAILED)
		fail("mmap: %m");
	if (mprotect(ustack, PAGE, PROT_NONE))
		fail("mprotect: %m");

	for (i = 0; i < NTHR; i++) {
		thr[i].idx = i;
		pthread_attr_init(&attr);
		if (i == 1) {
			pthread_attr_setstacksize(&attr, 256 * 1024);
			pthread_attr_setguardsize(&attr, 64 * 1024);
		} else if (i == 2) {
			pthread_attr_setstack(&attr, ustack + PAGE, ustack_size);
		}
		if (pthread_create(&thr[i].t, &attr, worker, &thr[i]))
			fail("pthread_create failed");
		pthread_attr_destroy(&attr);
	}
	pthread_mutex_lock(&mu);
	while (ready < NTHR)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	for (i = 0; i < NTHR; i++) {
		find_guard(thr[i].stack_addr, &thr[i].guard_start, &thr[i].guard_end, i);
		if (i == 1 && thr[i].guard_end - thr[i].guard_start < 64 * 1024)
			fail("thread 1: guard is only %lu bytes", thr[i].guard_end - thr[i].guard_start);
		if (i == 2 && thr[i].guard_start != (unsigned long)ustack)
			fail("thread 2: unexpected guard %#lx", thr[i].guard_start);
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < NTHR; i++) {
		unsigned long gs, ge;

		find_guard(thr[i].stack_addr, &gs, &ge, i);
		if (gs != thr[i].guard_start || ge != thr[i].guard_end)
			fail("thread %d: guard was %#lx-%#lx, now %#lx-%#lx", i, thr[i].guard_start, thr[i].guard_end, gs,
			     ge);
	}
	pthread_mutex_lock(&mu);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (i = 0; i < NTHR; i++) {
		pthread_join(thr[i].t, NULL);
		if (thr[i].err[0])
			fail("%s", thr[i].err);
		if (thr[i].frames != 33)
			fail("thread %d: %lu frames checked", i, (unsigned long)thr[i].frames);
	}
	pass();
}
