/*
 * The restorer blob: runs in the restored task after the driver jumped into
 * the bootstrap region, with no libc, no TLS and no relocations. It replaces
 * the address space, sets the process-wide and per-thread kernel state that
 * only the task itself can set, creates the threads and stops each of them on
 * an int3 for the tracer (see restorer-args.h).
 *
 * Built with -ffreestanding -fno-stack-protector -fpie: nothing here may
 * touch %fs, call libc or take the address of a global that needs a
 * relocation.
 */
#include "restorer-args.h"
#include "rst-syscall.h"

#define SHM_RDONLY 010000
#define SHM_REMAP 040000
#define SHM_EXEC 0100000

#define PAGE_SIZE 4096UL

#define PROT_WRITE 0x2
#define PROT_EXEC 0x4
#define MAP_SHARED 0x01
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define PR_SET_PDEATHSIG 1
#define PR_SET_DUMPABLE 4
#define PR_SET_NAME 15
#define PR_CAPBSET_DROP 24
#define PR_SET_SECUREBITS 28
#define PR_SET_MM 35
#define PR_SET_MM_MAP 14
#define PR_SET_CHILD_SUBREAPER 36
#define PR_SET_THP_DISABLE 41
#define PR_SET_NO_NEW_PRIVS 38
#define SIGSEGV 11
#define SIGSTOP 19
#define SIG_UNBLOCK 1
#define SECBIT_NO_SETUID_FIXUP 0x4
#define SECBIT_KEEP_CAPS 0x10
#define TASK_SIZE 0x7ffffffff000UL

#define CLONE_VM 0x00000100
#define CLONE_FS 0x00000200
#define CLONE_FILES 0x00000400
#define CLONE_SIGHAND 0x00000800
#define CLONE_THREAD 0x00010000
#define CLONE_SYSVSEM 0x00040000

struct clone_args_v2 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

struct prctl_mm_map {
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;
	uint32_t auxv_size;
	uint32_t exe_fd;
};

struct kstack {
	uint64_t ss_sp;
	int32_t ss_flags;
	int32_t pad;
	uint64_t ss_size;
};

struct cap_header {
	uint32_t version;
	int32_t pid;
};

struct cap_data {
	uint32_t effective, permitted, inheritable;
};

long rst_clone_thread(struct clone_args_v2 *ca, unsigned long size, void (*fn)(void *), void *arg);
void rst_unmap_self(uint64_t start, uint64_t len);

/* gcc may emit calls to these for struct copies and zeroing. */
void *memset(void *s, int c, unsigned long n)
{
	unsigned char *p = s;
	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;
	while (n--)
		*dp++ = *sp++;
	return d;
}

static void unblock_segv(void)
{
	uint64_t segv = 1ULL << (SIGSEGV - 1);
	sys_rt_sigprocmask(SIG_UNBLOCK, &segv, 0, 8);
}

/*
 * Stops for the tracer, which discards the signal. Not with a trap: the
 * kernel forces a trap's SIGTRAP through, and forcing a signal that is
 * blocked (as every one is in the blob) or ignored resets the task's action
 * for it to SIG_DFL, so a restored SIGTRAP handler would be lost. A fault on
 * the region's PROT_NONE page forces SIGSEGV, the blob's ud2 SIGILL, its
 * division by zero SIGFPE: the signal is unblocked first, and used only
 * where the dump neither ignores it nor has it pending (rst_thread::stop_at).
 * Else SIGSTOP, which has no action to lose; its one side effect is the
 * kernel's discarding of a pending SIGCONT.
 */
static void stop(struct rst_thread *t)
{
	if (t->stop_at) {
		uint64_t sig = 1ULL << (t->stop_sig - 1);
		sys_rt_sigprocmask(SIG_UNBLOCK, &sig, 0, 8);
		((void (*)(long))t->stop_at)(0); /* (the SIGFPE stop divides by it) */
	}
	sys_tgkill(sys_getpid(), sys_gettid(), SIGSTOP);
}

/* Record what failed and stop: the tracer reads the record at the stop. */
static void __attribute__((noreturn)) fail(struct rst_thread *t, int step, long ret, uint64_t addr)
{
	t->err_errno = (int32_t)-ret;
	t->err_addr = addr;
	/* last: the leader polls it (see threads_pending) */
	__atomic_store_n(&t->err_step, step, __ATOMIC_SEQ_CST);
	for (;;) {
		stop(t);
		sys_exit_group(1);
	}
}

#define CHECK(t, step, expr, addr)                                                                                     \
	do {                                                                                                           \
		long __r = (expr);                                                                                     \
		if (__r < 0 && __r > -4096)                                                                            \
			fail(t, step, __r, (uint64_t)(addr));                                                          \
	} while (0)

static int overlap(uint64_t s1, uint64_t l1, uint64_t s2, uint64_t l2)
{
	return s1 < s2 + l2 && s2 < s1 + l1;
}

/*
 * A special's target overlaps a special's current place (its own too: mremap
 * refuses overlapping ranges), but for one already in place.
 */
static int specials_collide(struct rst_args *a)
{
	for (uint32_t i = 0; i < a->nr_specials; i++)
		for (uint32_t j = 0; j < a->nr_specials; j++) {
			struct rst_special *s = &a->specials[i], *o = &a->specials[j];
			if (!(i == j && s->cur_start == s->target_start) &&
			    overlap(s->target_start, s->len, o->cur_start, o->len))
				return 1;
		}
	return 0;
}

/*
 * Move the kernel's [vvar]/[vdso] to where the dump had them. Where a target
 * overlaps a special mapping's current place, they all go through a parking
 * spot first, so that none clobbers another; else each moves once (an mremap
 * costs 10-20 us in a VM).
 */
static void move_specials(struct rst_args *a, struct rst_thread *t, uint64_t park)
{
	if (specials_collide(a)) {
		uint64_t off = 0;
		for (uint32_t i = 0; i < a->nr_specials; i++) {
			struct rst_special *s = &a->specials[i];
			long r = sys_mremap(s->cur_start, s->len, s->len, MREMAP_MAYMOVE | MREMAP_FIXED, park + off);
			CHECK(t, RST_SPECIAL, r, s->cur_start);
			s->cur_start = park + off;
			off += s->len;
		}
	}
	for (uint32_t i = 0; i < a->nr_specials; i++) {
		struct rst_special *s = &a->specials[i];
		if (s->cur_start == s->target_start)
			continue;
		long r = sys_mremap(s->cur_start, s->len, s->len, MREMAP_MAYMOVE | MREMAP_FIXED, s->target_start);
		CHECK(t, RST_SPECIAL, r, s->target_start);
	}
}

/*
 * Unmap everything except the bootstrap region, the moved specials and the
 * VMAs inherited from a template holder.
 */
static void unmap_rest(struct rst_args *a, struct rst_thread *t)
{
	uint64_t cur = 0;
	for (;;) {
		/* next kept area at or above cur */
		uint64_t next = TASK_SIZE, next_end = TASK_SIZE;
		for (uint32_t i = 0; i <= a->nr_specials; i++) {
			uint64_t s = i < a->nr_specials ? a->specials[i].target_start : a->region_start;
			uint64_t l = i < a->nr_specials ? a->specials[i].len : a->region_len;
			if (s >= cur && s < next) {
				next = s;
				next_end = s + l;
			}
		}
		for (uint32_t i = 0; i < a->nr_vmas; i++) {
			struct rst_vma *v = &a->vmas[i];
			if (v->held && v->start >= cur && v->start < next) {
				next = v->start;
				next_end = v->end;
			}
		}
		if (next > cur)
			CHECK(t, RST_UNMAP, sys_munmap(cur, next - cur), cur);
		if (next >= TASK_SIZE)
			break;
		cur = next_end;
	}
}

/* The kernel's struct epoll_event: packed on x86-64. */
struct rst_epoll_event {
	uint32_t events;
	uint64_t data;
} __attribute__((packed));

/* pidfd_getfd() gives the lowest free fd, close-on-exec. */
static long take_fd(int pidfd, const struct rst_op *op)
{
	long fd = sys_pidfd_getfd(pidfd, op->fd);
	if (fd < 0 || fd == op->arg)
		return fd < 0 ? fd : sys_fcntl(fd, 2 /* F_SETFD */, op->flags ? 1 /* FD_CLOEXEC */ : 0);
	long r = sys_dup3(fd, op->arg, (int)op->flags);
	sys_close(fd);
	return r;
}

static long setup_op(struct rst_args *a, const struct rst_op *op)
{
	switch (op->kind) {
	case RST_OP_DUP3:
		return sys_dup3(op->fd, op->arg, (int)op->flags);
	case RST_OP_TAKE_FD:
		return take_fd(a->pidfd, op);
	case RST_OP_SETNS:
		return sys_setns(op->fd, op->arg);
	case RST_OP_JOIN_CGROUP: {
		char self = '0';
		return sys_write(op->fd, &self, 1);
	}
	case RST_OP_EPOLL_ADD: {
		struct rst_epoll_event ev = {op->flags, op->data};
		return sys_epoll_ctl(op->fd, 1 /* EPOLL_CTL_ADD */, op->arg, &ev);
	}
	case RST_OP_FCHDIR:
		return sys_fchdir(op->fd);
	case RST_OP_CHROOT:
		return sys_chroot(".");
	case RST_OP_UMASK:
		sys_umask(op->arg);
		return 0;
	}
	return -22; /* EINVAL */
}

static void run_setup(struct rst_args *a, struct rst_thread *t)
{
	for (uint32_t i = 0; i < a->nr_ops; i++)
		CHECK(t, RST_SETUP, setup_op(a, &a->ops[i]), i);
}

/* A root made ahead: until the driver says go (or went away: end quietly). */
static void wait_go(struct rst_args *a, struct rst_thread *t)
{
	char c;
	long r;
	do
		r = sys_read(a->go_fd, &c, 1);
	while (r == -4 /* EINTR */);
	if (r == 0)
		sys_exit_group(0);
	CHECK(t, RST_GO, r, a->go_fd);
}

static void map_vmas(struct rst_args *a, struct rst_thread *t)
{
	for (uint32_t i = 0; i < a->nr_vmas; i++) {
		struct rst_vma *v = &a->vmas[i];
		if (v->held)
			continue;
		if (v->sysv) {
			/* the whole segment at once, from the VMA that starts it */
			if (v->pgoff)
				continue;
			int fl =
			    SHM_REMAP | (v->prot & PROT_WRITE ? 0 : SHM_RDONLY) | (v->prot & PROT_EXEC ? SHM_EXEC : 0);
			long r = sys_shmat(v->shmid, v->start, fl);
			if (r < 0 && r > -4096)
				fail(t, RST_MMAP, r, v->start);
			continue;
		}
		uint32_t prot = v->prot | (v->has_pages ? PROT_WRITE : 0);
		/* shared anonymous memory comes as an fd of its shmem object */
		uint32_t flags = v->fd >= 0 ? v->mmap_flags & ~MAP_ANONYMOUS : v->mmap_flags;
		long r = sys_mmap(v->start, v->end - v->start, prot, flags | MAP_FIXED, v->fd, v->pgoff);
		if (r < 0 && r > -4096)
			fail(t, RST_MMAP, r, v->start);
		if ((uint64_t)r != v->start)
			fail(t, RST_MMAP, -22, v->start);
	}
}

#define MADV_POPULATE_WRITE 23

static void read_pages(struct rst_args *a, struct rst_thread *t)
{
	for (uint64_t i = 0; i < a->nr_pageruns; i++) {
		struct rst_pagerun *p = &a->pageruns[i];
		uint64_t done = 0;
		/*
		 * The run's pages allocated in one call rather than one fault each
		 * as pread writes them: a fifth less time here. Exactly the pages
		 * pread fills; if the kernel can't (before 5.14), pread faults them.
		 */
		sys_madvise(p->vaddr, p->len, MADV_POPULATE_WRITE);
		while (done < p->len) {
			long r = sys_pread64(a->pages_fd, p->vaddr + done, p->len - done, p->file_off + done);
			if (r == 0)
				r = -5; /* truncated pages image: EIO */
			CHECK(t, RST_PAGES, r, p->vaddr + done);
			done += (uint64_t)r;
		}
	}
}

static void finish_vmas(struct rst_args *a, struct rst_thread *t)
{
	for (uint32_t i = 0; i < a->nr_vmas; i++) {
		struct rst_vma *v = &a->vmas[i];
		uint64_t len = v->end - v->start;
		/* (a held VMA has its protection from its holder already) */
		if ((v->has_pages && !(v->prot & PROT_WRITE) && !v->held) || (v->sysv && v->pgoff))
			CHECK(t, RST_MPROTECT, sys_mprotect(v->start, len, v->prot), v->start);
		for (int adv = 0; adv < 64; adv++)
			if (v->madv & (1ULL << adv))
				CHECK(t, RST_MADVISE, sys_madvise(v->start, len, adv), v->start);
	}
}

static void restore_mm(struct rst_args *a, struct rst_thread *t)
{
	struct prctl_mm_map m = {
	    .start_code = a->mm_start_code,
	    .end_code = a->mm_end_code,
	    .start_data = a->mm_start_data,
	    .end_data = a->mm_end_data,
	    .start_brk = a->mm_start_brk,
	    .brk = a->mm_brk,
	    .start_stack = a->mm_start_stack,
	    .arg_start = a->mm_arg_start,
	    .arg_end = a->mm_arg_end,
	    .env_start = a->mm_env_start,
	    .env_end = a->mm_env_end,
	    .auxv = (uint64_t)a->auxv,
	    .auxv_size = a->auxv_size,
	    .exe_fd = (uint32_t)a->exe_fd,
	};
	CHECK(t, RST_MM_MAP, sys_prctl(PR_SET_MM, PR_SET_MM_MAP, (uint64_t)&m, sizeof(m), 0), 0);
	if (a->thp_disabled)
		CHECK(t, RST_PRCTL, sys_prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), PR_SET_THP_DISABLE);
	if (a->child_subreaper)
		CHECK(t, RST_PRCTL, sys_prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), PR_SET_CHILD_SUBREAPER);
}

static void restore_process_state(struct rst_args *a, struct rst_thread *t)
{
	for (uint32_t i = 0; i < a->nr_sigactions; i++) {
		int sig = (int)i + 1;
		if (sig == 9 || sig == 19)
			continue;
		CHECK(t, RST_SIGACTION, sys_rt_sigaction(sig, &a->sigactions[i], 0, 8), sig);
	}
	CHECK(t, RST_PERSONALITY, sys_personality(a->personality), a->personality);
	for (uint32_t i = 0; i < a->nr_rlimits; i++)
		CHECK(t, RST_RLIMIT, sys_prlimit64(0, i, &a->rlimits[i], 0), i);
}

static void restore_creds(struct rst_thread *t)
{
	struct rst_creds *c = &t->creds;
	CHECK(t, RST_CREDS, sys_prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0), 1);
	for (uint32_t cap = 0; cap <= c->last_cap; cap++)
		if (!(c->cap_bnd[cap / 32] & (1U << (cap % 32))))
			CHECK(t, RST_CREDS, sys_prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), 2);
	CHECK(t, RST_CREDS, sys_setgroups(c->ngroups, c->groups), 3);
	CHECK(t, RST_CREDS, sys_setresgid(c->gid, c->egid, c->sgid), 4);
	CHECK(t, RST_CREDS, sys_setresuid(c->uid, c->euid, c->suid), 5);
	sys_setfsgid(c->fsgid);
	sys_setfsuid(c->fsuid);
	CHECK(t, RST_CREDS, sys_prctl(PR_SET_SECUREBITS, c->secbits, 0, 0, 0), 6);
	struct cap_header h = {0x20080522, 0}; /* _LINUX_CAPABILITY_VERSION_3 */
	struct cap_data d[2];
	for (int i = 0; i < 2; i++) {
		d[i].effective = c->cap_eff[i];
		d[i].permitted = c->cap_prm[i];
		d[i].inheritable = c->cap_inh[i];
	}
	CHECK(t, RST_CREDS, sys_capset(&h, d), 7);
}

/* Per-thread kernel state that only the thread itself can set. */
static void restore_thread(struct rst_args *a, struct rst_thread *t)
{
	int tgid = a->threads[0].tid;
	CHECK(t, RST_PRCTL, sys_prctl(PR_SET_NAME, (uint64_t)t->comm, 0, 0, 0), PR_SET_NAME);
	if (t->pdeath_sig)
		CHECK(t, RST_PRCTL, sys_prctl(PR_SET_PDEATHSIG, t->pdeath_sig, 0, 0, 0), PR_SET_PDEATHSIG);
	if (t->robust_list)
		CHECK(t, RST_ROBUST, sys_set_robust_list(t->robust_list, t->robust_len), t->robust_list);
	if (t->rseq_ptr)
		CHECK(t, RST_RSEQ, sys_rseq(t->rseq_ptr, t->rseq_len, 0, t->rseq_sig), t->rseq_ptr);
	if (t->has_sas) {
		struct kstack ss = {t->sas_sp, (int32_t)t->sas_flags, 0, t->sas_size};
		CHECK(t, RST_SIGALTSTACK, sys_sigaltstack(&ss, 0), t->sas_sp);
	}
	sys_set_tid_address(t->clear_tid_addr);
	/* (before the credentials: raising a priority may need CAP_SYS_NICE) */
	int32_t prio = (int32_t)t->sched_prio;
	CHECK(t, RST_SCHED, sys_sched_setscheduler(0, t->sched_policy, &prio), t->sched_policy);
	CHECK(t, RST_SCHED, sys_setpriority(0 /* PRIO_PROCESS: this thread */, 0, t->sched_nice), t->sched_nice);
	for (uint32_t i = 0; i < t->nr_signals; i++) {
		int sig = *(int32_t *)t->signals[i].raw;
		CHECK(t, RST_SIGQUEUE, sys_rt_tgsigqueueinfo(tgid, t->tid, sig, t->signals[i].raw), sig);
	}
	restore_creds(t);
	/* (no_new_privs can't be cleared: one criu has stays) */
	if (t->no_new_privs)
		CHECK(t, RST_PRCTL, sys_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), PR_SET_NO_NEW_PRIVS);
}

static void thread_main(void *arg)
{
	struct rst_thread *t = arg;
	/* the leader stored the args pointer just below our stack top */
	struct rst_args *a = *(struct rst_args **)(t->stack_top - 8);
	restore_thread(a, t);
	__atomic_add_fetch(&a->threads_done, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		stop(t);
		sys_exit_group(1);
	}
}

struct ksigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};

#define PR_TIMER_CREATE_RESTORE_IDS 77

/* Timers are created with their dumped ids (Linux 6.15+ prctl), after the
 * threads exist since a timer may target one of them. */
static void restore_posix_timers(struct rst_args *a, struct rst_thread *t)
{
	if (!a->nr_posix_timers)
		return;
	CHECK(t, RST_POSIX_TIMER, sys_prctl(PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0), 0);
	for (uint32_t i = 0; i < a->nr_posix_timers; i++) {
		struct rst_posix_timer *p = &a->posix_timers[i];
		struct ksigevent ev = {.value = p->sival, .signo = p->signo, .notify = p->notify, .tid = p->tid};
		int32_t id = p->id;
		CHECK(t, RST_POSIX_TIMER, sys_timer_create(p->clock, &ev, &id), p->id);
		if (id != p->id)
			fail(t, RST_POSIX_TIMER, -22, p->id);
		uint64_t its[4] = {p->interval_sec, p->interval_nsec, p->value_sec, p->value_nsec};
		if (p->value_sec || p->value_nsec)
			CHECK(t, RST_POSIX_TIMER, sys_timer_settime(id, 0, its, 0), p->id);
	}
	CHECK(t, RST_POSIX_TIMER, sys_prctl(PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0), 0);
}

static void create_threads(struct rst_args *a, struct rst_thread *lead)
{
	for (uint32_t i = 1; i < a->nr_threads; i++) {
		struct rst_thread *t = &a->threads[i];
		int64_t tid = t->tid;
		*(struct rst_args **)(t->stack_top - 8) = a;
		struct clone_args_v2 ca = {
		    .flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM,
		    .stack = t->stack_top - RST_THREAD_STACK,
		    .stack_size = RST_THREAD_STACK - 16,
		    .set_tid = (uint64_t)&tid,
		    .set_tid_size = 1,
		};
		long r = rst_clone_thread(&ca, sizeof(ca), thread_main, t);
		CHECK(lead, RST_CLONE, r, t->tid);
	}
}

/* Until every other thread is done or failed: a failed one never counts
 * itself done, and the tracer learns of the failure only once the leader
 * stops too. */
static int threads_pending(struct rst_args *a)
{
	if (__atomic_load_n(&a->threads_done, __ATOMIC_SEQ_CST) == (int32_t)a->nr_threads - 1)
		return 0;
	for (uint32_t i = 1; i < a->nr_threads; i++)
		if (__atomic_load_n(&a->threads[i].err_step, __ATOMIC_SEQ_CST))
			return 0;
	return 1;
}

void rst_main(struct rst_args *a)
{
	struct rst_thread *lead = &a->threads[0];
	uint64_t all = ~0ULL;
	sys_rt_sigprocmask(0 /* SIG_BLOCK */, &all, 0, 8);

	/* park the specials right behind the region's own pages */
	move_specials(a, lead, a->region_start + a->region_len);
	unmap_rest(a, lead);
	if (a->go_fd >= 0)
		wait_go(a, lead);
	run_setup(a, lead);
	map_vmas(a, lead);
	read_pages(a, lead);
	finish_vmas(a, lead);
	restore_mm(a, lead);
	for (uint32_t i = 0; i < a->nr_close_fds; i++)
		sys_close(a->close_fds[i]);
	restore_process_state(a, lead);
	for (int i = 0; i < 3; i++)
		if (a->itimers[i].value_sec || a->itimers[i].value_usec)
			CHECK(lead, RST_ITIMER, sys_setitimer(i, &a->itimers[i], 0), i);
	create_threads(a, lead);
	restore_posix_timers(a, lead);
	restore_thread(a, lead);
	for (uint32_t i = 0; i < a->nr_shared_signals; i++) {
		int sig = *(int32_t *)a->shared_signals[i].raw;
		CHECK(lead, RST_SIGQUEUE, sys_rt_sigqueueinfo(lead->tid, sig, a->shared_signals[i].raw), sig);
	}
	while (threads_pending(a))
		sys_sched_yield();
	sys_prctl(PR_SET_DUMPABLE, (uint64_t)a->dumpable, 0, 0, 0);
	if (a->unmap_self) {
		unblock_segv();
		rst_unmap_self(a->region_start, a->region_len);
	}
	for (;;) {
		stop(lead);
		sys_exit_group(1);
	}
}
