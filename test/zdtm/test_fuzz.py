"""Random damage to real dumps (threads, unix sockets, zombies, POSIX timers,
pid+uts and pid+net namespaces): whatever the images say, `criu restore`
either restores or fails with one line on stderr and an exit code below
128, within its timeout, and leaves no task of the tree behind.

test_err_corrupt_images damages every image in fixed ways (truncation,
header bytes); here the entries' contents are hit, with seeded random bit
flips and byte values, which mostly leaves valid protobuf with wild values
(a VMA's flags, a thread's capabilities, an fd number...). That is how the
restorer hang of test_err_restore_blob_fails was found.

ZDTM_FUZZ_CASES (default 150 per dump) and ZDTM_FUZZ_SEED (default 1) make
longer or other campaigns; a failing case is kept under the test's
directory with its log.
"""
import os
import random
import shutil
import subprocess
import time

import pytest

from test_zdtm import (CRIU, CRIU_TIMEOUT, NOCR, built, descendants, proc_state,  # noqa: F401
                       reap_zombie_children, start_in_namespaces, subreaper, zdtm)

pytestmark = pytest.mark.skipif(NOCR, reason="ZDTM_NOCR")

CASES = int(os.environ.get("ZDTM_FUZZ_CASES", "150"))
SEED = int(os.environ.get("ZDTM_FUZZ_SEED", "1"))


def damage(rnd, data):
    """1-3 random changes past the image's magic."""
    data = bytearray(data)
    how = rnd.choice(["bit", "bit", "byte", "edge"])
    for _ in range(rnd.randint(1, 3)):
        pos = rnd.randrange(8, len(data))
        if how == "bit":
            data[pos] ^= 1 << rnd.randrange(8)
        elif how == "byte":
            data[pos] = rnd.randrange(256)
        else:  # values at varint and sign edges
            data[pos] = rnd.choice([0x00, 0x01, 0x7f, 0x80, 0xff])
    return bytes(data), how


def kill_leftovers(me):
    """Kills what a case left (a restored tree); returns what was alive."""
    alive = [p for p in descendants(me) if (proc_state(p)[0] or "Z") != "Z"]
    for p in alive:
        try:
            os.kill(p, 9)
        except ProcessLookupError:
            pass
    for _ in range(500):
        reap_zombie_children()
        if not descendants(me):
            break
        time.sleep(0.01)
    return alive


def run_case(r, imgdir, work, img, data):
    copy = work / "img"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(imgdir, copy)
    (copy / img.name).write_bytes(data)
    p = subprocess.Popen([str(CRIU), "restore", "-D", str(copy), "-d", "-o", "restore.log", "-v4"], cwd=str(work),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        _, err = p.communicate(timeout=CRIU_TIMEOUT)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        rc = None
    lines = [line for line in err.decode("utf-8", "replace").split("\n") if line]
    if rc is None:
        return rc, "hung for %ds" % CRIU_TIMEOUT
    if rc < 0 or rc >= 128:
        return rc, "crashed (%s): %s" % (rc, lines[-3:])
    if rc != 0 and len(lines) != 1:
        return rc, "failed with %d stderr lines: %s" % (len(lines), lines[:3])
    return rc, None


@pytest.mark.parametrize("name,kinds", [("tree_threads", None), ("socket_unix00", None), ("tree_zombie", None),
                                        ("posix_timers", None), ("ns_pid_uts", ("pid", "uts")),
                                        ("ns_net", ("pid", "net"))])
def test_fuzz_images(zdtm, name, kinds):
    r = zdtm(name, timeout=max(120, CASES * 2))
    if kinds:
        wrapper = start_in_namespaces(r, list(kinds))
        imgdir = r.dump(r.pid)
        wrapper.wait(timeout=r.remaining(10))
    else:
        r.start()
        imgdir = r.dump(r.pid)
        r.reap_dumped()
    imgs = [p for p in sorted(imgdir.glob("*.img")) if not p.name.startswith("pages-") and p.stat().st_size > 12]
    rnd = random.Random("%s-%d" % (name, SEED))
    work = r.dir / "fuzz"
    work.mkdir()
    problems = []
    me = os.getpid()
    for i in range(CASES):
        img = rnd.choice(imgs)
        data, how = damage(rnd, img.read_bytes())
        rc, trouble = run_case(r, imgdir, work, img, data)
        left = kill_leftovers(me)
        # a failed restore must leave nothing; a successful one is ours to kill
        if not trouble and rc != 0 and left:
            trouble = "left tasks %s behind" % left
        if trouble:
            keep = r.dir / ("case-%d-%s" % (i, img.name))
            shutil.copytree(work / "img", keep)
            shutil.copy(img, keep / ("undamaged." + img.name))
            if (work / "restore.log").exists():
                shutil.copy(work / "restore.log", keep)
            problems.append("case %d (%s, %s): %s (kept in %s)" % (i, img.name, how, trouble, keep))
        r.remaining()
    r.check(not problems, "%d of %d damaged dumps went wrong:\n%s" % (len(problems), CASES, "\n".join(problems)))
    r.ok = True
