/*
 * personality00: a non-default personality (ADDR_NO_RANDOMIZE | UNAME26)
 * survives; checked with personality(0xffffffff) and functionally via
 * uname() (UNAME26 reports a 2.6.x release).
 */
#include "zdtmtst.h"

#include <string.h>
#include <sys/personality.h>
#include <sys/utsname.h>

int main(int argc, char **argv)
{
	unsigned long want;
	struct utsname u;
	int p;

	test_init(argc, argv);
	p = personality(0xffffffff);
	if (p < 0)
		fail("personality: %m");
	want = (unsigned long)p | ADDR_NO_RANDOMIZE | UNAME26;
	if (personality(want) < 0)
		fail("personality(set): %m");
	if ((unsigned long)personality(0xffffffff) != want)
		fail("personality not set");

	test_daemon();
	test_waitsig();

	p = personality(0xffffffff);
	if ((unsigned long)p != want)
		fail("personality is %#x, expected %#lx", p, want);
	if (uname(&u))
		fail("uname: %m");
	if (strncmp(u.release, "2.6.", 4))
		fail("UNAME26 not in effect: release %s", u.release);
	pass();
}
