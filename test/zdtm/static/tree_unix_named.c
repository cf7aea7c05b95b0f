/*
 * tree_unix_named: unix stream connections made through named listeners,
 * with the two ends in different processes of the tree.
 *   L   the root's listener at ./srv.sock (absolute path);
 *   C1  a child's unnamed socket connected through L, accepted as S1;
 *   C2  a child's socket bound to ./cli.sock, connected through L (S2);
 *   C3  a child's socket connected through ./gone.sock, whose listener the
 *       root closed after accepting S3 (so restore needs a listener of its
 *       own for it).
 * Data is queued both ways on each connection.  After restore every end
 * has its name and its peer's, the queued data is intact, the connections
 * carry data, and L accepts a new connection.
 */
#include "zdtmtst.h"

#include <limits.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char srv[PATH_MAX], cli[PATH_MAX], gone[PATH_MAX];

static void addr(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	strncpy(sun->sun_path, path, sizeof(sun->sun_path) - 1);
}

static void check_name(int sk, int peer, const char *want, const char *what)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof(sun);

	memset(&sun, 0, sizeof(sun));
	if ((peer ? getpeername(sk, (struct sockaddr *)&sun, &len) : getsockname(sk, (struct sockaddr *)&sun, &len)))
		fail("%s: %m", what);
	if (strcmp(sun.sun_path, want))
		fail("%s is '%s', not '%s'", what, sun.sun_path, want);
}

static void expect(int sk, const char *msg, const char *what)
{
	char buf[64] = {};
	ssize_t n = recv(sk, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n != (ssize_t)strlen(msg) || strcmp(buf, msg))
		fail("%s: got %zd bytes '%s', expected '%s'", what, n, n > 0 ? buf : "", msg);
}

struct client {
	const char *bind_to, *server;
	int sk;
};

static void client(void *arg)
{
	struct client *c = arg;

	test_waitsig();
	check_name(c->sk, 1, c->server, "the client's peer name");
	check_name(c->sk, 0, c->bind_to ? c->bind_to : "", "the client's name");
	expect(c->sk, "to-client", "data queued to the client");
	if (send(c->sk, "pong", 4, 0) != 4)
		fail("send: %m");
}

static int connect_to(const char *path, const char *bind_to)
{
	struct sockaddr_un sun;
	int sk = TEST_SYS(socket(AF_UNIX, SOCK_STREAM, 0));

	if (bind_to) {
		addr(&sun, bind_to);
		TEST_SYS(bind(sk, (struct sockaddr *)&sun, sizeof(sun)));
	}
	addr(&sun, path);
	TEST_SYS(connect(sk, (struct sockaddr *)&sun, sizeof(sun)));
	return sk;
}

static int listen_at(const char *path)
{
	struct sockaddr_un sun;
	int l = TEST_SYS(socket(AF_UNIX, SOCK_STREAM, 0));

	addr(&sun, path);
	TEST_SYS(bind(l, (struct sockaddr *)&sun, sizeof(sun)));
	TEST_SYS(listen(l, 8));
	return l;
}

int main(int argc, char **argv)
{
	struct client cs[3] = {{NULL, srv, -1}, {cli, srv, -1}, {NULL, gone, -1}};
	int l, l2, s[3], i, fresh;
	pid_t kids[3];
	char cwd[PATH_MAX - 16];

	test_init(argc, argv);
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd: %m");
	snprintf(srv, sizeof(srv), "%s/srv.sock", cwd);
	snprintf(cli, sizeof(cli), "%s/cli.sock", cwd);
	snprintf(gone, sizeof(gone), "%s/gone.sock", cwd);
	l = listen_at(srv);
	l2 = listen_at(gone);
	for (i = 0; i < 3; i++) {
		cs[i].sk = connect_to(cs[i].server, cs[i].bind_to);
		s[i] = TEST_SYS(accept(i == 2 ? l2 : l, NULL, NULL));
		if (send(cs[i].sk, "to-server", 9, 0) != 9 || send(s[i], "to-client", 9, 0) != 9)
			fail("send: %m");
	}
	close(l2);
	for (i = 0; i < 3; i++) {
		kids[i] = test_fork(client, &cs[i]);
		close(cs[i].sk);
	}
	usleep(100000);
	test_daemon();
	test_waitsig();

	for (i = 0; i < 3; i++) {
		check_name(s[i], 0, cs[i].server, "the accepted end's name");
		expect(s[i], "to-server", "data queued to the server");
		test_finish_child(kids[i]);
		expect(s[i], "pong", "the client's answer");
	}
	fresh = connect_to(srv, NULL);
	i = TEST_SYS(accept(l, NULL, NULL));
	if (send(fresh, "new", 3, 0) != 3)
		fail("send: %m");
	expect(i, "new", "a new connection through the restored listener");
	pass();
}
