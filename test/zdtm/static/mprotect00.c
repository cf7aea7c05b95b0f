/*
 * mprotect00: a region with PROT_NONE guard pages, read-only pages,
 * read+exec pages and read-write pages (data written before the
 * protections were applied, also into a PROT_NONE page).  After restore:
 * /proc/self/maps is the same as before the checkpoint (the whole file,
 * only normalised for VMA merging), the protections are really enforced
 * (faults are caught with a SIGSEGV handler) and all the data is intact.
 */
#include "zdtmtst.h"

#include <setjmp.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096UL
#define NPG 24
#define MAXV 4096

static struct test_vma before[MAXV], after[MAXV];
static sigjmp_buf jb;
static volatile int faults;

static void segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	faults++;
	siglongjmp(jb, 1);
}

/* returns 1 if the access faulted */
static int try_access(volatile unsigned char *p, int write)
{
	int f = faults;

	if (sigsetjmp(jb, 1) == 0) {
		if (write)
			*p = 0x42;
		else
			(void)*p;
	}
	return faults != f;
}

enum { NONE, RO, RX, RW, NONE_DATA };

static int layout(int pg)
{
	if (pg == 0 || pg == 11 || pg == NPG - 1)
		return NONE;
	if (pg == 5)
		return NONE_DATA;
	if (pg >= 6 && pg <= 9)
		return RO;
	if (pg == 10)
		return RX;
	return RW;
}

int main(int argc, char **argv)
{
	unsigned char *r, *res;
	struct sigaction sa;
	char b1[512], b2[512];
	int nb, na, i, pg;
	size_t off;

	test_init(argc, argv);

	r = mmap(NULL, NPG * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		fail("mmap: %m");
	for (pg = 0; pg < NPG; pg++) {
		int l = layout(pg), prot;

		if (l != NONE)
			test_fill(r + pg * PAGE, PAGE, 1000 + pg);
		prot = l == RO ? PROT_READ : l == RX ? PROT_READ | PROT_EXEC : l == RW ? PROT_READ | PROT_WRITE : PROT_NONE;
		if (mprotect(r + pg * PAGE, PAGE, prot))
			fail("mprotect page %d: %m", pg);
	}
	/* a reservation that was never touched, with one RW page inside */
	res = mmap(NULL, 16 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		fail("mmap reservation: %m");
	if (mprotect(res + 7 * PAGE, PAGE, PROT_READ | PROT_WRITE))
		fail("mprotect reservation: %m");
	test_fill(res + 7 * PAGE, PAGE, 77);

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	if (sigaction(SIGSEGV, &sa, NULL))
		fail("sigaction: %m");

	nb = test_read_maps(before, MAXV, 1);

	test_daemon();
	test_waitsig();

	na = test_read_maps(after, MAXV, 1);
	for (i = 0; i < nb && i < na; i++)
		if (test_vma_cmp(&before[i], &after[i]))
			fail("maps line %d differs:\n  before: %s\n  after:  %s", i, test_vma_str(&before[i], b1, sizeof(b1)),
			     test_vma_str(&after[i], b2, sizeof(b2)));
	if (na != nb)
		fail("maps had %d entries, now %d; first extra: %s", nb, na,
		     test_vma_str(na > nb ? &after[nb] : &before[na], b1, sizeof(b1)));

	for (pg = 0; pg < NPG; pg++) {
		int l = layout(pg);
		unsigned char *p = r + pg * PAGE;

		if (l == RO || l == RX || l == RW)
			if ((off = test_check(p, PAGE, 1000 + pg)) != TEST_NO_MISMATCH)
				fail("page %d mismatch at %zu", pg, off);
		if ((l == NONE || l == NONE_DATA) && !try_access(p + 100, 0))
			fail("PROT_NONE page %d is readable", pg);
		if ((l == RO || l == RX) && !try_access(p + 200, 1))
			fail("read-only page %d is writable", pg);
		if (l == RW && try_access(p + 300, 1))
			fail("read-write page %d is not writable", pg);
	}
	if (mprotect(r + 5 * PAGE, PAGE, PROT_READ))
		fail("mprotect: %m");
	if ((off = test_check(r + 5 * PAGE, PAGE, 1005)) != TEST_NO_MISMATCH)
		fail("data in the PROT_NONE page lost (offset %zu)", off);
	if ((off = test_check(res + 7 * PAGE, PAGE, 77)) != TEST_NO_MISMATCH)
		fail("page inside the reservation mismatch at %zu", off);
	if (!try_access(res + 3 * PAGE, 0))
		fail("reservation page is readable");
	pass();
}
