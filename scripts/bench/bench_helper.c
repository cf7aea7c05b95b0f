// Helper for scripts/bench/bench_core.py (compiled at run time with gcc).
//
//   bench_helper mem MIB READY RESULT
//       touch MIB MiB of anonymous memory with a pattern, write READY, then
//       wait: SIGUSR1 checks the pattern and writes "ok"/"bad ..." to
//       RESULT; SIGTERM (default action) ends it.
//   bench_helper write PATH BYTES
//       baseline dump: write BYTES bytes to PATH with write() in 8 MiB
//       chunks, then close (no fsync: criu does not fsync either).
//   bench_helper read PATH
//       baseline restore: read PATH with read() in 8 MiB chunks into a
//       freshly mmap()ed buffer of the file's size (page faults included).
//
// write and read print the milliseconds their I/O took on stdout.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (8UL << 20)

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static uint64_t pattern(uint64_t i) { return (i * 0x9E3779B97F4A7C15ULL) ^ 0xC0FFEE0DDF00D5EDULL; }

static void die(const char *what)
{
	fprintf(stderr, "bench_helper: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_file(const char *path, const char *text)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(tmp);
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len)
		die(tmp);
	close(fd);
	if (rename(tmp, path) < 0)
		die(path);
}

static int do_mem(size_t mib, const char *ready, const char *result)
{
	size_t len = mib << 20;
	uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		die("mmap");
	size_t n = len / sizeof(uint64_t);
	for (size_t i = 0; i < n; i++)
		p[i] = pattern(i);

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		die("sigprocmask");
	write_file(ready, "ready\n");
	for (;;) {
		int sig = sigwaitinfo(&set, NULL);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			die("sigwaitinfo");
		}
		char msg[128];
		snprintf(msg, sizeof(msg), "ok %zu MiB\n", mib);
		for (size_t i = 0; i < n; i++)
			if (p[i] != pattern(i)) {
				snprintf(msg, sizeof(msg), "bad word at offset %zu\n", i * sizeof(uint64_t));
				break;
			}
		write_file(result, msg);
	}
}

static int do_write(const char *path, unsigned long long bytes)
{
	uint64_t *buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < CHUNK / sizeof(uint64_t); i++)
		buf[i] = pattern(i);
	double t0 = now_ms();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die(path);
	unsigned long long done = 0;
	while (done < bytes) {
		size_t want = bytes - done < CHUNK ? bytes - done : CHUNK;
		ssize_t w = write(fd, buf, want);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		done += w;
	}
	if (close(fd) < 0)
		die("close");
	printf("%.3f\n", now_ms() - t0);
	return 0;
}

static int do_read(const char *path)
{
	double t0 = now_ms();
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat");
	size_t len = st.st_size;
	char *buf = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	size_t done = 0;
	while (done < len) {
		size_t want = len - done < CHUNK ? len - done : CHUNK;
		ssize_t r = read(fd, buf + done, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		if (r == 0)
			break;
		done += r;
	}
	close(fd);
	double ms = now_ms() - t0;
	if (done != len) {
		fprintf(stderr, "bench_helper: short read: %zu of %zu bytes\n", done, len);
		return 1;
	}
	printf("%.3f\n", ms);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "mem"))
		return do_mem(strtoull(argv[2], NULL, 10), argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "write"))
		return do_write(argv[2], strtoull(argv[3], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "read"))
		return do_read(argv[2]);
	fprintf(stderr, "usage: bench_helper mem MIB READY RESULT | write PATH BYTES | read PATH\n");
	return 2;
}
