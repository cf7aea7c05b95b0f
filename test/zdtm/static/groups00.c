/* groups00: supplementary groups (set as root) survive the checkpoint. */
#include "zdtmtst.h"

#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const gid_t want[] = { 4, 10, 20, 27, 100, 4242, 65534, 123456 };
#define NG (sizeof(want) / sizeof(want[0]))

static int cmp(const void *a, const void *b)
{
	gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	gid_t got[64];
	char val[512], exp[512];
	int n, i, l = 0;
	uid_t uid;
	gid_t gid;

	test_init(argc, argv);
	uid = getuid();
	gid = getgid();
	if (setgroups(NG, want))
		fail("setgroups: %m");

	test_daemon();
	test_waitsig();

	n = getgroups(64, got);
	if (n < 0)
		fail("getgroups: %m");
	if (n != (int)NG)
		fail("%d supplementary groups, expected %zu", n, NG);
	qsort(got, (size_t)n, sizeof(got[0]), cmp);
	for (i = 0; i < n; i++)
		if (got[i] != want[i])
			fail("group #%d is %d, expected %d", i, (int)got[i], (int)want[i]);
	if (test_status_field("/proc/self/status", "Groups", val, sizeof(val)))
		fail("no Groups line");
	for (i = 0; i < (int)NG; i++)
		l += snprintf(exp + l, sizeof(exp) - (size_t)l, "%d ", (int)want[i]);
	/* the kernel prints them sorted, with a trailing blank */
	while (l > 0 && exp[l - 1] == ' ')
		exp[--l] = 0;
	for (l = (int)strlen(val); l > 0 && val[l - 1] == ' '; l--)
		val[l - 1] = 0;
	if (strcmp(val, exp))
		fail("/proc/self/status Groups: '%s', expected '%s'", val, exp);
	if (getuid() != uid || getgid() != gid)
		fail("uid/gid changed");
	pass();
}
