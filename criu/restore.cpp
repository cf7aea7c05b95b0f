// criu restore: rebuild a dumped process with its PID, memory, threads,
// registers and kernel state, and let it continue where it stopped.
//
// The sequence (see Documentation/restore.md):
//  1. read and validate every image; nothing is created before that;
//  2. clone3() with set_tid = the dumped PID, and seize the child;
//  3. the child, still running criu's code, makes its session, opens the
//     pages image, mapped files, root and cwd, maps the bootstrap region
//     (restorer blob + arguments) in a hole of both address spaces, lists
//     there the placing of its fds from the pool (and root, cwd, umask) and
//     jumps into the blob;
//  4. the blob replaces the address space, makes those setup calls, sets
//     per-thread state, creates the threads and stops each for the tracer
//     (a forced fault, or a SIGSTOP; see stop() there);
//  5. this process (the tracer) unmaps the blob inside the task, sets each
//     thread's registers, FPU state and signal mask, and detaches.
// Any failure kills the new task: nothing half-restored survives. A root
// made ahead of its request is ahead.cpp's (restore_ahead() first).
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <elf.h>
#include <optional>
#include <set>

#include <sys/user.h>

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "files.h"
#include "fpu.h"
#include "fs.pb-c.h"
#include "inventory.pb-c.h"
#include "log.h"
#include "magic.h"
#include "mem.h"
#include "memfd.pb-c.h"
#include "mm.pb-c.h"
#include "options.h"
#include "plugin.h"
#include "proc.h"
#include "region.h"
#include "ipc.h"
#include "sandbox.h"
#include "mount.h"
#include "namespaces.h"
#include "net.h"
#include "pstree.h"
#include "ptrace.h"
#include "pstree.pb-c.h"
#include "restore-tree.h"
#include "restorer-args.h"

namespace criu
{

namespace
{

constexpr uint64_t kTaskSize = 0x7ffffffff000ULL;
Status check_core(const CoreEntry &c, const std::string &name, bool leader)
{
	if (c.mtype != CORE_ENTRY__MARCH__X86_64 || !c.thread_info || !c.thread_info->gpregs || !c.thread_info->fpregs)
		return Error{name + ": not an x86-64 thread (no registers)"};
	if (!c.thread_core || !c.thread_core->creds)
		return Error{name + ": thread_core or creds missing"};
	if (leader && (!c.tc || c.tc->n_sigactions > 64))
		return Error{name + ": task core missing or malformed"};
	if (leader && c.tc->task_state != kTaskAlive && c.tc->task_state != kTaskStopped)
		return Error{
		    strfmt("%s: task state %u (helper tasks) is not supported", name.c_str(), c.tc->task_state)};
	if (c.thread_info->gpregs->has_mode && c.thread_info->gpregs->mode != USER_X86_REGS_MODE__NATIVE)
		return Error{name + ": 32-bit (compat) tasks are not supported"};
	auto *cr = c.thread_core->creds;
	if (cr->n_cap_inh > 2 || cr->n_cap_prm > 2 || cr->n_cap_eff > 2 || cr->n_cap_bnd > 2 || cr->n_groups > 64)
		return Error{name + ": malformed credentials"};
	return {};
}

Status read_task(const ImageDir &dir, const ImageDir &pages, const RestoredFiles &files, TaskImages &ti)
{
	auto ids =
	    read_one<TaskKobjIdsEntry>(dir, strfmt("ids-%d.img", ti.pid), IDS_MAGIC, task_kobj_ids_entry__descriptor);
	if (!ids)
		return ids.error();
	ti.ids = std::move(*ids);
	for (size_t i = 1; i < ti.pstree->n_threads; i++) {
		auto name = strfmt("core-%u.img", ti.pstree->threads[i]);
		auto c = read_one<CoreEntry>(dir, name, CORE_MAGIC, core_entry__descriptor);
		if (!c)
			return c.error();
		TRY(check_core(**c, name, false));
		ti.cores.push_back(std::move(*c));
	}
	auto mem = plan_memory(dir, pages, ti.pid);
	if (!mem)
		return mem.error();
	ti.mem = std::move(*mem);
	auto fds = read_fdinfo(dir, ti.ids->files_id, files);
	if (!fds)
		return fds.error();
	ti.fds = std::move(*fds);
	auto fs = read_one<FsEntry>(dir, strfmt("fs-%u.img", ti.ids->fs_id), FS_MAGIC, fs_entry__descriptor);
	if (!fs)
		return fs.error();
	ti.fs = std::move(*fs);
	for (uint32_t id : {ti.fs->cwd_id, ti.fs->root_id})
		if (!files.find(id) || !files.find(id)->reg)
			return Error{strfmt("file id %u (cwd or root of PID %d) is missing in files.img", id, ti.pid)};
	if (const FileEntry *exe = files.find(ti.mem.mm->exe_file_id); !exe || !(exe->reg || exe->memfd))
		return Error{strfmt("the executable of PID %d (file id %u) is missing in files.img", ti.pid,
				    ti.mem.mm->exe_file_id)};
	for (uint32_t id : ti.mem.vma_file)
		if (id && (!files.find(id) || !(files.find(id)->reg || files.find(id)->memfd)))
			return Error{strfmt("mm-%d.img: mapped file id %u is missing in files.img", ti.pid, id)};
	return {};
}

}  // namespace

// held: ranges of the root's memory that its creator already has in place
// (a template holder's), inherited through clone.
Result<TreeImages> read_images(const ImageDir &dir, const ImageDir &pages, const std::vector<HeldRange> &held)
{
	TreeImages tree;
	tree.pages = &pages;
	auto inv = read_one<InventoryEntry>(dir, "inventory.img", INVENTORY_MAGIC, inventory_entry__descriptor);
	if (!inv)
		return inv.error();
	if ((*inv)->img_version != 2)
		return Error{strfmt("inventory.img: unsupported image version %u", (*inv)->img_version)};
	auto entries = read_pstree(dir);
	if (!entries)
		return entries.error();
	auto files = read_files(dir, pages);
	if (!files)
		return files.error();
	tree.files = std::move(*files);
	std::map<pid_t, size_t> index;
	std::set<uint32_t> epolls_seen;
	for (auto &e : *entries) {
		TaskImages ti;
		ti.pid = e->pid;
		ti.pstree = std::move(e);
		auto name = strfmt("core-%d.img", ti.pid);
		auto c = read_one<CoreEntry>(dir, name, CORE_MAGIC, core_entry__descriptor);
		if (!c)
			return c.error();
		ti.zombie = (*c)->tc && (*c)->tc->task_state == kTaskDead;
		if (ti.zombie && (ti.pstree->n_threads != 1 || !tree.tasks.size()))
			return Error{strfmt("%s: a zombie must be a single-threaded child", name.c_str())};
		if (!ti.zombie)
			TRY(check_core(**c, name, true));
		ti.cores.push_back(std::move(*c));
		if (!ti.zombie)
			TRY(read_task(dir, pages, tree.files, ti));
		if (tree.tasks.empty() && !held.empty())
			TRY(mark_held(ti.mem, held));
		for (auto &fd : ti.fds) {
			tree.min_service_fd = std::max<int>(tree.min_service_fd, fd->fd + 1);
			if (tree.files.find(fd->id)->type == FD_TYPES__EVENTPOLL && epolls_seen.insert(fd->id).second)
				ti.epolls_owned.insert(fd->id);
		}
		if (!tree.tasks.empty())
			tree.tasks[index.at(ti.pstree->ppid)].children.push_back(tree.tasks.size());
		index[ti.pid] = tree.tasks.size();
		tree.pids.insert(ti.pid);
		tree.tasks.push_back(std::move(ti));
	}
	auto &rids = *tree.tasks[0].ids;
	auto ns = read_namespaces(dir, tree.tasks[0].pid, rids);
	if (!ns)
		return ns.error();
	tree.ns = *ns;
	tree.ipc_objects = tree.ns.ipc;
	return tree;
}

namespace
{

Status check_ids_free(const TreeImages &tree)
{
	if (tree.ns.pid)
		return {};  // a new pid namespace has them all
	for (auto &ti : tree.tasks)
		for (size_t i = 0; i < ti.pstree->n_threads; i++) {
			pid_t t = ti.pstree->threads[i];
			if (kill(t, 0) == 0 || errno != ESRCH)
				return Error{strfmt("PID %d is already in use: can't restore %s %d", t,
						    i ? "thread" : "process", t)};
		}
	return {};
}

}  // namespace

// As a sibling (CLONE_PARENT), the task becomes a child of whoever runs
// criu: that is what `criu swrk` clients ask for with rst_sibling. With
// CLONE_NEWPID in flags the task is the init of a new pid namespace: PID 1
// there, any PID outside.
pid_t clone_with_pid(pid_t pid, bool sibling, unsigned long flags)
{
	clone_args ca{};
	ca.flags = (sibling ? CLONE_PARENT : 0) | flags;
	ca.exit_signal = sibling ? 0 : SIGCHLD;
	int64_t tid = pid;
	if (!(flags & CLONE_NEWPID)) {
		ca.set_tid = (uint64_t)&tid;
		ca.set_tid_size = 1;
	}
	return syscall(SYS_clone3, &ca, sizeof(ca));
}

// --------------------------------------------------------------- child side

int ChildSide::service_fd(int fd)
{
	int n = fcntl(fd, F_DUPFD, next_service_fd_);
	::close(fd);
	if (n >= 0) {
		next_service_fd_ = n + 1;
		close_fds_.push_back(n);
	}
	return n;
}

Status ChildSide::move_service_fds()
{
	// criu put the report pipe and the pool up there already.
	next_service_fd_ = tree_.min_service_fd;
	close_fds_.push_back(report_fd_);
	int d = fcntl(tree_.pages->fd(), F_DUPFD_CLOEXEC, next_service_fd_);
	if (d < 0)
		return sys_error("can't move service fds");
	next_service_fd_ = d + 1;
	pages_dir_fd_ = d;
	close_fds_.push_back(d);
	int logfd = log::fd();
	if (logfd > 2) {
		int l = fcntl(logfd, F_DUPFD_CLOEXEC, next_service_fd_);
		if (l >= 0) {
			log::set_fd(l);
			next_service_fd_ = l + 1;
			close_fds_.push_back(l);
		}
	}
	return {};
}

namespace
{

// A held VMA of a file maps what its holder found at the file's path; the
// tree restored here may see another file there (in a sandbox with a root
// of its own): then the VMA is mapped from the file seen here, its written
// pages read from the images, as without a template.
void unhold_other_files(MemPlan &m, const RestoredFiles &files)
{
	std::map<uint32_t, std::optional<std::pair<dev_t, ino_t>>> seen;  // file id -> what is at its path
	for (auto &h : m.held) {
		if (!h.dev && !h.ino)
			continue;  // anonymous, or a deleted file's copy
		size_t i = std::find_if(m.vmas.begin(), m.vmas.end(), [&](auto &v) { return v.start == h.start; }) -
			   m.vmas.begin();
		uint32_t id = m.vma_file[i];
		const char *path = files.find(id)->reg->name;
		if (!seen.count(id)) {
			struct stat st;
			seen[id] = stat(path, &st) == 0 ? std::optional(std::pair(st.st_dev, st.st_ino)) : std::nullopt;
		}
		if (seen[id] && seen[id]->first == h.dev && seen[id]->second == h.ino)
			continue;
		pr_info("%s (mapped at %lx) is not the file the template holds: mapping it\n", path,
			(unsigned long)h.start);
		unhold(m, i);
	}
}

Result<int> placed(Result<int> fd, const FdPlacer &place, const char *what)
{
	if (!fd)
		return fd.error();
	int n = place(*fd);
	if (n < 0)
		return sys_error("can't place the fd of %s", what);
	return n;
}

Result<int> open_dir(const TreeImages &tree, uint32_t id, const FdPlacer &place, const char *what, pid_t pid)
{
	const char *path = tree.files.find(id)->reg->name;
	int fd = ::open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sys_error("can't open %s %s of PID %d", what, path, pid);
	return placed(fd, place, what);
}

}  // namespace

// The task's pages image, its VMAs' files (into m.vmas[].fd; shmem: the
// objects of create_shmem_objects()), its executable, its root (unless it
// is ours) and its cwd, as the dump names them from criu's root.
Result<RegionFds> open_region_fds(const TreeImages &tree, TaskImages &ti, int pages_dir_fd,
				  const std::map<uint64_t, int> &shmem, const FdPlacer &place)
{
	RegionFds r;
	auto &m = ti.mem;
	int p = openat(pages_dir_fd, m.pages_image.c_str(), O_RDONLY | O_CLOEXEC);
	if (p < 0)
		return sys_error("can't open image %s", m.pages_image.c_str());
	auto pages = placed(p, place, "the pages image");
	if (!pages)
		return pages.error();
	r.pages = *pages;
	std::map<std::pair<uint32_t, uint32_t>, int> by_file;
	std::map<uint64_t, int> by_shmid;
	unhold_other_files(m, tree.files);
	for (size_t i = 0; i < m.vmas.size(); i++) {
		if (m.vmas[i].held)
			continue;
		if (uint32_t id = m.vma_file[i]) {
			auto key = std::make_pair(id, m.vma_fflags[i]);
			if (!by_file.count(key)) {
				auto fd =
				    placed(open_file_entry(tree.files, id, m.vma_fflags[i]), place, "a mapped file");
				if (!fd)
					return fd.error();
				by_file[key] = *fd;
			}
			m.vmas[i].fd = by_file[key];
		} else if (uint64_t shmid = m.vma_shmid[i]) {
			if (!by_shmid.count(shmid)) {
				int dup = fcntl(shmem.at(shmid), F_DUPFD_CLOEXEC, 0);
				if (dup < 0)
					return sys_error("can't dup shared memory object %llx",
							 (unsigned long long)shmid);
				auto fd = placed(dup, place, "a shared memory object");
				if (!fd)
					return fd.error();
				by_shmid[shmid] = *fd;
			}
			m.vmas[i].fd = by_shmid[shmid];
		}
	}
	auto exe = placed(open_file_entry(tree.files, m.mm->exe_file_id, O_RDONLY), place, "the executable");
	if (!exe)
		return exe.error();
	r.exe = *exe;
	if (strcmp(tree.files.find(ti.fs->root_id)->reg->name, "/") != 0) {
		auto root = open_dir(tree, ti.fs->root_id, place, "the root", ti.pid);
		if (!root)
			return root.error();
		r.root = *root;
	}
	auto cwd = open_dir(tree, ti.fs->cwd_id, place, "the cwd", ti.pid);
	if (!cwd)
		return cwd.error();
	r.cwd = *cwd;
	return r;
}

// What the blob does before it maps the memory: the fds (ops), then the
// root (chroot to where the root's fd is), the cwd and the umask.
void add_fs_ops(std::vector<rst_op> &ops, const RegionFds &r, const FsEntry &fs)
{
	rst_op op{};
	if (r.root >= 0) {
		op.kind = RST_OP_FCHDIR;
		op.fd = r.root;
		ops.push_back(op);
		op.kind = RST_OP_CHROOT;
		ops.push_back(op);
	}
	op.kind = RST_OP_FCHDIR;
	op.fd = r.cwd;
	ops.push_back(op);
	op = {};
	op.kind = RST_OP_UMASK;
	op.arg = fs.has_umask ? (int32_t)fs.umask : 022;
	ops.push_back(op);
}

// Anything else criu had open (the RPC socket, --inherit-fd originals...)
// must not leak into the task. (close_range() over the gaps: listing
// /proc/self/fd cost 0.1 ms of every restore.)
Status ChildSide::close_strays()
{
	std::set<int> keep(close_fds_.begin(), close_fds_.end());
	unsigned from = tree_.min_service_fd;
	for (int fd : keep) {
		if (fd < (int)from)
			continue;
		if ((unsigned)fd > from && close_range(from, fd - 1, 0) < 0)
			return sys_error("can't close criu's fds %u-%d", from, fd - 1);
		from = fd + 1;
	}
	if (close_range(from, ~0U, 0) < 0)
		return sys_error("can't close criu's fds from %u", from);
	return {};
}

Status ChildSide::session()
{
	pid_t pid = ti_.pid;
	if (ti_.pstree->sid == (uint32_t)pid) {
		if (setsid() < 0)
			return sys_error("can't make PID %d a session leader", pid);
	} else if (ti_.pstree->pgid == (uint32_t)pid) {
		if (setpgid(0, 0) < 0)
			return sys_error("can't make PID %d a process group leader", pid);
	}
	return {};
}

// Children inherit the session made by session() and every open file of
// the pool; each goes on as a ChildSide of its own.
Status ChildSide::create_children()
{
	for (size_t c : ti_.children) {
		pid_t want = tree_.tasks[c].pid;
		pid_t pid = clone_with_pid(want, false);
		if (pid < 0)
			return sys_error("can't create PID %d", want);
		if (pid == 0)
			ChildSide(o_, dir_, tree_, c, inh_).run_and_exit();
	}
	return {};
}

// Returns once every task of the tree exists: all have closed their copy
// of the barrier's write end after creating their children.
Status ChildSide::wait_barrier()
{
	::close(inh_.barrier[1]);
	char c;
	ssize_t n;
	while ((n = read(inh_.barrier[0], &c, 1)) < 0 && errno == EINTR)
		;
	::close(inh_.barrier[0]);
	if (n != 0)
		return Error{"the task creation barrier broke"};
	return {};
}

// A process group led by another task can be joined only once that task
// exists, so this runs after the barrier. The root's group, when it did not
// lead one, is the group the root was restored into.
Status ChildSide::join_group()
{
	pid_t want = ti_.pstree->pgid;
	if (want == ti_.pid)
		return {};
	if (!tree_.pids.count(want)) {
		pid_t root = tree_.tasks[0].pid;
		want = root == ti_.pid ? getpgid(0) : getpgid(root);
	}
	if (getpgid(0) != want && setpgid(0, want) < 0)
		return sys_error("PID %d can't join process group %d", ti_.pid, want);
	return {};
}

// The exit status is what the parent will read with wait(); a core dump is
// not made again.
void ChildSide::exit_as_zombie()
{
	uint32_t status = ti_.cores[0]->tc->exit_code;
	int sig = status & 0x7f;
	if (sig) {
		prctl(PR_SET_DUMPABLE, 0);
		signal(sig, SIG_DFL);
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, nullptr);
		kill(getpid(), sig);
	}
	_exit((status >> 8) & 0xff);
}

// A zombie child's exit sends SIGCHLD, which the parent had long received
// before the dump: wait for the exits here, while criu (the tracer) can
// still discard those signals, and before the blob blocks them.
Status ChildSide::wait_zombie_children()
{
	for (size_t c : ti_.children) {
		if (!tree_.tasks[c].zombie)
			continue;
		siginfo_t si;
		while (waitid(P_PID, tree_.tasks[c].pid, &si, WEXITED | WNOWAIT) < 0)
			if (errno != EINTR)
				return sys_error("waiting for zombie %d", tree_.tasks[c].pid);
	}
	return {};
}

// The pool's fds the blob places stay open until it closed them; the rest
// of the pool is closed now.
void ChildSide::keep_pool_fds(const std::vector<rst_op> &fds)
{
	std::set<int> used;
	for (auto &op : fds)
		if (op.kind == RST_OP_DUP3)
			used.insert(op.fd);
	for (int fd : inh_.all_fds()) {
		if (used.count(fd))
			close_fds_.push_back(fd);
		else
			::close(fd);
	}
}

// The region of task ti, with room for its setup (fd_ops() and add_fs_ops();
// a thin root's also takes every fd open_region_fds() opens, enters four
// namespaces and joins up to 16 cgroups, each fd taken).
RegionTask region_task(const TreeImages &tree, const TaskImages &ti, bool thin)
{
	size_t room = fd_ops_room(tree.files, ti.fds, ti.epolls_owned) + 4;
	if (thin)
		room += ti.mem.vmas.size() + 4 + 8 + 32;
	return {ti.mem, ti.cores, *ti.pstree, room};
}

// The region made ahead, or one made now.
Status ChildSide::build_region(const std::vector<rst_op> &ops)
{
	RegionTask t = region_task(tree_, ti_);
	if (!region_) {
		auto r = RestorerRegion::make(t);
		if (!r)
			return r.error();
		region_.emplace(std::move(*r));
	}
	region_->log_choices(t);
	return region_->finish(ti_.mem, region_fds_.pages, region_fds_.exe, close_fds_, ops);
}

// A task that could not get to its blob tells the tracer why and ends.
[[noreturn]] void report_and_exit(int report_fd, pid_t pid, const Error &e)
{
	ChildReport rep{};
	rep.pid = pid;
	snprintf(rep.error, sizeof(rep.error), "%s", e.msg.c_str());
	ssize_t w = write(report_fd, &rep, sizeof(rep));
	(void)w;
	_exit(1);
}

// glibc registered rseq for criu's own thread; its area goes away with the
// address space, and the blob registers the task's own.
Status unregister_rseq()
{
	if (!__rseq_size)
		return {};
	// glibc's registered length is 32 even where __rseq_size says less
	char *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	if (syscall(SYS_rseq, area, 32, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) < 0 &&
	    syscall(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) < 0)
		return sys_error("can't unregister criu's rseq area");
	return {};
}

// From here on only the blob runs (the tracer or the blob unmaps the region).
[[noreturn]] void jump_into(const RestorerRegion &r)
{
	asm volatile("movq %0, %%rsp\n\t"
		     "movq %1, %%rdi\n\t"
		     "jmp *%2\n\t"
		     :
		     : "r"(r.stack_top()), "r"(r.args_addr()), "r"(r.start() + RST_BLOB_ENTRY_OFF)
		     : "memory");
	__builtin_unreachable();
}

void ChildSide::run_and_exit()
{
	report_and_exit(report_fd_, ti_.pid, run().error());
}

Status ChildSide::run()
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, nullptr);
	TRY(move_service_fds());
	if (&ti_ == &tree_.tasks[0] && tree_.ns.uts)
		TRY(restore_uts(dir_, ti_.ids->uts_ns_id));
	if (&ti_ == &tree_.tasks[0] && tree_.ipc_objects) {
		if (!ipc_) {
			auto i = IpcImages::read(dir_, ti_.ids->ipc_ns_id);
			if (!i)
				return i.error();
			ipc_.emplace(std::move(*i));
		}
		TRY(ipc_->restore(new_ipc_ ? &*new_ipc_ : nullptr));
	}
	TRY(session());
	TRY(create_children());
	TRY(wait_barrier());
	TRY(join_group());
	if (ti_.zombie)
		exit_as_zombie();
	TRY(close_other_fds(ti_.fds, tree_.min_service_fd));
	auto fds = fd_ops(tree_.files, ti_.fds, inh_.files, ti_.epolls_owned);
	if (!fds)
		return fds.error();
	auto rfds = open_region_fds(tree_, ti_, pages_dir_fd_, inh_.shmem, [this](int fd) { return service_fd(fd); });
	if (!rfds)
		return rfds.error();
	region_fds_ = *rfds;
	keep_pool_fds(*fds);
	TRY(close_strays());
	TRY(wait_zombie_children());
	add_fs_ops(*fds, region_fds_, *ti_.fs);
	TRY(build_region(*fds));

	ChildReport rep{};
	rep.pid = ti_.pid;
	rep.ok = 1;
	rep.region_start = region_->start();
	rep.region_len = region_->len();
	rep.args = region_->args_addr();
	TRY(write_all(report_fd_, &rep, sizeof(rep), "report to criu"));
	TRY(unregister_rseq());
	pr_info("Jumping into the restorer at %lx\n", (unsigned long)region_->start());
	jump_into(*region_);
}

// --------------------------------------------------------------- tracer side

namespace
{

const char *step_name(int s)
{
	static const char *names[] = {"ok",
				      "unmapping the old address space",
				      "moving vdso/vvar",
				      "mapping a VMA",
				      "reading pages",
				      "mprotect",
				      "madvise",
				      "closing fds",
				      "PR_SET_MM_MAP",
				      "rt_sigaction",
				      "setitimer",
				      "prlimit",
				      "personality",
				      "creating a thread",
				      "set_robust_list",
				      "rseq",
				      "sigaltstack",
				      "restoring credentials",
				      "queueing a signal",
				      "prctl",
				      "creating a POSIX timer",
				      "setting the scheduling policy and nice value",
				      "the task's setup"};
	return s >= 0 && s < RST_STEP_MAX ? names[s] : "?";
}

// Which of the task's setup calls (a's ops[i]) failed, read from pid.
std::string setup_failed(pid_t pid, const rst_args &a, uint64_t i)
{
	rst_op op;
	iovec l = {&op, sizeof(op)}, r = {a.ops + std::min<uint64_t>(i, a.nr_ops), sizeof(op)};
	if (i >= a.nr_ops || process_vm_readv(pid, &l, 1, &r, 1, 0) != sizeof(op))
		return strfmt("setup call %llu", (unsigned long long)i);
	switch (op.kind) {
	case RST_OP_DUP3:
		return strfmt("can't place fd %d", op.arg);
	case RST_OP_EPOLL_ADD:
		return strfmt("can't add fd %d to epoll fd %d", op.arg, op.fd);
	case RST_OP_FCHDIR:
		return "can't go to the task's root or cwd";
	case RST_OP_JOIN_CGROUP:
		return "can't join a cgroup";
	case RST_OP_CHROOT:
		return "can't chroot";
	default:
		return strfmt("setup call %llu", (unsigned long long)i);
	}
}

class Tracer
{
public:
	Tracer(TreeImages &tree, int report_fd) : tree_(tree), report_fd_(report_fd) {}
	void add(pid_t pid) { seen_.insert(pid); }
	// The dump's oom_score_adj of task ti (criu's PID pid), where it is not
	// the one the task inherited.
	static Status set_oom_score_adj(pid_t pid, const TaskImages &ti);
	// Until every thread of every live task stopped in the blob and every
	// zombie has exited; what a task's blob reported is checked when its
	// leader stops.
	Status wait_all();
	Status finish();
	// Kills every task of the tree created so far.
	void kill_all();

private:
	Status on_exit(pid_t t, int status);
	Status on_stop(pid_t t, int status, size_t &trapped);
	// criu's PID of a task or thread and the tree's (they differ in a new
	// pid namespace); learnt at each one's first ptrace stop.
	void learn(pid_t t);
	pid_t inner(pid_t t) const { return inner_.count(t) ? inner_.at(t) : t; }
	pid_t outer(pid_t v) const { return outer_.count(v) ? outer_.at(v) : v; }
	Status drain_reports();
	Status failure(const std::string &what);
	Status check_records(const TaskImages &ti, const ChildReport &rep);
	Status unmap_region(pid_t pid, const ChildReport &rep);
	Status set_thread_state(pid_t tid, const CoreEntry &c);
	const TaskImages *zombie(pid_t pid) const;
	const TaskImages *task(pid_t vpid) const;
	Status check_leader(const TaskImages &ti);
	enum class BlobStop { kNone, kStopped, kUnmapped };
	Result<BlobStop> blob_stop(pid_t t, int sig);
	const TaskImages *task_of_thread(pid_t vtid) const;

	TreeImages &tree_;
	int report_fd_;
	std::set<pid_t> seen_;
	std::map<pid_t, pid_t> inner_, outer_;
	std::map<pid_t, ChildReport> reports_;
	std::set<pid_t> unmapped_;  // leaders that unmapped their region themselves
	size_t zombies_exited_ = 0;
};

const TaskImages *Tracer::zombie(pid_t pid) const
{
	for (auto &ti : tree_.tasks)
		if (ti.zombie && ti.pid == pid)
			return &ti;
	return nullptr;
}

const TaskImages *Tracer::task(pid_t vpid) const
{
	for (auto &ti : tree_.tasks)
		if (!ti.zombie && ti.pid == vpid)
			return &ti;
	return nullptr;
}

Status Tracer::check_leader(const TaskImages &ti)
{
	TRY(drain_reports());
	auto it = reports_.find(ti.pid);
	if (it == reports_.end())
		return Error{strfmt("PID %d stopped without reporting", ti.pid)};
	return check_records(ti, it->second);
}

Status Tracer::drain_reports()
{
	ChildReport rep;
	ssize_t n;
	while ((n = read(report_fd_, &rep, sizeof(rep))) == (ssize_t)sizeof(rep)) {
		if (!rep.ok)
			return Error{strfmt("PID %d: %s", rep.pid,
					    std::string(rep.error, strnlen(rep.error, sizeof(rep.error))).c_str())};
		reports_[rep.pid] = rep;
	}
	if (n > 0)
		return Error{"a truncated report from a restored task"};
	return {};
}

// A task died: its own report says why, if it could write one.
Status Tracer::failure(const std::string &what)
{
	TRY(drain_reports());
	return Error{what};
}

void Tracer::learn(pid_t t)
{
	if (inner_.count(t))
		return;
	pid_t v = t;
	if (tree_.ns.pid)
		if (auto n = ns_pid(t))
			v = *n;
	inner_[t] = v;
	outer_[v] = t;
}

Status Tracer::on_exit(pid_t t, int status)
{
	if (const TaskImages *z = zombie(inner(t))) {
		uint32_t want = z->cores[0]->tc->exit_code;
		bool ok = (want & 0x7f) ? WIFSIGNALED(status) && WTERMSIG(status) == (int)(want & 0x7f)
					: WIFEXITED(status) && WEXITSTATUS(status) == (int)((want >> 8) & 0xff);
		if (!ok)
			return failure(strfmt("zombie %d ended with status 0x%x, not 0x%x", t, status, want));
		zombies_exited_++;
		return {};
	}
	return failure(strfmt("the restored task %d %s %d during restore", t,
			      WIFEXITED(status) ? "exited with" : "was killed by signal",
			      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)));
}

Status Tracer::on_stop(pid_t t, int status, size_t &trapped)
{
	int sig = WSTOPSIG(status), event = status >> 16, pass = 0;
	BlobStop blob = BlobStop::kNone;
	if (event == 0) {
		auto b = blob_stop(t, sig);
		if (!b)
			return b.error();
		blob = *b;
	}
	if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_STOP) {
		// a new task or thread, or its first stop
	} else if (blob != BlobStop::kNone) {
		trapped++;
		// A leader stops last, unless its blob failed before making the
		// other threads, which then never come: look at its records now
		// (unless it unmapped them, which it does only when all is well).
		if (const TaskImages *ti = task(inner(t)); ti && outer(ti->pid) == t && blob == BlobStop::kStopped)
			TRY(check_leader(*ti));
		return {};
	} else if (sig == SIGCHLD) {
		// from zombie children, whose SIGCHLD the parent got before the dump
	} else if (const TaskImages *z = zombie(inner(t)); z && sig == (int)(z->cores[0]->tc->exit_code & 0x7f)) {
		pass = sig;
	} else {
		user_regs_struct r{};
		ptrace(PTRACE_GETREGS, t, nullptr, &r);
		return failure(
		    strfmt("the restored task %d got signal %d at ip %llx", t, sig, (unsigned long long)r.rip));
	}
	if (ptrace(PTRACE_CONT, t, nullptr, (void *)(long)pass) < 0 && errno != ESRCH)
		return sys_error("can't resume task %d", t);
	return {};
}

// Which of the blob's stops (see stop() there) a signal stop of thread t
// is, if any; its signal is then discarded. A SIGSEGV, SIGILL or SIGFPE
// is one where its rip says so: the region's stop page, the blob's ud2 or
// division by zero, or, for a leader, right behind the munmap() of its
// region that succeeded (rst_args::unmap_self). A failure
// another task reported meanwhile is the restore's error.
Result<Tracer::BlobStop> Tracer::blob_stop(pid_t t, int sig)
{
	if (sig == SIGSTOP)
		return BlobStop::kStopped;
	const TaskImages *ti = sig == SIGSEGV || sig == SIGILL || sig == SIGFPE ? task_of_thread(inner(t)) : nullptr;
	if (!ti)
		return BlobStop::kNone;
	TRY(drain_reports());
	auto it = reports_.find(ti->pid);
	user_regs_struct r{};
	if (it == reports_.end() || ptrace(PTRACE_GETREGS, t, nullptr, &r) < 0)
		return BlobStop::kNone;
	uint64_t region = it->second.region_start;
	if (r.rip == region + stop_offset(sig))
		return BlobStop::kStopped;
	if (sig != SIGSEGV)
		return BlobStop::kNone;
	if (outer(ti->pid) != t || r.rip != region + RST_BLOB_UNMAPPED_OFF || r.rax != 0)
		return BlobStop::kNone;
	unmapped_.insert(t);
	return BlobStop::kUnmapped;
}

const TaskImages *Tracer::task_of_thread(pid_t vtid) const
{
	for (auto &ti : tree_.tasks)
		if (!ti.zombie && std::find(ti.pstree->threads, ti.pstree->threads + ti.pstree->n_threads,
					    (uint32_t)vtid) != ti.pstree->threads + ti.pstree->n_threads)
			return &ti;
	return nullptr;
}

Status Tracer::wait_all()
{
	size_t want = 0, zombies = 0, trapped = 0;
	for (auto &ti : tree_.tasks) {
		if (ti.zombie)
			zombies++;
		else
			want += ti.pstree->n_threads;
	}
	while (trapped < want || zombies_exited_ < zombies) {
		int status;
		pid_t t = waitpid(-1, &status, __WALL);
		if (t < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("waitpid for the restored tasks");
		}
		seen_.insert(t);
		if (WIFEXITED(status) || WIFSIGNALED(status)) {
			TRY(on_exit(t, status));
		} else {
			learn(t);
			TRY(on_stop(t, status, trapped));
		}
	}
	// each task's records were checked at its leader's stop: the leader
	// stops once every other thread is done or failed
	return drain_reports();
}

// Every thread of the task stopped: did any of them fail?
Status Tracer::check_records(const TaskImages &ti, const ChildReport &rep)
{
	size_t n = ti.cores.size();
	std::vector<rst_thread> th(n);
	rst_args a;
	iovec l1 = {&a, sizeof(a)}, r1 = {(void *)rep.args, sizeof(a)};
	if (process_vm_readv(outer(ti.pid), &l1, 1, &r1, 1, 0) != sizeof(a))
		return sys_error("can't read the restorer's arguments in PID %d", ti.pid);
	iovec l2 = {th.data(), sizeof(rst_thread) * n}, r2 = {a.threads, sizeof(rst_thread) * n};
	if (process_vm_readv(outer(ti.pid), &l2, 1, &r2, 1, 0) != (ssize_t)(sizeof(rst_thread) * n))
		return sys_error("can't read the restorer's thread records in PID %d", ti.pid);
	for (auto &t : th)
		if (t.err_step == RST_SETUP)
			return Error{strfmt("restorer failed in thread %d: %s: %s", t.tid,
					    setup_failed(outer(ti.pid), a, t.err_addr).c_str(), strerror(t.err_errno))};
		else if (t.err_step)
			return Error{strfmt("restorer failed in thread %d while %s (at/arg 0x%llx): %s", t.tid,
					    step_name(t.err_step), (unsigned long long)t.err_addr,
					    strerror(t.err_errno))};
	return {};
}

Status Tracer::set_thread_state(pid_t tid, const CoreEntry &c)
{
	const UserX86RegsEntry &g = *c.thread_info->gpregs;
	user_regs_struct r{};
	r.r15 = g.r15, r.r14 = g.r14, r.r13 = g.r13, r.r12 = g.r12, r.rbp = g.bp, r.rbx = g.bx;
	r.r11 = g.r11, r.r10 = g.r10, r.r9 = g.r9, r.r8 = g.r8, r.rax = g.ax, r.rcx = g.cx;
	r.rdx = g.dx, r.rsi = g.si, r.rdi = g.di, r.orig_rax = g.orig_ax, r.rip = g.ip, r.cs = g.cs;
	r.eflags = g.flags, r.rsp = g.sp, r.ss = g.ss, r.fs_base = g.fs_base, r.gs_base = g.gs_base;
	r.ds = g.ds, r.es = g.es, r.fs = g.fs, r.gs = g.gs;
	if (ptrace(PTRACE_SETREGS, tid, nullptr, &r) < 0)
		return sys_error("can't set the registers of thread %d", tid);
	std::vector<uint8_t> xs(xsave_max_size());
	iovec iov = {xs.data(), xs.size()};
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return sys_error("can't read the xsave area of thread %d", tid);
	xs.resize(iov.iov_len);
	auto st = fpu_from_image(*c.thread_info->fpregs, xs);
	if (!st)
		return Error{strfmt("thread %d: %s", tid, st.error().msg.c_str())};
	iov = {xs.data(), xs.size()};
	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return sys_error("can't set the FPU state of thread %d", tid);
	uint64_t mask = c.thread_core->has_blk_sigset ? c.thread_core->blk_sigset : (c.tc ? c.tc->blk_sigset : 0);
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask) < 0)
		return sys_error("can't set the signal mask of thread %d", tid);
	return {};
}

// Unmaps the restorer region from inside the task, via the blob's gadget.
Status Tracer::unmap_region(pid_t pid, const ChildReport &rep)
{
	user_regs_struct r{};
	if (ptrace(PTRACE_GETREGS, pid, nullptr, &r) < 0)
		return sys_error("can't read the registers of %d", pid);
	uint64_t gadget = rep.region_start + RST_BLOB_GADGET_OFF;
	r.rip = gadget;
	r.rax = SYS_munmap;
	r.orig_rax = -1;
	r.rdi = rep.region_start;
	r.rsi = rep.region_len;
	if (ptrace(PTRACE_SETREGS, pid, nullptr, &r) < 0)
		return sys_error("can't set the registers of %d", pid);
	// The gadget's syscall between its entry and exit stops. Not a single
	// step: its trap is a forced SIGTRAP, which would reset the restored
	// action for SIGTRAP (see stop() in the blob). Other stops (none is
	// expected: the blob blocks every signal) are passed over.
	for (int seen = 0; seen < 2;) {
		if (ptrace(PTRACE_SYSCALL, pid, nullptr, nullptr) < 0)
			return sys_error("can't resume %d to unmap the restorer", pid);
		int status;
		if (waitpid(pid, &status, __WALL) < 0 || !WIFSTOPPED(status))
			return Error{strfmt("the restored task %d died while unmapping the restorer", pid)};
		seen += WSTOPSIG(status) == (SIGTRAP | 0x80);
	}
	if (ptrace(PTRACE_GETREGS, pid, nullptr, &r) < 0)
		return sys_error("can't read the registers of %d", pid);
	if (r.rip != gadget + 2)
		return Error{
		    strfmt("the restored task %d left the restorer's syscall at %llx", pid, (unsigned long long)r.rip)};
	if ((long)r.rax != 0)
		return Error{strfmt("unmapping the restorer in %d failed: %s", pid, strerror((int)-(long)r.rax))};
	return {};
}

// Leaves the CPU criu runs on (where the restored root last ran, since its
// stop woke us there) when another one is allowed: detached, the root then
// runs its first instructions there without preempting criu's answer.
void step_aside()
{
	cpu_set_t set;
	int here = sched_getcpu();
	if (here < 0 || sched_getaffinity(0, sizeof(set), &set) < 0 || CPU_COUNT(&set) < 2)
		return;
	CPU_CLR(here, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

// Written from here, in /proc of criu's own pid namespace: the tasks' /proc
// may be another's. Lowering it below what criu may (CAP_SYS_RESOURCE)
// keeps the inherited value, as with a hard rlimit.
Status Tracer::set_oom_score_adj(pid_t pid, const TaskImages &ti)
{
	const TaskCoreEntry &tc = *ti.cores[0]->tc;
	if (!tc.has_oom_score_adj)
		return {};
	auto path = strfmt("/proc/%d/oom_score_adj", pid);
	auto cur = read_file(path);
	if (cur && atoi(cur->c_str()) == tc.oom_score_adj)
		return {};
	Fd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
	auto v = std::to_string(tc.oom_score_adj);
	if (f.valid() && write(f.get(), v.data(), v.size()) == (ssize_t)v.size())
		return {};
	if (errno == EACCES) {
		pr_warn("PID %d: oom_score_adj %d is below what criu may set: keeping %d\n", ti.pid, tc.oom_score_adj,
			cur ? atoi(cur->c_str()) : 0);
		return {};
	}
	return sys_error("PID %d: can't set oom_score_adj to %d", ti.pid, tc.oom_score_adj);
}

// Every task is complete before any runs: shared memory they all wrote
// during restore is never overwritten under a running task.
Status Tracer::finish()
{
	for (auto &ti : tree_.tasks) {
		if (ti.zombie)
			continue;
		if (unmapped_.count(outer(ti.pid)))
			pr_debug("PID %d unmapped its restorer itself\n", ti.pid);
		else
			TRY(unmap_region(outer(ti.pid), reports_.at(ti.pid)));
		for (size_t i = 0; i < ti.cores.size(); i++)
			TRY(set_thread_state(outer(ti.pstree->threads[i]), *ti.cores[i]));
		if (&ti != &tree_.tasks[0])  // (the root's is set at its start)
			TRY(set_oom_score_adj(outer(ti.pid), ti));
	}
	step_aside();
	for (auto &ti : tree_.tasks) {
		if (ti.zombie)
			continue;
		// A task dumped while stopped by a signal stops again before it
		// runs a single instruction: SIGSTOP is pending when we let it go.
		if (ti.cores[0]->tc->task_state == kTaskStopped && kill(outer(ti.pid), SIGSTOP) < 0)
			return sys_error("can't stop the restored task %d", ti.pid);
		for (size_t i = 0; i < ti.pstree->n_threads; i++)
			if (ptrace(PTRACE_DETACH, outer(ti.pstree->threads[i]), nullptr, nullptr) < 0)
				return sys_error("can't detach from thread %u", ti.pstree->threads[i]);
	}
	return {};
}

void Tracer::kill_all()
{
	for (pid_t p : seen_)
		kill(p, SIGKILL);
	reap_all(seen_);
}

Status write_pidfile(const std::string &path, pid_t pid)
{
	if (path.empty())
		return {};
	auto tmp = path + ".tmp";
	Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
	if (!fd.valid())
		return sys_error("can't create pidfile %s", tmp.c_str());
	auto s = std::to_string(pid);
	TRY(write_all(fd.get(), s.data(), s.size(), path));
	if (rename(tmp.c_str(), path.c_str()) < 0)
		return sys_error("can't rename pidfile to %s", path.c_str());
	return {};
}

}  // namespace

// A pipe whose ends sit at or above min_fd (inherited by every task there).
Status high_pipe(int min_fd, int flags, Fd &rd, Fd &wr)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC | flags) < 0)
		return sys_error("can't create a pipe");
	Fd a(p[0]), b(p[1]);
	rd.reset(fcntl(a.get(), F_DUPFD_CLOEXEC, min_fd));
	wr.reset(fcntl(b.get(), F_DUPFD_CLOEXEC, min_fd));
	if (!rd.valid() || !wr.valid())
		return sys_error("can't move a pipe above fd %d", min_fd);
	return {};
}

// criu opens what tasks share before the root exists: the files of every
// fd table and the shared anonymous memory objects.
Status prepare_inherited(const Options &o, TreeImages &tree, Inherited &inh)
{
	// The pool lives above every fd of the tree; our own soft limit must
	// allow it (the tasks' limits are set by the blob at the end).
	rlimit nofile;
	getrlimit(RLIMIT_NOFILE, &nofile);
	nofile.rlim_cur = nofile.rlim_max;
	setrlimit(RLIMIT_NOFILE, &nofile);
	if ((rlim_t)tree.min_service_fd + 512 > nofile.rlim_cur)
		return Error{strfmt("fd %d is too close to RLIMIT_NOFILE (%llu)", tree.min_service_fd - 1,
				    (unsigned long long)nofile.rlim_cur)};
	std::vector<const FdTable *> tables;
	std::vector<const MemPlan *> plans;
	for (auto &ti : tree.tasks)
		if (!ti.zombie) {
			tables.push_back(&ti.fds);
			plans.push_back(&ti.mem);
		}
	std::map<std::string, int> inherited(o.inherit_fds.begin(), o.inherit_fds.end());
	TRY(open_file_pool(tree.files, tables, o.shell_job, inherited, tree.min_service_fd, inh.files));
	return create_shmem_objects(plans, tree.min_service_fd, inh.shmem);
}

// From the root's creation on: seizes it, applies the dump's limits to cg
// (which the root joins itself, see CgroupTarget::join_self), lets it go
// (go()), traces the tree
// until every task is in its blob, then lets them all run. From here on a
// failure kills what was created: nothing half-restored.
Result<pid_t> trace_tree(const Options &o, TreeImages &tree, const ImageDir &dir, int rep_fd, pid_t pid,
			 CgroupTarget *cg, const std::function<Status()> &go, OwnMntns *mntns, timespec t0)
{
	pid_t vpid = tree.tasks[0].pid;
	fcntl(rep_fd, F_SETFL, O_NONBLOCK);
	Tracer tr(tree, rep_fd);
	tr.add(pid);
	auto fail = [&](const Error &e) -> Error {
		tr.kill_all();
		return Error{strfmt("restore of PID %d failed: %s", vpid, e.msg.c_str())};
	};
	long opts = PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD;
	if (ptrace(PTRACE_SEIZE, pid, nullptr, (void *)opts) < 0)
		return fail(sys_error("can't seize the new task %d", pid));
	if (cg)
		if (auto st = cg->apply_limits(dir); !st)
			return fail(st.error());
	if (auto st = go(); !st)
		return fail(st.error());
	// the root's (its children inherit it) while it works: criu waits anyway
	if (auto st = Tracer::set_oom_score_adj(pid, tree.tasks[0]); !st)
		return fail(st.error());
	if (auto st = tr.wait_all(); !st)
		return fail(st.error());
	if (mntns) {
		mntns->leave();
		if (auto st = mntns->mount_late(pid); !st)
			return fail(st.error());
	}
	pr_debug("restorers of PID %d done after %.3f ms\n", vpid, ms_since(t0));
	if (auto st = notify(o, "post-restore", pid); !st)
		return fail(st.error());
	if (auto st = tr.finish(); !st)
		return fail(st.error());
	if (auto st = plugins::resume_devices_late(pid); !st)
		pr_warn("%s\n", st.error().msg.c_str());
	pr_info("Restore finished successfully in %.3f ms\n", ms_since(t0));
	if (auto st = notify(o, "post-resume", pid); !st)
		pr_warn("%s\n", st.error().msg.c_str());
	return pid;
}

// ------------------------------------------------------ images read ahead

namespace
{

// A spare of the service (spare.h) reads the images of the restore it
// prepares ahead, and the restore takes them if it is of that directory
// with that memory held (the spare checked that no file changed since).
struct ReadAhead {
	dev_t dev;
	ino_t ino;
	std::vector<HeldRange> held;
	TreeImages tree;
};
std::optional<ReadAhead> g_read_ahead;

Result<TreeImages> read_or_take(const ImageDir &dir, const ImageDir &pages, const std::vector<HeldRange> &held)
{
	struct stat st;
	std::optional<ReadAhead> ahead = std::exchange(g_read_ahead, std::nullopt);
	if (!ahead || fstat(dir.fd(), &st) < 0 || st.st_dev != ahead->dev || st.st_ino != ahead->ino ||
	    held != ahead->held)
		return read_images(dir, pages, held);
	ahead->tree.pages = &pages;
	return std::move(ahead->tree);
}

}  // namespace

Result<pid_t> restore_task(const Options &o)
{
	timespec t0 = now();
	auto dir = ImageDir::open(o.images_dir, false);
	if (!dir)
		return dir.error();
	plugins::set_image_dir(dir->fd());
	if (auto r = restore_ahead(o, *dir, t0))
		return std::move(*r);
	std::optional<ImageDir> tmpl;  // a template holder's pages
	if (o.pages_dir_fd >= 0) {
		auto t = ImageDir::from_fd(o.pages_dir_fd, "the template's pages");
		if (!t)
			return t.error();
		tmpl = std::move(*t);
	}
	auto tree = read_or_take(*dir, tmpl ? *tmpl : *dir, o.held);
	if (!tree)
		return tree.error();
	auto ext = read_external_ns(*dir);
	if (!ext)
		return ext.error();
	if (!o.switch_to.empty()) {
		// a new pid namespace; the sandbox's uts and ipc (the dump's SysV
		// objects are recreated in the latter)
		if (!tree->ns.pid)
			return Error{"--switch needs a tree that was the init of its pid namespace (PID 1 in it)"};
		tree->ns.uts = tree->ns.ipc = tree->ns.net = tree->ns.mnt = false;
	}
	auto joined = JoinedNs::enter(o, *ext);
	if (!joined)
		return joined.error();
	std::optional<OwnNetns> netns;
	if (tree->ns.net) {
		auto n = OwnNetns::enter(*dir, tree->tasks[0].ids->net_ns_id, o.veths);
		if (!n)
			return n.error();
		netns.emplace(std::move(*n));
	}
	// after the net namespace: a sysfs of the tree's is the new one's
	std::optional<OwnMntns> mntns;
	if (tree->ns.mnt) {
		auto m = OwnMntns::enter(*dir, tree->tasks[0].ids->mnt_ns_id, o, tree->ns.pid, tree->ns.ipc);
		if (!m)
			return m.error();
		mntns.emplace(std::move(*m));
	}
	TRY(check_ids_free(*tree));
	const TaskImages &root = tree->tasks[0];
	pr_info("Images read in %.3f ms; restoring PID %d (%zu task(s), %zu thread(s), %zu VMAs, %llu bytes of "
		"pages in the root; new namespaces: %s)\n",
		ms_since(t0), root.pid, tree->tasks.size(), root.cores.size(), root.mem.vmas.size(),
		(unsigned long long)root.mem.pages_bytes, tree->ns.str().c_str());
	TRY(notify(o, "pre-restore", 0));

	Inherited inh;
	if (auto st = prepare_inherited(o, *tree, inh); !st) {
		inh.release();
		return st.error();
	}
	RootPipes pipes;
	if (auto st = pipes.open(tree->min_service_fd); !st) {
		inh.release();
		return st.error();
	}
	pipes.hand_to(inh);
	auto &cg = joined->cgroups();
	pid_t pid = clone_with_pid(root.pid, o.restore_sibling, tree->ns.clone_flags());
	if (pid < 0) {
		inh.release();
		return sys_error("can't create PID %d", root.pid);
	}
	if (pid == 0) {
		pipes.report.reset();
		pipes.go.reset();
		char go;
		if (read(pipes.go_child.get(), &go, 1) != 1)
			_exit(1);
		pipes.go_child.reset();
		if (cg)
			if (auto st = cg->join_self(); !st)
				report_and_exit(inh.report_fd, root.pid, st.error());
		ChildSide(o, *dir, *tree, 0, inh).run_and_exit();
	}
	// The tasks hold what they inherited.
	inh.release();
	pipes.close_child_ends();
	auto go = [&]() -> Status {
		if (write(pipes.go.get(), "g", 1) != 1)
			return sys_error("can't start the new task");
		return {};
	};
	auto r =
	    trace_tree(o, *tree, *dir, pipes.report.get(), pid, cg ? &*cg : nullptr, go, mntns ? &*mntns : nullptr, t0);
	if (!r)
		return r;
	if (netns)
		netns->keep();
	return pid;
}

Status read_images_ahead(int images_dir_fd, const std::vector<HeldRange> &held)
{
	struct stat st;
	auto dir = ImageDir::from_fd(images_dir_fd, "the images to read ahead");
	if (!dir)
		return dir.error();
	if (fstat(dir->fd(), &st) < 0)
		return sys_error("can't stat the images to read ahead");
	auto tree = read_images(*dir, *dir, held);
	if (!tree)
		return tree.error();
	g_read_ahead.emplace(ReadAhead{st.st_dev, st.st_ino, held, std::move(*tree)});
	return {};
}

// With --mm-template the task is restored by a child of the template's
// holder (a plugin's), so it is the holder's child: it can only be detached.
Result<pid_t> restore_from_template(const Options &o)
{
	if (!o.restore_detached)
		return Error{"--mm-template needs -d: the restored task is a child of the template holder"};
	bool taken = false;
	auto pid = plugins::restore_delegate(o.argv, &taken);
	if (!pid)
		return pid.error();
	if (!taken)
		return Error{
		    strfmt("--mm-template %s: no plugin handles templates (load the mmtemplate plugin with -L)",
			   o.mm_template.c_str())};
	pr_info("Restored PID %d from template %s\n", *pid, o.mm_template.c_str());
	return pid;
}

Result<pid_t> restore_and_record(const Options &o)
{
	auto pid = restore_task(o);
	if (!pid)
		return pid;
	if (auto st = write_pidfile(o.pidfile, *pid); !st)
		pr_err("%s\n", st.error().msg.c_str());
	return pid;
}

int cmd_restore(const Options &o)
{
	auto pid = o.mm_template.empty() || !o.held.empty() ? restore_and_record(o) : restore_from_template(o);
	if (!pid) {
		pr_err("%s\n", pid.error().msg.c_str());
		return 1;
	}
	if (o.restore_detached)
		return 0;
	int status;
	while (waitpid(*pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

}  // namespace criu
