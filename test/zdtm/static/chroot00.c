/*
 * chroot00: a task chrooted into its own directory, with its cwd in a
 * subdirectory of it, keeps both: "/" and "/.." are that directory,
 * getcwd names the subdirectory from the new root, and a file is found by
 * absolute path inside it.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void same_dir(const char *path, const struct stat *want)
{
	struct stat st;

	if (stat(path, &st))
		fail("stat %s: %m", path);
	if (st.st_dev != want->st_dev || st.st_ino != want->st_ino)
		fail("%s is inode %lu, expected %lu", path, (unsigned long)st.st_ino, (unsigned long)want->st_ino);
}

int main(int argc, char **argv)
{
	struct stat jail, sub;
	char dir[PATH_MAX], cwd[PATH_MAX], buf[16];
	int fd;

	test_init(argc, argv);
	if (mkdir("sub", 0755) && errno != EEXIST)
		fail("mkdir: %m");
	fd = open("marker", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "jail", 4) != 4)
		fail("create marker: %m");
	close(fd);
	if (stat(".", &jail) || stat("sub", &sub) || !getcwd(dir, sizeof(dir)))
		fail("stat: %m");
	test_paths_under(dir);
	if (chroot(".") || chdir("/sub"))
		fail("chroot: %m");

	test_daemon();
	test_waitsig();

	same_dir("/", &jail);
	same_dir("/..", &jail);
	same_dir(".", &sub);
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd: %m");
	if (strcmp(cwd, "/sub"))
		fail("getcwd is %s, expected /sub", cwd);
	fd = open("/marker", O_RDONLY);
	if (fd < 0)
		fail("open /marker in the chroot: %m");
	if (read(fd, buf, sizeof(buf)) != 4 || memcmp(buf, "jail", 4))
		fail("/marker has other contents");
	close(fd);
	pass();
}
