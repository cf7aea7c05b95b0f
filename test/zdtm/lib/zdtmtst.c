/* zdtmtst.c - support library for zdtm-style tests; see zdtmtst.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "zdtmtst.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

volatile sig_atomic_t test_stop;
const char *test_name = "zdtm";
pid_t test_main_tid;

static pid_t main_pid;
static char out_path[PATH_MAX];
static char pid_path[PATH_MAX];

pid_t test_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;

void test_gate_wait(void)
{
	pthread_mutex_lock(&gate_mu);
	while (!gate_open)
		pthread_cond_wait(&gate_cv, &gate_mu);
	pthread_mutex_unlock(&gate_mu);
}

void test_gate_open(void)
{
	pthread_mutex_lock(&gate_mu);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

void test_threads_start(pthread_t *t, int n, void *(*fn)(void *))
{
	for (int i = 0; i < n; i++)
		if (pthread_create(&t[i], NULL, fn, (void *)(long)i))
			fail("pthread_create");
}

void test_threads_finish(pthread_t *t, int n)
{
	test_gate_open();
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t r = write(fd, buf, len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += r;
		len -= (size_t)r;
	}
}

void test_msg(const char *fmt, ...)
{
	char buf[1024];
	int n, m;
	va_list ap;
	int saved = errno;

	n = snprintf(buf, sizeof(buf), "%s[%d/%d]: ", test_name, (int)getpid(), (int)test_gettid());
	if (n < 0 || n >= (int)sizeof(buf))
		n = 0;
	errno = saved;
	va_start(ap, fmt);
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	if (n == 0 || buf[n - 1] != '\n')
		buf[n++] = '\n';
	write_all(2, buf, (size_t)n);
	errno = saved;
}

static void make_abs(char *dst, const char *src)
{
	if (src[0] == '/' || !getcwd(dst, PATH_MAX - 1)) {
		snprintf(dst, PATH_MAX, "%s", src);
		return;
	}
	size_t l = strlen(dst);
	snprintf(dst + l, PATH_MAX - l, "/%s", src);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s --out FILE --pidfile FILE\n", prog);
	exit(2);
}

static void sigterm_handler(int sig)
{
	(void)sig;
	test_stop = 1;
	/*
	 * A process-directed SIGTERM may be taken by any thread that does not
	 * block it; make sure the main thread (which sleeps in test_waitsig)
	 * wakes up too.
	 */
	if (test_main_tid && test_gettid() != test_main_tid)
		syscall(SYS_tgkill, getpid(), test_main_tid, SIGTERM);
}

void test_init(int argc, char **argv)
{
	struct sigaction sa;
	const char *s;
	int i;

	s = strrchr(argv[0], '/');
	test_name = s ? s + 1 : argv[0];
	test_main_tid = test_gettid();
	main_pid = getpid();

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			make_abs(out_path, argv[++i]);
		else if (!strncmp(argv[i], "--out=", 6))
			make_abs(out_path, argv[i] + 6);
		else if (!strcmp(argv[i], "--pidfile") && i + 1 < argc)
			make_abs(pid_path, argv[++i]);
		else if (!strncmp(argv[i], "--pidfile=", 10))
			make_abs(pid_path, argv[i] + 10);
		else
			usage(argv[0]);
	}
	if (!out_path[0] || !pid_path[0])
		usage(argv[0]);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigterm_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL))
		fail("sigaction(SIGTERM): %m");
	/* stdio buffers must not hold data across checkpoint in odd ways */
	setvbuf(stdout, NULL, _IONBF, 0);
}

static void rebase(char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (strncmp(path, dir, n) || path[n] != '/')
		fail("%s is not under %s", path, dir);
	memmove(path, path + n, strlen(path + n) + 1);
}

void test_paths_under(const char *dir)
{
	rebase(out_path, dir);
	rebase(pid_path, dir);
}

void test_daemon(void)
{
	char tmp[PATH_MAX + 8];
	char buf[32];
	int fd, n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", pid_path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		fail("can't create %s: %m", tmp);
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	write_all(fd, buf, (size_t)n);
	if (fsync(fd) < 0 || close(fd) < 0)
		fail("can't write %s: %m", tmp);
	if (rename(tmp, pid_path) < 0)
		fail("can't rename %s to %s: %m", tmp, pid_path);
	test_msg("ready");
}

void test_waitsig(void)
{
	sigset_t block, old, wait;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &block, &old) < 0)
		fail("sigprocmask: %m");
	/* Sleep with the caller's mask, only SIGTERM unblocked. */
	wait = old;
	sigdelset(&wait, SIGTERM);
	while (!test_stop)
		sigsuspend(&wait);
	if (sigprocmask(SIG_SETMASK, &old, NULL) < 0)
		fail("sigprocmask: %m");
	test_msg("got SIGTERM");
}

static void write_result(const char *text, size_t len)
{
	int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);

	if (fd < 0) {
		test_msg("can't open %s: %s", out_path, strerror(errno));
		return;
	}
	write_all(fd, text, len);
	close(fd);
}

void pass(void)
{
	test_msg("PASS");
	write_result("PASS\n", 5);
	_exit(0);
}

void fail(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "FAIL: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	while (n > 0 && buf[n - 1] == '\n')
		n--;
	buf[n++] = '\n';
	write_all(2, buf, (size_t)n);
	if (getpid() == main_pid)
		write_result(buf, (size_t)n);
	_exit(1);
}

pid_t test_fork(void (*body)(void *), void *arg)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0)
		fail("fork: %m");
	if (pid == 0) {
		test_main_tid = test_gettid();
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(1);
		body(arg);
		_exit(0);
	}
	return pid;
}

void test_finish_child(pid_t pid)
{
	int status;

	if (kill(pid, SIGTERM) < 0)
		fail("kill(%d, SIGTERM): %m", pid);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			fail("waitpid(%d): %m", pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail("child %d failed (status 0x%x): see the test log", pid, status);
}

ssize_t test_read_file(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (len + 1 < size) {
		ssize_t r = read(fd, buf + len, size - 1 - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = 0;
	return (ssize_t)len;
}

int test_status_field(const char *path, const char *key, char *val, size_t size)
{
	static __thread char buf[16384];
	size_t klen = strlen(key);
	char *p;

	if (test_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			char *v = p + klen + 1, *e;
			size_t l;

			while (*v == ' ' || *v == '\t')
				v++;
			e = strchr(v, '\n');
			l = e ? (size_t)(e - v) : strlen(v);
			if (l >= size)
				l = size - 1;
			memcpy(val, v, l);
			val[l] = 0;
			return 0;
		}
	}
	errno = ENOENT;
	return -1;
}

void test_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t *w = buf;
	size_t i, n = len / 8;
	unsigned char *tail;

	for (i = 0; i < n; i++)
		w[i] = test_mix64(seed + i);
	tail = (unsigned char *)buf + n * 8;
	for (i = 0; i < len % 8; i++)
		tail[i] = (unsigned char)test_mix64(seed + n + i);
}

size_t test_check(const void *buf, size_t len, uint64_t seed)
{
	const uint64_t *w = buf;
	size_t i, n = len / 8;
	const unsigned char *tail;

	for (i = 0; i < n; i++)
		if (w[i] != test_mix64(seed + i))
			return i * 8;
	tail = (const unsigned char *)buf + n * 8;
	for (i = 0; i < len % 8; i++)
		if (tail[i] != (unsigned char)test_mix64(seed + n + i))
			return n * 8 + i;
	return TEST_NO_MISMATCH;
}

static char maps_buf[4 << 20];

int test_read_maps(struct test_vma *vmas, int max, int merge)
{
	ssize_t len = test_read_file("/proc/self/maps", maps_buf, sizeof(maps_buf));
	char *p, *e;
	int n = 0;

	if (len < 0)
		fail("read /proc/self/maps: %m");
	if ((size_t)len + 1 >= sizeof(maps_buf))
		fail("/proc/self/maps is too large");
	for (p = maps_buf; *p; p = e + 1) {
		struct test_vma v;
		int pos = 0;

		e = strchr(p, '\n');
		if (!e)
			break;
		*e = 0;
		memset(&v, 0, sizeof(v));
		if (sscanf(p, "%lx-%lx %4s %llx %x:%x %lu %n", &v.start, &v.end, v.perms, &v.offset,
			   &v.dev_major, &v.dev_minor, &v.inode, &pos) < 7)
			fail("can't parse maps line '%s'", p);
		if (pos > 0) {
			snprintf(v.path, sizeof(v.path), "%s", p + pos);
		}
		if (merge && n > 0) {
			struct test_vma *l = &vmas[n - 1];

			if (l->end == v.start && !strcmp(l->perms, v.perms) && l->dev_major == v.dev_major &&
			    l->dev_minor == v.dev_minor && l->inode == v.inode && !strcmp(l->path, v.path) &&
			    (v.inode == 0 || l->offset + (l->end - l->start) == v.offset)) {
				l->end = v.end;
				continue;
			}
		}
		if (n >= max)
			fail("too many vmas (> %d)", max);
		vmas[n++] = v;
	}
	return n;
}

const struct test_vma *test_find_vma(const struct test_vma *vmas, int n, unsigned long addr)
{
	int i;

	for (i = 0; i < n; i++)
		if (vmas[i].start <= addr && addr < vmas[i].end)
			return &vmas[i];
	return NULL;
}

const char *test_vma_str(const struct test_vma *v, char *buf, size_t size)
{
	snprintf(buf, size, "%lx-%lx %s %08llx %02x:%02x %lu %s", v->start, v->end, v->perms, v->offset,
		 v->dev_major, v->dev_minor, v->inode, v->path);
	return buf;
}

int test_vma_cmp(const struct test_vma *a, const struct test_vma *b)
{
	return a->start != b->start || a->end != b->end || strcmp(a->perms, b->perms) || a->offset != b->offset ||
	       a->dev_major != b->dev_major || a->dev_minor != b->dev_minor || a->inode != b->inode ||
	       strcmp(a->path, b->path);
}
