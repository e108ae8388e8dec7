"""A cgroup's CPU, memory and pids files, on cgroup v1, v2 and hybrid hosts.

Which hierarchy serves a controller is found, not assumed: a v1 mount
carrying it wins (that is where the kernel enforces it on a hybrid host),
else the unified mount if the controller is enabled there.  Paths inside a
hierarchy come from ``/proc/<pid>/cgroup``, or, for a container that runs
nothing, from the cgroup drivers' naming.

Tests point :data:`FS_ROOT` at a fixture tree (and
``dockertrace.identity.cgroups.PROC_ROOT`` at its ``proc``): mount points
from mountinfo are looked up below it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional

from dockertrace.errors import FeatureNotSupported
from dockertrace.identity import cgroups

#: Prefix of every mount point read from mountinfo; tests use a fixture.
FS_ROOT = "/"

#: What cgroup v1 writes for "no memory limit": LONG_MAX rounded down to
#: a page.  Anything this large is no limit at all.
_V1_UNLIMITED = 1 << 62


@dataclass(frozen=True)
class ControllerDir:
    """Where one controller's files for one cgroup are."""

    controller: str
    #: 1 or 2.
    version: int
    #: The cgroup's path inside the hierarchy, e.g. ``/docker/<id>``.
    path: str
    #: The directory, with :data:`FS_ROOT` applied.
    directory: str
    #: The directory of the hierarchy's mount point, likewise.
    top: str

    def read(self, name: str) -> Optional[str]:
        """The stripped text of a file in the directory, or None if the
        kernel does not have it (older kernels lack some)."""
        try:
            with open(os.path.join(self.directory, name),
                      encoding="ascii") as f:
                return f.read().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def parent(self) -> Optional["ControllerDir"]:
        """The enclosing cgroup, or None at the top of what is mounted."""
        if os.path.normpath(self.directory) == os.path.normpath(self.top):
            return None
        return ControllerDir(
            self.controller, self.version,
            os.path.dirname(self.path.rstrip("/")) or "/",
            os.path.dirname(self.directory.rstrip("/")), self.top)


def _under_root(path: str) -> str:
    if FS_ROOT in ("/", ""):
        return path
    return os.path.join(FS_ROOT, path.lstrip("/"))


def _v2_controllers(layout: cgroups.CgroupLayout) -> frozenset:
    if layout.unified is None:
        return frozenset()
    path = os.path.join(_under_root(layout.unified.mount_point),
                        "cgroup.controllers")
    try:
        with open(path, encoding="ascii") as f:
            return frozenset(f.read().split())
    except OSError:
        return frozenset()


def hierarchy(controller: str,
              layout: Optional[cgroups.CgroupLayout] = None
              ) -> Optional[cgroups.CgroupMount]:
    """The mount that enforces ``controller`` (``"cpu"``, ``"memory"``,
    ``"pids"``, ``"cpuset"``, ``"cpuacct"``), or None."""
    layout = layout or cgroups.cgroup_layout()
    mount = layout.v1_mount(controller)
    if mount is not None:
        return mount
    if controller == "cpuacct":
        # cgroup v2 has no cpuacct: cpu.stat's usage_usec is always there.
        controller = "cpu"
        if layout.unified is not None:
            return layout.unified
    if controller in _v2_controllers(layout):
        return layout.unified
    return None


def cpu_hierarchy(layout: Optional[cgroups.CgroupLayout] = None
                  ) -> cgroups.CgroupMount:
    """The hierarchy of the CPU controller: its directories' inode numbers
    are the cgroup ids the throttling tracer reports."""
    mount = hierarchy("cpu", layout)
    if mount is None:
        raise FeatureNotSupported(
            "cgroup cpu controller",
            detail="no cgroup v1 cpu mount and no cpu in the v2 root's "
                   "cgroup.controllers",
            fix="enable it: echo +cpu > /sys/fs/cgroup/cgroup.subtree_"
                "control (v2), or mount the v1 cpu controller")
    return mount


def _proc_paths(pid: int) -> Dict[str, str]:
    """controller (or ``""`` for v2) -> path, from /proc/<pid>/cgroup."""
    out = {}
    for hier, ctrls, path in cgroups._proc_cgroup_lines(pid):
        if hier == "0":
            out[""] = path
            continue
        for c in ctrls.split(","):
            if c:
                out[c] = path
    return out


def _guess_paths(container_id: str, cgroup_parent: str):
    """Where the cgroupfs and systemd drivers put a container."""
    if cgroup_parent:
        if cgroup_parent.endswith(".slice"):
            yield f"/{cgroup_parent}/docker-{container_id}.scope"
        yield "/" + "/".join((cgroup_parent.strip("/"), container_id))
    yield f"/docker/{container_id}"
    yield f"/system.slice/docker-{container_id}.scope"


def controller_dir(controller: str, *, pid: Optional[int] = None,
                   path: Optional[str] = None,
                   container_id: Optional[str] = None,
                   cgroup_parent: str = "",
                   layout: Optional[cgroups.CgroupLayout] = None
                   ) -> Optional[ControllerDir]:
    """The directory of ``controller`` for a cgroup named by a process in
    it (``pid``), its path in the hierarchy (``path``), or a container id
    (for a container that runs nothing).  None if the controller is not
    mounted or the cgroup cannot be found."""
    layout = layout or cgroups.cgroup_layout()
    mount = hierarchy(controller, layout)
    if mount is None:
        return None
    version = mount.version
    candidates = []
    if path is not None:
        candidates.append(path)
    if pid is not None:
        try:
            paths = _proc_paths(pid)
        except ProcessLookupError:
            paths = {}
        key = "" if version == 2 else controller
        if key in paths:
            candidates.append(paths[key])
    if container_id:
        candidates.extend(_guess_paths(container_id, cgroup_parent))
    for cand in candidates:
        try:
            directory = cgroups.cgroup_dir(cand, mount)
        except FeatureNotSupported:
            continue
        directory = _under_root(directory)
        if os.path.isdir(directory):
            return ControllerDir(controller, version, cand, directory,
                                 _under_root(mount.mount_point))
    return None


def _kv(text: Optional[str]) -> Dict[str, int]:
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


@dataclass(frozen=True)
class CpuStat:
    """What the kernel counts for a cgroup's CPU bandwidth (cpu.stat),
    in nanoseconds whatever the cgroup version writes."""

    nr_periods: int
    nr_throttled: int
    throttled_ns: int
    #: CPU time used (v2 usage_usec, v1 cpuacct.usage); None if unknown.
    usage_ns: Optional[int] = None
    nr_bursts: int = 0
    burst_ns: int = 0


def read_cpu_stat(cpu: ControllerDir,
                  cpuacct: Optional[ControllerDir] = None) -> CpuStat:
    """cpu.stat of a cgroup (and cpuacct.usage on v1)."""
    kv = _kv(cpu.read("cpu.stat"))
    if cpu.version == 2:
        return CpuStat(
            nr_periods=kv.get("nr_periods", 0),
            nr_throttled=kv.get("nr_throttled", 0),
            throttled_ns=kv.get("throttled_usec", 0) * 1000,
            usage_ns=(kv["usage_usec"] * 1000 if "usage_usec" in kv
                      else None),
            nr_bursts=kv.get("nr_bursts", 0),
            burst_ns=kv.get("burst_usec", 0) * 1000)
    usage = None
    if cpuacct is not None:
        text = cpuacct.read("cpuacct.usage")
        if text and text.isdigit():
            usage = int(text)
    return CpuStat(
        nr_periods=kv.get("nr_periods", 0),
        nr_throttled=kv.get("nr_throttled", 0),
        throttled_ns=kv.get("throttled_time", 0),
        usage_ns=usage,
        nr_bursts=kv.get("nr_bursts", 0),
        burst_ns=kv.get("burst_time", 0))


@dataclass(frozen=True)
class Bandwidth:
    """A cgroup's CPU bandwidth limit as its files say."""

    #: None when there is no limit.
    quota_ns: Optional[int]
    period_ns: int
    burst_ns: int = 0

    @property
    def cpus(self) -> Optional[float]:
        """The limit in CPUs, as ``docker run --cpus`` counts them."""
        if self.quota_ns is None or not self.period_ns:
            return None
        return self.quota_ns / self.period_ns


def read_bandwidth(cpu: ControllerDir) -> Bandwidth:
    """The CPU bandwidth limit of one cgroup (not its ancestors)."""
    if cpu.version == 2:
        text = cpu.read("cpu.max") or "max 100000"
        quota, _, period = text.partition(" ")
        burst = cpu.read("cpu.max.burst")
        return Bandwidth(
            quota_ns=None if quota == "max" else int(quota) * 1000,
            period_ns=int(period or 100000) * 1000,
            burst_ns=int(burst) * 1000 if burst and burst.isdigit()
            else 0)
    quota = int(cpu.read("cpu.cfs_quota_us") or -1)
    period = int(cpu.read("cpu.cfs_period_us") or 100000)
    burst = cpu.read("cpu.cfs_burst_us")
    return Bandwidth(
        quota_ns=None if quota < 0 else quota * 1000,
        period_ns=period * 1000,
        burst_ns=int(burst) * 1000 if burst and burst.isdigit() else 0)


def parse_limit(text: Optional[str]) -> Optional[int]:
    """A limit file's value in its unit, None for "max", -1 or v1's
    "unlimited" sentinel (and for a missing file)."""
    if text is None or text in ("max", "-1", ""):
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    if value < 0 or value >= _V1_UNLIMITED:
        return None
    return value
