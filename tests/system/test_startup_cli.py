"""`dockertrace startup` as a user runs it: output, exit codes, cleanup."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from dockertrace.engine import loader
from dockertrace.errors import TraceError
from dockertrace.startup import PHASE_NAMES, trace_startup

CLI = [sys.executable, "-m", "dockertrace"]
OWNER = "dockertrace.owner=startup"


def run_cli(*args, env=None, timeout=120):
    return subprocess.run([*CLI, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _leftovers(docker_client):
    """Ids of containers startup made. The low-level list: the high-level
    one inspects each container and fails on one removed meanwhile."""
    return {c["Id"] for c in docker_client.api.containers(
        all=True, filters={"label": OWNER})}


def _bpf_fds():
    """BPF programs and links this process holds open, by fdinfo."""
    held = []
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            with open(f"/proc/self/fdinfo/{fd}") as f:
                info = f.read()
        except OSError:
            continue
        if "prog_id:" in info or "link_id:" in info:
            held.append(fd)
    return held


def test_unknown_run_option_is_a_usage_error():
    # Parsed before anything is attached or started: no root needed.
    r = run_cli("startup", "--", "--no-such-flag", "img")
    assert r.returncode == 2
    assert "--no-such-flag" in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.root
@pytest.mark.docker
def test_json_output(busybox_image):
    r = run_cli("startup", "--json", "--", busybox_image, "true")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    (run,) = d["runs"]
    assert [p["name"] for p in run["phases"]] == list(PHASE_NAMES)
    assert sum(p["duration_ns"] for p in run["phases"]) == run["total_ns"]
    assert d["mechanisms"]
    assert d["dropped_events"] == 0


@pytest.mark.root
@pytest.mark.docker
def test_text_and_verbose_output(busybox_image):
    r = run_cli("startup", "--verbose", "--", busybox_image, "true")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "mechanisms:" in out and "total" in out
    for name in PHASE_NAMES:
        assert f"  {name} " in out
    # --verbose lists the kernel events: the runc create exec, the cgroup
    # mkdirs and the unshare with its namespaces.
    assert "exec runc" in out and "mkdir cgroup /docker/" in out
    assert "unshare mnt,uts,ipc,pid,net" in out
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.root
@pytest.mark.docker
def test_missing_image_exit_code(docker_client):
    r = run_cli("startup", "--", "dockertrace-no-such-image:1", "true")
    assert r.returncode == 8
    assert "dockertrace-no-such-image:1" in r.stderr
    assert "never pulls" in r.stderr
    assert not _leftovers(docker_client)


@pytest.mark.root
def test_unreachable_daemon_exit_code():
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")
    r = run_cli("startup", env=env)
    assert r.returncode == 5
    assert "/nonexistent/docker.sock" in r.stderr
    assert "start dockerd" in r.stderr


@pytest.mark.root
@pytest.mark.parametrize("private", [False, True],
                         ids=["objects-readable", "objects-private"])
def test_without_root_exit_code(private, tmp_path):
    # Import everything first, as root, then drop to nobody: the modules
    # live under root's home, which nobody may not read. "private" puts
    # the BPF objects where nobody may not even look, as in a clone made
    # in a `mktemp -d` folder (mode 0700): the answer must not change.
    objdir = ""
    if private:
        (tmp_path / "private").mkdir(mode=0o700)
        objdir = tmp_path / "private" / "bpfobj"
        shutil.copytree(loader.OBJDIR, objdir)
    code = (
        "import os, pathlib, sys, dockertrace.cli.main as m\n"
        "m._register()\n"
        "import dockertrace.startup.tracer, dockertrace.engine.loader\n"
        "import dockertrace.engine.features, dockertrace.engine.ringbuf\n"
        "import dockertrace.engine.lifecycle, dockertrace.runargs\n"
        "if sys.argv[1]:\n"
        "    dockertrace.engine.loader.OBJDIR = pathlib.Path(sys.argv[1])\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "m.main(['startup'])\n")
    r = subprocess.run([sys.executable, "-c", code, str(objdir)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    assert "permission denied" in r.stderr and "root" in r.stderr
    assert "Traceback" not in r.stderr, r.stderr


@pytest.mark.root
@pytest.mark.parametrize("call, what", [
    ("object_path('startup', d)", "reading BPF object {d}/startup.bpf.o"),
    ("available_objects(d)", "listing BPF objects in {d}"),
])
def test_objects_nobody_may_reach_are_access_denied(call, what, tmp_path):
    # The checks themselves, past the privilege check that comes first in
    # a load: a caller who cannot look into the object directory.
    d = tmp_path / "private"
    d.mkdir(mode=0o700)
    code = (
        "import os, sys\n"
        "from dockertrace.engine.loader import available_objects, "
        "object_path\n"
        "from dockertrace.errors import AccessDenied\n"
        "d = sys.argv[1]\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        f"    {call}\n"
        "except AccessDenied as err:\n"
        "    print(err)\n")
    r = subprocess.run([sys.executable, "-c", code, str(d)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (f"permission denied: {what.format(d=d)}; "
                                "run as root (sudo dockertrace ...)")


def test_missing_object_names_the_fix(tmp_path):
    with pytest.raises(TraceError) as info:
        loader.object_path("startup", tmp_path)
    assert str(info.value).startswith(
        f"BPF object startup not found at {tmp_path / 'startup.bpf.o'}; "
        "build it with `make bpf`")


@pytest.mark.root
@pytest.mark.docker
def test_interrupt_in_library_detaches_and_removes(busybox_image,
                                                   docker_client):
    assert not _bpf_fds()

    def progress(i, n):
        assert _bpf_fds()           # attached while it runs
        if i == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trace_startup([busybox_image, "sleep", "30"], runs=5,
                      progress=progress)
    assert not _bpf_fds()
    assert not _leftovers(docker_client)


@pytest.mark.root
@pytest.mark.docker
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130),
                                       (signal.SIGTERM, 143)])
def test_signal_to_cli_detaches_and_removes(sig, code, busybox_image,
                                            docker_client):
    before = _leftovers(docker_client)
    p = subprocess.Popen([*CLI, "startup", "--runs", "40", "--no-cold",
                          "--", busybox_image, "sleep", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    # Wait until a container of this run exists (the first create may be
    # in flight), then interrupt.
    deadline = time.monotonic() + 60
    while not _leftovers(docker_client) - before:
        assert time.monotonic() < deadline and p.poll() is None
        time.sleep(0.01)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert not _leftovers(docker_client) - before


@pytest.mark.root
@pytest.mark.docker
def test_watch_shows_a_container_started_by_someone_else(container_factory):
    p = subprocess.Popen([*CLI, "startup", "--watch", "--duration", "8",
                          "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(3)           # attach before the container starts
    c = container_factory(["true"], name="watched")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    seen = [json.loads(line) for line in out.splitlines() if line]
    mine = [s for s in seen if s["container_id"] == c.id]
    assert len(mine) == 1, [s["container_id"] for s in seen]
    assert mine[0]["name"] == c.name
    assert mine[0]["phases"][0]["name"] == "rootfs"
    assert mine[0]["phases"][-1]["name"] == "exec"
