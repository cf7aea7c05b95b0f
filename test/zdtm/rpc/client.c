/*
 * A small libcriu client for the RPC tests (test_rpc.py); see also
 * Documentation/rpc.md.  Built at test time:  gcc -o client client.c -lcriu
 *
 *   client (-s SOCKET | -b CRIU) [options] dump PID DIR
 *   client (-s SOCKET | -b CRIU) [options] restore DIR
 *   client (-s SOCKET | -b CRIU) [options] cr PID DIR
 *   client (-s SOCKET | -b CRIU) version | check
 *
 *   -s SOCKET  talk to `criu service --address SOCKET`
 *              (criu_set_service_address)
 *   -b CRIU    spawn `CRIU swrk FD` per request (criu_set_service_binary)
 *   -c         restore with criu_restore_child(): swrk with rst_sibling, so
 *              the restored task is our child; we then wait for it and
 *              print "exited STATUS"
 *   -l N       log_level;  -L NAME  log_file (in DIR)
 *   -R         leave_running for dump
 *   -n         notify callback: prints "notify SCRIPT PID" for each one
 *   -f SCRIPT  ... and answers that one with a failure
 *
 * "cr" dumps PID, waits until the dumped task is gone (its parent must
 * reap it) and restores it.  Every step prints one line on stdout:
 *   dumped PID / restored PID PPID ME / version N / check ok
 * Errors go to stderr; the exit code is 1 then.
 */
#define _GNU_SOURCE
#include <criu/criu.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *fail_script;

static void die(const char *what, int ret)
{
	fprintf(stderr, "error: %s failed: %d (%s)\n", what, ret, strerror(ret < 0 ? -ret : ret));
	exit(1);
}

static int notify_cb(char *action, criu_notify_arg_t na)
{
	printf("notify %s %d\n", action, criu_notify_pid(na));
	fflush(stdout);
	if (fail_script && !strcmp(action, fail_script))
		return -1;
	return 0;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_DIRECTORY | O_RDONLY);

	if (fd < 0) {
		fprintf(stderr, "error: can't open %s: %m\n", path);
		exit(1);
	}
	return fd;
}

static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int fd, n, ppid = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %d", &ppid) != 1)
		return -1;
	return ppid;
}

/* The dumped task is killed; its parent reaps it.  Wait for the pid to be free. */
static void wait_gone(pid_t pid)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	int i;

	for (i = 0; i < 2000; i++) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "error: dumped PID %d is still there after 10s\n", pid);
	exit(1);
}

static void do_dump(pid_t pid, const char *dir, int leave_running)
{
	int fd = open_dir(dir), ret;

	criu_set_images_dir_fd(fd);
	criu_set_pid(pid);
	criu_set_leave_running(leave_running);
	ret = criu_dump();
	if (ret < 0)
		die("criu_dump", ret);
	close(fd);
	printf("dumped %d\n", pid);
	fflush(stdout);
}

static void do_restore(const char *dir, int child)
{
	int fd = open_dir(dir), status;
	pid_t pid;

	criu_set_images_dir_fd(fd);
	criu_set_pid(0);
	criu_set_leave_running(0);
	pid = child ? criu_restore_child() : criu_restore();
	if (pid <= 0)
		die(child ? "criu_restore_child" : "criu_restore", pid);
	close(fd);
	printf("restored %d %d %d\n", pid, parent_of(pid), getpid());
	fflush(stdout);
	if (!child)
		return;
	/* our child: the test sends it SIGTERM, we report how it ended */
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid", -errno);
	printf("exited %d\n", status);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *sk = NULL, *bin = NULL, *log_file = NULL, *cmd;
	int opt, log_level = -1, leave_running = 0, child = 0, notify = 0, ret;

	while ((opt = getopt(argc, argv, "s:b:cl:L:Rnf:")) != -1) {
		switch (opt) {
		case 's': sk = optarg; break;
		case 'b': bin = optarg; break;
		case 'c': child = 1; break;
		case 'l': log_level = atoi(optarg); break;
		case 'L': log_file = optarg; break;
		case 'R': leave_running = 1; break;
		case 'n': notify = 1; break;
		case 'f': notify = 1; fail_script = optarg; break;
		default: goto usage;
		}
	}
	if (optind >= argc || !!sk == !!bin)
		goto usage;
	cmd = argv[optind++];

	if (criu_init_opts() < 0)
		die("criu_init_opts", -ENOMEM);
	ret = sk ? criu_set_service_address(sk) : criu_set_service_binary(bin);
	if (ret < 0)
		die("setting the service", ret);
	if (log_level >= 0)
		criu_set_log_level(log_level);
	if (log_file && criu_set_log_file(log_file) < 0)
		die("criu_set_log_file", -ENOMEM);
	if (notify)
		criu_set_notify_cb(notify_cb);

	if (!strcmp(cmd, "dump") && argc - optind == 2) {
		do_dump(atoi(argv[optind]), argv[optind + 1], leave_running);
	} else if (!strcmp(cmd, "restore") && argc - optind == 1) {
		do_restore(argv[optind], child);
	} else if (!strcmp(cmd, "cr") && argc - optind == 2) {
		pid_t pid = atoi(argv[optind]);

		do_dump(pid, argv[optind + 1], leave_running);
		wait_gone(pid);
		do_restore(argv[optind + 1], child);
	} else if (!strcmp(cmd, "version") && argc == optind) {
		ret = criu_get_version();
		if (ret <= 0)
			die("criu_get_version", ret);
		printf("version %d\n", ret);
	} else if (!strcmp(cmd, "check") && argc == optind) {
		ret = criu_check();
		if (ret < 0)
			die("criu_check", ret);
		printf("check ok\n");
	} else {
		goto usage;
	}
	return 0;
usage:
	fprintf(stderr, "usage: %s (-s SOCKET | -b CRIU) [-c] [-l N] [-L LOG] [-R] [-n] [-f SCRIPT] "
			"dump PID DIR | restore DIR | cr PID DIR | version | check\n", argv[0]);
	return 2;
}
