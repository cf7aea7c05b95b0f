/* env00: the simplest test - a process that just sleeps in sigsuspend. */
#include "zdtmtst.h"

#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const char marker[] = "zdtm env00 marker";
	char copy[sizeof(marker)];
	pid_t pid, sid, pgid;

	test_init(argc, argv);
	memcpy(copy, marker, sizeof(marker));
	pid = getpid();
	sid = getsid(0);
	pgid = getpgrp();

	test_daemon();
	test_waitsig();

	if (getpid() != pid)
		fail("pid changed: %d -> %d", (int)pid, (int)getpid());
	if (test_gettid() != pid)
		fail("tid %d != pid %d", (int)test_gettid(), (int)pid);
	if (getsid(0) != sid || getpgrp() != pgid)
		fail("sid/pgid changed: %d/%d -> %d/%d", (int)sid, (int)pgid, (int)getsid(0), (int)getpgrp());
	if (memcmp(copy, marker, sizeof(marker)))
		fail("stack data corrupted");
	pass();
}
