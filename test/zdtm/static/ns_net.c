/*
 * ns_net: a tree in a net namespace of its own with only lo (as
 * unshare -n makes it; run by test_namespaces under unshare -p -n -f).  It
 * brings lo up with an MTU of its own, listens on 127.0.0.1:8765 (TCP)
 * and binds a UDP socket to 127.0.0.1:8766.  After restore (into a new net
 * namespace) lo is up with that MTU, the listener accepts a connection
 * from the namespace itself, and UDP packets go round through lo.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void lo(int set_up)
{
	struct ifreq ifr = {};
	int sk = TEST_SYS(socket(AF_INET, SOCK_DGRAM, 0));

	strcpy(ifr.ifr_name, "lo");
	if (set_up) {
		ifr.ifr_mtu = 61000;
		TEST_SYS(ioctl(sk, SIOCSIFMTU, &ifr));
		TEST_SYS(ioctl(sk, SIOCGIFFLAGS, &ifr));
		ifr.ifr_flags |= IFF_UP;
		TEST_SYS(ioctl(sk, SIOCSIFFLAGS, &ifr));
	} else {
		TEST_SYS(ioctl(sk, SIOCGIFFLAGS, &ifr));
		if (!(ifr.ifr_flags & IFF_UP))
			fail("lo is down after restore");
		TEST_SYS(ioctl(sk, SIOCGIFMTU, &ifr));
		if (ifr.ifr_mtu != 61000)
			fail("lo's MTU is %d, not 61000", ifr.ifr_mtu);
	}
	close(sk);
}

static struct sockaddr_in at(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a1 = at(8765), a2 = at(8766);
	int l, u, c, s, one = 1;
	char buf[16];

	test_init(argc, argv);
	if (getpid() != 1)
		fail("not the init of a pid namespace (PID %d)", getpid());
	lo(1);
	l = TEST_SYS(socket(AF_INET, SOCK_STREAM, 0));
	TEST_SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	TEST_SYS(bind(l, (struct sockaddr *)&a1, sizeof(a1)));
	TEST_SYS(listen(l, 8));
	u = TEST_SYS(socket(AF_INET, SOCK_DGRAM, 0));
	TEST_SYS(bind(u, (struct sockaddr *)&a2, sizeof(a2)));
	test_daemon();
	test_waitsig();

	lo(0);
	c = TEST_SYS(socket(AF_INET, SOCK_STREAM, 0));
	TEST_SYS(connect(c, (struct sockaddr *)&a1, sizeof(a1)));
	s = TEST_SYS(accept(l, NULL, NULL));
	if (write(c, "tcp", 3) != 3 || read(s, buf, sizeof(buf)) != 3 || memcmp(buf, "tcp", 3))
		fail("no data over lo");
	if (sendto(u, "udp", 3, 0, (struct sockaddr *)&a2, sizeof(a2)) != 3 ||
	    recv(u, buf, sizeof(buf), MSG_DONTWAIT) != 3 || memcmp(buf, "udp", 3))
		fail("no UDP packet round through lo");
	pass();
}
