/*
 * zdtmtst.h - tiny support library for the zdtm-style regression tests.
 *
 * Protocol between a test program and the harness (test/zdtm/test_zdtm.py):
 *
 *   test --out OUTFILE --pidfile PIDFILE
 *
 *   1. test_init() parses the options (paths are made absolute, so tests
 *      may chdir freely) and installs a SIGTERM handler.
 *   2. The test sets up its state, then calls test_daemon(): the PID is
 *      written to PIDFILE.tmp and renamed to PIDFILE, so the harness never
 *      sees a partial file.  From now on the test may be checkpointed.
 *   3. test_waitsig() sleeps (in sigsuspend) until SIGTERM arrives.
 *   4. The test verifies its state and calls pass() ("PASS\n" to OUTFILE,
 *      exit 0) or fail() ("FAIL: reason\n" to OUTFILE, exit 1).
 *
 * Diagnostics go to stderr, which the harness redirects to a log file.
 */
#ifndef ZDTMTST_H
#define ZDTMTST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Set by the SIGTERM handler; worker threads may poll it. */
extern volatile sig_atomic_t test_stop;

/* Name of the test (basename of argv[0]). */
extern const char *test_name;

void test_init(int argc, char **argv);
void test_daemon(void);
/* For a test that chroots into dir: the --out and --pidfile paths (under
 * dir) as seen from there. */
void test_paths_under(const char *dir);
void test_waitsig(void);

void pass(void) __attribute__((noreturn));
void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/*
 * Process trees.  test_fork() starts a child that dies with its parent
 * (PR_SET_PDEATHSIG) and runs body(arg), then exits 0.  The body sets up
 * its state, calls test_waitsig() and checks; fail() in a child only
 * reports on stderr and exits 1, the root tells the harness.
 * test_finish_child() sends SIGTERM, reaps the child and fails unless it
 * exited 0.
 */
pid_t test_fork(void (*body)(void *), void *arg);
void test_finish_child(pid_t pid);

/* Message to stderr, prefixed with the test name and pid/tid. */
void test_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Kernel thread id of the caller / of the main thread. */
pid_t test_gettid(void);
extern pid_t test_main_tid;

/*
 * One gate for the threads of a test: test_gate_wait() blocks until the
 * main thread calls test_gate_open() (after the restore), then returns at
 * once.
 */
void test_gate_wait(void);
void test_gate_open(void);

/*
 * Starts n threads running fn((void *)i), i = 0..n-1, into t; fails the
 * test if one can't be made.  test_threads_finish() opens the gate and
 * joins them.
 */
void test_threads_start(pthread_t *t, int n, void *(*fn)(void *));
void test_threads_finish(pthread_t *t, int n);

/*
 * Read a whole (small, e.g. /proc) file into buf (NUL terminated), using
 * only open/read/close, so it does not touch the heap.  Returns the length
 * or -1.
 */
ssize_t test_read_file(const char *path, char *buf, size_t size);

/*
 * Find "Key:" in /proc/self/status (or any "key: value" file) and copy the
 * value (leading blanks stripped, up to end of line) into val.  Returns 0
 * on success.
 */
int test_status_field(const char *path, const char *key, char *val, size_t size);

/* One line of /proc/self/maps. */
struct test_vma {
	unsigned long start, end;
	char perms[5];
	unsigned long long offset;
	unsigned int dev_major, dev_minor;
	unsigned long inode;
	char path[256];
};

/*
 * Parse /proc/self/maps into vmas (at most max entries, returns the count
 * or fails the test).  With merge set, adjacent entries that only differ
 * in how the kernel happened to split them (same perms, same file, and
 * contiguous file offsets) are merged, so that two layouts can be compared
 * without depending on VMA merging decisions.  Not thread safe; does not
 * use the heap.
 */
int test_read_maps(struct test_vma *vmas, int max, int merge);
/* The entry containing addr, or NULL. */
const struct test_vma *test_find_vma(const struct test_vma *vmas, int n, unsigned long addr);
/* Format a vma like a maps line (for messages). */
const char *test_vma_str(const struct test_vma *v, char *buf, size_t size);
/* 0 if equal. */
int test_vma_cmp(const struct test_vma *a, const struct test_vma *b);

/* Deterministic pattern helpers for memory checks. */
static inline uint64_t test_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

void test_fill(void *buf, size_t len, uint64_t seed);
/* Returns the offset of the first mismatch or (size_t)-1 if all is fine. */
size_t test_check(const void *buf, size_t len, uint64_t seed);

#define TEST_NO_MISMATCH ((size_t)-1)

/* Helpers that fail() with errno text on error. */
#define TEST_CHECK(cond, ...)                         \
	do {                                          \
		if (!(cond))                          \
			fail(__VA_ARGS__);            \
	} while (0)

#define TEST_SYS(expr)                                                        \
	({                                                                    \
		long __r = (long)(expr);                                     \
		if (__r < 0)                                                  \
			fail("%s:%d: %s: %m", __FILE__, __LINE__, #expr);     \
		__r;                                                          \
	})

#ifdef __cplusplus
}
#endif

#endif /* ZDTMTST_H */
