/* umask00: an unusual umask survives; checked directly, via /proc and by creating a file. */
#include "zdtmtst.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MASK 0273

int main(int argc, char **argv)
{
	struct stat st;
	mode_t m;
	char val[32];
	int fd;

	test_init(argc, argv);
	umask(MASK);

	test_daemon();
	test_waitsig();

	m = umask(MASK);
	if (m != MASK)
		fail("umask is %#o, expected %#o", m, MASK);
	if (test_status_field("/proc/self/status", "Umask", val, sizeof(val)))
		fail("no Umask in /proc/self/status");
	if (strtoul(val, NULL, 8) != MASK)
		fail("/proc/self/status Umask: %s", val);
	unlink("umask00.file");
	fd = open("umask00.file", O_WRONLY | O_CREAT | O_EXCL, 0777);
	if (fd < 0)
		fail("open: %m");
	if (fstat(fd, &st))
		fail("fstat: %m");
	if ((st.st_mode & 0777) != (0777 & ~MASK))
		fail("new file has mode %#o, expected %#o", st.st_mode & 0777, 0777 & ~MASK);
	close(fd);
	unlink("umask00.file");
	pass();
}
