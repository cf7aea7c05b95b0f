"""A minimal job-control shell for the shell-job tests (test_shell_job*).

    /usr/bin/python3 -I jobshell.py CMD_FD REPLY_FD

stdin/stdout/stderr: a pty slave.  Started by the harness as a session
leader (start_new_session), it makes the pty its controlling terminal and
then runs the jobs the harness asks for, the way an interactive shell does:
each job in the shell's session, in a new process group (or in the shell's
own), in the foreground of the terminal while it runs.  Like a shell it
ignores SIGTTOU/SIGTTIN/SIGTSTP itself and restores the defaults in jobs.

One JSON request per line on CMD_FD, one JSON reply per line on REPLY_FD:

    {"op": "spawn", "argv": [...], "cwd": DIR, "stdout": PATH|null,
     "stderr": PATH|null, "pgrp": "new"|"shell", "env": {...}|null}
        -> {"pid": N}          (stdout/stderr null: the terminal)
    {"op": "wait", "pid": N, "timeout": SECS}
        -> {"status": WAITSTATUS} or {"status": null} (still running)
    {"op": "info"}  -> {"pid": ..., "sid": ..., "pgid": ..., "tpgid": ...}
    {"op": "exit"} or EOF: exit (the session ends, the pty stays)

Errors: {"error": "text"}.
"""

import fcntl
import json
import os
import signal
import sys
import termios
import time

JOB_SIGNALS = (signal.SIGTTOU, signal.SIGTTIN, signal.SIGTSTP, signal.SIGINT, signal.SIGQUIT)


def main():
    cmd_fd, reply_fd = int(sys.argv[1]), int(sys.argv[2])
    for fd in (cmd_fd, reply_fd):
        os.set_inheritable(fd, False)  # jobs must not inherit them
    cmd = os.fdopen(cmd_fd, "r")
    reply = os.fdopen(reply_fd, "w")
    for s in JOB_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    me = os.getpid()
    foreground = {}  # pid of a running job -> its pgid, while it owns the terminal

    def answer(obj):
        reply.write(json.dumps(obj) + "\n")
        reply.flush()

    for line in cmd:
        try:
            req = json.loads(line)
        except ValueError as e:
            answer({"error": "bad request: %s" % e})
            continue
        op = req.get("op")
        try:
            if op == "spawn":
                new_pgrp = req.get("pgrp", "new") == "new"
                pid = os.fork()
                if pid == 0:
                    try:
                        if new_pgrp:
                            os.setpgid(0, 0)
                        for s in JOB_SIGNALS:
                            signal.signal(s, signal.SIG_DFL)
                        for fd, key in ((1, "stdout"), (2, "stderr")):
                            if req.get(key):
                                f = os.open(req[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                                os.dup2(f, fd)
                                os.close(f)
                        env = dict(os.environ)
                        env.update(req.get("env") or {})
                        os.chdir(req.get("cwd") or "/")
                        os.execve(req["argv"][0], req["argv"], env)
                    except BaseException as e:  # noqa: B902 - report anything and leave
                        os.write(2, ("jobshell: can't start %s: %s\n" % (req.get("argv"), e)).encode())
                    os._exit(127)
                pgid = pid if new_pgrp else me
                if new_pgrp:
                    try:
                        os.setpgid(pid, pid)  # both sides, as shells do (no race with exec)
                    except OSError:
                        pass
                try:
                    os.tcsetpgrp(0, pgid)
                    foreground[pid] = pgid
                except OSError:
                    pass  # the job is already gone
                answer({"pid": pid})
            elif op == "wait":
                pid = int(req["pid"])
                deadline = time.monotonic() + float(req.get("timeout", 0))
                while True:
                    wpid, status = os.waitpid(pid, os.WNOHANG)
                    if wpid == pid or time.monotonic() >= deadline:
                        break
                    time.sleep(0.01)
                if wpid != pid:
                    answer({"status": None})
                    continue
                if foreground.pop(pid, None) is not None:
                    os.tcsetpgrp(0, me)  # the shell takes the terminal back
                answer({"status": status})
            elif op == "info":
                answer({"pid": me, "sid": os.getsid(0), "pgid": os.getpgrp(), "tpgid": os.tcgetpgrp(0)})
            elif op == "exit":
                answer({"bye": True})
                break
            else:
                answer({"error": "unknown op %r" % op})
        except Exception as e:  # noqa: B902 - the harness wants to know
            answer({"error": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    main()
