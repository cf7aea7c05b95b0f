/*
 * dirfd00: an O_DIRECTORY fd and an O_PATH fd on directories the test
 * created; after restore they refer to the same directories (fstat) and
 * openat()/fstatat() relative to them work.
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct stat s1, s2, p1, p2, st;
	char buf[32], link1[PATH_MAX], link2[PATH_MAX], path[64];
	int dfd, pfd, fd, fl_d, fl_p;
	ssize_t n;

	test_init(argc, argv);
	if (mkdir("dirfd00.dir", 0755) || mkdir("dirfd00.dir/inner", 0700) || mkdir("dirfd00.path", 0755))
		fail("mkdir: %m");
	fd = open("dirfd00.dir/inner/file", O_WRONLY | O_CREAT, 0600);
	if (fd < 0 || write(fd, "dir-file", 8) != 8)
		fail("create: %m");
	close(fd);
	fd = open("dirfd00.path/other", O_WRONLY | O_CREAT, 0600);
	if (fd < 0 || write(fd, "path-file", 9) != 9)
		fail("create: %m");
	close(fd);
	dfd = open("dirfd00.dir", O_RDONLY | O_DIRECTORY);
	pfd = open("dirfd00.path", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || pfd < 0)
		fail("open dir: %m");
	if (fstat(dfd, &s1) || fstat(pfd, &p1))
		fail("fstat: %m");
	fl_d = fcntl(dfd, F_GETFL);
	fl_p = fcntl(pfd, F_GETFL);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", dfd);
	n = readlink(path, link1, sizeof(link1) - 1);
	if (n < 0)
		fail("readlink: %m");
	link1[n] = 0;

	test_daemon();
	test_waitsig();

	if (fstat(dfd, &s2) || fstat(pfd, &p2))
		fail("fstat after restore: %m");
	if (s1.st_ino != s2.st_ino || s1.st_dev != s2.st_dev || p1.st_ino != p2.st_ino || !S_ISDIR(s2.st_mode))
		fail("directory fds point elsewhere");
	if (fcntl(dfd, F_GETFL) != fl_d || fcntl(pfd, F_GETFL) != fl_p)
		fail("flags: %#o/%#o -> %#o/%#o", fl_d, fl_p, fcntl(dfd, F_GETFL), fcntl(pfd, F_GETFL));
	if (!(fcntl(pfd, F_GETFL) & O_PATH) || !(fcntl(pfd, F_GETFD) & FD_CLOEXEC))
		fail("O_PATH fd lost O_PATH or FD_CLOEXEC");
	n = readlink(path, link2, sizeof(link2) - 1);
	if (n < 0)
		fail("readlink: %m");
	link2[n] = 0;
	if (strcmp(link1, link2))
		fail("/proc/self/fd link: %s -> %s", link1, link2);
	fd = openat(dfd, "inner/file", O_RDONLY);
	if (fd < 0)
		fail("openat(dirfd): %m");
	if (read(fd, buf, sizeof(buf)) != 8 || memcmp(buf, "dir-file", 8))
		fail("contents via dirfd");
	close(fd);
	fd = openat(pfd, "other", O_RDONLY);
	if (fd < 0)
		fail("openat(O_PATH fd): %m");
	if (read(fd, buf, sizeof(buf)) != 9 || memcmp(buf, "path-file", 9))
		fail("contents via O_PATH fd");
	close(fd);
	if (fstatat(dfd, "inner", &st, 0) || !S_ISDIR(st.st_mode) || (st.st_mode & 0777) != 0700)
		fail("fstatat: %m");
	/* a directory fd can be read with getdents */
	{
		int dup_fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
		DIR *dir = fdopendir(dup_fd);
		struct dirent *de;
		int found = 0;

		if (!dir)
			fail("fdopendir: %m");
		while ((de = readdir(dir)))
			found += !strcmp(de->d_name, "inner");
		closedir(dir);
		if (found != 1)
			fail("\"inner\" not listed");
	}
	pass();
}
