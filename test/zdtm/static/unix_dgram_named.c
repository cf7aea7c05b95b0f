/*
 * unix_dgram_named: named unix datagram sockets.
 *   R  bound to ./dgram.sock (absolute path), with "one", "u1" and "two"
 *      queued;
 *   C  unnamed, connected to R: it sent "one" and "two";
 *   U  unnamed, unconnected: it sent "u1" with sendto();
 *   A  bound to an abstract name and B bound to ./b.sock, connected to each
 *      other, with "to-a" queued on A and "to-b" on B.
 * After restore R has its name and its queue in order, C its peer; new
 * datagrams go from C (send) and U (sendto) to R, and between A and B both
 * ways; the queued "to-a" still comes from B's name.
 */
#include "zdtmtst.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static socklen_t addr(struct sockaddr_un *sun, const char *path, int abstract)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	strncpy(sun->sun_path + abstract, path, sizeof(sun->sun_path) - 1 - abstract);
	return offsetof(struct sockaddr_un, sun_path) + abstract + strlen(path) + !abstract;
}

static int dgram(const struct sockaddr_un *name, socklen_t len)
{
	int sk = TEST_SYS(socket(AF_UNIX, SOCK_DGRAM, 0));

	if (name)
		TEST_SYS(bind(sk, (const struct sockaddr *)name, len));
	return sk;
}

/*
 * The next datagram on sk is msg, from a socket named from: "" if unnamed,
 * "@name" for an abstract name.
 */
static void expect(int sk, const char *msg, const char *from, const char *what)
{
	struct sockaddr_un sun = {};
	socklen_t len = sizeof(sun);
	char buf[64] = {};
	ssize_t n = recvfrom(sk, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&sun, &len);

	if (n != (ssize_t)strlen(msg) || strcmp(buf, msg))
		fail("%s: got %zd bytes '%s', expected '%s'", what, n, n > 0 ? buf : "", msg);
	if (len <= offsetof(struct sockaddr_un, sun_path))
		sun.sun_path[0] = 0;
	else if (!sun.sun_path[0])
		sun.sun_path[0] = '@';
	if (strcmp(sun.sun_path, from))
		fail("%s: '%s' came from '%s', not '%s'", what, msg, sun.sun_path, from);
}

static void check_name(int sk, int peer, const struct sockaddr_un *want, socklen_t want_len, const char *what)
{
	struct sockaddr_un sun = {};
	socklen_t len = sizeof(sun);

	if ((peer ? getpeername(sk, (struct sockaddr *)&sun, &len) : getsockname(sk, (struct sockaddr *)&sun, &len)))
		fail("%s: %m", what);
	if (len != want_len || memcmp(&sun, want, len))
		fail("%s is '%s' (%u bytes), not '%s'", what, sun.sun_path + !sun.sun_path[0], len,
		     want->sun_path + !want->sun_path[0]);
}

static void send_to(int sk, const char *msg, const struct sockaddr_un *to, socklen_t len)
{
	if (sendto(sk, msg, strlen(msg), 0, (const struct sockaddr *)to, to ? len : 0) != (ssize_t)strlen(msg))
		fail("can't send '%s': %m", msg);
}

int main(int argc, char **argv)
{
	struct sockaddr_un rn, an, bn;
	socklen_t rl, al, bl;
	char cwd[PATH_MAX - 16], path[PATH_MAX], abs_name[64], a_from[80];
	int r, c, u, a, b;

	test_init(argc, argv);
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd: %m");
	snprintf(path, sizeof(path), "%s/dgram.sock", cwd);
	rl = addr(&rn, path, 0);
	snprintf(path, sizeof(path), "%s/b.sock", cwd);
	bl = addr(&bn, path, 0);
	snprintf(abs_name, sizeof(abs_name), "zdtm-dgram-%d", getpid());
	al = addr(&an, abs_name, 1);
	snprintf(a_from, sizeof(a_from), "@%s", abs_name);

	r = dgram(&rn, rl);
	c = dgram(NULL, 0);
	u = dgram(NULL, 0);
	TEST_SYS(connect(c, (struct sockaddr *)&rn, rl));
	send_to(c, "one", NULL, 0);
	send_to(u, "u1", &rn, rl);
	send_to(c, "two", NULL, 0);
	a = dgram(&an, al);
	b = dgram(&bn, bl);
	TEST_SYS(connect(a, (struct sockaddr *)&bn, bl));
	TEST_SYS(connect(b, (struct sockaddr *)&an, al));
	send_to(b, "to-a", NULL, 0);
	send_to(a, "to-b", NULL, 0);
	test_daemon();
	test_waitsig();

	check_name(r, 0, &rn, rl, "R's name");
	check_name(c, 1, &rn, rl, "C's peer");
	check_name(a, 0, &an, al, "A's name");
	check_name(a, 1, &bn, bl, "A's peer");
	check_name(b, 1, &an, al, "B's peer");
	expect(r, "one", "", "R's first queued datagram");
	expect(r, "u1", "", "R's second queued datagram");
	expect(r, "two", "", "R's third queued datagram");
	if (recv(r, path, sizeof(path), MSG_DONTWAIT) >= 0)
		fail("R has more queued datagrams than it had");
	expect(a, "to-a", bn.sun_path, "A's queued datagram");
	expect(b, "to-b", a_from, "B's queued datagram");
	send_to(c, "three", NULL, 0);
	send_to(u, "four", &rn, rl);
	expect(r, "three", "", "a new datagram from C");
	expect(r, "four", "", "a new datagram from U");
	send_to(a, "a2", NULL, 0);
	send_to(b, "b2", NULL, 0);
	expect(b, "a2", a_from, "a new datagram from A");
	expect(a, "b2", bn.sun_path, "a new datagram from B");
	pass();
}
