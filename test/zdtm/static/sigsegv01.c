/*
 * sigsegv01: SIGSEGV ignored: a state a restore's stop on a fault of its
 * own would change (see rst_args::unmap_self), so the restore stops this
 * task the other way.  After it SIGSEGV is still ignored: a raised one is
 * survived and not left pending.
 */
#include "zdtmtst.h"

#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sigaction sa, now;
	sigset_t pending;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGSEGV, &sa, NULL))
		fail("sigaction(SIGSEGV): %m");

	test_daemon();
	test_waitsig();

	if (sigaction(SIGSEGV, NULL, &now) || now.sa_handler != SIG_IGN)
		fail("SIGSEGV is no longer ignored");
	raise(SIGSEGV);
	if (sigpending(&pending) || sigismember(&pending, SIGSEGV))
		fail("SIGSEGV is pending");
	pass();
}
