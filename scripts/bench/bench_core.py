#!/usr/bin/python3
"""Benchmark of criu dump and restore against plain file I/O.

    /usr/bin/python3 scripts/bench/bench_core.py [--runs N] [--mib M]

Two workloads, each dumped and restored --runs times (a fresh process per
run):
  mem     a C program (bench_helper.c) that touched M MiB (default 1024) of
          anonymous memory with a pattern;
  python  a warm /usr/bin/python3 that imported json, re, hashlib, decimal,
          http.server, ... and built a few MB of data structures.

Timed end to end from here: `criu dump` (which kills the task) and
`criu restore -d` (which returns once the task runs).  Baselines, measured
in the same run, in the images directory: bench_helper writes as many bytes
as the dump's pages-*.img hold with write() in 8 MiB chunks then close (no
fsync: criu does not fsync either), then reads them back with read() into a
freshly mmap()ed buffer (page-fault cost included, as restore has it).
No caches are dropped; sync() runs before every timed step so that none
pays for the writeback of the previous one.  Medians are reported with the goals
dump <= 1.5 x write and restore <= 1.5 x read.

After every restore the task is asked (SIGUSR1) to check its memory, so a
restore that does not bring the data back is reported as a failure.
Needs root and a built criu/criu (make criu/criu).
"""
import argparse
import ctypes
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HELPER_SRC = os.path.join(HERE, "bench_helper.c")
PYTHON = "/usr/bin/python3"
GOAL = 1.5

WARM_PY = r'''
import collections, datetime, decimal, email.message, hashlib, http.server, json
import os, random, re, signal, sys, urllib.parse, xml.etree.ElementTree as ET, zlib

ready, result = sys.argv[1], sys.argv[2]
rnd = random.Random(1234)
records = {}
for i in range(40000):
    records["k%06d" % i] = {
        "id": i,
        "name": "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(12)),
        "score": rnd.random(),
        "tags": [rnd.randrange(1000) for _ in range(5)],
        "when": datetime.date(2000, 1, 1).toordinal() + i,
    }
blob = json.dumps(records)
words = collections.Counter(re.findall(r"[a-z]{3}", blob))
decimal.getcontext().prec = 30
decs = [decimal.Decimal(i) / 7 for i in range(30000)]
tree = ET.Element("root")
for i in range(3000):
    ET.SubElement(tree, "item", id=str(i)).text = urllib.parse.quote("v %d/%d" % (i, i * i))
packed = zlib.compress(blob.encode())
msg = email.message.EmailMessage()
msg["Subject"] = "warm"
handler = http.server.SimpleHTTPRequestHandler

def checksum():
    h = hashlib.sha256(json.dumps(records, sort_keys=True).encode())
    h.update(str(sum(decs)).encode())
    h.update(ET.tostring(tree))
    h.update(zlib.decompress(packed))
    h.update(repr(sorted(words.items())).encode())
    return h.hexdigest()

ref = checksum()

def put(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)

signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
put(ready, "ready\n")
while True:
    signal.sigwait({signal.SIGUSR1})
    put(result, "ok\n" if checksum() == ref else "bad checksum\n")
'''


class BenchError(Exception):
    pass


class Procs:
    """Every process we started or restored, so that it can be stopped by PID."""

    def __init__(self):
        self.pids = set()

    @staticmethod
    def alive(pid):
        try:
            with open("/proc/%d/stat" % pid, errors="replace") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    @staticmethod
    def reap(pid):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def stop(self, pid, sig=signal.SIGTERM, timeout=5.0):
        """Send sig, then SIGKILL after timeout; reap; True once it is gone."""
        for s in (sig, signal.SIGKILL):
            try:
                os.kill(pid, s)
            except ProcessLookupError:
                pass
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                self.reap(pid)
                if not self.alive(pid):
                    self.pids.discard(pid)
                    return True
                time.sleep(0.02)
        return False

    def stop_all(self):
        for pid in list(self.pids):
            if not self.stop(pid, signal.SIGKILL):
                print("bench: could not stop PID %d" % pid, file=sys.stderr)
        # Reap whatever else was reparented to us (we are a subreaper).
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break


def log_tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()[-n:]
    except OSError:
        return "    (no log at %s)" % path
    return "\n".join("    " + l for l in lines)


def wait_file(path, timeout, proc=None, pid=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
        if proc is not None and proc.poll() is not None:
            raise BenchError("the workload exited (status %s) before writing %s" % (proc.returncode, path))
        if pid is not None and not Procs.alive(pid):
            raise BenchError("the restored workload (PID %d) died" % pid)
        time.sleep(0.01)
    raise BenchError("timed out waiting for %s" % path)


def timed(cmd, what, log=None, timeout=120):
    # Start every timed step with no dirty page cache, so that no step pays
    # for the writeback of the one before it (this drops no caches).
    os.sync()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    ms = (time.perf_counter() - t0) * 1e3
    if r.returncode != 0:
        msg = "%s failed (exit %d): %s\n  command: %s" % (what, r.returncode, r.stderr.strip(), " ".join(cmd))
        if log:
            msg += "\n  log %s:\n%s" % (log, log_tail(log))
        raise BenchError(msg)
    return ms, r.stdout


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7f) | 0x80])
        v >>= 7
    return out + bytes([v])


def rpc_restore(sock, imgfd, mm_template=None, switch_sandbox=None, switch_deps=None):
    """One RESTORE of the images at imgfd through the service socket sock,
    timed from connect to response: (ms, criu_resp); raises BenchError if
    it failed. Our criu_opts fields (mm_template 1000, switch_sandbox 1001,
    switch_deps 1002) are unknown to Debian's pycriu: appended encoded."""
    from pycriu import rpc_pb2 as rpc
    req = rpc.criu_req(type=rpc.RESTORE)
    req.opts.images_dir_fd = imgfd
    opts = req.opts.SerializeToString()
    for number, value in ((1000, mm_template), (1001, switch_sandbox), (1002, switch_deps)):
        if value:
            opts += varint((number << 3) | 2) + varint(len(value.encode())) + value.encode()
    data = bytes([0x08, rpc.RESTORE, 0x12]) + varint(len(opts)) + opts
    t0 = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(sock)
        s.send(data)
        resp = rpc.criu_resp()
        resp.ParseFromString(s.recv(1 << 16))
    ms = (time.perf_counter() - t0) * 1e3
    if not resp.success:
        raise BenchError("RPC restore failed: %s" % resp.cr_errmsg)
    return ms, resp


def slower_p(a, b):
    """One-sided p-value that a is slower than b, for paired samples (a[i]
    and b[i] measured in the same round): the Wilcoxon signed-rank test,
    normal approximation.  Two ways that cost the same give a p spread
    evenly over 0..1; a small p means a is really slower."""
    d = [x - y for x, y in zip(a, b) if x != y]
    n = len(d)
    if n == 0:
        return 1.0
    order = sorted(range(n), key=lambda i: abs(d[i]))
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and abs(d[order[j + 1]]) == abs(d[order[i]]):
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    w = sum(r for r, x in zip(ranks, d) if x > 0)
    z = (w - n * (n + 1) / 4) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    return 0.5 * math.erfc(z / math.sqrt(2))


def build_helper(tmp):
    """Compiles bench_helper.c and writes warm.py into tmp; returns the
    helper's path."""
    helper = os.path.join(tmp, "bench_helper")
    r = subprocess.run(["gcc", "-O2", "-Wall", "-o", helper, HELPER_SRC],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise BenchError("gcc failed:\n" + r.stdout)
    with open(os.path.join(tmp, "warm.py"), "w") as f:
        f.write(WARM_PY)
    return helper


def verify_memory(pid, d):
    """SIGUSR1 to a restored bench workload (bench_helper or warm.py running
    in d): it checks its memory and writes the verdict into d/result."""
    result = os.path.join(d, "result")
    if os.path.exists(result):
        os.unlink(result)
    os.kill(pid, signal.SIGUSR1)
    verdict = wait_file(result, 60, pid=pid)
    if not verdict.startswith("ok"):
        raise BenchError("restored PID %d found its memory corrupted: %s" % (pid, verdict))


def run_bench(body, cleanup):
    """The frame every benchmark runs in: it becomes a child subreaper (so
    restored tasks are reparented to it and can be reaped), turns SIGTERM and
    SIGHUP into an orderly exit, runs body() and always runs cleanup().
    Returns the exit code."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    def on_signal(sig, _frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    t0 = time.monotonic()
    try:
        body()
        print("Total time %.1f s" % (time.monotonic() - t0))
        return 0
    except BenchError as e:
        print("\nbench: FAILED: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        print("\nbench: terminated by a signal", file=sys.stderr)
        raise
    finally:
        cleanup()


class Bench:
    def __init__(self, args, tmp, procs):
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.helper = os.path.join(tmp, "bench_helper")

    def build_helper(self):
        build_helper(self.tmp)

    def command(self, kind, d):
        ready, result = os.path.join(d, "ready"), os.path.join(d, "result")
        if kind == "mem":
            return [self.helper, "mem", str(self.args.mib), ready, result]
        return [PYTHON, os.path.join(self.tmp, "warm.py"), ready, result]

    def one_run(self, kind, i):
        a = self.args
        d = os.path.join(self.tmp, "%s-%d" % (kind, i))
        img = os.path.join(d, "img")
        os.makedirs(img)
        ready, result = os.path.join(d, "ready"), os.path.join(d, "result")
        with open(os.path.join(d, "out.log"), "w") as out:
            proc = subprocess.Popen(self.command(kind, d), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=d)
        pid = proc.pid
        self.procs.pids.add(pid)
        wait_file(ready, 120, proc=proc)

        dump_ms, _ = timed([a.criu, "dump", "-t", str(pid), "-D", img, "-o", "dump.log"], "criu dump",
                           os.path.join(img, "dump.log"))
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise BenchError("PID %d still runs after criu dump" % pid)
        self.procs.pids.discard(pid)

        pages = sum(os.path.getsize(os.path.join(img, f)) for f in os.listdir(img)
                    if f.startswith("pages-") and f.endswith(".img"))
        if pages == 0:
            raise BenchError("the dump has no pages-*.img data")
        base = os.path.join(img, "baseline.bin")
        write_ms, _ = timed([self.helper, "write", base, str(pages)], "baseline write")
        read_ms, _ = timed([self.helper, "read", base], "baseline read")
        os.unlink(base)

        pidfile = os.path.join(d, "restored.pid")
        restore_ms, _ = timed([a.criu, "restore", "-d", "-D", img, "--pidfile", pidfile, "-o", "restore.log"],
                              "criu restore", os.path.join(img, "restore.log"))
        try:
            with open(pidfile) as f:
                rpid = int(f.read().strip())
        except (OSError, ValueError) as e:
            raise BenchError("no valid pidfile after restore: %s" % e)
        self.procs.pids.add(rpid)
        if rpid != pid:
            raise BenchError("restored PID %d, expected %d" % (rpid, pid))

        # Ask the restored task to check its memory.
        os.kill(rpid, signal.SIGUSR1)
        verdict = wait_file(result, 60, pid=rpid)
        if not verdict.startswith("ok"):
            raise BenchError("the restored %s workload found its memory corrupted: %s" % (kind, verdict))
        if not self.procs.stop(rpid):
            raise BenchError("could not stop the restored PID %d" % rpid)
        shutil.rmtree(d)
        return {"dump": dump_ms, "restore": restore_ms, "write": write_ms, "read": read_ms, "pages": pages}

    def workload(self, kind, label):
        print("\n== %s" % label, flush=True)
        runs = []
        for i in range(self.args.runs):
            r = self.one_run(kind, i)
            runs.append(r)
            print("  run %d: pages %7.1f MiB  dump %8.1f ms  restore %8.1f ms  write %8.1f ms  read %8.1f ms"
                  % (i + 1, r["pages"] / 2**20, r["dump"], r["restore"], r["write"], r["read"]), flush=True)
        med = {k: statistics.median(r[k] for r in runs) for k in ("dump", "restore", "write", "read", "pages")}
        return med


def report(results):
    print("\n== Medians (end to end, ms)")
    print("  %-8s %9s %10s %10s %10s %10s   %-22s %-22s" % (
        "workload", "pages MiB", "dump", "restore", "write", "read", "dump/write (<=%.1f)" % GOAL,
        "restore/read (<=%.1f)" % GOAL))
    all_met = True
    for name, m in results:
        rd = m["dump"] / m["write"]
        rr = m["restore"] / m["read"]
        okd, okr = rd <= GOAL, rr <= GOAL
        all_met &= okd and okr
        print("  %-8s %9.1f %10.1f %10.1f %10.1f %10.1f   %-22s %-22s" % (
            name, m["pages"] / 2**20, m["dump"], m["restore"], m["write"], m["read"],
            "%.2f %s" % (rd, "met" if okd else "NOT met"), "%.2f %s" % (rr, "met" if okr else "NOT met")))
    print("\nGoals %s." % ("all met" if all_met else "not all met"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="dump/restore cycles per workload (default 3)")
    ap.add_argument("--mib", type=int, default=1024, help="MiB the C workload touches (default 1024)")
    ap.add_argument("--criu", default=os.path.join(REPO, "criu", "criu"), help="criu binary")
    args = ap.parse_args()
    if args.runs < 1 or args.mib < 1:
        ap.error("--runs and --mib must be positive")
    if os.geteuid() != 0:
        sys.exit("bench: run me as root (criu needs it)")
    if not os.access(args.criu, os.X_OK):
        sys.exit("bench: %s is missing: build it with `make criu/criu`" % args.criu)
    if shutil.which("gcc") is None:
        sys.exit("bench: gcc is missing (sh scripts/install-deps.sh)")

    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="criu-bench.", dir="/tmp")

    def body():
        b = Bench(args, tmp, procs)
        b.build_helper()
        print("criu: %s; %d run(s) per workload; images and baseline files in %s" % (args.criu, args.runs, tmp))
        results = [("mem", b.workload("mem", "C program with %d MiB of touched anonymous memory" % args.mib)),
                   ("python", b.workload("python", "warm Python 3 process"))]
        report(results)

    def cleanup():
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    return run_bench(body, cleanup)

if __name__ == "__main__":
    sys.exit(main())
