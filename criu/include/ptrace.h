// Freezing a process with ptrace and running system calls inside it.
//
// Seizing never changes the target: registers read at the freeze are
// restored on detach, and a syscall the task slept in is set up to be
// re-executed (or restarted through restart_syscall), as the kernel would on
// a signal without handler. The destructor detaches, so an error path always
// leaves the task running and untraced.
#pragma once

#include <set>

#include <sys/types.h>
#include <sys/user.h>

#include <map>
#include <vector>

#include "util.h"

namespace criu
{

struct SeizedThread {
	pid_t tid = 0;
	bool stopped = false;	  // its interrupt stop came: regs are its own
	user_regs_struct regs{};  // after the syscall-restart fixup
};

class Seized
{
public:
	Seized() = default;
	Seized(Seized &&o) noexcept
	    : pid_(o.pid_), attached_(std::exchange(o.attached_, false)), was_stopped_(o.was_stopped_),
	      syscall_insn_(o.syscall_insn_), threads_(std::move(o.threads_))
	{
	}
	Seized &operator=(Seized &&) = delete;
	Seized(const Seized &) = delete;
	~Seized();

	// Seizes and interrupts every thread of pid, and waits for each to
	// stop until deadline (CLOCK_MONOTONIC; CRIU's --timeout). A thread
	// the kernel does not stop by then (in uninterruptible sleep: the
	// parent of a vfork child, a hung file system) fails the seize. It
	// can't be detached until it stops, so it stays traced until this
	// process ends (see tracees_left()); it never runs changed.
	static Result<Seized> seize(pid_t pid, const timespec &deadline);

	pid_t pid() const { return pid_; }
	// The task was stopped by a signal (group stop) when it was seized.
	bool was_stopped() const { return was_stopped_; }
	std::vector<SeizedThread> &threads() { return threads_; }

	// Runs syscall nr with args in thread tid and returns its raw result
	// (-errno on failure). Needs the address of a "syscall" instruction.
	Result<long> syscall(pid_t tid, long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
			     uint64_t a5 = 0, uint64_t a6 = 0);
	void set_syscall_insn(uint64_t addr) { syscall_insn_ = addr; }

	Result<std::vector<uint8_t>> xsave(pid_t tid);
	Result<uint64_t> blocked_mask(pid_t tid);
	// Pending signals (raw 128-byte siginfos), private or shared queue.
	Result<std::vector<std::vector<uint8_t>>> pending(pid_t tid, bool shared);

	Status write_mem(uint64_t addr, const void *buf, size_t len);
	Status read_mem(uint64_t addr, void *buf, size_t len);

	// Restores registers and lets the task run on.
	Status detach();
	// Kills the task (after a dump without --leave-running).
	void kill_task();

private:
	Status wait_stop(pid_t tid, int *status);
	Status wait_stop_until(pid_t tid, int *status, const timespec &deadline);
	pid_t pid_ = 0;
	bool attached_ = false;
	bool was_stopped_ = false;
	uint64_t syscall_insn_ = 0;
	std::vector<SeizedThread> threads_;
	SeizedThread *thread(pid_t tid);
};

// Reaps every one of tids (processes or threads we trace or parent) as it
// dies, in whatever order: the last thread of a pid namespace's init waits
// in the kernel until the namespace's other tasks, our traced zombies
// included, are reaped. Gives up after 10 s without progress.
void reap_all(std::set<pid_t> tids);

// A page mapped inside the task for the results (and arguments) of injected
// syscalls. Unmapped by unmap() or the destructor, so an error path leaves
// nothing behind in the task.
class Scratch
{
public:
	Scratch(Seized &s, pid_t tid) : s_(s), tid_(tid) {}
	Scratch(const Scratch &) = delete;
	~Scratch();
	Status map();
	Status unmap();
	uint64_t addr() const { return addr_; }
	// Runs a syscall in in_tid; on success copies len bytes of the scratch
	// page to out and stores the return value in *ret.
	Status query(pid_t in_tid, long nr, uint64_t a1, uint64_t a2, uint64_t a3, void *out, size_t len,
		     const char *what, long *ret = nullptr);

private:
	Seized &s_;
	pid_t tid_;
	uint64_t addr_ = 0;
};

// Threads a failed seize left traced but not stopped: they run on, and
// are freed when this process exits, which it must do soon (a service
// worker then closes its connection instead of keeping it open).
bool tracees_left();

}  // namespace criu
