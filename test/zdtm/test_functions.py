"""Real function servers: warmed, checkpointed, restored several times from
the same images, each restore answering requests correctly.

Uses the zdtm harness (test_zdtm.py) for processes, criu runs and cleanup.
"""
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import time

import pytest

import test_zdtm
from test_zdtm import ZDTM_DIR, built, check_images, mount_table, read_text, start_ns_veth, subreaper, zdtm  # noqa: F401

CONTAINER = ZDTM_DIR / "lib" / "container.py"

FUNCTIONS = ZDTM_DIR / "functions"
NODE = shutil.which("node") or shutil.which("nodejs") or "/usr/bin/node"


def call(port, n, timeout=10, host="127.0.0.1"):
    body = json.dumps({"n": n}).encode()
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("POST", "/fn", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    assert r.status == 200, "HTTP %d: %r" % (r.status, data)
    return json.loads(data), body


def wait_connections_closed(r, port):
    """Until no socket on local port other than the listener is held by a
    process: the server closes a request's connection only once it sees the
    client's FIN (Node.js keeps it alive until then), and criu refuses
    established connections, as CRIU does without --tcp-established."""
    while True:
        held = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in (read_text(table) or "").splitlines()[1:]:
                f = line.split()
                local_port, state, inode = int(f[1].rsplit(":", 1)[1], 16), f[3], f[9]
                if local_port == port and state != "0A" and inode != "0":
                    held.append((state, inode))
        if not held:
            return
        r.check(r.remaining() > 5, "connections on port %d stay open: %s" % (port, held))
        time.sleep(0.01)


def check_answer(port, n, served, host="127.0.0.1"):
    ans, body = call(port, n, host=host)
    assert ans["sum_sq"] == sum(i * i for i in range(n)), ans
    assert ans["digest"] == hashlib.sha256(body).hexdigest(), ans
    assert ans["served"] == served, "served %s, expected %d" % (ans["served"], served)


@pytest.fixture
def fn_run(zdtm, monkeypatch):
    # the function programs live in functions/, not static/
    def command_for(name):
        if (FUNCTIONS / (name + ".js")).exists():
            return [NODE, str(FUNCTIONS / (name + ".js"))]
        return ["/usr/bin/python3", "-I", str(FUNCTIONS / (name + ".py"))]
    monkeypatch.setattr(test_zdtm, "command_for", command_for)
    return zdtm


@pytest.mark.parametrize("name", ["fn_http", "fn_node", "fn_watchdog"])
def test_http_function(fn_run, name):
    """a function server (Python http.server, Node.js with its threads,
    epoll, eventfd and timers, or a Python watchdog that forks the function
    and proxies to it over a unix socket pair): warm it with one request,
    dump, then restore
    three times from the same images; each instance answers with the state
    of the checkpoint (served counter 2, 3) and correct results, then PASSes."""
    if name == "fn_node" and not os.path.exists(NODE):
        pytest.skip("no Node.js (scripts/install-deps.sh installs it)")
    r = fn_run(name, timeout=120)
    r.start()
    port = int((r.dir / "port").read_text())
    check_answer(port, 1000, served=1)  # warm-up
    wait_connections_closed(r, port)
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    check_images(imgdir)
    for i in range(3):
        r.out.unlink(missing_ok=True)
        pid, _ = r.restore(imgdir)
        time.sleep(0.2)  # let timers run
        check_answer(port, 5000 + i, served=2)
        check_answer(port, 7, served=3)
        r.finish_task(pid, "restored function %d" % (i + 1))
    r.ok = True


def test_http_function_in_container(fn_run):
    """the Python function server as a container runs it: PID 1 of its own
    pid, mount, net, uts and ipc namespaces, in a private root (the host's
    root filesystem bound, proc, /dev, /dev/shm and /run tmpfs) with a veth
    end, its address and routes, answering on the veth's address. Warmed,
    dumped with all of it, then restored three times one after another
    (--root /, --veth-pair eth0=OUT@BRIDGE): each instance has the mounts,
    hostname and namespaces of the dump and answers through the veth with
    the checkpoint's state."""
    r = fn_run("fn_http", timeout=120)
    cmd = ["/usr/bin/python3", "-I", str(CONTAINER), "fn-box", "--", "/usr/bin/python3", "-I",
           str(FUNCTIONS / "fn_http.py")]
    v = start_ns_veth(r, ("pid", "mount", "net", "uts", "ipc"), {"FN_HOST": "0.0.0.0", "FN_PORT": "8080"}, cmd)
    addr = v.env["NS_VETH_ADDR"]
    check_answer(8080, 1000, served=1, host=addr)  # warm-up
    mounts = sorted(mount_table(r.pid))
    r.check([m[0] for m in mounts] == ["/", "/dev", "/dev/shm", "/proc", "/run"], "container mounts %s" % mounts)
    imgdir = r.dump(r.pid)
    r.check(v.wrapper.wait(timeout=r.remaining(10)) != 0, "unshare: its child was not killed")
    v.drop_host_end()
    check_images(imgdir)
    for i in range(3):
        out = "zo%s%d" % (v.tag, i)
        v.names.append(out)
        r.out.unlink(missing_ok=True)
        rpid = r.dir / ("restore-%d.pid" % i)
        rc = r.criu("restore-%d" % i, ["restore", "-d", "-D", imgdir, "--pidfile", rpid, "--root", "/",
                                       "--veth-pair", "eth0=%s@%s" % (out, v.bridge), "-o", "restore-%d.log" % i,
                                       "-v4"], log=imgdir / ("restore-%d.log" % i))
        r.check(rc == 0, "criu restore %d exited with %s" % (i, rc))
        pid = int(read_text(rpid).strip())
        r.track(pid)
        r.check(sorted(mount_table(pid)) == mounts, "instance %d mounts %s" % (i, mount_table(pid)))
        r.check(read_text("/proc/%d/root/run/container" % pid) == "fn-box\n", "instance %d lost its /run" % i)
        for kind in ("pid", "mnt", "net", "uts", "ipc"):
            r.check(os.readlink("/proc/%d/ns/%s" % (pid, kind)) != os.readlink("/proc/self/ns/%s" % kind),
                    "instance %d is not in a %s namespace of its own" % (i, kind))
        check_answer(8080, 5000 + i, served=2, host=addr)
        check_answer(8080, 7, served=3, host=addr)
        r.finish_task(pid, "restored function %d" % (i + 1))
        # the next instance has the same address and MAC (see drop_host_end)
        subprocess.run(["ip", "link", "del", out], capture_output=True)
    r.ok = True
