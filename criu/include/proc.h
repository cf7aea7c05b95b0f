// Parsers of /proc/PID files. Each returns an Error naming the file on
// failure; none of them ptrace or stop the task.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "util.h"

namespace criu
{

struct ProcVma {
	uint64_t start = 0, end = 0, pgoff = 0;
	uint32_t prot = 0;
	bool shared = false;
	uint32_t dev_major = 0, dev_minor = 0;
	uint64_t inode = 0;
	std::string path;		   // as shown in maps ("" for anonymous)
	std::vector<std::string> vmflags;  // smaps VmFlags mnemonics
	bool has_flag(const char *f) const;
};

Result<std::vector<ProcVma>> parse_smaps(pid_t pid);
Result<std::vector<ProcVma>> parse_maps(const std::string &path);

// For a process forked ahead to serve a later request (a service worker, a
// template holder's spare): maps every page of its private mappings now,
// but the ranges in skip (a template's memory): its own copy of each page
// of the writable ones (heap, stacks, data), the page cache's pages of its
// code and read-only data (fork copies no page table entries of those).
// Otherwise it faults on each page it first touches while it serves, 2-3
// us each in a VM. Not for a root made ahead: its restorer unmaps all of
// criu, which costs more the more pages are mapped. Best effort: a mapping
// the kernel refuses to populate is left to fault.
void own_pages_ahead(const std::vector<std::pair<uint64_t, uint64_t>> &skip = {});

// "Key:\tvalue" files (status).
Result<std::map<std::string, std::string>> parse_status(pid_t pid, pid_t tid);

// /proc/PID/stat fields, 1-based as in proc(5); field 2 (comm) is returned whole.
Result<std::vector<std::string>> parse_stat(pid_t pid);

struct FdInfo {
	uint64_t pos = 0;
	uint32_t flags = 0;
	int mnt_id = -1;
	std::map<std::string, std::string> extra;  // last value of each other key
	std::vector<std::string> lines;		   // every line, for repeated keys (tfd:)
};
Result<FdInfo> parse_fdinfo(pid_t pid, int fd);

struct Rlimit {
	uint64_t cur, max;
};
Result<std::vector<Rlimit>> parse_limits(pid_t pid);

Result<std::vector<pid_t>> list_threads(pid_t pid);
Result<std::vector<int>> list_fds(pid_t pid);

}  // namespace criu
