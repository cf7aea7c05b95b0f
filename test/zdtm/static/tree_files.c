/*
 * tree_files: open files a parent and its child share (inherited through
 * fork), each with state in it:
 *   a pipe with 5 buffered bytes, both ends in both processes;
 *   a regular file at offset 100: the offset is shared;
 *   an eventfd with count 10;
 *   a unix socketpair, one end each, with a message queued each way.
 * After restore the child reads the pipe, reads 50 bytes of the file,
 * adds 5 to the eventfd, reads its message and answers; the root then
 * finds the offset at 150, the count at 15, its message and the answer:
 * the objects are shared, not copies.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

static int p[2], file, efd, sp[2];

static void child(void *arg)
{
	char buf[64];
	uint64_t v = 5;

	(void)arg;
	close(sp[0]);
	test_waitsig();
	if (read(p[0], buf, 5) != 5 || memcmp(buf, "hello", 5))
		fail("pipe data lost");
	if (read(file, buf, 50) != 50)
		fail("read file: %m");
	if (write(efd, &v, 8) != 8)
		fail("eventfd write: %m");
	if (recv(sp[1], buf, sizeof(buf), MSG_DONTWAIT) != 9 || memcmp(buf, "to child", 9))
		fail("child's queued message lost");
	if (send(sp[1], "answer", 7, 0) != 7)
		fail("send: %m");
}

int main(int argc, char **argv)
{
	char buf[256];
	uint64_t v;
	pid_t c;

	test_init(argc, argv);
	if (pipe(p) || write(p[1], "hello", 5) != 5)
		fail("pipe: %m");
	file = open("data", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file < 0)
		fail("open: %m");
	memset(buf, 'x', sizeof(buf));
	if (write(file, buf, sizeof(buf)) != sizeof(buf) || lseek(file, 100, SEEK_SET) != 100)
		fail("write/lseek: %m");
	efd = eventfd(10, 0);
	if (efd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp))
		fail("eventfd/socketpair: %m");
	if (send(sp[0], "to child", 9, 0) != 9 || send(sp[1], "to root", 8, 0) != 8)
		fail("send: %m");
	c = test_fork(child, NULL);
	close(sp[1]);
	usleep(100000);
	test_daemon();
	test_waitsig();
	test_finish_child(c);
	if (lseek(file, 0, SEEK_CUR) != 150)
		fail("file offset %ld, expected 150 (not shared?)", (long)lseek(file, 0, SEEK_CUR));
	if (read(efd, &v, 8) != 8 || v != 15)
		fail("eventfd count %llu, expected 15", (unsigned long long)v);
	if (recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT) != 8 || memcmp(buf, "to root", 8))
		fail("root's queued message lost");
	if (recv(sp[0], buf, sizeof(buf), MSG_DONTWAIT) != 7 || memcmp(buf, "answer", 7))
		fail("no answer from the child");
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	if (read(p[0], buf, 1) != -1 || errno != EAGAIN)
		fail("the pipe still has data: the child read a copy");
	pass();
}
