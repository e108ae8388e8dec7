"""A container's CPU, memory and pids limits: what its cgroups enforce
next to what was declared through the Engine API.

The kernel's view can differ from the declaration: a parent cgroup may be
tighter, memory limits are rounded to pages, ``docker update`` may have
failed half-way, or someone wrote the files by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, List, Mapping, Optional, Tuple

from dockertrace.throttle import cgroupfs

_PAGE = 4096


@dataclass(frozen=True)
class LimitRow:
    """One limit, enforced and declared.  None means "no limit"."""

    #: ``cpus``, ``cpu_shares``, ``cpuset``, ``memory_bytes``,
    #: ``memory_swap_bytes``, ``memory_reservation_bytes``, ``pids``.
    name: str
    effective: Any
    declared: Any
    #: The file the effective value came from (cgroup v1 or v2 name).
    source: str
    #: False when enforcement and declaration disagree.
    matches: bool
    #: Why they differ, or where a tighter limit comes from.
    note: str = ""


@dataclass(frozen=True)
class ContainerLimits:
    """What :func:`container_limits` found."""

    container_id: str
    name: str
    #: ``v1``, ``v2`` or ``hybrid``.
    cgroup_mode: str
    #: The cgroup path of the CPU controller, e.g. ``/docker/<id>``.
    cgroup_path: str
    rows: Tuple[LimitRow, ...]

    def row(self, name: str) -> Optional[LimitRow]:
        for r in self.rows:
            if r.name == name:
                return r
        return None

    @property
    def mismatches(self) -> Tuple[LimitRow, ...]:
        return tuple(r for r in self.rows if not r.matches)

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class Declared:
    """The limits in a container's ``HostConfig``, in the units the
    kernel uses; None where nothing was declared."""

    cpus: Optional[float]
    cpu_period_ns: Optional[int]
    cpu_shares: Optional[int]
    cpuset: Optional[str]
    memory_bytes: Optional[int]
    memory_swap_bytes: Optional[int]
    memory_reservation_bytes: Optional[int]
    pids: Optional[int]

    @classmethod
    def from_host_config(cls, hc: Mapping[str, Any]) -> "Declared":
        nano = hc.get("NanoCpus") or 0
        quota = hc.get("CpuQuota") or 0
        period = hc.get("CpuPeriod") or 0
        cpus = None
        if nano:
            cpus = nano / 1e9
            # --cpus always uses the default 100 ms period.
            period = period or 100_000
        elif quota > 0:
            period = period or 100_000
            cpus = quota / period
        mem = hc.get("Memory") or 0
        swap = hc.get("MemorySwap")
        if swap in (None, 0):
            # Docker's default: as much swap as memory, so twice in all.
            swap = 2 * mem if mem else None
        elif swap < 0:
            swap = None
        pids = hc.get("PidsLimit")
        return cls(
            cpus=cpus,
            cpu_period_ns=period * 1000 if period else None,
            cpu_shares=hc.get("CpuShares") or None,
            cpuset=hc.get("CpusetCpus") or None,
            memory_bytes=mem or None,
            memory_swap_bytes=swap,
            memory_reservation_bytes=hc.get("MemoryReservation") or None,
            pids=pids if pids and pids > 0 else None)


@dataclass(frozen=True)
class Enforced:
    """What a cgroup's files enforce, including its ancestors' limits."""

    cpus: Optional[float]
    #: Where the tightest CPU limit is set (the cgroup or an ancestor).
    cpus_from: str
    cpu_period_ns: int
    cpu_burst_ns: int
    cpu_shares: Optional[int]
    cpuset: Optional[str]
    memory_bytes: Optional[int]
    memory_from: str
    memory_swap_bytes: Optional[int]
    memory_reservation_bytes: Optional[int]
    pids: Optional[int]
    pids_from: str
    #: File names per row, for the output.
    sources: Mapping[str, str]


def _tightest(d: Optional[cgroupfs.ControllerDir], read):
    """(value, path) of the smallest limit on ``d`` and its ancestors."""
    best, where = None, ""
    while d is not None:
        v = read(d)
        if v is not None and (best is None or v < best):
            best, where = v, d.path
        d = d.parent()
    return best, where


def read_enforced(*, pid: Optional[int] = None,
                  container_id: Optional[str] = None,
                  cgroup_parent: str = "") -> Tuple[Enforced, str, str]:
    """The limits of a container's cgroups; also the layout mode and the
    CPU controller's cgroup path."""
    from dockertrace.identity import cgroups

    layout = cgroups.cgroup_layout()
    kw = dict(pid=pid, container_id=container_id,
              cgroup_parent=cgroup_parent, layout=layout)
    cpu = cgroupfs.controller_dir("cpu", **kw)
    mem = cgroupfs.controller_dir("memory", **kw)
    pids = cgroupfs.controller_dir("pids", **kw)
    cpuset = cgroupfs.controller_dir("cpuset", **kw)
    v2 = {d.controller: d.version == 2 for d in (cpu, mem, pids, cpuset)
          if d is not None}

    def cpus_of(d):
        return cgroupfs.read_bandwidth(d).cpus

    cpus, cpus_from = _tightest(cpu, cpus_of)
    bw = cgroupfs.read_bandwidth(cpu) if cpu else \
        cgroupfs.Bandwidth(None, 100_000_000)
    shares = None
    if cpu is not None:
        text = cpu.read("cpu.weight" if v2.get("cpu") else "cpu.shares")
        shares = int(text) if text and text.isdigit() else None

    mem_file = "memory.max" if v2.get("memory") else \
        "memory.limit_in_bytes"
    mem_max, mem_from = _tightest(
        mem, lambda d: cgroupfs.parse_limit(d.read(mem_file)))
    swap = reservation = None
    if mem is not None:
        if v2.get("memory"):
            only_swap = cgroupfs.parse_limit(mem.read("memory.swap.max"))
            own = cgroupfs.parse_limit(mem.read("memory.max"))
            if only_swap is not None and own is not None:
                swap = only_swap + own
            reservation = cgroupfs.parse_limit(mem.read("memory.low"))
        else:
            swap = cgroupfs.parse_limit(
                mem.read("memory.memsw.limit_in_bytes"))
            reservation = cgroupfs.parse_limit(
                mem.read("memory.soft_limit_in_bytes"))
    pids_max, pids_from = _tightest(
        pids, lambda d: cgroupfs.parse_limit(d.read("pids.max")))
    cs = None
    if cpuset is not None:
        cs = cpuset.read("cpuset.cpus.effective" if v2.get("cpuset")
                         else "cpuset.cpus")
    sources = {
        "cpus": "cpu.max" if v2.get("cpu") else
        "cpu.cfs_quota_us/cpu.cfs_period_us",
        "cpu_shares": "cpu.weight" if v2.get("cpu") else "cpu.shares",
        "cpuset": "cpuset.cpus.effective" if v2.get("cpuset") else
        "cpuset.cpus",
        "memory_bytes": mem_file,
        "memory_swap_bytes": "memory.max+memory.swap.max"
        if v2.get("memory") else "memory.memsw.limit_in_bytes",
        "memory_reservation_bytes": "memory.low" if v2.get("memory")
        else "memory.soft_limit_in_bytes",
        "pids": "pids.max",
    }
    enforced = Enforced(
        cpus=cpus, cpus_from=cpus_from, cpu_period_ns=bw.period_ns,
        cpu_burst_ns=bw.burst_ns, cpu_shares=shares, cpuset=cs,
        memory_bytes=mem_max, memory_from=mem_from,
        memory_swap_bytes=swap, memory_reservation_bytes=reservation,
        pids=pids_max, pids_from=pids_from, sources=sources)
    return enforced, layout.mode, cpu.path if cpu else ""


def shares_to_weight(shares: int) -> int:
    """cgroup v2 cpu.weight for v1 cpu.shares, as runc converts it."""
    return 1 + ((shares - 2) * 9999) // 262142


def compare(enf: Enforced, dec: Declared, own_path: str,
            v2_cpu: bool) -> List[LimitRow]:
    """One row per limit, enforced next to declared."""
    rows = []

    def inherited(where):
        return f"set on {where}" if where and where != own_path else ""

    ok = (enf.cpus is None) == (dec.cpus is None) and (
        enf.cpus is None or abs(enf.cpus - dec.cpus) < 0.005)
    note = inherited(enf.cpus_from)
    if not ok and not note:
        note = "the cgroup's quota differs from the declaration"
    rows.append(LimitRow("cpus", enf.cpus, dec.cpus,
                         enf.sources["cpus"], ok, note))

    want = dec.cpu_shares
    if want is not None and v2_cpu:
        want = shares_to_weight(want)
    default = 100 if v2_cpu else 1024
    ok = enf.cpu_shares == (want if want is not None else default)
    rows.append(LimitRow("cpu_shares", enf.cpu_shares, dec.cpu_shares,
                         enf.sources["cpu_shares"], ok,
                         "as cpu.weight" if v2_cpu and dec.cpu_shares
                         else ""))

    ok = dec.cpuset is None or enf.cpuset == dec.cpuset
    rows.append(LimitRow("cpuset", enf.cpuset, dec.cpuset,
                         enf.sources["cpuset"], ok))

    for name, e, d, where in (
            ("memory_bytes", enf.memory_bytes, dec.memory_bytes,
             enf.memory_from),
            ("memory_swap_bytes", enf.memory_swap_bytes,
             dec.memory_swap_bytes, ""),
            ("memory_reservation_bytes", enf.memory_reservation_bytes,
             dec.memory_reservation_bytes, ""),
            ("pids", enf.pids, dec.pids, enf.pids_from)):
        # The kernel rounds memory limits down to whole pages.
        slack = _PAGE if name.startswith("memory") else 0
        ok = (e is None) == (d is None) and (
            e is None or abs(e - d) <= slack)
        note = inherited(where)
        if name == "memory_swap_bytes" and e is None and d is not None:
            note = "no swap accounting on this kernel"
            ok = True
        if not ok and not note:
            note = "enforced differs from declared"
        rows.append(LimitRow(name, e, d, enf.sources[name], ok, note))
    return rows


def container_limits(container: str, *, resolver=None) -> ContainerLimits:
    """The limits of a container (name or id), enforced and declared.

    Raises :class:`dockertrace.NoSuchContainer` if the daemon does not
    know it.
    """
    from dockertrace.identity import Resolver

    own = resolver is None
    resolver = resolver or Resolver()
    try:
        info = resolver.lookup(container)
        hc = resolver._api().inspect_container(info.id)["HostConfig"]
    finally:
        if own:
            resolver.close()
    enf, mode, path = read_enforced(pid=info.init_pid,
                                    container_id=info.id,
                                    cgroup_parent=info.cgroup_parent)
    dec = Declared.from_host_config(hc)
    v2_cpu = enf.sources["cpus"] == "cpu.max"
    rows = compare(enf, dec, path, v2_cpu)
    return ContainerLimits(info.id, info.name, mode, path, tuple(rows))
