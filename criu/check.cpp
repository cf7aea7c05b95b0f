// criu check: probes the kernel features dump and restore rely on.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <functional>

#include "log.h"
#include "options.h"
#include "util.h"

namespace criu
{

namespace
{

struct Probe {
	const char *name;
	const char *needed_for;
	std::function<bool()> run;
	bool optional = false;	// only some tasks need it: reported, not fatal
};

bool have_cap_sys_admin()
{
	__user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	__user_cap_data_struct d[2] = {};
	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32));
}

}  // namespace

bool check_kernel(FILE *out)
{
	const Probe probes[] = {
	    {"CAP_SYS_ADMIN", "clone3 with set_tid, PR_SET_MM_MAP with exe_fd", have_cap_sys_admin},
	    {"clone3", "restoring PIDs", [] { return syscall(SYS_clone3, nullptr, 0) < 0 && errno != ENOSYS; }},
	    {"kcmp", "finding shared open files",
	     [] { return syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, 0, 0) >= 0 || errno != ENOSYS; }},
	    {"PR_SET_MM_MAP", "restoring mm fields (CONFIG_CHECKPOINT_RESTORE)",
	     [] {
		     unsigned size = 0;
		     return prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) == 0 && size > 0;
	     }},
	    {"PTRACE_GET_RSEQ_CONFIGURATION", "dumping rseq (Linux 5.13+)",
	     [] {
		     struct utsname u;
		     uname(&u);
		     int maj = 0, min = 0;
		     sscanf(u.release, "%d.%d", &maj, &min);
		     return maj > 5 || (maj == 5 && min >= 13);
	     }},
	    {"/proc/self/map_files", "mapped and deleted files",
	     [] { return access("/proc/self/map_files", R_OK) == 0; }},
	    {"/proc/self/pagemap", "dumping only present pages",
	     [] {
		     Fd fd(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
		     uint64_t e = 0;
		     return fd.valid() && pread(fd.get(), &e, 8, ((uint64_t)&e / kPageSize) * 8) == 8 && (e >> 63);
	     }},
	    {"process_vm_readv", "reading task memory",
	     [] { return syscall(SYS_process_vm_readv, getpid(), nullptr, 0, nullptr, 0, 0) == 0; }},
	    {"rseq", "restoring rseq", [] { return syscall(SYS_rseq, nullptr, 0, 0, 0) < 0 && errno != ENOSYS; }},
	    {"PR_TIMER_CREATE_RESTORE_IDS", "restoring POSIX timers with their ids (Linux 6.15+)",
	     [] { return prctl(77 /* PR_TIMER_CREATE_RESTORE_IDS */, 2 /* _GET */, 0, 0, 0) >= 0; }, true},
	    {"pidfd_getfd", "dumping sockets, inherit_fd over RPC (Linux 5.6+)",
	     [] {
		     Fd pidfd(syscall(SYS_pidfd_open, getpid(), 0));
		     if (!pidfd.valid())
			     return false;
		     Fd fd(syscall(SYS_pidfd_getfd, pidfd.get(), 0, 0));
		     return fd.valid() || errno != ENOSYS;
	     },
	     true},
	    {"MADV_COLLAPSE",
	     "huge pages in mm-template holders, so that attaching is a page-table copy per 2 MiB "
	     "(Linux 6.1+, THP not 'never'); mm-templates keep anonymous semantics either way",
	     [] {
		     constexpr size_t huge = 2 << 20;
		     void *m = mmap(nullptr, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		     if (m == MAP_FAILED)
			     return false;
		     char *a = (char *)(((uintptr_t)m + huge - 1) & ~(uintptr_t)(huge - 1));
		     memset(a, 1, huge);
		     bool ok = madvise(a, huge, 25 /* MADV_COLLAPSE */) == 0;
		     munmap(m, 2 * huge);
		     return ok;
	     },
	     true},
	    {"MOVE_MOUNT_SET_GROUP", "restoring the peer groups of a tree's mounts (Linux 5.15+)",
	     [] {
		     // known flags get as far as the (bad) fds
		     return move_mount(-1, "", -1, "",
				       MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0 &&
			    errno == EBADF;
	     },
	     true},
	    {"vdso", "syscall injection and restore",
	     [] {
		     auto maps = read_file("/proc/self/maps");
		     return maps && maps->find("[vdso]") != std::string::npos;
	     }},
	};
	int missing = 0;
	for (auto &p : probes) {
		bool ok = p.run();
		if (!ok && !p.optional)
			missing++;
		if (out)
			fprintf(out, "%-32s %s%s%s\n", p.name,
				ok	     ? "ok"
				: p.optional ? "missing (optional)"
					     : "MISSING",
				ok ? "" : " - needed for ", ok ? "" : p.needed_for);
		if (!ok && !p.optional)
			pr_err("kernel feature %s is missing (needed for %s)\n", p.name, p.needed_for);
	}
	if (out && missing)
		fprintf(out, "%d feature(s) missing: dump or restore will fail\n", missing);
	return missing == 0;
}

int cmd_check(const Options &)
{
	if (!check_kernel(stdout))
		return 1;
	printf("Looks good.\n");
	return 0;
}

}  // namespace criu
