/*
 * creds00: the test (started as root) switches to uid/gid 65534 as the
 * effective ids while keeping different real and saved ids, with
 * PR_SET_KEEPCAPS so the permitted capabilities stay (effective ones are
 * dropped).  After restore getresuid/getresgid, the fs ids, the capability
 * sets, securebits and the dumpable flag are all unchanged.
 */
#include "zdtmtst.h"

#include <grp.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char *cap_keys[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
#define NCAP 5

static void read_caps(char vals[NCAP][64])
{
	int i;

	for (i = 0; i < NCAP; i++)
		if (test_status_field("/proc/self/status", cap_keys[i], vals[i], 64))
			fail("no %s in /proc/self/status", cap_keys[i]);
}

int main(int argc, char **argv)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	char caps_before[NCAP][64], caps_after[NCAP][64];
	int i, dumpable, secbits;

	test_init(argc, argv);
	if (geteuid() != 0)
		fail("this test must be started as root");
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		fail("PR_SET_KEEPCAPS: %m");
	if (setgroups(0, NULL))
		fail("setgroups: %m");
	if (setresgid(1003, 65534, 2004))
		fail("setresgid: %m");
	if (setresuid(1001, 65534, 2002))
		fail("setresuid: %m");
	read_caps(caps_before);
	dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	secbits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);

	test_daemon();
	test_waitsig();

	if (getresuid(&ru, &eu, &su))
		fail("getresuid: %m");
	if (ru != 1001 || eu != 65534 || su != 2002)
		fail("uids are %d/%d/%d, expected 1001/65534/2002", (int)ru, (int)eu, (int)su);
	if (getresgid(&rg, &eg, &sg))
		fail("getresgid: %m");
	if (rg != 1003 || eg != 65534 || sg != 2004)
		fail("gids are %d/%d/%d, expected 1003/65534/2004", (int)rg, (int)eg, (int)sg);
	if (setfsuid((uid_t)-1) != 65534 || setfsgid((gid_t)-1) != 65534)
		fail("fsuid/fsgid are %d/%d", setfsuid((uid_t)-1), setfsgid((gid_t)-1));
	if (getgroups(0, NULL) != 0)
		fail("supplementary groups appeared");
	read_caps(caps_after);
	for (i = 0; i < NCAP; i++)
		if (strcmp(caps_before[i], caps_after[i]))
			fail("%s: %s -> %s", cap_keys[i], caps_before[i], caps_after[i]);
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != dumpable)
		fail("dumpable: %d -> %d", dumpable, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
	if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) != secbits)
		fail("securebits: %#x -> %#x", secbits, prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
	/* the effective uid is really 65534: a root-only operation fails */
	if (setresuid(0, 0, 0) == 0)
		fail("could become root again");
	pass();
}
