#!/usr/bin/python3
"""fn_dirty: a function that leaves everything it can behind, for the
repurpose test (test_switch.py): files in its root, /tmp and /dev/shm, a
SysV shared memory segment, semaphore set and message queue, a listening
TCP socket, a child process and an environment variable. It writes its
pidfile once all of that exists, then sleeps."""
import argparse
import ctypes
import os
import socket
import time

IPC_CREAT = 0o1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile", required=True)
    a = ap.parse_args()
    libc = ctypes.CDLL(None, use_errno=True)
    for what, r in (("shmget", libc.shmget(0x2a01, 4096, IPC_CREAT | 0o600)),
                    ("semget", libc.semget(0x2a02, 1, IPC_CREAT | 0o600)),
                    ("msgget", libc.msgget(0x2a03, IPC_CREAT | 0o600))):
        if r < 0:
            raise OSError(ctypes.get_errno(), what)
    for path in ("/leftover", "/tmp/leftover", "/dev/shm/leftover"):
        with open(path, "w") as f:
            f.write("left behind\n")
    os.environ["FN_DIRTY"] = "1"
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(os.environ.get("FN_PORT", "8080"))))
    s.listen()
    if os.fork() == 0:
        time.sleep(3600)
        os._exit(0)
    with open(a.pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(a.pidfile + ".tmp", a.pidfile)
    time.sleep(3600)


if __name__ == "__main__":
    main()
