/*
 * The contract between the restore driver (C++, libc) and the restorer blob
 * (freestanding C, no libc).
 *
 * The driver maps one "bootstrap" region in a hole of both the current and
 * the target address space: [blob code][struct rst_args][arrays][stacks].
 * Every pointer in it is absolute and valid inside that region, so the blob
 * needs no relocation. The blob builds the target address space, creates the
 * threads, sets per-thread kernel state and stops every thread (see
 * rst_thread::stop_at); the driver (the ptrace tracer) discards the stops'
 * signals, then unmaps the region (unless the blob did: rst_args::unmap_self)
 * and sets registers, FPU state and signal masks through ptrace.
 */
#ifndef CRIU_RESTORER_ARGS_H
#define CRIU_RESTORER_ARGS_H

#include <stdint.h>

#define RST_BLOB_ENTRY_OFF 0   /* entry(struct rst_args *) on the blob stack */
#define RST_BLOB_GADGET_OFF 16 /* "syscall" used by the tracer */
/* where a blob that unmapped its own region (unmap_self) faults next */
#define RST_BLOB_UNMAPPED_OFF 31
/* a ud2: the SIGILL stop of a thread (rst_thread::stop_at) */
#define RST_BLOB_STOP_ILL_OFF 40
/* a division by its first argument (0): the SIGFPE stop */
#define RST_BLOB_STOP_FPE_OFF 44

#define RST_MAX_SPECIAL 4      /* [vvar], [vvar_vclock], [vdso], spare */
#define RST_THREAD_STACK 16384 /* blob stack of each thread */

/* A mapping of the target address space. */
struct rst_vma {
	uint64_t start;
	uint64_t end;
	uint64_t pgoff;	     /* bytes, for file and shmem mappings */
	uint32_t prot;	     /* final protection */
	uint32_t mmap_flags; /* MAP_PRIVATE/MAP_SHARED/MAP_ANONYMOUS/MAP_GROWSDOWN */
	int32_t fd;	     /* opened by the driver, -1 for anonymous */
	uint32_t has_pages;  /* some page of it comes from the pages image */
	uint32_t held;	     /* already in place, inherited from a template holder */
	uint32_t sysv;	     /* a SysV shared memory attach: shmat(shmid) */
	uint64_t madv;	     /* bit n set: madvise(n) */
	int32_t shmid;
	uint32_t pad;
};

/* A run of pages read from the pages image into [vaddr, vaddr + len). */
struct rst_pagerun {
	uint64_t vaddr;
	uint64_t len;
	uint64_t file_off;
};

/* A kernel-provided mapping ([vdso], [vvar], ...) moved to its dumped place. */
struct rst_special {
	uint64_t cur_start;
	uint64_t len;
	uint64_t target_start;
};

struct rst_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

struct rst_siginfo {
	uint8_t raw[128];
};

struct rst_creds {
	uint32_t uid, gid, euid, egid, suid, sgid, fsuid, fsgid;
	uint32_t cap_inh[2], cap_prm[2], cap_eff[2], cap_bnd[2];
	uint32_t secbits;
	uint32_t ngroups;
	uint32_t groups[64];
	uint32_t last_cap; /* highest capability number this kernel knows */
};

struct rst_thread {
	int32_t tid;
	uint32_t pad;
	uint64_t stack_top; /* inside the bootstrap region (not for the leader) */
	uint64_t clear_tid_addr;
	uint64_t robust_list;
	uint64_t robust_len;
	uint64_t rseq_ptr;
	uint32_t rseq_len;
	uint32_t rseq_sig;
	uint64_t sas_sp;
	uint64_t sas_size;
	uint32_t sas_flags;
	uint32_t has_sas;
	uint32_t pdeath_sig;
	uint32_t nr_signals;
	struct rst_siginfo *signals; /* private pending signals */
	char comm[16];
	struct rst_creds creds;
	uint32_t no_new_privs; /* set after the credentials */
	/*
	 * Where the thread stops for the tracer, with the signal stop_sig it
	 * unblocks first and the tracer discards: a call into the region's
	 * PROT_NONE page (SIGSEGV) where SIGSEGV is neither ignored nor
	 * pending in the dump (forcing it then changes no state of the task),
	 * else into the blob's ud2 (SIGILL) where SIGILL is neither, else into
	 * its division by zero (SIGFPE) where SIGFPE is neither, else 0: a
	 * SIGSTOP (see stop() in the blob).
	 */
	uint64_t stop_at;
	uint32_t stop_sig;
	uint32_t pad2;
	/* sched_setscheduler() and setpriority() of the thread */
	uint32_t sched_policy; /* with SCHED_RESET_ON_FORK */
	uint32_t sched_prio;
	int32_t sched_nice;
	/* Filled by the blob when something fails in this thread. */
	int32_t err_step;
	int32_t err_errno;
	uint64_t err_addr;
};

struct rst_posix_timer {
	int32_t id;
	int32_t clock;
	int32_t signo;
	int32_t notify; /* SIGEV_* as the kernel stores it (with SIGEV_THREAD_ID) */
	int32_t tid;
	int32_t pad;
	uint64_t sival;
	uint64_t interval_sec, interval_nsec, value_sec, value_nsec;
};

struct rst_rlimit {
	uint64_t cur;
	uint64_t max;
};

struct rst_itimer {
	uint64_t interval_sec, interval_usec, value_sec, value_usec;
};

/*
 * A system call of the task's setup that the blob makes before it maps the
 * task's memory: where its fds go (from the driver's fds), its epolls'
 * registrations (they name fds by number), its root and cwd (through the
 * driver's fds of them: the dumped paths are criu's, not the task's, once
 * its root is not criu's) and umask.
 */
enum rst_op_kind {
	RST_OP_DUP3, /* dup3(fd, arg, flags) */
	/* the driver's fd: pidfd_getfd(pidfd, fd), moved to arg (flags: O_CLOEXEC or 0) */
	RST_OP_TAKE_FD,
	RST_OP_SETNS, /* setns(fd, arg) */
	/* write(fd, "0", 1): fd is a cgroup's tasks (v2: cgroup.procs); the
	 * task moves itself, which spares the kernel the threadgroup lock that
	 * moving another process takes (an RCU grace period, 8-16 ms) */
	RST_OP_JOIN_CGROUP,
	RST_OP_EPOLL_ADD, /* epoll_ctl(fd, EPOLL_CTL_ADD, arg, {flags, data}) */
	RST_OP_FCHDIR,	  /* fchdir(fd) */
	RST_OP_CHROOT,	  /* chroot("."): the root where fchdir went */
	RST_OP_UMASK,	  /* umask(arg) */
};

struct rst_op {
	uint32_t kind;
	int32_t fd;
	int32_t arg;
	uint32_t flags;
	uint64_t data;
};

/* Error steps reported by the blob; the driver turns them into messages. */
enum rst_step {
	RST_OK = 0,
	RST_UNMAP,
	RST_SPECIAL,
	RST_MMAP,
	RST_PAGES,
	RST_MPROTECT,
	RST_MADVISE,
	RST_CLOSE,
	RST_MM_MAP,
	RST_SIGACTION,
	RST_ITIMER,
	RST_RLIMIT,
	RST_PERSONALITY,
	RST_CLONE,
	RST_ROBUST,
	RST_RSEQ,
	RST_SIGALTSTACK,
	RST_CREDS,
	RST_SIGQUEUE,
	RST_PRCTL,
	RST_POSIX_TIMER,
	RST_SCHED,
	RST_SETUP, /* an rst_op: its index in rst_args::ops */
	RST_GO,	   /* waiting for the go */
	RST_STEP_MAX
};

struct rst_args {
	uint64_t region_start; /* the bootstrap region, kept mapped */
	uint64_t region_len;

	uint32_t nr_specials;
	uint32_t nr_vmas;
	struct rst_special specials[RST_MAX_SPECIAL];
	struct rst_vma *vmas;
	uint64_t nr_pageruns;
	struct rst_pagerun *pageruns;
	int32_t pages_fd;

	uint32_t nr_ops; /* the task's setup, before its memory is mapped */
	struct rst_op *ops;
	/*
	 * A root made ahead of its request enters the blob early: it replaces
	 * criu's address space, then waits for a byte on go_fd while the driver
	 * fills in the rest of this region (shared with it), the setup included.
	 * -1: no wait. pidfd is the driver's (RST_OP_TAKE_FD), -1 if none.
	 */
	int32_t go_fd;
	int32_t pidfd;

	uint32_t nr_close_fds; /* driver fds to close once memory and mm are in place */
	int32_t *close_fds;

	/* prctl(PR_SET_MM, PR_SET_MM_MAP) payload, struct prctl_mm_map layout */
	uint64_t mm_start_code, mm_end_code, mm_start_data, mm_end_data;
	uint64_t mm_start_brk, mm_brk, mm_start_stack;
	uint64_t mm_arg_start, mm_arg_end, mm_env_start, mm_env_end;
	uint64_t *auxv;
	uint32_t auxv_size; /* bytes */
	int32_t exe_fd;
	int32_t dumpable;
	int32_t thp_disabled;
	int32_t child_subreaper;
	uint32_t personality;
	uint32_t nr_sigactions; /* entries for signals 1..nr */
	struct rst_sigaction sigactions[64];
	struct rst_itimer itimers[3];
	uint32_t nr_posix_timers;
	struct rst_posix_timer *posix_timers;
	uint32_t nr_rlimits;
	struct rst_rlimit rlimits[16];

	uint32_t nr_shared_signals;
	struct rst_siginfo *shared_signals;

	uint32_t nr_threads; /* threads[0] is the leader */
	struct rst_thread *threads;
	volatile int32_t threads_done; /* counted by the blob */
	/*
	 * The leader unmaps the region itself and stops on the fault of its next
	 * instruction fetch (a SIGSEGV the tracer discards) instead of stopping
	 * for the tracer to do it: two round trips with the tracer fewer. Only
	 * for a single thread (no other thread runs in the region) that stops
	 * on a fault anyway (rst_thread::stop_at).
	 */
	int32_t unmap_self;
};

#endif
