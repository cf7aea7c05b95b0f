/* maps_large: a 64 MiB anonymous private mapping filled with a pattern. */
#include "zdtmtst.h"

#include <sys/mman.h>

#define SIZE (64UL << 20)

int main(int argc, char **argv)
{
	unsigned char *p;
	size_t off;

	test_init(argc, argv);
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fail("mmap: %m");
	test_fill(p, SIZE, 0x64646464);

	test_daemon();
	test_waitsig();

	if ((off = test_check(p, SIZE, 0x64646464)) != TEST_NO_MISMATCH)
		fail("mismatch at offset %zu (page %zu)", off, off / 4096);
	/* the mapping must still be private and writable */
	p[0] ^= 0xff;
	p[SIZE - 1] ^= 0xff;
	pass();
}
