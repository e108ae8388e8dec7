"""The cffi layer against the real kernel: syscalls, errors, event sizes."""

import errno
import logging
import os

import pytest

from dockertrace._cext import ffi, lib
from dockertrace.engine import raw

# kernel: the kernel matrix (scripts/kernel_matrix.py) runs this file in
# each of its kernels (capget against /proc, event sizes, probes).
pytestmark = pytest.mark.kernel


def _status_caps(pid="self"):
    caps = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("CapEff", "CapPrm", "CapInh"):
                caps[key] = int(value, 16)
    return caps


@pytest.mark.parametrize("pid", [0, os.getpid(), 1])
def test_capget_matches_proc(pid):
    effective, permitted, inheritable = raw.capget(pid)
    caps = _status_caps("self" if pid == 0 else pid)
    assert effective == caps["CapEff"]
    assert permitted == caps["CapPrm"]
    assert inheritable == caps["CapInh"]


def test_capget_no_such_process():
    with pytest.raises(OSError) as info:
        raw.capget(2 ** 22 + 12345)
    assert info.value.errno == errno.ESRCH
    assert str(info.value.strerror).startswith("capget: ")


def test_setns_bad_fd():
    with pytest.raises(OSError) as info:
        raw.setns(-1, 0)
    assert info.value.errno == errno.EBADF
    assert info.value.strerror == "setns: " + os.strerror(errno.EBADF)


def test_setns_wrong_type():
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            raw.setns(fd, lib.CLONE_NEWUTS)
    finally:
        os.close(fd)
    assert info.value.errno == errno.EINVAL
    assert "setns" in str(info.value)


@pytest.mark.root
def test_unshare_and_setns_in_child():
    # The child leaves our UTS namespace and joins it again; the parent's
    # namespaces never move.
    mine = os.stat("/proc/self/ns/uts").st_ino
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        ok = False
        try:
            back = os.open("/proc/self/ns/uts", os.O_RDONLY)
            raw.unshare(lib.CLONE_NEWUTS)
            moved = os.stat("/proc/self/ns/uts").st_ino != mine
            raw.setns(back, lib.CLONE_NEWUTS)
            ok = moved and os.stat("/proc/self/ns/uts").st_ino == mine
        finally:
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
    os.close(w)
    answer = os.read(r, 1)
    os.waitpid(pid, 0)
    os.close(r)
    assert answer == b"1"
    assert os.stat("/proc/self/ns/uts").st_ino == mine


def test_unshare_invalid_flags():
    with pytest.raises(OSError) as info:
        raw.unshare(0x1)  # a CSIGNAL bit, which unshare(2) rejects
    assert info.value.errno == errno.EINVAL
    assert "unshare" in str(info.value)


def test_libbpf_errors_and_log(caplog, tmp_path):
    caplog.set_level(logging.DEBUG, logger="dockertrace.libbpf")
    with pytest.raises(OSError) as info:
        raw.object_open(tmp_path / "missing.bpf.o")
    assert info.value.errno == errno.ENOENT
    assert info.value.strerror.startswith("bpf_object__open_file: ")
    # libbpf's own message came through the print callback.
    assert any("missing.bpf.o" in r.getMessage() for r in caplog.records
               if r.name == "dockertrace.libbpf")


def test_capture_log_collects_lines(tmp_path):
    with raw.capture_log() as lines:
        with pytest.raises(OSError):
            raw.object_open(tmp_path / "missing.bpf.o")
    assert any("missing.bpf.o" in line for line in lines)


def test_event_headers_compiled_in():
    # Every marked header of bpf/ is in the extension.
    assert ffi.sizeof("struct dt_st_event") == 24
    assert ffi.sizeof("struct dt_st_config") == 8
    assert lib.DT_ST_OPENAT == 1


@pytest.mark.root
def test_event_size_matches_bpf_side():
    # The BPF program writes sizeof(struct dt_st_event) as it compiled it
    # into each event; the cffi side compiled the same header.
    from dockertrace import engine

    sizes = []
    with engine.BpfObject("selftest") as obj:
        cfg = ffi.new("struct dt_st_config *", {"tgid": os.getpid()})
        obj.map("dt_st_cfg").update(0, cfg[0])
        ring = obj.ring_buffer(lambda data: sizes.append(
            (len(data), ffi.from_buffer("struct dt_st_event *", data).size)))
        os.close(os.open("/dev/null", os.O_RDONLY))
        ring.consume()
    assert sizes
    want = ffi.sizeof("struct dt_st_event")
    assert all(s == (want, want) for s in sizes)


@pytest.mark.root
def test_probe_helpers():
    assert raw.probe_prog_type(lib.BPF_PROG_TYPE_TRACEPOINT)
    assert raw.probe_map_type(lib.BPF_MAP_TYPE_RINGBUF)
    assert raw.probe_helper(lib.BPF_PROG_TYPE_TRACEPOINT,
                            lib.BPF_FUNC_get_current_cgroup_id)
    assert raw.num_possible_cpus() >= os.cpu_count()
