#include "ptrace.h"

#include <elf.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "fpu.h"
#include "log.h"
#include "proc.h"

namespace criu
{

namespace
{
constexpr long kERestartSys = 512, kERestartNoIntr = 513, kERestartNoHand = 514, kERestartBlock = 516;
constexpr long kNrRestartSyscall = 219;

// What the kernel does to a syscall interrupted by a signal without a
// handler: rewind to re-execute it (or restart_syscall for sleeps).
void fixup_restart(user_regs_struct &r)
{
	if ((long)r.orig_rax < 0)
		return;
	long ret = -(long)r.rax;
	if (ret == kERestartSys || ret == kERestartNoIntr || ret == kERestartNoHand) {
		r.rax = r.orig_rax;
		r.rip -= 2;
	} else if (ret == kERestartBlock) {
		r.rax = kNrRestartSyscall;
		r.rip -= 2;
	}
}
}  // namespace

Seized::~Seized()
{
	if (attached_) {
		auto st = detach();
		if (!st)
			pr_err("%s\n", st.error().msg.c_str());
	}
}

SeizedThread *Seized::thread(pid_t tid)
{
	for (auto &t : threads_)
		if (t.tid == tid)
			return &t;
	return nullptr;
}

Status Seized::wait_stop(pid_t tid, int *status)
{
	for (;;) {
		pid_t r = waitpid(tid, status, __WALL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return sys_error("waitpid on thread %d", tid);
		}
		if (WIFEXITED(*status) || WIFSIGNALED(*status))
			return Error{strfmt("thread %d of PID %d exited while being dumped", tid, pid_)};
		return {};
	}
}

namespace
{

size_t g_tracees_left = 0;

// What keeps a thread from stopping, for the error: its state and where
// it sleeps in the kernel.
std::string sleep_of(pid_t pid, pid_t tid)
{
	auto st = parse_status(pid, tid);
	std::string state = st && st->count("State") ? (*st)["State"] : "?";
	auto wchan = read_file(strfmt("/proc/%d/task/%d/wchan", pid, tid));
	return wchan && !wchan->empty() && *wchan != "0" ? strfmt("state %s, in %s", state.c_str(), wchan->c_str())
							 : strfmt("state %s", state.c_str());
}

}  // namespace

bool tracees_left()
{
	return g_tracees_left > 0;
}

// Polls: a blocking waitpid would never return for a thread that does not
// stop, and SIGCHLD (for sigtimedwait) is not sent to a tracer that
// ignores it. The first stops come within tens of microseconds: the sleeps
// start short.
Status Seized::wait_stop_until(pid_t tid, int *status, const timespec &deadline)
{
	for (long nap_us = 10;; nap_us = std::min(nap_us * 2, 1000L)) {
		pid_t r = waitpid(tid, status, __WALL | WNOHANG);
		if (r < 0 && errno != EINTR)
			return sys_error("waitpid on thread %d", tid);
		if (r > 0) {
			if (WIFEXITED(*status) || WIFSIGNALED(*status))
				return Error{strfmt("thread %d of PID %d exited while being dumped", tid, pid_)};
			return {};
		}
		double left_us = -ms_since(deadline) * 1e3;
		if (left_us <= 0)
			return Error{strfmt("thread %d of PID %d did not stop within the timeout (%s)", tid, pid_,
					    sleep_of(pid_, tid).c_str())};
		usleep((useconds_t)std::min<double>(nap_us, left_us + 1));
	}
}

Result<Seized> Seized::seize(pid_t pid, const timespec &deadline)
{
	auto st = parse_status(pid, 0);
	if (!st)
		return Error{strfmt("PID %d does not exist (%s)", pid, st.error().msg.c_str())};
	auto &m = *st;
	if (m["Tgid"] != std::to_string(pid))
		return Error{strfmt("PID %d is a thread, not a process (its process is %s)", pid, m["Tgid"].c_str())};
	if (m["State"].starts_with("Z"))
		return Error{strfmt("PID %d is a zombie", pid)};
	if (m["TracerPid"] != "0")
		return Error{strfmt("PID %d is busy: already traced by PID %s", pid, m["TracerPid"].c_str())};

	Seized s;
	s.pid_ = pid;
	s.attached_ = true;
	s.was_stopped_ = m["State"].starts_with("T");
	// Threads may be created while we seize: repeat until the set is stable.
	for (bool grew = true; grew;) {
		grew = false;
		auto tids = list_threads(pid);
		if (!tids)
			return tids.error();
		for (pid_t tid : *tids) {
			if (s.thread(tid))
				continue;
			if (ptrace(PTRACE_SEIZE, tid, nullptr, (void *)(long)PTRACE_O_TRACESYSGOOD) < 0) {
				if (errno == ESRCH)
					continue;
				return sys_error("can't seize thread %d of PID %d", tid, pid);
			}
			s.threads_.push_back({tid});
			if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) < 0)
				return sys_error("can't interrupt thread %d", tid);
			grew = true;
		}
	}
	for (auto &t : s.threads_) {
		// A signal being delivered shows up first: let it be delivered (as it
		// would have been before the freeze) and wait for the interrupt.
		for (;;) {
			int status;
			TRY(s.wait_stop_until(t.tid, &status, deadline));
			if (status >> 16 == PTRACE_EVENT_STOP)
				break;
			int sig = WSTOPSIG(status);
			pr_debug("thread %d: passing signal %d before the freeze\n", t.tid, sig);
			if (ptrace(PTRACE_CONT, t.tid, nullptr, (void *)(long)sig) < 0)
				return sys_error("can't continue thread %d", t.tid);
		}
		if (ptrace(PTRACE_GETREGS, t.tid, nullptr, &t.regs) < 0)
			return sys_error("can't read registers of thread %d", t.tid);
		t.stopped = true;
		fixup_restart(t.regs);
		if (ptrace(PTRACE_SETREGS, t.tid, nullptr, &t.regs) < 0)
			return sys_error("can't set registers of thread %d", t.tid);
	}
	pr_info("Seized PID %d with %zu thread(s)\n", pid, s.threads_.size());
	return s;
}

Result<long> Seized::syscall(pid_t tid, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
			     uint64_t a6)
{
	SeizedThread *t = thread(tid);
	if (!t || !syscall_insn_)
		return Error{strfmt("can't run a syscall in thread %d: no syscall instruction found", tid)};
	user_regs_struct r = t->regs;
	r.rip = syscall_insn_;
	r.rax = nr;
	r.orig_rax = -1;
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	r.r9 = a6;
	if (ptrace(PTRACE_SETREGS, tid, nullptr, &r) < 0)
		return sys_error("can't set registers of thread %d", tid);
	// Two syscall stops: entry, then exit. Other stops are signals arriving
	// meanwhile; they are suppressed here and stay visible to the caller
	// through the dumped pending queue only if still queued.
	for (int stops = 0; stops < 2;) {
		if (ptrace(PTRACE_SYSCALL, tid, nullptr, nullptr) < 0)
			return sys_error("can't resume thread %d for syscall %ld", tid, nr);
		int status;
		TRY(wait_stop(tid, &status));
		if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
			stops++;
		else
			pr_warn("thread %d: unexpected stop 0x%x during syscall %ld\n", tid, status, nr);
	}
	if (ptrace(PTRACE_GETREGS, tid, nullptr, &r) < 0)
		return sys_error("can't read registers of thread %d", tid);
	if (ptrace(PTRACE_SETREGS, tid, nullptr, &t->regs) < 0)
		return sys_error("can't restore registers of thread %d", tid);
	return (long)r.rax;
}

Result<std::vector<uint8_t>> Seized::xsave(pid_t tid)
{
	std::vector<uint8_t> buf(xsave_max_size());
	iovec iov = {buf.data(), buf.size()};
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return sys_error("can't read the xsave area of thread %d", tid);
	buf.resize(iov.iov_len);
	return buf;
}

Result<uint64_t> Seized::blocked_mask(pid_t tid)
{
	uint64_t m = 0;
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(m), &m) < 0)
		return sys_error("can't read the signal mask of thread %d", tid);
	return m;
}

Result<std::vector<std::vector<uint8_t>>> Seized::pending(pid_t tid, bool shared)
{
	std::vector<std::vector<uint8_t>> out;
	for (uint64_t off = 0;; off++) {
		struct {
			uint64_t off;
			uint32_t flags;
			int32_t nr;
		} arg = {off, shared ? 1u : 0u, 1};
		uint8_t si[128];
		long n = ptrace(PTRACE_PEEKSIGINFO, tid, &arg, si);
		if (n < 0)
			return sys_error("can't read pending signals of thread %d", tid);
		if (n == 0)
			break;
		out.emplace_back(si, si + sizeof(si));
	}
	return out;
}

Status Seized::write_mem(uint64_t addr, const void *buf, size_t len)
{
	iovec local = {const_cast<void *>(buf), len}, remote = {(void *)addr, len};
	if (process_vm_writev(pid_, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return sys_error("can't write %zu bytes at 0x%lx in PID %d", len, (unsigned long)addr, pid_);
	return {};
}

Status Seized::read_mem(uint64_t addr, void *buf, size_t len)
{
	iovec local = {buf, len}, remote = {(void *)addr, len};
	if (process_vm_readv(pid_, &local, 1, &remote, 1, 0) != (ssize_t)len)
		return sys_error("can't read %zu bytes at 0x%lx in PID %d", len, (unsigned long)addr, pid_);
	return {};
}

Status Seized::detach()
{
	if (!attached_)
		return {};
	attached_ = false;
	Status res;
	for (auto &t : threads_) {
		if (!t.stopped) {
			// untouched; detachable only if it stopped since
			if (ptrace(PTRACE_DETACH, t.tid, nullptr, nullptr) < 0 && errno == ESRCH &&
			    ::syscall(SYS_tgkill, pid_, t.tid, 0) == 0) {
				g_tracees_left++;
				pr_info("thread %d of PID %d stays traced (not stopped) until criu exits\n", t.tid,
					pid_);
			}
			continue;
		}
		if (ptrace(PTRACE_SETREGS, t.tid, nullptr, &t.regs) < 0 && res)
			res = sys_error("can't restore registers of thread %d", t.tid);
		if (ptrace(PTRACE_DETACH, t.tid, nullptr, nullptr) < 0 && res)
			res = sys_error("can't detach from thread %d", t.tid);
	}
	return res;
}

void reap_all(std::set<pid_t> left)
{
	// polling each one: a blocking wait on one could wait for another
	for (int idle = 0; !left.empty() && idle < 20000;) {
		bool progress = false;
		for (auto it = left.begin(); it != left.end();) {
			int status;
			pid_t r = waitpid(*it, &status, __WALL | WNOHANG);
			if (r < 0 && errno != EINTR) {
				it = left.erase(it);  // not ours to wait for any more
				progress = true;
			} else if (r > 0 && (WIFEXITED(status) || WIFSIGNALED(status))) {
				it = left.erase(it);
				progress = true;
			} else {
				++it;
			}
		}
		if (progress) {
			idle = 0;
		} else {
			idle++;
			usleep(500);
		}
	}
}

void Seized::kill_task()
{
	if (!attached_)
		return;
	attached_ = false;
	::kill(pid_, SIGKILL);
	std::set<pid_t> left;
	for (auto &t : threads_)
		left.insert(t.tid);
	reap_all(left);
}

Scratch::~Scratch()
{
	if (auto st = unmap(); !st)
		pr_err("%s\n", st.error().msg.c_str());
}

Status Scratch::map()
{
	auto r = s_.syscall(tid_, SYS_mmap, 0, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    (uint64_t)-1, 0);
	if (!r)
		return r.error();
	if (*r < 0 && *r > -4096)
		return Error{strfmt("can't map a scratch page in PID %d: %s", s_.pid(), strerror((int)-*r))};
	addr_ = *r;
	return {};
}

Status Scratch::unmap()
{
	if (!addr_)
		return {};
	auto r = s_.syscall(tid_, SYS_munmap, addr_, kPageSize);
	addr_ = 0;
	if (!r)
		return r.error();
	return {};
}

Status Scratch::query(pid_t in_tid, long nr, uint64_t a1, uint64_t a2, uint64_t a3, void *out, size_t len,
		      const char *what, long *ret)
{
	auto r = s_.syscall(in_tid, nr, a1, a2, a3);
	if (!r)
		return r.error();
	if (*r < 0 && *r > -4096)
		return Error{strfmt("%s failed in thread %d: %s", what, in_tid, strerror((int)-*r))};
	if (ret)
		*ret = *r;
	return len ? s_.read_mem(addr_, out, len) : Status();
}

}  // namespace criu
