#!/usr/bin/python3
"""Benchmark of switch restore: getting a ready sandbox fresh vs repurposing
an idle one, and the whole start of a function both ways.

    /usr/bin/python3 scripts/bench/bench_switch.py [--runs N] [--gap MS] [--concurrency N]

The function is test/zdtm/functions/fn_http.py (a Python http.server
function), started in a sandbox, warmed with one request, dumped (its
network and mount namespaces external) and converted into an mm-template.
Then --runs (default 50) starts each way:
  fresh      create a new sandbox (network namespace, veth on the bridge,
             address, routes, cgroups, overlay root, uts/ipc namespaces)
             and restore the function into it (--switch); the sandbox is
             destroyed after the start, untimed;
  repurpose  the pool's way (TrEnv's): when a function is done its sandbox
             is released (its processes killed, the overlay purged, new
             mount/ipc/uts namespaces, cgroup limits reset: timed on its
             own, it is off the start's path), and a start repurposes a
             released sandbox (criu-sandbox repurpose: binds the
             function's dependencies into it) and restores into it;
  in-restore the same, the restore repurposing the released sandbox
             itself (criu restore --switch-deps): one step on the start's
             path, no pool manager call;
  at-start   the same sandbox purged at the start instead (criu-sandbox
             repurpose of a used sandbox: kill, purge, new namespaces,
             dependencies, limits, all on the start's path);
each with a plain restore and with --mm-template, and each restore both by
spawning `criu restore` (cli) and through a resident `criu service` (one
RPC request per start, as a platform's agent sends it); with --mm-template
also through the template's own RPC socket (`criu mm-template socket fn`:
the request goes to the template's holder, no service in between, and
names the template's own copy of the dump, images_dir_fd -1, so that no
client images are checked). Between two starts
the bench waits --gap ms (default 50, untimed): starts of one sandbox are
that far apart on a platform, and back-to-back starts would hide costs the
kernel only pays after an idle moment (a cgroup migration's wait for an RCU
grace period, for one). With --concurrency N, N workers (processes, each
with sandboxes of its own) start at once, as on a loaded node, --runs/N
starts each, and their latencies are pooled. The first and the last start
of each series are checked by a request answered from inside the
sandbox's network namespace (not timed). The sandbox pool manager is
scripts/criu-sandbox, loaded as a module so that its operations are timed
as a resident pool manager would run them (no Python start-up). p50/p99 in
ms, and the ratios fresh / other ways of the whole start. Goal: repurpose +
restore >= 10x faster than fresh sandbox + restore (checked on in-restore,
the fast path).

A bridge (criu-bench-br, 10.90.0.0/16) and a private state directory,
pool and holder socket directory are made and removed. Needs root, a built
criu (make) and, for the service, Debian's python3-criu.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import REPO, BenchError, Procs, log_tail, percentile, rpc_restore, run_bench  # noqa: E402

try:
    from pycriu import rpc_pb2 as rpc
except ImportError:
    rpc = None

PLUGIN_DIR = os.path.join(REPO, "plugins", "mmtemplate")
FN = os.path.join(REPO, "test", "zdtm", "functions", "fn_http.py")
PORT = 8080
WAYS = ("fresh", "repurpose", "in-restore", "at-start")
VIA_LABEL = {"cli": "`criu restore`", "service": "criu service (RPC)",
             "socket": "the template's own socket (RPC, criu mm-template socket)"}


def load_sandbox_module():
    path = os.path.join(REPO, "scripts", "criu-sandbox")
    loader = importlib.machinery.SourceFileLoader("criu_sandbox", path)
    spec = importlib.util.spec_from_loader("criu_sandbox", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class Bench:
    def __init__(self, args, tmp, procs):
        self.args, self.tmp, self.procs = args, tmp, procs
        os.environ.update(CRIU_SANDBOX_DIR=os.path.join(tmp, "sandboxes"), CRIU_SANDBOX_BRIDGE="criu-bench-br",
                          CRIU_SANDBOX_SUBNET="10.90.0.0/16",
                          CRIU_MM_POOL=os.path.join("/dev/shm", os.path.basename(tmp) + "-pool"),
                          CRIU_MM_RUN=os.path.join(tmp, "run"))
        self.sb = load_sandbox_module()
        self.deps = os.path.join(tmp, "deps")
        os.makedirs(self.deps)
        shutil.copy(FN, self.deps)
        self.img = os.path.join(tmp, "img")
        self.service, self.sock, self.img_fd = None, None, -1

    def criu(self, args, what):
        t0 = time.perf_counter()
        r = subprocess.run([self.args.criu] + args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
        ms = (time.perf_counter() - t0) * 1e3
        if r.returncode != 0:
            raise BenchError("%s failed: %s" % (what, r.stderr.strip()))
        return ms

    def call(self, conf):
        code = ("import http.client, json; c = http.client.HTTPConnection(%r, %d, timeout=10); "
                "c.request('POST', '/fn', json.dumps({'n': 10}).encode()); print(c.getresponse().read().decode())"
                % (conf["address"], PORT))
        r = subprocess.run(["ip", "netns", "exec", os.path.basename(conf["netns"]), "/usr/bin/python3", "-c", code],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise BenchError("no answer from the function in %s: %s" % (conf["name"], r.stderr.strip()[-500:]))
        return json.loads(r.stdout)

    def prepare(self):
        conf = self.sb.cmd_create("bsrc", self.deps)
        os.environ.update(FN_HOST="0.0.0.0", FN_PORT=str(PORT))
        res = self.sb.cmd_run("bsrc", ["/usr/bin/python3", "-I", "/fn/fn_http.py", "--out", "/tmp/out", "--pidfile",
                                       "/tmp/pid"])
        pid = res["pid"]
        pidfile = os.path.join(os.environ["CRIU_SANDBOX_DIR"], "bsrc", "upper", "tmp", "pid")
        end = time.monotonic() + 30
        while not os.path.exists(pidfile):
            if time.monotonic() > end:
                raise BenchError("the function did not start")
            time.sleep(0.02)
        self.call(conf)
        ext = ["--external", "net[%d]:net" % os.stat("/proc/%d/ns/net" % pid).st_ino,
               "--external", "mnt[%d]:mnt" % os.stat("/proc/%d/ns/mnt" % pid).st_ino]
        self.criu(["dump", "-t", str(pid), "-D", self.img] + ext, "criu dump")
        self.criu(["-L", PLUGIN_DIR, "convert", "-D", self.img, "--mm-template", "fn"], "criu convert")
        self.sb.destroy(self.sb.load("bsrc"))

    def restore(self, name, tmpl, via, deps=False):
        """deps: the restore repurposes the released sandbox itself
        (--switch-deps)."""
        if via in ("service", "socket"):
            # (on the template's socket, the template's own copy of the dump)
            return rpc_restore(self.sock if via == "service" else self.tmpl_sock,
                               self.img_fd if via == "service" else -1,
                               mm_template="fn" if tmpl and via == "service" else None, switch_sandbox=name,
                               switch_deps=self.deps if deps else None)[0]
        args = ["restore", "-d", "-D", self.img, "--switch", name] + (["--switch-deps", self.deps] if deps else [])
        if tmpl:
            args += ["-L", PLUGIN_DIR, "--mm-template", "fn"]
        return self.criu(args, "criu restore --switch")

    def start_service(self):
        self.sock = os.path.join(self.tmp, "criu.sock")
        self.img_fd = os.open(self.img, os.O_RDONLY | os.O_DIRECTORY)
        log = open(os.path.join(self.tmp, "service.log"), "w")
        p = subprocess.Popen([self.args.criu, "-L", PLUGIN_DIR, "service", "--address", self.sock],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.procs.pids.add(p.pid)
        self.service = p
        end = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if p.poll() is not None or time.monotonic() > end:
                raise BenchError("criu service did not start: %s" % log_tail(log.name))
            time.sleep(0.01)

    def starts(self, way, tmpl, via, prefix, runs):
        """runs starts one way, in sandboxes named prefix...; per start the
        ms to get the sandbox ready and to have the function restored in
        it (none for in-restore: the restore repurposes the sandbox); for
        repurpose and in-restore also the ms of each release."""
        sbox, total, release = [], [], []
        pooled = prefix + "pool"
        released = way in ("repurpose", "in-restore")
        if way != "fresh":
            conf = self.sb.cmd_create(pooled, self.deps)
            if released:
                self.sb.cmd_release(pooled)
        for i in range(runs):
            time.sleep(self.args.gap / 1e3)
            name = "%sf%d" % (prefix, i) if way == "fresh" else pooled
            t0 = time.perf_counter()
            if way == "fresh":
                conf = self.sb.cmd_create(name, self.deps)
            elif way != "in-restore":
                conf = self.sb.cmd_repurpose(name, self.deps, keep_trash=True)
                if conf["released"] != (way == "repurpose"):
                    raise BenchError("repurpose of %s: released=%s" % (name, conf["released"]))
            t1 = time.perf_counter()
            self.restore(name, tmpl, via, deps=way == "in-restore")
            t2 = time.perf_counter()
            sbox.append((t1 - t0) * 1e3)
            total.append((t2 - t0) * 1e3)
            if i in (0, runs - 1) and self.call(conf).get("served") != 2:
                raise BenchError("the restored function does not answer from its checkpoint")
            # untimed, as a resident pool manager does it between starts
            if way == "fresh":
                self.sb.destroy(self.sb.load(name))
            elif released:
                release.append(self.sb.cmd_release(name)["ms"])
            else:
                self.sb.remove_trash(name)
        if way != "fresh":
            self.sb.destroy(self.sb.load(pooled))
        return sbox, total, release

    def run_way(self, way, tmpl, via):
        """--concurrency workers, each a process with sandboxes of its own,
        start at once; their latencies are pooled. Returns (sandbox ms,
        whole start ms, release ms)."""
        n = self.args.concurrency
        runs = max(2, self.args.runs // n)
        if n == 1:
            return self.starts(way, tmpl, via, "b", runs)
        workers = []
        for w in range(n):
            r, wr = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                try:
                    res = {"ok": self.starts(way, tmpl, via, "b%d" % w, runs)}
                except Exception as e:  # noqa: B902 - reported by the parent
                    res = {"error": str(e)}
                with os.fdopen(wr, "w") as f:
                    json.dump(res, f)
                os._exit(0)
            os.close(wr)
            workers.append((pid, r))
        pooled, errors = ([], [], []), []
        for pid, r in workers:
            with os.fdopen(r) as f:
                text = f.read()
            os.waitpid(pid, 0)
            res = json.loads(text) if text else {"error": "worker %d died" % pid}
            if "error" in res:
                errors.append(res["error"])
            else:
                for acc, got in zip(pooled, res["ok"]):
                    acc += got
        if errors:
            raise BenchError("; ".join(errors))
        return pooled

    def body(self):
        self.prepare()
        vias = ["cli"]
        if rpc is not None:
            self.start_service()
            vias.append("service")
        else:
            print("bench: no pycriu (Debian's python3-criu): the service is not measured", file=sys.stderr)
        print("criu: %s; %d starts per way, %d at a time, %g ms apart" % (self.args.criu, self.args.runs,
                                                                         self.args.concurrency, self.args.gap),
              flush=True)
        met = {}
        for tmpl in (False, True):
            if tmpl and rpc is not None:
                vias.append("socket")
                self.tmpl_sock = subprocess.run([self.args.criu, "-L", PLUGIN_DIR, "mm-template", "socket", "fn"],
                                                capture_output=True, text=True, check=True).stdout.strip()
            for via in vias:
                label = "%s, restore by %s" % ("--mm-template" if tmpl else "plain restore", VIA_LABEL[via])
                res = {way: self.run_way(way, tmpl, via) for way in WAYS}
                print("\n== %s" % label)
                for way, (sbox, total, release) in res.items():
                    ready = ("sandbox p50 %6.2f ms p99 %6.2f ms" % (percentile(sbox, 50), percentile(sbox, 99))
                             if way != "in-restore" else "sandbox: in the restore       ")
                    print("  %-10s %s   sandbox + restore p50 %6.2f ms p99 %6.2f ms"
                          % (way, ready, percentile(total, 50), percentile(total, 99)), flush=True)
                rel = res["repurpose"][2] + res["in-restore"][2]
                print("  (release, when a function is done: p50 %.2f ms p99 %.2f ms, off the start's path)"
                      % (percentile(rel, 50), percentile(rel, 99)))
                fresh = res["fresh"]
                for way in WAYS[1:]:
                    rs = ("sandbox %5.1fx, " % (percentile(fresh[0], 50) / percentile(res[way][0], 50))
                          if way != "in-restore" else "")
                    rt = percentile(fresh[1], 50) / percentile(res[way][1], 50)
                    rt99 = percentile(fresh[1], 99) / percentile(res[way][1], 99)
                    print("  fresh / %-10s %swhole start p50 %5.1fx, p99 %5.1fx%s"
                          % (way, rs, rt, rt99, " (goal >= 10: %s)" % ("met" if rt >= 10 else "NOT met")
                             if way == "in-restore" else ""))
                if tmpl:
                    met[via] = percentile(fresh[1], 50) / percentile(res["in-restore"][1], 50) >= 10
        print("\nGoal (--mm-template, the fast path, whole start p50 >= 10x): %s." % ", ".join(
            "%s %s" % (via, "met" if ok else "not met") for via, ok in met.items()))

    def cleanup(self):
        if self.service is not None:
            self.procs.stop(self.service.pid)
        if self.img_fd >= 0:
            os.close(self.img_fd)
        state = os.environ["CRIU_SANDBOX_DIR"]
        for name in sorted(os.listdir(state)) if os.path.isdir(state) else []:
            if name.startswith("."):
                continue
            try:
                self.sb.destroy(self.sb.load(name))
            except Exception as e:  # noqa: B902 - cleanup goes on
                print("bench: destroy %s: %s" % (name, e), file=sys.stderr)
        subprocess.run([self.args.criu, "-L", PLUGIN_DIR, "mm-template", "delete", "fn"], capture_output=True)
        subprocess.run(["umount", "-l", os.environ["CRIU_SANDBOX_DIR"]], capture_output=True)
        subprocess.run(["ip", "link", "del", "criu-bench-br"], capture_output=True)
        shutil.rmtree(os.environ["CRIU_MM_POOL"], ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50, help="starts per way (default 50)")
    ap.add_argument("--gap", type=float, default=50.0,
                    help="ms between two starts, untimed (default 50)")
    ap.add_argument("--concurrency", type=int, default=1,
                    help="starts at once, each worker with sandboxes of its own (default 1)")
    ap.add_argument("--criu", default=os.path.join(REPO, "criu", "criu"), help="criu binary")
    args = ap.parse_args()
    if args.runs < 2:
        ap.error("--runs must be at least 2")
    if not 0 <= args.gap <= 10000:
        ap.error("--gap must be 0..10000 ms")
    if not 1 <= args.concurrency <= 32:
        ap.error("--concurrency must be 1..32")
    if os.geteuid() != 0:
        sys.exit("bench: run me as root")
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="criu-bench-switch.", dir="/tmp")
    b = Bench(args, tmp, procs)

    def cleanup():
        b.cleanup()
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    return run_bench(b.body, cleanup)


if __name__ == "__main__":
    sys.exit(main())
