"""Reading CPU, memory and pids limits and cpu.stat on cgroup v1, v2 and
hybrid fixture trees (tests/unit/fixtures/throttle/README.md)."""

import os

import pytest

from dockertrace.identity import cgroups
from dockertrace.throttle import cgroupfs
from dockertrace.throttle.limits import (Declared, compare, read_enforced,
                                         shares_to_weight)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "throttle")
CID = "c0ffee" + "0123456789abcdef" * 3 + "0123456789"
PID = 4242


@pytest.fixture
def tree(monkeypatch):
    def use(name):
        root = os.path.join(FIXTURES, name)
        monkeypatch.setattr(cgroups, "PROC_ROOT", os.path.join(root, "proc"))
        monkeypatch.setattr(cgroupfs, "FS_ROOT", root)
        return cgroups.cgroup_layout(refresh=True)
    yield use
    cgroups._layouts.clear()


@pytest.mark.parametrize("name, version, mount, path", [
    ("v1", 1, "/sys/fs/cgroup/cpu,cpuacct", f"/docker/{CID}"),
    ("v2", 2, "/sys/fs/cgroup", f"/system.slice/docker-{CID}.scope"),
    ("hybrid", 1, "/sys/fs/cgroup/cpu", f"/docker/{CID}"),
])
def test_cpu_controller_found_by_pid_and_by_id(tree, name, version, mount,
                                               path):
    layout = tree(name)
    assert cgroupfs.cpu_hierarchy(layout).mount_point == mount
    by_pid = cgroupfs.controller_dir("cpu", pid=PID)
    by_id = cgroupfs.controller_dir("cpu", container_id=CID)
    for d in (by_pid, by_id):
        assert d.version == version
        assert d.path == path
        assert d.directory.endswith(mount + path)


def test_hybrid_uses_v1_even_with_cgroup2_mounted(tree):
    layout = tree("hybrid")
    assert layout.mode == "hybrid"
    # The unified tree has no controllers here: cpu is enforced in v1.
    assert cgroupfs.hierarchy("cpu", layout).version == 1
    assert cgroupfs.hierarchy("cpuacct", layout).mount_point == \
        "/sys/fs/cgroup/cpuacct"


def test_missing_cgroup_is_none(tree):
    tree("v1")
    assert cgroupfs.controller_dir("cpu", container_id="f" * 64) is None
    assert cgroupfs.controller_dir("cpu", pid=999999) is None


@pytest.mark.parametrize("name, expected", [
    ("v1", cgroupfs.CpuStat(120, 30, 2_500_000_000, 6_000_000_000)),
    ("v2", cgroupfs.CpuStat(80, 12, 900_000_000, 7_500_000_000, 3,
                            45_000_000)),
    ("hybrid", cgroupfs.CpuStat(21, 20, 1_590_509_042, 420_000_000, 2,
                                7_000_000)),
])
def test_cpu_stat_in_nanoseconds(tree, name, expected):
    tree(name)
    cpu = cgroupfs.controller_dir("cpu", pid=PID)
    acct = cgroupfs.controller_dir("cpuacct", pid=PID)
    assert cgroupfs.read_cpu_stat(cpu, acct) == expected


@pytest.mark.parametrize("name, quota, burst, cpus", [
    ("v1", 50_000_000, 0, 0.5),
    ("v2", 150_000_000, 20_000_000, 1.5),
    ("hybrid", 20_000_000, 5_000_000, 0.2),
])
def test_bandwidth(tree, name, quota, burst, cpus):
    tree(name)
    bw = cgroupfs.read_bandwidth(cgroupfs.controller_dir("cpu", pid=PID))
    assert (bw.quota_ns, bw.period_ns, bw.burst_ns) == \
        (quota, 100_000_000, burst)
    assert bw.cpus == pytest.approx(cpus)
    parent = cgroupfs.controller_dir("cpu", pid=PID).parent()
    assert cgroupfs.read_bandwidth(parent).quota_ns is None


def test_parse_limit_sentinels():
    assert cgroupfs.parse_limit("max") is None
    assert cgroupfs.parse_limit("-1") is None
    assert cgroupfs.parse_limit("9223372036854771712") is None
    assert cgroupfs.parse_limit(None) is None
    assert cgroupfs.parse_limit("4096") == 4096


def _rows(enf, mode, path, hc, v2_cpu):
    return {r.name: r for r in compare(enf, Declared.from_host_config(hc),
                                       path, v2_cpu)}


def test_v1_limits_match_declaration(tree):
    tree("v1")
    enf, mode, path = read_enforced(pid=PID, container_id=CID)
    assert mode == "v1" and path == f"/docker/{CID}"
    hc = {"NanoCpus": 500_000_000, "CpuShares": 512, "CpusetCpus": "1",
          "Memory": 256 << 20, "MemorySwap": 512 << 20, "PidsLimit": 100}
    rows = _rows(enf, mode, path, hc, False)
    assert rows["cpus"].effective == pytest.approx(0.5)
    assert rows["cpu_shares"].effective == 512
    assert rows["cpuset"].effective == "1"
    assert rows["memory_bytes"].effective == 256 << 20
    assert rows["memory_swap_bytes"].effective == 512 << 20
    assert rows["memory_reservation_bytes"].effective is None
    assert rows["pids"].effective == 100
    assert all(r.matches for r in rows.values()), rows


def test_v2_limit_from_parent_and_weight(tree):
    tree("v2")
    enf, mode, path = read_enforced(pid=PID)
    assert mode == "v2"
    assert enf.sources["cpus"] == "cpu.max"
    hc = {"CpuQuota": 150000, "CpuPeriod": 100000, "CpuShares": 1000,
          "Memory": 512 << 20, "MemorySwap": 512 << 20,
          "MemoryReservation": 128 << 20}
    rows = _rows(enf, mode, path, hc, True)
    assert rows["cpus"].effective == pytest.approx(1.5)
    assert enf.cpu_burst_ns == 20_000_000
    # runc writes cpu.weight from the declared shares.
    assert shares_to_weight(1000) == 39
    assert rows["cpu_shares"].matches
    assert rows["memory_swap_bytes"].effective == 512 << 20
    assert rows["memory_reservation_bytes"].effective == 128 << 20
    # Nothing declared, but system.slice caps the container at 200.
    pids = rows["pids"]
    assert pids.effective == 200 and pids.declared is None
    assert not pids.matches and "system.slice" in pids.note


def test_hybrid_mismatch_is_reported(tree):
    tree("hybrid")
    enf, mode, path = read_enforced(pid=PID, container_id=CID)
    assert mode == "hybrid"
    hc = {"NanoCpus": 200_000_000, "Memory": 64 << 20, "PidsLimit": 50}
    rows = _rows(enf, mode, path, hc, False)
    assert rows["cpus"].matches and rows["memory_bytes"].matches
    # Docker's default swap: as much again as the memory limit.
    assert rows["memory_swap_bytes"].declared == 128 << 20
    assert rows["memory_swap_bytes"].matches
    assert rows["pids"].effective == 64 and not rows["pids"].matches


def test_declared_units():
    d = Declared.from_host_config({"NanoCpus": 250_000_000})
    assert d.cpus == 0.25 and d.cpu_period_ns == 100_000_000
    d = Declared.from_host_config({"CpuQuota": 50000, "CpuPeriod": 200000,
                                   "MemorySwap": -1, "PidsLimit": -1})
    assert d.cpus == 0.25 and d.cpu_period_ns == 200_000_000
    assert d.memory_swap_bytes is None and d.pids is None
    assert Declared.from_host_config({}).cpus is None
