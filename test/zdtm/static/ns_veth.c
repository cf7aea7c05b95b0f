/*
 * ns_veth: PID 1 of its own pid and net namespaces with a veth end, eth0,
 * which test_ns_veth (test_zdtm.py) sets up from the host, then creates
 * ./veth-ready: MTU NS_VETH_MTU, MAC NS_VETH_MAC, the addresses
 * NS_VETH_ADDR/24 and NS_VETH_ADDR6/64, a default route via NS_VETH_GW,
 * and the extra routes 192.0.2.0/24 via NS_VETH_GW and 2001:db8:5::/64 via
 * NS_VETH_GW6.  It listens on NS_VETH_ADDR:8080.
 * After restore (into a new net namespace, the peer on the host) it checks
 * from inside that eth0 has its ifindex, MTU, MAC, addresses and routes
 * (/proc/net/route as it was), and answers "pong" to a connection that
 * came through the veth with "ping", if the harness made one.
 */
#include "zdtmtst.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define PORT 8080

static const char *env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		fail("%s is not set", name);
	return v;
}

static void ifreq_of(int sk, unsigned long req, struct ifreq *ifr, const char *what)
{
	memset(ifr, 0, sizeof(*ifr));
	strcpy(ifr->ifr_name, "eth0");
	if (ioctl(sk, req, ifr) < 0)
		fail("eth0: can't get the %s: %m", what);
}

static void check_link(int ifindex)
{
	int sk = TEST_SYS(socket(AF_INET, SOCK_DGRAM, 0));
	struct sockaddr_in *in;
	unsigned char *m;
	struct ifreq ifr;
	char mac[32];

	if ((int)if_nametoindex("eth0") != ifindex)
		fail("eth0 has ifindex %u, was %d", if_nametoindex("eth0"), ifindex);
	ifreq_of(sk, SIOCGIFMTU, &ifr, "MTU");
	if (ifr.ifr_mtu != atoi(env("NS_VETH_MTU")))
		fail("eth0's MTU is %d, not %s", ifr.ifr_mtu, env("NS_VETH_MTU"));
	ifreq_of(sk, SIOCGIFHWADDR, &ifr, "MAC");
	m = (unsigned char *)ifr.ifr_hwaddr.sa_data;
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	if (strcmp(mac, env("NS_VETH_MAC")))
		fail("eth0's MAC is %s, not %s", mac, env("NS_VETH_MAC"));
	ifreq_of(sk, SIOCGIFFLAGS, &ifr, "flags");
	if (!(ifr.ifr_flags & IFF_UP))
		fail("eth0 is down");
	ifreq_of(sk, SIOCGIFADDR, &ifr, "address");
	in = (struct sockaddr_in *)&ifr.ifr_addr;
	if (strcmp(inet_ntoa(in->sin_addr), env("NS_VETH_ADDR")))
		fail("eth0's address is %s, not %s", inet_ntoa(in->sin_addr), env("NS_VETH_ADDR"));
	ifreq_of(sk, SIOCGIFNETMASK, &ifr, "netmask");
	if (in->sin_addr.s_addr != htonl(0xffffff00))
		fail("eth0's netmask is %s", inet_ntoa(in->sin_addr));
	close(sk);
}

/* An IPv6 address as /proc/net/if_inet6 and ipv6_route print it. */
static void hex6(const char *addr, char out[33])
{
	struct in6_addr a;
	int i;

	if (inet_pton(AF_INET6, addr, &a) != 1)
		fail("bad IPv6 address %s", addr);
	for (i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", a.s6_addr[i]);
}

/* A line of the /proc file has all these blank-separated fields. */
static int has_line(const char *path, const char *const *fields, int n)
{
	static char buf[1 << 16];
	char *line, *save;
	int i;

	if (test_read_file(path, buf, sizeof(buf)) < 0)
		fail("can't read %s: %m", path);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		for (i = 0; i < n && strstr(line, fields[i]); i++)
			;
		if (i == n)
			return 1;
	}
	return 0;
}

/* /proc/net/route prints addresses as the raw u32 in hex. */
static void hex4(const char *addr, char out[9])
{
	sprintf(out, "%08X", inet_addr(addr));
}

static void check_routes(const char *routes)
{
	static char now[1 << 16];
	char a6[33], gw6[33], dst6[33], gw[9], dst[9];

	hex6(env("NS_VETH_ADDR6"), a6);
	if (!has_line("/proc/net/if_inet6", (const char *[]){a6, " 40 ", "eth0"}, 3))
		fail("eth0 has lost %s/64", env("NS_VETH_ADDR6"));
	hex4(env("NS_VETH_GW"), gw);
	hex4("192.0.2.0", dst);
	if (!has_line("/proc/net/route", (const char *[]){"eth0\t00000000\t", gw}, 2))
		fail("no default route via %s", env("NS_VETH_GW"));
	if (!has_line("/proc/net/route", (const char *[]){dst, gw, "00FFFFFF"}, 3))
		fail("no route to 192.0.2.0/24 via %s", env("NS_VETH_GW"));
	hex6(env("NS_VETH_GW6"), gw6);
	hex6("2001:db8:5::", dst6);
	if (!has_line("/proc/net/ipv6_route", (const char *[]){dst6, gw6, "eth0"}, 3))
		fail("no route to 2001:db8:5::/64 via %s", env("NS_VETH_GW6"));
	if (test_read_file("/proc/net/route", now, sizeof(now)) < 0 || strcmp(now, routes))
		fail("/proc/net/route was\n%s\nand is\n%s", routes, now);
}

/* The connection the harness made through the veth, if any. */
static void answer(int l)
{
	struct pollfd p = {.fd = l, .events = POLLIN};
	char buf[8] = {};
	int s;

	if (poll(&p, 1, 0) != 1)
		return;
	s = TEST_SYS(accept(l, NULL, NULL));
	if (read(s, buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4))
		fail("no ping through the veth: '%s'", buf);
	if (write(s, "pong", 4) != 4)
		fail("can't answer: %m");
	close(s);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	static char routes[1 << 16];
	int l, one = 1, ifindex;

	test_init(argc, argv);
	if (getpid() != 1)
		fail("not the init of a pid namespace (PID %d)", getpid());
	while (access("veth-ready", F_OK))
		usleep(10000);
	ifindex = if_nametoindex("eth0");
	if (!ifindex)
		fail("no eth0: %m");
	check_link(ifindex);
	if (test_read_file("/proc/net/route", routes, sizeof(routes)) < 0)
		fail("can't read /proc/net/route: %m");
	check_routes(routes);
	a.sin_addr.s_addr = inet_addr(env("NS_VETH_ADDR"));
	l = TEST_SYS(socket(AF_INET, SOCK_STREAM, 0));
	TEST_SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	TEST_SYS(bind(l, (struct sockaddr *)&a, sizeof(a)));
	TEST_SYS(listen(l, 8));
	test_daemon();
	test_waitsig();

	check_link(ifindex);
	check_routes(routes);
	answer(l);
	pass();
}
