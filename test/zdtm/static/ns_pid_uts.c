/*
 * ns_pid_uts: a tree in pid and uts namespaces of its own, as a
 * container's.  Run as the init of a new pid namespace, in a new uts
 * namespace (unshare -p -u -f, see test_pidns_uts): it sets a hostname and
 * domain name, forks a child with a grandchild and a zombie.  After
 * restore (into new namespaces) it is PID 1 again, its children have their
 * PIDs, the names are back, and the zombie still has its status.
 */
#include "zdtmtst.h"

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char host[40], domain[64];

static void leaf(void *arg)
{
	pid_t pid = getpid(), ppid = getppid();

	(void)arg;
	test_waitsig();
	if (getpid() != pid || getppid() != ppid)
		fail("pid/ppid %d/%d, was %d/%d", getpid(), getppid(), pid, ppid);
}

static void middle(void *arg)
{
	pid_t kid, pid = getpid();

	(void)arg;
	kid = test_fork(leaf, NULL);
	test_waitsig();
	if (getpid() != pid || getppid() != 1)
		fail("middle: pid/ppid %d/%d, was %d/1", getpid(), getppid(), pid);
	test_finish_child(kid);
}

int main(int argc, char **argv)
{
	char h[65], d[65];
	pid_t mid, z;
	int status;

	test_init(argc, argv);
	if (getpid() != 1)
		fail("not the init of a pid namespace (PID %d)", getpid());
	snprintf(host, sizeof(host), "zdtm-%llx", (unsigned long long)test_mix64((uint64_t)time(NULL)));
	snprintf(domain, sizeof(domain), "dom-%s", host);
	if (sethostname(host, strlen(host)) || setdomainname(domain, strlen(domain)))
		fail("sethostname: %m");
	mid = test_fork(middle, NULL);
	z = fork();
	if (z == 0)
		_exit(5);
	usleep(200000);
	test_daemon();
	test_waitsig();
	if (getpid() != 1)
		fail("PID %d after restore, not 1", getpid());
	if (gethostname(h, sizeof(h)) || strcmp(h, host) || getdomainname(d, sizeof(d)) || strcmp(d, domain))
		fail("hostname/domain %s/%s, expected %s/%s", h, d, host, domain);
	if (waitpid(z, &status, WNOHANG) != z || status != 5 << 8)
		fail("zombie %d: %m, status 0x%x", z, status);
	test_finish_child(mid);
	pass();
}
