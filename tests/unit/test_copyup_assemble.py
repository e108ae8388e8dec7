"""Copy-up assembly on records recorded from a real container.

fixtures/copyup/docker_tp.json holds the records the BPF program sent
(tracepoint mechanism) while a dockertrace-bigfiles container ran the
script stored with them. The layers are rebuilt here in a temporary
directory with the image's sizes (sparse files), so the sizes the
tracer reads from the layers are known.
"""

import json
import os
import pathlib

import pytest

from dockertrace.copyup.assemble import (Context, CopyUp, assemble,
                                         percentile, summarize,
                                         target_path)
from dockertrace.copyup.events import Mech, Op, PathSource, RawCopyUp
from dockertrace.copyup.layers import OverlayMount

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "copyup"
CID = "deee5ea9a1eff4bdff6a"

SIZES = {"data/f4k": 4096, "data/f1m": 1 << 20, "data/f64m": 64 << 20,
         "data/SHA256SUMS": 211, "bin/busybox": 1982256}


def _load():
    with open(FIXTURES / "docker_tp.json") as f:
        d = json.load(f)
    return d, [RawCopyUp.from_dict(r) for r in d["records"]]


@pytest.fixture
def image(tmp_path):
    """The image's layer and Docker's init layer, as two lower dirs."""
    img = tmp_path / "image"
    for rel, size in SIZES.items():
        p = img / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            f.truncate(size)
    for name in ("ls", "cat", "cp", "dd"):
        os.symlink("busybox", img / "bin" / name)
    (img / "tmp").mkdir()
    (img / "etc").mkdir()
    init = tmp_path / "init"
    (init / "etc").mkdir(parents=True)
    (init / "etc" / "hostname").write_text("")
    return OverlayMount(
        mount_id=1, mount_point="/merged", dev=(0, 52),
        lower_dirs=(str(init), str(img)), upper_dir=str(tmp_path / "up"),
        work_dir=str(tmp_path / "work"), options=(("rw", ""),))


def _ctx(image, work_key, metacopy=None):
    mount = image
    if metacopy:
        mount = OverlayMount(**{**image.__dict__, "options": (
            ("rw", ""), ("metacopy", metacopy))})

    def mount_for(raw):
        if [raw.wd_dev, raw.wd_ino] == list(work_key):
            return mount
        return None

    def container_for(raw):
        return ("c" * 64, "web") if raw.cgroup.startswith(CID) else None

    return Context(mechanism="tracepoint", mount_for=mount_for,
                   container_for=container_for, machine="x86_64")


def test_recorded_script_gives_these_copyups(image):
    d, raws = _load()
    evs = [assemble(r, _ctx(image, d["work_key"])) for r in raws]
    got = [(e.trigger, e.syscall, e.path, e.file_type, e.size_bytes,
            e.dirs_copied) for e in evs if e is not None]
    assert got == [
        ("open-write", "openat", "/data/f4k", "file", 4096, 1),
        ("chmod", "chmod", "/data/f1m", "file", 1 << 20, 0),
        # O_TRUNC: overlay copies no data.
        ("open-trunc", "openat", "/data/f64m", "file", 0, 0),
        # `cd /bin; touch ls`: relative to the cwd, through the symlink.
        ("utimes", "utimensat", "/bin/busybox", "file", 1982256, 1),
        # A new file in an image directory copies the directory only.
        ("open-create", "openat", "/tmp", "dir", 0, 0),
        ("chmod", "chmod", "/etc", "dir", 0, 0),
        ("chown", "chown", "/data/SHA256SUMS", "file", 211, 0),
        # link(2) and rename(2) do not follow the symlink.
        ("link", "link", "/bin/cat", "symlink", 0, 0),
        ("rename", "rename", "/bin/cp", "symlink", 0, 0),
    ]
    assert all(e.container_name == "web" for e in evs if e)
    assert all(e.mechanism == "tracepoint" for e in evs if e)


def test_files_in_a_container_dir_named_work_are_no_copyups(image):
    d, raws = _load()
    ctx = _ctx(image, d["work_key"])
    dropped = [r for r in raws if assemble(r, ctx) is None]
    # `mkdir /work/work` and `echo x > /work/work/y` in the container.
    assert [(r.op, r.arg or r.walked_path) for r in dropped] == [
        (Op.CREATE, "/work/work"), (Op.OPEN, "/work/work/y")]


def test_latency_is_temp_inode_to_syscall_exit(image):
    d, raws = _load()
    ev = assemble(raws[0], _ctx(image, d["work_key"]))
    assert ev.latency_ns == raws[0].ts_ns - raws[0].copy_start_ns
    assert ev.syscall_ns == raws[0].ts_ns - raws[0].start_ns
    assert 0 < ev.latency_ns <= ev.syscall_ns


def test_path_exact_only_when_walked_from_the_file(image):
    d, raws = _load()
    evs = [assemble(r, _ctx(image, d["work_key"])) for r in raws[:2]]
    assert evs[0].path_exact is True      # openat: the fd's dentry
    assert evs[1].path_exact is False     # chmod: rebuilt from the arg


def test_metacopy_on_makes_chmod_metadata_only(image):
    d, raws = _load()
    ev = assemble(raws[1], _ctx(image, d["work_key"], metacopy="on"))
    assert (ev.trigger, ev.copy, ev.size_bytes) == ("chmod", "metadata", 0)
    ev = assemble(raws[0], _ctx(image, d["work_key"], metacopy="on"))
    assert (ev.copy, ev.size_bytes) == ("data", 4096)


def _func(**kw):
    base = dict(ts_ns=2_000, start_ns=1_000, copy_start_ns=1_200,
                copy_ns=500, cgroup_id=7, size=123, wd_ino=0, wd_dev=0,
                flags=0o1, ret=3, pid=10, tgid=10, mntns=99, nr=257,
                mode=0o100644, op=Op.OPEN, mech=Mech.FUNC, ndirs=1,
                nother=1, path_src=PathSource.DENTRY,
                names=("f", "data"), depth_hit=False, arg="", comm="sh")
    base.update(kw)
    return RawCopyUp(**base)


def test_function_mechanism_takes_size_and_latency_from_the_kernel():
    # Synthesised: this project's machines cannot attach fentry.
    ev = assemble(_func(), Context(mechanism="fentry", machine="x86_64"))
    assert (ev.path, ev.size_bytes, ev.latency_ns, ev.syscall_ns) == (
        "/data/f", 123, 500, 1_000)
    assert ev.dirs_copied == 1 and ev.path_exact
    out = assemble(_func(start_ns=0, nr=0xFFFFFFFF, op=Op.OTHER),
                   Context(mechanism="fentry"))
    assert (out.trigger, out.syscall, out.syscall_ns) == ("other", "",
                                                          None)


def test_depth_limit_marks_path_inexact():
    ev = assemble(_func(depth_hit=True), Context(mechanism="fentry"))
    assert ev.path_exact is False


@pytest.mark.parametrize("src,names,arg,want", [
    (PathSource.FILE, ("b", "a"), "", "/a/b"),
    (PathSource.DENTRY, (), "", "/"),
    (PathSource.NONE, (), "/x/../y/./z", "/y/z"),
    (PathSource.BASE, ("bin",), "../etc/passwd", "/etc/passwd"),
    (PathSource.BASE, (), "ls", "/ls"),
    (PathSource.NONE, (), "", ""),
])
def test_target_path(src, names, arg, want):
    assert target_path(_func(path_src=src, names=names, arg=arg)) == want


def test_percentile_nearest_rank():
    assert percentile([], 50) == 0
    assert percentile([5], 99) == 5
    vals = list(range(1, 101))
    assert percentile(vals, 50) == 50
    assert percentile(vals, 99) == 99
    assert percentile(vals, 100) == 100


def _ev(cid, path, size, lat):
    return CopyUp(
        ts_ns=0, pid=1, tid=1, comm="sh", container_id=cid,
        container_name=cid and f"n-{cid}", cgroup_id=1, path=path,
        file_type="file", size_bytes=size, latency_ns=lat,
        syscall_ns=None, copy="data", trigger="open-write",
        syscall="openat", dirs_copied=0, files_copied=1,
        mechanism="tracepoint", path_exact=True)


def test_summary_per_container_with_top_files():
    evs = [_ev("a", "/big", 1000, 10), _ev("a", "/slow", 10, 900),
           _ev("a", "/small", 1, 1), _ev("b", "/x", 5, 5),
           _ev(None, "/h", None, 3)]
    s = summarize(evs, top=2, mechanism="tracepoint", dropped_events=4)
    assert [c.container_id for c in s.containers] == ["a", "b", None]
    a = s.container("n-a")
    assert (a.count, a.bytes, a.total_latency_ns) == (3, 1011, 911)
    assert (a.p50_latency_ns, a.p99_latency_ns) == (10, 900)
    assert [f.path for f in a.top_by_bytes] == ["/big", "/slow"]
    assert [f.path for f in a.top_by_time] == ["/slow", "/big"]
    assert s.count == 5 and s.dropped_events == 4
    assert "temporary inode" in s.limits
    assert json.loads(json.dumps(s.to_dict()))["containers"][0][
        "top_by_bytes"][0]["path"] == "/big"


def test_event_round_trips_through_dict(image):
    d, raws = _load()
    ev = assemble(raws[0], _ctx(image, d["work_key"]))
    assert CopyUp.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev
    assert RawCopyUp.from_dict(raws[0].to_dict()) == raws[0]
