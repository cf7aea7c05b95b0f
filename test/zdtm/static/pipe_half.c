/*
 * pipe_half: pipes with only one end open.
 *   A: data written, then the write end closed: after restore the data
 *      reads back, followed by EOF.
 *   B: the read end closed: after restore writing fails with EPIPE
 *      (SIGPIPE is ignored).
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEN 20000

static unsigned char data[LEN], rbuf[LEN + 10];

int main(int argc, char **argv)
{
	int a[2], b[2];
	struct stat st;
	size_t off = 0;
	ssize_t n;

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (pipe(a) || pipe(b))
		fail("pipe: %m");
	test_fill(data, LEN, 0x4a1f);
	if (write(a[1], data, LEN) != LEN)
		fail("write: %m");
	close(a[1]);
	close(b[0]);

	test_daemon();
	test_waitsig();

	if (fstat(a[0], &st) || !S_ISFIFO(st.st_mode) || fstat(b[1], &st) || !S_ISFIFO(st.st_mode))
		fail("fds are not pipes any more");
	if (fcntl(a[1], F_GETFD) != -1 || fcntl(b[0], F_GETFD) != -1)
		fail("closed pipe ends reappeared");
	while ((n = read(a[0], rbuf + off, sizeof(rbuf) - off)) > 0)
		off += (size_t)n;
	if (n < 0)
		fail("read: %m");
	if (off != LEN || memcmp(rbuf, data, LEN))
		fail("read %zu bytes, expected %d (or data differs)", off, LEN);
	if (read(a[0], rbuf, 1) != 0)
		fail("no EOF: a write end is still open somewhere");
	if (write(b[1], "x", 1) != -1 || errno != EPIPE)
		fail("write without readers did not fail with EPIPE");
	pass();
}
