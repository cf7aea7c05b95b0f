/*
 * unsupp_fd00: a task holding an fd that criu cannot dump (yet), so that
 * test_dump_fail_unchanged can check that a failed dump leaves it exactly as
 * it was.  Not part of the plain C/R flavors (its dump must fail).
 *
 * The fd is chosen with the environment variable ZDTM_UNSUPP_FD:
 *   tcp   an established TCP connection over 127.0.0.1 (both ends, plus the
 *         listening socket they came from, which criu can dump)
 *   unix  a named AF_UNIX listener and a connection through it, with data
 *         queued both ways (socketpairs criu can dump)
 *   dgram a datagram socketpair whose first end was then bound to an
 *         abstract name (its peer can't be connected again by name), data
 *         queued both ways, and a fresh datagram socket criu can dump
 * Its number is printed to stderr ("unsupported fd N").
 *
 * Besides the socket it has state a dump touches while it runs: memory
 * (anonymous rw and read-only mappings, .data, heap) filled with patterns,
 * a blocked signal mask, pending signals (process-wide with a value, queued
 * RT instances, thread-directed), a SIGUSR1 handler with flags and mask,
 * SIGPIPE ignored, and a second thread sleeping in clock_nanosleep in a
 * loop with every signal blocked.  The main thread sleeps in sigsuspend().
 *
 * After SIGTERM everything must be as before: the patterns, mask, pending
 * signals with their values and order, dispositions; sigsuspend() never
 * returned without a signal and clock_nanosleep() never failed (a
 * ptrace-interrupted syscall must be restarted transparently); the thread
 * still runs; the socket still works (tcp: same port, still listening,
 * accepts a connection, and the established pair still carries data;
 * unix, dgram: the queued data is intact, and it still connects the two
 * ends).
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/un.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define ANON_SIZE (2 << 20)
#define RO_SIZE (64 << 10)
#define HEAP_SIZE (256 << 10)
#define RTSIG (SIGRTMIN + 3)

static unsigned char data_area[64 << 10] = {1};
static volatile unsigned long ticks;
static volatile int sleep_errors, sleep_errno;
static volatile sig_atomic_t usr1_hits;

static void usr1_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)si, (void)uc;
	usr1_hits++;
}

static void *sleeper(void *arg)
{
	struct timespec ts = {0, 2 * 1000 * 1000};
	sigset_t all;
	int r;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		if (r) {
			sleep_errors++;
			sleep_errno = r;
		}
		ticks++;
	}
	return NULL;
}

static int sigset_eq(const sigset_t *a, const sigset_t *b)
{
	int i;

	for (i = 1; i <= SIGRTMAX; i++)
		if (sigismember(a, i) != sigismember(b, i))
			return 0;
	return 1;
}

static const char *sigset_str(const sigset_t *s, char *buf, size_t size)
{
	int i, n = 0;

	buf[0] = 0;
	for (i = 1; i <= SIGRTMAX && n < (int)size - 8; i++)
		if (sigismember(s, i))
			n += snprintf(buf + n, size - (size_t)n, "%d ", i);
	return buf;
}

int main(int argc, char **argv)
{
	const char *mode = getenv("ZDTM_UNSUPP_FD");
	unsigned char *anon, *ro, *heap;
	struct sockaddr_in sin, sin2;
	socklen_t slen;
	int sfd = -1, peer = -1, one = 1, v, spurious = 0, i, est_c = -1, est_a = -1;
	sigset_t block, mask0, mask1, pend, waitmask;
	struct sigaction sa, sa1, pipe1;
	union sigval val;
	siginfo_t si;
	struct timespec zero = {0, 0};
	pthread_t thr;
	unsigned long t0;
	char buf[64], s1[256], s2[256];
	size_t off;

	test_init(argc, argv);
	if (!mode)
		fail("set ZDTM_UNSUPP_FD to tcp, unix or dgram");

	/* memory */
	anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, RO_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED || ro == MAP_FAILED)
		fail("mmap: %m");
	test_fill(anon, ANON_SIZE, 0xa11);
	test_fill(ro, RO_SIZE, 0x20);
	if (mprotect(ro, RO_SIZE, PROT_READ))
		fail("mprotect: %m");
	test_fill(data_area, sizeof(data_area), 0xda7a);
	heap = malloc(HEAP_SIZE);
	if (!heap)
		fail("malloc");
	test_fill(heap, HEAP_SIZE, 0x4ea9);

	/* the unsupported fd */
	if (!strcmp(mode, "tcp")) {
		sfd = TEST_SYS(socket(AF_INET, SOCK_STREAM, 0));
		TEST_SYS(setsockopt(sfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		TEST_SYS(bind(sfd, (struct sockaddr *)&sin, sizeof(sin)));
		TEST_SYS(listen(sfd, 8));
		slen = sizeof(sin);
		TEST_SYS(getsockname(sfd, (struct sockaddr *)&sin, &slen));
		test_msg("listening on 127.0.0.1:%d", ntohs(sin.sin_port));
		est_c = TEST_SYS(socket(AF_INET, SOCK_STREAM, 0));
		TEST_SYS(connect(est_c, (struct sockaddr *)&sin, sizeof(sin)));
		est_a = TEST_SYS(accept(sfd, NULL, NULL));
	} else if (!strcmp(mode, "unix")) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		int l;

		/* a named listener and a connection through it */
		strcpy(sun.sun_path, "unsupp.sock");
		l = TEST_SYS(socket(AF_UNIX, SOCK_STREAM, 0));
		TEST_SYS(bind(l, (struct sockaddr *)&sun, sizeof(sun)));
		TEST_SYS(listen(l, 4));
		sfd = TEST_SYS(socket(AF_UNIX, SOCK_STREAM, 0));
		TEST_SYS(connect(sfd, (struct sockaddr *)&sun, sizeof(sun)));
		peer = TEST_SYS(accept(l, NULL, NULL));
		if (write(sfd, "to-peer", 7) != 7 || write(peer, "to-sfd!!", 8) != 8)
			fail("write to socketpair: %m");
	} else if (!strcmp(mode, "dgram")) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		int sv[2];

		TEST_SYS(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
		sfd = sv[0];
		peer = sv[1];
		snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "zdtm-unsupp-%d", getpid());
		TEST_SYS(bind(sfd, (struct sockaddr *)&sun,
			      offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sun.sun_path + 1)));
		TEST_SYS(socket(AF_UNIX, SOCK_DGRAM, 0));
		if (write(sfd, "to-peer", 7) != 7 || write(peer, "to-sfd!!", 8) != 8)
			fail("write to socketpair: %m");
	} else {
		fail("unknown ZDTM_UNSUPP_FD '%s'", mode);
	}
	test_msg("unsupported fd %d", sfd);

	/* signals */
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = usr1_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	TEST_SYS(sigaction(SIGUSR1, &sa, NULL));
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, RTSIG);
	sigaddset(&block, SIGHUP);
	TEST_SYS(sigprocmask(SIG_BLOCK, &block, &mask0));
	TEST_SYS(sigprocmask(SIG_BLOCK, NULL, &mask0));
	val.sival_int = 0x5eed;
	TEST_SYS(sigqueue(getpid(), SIGUSR2, val));
	for (i = 1; i <= 3; i++) {
		val.sival_int = 100 + i;
		TEST_SYS(sigqueue(getpid(), RTSIG, val));
	}
	TEST_SYS(syscall(SYS_tgkill, getpid(), test_gettid(), SIGUSR1));

	if (pthread_create(&thr, NULL, sleeper, NULL))
		fail("pthread_create");
	while (ticks < 3)
		usleep(1000);

	test_daemon();

	/* test_waitsig(), counting wake-ups without SIGTERM */
	waitmask = mask0;
	sigdelset(&waitmask, SIGTERM);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	TEST_SYS(sigprocmask(SIG_BLOCK, &block, NULL));
	while (!test_stop) {
		sigsuspend(&waitmask);
		if (!test_stop)
			spurious++;
	}
	TEST_SYS(sigprocmask(SIG_SETMASK, &mask0, NULL));
	test_msg("got SIGTERM");

	if (spurious)
		fail("sigsuspend() returned %d times without a signal", spurious);
	if (sleep_errors)
		fail("clock_nanosleep() failed %d times (last error %d)", sleep_errors, sleep_errno);
	t0 = ticks;
	for (i = 0; i < 500 && ticks < t0 + 3; i++)
		usleep(1000);
	if (ticks < t0 + 3)
		fail("the sleeper thread does not run (ticks %lu -> %lu)", t0, ticks);
	if (pthread_kill(thr, 0))
		fail("the sleeper thread is gone");

	/* memory */
	if ((off = test_check(anon, ANON_SIZE, 0xa11)) != TEST_NO_MISMATCH)
		fail("anonymous mapping differs at offset %zu", off);
	if ((off = test_check(ro, RO_SIZE, 0x20)) != TEST_NO_MISMATCH)
		fail("read-only mapping differs at offset %zu", off);
	if ((off = test_check(data_area, sizeof(data_area), 0xda7a)) != TEST_NO_MISMATCH)
		fail(".data differs at offset %zu", off);
	if ((off = test_check(heap, HEAP_SIZE, 0x4ea9)) != TEST_NO_MISMATCH)
		fail("heap buffer differs at offset %zu", off);

	/* signal state */
	TEST_SYS(sigprocmask(SIG_BLOCK, NULL, &mask1));
	if (!sigset_eq(&mask0, &mask1))
		fail("signal mask [%s] -> [%s]", sigset_str(&mask0, s1, sizeof(s1)), sigset_str(&mask1, s2, sizeof(s2)));
	TEST_SYS(sigaction(SIGUSR1, NULL, &sa1));
	if (sa1.sa_sigaction != usr1_handler || (sa1.sa_flags & (SA_SIGINFO | SA_RESTART)) != (SA_SIGINFO | SA_RESTART) ||
	    !sigismember(&sa1.sa_mask, SIGUSR2) || sigismember(&sa1.sa_mask, SIGHUP))
		fail("SIGUSR1 action changed: handler %p flags %#x", (void *)sa1.sa_sigaction, (unsigned)sa1.sa_flags);
	TEST_SYS(sigaction(SIGPIPE, NULL, &pipe1));
	if (pipe1.sa_handler != SIG_IGN)
		fail("SIGPIPE is no longer ignored");
	TEST_SYS(sigpending(&pend));
	if (!sigismember(&pend, SIGUSR1) || !sigismember(&pend, SIGUSR2) || !sigismember(&pend, RTSIG) ||
	    sigismember(&pend, SIGHUP))
		fail("pending signals: [%s]", sigset_str(&pend, s1, sizeof(s1)));
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	if (sigtimedwait(&block, &si, &zero) != SIGUSR2 || si.si_code != SI_QUEUE || si.si_value.sival_int != 0x5eed)
		fail("SIGUSR2 lost or changed (code %d, value %#x)", si.si_code, si.si_value.sival_int);
	sigemptyset(&block);
	sigaddset(&block, RTSIG);
	for (i = 1; i <= 3; i++) {
		memset(&si, 0, sizeof(si));
		v = sigtimedwait(&block, &si, &zero);
		if (v != RTSIG || si.si_value.sival_int != 100 + i)
			fail("RT signal instance %d: got %d value %d, want value %d", i, v, si.si_value.sival_int, 100 + i);
	}
	if (sigtimedwait(&block, &si, &zero) != -1 || errno != EAGAIN)
		fail("more than 3 RT signal instances are pending");
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	TEST_SYS(sigprocmask(SIG_UNBLOCK, &block, NULL));
	if (usr1_hits != 1)
		fail("thread-directed SIGUSR1: %d deliveries", (int)usr1_hits);

	/* the socket */
	if (!strcmp(mode, "tcp")) {
		int c, a;
		socklen_t l = sizeof(v);

		slen = sizeof(sin2);
		TEST_SYS(getsockname(sfd, (struct sockaddr *)&sin2, &slen));
		if (sin2.sin_port != sin.sin_port || sin2.sin_addr.s_addr != sin.sin_addr.s_addr)
			fail("socket address changed: port %d -> %d", ntohs(sin.sin_port), ntohs(sin2.sin_port));
		TEST_SYS(getsockopt(sfd, SOL_SOCKET, SO_ACCEPTCONN, &v, &l));
		if (!v)
			fail("the socket is no longer listening");
		c = TEST_SYS(socket(AF_INET, SOCK_STREAM, 0));
		TEST_SYS(connect(c, (struct sockaddr *)&sin, sizeof(sin)));
		a = TEST_SYS(accept(sfd, NULL, NULL));
		if (write(c, "ping", 4) != 4 || read(a, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4))
			fail("no data over an accepted connection");
		if (write(est_c, "est", 3) != 3 || read(est_a, buf, sizeof(buf)) != 3 || memcmp(buf, "est", 3))
			fail("the established connection no longer carries data");
		close(a);
		close(c);
	} else {
		ssize_t n;

		n = recv(peer, buf, sizeof(buf), MSG_DONTWAIT);
		if (n != 7 || memcmp(buf, "to-peer", 7))
			fail("data queued to the peer: %zd bytes", n);
		n = recv(sfd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n != 8 || memcmp(buf, "to-sfd!!", 8))
			fail("data queued to the socket: %zd bytes", n);
		if (write(sfd, "again", 5) != 5 || recv(peer, buf, sizeof(buf), MSG_DONTWAIT) != 5 ||
		    memcmp(buf, "again", 5))
			fail("the socketpair no longer connects its ends");
	}
	pass();
}
