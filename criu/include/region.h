// The restorer's region in a task being restored: the blob's code, its
// PROT_NONE stop page, struct rst_args with its arrays (restorer-args.h)
// and the threads' stacks, mapped where neither the task's dump nor our
// own mappings are.
//
// A region is made in two steps. make() maps it and fills in everything
// the task's images and its address space decide; a root made ahead does
// that before its request comes. finish() adds what the task learns only
// once it opened its files (the fds of the VMAs' files, of the pages image,
// of the executable, the fds to close) and the VMAs as they are then (a
// held one may have been unheld); the blob may run after it. The arrays
// have room for every change finish() may meet.
#pragma once

#include <cstdint>
#include <vector>

#include "mem.h"
#include "restorer-args.h"
#include "util.h"

struct CoreEntry;
struct PstreeEntry;

namespace criu
{

// The PROT_NONE page behind the blob's code: its offset in the region.
uint64_t stop_page_offset();
// Where in the region a thread's stop on sig (SIGSEGV, SIGILL or SIGFPE)
// faults: rst_thread::stop_at calls there.
uint64_t stop_offset(int sig);

// What of a task's images its region is made of, and room for its setup's
// system calls (finish()).
struct RegionTask {
	const MemPlan &mem;
	const std::vector<PbPtr<CoreEntry>> &cores;  // [0] is the leader
	const PstreeEntry &pstree;
	size_t room_ops = 0;
};

class RestorerRegion
{
public:
	// Maps and fills the region of t, in a hole of our address space (read
	// now) and of the task's dump. shared: for a child forked after it (a
	// root made ahead), which then sees what we finish() in it.
	static Result<RestorerRegion> make(const RegionTask &t, bool shared = false);

	RestorerRegion(RestorerRegion &&o) noexcept;
	RestorerRegion &operator=(RestorerRegion &&o) noexcept;
	RestorerRegion(const RestorerRegion &) = delete;
	RestorerRegion &operator=(const RestorerRegion &) = delete;
	~RestorerRegion();  // unmaps it (a region jumped into is never destroyed)

	// The rest (see above); close_fds are criu's fds the blob closes once
	// the memory is in place, ops the task's setup.
	Status finish(const MemPlan &m, int pages_fd, int exe_fd, const std::vector<int> &close_fds,
		      const std::vector<rst_op> &ops);
	// For a root made ahead that enters the blob before its request: the
	// blob waits for a byte on go_fd (the task's), and takes the driver's
	// fds through pidfd (RST_OP_TAKE_FD). Both are closed with close_fds.
	void wait_for_go(int go_fd, int pidfd);
	// Logs what make() chose that a user may want to know (make() may run
	// before the log is set up).
	void log_choices(const RegionTask &t) const;

	uint64_t start() const { return start_; }
	uint64_t len() const { return len_; }
	uint64_t args_addr() const { return start_ + args_off_; }
	uint64_t stack_top() const { return stack_top_; }

private:
	RestorerRegion() = default;
	rst_args *args() const { return reinterpret_cast<rst_args *>(start_ + args_off_); }

	uint64_t start_ = 0, len_ = 0, mapped_len_ = 0;
	uint64_t args_off_ = 0, stack_top_ = 0;
	size_t room_runs_ = 0, room_close_ = 0, room_ops_ = 0;
};

}  // namespace criu
