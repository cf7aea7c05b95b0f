// The process tree (pstree.img): which tasks, their parents, process groups
// and sessions, and which of them are zombies.
//
// Dump freezes the tree top-down: a task is seized (every thread stopped)
// before its children are listed, so nothing forks behind our back, and a
// child that dies meanwhile stays a zombie of its frozen parent. What the
// restore could not rebuild faithfully is refused here, naming the PID:
// processes that share an fd table, fs information or memory without being
// threads of one process (CLONE_FILES/CLONE_FS/CLONE_VM), sessions a task
// did not inherit from its parent, and process groups without a leader in
// the tree (other than the root's own group).
//
// Restore gets the entries in pstree order (every parent before its
// children) with the same rules checked again, since images may come from
// elsewhere.
#pragma once

#include <sys/types.h>

#include <optional>
#include <vector>

#include "image.h"
#include "namespaces.h"
#include "ptrace.h"
#include "util.h"

struct PstreeEntry;

namespace criu
{

struct TreeTask {
	pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;  // as criu sees them
	pid_t vpid = 0;				     // as the tree sees it (its pid namespace)
	std::vector<pid_t> vtids;		     // likewise, in the order of seized->threads()
	bool zombie = false;
	uint32_t exit_status = 0;      // a zombie's, as waitpid() reports it
	std::optional<Seized> seized;  // every live task
	static std::vector<pid_t> thread_ids(Seized &s);
};

// Seizes root and every descendant (preorder) and finds the namespaces the
// tree lives in (see namespaces.h). On error everything seized so far is
// released and runs on.
// timeout_s: the whole tree must be stopped within it (--timeout).
Result<std::vector<TreeTask>> seize_tree(pid_t root, const std::vector<std::string> &externals, NsSet &ns,
					 unsigned timeout_s);

// After a dump: kills every task, and waits (briefly) until the zombies are
// reaped by whoever inherits them, so that their PIDs are free again.
void kill_tree(std::vector<TreeTask> &tree);

Status write_pstree(const ImageDir &dir, std::vector<TreeTask> &tree);

// Restore side: validated entries, root first, parents before children.
Result<std::vector<PbPtr<PstreeEntry>>> read_pstree(const ImageDir &dir);

}  // namespace criu
