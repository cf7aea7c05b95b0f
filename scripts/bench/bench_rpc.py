#!/usr/bin/python3
"""Restore latency through criu's RPC server against the command line.

    /usr/bin/python3 scripts/bench/bench_rpc.py [--iters N] [--warmup W] [--mib M]

Three workloads, each dumped once with `criu dump`, then restored --iters
times (default 100) from the same images; after every restore the task is
killed and reaped so that its PID is free for the next one:
  small   a small C program (bench_helper.c `mem`, M MiB touched, default 4);
  python  a warm /usr/bin/python3 (bench_core.py's workload: json, re,
          decimal, http.server... imported, a few MB of data built);
  pidns   the same Python as PID 1 of its own pid namespace (unshare -p
          -f), as a container runs a function: each restore makes a new
          one (the CLI learns the task's PID from --pidfile), and a
          prepared service also makes the next restore's root ahead.

Each iteration restores once in each of these ways, in rotation (so that
drift hits all of them alike), timed end to end from here:
  cli        spawn `criu restore -d -D IMG`, until it exits;
  service    a pre-warmed `criu service --address SOCK` (started once):
             connect, send one criu_req RESTORE, until criu_resp arrives
             (one connection per restore, as libcriu's criu_restore() does);
  prepared   the same with a second service started with `--prepare 2`:
             after each restore it prepares the next one of the same images
             (a spare process with the root's memory already read in), in
             the time the other ways take; its log tells how many restores
             a spare served;
  service-ko the same over one keep_open connection for all restores (the
             worker stays; a WAIT_PID request reaps each killed task);
  swrk       spawn `criu swrk FD` on a socketpair per restore (what libcriu's
             criu_restore_child() and TrEnv's platform do), send RESTORE with
             rst_sibling, until criu_resp arrives.
The RPC clients are raw protobuf (Debian pycriu's rpc_pb2) over the socket.
No log files (criu's default level); W warm-up rounds (default 3) are not
counted.  The first and last restore of each way are checked: the task
verifies its memory on SIGUSR1 (every restore for `small`).

Also measured: criu's own restore time from its log ("Restore finished
successfully in X ms"), the floor no transport can go below.

Printed: p50/p99 per way, the ratios to the CLI, and the goals: RPC restore
no slower than the CLI, and the pre-warmed service (--prepare) at least 2x
faster than spawning `criu restore` (CLI p50 / prepared p50 >= 2).  "No
slower" is judged on all the samples, not on two p50s: ways that cost the
same (swrk is a CLI restore plus a message) land on either side of each
other run to run.  A way is slower if the paired Wilcoxon signed-rank test
(rounds pair the samples) says so with p < 0.01; the p50 ratio is printed
beside it.
Needs root, gcc, Debian's python3-criu and a built criu/criu.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from bench_core import (PYTHON, BenchError, build_helper, percentile, log_tail, run_bench,  # noqa: E402
                        slower_p, verify_memory, wait_file)

try:
    from pycriu import rpc_pb2 as rpc
except ImportError:
    rpc = None

WAYS = ["cli", "service", "prepared", "service-ko", "swrk"]


def exists(pid):
    return os.path.exists("/proc/%d" % pid)


def reap_gone(pid, timeout=10.0):
    """Wait until pid is gone for good (reaped by us: we are a subreaper)."""
    end = time.monotonic() + timeout
    while True:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not exists(pid):
            return
        if time.monotonic() > end:
            raise BenchError("PID %d is still there %.0fs after SIGKILL" % (pid, timeout))
        time.sleep(0.0005)


def kill_gone(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    reap_gone(pid)


class Bench:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.helper = os.path.join(tmp, "bench_helper")
        self.started = []      # Popen of everything we spawned that may outlive a step
        self.service = None
        self.sock = os.path.join(tmp, "criu.sock")
        self.prep_sock = os.path.join(tmp, "criu-prepared.sock")
        self.prep_log = os.path.join(tmp, "prepared.log")
        self.prepared_service = None
        self.ko = None         # the keep_open connection
        self.pidns = False     # the workload's restores make new pid namespaces

    # ---- setup / teardown
    def build(self):
        build_helper(self.tmp)

    def start_service(self, sock, log, extra=()):
        """Both services log at -v3 (the prepared one's log counts spares)."""
        out = os.path.join(self.tmp, "service.out")
        with open(out, "a") as o:
            p = subprocess.Popen([self.args.criu, "service", "--address", sock, "-v3", "-o", log, *extra],
                                 cwd=self.tmp, stdin=subprocess.DEVNULL, stdout=o, stderr=o, start_new_session=True)
        self.started.append(p)
        end = time.monotonic() + 10
        while not os.path.exists(sock):
            if p.poll() is not None or time.monotonic() > end:
                raise BenchError("criu service did not start:\n" + log_tail(out))
            time.sleep(0.005)
        return p

    def start_services(self):
        self.service = self.start_service(self.sock, "service.log")
        self.prepared_service = self.start_service(self.prep_sock, self.prep_log, ["--prepare", "2"])

    def spare_counts(self):
        """(restores served by a spare, spares prepared) so far."""
        text = open(self.prep_log, errors="replace").read()
        return text.count("with the memory prepared for it"), text.count("Prepared the next restore")

    def stop(self):
        if self.ko is not None:
            self.ko.close()
        for s in (self.service, self.prepared_service):
            if s is not None and s.poll() is None:
                s.terminate()
                try:
                    s.wait(10)
                except subprocess.TimeoutExpired:
                    s.kill()
                    s.wait()
        for p in self.started:
            if p.poll() is None:
                p.kill()
                p.wait()
        # whatever was reparented to us
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break

    # ---- the workloads
    def dump(self, kind):
        d = os.path.join(self.tmp, kind)
        img = os.path.join(d, "img")
        os.makedirs(img)
        ready, result = os.path.join(d, "ready"), os.path.join(d, "result")
        if kind == "small":
            cmd = [self.helper, "mem", str(self.args.mib), ready, result]
        else:
            cmd = [PYTHON, os.path.join(self.tmp, "warm.py"), ready, result]
        if kind == "pidns":
            cmd = ["unshare", "-p", "-f", "--"] + cmd
        with open(os.path.join(d, "out.log"), "w") as out:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=d,
                                 start_new_session=True)
        self.started.append(p)
        wait_file(ready, 120, proc=p)
        pid = p.pid
        if kind == "pidns":  # unshare's child, the init of the new namespace
            pid = int(open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()[0])
        r = subprocess.run([self.args.criu, "dump", "-t", str(pid), "-D", img, "-o", "dump.log"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise BenchError("criu dump failed: %s\n%s" % (r.stderr.strip(), log_tail(os.path.join(img, "dump.log"))))
        p.wait(10)
        return pid, d, img

    # ---- one restore each way; returns (ms, pid)
    def restore_req(self, imgfd, **opts):
        req = rpc.criu_req(type=rpc.RESTORE)
        req.opts.images_dir_fd = imgfd
        for k, v in opts.items():
            setattr(req.opts, k, v)
        return req.SerializeToString()

    @staticmethod
    def parse(data, what):
        if not data:
            raise BenchError("%s: the connection closed without a response" % what)
        resp = rpc.criu_resp()
        resp.ParseFromString(data)
        if not resp.success:
            raise BenchError("%s failed: %s" % (what, resp.cr_errmsg))
        return resp

    def r_cli(self, img, imgfd, extra=()):
        """In a new pid namespace the task's PID is only known from --pidfile."""
        # (not in the images directory: a new file there is a change of the
        # images, which ends a spare)
        pidfile = os.path.join(os.path.dirname(img), "restored.pid") if self.pidns else None
        argv = [self.args.criu, "restore", "-d", "-D", img] + list(extra) + (["--pidfile", pidfile] if pidfile else [])
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = p.communicate()[1]
        ms = (time.perf_counter() - t0) * 1e3
        if p.returncode != 0:
            raise BenchError("criu restore -d failed (%d): %s" % (p.returncode, err.decode().strip()))
        return ms, int(open(pidfile).read()) if pidfile else None

    def r_service(self, img, imgfd, sock=None):
        req = self.restore_req(imgfd)
        t0 = time.perf_counter()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock or self.sock)
        s.send(req)
        data = s.recv(1 << 16)
        ms = (time.perf_counter() - t0) * 1e3
        s.close()
        return ms, self.parse(data, "service RESTORE").restore.pid

    def r_prepared(self, img, imgfd):
        return self.r_service(img, imgfd, self.prep_sock)

    def r_service_ko(self, img, imgfd):
        if self.ko is None:
            self.ko = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            self.ko.connect(self.sock)
        req = rpc.criu_req(type=rpc.RESTORE, keep_open=True)
        req.opts.images_dir_fd = imgfd
        req = req.SerializeToString()
        t0 = time.perf_counter()
        self.ko.send(req)
        data = self.ko.recv(1 << 16)
        ms = (time.perf_counter() - t0) * 1e3
        return ms, self.parse(data, "keep_open RESTORE").restore.pid

    def ko_reap(self, pid):
        """The task is the keep_open worker's child: WAIT_PID reaps it."""
        self.ko.send(rpc.criu_req(type=rpc.WAIT_PID, pid=pid, keep_open=True).SerializeToString())
        self.parse(self.ko.recv(1 << 16), "WAIT_PID")

    def r_swrk(self, img, imgfd):
        req = self.restore_req(imgfd, rst_sibling=True)
        t0 = time.perf_counter()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        p = subprocess.Popen([self.args.criu, "swrk", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        theirs.close()
        ours.send(req)
        data = ours.recv(1 << 16)
        ms = (time.perf_counter() - t0) * 1e3
        ours.close()
        self.started.append(p)
        if p.wait(10) != 0:
            raise BenchError("criu swrk exited with %d" % p.returncode)
        self.started.remove(p)
        return ms, self.parse(data, "swrk RESTORE").restore.pid

    def workload(self, kind, label):
        a = self.args
        dumped, d, img = self.dump(kind)
        self.pidns = kind == "pidns"
        print("\n== %s (PID %d)" % (label, dumped), flush=True)
        imgfd = os.open(img, os.O_DIRECTORY | os.O_RDONLY)
        fns = {"cli": self.r_cli, "service": self.r_service, "prepared": self.r_prepared,
               "service-ko": self.r_service_ko, "swrk": self.r_swrk}
        times = {w: [] for w in WAYS}
        total = a.warmup + a.iters
        served0 = None
        pid = dumped
        try:
            for i in range(total):
                for w in WAYS:
                    ms, rpid = fns[w](img, imgfd)
                    if self.pidns:
                        pid = rpid
                    elif rpid is not None and rpid != pid:
                        raise BenchError("%s restored PID %s, expected %d" % (w, rpid, pid))
                    if not exists(pid):
                        raise BenchError("%s: the restored PID %d does not exist" % (w, pid))
                    if kind == "small" or i in (a.warmup, total - 1):
                        verify_memory(pid, d)
                    os.kill(pid, signal.SIGKILL)
                    if w == "service-ko":
                        self.ko_reap(pid)
                    reap_gone(pid)
                    if i >= a.warmup:
                        times[w].append(ms)
                if i == a.warmup - 1 or (a.warmup == 0 and i == 0):
                    served0 = self.spare_counts()[0] - (a.warmup == 0)
            served = self.spare_counts()[0] - (served0 or 0)
            floor = self.own_time(img, dumped)
        finally:
            os.close(imgfd)
            if exists(pid):
                kill_gone(pid)
        res = {w: (percentile(t, 50), percentile(t, 99), min(t), max(t)) for w, t in times.items()}
        for w in WAYS:
            p50, p99, lo, hi = res[w]
            print("  %-11s p50 %7.2f ms  p99 %7.2f ms  (min %6.2f, max %6.2f, n=%d)" % (w, p50, p99, lo, hi,
                                                                                  len(times[w])), flush=True)
        res["own"] = floor
        res["times"] = times
        res["served"] = served
        print("  prepared: %d of the %d counted restores were served by a spare (the others restored as usual)" % (
            served, a.iters))
        print("  criu's own restore time (its log, 5 extra CLI restores): p50 %.2f ms; so cli/service can be at "
              "most %.2f" % (floor, res["cli"][0] / floor))
        return res

    def own_time(self, img, dumped):
        """The time criu itself reports for the restore ("Restore finished
        successfully in X ms", -v3): no RPC transport can go below it."""
        own = []
        log = os.path.join(img, "own.log")
        for _ in range(5):
            _, pid = self.r_cli(img, None, ["-o", "own.log", "-v3"])
            kill_gone(pid or dumped)
            m = re.search(r"Restore finished successfully in ([0-9.]+) ms", open(log).read())
            if not m:
                raise BenchError("no 'Restore finished successfully in' in %s:\n%s" % (log, log_tail(log)))
            own.append(float(m.group(1)))
        return percentile(own, 50)


def report(results):
    print("\n== Ratios to the CLI (p50; p99 in parentheses)")
    rpc_ways = [w for w in WAYS if w != "cli"]
    print("  %-8s" % "workload" + "".join(" %-18s" % (w + "/cli") for w in rpc_ways))
    goals = []
    for kind, res in results:
        c50, c99 = res["cli"][:2]
        print("  %-8s" % kind + "".join(" %-18s" % ("%.2f (%.2f)" % (res[w][0] / c50, res[w][1] / c99))
                                        for w in rpc_ways))
        for w in rpc_ways:
            p = slower_p(res["times"][w], res["times"]["cli"])
            goals.append(("%s: %s restore no slower than the CLI (p50 %.2f vs %.2f ms; one-sided paired Wilcoxon p=%.3f)" % (
                kind, w, res[w][0], c50, p), p >= 0.01))
        goals.append(("%s: pre-warmed service (--prepare) >= 2x faster than spawning criu restore "
                      "(cli/prepared p50 %.2f; without --prepare %.2f)" % (
                          kind, c50 / res["prepared"][0], c50 / res["service"][0]), c50 / res["prepared"][0] >= 2.0))
    print("\n== Goals")
    for text, ok in goals:
        print("  %-7s %s" % ("met" if ok else "NOT met", text))
    print("\nGoals %s." % ("all met" if all(ok for _, ok in goals) else "not all met"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=100, help="counted restores per way and workload (default 100)")
    ap.add_argument("--warmup", type=int, default=3, help="uncounted warm-up rounds (default 3)")
    ap.add_argument("--mib", type=int, default=4, help="MiB the small C program touches (default 4)")
    ap.add_argument("--criu", default=os.path.join(REPO, "criu", "criu"), help="criu binary")
    args = ap.parse_args()
    if args.iters < 50 or args.warmup < 0 or args.mib < 1:
        ap.error("--iters must be >= 50 (p99), --warmup >= 0, --mib >= 1")
    if os.geteuid() != 0:
        sys.exit("bench: run me as root (criu needs it)")
    if not os.access(args.criu, os.X_OK):
        sys.exit("bench: %s is missing: build it with `make criu/criu`" % args.criu)
    if shutil.which("gcc") is None:
        sys.exit("bench: gcc is missing")
    if rpc is None:
        sys.exit("bench: Debian's pycriu is missing (apt-get install python3-criu; run /usr/bin/python3)")

    tmp = tempfile.mkdtemp(prefix="criu-bench-rpc.", dir="/tmp")
    b = Bench(args, tmp)

    def body():
        b.build()
        b.start_services()
        print("criu: %s; %d counted restores per way (+%d warm-up); images in %s" % (
            args.criu, args.iters, args.warmup, tmp))
        results = [("small", b.workload("small", "small C program (%d MiB touched)" % args.mib)),
                   ("python", b.workload("python", "warm Python 3 process")),
                   ("pidns", b.workload("pidns", "warm Python 3 process as PID 1 of its own pid namespace"))]
        report(results)

    def cleanup():
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    return run_bench(body, cleanup)

if __name__ == "__main__":
    sys.exit(main())
