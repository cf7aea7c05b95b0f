#include "region.h"

#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>

#include "core.pb-c.h"
#include "log.h"
#include "mm.pb-c.h"
#include "proc.h"
#include "pstree.pb-c.h"

extern "C" const char restorer_blob[], restorer_blob_end[];

namespace criu
{

namespace
{

constexpr uint64_t kLeaderStack = 64 * 1024ULL;

uint64_t page_align(uint64_t v)
{
	return (v + kPageSize - 1) & ~(kPageSize - 1);
}

// Whether the blob's threads may stop on a fault that forces sig
// (rst_thread::stop_at): the dump neither ignores it nor has it pending.
bool may_force(const rst_args &a, int sig)
{
	auto is_sig = [sig](const rst_siginfo &s) {
		int32_t signo;
		memcpy(&signo, s.raw, sizeof(signo));
		return signo == sig;
	};
	if (((int)a.nr_sigactions >= sig && a.sigactions[sig - 1].handler == (uint64_t)SIG_IGN) ||
	    std::any_of(a.shared_signals, a.shared_signals + a.nr_shared_signals, is_sig))
		return false;
	return std::none_of(a.threads, a.threads + a.nr_threads, [&](const rst_thread &t) {
		return std::any_of(t.signals, t.signals + t.nr_signals, is_sig);
	});
}

// Finds an address range free in our current address space and in the target's.
Result<uint64_t> find_hole(const std::vector<ProcVma> &cur, const MemPlan &m, uint64_t len)
{
	std::vector<std::pair<uint64_t, uint64_t>> used;
	used.reserve(cur.size() + m.vmas.size() + m.specials.size());
	for (auto &v : cur)
		used.emplace_back(v.start, v.end);
	for (auto &v : m.vmas)
		used.emplace_back(v.start, v.end);
	for (auto &s : m.specials)
		used.emplace_back(s.target_start, s.target_start + s.len);
	std::sort(used.begin(), used.end());
	// Search from the top, below the usual mmap area, leaving a guard gap.
	const uint64_t gap = 16 * kPageSize;
	uint64_t top = 0x7f0000000000ULL;
	for (auto it = used.rbegin(); it != used.rend(); ++it) {
		if (it->first >= top)
			continue;
		if (it->second + gap + len + gap <= top)
			return top - gap - len;
		top = std::min(top, it->first);
	}
	if (top > 0x10000000ULL + len + gap)
		return top - gap - len;
	return Error{strfmt("no hole of %llu bytes for the restorer", (unsigned long long)len)};
}

// The kernel's, read once: it can't change while we run.
uint32_t cap_last_cap()
{
	static const uint32_t v = [] {
		auto lc = read_file("/proc/sys/kernel/cap_last_cap");
		return lc ? (uint32_t)atoi(lc->c_str()) : 40u;
	}();
	return v;
}

// Where the parts of a region go (offsets from its start); everything
// 16-byte aligned. The page-run and close arrays have room for what
// finish() may meet: every held run unheld, a fd per VMA and criu's own.
struct Layout {
	size_t args, vmas, runs, threads, close, ops, auxv, shared, posix, stacks, len, park;
	std::vector<size_t> sigs;
	size_t room_runs, room_close;

	explicit Layout(const RegionTask &t)
	{
		const MemPlan &m = t.mem;
		size_t nthreads = t.cores.size();
		size_t off = stop_page_offset() + kPageSize;
		auto take = [&](size_t bytes) {
			size_t at = off;
			off += (bytes + 15) & ~size_t(15);
			return at;
		};
		room_runs = m.runs.size() + m.held_runs.size();
		room_close = m.vmas.size() + 8 + t.room_ops;  // (the pool's fds placed by the setup)
		args = take(sizeof(rst_args));
		vmas = take(sizeof(rst_vma) * m.vmas.size());
		runs = take(sizeof(rst_pagerun) * room_runs);
		threads = take(sizeof(rst_thread) * nthreads);
		close = take(sizeof(int32_t) * room_close);
		ops = take(sizeof(rst_op) * t.room_ops);
		auxv = take(8 * m.mm->n_mm_saved_auxv);
		for (auto &c : t.cores)
			sigs.push_back(take(sizeof(rst_siginfo) *
					    (c->thread_core->signals_p ? c->thread_core->signals_p->n_signals : 0)));
		auto *shared_q = t.cores[0]->tc->signals_s;
		shared = take(sizeof(rst_siginfo) * (shared_q ? shared_q->n_signals : 0));
		auto *timers = t.cores[0]->tc->timers;
		posix = take(sizeof(rst_posix_timer) * (timers ? timers->n_posix : 0));
		stacks = page_align(off);
		len = page_align(stacks + RST_THREAD_STACK * nthreads + kLeaderStack);
		park = 0;
		for (auto &s : m.specials)
			park += s.len;
	}
};

// [vvar]/[vvar_vclock]/[vdso] of cur, matched in address order with the dump's.
Status fill_specials(rst_args *a, const MemPlan &m, const std::vector<ProcVma> &cur)
{
	std::vector<const ProcVma *> specials;
	for (auto &v : cur)
		if (v.path == "[vdso]" || v.path == "[vvar]" || v.path == "[vvar_vclock]")
			specials.push_back(&v);
	if (specials.size() != m.specials.size())
		return Error{
		    strfmt("this kernel has %zu vdso/vvar areas, the dump has %zu: restore on the kernel that dumped",
			   specials.size(), m.specials.size())};
	for (size_t i = 0; i < specials.size(); i++) {
		if (specials[i]->end - specials[i]->start != m.specials[i].len)
			return Error{strfmt("vdso/vvar area %zu is %lu bytes here but %lu in the dump: restore on the "
					    "kernel that dumped",
					    i, (unsigned long)(specials[i]->end - specials[i]->start),
					    (unsigned long)m.specials[i].len)};
		a->specials[i] = {specials[i]->start, m.specials[i].len, m.specials[i].target_start};
	}
	a->nr_specials = specials.size();
	return {};
}

void fill_mm(rst_args *a, char *base, const Layout &lay, const MemPlan &m)
{
	const MmEntry &mm = *m.mm;
	a->mm_start_code = mm.mm_start_code, a->mm_end_code = mm.mm_end_code;
	a->mm_start_data = mm.mm_start_data, a->mm_end_data = mm.mm_end_data;
	a->mm_start_brk = mm.mm_start_brk, a->mm_brk = mm.mm_brk, a->mm_start_stack = mm.mm_start_stack;
	a->mm_arg_start = mm.mm_arg_start, a->mm_arg_end = mm.mm_arg_end;
	a->mm_env_start = mm.mm_env_start, a->mm_env_end = mm.mm_env_end;
	a->auxv = reinterpret_cast<uint64_t *>(base + lay.auxv);
	std::copy(mm.mm_saved_auxv, mm.mm_saved_auxv + mm.n_mm_saved_auxv, a->auxv);
	a->auxv_size = 8 * mm.n_mm_saved_auxv;
	a->dumpable = mm.has_dumpable ? mm.dumpable : 1;
	a->thp_disabled = mm.has_thp_disabled && mm.thp_disabled;
}

void fill_timers(rst_args *a, char *base, const Layout &lay, const TaskCoreEntry &tc)
{
	if (!tc.timers)
		return;
	ItimerEntry *its[3] = {tc.timers->real, tc.timers->virt, tc.timers->prof};
	for (int i = 0; i < 3; i++)
		if (its[i])
			a->itimers[i] = {its[i]->isec, its[i]->iusec, its[i]->vsec, its[i]->vusec};
	a->nr_posix_timers = tc.timers->n_posix;
	a->posix_timers = reinterpret_cast<rst_posix_timer *>(base + lay.posix);
	for (size_t i = 0; i < tc.timers->n_posix; i++) {
		const PosixTimerEntry &p = *tc.timers->posix[i];
		a->posix_timers[i] = {(int32_t)p.it_id,
				      (int32_t)p.clock_id,
				      (int32_t)p.si_signo,
				      (int32_t)p.it_sigev_notify,
				      p.has_notify_thread_id ? p.notify_thread_id : 0,
				      0,
				      p.sival_ptr,
				      p.isec,
				      p.insec,
				      p.vsec,
				      p.vnsec};
	}
}

// The dump's limits; a hard limit can't be raised without CAP_SYS_RESOURCE:
// ours is kept then (log_choices() says so).
void fill_rlimits(rst_args *a, const TaskCoreEntry &tc)
{
	if (!tc.rlimits)
		return;
	a->nr_rlimits = std::min<size_t>(tc.rlimits->n_rlimits, 16);
	for (uint32_t i = 0; i < a->nr_rlimits; i++) {
		rlimit cur;
		getrlimit(i, &cur);
		uint64_t max = std::min<uint64_t>(tc.rlimits->rlimits[i]->max, cur.rlim_max);
		a->rlimits[i] = {std::min<uint64_t>(tc.rlimits->rlimits[i]->cur, max), max};
	}
}

void fill_signals(rst_siginfo *to, const SignalQueueEntry &q)
{
	for (size_t k = 0; k < q.n_signals; k++)
		memcpy(to[k].raw, q.signals[k]->siginfo.data, std::min<size_t>(128, q.signals[k]->siginfo.len));
}

void fill_thread(rst_thread &t, char *base, const Layout &lay, const RegionTask &task, size_t i)
{
	const CoreEntry &c = *task.cores[i];
	const ThreadCoreEntry &th = *c.thread_core;
	t.tid = task.pstree.threads[i];
	t.stack_top = (uint64_t)base + lay.stacks + RST_THREAD_STACK * (i + 1);
	t.clear_tid_addr = c.thread_info->clear_tid_addr;
	t.robust_list = th.futex_rla;
	t.robust_len = th.futex_rla_len;
	if (th.rseq_entry) {
		t.rseq_ptr = th.rseq_entry->rseq_abi_pointer;
		t.rseq_len = th.rseq_entry->rseq_abi_size;
		t.rseq_sig = th.rseq_entry->signature;
	}
	if (th.sas) {
		t.has_sas = 1;
		t.sas_sp = th.sas->ss_sp;
		t.sas_size = th.sas->ss_size;
		t.sas_flags = th.sas->ss_flags & ~1u;  // SS_ONSTACK is a state, not a setting
	}
	t.pdeath_sig = th.has_pdeath_sig ? th.pdeath_sig : 0;
	t.no_new_privs = th.has_no_new_privs && th.no_new_privs;
	t.sched_policy = th.has_sched_policy ? th.sched_policy : SCHED_OTHER;
	t.sched_prio = th.has_sched_prio ? th.sched_prio : 0;
	t.sched_nice = th.has_sched_nice ? th.sched_nice : 0;
	const char *comm = th.comm ? th.comm : (i == 0 ? task.cores[0]->tc->comm : "");
	strncpy(t.comm, comm, sizeof(t.comm) - 1);
	if (th.signals_p && th.signals_p->n_signals) {
		t.nr_signals = th.signals_p->n_signals;
		t.signals = reinterpret_cast<rst_siginfo *>(base + lay.sigs[i]);
		fill_signals(t.signals, *th.signals_p);
	}
	const CredsEntry &cr = *th.creds;
	rst_creds &rc = t.creds;
	rc.uid = cr.uid, rc.gid = cr.gid, rc.euid = cr.euid, rc.egid = cr.egid;
	rc.suid = cr.suid, rc.sgid = cr.sgid, rc.fsuid = cr.fsuid, rc.fsgid = cr.fsgid;
	std::copy(cr.cap_inh, cr.cap_inh + cr.n_cap_inh, rc.cap_inh);
	std::copy(cr.cap_prm, cr.cap_prm + cr.n_cap_prm, rc.cap_prm);
	std::copy(cr.cap_eff, cr.cap_eff + cr.n_cap_eff, rc.cap_eff);
	std::copy(cr.cap_bnd, cr.cap_bnd + cr.n_cap_bnd, rc.cap_bnd);
	rc.secbits = cr.secbits;
	rc.ngroups = cr.n_groups;
	std::copy(cr.groups, cr.groups + cr.n_groups, rc.groups);
	rc.last_cap = cap_last_cap();
}

// Everything of the region but what finish() adds.
Status fill(char *base, const Layout &lay, const RegionTask &t, const std::vector<ProcVma> &cur)
{
	size_t blob_len = stop_page_offset();
	memcpy(base, restorer_blob, restorer_blob_end - restorer_blob);
	auto *a = reinterpret_cast<rst_args *>(base + lay.args);
	a->region_start = (uint64_t)base;
	a->region_len = lay.len;
	TRY(fill_specials(a, t.mem, cur));
	a->nr_vmas = t.mem.vmas.size();
	a->vmas = reinterpret_cast<rst_vma *>(base + lay.vmas);
	a->pageruns = reinterpret_cast<rst_pagerun *>(base + lay.runs);
	a->close_fds = reinterpret_cast<int32_t *>(base + lay.close);
	a->ops = reinterpret_cast<rst_op *>(base + lay.ops);
	a->go_fd = a->pidfd = -1;
	fill_mm(a, base, lay, t.mem);

	const TaskCoreEntry &tc = *t.cores[0]->tc;
	a->child_subreaper = tc.has_child_subreaper && tc.child_subreaper;
	a->personality = tc.personality;
	a->nr_sigactions = tc.n_sigactions;
	for (size_t i = 0; i < tc.n_sigactions; i++) {
		auto *s = tc.sigactions[i];
		a->sigactions[i] = {s->sigaction, s->flags, s->restorer, s->mask};
	}
	fill_timers(a, base, lay, tc);
	fill_rlimits(a, tc);
	if (tc.signals_s) {
		a->nr_shared_signals = tc.signals_s->n_signals;
		a->shared_signals = reinterpret_cast<rst_siginfo *>(base + lay.shared);
		fill_signals(a->shared_signals, *tc.signals_s);
	}
	a->nr_threads = t.cores.size();
	a->threads = reinterpret_cast<rst_thread *>(base + lay.threads);
	for (size_t i = 0; i < t.cores.size(); i++)
		fill_thread(a->threads[i], base, lay, t, i);
	int sig = 0;
	for (int s : {SIGSEGV, SIGILL, SIGFPE})
		if (!sig && may_force(*a, s))
			sig = s;
	uint64_t at = sig ? (uint64_t)base + stop_offset(sig) : 0;
	for (size_t i = 0; i < t.cores.size(); i++) {
		a->threads[i].stop_at = at;
		a->threads[i].stop_sig = sig;
	}
	a->unmap_self = sig == SIGSEGV && t.cores.size() == 1;
	if (mprotect(base, blob_len, PROT_READ | PROT_EXEC) < 0 || mprotect(base + blob_len, kPageSize, PROT_NONE) < 0)
		return sys_error("can't make the restorer executable");
	return {};
}

}  // namespace

uint64_t stop_page_offset()
{
	return page_align(restorer_blob_end - restorer_blob);
}

uint64_t stop_offset(int sig)
{
	return sig == SIGSEGV ? stop_page_offset() : sig == SIGILL ? RST_BLOB_STOP_ILL_OFF : RST_BLOB_STOP_FPE_OFF;
}

Result<RestorerRegion> RestorerRegion::make(const RegionTask &t, bool shared)
{
	Layout lay(t);
	auto cur = parse_maps("/proc/self/maps");
	if (!cur)
		return cur.error();
	auto hole = find_hole(*cur, t.mem, lay.len + lay.park);
	if (!hole)
		return hole.error();
	// (NOREPLACE: a hole taken since the maps were read fails here)
	void *p = mmap((void *)*hole, lay.len + lay.park, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return sys_error("can't map the restorer region at %lx", (unsigned long)*hole);
	RestorerRegion r;
	r.start_ = (uint64_t)p;
	r.len_ = lay.len;
	r.mapped_len_ = lay.len + lay.park;
	r.args_off_ = lay.args;
	r.stack_top_ = r.start_ + lay.stacks + RST_THREAD_STACK * t.cores.size() + kLeaderStack;
	r.room_runs_ = lay.room_runs;
	r.room_close_ = lay.room_close;
	r.room_ops_ = t.room_ops;
	TRY(fill(reinterpret_cast<char *>(r.start_), lay, t, *cur));
	return r;
}

RestorerRegion::RestorerRegion(RestorerRegion &&o) noexcept
{
	*this = std::move(o);
}

RestorerRegion &RestorerRegion::operator=(RestorerRegion &&o) noexcept
{
	std::swap(start_, o.start_);
	std::swap(len_, o.len_);
	std::swap(mapped_len_, o.mapped_len_);
	std::swap(args_off_, o.args_off_);
	std::swap(stack_top_, o.stack_top_);
	std::swap(room_runs_, o.room_runs_);
	std::swap(room_close_, o.room_close_);
	std::swap(room_ops_, o.room_ops_);
	return *this;
}

RestorerRegion::~RestorerRegion()
{
	if (start_)
		munmap((void *)start_, mapped_len_);
}

Status RestorerRegion::finish(const MemPlan &m, int pages_fd, int exe_fd, const std::vector<int> &close_fds,
			      const std::vector<rst_op> &ops)
{
	rst_args *a = args();
	if (m.vmas.size() != a->nr_vmas || m.runs.size() > room_runs_ || close_fds.size() > room_close_ ||
	    ops.size() > room_ops_)
		return Error{strfmt("the restorer region has room for %u VMAs, %zu page runs, %zu fds to close and %zu "
				    "setup calls, not %zu, %zu, %zu and %zu",
				    a->nr_vmas, room_runs_, room_close_, room_ops_, m.vmas.size(), m.runs.size(),
				    close_fds.size(), ops.size())};
	a->nr_ops = ops.size();
	std::copy(ops.begin(), ops.end(), a->ops);
	std::copy(m.vmas.begin(), m.vmas.end(), a->vmas);
	a->nr_pageruns = m.runs.size();
	std::copy(m.runs.begin(), m.runs.end(), a->pageruns);
	a->pages_fd = pages_fd;
	a->exe_fd = exe_fd;
	a->nr_close_fds = close_fds.size();
	std::copy(close_fds.begin(), close_fds.end(), a->close_fds);
	return {};
}

void RestorerRegion::wait_for_go(int go_fd, int pidfd)
{
	args()->go_fd = go_fd;
	args()->pidfd = pidfd;
}

void RestorerRegion::log_choices(const RegionTask &t) const
{
	const rst_args *a = args();
	int sig = a->threads[0].stop_sig;
	pr_debug("The restorer's threads stop on SIG%s\n", sig ? sigabbrev_np(sig) : "STOP");
	for (size_t i = 0; i < a->nr_specials; i++)
		pr_debug("vdso/vvar area %zu: at 0x%lx here, at 0x%lx in the dump\n", i,
			 (unsigned long)a->specials[i].cur_start, (unsigned long)a->specials[i].target_start);
	const TaskCoreEntry &tc = *t.cores[0]->tc;
	for (uint32_t i = 0; i < a->nr_rlimits; i++)
		if (a->rlimits[i].max < tc.rlimits->rlimits[i]->max)
			pr_warn("rlimit %u: hard limit %llu is above ours (%llu): keeping ours\n", i,
				(unsigned long long)tc.rlimits->rlimits[i]->max, (unsigned long long)a->rlimits[i].max);
}

}  // namespace criu
