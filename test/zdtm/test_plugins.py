"""The plugin ABI (criu/include/criu-plugin.h): loading from -L, version
and descriptor checks, the COMMAND hook, init/exit stages, and
RESUME_DEVICES_LATE after a restore, with a C++ test plugin
(plugins/zdtm_plugin.cpp) that records its calls."""
import os
import shutil
import subprocess

import pytest

from test_zdtm import CRIU, ZDTM_DIR, built, subreaper, zdtm  # noqa: F401 (fixtures)

PLUGINS = ZDTM_DIR / "plugins"
STAGE_RESTORE, STAGE_COMMAND = 2, 3


def run(args, env=None, cwd=None):
    return subprocess.run([CRIU] + [str(a) for a in args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, **(env or {})), cwd=cwd)


@pytest.fixture
def plugdir(tmp_path, built):
    d = tmp_path / "plugins"
    d.mkdir()
    return d


def install(plugdir, so):
    shutil.copy(PLUGINS / so, plugdir / os.path.basename(so))


def records(path):
    return path.read_text().splitlines() if path.exists() else []


def test_plugin_command(plugdir, tmp_path):
    install(plugdir, "zdtm_plugin.so")
    out = tmp_path / "calls"
    r = run(["-L", plugdir, "zdtm-hello", "a", "b c"], env={"ZDTM_PLUGIN_OUT": str(out)})
    assert r.returncode == 0, r.stderr
    assert records(out) == ["init %d" % STAGE_COMMAND, "hello zdtm-hello a b c", "exit %d 0" % STAGE_COMMAND]


def test_plugin_command_fails(plugdir, tmp_path):
    install(plugdir, "zdtm_plugin.so")
    out = tmp_path / "calls"
    r = run(["-L", plugdir, "zdtm-fail"], env={"ZDTM_PLUGIN_OUT": str(out)})
    assert r.returncode == 1
    assert "zdtm-test" in r.stderr and "zdtm-fail" in r.stderr, r.stderr
    assert records(out)[-1] == "exit %d 1" % STAGE_COMMAND


def test_plugin_unknown_command(plugdir):
    install(plugdir, "zdtm_plugin.so")
    r = run(["-L", plugdir, "no-such-command"])
    assert r.returncode == 1
    assert "unknown command 'no-such-command'" in r.stderr, r.stderr


def test_plugin_dir_missing(tmp_path):
    r = run(["-L", tmp_path / "nope", "check"])
    assert r.returncode == 1
    assert str(tmp_path / "nope") in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize("so,msg", [("not_a_plugin.so", "not a criu plugin"),
                                    ("bad_version/zdtm_plugin.so", "ABI version")])
def test_plugin_refused(plugdir, so, msg):
    install(plugdir, so)
    r = run(["-L", plugdir, "check"])
    assert r.returncode == 1
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_plugin_resume_hook(zdtm, plugdir, tmp_path):
    """a restore with the plugin calls init(RESTORE), RESUME_DEVICES_LATE with
    the restored PID (the images dir is known to the plugin), exit(RESTORE, 0)"""
    install(plugdir, "zdtm_plugin.so")
    out = tmp_path / "calls"
    r = zdtm("env00")
    r.start()
    imgdir = r.dump(r.pid)
    r.reap_dumped()
    os.environ["ZDTM_PLUGIN_OUT"] = str(out)
    try:
        pid, _ = r.restore(imgdir, extra=["-L", str(plugdir)])
    finally:
        del os.environ["ZDTM_PLUGIN_OUT"]
    assert records(out) == ["init %d" % STAGE_RESTORE, "resume %d imgdir ok" % pid, "exit %d 0" % STAGE_RESTORE]
    r.finish_task(pid)
    r.ok = True
