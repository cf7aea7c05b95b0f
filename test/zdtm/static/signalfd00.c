/*
 * signalfd00: a signalfd for SIGUSR1|SIGUSR2 (SFD_NONBLOCK) with SIGUSR1
 * pending (blocked) at checkpoint time. After restore the signalfd still
 * watches the same mask (fdinfo), reads the pending SIGUSR1 with its sender
 * data, then a new SIGUSR2, and is empty and non-blocking afterwards.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int read_sig(int fd, struct signalfd_siginfo *si)
{
	return read(fd, si, sizeof(*si)) == (ssize_t)sizeof(*si) ? (int)si->ssi_signo : -1;
}

int main(int argc, char **argv)
{
	char path[64], mask_before[64], mask_after[64];
	struct signalfd_siginfo si;
	sigset_t m;
	union sigval sv = {.sival_int = 4242};
	int fd;

	test_init(argc, argv);
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_BLOCK, &m, NULL);
	fd = signalfd(-1, &m, SFD_NONBLOCK);
	if (fd < 0)
		fail("signalfd: %m");
	if (sigqueue(getpid(), SIGUSR1, sv))
		fail("sigqueue: %m");
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (test_status_field(path, "sigmask", mask_before, sizeof(mask_before)))
		fail("no sigmask in %s", path);

	test_daemon();
	test_waitsig();

	if (test_status_field(path, "sigmask", mask_after, sizeof(mask_after)))
		fail("no sigmask after restore");
	if (strcmp(mask_before, mask_after))
		fail("sigmask %s -> %s", mask_before, mask_after);
	if (read_sig(fd, &si) != SIGUSR1)
		fail("pending SIGUSR1 not read from the signalfd");
	if (si.ssi_int != 4242 || si.ssi_pid != (uint32_t)getpid())
		fail("SIGUSR1 data lost: int %d pid %u", si.ssi_int, si.ssi_pid);
	kill(getpid(), SIGUSR2);
	if (read_sig(fd, &si) != SIGUSR2)
		fail("new SIGUSR2 not read");
	if (read(fd, &si, sizeof(si)) != -1 || errno != EAGAIN)
		fail("signalfd not empty or blocking");
	if (!(fcntl(fd, F_GETFL) & O_NONBLOCK))
		fail("signalfd lost O_NONBLOCK");
	pass();
	return 0;
}
