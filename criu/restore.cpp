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
//  5. this process (the tracer, tracer.cpp) unmaps the blob inside the
//     task, sets each thread's registers, FPU state and signal mask, and
//     detaches.
// Any failure kills the new task: nothing half-restored survives. A root
// made ahead of its request is ahead.cpp's (restore_ahead() first).
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <optional>
#include <set>

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "files.h"
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

namespace
{

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
