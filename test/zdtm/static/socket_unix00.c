/*
 * socket_unix00: unix socket pairs inside the task, of the three types:
 * a stream pair with bytes queued both ways (the receiving end
 * non-blocking), a datagram pair with three datagrams of different sizes
 * queued, a seqpacket pair with two records queued, and a dup() of one
 * end. After restore every queue gives back exactly what was queued (with
 * datagram/record boundaries), the pairs still connect their ends, and the
 * dup still shares its socket. Also two listeners: one bound to an
 * absolute path (socket file mode 0640) and one to an abstract name; after
 * restore both accept connections that carry data, and the file keeps its
 * mode.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void expect(int fd, const char *want, size_t len, const char *what)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n != (ssize_t)len || memcmp(buf, want, len))
		fail("%s: got %zd bytes, expected %zu (%.*s)", what, n, len, (int)len, want);
}

static int listener(struct sockaddr_un *sun, socklen_t len)
{
	int l = socket(AF_UNIX, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)sun, len) || listen(l, 3))
		fail("unix listener: %m");
	return l;
}

static void talk(int l, struct sockaddr_un *sun, socklen_t len, const char *what)
{
	char buf[8];
	int c = socket(AF_UNIX, SOCK_STREAM, 0), a;

	if (c < 0 || connect(c, (struct sockaddr *)sun, len))
		fail("%s: connect: %m", what);
	a = accept(l, NULL, NULL);
	if (a < 0)
		fail("%s: accept: %m", what);
	if (write(c, "hi", 2) != 2 || read(a, buf, sizeof(buf)) != 2 || memcmp(buf, "hi", 2))
		fail("%s: no data over the accepted connection", what);
	close(a);
	close(c);
}

int main(int argc, char **argv)
{
	int st[2], dg[2], sp[2], dupfd, lpath, labs;
	struct sockaddr_un spath = {.sun_family = AF_UNIX}, sabs = {.sun_family = AF_UNIX};
	socklen_t abslen;
	struct stat fst;
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
	if (!getcwd(spath.sun_path, sizeof(spath.sun_path) - 16))
		fail("getcwd: %m");
	strcat(spath.sun_path, "/listen.sock");
	lpath = listener(&spath, sizeof(spath));
	if (chmod(spath.sun_path, 0640))
		fail("chmod: %m");
	snprintf(sabs.sun_path + 1, sizeof(sabs.sun_path) - 1, "zdtm-abstract-%d", getpid());
	abslen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sabs.sun_path + 1);
	labs = listener(&sabs, abslen);

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
	if (stat(spath.sun_path, &fst) || !S_ISSOCK(fst.st_mode) || (fst.st_mode & 0777) != 0640)
		fail("socket file %s: mode 0%o", spath.sun_path, fst.st_mode);
	talk(lpath, &spath, sizeof(spath), "path listener");
	talk(labs, &sabs, abslen, "abstract listener");
	pass();
	return 0;
}
