// cgroup limits of a dumped tree, for switch restore.
//
// Dump saves the memory and cpu limits of the root's cgroups (v1
// memory.limit_in_bytes, cpu.cfs_quota_us/cfs_period_us, cpu.shares; v2
// memory.max, cpu.max, cpu.weight) into cgroup-limits (key=value lines: an
// addition of this project, CRIU's cgroup.img describes whole hierarchies).
// A switch restore applies them to the sandbox's cgroups, and the restored
// root moves itself there before it runs anything of the tree's: its
// children and threads inherit the cgroups.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "image.h"
#include "options.h"
#include "util.h"

namespace criu
{

Status dump_cgroup_limits(const ImageDir &dir, pid_t pid);

// CRIU's `[CONTROLLER:]/PATH`: PATH absolute, without "..".
Result<CgroupRoot> parse_cgroup_root(const std::string &s);
// Where `--cgroup-root` puts a restored tree: PATH in the hierarchy of
// each controller whose limits criu saves (memory and cpu: the v2
// hierarchy where they are on it, else their v1 ones), or, for a
// CONTROLLER: form, in the v1 hierarchy of that controller (which then
// replaces the default for it). Hierarchies are those under
// /sys/fs/cgroup, as at dump.
std::vector<std::string> cgroup_root_dirs(const std::vector<CgroupRoot> &roots);

// The cgroups a restored tree goes into, opened before criu enters the
// sandbox's mount namespace (which has no /sys).
class CgroupTarget
{
public:
	static Result<CgroupTarget> open(const std::vector<std::string> &dirs);
	// Writes the dump's limits (those of the controllers present here).
	Status apply_limits(const ImageDir &images);
	// Moves the calling task into every cgroup. For the root of a restore
	// while it is single-threaded: on v1 it writes 0 (itself) into
	// `tasks`, a migration of one thread, which the kernel does without
	// taking cgroup_threadgroup_rwsem for writing. Moving a process through
	// `cgroup.procs` takes it, and when no other writer took it in about
	// the last RCU grace period, waits for a new one first (8-16 ms on
	// an idle VM: most of a switch restore, see Documentation/switch.md).
	// v2 has no `tasks` for a domain cgroup: cgroup.procs there.
	Status join_self() const;
	// For another process of criu to join them (join_through()): each
	// cgroup's `tasks` (v2: cgroup.procs) opened for writing.
	Result<std::vector<Fd>> join_files() const;
	// Moves the calling task into the cgroups of files join_files()
	// opened (or their copies), as join_self() does.
	static Status join_through(const std::vector<Fd> &files);
	// How many processes are in them now.
	Result<size_t> tasks() const;

private:
	std::vector<std::pair<std::string, Fd>> dirs_;	// path, directory fd
};

}  // namespace criu
