/*
 * socket_inet00: IPv4 and IPv6 sockets that criu saves: a TCP listener on
 * 127.0.0.1 (SO_REUSEADDR, backlog 17, a bigger SO_RCVBUF, non-blocking),
 * a v6only TCP listener on ::1 (SO_REUSEPORT), a bound but not listening
 * TCP socket, a fresh TCP socket, a bound UDP socket and a UDP socket
 * connected to it (queued datagrams are not saved). After restore: same addresses and ports,
 * listening state, options and flags; the listeners accept connections
 * that carry data, and the UDP pair still talks.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static int opt(int fd, int level, int name)
{
	int v = 0;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, level, name, &v, &l))
		fail("getsockopt(%d, %d): %m", level, name);
	return v;
}

static void name_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t l = sizeof(*ss);

	memset(ss, 0, sizeof(*ss));
	if (getsockname(fd, (struct sockaddr *)ss, &l))
		fail("getsockname: %m");
}

static void talk(int listener, const struct sockaddr_storage *ss, socklen_t len, int family)
{
	char buf[16];
	int c, a;

	c = socket(family, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (const struct sockaddr *)ss, len))
		fail("connect to a restored listener: %m");
	for (int i = 0; i < 100; i++) {
		a = accept(listener, NULL, NULL);
		if (a >= 0 || errno != EAGAIN)
			break;
		usleep(10000);
	}
	if (a < 0)
		fail("accept: %m");
	if (write(c, "hello", 5) != 5 || read(a, buf, sizeof(buf)) != 5 || memcmp(buf, "hello", 5))
		fail("no data over the accepted connection");
	close(a);
	close(c);
}

int main(int argc, char **argv)
{
	struct sockaddr_in in4 = {.sin_family = AF_INET};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct sockaddr_storage n4, n6, nb, nu, after;
	int l4, l6, bound, fresh, u1, u2, one = 1, rcv = 1 << 18, rcvbuf;
	char buf[16];

	test_init(argc, argv);
	in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	in6.sin6_addr = in6addr_loopback;

	l4 = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l4, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(l4, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (bind(l4, (struct sockaddr *)&in4, sizeof(in4)) || listen(l4, 17))
		fail("l4: %m");
	fcntl(l4, F_SETFL, O_NONBLOCK);
	rcvbuf = opt(l4, SOL_SOCKET, SO_RCVBUF);

	l6 = socket(AF_INET6, SOCK_STREAM, 0);
	setsockopt(l6, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(l6, (struct sockaddr *)&in6, sizeof(in6)) || listen(l6, 5))
		fail("l6: %m");

	bound = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(bound, (struct sockaddr *)&in4, sizeof(in4)))
		fail("bound: %m");
	fresh = socket(AF_INET, SOCK_STREAM, 0);

	u1 = socket(AF_INET, SOCK_DGRAM, 0);
	if (bind(u1, (struct sockaddr *)&in4, sizeof(in4)))
		fail("u1: %m");
	name_of(u1, &nu);
	u2 = socket(AF_INET, SOCK_DGRAM, 0);
	if (connect(u2, (struct sockaddr *)&nu, sizeof(struct sockaddr_in)))
		fail("u2 connect: %m");
	if (l4 < 0 || l6 < 0 || bound < 0 || fresh < 0 || u1 < 0 || u2 < 0)
		fail("socket: %m");
	name_of(l4, &n4);
	name_of(l6, &n6);
	name_of(bound, &nb);

	test_daemon();
	test_waitsig();

	name_of(l4, &after);
	if (memcmp(&after, &n4, sizeof(struct sockaddr_in)))
		fail("IPv4 listener address changed");
	name_of(l6, &after);
	if (memcmp(&after, &n6, sizeof(struct sockaddr_in6)))
		fail("IPv6 listener address changed");
	name_of(bound, &after);
	if (memcmp(&after, &nb, sizeof(struct sockaddr_in)))
		fail("bound socket address changed");
	if (!opt(l4, SOL_SOCKET, SO_ACCEPTCONN) || !opt(l6, SOL_SOCKET, SO_ACCEPTCONN))
		fail("a listener no longer listens");
	if (opt(bound, SOL_SOCKET, SO_ACCEPTCONN) || opt(fresh, SOL_SOCKET, SO_ACCEPTCONN))
		fail("a non-listening socket listens");
	if (!opt(l4, SOL_SOCKET, SO_REUSEADDR) || !opt(l6, SOL_SOCKET, SO_REUSEPORT))
		fail("SO_REUSEADDR/SO_REUSEPORT lost");
	if (!opt(l6, IPPROTO_IPV6, IPV6_V6ONLY))
		fail("IPV6_V6ONLY lost");
	if (opt(l4, SOL_SOCKET, SO_RCVBUF) != rcvbuf)
		fail("SO_RCVBUF %d, expected %d", opt(l4, SOL_SOCKET, SO_RCVBUF), rcvbuf);
	if (!(fcntl(l4, F_GETFL) & O_NONBLOCK) || (fcntl(l6, F_GETFL) & O_NONBLOCK))
		fail("O_NONBLOCK not as before");
	if (opt(u1, SOL_SOCKET, SO_TYPE) != SOCK_DGRAM || opt(fresh, SOL_SOCKET, SO_TYPE) != SOCK_STREAM)
		fail("socket types changed");
	talk(l4, &n4, sizeof(struct sockaddr_in), AF_INET);
	talk(l6, &n6, sizeof(struct sockaddr_in6), AF_INET6);
	if (send(u2, "dgram", 5, 0) != 5 || recv(u1, buf, sizeof(buf), 0) != 5 || memcmp(buf, "dgram", 5))
		fail("the UDP pair no longer talks");
	pass();
	return 0;
}
