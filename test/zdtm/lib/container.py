#!/usr/bin/python3
"""container.py: turn the current process into a small container's init
and exec a program in it, as a runtime would.

    unshare -f --pid --mount [--net --uts --ipc] -- \
        /usr/bin/python3 -I container.py HOSTNAME -- PROGRAM ARGS...

Run from the test directory D (on the host's root filesystem). It binds the
host's root filesystem (not recursively) on D/rootfs and pivots into it,
then mounts proc (of its pid namespace), a /dev tmpfs with the memory
devices, a /dev/shm tmpfs and a /run tmpfs, sets the hostname and execs
PROGRAM, which is then PID 1 of the container. Paths under D stay valid
inside. Standard library only (ctypes for mount and pivot_root).
"""
import ctypes
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND = 1, 2, 4, 8, 4096
MNT_DETACH = 2
SYS_PIVOT_ROOT = 155  # x86_64

libc = ctypes.CDLL(None, use_errno=True)


def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def mount(source, target, fstype, flags, data=None):
    check(libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                     data.encode() if data else None), "mount %s on %s" % (source, target))


def pivot_to(root):
    os.makedirs(root, exist_ok=True)
    mount("/", root, None, MS_BIND)
    os.chdir(root)
    check(libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "umount the old root")
    os.chdir("/")


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: container.py HOSTNAME -- PROGRAM ARGS...")
    here = os.getcwd()
    pivot_to(os.path.join(here, "rootfs"))
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("container-dev", "/dev", "tmpfs", MS_NOSUID, "mode=755,size=256k")
    for name, minor in (("null", 3), ("zero", 5), ("full", 7), ("random", 8), ("urandom", 9)):
        os.mknod("/dev/" + name, 0o20666, os.makedev(1, minor))
        os.chmod("/dev/" + name, 0o666)
    os.mkdir("/dev/shm")
    mount("container-shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=16m")
    mount("container-run", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=16m")
    with open("/run/container", "w") as f:
        f.write(sys.argv[1] + "\n")
    check(libc.sethostname(sys.argv[1].encode(), len(sys.argv[1])), "sethostname")
    os.chdir(here)
    os.execv(sys.argv[3], sys.argv[3:])


if __name__ == "__main__":
    main()
