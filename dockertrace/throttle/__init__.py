"""CPU throttling by the CFS bandwidth controller, per container and per
enforcement period.

>>> import dockertrace
>>> res = dockertrace.trace_throttle(["web"], duration_s=5)
>>> g = res.groups[0]
>>> g.summary.throttled_share, g.summary.suggestion.cpus
(0.95, 1.0)
>>> dockertrace.container_limits("web").row("cpus").effective
0.2

Mechanisms, best first: exact throttle and unthrottle moments per CPU
(fentry or kprobes on throttle_cfs_rq / unthrottle_cfs_rq) on top of the
period timer's counters; the period timer alone (a BTF tracepoint on
hrtimer_expire_exit, reading the task group through CO-RE); and without
BPF, cpu.stat polled.  ``ThrottleResult.mechanism`` says which was used.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from dockertrace.errors import (AccessDenied, FeatureNotSupported, Error,
                                TraceError)
from dockertrace.throttle import cgroupfs
from dockertrace.throttle.events import (Kind, Moment,  # noqa: F401
                                         Snapshot, ThreadSample)
from dockertrace.throttle.limits import (ContainerLimits,  # noqa: F401
                                         LimitRow, container_limits)
from dockertrace.throttle.periods import (GroupPeriods, Period,  # noqa: F401
                                          Suggestion, Summary,
                                          ThreadUse, ThrottleSpan,
                                          summarize)
from dockertrace.throttle.tracer import (DEFAULT_POLL_S, BpfSource,
                                         PollSource)

__all__ = [
    "MECHANISMS", "ContainerLimits", "GroupTrace", "Kind", "LimitRow",
    "Moment", "Period", "Snapshot", "Suggestion", "Summary", "Target",
    "ThreadSample", "ThreadUse", "ThrottleResult", "ThrottleSpan",
    "ThrottleTracer", "container_limits", "summarize", "trace_throttle",
]

log = logging.getLogger(__name__)

#: Values of ``mechanism`` for :func:`trace_throttle`.
MECHANISMS = ("auto", "bpf", "cpu.stat")


@dataclass(frozen=True)
class GroupTrace:
    """The periods of one traced cgroup."""

    cgroup_id: int
    #: Path in the CPU controller's hierarchy, e.g. ``/docker/<id>``.
    cgroup_path: str
    #: The container it belongs to; empty for other cgroups.
    container_id: str
    container_name: str
    periods: Tuple[Period, ...]
    summary: Summary
    #: Throttle spans not closed when tracing stopped (exact moments).
    open_spans: Tuple[ThrottleSpan, ...] = ()

    @property
    def label(self) -> str:
        return (self.container_name or self.container_id[:12]
                or self.cgroup_path or str(self.cgroup_id))

    def to_dict(self):
        return {"cgroup_id": self.cgroup_id,
                "cgroup_path": self.cgroup_path,
                "container_id": self.container_id,
                "container_name": self.container_name,
                "summary": self.summary.to_dict(),
                "periods": [p.to_dict() for p in self.periods],
                "open_spans": [s.__dict__ for s in self.open_spans]}


@dataclass(frozen=True)
class ThrottleResult:
    """What :func:`trace_throttle` saw."""

    groups: Tuple[GroupTrace, ...]
    #: ``fentry``, ``kprobe`` (exact moments), ``tp_btf``, ``raw_tp``
    #: (period timer) or ``cpu.stat`` (polled).
    mechanism: str
    #: In words: what the mechanism sees and how finely.
    mechanism_detail: str
    exact_moments: bool
    threads: bool
    duration_s: float
    dropped_events: int = 0
    #: Why BPF was not used, when it was not.
    fallback_reason: str = ""
    mechanisms: Dict[str, Optional[str]] = field(default_factory=dict)

    def group(self, ref: str) -> Optional[GroupTrace]:
        """The group of a container (name, id or id prefix) or cgroup
        path."""
        for g in self.groups:
            if ref and (ref in (g.container_name, g.cgroup_path)
                        or (len(ref) >= 4
                            and g.container_id.startswith(ref))):
                return g
        return None

    def to_dict(self):
        return {"mechanism": self.mechanism,
                "mechanism_detail": self.mechanism_detail,
                "exact_moments": self.exact_moments,
                "threads": self.threads,
                "duration_s": self.duration_s,
                "dropped_events": self.dropped_events,
                "fallback_reason": self.fallback_reason,
                "mechanisms": self.mechanisms,
                "groups": [g.to_dict() for g in self.groups]}


@dataclass(frozen=True)
class Target:
    """A cgroup to trace, found before tracing starts."""

    cgroup_id: int
    cpu: cgroupfs.ControllerDir
    cpuacct: Optional[cgroupfs.ControllerDir]
    container_id: str = ""
    container_name: str = ""


def target_of_cgroup(path: str) -> Target:
    """A cgroup given by its path in the CPU hierarchy (``/docker/<id>``,
    ``/mygroup``) or its directory."""
    mount = cgroupfs.cpu_hierarchy()
    if path.startswith(mount.mount_point + "/") or \
            path == mount.mount_point:
        path = path[len(mount.mount_point):] or "/"
        path = mount.root.rstrip("/") + path
    cpu = cgroupfs.controller_dir("cpu", path=path)
    if cpu is None:
        raise FeatureNotSupported(f"cgroup {path}",
                                  detail="no such cgroup in the CPU "
                                  "controller's hierarchy")
    acct = cgroupfs.controller_dir("cpuacct", path=path)
    return Target(os.stat(cpu.directory).st_ino, cpu, acct)


def target_of_container(ref: str, resolver) -> Target:
    """A container by name or id, through the Engine API."""
    info = resolver.lookup(ref)
    kw = dict(pid=info.init_pid, container_id=info.id,
              cgroup_parent=info.cgroup_parent)
    cpu = cgroupfs.controller_dir("cpu", **kw)
    if cpu is None:
        raise FeatureNotSupported(
            f"CPU cgroup of container {ref}",
            detail="not found under the CPU controller's hierarchy",
            fix="is the container running?")
    acct = cgroupfs.controller_dir("cpuacct", **kw)
    return Target(os.stat(cpu.directory).st_ino, cpu, acct, info.id,
                  info.name)


def limited_cgroups() -> List[Target]:
    """Every cgroup with a CPU quota, by walking the CPU hierarchy (what
    the polled fallback traces when no container is named)."""
    mount = cgroupfs.cpu_hierarchy()
    top = cgroupfs._under_root(mount.mount_point)
    out = []
    for dirpath, _dirs, _files in os.walk(top):
        rel = dirpath[len(top):] or "/"
        path = mount.root.rstrip("/") + rel if mount.root != "/" else rel
        cpu = cgroupfs.controller_dir("cpu", path=path)
        if cpu is None or cgroupfs.read_bandwidth(cpu).quota_ns is None:
            continue
        acct = cgroupfs.controller_dir("cpuacct", path=path)
        out.append(Target(os.stat(dirpath).st_ino, cpu, acct))
    return out


def _detail(source, reason=""):
    mech = source.mechanism
    if mech == "cpu.stat":
        ms = int(source.interval_s * 1000)
        why = f" ({reason})" if reason else ""
        return (f"cpu.stat polled every {ms} ms without BPF{why}: a row "
                "is a poll interval, not a kernel period; no per-thread "
                "time, no throttle moments")
    timer = source.mechanisms.get("dt_th_period")
    if source.exact_moments:
        return (f"exact throttle and unthrottle moments per CPU ({mech} "
                f"on throttle_cfs_rq, unthrottle_cfs_rq); counters per "
                f"period from the period timer ({timer})")
    return (f"counters read from the task group at the end of each "
            f"period, by its period timer (hrtimer_expire_exit, {timer}); "
            "exact throttle moments need fentry or kprobes")


class ThrottleTracer:
    """Trace throttling until closed; periods are assembled as they end.

    ``containers`` (names or ids) and ``cgroups`` (paths in the CPU
    hierarchy) limit what is traced; with neither, every group with a
    quota is.  ``mechanism`` is ``"auto"`` (BPF, else cpu.stat),
    ``"bpf"`` or ``"cpu.stat"``.  ``on_period(group, period)`` is called
    from the reader thread as each period ends.
    """

    def __init__(self, containers: Iterable[str] = (),
                 cgroups: Iterable[str] = (), *, threads: bool = True,
                 mechanism: str = "auto", poll_interval_s: float =
                 DEFAULT_POLL_S, allow=None, exclude=None,
                 on_period: Optional[Callable] = None, resolver=None):
        if mechanism not in MECHANISMS:
            raise ValueError(f"mechanism must be one of {MECHANISMS}")
        self._lock = threading.Lock()
        self._groups: Dict[int, GroupPeriods] = {}
        self._on_period = on_period
        #: Every record, in arrival order, while keep_records is set.
        self.records: List = []
        #: cgroup id -> the Snapshot read from cpu.stat at the start.
        self.seeds: Dict[int, Snapshot] = {}
        self.keep_records = False
        self.fallback_reason = ""
        self._resolver = resolver
        self._own_resolver = False
        self.targets = self._targets(list(containers), list(cgroups))
        ids = [t.cgroup_id for t in self.targets] if self.targets \
            else None

        self._seed()
        self.source = None
        if mechanism in ("auto", "bpf"):
            try:
                self.source = BpfSource(self._feed, cgroup_ids=ids,
                                        threads=threads, allow=allow,
                                        exclude=exclude)
            except (AccessDenied, FeatureNotSupported, TraceError) as err:
                if mechanism == "bpf":
                    raise
                log.info("BPF unavailable, polling cpu.stat: %s", err)
                self.fallback_reason = str(err)
        if self.source is None:
            targets = self.targets or limited_cgroups()
            self.source = PollSource(
                self._feed, {t.cgroup_id: (t.cpu, t.cpuacct)
                             for t in targets},
                interval_s=poll_interval_s)
        self.started_ns = time.monotonic_ns()

    def _seed(self):
        # The kernel's counters when tracing begins are the baseline of
        # each target's first period, so the totals cover the whole
        # traced time, as cpu.stat read at the same moments would.
        for t in self.targets:
            try:
                stat = cgroupfs.read_cpu_stat(t.cpu, t.cpuacct)
                bw = cgroupfs.read_bandwidth(t.cpu)
            except OSError:
                continue
            g = self._groups[t.cgroup_id] = GroupPeriods(t.cgroup_id)
            self.seeds[t.cgroup_id] = Snapshot(
                ts_ns=time.monotonic_ns(), cgroup_id=t.cgroup_id,
                period_ns=bw.period_ns, quota_ns=bw.quota_ns,
                nr_periods=stat.nr_periods, nr_throttled=stat.nr_throttled,
                throttled_time_ns=stat.throttled_ns, usage_ns=stat.usage_ns,
                burst_ns=bw.burst_ns, burst_time_ns=stat.burst_ns,
                nr_burst=stat.nr_bursts)
            g.seed(self.seeds[t.cgroup_id])

    def _resolver_(self):
        if self._resolver is None:
            from dockertrace.identity import Resolver
            self._resolver = Resolver()
            self._own_resolver = True
        return self._resolver

    def _targets(self, containers, cgroups) -> List[Target]:
        out = [target_of_cgroup(c) for c in cgroups]
        for ref in containers:
            out.append(target_of_container(ref, self._resolver_()))
        return out

    def _feed(self, rec):
        with self._lock:
            if self.keep_records:
                self.records.append(rec)
            g = self._groups.get(rec.cgroup_id)
            if g is None:
                g = self._groups[rec.cgroup_id] = GroupPeriods(
                    rec.cgroup_id)
            period = g.feed(rec)
        if period is not None and self._on_period is not None:
            self._on_period(rec.cgroup_id, period)

    @property
    def mechanism(self) -> str:
        return self.source.mechanism

    def periods(self) -> Dict[int, List[Period]]:
        self.source.check()
        with self._lock:
            return {cg: list(g.periods) for cg, g in self._groups.items()}

    def close(self):
        if self.source is not None:
            self.source.close()
        if self._own_resolver and self._resolver is not None:
            self._resolver.close()
            self._resolver = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def result(self) -> ThrottleResult:
        """Everything seen so far, with names resolved."""
        try:
            self.source.flush()
        except Error:
            raise
        with self._lock:
            groups = dict(self._groups)
        names = self._names(groups)
        traces = []
        for cgid, g in sorted(groups.items()):
            if not g.periods:
                continue
            path, cid, name = names.get(cgid, ("", "", ""))
            traces.append(GroupTrace(
                cgroup_id=cgid, cgroup_path=path, container_id=cid,
                container_name=name, periods=tuple(g.periods),
                summary=summarize(g.periods),
                open_spans=tuple(g.finish())))
        return ThrottleResult(
            groups=tuple(traces), mechanism=self.mechanism,
            mechanism_detail=_detail(self.source, self.fallback_reason),
            exact_moments=self.source.exact_moments,
            threads=self.source.threads,
            duration_s=(time.monotonic_ns() - self.started_ns) / 1e9,
            dropped_events=self.source.dropped_events,
            fallback_reason=self.fallback_reason,
            mechanisms=self.source.mechanisms)

    def _names(self, groups) -> Dict[int, Tuple[str, str, str]]:
        out = {t.cgroup_id: (t.cpu.path, t.container_id, t.container_name)
               for t in self.targets}
        unknown = [cg for cg in groups if cg not in out]
        if not unknown:
            return out
        from dockertrace.identity import CgroupTree, parse_cgroup_path
        try:
            mount = cgroupfs.cpu_hierarchy()
        except FeatureNotSupported:
            return out
        tree = CgroupTree(mount.mount_point, mount_root=mount.root)
        for cg in unknown:
            path = tree.path_of(cg) or ""
            ref = parse_cgroup_path(path) if path else None
            cid = ref.container_id if ref else ""
            out[cg] = (path, cid, self._container_name(cid))
        return out

    def _container_name(self, cid):
        if not cid:
            return ""
        try:
            info = self._resolver_().resolve_id(cid)
        except Error as err:
            # Names are a nicety: without the daemon the ids still stand.
            log.debug("no name for container %s: %s", cid[:12], err)
            return ""
        return info.name if info else ""


def trace_throttle(containers: Iterable[str] = (), duration_s: float = 5.0,
                   *, cgroups: Iterable[str] = (), threads: bool = True,
                   mechanism: str = "auto", stop=None, on_period=None,
                   **kwargs) -> ThrottleResult:
    """Trace CPU throttling for ``duration_s`` seconds (or until ``stop``,
    a threading.Event, is set) and return the periods per group.

    With no ``containers`` (names or ids) and no ``cgroups`` (paths in
    the CPU controller's hierarchy), every group with a CPU quota is
    traced.  See :class:`ThrottleTracer` for the other arguments.
    """
    with ThrottleTracer(containers, cgroups, threads=threads,
                        mechanism=mechanism, on_period=on_period,
                        **kwargs) as tracer:
        deadline = time.monotonic() + duration_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                break
            time.sleep(min(left, 0.1))
            tracer.source.check()
        return tracer.result()
