/* Raw x86-64 system calls for the restorer blob: no libc, no errno. */
#ifndef CRIU_RST_SYSCALL_H
#define CRIU_RST_SYSCALL_H

#include <stdint.h>

static inline long rst_sys6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define S6(nr, a, b, c, d, e, f) rst_sys6(nr, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static inline long sys_pread64(int fd, uint64_t buf, uint64_t n, uint64_t off)
{
	return S6(17, fd, buf, n, off, 0, 0);
}
static inline long sys_getpid(void)
{
	return S6(39, 0, 0, 0, 0, 0, 0);
}
static inline long sys_gettid(void)
{
	return S6(186, 0, 0, 0, 0, 0, 0);
}
static inline long sys_tgkill(long tgid, long tid, int sig)
{
	return S6(234, tgid, tid, sig, 0, 0, 0);
}
static inline long sys_sched_setscheduler(int pid, uint32_t policy, const void *param)
{
	return S6(144, pid, policy, param, 0, 0, 0);
}
static inline long sys_setpriority(int which, int who, int nice)
{
	return S6(141, which, who, nice, 0, 0, 0);
}
static inline long sys_close(int fd)
{
	return S6(3, fd, 0, 0, 0, 0, 0);
}
static inline long sys_mmap(uint64_t a, uint64_t l, uint32_t p, uint32_t f, int fd, uint64_t o)
{
	return S6(9, a, l, p, f, fd, o);
}
static inline long sys_mprotect(uint64_t a, uint64_t l, uint32_t p)
{
	return S6(10, a, l, p, 0, 0, 0);
}
static inline long sys_munmap(uint64_t a, uint64_t l)
{
	return S6(11, a, l, 0, 0, 0, 0);
}
static inline long sys_shmat(int shmid, uint64_t addr, int flags)
{
	return S6(30, shmid, addr, flags, 0, 0, 0);
}
static inline long sys_rt_sigaction(int s, const void *n, void *o, unsigned long sz)
{
	return S6(13, s, n, o, sz, 0, 0);
}
static inline long sys_rt_sigprocmask(int h, const void *n, void *o, unsigned long sz)
{
	return S6(14, h, n, o, sz, 0, 0);
}
static inline long sys_sched_yield(void)
{
	return S6(24, 0, 0, 0, 0, 0, 0);
}
static inline long sys_mremap(uint64_t o, uint64_t ol, uint64_t nl, int f, uint64_t n)
{
	return S6(25, o, ol, nl, f, n, 0);
}
static inline long sys_madvise(uint64_t a, uint64_t l, int adv)
{
	return S6(28, a, l, adv, 0, 0, 0);
}
static inline long sys_setitimer(int w, const void *n, void *o)
{
	return S6(38, w, n, o, 0, 0, 0);
}
static inline long sys_setresuid(uint32_t r, uint32_t e, uint32_t s)
{
	return S6(117, r, e, s, 0, 0, 0);
}
static inline long sys_setresgid(uint32_t r, uint32_t e, uint32_t s)
{
	return S6(119, r, e, s, 0, 0, 0);
}
static inline long sys_setfsuid(uint32_t u)
{
	return S6(122, u, 0, 0, 0, 0, 0);
}
static inline long sys_setfsgid(uint32_t g)
{
	return S6(123, g, 0, 0, 0, 0, 0);
}
static inline long sys_setgroups(uint32_t n, const uint32_t *g)
{
	return S6(116, n, g, 0, 0, 0, 0);
}
static inline long sys_capset(void *h, void *d)
{
	return S6(126, h, d, 0, 0, 0, 0);
}
static inline long sys_sigaltstack(const void *n, void *o)
{
	return S6(131, n, o, 0, 0, 0, 0);
}
static inline long sys_personality(uint32_t p)
{
	return S6(135, p, 0, 0, 0, 0, 0);
}
static inline long sys_prctl(int o, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	return S6(157, o, a, b, c, d, 0);
}
static inline long sys_set_tid_address(uint64_t p)
{
	return S6(218, p, 0, 0, 0, 0, 0);
}
static inline long sys_dup3(int o, int n, int flags)
{
	return S6(292, o, n, flags, 0, 0, 0);
}
static inline long sys_epoll_ctl(int ep, int op, int fd, const void *ev)
{
	return S6(233, ep, op, fd, ev, 0, 0);
}
static inline long sys_chroot(const char *path)
{
	return S6(161, path, 0, 0, 0, 0, 0);
}
static inline long sys_fchdir(int fd)
{
	return S6(81, fd, 0, 0, 0, 0, 0);
}
static inline long sys_umask(int mask)
{
	return S6(95, mask, 0, 0, 0, 0, 0);
}
static inline long sys_read(int fd, void *buf, uint64_t n)
{
	return S6(0, fd, buf, n, 0, 0, 0);
}
static inline long sys_write(int fd, const void *buf, uint64_t n)
{
	return S6(1, fd, buf, n, 0, 0, 0);
}
static inline long sys_fcntl(int fd, int cmd, long arg)
{
	return S6(72, fd, cmd, arg, 0, 0, 0);
}
static inline long sys_pidfd_getfd(int pidfd, int fd)
{
	return S6(438, pidfd, fd, 0, 0, 0, 0);
}
static inline long sys_setns(int fd, int type)
{
	return S6(308, fd, type, 0, 0, 0, 0);
}
static inline long sys_exit_group(int c)
{
	return S6(231, c, 0, 0, 0, 0, 0);
}
static inline long sys_rt_sigqueueinfo(int tgid, int sig, const void *i)
{
	return S6(129, tgid, sig, i, 0, 0, 0);
}
static inline long sys_rt_tgsigqueueinfo(int tgid, int tid, int sig, const void *i)
{
	return S6(297, tgid, tid, sig, i, 0, 0);
}
static inline long sys_set_robust_list(uint64_t h, uint64_t l)
{
	return S6(273, h, l, 0, 0, 0, 0);
}
static inline long sys_prlimit64(int pid, unsigned r, const void *n, void *o)
{
	return S6(302, pid, r, n, o, 0, 0);
}
static inline long sys_timer_create(int clk, void *ev, int32_t *id)
{
	return S6(222, clk, ev, id, 0, 0, 0);
}
static inline long sys_timer_settime(int id, int fl, const void *n, void *o)
{
	return S6(223, id, fl, n, o, 0, 0);
}
static inline long sys_rseq(uint64_t p, uint32_t l, int f, uint32_t sig)
{
	return S6(334, p, l, f, sig, 0, 0);
}

#endif
