"""mm-templates (the mmtemplate plugin): what the zdtm flavour
test_zdtm_mmt does not cover: isolation between concurrent instances,
re-dumping an instance, bad templates, re-conversion while instances run,
and two nodes sharing one pool.

Uses the zdtm harness (test_zdtm.py) for processes, criu runs and cleanup,
and its session pool (mm_pool: a private dram pool under /dev/shm).
"""
import fcntl
import os
import shutil
import socket
import stat
import struct
import subprocess
import time
from pathlib import Path

import pytest

from test_zdtm import (CRIU, MMT_PLUGIN_DIR, NOCR, built, check_images, descendants, mm_pool,  # noqa: F401
                       mm_template, mmt_restore_args, nspid, pages_not_owned, proc_starttime, read_text,
                       reap_zombie_children, start_in_namespaces, subreaper, zdtm)

pytestmark = pytest.mark.skipif(NOCR, reason="ZDTM_NOCR")


def restore_instance(r, imgdir, tmpl, tag, wait=True):
    rpid = r.dir / ("%s.pid" % tag)
    args = ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "-o", "%s.log" % tag, "-v4"] + mmt_restore_args(tmpl)
    if not wait:
        return r.criu(tag, args, log=imgdir / ("%s.log" % tag), wait=False), rpid
    rc = r.criu(tag, args, log=imgdir / ("%s.log" % tag))
    r.check(rc == 0, "criu restore %s exited with %s" % (tag, rc))
    pid = int(read_text(rpid).strip())
    r.track(pid)
    return pid


def dumped_template(r):
    """Starts r's test, dumps it and converts the images: (imgdir, template)."""
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    return imgdir, mm_template(r, imgdir)


def pid_ns_template(r):
    """Runs test r as the init of a pid namespace of its own, dumps it and
    converts the dump into a template: (images dir, template name)."""
    wrapper = start_in_namespaces(r, ["pid"])
    imgdir = r.dump(r.pid)
    wrapper.wait(timeout=r.remaining(10))
    return imgdir, mm_template(r, imgdir)


def template_holder(pid):
    """The template holder of an instance restored from a template: the
    instance's parent is the holder's worker until that worker ends
    (a copy of the holder, same command line), the holder afterwards."""
    for _ in range(100):  # (again if a worker ended while we looked)
        p = holder_of(pid)
        cmd = read_text("/proc/%d/cmdline" % p) or ""
        stat = read_text("/proc/%d/stat" % p)
        if "\0mm-template\0hold\0" not in cmd or stat is None:
            time.sleep(0.01)
            continue
        pp = int(stat[stat.rindex(")") + 2:].split()[1])
        return pp if "\0mm-template\0hold\0" in (read_text("/proc/%d/cmdline" % pp) or "") else p
    return None


def holder_of(pid):
    """The parent of pid (the holder's worker or the holder itself for an
    instance: see template_holder())."""
    data = read_text("/proc/%d/stat" % pid)
    return int(data[data.rindex(")") + 2:].split()[1])


def mem_word(pid, addr, value=None):
    with open("/proc/%d/mem" % pid, "r+b", buffering=0) as f:
        f.seek(addr)
        if value is not None:
            f.write(struct.pack("<Q", value))
            f.seek(addr)
        return struct.unpack("<Q", f.read(8))[0]


def test_isolation_10_instances(zdtm, mm_pool):
    """10 instances of one template restored at once (each the init of its
    own pid namespace): a write into each is seen by that instance only,
    not by the others, the holder (the template) or an instance restored
    afterwards; all instances pass"""
    r = zdtm("mm_isolation", timeout=120)
    imgdir, tmpl = pid_ns_template(r)
    addr = int(read_text(r.dir / "addr").strip(), 16)
    procs = [restore_instance(r, imgdir, tmpl, "inst%d" % i, wait=False) for i in range(10)]
    pids = []
    for i, ((p, entry), rpid) in enumerate(procs):
        rc = p.wait(timeout=r.remaining(60))
        entry[2] = rc
        if rc == 0:
            pids.append(int(read_text(rpid).strip()))
            r.track(pids[-1])
    for i, ((p, entry), rpid) in enumerate(procs):
        r.check(entry[2] == 0, "restore of instance %d exited with %s" % (i, entry[2]))
    r.check(len(set(pids)) == 10, "instances share PIDs: %s" % pids)
    template_word = mem_word(pids[0], addr)
    for i, pid in enumerate(pids):
        r.check(mem_word(pid, addr) == template_word, "instance %d does not start from the template" % i)
        mem_word(pid, addr, 0x5eed0000 + i)
    for i, pid in enumerate(pids):
        got = mem_word(pid, addr)
        r.check(got == 0x5eed0000 + i, "instance %d reads %#x, wrote %#x" % (i, got, 0x5eed0000 + i))
    # each instance is the holder's once the worker that restored it exits
    end = time.monotonic() + 10
    while len({holder_of(p) for p in pids}) > 1:
        r.check(time.monotonic() < end, "the instances have different parents: %s" % [holder_of(p) for p in pids])
        time.sleep(0.005)
    holder = template_holder(pids[0])
    r.check(mem_word(holder, addr) == template_word, "a write of an instance reached the holder's template")
    late = restore_instance(r, imgdir, tmpl, "late")
    r.check(mem_word(late, addr) == template_word, "a later instance sees an earlier one's write")
    for i, pid in enumerate(pids + [late]):
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "instance %d" % i)
    r.ok = True


def test_redump_instance(zdtm, mm_pool):
    """an instance restored from a template is dumped and restored plainly,
    and passes"""
    r = zdtm("mm_anon")
    imgdir, tmpl = dumped_template(r)
    pid, _ = r.restore(imgdir, extra=mmt_restore_args(tmpl))
    img2 = r.dump(pid)
    while proc_starttime(pid) is not None:
        time.sleep(0.01)
    check_images(img2)
    pid2, _ = r.restore(img2)
    r.finish_task(pid2)
    r.ok = True


def _restore_fails(r, imgdir, args, expect, tag):
    rpid = r.dir / ("%s.pid" % tag)
    rc = r.criu(tag, ["restore", "-d", "-D", imgdir, "--pidfile", rpid] + args)
    err = read_text(r.dir / ("criu-%s.stderr" % tag)) or ""
    r.check(rc not in (0, None) and 0 < rc < 128, "%s: criu restore exited with %s" % (tag, rc))
    lines = [l for l in err.strip().split("\n") if l]
    r.check(len(lines) == 1 and expect in lines[0], "%s: expected one line with '%s', got %r" % (tag, expect, err))
    r.check(not rpid.exists(), "%s: a pidfile was written" % tag)
    r.check(proc_starttime(r.pid) is None, "%s: PID %d exists" % (tag, r.pid))


def test_bad_templates(zdtm, mm_pool):
    """a missing template, a template of another dump, a damaged index, a
    corrupt template, a deleted one, and --mm-template without -d: each a
    one-line error, no process left (and no holder for the corrupt one)"""
    r = zdtm("heap00")
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    other = zdtm("env00")
    other.start()
    other_img = other.dump(other.pid)
    other.reap_dumped()
    _restore_fails(r, imgdir, mmt_restore_args("no-such-template"), "no template no-such-template", "missing")
    foreign = mm_template(other, other_img, "foreign")
    _restore_fails(r, imgdir, mmt_restore_args(foreign), "made from another dump", "foreign")
    # a damaged index (each line checked: a bad number, a line cut short,
    # no first line) fails before any holder starts; the good one is put back
    index = mm_pool / (foreign + ".tmpl")
    good = index.read_text()
    for tag, bad, expect in (("index-number", good.replace("\ngeneration ", "\ngeneration x"), "malformed line"),
                             ("index-cut", good.rsplit(" ", 1)[0] + "\n", "malformed line 'file "),
                             ("index-empty", "", "not a template index")):
        index.write_text(bad)
        _restore_fails(other, other_img, mmt_restore_args(foreign), expect, tag)
    index.write_text(good)
    tmpl = mm_template(r, imgdir)
    gen = sorted(p for p in mm_pool.glob(tmpl + ".*") if p.is_dir())[-1]
    pages = sorted(gen.glob("pages-*.img"), key=lambda p: p.stat().st_size)[-1]
    with open(pages, "r+b") as f:
        f.seek(pages.stat().st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xff]))
    _restore_fails(r, imgdir, mmt_restore_args(tmpl), "is corrupt", "corrupt")
    rc = subprocess.run([CRIU, "-L", str(MMT_PLUGIN_DIR), "mm-template", "list"], capture_output=True, text=True)
    r.check(tmpl in rc.stdout and "running" not in rc.stdout.split(tmpl)[1].split("\n")[0],
            "a holder runs for the corrupt template:\n" + rc.stdout)
    rc = subprocess.run([CRIU, "-L", str(MMT_PLUGIN_DIR), "mm-template", "delete", tmpl], capture_output=True)
    r.check(rc.returncode == 0, "mm-template delete failed: %r" % rc.stderr)
    r.check(not list(mm_pool.glob(tmpl + ".*")), "the deleted template left files in the pool")
    _restore_fails(r, imgdir, mmt_restore_args(tmpl), "no template", "deleted")
    rc = r.criu("nodetach", ["restore", "-D", imgdir] + mmt_restore_args(foreign))
    err = read_text(r.dir / "criu-nodetach.stderr") or ""
    r.check(rc == 1 and "needs -d" in err, "restore --mm-template without -d: %s %r" % (rc, err))
    r.ok = True
    other.ok = True


def test_copied_and_rewritten_images(zdtm, mm_pool):
    """a restore from the very images a template was made from skips reading
    them (their stamp matches); from a copy of them it checks them by
    content and passes; after one image of the original is rewritten in
    place (same size, mtime set back) it fails: the ctime gave it away"""
    r = zdtm("heap00")
    imgdir, tmpl = dumped_template(r)
    copy = r.dir / "imgcopy"
    shutil.copytree(imgdir, copy)
    pid = restore_instance(r, imgdir, tmpl, "same")
    r.finish_task(pid, "from the converted images")
    r.out.unlink()
    r.check("checked by content" not in (read_text(imgdir / "same.log") or ""),
            "the images the template was made from were checked by content")
    pid = restore_instance(r, copy, tmpl, "copy")
    r.finish_task(pid, "from a copy")
    r.check("checked by content" in (read_text(copy / "copy.log") or ""), "a copy of the images was not checked")
    img = max((p for p in imgdir.glob("*.img") if not p.name.startswith("pages-")), key=lambda p: p.stat().st_size)
    st = img.stat()
    with open(img, "r+b") as f:
        f.seek(st.st_size // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xff]))
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))
    r.check(img.stat().st_size == st.st_size and img.stat().st_mtime_ns == st.st_mtime_ns, "rewrite changed size/mtime")
    _restore_fails(r, imgdir, mmt_restore_args(tmpl), "made from another dump", "rewritten")
    r.ok = True


def test_held_file_replaced(zdtm, mm_pool):
    """the holder holds every private mapping of a file, written or not
    (here a read-only one and a writable one with a page written); when the
    file is replaced at its path after the holder mapped it (same size, new
    content, new inode), an instance restored afterwards maps the file at
    the path, as a restore without a template does: the pages it never
    wrote show the new content, the written one the dump's"""
    r = zdtm("mmap_file_replaced")
    _held_file_replaced(r, *dumped_template(r), ahead=False)


def test_held_file_replaced_root_made_ahead(zdtm, mm_pool):
    """the same, the test the init of a pid namespace of its own: both
    instances restored through the root made ahead, whose restorer region,
    built before the request, has room for the page runs of the mappings
    it finds not held (the written page of the replaced file)"""
    r = zdtm("mmap_file_replaced", timeout=120)
    _held_file_replaced(r, *pid_ns_template(r), ahead=True)


def _held_file_replaced(r, imgdir, tmpl, ahead):
    data = r.dir / "mmap_file_replaced.data"
    pid = restore_instance(r, imgdir, tmpl, "before")
    held = [l for l in read_text("/proc/%d/maps" % template_holder(pid)).splitlines() if l.endswith(str(data))]
    r.check(len(held) == 2, "the holder maps %d ranges of the file, not 2: %s" % (len(held), held))
    r.check(_made_ahead(imgdir, "before") == ahead, "restored %s the root made ahead" % ("without" if ahead else "through"))
    r.finish_task(pid, "instance before the file is replaced")
    r.out.unlink()
    r.check("not the file the template holds" not in read_text(imgdir / "before.log"),
            "the file the holder maps was not recognized")
    new = r.dir / "replacement"
    new.write_bytes(bytes(b ^ 0x5a for b in data.read_bytes()))
    os.rename(new, data)
    pid = restore_instance(r, imgdir, tmpl, "after")
    r.check(_made_ahead(imgdir, "after") == ahead, "restored %s the root made ahead" % ("without" if ahead else "through"))
    r.finish_task(pid, "instance after the file was replaced")
    unheld = [l for l in read_text(imgdir / "after.log").splitlines() if "not the file the template holds" in l]
    r.check(len(unheld) == 2, "the restore did not map both ranges of the replaced file itself: %s" % unheld)
    r.ok = True


def test_reconvert_while_running(zdtm, mm_pool):
    """converting a template again while an instance of the old generation
    runs: the old instance keeps working, new restores use the new
    generation (a new holder), and the old generation leaves the pool once
    its holder is gone"""
    r = zdtm("mm_anon")
    imgdir, tmpl = dumped_template(r)
    pid = restore_instance(r, imgdir, tmpl, "gen1")
    holder1 = template_holder(pid)
    mm_template(r, imgdir, tmpl)
    gens = sorted(p.name for p in mm_pool.glob(tmpl + ".*") if p.is_dir())
    r.check(gens == [tmpl + ".1", tmpl + ".2"], "pool holds %s while generation 1 is in use" % gens)
    r.finish_task(pid, "generation 1 instance")
    r.out.unlink()
    pid2 = restore_instance(r, imgdir, tmpl, "gen2")
    r.check(template_holder(pid2) != holder1, "generation 2 was restored by the generation 1 holder")
    end = time.monotonic() + 10
    while proc_starttime(holder1) is not None and time.monotonic() < end:
        time.sleep(0.02)
    gens = sorted(p.name for p in mm_pool.glob(tmpl + ".*") if p.is_dir())
    r.check(gens == [tmpl + ".2"], "the old generation stayed in the pool: %s" % gens)
    r.finish_task(pid2, "generation 2 instance")
    r.ok = True


def test_delete_and_convert_while_in_use(zdtm, mm_pool):
    """a template deleted while its generation is still in use (the test
    holds the generation's lock as a holder's worker does), then converted
    again under the same name: the new template takes the next generation
    number instead of colliding with the old directory; the old instance
    passes, the next one comes from a new holder and passes"""
    r = zdtm("mm_anon")
    imgdir, tmpl = dumped_template(r)
    pid = restore_instance(r, imgdir, tmpl, "old")
    holder1 = template_holder(pid)
    with open(mm_pool / (tmpl + ".1") / ".lock", "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        rc = subprocess.run([CRIU, "-L", str(MMT_PLUGIN_DIR), "mm-template", "delete", tmpl], capture_output=True)
        r.check(rc.returncode == 0, "mm-template delete failed: %r" % rc.stderr)
        r.check((mm_pool / (tmpl + ".1")).is_dir(), "a generation in use left the pool")
        mm_template(r, imgdir, tmpl)
    index = read_text(mm_pool / (tmpl + ".tmpl")) or ""
    r.check("\ngeneration 2\n" in index, "the new template reused a generation in use:\n" + index)
    r.finish_task(pid, "old instance")
    r.out.unlink()
    pid2 = restore_instance(r, imgdir, tmpl, "new")
    r.check(template_holder(pid2) != holder1, "the new template was restored by the deleted one's holder")
    r.finish_task(pid2, "new instance")
    r.ok = True


def test_two_nodes_one_pool(zdtm, mm_pool):
    """two simulated nodes (the second in a mount namespace of its own with
    a private /run, so with its own holder) attach the same template from
    one shared pool; an instance on each passes"""
    r = zdtm("mm_isolation", timeout=120)
    imgdir, tmpl = pid_ns_template(r)
    pid1 = restore_instance(r, imgdir, tmpl, "node1")
    rpid = r.dir / "node2.pid"
    env = dict(os.environ)
    env.pop("CRIU_MM_RUN")
    script = ("mount --make-rprivate / && mount -t tmpfs node2-run /run && exec %s restore -d -D %s --pidfile %s "
              "-o node2.log -v4 -L %s --mm-template %s" % (CRIU, imgdir, rpid, MMT_PLUGIN_DIR, tmpl))
    p = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True,
                       timeout=r.remaining(60))
    r.check(p.returncode == 0, "node 2 restore failed: %s" % p.stderr)
    pid2 = int(read_text(rpid).strip())
    r.track(pid2)
    h1, h2 = template_holder(pid1), template_holder(pid2)
    r.track(h2)
    r.check(h1 != h2, "both nodes used one holder")
    r.check(os.stat("/proc/%d/ns/mnt" % h2).st_ino != os.stat("/proc/self/ns/mnt").st_ino,
            "node 2's holder is not in node 2's mount namespace")
    for i, pid in enumerate((pid1, pid2)):
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "node %d instance" % (i + 1))
    os.kill(h2, 15)
    r.ok = True


def test_rpc_mm_template(zdtm, mm_pool):
    """RESTORE over the service socket with criu_opts.mm_template (field
    1000): restored from the template, same PID, passes; an unknown
    template is an error response and the service keeps serving"""
    pytest.importorskip("pycriu")
    from test_rpc import Service, open_dir, rpc, with_our_opts
    r = zdtm("mm_anon")
    imgdir, tmpl = dumped_template(r)
    svc = Service(r, extra=["-L", str(MMT_PLUGIN_DIR)])
    fd = open_dir(imgdir)
    try:
        def req(name):
            return with_our_opts(rpc.criu_req(type=rpc.RESTORE, opts={"images_dir_fd": fd}), {1000: name})
        bad = svc.connect().call(req("no-such"))
        r.check(not bad.success and "no template no-such" in bad.cr_errmsg, "unknown template: %s" % bad)
        resp = svc.connect().call(req(tmpl))
    finally:
        os.close(fd)
    r.check(resp.success, "RPC restore with mm_template failed: %s" % resp.cr_errmsg)
    pid = r.check_restored_pid(resp.restore.pid)
    r.check(holder_of(pid) != svc.pid, "the instance is the service's child, not the holder's")
    r.finish_task(pid)
    svc.check_serving("after the mm_template restores")
    svc.stop()
    r.ok = True


def test_rpc_mm_template_handed_over(zdtm, mm_pool):
    """the service hands a RESTORE with mm_template over to a worker of the
    template's holder with its connection (logged), which serves it from
    there on: notify_scripts work (pre-restore, post-restore and
    post-resume with the instance's pid, each waiting for our answer), a
    keep_open connection gets its next request answered, and
    images_dir_fd -1 restores the template's own copy of the dump, logging
    into work_dir_fd; after a convert, the stale holder is replaced
    without the client seeing it"""
    pytest.importorskip("pycriu")
    from test_rpc import RESTORE_SCRIPTS, Service, make_req, open_dir, rpc, with_our_opts
    r = zdtm("mm_anon")
    imgdir, tmpl = dumped_template(r)
    svc = Service(r, extra=["-L", str(MMT_PLUGIN_DIR), "-v4"])
    c = svc.connect()
    fd = open_dir(imgdir)
    try:
        req = make_req(rpc.RESTORE, keep_open=True, images_dir_fd=fd, notify_scripts=True)
        resp = c.call(with_our_opts(req, {1000: tmpl}))
    finally:
        os.close(fd)
    r.check(resp.success, "RPC restore with mm_template and notify_scripts failed: %s" % resp.cr_errmsg)
    pid = r.check_restored_pid(resp.restore.pid)
    r.check([n[0] for n in c.notes] == RESTORE_SCRIPTS, "notifications: %s" % c.notes)
    r.check([n[1] for n in c.notes[1:]] == [pid, pid], "post-restore/post-resume pids: %s" % c.notes)
    r.check(template_holder(pid) != svc.pid, "the instance is the service's child, not the holder's")
    version = c.call(rpc.criu_req(type=rpc.VERSION))
    r.check(version.success and version.type == rpc.VERSION, "keep_open: the next request: %s" % version)
    c.sock.close()
    r.check("with its connection, to its holder" in read_text(svc.log), "the service did not hand the connection over")
    r.finish_task(pid)
    r.out.unlink()
    wd = open_dir(r.dir)
    try:
        own = svc.connect().call(with_our_opts(rpc.criu_req(type=rpc.RESTORE, opts={
            "images_dir_fd": -1, "work_dir_fd": wd, "log_file": "own.log", "log_level": 4}), {1000: tmpl}))
    finally:
        os.close(wd)
    r.check(own.success, "RPC restore of the template's own copy of the dump: %s" % own.cr_errmsg)
    pid = r.check_restored_pid(own.restore.pid)
    r.check("checked by content" not in read_text(r.dir / "own.log"), "the template's own images were checked")
    holder = template_holder(pid)
    r.finish_task(pid, "instance of the template's own images")
    r.out.unlink()
    # converted again: the old holder answers stale, and a new one serves
    mm_template(r, imgdir, tmpl)
    fd = open_dir(imgdir)
    try:
        resp = svc.connect().call(with_our_opts(rpc.criu_req(type=rpc.RESTORE, opts={"images_dir_fd": fd}),
                                                {1000: tmpl}))
    finally:
        os.close(fd)
    r.check(resp.success, "RPC restore after a convert: %s" % resp.cr_errmsg)
    pid = r.check_restored_pid(resp.restore.pid)
    r.check(template_holder(pid) != holder, "the new generation was restored by the stale holder")
    r.finish_task(pid, "instance of the new generation")
    svc.check_serving("after the handed-over restores")
    svc.stop()
    r.ok = True


def test_holder_hand_over_malformed(zdtm, mm_pool):
    """a connection handed to a template's holder as criu service hands
    one (its kServe request, the connection as its fd) with a request that
    is not a criu_req: the connection's client gets an error answer, and
    the holder's worker serves its next request (VERSION)"""
    pytest.importorskip("pycriu")
    from test_rpc import Rpc, rpc
    r = zdtm("mm_anon")
    _, tmpl = dumped_template(r)
    holder_sock = template_socket(r, tmpl)[:-len(".rpc")]
    index = read_text(Path(os.environ["CRIU_MM_POOL"]) / ("%s.tmpl" % tmpl))
    gen = int(next(line.split()[1] for line in index.splitlines() if line.startswith("generation ")))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r.closers.append(ours.close)
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.connect(holder_sock)
        head = struct.pack("<IIQII", 0x4d4d5450, 4, gen, 0, 0)  # "MMTP", kServe
        s.sendmsg([head + b"\xff\xfe not a criu_req"],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", theirs.fileno()))])
        theirs.close()
        c = Rpc(r, ours)
        bad = c.recv(timeout=r.remaining(30))
        r.check(bad is not None and not bad.success and "malformed" in bad.cr_errmsg,
                "malformed handed-over request: %s" % bad)
        version = c.call(rpc.criu_req(type=rpc.VERSION))
        r.check(version.success and version.type == rpc.VERSION, "the next request: %s" % version)
    ours.close()
    r.ok = True


def template_socket(r, tmpl):
    out = subprocess.run([CRIU, "-L", str(MMT_PLUGIN_DIR), "mm-template", "socket", tmpl], capture_output=True,
                         text=True, timeout=60)
    r.check(out.returncode == 0, "criu mm-template socket %s: %s" % (tmpl, out.stderr.strip()))
    return out.stdout.strip()


def test_template_socket(zdtm, mm_pool):
    """the template's own RPC socket (`criu mm-template socket NAME`, which
    starts its holder): pycriu's RESTORE sent there is restored by the
    holder's worker itself (the instance is the holder's child), same
    PID, passes, and so does one of the template's own copy of the dump
    (images_dir_fd -1, logging into work_dir_fd); images of another dump, another
    template's name and a malformed request get an error answer, and the
    socket serves again afterwards; after a convert of the template the
    old holder refuses (stale), and the socket named again serves the new
    generation at once, even while a client keeps a connection to the old
    holder's worker (the old holder ends when that client leaves)"""
    pycriu = pytest.importorskip("pycriu")
    from test_rpc import Rpc, open_dir, rpc, with_our_opts
    r = zdtm("mm_anon")
    imgdir, tmpl = dumped_template(r)
    other = zdtm("env00")
    other.start()
    other_img = other.dump(other.pid)
    other.reap_dumped()
    path = template_socket(r, tmpl)
    r.check(stat.S_ISSOCK(os.stat(path).st_mode) and os.stat(path).st_mode & 0o777 == 0o600,
            "%s is not a socket for root only" % path)

    def restore(img, log, name=None):
        fd = open_dir(img)
        try:
            req = rpc.criu_req(type=rpc.RESTORE, opts={"images_dir_fd": fd, "log_file": log, "log_level": 4})
            c = Rpc.connect(r, path)
            try:
                return c.call(with_our_opts(req, {1000: name}) if name else req)
            finally:
                c.sock.close()  # (its worker, and a stale holder, end once the client is gone)
        finally:
            os.close(fd)

    bad = restore(other_img, "other.log")
    r.check(not bad.success and "made from another dump" in bad.cr_errmsg, "another dump's images: %s" % bad)
    bad = restore(imgdir, "name.log", name="no-such")
    r.check(not bad.success and "serves template %s, not no-such" % tmpl in bad.cr_errmsg,
            "another template's name: %s" % bad)
    c = Rpc.connect(r, path)
    c.send(b"\xff\xfe not a criu_req")
    bad = c.recv()
    c.sock.close()
    r.check(bad is not None and not bad.success and "malformed" in bad.cr_errmsg, "malformed request: %s" % bad)
    fd = open_dir(imgdir)
    try:
        c = pycriu.criu()
        c.use_sk(path)
        c.opts.images_dir_fd = fd
        c.opts.log_file = "socket.log"
        c.opts.log_level = 4
        resp = c.restore()
    except pycriu.CRIUException as e:
        r.fail("pycriu restore on the template's socket: %s" % e)
    finally:
        os.close(fd)
    pid = r.check_restored_pid(resp.pid)
    holder = template_holder(pid)
    r.finish_task(pid, "instance restored on the template's socket")
    r.out.unlink()
    # images_dir_fd -1: the template's own copy of the dump, no check
    bad = Rpc.connect(r, path).call(rpc.criu_req(type=rpc.RESTORE, opts={"images_dir_fd": -1, "log_file": "x.log"}))
    r.check(not bad.success and "needs work_dir_fd" in bad.cr_errmsg, "log_file without a directory: %s" % bad)
    wd = open_dir(r.dir)
    try:
        own = Rpc.connect(r, path).call(rpc.criu_req(type=rpc.RESTORE, opts={
            "images_dir_fd": -1, "work_dir_fd": wd, "log_file": "own.log", "log_level": 4}))
    finally:
        os.close(wd)
    r.check(own.success, "restore of the template's own images: %s" % own.cr_errmsg)
    pid = r.check_restored_pid(own.restore.pid)
    r.check(template_holder(pid) == holder, "the instance of the template's own images is not the holder's")
    r.check("checked by content" not in read_text(r.dir / "own.log"), "the template's own images were checked")
    r.check("criu" in read_text("/proc/%d/cmdline" % holder) and "hold" in read_text("/proc/%d/cmdline" % holder),
            "the instance is the child of PID %d, not of the holder" % holder)
    r.finish_task(pid, "instance of the template's own images")
    r.out.unlink()
    # a client that keeps a connection (its worker serves it on) does not
    # keep a stale holder from being replaced
    idle = Rpc.connect(r, path)
    idle.send(b"\xff not a criu_req")
    r.check(idle.recv() is not None, "no answer to a malformed request")
    mm_template(r, imgdir, tmpl)
    stale = restore(imgdir, "stale.log")
    r.check(not stale.success and "converted again" in stale.cr_errmsg, "stale holder: %s" % stale)
    path = template_socket(r, tmpl)
    resp = restore(imgdir, "gen2.log")
    r.check(resp.success, "restore of generation 2 on the socket: %s" % resp.cr_errmsg)
    pid = r.check_restored_pid(resp.restore.pid)
    holder2 = template_holder(pid)
    r.check(holder2 != holder, "generation 2 was restored by the old holder")
    r.finish_task(pid, "generation 2 instance")
    r.check(proc_starttime(holder) is not None, "the stale holder ended while its worker served a connection")
    idle.sock.close()
    end = time.monotonic() + 10
    while proc_starttime(holder) is not None and time.monotonic() < end:
        reap_zombie_children()  # (the holder, orphaned, is our child)
        time.sleep(0.02)
    r.check(proc_starttime(holder) is None, "the stale holder did not end once its last client left")
    r.out.unlink()
    # asked for after a convert, the socket is the new generation's at once
    mm_template(r, imgdir, tmpl)
    path = template_socket(r, tmpl)
    resp = restore(imgdir, "gen3.log")
    r.check(resp.success, "restore of generation 3 on the socket: %s" % resp.cr_errmsg)
    pid = r.check_restored_pid(resp.restore.pid)
    r.check(template_holder(pid) not in (holder, holder2), "generation 3 was restored by an old holder")
    r.finish_task(pid, "generation 3 instance")
    r.ok = True


def _made_ahead(imgdir, tag):
    return "through its root made ahead" in (read_text(imgdir / ("%s.log" % tag)) or "")


def holder_processes(tmpl):
    """PIDs of the holder of tmpl and of its copies (spares, their roots
    made ahead, workers): every process running `mm-template hold tmpl`,
    and their live children with no command line (a root made ahead that
    waits in its restorer has criu's unmapped already)."""
    pids, parent = set(), {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        cmdline = read_text("/proc/%s/cmdline" % d)
        if "\0mm-template\0hold\0%s\0" % tmpl in (cmdline or ""):
            pids.add(int(d))
        stat = read_text("/proc/%s/stat" % d) or ""
        fields = stat[stat.rfind(")") + 2:].split()
        if cmdline == "" and len(fields) > 1 and fields[0] != "Z":
            parent[int(d)] = int(fields[1])
    return pids | {pid for pid, ppid in parent.items() if ppid in pids}


def _wait_holder_processes(tmpl, n):
    end = time.monotonic() + 30
    while len(holder_processes(tmpl)) < n and time.monotonic() < end:
        time.sleep(0.02)
    time.sleep(0.1)  # (none more comes)
    return holder_processes(tmpl)


def test_template_spares_env(zdtm, mm_pool):
    """$CRIU_MM_SPARES of whoever starts a template's holder: 3 makes it
    keep three spares, each with its root made ahead; 0, out of 1..16,
    is refused in the holder's log and the default two are kept"""
    r = zdtm("mm_isolation", timeout=120)
    _, tmpl = pid_ns_template(r)
    for value, spares in (("3", 3), ("0", 2)):
        env = dict(os.environ, CRIU_MM_SPARES=value)
        out = subprocess.run([CRIU, "-L", str(MMT_PLUGIN_DIR), "mm-template", "socket", tmpl], env=env,
                             capture_output=True, text=True, timeout=60)
        r.check(out.returncode == 0, "criu mm-template socket: %s" % out.stderr.strip())
        got = _wait_holder_processes(tmpl, 1 + 2 * spares)
        r.check(len(got) == 1 + 2 * spares, "CRIU_MM_SPARES=%s: %d holder processes, not %d" % (
            value, len(got), 1 + 2 * spares))
        subprocess.run([CRIU, "-L", str(MMT_PLUGIN_DIR), "mm-template", "stop", tmpl], timeout=60)
        end = time.monotonic() + 10
        while holder_processes(tmpl) and time.monotonic() < end:
            reap_zombie_children()
            time.sleep(0.02)
        r.check(not holder_processes(tmpl), "the holder did not stop: %s" % holder_processes(tmpl))
    logs = [read_text(p) or "" for p in Path(os.environ["CRIU_MM_RUN"]).glob("*%s*.log" % tmpl)]
    r.check(any("CRIU_MM_SPARES=0 is not 1..16" in log for log in logs), "no word of CRIU_MM_SPARES=0 in %s" % logs)
    r.ok = True


@pytest.mark.parametrize("via", ["socket", "service"])
def test_template_socket_concurrent(zdtm, mm_pool, via):
    """four RESTOREs at once, from clients all connected before any sends,
    on a template's own socket or through `criu service` (which hands each
    connection over to the holder): the holder's two spares take one each,
    the holder forks a worker for each other; each succeeds, two are
    restored by spares made before the requests came, each instance is the
    init of a pid namespace of its own with memory of its own, and all
    pass"""
    pytest.importorskip("pycriu")
    from test_rpc import Rpc, Service, open_dir, rpc, with_our_opts
    r = zdtm("mm_isolation", timeout=120)
    imgdir, tmpl = pid_ns_template(r)
    addr = int(read_text(r.dir / "addr").strip(), 16)
    path = template_socket(r, tmpl)
    if via == "service":
        path = Service(r, extra=["-L", str(MMT_PLUGIN_DIR)]).path
    # the holder, two spares and their roots made ahead
    before = _wait_holder_processes(tmpl, 5)
    r.check(len(before) == 5, "not a holder with two spares and their roots: %s" % sorted(before))
    conns = [Rpc.connect(r, path) for _ in range(4)]
    wd = open_dir(r.dir)
    try:
        for i, c in enumerate(conns):
            req = rpc.criu_req(type=rpc.RESTORE, opts={"images_dir_fd": -1, "work_dir_fd": wd,
                                                       "log_file": "conc%d.log" % i, "log_level": 4})
            c.send(with_our_opts(req, {1000: tmpl}) if via == "service" else req)
        resps = [c.recv(timeout=r.remaining(60)) for c in conns]
    finally:
        os.close(wd)
    pids = []
    for i, resp in enumerate(resps):
        r.check(resp is not None and resp.success, "concurrent restore %d: %s" % (i, resp))
        pids.append(resp.restore.pid)  # (criu's view: the instance is PID 1 in its namespace)
        r.track(pids[-1])
    r.check(len(set(pids)) == 4, "the instances share PIDs: %s" % pids)
    # (a spare's instance is its root made ahead, there before the requests)
    by_spares = set(pids) & before
    r.check(len(by_spares) == 2, "%d instances restored by a spare made ahead, not 2" % len(by_spares))
    for i, pid in enumerate(pids):
        r.check(nspid(pid)[-1] == 1, "instance %d is not the init of its own pid namespace: %s" % (i, nspid(pid)))
        mem_word(pid, addr, 0xc0c0 + i)
    for i, pid in enumerate(pids):
        r.check(mem_word(pid, addr) == 0xc0c0 + i, "instance %d sees another's write" % i)
    for i, pid in enumerate(pids):
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "concurrent instance %d" % i)
    r.ok = True


@pytest.mark.parametrize("name", ["sigaction00", "rlimits00"])
def test_root_made_ahead_signal_state(zdtm, mm_pool, name):
    """signal dispositions (sigaction00: handlers, SIG_IGN with and without
    flags, SIGPIPE ignored as criu's own is) and resource limits
    (rlimits00), the init of their own pid namespace: restored twice
    through the template's root made ahead (a child of criu's holder, with
    its signal actions and limits until the restorer sets them); both
    instances find every one as dumped and pass"""
    r = zdtm(name, timeout=120)
    start_in_namespaces(r, ["pid"])
    imgdir = r.dump(r.pid)
    tmpl = mm_template(r, imgdir)
    for i in range(2):
        tag = "ahead%d" % i
        rpid = r.dir / ("%s.pid" % tag)
        args = ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "-o", "%s.log" % tag, "-v4"]
        rc = r.criu(tag, args + mmt_restore_args(tmpl), log=imgdir / ("%s.log" % tag))
        r.check(rc == 0, "criu restore %s exited with %s" % (tag, rc))
        pid = int(read_text(rpid).strip())
        r.track(pid)
        r.check(_made_ahead(imgdir, tag), "%s: not restored through its root made ahead" % tag)
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "instance %d" % i)
    r.ok = True


def _waiting_roots(tmpl, want, deadline):
    """The roots made ahead under tmpl's holder that wait in their
    restorer (no command line left), once there are want of them."""
    while True:
        roots = [p for p in holder_processes(tmpl) if read_text("/proc/%d/cmdline" % p) == ""]
        if len(roots) >= want or time.monotonic() > deadline:
            return roots
        time.sleep(0.01)


@pytest.mark.parametrize("name,thin", [("epoll00", True), ("socket_inet00", True), ("chroot00", True),
                                       ("shm_anon", True), ("fd_gaps", True), ("memfd00", True),
                                       ("timerfd00", True), ("signalfd00", True), ("inotify00", True),
                                       ("pipe00", True), ("socket_unix00", False)])
def test_thin_root(zdtm, mm_pool, name, thin):
    """a single task, init of pid, uts and ipc namespaces of its own with a
    hostname of its own: the template's spares make the roots of the next
    restores ahead. Where criu can open every file for the root (not a unix
    socket: socket_unix00), the root waits in its restorer with criu's
    address space already gone (no mapping of criu's binary or its plugin
    left), and the restore goes through it: criu restores the hostname in
    the root's uts namespace, the root takes its files from criu; the
    instance has the dumped hostname and passes (epoll registrations, TCP
    sockets, a chroot, shared anonymous memory, fd gaps, a memfd, timerfd,
    signalfd, inotify, pipes with data). socket_unix00's root made
    ahead is an ordinary one, and its instance passes too. Once both
    roots waiting are killed, a third restore goes the ordinary way, its
    log saying why, and passes"""
    r = zdtm(name, timeout=120)
    hostname = "thin-" + name.replace("_", "-")

    def set_hostname(pid):
        subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname", hostname], check=True, timeout=10)

    wrapper = start_in_namespaces(r, ["pid", "uts", "ipc"], setup=set_hostname)
    imgdir = r.dump(r.pid)
    wrapper.wait(timeout=r.remaining(10))
    tmpl = mm_template(r, imgdir)
    for i in range(3 if thin else 2):
        if i == 2:
            for root in _waiting_roots(tmpl, 2, time.monotonic() + 10):
                os.kill(root, 9)
        elif i:
            roots = _waiting_roots(tmpl, 2 if thin else 1, time.monotonic() + (10 if thin else 1))
            r.check(len(roots) == (2 if thin else 0), "%d roots made ahead wait in their restorer" % len(roots))
            for root in roots:
                maps = read_text("/proc/%d/maps" % root) or ""
                # (criu's libc is not told from the test's own, held)
                left = [l for l in maps.splitlines() if l.endswith(str(CRIU)) or "mmtemplate.so" in l]
                r.check(maps and not left, "the root made ahead %d still maps criu: %s" % (root, left))
        pid = restore_instance(r, imgdir, tmpl, "thin%d" % i)
        log = read_text(imgdir / ("thin%d.log" % i)) or ""
        if i == 1:
            r.check(_made_ahead(imgdir, "thin1"), "not restored through a root made ahead")
            r.check(("waiting in its restorer" in log) == thin, "the root made ahead %s in its restorer" % (
                "did not wait" if thin else "waited"))
        if i == 2:
            r.check(not _made_ahead(imgdir, "thin2"), "restored through a root made ahead that was killed")
            r.check("is gone (Killed): restoring without it" in log, "the log does not say the root was gone")
        got = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        r.check(got == hostname, "instance %d: hostname %r, dumped %r" % (i, got, hostname))
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, "instance %d" % i)
    r.ok = True


def test_root_made_ahead(zdtm, mm_pool):
    """a tree in pid and uts namespaces of its own (ns_pid_uts: children, a
    grandchild, a zombie, a hostname): the template's spare worker makes
    the root of the next restore before the request (as PID 1 of a new pid
    namespace), and the restore goes through it, three times in a row;
    a request it can't serve (--root), and a request after someone killed
    the roots both spares made ahead, fall back to the ordinary restore; every instance is PID 1 of its own
    pid namespace with the dump's inner PIDs and passes"""
    r = zdtm("ns_pid_uts", timeout=120)
    start_in_namespaces(r, ["pid", "uts"])
    inner = sorted(nspid(p)[-1] for p in descendants(r.pid))
    imgdir = r.dump(r.pid)
    tmpl = mm_template(r, imgdir)

    def instance(tag, ahead, extra=()):
        rpid = r.dir / ("%s.pid" % tag)
        args = ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "-o", "%s.log" % tag, "-v4"] + list(extra)
        rc = r.criu(tag, args + mmt_restore_args(tmpl), log=imgdir / ("%s.log" % tag))
        r.check(rc == 0, "criu restore %s exited with %s" % (tag, rc))
        pid = int(read_text(rpid).strip())
        r.track(pid)
        r.check(_made_ahead(imgdir, tag) == ahead, "%s: restored %s its root made ahead" %
                (tag, "without" if ahead else "through"))
        r.check(nspid(pid)[-1] == 1, "%s: NSpid %s" % (tag, nspid(pid)))
        got = sorted(nspid(p)[-1] for p in descendants(pid))
        r.check(got == inner, "%s: inner PIDs %s, dumped %s" % (tag, got, inner))
        # criu leaves its CPU to the restored tasks before it detaches
        # (step_aside): their affinity is not criu's new one
        for p in [pid] + list(descendants(pid)):
            r.check(os.sched_getaffinity(p) == os.sched_getaffinity(0), "%s: PID %d may run on CPUs %s only" % (
                tag, p, sorted(os.sched_getaffinity(p))))
        return pid

    def finish(pid, tag):
        r.out.unlink(missing_ok=True)
        r.finish_task(pid, tag)

    for i in range(3):
        finish(instance("ahead%d" % i, True), "instance %d" % i)
    finish(instance("root", False, ["--root", "/"]), "the --root instance")
    pid = instance("ahead3", True)
    # the holder's two spare workers made the next roots meanwhile: kill them
    holder = template_holder(pid)
    deadline = time.monotonic() + 10
    while True:
        roots = [p for p, pp in descendants(holder).items() if pp != holder and holder_of(pp) == holder
                 and p != pid and p not in descendants(pid) and pp not in descendants(pid) and pp != pid]
        if len(roots) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    r.check(len(roots) == 2, "not two roots made ahead under the holder %d: %s" % (holder, descendants(holder)))
    for root in roots:
        # its parent, a spare worker, owns its pages before the request
        worker = holder_of(root)
        while (left := pages_not_owned(worker)) and time.monotonic() < deadline:
            time.sleep(0.01)
        r.check(left == [], "the spare worker %d has pages to fault in (kB): %s" % (worker, left))
        os.kill(root, 9)
    finish(pid, "instance 3")
    finish(instance("killed", False), "the instance after a killed prepared root")
    r.ok = True
