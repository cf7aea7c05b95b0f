/*
 * pipe00: pipes with data buffered in them, both ends open.
 *   p1: 512 KiB pipe buffer (F_SETPIPE_SZ) holding 300 KiB of data written
 *       in uneven chunks, read end also dup'ed
 *   p2: O_NONBLOCK|O_CLOEXEC pipe (pipe2) with a few bytes
 *   p3: an empty pipe
 * After restore the buffer sizes and flags are the same, the data reads
 * back exactly (then EAGAIN), and the pipes still work.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <unistd.h>

#define BIG (300 * 1024)

static unsigned char data[BIG], rbuf[BIG];

int main(int argc, char **argv)
{
	int p1[2], p2[2], p3[2], rdup, sz1, sz2, i, fl[6], fdfl[6], *all[6];
	size_t off = 0, chunk;
	ssize_t n;
	unsigned char small[16];

	test_init(argc, argv);
	if (pipe(p1) || pipe2(p2, O_NONBLOCK | O_CLOEXEC) || pipe(p3))
		fail("pipe: %m");
	if (fcntl(p1[1], F_SETPIPE_SZ, 512 * 1024) < 0)
		fail("F_SETPIPE_SZ: %m");
	sz1 = fcntl(p1[0], F_GETPIPE_SZ);
	sz2 = fcntl(p2[0], F_GETPIPE_SZ);
	test_fill(data, BIG, 0x919e);
	for (i = 0; off < BIG; i++) {
		chunk = 1 + test_mix64((uint64_t)i) % 9000;
		if (chunk > BIG - off)
			chunk = BIG - off;
		if (write(p1[1], data + off, chunk) != (ssize_t)chunk)
			fail("write: %m");
		off += chunk;
	}
	if (write(p2[1], "nonblocking", 11) != 11)
		fail("write p2: %m");
	rdup = dup(p1[0]);
	if (rdup < 0)
		fail("dup: %m");
	all[0] = &p1[0], all[1] = &p1[1], all[2] = &p2[0], all[3] = &p2[1], all[4] = &p3[0], all[5] = &p3[1];
	for (i = 0; i < 6; i++) {
		fl[i] = fcntl(*all[i], F_GETFL);
		fdfl[i] = fcntl(*all[i], F_GETFD);
	}

	test_daemon();
	test_waitsig();

	for (i = 0; i < 6; i++)
		if (fcntl(*all[i], F_GETFL) != fl[i] || fcntl(*all[i], F_GETFD) != fdfl[i])
			fail("pipe fd %d: flags %#o/%d -> %#o/%d", *all[i], fl[i], fdfl[i], fcntl(*all[i], F_GETFL),
			     fcntl(*all[i], F_GETFD));
	if (fcntl(p1[0], F_GETPIPE_SZ) != sz1 || fcntl(p2[1], F_GETPIPE_SZ) != sz2)
		fail("pipe sizes %d/%d -> %d/%d", sz1, sz2, fcntl(p1[0], F_GETPIPE_SZ), fcntl(p2[1], F_GETPIPE_SZ));
	if (fcntl(p1[0], F_SETFL, O_NONBLOCK))
		fail("F_SETFL: %m");
	/* read half through the dup, the rest through the original fd */
	off = 0;
	while (off < BIG) {
		n = read(off < BIG / 2 ? rdup : p1[0], rbuf + off, BIG - off);
		if (n <= 0)
			fail("read p1 at %zu: %zd (%m)", off, n);
		off += (size_t)n;
	}
	if (memcmp(rbuf, data, BIG)) {
		for (off = 0; off < BIG && rbuf[off] == data[off]; off++)
			;
		fail("pipe data differs at offset %zu", off);
	}
	if (read(p1[0], small, 1) != -1 || errno != EAGAIN)
		fail("extra data in p1");
	n = read(p2[0], small, sizeof(small));
	if (n != 11 || memcmp(small, "nonblocking", 11))
		fail("p2 data: %zd bytes", n);
	if (read(p2[0], small, 1) != -1 || errno != EAGAIN)
		fail("p2 is not empty / not non-blocking");
	if (fcntl(p3[0], F_SETFL, O_NONBLOCK) || read(p3[0], small, 1) != -1 || errno != EAGAIN)
		fail("p3 is not empty");
	/* the pipes still connect the right ends */
	if (write(p3[1], "abc", 3) != 3 || read(p3[0], small, 3) != 3 || memcmp(small, "abc", 3))
		fail("p3 does not work");
	if (write(p1[1], "xyz", 3) != 3 || read(rdup, small, 3) != 3 || memcmp(small, "xyz", 3))
		fail("p1 does not work");
	pass();
}
