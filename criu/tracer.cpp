// The restore's tracer (see Documentation/restore.md, 5): criu seizes the
// root, lets it go, follows every task and thread of the tree into its
// blob, checks what each blob reported, then sets the registers, FPU state
// and signal masks and lets the tree run.
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>

#include "cgroup.h"
#include "fpu.h"
#include "log.h"
#include "mount.h"
#include "plugin.h"
#include "proc.h"
#include "ptrace.h"
#include "restore-tree.h"

namespace criu
{

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

}  // namespace

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

}  // namespace criu
