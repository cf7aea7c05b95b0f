/*
 * epoll00: an epoll watching a pipe's read end (EPOLLIN, data 0x1111), an
 * eventfd (EPOLLIN|EPOLLET, data 0xfeedbeef12345678) and a second pipe's
 * write end (EPOLLOUT, data 7), with the first pipe already readable. After
 * restore epoll_wait reports exactly the ready fds with their data, the
 * registrations in fdinfo are the same, and new events are seen.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

static void check_ready(int ep, int want_pipe, int want_efd, int want_out)
{
	struct epoll_event ev[8];
	int n, i, got_pipe = 0, got_efd = 0, got_out = 0;

	n = epoll_wait(ep, ev, 8, 100);
	if (n < 0)
		fail("epoll_wait: %m");
	for (i = 0; i < n; i++) {
		if (ev[i].data.u64 == 0x1111 && (ev[i].events & EPOLLIN))
			got_pipe = 1;
		else if (ev[i].data.u64 == 0xfeedbeef12345678ULL && (ev[i].events & EPOLLIN))
			got_efd = 1;
		else if (ev[i].data.u64 == 7 && (ev[i].events & EPOLLOUT))
			got_out = 1;
		else
			fail("unexpected event 0x%x data 0x%llx", ev[i].events, (unsigned long long)ev[i].data.u64);
	}
	if (got_pipe != want_pipe || got_efd != want_efd || got_out != want_out)
		fail("ready: pipe %d efd %d out %d, expected %d %d %d", got_pipe, got_efd, got_out, want_pipe,
		     want_efd, want_out);
}

static int count_tfd_lines(int ep)
{
	char path[64], line[256];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	f = fopen(path, "r");
	if (!f)
		fail("open %s: %m", path);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "tfd:", 4))
			n++;
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	int p1[2], p2[2], efd, ep;
	struct epoll_event ev;
	uint64_t v = 1;
	char c;

	test_init(argc, argv);
	if (pipe(p1) || pipe(p2))
		fail("pipe: %m");
	efd = eventfd(0, EFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (efd < 0 || ep < 0)
		fail("eventfd/epoll: %m");
	ev.events = EPOLLIN;
	ev.data.u64 = 0x1111;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p1[0], &ev))
		fail("epoll_ctl pipe: %m");
	ev.events = EPOLLIN | EPOLLET;
	ev.data.u64 = 0xfeedbeef12345678ULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev))
		fail("epoll_ctl efd: %m");
	ev.events = EPOLLOUT;
	ev.data.u64 = 7;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, p2[1], &ev))
		fail("epoll_ctl out: %m");
	if (write(p1[1], "x", 1) != 1)
		fail("write: %m");
	check_ready(ep, 1, 0, 1);

	test_daemon();
	test_waitsig();

	if (count_tfd_lines(ep) != 3)
		fail("%d registrations after restore, expected 3", count_tfd_lines(ep));
	if (!(fcntl(ep, F_GETFD) & FD_CLOEXEC))
		fail("epoll lost FD_CLOEXEC");
	check_ready(ep, 1, 0, 1);
	if (read(p1[0], &c, 1) != 1 || c != 'x')
		fail("pipe data lost");
	if (write(efd, &v, 8) != 8)
		fail("eventfd write: %m");
	check_ready(ep, 0, 1, 1);
	check_ready(ep, 0, 0, 1); /* edge-triggered: reported once */
	pass();
	return 0;
}
