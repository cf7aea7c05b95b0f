/*
 * cwd00: the working directory (a directory the test created, a few levels
 * deep) is preserved: getcwd, /proc/self/cwd, relative opens and stat of
 * "." all agree after restore.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char before[PATH_MAX], after[PATH_MAX], link[PATH_MAX], buf[64];
	struct stat st1, st2;
	ssize_t n;
	int fd;

	test_init(argc, argv);
	if (mkdir("cwd00.dir", 0755) && errno != EEXIST)
		fail("mkdir: %m");
	if (mkdir("cwd00.dir/sub dir", 0755) && errno != EEXIST)
		fail("mkdir: %m");
	if (chdir("cwd00.dir/sub dir"))
		fail("chdir: %m");
	fd = open("marker", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "cwd-marker", 10) != 10)
		fail("create marker: %m");
	close(fd);
	if (!getcwd(before, sizeof(before)))
		fail("getcwd: %m");
	if (stat(".", &st1))
		fail("stat: %m");

	test_daemon();
	test_waitsig();

	if (!getcwd(after, sizeof(after)))
		fail("getcwd after restore: %m");
	if (strcmp(before, after))
		fail("cwd: %s -> %s", before, after);
	n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
	if (n < 0)
		fail("readlink /proc/self/cwd: %m");
	link[n] = 0;
	if (strcmp(link, before))
		fail("/proc/self/cwd is %s, expected %s", link, before);
	if (stat(".", &st2))
		fail("stat: %m");
	if (st1.st_dev != st2.st_dev || st1.st_ino != st2.st_ino)
		fail("\".\" is a different directory");
	fd = open("marker", O_RDONLY);
	if (fd < 0)
		fail("relative open: %m");
	if (read(fd, buf, sizeof(buf)) != 10 || memcmp(buf, "cwd-marker", 10))
		fail("marker contents");
	close(fd);
	pass();
}
