"""criu's command line: --version, --help, errors in options and commands,
`criu check`, and the log options (-o, -v, -W, --log-pid, -o -).

Run from the repository root like the rest of the suite:

    /usr/bin/python3 -m pytest test/zdtm -k test_cli     # pytest.ini collects this file too

The log tests dump a running env00 with -R (so one task serves several
dumps, and -R is checked once more: it must still pass at the end); they use
the harness of test_zdtm.py (its Run, fixtures and environment variables).
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from test_zdtm import (CRIU, CRIU_TIMEOUT, NOCR, TMPROOT, built, read_text, require_criu,  # noqa: F401
                       subreaper, zdtm)

pytestmark = pytest.mark.skipif(NOCR, reason="ZDTM_NOCR")

# "(SS.UUUUUU) text": the timestamp CRIU puts in front of every log line
LOG_LINE = re.compile(r"^\(\d+\.\d{6}\) ")
# with --log-pid: "(SS.UUUUUU) PID: text"
LOG_PID_LINE = re.compile(r"^\(\d+\.\d{6}\)\s+(\d+): ")


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="zdtm-cli-", dir=TMPROOT)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_criu(args, cwd):
    require_criu()
    p = subprocess.run([CRIU] + [str(a) for a in args], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CRIU_TIMEOUT)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def lines_of(text):
    return [l for l in text.split("\n") if l.strip()]


def describe(args, rc, out, err):
    return "criu %s -> %s\nstdout: %r\nstderr: %r" % (" ".join(map(str, args)), rc, out[-2000:], err[-2000:])


# ---------------------------------------------------------------- version, help, check


def test_cli_version(workdir):
    """--version: exit 0, prints a version number"""
    args = ["--version"]
    rc, out, err = run_criu(args, workdir)
    assert rc == 0, describe(args, rc, out, err)
    assert re.search(r"^Version: \d+\.\d+", out, re.M), describe(args, rc, out, err)


@pytest.mark.parametrize("opt", ["--help", "-h"])
def test_cli_help(workdir, opt):
    """--help / -h: exit 0, a usage text naming the commands"""
    rc, out, err = run_criu([opt], workdir)
    assert rc == 0, describe([opt], rc, out, err)
    assert re.search(r"usage", out, re.I) and "dump" in out and "restore" in out, describe([opt], rc, out, err)


def test_cli_check(workdir):
    """check: exit 0, "Looks good." """
    rc, out, err = run_criu(["check"], workdir)
    assert rc == 0, describe(["check"], rc, out, err)
    assert "Looks good." in out, describe(["check"], rc, out, err)


# ---------------------------------------------------------------- errors

# (id, argv, regex the one error line must match).  "DIR" is a fresh empty
# directory that must stay empty.  `check` is used as the command where an
# ignored option would make criu succeed.
CLI_ERRORS = [
    ("unknown-option", ["check", "--no-such-option"], r"no-such-option"),
    ("unsupported-option", ["check", "--tcp-established"], r"tcp-established"),
    ("no-command", [], r"command"),
    ("unknown-command", ["no-such-command"], r"no-such-command"),
    ("dump-without-t", ["dump", "-D", "DIR"], r"-t\b|\bPID\b|\bpid\b"),
    ("dump-t-abc", ["dump", "-t", "abc", "-D", "DIR"], r"abc"),
    ("service-prepare-abc", ["service", "--prepare", "abc", "--address", "DIR/s.sock"], r"--prepare.*abc"),
    ("service-prepare-too-many", ["service", "--prepare", "65", "--address", "DIR/s.sock"], r"0\.\.64"),
    ("timeout-zero", ["dump", "-t", "1", "-D", "DIR", "--timeout", "0"], r"--timeout.*'0'"),
    ("timeout-abc", ["dump", "-t", "1", "-D", "DIR", "--timeout", "abc"], r"--timeout.*abc"),
    ("cgroup-root-relative", ["restore", "-D", "DIR", "--cgroup-root", "a/b"], r"--cgroup-root.*a/b"),
    ("cgroup-root-no-ctrl", ["restore", "-D", "DIR", "--cgroup-root", ":/a"], r"--cgroup-root.*:/a"),
    ("cgroup-root-dotdot", ["restore", "-D", "DIR", "--cgroup-root", "memory:/a/../b"], r"--cgroup-root"),
    ("cgroup-root-dump", ["dump", "-t", "1", "-D", "DIR", "--cgroup-root", "/a"], r"restore option"),
]


@pytest.mark.parametrize("args,pattern", [c[1:] for c in CLI_ERRORS], ids=[c[0] for c in CLI_ERRORS])
def test_cli_error(workdir, args, pattern):
    """a bad command line: non-zero exit (no crash), exactly one line on
    stderr saying what is wrong, nothing dumped"""
    imgdir = os.path.join(workdir, "img")
    os.mkdir(imgdir)
    args = [imgdir + a[3:] if a.startswith("DIR") else a for a in args]
    rc, out, err = run_criu(args, workdir)
    what = describe(args, rc, out, err)
    assert rc != 0, "criu accepted it:\n" + what
    assert 0 < rc < 128, "criu crashed or was killed:\n" + what
    lines = lines_of(err)
    assert len(lines) == 1, "expected exactly one line on stderr, got %d:\n%s" % (len(lines), what)
    assert re.search(pattern, lines[0]), "the error line does not match %r:\n%s" % (pattern, what)
    assert os.listdir(imgdir) == [], "files were written to the images dir: %s" % os.listdir(imgdir)


# ---------------------------------------------------------------- log options


def _dump_r(r, tag, opts, log=None):
    """criu dump -R of the running env00 with opts; requires success and images."""
    imgdir = r.new_imgdir()
    rc = r.criu(tag, ["dump", "-t", r.pid, "-D", imgdir, "-R"] + opts, log=log and imgdir / log)
    r.check(rc == 0, "criu dump %s exited with %s" % (" ".join(map(str, opts)), rc))
    r.check((imgdir / "inventory.img").exists(), "dump %s wrote no inventory.img" % " ".join(map(str, opts)))
    r.check(r.proc.poll() is None, "env00 died after dump -R %s" % " ".join(map(str, opts)))
    return imgdir


def _log_lines(r, path):
    text = read_text(path)
    r.check(text is not None, "no log file %s" % path)
    return lines_of(text)


def _body(line):
    return LOG_LINE.sub("", line)


def test_cli_log_verbosity(zdtm):
    """-o dump.log -v4 writes debug lines (more than -v3) into IMGDIR/dump.log,
    every line with CRIU's timestamp; -v0 writes nothing at all"""
    r = zdtm("env00", timeout=60)
    r.start()
    d3 = _dump_r(r, "dump-v3", ["-o", "dump.log", "-v3"], "dump.log")
    d4 = _dump_r(r, "dump-v4", ["-o", "dump.log", "-v4"], "dump.log")
    v3, v4 = _log_lines(r, d3 / "dump.log"), _log_lines(r, d4 / "dump.log")
    r.check(v4, "-v4 wrote an empty log")
    bad = [l for l in v4 if not LOG_LINE.match(l)]
    r.check(not bad, "-v4 log lines without a timestamp:\n%s" % "\n".join(bad[:10]))
    debug_only = set(map(_body, v4)) - set(map(_body, v3))
    r.check(len(v4) > len(v3) and debug_only,
            "-v4 has no lines -v3 does not have (%d vs %d lines)" % (len(v4), len(v3)))
    d0 = _dump_r(r, "dump-v0", ["-o", "dump.log", "-v0"], "dump.log")
    size = os.path.getsize(d0 / "dump.log") if (d0 / "dump.log").exists() else 0
    r.check(size == 0, "-v0 wrote %d bytes into the log:\n%s" % (size, read_text(d0 / "dump.log")[:2000]))
    err = read_text(r.dir / "criu-dump-v0.stderr")
    r.check(not err, "-v0: a successful dump wrote to stderr: %r" % err)
    r.sigterm_original()
    r.ok = True


def test_cli_log_workdir(zdtm):
    """-W DIR -o x.log: the log goes to DIR/x.log, the images to -D"""
    r = zdtm("env00", timeout=60)
    r.start()
    wdir = r.dir / "work"
    wdir.mkdir()
    imgdir = _dump_r(r, "dump-W", ["-W", wdir, "-o", "x.log", "-v4"])
    lines = _log_lines(r, wdir / "x.log")
    r.check(lines and all(LOG_LINE.match(l) for l in lines), "bad log in %s:\n%s" % (wdir, "\n".join(lines[:10])))
    r.check(not (imgdir / "x.log").exists(), "-W: the log was written into the images dir")
    r.check(not (r.dir / "x.log").exists(), "-W: the log was written into criu's cwd")
    r.check(sorted(os.listdir(wdir)) == ["x.log"], "-W dir holds %s, expected only x.log" % os.listdir(wdir))
    r.sigterm_original()
    r.ok = True


def test_cli_log_pid(zdtm):
    """--log-pid: every log line carries the pid of criu; without it none does"""
    r = zdtm("env00", timeout=60)
    r.start()
    d1 = _dump_r(r, "dump-logpid", ["-o", "dump.log", "-v4", "--log-pid"], "dump.log")
    criu_pid = r.criu_pid
    lines = _log_lines(r, d1 / "dump.log")
    r.check(lines, "--log-pid: empty log")
    bad = [l for l in lines if not (LOG_PID_LINE.match(l) and int(LOG_PID_LINE.match(l).group(1)) == criu_pid)]
    r.check(not bad, "--log-pid: lines not prefixed with criu's pid %d:\n%s" % (criu_pid, "\n".join(bad[:10])))
    d2 = _dump_r(r, "dump-nologpid", ["-o", "dump.log", "-v4"], "dump.log")
    criu_pid = r.criu_pid
    lines = _log_lines(r, d2 / "dump.log")
    with_pid = [l for l in lines if LOG_PID_LINE.match(l) and int(LOG_PID_LINE.match(l).group(1)) == criu_pid]
    r.check(lines and not with_pid, "without --log-pid, lines carry criu's pid %d:\n%s" % (
        criu_pid, "\n".join(with_pid[:10])))
    r.sigterm_original()
    r.ok = True


def test_cli_log_stderr(zdtm):
    """-o -: the log goes to stderr (and to no file named "-")"""
    r = zdtm("env00", timeout=60)
    r.start()
    imgdir = _dump_r(r, "dump-stderr", ["-o", "-", "-v4"])
    lines = lines_of(read_text(r.dir / "criu-dump-stderr.stderr") or "")
    r.check(len(lines) > 3, "-o - -v4: only %d lines on stderr" % len(lines))
    bad = [l for l in lines if not LOG_LINE.match(l)]
    r.check(not bad, "-o -: stderr lines that are not log lines:\n%s" % "\n".join(bad[:10]))
    r.check(any(re.search(r"\b%d\b" % r.pid, l) for l in lines), "-o -: the log never names PID %d" % r.pid)
    for d in (imgdir, r.dir):
        r.check(not (d / "-").exists(), "-o - created a file named '-' in %s" % d)
    r.sigterm_original()
    r.ok = True
