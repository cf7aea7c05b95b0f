/*
 * tree_sessions: sessions and process groups across a tree.
 *   S   setsid(): a session of its own, with children
 *       S1 (stays in S's group), S2 (a group of its own in S's session)
 *       and S3 (joins its sibling S2's group);
 *   G   a group of its own in the root's session, with G1 in G's group;
 *   R   stays in the root's group.
 * After restore every process finds its session and group unchanged.
 */
#include "zdtmtst.h"

#include <unistd.h>

enum { PLAIN, NEW_SESSION, NEW_GROUP, JOIN_S2 };

static pid_t s2;

struct ids {
	pid_t sid, pgid;
};

static void take(struct ids *i)
{
	i->sid = getsid(0);
	i->pgid = getpgid(0);
}

static void check(const struct ids *i)
{
	if (getsid(0) != i->sid || getpgid(0) != i->pgid)
		fail("process %d: sid/pgid %d/%d, was %d/%d", getpid(), getsid(0), getpgid(0), i->sid, i->pgid);
}

static void leaf(void *arg)
{
	struct ids i;
	int how = (int)(long)arg;

	if (how == NEW_GROUP && setpgid(0, 0) < 0)
		fail("setpgid: %m");
	if (how == JOIN_S2 && setpgid(0, s2) < 0)
		fail("setpgid(%d): %m", s2);
	take(&i);
	test_waitsig();
	check(&i);
}

static void session_leader(void *arg)
{
	struct ids i;
	pid_t kids[3];

	(void)arg;
	if (setsid() < 0)
		fail("setsid: %m");
	take(&i);
	kids[0] = test_fork(leaf, (void *)PLAIN);
	s2 = kids[1] = test_fork(leaf, (void *)NEW_GROUP);
	while (getpgid(s2) != s2)
		usleep(1000);
	kids[2] = test_fork(leaf, (void *)JOIN_S2);
	test_waitsig();
	check(&i);
	for (int k = 0; k < 3; k++)
		test_finish_child(kids[k]);
}

static void group_leader(void *arg)
{
	struct ids i;
	pid_t kid;

	(void)arg;
	if (setpgid(0, 0) < 0)
		fail("setpgid: %m");
	take(&i);
	kid = test_fork(leaf, (void *)PLAIN);
	test_waitsig();
	check(&i);
	test_finish_child(kid);
}

int main(int argc, char **argv)
{
	struct ids i;
	pid_t s, g, r;

	test_init(argc, argv);
	take(&i);
	s = test_fork(session_leader, NULL);
	g = test_fork(group_leader, NULL);
	r = test_fork(leaf, (void *)PLAIN);
	usleep(200000);
	if (getsid(s) != s || getpgid(g) != g || getpgid(r) != i.pgid)
		fail("setup: sid(S)=%d pgid(G)=%d pgid(R)=%d", getsid(s), getpgid(g), getpgid(r));
	test_daemon();
	test_waitsig();
	check(&i);
	test_finish_child(s);
	test_finish_child(g);
	test_finish_child(r);
	pass();
}
