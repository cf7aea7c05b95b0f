/*
 * shell_job00: a shell job on a pseudo-terminal (criu dump/restore -j).
 *
 * Needs a terminal on fds 0, 1 and 2: test_shell_job in test_zdtm.py runs it
 * the way a shell runs a job (in the shell's session, whose controlling
 * terminal is a pty slave; either as the leader of its own process group or
 * inside the shell's), dumps it with --shell-job and restores it with
 * --shell-job from another shell on the same pty.  It is not part of the
 * plain C/R flavors (those give it /dev/null).
 *
 * Before the checkpoint it records: isatty/ttyname/st_rdev of fds 0-2,
 * whether they share one open file description (kcmp), their file status
 * flags (F_GETFL) and fd flags (F_GETFD; fd 2 gets FD_CLOEXEC), the window
 * size, and its session/process group relations: session leader or not,
 * group leader or not, terminal = controlling terminal of its session.
 * It writes a "before" line to stdout.
 *
 * After restore (--shell-job: the task inherits session and process group
 * from criu, a group leader stays a group leader, the terminal is criu's):
 *   - fds 0-2 are still terminals, the same tty (ttyname, st_rdev), still
 *     one open file description if they were, with the same flags;
 *   - the session/group relations above still hold, tcgetsid(0) is our
 *     session, and /dev/tty opens the same terminal (TIOCGDEV);
 *   - writing to stdout works (the harness looks for the "after" line on
 *     the master side).
 * The harness itself checks the actual sid/pgid numbers against criu's.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

struct fdstate {
	int isatty;
	char name[64];
	dev_t rdev;
	int fl, fdfl;
};

struct state {
	struct fdstate fd[3];
	int same01, same02;	/* kcmp(0, 1) == 0, kcmp(0, 2) == 0 */
	int sess_leader, grp_leader, ctty;
	struct winsize ws;
};

static int same_file(int a, int b)
{
	pid_t p = getpid();
	long r = syscall(SYS_kcmp, p, p, KCMP_FILE, a, b);

	if (r < 0)
		fail("kcmp(%d, %d): %m", a, b);
	return r == 0;
}

static void snapshot(struct state *s)
{
	int i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < 3; i++) {
		struct fdstate *f = &s->fd[i];
		struct stat st;

		f->isatty = isatty(i);
		if (ttyname_r(i, f->name, sizeof(f->name)))
			snprintf(f->name, sizeof(f->name), "<none: %s>", strerror(errno));
		if (fstat(i, &st))
			fail("fstat(%d): %m", i);
		f->rdev = S_ISCHR(st.st_mode) ? st.st_rdev : 0;
		f->fl = fcntl(i, F_GETFL);
		f->fdfl = fcntl(i, F_GETFD);
		if (f->fl < 0 || f->fdfl < 0)
			fail("fcntl(%d): %m", i);
	}
	s->same01 = same_file(0, 1);
	s->same02 = same_file(0, 2);
	s->sess_leader = getsid(0) == getpid();
	s->grp_leader = getpgrp() == getpid();
	s->ctty = tcgetsid(0) == getsid(0);
	if (s->fd[0].isatty && ioctl(0, TIOCGWINSZ, &s->ws))
		fail("TIOCGWINSZ: %m");
}

static void say(const char *what)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "shell_job00 %s pid %d\n", what, (int)getpid());
	ssize_t w = write(1, buf, (size_t)n);

	if (w != n)
		fail("write to stdout (%s): %zd of %d bytes: %m", what, w, n);
}

int main(int argc, char **argv)
{
	struct state a, b;
	unsigned int dev = 0;
	int i, t;

	test_init(argc, argv);
	if (fcntl(2, F_SETFD, FD_CLOEXEC))
		fail("F_SETFD: %m");
	snapshot(&a);
	for (i = 0; i < 3; i++)
		if (!a.fd[i].isatty)
			fail("fd %d is not a terminal (%s): run me through test_shell_job", i, a.fd[i].name);
	if (!a.ctty)
		fail("the terminal is not the controlling terminal of my session (tcgetsid: %m)");
	test_msg("tty %s, sid %d, pgid %d, session leader %d, group leader %d", a.fd[0].name, (int)getsid(0),
		 (int)getpgrp(), a.sess_leader, a.grp_leader);
	say("before");

	test_daemon();
	test_waitsig();

	snapshot(&b);
	for (i = 0; i < 3; i++) {
		struct fdstate *x = &a.fd[i], *y = &b.fd[i];

		if (!y->isatty)
			fail("fd %d is no longer a terminal (%s)", i, y->name);
		if (strcmp(x->name, y->name) || x->rdev != y->rdev)
			fail("fd %d: terminal %s (%#lx) -> %s (%#lx)", i, x->name, (unsigned long)x->rdev, y->name,
			     (unsigned long)y->rdev);
		if (x->fl != y->fl)
			fail("fd %d: file status flags %#o -> %#o", i, x->fl, y->fl);
		if (x->fdfl != y->fdfl)
			fail("fd %d: fd flags %d -> %d", i, x->fdfl, y->fdfl);
	}
	if (a.same01 != b.same01 || a.same02 != b.same02)
		fail("fds 0/1/2 sharing one open file: (0,1) %d -> %d, (0,2) %d -> %d", a.same01, b.same01, a.same02,
		     b.same02);
	if (a.sess_leader != b.sess_leader)
		fail("session leader %d -> %d (sid %d, pid %d)", a.sess_leader, b.sess_leader, (int)getsid(0),
		     (int)getpid());
	if (a.grp_leader != b.grp_leader)
		fail("process group leader %d -> %d (pgid %d, pid %d)", a.grp_leader, b.grp_leader, (int)getpgrp(),
		     (int)getpid());
	if (!b.ctty)
		fail("the terminal is not the controlling terminal of my session any more: tcgetsid(0) %d, sid %d",
		     (int)tcgetsid(0), (int)getsid(0));
	if (memcmp(&a.ws, &b.ws, sizeof(a.ws)))
		fail("window size %dx%d -> %dx%d", a.ws.ws_row, a.ws.ws_col, b.ws.ws_row, b.ws.ws_col);
	t = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (t < 0)
		fail("can't open /dev/tty: %m");
	if (ioctl(t, TIOCGDEV, &dev))
		fail("TIOCGDEV on /dev/tty: %m");
	if ((dev_t)makedev(major(dev), minor(dev)) != b.fd[0].rdev)
		fail("/dev/tty is %u:%u, fd 0 is %u:%u", major(dev), minor(dev), major(b.fd[0].rdev),
		     minor(b.fd[0].rdev));
	close(t);
	say("after");
	pass();
}
