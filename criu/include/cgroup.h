// cgroup limits of a dumped tree, for switch restore.
//
// Dump saves the memory and cpu limits of the root's cgroups (v1
// memory.limit_in_bytes, cpu.cfs_quota_us/cfs_period_us, cpu.shares; v2
// memory.max, cpu.max, cpu.weight) into cgroup-limits (key=value lines: an
// addition of this project, CRIU's cgroup.img describes whole hierarchies).
// A switch restore applies them to the sandbox's cgroups and moves the
// restored root there before it runs: its children inherit the cgroup.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "image.h"
#include "util.h"

namespace criu
{

Status dump_cgroup_limits(const ImageDir &dir, pid_t pid);

// The cgroups a restored tree goes into, opened before criu enters the
// sandbox's mount namespace (which has no /sys).
class CgroupTarget
{
public:
	static Result<CgroupTarget> open(const std::vector<std::string> &dirs);
	// Writes the dump's limits (those of the controllers present here).
	Status apply_limits(const ImageDir &images);
	Status add(pid_t pid);
	// How many processes are in them now.
	Result<size_t> tasks() const;

private:
	std::vector<std::pair<std::string, Fd>> dirs_;	// path, directory fd
};

}  // namespace criu
