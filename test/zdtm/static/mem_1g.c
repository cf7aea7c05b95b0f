/* mem_1g: 1 GiB of anonymous memory, every page with its own pattern. */
#include "zdtmtst.h"

#include <sys/mman.h>

#define SIZE (1UL << 30)
#define PAGE 4096UL

int main(int argc, char **argv)
{
	uint64_t *p;
	size_t pg, i, words = PAGE / 8;

	test_init(argc, argv);
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		fail("mmap 1G: %m");
	for (pg = 0; pg < SIZE / PAGE; pg++) {
		uint64_t *w = p + pg * words;
		uint64_t seed = test_mix64(pg ^ 0x1e1e1e1eULL);

		for (i = 0; i < words; i++)
			w[i] = seed + i * 0x9e3779b97f4a7c15ULL;
	}

	test_daemon();
	test_waitsig();

	for (pg = 0; pg < SIZE / PAGE; pg++) {
		uint64_t *w = p + pg * words;
		uint64_t seed = test_mix64(pg ^ 0x1e1e1e1eULL);

		for (i = 0; i < words; i++)
			if (w[i] != seed + i * 0x9e3779b97f4a7c15ULL)
				fail("page %zu word %zu: %#llx", pg, i, (unsigned long long)w[i]);
	}
	pass();
}
