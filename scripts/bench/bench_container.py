#!/usr/bin/python3
"""Benchmark of restoring a function server as a container runs it.

    /usr/bin/python3 scripts/bench/bench_container.py [--runs N]

The function is test/zdtm/functions/fn_http.py (a Python http.server
function) made PID 1 of its own pid, mount, net, uts and ipc namespaces by
test/zdtm/lib/container.py: a private root (the host's root filesystem
bound), proc, and /dev, /dev/shm and /run tmpfs; lo (up) is its only
device. It is warmed with one request, dumped, then restored --runs times (default
50) with `criu restore -d --root /`, each instance checked by a request
from inside its net namespace (not timed) and killed. Baselines, measured
in the same run:
  cold   the same container started afresh until it listens;
  plain  the same function dumped and restored in criu's own namespaces
         (what the container's namespaces, mounts and tmpfs add).
p50/p99 in ms, and the ratios cold / container restore and container /
plain restore. Nothing is judged: no issue sets a goal for this yet.
Needs root and a built criu (make).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import REPO, BenchError, Procs, percentile, run_bench, wait_file  # noqa: E402

FN = os.path.join(REPO, "test", "zdtm", "functions", "fn_http.py")
CONTAINER = os.path.join(REPO, "test", "zdtm", "lib", "container.py")
PY = "/usr/bin/python3"
CALL = ("import http.client, json, sys; c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10); "
        "c.request('POST', '/fn', json.dumps({'n': 10}).encode()); print(c.getresponse().read().decode())")


class Bench:
    def __init__(self, args, tmp, procs):
        self.args, self.tmp, self.procs = args, tmp, procs

    def criu(self, args, what, cwd):
        t0 = time.perf_counter()
        r = subprocess.run([self.args.criu] + args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120, cwd=cwd)
        ms = (time.perf_counter() - t0) * 1e3
        if r.returncode != 0:
            raise BenchError("%s failed: %s" % (what, r.stderr.strip()))
        return ms

    def start(self, d, container):
        """fn_http in d, in a container or not; (unshare or fn, fn's PID, ms until it listens)."""
        for f in ("pid", "port"):
            if os.path.exists(os.path.join(d, f)):
                os.unlink(os.path.join(d, f))
        cmd = [PY, "-I", FN, "--out", os.path.join(d, "out"), "--pidfile", os.path.join(d, "pid")]
        if container:
            cmd = ["unshare", "-f", "--pid", "--mount", "--net", "--uts", "--ipc", "--", PY, "-I", CONTAINER,
                   "fn-box", "--"] + cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.pids.add(p.pid)
        wait_file(os.path.join(d, "pid"), 60, proc=p)
        ms = (time.perf_counter() - t0) * 1e3
        pid = p.pid
        if container:
            kids = open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()
            if len(kids) != 1:
                raise BenchError("unshare %d has children %s" % (p.pid, kids))
            pid = int(kids[0])
            self.procs.pids.add(pid)
            # a new net namespace's lo is down (the dump keeps it up)
            subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "link", "set", "lo", "up"], check=True)
        return p, pid, ms

    def call(self, pid, d):
        port = open(os.path.join(d, "port")).read().strip()
        r = subprocess.run(["nsenter", "-t", str(pid), "-n", PY, "-c", CALL, port], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise BenchError("no answer from PID %d: %s" % (pid, r.stderr.strip()[-300:]))
        return json.loads(r.stdout)

    def kill(self, pid):
        if not self.procs.stop(pid, 9):
            raise BenchError("could not stop PID %d" % pid)

    def way(self, name, container):
        d = os.path.join(self.tmp, name)
        img = os.path.join(d, "img")
        os.makedirs(img)
        p, pid, _ = self.start(d, container)
        self.call(pid, d)
        self.criu(["dump", "-t", str(pid), "-D", img, "-o", "dump.log"], "criu dump", d)
        p.wait(10)
        self.procs.pids.discard(p.pid)
        args = ["restore", "-d", "-D", img, "--pidfile", os.path.join(d, "restored")]
        if container:
            args += ["--root", "/"]
        times = []
        for i in range(self.args.runs):
            times.append(self.criu(args, "criu restore", d))
            rpid = int(open(os.path.join(d, "restored")).read())
            self.procs.pids.add(rpid)
            if i in (0, self.args.runs - 1) and self.call(rpid, d).get("served") != 2:
                raise BenchError("the restored function does not answer from its checkpoint")
            self.kill(rpid)
        return times

    def cold(self):
        d = os.path.join(self.tmp, "cold")
        os.makedirs(d)
        times = []
        for i in range(self.args.runs):
            p, pid, ms = self.start(d, True)
            times.append(ms)
            self.kill(pid)
            p.wait(10)
            self.procs.pids.discard(p.pid)
        return times

    def body(self):
        print("criu: %s; %d runs each" % (self.args.criu, self.args.runs), flush=True)
        res = {"container restore": self.way("container", True), "plain restore": self.way("plain", False),
               "cold container start": self.cold()}
        for k, v in res.items():
            print("  %-21s p50 %7.2f ms   p99 %7.2f ms" % (k, percentile(v, 50), percentile(v, 99)), flush=True)
        c, p = percentile(res["container restore"], 50), percentile(res["plain restore"], 50)
        print("  cold start / container restore: %.1fx" % (percentile(res["cold container start"], 50) / c))
        print("  container restore / plain restore: %.2fx (what the namespaces, mounts and tmpfs add)" % (c / p))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50, help="restores and cold starts each (default 50)")
    ap.add_argument("--criu", default=os.path.join(REPO, "criu", "criu"), help="criu binary")
    args = ap.parse_args()
    args.criu = os.path.abspath(args.criu)  # criu runs in the function's directory
    if args.runs < 2:
        ap.error("--runs must be at least 2")
    if os.geteuid() != 0:
        sys.exit("bench: run me as root")
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="criu-bench-container.", dir="/tmp")
    b = Bench(args, tmp, procs)

    def cleanup():
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    return run_bench(b.body, cleanup)


if __name__ == "__main__":
    sys.exit(main())
