"""cgroup layout, cgroup ids to paths, cgroups of processes.

No root needed: layouts come from fixture mountinfo files and cgroup trees
are ordinary directories under tmp_path, whose real inode numbers stand in
for cgroup ids exactly as the kernel's cgroup ids are the inode numbers of
cgroupfs directories.
"""

import os
import subprocess
import sys

import pytest

from dockertrace import FeatureNotSupported, identity
from dockertrace.identity import (CgroupTree, ContainerRef, cgroup_layout,
                                  cgroups)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "cgroup")

ID1 = "0123456789abcdef" * 4
ID2 = "fedcba9876543210" * 4
ID3 = "a" * 64


@pytest.fixture
def proc_root(monkeypatch):
    def use(name):
        root = os.path.join(FIXTURES, name, "proc")
        monkeypatch.setattr(cgroups, "PROC_ROOT", root)
        return root
    return use


def test_layout_hybrid(proc_root):
    proc_root("hybrid")
    layout = cgroup_layout()
    assert layout.mode == "hybrid"
    assert layout.unified.mount_point == "/sys/fs/cgroup/unified"
    assert layout.unified.root == "/"
    assert layout.unified.version == 2
    assert layout.v1_mount("cpu").mount_point == "/sys/fs/cgroup/cpu"
    assert layout.v1_mount("memory").controllers == ("memory",)
    assert (layout.v1_mount("name=systemd").mount_point
            == "/sys/fs/cgroup/systemd")
    assert len(layout.v1_mounts) == 9


def test_layout_hybrid_systemd_comounted(proc_root):
    proc_root("hybrid_systemd")
    layout = cgroup_layout()
    assert layout.mode == "hybrid"
    assert layout.unified.mount_point == "/sys/fs/cgroup/unified"
    cpu = layout.v1_mount("cpuacct")
    assert cpu.mount_point == "/sys/fs/cgroup/cpu,cpuacct"
    assert cpu.controllers == ("cpu", "cpuacct")
    # xattr is a mount option, not a controller
    assert layout.v1_mount("name=systemd").controllers == ("name=systemd",)


def test_layout_v1_only(proc_root):
    proc_root("v1")
    layout = cgroup_layout()
    assert layout.mode == "v1"
    assert layout.unified is None
    assert layout.v1_mount("cpuset").controllers == ("cpuset",)
    assert layout.v1_mount("blkio") is None


def test_layout_v2_only(proc_root):
    proc_root("v2")
    layout = cgroup_layout()
    assert layout.mode == "v2"
    assert layout.unified.mount_point == "/sys/fs/cgroup"
    assert layout.v1_mounts == ()


def test_layout_v2_with_leftover_named_hierarchy():
    # A lone name=systemd v1 mount carries no controller: still v2.
    text = (
        "26 22 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
        "27 26 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup "
        "rw,name=systemd\n")
    layout = identity.parse_mountinfo(text)
    assert layout.mode == "v2"
    assert layout.v1_mount("name=systemd") is not None


def test_layout_in_container_prefers_whole_hierarchy(proc_root):
    proc_root("in_container")
    layout = cgroup_layout()
    assert layout.mode == "v2"
    assert layout.unified.mount_point == "/host/cgroup root"
    assert layout.unified.root == "/"


def test_layout_none_raises(proc_root):
    proc_root("none")
    with pytest.raises(FeatureNotSupported) as exc:
        cgroup_layout()
    assert exc.value.feature == "cgroup filesystem"
    assert "mount -t cgroup2" in str(exc.value)


def test_cgroup_dir_under_narrowed_mount():
    mount = identity.CgroupMount("/sys/fs/cgroup", f"/docker/{ID1}", 2)
    assert (identity.cgroup_dir(f"/docker/{ID1}/init", mount)
            == "/sys/fs/cgroup/init")
    assert identity.cgroup_dir(f"/docker/{ID1}", mount) == "/sys/fs/cgroup"
    with pytest.raises(FeatureNotSupported):
        identity.cgroup_dir(f"/docker/{ID2}", mount)
    # "/docker/<id>x" shares a prefix but is not below the mount's root
    with pytest.raises(FeatureNotSupported):
        identity.cgroup_dir(f"/docker/{ID1}x", mount)


def _mkdirs(root, *paths):
    inos = {}
    for path in paths:
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(full, exist_ok=True)
        inos[path] = os.stat(full).st_ino
    return inos


class FakeClock:
    def __init__(self):
        self.now_s = 1000.0

    def __call__(self):
        return self.now_s


def test_tree_walk_maps_inodes_to_paths(tmp_path):
    inos = _mkdirs(tmp_path, "/system.slice/docker.service",
                   f"/docker/{ID1}", f"/docker/{ID2}/init",
                   f"/system.slice/docker-{ID3}.scope")
    (tmp_path / "cgroup.procs").write_text("")   # files are not cgroups
    tree = CgroupTree(str(tmp_path))

    assert tree.path_of(os.stat(tmp_path).st_ino) == "/"
    for path, ino in inos.items():
        assert tree.path_of(ino) == path
    assert tree.path_of(os.stat(tmp_path / "system.slice").st_ino) == (
        "/system.slice")
    # root, docker, system.slice, docker.service, 3 containers, init
    assert len(tree) == 8

    assert tree.container_of(inos[f"/docker/{ID1}"]) == ContainerRef(
        ID1, "docker", f"/docker/{ID1}")
    assert tree.container_of(inos[f"/docker/{ID2}/init"]).container_id == ID2
    assert tree.container_of(
        inos[f"/system.slice/docker-{ID3}.scope"]).container_id == ID3
    assert tree.container_of(inos["/system.slice/docker.service"]) is None


def test_tree_paths_include_mount_root(tmp_path):
    # A mount that shows only part of the hierarchy (inside a container)
    # still reports paths as /proc/<pid>/cgroup writes them.
    inos = _mkdirs(tmp_path, "/init")
    tree = CgroupTree(str(tmp_path), mount_root=f"/docker/{ID1}")
    assert tree.path_of(inos["/init"]) == f"/docker/{ID1}/init"
    assert tree.container_of(inos["/init"]).container_id == ID1


def test_tree_refreshes_on_miss_rate_limited(tmp_path):
    clock = FakeClock()
    _mkdirs(tmp_path, f"/docker/{ID1}")
    tree = CgroupTree(str(tmp_path), refresh_interval_s=1.0, clock=clock)
    assert tree.path_of(os.stat(tmp_path).st_ino) == "/"   # first walk

    # A container started after the walk, seen again too soon: no walk.
    new_ino = _mkdirs(tmp_path, f"/docker/{ID2}")[f"/docker/{ID2}"]
    clock.now_s += 0.5
    assert tree.path_of(new_ino) is None

    # Once the interval has passed, the miss walks the tree again.
    clock.now_s += 0.6
    assert tree.path_of(new_ino) == f"/docker/{ID2}"


def test_tree_keeps_removed_cgroups(tmp_path):
    inos = _mkdirs(tmp_path, f"/docker/{ID1}", f"/docker/{ID2}")
    tree = CgroupTree(str(tmp_path))
    assert tree.refresh() == 4
    os.rmdir(tmp_path / "docker" / ID1)
    assert tree.refresh() == 3
    # Events from a container often arrive after it is gone.
    assert tree.path_of(inos[f"/docker/{ID1}"]) == f"/docker/{ID1}"


def test_tree_is_bounded(tmp_path):
    _mkdirs(tmp_path, *(f"/d{i}" for i in range(10)))
    tree = CgroupTree(str(tmp_path), max_entries=4)
    assert tree.refresh() == 4
    assert len(tree) == 4
    for i in range(3):
        tree.note(10**12 + i, f"/noted{i}")
    assert len(tree) == 4
    assert tree.path_of(10**12 + 2) == "/noted2"


def test_tree_note_avoids_walk(tmp_path):
    clock = FakeClock()
    tree = CgroupTree(str(tmp_path), refresh_interval_s=60, clock=clock)
    tree.refresh()
    tree.note(123456789, f"/docker/{ID1}")
    assert tree.container_of(123456789).container_id == ID1


def test_tree_defaults_to_unified_mount(proc_root):
    proc_root("v1")
    with pytest.raises(FeatureNotSupported) as exc:
        CgroupTree()
    assert exc.value.feature == "cgroup v2 hierarchy"
    assert "mount -t cgroup2" in str(exc.value)


@pytest.fixture
def fake_host(tmp_path, monkeypatch):
    """A proc tree whose mountinfo puts cgroup2 on a tmp directory."""
    cg = tmp_path / "cg"
    cg.mkdir()
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text(
        f"41 31 0:38 / {cg} rw,relatime - cgroup2 cgroup2 rw\n")
    monkeypatch.setattr(cgroups, "PROC_ROOT", str(proc))

    def add_pid(pid, v2_path, v1_path=None):
        (proc / str(pid)).mkdir()
        lines = []
        if v1_path is not None:
            lines += [f"4:memory:{v1_path}", f"1:cpu:{v1_path}"]
        lines.append(f"0::{v2_path}")
        (proc / str(pid) / "cgroup").write_text("\n".join(lines) + "\n")
    return cg, add_pid


def test_cgroup_id_of_pid(fake_host):
    cg, add_pid = fake_host
    inos = _mkdirs(cg, f"/docker/{ID1}")
    add_pid(4242, f"/docker/{ID1}", v1_path=f"/docker/{ID1}")
    assert identity.cgroup_path_of_pid(4242) == f"/docker/{ID1}"
    assert identity.cgroup_id_of_pid(4242) == inos[f"/docker/{ID1}"]
    assert identity.container_of_pid(4242) == ContainerRef(
        ID1, "docker", f"/docker/{ID1}")


def test_container_of_pid_falls_back_to_v1(fake_host):
    # Started before cgroup2 was mounted: the v2 path is the root.
    _cg, add_pid = fake_host
    add_pid(4243, "/", v1_path=f"/docker/{ID2}")
    assert identity.container_of_pid(4243).container_id == ID2


def test_container_of_pid_outside_containers(fake_host):
    cg, add_pid = fake_host
    inos = _mkdirs(cg, "/init.scope")
    add_pid(1, "/init.scope", v1_path="/")
    assert identity.container_of_pid(1) is None
    assert identity.cgroup_id_of_pid(1) == inos["/init.scope"]


def test_missing_pid_raises_process_lookup(fake_host):
    with pytest.raises(ProcessLookupError):
        identity.cgroup_id_of_pid(999999)
    with pytest.raises(ProcessLookupError):
        identity.container_of_pid(999999)


def test_import_does_not_load_docker_py():
    # Tracers import identity before attaching BPF; docker-py (with
    # requests and urllib3) must wait until the Engine API is needed.
    code = ("import sys, dockertrace.identity; "
            "print(sorted(m for m in ('docker', 'requests', 'urllib3') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "[]"
