/*
 * inotify00: an inotify instance (IN_NONBLOCK) watching its temp dir for
 * IN_CREATE and two files for IN_MODIFY, after an earlier watch was removed
 * (so the watch numbers have a gap: 2, 3, 4). After restore the same watch
 * numbers and masks are in fdinfo, and events arrive with the right wd:
 * creating a file reports wd 2, writing each file reports its own wd.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

static int wait_event(int fd, int *wd, uint32_t *mask)
{
	char buf[4096] __attribute__((aligned(8)));
	struct inotify_event *ev = (struct inotify_event *)buf;
	int i;

	for (i = 0; i < 200; i++) {
		if (read(fd, buf, sizeof(buf)) > 0) {
			*wd = ev->wd;
			*mask = ev->mask;
			return 0;
		}
		usleep(5000);
	}
	return -1;
}

static int count_watches(int fd)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		fail("open %s: %m", path);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "inotify wd:", 11))
			n++;
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	int fd, w0, wdir, wa, wb, f1, f2, wd;
	uint32_t mask;

	test_init(argc, argv);
	f1 = open("a.txt", O_CREAT | O_RDWR, 0644);
	f2 = open("b.txt", O_CREAT | O_RDWR, 0644);
	if (f1 < 0 || f2 < 0)
		fail("open: %m");
	fd = inotify_init1(IN_NONBLOCK);
	if (fd < 0)
		fail("inotify_init1: %m");
	w0 = inotify_add_watch(fd, "a.txt", IN_ATTRIB);
	if (w0 < 0 || inotify_rm_watch(fd, w0))
		fail("first watch: %m");
	wdir = inotify_add_watch(fd, ".", IN_CREATE);
	wa = inotify_add_watch(fd, "a.txt", IN_MODIFY);
	wb = inotify_add_watch(fd, "b.txt", IN_MODIFY | IN_CLOSE_WRITE);
	if (wdir < 0 || wa < 0 || wb < 0)
		fail("inotify_add_watch: %m");
	if (wdir != 2 || wa != 3 || wb != 4)
		fail("unexpected watch numbers %d %d %d", wdir, wa, wb);
	/* drain the IN_IGNORED of the removed watch */
	while (wait_event(fd, &wd, &mask) == 0)
		;

	test_daemon();
	test_waitsig();

	if (count_watches(fd) != 3)
		fail("%d watches after restore, expected 3", count_watches(fd));
	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
		fail("inotify lost O_NONBLOCK");
	close(open("c.txt", O_CREAT | O_RDWR, 0644));
	if (wait_event(fd, &wd, &mask) || wd != wdir || !(mask & IN_CREATE))
		fail("create: wd %d mask 0x%x, expected %d IN_CREATE", wd, mask, wdir);
	while (wait_event(fd, &wd, &mask) == 0 && wd == wdir)
		; /* possible extra events of c.txt on the dir watch */
	if (write(f1, "x", 1) != 1)
		fail("write: %m");
	if (wait_event(fd, &wd, &mask) || wd != wa || !(mask & IN_MODIFY))
		fail("modify a: wd %d mask 0x%x, expected %d", wd, mask, wa);
	if (write(f2, "y", 1) != 1)
		fail("write: %m");
	if (wait_event(fd, &wd, &mask) || wd != wb || !(mask & IN_MODIFY))
		fail("modify b: wd %d mask 0x%x, expected %d", wd, mask, wb);
	pass();
	return 0;
}
