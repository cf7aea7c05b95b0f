"""criu's RPC server: `criu service --address PATH` and `criu swrk FD`.

Run from the repository root like the rest of the suite:

    /usr/bin/python3 -m pytest test/zdtm -k test_rpc     # pytest.ini collects this file

Three kinds of clients drive it:

* libcriu (Debian's): rpc/client.c, built at test time with `gcc -lcriu`,
  dumps a running zdtm test program by PID and restores it, over the
  service socket (criu_set_service_address) or by spawning `criu swrk`
  (criu_set_service_binary, criu_restore_child);
* pycriu (Debian's): use_sk() and use_binary();
* a raw client (class Rpc) sending pycriu's rpc_pb2 messages over the
  socket itself, for what the libraries can't do: answer a notification
  with a failure, send malformed messages, disconnect in the middle, talk
  as a non-root peer, run two requests at once.

Every test uses the harness of test_zdtm.py (Run, the zdtm fixture, its
checks): a restored task must be the original's pid, a new process image,
running untraced, and PASS after SIGTERM.  Each test starts its own
service when it needs one (in the test's temp dir, kept if the test
fails, with the service's stderr in svc/service.log) and requires it to be
alive, to stop on SIGTERM with exit code 0 and to remove its socket at the
end.
"""

import os
import random
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

import pytest

from test_zdtm import (CRIU, MMT_PLUGIN_DIR, NOCR, TMPROOT, ZDTM_DIR, _check_job_ids, _finish_shell_job,  # noqa: F401
                       _no_task_left, _start_shell_job, _wait_running_untraced, built, check_images, check_pong,
                       descendants, nspid,
                       host_dir, mm_pool, mm_template, mount_table, ns_mnt_binds, ns_mnt_externals, pages_not_owned, ping_through,
                       proc_starttime,
                       proc_state, read_text, reap_zombie_children,
                       start_in_namespaces, start_ns_veth, subreaper, tail, thread_cgroup, tree_threads,
                       wait_popen, wait_status_str, zdtm)

pycriu = pytest.importorskip("pycriu", reason="Debian's pycriu (python3-criu) is needed")
rpc = pycriu.rpc

pytestmark = pytest.mark.skipif(NOCR, reason="ZDTM_NOCR")

CLIENT_SRC = ZDTM_DIR / "rpc" / "client.c"
# how long one RPC request may take before we call it hung
RPC_TIMEOUT = 15
# restores through libcriu's criu_restore_child(): see test_libcriu_swrk_restore_child
RESTORE_CHILD_TIMEOUT = 8

DUMP_SCRIPTS = ["pre-dump", "post-dump"]
RESTORE_SCRIPTS = ["pre-restore", "post-restore", "post-resume"]


# ---------------------------------------------------------------- helpers


def proc_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid, errors="replace") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(")") + 2:].split()[1])


def children_of(ppid):
    kids = []
    for ent in os.listdir("/proc"):
        if ent.isdigit() and proc_ppid(int(ent)) == ppid:
            kids.append(int(ent))
    return sorted(kids)


def comm(pid):
    return (read_text("/proc/%d/comm" % pid) or "").strip()


def wchan(pid):
    return (read_text("/proc/%d/wchan" % pid) or "?").strip() or "?"


def open_dir(path):
    return os.open(str(path), os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)


def with_our_opts(req, fields):
    """req with criu_opts fields of our own ({number: string}, 1000 and
    up), which Debian's pycriu does not know: appended encoded, as unknown
    fields, which protobuf keeps."""
    raw = b""
    for number, text in fields.items():
        data = str(text).encode()
        for v in ((number << 3) | 2, len(data)):
            while v >= 0x80:
                raw += bytes([(v & 0x7f) | 0x80])
                v >>= 7
            raw += bytes([v])
        raw += data
    opts = type(req.opts)()
    opts.ParseFromString(req.opts.SerializeToString() + raw)
    req.opts.CopyFrom(opts)
    return req


class Service:
    """`criu service --address DIR/svc/criu.sock` of one Run, our child.  Its
    stdout/stderr go to svc/service.log, which r.diag() shows; the Run's
    cleanup kills it if the test did not stop it."""

    def __init__(self, r, extra=(), shell=None):
        self.r = r
        self.dir = r.dir / "svc"
        self.dir.mkdir(exist_ok=True)
        # one socket name per service: a second service must not be mistaken
        # for ready because the first one's socket exists
        n = len(list(self.dir.glob("criu*.sock")))
        self.path = self.dir / ("criu.sock" if n == 0 else "criu-%d.sock" % n)
        self.log = self.dir / "service.log"
        self.shell = shell
        argv = [CRIU, "service", "--address", str(self.path)] + list(extra)
        entry = ["service", argv, "running", self.log, self.log, None]
        r.criu_runs.append(entry)
        if shell is not None:
            # a job of a JobShell: the terminal is its stdin
            self.proc = None
            self.pid = shell.spawn(argv, cwd=self.dir, stdout=self.log, stderr=self.log)
        else:
            with open(self.log, "ab") as f:
                self.proc = subprocess.Popen(argv, cwd=str(self.dir), stdin=subprocess.DEVNULL, stdout=f,
                                             stderr=f, close_fds=True, start_new_session=True)
            r.popens.append(self.proc)
            self.pid = self.proc.pid
            r.track(self.pid)
        self.starttime = proc_starttime(self.pid)
        self.stopped = False
        r.closers.append(self.kill)
        end = time.monotonic() + 10
        while not self.path.exists():
            r.check(self.alive(), "criu service exited before creating its socket:\n%s" % tail(self.log))
            r.check(time.monotonic() < end, "criu service did not create its socket %s in 10s" % self.path)
            time.sleep(0.005)

    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        return proc_starttime(self.pid) == self.starttime and proc_state(self.pid)[0] not in ("Z", None)

    def connect(self):
        return Rpc.connect(self.r, self.path)

    def workers(self):
        """The service's busy children: one worker per connection being
        served (and the tasks a worker restored until it exits); not the
        worker forked ahead for the next connection (criu-idle) nor the
        spares of --prepare (criu-spare)."""
        return [p for p in children_of(self.pid) if comm(p) not in ("criu-idle", "criu-spare")]

    def spares(self):
        """The names (@criu-spare/SERVICE/DEV:INO) the service's spares of
        --prepare listen on."""
        prefix = "@criu-spare/%d/" % self.pid
        lines = (read_text("/proc/net/unix") or "").splitlines()[1:]
        return sorted({ln.split()[-1] for ln in lines if ln.split()[-1].startswith(prefix)})

    def spare_name(self, imgdir):
        st = os.stat(imgdir)
        return "@criu-spare/%d/%x:%x" % (self.pid, st.st_dev, st.st_ino)

    def wait_spare(self, imgdir, timeout=RPC_TIMEOUT):
        """Until the spare of imgdir listens (it may still be reading)."""
        end = time.monotonic() + timeout
        while self.spare_name(imgdir) not in self.spares():
            self.r.check(time.monotonic() < end, "no spare of %s after %ds (spares: %s)\n%s" % (
                imgdir, timeout, self.spares(), tail(self.log)))
            time.sleep(0.005)

    def wait_idle(self, timeout=RPC_TIMEOUT):
        """Until no worker is left."""
        end = time.monotonic() + timeout
        while self.workers():
            self.r.check(time.monotonic() < end, "service workers %s still run after %ds (wchan %s)" % (
                self.workers(), timeout, [wchan(p) for p in self.workers()]))
            time.sleep(0.005)

    def check_serving(self, what):
        """The service is alive and answers a VERSION request."""
        self.r.check(self.alive(), "criu service died %s:\n%s" % (what, tail(self.log)))
        c = self.connect()
        try:
            resp = c.call(rpc.criu_req(type=rpc.VERSION))
        finally:
            c.close()
        self.r.check(resp.success and resp.type == rpc.VERSION,
                     "criu service does not serve a VERSION request %s: %s" % (what, resp))

    def stop(self):
        """SIGTERM: the service exits with 0 and removes its socket."""
        r = self.r
        r.check(self.alive(), "criu service died during the test:\n%s" % tail(self.log))
        os.kill(self.pid, signal.SIGTERM)
        if self.proc is not None:
            rc = wait_popen(self.proc, 10)
        else:
            status = self.shell.wait(self.pid, 10)
            rc = None if status is None else os.waitstatus_to_exitcode(status)
        r.check(rc is not None, "criu service did not stop within 10s of SIGTERM")
        self.stopped = True
        r.check(rc == 0, "criu service exited with %s on SIGTERM:\n%s" % (rc, tail(self.log)))
        r.check(not os.path.lexists(self.path), "criu service left its socket %s behind" % self.path)

    def kill(self):
        if not self.stopped and self.alive():
            os.kill(self.pid, signal.SIGKILL)
            if self.proc is not None:
                self.proc.wait()
            elif not self.shell.closed:
                self.shell.wait(self.pid, 10)


class Rpc:
    """One connection to criu's RPC server: criu_req out, criu_resp in, one
    SOCK_SEQPACKET packet each.  For swrk, proc is the `criu swrk` process."""

    def __init__(self, r, sock, proc=None):
        self.r = r
        self.sock = sock
        self.proc = proc
        self.notes = []        # (script, pid) of every notification received
        self.sent = self.received = None   # monotonic times of the last call

    @classmethod
    def connect(cls, r, path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        r.closers.append(s.close)
        s.connect(str(path))
        return cls(r, s)

    @classmethod
    def swrk(cls, r):
        """Spawn `criu swrk FD` on one end of a socketpair, as libcriu does."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = r.dir / "swrk.log"
        r.criu_runs.append(["swrk", [CRIU, "swrk", str(theirs.fileno())], "running", log, log, None])
        with open(log, "ab") as f:
            p = subprocess.Popen([CRIU, "swrk", str(theirs.fileno())], cwd=str(r.dir), stdin=subprocess.DEVNULL,
                                 stdout=f, stderr=f, pass_fds=(theirs.fileno(),), close_fds=True,
                                 start_new_session=True)
        theirs.close()
        r.popens.append(p)
        r.track(p.pid)
        return cls(r, ours, p)

    def send(self, req):
        data = req if isinstance(req, bytes) else req.SerializeToString()
        self.sock.send(data)
        self.sent = time.monotonic()

    def recv(self, timeout=RPC_TIMEOUT):
        """The next criu_resp, or None at the end of the connection."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            self.r.fail("no RPC response within %ds" % timeout)
        finally:
            self.sock.settimeout(None)
        self.received = time.monotonic()
        if not data:
            return None
        resp = rpc.criu_resp()
        resp.ParseFromString(data)
        return resp

    def call(self, req, answer=None, timeout=RPC_TIMEOUT):
        """Send req and return the final response.  Notifications are
        recorded in self.notes and answered with answer(script, pid) (True:
        go on, the default)."""
        self.send(req)
        sent = self.sent
        while True:
            resp = self.recv(timeout)
            self.r.check(resp is not None, "the RPC server closed the connection without answering %s" % (
                rpc.criu_req_type.Name(req.type) if not isinstance(req, bytes) else "a message"))
            if resp.type != rpc.NOTIFY:
                self.sent = sent
                return resp
            self.notes.append((resp.notify.script, resp.notify.pid))
            ok = True if answer is None else answer(resp.notify.script, resp.notify.pid)
            self.send(rpc.criu_req(type=rpc.NOTIFY, notify_success=ok))

    def close(self):
        self.sock.close()
        if self.proc is not None:
            rc = wait_popen(self.proc, 10)
            self.r.check(rc is not None, "criu swrk %d did not exit when its socket was closed" % self.proc.pid)
            self.r.check(rc == 0, "criu swrk exited with %s:\n%s" % (rc, tail(self.r.dir / "swrk.log")))


def make_req(type_, keep_open=False, inherit=(), **opts):
    """A criu_req; opts are criu_opts fields, inherit (key, fd) pairs."""
    req = rpc.criu_req(type=type_)
    if keep_open:
        req.keep_open = True
    if opts or inherit:
        for k, v in opts.items():
            if isinstance(v, (list, tuple)):
                getattr(req.opts, k).extend(v)
            else:
                setattr(req.opts, k, v)
        for key, fd in inherit:
            req.opts.inherit_fd.add(key=key, fd=fd)
    return req


def resp_error(resp):
    return "success=%s cr_errno=%s cr_errmsg=%r" % (resp.success, resp.cr_errno, resp.cr_errmsg)


def rpc_dump(r, conn, imgdir=None, answer=None, **opts):
    """DUMP r.pid into imgdir (a new one by default); returns (imgdir, response).
    As Run.dump, notes the tree below r.pid."""
    r.tree = descendants(r.pid)
    for child in r.tree:
        r.track(child)
    imgdir = imgdir or r.new_imgdir()
    fd = open_dir(imgdir)
    try:
        resp = conn.call(make_req(rpc.DUMP, images_dir_fd=fd, pid=r.pid, **opts), answer)
    finally:
        os.close(fd)
    return imgdir, resp


def rpc_restore(r, conn, imgdir, answer=None, inherit=(), **opts):
    fd = open_dir(imgdir)
    try:
        return conn.call(make_req(rpc.RESTORE, images_dir_fd=fd, inherit=inherit, **opts), answer)
    finally:
        os.close(fd)


def dump_ok(r, conn, **opts):
    """DUMP that must succeed; the original is reaped; returns imgdir."""
    imgdir, resp = rpc_dump(r, conn, **opts)
    r.check(resp.success and resp.type == rpc.DUMP, "RPC dump failed: %s" % resp_error(resp))
    if not opts.get("leave_running"):
        r.reap_dumped()
    return imgdir


def restore_ok(r, conn, imgdir, **opts):
    """RESTORE that must succeed; returns the checked restored pid."""
    resp = rpc_restore(r, conn, imgdir, **opts)
    r.check(resp.success and resp.type == rpc.RESTORE, "RPC restore failed: %s" % resp_error(resp))
    return r.check_restored_pid(resp.restore.pid)


class Client:
    """rpc/client.c (libcriu) running as our child; stdout read line by line."""

    def __init__(self, r, binary, args):
        self.r = r
        self.err = r.dir / "client.stderr"
        self.argv = [binary] + [str(a) for a in args]
        with open(self.err, "ab") as f:
            self.proc = subprocess.Popen(self.argv, cwd=str(r.dir), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=f, close_fds=True)
        r.popens.append(self.proc)
        self.pid = self.proc.pid
        r.track(self.pid)
        self.buf = b""
        self.lines = []

    def describe(self):
        return "client %s\nstdout: %s\nstderr: %s" % (" ".join(self.argv), self.lines + [self.buf.decode()],
                                                     (read_text(self.err) or "").strip())

    def expect(self, word, timeout=RPC_TIMEOUT):
        """The fields of the next stdout line starting with word (earlier lines
        are kept in self.lines); None on timeout."""
        end = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.decode()
                self.lines.append(line)
                if line.split()[:1] == [word]:
                    return line.split()[1:]
            left = end - time.monotonic()
            if left <= 0:
                return None
            if select.select([self.proc.stdout], [], [], left)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self.r.fail("the client exited (%s) before printing %r\n%s" % (
                        wait_popen(self.proc, 5), word, self.describe()))
                self.buf += chunk

    def must(self, word, timeout=RPC_TIMEOUT):
        fields = self.expect(word, timeout)
        self.r.check(fields is not None, "the client printed no %r line in %ds\n%s" % (word, timeout,
                                                                                    self.describe()))
        return fields

    def finish(self):
        rc = wait_popen(self.proc, 10)
        rest = self.proc.stdout.read().decode()
        self.lines += [l for l in (self.buf.decode() + rest).split("\n") if l]
        self.buf = b""
        self.proc.stdout.close()
        self.r.check(rc == 0, "the client exited with %s\n%s" % (rc, self.describe()))

    def notes(self):
        return [l.split()[1] for l in self.lines if l.startswith("notify ")]


@pytest.fixture(scope="session")
def rpc_client():
    """rpc/client.c built against Debian's libcriu."""
    if shutil.which("gcc") is None or not os.path.exists("/usr/include/criu/criu.h"):
        pytest.skip("gcc and libcriu-dev are needed for the libcriu client")
    d = tempfile.mkdtemp(prefix="zdtm-rpc-client-", dir=TMPROOT)
    out = os.path.join(d, "client")
    p = subprocess.run(["gcc", "-Wall", "-Werror", "-O2", "-o", out, str(CLIENT_SRC), "-lcriu"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if p.returncode != 0:
        pytest.fail("building %s failed:\n%s" % (CLIENT_SRC, p.stdout.decode()[-4000:]), pytrace=False)
    yield out
    shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- libcriu


@pytest.mark.parametrize("name", ["env00", "heap00"])
def test_libcriu_service(zdtm, rpc_client, name):
    """libcriu over `criu service` (criu_set_service_address): criu_dump of a
    running test program by PID, criu_restore; the restored task passes"""
    r = zdtm(name, timeout=60)
    svc = Service(r)
    r.start()
    imgdir = r.new_imgdir()
    c = Client(r, rpc_client, ["-s", svc.path, "-l", "4", "-L", "rpc.log", "cr", r.pid, imgdir])
    r.check(c.must("dumped") == [str(r.pid)], "client: %s" % c.lines)
    r.reap_dumped()
    pid, _, _ = map(int, c.must("restored"))
    c.finish()
    r.check_restored_pid(pid)
    check_images(imgdir)
    r.check("Restore finished" in (read_text(imgdir / "rpc.log") or ""),
            "no restore log in %s/rpc.log" % imgdir)
    r.finish_task(pid)
    svc.stop()
    r.ok = True


def test_libcriu_swrk(zdtm, rpc_client):
    """libcriu spawning `criu swrk` (criu_set_service_binary) for criu_dump and
    criu_restore, with a notify callback: the client sees pre-dump, post-dump,
    pre-restore, post-restore, post-resume; the restored task passes"""
    r = zdtm("env00", timeout=60)
    r.start()
    imgdir = r.new_imgdir()
    c = Client(r, rpc_client, ["-b", CRIU, "-n", "cr", r.pid, imgdir])
    c.must("dumped")
    r.reap_dumped()
    pid, _, _ = map(int, c.must("restored"))
    c.finish()
    r.check(c.notes() == DUMP_SCRIPTS + RESTORE_SCRIPTS, "notifications: %s" % c.lines)
    r.check_restored_pid(pid)
    r.finish_task(pid)
    r.ok = True


def test_libcriu_swrk_restore_child(zdtm, rpc_client):
    """libcriu's criu_restore_child(): swrk with rst_sibling, the restored task
    becomes the client's child (its ppid is the client), the client reaps it
    after SIGTERM, it passes"""
    r = zdtm("heap00", timeout=60)
    r.start()
    imgdir = r.new_imgdir()
    c = Client(r, rpc_client, ["-b", CRIU, "-c", "cr", r.pid, imgdir])
    c.must("dumped")
    r.reap_dumped()
    fields = c.expect("restored", RESTORE_CHILD_TIMEOUT)
    if fields is None:
        # say precisely where it hangs
        swrks = [p for p in children_of(c.pid) if p != r.pid]
        for p in swrks + [r.pid]:
            r.track(p)   # killed and reaped by the cleanup
        task = "the task was restored (pid %d, ppid %s, state %s)" % (
            r.pid, proc_ppid(r.pid), proc_state(r.pid)[0]) if proc_starttime(r.pid) else "no restored task"
        why = ""
        if swrks and wchan(c.pid) == "do_wait":
            why = ("; the client waits for its `criu swrk` child %s (wchan %s) to exit while swrk waits for "
                   "another request on the socket the client still holds: libcriu 3.17's criu_restore_child() "
                   "calls waitpid(swrk) before close(socket), so swrk has to exit after a request without "
                   "keep_open (as upstream criu's swrk does)" % (swrks, [wchan(p) for p in swrks]))
        r.fail("criu_restore_child() did not return within %ds: %s; client pid %d (wchan %s)%s\n%s" % (
            RESTORE_CHILD_TIMEOUT, task, c.pid, wchan(c.pid), why, c.describe()))
    pid, ppid, me = map(int, fields)
    r.check(me == c.pid and ppid == c.pid, "restored task's ppid %d, expected the client %d" % (ppid, c.pid))
    r.check_restored_pid(pid)
    r.check(proc_ppid(pid) == c.pid, "restored task's ppid is %s, not the client %d" % (proc_ppid(pid), c.pid))
    time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)
    status = int(c.must("exited")[0])
    c.finish()
    r.check_pass(status, "restored task (reaped by the client)")
    r.ok = True


# ---------------------------------------------------------------- pycriu


def _pycriu(r, how):
    c = pycriu.criu()
    if how == "service":
        c.use_sk(str(r.svc.path))
    else:
        c.use_binary(CRIU)
    return c


def _pycriu_call(r, what, fn):
    try:
        return fn()
    except pycriu.CRIUException as e:
        r.fail("pycriu %s: %s" % (what, e))


@pytest.mark.parametrize("how", ["service", "swrk"])
def test_pycriu(zdtm, how):
    """pycriu: use_sk() (service) / use_binary() (swrk, restore with
    rst_sibling: the task is our child): dump by PID, restore, passes"""
    r = zdtm("heap00" if how == "service" else "env00", timeout=60)
    r.svc = Service(r) if how == "service" else None
    r.start()
    imgdir = r.new_imgdir()
    fd = open_dir(imgdir)
    try:
        c = _pycriu(r, how)
        c.opts.images_dir_fd = fd
        c.opts.pid = r.pid
        c.opts.log_file = "dump.log"
        c.opts.log_level = 4
        _pycriu_call(r, "dump", c.dump)
        r.reap_dumped()
        check_images(imgdir)
        c = _pycriu(r, how)
        c.opts.images_dir_fd = fd
        c.opts.log_file = "restore.log"
        c.opts.log_level = 4
        if how == "swrk":
            c.opts.rst_sibling = True
        pid = r.check_restored_pid(_pycriu_call(r, "restore", c.restore).pid)
    finally:
        os.close(fd)
    if how == "swrk":
        r.check(proc_ppid(pid) == os.getpid(), "rst_sibling: the restored task's ppid is %s, not us (%d)" % (
            proc_ppid(pid), os.getpid()))
    r.finish_task(pid)
    if r.svc:
        r.svc.stop()
    r.ok = True


def test_pycriu_requests(zdtm):
    """pycriu's check() and wait_pid(); a failing request raises with the
    server's errno"""
    r = zdtm("rpc_pycriu", timeout=60)
    svc = Service(r)
    c = pycriu.criu()
    c.use_sk(str(svc.path))
    _pycriu_call(r, "check", c.check)
    c = pycriu.criu()
    c.use_sk(str(svc.path))
    c.opts.images_dir_fd = open_dir(r.dir)
    try:
        c.restore()
        r.fail("pycriu restore from a dir without images succeeded")
    except pycriu.CRIUExceptionExternal as e:
        r.check(e.typ == rpc.RESTORE and e.errno != 0, "unexpected exception %s" % e)
    finally:
        os.close(c.opts.images_dir_fd)
    svc.check_serving("after a failed request")
    svc.stop()
    r.ok = True


# ---------------------------------------------------------------- options


def test_rpc_leave_running(zdtm):
    """DUMP with leave_running: the original keeps running untraced and
    passes; then the copy is restored over RPC and passes"""
    r = zdtm("env00", timeout=60)
    svc = Service(r)
    r.start()
    c = svc.connect()
    imgdir = dump_ok(r, c, leave_running=True)
    r.check(r.proc.poll() is None, "original task died after an RPC dump with leave_running")
    r.check(proc_starttime(r.pid) == r.starttime, "original task was replaced")
    _wait_running_untraced(r, r.pid, "after an RPC dump with leave_running")
    check_images(imgdir)
    r.sigterm_original()
    r.out.unlink()
    pid = restore_ok(r, svc.connect(), imgdir)
    r.finish_task(pid)
    svc.stop()
    r.ok = True


DEBUG_LINE = re.compile(r"^\(\d+\.\d{6}\) fd \d+ -> file id \d+", re.M)


def test_rpc_log_file_level(zdtm):
    """log_file + log_level: the log is written in the images dir; level 4
    has the debug lines level 2 has not; nothing goes to the service's own
    log; a log_file with a '/' is refused"""
    r = zdtm("env00", timeout=60)
    svc = Service(r)
    r.start()
    d4 = dump_ok(r, svc.connect(), leave_running=True, log_file="dump.log", log_level=4)
    d2 = dump_ok(r, svc.connect(), leave_running=True, log_file="dump.log", log_level=2)
    v4, v2 = read_text(d4 / "dump.log"), read_text(d2 / "dump.log")
    r.check(v4 is not None and v2 is not None, "no dump.log in %s or %s" % (d4, d2))
    r.check(DEBUG_LINE.search(v4), "log_level 4: no debug line ('fd N -> file id') in dump.log:\n%s" % v4[-2000:])
    r.check(not DEBUG_LINE.search(v2), "log_level 2 wrote debug lines:\n%s" % v2[-2000:])
    r.check("Dumping finished successfully" in v4, "log_level 4: no info lines:\n%s" % v4[-2000:])
    r.check(not DEBUG_LINE.search(read_text(svc.log) or ""), "the dump log went to the service's stderr too")
    _, resp = rpc_dump(r, svc.connect(), leave_running=True, log_file="../escape.log")
    r.check(not resp.success and "log_file" in resp.cr_errmsg,
            "log_file '../escape.log' was not refused: %s" % resp_error(resp))
    r.check(not (r.dir / "escape.log").exists(), "a refused log_file was written")
    r.sigterm_original()
    svc.stop()
    r.ok = True


def test_rpc_work_dir(zdtm):
    """work_dir_fd: log_file goes to the work dir (not the images dir) for
    dump and restore; the restored task passes"""
    r = zdtm("env00", timeout=60)
    svc = Service(r)
    r.start()
    wd = r.dir / "work"
    wd.mkdir()
    wfd = open_dir(wd)
    try:
        imgdir = dump_ok(r, svc.connect(), work_dir_fd=wfd, log_file="dump.log", log_level=4)
        pid = restore_ok(r, svc.connect(), imgdir, work_dir_fd=wfd, log_file="restore.log", log_level=4)
    finally:
        os.close(wfd)
    for log, text in (("dump.log", "Dumping finished successfully"), ("restore.log", "Restore finished")):
        r.check(text in (read_text(wd / log) or ""), "no %r in the work dir's %s" % (text, log))
        r.check(not (imgdir / log).exists(), "%s was written in the images dir despite work_dir_fd" % log)
    check_images(imgdir)
    r.finish_task(pid)
    svc.stop()
    r.ok = True


def test_rpc_shell_job(zdtm):
    """shell_job: shell_job00 run as a job of a shell on a pty is dumped over
    RPC with shell_job, then restored through a service run as a job of a
    second shell on the same pty: without shell_job the restore fails and
    leaves nothing; with it the task gets the service's session and its own
    process group, the pty as its terminal, and passes"""
    r = zdtm("shell_job00", timeout=60)
    svc = Service(r)
    sh1 = _start_shell_job(r)
    imgdir = dump_ok(r, svc.connect(), shell_job=True)
    check_images(imgdir)
    sh1.close()
    sh2 = r.job_shell(r.pty)
    svc2 = Service(r, shell=sh2)   # svc/ is reused: this service's socket gets its own name
    resp = rpc_restore(r, svc2.connect(), imgdir)
    r.check(not resp.success and re.search(r"shell.job|terminal|tty", resp.cr_errmsg),
            "restore of a shell job without shell_job: %s" % resp_error(resp))
    svc2.wait_idle()
    _no_task_left(r, r.pid, "RPC restore without shell_job")
    pid = restore_ok(r, svc2.connect(), imgdir, shell_job=True)
    _check_job_ids(r, pid, sh2.pid, pid, "restored job")
    r.finish_task(pid)
    _finish_shell_job(r, pid)
    svc2.stop()
    svc.stop()
    r.ok = True


@pytest.mark.parametrize("how", ["plain", "mm_template"])
def test_rpc_inherit_fd(zdtm, request, how):
    """inherit_fd {key "pipe[INODE]"}: inherit_fd00 holds the read end of a
    pipe of ours; it is restored with the read end of a new pipe of ours
    instead, we write into that pipe and the task reads it; also restored
    from an mm-template (the service hands the connection to the
    template's holder, whose worker takes the fd from us)"""
    r = zdtm("inherit_fd00", timeout=60)
    tmpl = how == "mm_template"
    if tmpl:
        request.getfixturevalue("mm_pool")
    svc = Service(r, extra=["-L", str(MMT_PLUGIN_DIR)] if tmpl else ())
    msg = "inherit_fd %d" % os.getpid()
    rd, wr = os.pipe()
    fds = [rd, wr]
    try:
        ino = os.fstat(rd).st_ino
        r.start(env={"ZDTM_PIPE_FD": str(rd), "ZDTM_PIPE_MSG": msg}, pass_fds=(rd,))
        for fd in (rd, wr):
            os.close(fd)
            fds.remove(fd)
        imgdir = dump_ok(r, svc.connect())
        rd2, wr2 = os.pipe()
        fds += [rd2, wr2]
        key = "pipe[%d]" % ino
        if tmpl:
            name = mm_template(r, imgdir)
            fd = open_dir(imgdir)
            try:
                req = make_req(rpc.RESTORE, images_dir_fd=fd, inherit=[(key, rd2)])
                resp = svc.connect().call(with_our_opts(req, {1000: name}))
            finally:
                os.close(fd)
            r.check(resp.success, "RPC restore from a template with inherit_fd: %s" % resp_error(resp))
            pid = r.check_restored_pid(resp.restore.pid)
        else:
            pid = restore_ok(r, svc.connect(), imgdir, inherit=[(key, rd2)])
        os.close(rd2)
        fds.remove(rd2)
        r.check(os.fstat(wr2).st_ino == os.stat("/proc/%d/fd/%d" % (pid, rd)).st_ino,
                "the restored task's fd %d is not our new pipe (%s)" % (rd, os.readlink("/proc/%d/fd/%d" % (pid, rd))))
        os.write(wr2, msg.encode())
        os.close(wr2)
        fds.remove(wr2)
        r.finish_task(pid)
    finally:
        for fd in fds:
            os.close(fd)
    svc.stop()
    r.ok = True


def test_rpc_root_external_mount(zdtm, host_dir):
    """root and external (mnt[MOUNTPOINT]:KEY, then mnt[KEY]:PATH): ns_mnt,
    a container's private root, is dumped and restored through the service
    into a new mount namespace with the same mounts, and passes"""
    r = zdtm("ns_mnt", timeout=90)
    svc = Service(r)
    (host_dir / "hello").write_text("from the host")
    (r.dir / "ext_src").write_text(str(host_dir))
    wrapper = start_in_namespaces(r, ("pid", "mount"))
    before = sorted(mount_table(r.pid))
    imgdir, resp = rpc_dump(r, svc.connect(), external=ns_mnt_externals(r)[1::2])
    r.check(resp.success, "RPC dump failed: %s" % resp_error(resp))
    r.check(wrapper.wait(timeout=r.remaining(10)) != 0, "unshare: its child was not killed")
    resp = rpc_restore(r, svc.connect(), imgdir, root="/", external=ns_mnt_binds(host_dir)[1::2])
    r.check(resp.success, "RPC restore failed: %s" % resp_error(resp))
    pid = resp.restore.pid
    r.track(pid)
    r.check(sorted(mount_table(pid)) == before, "restored mounts %s, dumped %s" % (mount_table(pid), before))
    r.finish_task(pid)
    svc.stop()
    r.ok = True


def test_rpc_notify(zdtm):
    """notify_scripts: DUMP notifies pre-dump and post-dump (the task still
    there), RESTORE pre-restore (no task yet), post-restore and post-resume
    with the restored pid; each waits for our answer"""
    r = zdtm("env00", timeout=60)
    svc = Service(r)
    r.start()
    seen = []

    def answer(script, pid):
        seen.append((script, pid, proc_starttime(r.pid)))
        return True

    c = svc.connect()
    imgdir = dump_ok(r, c, notify_scripts=True, answer=answer)
    r.check([n[0] for n in c.notes] == DUMP_SCRIPTS, "dump notifications: %s" % c.notes)
    r.check(all(pid == r.pid and st == r.starttime for _, pid, st in seen),
            "dump notifications while the original did not exist or with another pid: %s" % seen)
    seen.clear()
    c = svc.connect()
    pid = restore_ok(r, c, imgdir, notify_scripts=True, answer=answer)
    r.check([n[0] for n in c.notes] == RESTORE_SCRIPTS, "restore notifications: %s" % c.notes)
    r.check(seen[0][2] is None, "pre-restore: pid %d exists already" % r.pid)
    r.check([n[1] for n in c.notes[1:]] == [pid, pid], "post-restore/post-resume pids: %s" % c.notes)
    r.check(all(st is not None for _, _, st in seen[1:]), "post-restore/resume without the task: %s" % seen)
    r.finish_task(pid)
    svc.stop()
    r.ok = True


@pytest.mark.parametrize("script", DUMP_SCRIPTS)
def test_rpc_notify_fail_dump(zdtm, script):
    """a client answering notify_success=false at pre-dump/post-dump: the
    DUMP fails naming it and the task runs on untraced, and passes"""
    r = zdtm("env00", timeout=60)
    svc = Service(r)
    r.start()
    c = svc.connect()
    _, resp = rpc_dump(r, c, notify_scripts=True, answer=lambda s, p: s != script)
    r.check(not resp.success and resp.type == rpc.DUMP, "DUMP did not fail: %s" % resp_error(resp))
    r.check(script in resp.cr_errmsg, "the error does not name the notification %s: %r" % (script,
                                                                                          resp.cr_errmsg))
    r.check([n[0] for n in c.notes] == DUMP_SCRIPTS[:DUMP_SCRIPTS.index(script) + 1],
            "notifications: %s" % c.notes)
    svc.wait_idle()
    r.check(proc_starttime(r.pid) == r.starttime, "the task died or was replaced")
    _wait_running_untraced(r, r.pid, "after a failed %s notification" % script)
    r.sigterm_original()
    svc.stop()
    r.ok = True


@pytest.mark.parametrize("script", ["pre-restore", "post-restore"])
def test_rpc_notify_fail_restore(zdtm, script):
    """a client answering notify_success=false at pre-restore/post-restore:
    the RESTORE fails naming it and leaves no process; the images still
    restore fine afterwards"""
    r = zdtm("env00", timeout=60)
    svc = Service(r)
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    c = svc.connect()
    resp = rpc_restore(r, c, imgdir, notify_scripts=True, answer=lambda s, p: s != script)
    r.check(not resp.success and resp.type == rpc.RESTORE, "RESTORE did not fail: %s" % resp_error(resp))
    r.check(script in resp.cr_errmsg, "the error does not name the notification %s: %r" % (script,
                                                                                          resp.cr_errmsg))
    r.check([n[0] for n in c.notes] == RESTORE_SCRIPTS[:RESTORE_SCRIPTS.index(script) + 1],
            "notifications: %s" % c.notes)
    svc.wait_idle()
    _no_task_left(r, r.pid, "a restore failed at %s" % script)
    pid = restore_ok(r, svc.connect(), imgdir)
    r.finish_task(pid)
    svc.stop()
    r.ok = True


@pytest.mark.parametrize("how", ["service", "swrk"])
def test_rpc_version_features_check(zdtm, rpc_client, how):
    """VERSION (3.17, name criu-cpp; libcriu's criu_get_version agrees),
    FEATURE_CHECK (every asked feature answered, as absent), CHECK succeeds;
    over one connection (keep_open)"""
    r = zdtm("rpc_version_" + how, timeout=60)
    svc = Service(r) if how == "service" else None
    c = svc.connect() if svc else Rpc.swrk(r)
    resp = c.call(make_req(rpc.VERSION, keep_open=True))
    r.check(resp.success and resp.type == rpc.VERSION, "VERSION: %s" % resp_error(resp))
    v = resp.version
    r.check((v.major_number, v.minor_number, v.name) == (3, 17, "criu-cpp"), "VERSION: %s" % v)
    req = make_req(rpc.FEATURE_CHECK, keep_open=True)
    req.features.mem_track = True
    req.features.lazy_pages = True
    resp = c.call(req)
    r.check(resp.success and resp.type == rpc.FEATURE_CHECK, "FEATURE_CHECK: %s" % resp_error(resp))
    f = resp.features
    r.check(f.HasField("mem_track") and f.HasField("lazy_pages") and not f.mem_track and not f.lazy_pages,
            "FEATURE_CHECK answer: %s" % f)
    r.check(not f.HasField("pidfd_store"), "FEATURE_CHECK answered the unasked pidfd_store: %s" % f)
    resp = c.call(make_req(rpc.CHECK, keep_open=True))
    r.check(resp.success and resp.type == rpc.CHECK, "CHECK: %s" % resp_error(resp))
    c.close()
    sel = ["-s", svc.path] if svc else ["-b", CRIU]
    cl = Client(r, rpc_client, sel + ["version"])
    r.check(cl.must("version") == ["31700"], "libcriu criu_get_version: %s" % cl.lines)
    cl.finish()
    cl = Client(r, rpc_client, sel + ["check"])
    cl.must("check")
    cl.finish()
    if svc:
        svc.stop()
    r.ok = True


def test_rpc_wait_pid_swrk(zdtm):
    """WAIT_PID through swrk: a task restored (without rst_sibling) is swrk's
    child; WAIT_PID returns its wait status after SIGTERM: exit 0, PASS"""
    r = zdtm("env00", timeout=60)
    r.start()
    c = Rpc.swrk(r)
    imgdir = dump_ok(r, c, keep_open=True)
    pid = restore_ok(r, c, imgdir, keep_open=True)
    r.check(proc_ppid(pid) == c.proc.pid, "restored task's ppid %s is not swrk %d" % (proc_ppid(pid), c.proc.pid))
    c.send(rpc.criu_req(type=rpc.WAIT_PID, pid=pid, keep_open=True))
    time.sleep(0.1)
    r.check(proc_starttime(pid) is not None, "the task died before SIGTERM")
    os.kill(pid, signal.SIGTERM)
    resp = c.recv()
    r.check(resp is not None and resp.success and resp.type == rpc.WAIT_PID and resp.HasField("status"),
            "WAIT_PID: %s" % (resp and resp_error(resp)))
    r.check_pass(resp.status, "restored task (WAIT_PID status %s)" % wait_status_str(resp.status))
    r.check(proc_starttime(pid) is None, "the task still exists after WAIT_PID")
    check_images(imgdir)
    c.close()
    r.ok = True


def test_rpc_veths(zdtm):
    """criu_opts.veths (CRIU's criu_veth_pair list): a RESTORE of ns_veth
    (in net and pid namespaces of its own, with a veth end) over the service
    names the host's end of the veth and puts it into a bridge, as
    --veth-pair IN=OUT@BRIDGE does; a connection from the host reaches the
    restored task through it, and it passes"""
    r = zdtm("ns_veth", timeout=90)
    v = start_ns_veth(r)
    out = v.host + "r"
    v.names.append(out)
    imgdir = r.dump(r.pid)
    r.check(v.wrapper.wait(timeout=r.remaining(10)) != 0, "unshare: its child was not killed")
    v.drop_host_end()
    svc = Service(r)
    resp = rpc_restore(r, svc.connect(), imgdir,
                       veths=[rpc.criu_veth_pair(if_in="eth0", if_out="%s@%s" % (out, v.bridge))])
    r.check(resp.success and resp.type == rpc.RESTORE, "RPC restore failed: %s" % resp_error(resp))
    r.track(resp.restore.pid)
    c = ping_through(r, v, out)
    r.finish_task(resp.restore.pid)
    check_pong(r, c)
    svc.stop()
    r.ok = True


@pytest.mark.parametrize("name", ["tree_threads", "fpu_threads"])
def test_rpc_cg_root(zdtm, name):
    """criu_opts.cg_root (CRIU's field 25, --cgroup-root): a RESTORE puts
    every thread of every restored task into the named cgroups, a path
    without controller for memory and cpu and one for the cpu controller
    alone (which wins there), with the dump's limits written there (the
    root joins them itself before anything else is made); a DUMP with
    cg_root is refused"""
    r = zdtm(name, timeout=90)
    rel = {"memory": "/zdtm-cgroot-%d" % os.getpid(), "cpu": "/zdtm-cgroot-%d-cpu" % os.getpid()}
    roots = [rpc.cgroup_root(path=rel["memory"]), rpc.cgroup_root(ctrl="cpu", path=rel["cpu"])]
    dirs = {ctl: "/sys/fs/cgroup/%s%s" % (ctl, rel[ctl]) for ctl in ("memory", "cpu")}
    if not all(os.path.exists("/sys/fs/cgroup/%s/tasks" % ctl) for ctl in dirs):
        pytest.skip("memory and cpu are not v1 hierarchies here")
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)

    def drop():
        # what is left in them is our restored tree (a failed test's)
        for d in dirs.values():
            for p in (read_text(os.path.join(d, "cgroup.procs")) or "").split():
                os.kill(int(p), signal.SIGKILL)
        end = time.monotonic() + 10
        for d in dirs.values():
            while os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    reap_zombie_children()
                    if time.monotonic() > end:
                        raise
                    time.sleep(0.01)
    r.closers.append(drop)
    svc = Service(r)
    r.start()
    c = svc.connect()
    _, resp = rpc_dump(r, c, imgdir=r.new_imgdir(), keep_open=True, cg_root=roots)
    r.check(not resp.success and "restore option" in resp.cr_errmsg, "DUMP with cg_root: %s" % resp_error(resp))
    c.close()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    pid = restore_ok(r, svc.connect(), imgdir, cg_root=roots)
    tasks = tree_threads(pid)
    r.check(len(tasks) >= 2, "%s has a single thread: %s" % (name, tasks))
    for p, t in tasks:
        for ctl in dirs:
            r.check(thread_cgroup(p, t, ctl) == rel[ctl], "thread %d of PID %d is in %s:%s, not %s"
                    % (t, p, ctl, thread_cgroup(p, t, ctl), rel[ctl]))
    limits = dict(line.split("=", 1) for line in (read_text(imgdir / "cgroup-limits") or "").splitlines())
    r.check("memory.limit_in_bytes" in limits, "the dump saved no memory limit: %s" % limits)
    for key, value in limits.items():
        path = os.path.join(dirs[key.split(".")[0]], key)
        if os.path.exists(path):
            r.check(read_text(path).strip() == value, "%s = %s, not the dump's %s" % (path, read_text(path), value))
    r.finish_task(pid)
    svc.stop()
    r.ok = True


def test_rpc_dump_timeout(zdtm):
    """criu_opts.timeout (field 45): a DUMP of a task the kernel does not
    stop (vfork_wait) fails after about that many seconds with the reason;
    the service's worker ends even though the request asked for keep_open
    (the task stays traced until it does), and the task goes on and
    passes"""
    from test_zdtm import check_vfork_wait_goes_on, start_vfork_wait
    r = zdtm("vfork_wait", timeout=60)
    svc = Service(r)
    child = start_vfork_wait(r)
    c = svc.connect()
    t0 = time.monotonic()
    _, resp = rpc_dump(r, c, imgdir=r.new_imgdir(), keep_open=True, timeout=1)
    took = time.monotonic() - t0
    r.check(not resp.success and "did not stop within the timeout" in resp.cr_errmsg,
            "DUMP of a task that does not stop: %s" % resp_error(resp))
    r.check(0.9 <= took < 5, "the dump gave up after %.2f s, not about 1 s" % took)
    c.sock.settimeout(5)
    try:
        eof = c.sock.recv(1 << 16) == b""
    except socket.timeout:
        eof = False
    r.check(eof, "the worker kept the connection open")
    check_vfork_wait_goes_on(r, child)
    svc.stop()
    r.ok = True


UNSUPPORTED = [("tcp_established", True), ("ext_unix_sk", True), ("lazy_pages", True),
               ("external", ["unix[123]"])]


def test_rpc_unsupported_options(zdtm):
    """tcp_established & co: DUMP and RESTORE fail with success=false and a
    message naming the option; the task is left untouched and passes"""
    r = zdtm("env00", timeout=60)
    svc = Service(r)
    r.start()
    c = svc.connect()
    empty = r.new_imgdir()
    for name, value in UNSUPPORTED:
        _, resp = rpc_dump(r, c, imgdir=empty, keep_open=True, **{name: value})
        r.check(not resp.success and resp.type == rpc.DUMP and name in resp.cr_errmsg,
                "DUMP with %s: %s" % (name, resp_error(resp)))
        r.check(proc_starttime(r.pid) == r.starttime, "DUMP with %s: the task died or was replaced" % name)
        resp = rpc_restore(r, c, empty, keep_open=True, **{name: value})
        r.check(not resp.success and resp.type == rpc.RESTORE and name in resp.cr_errmsg,
                "RESTORE with %s: %s" % (name, resp_error(resp)))
    r.check(not os.listdir(empty), "refused requests wrote %s" % os.listdir(empty))
    _wait_running_untraced(r, r.pid, "after refused requests")
    r.check(c.call(make_req(rpc.VERSION)).success, "the connection does not serve after refusals")
    r.sigterm_original()
    svc.stop()
    r.ok = True


def _upstream_only_option(req, name):
    """Set an upstream criu_opts field that images/rpc.proto lacks."""
    if name == "join_ns":
        req.opts.join_ns.add(ns="net", ns_file="/proc/1/ns/net")
    elif name == "lsm_profile":
        req.opts.lsm_profile = "apparmor:unconfined"
    elif name == "unix_sk_ino":
        req.opts.unix_sk_ino.add(inode=12345)


@pytest.mark.parametrize("name", ["join_ns", "lsm_profile", "unix_sk_ino"])
def test_rpc_unknown_upstream_option(zdtm, name):
    """an upstream CRIU option this criu's rpc.proto does not even know
    (join_ns, lsm_profile, unix_sk_ino: they change what a restore does) is
    refused as Documentation/rpc.md promises ("any other CRIU option that is
    set makes the request fail with a message naming it, rather than being
    ignored"), not silently dropped: RESTORE from an empty dir must fail
    because of the option, not because of the missing images"""
    r = zdtm("rpc_unknown_" + name, timeout=60)
    svc = Service(r)
    empty = r.new_imgdir()
    fd = open_dir(empty)
    try:
        req = make_req(rpc.RESTORE, images_dir_fd=fd)
        _upstream_only_option(req, name)
        number = rpc.criu_opts.DESCRIPTOR.fields_by_name[name].number
        resp = svc.connect().call(req)
    finally:
        os.close(fd)
    r.check(not resp.success, "RESTORE with %s succeeded" % name)
    r.check(name in resp.cr_errmsg or re.search(r"\b%d\b" % number, resp.cr_errmsg),
            "RESTORE with the upstream option %s (criu_opts field %d) failed for another reason, so the option "
            "was ignored: %s" % (name, number, resp_error(resp)))
    svc.stop()
    r.ok = True


# ---------------------------------------------------------------- safety


def test_rpc_socket_mode(zdtm):
    """the service socket is a socket of mode 0600 owned by root"""
    r = zdtm("rpc_socket_mode", timeout=60)
    svc = Service(r)
    st = os.lstat(svc.path)
    r.check(stat.S_ISSOCK(st.st_mode), "%s is not a socket: %o" % (svc.path, st.st_mode))
    r.check(stat.S_IMODE(st.st_mode) == 0o600, "socket mode %o, expected 600" % stat.S_IMODE(st.st_mode))
    r.check(st.st_uid == 0, "socket owned by uid %d" % st.st_uid)
    svc.stop()
    r.ok = True


def test_rpc_idle_worker_owns_its_pages(zdtm):
    """the worker the service forks ahead of the next connection (criu-idle)
    owns its heap pages and has criu's code mapped before a request comes
    (criu_own_pages_ahead), the first one and the one forked after a
    request: serving does not fault on each page it first touches"""
    r = zdtm("rpc_idle_worker_pages", timeout=60)
    svc = Service(r)
    for round_ in ("first", "after a request"):
        if round_ != "first":
            svc.check_serving("for the next worker")
            svc.wait_idle()
        end = time.monotonic() + 10
        while True:
            idle = [p for p in children_of(svc.pid) if comm(p) == "criu-idle"]
            left = pages_not_owned(idle[0]) if len(idle) == 1 else None
            if left == [] or time.monotonic() > end:
                break
            time.sleep(0.01)
        r.check(len(idle) == 1, "%s: the service's idle workers: %s" % (round_, idle))
        r.check(left == [], "%s: the idle worker %d has pages to fault in (kB): %s" % (round_, idle[0], left))
    svc.stop()
    r.ok = True


NONROOT_CLIENT = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(bytes.fromhex(sys.argv[2]))
s.settimeout(10)
resp = s.recv(1 << 20)
after = s.recv(1 << 20)
print(os.getuid(), os.getgid(), resp.hex(), len(after))
"""


def test_rpc_nonroot_refused(zdtm):
    """a peer of uid 65534 (socket made 0666 for the test) sending CHECK gets
    success=false with a message about root; root is still served"""
    r = zdtm("rpc_nonroot", timeout=60)
    svc = Service(r)
    os.chmod(svc.path, 0o666)
    for d in (svc.dir, r.dir):
        os.chmod(d, 0o755)
    req = make_req(rpc.CHECK).SerializeToString()
    p = subprocess.run(["/usr/bin/python3", "-I", "-c", NONROOT_CLIENT, str(svc.path), req.hex()],
                       user=65534, group=65534, extra_groups=[], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30, cwd="/")
    r.check(p.returncode == 0, "the uid 65534 client failed (%d): %s" % (p.returncode, p.stderr.decode()[-2000:]))
    uid, gid, hexresp, after = p.stdout.decode().split()
    r.check((uid, gid) == ("65534", "65534"), "the client ran as %s/%s" % (uid, gid))
    resp = rpc.criu_resp()
    resp.ParseFromString(bytes.fromhex(hexresp))
    r.check(not resp.success and resp.type == rpc.CHECK and "root" in resp.cr_errmsg,
            "a non-root CHECK got: %s" % resp_error(resp))
    r.check(after == "0", "the connection of a refused peer stays open")
    svc.wait_idle()
    svc.check_serving("after refusing a non-root peer")
    svc.stop()
    r.ok = True


def _malformed():
    good = make_req(rpc.DUMP, keep_open=True, images_dir_fd=3, pid=1, log_file="x" * 40).SerializeToString()
    rnd = random.Random(20240601).randbytes(200)
    return [("random bytes", b"\xff" * 8 + rnd),
            ("a truncated criu_req", good[:len(good) // 2]),
            ("a criu_req without its required type", b"\x20\x01")]


def test_rpc_malformed(zdtm):
    """malformed messages (random bytes, a truncated criu_req, one without
    its type) each get an error response, and the same connection then
    serves a valid keep_open request; a new connection is served too"""
    r = zdtm("rpc_malformed", timeout=60)
    svc = Service(r)
    c = svc.connect()
    for what, data in _malformed():
        resp = c.call(data)
        r.check(not resp.success and resp.cr_errmsg, "%s: %s" % (what, resp_error(resp)))
        resp = c.call(make_req(rpc.VERSION, keep_open=True))
        r.check(resp.success and resp.type == rpc.VERSION, "after %s: VERSION on the same connection: %s" % (
            what, resp_error(resp)))
    c.close()
    # without keep_open: the malformed message does not end the one-request connection
    c = svc.connect()
    resp = c.call(_malformed()[0][1])
    r.check(not resp.success, "random bytes: %s" % resp_error(resp))
    resp = c.call(make_req(rpc.VERSION))
    r.check(resp.success, "VERSION after random bytes (no keep_open): %s" % resp_error(resp))
    r.check(c.recv() is None, "the connection stays open after a request without keep_open")
    c.close()
    svc.wait_idle()
    svc.check_serving("after malformed messages")
    svc.stop()
    r.ok = True


def test_rpc_concurrent(zdtm):
    """two clients dump and restore two programs at the same time: each
    holds its request at the pre-dump (pre-restore) notification until the
    other's request has reached it too, so both are served in parallel and
    their requests overlap in time; both tasks pass"""
    r1 = zdtm("env00", timeout=60)
    r2 = zdtm("heap00", timeout=60)
    svc = Service(r1)
    for r in (r1, r2):
        r.start()
    barrier = threading.Barrier(2, timeout=10)
    spans = {"dump": {}, "restore": {}}
    errors = []
    pids = {}

    def hold(script, pid):
        if script in ("pre-dump", "pre-restore"):
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return False
        return True

    def work(r):
        try:
            c = svc.connect()
            imgdir = dump_ok(r, c, notify_scripts=True, answer=hold)
            spans["dump"][r.name] = (c.sent, c.received)
            c = svc.connect()
            pids[r.name] = restore_ok(r, c, imgdir, notify_scripts=True, answer=hold)
            spans["restore"][r.name] = (c.sent, c.received)
        except BaseException as e:  # noqa: B902 - reported by the main thread
            errors.append("%s: %s" % (r.name, e))
            barrier.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in (r1, r2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    r1.check(not any(t.is_alive() for t in threads), "a client thread hangs")
    r1.check(not errors, "concurrent requests failed (not served in parallel?):\n" + "\n".join(errors))
    for kind, sp in spans.items():
        (a0, a1), (b0, b1) = sp.values()
        r1.check(max(a0, b0) < min(a1, b1), "%s requests did not overlap: %s" % (kind, sp))
    for r in (r1, r2):
        r.finish_task(pids[r.name])
    svc.stop()
    r1.ok = r2.ok = True


@pytest.mark.parametrize("when", ["after-send", "at-pre-restore", "at-post-restore"])
def test_rpc_disconnect_restore(zdtm, when):
    """a client that disconnects right after sending RESTORE (or while a
    pre-restore / post-restore notification waits for its answer): once the
    worker is done there is either no process with the pid or a fully
    restored one (running, untraced) that passes; never a half-restored
    one; the service goes on serving"""
    r = zdtm("env00", timeout=60)
    svc = Service(r)
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    rounds = 5 if when == "after-send" else 1
    for i in range(rounds):
        c = svc.connect()
        # the images dir fd stays open (the worker reads it through
        # /proc/OUR_PID/fd): only the connection goes away
        fd = open_dir(imgdir)
        try:
            c.send(make_req(rpc.RESTORE, images_dir_fd=fd, notify_scripts=when != "after-send"))
            if when == "after-send":
                time.sleep(0.002 * i)
            else:
                while True:
                    resp = c.recv()
                    r.check(resp is not None and resp.type == rpc.NOTIFY,
                            "expected a notification, got %s" % (resp and resp_error(resp)))
                    if resp.notify.script == when[3:]:
                        break
                    c.send(rpc.criu_req(type=rpc.NOTIFY, notify_success=True))
            c.sock.close()
            svc.wait_idle()
        finally:
            os.close(fd)
        try:
            os.waitpid(r.pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if proc_starttime(r.pid) is None:
            continue
        r.check(when == "after-send", "a restore whose client went away at %s left task %d (state %s)" % (
            when[3:], r.pid, proc_state(r.pid)[0]))
        r.check_restored_pid(r.pid)
        _wait_running_untraced(r, r.pid, "restored for a client that went away", grace=0.5)
        r.finish_task(r.pid)
        r.out.unlink()
    svc.check_serving("after clients went away")
    svc.stop()
    r.ok = True


def test_rpc_service_daemon(zdtm):
    """criu service --daemon --pidfile F: the command returns, the daemon
    (a new session, reparented to us) wrote its pid, serves, and on SIGTERM
    exits 0 and removes its socket"""
    r = zdtm("rpc_daemon", timeout=60)
    sock = r.dir / "daemon.sock"
    pidfile = r.dir / "daemon.pid"
    rc = r.criu("daemon", ["service", "--daemon", "--pidfile", pidfile, "--address", sock], timeout=10)
    r.check(rc == 0, "criu service --daemon exited with %s" % rc)
    end = time.monotonic() + 5
    while not (read_text(pidfile) or "").strip().isdigit():
        r.check(time.monotonic() < end, "no pid in %s after 5s" % pidfile)
        time.sleep(0.005)
    pid = int(read_text(pidfile).strip())
    st = r.track(pid)
    r.check(st is not None, "the daemon %d from the pidfile does not exist" % pid)
    r.check(pid != r.criu_pid, "the pidfile holds the pid of the command, not of the daemon")
    r.check("service" in (read_text("/proc/%d/cmdline" % pid) or ""), "pid %d is not criu service" % pid)
    r.check(os.getsid(pid) == pid, "the daemon is not a session leader (sid %d)" % os.getsid(pid))
    r.check(proc_ppid(pid) == os.getpid(), "the daemon's ppid is %s" % proc_ppid(pid))
    c = Rpc.connect(r, sock)
    r.check(c.call(make_req(rpc.VERSION)).success, "the daemon does not serve VERSION")
    c.close()
    os.kill(pid, signal.SIGTERM)
    end = time.monotonic() + 10
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            break
        r.check(time.monotonic() < end, "the daemon did not exit within 10s of SIGTERM")
        time.sleep(0.005)
    r.check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "the daemon ended with %s" %
            wait_status_str(status))
    r.check(not os.path.lexists(sock), "the daemon left its socket behind")
    r.ok = True


# ---------------------------------------------------------------- --prepare


def _prepared_service(r):
    """A service with --prepare 1 logging at -v3 to DIR/prepared.log."""
    log = r.dir / "prepared.log"
    return Service(r, ["--prepare", "1", "-v3", "-o", str(log)]), log


def _prepared_once(r, svc):
    """Start r, dump it through svc, restore it once (an ordinary restore)
    and wait for the spare of its images; returns the images."""
    r.start()
    imgdir = dump_ok(r, svc.connect())
    r.finish_task(restore_ok(r, svc.connect(), imgdir))
    svc.wait_spare(imgdir)
    return imgdir


def _served(log):
    """How many restores a spare served so far."""
    return (read_text(log) or "").count("with the memory prepared for it")


def _anon_shared_dirty(pid):
    """kB of the task's anonymous memory that another process maps too."""
    total, anon = 0, False
    for line in (read_text("/proc/%d/smaps" % pid) or "").splitlines():
        key, _, val = line.partition(":")
        if key == "Anonymous":
            anon = int(val.split()[0]) > 0
        elif key == "Shared_Dirty" and anon:
            total += int(val.split()[0])
    return total


@pytest.mark.parametrize("name", ["heap00", "mm_anon", "maps_sparse", "mprotect00", "tree_shm", "fpu_threads"])
def test_rpc_prepared(zdtm, name):
    """criu service --prepare 1: the first RESTORE of a dump is ordinary;
    meanwhile a spare reads the images and the root's memory, and serves
    the next RESTORE of that directory (the service's log says so), three
    times in a row; every instance passes; a single-process task's
    anonymous memory is its own once the spare is gone (no Shared_Dirty);
    when the service stops its spare ends and stops listening"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm(name, timeout=90)
    svc, log = _prepared_service(r)
    r.start()
    imgdir = dump_ok(r, svc.connect())
    for i in range(4):
        if i:
            svc.wait_spare(imgdir)
        # a log in the images directory, as libcriu clients have: not a change
        pid = restore_ok(r, svc.connect(), imgdir, log_file="restore.log", log_level=4)
        r.check(_served(log) == i,
                "restore %d: %d restores served by a spare so far, expected %d\n%s" % (i, _served(log), i,
                                                                                         tail(log)))
        svc.wait_idle()
        if not r.tree:
            r.check(_anon_shared_dirty(pid) == 0, "restore %d: %d kB of the task's anonymous memory is "
                    "mapped by another process too" % (i, _anon_shared_dirty(pid)))
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "instance %d" % i)
        while any(proc_starttime(p) is not None for p in r.tree):  # its PIDs free for the next
            r.check(time.monotonic() < r.deadline, "the tree of instance %d is still there" % i)
            reap_zombie_children()
            time.sleep(0.005)
    svc.wait_spare(imgdir)
    spare = svc.spare_name(imgdir)
    svc.stop()
    end = time.monotonic() + 10
    while spare in svc.spares():
        r.check(time.monotonic() < end, "the spare still listens 10s after the service stopped")
        time.sleep(0.005)
    r.ok = True


def test_rpc_prepared_changed_and_dropped(zdtm):
    """--prepare 1 with the images of a spare replaced by another dump (same
    directory, another process): the spare sees the change and ends, the
    restore is ordinary and brings back the new dump's task; with two
    directories restored in turn only the last one's spare lives"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r1 = zdtm("heap00", timeout=90)
    r2 = zdtm("env00", timeout=90)
    svc, log = _prepared_service(r1)
    imgdir = _prepared_once(r1, svc)
    # another process's dump in the same directory
    for f in os.listdir(imgdir):
        os.unlink(os.path.join(imgdir, f))
    r2.start()
    dump_ok(r2, svc.connect(), imgdir=imgdir)
    pid = restore_ok(r2, svc.connect(), imgdir)
    r1.check(_served(log) == 0, "a spare served images that changed since it read them\n%s" % tail(log))
    r1.check("changed since they were prepared" in (read_text(log) or ""),
             "the spare did not notice the change:\n%s" % tail(log))
    r2.finish_task(pid)
    # two directories: the newest one's spare replaces the other
    r3 = zdtm("mm_anon", timeout=90)
    r3.start()
    other = dump_ok(r3, svc.connect())
    svc.wait_spare(imgdir)
    r3.finish_task(restore_ok(r3, svc.connect(), other))
    svc.wait_spare(other)
    end = time.monotonic() + 10
    while svc.spares() != [svc.spare_name(other)]:
        r1.check(time.monotonic() < end, "spares %s, expected only %s's" % (svc.spares(), other))
        time.sleep(0.005)
    r2.out.unlink(missing_ok=True)
    r2.finish_task(restore_ok(r2, svc.connect(), imgdir), "the dropped spare's images")
    r1.check(_served(log) == 0, "a dropped spare served a restore\n%s" % tail(log))
    svc.stop()
    r1.ok = r2.ok = r3.ok = True


NONROOT_SPARE = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect("\0" + sys.argv[1])
mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(10)
try:  # the spare may have closed the connection already: a refusal too
    socket.send_fds(s, [bytes.fromhex(sys.argv[2])], [theirs.fileno()])
    answer = s.recv(16)
except OSError as e:
    answer = b"error"
print(os.getuid(), answer.hex() or "-")
"""


def test_rpc_prepared_nonroot_peer(zdtm):
    """a uid 65534 process that finds a spare's abstract socket and hands it
    a RESTORE request is not served (no answer, the connection closes); the
    spare then serves the next root request"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("heap00", timeout=90)
    svc, log = _prepared_service(r)
    imgdir = _prepared_once(r, svc)
    req = make_req(rpc.RESTORE, images_dir_fd=0).SerializeToString()
    p = subprocess.run(["/usr/bin/python3", "-I", "-c", NONROOT_SPARE, svc.spare_name(imgdir)[1:], req.hex()],
                       user=65534, group=65534, extra_groups=[], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30, cwd="/")
    r.check(p.returncode == 0, "the uid 65534 client failed (%d): %s" % (p.returncode, p.stderr.decode()[-2000:]))
    uid, answer = p.stdout.decode().split()
    r.check(uid == "65534" and answer in ("-", "6572726f72"), "the uid %s peer got the answer %s" % (uid, answer))
    r.out.unlink(missing_ok=True)
    r.finish_task(restore_ok(r, svc.connect(), imgdir))
    r.check(_served(log) == 1, "the spare did not serve root after refusing uid 65534\n%s" % tail(log))
    svc.stop()
    r.ok = True


PREPARE = 1000  # criu_req_type of ours (images/rpc.proto); pycriu's enum lacks it


def _prepare_call(conn, imgdir):
    """RPC PREPARE of imgdir, built by hand (Debian's rpc_pb2 can't name
    the type); the response is merged, not parsed, for the same reason."""
    fd = open_dir(imgdir)
    try:
        opts = rpc.criu_opts(images_dir_fd=fd).SerializeToString()
        conn.send(b"\x08\xe8\x07\x12" + bytes([len(opts)]) + opts)
        conn.sock.settimeout(RPC_TIMEOUT)
        data = conn.sock.recv(1 << 16)
    finally:
        os.close(fd)
    resp = rpc.criu_resp()
    resp.MergeFromString(data)
    return resp


def test_rpc_prepare_request(zdtm):
    """RPC PREPARE (our request type 1000) makes the spare of a dump before
    its first restore and answers once the spare holds its memory: that
    first restore is served by it; PREPARE of a directory that holds no
    dump fails with a message, and so does PREPARE on a service without
    --prepare"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm("heap00", timeout=90)
    svc, log = _prepared_service(r)
    plain = Service(r)
    r.start()
    imgdir = dump_ok(r, svc.connect())
    resp = _prepare_call(svc.connect(), imgdir)
    r.check(resp.success, "PREPARE failed: %s" % resp_error(resp))
    r.check(svc.spare_name(imgdir) in svc.spares(), "no spare after PREPARE: %s" % svc.spares())
    r.finish_task(restore_ok(r, svc.connect(), imgdir))
    r.check(_served(log) == 1, "the first restore after PREPARE was not served by the spare\n%s" % tail(log))
    resp = _prepare_call(svc.connect(), r.new_imgdir())
    r.check(not resp.success and "could not prepare" in resp.cr_errmsg,
            "PREPARE of an empty directory: %s" % resp_error(resp))
    resp = _prepare_call(plain.connect(), imgdir)
    r.check(not resp.success and "--prepare" in resp.cr_errmsg, "PREPARE without --prepare: %s" % resp_error(resp))
    svc.check_serving("after PREPARE requests")
    svc.stop()
    plain.stop()
    r.ok = True


@pytest.mark.parametrize("name", ["ns_pid_uts", "epoll00"])
def test_rpc_prepared_pid_namespace(zdtm, name):
    """a tree in pid and uts namespaces of its own (ns_pid_uts: children, a
    grandchild, a zombie, a hostname; epoll00: one task, whose root made
    ahead is a thin one, waiting in its restorer) through a --prepare
    service: its spare also makes the next restore's root ahead (PID 1 of a
    new pid namespace), and the restore goes through it, twice in a row,
    each instance PID 1 of its namespace with the dump's inner PIDs,
    passing"""
    if NOCR:
        pytest.skip("ZDTM_NOCR")
    r = zdtm(name, timeout=120)
    svc, log = _prepared_service(r)
    wrapper = start_in_namespaces(r, ["pid", "uts"])
    inner = sorted(nspid(p)[-1] for p in descendants(r.pid))
    imgdir, resp = rpc_dump(r, svc.connect())
    r.check(resp.success, "RPC dump failed: %s" % resp_error(resp))
    r.check(wait_popen(wrapper, r.remaining(10)) is not None, "unshare did not end after the dump")
    r.check(_prepare_call(svc.connect(), imgdir).success, "PREPARE failed")
    for i in range(2):
        if i:
            svc.wait_spare(imgdir)
        resp = rpc_restore(r, svc.connect(), imgdir, log_file="restore-%d.log" % i, log_level=4)
        r.check(resp.success, "restore %d failed: %s" % (i, resp_error(resp)))
        pid = resp.restore.pid
        r.track(pid)
        r.check("through its root made ahead" in (read_text(imgdir / ("restore-%d.log" % i)) or ""),
                "restore %d did not go through a root made ahead" % i)
        thin = "waiting in its restorer" in (read_text(imgdir / ("restore-%d.log" % i)) or "")
        r.check(thin == (name == "epoll00"), "restore %d: the root made ahead was %sa thin one" % (
            i, "" if thin else "not "))
        r.check(nspid(pid)[-1] == 1, "instance %d: NSpid %s" % (i, nspid(pid)))
        got = sorted(nspid(p)[-1] for p in descendants(pid))
        r.check(got == inner, "instance %d: inner PIDs %s, dumped %s" % (i, got, inner))
        r.out.unlink(missing_ok=True)
        svc.wait_idle()
        r.finish_task(pid, "instance %d" % i)
    r.check(_served(log) == 2, "restores served by a spare: %d" % _served(log))
    svc.stop()
    r.ok = True

