// What the parts of the restore share: restore.cpp reads and checks the
// images and runs each task's side until its blob (ChildSide); tracer.cpp
// traces the tree (trace_tree()); ahead.cpp makes roots ahead of their
// request and restores through them.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "files.h"
#include "fs.pb-c.h"
#include "image.h"
#include "ipc.h"
#include "mem.h"
#include "namespaces.h"
#include "options.h"
#include "pstree.pb-c.h"
#include "region.h"
#include "restorer-args.h"
#include "util.h"

struct TaskKobjIdsEntry;

namespace criu
{

class CgroupTarget;
class OwnMntns;

// Everything read from the images of one task, validated before anything
// is created.
struct TaskImages {
	pid_t pid = 0;
	PbPtr<PstreeEntry> pstree;
	bool zombie = false;
	PbPtr<TaskKobjIdsEntry> ids;
	std::vector<PbPtr<CoreEntry>> cores;  // [0] is the leader
	MemPlan mem;
	FdTable fds;
	PbPtr<FsEntry> fs;
	std::set<uint32_t> epolls_owned;  // epolls whose registrations this task restores
	std::vector<size_t> children;	  // indices into TreeImages::tasks
};

struct TreeImages {
	std::vector<TaskImages> tasks;	  // pstree order: [0] is the root
	const ImageDir *pages = nullptr;  // where the pages images are (a template's, or the dump's)
	RestoredFiles files;
	int min_service_fd = 3;	   // above every fd number of every task
	std::set<pid_t> pids;	   // as the tree sees them
	NsSet ns;		   // the root is created in new namespaces of these kinds
	bool ipc_objects = false;  // recreate the dump's SysV objects (new or joined ipc namespace)
};

// What a task tells the tracer before jumping into the blob (or why it
// could not). Smaller than PIPE_BUF: the tasks share one pipe.
struct ChildReport {
	int32_t pid;
	int32_t ok;
	uint64_t region_start, region_len, args;
	char error[1000];
};

// What criu prepared before creating the root, inherited by every task.
struct Inherited {
	int report_fd = -1;
	int barrier[2] = {-1, -1};  // EOF on [0] once every task closed its [1]
	FilePool files;
	std::map<uint64_t, int> shmem;	// shmid -> fd of its shmem object
	// Closes what criu opened (the tasks hold what they inherited).
	void release()
	{
		files.close_all();
		for (auto &[id, fd] : shmem)
			::close(fd);
		shmem.clear();
	}
	std::vector<int> all_fds() const
	{
		std::vector<int> v = files.fds;
		for (auto &[id, fd] : shmem)
			v.push_back(fd);
		return v;
	}
};

// The fds a task's region names besides the pool's (-1: none).
struct RegionFds {
	int pages = -1, exe = -1;
	int root = -1, cwd = -1;  // root: -1 if it is ours
};

class ChildSide
{
public:
	ChildSide(const Options &o, const ImageDir &dir, TreeImages &tree, size_t idx, Inherited &inh)
	    : o_(o), dir_(dir), tree_(tree), ti_(tree.tasks[idx]), inh_(inh), report_fd_(inh.report_fd)
	{
	}

	// A root made ahead makes its restorer region before the go: what is
	// left after it is what its files decide (RestorerRegion::finish()).
	void region_ahead(RestorerRegion r) { region_.emplace(std::move(r)); }
	// The ipc namespace the root restores into is a new one: what the
	// images hold the same as ipc is not written.
	void ipc_is_new(std::optional<IpcVars> ipc) { new_ipc_ = std::move(ipc); }
	// A root made ahead reads the ipc images before the go.
	void ipc_read_ahead(IpcImages imgs) { ipc_.emplace(std::move(imgs)); }

	// Runs as the new task; never returns.
	[[noreturn]] void run_and_exit();

private:
	// Never returns on success: jumps into the blob (or exits, as a zombie).
	Status run();
	int service_fd(int fd);
	Status move_service_fds();
	Status create_children();
	Status wait_barrier();
	Status join_group();
	[[noreturn]] void exit_as_zombie();
	Status wait_zombie_children();
	Status close_strays();
	void keep_pool_fds(const std::vector<rst_op> &fds);
	Status build_region(const std::vector<rst_op> &ops);
	Status session();

	const Options &o_;
	const ImageDir &dir_;
	TreeImages &tree_;
	TaskImages &ti_;
	Inherited &inh_;
	int report_fd_;
	int next_service_fd_ = 0;
	int pages_dir_fd_ = -1;
	RegionFds region_fds_;
	std::vector<int> close_fds_;
	std::optional<IpcVars> new_ipc_;
	std::optional<IpcImages> ipc_;
	std::optional<RestorerRegion> region_;
};

// place(fd) takes one of our fds and gives the task's number of it (-1 and
// errno if it can't): a task opening its own moves it to its service range;
// criu opening them for a root made ahead lists it for the root to take.
using FdPlacer = std::function<int(int)>;

// A pipe, both ends at fds >= min_fd.
Status high_pipe(int min_fd, int flags, Fd &rd, Fd &wr);

// The pipes between criu and the root: the tasks' reports, the creation
// barrier, and the go.
struct RootPipes {
	Fd report, report_child, barrier_rd, barrier_wr, go_child, go;
	Status open(int min_fd)
	{
		TRY(high_pipe(min_fd, 0, report, report_child));
		TRY(high_pipe(min_fd, 0, barrier_rd, barrier_wr));
		return high_pipe(0, 0, go_child, go);
	}
	// What every task inherits of them.
	void hand_to(Inherited &inh) const
	{
		inh.report_fd = report_child.get();
		inh.barrier[0] = barrier_rd.get();
		inh.barrier[1] = barrier_wr.get();
	}
	// In criu once the root exists: the barrier opens once the tasks
	// dropped their write ends.
	void close_child_ends()
	{
		report_child.reset();
		go_child.reset();
		barrier_rd.reset();
		barrier_wr.reset();
	}
};

// Every task of the tree read from the images in dir (pages: where the
// pages images are), checked before anything is created.
Result<TreeImages> read_images(const ImageDir &dir, const ImageDir &pages, const std::vector<HeldRange> &held);
// A task created with pid (see restore.cpp).
pid_t clone_with_pid(pid_t pid, bool sibling, unsigned long flags = 0);
// A task that could not get to its blob tells the tracer why and ends.
[[noreturn]] void report_and_exit(int report_fd, pid_t pid, const Error &e);
// The task's pages image, its VMAs' files, executable, root and cwd.
Result<RegionFds> open_region_fds(const TreeImages &tree, TaskImages &ti, int pages_dir_fd,
				  const std::map<uint64_t, int> &shmem, const FdPlacer &place);
// The blob's root, cwd and umask calls, after the fds' (ops).
void add_fs_ops(std::vector<rst_op> &ops, const RegionFds &r, const FsEntry &fs);
// The region of task ti, with room for its setup.
RegionTask region_task(const TreeImages &tree, const TaskImages &ti, bool thin = false);
// glibc's rseq of criu's thread unregistered, before the blob.
Status unregister_rseq();
[[noreturn]] void jump_into(const RestorerRegion &r);
// criu opens what tasks share before the root exists.
Status prepare_inherited(const Options &o, TreeImages &tree, Inherited &inh);
// From the root's creation (pid) on, until the tree runs (see tracer.cpp).
Result<pid_t> trace_tree(const Options &o, TreeImages &tree, const ImageDir &dir, int rep_fd, pid_t pid,
			 CgroupTarget *cg, const std::function<Status()> &go, OwnMntns *mntns, timespec t0);

// ahead.cpp: the restore through the root made ahead, if one is there and
// fits o (one that does not is killed); nullopt otherwise.
std::optional<Result<pid_t>> restore_ahead(const Options &o, const ImageDir &dir, timespec t0);

}  // namespace criu
