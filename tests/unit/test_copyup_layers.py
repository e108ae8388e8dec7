"""Overlay mounts from mountinfo text, options and defaults, and finding a
container path in the layers (symlinks, whiteouts)."""

import io
import os

import pytest

from dockertrace.copyup import layers as L
from dockertrace.copyup.layers import find_in_layers, parse_mountinfo

D = "/var/lib/docker/overlay2"
# A line as Docker 20.10 on Linux 6.18 leaves it (the container's rootfs
# seen from the host), one from inside the container, and a non-overlay.
MOUNTINFO = f"""\
65 47 0:52 / {D}/e1c/merged rw,relatime shared:3 - overlay overlay \
rw,lowerdir={D}/l/6O6C:{D}/l/VGRL,upperdir={D}/e1c/diff,workdir={D}/e1c/work
118 67 0:52 / / rw,relatime master:3 - overlay overlay rw,lowerdir=\
{D}/l/6O6C:{D}/l/VGRL,upperdir={D}/e1c/diff,workdir={D}/e1c/work,metacopy=on
24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
70 47 0:60 / /mnt/with\\040space rw - overlay overlay rw,lowerdir=/a\\134:b\
:/c,lowerdir+=/d,upperdir=/u\\054v,workdir=/w,volatile
"""


def test_parse_docker_mounts():
    ms = list(parse_mountinfo(MOUNTINFO))
    assert [m.mount_id for m in ms] == [65, 118, 70]
    m = ms[0]
    assert m.mount_point == f"{D}/e1c/merged"
    assert m.dev == (0, 52)
    assert m.lower_dirs == (f"{D}/l/6O6C", f"{D}/l/VGRL")
    assert m.upper_dir == f"{D}/e1c/diff"
    assert m.work_dir == f"{D}/e1c/work"
    assert [r for r, _ in m.layers()] == ["upper", "lower", "lower"]
    assert ms[1].mount_point == "/"
    assert ms[1].option_map["metacopy"] == "on"


def test_parse_escapes_and_new_lowerdir_syntax():
    m = list(parse_mountinfo(MOUNTINFO))[2]
    assert m.mount_point == "/mnt/with space"
    assert m.lower_dirs == ("/a:b", "/c", "/d")
    assert m.upper_dir == "/u,v"
    assert m.option("volatile") == "on"


@pytest.fixture
def params(tmp_path):
    for name, value in (("metacopy", "N"), ("redirect_dir", "Y"),
                        ("index", "N"), ("xino_auto", "Y")):
        (tmp_path / name).write_text(value + "\n")
    return str(tmp_path)


def test_options_fall_back_to_module_defaults(params):
    m = list(parse_mountinfo(MOUNTINFO))[0]
    assert m.option("metacopy", params) == "off"
    assert m.option("redirect_dir", params) == "on"
    assert m.option("index", params) == "off"
    assert m.option("xino", params) == "auto"
    assert m.option("volatile", params) == "off"
    assert L.module_default("metacopy", "/nonexistent") == "unknown"


@pytest.fixture
def tree(tmp_path):
    """Upper-most lower first: top hides data/old with a whiteout and
    makes bin/sh a symlink into the bottom layer's busybox."""
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    (bottom / "bin").mkdir(parents=True)
    (bottom / "bin" / "busybox").write_bytes(b"x" * 10)
    (bottom / "data").mkdir()
    (bottom / "data" / "old").write_bytes(b"y" * 3)
    (bottom / "data" / "keep").write_bytes(b"z" * 7)
    (top / "bin").mkdir(parents=True)
    os.symlink("busybox", top / "bin" / "sh")
    os.symlink("/bin", top / "usrbin")
    (top / "data").mkdir()
    if os.geteuid() == 0:
        os.mknod(top / "data" / "old", 0o20000 | 0o600, os.makedev(0, 0))
    return [str(top), str(bottom)]


def test_find_in_layers(tree):
    idx, host, st, path = find_in_layers(tree, "/data/keep")
    assert (idx, st.st_size, path) == (1, 7, "/data/keep")
    assert find_in_layers(tree, "/nope") is None
    # Symlinks are followed across layers, relative and absolute.
    assert find_in_layers(tree, "/bin/sh")[3] == "/bin/busybox"
    assert find_in_layers(tree, "/usrbin/sh")[2].st_size == 10
    assert find_in_layers(tree, "/bin/sh", follow=False)[3] == "/bin/sh"
    assert find_in_layers(tree, "/data/../bin/busybox")[0] == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a whiteout")
def test_whiteout_hides_lower_file(tree):
    assert find_in_layers(tree, "/data/old") is None


def test_dir_size(tree):
    assert L.dir_size(tree[1]) == (20, 3)


def test_kernel_dev_encoding():
    assert L.kernel_dev(os.makedev(8, 1)) == (8 << 20) | 1
    assert L.kernel_dev(os.makedev(259, 300)) == (259 << 20) | 300


def test_index_reads_the_mount_tables(tmp_path, monkeypatch):
    work = tmp_path / "w"
    (work / "work").mkdir(parents=True)
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(
        f"9 1 0:9 / /m rw - overlay overlay rw,lowerdir=/l,"
        f"upperdir=/u,workdir={work}\n")
    monkeypatch.setattr(L, "PROC_ROOT", str(proc))
    st = os.stat(work / "work")
    idx = L.OverlayIndex()
    m = idx.lookup(L.kernel_dev(st.st_dev), st.st_ino)
    assert m is not None and m.mount_point == "/m"
    assert idx.lookup(1, 2) is None


def test_render_layers_fits_in_columns():
    from dockertrace.cli.copyup import human_bytes, human_ns
    assert [human_bytes(n) for n in (None, 0, 211, 4096, 64 << 20)] == [
        "-", "0", "211", "4.0K", "64.0M"]
    assert [human_ns(n) for n in (None, 836_672, 2_600_000,
                                  1_500_000_000)] == [
        "-", "837us", "2.6ms", "1.50s"]
    out = io.StringIO()
    from dockertrace.cli.copyup import render_summary
    from dockertrace.copyup.assemble import summarize
    render_summary(summarize([]), out)
    assert out.getvalue().startswith("no copy-ups seen")
