"""The startup tracer on a hand-made container start, without Docker.

tests/system/handmade_runc.py makes the kernel calls runc makes (cgroup,
unshare, fork into the new pid namespace, mounts, pivot_root,
no_new_privs, exec of the container's command), run through an
executable named ``runc`` so that the tracer follows it. The events and
the phases assembled from them are known exactly, on any kernel: this is
the startup tracer's test in every kernel of the kernel matrix
(scripts/kernel_matrix.py), where no dockerd runs.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from dockertrace import engine
from dockertrace.engine import features
from dockertrace.startup import StartupTracer
from dockertrace.startup.assemble import assemble, select
from dockertrace.startup.events import Kind

pytestmark = [pytest.mark.root, pytest.mark.kernel]

RUNTIME = pathlib.Path(__file__).with_name("handmade_runc.py")
NAMESPACES = 0x6c020000  # mnt, uts, ipc, pid, net: what runc unshares
# Probe points with a BTF tracepoint and a classic one; every other point
# of the startup object is a classic syscall tracepoint only.
SCHED_POINTS = ("dt_su_exec", "dt_su_fork", "dt_su_exit", "dt_su_mkdir")
# Emulated kernels (the matrix runs under qemu without KVM) are tens of
# times slower than the host.
EVENT_WAIT_S = 60


def _cgroup_root():
    """A mounted cgroup hierarchy to make the container's cgroup in:
    cgroup v2 where it is mounted (also in hybrid layouts), else v1."""
    found = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            _, path, fstype = line.split()[:3]
            found.setdefault(fstype, path)
    root = found.get("cgroup2") or found.get("cgroup")
    if root is None:
        pytest.fail("no cgroup filesystem mounted", pytrace=False)
    return root


@pytest.fixture
def bundle(tmp_path):
    """Container id, rootfs dir, cgroup dir and the ``runc`` to run."""
    cid = uuid.uuid4().hex + uuid.uuid4().hex
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    runc = tmp_path / "bin" / "runc"
    runc.parent.mkdir()
    # The kernel names a process after the file it executes: a symlink
    # called runc makes the interpreter "runc" to the tracer.
    runc.symlink_to(os.path.realpath(sys.executable))
    cgroup = os.path.join(_cgroup_root(), f"dt-test-{cid}")
    yield cid, str(rootfs), cgroup, str(runc)
    if os.path.isdir(cgroup):
        os.rmdir(cgroup)


def _busybox():
    path = shutil.which("busybox") or "/bin/busybox"
    return os.path.realpath(path)


def _expected_mechanisms(feats):
    sched = "tp_btf" if feats["tp_btf"].supported else "tp"
    plan = engine.plan("startup")
    want = {point: (sched if point in SCHED_POINTS else "tp")
            for point in plan}
    assert plan == want
    return want


def _run_runtime(tracer, bundle):
    cid, rootfs, cgroup, runc = bundle
    t0 = time.monotonic_ns()
    proc = subprocess.run(
        [runc, "-I", "-S", str(RUNTIME), "create", cid, rootfs, cgroup,
         _busybox()],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    # Only the final exec wakes the reader; wait for it.
    deadline = time.monotonic() + EVENT_WAIT_S
    while True:
        mine = select(tracer.events(since_ns=t0), cid)
        if mine and mine[-1].kind is Kind.EXEC and mine[-1].comm \
                == "busybox":
            return mine
        assert time.monotonic() < deadline, [e.kind for e in mine]
        time.sleep(0.05)


@pytest.mark.parametrize("mechanisms", ["chosen", "tp"])
def test_handmade_start(bundle, mechanisms, record_mechanism):
    cid, rootfs, cgroup, runc = bundle
    feats = features.probe_all()
    want = _expected_mechanisms(feats)
    allow = None
    if mechanisms == "tp":
        # The classic tracepoints, which every point also has.
        allow = {"tp"}
        want = dict.fromkeys(want, "tp")

    with StartupTracer(allow=allow) as tracer:
        assert tracer.mechanisms == want
        record_mechanism("startup", tracer.mechanisms,
                         forced=allow is not None)
        events = _run_runtime(tracer, bundle)
        assert tracer.dropped_events == 0

    # Exactly the runtime's calls, in order.
    assert [e.kind for e in events] == [
        Kind.EXEC, Kind.CGROUP_MKDIR, Kind.UNSHARE, Kind.FORK,
        Kind.MOUNT, Kind.MOUNT, Kind.MOUNT, Kind.MOUNT,
        Kind.PIVOT_ROOT, Kind.NO_NEW_PRIVS, Kind.EXEC]
    (create, mkdir, unshare, fork, *mounts, pivot, nnp, execd) = events
    assert create.comm == "runc" and create.args[0] == runc
    assert create.args[-5:-3] == ("create", cid)
    assert mkdir.path.endswith(f"/dt-test-{cid}")
    assert (unshare.arg, unshare.ret) == (NAMESPACES, 0)
    assert fork.tgid == create.tgid
    child = fork.aux
    busybox = _busybox()
    assert [(m.args, m.path, m.ret) for m in mounts] == [
        (("none", "none"), "/", 0),
        (("tmpfs", "tmpfs"), rootfs, 0),
        ((busybox, "bind"), f"{rootfs}/bin/busybox", 0),
        (("proc", "proc"), f"{rootfs}/proc", 0),
    ]
    assert all(m.tgid == child for m in mounts)
    assert (pivot.path, pivot.ret, pivot.tgid) == (rootfs, 0, child)
    assert (nnp.arg, nnp.ret) == (1, 0)
    assert (execd.tgid, execd.comm, execd.old_comm, execd.args) == \
        (child, "busybox", "runc:[2:INIT]", ("true",))

    # The runtime started in our mount namespace; everything after the
    # unshare happened in the new one.
    ours = os.stat("/proc/self/ns/mnt").st_ino
    assert create.mntns == ours
    assert unshare.mntns != ours
    assert {e.mntns for e in (*mounts, pivot, nnp, execd)} == \
        {unshare.mntns}

    s = assemble(events, cid)
    assert [p.name for p in s.phases] == [
        "runc", "cgroups", "namespaces", "mounts", "pivot_root",
        "security", "start", "exec"]
    assert s.namespaces == ("mnt", "uts", "ipc", "pid", "net")
    assert s.mount_count == 4
    assert s.cgroup_dirs == 1
    assert s.phase("namespaces").detail == "mnt uts ipc pid net"
    assert s.phase("mounts").detail.startswith("4 mounts")
    assert s.phase("security").detail == "no_new_privs"
    assert s.phase("exec").detail == "true"
    assert s.phase("runc").events == (create,)
