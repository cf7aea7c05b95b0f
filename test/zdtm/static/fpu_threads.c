/*
 * fpu_threads: 8 threads spin in tight inline-asm loops that keep values in
 * vector/FPU registers and check them on every iteration, so the checkpoint
 * catches them with live register state:
 *   kind 0: SSE    - xmm0..xmm12 patterns
 *   kind 1: AVX    - ymm0..ymm12 patterns (if cpuid+xgetbv say AVX works)
 *   kind 2: AVX512 - zmm0..zmm28 patterns and k1..k7 (if AVX-512F works)
 *   kind 3: x87    - 7 values on the x87 stack and a non-default control word
 * Every thread also runs with its own MXCSR (rounding mode, FTZ/DAZ) that is
 * checked in the loop, and keeps an iteration counter both in a general
 * register and as a double in a vector register, checked against each other.
 * After restore the main thread checks that all threads keep making
 * progress, then stops them and collects the results.
 */
#include "zdtmtst.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NTHR 8

enum { K_SSE, K_AVX, K_AVX512, K_X87 };
static const char *kind_name[] = { "sse", "avx", "avx512", "x87" };

struct worker {
	unsigned char pat[32 * 64] __attribute__((aligned(64)));
	unsigned short kpat[8];
	double x87v[8];
	double one;
	pthread_t t;
	int idx, kind;
	unsigned int csr_want, csr_tmp;
	unsigned short cw_want, cw_tmp;
	volatile unsigned long iters;
	int result;
} __attribute__((aligned(64)));

static struct worker w[NTHR];
static volatile int stop_workers;
static int have_avx, have_avx512;

/* r: 1 = register pattern mismatch, 2 = counter mismatch, 3 = MXCSR, 4 = k regs, 5 = x87 cw */

#define SSE_LD(i) "movdqa " #i "*16(%[pat]), %%xmm" #i "\n\t"
#define SSE_CK(i) "movdqa %%xmm" #i ", %%xmm15\n\tpxor " #i "*16(%[pat]), %%xmm15\n\tpor %%xmm15, %%xmm14\n\t"

static int run_sse(struct worker *x)
{
	int r;

	asm volatile("ldmxcsr %[csr]\n\t"
		     SSE_LD(0) SSE_LD(1) SSE_LD(2) SSE_LD(3) SSE_LD(4) SSE_LD(5) SSE_LD(6) SSE_LD(7) SSE_LD(8)
		     SSE_LD(9) SSE_LD(10) SSE_LD(11) SSE_LD(12)
		     "xorpd %%xmm13, %%xmm13\n\t"
		     "xor %%ecx, %%ecx\n"
		     "1:\n\t"
		     "pxor %%xmm14, %%xmm14\n\t"
		     SSE_CK(0) SSE_CK(1) SSE_CK(2) SSE_CK(3) SSE_CK(4) SSE_CK(5) SSE_CK(6) SSE_CK(7) SSE_CK(8)
		     SSE_CK(9) SSE_CK(10) SSE_CK(11) SSE_CK(12)
		     "movq %%xmm14, %%rax\n\t"
		     "psrldq $8, %%xmm14\n\t"
		     "movq %%xmm14, %%rdx\n\t"
		     "or %%rdx, %%rax\n\t"
		     "jnz 3f\n\t"
		     "cvtsi2sdq %%rcx, %%xmm15\n\t"
		     "ucomisd %%xmm15, %%xmm13\n\t"
		     "jne 4f\n\t"
		     "jp 4f\n\t"
		     "stmxcsr %[tmp]\n\t"
		     "mov %[tmp], %%eax\n\t"
		     "cmp %[csr], %%eax\n\t"
		     "jne 5f\n\t"
		     "addsd %[one], %%xmm13\n\t"
		     "inc %%rcx\n\t"
		     "mov %%rcx, %[it]\n\t"
		     "cmpl $0, %[stop]\n\t"
		     "je 1b\n\t"
		     "xor %%eax, %%eax\n\t"
		     "jmp 9f\n"
		     "3: mov $1, %%eax\n\tjmp 9f\n"
		     "4: mov $2, %%eax\n\tjmp 9f\n"
		     "5: mov $3, %%eax\n"
		     "9:\n\t"
		     : "=&a"(r), [it] "+m"(x->iters), [tmp] "+m"(x->csr_tmp)
		     : [pat] "r"(x->pat), [csr] "m"(x->csr_want), [one] "m"(x->one), [stop] "m"(stop_workers)
		     : "rcx", "rdx", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		       "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	return r;
}

#define AVX_LD(i) "vmovups " #i "*32(%[pat]), %%ymm" #i "\n\t"
#define AVX_CK(i) "vxorps " #i "*32(%[pat]), %%ymm" #i ", %%ymm15\n\tvorps %%ymm15, %%ymm14, %%ymm14\n\t"

static __attribute__((target("avx"))) int run_avx(struct worker *x)
{
	int r;

	asm volatile("vldmxcsr %[csr]\n\t"
		     AVX_LD(0) AVX_LD(1) AVX_LD(2) AVX_LD(3) AVX_LD(4) AVX_LD(5) AVX_LD(6) AVX_LD(7) AVX_LD(8)
		     AVX_LD(9) AVX_LD(10) AVX_LD(11) AVX_LD(12)
		     "vxorpd %%ymm13, %%ymm13, %%ymm13\n\t"
		     "xor %%ecx, %%ecx\n"
		     "1:\n\t"
		     "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
		     AVX_CK(0) AVX_CK(1) AVX_CK(2) AVX_CK(3) AVX_CK(4) AVX_CK(5) AVX_CK(6) AVX_CK(7) AVX_CK(8)
		     AVX_CK(9) AVX_CK(10) AVX_CK(11) AVX_CK(12)
		     "vptest %%ymm14, %%ymm14\n\t"
		     "jnz 3f\n\t"
		     "vcvtsi2sdq %%rcx, %%xmm15, %%xmm15\n\t"
		     "vucomisd %%xmm15, %%xmm13\n\t"
		     "jne 4f\n\t"
		     "jp 4f\n\t"
		     "vstmxcsr %[tmp]\n\t"
		     "mov %[tmp], %%eax\n\t"
		     "cmp %[csr], %%eax\n\t"
		     "jne 5f\n\t"
		     "vaddsd %[one], %%xmm13, %%xmm13\n\t"
		     "inc %%rcx\n\t"
		     "mov %%rcx, %[it]\n\t"
		     "cmpl $0, %[stop]\n\t"
		     "je 1b\n\t"
		     "xor %%eax, %%eax\n\t"
		     "jmp 9f\n"
		     "3: mov $1, %%eax\n\tjmp 9f\n"
		     "4: mov $2, %%eax\n\tjmp 9f\n"
		     "5: mov $3, %%eax\n"
		     "9:\n\t"
		     "vzeroupper\n\t"
		     : "=&a"(r), [it] "+m"(x->iters), [tmp] "+m"(x->csr_tmp)
		     : [pat] "r"(x->pat), [csr] "m"(x->csr_want), [one] "m"(x->one), [stop] "m"(stop_workers)
		     : "rcx", "rdx", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		       "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
	return r;
}

#define Z_LD(i) "vmovdqu64 " #i "*64(%[pat]), %%zmm" #i "\n\t"
#define Z_CK(i) "vpxorq " #i "*64(%[pat]), %%zmm" #i ", %%zmm31\n\tvporq %%zmm31, %%zmm30, %%zmm30\n\t"
#define K_LD(i) "kmovw " #i "*2(%[kp]), %%k" #i "\n\t"
#define K_CK(i) "kmovw %%k" #i ", %%eax\n\tcmpw " #i "*2(%[kp]), %%ax\n\tjne 6f\n\t"

static __attribute__((target("avx512f"))) int run_avx512(struct worker *x)
{
	int r;

	asm volatile("vldmxcsr %[csr]\n\t"
		     Z_LD(0) Z_LD(1) Z_LD(2) Z_LD(3) Z_LD(4) Z_LD(5) Z_LD(6) Z_LD(7) Z_LD(8) Z_LD(9) Z_LD(10)
		     Z_LD(11) Z_LD(12) Z_LD(13) Z_LD(14) Z_LD(15) Z_LD(16) Z_LD(17) Z_LD(18) Z_LD(19) Z_LD(20)
		     Z_LD(21) Z_LD(22) Z_LD(23) Z_LD(24) Z_LD(25) Z_LD(26) Z_LD(27) Z_LD(28)
		     K_LD(1) K_LD(2) K_LD(3) K_LD(4) K_LD(5) K_LD(6) K_LD(7)
		     "vpxorq %%zmm29, %%zmm29, %%zmm29\n\t"
		     "xor %%ecx, %%ecx\n"
		     "1:\n\t"
		     "vpxorq %%zmm30, %%zmm30, %%zmm30\n\t"
		     Z_CK(0) Z_CK(1) Z_CK(2) Z_CK(3) Z_CK(4) Z_CK(5) Z_CK(6) Z_CK(7) Z_CK(8) Z_CK(9) Z_CK(10)
		     Z_CK(11) Z_CK(12) Z_CK(13) Z_CK(14) Z_CK(15) Z_CK(16) Z_CK(17) Z_CK(18) Z_CK(19) Z_CK(20)
		     Z_CK(21) Z_CK(22) Z_CK(23) Z_CK(24) Z_CK(25) Z_CK(26) Z_CK(27) Z_CK(28)
		     "vptestmq %%zmm30, %%zmm30, %%k0\n\t"
		     "kortestw %%k0, %%k0\n\t"
		     "jnz 3f\n\t"
		     K_CK(1) K_CK(2) K_CK(3) K_CK(4) K_CK(5) K_CK(6) K_CK(7)
		     "vcvtsi2sdq %%rcx, %%xmm31, %%xmm31\n\t"
		     "vucomisd %%xmm31, %%xmm29\n\t"
		     "jne 4f\n\t"
		     "jp 4f\n\t"
		     "vstmxcsr %[tmp]\n\t"
		     "mov %[tmp], %%eax\n\t"
		     "cmp %[csr], %%eax\n\t"
		     "jne 5f\n\t"
		     "vaddsd %[one], %%xmm29, %%xmm29\n\t"
		     "inc %%rcx\n\t"
		     "mov %%rcx, %[it]\n\t"
		     "cmpl $0, %[stop]\n\t"
		     "je 1b\n\t"
		     "xor %%eax, %%eax\n\t"
		     "jmp 9f\n"
		     "3: mov $1, %%eax\n\tjmp 9f\n"
		     "4: mov $2, %%eax\n\tjmp 9f\n"
		     "5: mov $3, %%eax\n\tjmp 9f\n"
		     "6: mov $4, %%eax\n"
		     "9:\n\t"
		     "vzeroupper\n\t"
		     : "=&a"(r), [it] "+m"(x->iters), [tmp] "+m"(x->csr_tmp)
		     : [pat] "r"(x->pat), [kp] "r"(x->kpat), [csr] "m"(x->csr_want), [one] "m"(x->one),
		       [stop] "m"(stop_workers)
		     : "rcx", "rdx", "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		       "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17",
		       "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27",
		       "xmm28", "xmm29", "xmm30", "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
	return r;
}

#define X_LD(i) "fldl " #i "*8(%[xv])\n\t"
/* st(i) holds x87v[6 - i] */
#define X_CK(i, j) "fld %%st(" #i ")\n\tfcompl " #j "*8(%[xv])\n\tfnstsw %%ax\n\tand $0x45, %%ah\n\tcmp $0x40, %%ah\n\tjne 3f\n\t"

static int run_x87(struct worker *x)
{
	int r;

	asm volatile("ldmxcsr %[csr]\n\t"
		     "fldcw %[cw]\n\t"
		     X_LD(0) X_LD(1) X_LD(2) X_LD(3) X_LD(4) X_LD(5) X_LD(6)
		     "xorpd %%xmm13, %%xmm13\n\t"
		     "xor %%ecx, %%ecx\n"
		     "1:\n\t"
		     X_CK(0, 6) X_CK(1, 5) X_CK(2, 4) X_CK(3, 3) X_CK(4, 2) X_CK(5, 1) X_CK(6, 0)
		     "fnstcw %[cwt]\n\t"
		     "movzwl %[cwt], %%eax\n\t"
		     "movzwl %[cw], %%edx\n\t"
		     "cmp %%edx, %%eax\n\t"
		     "jne 6f\n\t"
		     "cvtsi2sdq %%rcx, %%xmm15\n\t"
		     "ucomisd %%xmm15, %%xmm13\n\t"
		     "jne 4f\n\t"
		     "jp 4f\n\t"
		     "stmxcsr %[tmp]\n\t"
		     "mov %[tmp], %%eax\n\t"
		     "cmp %[csr], %%eax\n\t"
		     "jne 5f\n\t"
		     "addsd %[one], %%xmm13\n\t"
		     "inc %%rcx\n\t"
		     "mov %%rcx, %[it]\n\t"
		     "cmpl $0, %[stop]\n\t"
		     "je 1b\n\t"
		     "xor %%eax, %%eax\n\t"
		     "jmp 9f\n"
		     "3: mov $1, %%eax\n\tjmp 9f\n"
		     "4: mov $2, %%eax\n\tjmp 9f\n"
		     "5: mov $3, %%eax\n\tjmp 9f\n"
		     "6: mov $5, %%eax\n"
		     "9:\n\t"
		     "fstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t"
		     "fstp %%st(0)\n\tfstp %%st(0)\n\tfstp %%st(0)\n\t"
		     : "=&a"(r), [it] "+m"(x->iters), [tmp] "+m"(x->csr_tmp), [cwt] "+m"(x->cw_tmp)
		     : [xv] "r"(x->x87v), [cw] "m"(x->cw_want), [csr] "m"(x->csr_want), [one] "m"(x->one),
		       [stop] "m"(stop_workers)
		     : "rcx", "rdx", "cc", "memory", "xmm13", "xmm15", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)",
		       "st(6)", "st(7)");
	return r;
}

static void *worker_fn(void *arg)
{
	struct worker *x = arg;
	unsigned short cw_default = 0x37f;

	switch (x->kind) {
	case K_SSE:
		x->result = run_sse(x);
		break;
	case K_AVX:
		x->result = run_avx(x);
		break;
	case K_AVX512:
		x->result = run_avx512(x);
		break;
	case K_X87:
		x->result = run_x87(x);
		asm volatile("fldcw %0" : : "m"(cw_default));
		break;
	}
	return NULL;
}

static void detect(void)
{
	unsigned a, b, c, d, lo = 0, hi = 0;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	if (!(c & bit_OSXSAVE) || !(c & bit_AVX))
		return;
	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	if ((lo & 0x6) == 0x6)
		have_avx = 1;
	if (__get_cpuid_max(0, NULL) >= 7) {
		__cpuid_count(7, 0, a, b, c, d);
		if ((b & bit_AVX512F) && (lo & 0xe6) == 0xe6)
			have_avx512 = 1;
	}
}

static void snapshot(unsigned long *it)
{
	int i;

	for (i = 0; i < NTHR; i++)
		it[i] = w[i].iters;
}

static void wait_progress(const char *when)
{
	unsigned long it0[NTHR];
	struct timespec d = { 0, 20000000 };
	int i, tries;

	snapshot(it0);
	for (tries = 0; tries < 500; tries++) {
		int all = 1;

		nanosleep(&d, NULL);
		for (i = 0; i < NTHR; i++) {
			if (w[i].iters < it0[i] + 1000)
				all = 0;
			if (w[i].result) /* a worker stopped on a mismatch */
				fail("%s: thread %d (%s) stopped: error %d after %lu iterations", when, i,
				     kind_name[w[i].kind], w[i].result, w[i].iters);
		}
		if (all)
			return;
	}
	for (i = 0; i < NTHR; i++)
		if (w[i].iters < it0[i] + 1000)
			fail("%s: thread %d (%s) makes no progress (%lu -> %lu iterations)", when, i,
			     kind_name[w[i].kind], it0[i], w[i].iters);
}

int main(int argc, char **argv)
{
	int i, j;

	test_init(argc, argv);
	detect();
	test_msg("avx: %d, avx512: %d", have_avx, have_avx512);

	for (i = 0; i < NTHR; i++) {
		struct worker *x = &w[i];
		int k = i % 4;

		if (k == K_AVX512 && !have_avx512)
			k = have_avx ? K_AVX : K_SSE;
		if (k == K_AVX && !have_avx)
			k = K_SSE;
		x->idx = i;
		x->kind = k;
		x->one = 1.0;
		for (j = 0; j < (int)sizeof(x->pat); j++)
			x->pat[j] = (unsigned char)test_mix64(((uint64_t)i << 16) + (uint64_t)j);
		for (j = 0; j < 8; j++) {
			x->kpat[j] = (unsigned short)test_mix64(((uint64_t)i << 20) + (uint64_t)j);
			x->x87v[j] = 3.14159 * (i + 1) + j * 1.0625 - 17.5;
		}
		/* rounding mode from the index, FTZ+DAZ for half of them */
		x->csr_want = 0x1f80 | ((unsigned)(i & 3) << 13) | (i & 4 ? 0x8040 : 0);
		/* round up, double precision; for odd ones round down */
		x->cw_want = 0x027f | (i & 1 ? 0x0400 : 0x0800);
		if (pthread_create(&x->t, NULL, worker_fn, x))
			fail("pthread_create");
	}
	wait_progress("before checkpoint");

	test_daemon();
	test_waitsig();

	wait_progress("after restore");
	stop_workers = 1;
	for (i = 0; i < NTHR; i++) {
		pthread_join(w[i].t, NULL);
		if (w[i].result)
			fail("thread %d (%s): register check failed with error %d after %lu iterations", i,
			     kind_name[w[i].kind], w[i].result, w[i].iters);
	}
	pass();
}
