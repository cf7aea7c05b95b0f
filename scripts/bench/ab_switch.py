#!/usr/bin/python3
"""Interleaved A/B of two builds on the fast path of bench_switch: a
template start into a released sandbox through `criu service`
(restore --switch --switch-deps --mm-template).

    /usr/bin/python3 scripts/bench/ab_switch.py OLD_TREE NEW_TREE [--starts N] [--gap MS]
                                                [--old-via VIA] [--new-via VIA]

OLD_TREE and NEW_TREE are built checkouts (criu/criu and
plugins/mmtemplate/mmtemplate.so in each; `git worktree add /tmp/old HEAD~1
&& make -C /tmp/old`, say). The function of bench_switch is dumped and
converted once (with NEW_TREE's criu); each build gets its own copy of the
pool and its own service, side by side, and the starts alternate between
them (ABBA order, --starts per side, default 40, --gap ms apart, default
50) into one released sandbox, released again after each start. Printed:
each build's p25/p50/p75 of the restore (connect to answer, ms) and the
one-sided Wilcoxon p that each is the slower one: on a VM whose speed
drifts from one minute to the next, only such paired starts tell a change
of 0.1 ms from the drift. The first four starts are not counted.
--old-via/--new-via socket send that side's requests to the template's own
RPC socket instead of its service (the same tree twice with one side on
the socket compares the two ways); socket-own as well, naming the
template's own copy of the dump (images_dir_fd -1: no check of the
client's images).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import BenchError, Procs, log_tail, percentile, rpc_restore, run_bench, slower_p  # noqa: E402
from bench_switch import Bench  # noqa: E402

WARMUP = 4


class Side:
    """One build: its pool copy, its holders' directory and its service, and
    the way its requests go (via)."""

    def __init__(self, tree, tmp, pool, tag, via, procs):
        self.tree, self.tag, self.via = os.path.abspath(tree), tag, via
        self.criu = os.path.join(self.tree, "criu", "criu")
        self.plugins = os.path.join(self.tree, "plugins", "mmtemplate")
        for f in (self.criu, os.path.join(self.plugins, "mmtemplate.so")):
            if not os.access(f, os.R_OK):
                raise BenchError("%s: no %s (build it first)" % (tree, f))
        self.pool = pool + "-" + tag
        shutil.copytree(pool, self.pool, symlinks=True)
        self.env = dict(os.environ, CRIU_MM_POOL=self.pool, CRIU_MM_RUN=os.path.join(tmp, "run-" + tag))
        self.sock = os.path.join(tmp, "criu-%s.sock" % tag)
        log = open(os.path.join(tmp, "service-%s.log" % tag), "w")
        p = subprocess.Popen([self.criu, "-L", self.plugins, "service", "--address", self.sock], env=self.env,
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        procs.pids.add(p.pid)
        self.service, self.times = p, []
        end = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if p.poll() is not None or time.monotonic() > end:
                raise BenchError("criu service of %s did not start: %s" % (tree, log_tail(log.name)))
            time.sleep(0.01)
        self.tmpl_sock = None if via == "service" else subprocess.run(
            [self.criu, "-L", self.plugins, "mm-template", "socket", "fn"], env=self.env, capture_output=True,
            text=True, check=True).stdout.strip()

    def restore(self, img_fd, deps):
        """One start into the sandbox "ab": (ms, response)."""
        if self.via == "service":
            return rpc_restore(self.sock, img_fd, mm_template="fn", switch_sandbox="ab", switch_deps=deps)
        return rpc_restore(self.tmpl_sock, -1 if self.via == "socket-own" else img_fd, switch_sandbox="ab",
                           switch_deps=deps)

    def cleanup(self, procs):
        procs.stop(self.service.pid)
        # (its holder is no child of ours: deleting the template ends it)
        subprocess.run([self.criu, "-L", self.plugins, "mm-template", "delete", "fn"], env=self.env,
                       capture_output=True)
        shutil.rmtree(self.pool, ignore_errors=True)


def body(args, b, sides):
    b.prepare()
    pool = os.environ["CRIU_MM_POOL"]
    for tag, tree, via in (("old", args.old, args.old_via), ("new", args.new, args.new_via)):
        sides.append(Side(tree, b.tmp, pool, tag, via, b.procs))
    img_fd = os.open(b.img, os.O_RDONLY | os.O_DIRECTORY)
    b.sb.cmd_create("ab", b.deps)
    b.sb.cmd_release("ab")
    for i in range(2 * (args.starts + WARMUP)):
        side = sides[(i // 2 + i) % 2]  # old new new old old new ...
        time.sleep(args.gap / 1e3)
        ms, resp = side.restore(img_fd, b.deps)
        b.procs.pids.add(resp.restore.pid)
        if i >= 2 * WARMUP:
            side.times.append(ms)
        b.sb.cmd_release("ab")
    os.close(img_fd)
    for s in sides:
        print("%-4s %s (%s)  p25 %.3f  p50 %.3f  p75 %.3f ms  (%d starts)" % (
            s.tag, s.tree, s.via, percentile(s.times, 25), percentile(s.times, 50), percentile(s.times, 75),
            len(s.times)))
    old, new = sides[0].times, sides[1].times
    print("new - old p50: %+.3f ms;  p(new is slower) %.3f  p(old is slower) %.3f" % (
        percentile(new, 50) - percentile(old, 50), slower_p(new, old), slower_p(old, new)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", help="the built tree to compare against")
    ap.add_argument("new", help="the built tree with the change")
    ap.add_argument("--starts", type=int, default=40, help="counted starts per build (default 40)")
    ap.add_argument("--gap", type=float, default=50.0, help="ms between two starts, untimed (default 50)")
    for side in ("old", "new"):
        ap.add_argument("--%s-via" % side, choices=("service", "socket", "socket-own"), default="service",
                        help="the %s build's requests: through its criu service (default) or to the template's "
                        "own socket (criu mm-template socket; socket-own: naming the template's own copy of "
                        "the dump, images_dir_fd -1)" % side)
    args = ap.parse_args()
    if not 4 <= args.starts <= 1000:
        ap.error("--starts must be 4..1000")
    if not 0 <= args.gap <= 10000:
        ap.error("--gap must be 0..10000 ms")
    if os.geteuid() != 0:
        sys.exit("ab_switch: run me as root")
    procs = Procs()
    tmp = tempfile.mkdtemp(prefix="criu-bench-switch.", dir="/tmp")
    b = Bench(argparse.Namespace(runs=args.starts, gap=args.gap, concurrency=1,
                                 criu=os.path.join(os.path.abspath(args.new), "criu", "criu")), tmp, procs)
    sides = []

    def cleanup():
        for s in sides:
            s.cleanup(procs)
        b.cleanup()
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    return run_bench(lambda: body(args, b, sides), cleanup)


if __name__ == "__main__":
    sys.exit(main())
