/*
 * socket_unix00: unix socket pairs inside the task, of the three types:
 * a stream pair with bytes queued both ways (the receiving end
 * non-blocking), a datagram pair with three datagrams of different sizes
 * queued, a seqpacket pair with two records queued, and a dup() of one
 * end. After restore every queue gives back exactly what was queued (with
 * datagram/record boundaries), the pairs still connect their ends, and the
 * dup still shares its socket.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

static void expect(int fd, const char *want, size_t len, const char *what)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n != (ssize_t)len || memcmp(buf, want, len))
		fail("%s: got %zd bytes, expected %zu (%.*s)", what, n, len, (int)len, want);
}

int main(int argc, char **argv)
{
	int st[2], dg[2], sp[2], dupfd;
	char big[200];

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp))
		fail("socketpair: %m");
	memset(big, 'B', sizeof(big));
	if (write(st[0], "to-one", 6) != 6 || write(st[1], "to-zero!", 8) != 8)
		fail("write stream: %m");
	fcntl(st[1], F_SETFL, O_NONBLOCK);
	if (send(dg[0], "a", 1, 0) != 1 || send(dg[0], big, sizeof(big), 0) != sizeof(big) ||
	    send(dg[0], "ccc", 3, 0) != 3)
		fail("send dgram: %m");
	if (send(sp[1], "rec1", 4, 0) != 4 || send(sp[1], "record-2", 8, 0) != 8)
		fail("send seqpacket: %m");
	dupfd = dup(dg[1]);

	test_daemon();
	test_waitsig();

	if (!(fcntl(st[1], F_GETFL) & O_NONBLOCK) || (fcntl(st[0], F_GETFL) & O_NONBLOCK))
		fail("O_NONBLOCK not as before");
	expect(st[1], "to-one", 6, "stream 1");
	expect(st[0], "to-zero!", 8, "stream 0");
	expect(dg[1], "a", 1, "datagram 1");
	expect(dupfd, big, sizeof(big), "datagram 2 (through the dup)");
	expect(dg[1], "ccc", 3, "datagram 3");
	expect(sp[0], "rec1", 4, "record 1");
	expect(sp[0], "record-2", 8, "record 2");
	if (recv(dg[1], big, sizeof(big), MSG_DONTWAIT) != -1 || errno != EAGAIN)
		fail("datagram queue not empty");
	if (write(st[1], "back", 4) != 4)
		fail("write after restore: %m");
	expect(st[0], "back", 4, "stream after restore");
	if (send(sp[0], "r", 1, 0) != 1)
		fail("send after restore: %m");
	expect(sp[1], "r", 1, "seqpacket after restore");
	pass();
	return 0;
}
