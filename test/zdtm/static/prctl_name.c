/*
 * prctl_name: the process name (PR_SET_NAME) of the main thread and a
 * different name of a second thread survive; checked with PR_GET_NAME,
 * pthread_getname_np and /proc/self/task/TID/comm.
 */
#include "zdtmtst.h"

#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>

#define MAIN_NAME "zdtm-comm.main"
#define THR_NAME "zdtm:thread#2"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready, go;
static pid_t thr_tid;

static void *worker(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, THR_NAME, 0, 0, 0);
	pthread_mutex_lock(&mu);
	thr_tid = test_gettid();
	ready = 1;
	pthread_cond_broadcast(&cv);
	while (!go)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void check_comm(pid_t tid, const char *want)
{
	char path[64], buf[64];

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	if (test_read_file(path, buf, sizeof(buf)) < 0)
		fail("read %s: %m", path);
	buf[strcspn(buf, "\n")] = 0;
	if (strcmp(buf, want))
		fail("%s is '%s', expected '%s'", path, buf, want);
}

int main(int argc, char **argv)
{
	char name[32] = { 0 };
	pthread_t t;

	test_init(argc, argv);
	if (prctl(PR_SET_NAME, MAIN_NAME, 0, 0, 0))
		fail("PR_SET_NAME: %m");
	if (pthread_create(&t, NULL, worker, NULL))
		fail("pthread_create");
	pthread_mutex_lock(&mu);
	while (!ready)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);

	test_daemon();
	test_waitsig();

	if (prctl(PR_GET_NAME, name, 0, 0, 0))
		fail("PR_GET_NAME: %m");
	if (strcmp(name, MAIN_NAME))
		fail("PR_GET_NAME: '%s'", name);
	check_comm(test_gettid(), MAIN_NAME);
	if (test_read_file("/proc/self/comm", name, sizeof(name)) < 0)
		fail("read /proc/self/comm: %m");
	if (strcmp(name, MAIN_NAME "\n"))
		fail("/proc/self/comm: '%s'", name);
	check_comm(thr_tid, THR_NAME);
	if (pthread_getname_np(t, name, sizeof(name)) || strcmp(name, THR_NAME))
		fail("pthread_getname_np: '%s'", name);
	pthread_mutex_lock(&mu);
	go = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	pthread_join(t, NULL);
	pass();
}
