// criu dump: freeze the process tree, collect each task's state, write the
// images, then kill the tree (or let it run on with --leave-running). Any
// failure detaches and leaves every task running, as it was.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>

#include "arena.h"
#include "cgroup.h"
#include "core.pb-c.h"
#include "files.h"
#include "fpu.h"
#include "fs.pb-c.h"
#include "inventory.pb-c.h"
#include "ipc.h"
#include "log.h"
#include "magic.h"
#include "mem.h"
#include "mount.h"
#include "net.h"
#include "options.h"
#include "plugin.h"
#include "proc.h"
#include "pstree.h"
#include "ptrace.h"
#include "sandbox.h"

namespace criu
{

namespace
{

constexpr int kNSig = 64;
constexpr long kPtraceGetRseqConfig = 0x420f;
constexpr int kSchedDeadline = 6;  // (not in glibc's <sched.h>)

// Finds a "syscall" instruction in the target's vdso for syscall injection.
Status find_syscall_insn(Seized &s)
{
	auto vmas = parse_maps(strfmt("/proc/%d/maps", s.pid()));
	if (!vmas)
		return vmas.error();
	for (auto &v : *vmas) {
		if (v.path != "[vdso]")
			continue;
		std::vector<uint8_t> code(v.end - v.start);
		TRY(s.read_mem(v.start, code.data(), code.size()));
		for (size_t i = 0; i + 1 < code.size(); i++)
			if (code[i] == 0x0f && code[i + 1] == 0x05) {
				s.set_syscall_insn(v.start + i);
				return {};
			}
	}
	return Error{strfmt("PID %d has no vdso with a syscall instruction to borrow", s.pid())};
}

uint32_t parse_hex32(const std::string &s)
{
	return parse_u64(s, 16).value_or(0);
}

Result<CredsEntry *> collect_creds(Arena &a, pid_t pid, pid_t tid, uint32_t secbits)
{
	auto st = parse_status(pid, tid);
	if (!st)
		return st.error();
	auto ids = [&](const char *key, uint32_t out[4]) -> Status {
		auto f = split((*st)[key], '\t');
		if (f.size() < 4)
			return Error{strfmt("/proc/%d/task/%d/status: bad %s line", pid, tid, key)};
		for (int i = 0; i < 4; i++)
			out[i] = parse_u64(f[i]).value_or(0);
		return {};
	};
	uint32_t u[4], g[4];
	TRY(ids("Uid", u));
	TRY(ids("Gid", g));
	auto *c = a.make<CredsEntry>(CREDS_ENTRY__INIT);
	c->uid = u[0], c->euid = u[1], c->suid = u[2], c->fsuid = u[3];
	c->gid = g[0], c->egid = g[1], c->sgid = g[2], c->fsgid = g[3];
	auto caps = [&](const char *key, size_t *n, uint32_t **out) {
		uint64_t v = parse_u64((*st)[key], 16).value_or(0);
		*n = 2;
		*out = a.array<uint32_t>(2);
		(*out)[0] = (uint32_t)v;
		(*out)[1] = (uint32_t)(v >> 32);
	};
	caps("CapInh", &c->n_cap_inh, &c->cap_inh);
	caps("CapPrm", &c->n_cap_prm, &c->cap_prm);
	caps("CapEff", &c->n_cap_eff, &c->cap_eff);
	caps("CapBnd", &c->n_cap_bnd, &c->cap_bnd);
	c->secbits = secbits;
	std::vector<uint32_t> groups;
	for (auto t : split((*st)["Groups"], ' '))
		if (auto v = parse_u64(t))
			groups.push_back(*v);
	c->n_groups = groups.size();
	c->groups = a.copy(groups);
	return c;
}

SignalQueueEntry *signal_queue(Arena &a, const std::vector<std::vector<uint8_t>> &sigs)
{
	auto *q = a.make<SignalQueueEntry>(SIGNAL_QUEUE_ENTRY__INIT);
	q->n_signals = sigs.size();
	q->signals = a.array<SiginfoEntry *>(sigs.size());
	for (size_t i = 0; i < sigs.size(); i++) {
		auto *e = a.make<SiginfoEntry>(SIGINFO_ENTRY__INIT);
		e->siginfo.len = sigs[i].size();
		e->siginfo.data = a.copy(sigs[i]);
		q->signals[i] = e;
	}
	return q;
}

UserX86RegsEntry *regs_to_image(Arena &a, const user_regs_struct &r)
{
	auto *g = a.make<UserX86RegsEntry>(USER_X86_REGS_ENTRY__INIT);
	g->r15 = r.r15, g->r14 = r.r14, g->r13 = r.r13, g->r12 = r.r12, g->bp = r.rbp, g->bx = r.rbx;
	g->r11 = r.r11, g->r10 = r.r10, g->r9 = r.r9, g->r8 = r.r8, g->ax = r.rax, g->cx = r.rcx;
	g->dx = r.rdx, g->si = r.rsi, g->di = r.rdi, g->orig_ax = r.orig_rax, g->ip = r.rip, g->cs = r.cs;
	g->flags = r.eflags, g->sp = r.rsp, g->ss = r.ss, g->fs_base = r.fs_base, g->gs_base = r.gs_base;
	g->ds = r.ds, g->es = r.es, g->fs = r.fs, g->gs = r.gs;
	g->has_mode = true;
	g->mode = USER_X86_REGS_MODE__NATIVE;
	return g;
}

struct Dumper {
	const Options &o;
	const TreeTask &task;
	Seized &s;
	const NsSet &ns;
	const ImageDir &dir;
	FileTable &files;
	uint32_t id;  // of this task's fd table, fs and mm (one each: no sharing)
	Arena a;
	TaskKobjIdsEntry *ids = nullptr;

	// A thread's TID as the tree sees it (in its pid namespace).
	pid_t vtid(pid_t tid) const
	{
		for (size_t i = 0; i < s.threads().size(); i++)
			if (s.threads()[i].tid == tid)
				return task.vtids[i];
		return tid;
	}

	Result<ThreadCoreEntry *> thread_core(Scratch &sc, SeizedThread &t)
	{
		pid_t tid = t.tid;
		auto *tc = a.make<ThreadCoreEntry>(THREAD_CORE_ENTRY__INIT);
		uint64_t head = 0;
		size_t len = 0;
		if (syscall(SYS_get_robust_list, tid, &head, &len) < 0)
			return sys_error("can't get the robust futex list of thread %d", tid);
		tc->futex_rla = head;
		tc->futex_rla_len = len;
		errno = 0;
		int nice = getpriority(PRIO_PROCESS, tid);
		if (errno)
			return sys_error("can't get the nice value of thread %d", tid);
		tc->has_sched_nice = true;
		tc->sched_nice = nice;
		int policy = sched_getscheduler(tid);
		sched_param sp{};
		if (policy < 0 || sched_getparam(tid, &sp) < 0)
			return sys_error("can't get the scheduler of thread %d", tid);
		if ((policy & ~SCHED_RESET_ON_FORK) == kSchedDeadline)
			return Error{strfmt("thread %d of PID %d runs under SCHED_DEADLINE, which is not supported yet",
					    tid, s.pid())};
		tc->has_sched_policy = tc->has_sched_prio = true;
		tc->sched_policy = policy;
		tc->sched_prio = sp.sched_priority;
		auto mask = s.blocked_mask(tid);
		if (!mask)
			return mask.error();
		tc->has_blk_sigset = true;
		tc->blk_sigset = *mask;

		uint64_t ss[3];
		TRY(sc.query(tid, SYS_sigaltstack, 0, sc.addr(), 0, ss, sizeof(ss), "sigaltstack"));
		auto *sas = a.make<ThreadSasEntry>(THREAD_SAS_ENTRY__INIT);
		sas->ss_sp = ss[0];
		sas->ss_flags = (uint32_t)ss[1];
		sas->ss_size = ss[2];
		tc->sas = sas;
		int32_t pdeath = 0;
		TRY(sc.query(tid, SYS_prctl, PR_GET_PDEATHSIG, sc.addr(), 0, &pdeath, 4, "PR_GET_PDEATHSIG"));
		tc->has_pdeath_sig = true;
		tc->pdeath_sig = pdeath;
		long secbits = 0;
		TRY(sc.query(tid, SYS_prctl, PR_GET_SECUREBITS, 0, 0, nullptr, 0, "PR_GET_SECUREBITS", &secbits));
		auto pend = s.pending(tid, false);
		if (!pend)
			return pend.error();
		tc->signals_p = signal_queue(a, *pend);
		auto creds = collect_creds(a, s.pid(), tid, secbits);
		if (!creds)
			return creds.error();
		tc->creds = *creds;
		auto comm = read_file(strfmt("/proc/%d/task/%d/comm", s.pid(), tid));
		if (!comm)
			return comm.error();
		if (!comm->empty() && comm->back() == '\n')
			comm->pop_back();
		tc->comm = a.str(*comm);

		struct {
			uint64_t ptr;
			uint32_t size, sig, flags, pad;
		} rseq{};
		if (ptrace((__ptrace_request)kPtraceGetRseqConfig, tid, (void *)sizeof(rseq), &rseq) < 0)
			return sys_error("can't get the rseq registration of thread %d", tid);
		if (rseq.ptr) {
			auto *r = a.make<RseqEntry>(RSEQ_ENTRY__INIT);
			r->rseq_abi_pointer = rseq.ptr;
			r->rseq_abi_size = rseq.size;
			r->signature = rseq.sig;
			tc->rseq_entry = r;
		}
		auto st = parse_status(s.pid(), tid);
		if (!st)
			return st.error();
		if ((*st)["Seccomp"] != "0")
			return Error{
			    strfmt("thread %d of PID %d uses seccomp, which is not supported yet", tid, s.pid())};
		if ((*st)["NoNewPrivs"] == "1")
			tc->has_no_new_privs = tc->no_new_privs = true;
		return tc;
	}

	Result<ThreadInfoX86 *> thread_info(Scratch &sc, SeizedThread &t)
	{
		auto *ti = a.make<ThreadInfoX86>(THREAD_INFO_X86__INIT);
		uint64_t clear_tid = 0;
		TRY(sc.query(t.tid, SYS_prctl, PR_GET_TID_ADDRESS, sc.addr(), 0, &clear_tid, 8, "PR_GET_TID_ADDRESS"));
		ti->clear_tid_addr = clear_tid;
		ti->gpregs = regs_to_image(a, t.regs);
		auto xs = s.xsave(t.tid);
		if (!xs)
			return xs.error();
		ti->fpregs = fpu_to_image(a, *xs);
		return ti;
	}

	// /proc/PID/timers: "ID: n", "signal: signo/sival", "notify: kind/pid|tid.N",
	// "ClockID: n"; the times come from timer_gettime() inside the task.
	Status posix_timers(Scratch &sc, TaskTimersEntry *timers)
	{
		pid_t pid = s.pid();
		auto text = read_file(strfmt("/proc/%d/timers", pid));
		if (!text)
			return text.error();
		std::vector<PosixTimerEntry *> out;
		PosixTimerEntry *cur = nullptr;
		for (auto line : split(*text, '\n')) {
			auto colon = line.find(": ");
			if (colon == std::string_view::npos)
				continue;
			auto key = line.substr(0, colon);
			std::string val(line.substr(colon + 2));
			if (key == "ID") {
				cur = a.make<PosixTimerEntry>(POSIX_TIMER_ENTRY__INIT);
				cur->it_id = parse_u64(val).value_or(0);
				out.push_back(cur);
			} else if (!cur) {
				return Error{strfmt("/proc/%d/timers: unexpected line before an ID", pid)};
			} else if (key == "signal") {
				auto slash = val.find('/');
				cur->si_signo = parse_u64(val.substr(0, slash)).value_or(0);
				cur->sival_ptr = parse_u64(val.substr(slash + 1), 16).value_or(0);
			} else if (key == "notify") {
				// kind/pid.N or kind/tid.N
				auto slash = val.find('/'), dot = val.find('.');
				auto kind = val.substr(0, slash);
				uint32_t n = kind == "none"	? SIGEV_NONE
					     : kind == "thread" ? SIGEV_THREAD
								: SIGEV_SIGNAL;
				if (val.compare(slash + 1, 3, "tid") == 0) {
					n |= SIGEV_THREAD_ID;
					cur->has_notify_thread_id = true;
					cur->notify_thread_id = vtid(parse_u64(val.substr(dot + 1)).value_or(0));
				}
				cur->it_sigev_notify = n;
			} else if (key == "ClockID") {
				cur->clock_id = parse_u64(val).value_or(0);
			}
		}
		for (auto *t : out) {
			uint64_t its[4];
			TRY(sc.query(pid, SYS_timer_gettime, t->it_id, sc.addr(), 0, its, sizeof(its),
				     "timer_gettime"));
			t->isec = its[0], t->insec = its[1], t->vsec = its[2], t->vnsec = its[3];
			long overrun = 0;
			TRY(sc.query(pid, SYS_timer_getoverrun, t->it_id, 0, 0, nullptr, 0, "timer_getoverrun",
				     &overrun));
			t->overrun = overrun;
		}
		timers->n_posix = out.size();
		timers->posix = a.copy(out);
		return {};
	}

	Result<TaskCoreEntry *> task_core(Scratch &sc)
	{
		pid_t pid = s.pid();
		auto *tc = a.make<TaskCoreEntry>(TASK_CORE_ENTRY__INIT);
		tc->task_state = s.was_stopped() ? kTaskStopped : kTaskAlive;
		auto pers = read_file(strfmt("/proc/%d/personality", pid));
		if (!pers)
			return pers.error();
		tc->personality = parse_hex32(std::string(split(*pers, '\n')[0]));
		auto stat = parse_stat(pid);
		if (!stat)
			return stat.error();
		tc->flags = parse_u64((*stat)[9]).value_or(0);
		auto mask = s.blocked_mask(pid);
		if (!mask)
			return mask.error();
		tc->blk_sigset = *mask;
		tc->comm = a.str((*stat)[2]);

		tc->n_sigactions = kNSig;
		tc->sigactions = a.array<SaEntry *>(kNSig);
		for (int sig = 1; sig <= kNSig; sig++) {
			uint64_t k[4] = {};
			if (sig != SIGKILL && sig != SIGSTOP) {
				auto r = s.syscall(pid, SYS_rt_sigaction, sig, 0, sc.addr(), sizeof(uint64_t));
				if (!r)
					return r.error();
				if (*r < 0)
					return Error{strfmt("rt_sigaction(%d) failed in PID %d: %s", sig, pid,
							    strerror((int)-*r))};
				TRY(s.read_mem(sc.addr(), k, sizeof(k)));
			}
			auto *e = a.make<SaEntry>(SA_ENTRY__INIT);
			e->sigaction = k[0], e->flags = k[1], e->restorer = k[2], e->mask = k[3];
			tc->sigactions[sig - 1] = e;
		}

		auto *timers = a.make<TaskTimersEntry>(TASK_TIMERS_ENTRY__INIT);
		ItimerEntry **slot[3] = {&timers->real, &timers->virt, &timers->prof};
		for (int w = 0; w < 3; w++) {
			uint64_t it[4];
			TRY(sc.query(pid, SYS_getitimer, w, sc.addr(), 0, it, sizeof(it), "getitimer"));
			auto *e = a.make<ItimerEntry>(ITIMER_ENTRY__INIT);
			e->isec = it[0], e->iusec = it[1], e->vsec = it[2], e->vusec = it[3];
			*slot[w] = e;
		}
		TRY(posix_timers(sc, timers));
		tc->timers = timers;

		auto lim = parse_limits(pid);
		if (!lim)
			return lim.error();
		auto *rl = a.make<TaskRlimitsEntry>(TASK_RLIMITS_ENTRY__INIT);
		rl->n_rlimits = lim->size();
		rl->rlimits = a.array<RlimitEntry *>(lim->size());
		for (size_t i = 0; i < lim->size(); i++) {
			auto *e = a.make<RlimitEntry>(RLIMIT_ENTRY__INIT);
			e->cur = (*lim)[i].cur;
			e->max = (*lim)[i].max;
			rl->rlimits[i] = e;
		}
		tc->rlimits = rl;
		auto shared = s.pending(pid, true);
		if (!shared)
			return shared.error();
		tc->signals_s = signal_queue(a, *shared);

		int32_t subreaper = 0;
		TRY(sc.query(pid, SYS_prctl, PR_GET_CHILD_SUBREAPER, sc.addr(), 0, &subreaper, 4,
			     "PR_GET_CHILD_SUBREAPER"));
		tc->has_child_subreaper = true;
		tc->child_subreaper = subreaper;
		auto oom = read_file(strfmt("/proc/%d/oom_score_adj", pid));
		if (oom) {
			tc->has_oom_score_adj = true;
			tc->oom_score_adj = atoi(oom->c_str());
		}
		auto login = read_file(strfmt("/proc/%d/loginuid", pid));
		if (login) {
			tc->has_loginuid = true;
			tc->loginuid = strtoul(login->c_str(), nullptr, 10);
		}
		return tc;
	}

	Status write_fs(uint32_t fs_id)
	{
		pid_t pid = s.pid();
		auto st = parse_status(pid, 0);
		if (!st)
			return st.error();
		FsEntry fs = FS_ENTRY__INIT;
		char buf[PATH_MAX + 1];
		for (auto [name, out] : {std::pair{"cwd", &fs.cwd_id}, std::pair{"root", &fs.root_id}}) {
			auto link = strfmt("/proc/%d/%s", pid, name);
			ssize_t n = readlink(link.c_str(), buf, PATH_MAX);
			if (n < 0)
				return sys_error("can't read %s", link.c_str());
			auto id = files.add_mapped(pid, link, std::string(buf, n), O_RDONLY | O_DIRECTORY);
			if (!id)
				return id.error();
			*out = *id;
		}
		fs.has_umask = true;
		fs.umask = parse_u64((*st)["Umask"], 8).value_or(022);
		return write_one(dir, strfmt("fs-%u.img", fs_id), FS_MAGIC, &fs.base);
	}

	Status write_ids()
	{
		ids = a.make<TaskKobjIdsEntry>(TASK_KOBJ_IDS_ENTRY__INIT);
		ids->vm_id = ids->files_id = ids->fs_id = ids->sighand_id = id;
		struct {
			const char *ns;
			protobuf_c_boolean *has;
			uint32_t *id;
		} nss[] = {
		    {"pid", &ids->has_pid_ns_id, &ids->pid_ns_id},
		    {"net", &ids->has_net_ns_id, &ids->net_ns_id},
		    {"ipc", &ids->has_ipc_ns_id, &ids->ipc_ns_id},
		    {"uts", &ids->has_uts_ns_id, &ids->uts_ns_id},
		    {"mnt", &ids->has_mnt_ns_id, &ids->mnt_ns_id},
		    {"user", &ids->has_user_ns_id, &ids->user_ns_id},
		    {"cgroup", &ids->has_cgroup_ns_id, &ids->cgroup_ns_id},
		};
		for (auto &n : nss) {
			struct stat st;
			if (stat(strfmt("/proc/%d/ns/%s", s.pid(), n.ns).c_str(), &st) == 0) {
				*n.has = true;
				*n.id = st.st_ino;
			}
		}
		return write_one(dir, strfmt("ids-%d.img", task.vpid), IDS_MAGIC, &ids->base);
	}

	Status run()
	{
		pid_t pid = s.pid();
		TRY(find_syscall_insn(s));
		Scratch sc(s, pid);
		TRY(sc.map());
		auto tcore = task_core(sc);
		if (!tcore)
			return tcore.error();
		std::vector<CoreEntry *> cores;
		for (auto &t : s.threads()) {
			auto *core = a.make<CoreEntry>(CORE_ENTRY__INIT);
			core->mtype = CORE_ENTRY__MARCH__X86_64;
			auto ti = thread_info(sc, t);
			if (!ti)
				return ti.error();
			core->thread_info = *ti;
			auto thc = thread_core(sc, t);
			if (!thc)
				return thc.error();
			core->thread_core = *thc;
			if (t.tid == pid)
				core->tc = *tcore;
			cores.push_back(core);
		}
		MmExtras x;
		long brk = 0, dumpable = 0, thp = 0;
		TRY(sc.query(pid, SYS_brk, 0, 0, 0, nullptr, 0, "brk", &brk));
		TRY(sc.query(pid, SYS_prctl, PR_GET_DUMPABLE, 0, 0, nullptr, 0, "PR_GET_DUMPABLE", &dumpable));
		TRY(sc.query(pid, SYS_prctl, PR_GET_THP_DISABLE, 0, 0, nullptr, 0, "PR_GET_THP_DISABLE", &thp));
		x.brk = brk;
		x.dumpable = dumpable;
		x.thp_disabled = thp;
		x.sysv_ok = ns.ipc;
		utsname uts{};
		if (ns.uts && id == 1)
			TRY(sc.query(pid, SYS_uname, sc.addr(), 0, 0, &uts, sizeof(uts), "uname"));
		TRY(sc.unmap());
		pr_info("Task state of PID %d collected\n", pid);

		TRY(write_ids());
		if (ns.uts && id == 1)
			TRY(write_uts(dir, ids->uts_ns_id, uts.nodename, uts.domainname));
		if (ns.ipc && id == 1)
			TRY(dump_ipc_ns(dir, pid, ids->ipc_ns_id));
		for (size_t i = 0; i < cores.size(); i++)
			TRY(write_one(dir, strfmt("core-%d.img", task.vtids[i]), CORE_MAGIC, &cores[i]->base));
		auto mem = dump_memory(s, dir, files, x, task.vpid, id);
		if (!mem)
			return mem.error();
		pr_info("Memory of PID %d dumped\n", pid);
		TRY(files.dump_fds(pid, dir, ids->files_id, o.shell_job));
		return write_fs(ids->fs_id);
	}
};

// A zombie is its exit status: there is nothing else left of it.
Status write_zombie_core(const ImageDir &dir, const TreeTask &t)
{
	TaskCoreEntry tc = TASK_CORE_ENTRY__INIT;
	tc.task_state = kTaskDead;
	tc.exit_code = t.exit_status;
	auto stat = parse_stat(t.pid);
	std::string comm = stat && stat->size() > 2 ? (*stat)[2] : "";
	tc.comm = comm.data();
	CoreEntry core = CORE_ENTRY__INIT;
	core.mtype = CORE_ENTRY__MARCH__X86_64;
	core.tc = &tc;
	return write_one(dir, strfmt("core-%d.img", t.vpid), CORE_MAGIC, &core.base);
}

Status write_inventory(const ImageDir &dir, TaskKobjIdsEntry *root_ids)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	inv.img_version = 2;  // CRTOOLS_IMAGES_V1_1
	inv.has_fdinfo_per_id = inv.has_ns_per_id = true;
	inv.fdinfo_per_id = inv.ns_per_id = true;
	inv.root_ids = root_ids;
	inv.has_lsmtype = true;
	inv.lsmtype = LSMTYPE__NO_LSM;
	timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	inv.has_dump_uptime = true;
	inv.dump_uptime = ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
	return write_one(dir, "inventory.img", INVENTORY_MAGIC, &inv.base);
}

// criu in the tree's network namespace while it dumps: sock_diag answers
// only for sockets of the caller's namespace.
class NetnsGuard
{
public:
	Status enter(pid_t pid)
	{
		mine_.reset(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
		Fd its(::open(strfmt("/proc/%d/ns/net", pid).c_str(), O_RDONLY | O_CLOEXEC));
		if (!mine_.valid() || !its.valid() || setns(its.get(), CLONE_NEWNET) < 0)
			return sys_error("can't enter the network namespace of PID %d", pid);
		return {};
	}
	~NetnsGuard()
	{
		if (mine_.valid() && setns(mine_.get(), CLONE_NEWNET) < 0)
			pr_err("can't return to criu's network namespace: %s\n", strerror(errno));
	}

private:
	Fd mine_;
};

Status dump_tree(const Options &o, const ImageDir &dir, std::vector<TreeTask> &tree, const NsSet &ns)
{
	NetnsGuard netns;
	if (!ns.ext_net.empty() || ns.net)
		TRY(netns.enter(tree[0].pid));
	FileTable files(dir);
	std::vector<std::unique_ptr<Dumper>> dumpers;  // the root's ids go into the inventory
	for (size_t i = 0; i < tree.size(); i++) {
		TreeTask &t = tree[i];
		if (t.zombie) {
			TRY(write_zombie_core(dir, t));
			continue;
		}
		dumpers.push_back(std::make_unique<Dumper>(o, t, *t.seized, ns, dir, files, (uint32_t)i + 1));
		if (auto st = dumpers.back()->run(); !st)
			return Error{strfmt("PID %d: %s", t.pid, st.error().msg.c_str())};
	}
	TRY(files.check_peers());
	TRY(files.write(dir));
	TRY(write_pstree(dir, tree));
	TRY(write_external_ns(dir, {ns.ext_net, ns.ext_mnt}));
	if (ns.net)
		TRY(dump_netns(dir, dumpers[0]->ids->net_ns_id));
	if (ns.mnt)
		TRY(dump_mounts(dir, dumpers[0]->ids->mnt_ns_id, tree[0].pid, o.externals));
	TRY(dump_cgroup_limits(dir, tree[0].pid));
	return write_inventory(dir, dumpers[0]->ids);
}

}  // namespace

Status dump_task(const Options &o)
{
	if (o.pid <= 0)
		return Error{"dump: a PID is needed (-t PID)"};
	auto dir = ImageDir::open(o.images_dir, true);
	if (!dir)
		return dir.error();
	plugins::set_image_dir(dir->fd());
	timespec t0 = now();
	pr_info("Dumping PID %d into %s\n", o.pid, o.images_dir.c_str());
	TRY(notify(o, "pre-dump", o.pid));
	NsSet ns;
	auto tree = seize_tree(o.pid, o.externals, ns, o.timeout);
	if (!tree)
		return tree.error();
	pr_info("Seized %zu task(s) in %.3f ms; own namespaces: %s\n", tree->size(), ms_since(t0), ns.str().c_str());
	// On failure the Seized destructors detach: every task runs on unchanged.
	if (auto st = dump_tree(o, *dir, *tree, ns); !st)
		return Error{strfmt("dump of PID %d failed: %s", o.pid, st.error().msg.c_str())};
	TRY(notify(o, "post-dump", o.pid));
	if (o.leave_running) {
		for (auto &t : *tree)
			if (t.seized)
				TRY(t.seized->detach());
	} else {
		kill_tree(*tree);
	}
	pr_info("Dumping finished successfully in %.3f ms\n", ms_since(t0));
	return {};
}

int cmd_dump(const Options &o)
{
	if (auto st = dump_task(o); !st) {
		pr_err("%s\n", st.error().msg.c_str());
		return 1;
	}
	return 0;
}

}  // namespace criu
