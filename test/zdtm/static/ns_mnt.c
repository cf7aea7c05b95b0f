/*
 * ns_mnt: a container's private root (run by test_mount_namespace as PID 1
 * under unshare -p -m -f, maybe -n -u -i too, in its test directory D).  It binds the host's
 * root filesystem (not recursively) as its new root, pivots into it, and
 * mounts there, as a runtime would:
 *   /proc              proc of its own pid namespace
 *   /dev               tmpfs with the device nodes its stdio needs (mknod)
 *   /dev/mqueue        mqueue (of its ipc namespace)
 *   /sys               sysfs, read-only (of its net namespace)
 *   D/m/tmp            tmpfs (size=4m, mode=0711) with files, modes,
 *                      owners, a symlink, a hard link
 *   D/m/bind           a read-only, nosuid bind of D/m/tmp/sub
 *   D/m/ovl            overlay: lower D/m/lower, upper and work on the tmpfs
 *   D/m/ext            a bind of a host directory (named in D/ext_src),
 *                      dumped as an external mount
 *   D/m/hosts          a bind of the host file hello in that directory (as
 *                      a runtime binds /etc/resolv.conf), external too
 *   D/m/tmp/sub/bound.txt  a bind of the file D/m/tmp/data.txt
 *   D/m/tmp/covered    a tmpfs over a directory of the first tmpfs that
 *                      holds under.txt: the file stays there, hidden
 *   D/m/plain          a tmpfs with what criu extracts itself (no hard
 *                      link): a 150-character name, a setuid file of
 *                      another owner, a symlink, a FIFO, a 0700 directory
 *                      with a file, modification times
 *   D/m/pa             a shared tmpfs; D/m/pb a bind of its directory sub
 *                      (a peer), D/m/ps a bind of it made a slave: after
 *                      restore pa and pb are peers of one group, ps its
 *                      slave, and a mount under pa/sub shows in pb and ps,
 *                      one under ps nowhere else
 * with files open on the tmpfs and the overlay and its cwd in the overlay.
 * After restore (into a new mount namespace) all of it must be there with
 * its contents, flags and sizes, proc must be its own pid namespace's, and
 * writes must go where they went before.
 */
#include "zdtmtst.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>

#define MQUEUE_FS_MAGIC 0x19800202 /* ipc/mqueue.c */
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char dir[4096];

static const char *at(const char *rel)
{
	static char bufs[8][sizeof(dir) + 64];
	static int n;
	char *b = bufs[n++ % 8];

	snprintf(b, sizeof(bufs[0]), "%s/%.60s", dir, rel);
	return b;
}

static void put(const char *path, const char *text)
{
	int fd = TEST_SYS(open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644));

	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fail("short write to %s", path);
	close(fd);
}

static void expect(const char *path, const char *text)
{
	char buf[256];
	ssize_t n = test_read_file(path, buf, sizeof(buf));

	if (n < 0)
		fail("%s: %m", path);
	if (strcmp(buf, text))
		fail("%s holds '%s', not '%s'", path, buf, text);
}

static void pivot(void)
{
	char root[sizeof(dir) + 64], ext[1024];

	if (test_read_file(at("ext_src"), ext, sizeof(ext)) <= 0)
		fail("no ext_src");
	for (const char *d = "m\0m/tmp\0m/lower\0m/ovl\0m/bind\0m/ext\0m/peek\0m/plain\0m/pa\0m/pb\0m/ps\0newroot\0"; *d;
	     d += strlen(d) + 1)
		if (mkdir(at(d), 0755) && errno != EEXIST)
			fail("mkdir %s: %m", d);
	snprintf(root, sizeof(root), "%s", at("newroot")); /* (at()'s buffers are reused) */
	put(at("m/lower/lower.txt"), "lower");
	put(at("m/hosts"), "");
	TEST_SYS(mount("/", root, NULL, MS_BIND, NULL));
	char target[8192], src[2048];
	snprintf(target, sizeof(target), "%s%s", root, at("m/ext"));
	TEST_SYS(mount(ext, target, NULL, MS_BIND, NULL));
	snprintf(target, sizeof(target), "%s%s", root, at("m/hosts"));
	snprintf(src, sizeof(src), "%s/hello", ext);
	TEST_SYS(mount(src, target, NULL, MS_BIND, NULL));
	TEST_SYS(chdir(root));
	TEST_SYS(syscall(SYS_pivot_root, ".", "."));
	TEST_SYS(umount2(".", MNT_DETACH));
	TEST_SYS(chdir("/"));
}

static char long_name[160];

static void setup_plain(void)
{
	struct timespec ts[2] = {{0, UTIME_OMIT}, {981173106, 123456789}};

	memset(long_name, 'L', 150);
	TEST_SYS(mount("zdtm-plain", at("m/plain"), "tmpfs", 0, "size=64k,mode=0750"));
	TEST_SYS(chdir(at("m/plain")));
	put(long_name, "long");
	put("suid", "suid");
	TEST_SYS(chown("suid", 1000, 1001));
	TEST_SYS(chmod("suid", 04750));
	TEST_SYS(symlink("../plain/suid", "link"));
	TEST_SYS(mkfifo("fifo", 0640));
	TEST_SYS(mkdir("private", 0700));
	put("private/inner", "inner");
	TEST_SYS(utimensat(AT_FDCWD, "private/inner", ts, 0));
	TEST_SYS(utimensat(AT_FDCWD, "private", ts, 0));
	TEST_SYS(chdir("/"));
}

static void check_plain(void)
{
	struct stat st;
	char buf[64];

	TEST_SYS(chdir(at("m/plain")));
	expect(long_name, "long");
	expect("private/inner", "inner");
	TEST_SYS(stat("suid", &st));
	if (st.st_uid != 1000 || st.st_gid != 1001 || (st.st_mode & 07777) != 04750)
		fail("m/plain/suid: %d:%d mode %o", st.st_uid, st.st_gid, st.st_mode & 07777);
	if (readlink("link", buf, sizeof(buf)) != 13 || memcmp(buf, "../plain/suid", 13))
		fail("m/plain/link is not the symlink it was");
	TEST_SYS(lstat("fifo", &st));
	if (!S_ISFIFO(st.st_mode) || (st.st_mode & 07777) != 0640)
		fail("m/plain/fifo: mode %o", st.st_mode);
	TEST_SYS(stat("private", &st));
	if ((st.st_mode & 07777) != 0700 || st.st_mtim.tv_sec != 981173106 || st.st_mtim.tv_nsec != 123456789)
		fail("m/plain/private: mode %o mtime %ld.%09ld", st.st_mode & 07777, (long)st.st_mtim.tv_sec,
		     st.st_mtim.tv_nsec);
	TEST_SYS(stat("private/inner", &st));
	if (st.st_mtim.tv_sec != 981173106 || st.st_mtim.tv_nsec != 123456789)
		fail("m/plain/private/inner has another mtime");
	TEST_SYS(stat(".", &st));
	if ((st.st_mode & 07777) != 0750)
		fail("m/plain has mode %o", st.st_mode & 07777);
	TEST_SYS(chdir("/"));
}

static void setup_propagation(void)
{
	TEST_SYS(mount("zdtm-prop", at("m/pa"), "tmpfs", 0, "size=64k"));
	TEST_SYS(mkdir(at("m/pa/sub"), 0755));
	TEST_SYS(mkdir(at("m/pa/slave"), 0755));
	TEST_SYS(mount(NULL, at("m/pa"), NULL, MS_SHARED, NULL));
	TEST_SYS(mount(at("m/pa/sub"), at("m/pb"), NULL, MS_BIND, NULL));
	TEST_SYS(mount(at("m/pa"), at("m/ps"), NULL, MS_BIND, NULL));
	TEST_SYS(mount(NULL, at("m/ps"), NULL, MS_SLAVE, NULL));
}

/* The shared:N and master:N of the mount at path (-1: no such mount). */
static void propagation_of(const char *path, long *shared, long *master)
{
	char line[8192];
	FILE *f = fopen("/proc/self/mountinfo", "r");

	if (!f)
		fail("/proc/self/mountinfo: %m");
	*shared = *master = -1;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096], *p;

		if (sscanf(line, "%*d %*d %*s %*s %4095s", mp) != 1 || strcmp(mp, path))
			continue;
		*shared = *master = 0;
		p = strstr(line, " shared:");
		if (p && p < strstr(line, " - "))
			*shared = atol(p + 8);
		p = strstr(line, " master:");
		if (p && p < strstr(line, " - "))
			*master = atol(p + 8);
	}
	fclose(f);
}

static void check_propagation(void)
{
	long as, am, bs, bm, ss, sm, x, y;

	propagation_of(at("m/pa"), &as, &am);
	propagation_of(at("m/pb"), &bs, &bm);
	propagation_of(at("m/ps"), &ss, &sm);
	if (as <= 0 || bs != as || am || bm || ss || sm != as)
		fail("propagation: pa shared:%ld master:%ld, pb %ld/%ld, ps %ld/%ld", as, am, bs, bm, ss, sm);
	TEST_SYS(mkdir(at("m/pa/sub/probe"), 0755));
	TEST_SYS(mount("zdtm-probe", at("m/pa/sub/probe"), "tmpfs", 0, "size=16k"));
	propagation_of(at("m/pb/probe"), &x, &y);
	if (x < 0)
		fail("a mount under pa/sub does not show in its peer pb");
	propagation_of(at("m/ps/sub/probe"), &x, &y);
	if (x < 0)
		fail("a mount under pa/sub does not show in its slave ps");
	TEST_SYS(umount(at("m/pa/sub/probe")));
	TEST_SYS(rmdir(at("m/pa/sub/probe")));
	TEST_SYS(mount("zdtm-probe", at("m/ps/slave"), "tmpfs", 0, "size=16k"));
	propagation_of(at("m/pa/slave"), &x, &y);
	if (x >= 0)
		fail("a mount under the slave ps shows in its master pa");
	TEST_SYS(umount(at("m/ps/slave")));
}

static void setup(void)
{
	TEST_SYS(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	TEST_SYS(mount("zdtm-dev", "/dev", "tmpfs", MS_NOSUID, "mode=755,size=64k"));
	TEST_SYS(mknod("/dev/null", S_IFCHR | 0666, makedev(1, 3)));
	TEST_SYS(mknod("/dev/zero", S_IFCHR | 0666, makedev(1, 5)));
	TEST_SYS(chmod("/dev/null", 0666));
	TEST_SYS(chmod("/dev/zero", 0666));
	TEST_SYS(mkdir("/dev/mqueue", 0755));
	TEST_SYS(mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	TEST_SYS(mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	TEST_SYS(mount("zdtm-tmp", at("m/tmp"), "tmpfs", 0, "size=4m,mode=0711"));
	for (const char *d = "m/tmp/sub\0m/tmp/upper\0m/tmp/work\0"; *d; d += strlen(d) + 1)
		TEST_SYS(mkdir(at(d), 0755));
	put(at("m/tmp/data.txt"), "tmpfs data");
	put(at("m/tmp/sub/inner.txt"), "inner");
	put(at("m/tmp/owned.txt"), "owned");
	TEST_SYS(chown(at("m/tmp/owned.txt"), 1000, 1001));
	TEST_SYS(chmod(at("m/tmp/owned.txt"), 0640));
	TEST_SYS(chmod(at("m/tmp/sub"), 0700));
	TEST_SYS(symlink("sub/inner.txt", at("m/tmp/link")));
	TEST_SYS(link(at("m/tmp/data.txt"), at("m/tmp/hard.txt")));
	put(at("m/tmp/sub/bound.txt"), "");
	TEST_SYS(mount(at("m/tmp/data.txt"), at("m/tmp/sub/bound.txt"), NULL, MS_BIND, NULL));
	TEST_SYS(mkdir(at("m/tmp/covered"), 0755));
	put(at("m/tmp/covered/under.txt"), "under");
	TEST_SYS(mount("zdtm-over", at("m/tmp/covered"), "tmpfs", 0, "size=64k"));
	put(at("m/tmp/covered/over.txt"), "over");
	TEST_SYS(mount(at("m/tmp/sub"), at("m/bind"), NULL, MS_BIND, NULL));
	setup_plain();
	setup_propagation();
	TEST_SYS(mount(NULL, at("m/bind"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL));
	char opts[16384];
	snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", at("m/lower"), at("m/tmp/upper"),
		 at("m/tmp/work"));
	TEST_SYS(mount("zdtm-ovl", at("m/ovl"), "overlay", 0, opts));
	put(at("m/ovl/new.txt"), "upper data");
}

static int own_net;

static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		fail("opendir %s: %m", path);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void check_mounts(void)
{
	struct statfs sf;
	struct statvfs sv;
	struct stat st;
	char buf[64];

	TEST_SYS(statfs(at("m/tmp"), &sf));
	if (sf.f_type != TMPFS_MAGIC || (unsigned long long)sf.f_blocks * sf.f_bsize != 4 << 20)
		fail("m/tmp: type %#lx, %llu bytes", (long)sf.f_type, (unsigned long long)sf.f_blocks * sf.f_bsize);
	TEST_SYS(stat(at("m/tmp"), &st));
	if ((st.st_mode & 07777) != 0711)
		fail("m/tmp has mode %o", st.st_mode & 07777);
	TEST_SYS(statvfs(at("m/bind"), &sv));
	if ((sv.f_flag & (ST_RDONLY | ST_NOSUID)) != (ST_RDONLY | ST_NOSUID))
		fail("m/bind has flags %#lx, not ro,nosuid", sv.f_flag);
	TEST_SYS(statvfs(at("m/tmp"), &sv));
	if (sv.f_flag & ST_RDONLY)
		fail("m/tmp is read-only");
	TEST_SYS(statfs(at("m/ovl"), &sf));
	if (sf.f_type != OVERLAYFS_SUPER_MAGIC)
		fail("m/ovl is not an overlay (%#lx)", (long)sf.f_type);
	if (readlink("/proc/self", buf, sizeof(buf)) != 1 || buf[0] != '1')
		fail("/proc is not of the test's pid namespace");
	TEST_SYS(statfs("/dev/mqueue", &sf));
	if (sf.f_type != MQUEUE_FS_MAGIC)
		fail("/dev/mqueue is not an mqueue (%#lx)", (long)sf.f_type);
	TEST_SYS(statfs("/sys", &sf));
	TEST_SYS(statvfs("/sys", &sv));
	if (sf.f_type != SYSFS_MAGIC || !(sv.f_flag & ST_RDONLY))
		fail("/sys is not a read-only sysfs (%#lx, flags %#lx)", (long)sf.f_type, sv.f_flag);
	/* its net namespace's devices: only lo when it has one of its own */
	if (own_net && (access("/sys/class/net/lo", F_OK) || count_entries("/sys/class/net") != 1))
		fail("/sys is not of the test's net namespace");
	TEST_SYS(stat("/dev/null", &st));
	if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3) || (st.st_mode & 0777) != 0666)
		fail("/dev/null is not the null device (mode %o)", st.st_mode);
}

static void check_files(int tmp_fd, int ovl_fd)
{
	struct stat st, st2;
	char buf[64];
	ssize_t n;

	if ((n = read(tmp_fd, buf, sizeof(buf))) != 4 || memcmp(buf, "data", 4))
		fail("the tmpfs fd read %zd bytes at its offset", n);
	if ((n = read(ovl_fd, buf, sizeof(buf))) != 5 || memcmp(buf, "lower", 5))
		fail("the overlay fd read %zd bytes", n);
	expect(at("m/tmp/data.txt"), "tmpfs data");
	expect(at("m/tmp/link"), "inner");
	expect(at("m/bind/inner.txt"), "inner");
	expect(at("m/ovl/lower.txt"), "lower");
	expect(at("m/ovl/new.txt"), "upper data");
	expect(at("m/tmp/upper/new.txt"), "upper data");
	TEST_SYS(stat(at("m/tmp/owned.txt"), &st));
	if (st.st_uid != 1000 || st.st_gid != 1001 || (st.st_mode & 07777) != 0640)
		fail("owned.txt: %d:%d mode %o", st.st_uid, st.st_gid, st.st_mode & 07777);
	TEST_SYS(stat(at("m/tmp/sub"), &st));
	if ((st.st_mode & 07777) != 0700)
		fail("sub has mode %o", st.st_mode & 07777);
	TEST_SYS(stat(at("m/tmp/data.txt"), &st));
	TEST_SYS(stat(at("m/tmp/hard.txt"), &st2));
	if (st.st_ino != st2.st_ino || st.st_nlink != 2)
		fail("hard.txt is no longer a hard link of data.txt");
	if (open(at("m/bind/new"), O_WRONLY | O_CREAT, 0644) >= 0 || errno != EROFS)
		fail("m/bind is writable");
	expect(at("m/ext/hello"), "from the host");
	expect(at("m/hosts"), "from the host");
	expect(at("m/tmp/sub/bound.txt"), "tmpfs data");
	expect(at("m/tmp/covered/over.txt"), "over");
	if (!access(at("m/tmp/covered/under.txt"), F_OK))
		fail("the tmpfs over m/tmp/covered is gone");
	/* the first tmpfs alone (a bind without its submounts): what is under */
	TEST_SYS(mount(at("m/tmp"), at("m/peek"), NULL, MS_BIND, NULL));
	expect(at("m/peek/covered/under.txt"), "under");
	if (!access(at("m/peek/covered/over.txt"), F_OK))
		fail("over.txt is in the first tmpfs");
	expect(at("m/peek/sub/bound.txt"), "");
	TEST_SYS(umount(at("m/peek")));
	if (getcwd(buf, sizeof(buf)) == NULL || strcmp(buf, at("m/ovl")))
		fail("cwd is not %s", at("m/ovl"));
	put("again.txt", "written after restore");
	expect(at("m/tmp/upper/again.txt"), "written after restore");
	put(at("m/ext/restored"), "yes");
}

int main(int argc, char **argv)
{
	int tmp_fd, ovl_fd;

	test_init(argc, argv);
	if (getpid() != 1)
		fail("not the init of a pid namespace (PID %d)", getpid());
	if (!getcwd(dir, sizeof(dir)))
		fail("getcwd: %m");
	own_net = count_entries("/sys/class/net") == 1;
	pivot();
	setup();
	tmp_fd = TEST_SYS(open(at("m/tmp/data.txt"), O_RDWR));
	TEST_SYS(lseek(tmp_fd, 6, SEEK_SET));
	ovl_fd = TEST_SYS(open(at("m/ovl/lower.txt"), O_RDONLY));
	TEST_SYS(chdir(at("m/ovl")));
	check_mounts();
	check_propagation();
	test_daemon();
	test_waitsig();

	check_mounts();
	check_files(tmp_fd, ovl_fd);
	check_plain();
	check_propagation();
	pass();
}
