/*
 * ns_sysv_attach: SysV shared memory attached in the tree's memory, in its
 * own ipc namespace (run by test_namespaces under unshare -p -i -f).  The
 * root attaches a 1 MiB segment read-write and again read-only, fills it,
 * and forks a child that inherits both attaches.  After restore both
 * processes see the contents through both attaches, a write of the child is
 * seen by the root (one segment), the read-only attach is still read-only,
 * and the segment counts its 4 attaches.
 */
#include "zdtmtst.h"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#define SZ (1 << 20)

static unsigned char *rw, *ro;

static void check_maps(void)
{
	struct test_vma vmas[256];
	int n = test_read_maps(vmas, 256, 0);
	const struct test_vma *a = test_find_vma(vmas, n, (unsigned long)rw);
	const struct test_vma *b = test_find_vma(vmas, n, (unsigned long)ro);

	if (!a || !b || strcmp(a->perms, "rw-s") || strcmp(b->perms, "r--s") || strncmp(a->path, "/SYSV", 5))
		fail("attaches are %s %s (%s)", a ? a->perms : "-", b ? b->perms : "-", a ? a->path : "-");
}

static void child(void *arg)
{
	(void)arg;
	test_waitsig();
	check_maps();
	if (test_check(ro, SZ, 0x5f5) != TEST_NO_MISMATCH)
		fail("the child sees other contents");
	rw[100] = 0xee;
}

int main(int argc, char **argv)
{
	struct shmid_ds ds;
	int id;
	pid_t c;

	test_init(argc, argv);
	if (getpid() != 1)
		fail("not the init of a pid namespace (PID %d)", getpid());
	id = TEST_SYS(shmget(IPC_PRIVATE, SZ, 0600));
	rw = shmat(id, NULL, 0);
	ro = shmat(id, NULL, SHM_RDONLY);
	if (rw == (void *)-1 || ro == (void *)-1)
		fail("shmat: %m");
	test_fill(rw, SZ, 0x5f5);
	c = test_fork(child, NULL);
	test_daemon();
	test_waitsig();

	check_maps();
	if (test_check(rw, SZ, 0x5f5) != TEST_NO_MISMATCH || test_check(ro, SZ, 0x5f5) != TEST_NO_MISMATCH)
		fail("contents differ after restore");
	if (shmctl(id, IPC_STAT, &ds) || ds.shm_nattch != 4)
		fail("segment %d: %lu attaches, expected 4", id, (unsigned long)ds.shm_nattch);
	test_finish_child(c);
	if (ro[100] != 0xee)
		fail("the child's write is not in the segment");
	pass();
}
