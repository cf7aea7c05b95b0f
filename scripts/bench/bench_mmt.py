#!/usr/bin/python3
"""Benchmark of mm-templates (criu restore --mm-template) against plain
restore and cold start.

    /usr/bin/python3 scripts/bench/bench_mmt.py [--runs N] [--instances N] [--quick]

Three parts, each with its baseline measured in the same run:
  latency  the warm Python process of bench_core.py, run as a serverless
           platform runs a function: in a container, PID 1 of its own pid
           namespace (unshare -p -f). Dumped once and converted into a
           template: --runs (default 50) restores each of plain
           `criu restore -d`, `criu restore -d --mm-template` and a cold
           start of the same program in a new pid namespace (until it is
           ready); p50/p99 of the end-to-end time of each command. Goal:
           template >= 10x faster than plain. The same through a running
           `criu service` (RESTORE with criu_opts.mm_template, if pycriu is
           there): no process start on either side. Then the same process
           in criu's own pid namespace, reported but not judged: there the
           holder can't make the restore's root before the request (it
           would hold the dump's PID), so each restore pays for the copy
           of the holder's page tables.
  sizes    bench_helper processes with 16 MiB, 256 MiB and 1 GiB of touched
           memory, one template each, --runs/2 template restores each.
           Goal: p50 of 1 GiB <= 3x p50 of 16 MiB.
  memory   --instances (default 50) concurrent instances of a 256 MiB
           template (each the init of its own pid namespace), each writing
           5% of its pages, against as many plain restores doing the same:
           the memory they use is the sum of the Pss of every instance (and
           of the holder), which counts each physical page once. Goal:
           template total <= 1.5 x (template + written pages).

The template's holder is started by a first, untimed restore (its start
is reported on its own). Every restored instance is checked (SIGUSR1: the
workload verifies its memory) at least once per part. Needs root, a built
criu (make) and gcc. Templates go to a private pool under /dev/shm, holder
sockets to the temporary directory; both are removed at the end.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from bench_core import (PYTHON, REPO, BenchError, build_helper, percentile, Procs, log_tail, rpc_restore, run_bench,
                        verify_memory, wait_file)

try:
    from pycriu import rpc_pb2 as rpc
except ImportError:
    rpc = None

PLUGIN_DIR = os.path.join(REPO, "plugins", "mmtemplate")
PAGE = 4096


def pss_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise BenchError("no Pss for PID %d" % pid)


def parent_of(pid):
    with open("/proc/%d/stat" % pid, errors="replace") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


class Bench:
    def __init__(self, args, tmp, procs):
        self.args = args
        self.tmp = tmp
        self.procs = procs
        self.helper = os.path.join(tmp, "bench_helper")
        self.templates = []
        self.env = dict(os.environ, CRIU_MM_POOL=os.path.join("/dev/shm", os.path.basename(tmp) + "-pool"),
                        CRIU_MM_RUN=os.path.join(tmp, "run"))

    def build(self):
        build_helper(self.tmp)

    def criu(self, args, what, log=None):
        t0 = time.perf_counter()
        r = subprocess.run([self.args.criu] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, env=self.env, timeout=300)
        ms = (time.perf_counter() - t0) * 1e3
        if r.returncode != 0:
            raise BenchError("%s failed: %s%s" % (what, r.stderr.strip(), "\n" + log_tail(log) if log else ""))
        return ms

    # ---- workloads
    def start(self, name, cmd, pidns=False):
        d = os.path.join(self.tmp, name)
        os.makedirs(os.path.join(d, "img"))
        if pidns:
            cmd = ["unshare", "-p", "-f", "--"] + cmd
        with open(os.path.join(d, "out.log"), "w") as out:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=d,
                                 start_new_session=True)
        self.procs.pids.add(p.pid)
        wait_file(os.path.join(d, "ready"), 120, proc=p)
        return p, self.only_child(p.pid) if pidns else p.pid, d

    @staticmethod
    def only_child(pid):
        kids = [int(c) for c in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
        if len(kids) != 1:
            raise BenchError("PID %d has children %s" % (pid, kids))
        return kids[0]

    def dump_and_convert(self, name, cmd, pidns=False):
        p, pid, d = self.start(name, cmd, pidns)
        img = os.path.join(d, "img")
        self.criu(["dump", "-t", str(pid), "-D", img, "-o", "dump.log"], "criu dump", os.path.join(img, "dump.log"))
        p.wait(10)
        self.procs.pids.discard(p.pid)
        t0 = time.perf_counter()
        self.criu(["-L", PLUGIN_DIR, "convert", "-D", img, "--mm-template", name, "-o", "convert.log", "-v3"],
                  "criu convert", os.path.join(img, "convert.log"))
        conv_ms = (time.perf_counter() - t0) * 1e3
        self.templates.append(name)
        pages = sum(os.path.getsize(os.path.join(img, f)) for f in os.listdir(img) if f.startswith("pages-"))
        print("  %s: %.1f MiB of pages, converted in %.0f ms" % (name, pages / 2**20, conv_ms), flush=True)
        return d, img, pages

    def restore(self, d, img, tmpl=None):
        pidfile = os.path.join(d, "restored.pid")
        args = ["restore", "-d", "-D", img, "--pidfile", pidfile]
        if tmpl:
            args += ["-L", PLUGIN_DIR, "--mm-template", tmpl]
        ms = self.criu(args, "criu restore" + (" --mm-template" if tmpl else ""))
        with open(pidfile) as f:
            pid = int(f.read())
        os.unlink(pidfile)
        self.procs.pids.add(pid)
        return ms, pid

    def stop(self, pid):
        """Kills pid and waits until its PID is free again (a template
        instance is reaped by its holder, not by us)."""
        if not self.procs.stop(pid, signal.SIGKILL):
            raise BenchError("could not stop PID %d" % pid)
        end = time.monotonic() + 10
        while os.path.exists("/proc/%d" % pid):
            Procs.reap(pid)  # ours if a plain restore's criu left it to us
            if time.monotonic() > end:
                raise BenchError("PID %d was not reaped" % pid)
            time.sleep(0.001)

    # ---- parts
    def cold_start(self, d, cmd, pidns):
        """The program started afresh until it is ready; returns ms."""
        os.unlink(os.path.join(d, "ready"))
        if pidns:
            cmd = ["unshare", "-p", "-f", "--"] + cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             cwd=d, start_new_session=True)
        self.procs.pids.add(p.pid)
        wait_file(os.path.join(d, "ready"), 120, proc=p)
        ms = (time.perf_counter() - t0) * 1e3
        # under unshare: the init of the pid namespace takes the rest along
        self.stop(self.only_child(p.pid) if pidns else p.pid)
        p.wait()
        return ms

    def latency(self, pidns, name, with_cold):
        where = "as PID 1 of its own pid namespace, as in a container" if pidns else "in criu's pid namespace"
        print("\n== Restore latency of a warm Python process %s (%d restores each)" % (where, self.args.runs),
              flush=True)
        warm = [PYTHON, os.path.join(self.tmp, "warm.py"), "ready", "result"]
        d, img, _ = self.dump_and_convert(name, warm, pidns)
        hold_ms, pid = self.restore(d, img, name)
        verify_memory(pid, d)
        self.stop(pid)
        print("  first template restore (starts the holder): %.1f ms" % hold_ms)
        times = {"plain": [], "template": []}
        if with_cold:
            times["cold"] = []
        for i in range(self.args.runs):
            for kind in ("plain", "template"):
                ms, pid = self.restore(d, img, name if kind == "template" else None)
                times[kind].append(ms)
                if i in (0, self.args.runs - 1):
                    verify_memory(pid, d)
                self.stop(pid)
            if with_cold:
                times["cold"].append(self.cold_start(d, warm, pidns))
        for k, v in times.items():
            print("  %-9s p50 %8.2f ms   p99 %8.2f ms" % (k, percentile(v, 50), percentile(v, 99)))
        ratio = percentile(times["plain"], 50) / percentile(times["template"], 50)
        print("  CLI: plain / template: %.1fx (goal >= 10: %s)%s" % (
            ratio, "met" if ratio >= 10 else "NOT met",
            "; cold start / template: %.1fx" % (percentile(times["cold"], 50) / percentile(times["template"], 50))
            if with_cold else ""))
        rpc_ratio = self.latency_rpc(d, img, name) if rpc is not None else 0
        return ratio >= 10, rpc_ratio >= 10

    def rpc_restore(self, sock, imgfd, tmpl):
        ms, resp = rpc_restore(sock, imgfd, mm_template=tmpl)
        self.procs.pids.add(resp.restore.pid)
        return ms, resp.restore.pid

    def latency_rpc(self, d, img, name):
        sock = os.path.join(self.tmp, "criu.sock")
        log = open(os.path.join(self.tmp, "service.log"), "w")
        svc = subprocess.Popen([self.args.criu, "-L", PLUGIN_DIR, "service", "--address", sock], cwd=self.tmp,
                               env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                               start_new_session=True)
        log.close()
        self.procs.pids.add(svc.pid)
        try:
            end = time.monotonic() + 10
            while not os.path.exists(sock):
                if svc.poll() is not None or time.monotonic() > end:
                    raise BenchError("criu service did not start")
                time.sleep(0.005)
            imgfd = os.open(img, os.O_DIRECTORY | os.O_RDONLY)
            times = {"plain": [], "template": []}
            for i in range(self.args.runs):
                for kind in times:
                    ms, pid = self.rpc_restore(sock, imgfd, name if kind == "template" else None)
                    times[kind].append(ms)
                    if i == 0:
                        verify_memory(pid, d)
                    self.stop(pid)
            os.close(imgfd)
        finally:
            self.procs.stop(svc.pid)
        for k, v in times.items():
            print("  RPC %-5s p50 %8.2f ms   p99 %8.2f ms" % (k, percentile(v, 50), percentile(v, 99)))
        ratio = percentile(times["plain"], 50) / percentile(times["template"], 50)
        print("  RPC: plain / template: %.1fx (goal >= 10: %s)" % (ratio, "met" if ratio >= 10 else "NOT met"))
        return ratio

    def sizes(self):
        runs = max(5, self.args.runs // 2)
        sizes = [16, 256] if self.args.quick else [16, 256, 1024]
        print("\n== --mm-template restore latency by size (%d restores each)" % runs, flush=True)
        p50 = {}
        for mib in sizes:
            name = "mem%d" % mib
            d, img, _ = self.dump_and_convert(name, [self.helper, "mem", str(mib), "ready", "result"])
            _, pid = self.restore(d, img, name)
            verify_memory(pid, d)
            self.stop(pid)
            t = []
            for _ in range(runs):
                ms, pid = self.restore(d, img, name)
                t.append(ms)
                self.stop(pid)
            p50[mib] = percentile(t, 50)
            print("  %5d MiB: p50 %8.2f ms   p99 %8.2f ms" % (mib, p50[mib], percentile(t, 99)), flush=True)
        big = max(sizes)
        ratio = p50[big] / p50[16]
        print("  %d MiB / 16 MiB: %.2fx (goal <= 3: %s)" % (big, ratio, "met" if ratio <= 3 else "NOT met"))
        return ratio <= 3

    def write_share(self, pid, addr, size):
        """Writes one byte into 5% of the pages of [addr, addr + size) of pid."""
        pages = size // PAGE
        with open("/proc/%d/mem" % pid, "r+b", buffering=0) as f:
            for i in range(0, pages, 20):
                f.seek(addr + i * PAGE)
                b = f.read(1)
                f.seek(addr + i * PAGE)
                f.write(bytes([b[0] ^ 0x5a]))
        return (pages + 19) // 20 * PAGE

    def anon_area(self, pid, min_size):
        with open("/proc/%d/maps" % pid) as f:
            for line in f:
                parts = line.split()
                a, b = (int(x, 16) for x in parts[0].split("-"))
                if b - a >= min_size and len(parts) == 5:
                    return a, b - a
        raise BenchError("PID %d has no anonymous area of %d bytes" % (pid, min_size))

    def memory(self):
        n, mib = self.args.instances, 256
        print("\n== Memory of %d concurrent instances of a %d MiB process, each writing 5%%" % (n, mib), flush=True)
        d, img, pages = self.dump_and_convert("shared", [self.helper, "mem", str(mib), "ready", "result"],
                                              pidns=True)
        totals = {}
        for kind in ("template", "plain"):
            pids, written = [], 0
            for _ in range(n):
                _, pid = self.restore(d, img, "shared" if kind == "template" else None)
                pids.append(pid)
            verify_memory(pids[-1], d)  # before the writes change the pattern
            for pid in pids:
                addr, size = self.anon_area(pid, mib << 20)
                written += self.write_share(pid, addr, size)
            kib = sum(pss_kib(p) for p in pids)
            holder = parent_of(pids[0]) if kind == "template" else None
            if holder:
                kib += pss_kib(holder)
            totals[kind] = kib * 1024
            print("  %-8s instances: total Pss %8.1f MiB (written %.1f MiB)%s" % (
                kind, totals[kind] / 2**20, written / 2**20, " incl. the holder" if holder else ""), flush=True)
            for pid in pids:
                self.stop(pid)
        budget = 1.5 * (pages + written)
        ok = totals["template"] <= budget
        print("  template total / (template + written): %.2fx (goal <= 1.5: %s); plain / template: %.1fx"
              % (totals["template"] / (pages + written), "met" if ok else "NOT met",
                 totals["plain"] / totals["template"]))
        return ok

    def cleanup(self):
        for t in self.templates:
            subprocess.run([self.args.criu, "-L", PLUGIN_DIR, "mm-template", "delete", t], env=self.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.env["CRIU_MM_POOL"], ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50, help="restores per kind (default 50)")
    ap.add_argument("--instances", type=int, default=50, help="concurrent instances (default 50)")
    ap.add_argument("--quick", action="store_true", help="sizes up to 256 MiB only")
    ap.add_argument("--criu", default=os.path.join(REPO, "criu", "criu"), help="criu binary")
    args = ap.parse_args()
    if args.runs < 1 or args.instances < 1:
        ap.error("--runs and --instances must be positive")
    if os.geteuid() != 0:
        sys.exit("bench: run me as root (criu needs it)")
    for need in (args.criu, os.path.join(PLUGIN_DIR, "mmtemplate.so")):
        if not os.path.exists(need):
            sys.exit("bench: %s is missing: build it with `make`" % need)
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="criu-bench-mmt.", dir="/tmp")
    b = Bench(args, tmp, procs)

    def body():
        b.build()
        # The goal is judged on the function as a platform runs it: in a
        # container, PID 1 of its own pid namespace. In criu's pid namespace
        # the restore can't start before its request (the root would hold
        # the dump's PID meanwhile): reported, not judged.
        cli_met, rpc_met = b.latency(True, "python", True)
        b.latency(False, "python-host", False)
        results = [cli_met or rpc_met, b.sizes(), b.memory()]
        how = "" if cli_met else " (the latency goal only through criu service)"
        print("\nGoals %s%s." % ("all met" if all(results) else "not all met", how if all(results) else ""))

    def cleanup():
        procs.stop_all()
        b.cleanup()
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    return run_bench(body, cleanup)


if __name__ == "__main__":
    sys.exit(main())
