"""Real function servers: warmed, checkpointed, restored several times from
the same images, each restore answering requests correctly.

Uses the zdtm harness (test_zdtm.py) for processes, criu runs and cleanup.
"""
import hashlib
import http.client
import json
import os
import shutil
import time

import pytest

import test_zdtm
from test_zdtm import ZDTM_DIR, built, check_images, subreaper, zdtm  # noqa: F401 (fixtures)

FUNCTIONS = ZDTM_DIR / "functions"
NODE = shutil.which("node") or shutil.which("nodejs") or "/usr/bin/node"


def call(port, n, timeout=10):
    body = json.dumps({"n": n}).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/fn", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    assert r.status == 200, "HTTP %d: %r" % (r.status, data)
    return json.loads(data), body


def check_answer(port, n, served):
    ans, body = call(port, n)
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
