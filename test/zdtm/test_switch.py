"""Switch restore: a function checkpointed in one sandbox of a pool is
restored into another (scripts/criu-sandbox, criu restore --switch).

Every test makes its own sandboxes, in a state directory of its own, on a
bridge and subnet of their own (zdtm-br0, 10.89.0.0/16), and destroys them
at the end. HTTP requests are sent from inside the sandbox's network
namespace (ip netns exec) to the sandbox's own address.
"""
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

import test_zdtm
from test_zdtm import (CRIU, NOCR, REPO, ZDTM_DIR, built, descendants, mm_pool, mm_template,  # noqa: F401
                       mmt_restore_args, nspid, proc_starttime, read_text, subreaper, thread_cgroup, tree_threads,
                       zdtm)

pytestmark = pytest.mark.skipif(NOCR, reason="ZDTM_NOCR")

SANDBOX = str(REPO / "scripts" / "criu-sandbox")
FUNCTIONS = ZDTM_DIR / "functions"
PORT = 8080


@pytest.fixture
def pool(tmp_path, monkeypatch):
    """A sandbox pool of this test; everything in it is destroyed at the end."""
    state = tmp_path / "sandboxes"
    monkeypatch.setenv("CRIU_SANDBOX_DIR", str(state))
    monkeypatch.setenv("CRIU_SANDBOX_BRIDGE", "zdtm-br0")
    monkeypatch.setenv("CRIU_SANDBOX_SUBNET", "10.89.0.0/16")
    deps = tmp_path / "deps"
    deps.mkdir()
    for f in ("fn_http.py", "fn_dirty.py"):
        shutil.copy(FUNCTIONS / f, deps / f)
    p = Pool(state, deps, "z%x" % (os.getpid() & 0xffff))
    yield p
    # also those whose create failed halfway: all of this pool's
    found = {e.name for e in state.iterdir() if not e.name.startswith(".")} if state.is_dir() else set()
    for name in sorted(found | set(p.names)):
        subprocess.run([SANDBOX, "destroy", name], capture_output=True)
    subprocess.run(["umount", "-l", str(state)], capture_output=True)
    subprocess.run(["ip", "link", "del", "zdtm-br0"], capture_output=True)


class Pool:
    def __init__(self, state, deps, prefix):
        self.state, self.deps, self.prefix = state, deps, prefix
        self.names = []

    def sandbox(self, *args):
        r = subprocess.run([SANDBOX] + [str(a) for a in args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "criu-sandbox %s: %s" % (" ".join(map(str, args)), r.stderr)
        return json.loads(r.stdout.strip().split("\n")[-1]) if r.stdout.strip() else None

    def sandbox_lines(self, *args):
        r = subprocess.run([SANDBOX] + [str(a) for a in args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, "criu-sandbox %s: %s" % (" ".join(map(str, args)), r.stderr)
        return r.stdout.strip().split("\n")

    def create(self, suffix):
        name = self.prefix + suffix
        conf = self.sandbox("create", name)
        self.names.append(name)
        return conf

    def state_of(self, name):
        return next(json.loads(line)["state"] for line in self.sandbox_lines("list")
                    if json.loads(line)["name"] == name)

    def upper(self, name):
        return self.state / name / "upper"

    def procs(self, name):
        return {int(p) for c in json.loads((self.state / name / "conf.json").read_text())["cgroups"]
                for p in open(os.path.join(c, "cgroup.procs")).read().split()}

    def check_tree_in_cgroups(self, r, name, root):
        """Every thread of every process of root's tree is in each of the
        sandbox's cgroups (the root joins them itself, one thread at a
        time: a thread or child left behind would escape the limits)."""
        want = []
        for c in json.loads((self.state / name / "conf.json").read_text())["cgroups"]:
            rel = os.path.relpath(c, "/sys/fs/cgroup").split("/")
            # v1: memory/criu-sandbox/NAME, cpu/...; v2: criu-sandbox/NAME
            if os.path.exists(os.path.join("/sys/fs/cgroup", rel[0], "tasks")):
                # (cpu may be mounted as cpu,cpuacct: its directory a link)
                ctl = os.path.basename(os.path.realpath(os.path.join("/sys/fs/cgroup", rel[0]))).split(",")[0]
                want.append((ctl, "/" + "/".join(rel[1:])))
            else:
                want.append(("", "/" + "/".join(rel)))
        for pid, tid in tree_threads(root):
            for ctl, path in want:
                have = thread_cgroup(pid, tid, ctl)
                r.check(have == path, "task %s of PID %d is in %s:%s, not in %s" % (tid, pid, ctl, have, path))

    def run_python(self, r, name, code, out):
        """code run in the sandbox (criu-sandbox run); waits for the file
        /tmp/OUT it writes there, and returns its path on the host."""
        run = subprocess.run([SANDBOX, "run", name, "--", "/usr/bin/python3", "-c", code],
                             capture_output=True, text=True, timeout=30)
        r.check(run.returncode == 0, "criu-sandbox run: %s" % run.stderr)
        r.track(json.loads(run.stdout)["pid"])
        path = self.upper(name) / "tmp" / out
        end = time.monotonic() + 20
        while not path.exists():
            r.check(time.monotonic() < end, "the process run in %s wrote no /tmp/%s" % (name, out))
            time.sleep(0.02)
        return path

    def in_netns(self, name, code, timeout=30):
        """Runs python code in the sandbox's network namespace; its stdout."""
        r = subprocess.run(["ip", "netns", "exec", "criu-sbx-" + name, "/usr/bin/python3", "-c", code],
                           capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, "in netns %s: %s" % (name, r.stderr[-2000:])
        return r.stdout


CALL = """
import http.client, json, sys
c = http.client.HTTPConnection(%r, %d, timeout=10)
c.request("POST", "/fn", json.dumps({"n": %d}).encode(), {"Content-Type": "application/json"})
r = c.getresponse()
print(json.dumps({"status": r.status, "body": r.read().decode()}))
"""


def call(pool, conf, n):
    out = json.loads(pool.in_netns(conf["name"], CALL % (conf["address"], PORT, n)))
    assert out["status"] == 200, out
    return json.loads(out["body"])


def start_fn(r, pool, conf, script="fn_http.py"):
    """The function as the init of a pid namespace in the sandbox; waits until
    it is ready (its pidfile, in the sandbox's /tmp); returns its PID."""
    env = dict(os.environ, FN_HOST="0.0.0.0", FN_PORT=str(PORT))
    res = subprocess.run([SANDBOX, "run", conf["name"], "--deps", str(pool.deps), "--", "/usr/bin/python3", "-I",
                          "/fn/" + script, "--out", "/tmp/out", "--pidfile", "/tmp/pid"],
                         capture_output=True, text=True, env=env, timeout=30)
    r.check(res.returncode == 0, "criu-sandbox run: %s" % res.stderr)
    pid = json.loads(res.stdout)["pid"]
    r.track(pid)
    r.track(json.loads(res.stdout)["parent"])
    pidfile = pool.upper(conf["name"]) / "tmp" / "pid"
    end = time.monotonic() + 30
    while not (pidfile.exists() and read_text(pidfile).strip()):
        r.check(proc_starttime(pid) is not None, "the function died while starting")
        r.check(time.monotonic() < end, "the function did not become ready")
        time.sleep(0.02)
    r.pid = pid
    return pid


def dump_fn(r, pid):
    ext = ["--external", "net[%d]:net" % os.stat("/proc/%d/ns/net" % pid).st_ino,
           "--external", "mnt[%d]:mnt" % os.stat("/proc/%d/ns/mnt" % pid).st_ino]
    imgdir = r.dump(pid, ext)
    end = time.monotonic() + 10
    while proc_starttime(pid) is not None:
        r.check(time.monotonic() < end, "the dumped function %d is still there" % pid)
        time.sleep(0.01)
    return imgdir


def switch_restore(r, imgdir, name, extra=(), tag=None):
    tag = tag or "switch-%s-%d" % (name, len(r.criu_runs))
    rpid = r.dir / ("%s.pid" % tag)
    rc = r.criu(tag, ["restore", "-d", "-D", imgdir, "--switch", name, "--pidfile", rpid, "-o", "%s.log" % tag,
                      "-v4"] + list(extra), log=imgdir / ("%s.log" % tag))
    r.check(rc == 0, "criu restore --switch %s exited with %s" % (name, rc))
    pid = int(read_text(rpid).strip())
    r.track(pid)
    return pid


def finish_fn(r, pool, conf, pid):
    """SIGTERM: the function writes PASS into the sandbox's /tmp/out."""
    os.kill(pid, 15)
    r.wait_task(pid, "the function")  # our child (we are the subreaper), or its holder's
    out = read_text(pool.upper(conf["name"]) / "tmp" / "out") or ""
    r.check(out.strip() == "PASS", "the function in %s reports %r" % (conf["name"], out))


LIMITS = {"memory.limit_in_bytes": "268435456", "cpu.cfs_quota_us": "50000", "cpu.shares": "512"}


def cgroup_file(conf, name):
    for c in conf["cgroups"]:
        if os.path.exists(os.path.join(c, name)):
            return os.path.join(c, name)
    return None


def test_switch_between_sandboxes(zdtm, pool):
    """the HTTP function checkpointed warm in sandbox A (with memory and cpu
    limits on A's cgroups) is restored into sandbox B and then, after A is
    repurposed, into A again: each time it is PID 1 of a new pid namespace
    inside the sandbox's net, mount, uts and ipc namespaces and cgroups,
    which have the checkpoint's limits, answers on that sandbox's address
    from the checkpoint's state, and passes"""
    r = zdtm("switch_http", timeout=120)
    a, b = pool.create("a"), pool.create("b")
    pid = start_fn(r, pool, a)
    r.check(call(pool, a, 1000)["served"] == 1, "warm-up")
    for f, v in LIMITS.items():
        if cgroup_file(a, f):
            with open(cgroup_file(a, f), "w") as fp:
                fp.write(v)
    imgdir = dump_fn(r, pid)
    for target in (b, a):
        pool.sandbox("repurpose", target["name"], "--deps", pool.deps)
        for f in LIMITS:
            if cgroup_file(target, f):
                r.check(read_text(cgroup_file(target, f)).strip() != LIMITS[f], "repurpose kept %s" % f)
        pid = switch_restore(r, imgdir, target["name"])
        for f, v in LIMITS.items():
            if cgroup_file(target, f):
                got = read_text(cgroup_file(target, f)).strip()
                r.check(got == v, "%s of %s is %s, the checkpoint's is %s" % (f, target["name"], got, v))
        check_in_sandbox(r, pool, target, pid)
        ans = call(pool, target, 77)
        r.check(ans["served"] == 2 and ans["sum_sq"] == sum(i * i for i in range(77)), "answer %s" % ans)
        r.check(call(pool, target, 5)["served"] == 3, "second answer")
        finish_fn(r, pool, target, pid)
    r.ok = True


def check_in_sandbox(r, pool, conf, pid):
    """pid is PID 1 of a new pid namespace in the sandbox's net, mount, uts
    and ipc namespaces and cgroups."""
    r.check(nspid(pid)[-1] == 1, "not PID 1 of its pid namespace: %s" % nspid(pid))
    state = pool.state / conf["name"]
    for kind, path in (("net", "/run/netns/criu-sbx-" + conf["name"]), ("mnt", state / "ns" / "mnt"),
                       ("uts", state / "ns" / "uts"), ("ipc", state / "ns" / "ipc")):
        r.check(os.stat("/proc/%d/ns/%s" % (pid, kind)).st_ino == os.stat(path).st_ino,
                "the function is not in %s's %s namespace" % (conf["name"], kind))
    r.check(pid in pool.procs(conf["name"]), "the function is not in %s's cgroups" % conf["name"])
    pool.check_tree_in_cgroups(r, conf["name"], pid)


def test_switch_with_mm_template(zdtm, pool, mm_pool):
    """switch + --mm-template, the fast path: the function's memory comes
    from the template's holder, the namespaces and cgroups from the
    sandbox; the holder's spare made the root ahead of the request (as PID
    1 of a new pid namespace) and the root entered the sandbox itself, into
    B, then into A after A is repurposed; a start into A while the function
    runs there is refused with one line (the root made ahead had opened the
    sandbox meanwhile) and leaves A's processes and mounts as they were"""
    r = zdtm("switch_mmt", timeout=120)
    a, b = pool.create("a"), pool.create("b")
    pid = start_fn(r, pool, a)
    call(pool, a, 10)
    imgdir = dump_fn(r, pid)
    tmpl = mm_template(r, imgdir, "switch_mmt")
    for target in (b, a):
        pool.sandbox("repurpose", target["name"], "--deps", pool.deps)
        tag = "mmt-" + target["name"]
        pid = switch_restore(r, imgdir, target["name"], extra=mmt_restore_args(tmpl), tag=tag)
        r.check("through its root made ahead" in read_text(imgdir / ("%s.log" % tag)),
                "the restore into %s did not go through a root made ahead" % target["name"])
        check_in_sandbox(r, pool, target, pid)
        r.check(call(pool, target, 9)["served"] == 2, "answer from the template instance")
        if target is a:
            procs, mounts = sorted(pool.procs(a["name"])), read_text("/proc/%d/mountinfo" % pid)
            rc = r.criu("busy", ["restore", "-d", "-D", imgdir, "--switch", a["name"], "--switch-deps",
                                 str(pool.deps)] + mmt_restore_args(tmpl))
            err = (read_text(r.dir / "criu-busy.stderr") or "").strip().split("\n")
            r.check(rc == 1 and len(err) == 1 and "is busy" in err[0], "busy: rc %s, %r" % (rc, err))
            r.check(sorted(pool.procs(a["name"])) == procs, "the refused start changed the processes of %s: %s, "
                    "were %s" % (a["name"], pool.procs(a["name"]), procs))
            r.check(read_text("/proc/%d/mountinfo" % pid) == mounts, "the refused start changed the mounts of %s"
                    % a["name"])
        finish_fn(r, pool, target, pid)
    r.ok = True


MAPDEPS = """
import mmap, os, runpy, sys
# a private writable mapping of a file of the dependency directory, with
# its first page written (so the template holds it) and its second clean
with open("/fn/data.bin", "rb") as f:
    m = mmap.mmap(f.fileno(), 8192, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
m[0:8] = b"written!"
sys.argv[0] = "/fn/fn_http.py"
runpy.run_path("/fn/fn_http.py", run_name="__main__")
"""


def mapped_page(pid, name, page):
    """8 bytes at the start of page of pid's mapping of a file called name."""
    for line in read_text("/proc/%d/maps" % pid).splitlines():
        if line.endswith("/" + name):
            start = int(line.split("-")[0], 16)
            with open("/proc/%d/mem" % pid, "rb") as f:
                f.seek(start + 4096 * page)
                return f.read(8)
    return None


def test_switch_mm_template_maps_deps_file(zdtm, pool, mm_pool):
    """a function with a private, written mapping of a file in its
    dependency directory (/fn in the sandbox, elsewhere on the host, where
    the template's holder runs), as a native extension has: its switch
    restore from a template maps that file from the target sandbox's /fn,
    with the written page as dumped and the clean one from the file"""
    r = zdtm("switch_mmt_deps_file", timeout=120)
    (pool.deps / "data.bin").write_bytes(b"page-one" + b"." * 4088 + b"page-two" + b"." * 4088)
    (pool.deps / "fn_mapdeps.py").write_text(MAPDEPS)
    a, b = pool.create("a"), pool.create("b")
    pid = start_fn(r, pool, a, "fn_mapdeps.py")
    r.check(mapped_page(pid, "data.bin", 0) == b"written!", "the function did not write its mapping")
    imgdir = dump_fn(r, pid)
    tmpl = mm_template(r, imgdir, "switch_mmt_deps")
    pool.sandbox("repurpose", b["name"], "--deps", pool.deps)
    pid = switch_restore(r, imgdir, b["name"], extra=mmt_restore_args(tmpl), tag="mmt-deps")
    for page, want in ((0, b"written!"), (1, b"page-two")):
        got = mapped_page(pid, "data.bin", page)
        r.check(got == want, "page %d of /fn/data.bin in the instance: %r, not %r" % (page, got, want))
    r.check(call(pool, b, 4)["served"] == 1, "no answer from the instance")
    finish_fn(r, pool, b, pid)
    r.ok = True


PROBE = """
import json, os
seen = json.dumps({
    "tmp": sorted(os.listdir("/tmp")), "shm": sorted(os.listdir("/dev/shm")), "root": sorted(os.listdir("/")),
    "sysvipc": {k: open("/proc/sysvipc/" + k).read().count("\\n") - 1 for k in ("shm", "sem", "msg")},
    "listen": [l.split()[1] for l in open("/proc/net/tcp").readlines()[1:] if l.split()[3] == "0A"],
    "env": "FN_DIRTY" in os.environ, "fn": sorted(os.listdir("/fn")),
})
with open("/tmp/probe.tmp", "w") as f:
    f.write(seen)
os.rename("/tmp/probe.tmp", "/tmp/probe")
"""


@pytest.mark.parametrize("how", ["repurpose", "release"])
def test_repurpose_leaves_nothing(zdtm, pool, tmp_path, how):
    """a function that leaves files (overlay root, /tmp, /dev/shm), SysV
    objects, a listening socket, a child process and an environment variable
    behind: after repurpose (at once, or release when it is done and then
    repurpose) none of it is in the sandbox, whose network, address and
    cgroups are the same; the new dependency directory is there instead of
    the old one"""
    r = zdtm("switch_dirty_" + how, timeout=120)
    a = pool.create("a")
    net_before = os.stat("/run/netns/criu-sbx-" + a["name"]).st_ino
    start_fn(r, pool, a, "fn_dirty.py")
    r.check(len(pool.procs(a["name"])) >= 2, "fn_dirty has no child: %s" % pool.procs(a["name"]))
    deps2 = tmp_path / "deps2"
    deps2.mkdir()
    (deps2 / "other.txt").write_text("x")
    if how == "release":
        pool.sandbox("release", a["name"])
        r.check(pool.state_of(a["name"]) == "clean", "not clean after release")
        r.check(not pool.procs(a["name"]), "processes survived the release: %s" % pool.procs(a["name"]))
    res = pool.sandbox("repurpose", a["name"], "--deps", deps2)
    r.check(res["released"] == (how == "release"), "repurpose of a %s sandbox: released=%s"
            % ("released" if how == "release" else "used", res["released"]))
    r.check(pool.state_of(a["name"]) == "idle", "still clean after repurpose")
    r.check(not pool.procs(a["name"]), "processes survived: %s" % pool.procs(a["name"]))
    r.check(not any(pool.upper(a["name"]).iterdir()), "the overlay upper is not empty")
    trash = pool.state / a["name"] / ".trash"
    r.check(not trash.exists(), "the old upper and work directories were not deleted: %s"
            % (list(trash.iterdir()) if trash.exists() else ""))
    r.check(os.stat("/run/netns/criu-sbx-" + a["name"]).st_ino == net_before, "the network namespace changed")
    r.check(res["address"] == a["address"], "the address changed")
    seen = json.loads(read_text(pool.run_python(r, a["name"], PROBE, "probe")))
    r.check(seen["tmp"] in (["probe.tmp"], []) and seen["shm"] == [], "files survived: %s" % seen)
    r.check("leftover" not in seen["root"], "a file in the overlay root survived: %s" % seen["root"])
    r.check(seen["sysvipc"] == {"shm": 0, "sem": 0, "msg": 0}, "SysV objects survived: %s" % seen["sysvipc"])
    r.check(seen["listen"] == [], "a listening socket survived: %s" % seen["listen"])
    r.check(not seen["env"], "the environment survived")
    r.check(seen["fn"] == ["other.txt"], "the dependency directory is %s" % seen["fn"])
    r.ok = True



def other_deps(pool, tmp_path):
    """A copy of the pool's dependency directory with a marker file."""
    deps2 = tmp_path / "deps2"
    shutil.copytree(pool.deps, deps2)
    (deps2 / "deps2.txt").write_text("2")
    return deps2


def ipc_sysctl(pool, conf, name, value=None):
    """Reads (or sets) the sysctl name of the sandbox's ipc namespace."""
    cmd = "cat /proc/sys/%s" % name if value is None else "echo %s > /proc/sys/%s" % (value, name)
    res = subprocess.run(["nsenter", "--ipc=%s" % (pool.state / conf["name"] / "ns" / "ipc"), "sh", "-c", cmd],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, "ipc sysctl %s of %s: %s" % (name, conf["name"], res.stderr)
    return res.stdout.strip()


def rpc_switch_restore(svc, imgdir, fields):
    """RESTORE of imgdir over svc with our criu_opts fields; the response."""
    from test_rpc import open_dir, rpc, with_our_opts
    fd = open_dir(imgdir)
    try:
        req = rpc.criu_req(type=rpc.RESTORE, opts={"images_dir_fd": fd})
        return svc.connect().call(with_our_opts(req, fields))
    finally:
        os.close(fd)


@pytest.mark.parametrize("how", ["cli", "template", "rpc-template"])
def test_switch_deps_repurposes_released(zdtm, pool, mm_pool, tmp_path, how):
    """criu restore --switch B --switch-deps DIR (RPC: switch_deps, field
    1002) into a released sandbox B: the restore itself repurposes B, with
    no criu-sandbox step on the start's path: it takes B's clean mark and
    binds DIR read-only where B's dependencies go (/fn, made if missing);
    the function answers there. Plain, from an mm-template (the holder's root made ahead
    binds DIR), and through the service. The ipc sysctls of B's new ipc
    namespace are the dump's. Once the function ended, B is not
    clean: a second --switch-deps restore fails with one line, restores
    nothing and binds nothing, and B still repurposes"""
    r = zdtm("switch_deps_" + how.replace("-", "_"), timeout=120)
    a, b = pool.create("a"), pool.create("b")
    pid = start_fn(r, pool, a)
    call(pool, a, 3)
    ipc_sysctl(pool, a, "kernel/msgmax", "12345")
    imgdir = dump_fn(r, pid)
    deps2 = other_deps(pool, tmp_path)
    pool.sandbox("release", b["name"])
    r.check(pool.state_of(b["name"]) == "clean", "not clean after release")
    extra = mmt_restore_args(mm_template(r, imgdir, "switch_deps")) if how != "cli" else []
    if how == "cli":
        # a sandbox without its mount point: the restore makes it
        subprocess.run(["nsenter", "--mount=%s" % (pool.state / b["name"] / "ns" / "mnt"), "rmdir", "/fn"],
                       check=True)
    if how == "rpc-template":
        pytest.importorskip("pycriu")
        from test_rpc import Service
        svc = Service(r, extra=["-L", str(test_zdtm.MMT_PLUGIN_DIR)])
        resp = rpc_switch_restore(svc, imgdir, {1000: "switch_deps", 1001: b["name"], 1002: deps2})
        r.check(resp.success, "RPC restore with switch_deps failed: %s" % resp.cr_errmsg)
        pid = resp.restore.pid
        r.track(pid)
    else:
        pid = switch_restore(r, imgdir, b["name"], extra=extra + ["--switch-deps", deps2], tag="deps")
    if how == "template":
        r.check("through its root made ahead" in read_text(imgdir / "deps.log"),
                "the restore did not go through a root made ahead")
    check_in_sandbox(r, pool, b, pid)
    r.check(pool.state_of(b["name"]) == "idle", "the restore left the clean mark")
    # the sysctls of B's new ipc namespace: the dump's value where it had
    # another, as new where it had the same; a root made ahead writes only
    # the first (it knows what a new namespace holds)
    new = subprocess.run(["unshare", "--ipc", "cat", "/proc/sys/kernel/msgmnb"], capture_output=True, text=True)
    for name, want in (("kernel/msgmax", "12345"), ("kernel/msgmnb", new.stdout.strip())):
        got = ipc_sysctl(pool, b, name)
        r.check(got == want, "%s in B's ipc namespace is %s, not %s" % (name, got, want))
    if how == "template":
        r.check("ipc sysctls: 12 as in a new ipc namespace" in read_text(imgdir / "deps.log"),
                "the root made ahead wrote ipc sysctls the images hold as in a new namespace")
    fn = "/proc/%d/root/fn" % pid
    r.check(sorted(os.listdir(fn)) == sorted(os.listdir(deps2)), "/fn in B holds %s" % os.listdir(fn))
    r.check(os.statvfs(fn).f_flag & os.ST_RDONLY, "/fn in B is writable")
    r.check(call(pool, b, 6)["served"] == 2, "no answer after the repurposing restore")
    finish_fn(r, pool, b, pid)
    mounts = read_text("/proc/%d/mountinfo" % os.getpid())
    rc = r.criu("again", ["restore", "-d", "-D", imgdir, "--switch", b["name"], "--switch-deps", deps2] + extra)
    err = (read_text(r.dir / "criu-again.stderr") or "").strip().split("\n")
    r.check(rc == 1 and len(err) == 1 and "was not released" in err[0], "not clean: rc %s, %r" % (rc, err))
    r.check(not pool.procs(b["name"]), "the refused restore left processes")
    r.check(read_text("/proc/%d/mountinfo" % os.getpid()) == mounts, "the refused restore changed mounts")
    r.check(not pool.sandbox("repurpose", b["name"])["released"], "repurpose after the start took the fast path")
    r.check(not any(pool.upper(b["name"]).iterdir()), "files of the restored function survived")
    if how == "rpc-template":
        svc.stop()
    r.ok = True

def test_clean_mark_taken_by_a_start(zdtm, pool):
    """whatever starts in a clean sandbox takes its clean mark away, so that
    the next repurpose purges it again: criu-sandbox run (in a released
    sandbox) and criu restore --switch (the mark put back by hand on a
    repurposed sandbox); files the started functions wrote are gone after
    that repurpose. A repurpose with a --deps that is no directory fails
    with one line and leaves the mark"""
    r = zdtm("switch_clean_mark", timeout=120)
    a, b = pool.create("a"), pool.create("b")
    pool.sandbox("release", a["name"])
    bad = subprocess.run([SANDBOX, "repurpose", a["name"], "--deps", str(pool.state / "no-such")],
                         capture_output=True, text=True, timeout=60)
    err = bad.stderr.strip().split("\n")
    r.check(bad.returncode == 1 and len(err) == 1 and "needs a directory" in err[0], "bad --deps: %r" % err)
    r.check(pool.state_of(a["name"]) == "clean", "a refused repurpose took the clean mark")
    left = pool.run_python(r, a["name"], "open('/tmp/left-by-run', 'w').close()", "left-by-run")
    r.check(pool.state_of(a["name"]) == "idle", "run left the clean mark")
    r.check(not pool.sandbox("repurpose", a["name"])["released"], "repurpose after run took the fast path")
    r.check(not left.exists(), "a file of the run survived")
    pid = start_fn(r, pool, a)
    call(pool, a, 3)
    imgdir = dump_fn(r, pid)
    pool.sandbox("repurpose", b["name"], "--deps", pool.deps)
    (pool.state / b["name"] / "clean").touch()
    rpid = switch_restore(r, imgdir, b["name"])
    r.check(not (pool.state / b["name"] / "clean").exists(), "criu restore --switch left the clean mark")
    finish_fn(r, pool, b, rpid)
    r.check((pool.upper(b["name"]) / "tmp" / "out").exists(), "the restored function wrote nothing")
    r.check(not pool.sandbox("repurpose", b["name"])["released"], "repurpose after a restore took the fast path")
    r.check(not any(pool.upper(b["name"]).iterdir()), "files of the restored function survived")
    r.ok = True


def test_pool_concurrency(pool):
    """six criu-sandbox create at once: each succeeds with an address of its
    own, and from each a connection reaches the host through the bridge,
    coming from that sandbox's address; a repurpose or destroy of a sandbox
    that another command holds fails with one line and changes nothing"""
    names = [pool.prefix + "c%d" % i for i in range(6)]
    procs = [subprocess.Popen([SANDBOX, "create", n], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in names]
    confs = []
    for n, p in zip(names, procs):
        out, err = p.communicate(timeout=60)
        if p.returncode == 0:
            pool.names.append(n)
            confs.append(json.loads(out))
        assert p.returncode == 0, "create %s: %s" % (n, err)
    addresses = [c["address"] for c in confs]
    assert len(set(addresses)) == len(names), "sandboxes share addresses: %s" % addresses
    listed = [json.loads(line) for line in pool.sandbox_lines("list")]
    assert sorted(c["name"] for c in listed) == sorted(names)
    assert all(c["state"] == "idle" for c in listed), listed
    gateway = "10.89.0.1"
    with socket.socket() as srv:
        srv.bind((gateway, 0))
        srv.listen(8)
        srv.settimeout(10)
        for c in confs:
            pool.in_netns(c["name"], "import socket; socket.create_connection((%r, %d), 5).close()"
                          % (gateway, srv.getsockname()[1]))
            conn, peer = srv.accept()
            conn.close()
            assert peer[0] == c["address"], "%s connected from %s, not %s" % (c["name"], peer[0], c["address"])
    held = names[0]
    mark = pool.upper(held) / "mark"
    mark.write_text("x")
    fd = os.open(pool.state / held, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for cmd in ("release", "repurpose", "destroy"):
            r = subprocess.run([SANDBOX, cmd, held], capture_output=True, text=True, timeout=60)
            err = r.stderr.strip().split("\n")
            assert r.returncode == 1 and len(err) == 1 and "busy" in err[0], (cmd, r.returncode, r.stderr)
        assert mark.exists() and (pool.state / held / "conf.json").exists(), "the held sandbox was changed"
    finally:
        os.close(fd)
    pool.sandbox("repurpose", held)
    assert not mark.exists(), "repurpose left the overlay's upper directory as it was"
    for cmd in ("release", "repurpose", "destroy"):
        r = subprocess.run([SANDBOX, cmd, pool.prefix + "none"], capture_output=True, text=True, timeout=60)
        err = r.stderr.strip().split("\n")
        assert r.returncode == 1 and len(err) == 1 and "no sandbox" in err[0], (cmd, r.returncode, r.stderr)
    # a threaded manager can't make namespaces in itself: a clear error, the sandbox unchanged
    code = ("import importlib.machinery as m, importlib.util as u, threading, time\n"
            "l = m.SourceFileLoader('sb', %r); mod = u.module_from_spec(u.spec_from_loader('sb', l))\n"
            "l.exec_module(mod)\n"
            "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
            "try:\n    mod.cmd_repurpose(%r)\nexcept mod.SandboxError as e:\n    print(e)\n") % (SANDBOX, held)
    r = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=60)
    assert "single-threaded" in r.stdout, (r.stdout, r.stderr)
    assert all(os.path.ismount(pool.state / held / "ns" / k) for k in ("mnt", "uts", "ipc")), \
        "the refused repurpose unbound the sandbox's namespaces"


def test_switch_errors(zdtm, pool):
    """a sandbox that does not exist, a busy one (a function runs in it),
    images without a pid namespace, --switch-deps without --switch or with
    a relative path: a one-line error each, nothing restored, the pool
    unchanged"""
    r = zdtm("switch_errors", timeout=120)
    a, b = pool.create("a"), pool.create("b")
    pid = start_fn(r, pool, a)
    imgdir = dump_fn(r, pid)
    busy = start_fn(r, pool, b)

    def fails(tag, args, expect):
        rc = r.criu(tag, ["restore", "-d", "-D", imgdir] + args)
        err = (read_text(r.dir / ("criu-%s.stderr" % tag)) or "").strip().split("\n")
        r.check(rc == 1 and len(err) == 1 and expect in err[0], "%s: rc %s, %r" % (tag, rc, err))
    fails("missing", ["--switch", "no-such"], "no sandbox no-such")
    fails("busy", ["--switch", b["name"]], "is busy")
    r.check(busy in pool.procs(b["name"]), "the busy sandbox lost its function")
    fails("noswitch", [], "external")
    fails("deps-noswitch", ["--switch-deps", "/tmp"], "give --switch SANDBOX")
    fails("deps-relative", ["--switch", a["name"], "--switch-deps", "deps"], "absolute path")
    os.kill(busy, 9)
    pool.sandbox("repurpose", a["name"])
    r.check(not pool.procs(a["name"]), "a failed restore left processes in %s" % a["name"])
    # a plain tree (not in a pid namespace) can't go into a sandbox
    other = zdtm("env00")
    other.start()
    img2 = other.dump(other.pid)
    other.reap_dumped()
    rc = other.criu("plain", ["restore", "-d", "-D", img2, "--switch", a["name"]])
    err = read_text(other.dir / "criu-plain.stderr") or ""
    r.check(rc == 1 and "init of its pid namespace" in err, "plain tree: %s %r" % (rc, err))
    other.ok = True
    r.ok = True


def warm_dump_and_target(r, pool, limits=False):
    """The function warmed in a new sandbox A (limits: with LIMITS on A's
    cgroups) and dumped; a new sandbox B repurposed for it. Returns B's
    conf and the images directory."""
    a, b = pool.create("a"), pool.create("b")
    pid = start_fn(r, pool, a)
    call(pool, a, 3)
    for f, v in LIMITS.items() if limits else ():
        if cgroup_file(a, f):
            with open(cgroup_file(a, f), "w") as fp:
                fp.write(v)
    imgdir = dump_fn(r, pid)
    pool.sandbox("repurpose", b["name"], "--deps", pool.deps)
    return b, imgdir


def test_switch_inherit_fd_namespaces(zdtm, pool):
    """the form TrEnv's CRIU used: the caller hands the sandbox's net and
    mount namespaces in as fds (--inherit-fd fd[N]:KEY for the dump's
    external keys) and names its cgroups with --cgroup-root; the function
    comes back in them, with the checkpoint's limits, and answers; a
    --cgroup-root that does not exist, or one given with --switch, fails
    with one line and restores nothing"""
    r = zdtm("switch_inherit", timeout=120)
    b, imgdir = warm_dump_and_target(r, pool, limits=True)
    net = os.open("/run/netns/criu-sbx-" + b["name"], os.O_RDONLY)
    mnt = os.open(str(pool.state / b["name"] / "ns" / "mnt"), os.O_RDONLY)
    rpid = r.dir / "inherit.pid"

    def restore(tag, cgroot, extra=()):
        return r.criu(tag, ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "--inherit-fd", "fd[%d]:net" % net,
                            "--inherit-fd", "fd[%d]:mnt" % mnt, "--cgroup-root", cgroot, "-o", tag + ".log",
                            "-v4"] + list(extra), log=imgdir / (tag + ".log"), pass_fds=(net, mnt))
    try:
        for tag, cgroot, extra, expect in (("nocg", "/no-such-zdtm-cgroup", [], "can't open the cgroup"),
                                           ("both", "/criu-sandbox/" + b["name"], ["--switch", b["name"]],
                                            "give one")):
            rc = restore(tag, cgroot, extra)
            err = (read_text(r.dir / ("criu-%s.stderr" % tag)) or "").strip().split("\n")
            r.check(rc == 1 and len(err) == 1 and expect in err[0], "%s: rc %s, %r" % (tag, rc, err))
            r.check(not pool.procs(b["name"]) and not rpid.exists(), "%s: something was restored" % tag)
        rc = restore("inherit", "/criu-sandbox/" + b["name"])
    finally:
        os.close(net)
        os.close(mnt)
    r.check(rc == 0, "criu restore with namespace fds exited with %s" % rc)
    pid = int(read_text(rpid).strip())
    r.track(pid)
    r.check(os.stat("/proc/%d/ns/net" % pid).st_ino == os.stat("/run/netns/criu-sbx-" + b["name"]).st_ino,
            "not in the handed-in net namespace")
    pool.check_tree_in_cgroups(r, b["name"], pid)
    for f, v in LIMITS.items():
        if cgroup_file(b, f):
            r.check(read_text(cgroup_file(b, f)).strip() == v, "%s is not the checkpoint's %s" % (f, v))
    r.check(call(pool, b, 4)["served"] == 2, "no answer in the handed-in namespaces")
    finish_fn(r, pool, b, pid)
    r.ok = True


@pytest.mark.parametrize("prepared", [False, True], ids=["plain", "prepared"])
def test_switch_over_rpc(zdtm, pool, prepared):
    """RESTORE over the service socket with criu_opts.switch_sandbox (field
    1001): the function comes back in the sandbox and answers; prepared: the
    service runs with --prepare, the dump is prepared with a PREPARE
    request, and the switch restore is served by its spare"""
    pytest.importorskip("pycriu")
    from test_rpc import Service, _prepare_call, _served
    r = zdtm("switch_rpc", timeout=120)
    b, imgdir = warm_dump_and_target(r, pool)
    log = r.dir / "prepared.log"
    svc = Service(r, ["--prepare", "1", "-v3", "-o", str(log)] if prepared else [])
    if prepared:
        resp = _prepare_call(svc.connect(), imgdir)
        r.check(resp.success, "PREPARE failed: %s" % resp.cr_errmsg)
    resp = rpc_switch_restore(svc, imgdir, {1001: b["name"]})
    r.check(resp.success, "RPC restore with switch_sandbox failed: %s" % resp.cr_errmsg)
    r.track(resp.restore.pid)
    r.check(_served(log) == int(prepared), "restores served by a spare: %d" % _served(log))
    r.check(resp.restore.pid in pool.procs(b["name"]), "not in the sandbox's cgroups")
    pool.check_tree_in_cgroups(r, b["name"], resp.restore.pid)
    r.check(call(pool, b, 4)["served"] == 2, "no answer after the RPC switch restore")
    finish_fn(r, pool, b, resp.restore.pid)
    svc.stop()
    r.ok = True


# zdtm programs that run unchanged inside a sandbox (nothing of the host's
# they need beyond /usr, their directory and /dev/null, zero, urandom)
# (not the ones that read /proc by their PID: a sandbox's /proc is the host's)
SWITCH_TESTS = ["env00", "heap00", "pipe00", "eventfd00", "epoll00", "timerfd00", "signalfd00", "posix_timers",
                "sigpending00", "fpu_threads", "memfd00", "socket_unix00", "tree00", "tree_files", "tree_shm",
                "unlinked_fd", "mmap_file_private", "shm_anon", "itimer_real", "tree_unix_named", "unix_dgram_named"]


@pytest.mark.parametrize("name", SWITCH_TESTS)
def test_zdtm_switch(zdtm, pool, name):
    """the switch flavour: the zdtm program runs in sandbox A as the init of
    a pid namespace (its directory and the test programs bound in), is
    dumped with A's network and mount namespaces external, and restored
    into sandbox B (repurposed with the same binds) with --switch; it
    passes there"""
    r = zdtm(name, timeout=90)
    a, b = pool.create("a"), pool.create("b")
    binds = ["--bind", r.dir, "--bind", test_zdtm.STATIC]
    # in its directory, as the harness runs it (exec: it stays PID 1)
    res = pool.sandbox("run", a["name"], *binds, "--", "/bin/sh", "-c", 'cd "$0" && exec "$@"', r.dir,
                       test_zdtm.STATIC / name, "--out", r.out, "--pidfile", r.pidfile)
    pid = res["pid"]
    r.track(pid)
    r.track(res["parent"])
    end = time.monotonic() + 30
    while not (r.pidfile.exists() and (read_text(r.pidfile) or "").strip()):
        r.check(proc_starttime(pid) is not None, "the test died while starting: %s" % read_text(r.out))
        r.check(time.monotonic() < end, "the test did not become ready in the sandbox")
        time.sleep(0.01)
    r.check(read_text(r.pidfile).strip() == "1", "the test is not PID 1 in the sandbox")
    r.pid = pid
    imgdir = dump_fn(r, pid)
    pool.sandbox("repurpose", b["name"], *binds)
    rpid = switch_restore(r, imgdir, b["name"])
    r.check(rpid in pool.procs(b["name"]), "the restored test is not in B's cgroups")
    pool.check_tree_in_cgroups(r, b["name"], rpid)
    time.sleep(0.1)
    os.kill(rpid, 15)
    status = r.wait_task(rpid, "the restored test")
    r.check_pass(status, "the test restored into sandbox B")
    r.ok = True
