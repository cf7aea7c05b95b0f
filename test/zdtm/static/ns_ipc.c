/*
 * ns_ipc: SysV IPC objects in the tree's own ipc namespace.  Run as the
 * init of new pid and ipc namespaces (unshare -p -i -f, see
 * test_pidns_uts): it changes kernel.msgmnb, creates and removes a few
 * objects (so that ids are not the first ones), then creates a shared
 * memory segment with a pattern and another owner, a semaphore set with
 * values, and a message queue holding three messages.  A second queue is
 * bigger than kernel.msgmnb (made while msgmnb was raised, as root in a
 * container without CAP_SYS_RESOURCE must) and holds one message of
 * 1.5 MB, more than 1 MiB.  After restore every object has its id, key,
 * owner, mode, size and contents; the messages come out in order.
 */
#include "zdtmtst.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#define SHM_SZ (1 << 20)
#define BIG_MSG 1500000
#define BIG_QUEUE 2000000

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct msgbuf_ {
	long mtype;
	char text[256];
};

static const char *msgs[] = {"first", "second message", "3"};

static void write_sysctl(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		fail("%s: %m", path);
	close(fd);
}

static long read_sysctl(const char *path)
{
	char buf[64];

	if (test_read_file(path, buf, sizeof(buf)) < 0)
		fail("read %s: %m", path);
	return atol(buf);
}

int main(int argc, char **argv)
{
	int shm, sem, msq, big, i;
	struct msqid_ds qds;
	struct {
		long mtype;
		char text[BIG_MSG + 1];
	} *bm = malloc(sizeof(*bm));
	unsigned short vals[3] = {1, 2, 3}, got[3];
	struct shmid_ds sds;
	struct msgbuf_ m;
	union semun arg;
	void *a;

	test_init(argc, argv);
	if (getpid() != 1)
		fail("not the init of a pid namespace (PID %d)", getpid());
	if (!bm)
		fail("malloc");
	for (i = 0; i < 3; i++) {
		shmctl(shmget(IPC_PRIVATE, 4096, 0600), IPC_RMID, NULL);
		semctl(semget(IPC_PRIVATE, 1, 0600), 0, IPC_RMID);
		msgctl(msgget(IPC_PRIVATE, 0600), IPC_RMID, NULL);
	}
	write_sysctl("/proc/sys/kernel/msgmax", "1600000");
	write_sysctl("/proc/sys/kernel/msgmnb", "2000000");
	big = msgget(0x5a1b, IPC_CREAT | 0600);
	if (big < 0)
		fail("msgget big: %m");
	bm->mtype = 7;
	test_fill(bm->text, BIG_MSG, 0x5a1b);
	if (msgsnd(big, bm, BIG_MSG, 0) < 0)
		fail("msgsnd big: %m");
	write_sysctl("/proc/sys/kernel/msgmnb", "32123");
	shm = shmget(0x5a17, SHM_SZ, IPC_CREAT | 0640);
	sem = semget(0x5a18, 3, IPC_CREAT | 0600);
	msq = msgget(0x5a19, IPC_CREAT | 0660);
	if (shm < 0 || sem < 0 || msq < 0)
		fail("create: %m");
	a = shmat(shm, NULL, 0);
	if (a == (void *)-1)
		fail("shmat: %m");
	test_fill(a, SHM_SZ, 0x5a17);
	shmdt(a);
	if (shmctl(shm, IPC_STAT, &sds) < 0)
		fail("IPC_STAT: %m");
	sds.shm_perm.uid = 1000;
	sds.shm_perm.gid = 1001;
	if (shmctl(shm, IPC_SET, &sds) < 0)
		fail("IPC_SET: %m");
	arg.array = vals;
	if (semctl(sem, 0, SETALL, arg) < 0)
		fail("SETALL: %m");
	for (i = 0; i < 3; i++) {
		m.mtype = 10 + i;
		strcpy(m.text, msgs[i]);
		if (msgsnd(msq, &m, strlen(msgs[i]) + 1, 0) < 0)
			fail("msgsnd: %m");
	}
	test_daemon();
	test_waitsig();

	if (read_sysctl("/proc/sys/kernel/msgmnb") != 32123)
		fail("kernel.msgmnb is %ld", read_sysctl("/proc/sys/kernel/msgmnb"));
	if (shmget(0x5a17, 0, 0) != shm || semget(0x5a18, 0, 0) != sem || msgget(0x5a19, 0) != msq)
		fail("ids changed: shm %d/%d sem %d/%d msg %d/%d", shmget(0x5a17, 0, 0), shm, semget(0x5a18, 0, 0),
		     sem, msgget(0x5a19, 0), msq);
	if (shmctl(shm, IPC_STAT, &sds) < 0 || sds.shm_perm.uid != 1000 || sds.shm_perm.gid != 1001 ||
	    (sds.shm_perm.mode & 0777) != 0640 || sds.shm_segsz != SHM_SZ)
		fail("shm %d: uid %d gid %d mode %o size %zu", shm, sds.shm_perm.uid, sds.shm_perm.gid,
		     sds.shm_perm.mode, (size_t)sds.shm_segsz);
	a = shmat(shm, NULL, SHM_RDONLY);
	if (a == (void *)-1 || test_check(a, SHM_SZ, 0x5a17) != TEST_NO_MISMATCH)
		fail("shm contents differ");
	arg.array = got;
	if (semctl(sem, 0, GETALL, arg) < 0 || memcmp(got, vals, sizeof(vals)))
		fail("semaphore values %d %d %d", got[0], got[1], got[2]);
	for (i = 0; i < 3; i++) {
		ssize_t n = msgrcv(msq, &m, sizeof(m.text), 0, IPC_NOWAIT);

		if (n != (ssize_t)strlen(msgs[i]) + 1 || m.mtype != 10 + i || strcmp(m.text, msgs[i]))
			fail("message %d: %zd bytes, type %ld, '%s'", i, n, m.mtype, n > 0 ? m.text : "");
	}
	if (msgrcv(msq, &m, sizeof(m.text), 0, IPC_NOWAIT) >= 0)
		fail("an extra message");
	if (msgget(0x5a1b, 0) != big || msgctl(big, IPC_STAT, &qds) < 0 || qds.msg_qbytes != BIG_QUEUE ||
	    qds.msg_qnum != 1)
		fail("big queue %d/%d: %lu bytes, %lu messages", msgget(0x5a1b, 0), big, (unsigned long)qds.msg_qbytes,
		     (unsigned long)qds.msg_qnum);
	memset(bm, 0, sizeof(*bm));
	if (msgrcv(big, bm, sizeof(bm->text), 0, IPC_NOWAIT) != BIG_MSG || bm->mtype != 7 ||
	    test_check(bm->text, BIG_MSG, 0x5a1b) != TEST_NO_MISMATCH)
		fail("the big message came back damaged");
	if (read_sysctl("/proc/sys/kernel/msgmax") != 1600000)
		fail("kernel.msgmax is %ld", read_sysctl("/proc/sys/kernel/msgmax"));
	pass();
}
