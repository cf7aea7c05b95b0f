"""zdtm-style checkpoint/restore regression suite.

Run from the repository root with Debian's pytest:

    /usr/bin/python3 -m pytest test/zdtm                 # everything
    /usr/bin/python3 -m pytest test/zdtm -k env00        # one test, all flavors
    /usr/bin/python3 -m pytest test/zdtm -k 'test_zdtm and env00'

Every test program in static/ speaks this protocol (see lib/zdtmtst.h):

    static/NAME --out OUT --pidfile PIDFILE      (cwd: a fresh temp dir)

It sets up its state, writes its pid to PIDFILE (tmp + rename) when it is
ready to be checkpointed, sleeps until SIGTERM, then verifies its state and
writes "PASS" (or "FAIL: reason") to OUT and exits 0 (1).

For each test the harness starts the program, waits for PIDFILE, dumps it
with `criu dump`, reaps the killed original, checks that every image decodes
with Debian's crit, restores it with `criu restore -d` (the harness is a
child subreaper, so the restored task becomes its child), checks pid and
starttime, sends SIGTERM, reaps it and requires PASS.

Programs in SPECIAL_TESTS have their own tests instead: shell_job00 runs as
a job of lib/jobshell.py (a small job-control shell on a pty) and is dumped
and restored with --shell-job (test_shell_job*); unsupp_fd00 holds a socket,
so its dump must fail and leave it unchanged (test_dump_fail_unchanged);
inherit_fd00 holds a pipe of the harness (test_rpc.py, inherit_fd).
test_cli.py covers criu's command line and log options, test_rpc.py the
RPC server (criu service / criu swrk).

Environment:
    CRIU=path         criu binary (default: criu/criu in the repo root)
    CRIT=path         crit binary (default: /usr/bin/crit)
    ZDTM_NOCR=1       no checkpoint at all: only start / SIGTERM / check, to
                      validate the test programs and the harness themselves
    ZDTM_KEEP=1       keep the temp dirs of passing tests too
    ZDTM_TMPDIR=dir   where the per-test temp dirs go (default: $TMPDIR or /tmp)
    ZDTM_NO_BUILD=1   do not run `make -C test/zdtm` before the tests
    ZDTM_SLEEP=secs   how long a restored task runs before SIGTERM (0.1)
    ZDTM_TIMEOUT=secs default per-test timeout (90)
    ZDTM_CRIU_TIMEOUT=secs  limit for one criu run (30)
"""

import concurrent.futures
import ctypes
import fcntl
import json
import os
import random
import re
import resource
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import types
from pathlib import Path

import pytest

ZDTM_DIR = Path(__file__).resolve().parent
REPO = ZDTM_DIR.parent.parent
STATIC = ZDTM_DIR / "static"


def _criu_path():
    env = os.environ.get("CRIU")
    if not env:
        return str(REPO / "criu" / "criu")
    if "/" not in env:
        return shutil.which(env) or env
    return os.path.abspath(env)


CRIU = _criu_path()
CRIT = os.environ.get("CRIT", "/usr/bin/crit")
NOCR = os.environ.get("ZDTM_NOCR", "") not in ("", "0")
KEEP = os.environ.get("ZDTM_KEEP", "") not in ("", "0")
TMPROOT = os.environ.get("ZDTM_TMPDIR") or None
RUN_SLEEP = float(os.environ.get("ZDTM_SLEEP", "0.1"))
DEFAULT_TIMEOUT = float(os.environ.get("ZDTM_TIMEOUT", "90"))
# a single criu run (dump or restore) may take at most this long
CRIU_TIMEOUT = float(os.environ.get("ZDTM_CRIU_TIMEOUT", "30"))

# Per-test options.  timeout: whole-test budget in seconds; criu_timeout:
# budget of one criu run.
TEST_OPTS = {
    "mem_1g": {"timeout": 300, "criu_timeout": 120},
    "maps_large": {"timeout": 120},
    "maps_sparse": {"timeout": 120},
    "python_compute": {"timeout": 120},
}

# Test programs that need a special setup and have their own tests, not the
# generic C/R flavors: shell_job00 needs a terminal (test_shell_job*),
# unsupp_fd00 holds an fd criu can't dump (test_dump_fail_unchanged),
# inherit_fd00 holds a pipe of the harness (test_rpc.py, RPC inherit_fd),
# tree_unsupp is a tree criu refuses (test_dump_fail_tree), ns_pid_uts and
# ns_ipc run as the init of new namespaces (test_namespaces; ns_mnt:
# test_mount_namespace), ns_veth too, with a veth end the harness sets up
# (test_ns_veth), mm_isolation
# too, for many template instances at once (test_mm_template.py);
# file_lock holds locks or a device criu refuses (test_dump_fail_refused);
# vfork_wait can't be stopped while its vfork child lives (test_dump_fail_timeout).
SPECIAL_TESTS = {"shell_job00", "unsupp_fd00", "inherit_fd00", "tree_unsupp", "ns_pid_uts", "ns_ipc", "ns_net",
                 "ns_sysv_attach", "ns_veth", "mm_isolation", "file_lock", "ns_mnt", "vfork_wait"}

# Flavors that only run for a few tests.
NODETACH_TESTS = ["env00", "pipe00", "sigpending00", "fpu_threads"]
LEAVE_RUNNING_TESTS = ["env00", "heap00", "pipe00", "fpu_threads"]
DUMP_TWICE_TESTS = ["env00", "heap00", "sigpending00", "itimer_real", "unlinked_fd", "fpu_threads"]

# Images that `criu restore` does not read at all, so damaging them cannot
# make it fail.  pages-*.img hold raw memory: flipping bits in them is not
# detectable (truncating them is).
RESTORE_UNUSED_IMAGES = {"stats-dump.img", "irmap-cache.img"}

IMG_COMMON_MAGIC = 0x54564319
IMG_SERVICE_MAGIC = 0x55105940

PR_SET_CHILD_SUBREAPER = 36


def discover_tests():
    names = set()
    if STATIC.is_dir():
        for p in STATIC.iterdir():
            if p.suffix in (".c", ".cc", ".py") and not p.name.startswith("."):
                names.add(p.stem)
    return sorted(names)


ALL_TESTS = discover_tests()
CR_TESTS = [t for t in ALL_TESTS if t not in SPECIAL_TESTS]


def command_for(name):
    py = STATIC / (name + ".py")
    if py.exists():
        return ["/usr/bin/python3", "-I", str(py)]
    return [str(STATIC / name)]


# ---------------------------------------------------------------- helpers


def proc_starttime(pid):
    """starttime (field 22 of /proc/PID/stat) or None if there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, errors="replace") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[19])


def proc_state(pid):
    """(state letter, TracerPid) from /proc/PID/status, or (None, None)."""
    state = tracer = None
    try:
        with open("/proc/%d/status" % pid, errors="replace") as f:
            for line in f:
                if line.startswith("State:"):
                    state = line.split()[1]
                elif line.startswith("TracerPid:"):
                    tracer = int(line.split()[1])
    except OSError:
        return None, None
    return state, tracer


def proc_ids(pid):
    """(session id, process group id, tty_nr) from /proc/PID/stat, or (None, None, None)."""
    try:
        with open("/proc/%d/stat" % pid, errors="replace") as f:
            data = f.read()
    except OSError:
        return None, None, None
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[3]), int(rest[2]), int(rest[4])


SNAPSHOT_STATUS = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")


def task_snapshot(pid):
    """What a failed dump must not change: /proc/PID/maps, the threads with
    their signal state, and the fds (target, pos, flags)."""
    snap = {"maps": read_text("/proc/%d/maps" % pid), "threads": {}, "fds": {}}
    for tid in sorted(os.listdir("/proc/%d/task" % pid), key=int):
        fields = {}
        for line in (read_text("/proc/%d/task/%s/status" % (pid, tid)) or "").split("\n"):
            key, _, val = line.partition(":")
            if key in SNAPSHOT_STATUS:
                fields[key] = val.strip()
        snap["threads"][int(tid)] = fields
    for fd in sorted(os.listdir("/proc/%d/fd" % pid), key=int):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError as e:
            link = "<%s>" % e.strerror
        info = [l for l in (read_text("/proc/%d/fdinfo/%s" % (pid, fd)) or "").split("\n")
                if l.startswith(("pos:", "flags:"))]
        snap["fds"][int(fd)] = (link, tuple(info))
    return snap


def snapshot_diff(a, b):
    """Differences between two task_snapshot()s, as text lines."""
    diffs = []
    if a["maps"] != b["maps"]:
        la, lb = (a["maps"] or "").split("\n"), (b["maps"] or "").split("\n")
        diffs.append("/proc/PID/maps changed:\n  gone: %s\n  new:  %s" % (
            "\n        ".join(l for l in la if l not in lb) or "-",
            "\n        ".join(l for l in lb if l not in la) or "-"))
    if sorted(a["threads"]) != sorted(b["threads"]):
        diffs.append("threads %s -> %s" % (sorted(a["threads"]), sorted(b["threads"])))
    for tid in sorted(set(a["threads"]) & set(b["threads"])):
        for key in SNAPSHOT_STATUS:
            va, vb = a["threads"][tid].get(key), b["threads"][tid].get(key)
            if va != vb:
                diffs.append("thread %d %s %s -> %s" % (tid, key, va, vb))
    for fd in sorted(set(a["fds"]) | set(b["fds"])):
        if a["fds"].get(fd) != b["fds"].get(fd):
            diffs.append("fd %d: %s -> %s" % (fd, a["fds"].get(fd, "<none>"), b["fds"].get(fd, "<none>")))
    return diffs


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "<no %s>" % path
    text = data.decode("utf-8", "replace").rstrip("\n").split("\n")
    if len(text) > lines:
        text = ["... (%d lines skipped)" % (len(text) - lines)] + text[-lines:]
    return "\n".join(text)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def pages_not_owned(pid):
    """What of pid's memory would still fault when first touched: for its
    [heap] and the r-xp mapping of criu's executable, (name, kB not its
    own or not mapped) where that is not 0.  A
    process forked ahead to serve a request owns its heap pages and has
    its code mapped (criu_own_pages_ahead); None once pid is gone."""
    text = read_text("/proc/%d/smaps" % pid)
    if text is None:
        return None
    left, name, size, rss = [], None, 0, 0
    for line in text.splitlines() + ["0-0 end"]:
        f = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+$", f[0]):
            name, perms = (f[5] if len(f) > 5 else ""), (f[1] if len(f) > 1 else "")
            name = name if name == "[heap]" or (name == os.path.realpath(CRIU) and perms == "r-xp") else None
        elif name and f[0] == "Size:":
            size = int(f[1])
        elif name and f[0] == "Rss:":
            rss = int(f[1])
        elif name and f[0] == "Private_Dirty:":
            miss = size - (int(f[1]) if name == "[heap]" else rss)
            if miss:
                left.append((name, miss))
    return left


def wait_popen(p, timeout):
    """p.wait() with a timeout; returns the exit code or None on timeout."""
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def wait_status_str(status):
    if os.WIFEXITED(status):
        return "exit code %d" % os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return "killed by signal %d (%s)" % (os.WTERMSIG(status), signal.Signals(os.WTERMSIG(status)).name)
    return "status %#x" % status


def descendants(root):
    """{pid: ppid} of every process below root (not root itself)."""
    parent = {}
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        data = read_text("/proc/%s/stat" % ent)
        if data:
            parent[int(ent)] = int(data[data.rindex(")") + 2:].split()[1])
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in out:
                out[c] = pp
                todo.append(c)
    return out


def tree_threads(root):
    """(pid, tid) of every thread of root and of every process below it."""
    return [(p, int(t)) for p in [root] + list(descendants(root)) for t in os.listdir("/proc/%d/task" % p)]


def thread_cgroup(pid, tid, ctl):
    """The cgroup of a thread in controller ctl's hierarchy ("": v2), or None."""
    for line in (read_text("/proc/%d/task/%d/cgroup" % (pid, tid)) or "").splitlines():
        _, ctls, path = line.split(":", 2)
        if ctl in ctls.split(","):
            return path
    return None


def reap_zombie_children():
    """Reap zombies whose parent is us (we are a subreaper, orphans land here)."""
    me = os.getpid()
    for ent in os.listdir("/proc"):
        if not ent.isdigit():
            continue
        data = read_text("/proc/%s/stat" % ent)  # a comm may be any bytes
        if not data:
            continue
        rest = data[data.rindex(")") + 2:].split()
        if rest[0] == "Z" and int(rest[1]) == me:
            try:
                os.waitpid(int(ent), os.WNOHANG)
            except ChildProcessError:
                pass


def crit_decode(img):
    """Decode one image with crit; returns None if fine, else an error text."""
    try:
        r = subprocess.run([CRIT, "decode", "-i", str(img)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    except subprocess.TimeoutExpired:
        return "%s: crit timed out" % img.name
    except OSError as e:
        return "%s: can't run %s: %s" % (img.name, CRIT, e)
    if r.returncode != 0:
        return "%s: crit exited with %d:\n%s" % (img.name, r.returncode,
                                                r.stderr.decode("utf-8", "replace")[-2000:])
    try:
        doc = json.loads(r.stdout)
    except ValueError as e:
        return "%s: crit output is not JSON: %s" % (img.name, e)
    if not isinstance(doc, dict) or "magic" not in doc or "entries" not in doc:
        return "%s: unexpected crit output structure" % img.name
    return None


# Images crit does not decode, as CRIU's own crit-recode test skips them: raw
# page data, the raw output of `ip addr/route/rule save` (no magic), and
# tmpfs contents (tar).
RAW_IMAGE_PREFIXES = ("pages-", "ifaddr-", "route-", "route6-", "rule-", "tmpfs-dev-")


def check_images(imgdir):
    imgs = sorted(p for p in Path(imgdir).glob("*.img") if not p.name.startswith(RAW_IMAGE_PREFIXES))
    assert imgs, "dump produced no images in %s" % imgdir
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        errors = [e for e in ex.map(crit_decode, imgs) if e]
    assert not errors, "crit can't decode images:\n" + "\n".join(errors)


# ---------------------------------------------------------------- terminals

JOBSHELL = ZDTM_DIR / "lib" / "jobshell.py"
PTY_WINSIZE = (37, 101)  # rows, cols: not the default, so a reset shows


class Pty:
    """A pseudo-terminal; a thread drains the master (so that writes to the
    slave never block) into `path` and memory."""

    def __init__(self, path):
        self.master, self.slave = os.openpty()  # both O_CLOEXEC
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", PTY_WINSIZE[0], PTY_WINSIZE[1], 0, 0))
        self.name = os.ttyname(self.slave)
        self.rdev = os.fstat(self.slave).st_rdev
        self.path = path
        self.data = bytearray()
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._drain, name="pty-drain", daemon=True)
        self.thread.start()

    def _drain(self):
        with open(self.path, "wb") as f:
            while not self.stopping:
                r, _, _ = select.select([self.master], [], [], 0.05)
                if not r:
                    continue
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO while no slave is open
                    chunk = b""
                if not chunk:
                    time.sleep(0.01)
                    continue
                with self.lock:
                    self.data += chunk
                f.write(chunk)
                f.flush()

    def output(self):
        with self.lock:
            return bytes(self.data)

    def wait_for(self, text, timeout=5):
        """True once text (bytes) has come out of the terminal."""
        end = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def close(self):
        self.stopping = True
        self.thread.join(5)
        os.close(self.master)
        os.close(self.slave)


class JobShell:
    """lib/jobshell.py on a Pty: a session leader with the pty as controlling
    terminal that runs jobs (the test, criu) as an interactive shell does.
    Its pid is its session id."""

    def __init__(self, run, pty):
        self.run = run
        cmd_r, cmd_w = os.pipe()
        rep_r, rep_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                ["/usr/bin/python3", "-I", str(JOBSHELL), str(cmd_r), str(rep_w)],
                stdin=pty.slave, stdout=pty.slave, stderr=pty.slave, pass_fds=(cmd_r, rep_w),
                close_fds=True, start_new_session=True)
        finally:
            os.close(cmd_r)
            os.close(rep_w)
        self.cmd = os.fdopen(cmd_w, "w")
        self.rep = rep_r
        self.buf = b""
        self.closed = False
        self.pid = self.proc.pid
        run.popens.append(self.proc)
        run.track(self.pid)
        info = self.request({"op": "info"})
        run.check(info["sid"] == self.pid and info["tpgid"] == self.pid,
                  "job shell %d did not set up its session: %s" % (self.pid, info))

    def request(self, req, timeout=30):
        try:
            self.cmd.write(json.dumps(req) + "\n")
            self.cmd.flush()
        except OSError as e:
            self.run.fail("job shell %d: can't send %s: %s" % (self.pid, req, e))
        end = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            r = select.select([self.rep], [], [], max(left, 0))[0] if left > 0 else []
            if not r:
                self.run.fail("job shell %d did not answer %s" % (self.pid, req))
            chunk = os.read(self.rep, 4096)
            if not chunk:
                self.run.fail("job shell %d died (%s) on %s" % (self.pid, self.proc.poll(), req))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        ans = json.loads(line)
        if "error" in ans:
            self.run.fail("job shell %d: %s: %s" % (self.pid, req, ans["error"]))
        return ans

    def spawn(self, argv, cwd, stdout=None, stderr=None, pgrp="new", env=None):
        """Start a job (stdout/stderr None: the terminal); returns its pid."""
        pid = self.request({"op": "spawn", "argv": [str(a) for a in argv], "cwd": str(cwd),
                            "stdout": stdout and str(stdout), "stderr": stderr and str(stderr),
                            "pgrp": pgrp, "env": env})["pid"]
        self.run.track(pid)
        return pid

    def wait(self, pid, timeout):
        """The wait status of a job, or None if it still runs after timeout seconds."""
        return self.request({"op": "wait", "pid": pid, "timeout": timeout}, timeout=timeout + 30)["status"]

    def close(self):
        """End the shell (and so its session; the terminal loses its session)."""
        if self.closed:
            return
        self.closed = True
        if self.proc.poll() is None:
            try:
                self.request({"op": "exit"}, timeout=10)
            except ZdtmError:
                pass
        try:
            self.cmd.close()
        except OSError:
            pass
        os.close(self.rep)
        if wait_popen(self.proc, 10) is None:
            self.proc.kill()
            self.proc.wait()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def built():
    if os.environ.get("ZDTM_NO_BUILD", "") not in ("", "0"):
        return
    r = subprocess.run(["make", "-C", str(ZDTM_DIR), "-s"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    if r.returncode != 0:
        pytest.fail("building the zdtm tests failed:\n" + r.stdout.decode("utf-8", "replace")[-4000:],
                    pytrace=False)


@pytest.fixture(scope="session")
def subreaper():
    """Make this (pytest) process a child subreaper, once per session, so that
    tasks restored with `criu restore -d` are reparented to us and can be
    waited for."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        pytest.fail("prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(e), pytrace=False)
    return True


def require_criu():
    if NOCR:
        return
    if not (os.path.isfile(CRIU) and os.access(CRIU, os.X_OK)):
        pytest.fail("criu binary not found or not executable: %s "
                    "(build it with `make` in the repo root, or set CRIU=/path/to/criu)" % CRIU,
                    pytrace=False)


class ZdtmError(AssertionError):
    pass


class Run:
    """One test program: its temp dir, its processes, and the C/R steps."""

    def __init__(self, name, timeout=None):
        self.name = name
        opts = TEST_OPTS.get(name, {})
        self.timeout = timeout or opts.get("timeout", DEFAULT_TIMEOUT)
        self.criu_timeout = opts.get("criu_timeout", CRIU_TIMEOUT)
        self.deadline = time.monotonic() + self.timeout
        self.dir = Path(tempfile.mkdtemp(prefix="zdtm-%s-" % name, dir=TMPROOT))
        # tests may drop privileges (creds00) and must still write there
        os.chmod(self.dir, 0o777)
        self.out = self.dir / "out"
        self.pidfile = self.dir / "test.pid"
        self.log = self.dir / "test.log"
        self.proc = None         # Popen of the original test process (None if run by a JobShell)
        self.shell = None        # the JobShell that runs the original, if any
        self.pty = None          # the Pty of open_pty()
        self.pid = None
        self.starttime = None    # of the original
        self.tracked = []        # (pid, starttime) of every task incarnation we own
        self.popens = []         # every Popen we started
        self.criu_runs = []      # (tag, argv, rc, stdout file, stderr file, log file)
        self.criu_pid = None     # pid of the last criu run
        self.closers = []        # called at cleanup, last first (pty, job shells)
        self.imgdirs = []
        self.ok = False
        self.nimg = 0
        self.tree = {}           # {pid: ppid} below the original when it was dumped

    # -- time budget
    def remaining(self, cap=None):
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.fail("per-test timeout (%ds) exceeded" % self.timeout)
        return min(left, cap) if cap else left

    # -- diagnostics
    def diag(self):
        parts = ["temp dir: %s" % self.dir]
        out = read_text(self.out)
        parts.append("out file: %s" % (repr(out) if out is not None else "<missing>"))
        parts.append("---- test log (%s):\n%s" % (self.log, tail(self.log, 30)))
        tty = self.dir / "tty.out"
        if tty.exists():
            parts.append("---- terminal output (%s):\n%s" % (tty, tail(tty, 30)))
        for tag, argv, rc, so, se, logf in self.criu_runs[-3:]:
            parts.append("---- criu %s: %s -> %s" % (tag, " ".join(argv), rc))
            err = read_text(se)
            if err:
                parts.append("stderr:\n" + "\n".join(err.rstrip().split("\n")[-20:]))
            if logf:
                parts.append("log %s:\n%s" % (logf, tail(logf, 40)))
        return "\n".join(parts)

    def fail(self, msg):
        raise ZdtmError("%s: %s\n%s" % (self.name, msg, self.diag()))

    def check(self, cond, msg):
        if not cond:
            self.fail(msg)

    # -- process handling
    def track(self, pid):
        st = proc_starttime(pid)
        if st is not None:
            self.tracked.append((pid, st))
        return st

    def start(self, env=None, shell=None, pgrp="new", pass_fds=()):
        """Start the test program and wait until it is ready.  env: extra
        environment.  shell: a JobShell to run it as a job of (pgrp "new": in
        its own process group, "shell": in the shell's), its stdin/stdout/
        stderr being the shell's terminal; else it is our child, a session
        leader with stdin /dev/null and stdout/stderr to test.log (and
        pass_fds, fds of ours it inherits)."""
        cmd = command_for(self.name)
        if not os.path.exists(cmd[-1]):
            self.fail("test program %s does not exist (make -C test/zdtm)" % cmd[-1])
        argv = cmd + ["--out", str(self.out), "--pidfile", str(self.pidfile)]
        if shell is not None:
            self.shell = shell
            self.pid = shell.spawn(argv, cwd=self.dir, pgrp=pgrp, env=env)
        else:
            logf = open(self.log, "ab")
            try:
                self.proc = subprocess.Popen(
                    argv, cwd=str(self.dir), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                    close_fds=True, pass_fds=pass_fds, start_new_session=True,
                    env=dict(os.environ, **env) if env else None)
            finally:
                logf.close()
            self.popens.append(self.proc)
            self.pid = self.proc.pid
        self.starttime = self.track(self.pid)
        # wait until the test says it is ready
        while True:
            if self.pidfile.exists():
                text = read_text(self.pidfile) or ""
                if text.strip():
                    break
            rc = self.wait_original(0)
            if rc is not None:
                self.fail("test exited (%s) before it was ready" % (
                    "exit code %d" % rc if rc >= 0 else "signal %d" % -rc))
            if time.monotonic() > self.deadline:
                self.fail("test did not become ready (no pidfile) within the timeout")
            time.sleep(0.01)
        self.check(int(text.strip()) == self.pid,
                   "pidfile says %s, but the test's pid is %d" % (text.strip(), self.pid))
        if shell is None:
            # it is a session leader (CRIU needs that without --shell-job)
            self.check(os.getsid(self.pid) == self.pid, "test is not a session leader")
        else:
            sid, pgid, _ = proc_ids(self.pid)
            want = self.pid if pgrp == "new" else shell.pid
            self.check((sid, pgid) == (shell.pid, want),
                       "job: sid %s pgid %s, expected %d %d" % (sid, pgid, shell.pid, want))
        return self.pid

    def wait_original(self, timeout):
        """Wait for the original test process; Popen-style returncode or None."""
        if self.shell is None:
            return wait_popen(self.proc, timeout)
        status = self.shell.wait(self.pid, timeout)
        return None if status is None else os.waitstatus_to_exitcode(status)

    def criu(self, tag, args, log=None, timeout=None, wait=True, shell=None, tty=False, pass_fds=()):
        """Run criu with args; stdout/stderr go to files in the temp dir.
        shell: run it as a job of that JobShell (stdin is the terminal), with
        tty also stdout and stderr.  pass_fds: fds of ours criu inherits."""
        so = self.dir / ("criu-%s.stdout" % tag)
        se = self.dir / ("criu-%s.stderr" % tag)
        argv = [CRIU] + [str(a) for a in args]
        entry = [tag, argv, None, so, se, log]
        if shell is not None:
            assert wait, "criu(shell=...) always waits"
            pid = self.criu_pid = shell.spawn(argv, cwd=self.dir, stdout=None if tty else so,
                                              stderr=None if tty else se)
            self.criu_runs.append(entry)
            limit = self.remaining(timeout or self.criu_timeout)
            status = shell.wait(pid, limit)
            if status is None:
                os.kill(pid, signal.SIGKILL)
                shell.wait(pid, 10)
                entry[2] = "timeout"
                self.fail("criu %s did not finish within %d seconds" % (tag, limit))
            entry[2] = os.waitstatus_to_exitcode(status)
            return entry[2]
        with open(so, "wb") as fo, open(se, "wb") as fe:
            p = subprocess.Popen(argv, cwd=str(self.dir), stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                 close_fds=True, start_new_session=True, pass_fds=pass_fds)
        self.popens.append(p)
        self.criu_pid = p.pid
        self.criu_runs.append(entry)
        if not wait:
            return p, entry
        limit = self.remaining(timeout or self.criu_timeout)
        rc = wait_popen(p, limit)
        if rc is None:
            p.kill()
            p.wait()
            entry[2] = "timeout"
            self.fail("criu %s did not finish within %d seconds" % (tag, limit))
        entry[2] = rc
        return rc

    def open_pty(self):
        """A Pty for this test (its output goes to DIR/tty.out); sets self.pty."""
        self.pty = Pty(self.dir / "tty.out")
        self.closers.append(self.pty.close)
        return self.pty

    def job_shell(self, pty):
        sh = JobShell(self, pty)
        self.closers.append(sh.close)
        return sh

    def new_imgdir(self):
        self.nimg += 1
        d = self.dir / ("img%d" % self.nimg)
        d.mkdir()
        self.imgdirs.append(d)
        return d

    def dump(self, pid, extra=()):
        self.tree = descendants(pid)
        for child in self.tree:
            self.track(child)
        imgdir = self.new_imgdir()
        rc = self.criu("dump%d" % self.nimg, ["dump", "-t", pid, "-D", imgdir, "-o", "dump.log", "-v4"] +
                       list(extra), log=imgdir / "dump.log")
        self.check(rc == 0, "criu dump exited with %s" % (rc if rc >= 0 else "signal %d" % -rc))
        return imgdir

    def restore(self, imgdir, detach=True, extra=(), shell=None, tty=False, pass_fds=()):
        """criu restore -d; returns the restored pid (checked against the original).
        shell, tty: see criu()."""
        rpid = self.dir / ("restore%d.pid" % self.nimg)
        args = ["restore", "-D", imgdir, "--pidfile", rpid, "-o", "restore.log", "-v4"] + list(extra)
        if detach:
            args.insert(3, "-d")
            rc = self.criu("restore%d" % self.nimg, args, log=imgdir / "restore.log", shell=shell, tty=tty,
                           pass_fds=pass_fds)
            self.check(rc == 0, "criu restore exited with %s" % (rc if rc >= 0 else "signal %d" % -rc))
            self.check(rpid.exists(), "criu restore did not write --pidfile %s" % rpid)
            return self._check_restored(rpid), None
        assert shell is None, "restore without -d runs criu as our child"
        p, entry = self.criu("restore%d" % self.nimg, args, log=imgdir / "restore.log", wait=False)
        while not (rpid.exists() and (read_text(rpid) or "").strip()):
            rc = p.poll()
            if rc is not None:
                entry[2] = rc
                self.fail("criu restore (no -d) exited with %s before writing its pidfile" % rc)
            if time.monotonic() > self.deadline:
                self.fail("criu restore (no -d) did not write its pidfile in time")
            time.sleep(0.01)
        return self._check_restored(rpid), (p, entry)

    def _check_restored(self, rpid):
        text = (read_text(rpid) or "").strip()
        self.check(text.isdigit(), "bad restore pidfile contents %r" % text)
        return self.check_restored_pid(int(text))

    def check_restored_pid(self, pid):
        """pid is the original's, a new process image, running and untraced; tracks it."""
        self.check(pid == self.pid, "restored pid %d != original pid %d" % (pid, self.pid))
        st = self.track(pid)
        self.check(st is not None, "restored task %d does not exist" % pid)
        self.check(st != self.starttime,
                   "restored task has the original's starttime %s: not a new process image" % st)
        state, tracer = proc_state(pid)
        self.check(tracer == 0, "restored task is traced by %s" % tracer)
        self.check(state not in ("t", "T", "Z", "X"), "restored task is in state %s" % state)
        tree = descendants(pid)
        self.check(tree == self.tree, "restored tree (pid: ppid) %s != dumped %s" % (tree, self.tree))
        for child in tree:
            self.track(child)
        return pid

    def reap_dumped(self):
        """The dump killed the original: reap it so its pid is free again."""
        rc = self.wait_original(self.remaining(10))
        if rc is None:
            self.fail("criu dump succeeded but the original task %d is still alive" % self.pid)
        self.check(rc < 0, "dumped task was not killed by the dump but exited with %d" % rc)
        # its children were killed too and came to us (the subreaper) as zombies
        while any(proc_starttime(p) is not None for p in self.tree):
            reap_zombie_children()
            if time.monotonic() > self.deadline:
                self.fail("the dumped tree's processes %s are still there" % sorted(self.tree))
            time.sleep(0.005)
        self.check(not self.out.exists(), "the dumped task wrote its result before being restored")

    def wait_task(self, pid, what="restored task"):
        """Wait for pid (our child, thanks to the subreaper) to exit; returns its status or None."""
        while True:
            try:
                wpid, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                # not our child: wait for it to disappear
                if proc_starttime(pid) is None:
                    return None
                wpid = 0
            if wpid == pid:
                return status
            if time.monotonic() > self.deadline:
                self.fail("%s %d did not exit after SIGTERM within the timeout" % (what, pid))
            time.sleep(0.01)

    def finish_task(self, pid, what="restored task"):
        """SIGTERM a (restored) task, reap it, require PASS."""
        if RUN_SLEEP:
            time.sleep(RUN_SLEEP)
        os.kill(pid, signal.SIGTERM)
        status = self.wait_task(pid, what)
        self.check_pass(status, what)

    def check_pass(self, status, what):
        out = read_text(self.out)
        if status is not None and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            self.fail("%s finished with %s; out: %r" % (what, wait_status_str(status), out))
        self.check(out is not None, "%s wrote no result file" % what)
        self.check(out.strip() == "PASS", "%s reports: %s" % (what, out.strip()))

    def sigterm_original(self):
        """SIGTERM the original (never dumped / left running) task and require PASS."""
        if RUN_SLEEP:
            time.sleep(RUN_SLEEP)
        os.kill(self.pid, signal.SIGTERM)  # not reaped yet: still our (or our shell's) child
        rc = self.wait_original(self.remaining(60))
        if rc is None:
            self.fail("original task did not exit after SIGTERM")
        status = (rc << 8) if rc >= 0 else -rc
        self.check_pass(status, "original task")

    def cleanup(self):
        # kill whatever of ours is still alive, by pid, if it is still the same process
        for pid, st in self.tracked:
            if proc_starttime(pid) == st:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.popens:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        deadline = time.monotonic() + 10
        for pid, st in self.tracked:
            while proc_starttime(pid) == st and time.monotonic() < deadline:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.01)
        reap_zombie_children()
        while self.closers:
            try:
                self.closers.pop()()
            except Exception as e:  # noqa: B902 - cleanup goes on
                sys.stderr.write("\nzdtm: cleanup of %s: %s\n" % (self.name, e))
        if self.ok and not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)
        elif not self.ok:
            sys.stderr.write("\nzdtm: keeping %s for inspection\n" % self.dir)


@pytest.fixture
def zdtm(built, subreaper):
    runs = []

    def make(name, timeout=None):
        require_criu()
        r = Run(name, timeout)
        runs.append(r)
        return r

    yield make
    for r in runs:
        r.cleanup()


MMT_PLUGIN_DIR = REPO / "plugins" / "mmtemplate"


@pytest.fixture(scope="session")
def mm_pool(tmp_path_factory):
    """A private dram pool (on tmpfs) and holder socket directory for this
    session's mm-template tests; every template left in it is deleted (its
    holder stopped) at the end."""
    pool = Path(tempfile.mkdtemp(prefix="zdtm-mm-pool-", dir="/dev/shm"))
    run = tmp_path_factory.mktemp("mm-run")
    os.environ["CRIU_MM_POOL"] = str(pool)
    os.environ["CRIU_MM_RUN"] = str(run)
    yield pool
    for tmpl in pool.glob("*.tmpl"):
        subprocess.run([CRIU, "-L", str(MMT_PLUGIN_DIR), "mm-template", "delete", tmpl.stem],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    reap_zombie_children()
    shutil.rmtree(pool, ignore_errors=True)


def mm_template(r, imgdir, name=None):
    """criu convert of imgdir into the session pool; returns the template name
    (the test's name by default) and arranges for its deletion."""
    name = name or r.name
    rc = r.criu("convert", ["-L", MMT_PLUGIN_DIR, "convert", "-D", imgdir, "--mm-template", name, "-o",
                            "convert.log", "-v4"], log=imgdir / "convert.log")
    r.check(rc == 0, "criu convert exited with %s" % rc)
    r.closers.append(lambda: subprocess.run(
        [CRIU, "-L", str(MMT_PLUGIN_DIR), "mm-template", "delete", name], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, timeout=30))
    return name


def mmt_restore_args(name):
    return ["-L", MMT_PLUGIN_DIR, "--mm-template", name]


def _cr_cycle(r, detach=True):
    """dump the running task, reap it, check images, restore; returns (pid, nodetach-criu)."""
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    check_images(imgdir)
    return r.restore(imgdir, detach=detach)


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", CR_TESTS)
def test_zdtm(zdtm, name):
    """start -> dump -> crit -> restore -d -> SIGTERM -> PASS"""
    r = zdtm(name)
    r.start()
    if NOCR:
        r.sigterm_original()
        r.ok = True
        return
    pid, _ = _cr_cycle(r)
    r.finish_task(pid)
    r.ok = True


@pytest.mark.parametrize("name", CR_TESTS)
def test_zdtm_mmt(zdtm, mm_pool, name):
    """the mm-template flavour: start -> dump -> convert into a template ->
    restore -d --mm-template (the memory comes copy-on-write from the
    template's holder) -> SIGTERM -> PASS, as in the plain flavour"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm(name)
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    tmpl = mm_template(r, imgdir)
    pid, _ = r.restore(imgdir, extra=mmt_restore_args(tmpl))
    r.finish_task(pid)
    r.ok = True


@pytest.mark.parametrize("name,itself,sig", [("sigsegv00", True, "SIGSEGV"), ("tree_threads", False, "SIGSEGV"),
                                             ("sigsegv01", False, "SIGILL"), ("sigsegv02", False, "SIGILL"),
                                             ("sigpending01", False, "SIGFPE")])
def test_restorer_unmaps_itself(zdtm, name, itself, sig):
    """a single-threaded task unmaps the restorer itself and stops on the
    fault that follows (one stop for criu instead of three); a task with
    other threads, SIGSEGV ignored or SIGSEGV pending is stopped the other
    way. The threads stop on a fault whose signal the dump neither ignores
    nor has pending: SIGSEGV, else SIGILL (sigsegv01 ignores SIGSEGV,
    sigsegv02 has one pending), else SIGFPE (sigpending01 ignores SIGSEGV,
    has SIGILL pending, and a SIGCONT that a SIGSTOP would discard). Each
    passes"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm(name)
    r.start()
    pid, _ = _cr_cycle(r)
    log = read_text(r.imgdirs[-1] / "restore.log") or ""
    r.check(("unmapped its restorer itself" in log) == itself, "%s: the restorer %s itself" % (
        name, "did not unmap" if itself else "unmapped"))
    r.check("The restorer's threads stop on %s" % sig in log, "%s: not stopped on %s" % (name, sig))
    r.finish_task(pid)
    r.ok = True


@pytest.mark.parametrize("name", NODETACH_TESTS)
def test_zdtm_nodetach(zdtm, name):
    """restore without -d: criu waits for the task and exits with its status"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm(name)
    r.start()
    pid, (crp, entry) = _cr_cycle(r, detach=False)
    if RUN_SLEEP:
        time.sleep(RUN_SLEEP)
    os.kill(pid, signal.SIGTERM)
    rc = wait_popen(crp, r.remaining(60))
    if rc is None:
        r.fail("criu restore (no -d) did not exit after the task got SIGTERM")
    entry[2] = rc
    r.check(rc == 0, "criu restore (no -d) exited with %d, expected the task's exit status 0" % rc)
    r.check_pass(None, "restored task")
    r.ok = True


@pytest.mark.parametrize("name", LEAVE_RUNNING_TESTS)
def test_leave_running(zdtm, name):
    """dump -R: the original keeps running untraced and passes; the copy passes too"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm(name)
    r.start()
    imgdir = r.dump(r.pid, ["-R"])
    r.check(r.proc.poll() is None, "original task died after dump --leave-running")
    r.check(proc_starttime(r.pid) == r.starttime, "original task was replaced")
    state, tracer = proc_state(r.pid)
    r.check(tracer == 0, "original task is still traced by %s after dump -R" % tracer)
    r.check(state not in ("t", "T"), "original task is stopped (state %s) after dump -R" % state)
    check_images(imgdir)
    r.sigterm_original()
    r.out.unlink()
    pid, _ = r.restore(imgdir)
    r.finish_task(pid)
    r.ok = True


@pytest.mark.parametrize("name", DUMP_TWICE_TESTS)
def test_dump_twice(zdtm, name):
    """dump -> restore -> dump -> restore of the same process"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm(name, timeout=TEST_OPTS.get(name, {}).get("timeout", DEFAULT_TIMEOUT) * 2)
    r.start()
    pid, _ = _cr_cycle(r)
    if RUN_SLEEP:
        time.sleep(RUN_SLEEP)
    first_restored = proc_starttime(pid)
    imgdir = r.dump(pid)
    status = r.wait_task(pid, "restored task (being dumped again)")
    r.check(status is None or os.WIFSIGNALED(status),
            "restored task was not killed by the second dump: %s" % (
                wait_status_str(status) if status is not None else "?"))
    r.check(not r.out.exists(), "the task wrote its result before the second restore")
    check_images(imgdir)
    pid2, _ = r.restore(imgdir)
    r.check(proc_starttime(pid2) != first_restored, "second restore did not create a new process")
    r.finish_task(pid2)
    r.ok = True


# ---------------------------------------------------------------- shell jobs


def _check_job_ids(r, pid, sid, pgid, what):
    """The task's session and process group, and the pty as its controlling terminal."""
    asid, apgid, tty_nr = proc_ids(pid)
    r.check(asid == sid, "%s: session %s, expected %d" % (what, asid, sid))
    r.check(apgid == pgid, "%s: process group %s, expected %d" % (what, apgid, pgid))
    r.check(tty_nr == r.pty.rdev, "%s: controlling terminal %#x, expected the pty %s (%#x)" % (
        what, tty_nr, r.pty.name, r.pty.rdev))


def _start_shell_job(r, pgrp="new"):
    """shell_job00 as a job of a new JobShell on a new Pty; returns the shell."""
    sh = r.job_shell(r.open_pty())
    r.start(shell=sh, pgrp=pgrp)
    _check_job_ids(r, r.pid, sh.pid, r.pid if pgrp == "new" else sh.pid, "the job")
    line = b"shell_job00 before pid %d" % r.pid
    r.check(r.pty.wait_for(line), "%r did not appear on the terminal" % line)
    return sh


def _finish_shell_job(r, pid):
    line = b"shell_job00 after pid %d" % pid
    r.check(r.pty.wait_for(line), "%r did not appear on the terminal" % line)


def _no_task_left(r, pid, what):
    """After a failed restore: no process with the dumped pid (a zombie we reap is gone)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    st = proc_starttime(pid)
    if st is not None:
        state, _ = proc_state(pid)
        r.tracked.append((pid, st))
        r.fail("%s left a task with pid %d behind (state %s)" % (what, pid, state))


def _wait_running_untraced(r, pid, what, grace=2.0):
    """Every thread of pid is untraced and not stopped (after a short grace)."""
    end = time.monotonic() + grace
    while True:
        bad = []
        tids = os.listdir("/proc/%d/task" % pid) if proc_starttime(pid) is not None else []
        r.check(tids, "%s: task %d is gone" % (what, pid))
        for tid in tids:
            state, tracer = proc_state(int(tid))
            if tracer != 0 or state in ("t", "T", "Z", "X", None):
                bad.append("thread %s: state %s, tracer %s" % (tid, state, tracer))
        if not bad:
            return
        if time.monotonic() > end:
            r.fail("%s: task %d is not left running: %s" % (what, pid, "; ".join(bad)))
        time.sleep(0.01)


def _dump_shell_job(r, pgrp="new"):
    """start shell_job00 in a first shell, dump it with -j, end that shell;
    returns (imgdir, a second shell on the same pty)."""
    sh1 = _start_shell_job(r, pgrp)
    imgdir = r.dump(r.pid, ["-j"])
    r.reap_dumped()
    check_images(imgdir)
    sh1.close()
    return imgdir, r.job_shell(r.pty)


@pytest.mark.parametrize("pgrp", ["new", "shell"], ids=["pgrp-leader", "shell-pgrp"])
def test_shell_job(zdtm, pgrp):
    """shell_job00 run as a job of a shell on a pty (leading its own process
    group, or in the shell's), dump -j, restore -j -d from another shell on
    the same pty with criu's stdin/stdout/stderr the pty: the task inherits
    criu's session (and criu's process group unless it led its own), the pty
    is its controlling terminal, and it passes"""
    r = zdtm("shell_job00", timeout=60)
    if NOCR:
        _start_shell_job(r, pgrp)
        r.sigterm_original()
        _finish_shell_job(r, r.pid)
        r.ok = True
        return
    imgdir, sh2 = _dump_shell_job(r, pgrp)
    pid, _ = r.restore(imgdir, extra=["-j"], shell=sh2, tty=True)
    _check_job_ids(r, pid, sh2.pid, pid if pgrp == "new" else r.criu_pid, "restored job")
    r.finish_task(pid)
    _finish_shell_job(r, pid)
    r.ok = True


ADDR_NO_RANDOMIZE = 0x0040000


@pytest.mark.parametrize("how", ["in-place", "overlapping"])
def test_vdso_moves(zdtm, how):
    """the restorer moves [vvar]/[vvar_vclock]/[vdso] to the dump's places:
    with address space randomization off (ADDR_NO_RANDOMIZE, as setarch -R)
    and a big stack limit, the kernel puts them below the stack gap, so
    criu's layout (its stack limit the same, or 8 KB more) has them where
    the dump had them (left in place), or 8 KB off, each target overlapping
    a current area (moved through a parking spot); vdso00 passes either way"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("vdso00")
    libc = ctypes.CDLL(None, use_errno=True)
    persona = libc.personality(0xffffffff)
    stack = resource.getrlimit(resource.RLIMIT_STACK)
    big = 256 << 20
    if stack[1] != resource.RLIM_INFINITY and stack[1] < big + 8192:
        pytest.skip("the hard stack limit is below 256 MB")
    try:
        libc.personality(persona | ADDR_NO_RANDOMIZE)
        resource.setrlimit(resource.RLIMIT_STACK, (big, stack[1]))
        r.start()
        imgdir = r.dump(r.pid)
        r.reap_dumped()
        resource.setrlimit(resource.RLIMIT_STACK, (big + (8192 if how == "overlapping" else 0), stack[1]))
        pid, _ = r.restore(imgdir)
    finally:
        libc.personality(persona)
        resource.setrlimit(resource.RLIMIT_STACK, stack)
    areas = [(int(a, 16), int(b, 16)) for a, b in
             re.findall(r"vdso/vvar area \d+: at 0x([0-9a-f]+) here, at 0x([0-9a-f]+) in the dump",
                        read_text(imgdir / "restore.log"))]
    r.check(len(areas) >= 2, "restore.log names %d vdso/vvar areas" % len(areas))
    if how == "in-place":
        r.check(all(here == dump for here, dump in areas), "not all in place: %s" % areas)
    else:
        # 8 KB off, and [vvar] is 16 KB: its target overlaps its current place
        r.check(all(dump - here == 8192 for here, dump in areas), "not 8 KB off: %s" % areas)
    r.finish_task(pid)


def _restore_without_j(r):
    """dump shell_job00 with -j, restore it without -j as a job of a shell on
    the pty: must fail cleanly and leave no task; returns the stderr lines."""
    imgdir, sh2 = _dump_shell_job(r)
    rpid = r.dir / "restore-noj.pid"
    rc = r.criu("restore-noj", ["restore", "-D", imgdir, "-d", "--pidfile", rpid, "-o", "restore-noj.log",
                                "-v4"], log=imgdir / "restore-noj.log", shell=sh2)
    lines = _check_failed_cleanly(r, rc, "restore-noj", "restore of a shell job without -j")
    _no_task_left(r, r.pid, "restore without -j")
    r.check(not (read_text(rpid) or "").strip(), "restore without -j wrote its pidfile")
    r.check(len(lines) == 1, "expected a one-line error on stderr, got %d lines:\n%s" % (
        len(lines), "\n".join(lines[:20])))
    return lines


def test_shell_job_restore_without_j(zdtm):
    """restore of images holding a terminal without -j (from a shell on the
    pty): non-zero exit, one error line, no task left"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("shell_job00", timeout=60)
    _restore_without_j(r)
    r.ok = True



def test_shell_job_restore_without_j_message(zdtm):
    """the error line of a restore without -j says it is about the terminal / --shell-job"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("shell_job00", timeout=60)
    line = _restore_without_j(r)[0]
    r.check(re.search(r"shell-job|terminal|tty", line),
            "restore without -j: the error does not say it is about the terminal/--shell-job: %r" % line)
    r.ok = True


def test_shell_job_dump_without_j(zdtm):
    """dump of a task on a terminal without -j: fails with one error line
    naming the fd and --shell-job; the task runs on unchanged and passes"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("shell_job00", timeout=60)
    _start_shell_job(r)
    before = task_snapshot(r.pid)
    imgdir = r.new_imgdir()
    rc = r.criu("dump-noj", ["dump", "-t", r.pid, "-D", imgdir, "-o", "dump.log", "-v4"], log=imgdir / "dump.log")
    lines = _check_failed_cleanly(r, rc, "dump-noj", "dump of a shell job without -j")
    r.check(len(lines) == 1, "expected a one-line error on stderr, got %d lines:\n%s" % (
        len(lines), "\n".join(lines[:20])))
    r.check("--shell-job" in lines[0] and re.search(r"terminal|tty", lines[0], re.I)
            and re.search(r"\bfd\s*[012]\b", lines[0]),
            "the error does not name the terminal fd and --shell-job: %r" % lines[0])
    r.check(proc_starttime(r.pid) == r.starttime, "the task died or was replaced")
    _wait_running_untraced(r, r.pid, "after the failed dump")
    diffs = snapshot_diff(before, task_snapshot(r.pid))
    r.check(not diffs, "the failed dump changed the task:\n" + "\n".join(diffs))
    r.sigterm_original()
    _finish_shell_job(r, r.pid)
    r.ok = True


# ---------------------------------------------------------------- error cases


def _stderr_lines(r, tag):
    text = read_text(r.dir / ("criu-%s.stderr" % tag)) or ""
    return [l for l in text.split("\n") if l.strip()]


def _check_failed_cleanly(r, rc, tag, what):
    r.check(rc != 0, "%s: criu exited 0" % what)
    r.check(rc > 0, "%s: criu crashed (signal %d)" % (what, -rc))
    r.check(rc < 128, "%s: criu exit code %d looks like a signal" % (what, rc))
    lines = _stderr_lines(r, tag)
    r.check(lines, "%s: criu failed without an error message on stderr" % what)
    return lines


def test_err_dump_dead_pid(zdtm):
    """dump of a PID that does not exist: non-zero exit, one-line error on stderr"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("err_dump_dead_pid", timeout=60)
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    dead = p.pid
    r.check(proc_starttime(dead) is None, "pid %d got reused, rerun" % dead)
    imgdir = r.new_imgdir()
    rc = r.criu("dump-dead", ["dump", "-t", dead, "-D", imgdir])
    lines = _check_failed_cleanly(r, rc, "dump-dead", "dump of dead pid %d" % dead)
    r.check(len(lines) == 1, "expected a one-line error on stderr, got %d lines:\n%s" % (
        len(lines), "\n".join(lines[:20])))
    r.ok = True


def test_err_restore_missing_dir(zdtm):
    """restore from a directory that does not exist"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("err_restore_missing_dir", timeout=60)
    missing = r.dir / "no-such-dir"
    rc = r.criu("restore-missing", ["restore", "-D", missing, "-d", "--pidfile", r.dir / "rp"])
    _check_failed_cleanly(r, rc, "restore-missing", "restore from a missing dir")
    r.check(not (r.dir / "rp").exists(), "a pidfile was written by a failed restore")
    r.ok = True


def test_err_restore_pid_in_use(zdtm):
    """restore while the original (dumped with -R) still runs: must fail, original unharmed"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("env00", timeout=90)
    r.start()
    imgdir = r.dump(r.pid, ["-R"])
    r.check(r.proc.poll() is None, "original died after dump -R")
    rpid = r.dir / "restore-inuse.pid"
    rc = r.criu("restore-inuse", ["restore", "-D", imgdir, "-d", "--pidfile", rpid])
    _check_failed_cleanly(r, rc, "restore-inuse", "restore with the pid in use")
    r.check(proc_starttime(r.pid) == r.starttime, "the original task was replaced or killed")
    state, tracer = proc_state(r.pid)
    r.check(tracer == 0 and state not in ("t", "T", "Z"),
            "the original task is in state %s, tracer %s after the failed restore" % (state, tracer))
    if rpid.exists():
        text = (read_text(rpid) or "").strip()
        if text.isdigit() and int(text) != r.pid:
            r.track(int(text))
            r.fail("a failed restore left a task %s behind" % text)
    r.sigterm_original()
    r.ok = True


def _dump_must_fail(r, what, pids=None):
    """criu dump of r.pid must fail cleanly; returns its error lines and the
    snapshots of pids (r.pid by default) taken before it."""
    before = {pid: task_snapshot(pid) for pid in (pids or [r.pid])}
    imgdir = r.new_imgdir()
    rc = r.criu("dump-fail", ["dump", "-t", r.pid, "-D", imgdir, "-o", "dump.log", "-v4"], log=imgdir / "dump.log")
    return _check_failed_cleanly(r, rc, "dump-fail", what), before


def _check_unchanged(r, before):
    """Every task of before runs on, untraced, as it was."""
    for pid, snap in before.items():
        _wait_running_untraced(r, pid, "after the failed dump")
        # A thread the dump stopped in a syscall the kernel restarts
        # (sigsuspend) shows its saved signal mask until it is back in it:
        # a moment, or up to a period for a throttled SCHED_DEADLINE one.
        end = time.monotonic() + 1
        while (diffs := snapshot_diff(snap, task_snapshot(pid))) and time.monotonic() < end:
            time.sleep(0.01)
        r.check(not diffs, "the failed dump changed PID %d:\n%s" % (pid, "\n".join(diffs)))


@pytest.mark.parametrize("kind", ["tcp", "unix", "dgram"])
def test_dump_fail_unchanged(zdtm, kind):
    """unsupp_fd00 holds a socket criu can't dump (an established TCP
    connection, a unix listener on a relative path and a connection through
    it, or a datagram socketpair whose end was then bound to a name): the
    dump fails with an
    error naming the pid and the fd, and leaves the task exactly as it was
    (running, untraced, same maps, signal state and fds); it still passes"""
    r = zdtm("unsupp_fd00", timeout=60)
    r.start(env={"ZDTM_UNSUPP_FD": kind})
    if NOCR:
        r.sigterm_original()
        r.ok = True
        return
    lines, before = _dump_must_fail(r, "dump of a task with a %s socket" % kind)
    snap = before[r.pid]
    socks = [fd for fd, (link, _) in snap["fds"].items() if link.startswith("socket:")]
    r.check(len(socks) == 3, "unexpected sockets: %s" % snap["fds"])
    r.check(len(snap["threads"]) == 2, "expected 2 threads, got %s" % sorted(snap["threads"]))
    named = [l for l in lines if re.search(r"\b%d\b" % r.pid, l)
             and re.search(r"\bfd\s*(%s)\b" % "|".join(map(str, socks)), l)]
    r.check(named, "no error line names PID %d and its socket fd %s:\n%s" % (r.pid, socks, "\n".join(lines[:20])))
    r.check(proc_starttime(r.pid) == r.starttime, "the task died or was replaced")
    r.check(r.proc.poll() is None, "the task exited")
    _check_unchanged(r, before)
    r.sigterm_original()
    r.ok = True


def start_vfork_wait(r):
    """vfork_wait started and in its vfork (uninterruptible sleep); its
    child's PID."""
    r.start()
    end = time.monotonic() + 10
    while proc_state(r.pid)[0] != "D" or not descendants(r.pid):
        r.check(time.monotonic() < end, "vfork_wait is not in its vfork: %s" % (proc_state(r.pid),))
        time.sleep(0.01)
    child = next(iter(descendants(r.pid)))
    r.track(child)
    return child


def check_vfork_wait_goes_on(r, child):
    """Untraced once criu is gone, vfork_wait goes on when its child is
    killed, and passes."""
    os.kill(child, signal.SIGKILL)
    _wait_running_untraced(r, r.pid, "after the timed-out dump", grace=5.0)
    r.sigterm_original()


def test_dump_fail_timeout(zdtm):
    """a task the kernel does not stop (the parent of a vfork child sleeps
    uninterruptibly): criu dump --timeout 1 gives up after about a second
    with one line naming the PID and where it sleeps, leaves no images,
    and the task goes on untraced once its child is killed, and passes"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("vfork_wait", timeout=60)
    child = start_vfork_wait(r)
    imgdir = r.new_imgdir()
    t0 = time.monotonic()
    rc = r.criu("dump-timeout", ["dump", "-t", r.pid, "-D", imgdir, "--timeout", "1"])
    took = time.monotonic() - t0
    lines = _check_failed_cleanly(r, rc, "dump-timeout", "dump of a task that does not stop")
    r.check(len(lines) == 1 and re.search(r"PID %d did not stop within the timeout \(state D" % r.pid, lines[0]),
            "not one line naming PID %d and its state: %s" % (r.pid, lines))
    r.check(0.9 <= took < 5, "the dump gave up after %.2f s, not about 1 s" % took)
    r.check(not [p for p in imgdir.iterdir() if p.name.endswith(".img")], "images left: %s"
            % sorted(p.name for p in imgdir.iterdir()))
    check_vfork_wait_goes_on(r, child)
    r.ok = True


@pytest.mark.parametrize("kind,expect", [("lock", "file lock"), ("device", "device /dev/kmsg")])
def test_dump_fail_refused(zdtm, kind, expect):
    """a task holding an flock() and a POSIX lock, or a device criu does not
    know (/dev/kmsg): the dump fails with an error naming the PID, the fd
    and what is refused, and the task keeps running unchanged; it passes"""
    r = zdtm("file_lock", timeout=60)
    r.start(env={"ZDTM_DEVICE": "1"} if kind == "device" else None)
    if NOCR:
        r.sigterm_original()
        r.ok = True
        return
    lines, before = _dump_must_fail(r, "dump of a task with a %s" % kind)
    r.check(any(re.search(r"PID %d fd \d+: .*%s" % (r.pid, expect), l) for l in lines),
            "no error line names PID %d, an fd and %r:\n%s" % (r.pid, expect, "\n".join(lines[:20])))
    _check_unchanged(r, before)
    r.sigterm_original()
    r.ok = True


@pytest.mark.parametrize("kind,expect", [("files", "fd table"), ("session", "session"), ("group", "process group")])
def test_dump_fail_tree(zdtm, kind, expect):
    """a tree criu can't rebuild (processes sharing an fd table, a session
    not inherited from the parent, a group without a leader): the dump
    fails with an error naming the PID and the reason, and every process
    of the tree runs on unchanged"""
    r = zdtm("tree_unsupp", timeout=60)
    r.start(env={"ZDTM_TREE_UNSUPP": kind})
    if NOCR:
        r.sigterm_original()
        r.ok = True
        return
    tree = descendants(r.pid)
    r.check(tree, "the test made no children")
    for pid in tree:
        r.track(pid)
    lines, before = _dump_must_fail(r, "dump of a %s tree" % kind, [r.pid] + sorted(tree))
    r.check(any(expect in l and re.search(r"\bPID \d+", l) for l in lines),
            "no error line names a PID and '%s':\n%s" % (expect, "\n".join(lines[:20])))
    r.check(descendants(r.pid) == tree, "the tree changed: %s -> %s" % (tree, descendants(r.pid)))
    _check_unchanged(r, before)
    r.sigterm_original()
    r.ok = True


def test_dump_fail_sched_deadline(zdtm):
    """a thread under SCHED_DEADLINE, which the restore could not set again
    (sched_setscheduler() can't): the dump fails with an error naming the
    thread and the policy, and the task runs on unchanged"""
    if subprocess.run(["chrt", "-d", "--sched-runtime", "1000000", "--sched-deadline", "10000000",
                       "--sched-period", "10000000", "0", "true"], capture_output=True).returncode:
        pytest.skip("no SCHED_DEADLINE here")
    r = zdtm("sched00", timeout=60)
    r.start(env={"ZDTM_SCHED_DEADLINE": "1"})
    if NOCR:
        r.sigterm_original()
        r.ok = True
        return
    lines, before = _dump_must_fail(r, "dump of a SCHED_DEADLINE thread")
    r.check(any(re.search(r"thread %d of PID %d runs under SCHED_DEADLINE" % (r.pid, r.pid), l) for l in lines),
            "no error line names the thread and SCHED_DEADLINE:\n%s" % "\n".join(lines[:20]))
    _check_unchanged(r, before)
    r.sigterm_original()
    r.ok = True


def ns_inode(pid, kind):
    return os.stat("/proc/%d/ns/%s" % (pid, kind)).st_ino


def nspid(pid):
    for line in (read_text("/proc/%d/status" % pid) or "").split("\n"):
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return []


def _unshared_root(r, wrapper):
    """The one child of the unshare wrapper (waiting for it to be forked)."""
    while True:
        kids = descendants(wrapper.pid)
        root = [p for p, pp in kids.items() if pp == wrapper.pid]
        if root:
            r.check(len(root) == 1, "unshare has children %s" % root)
            return root[0]
        r.check(wrapper.poll() is None, "unshare exited: %s" % tail(r.log))
        r.remaining()
        time.sleep(0.01)


def start_in_namespaces(r, kinds, env=None, setup=None, command=None):
    """Start r's program (or command, before its --out/--pidfile) under
    unshare -f --KIND... so that it is PID 1 of new namespaces (with env
    added to its environment); sets r.pid to its PID (as we see it).
    setup(pid), if given, is called as soon as the program exists, before
    it is ready."""
    logf = open(r.log, "ab")
    try:
        wrapper = subprocess.Popen(
            ["unshare", "-f"] + ["--" + k for k in kinds] + ["--"] + (command or [str(STATIC / r.name)]) +
            ["--out", str(r.out), "--pidfile", str(r.pidfile)],
            cwd=str(r.dir), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, close_fds=True,
            start_new_session=True, env=dict(os.environ, **env) if env else None)
    finally:
        logf.close()
    r.popens.append(wrapper)
    r.track(wrapper.pid)
    if setup:
        setup(_unshared_root(r, wrapper))
    while not (r.pidfile.exists() and (read_text(r.pidfile) or "").strip()):
        r.check(wrapper.poll() is None, "the test exited before it was ready: %s" % tail(r.log))
        r.remaining()
        time.sleep(0.01)
    r.check(read_text(r.pidfile).strip() == "1", "the test is not PID 1 in its namespace")
    r.pid = _unshared_root(r, wrapper)
    r.starttime = r.track(r.pid)
    return wrapper


@pytest.mark.parametrize("name,kinds", [("ns_pid_uts", ("pid", "uts")), ("ns_ipc", ("pid", "ipc")),
                                        ("ns_net", ("pid", "net")), ("ns_sysv_attach", ("pid", "ipc"))])
def test_namespaces(zdtm, name, kinds):
    """a tree in namespaces of its own (started by unshare -p -u/-i -f, the
    test is PID 1 there): dumped with its namespaces, then restored twice
    from the same images, both instances at once, each into new namespaces
    of the same kinds where it is PID 1 again with its children's PIDs, and
    its hostname or IPC objects"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm(name, timeout=90)
    wrapper = start_in_namespaces(r, kinds)
    inner = {p: nspid(p)[-1] for p in descendants(r.pid)}
    imgdir = r.dump(r.pid)
    r.check(wrapper.wait(timeout=r.remaining(10)) != 0, "unshare: its child was not killed")
    check_images(imgdir)
    instances = []
    for i in range(2):
        rpid = r.dir / ("restore-%d.pid" % i)
        rc = r.criu("restore-%d" % i, ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "-o",
                                       "restore-%d.log" % i, "-v4"], log=imgdir / ("restore-%d.log" % i))
        r.check(rc == 0, "criu restore %d exited with %s" % (i, rc))
        pid = int(read_text(rpid).strip())
        r.track(pid)
        r.check(nspid(pid)[-1] == 1, "restored root %d has NSpid %s" % (pid, nspid(pid)))
        for kind in kinds:
            r.check(ns_inode(pid, kind) != ns_inode(os.getpid(), kind),
                    "instance %d is not in a %s namespace of its own" % (i, kind))
        got = {}
        for p in descendants(pid):
            r.track(p)
            got[p] = nspid(p)[-1]
        r.check(sorted(got.values()) == sorted(inner.values()),
                "instance %d: inner PIDs %s, dumped %s" % (i, sorted(got.values()), sorted(inner.values())))
        instances.append(pid)
    r.check(ns_inode(instances[0], "pid") != ns_inode(instances[1], "pid"), "the instances share a pid namespace")
    for i, pid in enumerate(instances):
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "instance %d" % i)
    r.ok = True


NET_SYSCTLS = {  # path under /proc/sys/net, value set in the tree's namespace (none is a new netns's default)
    "ipv4/conf/all/forwarding": "1",
    "ipv4/conf/default/rp_filter": "2",
    "ipv4/conf/lo/accept_local": "1",
    "ipv4/conf/lo/accept_redirects": "0",
    "ipv6/conf/default/hop_limit": "33",
    "ipv6/conf/default/stable_secret": "2001:0db8:0000:0000:0000:0000:0000:5eed",
    "ipv6/conf/lo/mtu": "1400",
    "unix/max_dgram_qlen": "77",
}


def test_netns_sysctls(zdtm):
    """ns_net with net sysctls changed in its net namespace (ipv4/ipv6 all,
    default and lo, a string one, net.unix): netns-ID.img and the lo entry
    hold them (crit decodes them), and the restored namespace has every
    one again, not the new namespace's defaults; the test passes"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("ns_net", timeout=90)
    wrapper = start_in_namespaces(r, ["pid", "net"])

    def in_netns(pid, script):
        p = subprocess.run(["nsenter", "-t", str(pid), "-n", "sh", "-c", script], capture_output=True, text=True,
                           timeout=30)
        r.check(p.returncode == 0, "nsenter %d: %s" % (pid, p.stderr))
        return p.stdout
    in_netns(r.pid, " && ".join("echo %s > /proc/sys/net/%s" % (v, k) for k, v in NET_SYSCTLS.items()))
    read_all = " && ".join("cat /proc/sys/net/%s" % k for k in NET_SYSCTLS)
    r.check(in_netns(r.pid, read_all).split() == list(NET_SYSCTLS.values()), "the sysctls were not set")
    imgdir = r.dump(r.pid)
    wrapper.wait(timeout=r.remaining(10))
    check_images(imgdir)
    netns = sorted(imgdir.glob("netns-*.img"))
    r.check(len(netns) == 1, "images hold %s, not one netns image" % [p.name for p in netns])
    rpid = r.dir / "restore.pid"
    rc = r.criu("restore", ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "-o", "restore.log", "-v4"],
                log=imgdir / "restore.log")
    r.check(rc == 0, "criu restore exited with %s" % rc)
    pid = int(read_text(rpid).strip())
    r.track(pid)
    r.check(ns_inode(pid, "net") != ns_inode(os.getpid(), "net"), "the restored tree is in criu's net namespace")
    got = dict(zip(NET_SYSCTLS, in_netns(pid, read_all).split()))
    r.check(got == NET_SYSCTLS, "restored sysctls differ: %s" % {k: (v, NET_SYSCTLS[k]) for k, v in got.items()
                                                               if v != NET_SYSCTLS[k]})
    r.finish_task(pid)
    r.ok = True


def running(exe):
    """PIDs running the program exe."""
    pids = set()
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and os.readlink(d / "exe") == str(exe):
                pids.add(int(d.name))
        except OSError:
            pass
    return pids


def mount_table(pid):
    """[(mountpoint, fstype, per-mount options)] of /proc/PID/mountinfo."""
    out = []
    for line in read_text("/proc/%d/mountinfo" % pid).splitlines():
        f = line.split()
        dash = f.index("-")
        out.append((f[4], f[dash + 1], ",".join(sorted(f[5].split(",")))))
    return out


def propagation_shape(pid):
    """{mountpoint: (peer group, master)} of /proc/PID/mountinfo, the
    kernel's group numbers replaced by their order of first appearance (a
    restore makes new ones), outside groups (masters no mount of pid's
    is a peer of) as "outside"."""
    fields = {}
    for line in read_text("/proc/%d/mountinfo" % pid).splitlines():
        f = line.split()
        opt = dict(o.split(":", 1) for o in f[6:f.index("-")] if ":" in o)
        fields[f[4]] = (opt.get("shared"), opt.get("master"))
    inside = {sh for sh, _ in fields.values() if sh}
    labels = {}

    def label(g):
        if g is None:
            return None
        if g not in inside:
            return "outside"
        return labels.setdefault(g, len(labels))
    return {mp: (label(sh), label(ma)) for mp, (sh, ma) in fields.items()}


@pytest.fixture
def host_dir():
    """A directory of the host's (on /dev/shm, a filesystem the test's
    container does not otherwise see), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="zdtm-ext-", dir="/dev/shm"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def ns_mnt_externals(r):
    """ns_mnt's external mounts at dump: the host directory and file."""
    return ["--external", "mnt[%s/m/ext]:extdir" % r.dir, "--external", "mnt[%s/m/hosts]:hosts" % r.dir]


def ns_mnt_binds(host_dir):
    """Where they come from at restore."""
    return ["--external", "mnt[extdir]:%s" % host_dir, "--external", "mnt[hosts]:%s" % (host_dir / "hello")]


@pytest.mark.parametrize("kinds,mmt", [(("pid", "mount"), False), (("pid", "mount", "net", "uts", "ipc"), False),
                                       (("pid", "mount", "net", "uts", "ipc"), True)],
                         ids=["pid-mnt", "container", "container-mmt"])
def test_mount_namespace(request, zdtm, host_dir, kinds, mmt):
    """a container's private root (ns_mnt: a bind of the host's root with
    proc, sysfs, mqueue, a /dev tmpfs, a tmpfs with files, a read-only bind,
    an overlay and an external bind of a host directory, PID 1 of its own
    pid and mount namespaces, and in the container case of its own net, uts
    and ipc ones too) is dumped with its mounts and restored twice at once
    with --root, each instance in new namespaces with the same mount table,
    proc, sysfs and mqueue being its new namespaces'; the external mount
    binds the host directory again. In the mmt case the instances come
    from an mm-template of the dump."""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("ns_mnt", timeout=90)
    (host_dir / "hello").write_text("from the host")
    (r.dir / "ext_src").write_text(str(host_dir))
    wrapper = start_in_namespaces(r, kinds)
    before = mount_table(r.pid)
    r.check(len(before) == 16, "the test's mounts: %s" % before)
    shape = propagation_shape(r.pid)
    r.check(sum(1 for sh, _ in shape.values() if sh is not None) == 2, "the test's peer groups: %s" % shape)
    imgdir = r.dump(r.pid, ns_mnt_externals(r))
    r.check(wrapper.wait(timeout=r.remaining(10)) != 0, "unshare: its child was not killed")
    check_images(imgdir)
    r.check(list(imgdir.glob("tmpfs-dev-*.tar.gz.img")), "no tmpfs image")
    extra = []
    if mmt:
        request.getfixturevalue("mm_pool")
        extra = mmt_restore_args(mm_template(r, imgdir))
    instances = []
    for i in range(2):
        rpid = r.dir / ("restore-%d.pid" % i)
        rc = r.criu("restore-%d" % i, ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "--root", "/", "-o",
                                       "restore-%d.log" % i, "-v4"] + ns_mnt_binds(host_dir) + extra,
                    log=imgdir / ("restore-%d.log" % i))
        r.check(rc == 0, "criu restore %d exited with %s" % (i, rc))
        pid = int(read_text(rpid).strip())
        r.track(pid)
        for kind in ("mnt",) + kinds[2:]:
            r.check(ns_inode(pid, kind) != ns_inode(os.getpid(), kind), "instance %d shares our %s ns" % (i, kind))
        after = mount_table(pid)
        r.check(sorted(after) == sorted(before), "instance %d has the mounts\n%s\nnot\n%s" % (i, after, before))
        r.check(propagation_shape(pid) == shape, "instance %d has the propagation\n%s\nnot\n%s" % (
            i, propagation_shape(pid), shape))
        instances.append(pid)
    r.check(ns_inode(instances[0], "mnt") != ns_inode(instances[1], "mnt"), "the instances share mounts")
    r.check(not list(Path("/tmp").glob(".criu-root.*")), "criu left staging directories in /tmp")
    for i, pid in enumerate(instances):
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "instance %d" % i)
    r.check((host_dir / "restored").exists(), "the external mount is not the host's directory")
    r.ok = True


@pytest.fixture
def host_shared_dir():
    """A tmpfs of the host's (on /dev/shm), made shared, as a volume whose
    later mounts a runtime lets propagate into its containers; unmounted
    and removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="zdtm-shared-", dir="/dev/shm"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "zdtm-shared", str(d)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(d)], check=True)
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)])
        shutil.rmtree(d, ignore_errors=True)


def test_mount_namespace_host_master(zdtm, host_shared_dir):
    """ns_mnt in a mount namespace made with propagation slave (as runc's
    rslave): its external binds of a shared host directory are slaves of the
    host's peer group; after restore they still are (a copy of the host's
    mount, made a slave), so a mount the host makes later in that directory
    shows in the container, and one the container makes does not reach the
    host; the tree's own groups are made again too"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("ns_mnt", timeout=90)
    host = host_shared_dir
    (host / "hello").write_text("from the host")
    (r.dir / "ext_src").write_text(str(host))
    wrapper = start_in_namespaces(r, ("pid", "mount", "propagation=slave"))
    shape = propagation_shape(r.pid)
    ext, hosts = str(r.dir / "m" / "ext"), str(r.dir / "m" / "hosts")
    r.check(shape[ext] == shape[hosts] == (None, "outside"), "the external binds' propagation: %s" % shape)
    imgdir = r.dump(r.pid, ns_mnt_externals(r))
    r.check(wrapper.wait(timeout=r.remaining(10)) != 0, "unshare: its child was not killed")
    rpid = r.dir / "restore.pid"
    rc = r.criu("restore", ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "--root", "/", "-o", "restore.log",
                            "-v4"] + ns_mnt_binds(host), log=imgdir / "restore.log")
    r.check(rc == 0, "criu restore exited with %s" % rc)
    pid = int(read_text(rpid).strip())
    r.track(pid)
    r.check(propagation_shape(pid) == shape, "the restored propagation\n%s\nnot\n%s" % (propagation_shape(pid),
                                                                                        shape))
    (host / "later").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "zdtm-later", str(host / "later")], check=True)
    try:
        inside = [mp for mp, _, _ in mount_table(pid)]
        r.check(ext + "/later" in inside, "a mount the host made later is not in the container: %s" % inside)
    finally:
        subprocess.run(["umount", str(host / "later")], check=True)
    r.finish_task(pid)
    r.check(not any(p.endswith("/m/pa") for p, _, _ in mount_table(os.getpid())),
            "the container's mounts reached the host")
    r.ok = True


def test_mount_namespace_errors(zdtm, host_dir):
    """images of a private root: a restore without --root, or without the
    external mount's --external, fails with one line naming what is missing
    and leaves no process; a dump without --external for a mount of a
    filesystem the tree does not own is refused naming the PID and the
    mountpoint, and the test runs on"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("ns_mnt", timeout=90)
    (host_dir / "hello").write_text("from the host")
    (r.dir / "ext_src").write_text(str(host_dir))
    start_in_namespaces(r, ("pid", "mount"))
    bad = r.dir / "refused"
    res = subprocess.run([CRIU, "dump", "-t", str(r.pid), "-D", str(r.new_imgdir())], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=30)
    lines = res.stderr.strip().splitlines()
    r.check(res.returncode == 1 and len(lines) == 1, "dump without --external: %s" % (res,))
    r.check(str(r.pid) in lines[0] and "%s/m/ext" % r.dir in lines[0] and "--external" in lines[0], lines[0])
    r.check(proc_state(r.pid)[1] == 0, "the test is still traced")
    imgdir = r.dump(r.pid, ns_mnt_externals(r) + ["-R"])
    for args, want in (([], "--root"), (["--root", "/"], "--external mnt[extdir]:PATH"),
                       (["--root", str(bad)], "--root")):
        before = running(STATIC / "ns_mnt")
        res = subprocess.run([CRIU, "restore", "-d", "-D", str(imgdir)] + args, stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=30)
        lines = res.stderr.strip().splitlines()
        r.check(res.returncode == 1 and len(lines) == 1 and want in lines[0], "restore %s: %s" % (args, res))
        r.check(running(STATIC / "ns_mnt") == before, "restore %s left processes behind" % args)
    r.finish_task(r.pid, "the dumped test")
def host_ip(*args):
    """`ip ARGS` on the host; its output."""
    return subprocess.run(["ip"] + [str(a) for a in args], check=True, capture_output=True, text=True).stdout


def free_subnet():
    """A 10.x.y.0/24 the host has no address or route in (as "10.x.y")."""
    used = host_ip("-4", "-o", "addr") + host_ip("-4", "route", "show", "table", "all")
    for _ in range(100):
        net = "10.%d.%d" % (random.randint(200, 254), random.randint(0, 255))
        if net + "." not in used:
            return net
    pytest.fail("no free 10.x.y.0/24 on this host", pytrace=False)


def _veth_setup(r, env, host, bridge):
    """setup() for ns_veth: its eth0 as env describes, the peer host in bridge."""
    def setup(pid):
        host_ip("link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", pid)
        host_ip("link", "set", host, "master", bridge, "up")
        gw, gw6 = env["NS_VETH_GW"], env["NS_VETH_GW6"]
        for args in (["link", "set", "eth0", "mtu", env["NS_VETH_MTU"], "address", env["NS_VETH_MAC"], "up"],
                     ["addr", "add", env["NS_VETH_ADDR"] + "/24", "dev", "eth0"],
                     ["addr", "add", env["NS_VETH_ADDR6"] + "/64", "dev", "eth0", "nodad"],
                     ["route", "add", "default", "via", gw], ["route", "add", "192.0.2.0/24", "via", gw],
                     ["-6", "route", "add", "2001:db8:5::/64", "via", gw6]):
            subprocess.run(["nsenter", "-t", str(pid), "-n", "ip"] + args, check=True, capture_output=True)
        (r.dir / "veth-ready").touch()
    return setup


def start_ns_veth(r, kinds=("pid", "net"), env=None, command=None):
    """Start ns_veth (r; or command, see start_in_namespaces) with its eth0,
    whose peer on the host is in a new bridge holding the gateway's
    addresses. Returns the setup: env (of the program), tag (unique), host
    (the peer's name), bridge, wrapper, and names: the devices the test's
    cleanup deletes (add to it)."""
    tag = secrets.token_hex(3)
    net, six = free_subnet(), "fd%s:%s::" % (tag[:2], tag[2:])
    v = types.SimpleNamespace(tag=tag, host="zv" + tag, bridge="zb" + tag)
    v.env = {"NS_VETH_ADDR": net + ".2", "NS_VETH_GW": net + ".1", "NS_VETH_ADDR6": six + "2",
             "NS_VETH_GW6": six + "1", "NS_VETH_MTU": "1400",
             "NS_VETH_MAC": "02:5a:%s:%s:%s:01" % (tag[:2], tag[2:4], tag[4:])}
    v.names = [v.host, v.bridge]
    r.closers.append(lambda: [subprocess.run(["ip", "link", "del", n], capture_output=True) for n in v.names])
    # Once dumped, the program's namespace is dead, but the kernel frees it
    # (and the host's end with it) only later: until then the bridge may
    # send the address's packets (same address and MAC as the restored
    # end's) there. A platform deletes the dead end; so do the tests.
    v.drop_host_end = lambda: subprocess.run(["ip", "link", "del", v.host], capture_output=True)
    host_ip("link", "add", v.bridge, "type", "bridge")
    host_ip("addr", "add", v.env["NS_VETH_GW"] + "/24", "dev", v.bridge)
    host_ip("addr", "add", v.env["NS_VETH_GW6"] + "/64", "dev", v.bridge, "nodad")
    host_ip("link", "set", v.bridge, "up")
    v.env.update(env or {})
    v.wrapper = start_in_namespaces(r, kinds, v.env, _veth_setup(r, v.env, v.host, v.bridge), command)
    return v


def ping_through(r, v, out):
    """out, the host's end of a restored ns_veth, is in v.bridge and up: a
    connection to the restored listener through it, "ping" sent (ns_veth
    answers "pong" when it gets SIGTERM)."""
    sys_out = "/sys/class/net/%s/" % out
    r.check(os.path.exists(sys_out), "the peer %s is not on the host" % out)
    r.check(os.path.basename(os.readlink(sys_out + "master")) == v.bridge, "%s is not in %s" % (out, v.bridge))
    r.check(int(read_text(sys_out + "flags"), 16) & 1, "%s is down" % out)
    c = socket.create_connection((v.env["NS_VETH_ADDR"], 8080), timeout=r.remaining(10))
    r.closers.append(c.close)
    c.sendall(b"ping")
    return c


def check_pong(r, c):
    c.settimeout(r.remaining(10))
    r.check(c.recv(4) == b"pong", "the restored ns_veth did not answer through the veth")


def test_ns_veth(zdtm):
    """ns_veth, in pid and net namespaces of its own with a veth end (MTU,
    MAC, IPv4 and IPv6 addresses, a default route and extra routes, a TCP
    listener on its address), is dumped (ifaddr, route, route6 and rule
    images as `ip ... save` writes them) and restored twice from the same
    images, both instances at once: one with --veth-pair eth0=OUT@BRIDGE
    (the peer OUT is in the test's bridge, up, and a connection from the
    host reaches the restored listener through it), one with a peer the
    kernel names (logged, on the host); both pass. Restores that fail (a
    bridge that does not exist, a --veth-pair for a device the images lack)
    say why on one line and leave no peer on the host."""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("ns_veth", timeout=90)
    v = start_ns_veth(r)
    out, gone = v.host + "r", v.host + "x"
    v.names += [out, gone]
    imgdir = r.dump(r.pid)
    r.check(v.wrapper.wait(timeout=r.remaining(10)) != 0, "unshare: its child was not killed")
    v.drop_host_end()
    check_images(imgdir)
    for img in ("ifaddr", "route", "route6", "rule"):
        r.check(any(p.stat().st_size > 0 for p in imgdir.glob(img + "-*.img")), "no %s image" % img)
    for tag, pair, expect in (("nobridge", "eth0=%s@zn%s" % (gone, v.tag), "zn" + v.tag),
                              ("nodev", "eth9=" + gone, "no veth eth9")):
        rc = r.criu(tag, ["restore", "-d", "-D", imgdir, "--veth-pair", pair, "-o", tag + ".log", "-v4"],
                    log=imgdir / (tag + ".log"))
        lines = _check_failed_cleanly(r, rc, tag, "restore with --veth-pair " + pair)
        r.check(len(lines) == 1 and expect in lines[0], "%s: expected one line about %r:\n%s" % (
            tag, expect, "\n".join(lines)))
        r.check(not os.path.exists("/sys/class/net/" + gone), "%s: the peer %s is left" % (tag, gone))
    instances = []
    for i, extra in enumerate((["--veth-pair", "eth0=%s@%s" % (out, v.bridge)], [])):
        rpid = r.dir / ("restore-%d.pid" % i)
        rc = r.criu("restore-%d" % i, ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "-o",
                                       "restore-%d.log" % i, "-v4"] + extra, log=imgdir / ("restore-%d.log" % i))
        r.check(rc == 0, "criu restore %d exited with %s" % (i, rc))
        instances.append(int(read_text(rpid).strip()))
        r.track(instances[-1])
    m = re.search(r"veth eth0: its peer is (\S+) in criu's net namespace", read_text(imgdir / "restore-1.log"))
    r.check(m and m.group(1) != out, "instance 1 did not log the name of its peer")
    v.names.append(m.group(1))
    r.check(os.path.exists("/sys/class/net/" + m.group(1)), "instance 1's peer %s is not on the host" % m.group(1))
    c = ping_through(r, v, out)
    for i, pid in enumerate(instances):
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "instance %d" % i)
    check_pong(r, c)
    r.ok = True


def _entry_boundaries(data):
    """Offsets where protobuf entries start in a CRIU image (best effort)."""
    if len(data) < 4:
        return 0, set()
    m, = struct.unpack_from("<I", data, 0)
    hdr = 8 if m in (IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC) else 4
    bounds = {hdr}
    off = hdr
    while off + 4 <= len(data):
        n, = struct.unpack_from("<I", data, off)
        off += 4 + n
        if off > len(data):
            break
        bounds.add(off)
    return hdr, bounds


def _mutations(img, kind):
    """[(label, new bytes)] for one image file."""
    data = img.read_bytes()
    if not data:
        return []
    if kind == "zero":
        return [("truncated to 0", b"")]
    hdr, bounds = _entry_boundaries(data)
    if kind == "half":
        cut = len(data) // 2
        if cut in bounds and not img.name.startswith("pages-"):
            cut += 1  # never cut exactly between two entries
        return [("truncated to %d of %d bytes" % (cut, len(data)), data[:cut])]
    # flips
    if img.name.startswith("pages-"):
        return []
    res = []
    positions = [0]
    if hdr == 8:
        positions.append(4)
    if len(data) >= hdr + 4:
        positions.append(hdr + 3)  # most significant byte of the first entry's length
    for pos in positions:
        b = bytearray(data)
        b[pos] ^= 0xff if pos == hdr + 3 else 0x5a
        res.append(("byte %d flipped" % pos, bytes(b)))
    return res


@pytest.fixture(scope="module")
def env00_images(built, subreaper):
    """A real dump of env00 to damage; yields (Run, imgdir, pid)."""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    require_criu()
    r = Run("env00", timeout=120)
    try:
        r.start()
        imgdir = r.dump(r.pid)
        r.reap_dumped()
        r.ok = True
        yield r, imgdir, r.pid
    finally:
        r.cleanup()


@pytest.mark.parametrize("kind", ["half", "zero", "flip"])
def test_err_corrupt_images(env00_images, kind):
    """every image truncated / with bytes flipped: restore must fail cleanly and leave no task"""
    base, imgdir, pid = env00_images
    problems = []
    ncases = 0
    work = Path(tempfile.mkdtemp(prefix="zdtm-corrupt-%s-" % kind, dir=TMPROOT))
    try:
        for img in sorted(imgdir.glob("*.img")):
            if img.name in RESTORE_UNUSED_IMAGES:
                continue
            for label, newdata in _mutations(img, kind):
                ncases += 1
                case = "%s %s" % (img.name, label)
                copy = work / "img"
                if copy.exists():
                    shutil.rmtree(copy)
                shutil.copytree(imgdir, copy)
                for lf in ("restore.log",):
                    if (copy / lf).exists():
                        (copy / lf).unlink()
                (copy / img.name).write_bytes(newdata)
                rpid = work / "restore.pid"
                if rpid.exists():
                    rpid.unlink()
                so, se = work / "stdout", work / "stderr"
                with open(so, "wb") as fo, open(se, "wb") as fe:
                    p = subprocess.Popen([CRIU, "restore", "-D", str(copy), "-d", "--pidfile", str(rpid)],
                                         cwd=str(work), stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                         close_fds=True, start_new_session=True)
                    rc = wait_popen(p, CRIU_TIMEOUT)
                    if rc is None:
                        p.kill()
                        p.wait()
                        rc = "timeout"
                err = (read_text(se) or "").strip()
                if rc == "timeout":
                    problems.append("%s: criu restore hung" % case)
                elif rc == 0:
                    problems.append("%s: criu restore succeeded" % case)
                elif rc < 0 or rc >= 128:
                    problems.append("%s: criu restore crashed (%s)" % (case, rc))
                elif not err:
                    problems.append("%s: no error message on stderr" % case)
                # nothing may be left behind with the dumped pid (or any other restored pid)
                pids = {pid}
                txt = (read_text(rpid) or "").strip()
                if txt.isdigit():
                    pids.add(int(txt))
                for lp in pids:
                    try:
                        os.waitpid(lp, os.WNOHANG)
                    except ChildProcessError:
                        pass
                    st = proc_starttime(lp)
                    if st is not None:
                        state, _ = proc_state(lp)
                        if state != "Z":
                            problems.append("%s: a task with pid %d is left (state %s)" % (case, lp, state))
                        try:
                            os.kill(lp, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        end = time.monotonic() + 10
                        while proc_starttime(lp) == st and time.monotonic() < end:
                            try:
                                os.waitpid(lp, os.WNOHANG)
                            except ChildProcessError:
                                pass
                            time.sleep(0.01)
                reap_zombie_children()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert ncases, "no images to damage in %s" % imgdir
    assert not problems, "%d of %d damaged-image restores misbehaved:\n%s" % (
        len(problems), ncases, "\n".join(problems))


def crit_load(img):
    """An image as crit decodes it (JSON, raw numbers)."""
    return json.loads(subprocess.run([CRIT, "decode", "-i", str(img)], capture_output=True, text=True,
                                     check=True).stdout)


def crit_store(img, obj):
    """img encoded by crit from obj (as crit_load gives it)."""
    subprocess.run([CRIT, "encode", "-o", str(img)], input=json.dumps(obj), capture_output=True, text=True,
                   check=True)


def test_err_restore_tree_child_fails(zdtm):
    """a tree whose last task fails in the middle of its restore (its cwd,
    edited with crit, is the executable: opening it as a directory fails
    in the task, after its parent and the root exist): restore fails with
    one line naming the task's trouble, and no task of the tree is left"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("tree00", timeout=60)
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    leaf = max(r.tree)  # forked last: its parent and the root exist when it fails
    ids = crit_load(imgdir / ("ids-%d.img" % leaf))["entries"][0]
    mm = crit_load(imgdir / ("mm-%d.img" % leaf))["entries"][0]
    fs_img = imgdir / ("fs-%d.img" % ids["fs_id"])
    fs = crit_load(fs_img)
    fs["entries"][0]["cwd_id"] = mm["exe_file_id"]
    crit_store(fs_img, fs)
    rpid = r.dir / "tree-fail.pid"
    rc = r.criu("tree-fail", ["restore", "-D", imgdir, "-d", "--pidfile", rpid, "-o", "tree-fail.log", "-v4"],
                log=imgdir / "tree-fail.log")
    lines = _check_failed_cleanly(r, rc, "tree-fail", "restore of a tree with a broken task")
    r.check(any("PID %d" % leaf in l and "cwd" in l for l in lines), "the error does not name PID %d and "
            "its cwd: %s" % (leaf, lines))
    r.check(not rpid.exists(), "a pidfile was written by a failed restore")
    for pid in [r.pid] + sorted(r.tree):
        _no_task_left(r, pid, "the failed tree restore")
    r.ok = True


@pytest.mark.parametrize("who", ["thread", "leader"])
def test_err_restore_blob_fails(zdtm, who):
    """tree_threads with one image edited with crit so that the restorer
    blob fails in a task: in a non-leader thread of the root (its permitted
    capabilities emptied: capset fails), or in a child's leader before it
    makes its threads (an anonymous VMA without MAP_ANONYMOUS: mmap fails). Restore
    must not wait for threads that never come: it fails at once with one
    line naming the thread and the step, and no task is left"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("tree_threads", timeout=60)
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    tasks = crit_load(imgdir / "pstree.img")["entries"]
    if who == "thread":
        root = next(t for t in tasks if t["pid"] == r.pid)
        victim = next(tid for tid in root["threads"] if tid != r.pid)
        img = imgdir / ("core-%d.img" % victim)
        core = crit_load(img)
        creds = core["entries"][0]["thread_core"]["creds"]
        r.check(any(creds["cap_eff"]), "the thread has no effective capabilities to lose")
        creds["cap_prm"] = [0] * len(creds["cap_prm"])
        crit_store(img, core)
        step = "restoring credentials"
    else:
        child = next(t for t in tasks if t["pid"] != r.pid and len(t["threads"]) > 1)
        victim = child["pid"]
        img = imgdir / ("mm-%d.img" % victim)
        mm = crit_load(img)
        anon = next(v for v in mm["entries"][0]["vmas"] if v["flags"] == 0x22)  # MAP_PRIVATE | MAP_ANONYMOUS
        anon["flags"] = 0x02
        crit_store(img, mm)
        step = "mapping a VMA"
    rc = r.criu("blob-fail", ["restore", "-D", imgdir, "-d", "-o", "blob-fail.log", "-v4"],
                log=imgdir / "blob-fail.log")
    lines = _check_failed_cleanly(r, rc, "blob-fail", "restore with a failing %s" % who)
    r.check(len(lines) == 1, "expected one error line, got %s" % lines)
    r.check(any("thread %d" % victim in l and step in l for l in lines),
            "the error does not name thread %d and '%s': %s" % (victim, step, lines))
    for pid in [r.pid] + sorted(r.tree):
        _no_task_left(r, pid, "the failed restore")
    r.ok = True


def test_err_restore_mapped_file_changed(zdtm):
    """a file the task maps grew after the dump: restore refuses it with an
    error naming the file, and leaves no task behind"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("mmap_file_private", timeout=60)
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    data = r.dir / "mmap_file_private.data"
    with open(data, "ab") as f:
        f.write(b"x" * 4096)
    rpid = r.dir / "restore-changed.pid"
    rc = r.criu("restore-changed", ["restore", "-D", imgdir, "-d", "--pidfile", rpid, "-o", "restore.log", "-v4"],
                log=imgdir / "restore.log")
    lines = _check_failed_cleanly(r, rc, "restore-changed", "restore with a changed mapped file")
    r.check(any("mmap_file_private.data" in l and "changed" in l for l in lines),
            "no error line names the changed file: %s" % lines)
    _no_task_left(r, r.pid, "restore with a changed mapped file")
    r.ok = True


def test_inherit_fd_cli(zdtm):
    """criu restore --inherit-fd fd[N]:pipe[INODE]: inherit_fd00 held the read
    end of a pipe of ours; it is restored with criu's fd N (the read end of a
    new pipe of ours) in its place, and reads what we write there"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("inherit_fd00", timeout=60)
    msg = "inherit_fd cli %d" % os.getpid()
    rd, wr = os.pipe()
    ino = os.fstat(rd).st_ino
    r.start(env={"ZDTM_PIPE_FD": str(rd), "ZDTM_PIPE_MSG": msg}, pass_fds=(rd,))
    os.close(wr)
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    rd2, wr2 = os.pipe()
    try:
        pid, _ = r.restore(imgdir, extra=["--inherit-fd", "fd[%d]:pipe[%d]" % (rd2, ino)], pass_fds=(rd2,))
        r.check(os.fstat(wr2).st_ino == os.stat("/proc/%d/fd/%d" % (pid, rd)).st_ino,
                "the restored task's fd %d is not criu's inherited pipe" % rd)
        os.write(wr2, msg.encode())
    finally:
        os.close(rd)
        os.close(rd2)
        os.close(wr2)
    r.finish_task(pid)
    r.ok = True


@pytest.mark.parametrize("kind", ["net", "mount"])
def test_err_dump_own_namespace(tmp_path, built, kind):
    """a task in a mount namespace of its own that holds mounts criu can't
    make again (unshare -m copies the host's: devtmpfs, cgroupfs...), or in
    a net namespace with a device other than lo and veth ends (a bridge):
    the dump is refused with one line naming the PID, the namespace (and
    the mount or device), and the task runs on, untraced"""
    require_criu()
    ns = "mnt" if kind == "mount" else kind

    def ready(pid):  # in its namespace, and sleep (not unshare mid-way)
        return (os.readlink("/proc/%d/ns/%s" % (pid, ns)) != os.readlink("/proc/self/ns/%s" % ns)
                and os.path.basename(os.readlink("/proc/%d/exe" % pid)) == "sleep")
    p = subprocess.Popen(["unshare", "--" + kind, "sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not ready(p.pid):
            assert time.monotonic() < deadline, "unshare did not enter a new %s namespace" % kind
            time.sleep(0.01)
        if kind == "net":
            # in its namespace, which goes (with the bridge) when it is killed
            subprocess.run(["nsenter", "-t", str(p.pid), "-n", "ip", "link", "add", "zdtm-br0", "type", "bridge"],
                           check=True, capture_output=True)
        r = subprocess.run([CRIU, "dump", "-t", str(p.pid), "-D", str(tmp_path / "img")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and str(p.pid) in lines[0] and "namespace" in lines[0], r.stderr
        assert kind != "net" or "zdtm-br0 (bridge)" in lines[0], r.stderr
        assert p.poll() is None, "the task died"
        state, tracer = proc_state(p.pid)
        assert tracer == 0 and state not in ("t", "T"), (state, tracer)
    finally:
        p.kill()
        p.wait()


def test_stopped_task(zdtm):
    """a task stopped by SIGSTOP is dumped and comes back stopped (it runs
    nothing until SIGCONT), then continues and passes"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("env00", timeout=60)
    r.start()
    os.kill(r.pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while proc_state(r.pid)[0] != "T":
        r.check(time.monotonic() < deadline, "the task did not stop")
        time.sleep(0.01)
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    rpid = r.dir / "restore-stopped.pid"
    rc = r.criu("restore-stopped", ["restore", "-D", imgdir, "-d", "--pidfile", rpid, "-o", "restore.log", "-v4"],
                log=imgdir / "restore.log")
    r.check(rc == 0, "criu restore exited with %s" % rc)
    pid = int(read_text(rpid).strip())
    r.check(pid == r.pid, "restored pid %d != %d" % (pid, r.pid))
    r.track(pid)
    deadline = time.monotonic() + 10
    while proc_state(pid)[0] != "T":
        r.check(time.monotonic() < deadline, "the restored task is %s, not stopped" % (proc_state(pid),))
        time.sleep(0.01)
    r.check(proc_state(pid)[1] == 0, "the restored task is traced")
    os.kill(pid, signal.SIGCONT)
    r.finish_task(pid)
    r.ok = True
