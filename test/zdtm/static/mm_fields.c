/*
 * mm_fields: the mm_struct layout fields visible in /proc/self/stat
 * (start_code .. env_end), /proc/self/auxv, /proc/self/cmdline,
 * /proc/self/environ and /proc/self/exe must be the same after restore.
 */
#include "zdtmtst.h"

#include <elf.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

static char stat_buf[4096], auxv_before[4096], auxv_after[4096];
static char cmd_before[8192], cmd_after[8192], env_before[65536], env_after[65536];

/* fields 26..28 and 45..51 of /proc/self/stat (1-based, man 5 proc) */
static const int fields[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
#define NF (sizeof(fields) / sizeof(fields[0]))

static void read_stat_fields(unsigned long *out)
{
	char *p;
	int f, i;

	if (test_read_file("/proc/self/stat", stat_buf, sizeof(stat_buf)) < 0)
		fail("read /proc/self/stat: %m");
	p = strrchr(stat_buf, ')');
	if (!p)
		fail("bad /proc/self/stat");
	p += 2; /* now at field 3 */
	for (f = 3, i = 0; *p && i < (int)NF; f++) {
		if (f == fields[i])
			out[i++] = strtoul(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
	}
	if (i != (int)NF)
		fail("short /proc/self/stat");
}

static ssize_t read_bin(const char *path, char *buf, size_t size)
{
	ssize_t r = test_read_file(path, buf, size);
	if (r < 0)
		fail("read %s: %m", path);
	return r;
}

int main(int argc, char **argv)
{
	unsigned long before[NF], after[NF];
	char exe_before[PATH_MAX], exe_after[PATH_MAX];
	ssize_t la, lb, ca, cb, ea, eb, n;
	unsigned long ehdr;
	int i;

	setenv("ZDTM_MM_FIELDS", "some-environment-value", 1);
	test_init(argc, argv);

	read_stat_fields(before);
	lb = read_bin("/proc/self/auxv", auxv_before, sizeof(auxv_before));
	cb = read_bin("/proc/self/cmdline", cmd_before, sizeof(cmd_before));
	eb = read_bin("/proc/self/environ", env_before, sizeof(env_before));
	n = readlink("/proc/self/exe", exe_before, sizeof(exe_before) - 1);
	if (n < 0)
		fail("readlink exe: %m");
	exe_before[n] = 0;
	ehdr = getauxval(AT_SYSINFO_EHDR);

	test_daemon();
	test_waitsig();

	read_stat_fields(after);
	for (i = 0; i < (int)NF; i++)
		if (before[i] != after[i])
			fail("/proc/self/stat field %d: %#lx -> %#lx", fields[i], before[i], after[i]);
	la = read_bin("/proc/self/auxv", auxv_after, sizeof(auxv_after));
	if (la != lb || memcmp(auxv_before, auxv_after, (size_t)la))
		fail("/proc/self/auxv differs (%zd vs %zd bytes)", lb, la);
	ca = read_bin("/proc/self/cmdline", cmd_after, sizeof(cmd_after));
	if (ca != cb || memcmp(cmd_before, cmd_after, (size_t)ca))
		fail("/proc/self/cmdline differs");
	ea = read_bin("/proc/self/environ", env_after, sizeof(env_after));
	if (ea != eb || memcmp(env_before, env_after, (size_t)ea))
		fail("/proc/self/environ differs");
	if (strcmp(getenv("ZDTM_MM_FIELDS") ?: "", "some-environment-value"))
		fail("getenv returns a wrong value");
	n = readlink("/proc/self/exe", exe_after, sizeof(exe_after) - 1);
	if (n < 0)
		fail("readlink exe after: %m");
	exe_after[n] = 0;
	if (strcmp(exe_before, exe_after))
		fail("/proc/self/exe: %s -> %s", exe_before, exe_after);
	if (getauxval(AT_SYSINFO_EHDR) != ehdr)
		fail("AT_SYSINFO_EHDR changed");
	pass();
}
