/*
 * stack00: deep recursion (every frame holds its own data) plus a big
 * alloca'd buffer; the checkpoint happens at the deepest point and every
 * frame verifies its data while unwinding after restore.
 */
#include "zdtmtst.h"

#include <alloca.h>
#include <string.h>

#define DEPTH 20000

static volatile unsigned long frames_ok;

static __attribute__((noinline)) int recurse(int depth, unsigned long parent)
{
	volatile unsigned long local[8];
	int i, ret;

	for (i = 0; i < 8; i++)
		local[i] = test_mix64(((unsigned long)depth << 8) + (unsigned long)i) ^ parent;

	if (depth == DEPTH) {
		test_daemon();
		test_waitsig();
		ret = 0;
	} else {
		ret = recurse(depth + 1, local[3]);
	}

	for (i = 0; i < 8; i++)
		if (local[i] != (test_mix64(((unsigned long)depth << 8) + (unsigned long)i) ^ parent))
			fail("frame %d word %d corrupted: %#lx", depth, i, (unsigned long)local[i]);
	frames_ok++;
	return ret + 1;
}

int main(int argc, char **argv)
{
	const size_t big = 1 << 20;
	unsigned char *buf;
	size_t off;
	int r;

	test_init(argc, argv);

	buf = alloca(big);
	test_fill(buf, big, 0xa110ca);

	r = recurse(1, 0x1234);
	if (r != DEPTH || frames_ok != DEPTH)
		fail("recursion returned %d, %lu frames ok", r, (unsigned long)frames_ok);
	if ((off = test_check(buf, big, 0xa110ca)) != TEST_NO_MISMATCH)
		fail("alloca buffer mismatch at offset %zu", off);
	pass();
}
